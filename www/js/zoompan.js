/* zoompan.js — what the viewer and the compare view share: an image shown
 * on a "stage" that can be zoomed and moved, and that image fetched as a
 * blob: URL.
 *
 * ZoomPan reads the input on one stage: the mouse wheel (zoom about the
 * pointer), a drag with the mouse, a pen or one finger (move), a
 * two-finger pinch (zoom about the fingers' midpoint, which may move too)
 * and, when asked, a double click. It turns each into a call of its
 * owner's hooks, in CSS pixels relative to the stage's top-left corner.
 * The transform itself stays with the owner because the two keep it in
 * different terms: the viewer an absolute scale (100 % = one image pixel
 * per CSS pixel, kept across a window resize), the compare view a view
 * relative to "fit" that two panes of different image sizes share. What
 * both do with a transform is here too: the scale that fits (fitScale),
 * where the image goes along an axis (place), and the zoom keys (zoomKey).
 *
 * StageImage puts an image's display copy into an <img>: fetched through
 * the proxy with the bearer token (api.js) under an AbortController, shown
 * as a blob: URL, and released — the fetch aborted, the URL revoked, the
 * src removed — when the owner moves on or closes.
 */

import { apiBlob, Cancelled } from './api.js';

/* The scale that shows a w × h image whole on an sw × sh stage; 1 while a
 * size is unknown (0). */
export function fitScale(w, h, sw, sh) {
	if (!w || !h || !sw || !sh)
		return 1;
	return Math.min(sw / w, sh / h);
}

/* The offset along one axis of an image drawn `size` long on a stage
 * `room` long, asked to be at `pos`: centred when it fits, else as close
 * to pos as keeps the stage covered. */
export function place(size, room, pos) {
	return size <= room ? (room - size) / 2 : Math.min(0, Math.max(room - size, pos));
}

/* The zoom key event e asks for: a factor (+ = − _), 0 for "fit" (0), or
 * null when it is no zoom key. Modifiers are the caller's business. */
export function zoomKey(e) {
	const k = e.key;
	if (k === '+' || k === '=')
		return 1.5;
	if (k === '-' || k === '_')
		return 1 / 1.5;
	if (k === '0')
		return 0;
	return null;
}

export class ZoomPan {
	/* Listens on stage. hooks:
	 *   ready() → true while an image is shown (input is ignored otherwise);
	 *   zoomBy(f, x, y): the wheel asks to zoom by f keeping (x, y) still;
	 *   panBy(dx, dy): a drag moved by (dx, dy);
	 *   pinch(f, x, y, dx, dy): the fingers' distance changed by f about
	 *     their midpoint (x, y), which moved by (dx, dy) since the last call;
	 *   doubleClick(x, y), optional: listened to only when given. */
	constructor(stage, hooks) {
		this.stage = stage;
		this.hooks = hooks;
		this.pointers = new Map();
		this.gesture = null;
		stage.addEventListener('wheel', (e) => this.wheel(e), { passive: false });
		stage.addEventListener('pointerdown', (e) => this.pointerDown(e));
		stage.addEventListener('pointermove', (e) => this.pointerMove(e));
		stage.addEventListener('pointerup', (e) => this.pointerUp(e));
		stage.addEventListener('pointercancel', (e) => this.pointerUp(e));
		if (hooks.doubleClick)
			stage.addEventListener('dblclick', (e) => {
				const p = this.local(e);
				hooks.doubleClick(p.x, p.y);
			});
	}

	/* Forgets the pointers down (the view closed under them). */
	reset() {
		this.pointers.clear();
		this.gesture = null;
	}

	/* Event e's position on the stage. */
	local(e) {
		const r = this.stage.getBoundingClientRect();
		return { x: e.clientX - r.left, y: e.clientY - r.top };
	}

	wheel(e) {
		if (!this.hooks.ready())
			return;
		e.preventDefault();
		const unit = e.deltaMode === 1 ? 0.05 : e.deltaMode === 2 ? 1 : 0.0015;
		const p = this.local(e);
		this.hooks.zoomBy(Math.exp(-e.deltaY * unit), p.x, p.y);
	}

	pointerDown(e) {
		if (!this.hooks.ready() || (e.pointerType === 'mouse' && e.button !== 0))
			return;
		this.stage.setPointerCapture(e.pointerId);
		this.pointers.set(e.pointerId, this.local(e));
		this.startGesture();
		this.stage.classList.add('dragging');
	}

	/* A pinch with two pointers or more (the first two count), a drag with
	 * one, nothing with none. */
	startGesture() {
		const pts = [...this.pointers.values()];
		if (pts.length >= 2) {
			const [a, b] = pts;
			this.gesture = {
				pinch: true, dist: Math.hypot(a.x - b.x, a.y - b.y) || 1,
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
			this.hooks.pinch(dist / g.dist, mid.x, mid.y, mid.x - g.mid.x, mid.y - g.mid.y);
			g.mid = mid;
			g.dist = dist;
		} else {
			this.hooks.panBy(p.x - g.last.x, p.y - g.last.y);
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

export class StageImage {
	constructor(img) {
		this.img = img;
		this.url = null;
		this.abort = null;
	}

	/* Fetches image id's display copy and sets it as the <img>'s source
	 * (its load event follows). onError(e) gets a failure, but not a fetch
	 * cancelled by release() or by the page. Call release() first when
	 * another image was shown. */
	async load(id, onError) {
		const ctl = new AbortController();
		this.abort = ctl;
		try {
			const blob = await apiBlob(`/${encodeURIComponent(id)}/proxy`, { signal: ctl.signal });
			if (ctl.signal.aborted)
				return;
			this.url = URL.createObjectURL(blob);
			this.img.src = this.url;
		} catch (e) {
			if (e instanceof Cancelled || ctl.signal.aborted)
				return;
			onError(e);
		}
	}

	/* True from the moment the blob: URL is the <img>'s source until
	 * release(): a load event at another time is not this image's. */
	get shown() {
		return this.url !== null;
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
}
