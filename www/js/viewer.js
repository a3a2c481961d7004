/* viewer.js — one image at a time, full screen, in a modal <dialog>.
 *
 * Shows the display copy (fetched through the proxy with the bearer token,
 * as a blob: URL revoked when the viewer moves on or closes). Zoom with the
 * mouse wheel, a two-finger pinch, double click/tap, the +/− buttons or the
 * + - 0 keys; pan by dragging (mouse, pen or one finger). Previous/next with
 * the buttons or the ← → keys; Esc (the dialog's own cancel) closes it and
 * the focus goes back to the thumbnail of the image last shown.
 *
 * The zoom level shown is relative to the display copy's own pixels
 * (100 % = one image pixel per CSS pixel); "Fit" shows the whole image.
 */

import { apiBlob, Cancelled } from './api.js';
import { describe } from './messages.js';
import { byLine, eyeLabel, imageDateLabel, sizeLabel, typeLabel } from './format.js';

const MAX_ZOOM = 8;

export class Viewer {
	/* hooks: onDownload(image), onDelete(image), onClosed(lastImageId),
	 * canDelete() → boolean. */
	constructor(hooks) {
		this.hooks = hooks;
		this.dlg = document.getElementById('viewer');
		this.stage = document.getElementById('v-stage');
		this.img = document.getElementById('v-img');
		this.loadingMsg = document.getElementById('v-loading');
		this.error = document.getElementById('v-error');
		this.title = document.getElementById('viewer-title');
		this.zoomLabel = document.getElementById('v-zoom');
		this.meta = document.getElementById('v-meta');
		this.desc = document.getElementById('v-desc');
		this.btn = {
			prev: document.getElementById('v-prev'),
			next: document.getElementById('v-next'),
			close: document.getElementById('v-close'),
			zoomIn: document.getElementById('v-zoom-in'),
			zoomOut: document.getElementById('v-zoom-out'),
			fit: document.getElementById('v-fit'),
			download: document.getElementById('v-download'),
			del: document.getElementById('v-delete'),
		};
		this.list = [];
		this.index = -1;
		this.url = null;
		this.abort = null;
		this.z = { s: 1, x: 0, y: 0, fit: 1, w: 0, h: 0, atFit: true };
		this.pointers = new Map();
		this.gesture = null;
		this.wire();
	}

	wire() {
		const b = this.btn;
		b.prev.addEventListener('click', () => this.go(-1));
		b.next.addEventListener('click', () => this.go(1));
		b.close.addEventListener('click', () => this.dlg.close());
		b.zoomIn.addEventListener('click', () => this.zoomBy(1.5));
		b.zoomOut.addEventListener('click', () => this.zoomBy(1 / 1.5));
		b.fit.addEventListener('click', () => this.fit());
		b.download.addEventListener('click', () => this.current() && this.hooks.onDownload(this.current()));
		b.del.addEventListener('click', () => this.current() && this.hooks.onDelete(this.current()));
		this.dlg.addEventListener('close', () => this.closed());
		this.dlg.addEventListener('keydown', (e) => this.key(e));
		this.img.addEventListener('load', () => this.imageLoaded());
		this.stage.addEventListener('wheel', (e) => this.wheel(e), { passive: false });
		this.stage.addEventListener('pointerdown', (e) => this.pointerDown(e));
		this.stage.addEventListener('pointermove', (e) => this.pointerMove(e));
		this.stage.addEventListener('pointerup', (e) => this.pointerUp(e));
		this.stage.addEventListener('pointercancel', (e) => this.pointerUp(e));
		this.stage.addEventListener('dblclick', (e) => this.doubleClick(e));
		window.addEventListener('resize', () => this.dlg.open && this.relayout());
	}

	get isOpen() {
		return this.dlg.open;
	}

	current() {
		return this.index >= 0 ? this.list[this.index] : null;
	}

	/* Opens the viewer on list[index] (list: image resources in viewing
	 * order). */
	open(list, index) {
		this.list = list;
		if (!this.dlg.open)
			this.dlg.showModal();
		this.show(index);
	}

