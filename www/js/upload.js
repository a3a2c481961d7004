/* upload.js — the list of files being added to a case.
 *
 * Files come from the picker, the camera input or a drop; each gets a row
 * with its own eye selector (preset from the form), a progress bar fed by
 * XMLHttpRequest upload progress, a status line and Cancel/Retry buttons.
 * "Upload" sends the queued files one after the other, so their `order` in
 * the case follows the list; image type, captured date and description are
 * read from the form at that moment.
 *
 * Two ways to send the bytes, chosen by the administrator in config.json
 * ("upload"; the page cannot tell the storage back end before it has
 * uploaded something):
 *   "service" (default) — multipart POST /upload: the bytes go through
 *       polaimg, whatever the back end; works with no storage-side setup.
 *   "direct" — POST /upload-url, then the bytes go straight to the URL it
 *       returns with exactly its method and headers (and no bearer token),
 *       then POST /:id/complete. Meant for S3/Supabase (needs CORS on the
 *       bucket and the bucket's origin in the page's connect-src). When the
 *       URL is polaimg's own /:id/upload (local storage) its answer is
 *       already the finished image and complete is not called. A file whose
 *       type the browser does not know goes through the service (upload-url
 *       needs a content type).
 * Cancel aborts the request in flight (xhr.abort()); a direct upload
 * cancelled after upload-url leaves a pending image that `polaimg sweep`
 * removes when its URL expires.
 */

import { ApiError, Cancelled, apiJson, apiUrl, xhrError, xhrSend } from './api.js';
import { MSG, describe } from './messages.js';
import { EYE_GROUPS, sizeLabel } from './format.js';

let seq = 0;

export class Uploader {
	/* opts: mode ('service' | 'direct'), caseId() → the open case,
	 * defaults() → {eyeSide, imageType, capturedAt, description},
	 * onUploaded(image), announce(text). */
	constructor(opts) {
		this.opts = opts;
		this.items = [];
		this.running = false;
		this.halted = false;
		this.list = document.getElementById('queue');
		this.title = document.getElementById('queue-title');
		this.startBtn = document.getElementById('upload-start');
		this.clearBtn = document.getElementById('upload-clear');
		this.startBtn.addEventListener('click', () => this.start());
		this.clearBtn.addEventListener('click', () => this.clearFinished());
	}

	addFiles(files) {
		const eye = this.opts.defaults().eyeSide;
		for (const file of files) {
			const item = { id: `q${++seq}`, file, state: 'queued', abort: null };
			item.els = this.row(item, eye);
			this.items.push(item);
			this.list.append(item.els.li);
			if (file.type && !file.type.startsWith('image/'))
				this.setState(item, 'failed', MSG.wrongType);
			else
				this.setState(item, 'queued', 'Waiting');
		}
		this.refresh();
	}

	row(item, eye) {
		const li = document.createElement('li');
		li.className = 'qitem';
		const name = document.createElement('p');
		name.className = 'qname';
		const size = document.createElement('span');
		size.className = 'qsize';
		size.textContent = ` (${sizeLabel(item.file.size)})`;
		name.append(document.createTextNode(item.file.name || 'photo'), size);

		const eyeBox = document.createElement('div');
		eyeBox.className = 'qeye';
		const lab = document.createElement('label');
		lab.htmlFor = `${item.id}-eye`;
		lab.textContent = 'Eye';
		const sel = document.createElement('select');
		sel.id = `${item.id}-eye`;
		for (const g of EYE_GROUPS) {
			const o = document.createElement('option');
			o.value = g.side;
			o.textContent = g.title;
			sel.append(o);
		}
		sel.value = eye;
		eyeBox.append(lab, sel);

		const prog = document.createElement('div');
		prog.className = 'qprogress';
		const bar = document.createElement('progress');
		bar.max = 100;
		bar.value = 0;
		bar.setAttribute('aria-label', `Upload progress of ${item.file.name || 'photo'}`);
		const pct = document.createElement('span');
		pct.className = 'qpercent';
		pct.textContent = '0 %';
		prog.append(bar, pct);

		const actions = document.createElement('div');
		actions.className = 'qactions';
		const cancel = document.createElement('button');
		cancel.type = 'button';
		cancel.className = 'btn btn-small btn-quiet';
		cancel.textContent = 'Cancel';
		cancel.setAttribute('aria-label', `Cancel ${item.file.name || 'photo'}`);
		cancel.addEventListener('click', () => this.cancel(item));
		const retry = document.createElement('button');
		retry.type = 'button';
		retry.className = 'btn btn-small';
		retry.textContent = 'Retry';
		retry.setAttribute('aria-label', `Retry ${item.file.name || 'photo'}`);
		retry.addEventListener('click', () => this.retry(item));
		actions.append(cancel, retry);

		const status = document.createElement('p');
		status.className = 'qstatus';

		li.append(name, actions, eyeBox, prog, status);
		return { li, sel, bar, pct, status, cancel, retry };
	}

	setState(item, state, text) {
		item.state = state;
		const e = item.els;
		e.li.dataset.state = state;
		e.li.classList.toggle('done', state === 'done');
		e.li.classList.toggle('failed', state === 'failed' || state === 'cancelled');
		e.status.textContent = text;
		/* Once the whole file is sent the service may already have stored
		 * it: from then on there is nothing left to cancel. */
		e.cancel.hidden = !(state === 'queued' || state === 'sending');
		e.retry.hidden = !(state === 'failed' || state === 'cancelled');
		e.sel.disabled = !(state === 'queued' || state === 'failed' || state === 'cancelled');
		this.refresh();
	}

