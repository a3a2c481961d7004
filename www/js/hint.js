/* hint.js — which eye a file probably shows, offered to the person who
 * uploads it and never applied without them.
 *
 * Two sources: the file name (fundus cameras and people write OD/OS/OU,
 * right/left, R/L as a separate word) and, for a JPEG, the EXIF
 * ImageDescription (0x010E) and UserComment (0x9286) texts, where several
 * cameras write the eye. Only the first 128 KiB of the file are read.
 */

const WORDS = [
	{ side: 'right', re: /(^|[^a-z])(od|right|rechts|droit|r)([^a-z]|$)/i },
	{ side: 'left', re: /(^|[^a-z])(os|left|links|gauche|l)([^a-z]|$)/i },
	{ side: 'both', re: /(^|[^a-z])(ou|both)([^a-z]|$)/i },
];

/* The side a text names, or null when it names none or more than one. */
export function sideInText(text) {
	if (!text)
		return null;
	const found = WORDS.filter((w) => w.re.test(text)).map((w) => w.side);
	return found.length === 1 ? found[0] : null;
}

function exifTexts(buf) {
	const v = new DataView(buf);
	const out = [];
	if (v.byteLength < 4 || v.getUint16(0) !== 0xffd8)
		return out;
	let p = 2;
	while (p + 4 <= v.byteLength) {
		const marker = v.getUint16(p);
		const len = v.getUint16(p + 2);
		if ((marker & 0xff00) !== 0xff00 || marker === 0xffda)
			break;
		if (marker === 0xffe1 && p + 10 <= v.byteLength && v.getUint32(p + 4) === 0x45786966) {
			readTiff(v, p + 10, Math.min(v.byteLength, p + 2 + len), out);
			break;
		}
		p += 2 + len;
	}
	return out;
}

function readTiff(v, base, end, out) {
	if (base + 8 > end)
		return;
	const le = v.getUint16(base) === 0x4949;
	const u16 = (o) => v.getUint16(o, le);
	const u32 = (o) => v.getUint32(o, le);
	const text = (off, n) => {
		let s = '';
		for (let i = 0; i < n && off + i < end; i++) {
			const c = v.getUint8(off + i);
			if (c === 0)
				break;
			s += String.fromCharCode(c);
		}
		return s;
	};
	const ifd = (at, depth) => {
		if (depth > 2 || at + 2 > end)
			return;
		const n = u16(at);
		for (let i = 0; i < n; i++) {
			const e = at + 2 + i * 12;
			if (e + 12 > end)
				return;
			const tag = u16(e);
			const count = u32(e + 4);
			const data = count > 4 ? base + u32(e + 8) : e + 8;
			if (tag === 0x010e)
				out.push(text(data, Math.min(count, 512)));
			else if (tag === 0x9286 && count > 8)
				out.push(text(data + 8, Math.min(count - 8, 512)));
			else if (tag === 0x8769)
				ifd(base + u32(e + 8), depth + 1);
		}
	};
	ifd(base + u32(base + 4), 0);
}

/* Resolves to {side, from: 'file name' | 'photo description'} or null. */
export async function eyeHint(file) {
	const byName = sideInText(String(file.name || '').replace(/\.[a-z0-9]+$/i, ''));
	if (byName)
		return { side: byName, from: 'file name' };
	try {
		const buf = await file.slice(0, 128 * 1024).arrayBuffer();
		for (const t of exifTexts(buf)) {
			const s = sideInText(t);
			if (s)
				return { side: s, from: 'photo description' };
		}
	} catch {
		/* unreadable: no hint */
	}
	return null;
}
