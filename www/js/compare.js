/* compare.js — two images side by side: right eye against left, or today
 * against the last visit.
 *
 * A modal <dialog> with two panes. Each pane has an eye (Right, Left, Both,
 * Unknown: those the case has) and a timeline strip of that eye's images,
 * grouped by type (fundus, OCT, slit lamp, other) and ordered by when they
 * were taken (the capture date, else the upload time), oldest first; a
 * press on a strip picks the pane's image. On opening, the panes show the
 * latest right and left image of the same type (the type of the most
 * recent such pair); a case with one eye only shows its last two images
 * of one type.
 *
 * Zoom and pan are synchronised while "Zoom and move together" is ticked:
 * both panes share one view {k, u, v} — k the zoom relative to "fit" (1 =
 * the whole image in its pane), (u, v) the image point at the pane's
 * centre as fractions of its width and height — so the same place of two
 * images of different sizes stays side by side. Mouse wheel (about the
 * pointer), drag, + − 0 keys and buttons, arrow keys on a focused image.
 * zoompan.js reads each pane's wheel, drags and pinches (a pinch zooms
 * about the fingers and does not pan) and loads its display copy.
 * Images come through the proxy (display copy; thumbnails for the strips)
 * as blob: URLs, all revoked when the dialog closes.
 */

import { apiBlob } from './api.js';
import { describe } from './messages.js';
import { EYE_GROUPS, IMAGE_TYPES, TYPE_ORDER, byLine, eyeLabel, imageDateLabel, typeKey, typeLabel, whenOf } from './format.js';
import { StageImage, ZoomPan, fitScale, place, zoomKey } from './zoompan.js';

const MAX_K = 12;

const chrono = (a, b) => (whenOf(a) - whenOf(b)) || String(a.createdAt).localeCompare(String(b.createdAt));

/* The two images to start with: [a, b] (b may be null). */
export function defaultPair(images) {
	const of = (side, type) => images.filter((i) => i.eyeSide === side && (!type || typeKey(i.imageType) === type)).sort(chrono);
	let best = null;
	for (const t of TYPE_ORDER) {
		const r = of('right', t);
		const l = of('left', t);
		if (r.length && l.length) {
			const pair = [r[r.length - 1], l[l.length - 1]];
			const when = Math.min(whenOf(pair[0]), whenOf(pair[1]));
			if (!best || when > best.when)
				best = { pair, when };
		}
	}
	if (best)
		return best.pair;
	const all = images.slice().sort(chrono);
	if (all.length === 0)
		return [null, null];
	const last = all[all.length - 1];
	const same = all.filter((i) => i.eyeSide === last.eyeSide && typeKey(i.imageType) === typeKey(last.imageType));
	if (same.length >= 2)
		return [same[same.length - 2], last];
	const other = all.filter((i) => i.id !== last.id);
	return [other.length ? other[other.length - 1] : null, last];
}

/* Pane name's markup from #pane-template, its ids and accessible names
 * for the side of the dialog it is on (where: "left-hand", "right-hand"). */
function paneElement(name, where) {
	const root = document.getElementById('pane-template').content.firstElementChild.cloneNode(true);
	const id = `pane-${name}`;
	root.id = id;
	root.setAttribute('aria-labelledby', `${id}-title`);
	root.querySelector('.pane-title').id = `${id}-title`;
	const label = root.querySelector('label');
	label.htmlFor = `${id}-eye`;
	label.textContent = `Eye of the ${where} image`;
	root.querySelector('.pane-eye').id = `${id}-eye`;
	root.querySelector('.stage').setAttribute('aria-label',
		`${where[0].toUpperCase()}${where.slice(1)} image: zoom with the wheel or the + and − keys; drag or use the arrow keys to move`);
	return root;
}