	/* The list changed (an image was deleted): show what is now at the same
	 * place, or close when nothing is left. */
	update(list) {
		const cur = this.current();
		this.list = list;
		if (list.length === 0) {
			this.dlg.close();
			return;
		}
		const still = cur ? list.findIndex((i) => i.id === cur.id) : -1;
		this.show(still >= 0 ? still : Math.min(this.index, list.length - 1));
	}

	go(step) {
		const i = this.index + step;
		if (i >= 0 && i < this.list.length)
			this.show(i);
	}

	async show(index) {
		this.index = index;
		const image = this.list[index];
		this.release();
		this.error.textContent = '';
		this.loadingMsg.hidden = false;
		this.loadingMsg.textContent = 'Loading…';
		this.img.hidden = true;
		this.title.textContent = `Image ${index + 1} of ${this.list.length} · ${eyeLabel(image.eyeSide)}`;
		const bits = [typeLabel(image.imageType), byLine(image)];
		if (image.width && image.height)
			bits.push(`${image.width} × ${image.height} px`);
		if (image.fileSize)
			bits.push(sizeLabel(image.fileSize));
		this.meta.textContent = bits.join(' · ');
		this.desc.textContent = image.description || '';
		this.img.alt = `${eyeLabel(image.eyeSide)}, ${typeLabel(image.imageType)}, ${imageDateLabel(image)}`;
		this.btn.prev.disabled = index <= 0;
		this.btn.next.disabled = index >= this.list.length - 1;
		this.btn.del.hidden = !this.hooks.canDelete();
		const ctl = new AbortController();
		this.abort = ctl;
		try {
			const blob = await apiBlob(`/${encodeURIComponent(image.id)}/proxy`, { signal: ctl.signal });
			if (ctl.signal.aborted)
				return;
			this.url = URL.createObjectURL(blob);
			this.img.src = this.url;
		} catch (e) {
			if (e instanceof Cancelled || ctl.signal.aborted)
				return;
			this.loadingMsg.hidden = true;
			this.error.textContent = describe(e, 'image');
		}
	}

	/* Stops a pending fetch and revokes the blob: URL shown. */
	release() {
		if (this.abort)
			this.abort.abort();
		this.abort = null;
		if (this.url) {
			URL.revokeObjectURL(this.url);
			this.url = null;
		}
		this.img.removeAttribute('src');
	}

	closed() {
		const last = this.current();
		this.release();
		this.index = -1;
		this.pointers.clear();
		this.gesture = null;
		this.hooks.onClosed(last ? last.id : null);
	}

	setDeleteVisible(on) {
		this.btn.del.hidden = !on;
	}

	key(e) {
		if (e.altKey || e.ctrlKey || e.metaKey)
			return;
		const k = e.key;
		if (k === 'ArrowLeft') this.go(-1);
		else if (k === 'ArrowRight') this.go(1);
		else if (k === '+' || k === '=') this.zoomBy(1.5);
		else if (k === '-' || k === '_') this.zoomBy(1 / 1.5);
		else if (k === '0') this.fit();
		else return;
		e.preventDefault();
	}

	/* --- zoom and pan ------------------------------------------------- */

	imageLoaded() {
		if (!this.url)
			return;
		this.loadingMsg.hidden = true;
		this.img.hidden = false;
		this.z.w = this.img.naturalWidth;
		this.z.h = this.img.naturalHeight;
		this.fit();
	}

	stageSize() {
		return { sw: this.stage.clientWidth, sh: this.stage.clientHeight };
	}

	fitScale() {
		const { sw, sh } = this.stageSize();
		if (!this.z.w || !this.z.h || !sw || !sh)
			return 1;
		return Math.min(sw / this.z.w, sh / this.z.h);
	}

	fit() {
		this.z.fit = this.fitScale();
		this.z.s = this.z.fit;
		this.z.atFit = true;
		this.apply();
	}

	relayout() {
		this.z.fit = this.fitScale();
		if (this.z.atFit)
			this.fit();
		else
			this.setScale(this.z.s);
	}