	progress(item, fraction) {
		const p = Math.round(fraction * 100);
		item.els.bar.value = p;
		item.els.pct.textContent = `${p} %`;
		if (fraction >= 1 && item.state === 'sending')
			this.setState(item, 'processing', 'Sent; the image service is processing it…');
	}

	refresh() {
		const queued = this.items.filter((i) => i.state === 'queued').length;
		this.title.hidden = this.items.length === 0;
		this.startBtn.disabled = this.running || queued === 0;
		this.startBtn.textContent = queued > 1 ? `Upload ${queued} files` : 'Upload';
		this.clearBtn.hidden = !this.items.some((i) => ['done', 'failed', 'cancelled'].includes(i.state));
	}

	cancel(item) {
		if (item.state === 'queued')
			this.setState(item, 'cancelled', MSG.cancelled);
		else if (item.abort)
			item.abort();
	}

	retry(item) {
		this.progress(item, 0);
		this.setState(item, 'queued', 'Waiting');
		this.start();
	}

	clearFinished() {
		for (const it of this.items.filter((i) => ['done', 'failed', 'cancelled'].includes(i.state)))
			it.els.li.remove();
		this.items = this.items.filter((i) => !['done', 'failed', 'cancelled'].includes(i.state));
		this.refresh();
	}

	/* Forgets every file (another case was opened, or sign out): the one in
	 * flight is aborted. */
	reset() {
		this.halted = true;
		for (const it of this.items)
			if (it.abort)
				it.abort();
		this.items = [];
		this.list.replaceChildren();
		this.refresh();
	}

	async start() {
		if (this.running)
			return;
		this.running = true;
		this.halted = false;
		this.refresh();
		try {
			for (;;) {
				const item = this.items.find((i) => i.state === 'queued');
				if (!item || this.halted)
					break;
				await this.run(item);
			}
		} finally {
			this.running = false;
			this.refresh();
		}
	}

	async run(item) {
		const d = this.opts.defaults();
		const meta = {
			caseId: this.opts.caseId(), eyeSide: item.els.sel.value, imageType: d.imageType,
			capturedAt: d.capturedAt, description: d.description,
		};
		this.progress(item, 0);
		this.setState(item, 'sending', 'Uploading…');
		try {
			const direct = this.opts.mode === 'direct' && item.file.type;
			const image = direct ? await this.direct(item, meta) : await this.viaService(item, meta);
			this.progress(item, 1);
			this.setState(item, 'done', 'Uploaded');
			this.opts.announce(`${item.file.name} uploaded.`);
			this.opts.onUploaded(image);
		} catch (e) {
			if (e instanceof Cancelled) {
				this.setState(item, 'cancelled', MSG.cancelled);
				return;
			}
			const msg = describe(e, e.storage ? 'storage' : 'upload');
			this.setState(item, 'failed', msg);
			this.opts.announce(`${item.file.name}: ${msg}`);
			if (e instanceof ApiError && e.status === 401)
				this.halted = true;
		} finally {
			item.abort = null;
		}
	}

	async viaService(item, meta) {
		const fd = new FormData();
		fd.append('caseId', meta.caseId);
		fd.append('eyeSide', meta.eyeSide);
		fd.append('imageType', meta.imageType);
		if (meta.description)
			fd.append('description', meta.description);
		if (meta.capturedAt)
			fd.append('capturedAt', meta.capturedAt);
		fd.append('image', item.file, item.file.name || 'photo');
		const x = xhrSend({
			method: 'POST', url: apiUrl('/upload'), body: fd, bearer: true,
			onProgress: (f) => this.progress(item, f),
		});
		item.abort = x.abort;
		const r = await x.promise;
		if (r.status !== 201 || !r.json || !r.json.data)
			throw xhrError(r);
		return r.json.data;
	}

	isOwnUploadUrl(url, imageId) {
		const u = new URL(url, window.location.href);
		const own = new URL(apiUrl(`/${encodeURIComponent(imageId)}/upload`), window.location.href);
		return u.origin === own.origin && u.pathname === own.pathname;
	}

	async direct(item, meta) {
		const ctl = new AbortController();
		item.abort = () => ctl.abort();
		const body = {
			fileName: item.file.name || 'photo', contentType: item.file.type, caseId: meta.caseId,
			eyeSide: meta.eyeSide, imageType: meta.imageType, fileSize: item.file.size,
		};
		if (meta.description)
			body.description = meta.description;
		if (meta.capturedAt)
			body.capturedAt = meta.capturedAt;
		const issued = await apiJson('POST', '/upload-url', { body, signal: ctl.signal });
		const d = issued.data;
		const own = this.isOwnUploadUrl(d.uploadUrl, d.imageId);
		const x = xhrSend({
			method: d.method || 'PUT', url: d.uploadUrl, headers: d.headers || {}, body: item.file,
			bearer: false, onProgress: (f) => this.progress(item, f),
		});
		item.abort = x.abort;
		const r = await x.promise;
		if (own) {
			if ((r.status === 200 || r.status === 201) && r.json && r.json.data)
				return r.json.data;
			const err = xhrError(r, true);
			err.storage = r.status === 403;
			throw err;
		}
		if (r.status < 200 || r.status > 299) {
			const err = xhrError(r, false);
			err.storage = true;
			throw err;
		}
		this.setState(item, 'processing', 'Sent; the image service is checking it…');
		const ctl2 = new AbortController();
		item.abort = () => ctl2.abort();
		const done = await apiJson('POST', `/${encodeURIComponent(d.imageId)}/complete`, { signal: ctl2.signal });
		return done.data;
	}
}
