// Hostile images, made byte by byte at run time (nothing binary is
// committed). Each function documents what it builds and why it is hostile.

import { randomBytes } from 'node:crypto';
import { createDeflate, deflateRawSync, deflateSync } from 'node:zlib';
import { crc32, makeImage } from '../integration/lib.mjs';

const u16 = (v) => { const b = Buffer.alloc(2); b.writeUInt16BE(v); return b; };
const u32 = (v) => { const b = Buffer.alloc(4); b.writeUInt32BE(v >>> 0); return b; };

// ---- JPEG ---------------------------------------------------------------------

const seg = (marker, payload) => Buffer.concat([Buffer.from([0xff, marker]), u16(payload.length + 2), payload]);

// JPEG segments: [{marker, buf}] (SOS carries its entropy-coded data).
export function jpegSegments(jpg) {
	const out = [];
	let i = 2;
	while (i < jpg.length) {
		const m = jpg[i + 1];
		if (m === 0xd9) { out.push({ marker: m, buf: jpg.subarray(i, i + 2) }); break; }
		const len = jpg.readUInt16BE(i + 2);
		if (m === 0xda) {
			let j = i + 2 + len;
			while (!(jpg[j] === 0xff && jpg[j + 1] !== 0 && !(jpg[j + 1] >= 0xd0 && jpg[j + 1] <= 0xd7))) j++;
			out.push({ marker: m, buf: jpg.subarray(i, j) });
			i = j;
		} else {
			out.push({ marker: m, buf: jpg.subarray(i, i + 2 + len) });
			i += 2 + len;
		}
	}
	return out;
}

// A small JPEG whose SOF claims width×height: the header says "huge", the
// file is a few KB (a decompression bomb by declaration).
export function jpegWithHeaderDims(width, height) {
	const jpg = Buffer.from(makeImage(64, 48, 'jpg'));
	for (const s of jpegSegments(jpg)) {
		if (s.marker >= 0xc0 && s.marker <= 0xc2) {
			s.buf.writeUInt16BE(height, 5);
			s.buf.writeUInt16BE(width, 7);
		}
	}
	return jpg;
}

// A progressive JPEG with n + the original scans: its last scan repeated n
// times ("thousands of scans"). libjpeg takes each as a scan to decode.
export function jpegManyScans(n) {
	const jpg = makeImage(64, 64, 'jpg', ['-interlace', 'Plane']);
	const segs = jpegSegments(jpg);
	const sos = segs.filter((s) => s.marker === 0xda);
	const last = sos[sos.length - 1].buf;
	const body = segs.slice(0, -1).map((s) => s.buf);
	return Buffer.concat([Buffer.from([0xff, 0xd8]), ...body, ...Array(n).fill(last), Buffer.from([0xff, 0xd9])]);
}

// Bits into bytes, with JPEG's 0xFF 0x00 stuffing; pads with 1s.
class BitWriter {
	constructor() { this.bytes = []; this.acc = 0; this.n = 0; }
	put(v, n) {
		for (let i = n - 1; i >= 0; i--) {
			this.acc = (this.acc << 1) | ((v >> i) & 1);
			if (++this.n === 8) {
				this.bytes.push(this.acc);
				if (this.acc === 0xff) this.bytes.push(0);
				this.acc = 0;
				this.n = 0;
			}
		}
	}
	flush() { while (this.n) this.put(1, 1); return Buffer.from(this.bytes); }
}

