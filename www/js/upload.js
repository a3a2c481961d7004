/* upload.js — the list of files being added to a case.
 *
 * Files come from the picker, the camera input or a drop; each gets a row
 * with its own eye and type selectors, a progress bar fed by XMLHttpRequest
 * upload progress, a status line and Cancel/Retry buttons. The eye has no
 * default: a wrong side is worse than a question. What the file name or the
 * photo's EXIF text suggests (hint.js) is offered as a button beside it,
 * never applied by itself. The type starts as the form's type, which is the
 * last type used in this browser (localStorage "polaimg.imageType") and
 * follows the form until changed on the row. "Upload" sends the queued
 * files one after the other, so their `order` in the case follows the
 * list; a file whose eye or type is not chosen is not sent and says why.
 * Captured date and description are read from the form at that moment. A
 * failed upload shows its error and an empty bar (the browser reports the
 * whole body sent before the service refuses it).
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
import { EYE_GROUPS, IMAGE_TYPES, sizeLabel } from './format.js';
import { eyeHint } from './hint.js';

let seq = 0;
const TYPE_KEY = 'polaimg.imageType';

/* The image type used last in this browser, or '' (none yet). */
export function lastType() {
	try {
		const t = localStorage.getItem(TYPE_KEY);
		return t && IMAGE_TYPES[t] ? t : '';
	} catch {
		return '';
	}
}

function rememberType(t) {
	try {
		localStorage.setItem(TYPE_KEY, t);
	} catch {
		/* storage off: nothing remembered */
	}
}

/* A required <select> with id, "Choose…" and entries ([value, text]
 * pairs), set to value, and its <label> saying text: [label, select]. */
function field(id, text, entries, value) {
	const lab = document.createElement('label');
	lab.htmlFor = id;
	lab.textContent = text;
	const sel = document.createElement('select');
	sel.id = id;
	sel.required = true;
	for (const [v, t] of [['', 'Choose…'], ...entries]) {
		const o = document.createElement('option');
		o.value = v;
		o.textContent = t;
		sel.append(o);
	}
	sel.value = value;
	return [lab, sel];
}

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
		const type = this.opts.defaults().imageType;
		for (const file of files) {
			const item = { id: `q${++seq}`, file, state: 'queued', abort: null };
			item.els = this.row(item, type);
			this.items.push(item);
			this.list.append(item.els.li);
			if (file.type && !file.type.startsWith('image/'))
				this.setState(item, 'failed', MSG.wrongType);
			else
				this.setState(item, 'queued', 'Waiting');
			eyeHint(file).then((h) => this.offerHint(item, h));
		}
		this.refresh();
	}

	/* The form's type changed: rows whose type was not set by hand follow. */
	formType(t) {
		for (const it of this.items)
			if (!it.els.typeSel.dataset.own && !it.els.typeSel.disabled) {
				it.els.typeSel.value = t;
				this.checkRow(it);
			}
	}

	offerHint(item, h) {
		if (!h || !item.els.li.isConnected)
			return;
		const g = EYE_GROUPS.find((x) => x.side === h.side);
		const b = item.els.hint;
		b.textContent = `Use ${g.title}`;
		b.setAttribute('aria-label', `Use ${g.title} for ${item.file.name || 'photo'}, as its ${h.from} suggests`);
		item.els.hintText.textContent = `The ${h.from} suggests ${g.title}.`;
		b.dataset.side = h.side;
		item.els.hintBox.hidden = item.els.sel.value !== '';
	}

	/* Whether the row has an eye and a type; says what is missing. */
	checkRow(item) {
		const e = item.els;
		const missing = [];
		e.sel.setAttribute('aria-invalid', String(e.sel.value === '' && item.tried === true));
		e.typeSel.setAttribute('aria-invalid', String(e.typeSel.value === '' && item.tried === true));
		if (e.sel.value === '')
			missing.push('the eye');
		if (e.typeSel.value === '')
			missing.push('the image type');
		const incomplete = item.state === 'queued' && missing.length > 0 && item.tried === true;
		e.li.classList.toggle('incomplete', incomplete);
		if (item.state === 'queued')
			e.status.textContent = incomplete ? `Choose ${missing.join(' and ')} for this file.` : 'Waiting';
		if (e.sel.value !== '')
			e.hintBox.hidden = true;
		return missing.length === 0;
	}

	row(item, type) {
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
		const [lab, sel] = field(`${item.id}-eye`, 'Eye', EYE_GROUPS.map((g) => [g.side, g.title]), '');
		sel.addEventListener('change', () => this.checkRow(item));
		const [tlab, typeSel] = field(`${item.id}-type`, 'Type', Object.entries(IMAGE_TYPES), type || '');
		typeSel.addEventListener('change', () => {
			typeSel.dataset.own = '1';
			this.checkRow(item);
		});
		eyeBox.append(lab, sel, tlab, typeSel);

		const hintBox = document.createElement('div');
		hintBox.className = 'qhint';
		hintBox.hidden = true;
		const hintText = document.createElement('span');
		const hint = document.createElement('button');
		hint.type = 'button';
		hint.className = 'btn btn-small';
		hint.addEventListener('click', () => {
			sel.value = hint.dataset.side;
			this.checkRow(item);
			sel.focus();
		});
		hintBox.append(hintText, hint);

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

		li.append(name, actions, eyeBox, hintBox, prog, status);
		return { li, sel, typeSel, hint, hintText, hintBox, bar, pct, status, cancel, retry };
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
		e.typeSel.disabled = e.sel.disabled;
		if (e.sel.disabled)
			e.hintBox.hidden = true;
		if (state === 'failed' || state === 'cancelled')
			this.emptyBar(item);
		this.refresh();
	}

	progress(item, fraction) {
		const p = Math.round(fraction * 100);
		item.els.bar.value = p;
		item.els.pct.textContent = `${p} %`;
		if (fraction >= 1 && item.state === 'sending')
			this.setState(item, 'processing', 'Sent; the image service is processing it…');
	}

	/* A file that did not arrive: no bar, no percentage. */
	emptyBar(item) {
		item.els.bar.value = 0;
		item.els.pct.textContent = '';
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
		const queued = this.items.filter((i) => i.state === 'queued');
		let firstBad = null;
		for (const it of queued) {
			it.tried = true;
			if (!this.checkRow(it) && !firstBad)
				firstBad = it;
		}
		if (firstBad) {
			const e = firstBad.els;
			(e.sel.value === '' ? e.sel : e.typeSel).focus();
			this.opts.announce(e.status.textContent);
		}
		this.running = true;
		this.halted = false;
		this.refresh();
		try {
			for (;;) {
				const item = this.items.find((i) => i.state === 'queued' && i.els.sel.value !== '' && i.els.typeSel.value !== '');
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
			caseId: this.opts.caseId(), eyeSide: item.els.sel.value, imageType: item.els.typeSel.value,
			capturedAt: d.capturedAt, description: d.description,
		};
		rememberType(meta.imageType);
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