	/* Zooms to scale s keeping the stage point (cx, cy) still (the centre
	 * when not given). */
	setScale(s, cx, cy) {
		const { sw, sh } = this.stageSize();
		const min = this.z.fit;
		const max = Math.max(this.z.fit, 1) * MAX_ZOOM;
		const ns = Math.min(max, Math.max(min, s));
		const px = cx === undefined ? sw / 2 : cx;
		const py = cy === undefined ? sh / 2 : cy;
		const k = ns / this.z.s;
		this.z.x = px - (px - this.z.x) * k;
		this.z.y = py - (py - this.z.y) * k;
		this.z.s = ns;
		this.z.atFit = Math.abs(ns - this.z.fit) < 1e-6;
		this.apply();
	}

	zoomBy(f, cx, cy) {
		if (this.img.hidden)
			return;
		this.setScale(this.z.s * f, cx, cy);
	}

	panBy(dx, dy) {
		this.z.x += dx;
		this.z.y += dy;
		this.apply();
	}

	/* Keeps the image on the stage (centred along an axis where it is
	 * smaller than the stage) and draws it. */
	apply() {
		const { sw, sh } = this.stageSize();
		const w = this.z.w * this.z.s;
		const h = this.z.h * this.z.s;
		this.z.x = w <= sw ? (sw - w) / 2 : Math.min(0, Math.max(sw - w, this.z.x));
		this.z.y = h <= sh ? (sh - h) / 2 : Math.min(0, Math.max(sh - h, this.z.y));
		this.img.style.transform = `translate(${this.z.x}px, ${this.z.y}px) scale(${this.z.s})`;
		this.zoomLabel.textContent = `${Math.round(this.z.s * 100)} %`;
		this.stage.dataset.zoom = String(this.z.s);
	}

	local(e) {
		const r = this.stage.getBoundingClientRect();
		return { x: e.clientX - r.left, y: e.clientY - r.top };
	}

	wheel(e) {
		if (this.img.hidden)
			return;
		e.preventDefault();
		const unit = e.deltaMode === 1 ? 0.05 : e.deltaMode === 2 ? 1 : 0.0015;
		const p = this.local(e);
		this.zoomBy(Math.exp(-e.deltaY * unit), p.x, p.y);
	}

	doubleClick(e) {
		const p = this.local(e);
		if (this.z.atFit)
			this.setScale(Math.max(this.z.fit * 2.5, 1), p.x, p.y);
		else
			this.fit();
	}

	pointerDown(e) {
		if (this.img.hidden || (e.pointerType === 'mouse' && e.button !== 0))
			return;
		this.stage.setPointerCapture(e.pointerId);
		this.pointers.set(e.pointerId, this.local(e));
		this.startGesture();
		this.stage.classList.add('dragging');
	}

	startGesture() {
		const pts = [...this.pointers.values()];
		if (pts.length >= 2) {
			const [a, b] = pts;
			this.gesture = {
				pinch: true, dist: Math.hypot(a.x - b.x, a.y - b.y) || 1, s: this.z.s,
				mid: { x: (a.x + b.x) / 2, y: (a.y + b.y) / 2 },
			};
		} else if (pts.length === 1) {
			this.gesture = { pinch: false, last: pts[0] };
		} else {
			this.gesture = null;
		}
	}

	pointerMove(e) {
		if (!this.pointers.has(e.pointerId) || !this.gesture)
			return;
		const p = this.local(e);
		this.pointers.set(e.pointerId, p);
		const g = this.gesture;
		if (g.pinch) {
			const [a, b] = [...this.pointers.values()];
			const dist = Math.hypot(a.x - b.x, a.y - b.y) || 1;
			const mid = { x: (a.x + b.x) / 2, y: (a.y + b.y) / 2 };
			this.panBy(mid.x - g.mid.x, mid.y - g.mid.y);
			this.setScale(g.s * dist / g.dist, mid.x, mid.y);
			g.mid = mid;
			g.s = this.z.s;
			g.dist = dist;
		} else {
			this.panBy(p.x - g.last.x, p.y - g.last.y);
			g.last = p;
		}
	}

	pointerUp(e) {
		if (!this.pointers.delete(e.pointerId))
			return;
		this.startGesture();
		if (this.pointers.size === 0)
			this.stage.classList.remove('dragging');
	}
}