// A valid progressive greyscale JPEG of side×side pixels with 883 scans —
// under libjpeg's/ImageMagick's limit of about a thousand — every one of
// which covers the whole image: one DC scan, then for each of the 63 AC
// coefficients a first scan (Al = 13) and 13 refinement scans. All
// coefficients are zero, so each scan is a handful of end-of-band runs and
// the file stays small (about 350 KB at 10000×10000), but the decoder walks
// every block of the image in every scan: seconds to minutes of CPU for one
// request. The time goes inside libjpeg, where ImageMagick never checks its
// time limit.
//
// components = 4 makes it a CMYK JPEG (no Adobe marker: libjpeg takes four
// components as CMYK), with the AC scans per component, so coefficients = 15
// gives 841 scans. polaimg's own JPEG decoder (src/jpegdec.c) refuses a
// file past 100 scans as it reads them; CMYK is left to ImageMagick, whose
// libjpeg walks all of them.
export function jpegSlowProgressive(side, coefficients = 63, components = 1) {
	const blocks = Math.ceil(side / 8) ** 2;
	const ids = Array.from({ length: components }, (_, i) => i + 1);
	const dqt = seg(0xdb, Buffer.from([0, ...Array(64).fill(1)]));
	const sof = seg(0xc2, Buffer.concat([Buffer.from([8]), u16(side), u16(side), Buffer.from([components]),
		Buffer.from(ids.flatMap((id) => [id, 0x11, 0]))]));
	// DC table: one code '0' for category 0. AC table: EOB runs r = 0..14, 4-bit codes.
	const dhtDc = seg(0xc4, Buffer.from([0x00, 1, ...Array(15).fill(0), 0]));
	const dhtAc = seg(0xc4, Buffer.from([0x10, 0, 0, 0, 15, ...Array(12).fill(0),
		...Array.from({ length: 15 }, (_, r) => r << 4)]));
	const sos = (cs, ss, se, ah, al) => seg(0xda, Buffer.from([cs.length, ...cs.flatMap((id) => [id, 0x00]),
		ss, se, (ah << 4) | al]));
	const dc = new BitWriter();
	for (let i = 0; i < blocks * components; i++) dc.put(0, 1);
	const eob = new BitWriter();
	for (let rem = blocks; rem > 0;) {
		const run = Math.min(rem, 32767);
		const r = 31 - Math.clz32(run);
		eob.put(r, 4);
		if (r) eob.put(run - (1 << r), r);
		rem -= run;
	}
	const ac = eob.flush();
	const parts = [Buffer.from([0xff, 0xd8]), dqt, sof, dhtDc, dhtAc, sos(ids, 0, 0, 0, 0), dc.flush()];
	for (const id of ids) {
		for (let k = 1; k <= coefficients; k++) {
			parts.push(sos([id], k, k, 0, 13), ac);
			for (let a = 13; a > 0; a--) parts.push(sos([id], k, k, a, a - 1), ac);
		}
	}
	parts.push(Buffer.from([0xff, 0xd9]));
	return Buffer.concat(parts);
}

// A valid JPEG that is also an HTML document with a script: the markup sits
// in a COM segment right after SOI, so a browser sniffing the first bytes
// could take it for HTML.
export function jpegHtmlPolyglot() {
	const jpg = makeImage(120, 90, 'jpg');
	const html = Buffer.from('<html><head><title>x</title></head><body><script>document.title="polyglot";' +
		'alert(document.cookie)</script><!--');
	return Buffer.concat([jpg.subarray(0, 2), seg(0xfe, html), jpg.subarray(2)]);
}

// ---- PNG --------------------------------------------------------------------------

const chunk = (type, data) => {
	const td = Buffer.concat([Buffer.from(type, 'latin1'), data]);
	return Buffer.concat([u32(data.length), td, u32(crc32(td))]);
};

// A PNG whose IDAT really inflates to side×side grey pixels (all zero): a
// true decompression bomb of a few hundred KB, within max_pixels or not as
// side decides.
export async function pngRealBomb(side) {
	const ihdr = Buffer.concat([u32(side), u32(side), Buffer.from([8, 0, 0, 0, 0])]);
	// (side + 1) * side zero bytes (filter byte 0 + a zero row each), deflated
	// a megabyte at a time.
	const z = createDeflate({ level: 9 });
	const chunks = [];
	z.on('data', (c) => chunks.push(c));
	const done = new Promise((resolve, reject) => { z.on('end', resolve); z.on('error', reject); });
	const zero = Buffer.alloc(1 << 20);
	for (let left = (side + 1) * side; left > 0; left -= zero.length) {
		if (!z.write(left >= zero.length ? zero : zero.subarray(0, left)))
			await new Promise((r) => z.once('drain', r));
	}
	z.end();
	await done;
	const idat = Buffer.concat(chunks);
	return Buffer.concat([Buffer.from('\x89PNG\r\n\x1a\n', 'latin1'), chunk('IHDR', ihdr),
		chunk('IDAT', idat), chunk('IEND', Buffer.alloc(0))]);
}

// A small real PNG with a zTXt chunk that inflates to `mb` MiB of text
// (a metadata bomb in front of the pixels).
export function pngGiantZtxt(mb) {
	const png = Buffer.from(makeImage(64, 48, 'png'));
	const text = deflateSync(Buffer.alloc(mb << 20, 0x41), { level: 9 });
	const z = chunk('zTXt', Buffer.concat([Buffer.from('Comment\0\0', 'latin1'), text]));
	// IHDR is 8 + 25 bytes from the start; insert after it.
	return Buffer.concat([png.subarray(0, 33), z, png.subarray(33)]);
}

// ---- TIFF -------------------------------------------------------------------------