class Pane {
	constructor(cmp, root, name) {
		this.cmp = cmp;
		this.root = root;
		this.name = name;
		this.image = null;
		this.w = 0;
		this.h = 0;
		this.own = { k: 1, u: 0.5, v: 0.5 };
		this.title = root.querySelector('.pane-title');
		this.eyeSel = root.querySelector('.pane-eye');
		this.meta = root.querySelector('.pane-meta');
		this.stage = root.querySelector('.stage');
		this.img = root.querySelector('.stage img');
		this.msg = root.querySelector('.stage-msg');
		this.error = root.querySelector('.pane-error');
		this.strip = root.querySelector('.timeline');
		this.photo = new StageImage(this.img);
		/* A pinch zooms about the fingers; moving them does not pan. */
		this.zp = new ZoomPan(this.stage, {
			ready: () => !!this.w,
			zoomBy: (f, x, y) => this.zoomBy(f, x, y),
			panBy: (dx, dy) => this.panBy(dx, dy),
			pinch: (f, x, y) => this.zoomBy(f, x, y),
		});
		this.eyeSel.addEventListener('change', () => this.pickEye(this.eyeSel.value));
		this.img.addEventListener('load', () => this.loaded());
		this.stage.addEventListener('keydown', (e) => this.arrow(e));
	}

	get view() {
		return this.cmp.sync ? this.cmp.shared : this.own;
	}

	/* Shows the eyes the case has in the selector, and side's timeline. */
	setEye(side) {
		const have = EYE_GROUPS.filter((g) => this.cmp.images.some((i) => i.eyeSide === g.side));
		this.eyeSel.replaceChildren(...have.map((g) => {
			const o = document.createElement('option');
			o.value = g.side;
			o.textContent = g.title;
			return o;
		}));
		this.eyeSel.value = side;
		this.side = side;
		this.renderStrip();
	}

	/* Another eye chosen: its latest image, of the other pane's type when it
	 * has one. */
	pickEye(side) {
		const other = this.cmp.other(this).image;
		const list = this.cmp.images.filter((i) => i.eyeSide === side).sort(chrono);
		const same = other ? list.filter((i) => typeKey(i.imageType) === typeKey(other.imageType) && i.id !== other.id) : [];
		const pick = (same.length ? same : list.filter((i) => !other || i.id !== other.id));
		this.setEye(side);
		this.show(pick.length ? pick[pick.length - 1] : list[list.length - 1] || null);
	}

	renderStrip() {
		const label = eyeLabel(this.side);
		this.strip.setAttribute('aria-label', `${label}: images by date`);
		const groups = [];
		for (const t of TYPE_ORDER) {
			const list = this.cmp.images.filter((i) => i.eyeSide === this.side && typeKey(i.imageType) === t).sort(chrono);
			if (list.length === 0)
				continue;
			const g = document.createElement('div');
			g.className = 'tl-group';
			g.dataset.type = t;
			const h = document.createElement('h4');
			h.textContent = IMAGE_TYPES[t];
			const ol = document.createElement('ol');
			for (const image of list) {
				const li = document.createElement('li');
				const b = document.createElement('button');
				b.type = 'button';
				b.className = 'tl-item';
				b.dataset.id = image.id;
				b.setAttribute('aria-label', `${label}, ${typeLabel(image.imageType)}, ${imageDateLabel(image)}`);
				b.setAttribute('aria-pressed', 'false');
				const im = document.createElement('img');
				im.alt = '';
				im.width = 56;
				im.height = 56;
				const url = this.cmp.thumbs.get(image.id);
				if (url)
					im.src = url;
				const d = document.createElement('span');
				d.textContent = imageDateLabel(image);
				b.append(im, d);
				b.addEventListener('click', () => this.show(image));
				li.append(b);
				ol.append(li);
			}
			g.append(h, ol);
			groups.push(g);
		}
		this.strip.replaceChildren(...groups);
		this.mark();
		this.cmp.loadThumbs();
	}

	mark() {
		for (const b of this.strip.querySelectorAll('.tl-item'))
			b.setAttribute('aria-pressed', String(!!this.image && b.dataset.id === this.image.id));
	}

	async show(image) {
		this.photo.release();
		this.image = image;
		this.mark();
		this.error.textContent = '';
		this.img.hidden = true;
		this.w = 0;
		this.h = 0;
		if (!image) {
			this.title.textContent = 'No image';
			this.meta.textContent = '';
			this.msg.textContent = 'No image of this eye.';
			this.msg.hidden = false;
			this.root.dataset.id = '';
			return;
		}
		this.root.dataset.id = image.id;
		this.title.textContent = `${eyeLabel(image.eyeSide)} · ${typeLabel(image.imageType)}`;
		this.meta.textContent = byLine(image);
		this.img.alt = `${eyeLabel(image.eyeSide)}, ${typeLabel(image.imageType)}, ${imageDateLabel(image)}`;
		this.msg.textContent = 'Loading…';
		this.msg.hidden = false;
		await this.photo.load(image.id, (e) => {
			this.msg.hidden = true;
			this.error.textContent = describe(e, 'image');
		});
	}

