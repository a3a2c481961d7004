/* gallery.js — a case's images as thumbnails grouped by eye.
 *
 * Groups come in a fixed order: Right eye (OD), Left eye (OS), Both, Unknown
 * (empty groups are not shown); inside a group images follow the case's
 * `order`. Each thumbnail is fetched only when its tile comes near the
 * viewport (IntersectionObserver; the <img> also carries loading="lazy"),
 * through the API's proxy with the bearer token, and shown from a blob: URL.
 * Blob URLs are revoked when their tile goes (delete, another case, sign
 * out). At most THUMB_CONCURRENCY thumbnails load at once. Under each
 * thumbnail: the type, then who added it and when it was taken ("by Dr …
 * · date", or "uploaded …" when the service had no capture date). The
 * thumbnail box is square before and after its image arrives (no layout
 * shift); the image is laid over it, whole (object-fit: contain), portrait
 * or landscape.
 */

import { apiBlob, Cancelled } from './api.js';
import { EYE_GROUPS, eyeLabel, imageDateLabel, personLabel, typeLabel } from './format.js';

const THUMB_CONCURRENCY = 4;

export class Gallery {
	/* root: the element to render into; template: the <template> of a tile;
	 * onOpen(id): a thumbnail was activated; onDelete(id): a tile's delete
	 * button was pressed. */
	constructor({ root, template, onOpen, onDelete }) {
		this.root = root;
		this.template = template;
		this.onOpen = onOpen;
		this.onDelete = onDelete;
		this.images = [];
		this.tiles = new Map(); /* id → {li, img, button} */
		this.blobUrls = new Map(); /* id → blob: URL */
		this.pending = []; /* ids waiting for a thumbnail slot */
		this.loading = 0;
		this.generation = 0;
		this.abort = new AbortController();
		this.showDelete = false;
		this.observer = new IntersectionObserver((entries) => this.onVisible(entries), { rootMargin: '200px 0px' });
	}

	/* Replaces the whole content with images (an array of image resources). */
	show(images) {
		this.clear();
		this.images = images.slice();
		this.render();
	}

	/* Adds one image (a finished upload). */
	add(image) {
		this.images = this.images.filter((i) => i.id !== image.id);
		this.images.push(image);
		this.render();
	}

	/* Removes one image, revoking its thumbnail URL. */
	remove(id) {
		this.images = this.images.filter((i) => i.id !== id);
		this.dropTile(id);
		this.render();
	}

	/* Empties the gallery: cancels thumbnail fetches, revokes every URL. */
	clear() {
		this.abort.abort();
		this.abort = new AbortController();
		this.generation++;
		this.observer.disconnect();
		for (const id of [...this.tiles.keys()])
			this.dropTile(id);
		this.pending = [];
		this.loading = 0;
		this.images = [];
		this.root.replaceChildren();
	}

	setShowDelete(on) {
		this.showDelete = on;
		for (const t of this.tiles.values())
			t.del.hidden = !on;
	}

	/* The images in viewing order: group by group, by order inside one. */
	ordered() {
		const out = [];
		for (const g of EYE_GROUPS)
			out.push(...this.sorted(g.side));
		return out;
	}

	sorted(side) {
		const inGroup = (i) => (EYE_GROUPS.some((g) => g.side === i.eyeSide) ? i.eyeSide : 'unknown') === side;
		return this.images.filter(inGroup).sort((a, b) =>
			(a.order - b.order) || String(a.createdAt).localeCompare(String(b.createdAt)));
	}

	/* The thumbnail button of an image, to move the focus back to it. */
	button(id) {
		const t = this.tiles.get(id);
		return t ? t.button : null;
	}

	count() {
		return this.images.length;
	}

	dropTile(id) {
		const t = this.tiles.get(id);
		if (t) {
			this.observer.unobserve(t.li);
			t.li.remove();
			this.tiles.delete(id);
		}
		const url = this.blobUrls.get(id);
		if (url) {
			URL.revokeObjectURL(url);
			this.blobUrls.delete(id);
		}
		this.pending = this.pending.filter((x) => x !== id);
	}