// A big-endian TIFF of `count` 1×1 grey images chained by their next-IFD
// offsets (loop: the last IFD points back at the first). With declared
// width×height in the first IFD, it is also a bomb by declaration.
export function tiffManyIfds(count, { loop = false, width = 1, height = 1 } = {}) {
	const entries = (w, h, stripOff) => [
		[256, 4, 1, w], [257, 4, 1, h], [258, 3, 1, 8], [259, 3, 1, 1], [262, 3, 1, 1],
		[273, 4, 1, stripOff], [277, 3, 1, 1], [278, 4, 1, h], [279, 4, 1, 1],
	];
	const ifdSize = 2 + 9 * 12 + 4;
	const first = 8;
	const pixel = first + count * ifdSize;  // one shared strip byte
	const parts = [Buffer.from('MM\0\x2a', 'latin1'), u32(first)];
	for (let i = 0; i < count; i++) {
		const e = entries(i === 0 ? width : 1, i === 0 ? height : 1, pixel);
		const b = Buffer.alloc(ifdSize);
		b.writeUInt16BE(e.length, 0);
		e.forEach(([tag, type, n, v], j) => {
			const o = 2 + j * 12;
			b.writeUInt16BE(tag, o);
			b.writeUInt16BE(type, o + 2);
			b.writeUInt32BE(n, o + 4);
			if (type === 3) b.writeUInt16BE(v, o + 8); else b.writeUInt32BE(v, o + 8);
		});
		const next = i + 1 < count ? first + (i + 1) * ifdSize : (loop ? first : 0);
		b.writeUInt32BE(next, 2 + e.length * 12);
		parts.push(b);
	}
	parts.push(Buffer.from([0x80]));
	return Buffer.concat(parts);
}

// ---- scripts dressed as images ----------------------------------------------------

export const MARKER_DIR = '/tmp';

// ImageTragick payloads; each would create or read a file if a coder ran it.
export function imageTragick(marker) {
	return {
		mvg: Buffer.from(`push graphic-context\nviewbox 0 0 640 480\n` +
			`fill 'url(https://127.0.0.1/x.jpg"|touch "${marker}-mvg)'\npop graphic-context\n`),
		msl: Buffer.from(`<?xml version="1.0" encoding="UTF-8"?>\n<image>\n<read filename="label:pwned"/>\n` +
			`<write filename="${marker}-msl"/>\n</image>\n`),
		svgXxe: Buffer.from(`<?xml version="1.0" standalone="no"?>\n<!DOCTYPE svg [\n` +
			`<!ENTITY xxe SYSTEM "file:///etc/passwd">\n]>\n<svg xmlns="http://www.w3.org/2000/svg" ` +
			`width="100" height="100"><text x="0" y="20">&xxe;</text>` +
			`<image href="file://${marker}-svg" width="1" height="1"/></svg>\n`),
		// The same MVG behind JPEG magic bytes: sniffed as JPEG, so it reaches
		// ImageMagick — but with the JPEG coder forced, never the MVG one.
		mvgAsJpeg: Buffer.concat([Buffer.from([0xff, 0xd8, 0xff, 0xe0]),
			Buffer.from(`\npush graphic-context\nviewbox 0 0 640 480\nimage over 0,0 0,0 'ephemeral:${marker}-eph'\n` +
				`fill 'url(https://127.0.0.1/x.jpg"|touch "${marker}-mvg2)'\npop graphic-context\n`)]),
		// MSL behind PNG magic bytes.
		mslAsPng: Buffer.concat([Buffer.from('\x89PNG\r\n\x1a\n', 'latin1'),
			Buffer.from(`<?xml version="1.0"?><image><read filename="label:x"/><write filename="${marker}-msl2"/></image>`)]),
	};
}

// ---- DICOM --------------------------------------------------------------------

// One data element in explicit VR little endian: tag [group, element], VR,
// value (a Buffer, or a string padded to even length: UI with NUL, others
// with a space). len: the length field, when it must lie (0xffffffff:
// undefined, for a sequence or item).
const LONG_VRS = new Set(['OB', 'OD', 'OF', 'OL', 'OW', 'SQ', 'UC', 'UN', 'UR', 'UT']);
function dcmEl([g, e], vr, value = Buffer.alloc(0), len = null) {
	let v = value;
	if (typeof v === 'string') v = Buffer.from(v.length % 2 ? v + (vr === 'UI' ? '\0' : ' ') : v, 'latin1');
	const n = len ?? v.length;
	const t = Buffer.alloc(4);
	t.writeUInt16LE(g, 0);
	t.writeUInt16LE(e, 2);
	let h;
	if (LONG_VRS.has(vr)) {
		h = Buffer.alloc(8);
		h.write(vr, 0, 'latin1');
		h.writeUInt32LE(n >>> 0, 4);
	} else {
		h = Buffer.alloc(4);
		h.write(vr, 0, 'latin1');
		h.writeUInt16LE(n & 0xffff, 2);
	}
	return Buffer.concat([t, h, v]);
}
const us = (v) => { const b = Buffer.alloc(2); b.writeUInt16LE(v); return b; };
// An item or delimiter of a sequence (no VR): tag (FFFE,e), 32-bit length.
const dcmItem = (e, len) => { const b = Buffer.alloc(8); b.writeUInt16LE(0xfffe, 0); b.writeUInt16LE(e, 2); b.writeUInt32LE(len >>> 0, 4); return b; };