	loaded() {
		if (!this.photo.shown)
			return;
		this.msg.hidden = true;
		this.img.hidden = false;
		this.w = this.img.naturalWidth;
		this.h = this.img.naturalHeight;
		this.apply();
	}

	/* Geometry for view v: scale s, top-left (x, y), drawn size (W, H). */
	geom(v = this.view) {
		const sw = this.stage.clientWidth;
		const sh = this.stage.clientHeight;
		const fit = fitScale(this.w, this.h, sw, sh);
		const s = fit * v.k;
		const W = this.w * s;
		const H = this.h * s;
		const x = place(W, sw, sw / 2 - v.u * W);
		const y = place(H, sh, sh / 2 - v.v * H);
		return { sw, sh, fit, s, W, H, x, y };
	}

	apply() {
		if (!this.w)
			return;
		const g = this.geom();
		this.img.style.transform = `translate(${g.x}px, ${g.y}px) scale(${g.s})`;
		this.stage.dataset.k = String(this.view.k);
		/* The image point at the pane's centre, as drawn. */
		this.stage.dataset.centre = `${((g.sw / 2 - g.x) / g.W).toFixed(3)},${((g.sh / 2 - g.y) / g.H).toFixed(3)}`;
	}

	/* Zooms by f keeping the stage point (px, py) still (centre if absent). */
	zoomBy(f, px, py) {
		if (!this.w)
			return;
		const v = this.view;
		const g = this.geom();
		const cx = px === undefined ? g.sw / 2 : px;
		const cy = py === undefined ? g.sh / 2 : py;
		const pu = (cx - g.x) / g.W;
		const pv = (cy - g.y) / g.H;
		const k = Math.min(MAX_K, Math.max(1, v.k * f));
		const s = g.fit * k;
		v.u = (g.sw / 2 - (cx - pu * this.w * s)) / (this.w * s);
		v.v = (g.sh / 2 - (cy - pv * this.h * s)) / (this.h * s);
		v.k = k;
		this.clamp();
		this.cmp.redraw(this);
	}

	panBy(dx, dy) {
		if (!this.w)
			return;
		const g = this.geom();
		const v = this.view;
		v.u -= dx / g.W;
		v.v -= dy / g.H;
		this.clamp();
		this.cmp.redraw(this);
	}

	/* Keeps the shared centre where this pane can show it. */
	clamp() {
		const v = this.view;
		const g = this.geom({ k: v.k, u: 0.5, v: 0.5 });
		const hu = g.W > g.sw ? g.sw / (2 * g.W) : 0.5;
		const hv = g.H > g.sh ? g.sh / (2 * g.H) : 0.5;
		v.u = Math.min(1 - hu, Math.max(hu, v.u));
		v.v = Math.min(1 - hv, Math.max(hv, v.v));
	}

	arrow(e) {
		const step = 0.1 * Math.min(this.stage.clientWidth, this.stage.clientHeight);
		const d = { ArrowLeft: [step, 0], ArrowRight: [-step, 0], ArrowUp: [0, step], ArrowDown: [0, -step] }[e.key];
		if (!d || e.altKey || e.ctrlKey || e.metaKey)
			return;
		e.preventDefault();
		e.stopPropagation();
		this.panBy(d[0], d[1]);
	}
}

export class Compare {
	/* hooks: onClosed(). */
	constructor(hooks) {
		this.hooks = hooks;
		this.dlg = document.getElementById('compare');
		this.images = [];
		this.thumbs = new Map();
		this.thumbAbort = null;
		this.shared = { k: 1, u: 0.5, v: 0.5 };
		this.syncBox = document.getElementById('c-sync');
		this.zoomLabel = document.getElementById('c-zoom');
		const a = paneElement('a', 'left-hand');
		const b = paneElement('b', 'right-hand');
		this.dlg.querySelector('.panes').append(a, b);
		this.panes = [new Pane(this, a, 'a'), new Pane(this, b, 'b')];
		this.last = this.panes[0];
		this.syncBox.addEventListener('change', () => this.setSync(this.syncBox.checked));
		document.getElementById('c-close').addEventListener('click', () => this.dlg.close());
		document.getElementById('c-zoom-in').addEventListener('click', () => this.zoomAll(1.5));
		document.getElementById('c-zoom-out').addEventListener('click', () => this.zoomAll(1 / 1.5));
		document.getElementById('c-fit').addEventListener('click', () => this.fitAll());
		this.dlg.addEventListener('keydown', (e) => this.key(e));
		this.dlg.addEventListener('close', () => this.closed());
		window.addEventListener('resize', () => this.dlg.open && this.redraw(null));
	}

