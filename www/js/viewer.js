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
 * zoompan.js reads the wheel, drags and pinches and fetches the image; the
 * transform (scale s, top-left x, y) is kept here.
 */

import { describe } from './messages.js';
import { byLine, eyeLabel, imageDateLabel, sizeLabel, typeLabel } from './format.js';
import { StageImage, ZoomPan, fitScale, place, zoomKey } from './zoompan.js';

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
		this.photo = new StageImage(this.img);
		this.z = { s: 1, x: 0, y: 0, fit: 1, w: 0, h: 0, atFit: true };
		this.zp = new ZoomPan(this.stage, {
			ready: () => !this.img.hidden,
			zoomBy: (f, x, y) => this.zoomBy(f, x, y),
			panBy: (dx, dy) => this.panBy(dx, dy),
			/* The image follows the fingers: moved with their midpoint,
			 * zoomed about it. */
			pinch: (f, x, y, dx, dy) => {
				this.panBy(dx, dy);
				this.setScale(this.z.s * f, x, y);
			},
			doubleClick: (x, y) => this.doubleClick(x, y),
		});
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
		this.photo.release();
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
		await this.photo.load(image.id, (e) => {
			this.loadingMsg.hidden = true;
			this.error.textContent = describe(e, 'image');
		});
	}

	closed() {
		const last = this.current();
		this.photo.release();
		this.index = -1;
		this.zp.reset();
		this.hooks.onClosed(last ? last.id : null);
	}

	setDeleteVisible(on) {
		this.btn.del.hidden = !on;
	}

	key(e) {
		if (e.altKey || e.ctrlKey || e.metaKey)
			return;
		const f = zoomKey(e);
		if (e.key === 'ArrowLeft') this.go(-1);
		else if (e.key === 'ArrowRight') this.go(1);
		else if (f) this.zoomBy(f);
		else if (f === 0) this.fit();
		else return;
		e.preventDefault();
	}

	/* --- zoom and pan ------------------------------------------------- */

	imageLoaded() {
		if (!this.photo.shown)
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
		return fitScale(this.z.w, this.z.h, sw, sh);
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
		this.z.x = place(w, sw, this.z.x);
		this.z.y = place(h, sh, this.z.y);
		this.img.style.transform = `translate(${this.z.x}px, ${this.z.y}px) scale(${this.z.s})`;
		this.zoomLabel.textContent = `${Math.round(this.z.s * 100)} %`;
		this.stage.dataset.zoom = String(this.z.s);
	}

	/* Double click or tap: zoom in about (x, y) from "fit", else back to it. */
	doubleClick(x, y) {
		if (this.z.atFit)
			this.setScale(Math.max(this.z.fit * 2.5, 1), x, y);
		else
			this.fit();
	}
}