const SC_CLASS = '1.2.840.10008.5.1.4.1.1.7';

// A DICOM Part 10 file, explicit VR little endian, Secondary Capture: the
// preamble, DICM, the file meta group, then the data set of an 8-bit grey
// 16×16 image with middle (elements between Modality (0008,0060) and
// PatientID (0010,0020), in tag order) and rows/columns as given (each a
// whole element Buffer, so that it may lie about its VR or length).
export function dicomSc({ middle = [], rows = null, columns = null, pixels = Buffer.alloc(256, 128), ts = '1.2.840.10008.1.2.1' } = {}) {
	const uid = `2.25.${BigInt('0x' + randomBytes(16).toString('hex'))}`;
	const meta = Buffer.concat([
		dcmEl([2, 1], 'OB', Buffer.from([0, 1])), dcmEl([2, 2], 'UI', SC_CLASS), dcmEl([2, 3], 'UI', uid),
		dcmEl([2, 0x10], 'UI', ts), dcmEl([2, 0x12], 'UI', '1.2.826.0.1.3680043.2.1143'),
	]);
	const glen = Buffer.alloc(4);
	glen.writeUInt32LE(meta.length);
	return Buffer.concat([
		Buffer.alloc(128), Buffer.from('DICM'), dcmEl([2, 0], 'UL', glen), meta,
		dcmEl([8, 0x16], 'UI', SC_CLASS), dcmEl([8, 0x18], 'UI', uid), dcmEl([8, 0x60], 'CS', 'OT'),
		...middle,
		dcmEl([0x10, 0x20], 'LO', 'ROBUST'),
		dcmEl([0x28, 2], 'US', us(1)), dcmEl([0x28, 4], 'CS', 'MONOCHROME2'),
		rows ?? dcmEl([0x28, 0x10], 'US', us(16)), columns ?? dcmEl([0x28, 0x11], 'US', us(16)),
		dcmEl([0x28, 0x100], 'US', us(8)), dcmEl([0x28, 0x101], 'US', us(8)), dcmEl([0x28, 0x102], 'US', us(7)),
		dcmEl([0x28, 0x103], 'US', us(0)), dcmEl([0x7fe0, 0x10], 'OW', pixels),
	]);
}

// dicomSc(opts) with depth levels of nested sequences of undefined length
// (Referenced Series Sequence (0008,1115), each item holding the next):
// a parser that recurses per level without a bound runs out of stack.
export function dicomNested(depth, opts = {}) {
	const open = Buffer.concat([dcmEl([8, 0x1115], 'SQ', Buffer.alloc(0), 0xffffffff), dcmItem(0xe000, 0xffffffff)]);
	const close = Buffer.concat([dcmItem(0xe00d, 0), dcmItem(0xe0dd, 0)]);
	return dicomSc({ ...opts, middle: [Buffer.concat([...Array(depth).fill(open), ...Array(depth).fill(close)])] });
}

// dicomSc(opts) with depth levels of nested sequences and items of DEFINED
// length (each sequence's length covers its one item, which holds the next).
export function dicomNestedDefined(depth, opts = {}) {
	let inner = Buffer.alloc(0);
	for (let i = 0; i < depth; i++) {
		const item = Buffer.concat([dcmItem(0xe000, inner.length), inner]);
		inner = dcmEl([8, 0x1115], 'SQ', item);
	}
	return dicomSc({ ...opts, middle: [inner] });
}

// A Part 10 file (explicit VR little endian data set, as dicomSc() makes
// with ts '1.2.840.10008.1.2.1.99') with its data set deflated: a raw
// deflate stream after the file meta group (Part 5, A.5).
export function dicomDeflate(file) {
	const start = 132 + 12 + file.readUInt32LE(140);
	return Buffer.concat([file.subarray(0, start), deflateRawSync(file.subarray(start))]);
}

export { dcmEl as dicomElement };