	/* Re-renders the group sections, reusing existing tiles (and their
	 * loaded thumbnails). */
	render() {
		const sections = [];
		for (const g of EYE_GROUPS) {
			const list = this.sorted(g.side);
			if (list.length === 0)
				continue;
			const sec = document.createElement('section');
			sec.className = 'group';
			sec.dataset.eye = g.side;
			const h = document.createElement('h3');
			h.id = `group-${g.side}`;
			sec.setAttribute('aria-labelledby', h.id);
			const title = document.createElement('span');
			title.textContent = g.title;
			const count = document.createElement('span');
			count.className = 'count';
			count.textContent = list.length === 1 ? '1 image' : `${list.length} images`;
			h.append(title, count);
			const ul = document.createElement('ul');
			ul.className = 'tiles';
			for (const img of list)
				ul.append(this.tile(img));
			sec.append(h, ul);
			sections.push(sec);
		}
		if (sections.length === 0) {
			const p = document.createElement('p');
			p.className = 'empty';
			p.textContent = 'No images in this case yet.';
			sections.push(p);
		}
		this.root.replaceChildren(...sections);
	}

	tile(image) {
		const have = this.tiles.get(image.id);
		if (have) {
			this.fill(have, image);
			return have.li;
		}
		const li = this.template.content.firstElementChild.cloneNode(true);
		const t = {
			li,
			button: li.querySelector('.thumb'),
			img: li.querySelector('img'),
			msg: li.querySelector('.thumb-msg'),
			del: li.querySelector('.tile-delete'),
		};
		li.dataset.id = image.id;
		t.button.addEventListener('click', () => this.onOpen(image.id));
		t.del.addEventListener('click', () => this.onDelete(image.id));
		this.fill(t, image);
		this.tiles.set(image.id, t);
		this.observer.observe(li);
		return li;
	}

	fill(t, image) {
		const type = typeLabel(image.imageType);
		const when = imageDateLabel(image);
		t.li.querySelector('.tile-type').textContent = type;
		t.li.querySelector('.tile-who').textContent = image.uploader ? `by ${personLabel(image.uploader)} · ` : '';
		const time = t.li.querySelector('.tile-date');
		time.textContent = when;
		const iso = image.capturedAt || image.createdAt;
		if (iso)
			time.dateTime = iso;
		t.li.querySelector('.tile-desc').textContent = image.description || '';
		t.button.setAttribute('aria-label', `Open image: ${eyeLabel(image.eyeSide)}, ${type}, ${when}`);
		t.del.setAttribute('aria-label', `Delete image: ${eyeLabel(image.eyeSide)}, ${type}, ${when}`);
		t.del.hidden = !this.showDelete;
	}

	onVisible(entries) {
		for (const e of entries) {
			if (!e.isIntersecting)
				continue;
			this.observer.unobserve(e.target);
			const id = e.target.dataset.id;
			if (id && !this.blobUrls.has(id) && !this.pending.includes(id))
				this.pending.push(id);
		}
		this.pump();
	}

	pump() {
		while (this.loading < THUMB_CONCURRENCY && this.pending.length > 0) {
			const id = this.pending.shift();
			const gen = this.generation;
			this.loading++;
			this.loadThumb(id, this.abort.signal).finally(() => {
				if (gen !== this.generation)
					return;
				this.loading--;
				this.pump();
			});
		}
	}

	async loadThumb(id, signal) {
		try {
			const blob = await apiBlob(`/${encodeURIComponent(id)}/proxy?thumbnail=true`, { signal });
			const t = this.tiles.get(id);
			if (signal.aborted || !t)
				return;
			const url = URL.createObjectURL(blob);
			this.blobUrls.set(id, url);
			t.img.addEventListener('load', () => t.button.classList.add('loaded'), { once: true });
			t.img.src = url;
		} catch (e) {
			if (e instanceof Cancelled || signal.aborted)
				return;
			const t = this.tiles.get(id);
			if (t)
				t.msg.textContent = 'Not available';
		}
	}
}