	get sync() {
		return this.syncBox.checked;
	}

	get isOpen() {
		return this.dlg.open;
	}

	other(p) {
		return p === this.panes[0] ? this.panes[1] : this.panes[0];
	}

	/* Opens on images (the case's image resources). */
	open(images) {
		this.images = images.slice();
		this.shared = { k: 1, u: 0.5, v: 0.5 };
		for (const p of this.panes)
			p.own = { k: 1, u: 0.5, v: 0.5 };
		const [a, b] = defaultPair(this.images);
		this.dlg.showModal();
		this.panes[0].setEye(a ? a.eyeSide : 'right');
		this.panes[0].show(a);
		this.panes[1].setEye(b ? b.eyeSide : 'left');
		this.panes[1].show(b);
		this.redraw(null);
	}

	/* The case changed (an image was deleted) while open. */
	update(images) {
		this.images = images.slice();
		for (const p of this.panes) {
			if (p.image && !images.some((i) => i.id === p.image.id))
				p.pickEye(p.side);
			else
				p.renderStrip();
		}
	}

	setSync(on) {
		if (on)
			this.shared = { ...this.last.own };
		else
			for (const p of this.panes)
				p.own = { ...this.shared };
		this.redraw(null);
	}

	/* Redraws after pane `from` changed the view (both when synchronised). */
	redraw(from) {
		if (from)
			this.last = from;
		for (const p of this.panes)
			if (this.sync || !from || p === from)
				p.apply();
		const k = (from || this.last).view.k;
		this.zoomLabel.textContent = `${Math.round(k * 100)} %`;
	}

	zoomAll(f) {
		if (this.sync)
			this.last.zoomBy(f);
		else
			for (const p of this.panes)
				p.zoomBy(f);
	}

	fitAll() {
		this.shared = { k: 1, u: 0.5, v: 0.5 };
		for (const p of this.panes)
			p.own = { k: 1, u: 0.5, v: 0.5 };
		this.redraw(null);
	}

	key(e) {
		if (e.altKey || e.ctrlKey || e.metaKey)
			return;
		const t = e.target;
		if (t && (t.tagName === 'SELECT' || (t.tagName === 'INPUT' && t.type !== 'checkbox')))
			return;
		const f = zoomKey(e);
		if (f) this.zoomAll(f);
		else if (f === 0) this.fitAll();
		else return;
		e.preventDefault();
	}

	/* Thumbnails for the strips, two at a time, each fetched once. */
	async loadThumbs() {
		if (this.thumbLoading)
			return;
		this.thumbLoading = true;
		if (!this.thumbAbort)
			this.thumbAbort = new AbortController();
		const ctl = this.thumbAbort;
		try {
			for (;;) {
				const want = [...this.dlg.querySelectorAll('.tl-item')].map((b) => b.dataset.id)
					.filter((id, i, a) => a.indexOf(id) === i && !this.thumbs.has(id));
				if (want.length === 0 || ctl.signal.aborted)
					return;
				await Promise.all(want.slice(0, 2).map(async (id) => {
					try {
						const blob = await apiBlob(`/${encodeURIComponent(id)}/proxy?thumbnail=true`, { signal: ctl.signal });
						if (ctl.signal.aborted)
							return;
						const url = URL.createObjectURL(blob);
						this.thumbs.set(id, url);
						for (const im of this.dlg.querySelectorAll(`.tl-item[data-id="${id}"] img`))
							im.src = url;
					} catch {
						this.thumbs.set(id, '');
					}
				}));
			}
		} finally {
			this.thumbLoading = false;
		}
	}

	closed() {
		if (this.thumbAbort)
			this.thumbAbort.abort();
		this.thumbAbort = null;
		for (const p of this.panes) {
			p.photo.release();
			p.image = null;
			p.zp.reset();
		}
		for (const url of this.thumbs.values())
			if (url)
				URL.revokeObjectURL(url);
		this.thumbs.clear();
		for (const p of this.panes)
			p.strip.replaceChildren();
		this.hooks.onClosed();
	}
}
