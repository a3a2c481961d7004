// Decompression and size bombs: small files whose header or metadata
// promise far more than their bytes. Each must be refused with 422 quickly
// and without the worker's memory growing: polaimg reads the header itself
// (src/imghdr.c) before ImageMagick sees the file. Memory is the peak RSS
// (VmHWM) of the polaimg workers, reset before each request through
// /proc/<pid>/clear_refs, so earlier tests do not count. After each one the
// service is still fine (guard() in lib.mjs).
import { before, test } from 'node:test';
import zlib from 'node:zlib';
import {
	POLAIMG_CONF, REMOTE, api, assert, assertError, crc32, curl, fs, guard, makeImage, pngWithHeaderDims, seedWorld,
	upload, uploadOk,
} from './lib.mjs';

const RSS_LIMIT_KB = 150 * 1024;
const CEILING_MS = 10000; // generous: the fixed code answers in milliseconds

let w;
let known;

before(async () => {
	w = seedWorld();
	known = await uploadOk(w.tDoctor, w.case, makeImage(64, 48, 'jpg'));
});

// ---- the polaimg workers -------------------------------------------------------

const cmdline = (pid) => {
	try { return fs.readFileSync(`/proc/${pid}/cmdline`, 'latin1'); } catch { return ''; }
};
const status = (pid) => {
	try { return fs.readFileSync(`/proc/${pid}/status`, 'latin1'); } catch { return ''; }
};
const statusKb = (text, key) => Number((text.match(new RegExp(`^${key}:\\s+(\\d+) kB`, 'm')) || [])[1] || 0);

const environ = (pid) => {
	try { return fs.readFileSync(`/proc/${pid}/environ`, 'latin1'); } catch { return ''; }
};

// Worker pids: processes started with this run's configuration file (on
// the command line, or in POLAIMG_CONFIG as the harness starts the
// installed package's polaimg.service) whose parent was started with it
// too (the master forks the workers). Behind mod_fcgid there is no master:
// every such process is a worker.
function workerPids() {
	const ours = new Set(fs.readdirSync('/proc').filter((p) => /^\d+$/.test(p) &&
		(cmdline(p).split('\0').includes(POLAIMG_CONF) ||
			environ(p).split('\0').includes(`POLAIMG_CONFIG=${POLAIMG_CONF}`))));
	if (process.env.ITEST_SERVER === 'apache-fcgid') return [...ours];
	return [...ours].filter((p) => ours.has((status(p).match(/^PPid:\s+(\d+)/m) || [])[1]));
}

// Resets every worker's peak RSS to its current RSS; returns the pids.
function resetPeaks() {
	const pids = workerPids();
	assert.ok(pids.length >= 1, 'found the polaimg workers');
	for (const p of pids) fs.writeFileSync(`/proc/${p}/clear_refs`, '5');
	return pids;
}

// The largest peak RSS (kB) among the workers since resetPeaks(); a worker
// that was replaced meanwhile counts as a failure (Infinity).
function peakKb(pids) {
	let max = 0;
	for (const p of pids) {
		const s = status(p);
		if (!s) return Infinity;
		max = Math.max(max, statusKb(s, 'VmHWM'));
	}
	return max;
}

// Runs send() (the request) with fresh peaks and the guard around it; the
// answer must be 422 within CEILING_MS and no worker's peak RSS may pass
// RSS_LIMIT_KB.
async function bomb(what, send) {
	const g = await guard(w, known.id);
	const pids = resetPeaks();
	const t0 = Date.now();
	const r = await send();
	const ms = Date.now() - t0;
	const kb = peakKb(pids);
	console.log(`# ${what}: ${r.status} in ${ms} ms, worker peak RSS ${Math.round(kb / 1024)} MB`);
	assertError(r, 422, 'UNPROCESSABLE_IMAGE');
	assert.ok(ms < CEILING_MS, `${what}: answered in ${ms} ms`);
	assert.ok(kb < RSS_LIMIT_KB, `${what}: worker peak RSS ${kb} kB`);
	await g.check();
}

const send = (data, type, name) => () => upload(w.tDoctor, w.case, data, { filename: name, contentType: type });

// ---- the bombs -----------------------------------------------------------------

function pngChunk(type, data) {
	const head = Buffer.alloc(8);
	head.writeUInt32BE(data.length, 0);
	head.write(type, 4, 'latin1');
	const crc = Buffer.alloc(4);
	crc.writeUInt32BE(crc32(Buffer.concat([head.subarray(4), data])), 0);
	return Buffer.concat([head, data, crc]);
}

// A real w×h PNG with extra chunks inserted right after IHDR.
function pngWith(chunks, w = 64, h = 64) {
	const png = makeImage(w, h, 'png');
	assert.equal(png.toString('latin1', 12, 16), 'IHDR');
	return Buffer.concat([png.subarray(0, 33), ...chunks, png.subarray(33)]);
}

// zTXt: keyword, NUL, method 0, zlib stream of n zeros. Buffer.alloc of
// 512 MiB is zero pages the kernel maps lazily; deflate only reads them.
const zerosZ = (n) => zlib.deflateSync(Buffer.alloc(n), { level: 9 });
const ztxt = (n) => pngChunk('zTXt', Buffer.concat([Buffer.from('Comment\0\0', 'latin1'), zerosZ(n)]));

let ztxtBomb;
function ztxtBombPng() {
	if (!ztxtBomb) ztxtBomb = pngWith([ztxt(512 << 20)]);
	return ztxtBomb;
}

// The 34-byte lossless WebP whose VP8L header declares 16383×16383 and
// whose bitstream is valid: no transform, no colour cache, one Huffman
// group of five "simple" codes with one symbol each, so every pixel takes
// zero bits and libwebp fills a 16383×16383 ARGB buffer (1 GiB) from
// nothing. Bits are read LSB first from byte 25: 0 (no transform), 0 (no
// cache), 0 (no meta codes), then five times 1 (simple), 0 (one symbol),
// 0 (1-bit symbol), 0 (symbol 0).
function vp8lBomb() {
	const b = Buffer.alloc(34);
	b.write('RIFF', 0, 'latin1');
	b.writeUInt32LE(26, 4);
	b.write('WEBPVP8L', 8, 'latin1');
	b.writeUInt32LE(14, 16);
	b[20] = 0x2f;
	b.writeUInt32LE(16382 | (16382 << 14), 21);
	for (const bit of [3, 7, 11, 15, 19]) b[25 + (bit >> 3)] |= 1 << (bit & 7);
	return b;
}

// A real JPEG whose SOF0 says width×height.
function jpegWithHeaderDims(width, height) {
	const j = Buffer.from(makeImage(64, 48, 'jpg'));
	for (let i = 2; i + 9 < j.length;) {
		assert.equal(j[i], 0xff, 'JPEG segment');
		const m = j[i + 1];
		if (m === 0xc0 || m === 0xc2) {
			j.writeUInt16BE(height, i + 5);
			j.writeUInt16BE(width, i + 7);
			return j;
		}
		i += 2 + j.readUInt16BE(i + 2);
	}
	throw new Error('no SOF in the test JPEG');
}

// A real little-endian TIFF whose ImageWidth/ImageLength say width×height.
function tiffWithHeaderDims(width, height) {
	const t = Buffer.from(makeImage(64, 48, 'tiff', ['-endian', 'LSB', '-compress', 'none']));
	assert.equal(t.toString('latin1', 0, 2), 'II');
	const ifd = t.readUInt32LE(4);
	const n = t.readUInt16LE(ifd);
	let seen = 0;
	for (let k = 0; k < n; k++) {
		const e = ifd + 2 + 12 * k;
		const tag = t.readUInt16LE(e);
		if (tag !== 256 && tag !== 257) continue;
		t.writeUInt16LE(4, e + 2); // LONG
		t.writeUInt32LE(1, e + 4);
		t.writeUInt32LE(tag === 256 ? width : height, e + 8);
		seen++;
	}
	assert.equal(seen, 2, 'ImageWidth and ImageLength found');
	return t;
}

test('bomb: PNG 64×64 with a zTXt chunk inflating to 512 MiB → 422, fast, worker RSS < 150 MB', async () => {
	const png = ztxtBombPng();
	assert.ok(png.length < 600 * 1024, `the bomb is ${png.length} bytes`);
	await bomb('zTXt 512 MiB', send(png, 'image/png', 'bomb.png'));
});

test('bomb: PNG with a compressed iTXt chunk of 256 MiB → 422', async () => {
	const itxt = pngChunk('iTXt', Buffer.concat([Buffer.from('XML:com.adobe.xmp\0\x01\0\0\0', 'latin1'),
		zerosZ(256 << 20)]));
	await bomb('iTXt 256 MiB', send(pngWith([itxt]), 'image/png', 'itxt.png'));
});

test('bomb: PNG with an iCCP chunk of 256 MiB → 422', async () => {
	const iccp = pngChunk('iCCP', Buffer.concat([Buffer.from('icc\0\0', 'latin1'), zerosZ(256 << 20)]));
	await bomb('iCCP 256 MiB', send(pngWith([iccp]), 'image/png', 'iccp.png'));
});

test('bomb: a PNG with small zTXt and iCCP chunks is still accepted', async () => {
	const png = pngWith([ztxt(4000), pngChunk('iCCP', Buffer.concat([Buffer.from('icc\0\0', 'latin1'),
		zerosZ(3000)]))], 64, 48);
	const img = await uploadOk(w.tDoctor, w.case, png, { filename: 'ok.png', contentType: 'image/png' });
	assert.equal(img.width, 64);
	assert.equal(img.height, 48);
});

test('bomb: WebP of 34 bytes declaring 16383×16383 (VP8L) → 422, fast, worker RSS < 150 MB', async () => {
	const webp = vp8lBomb();
	assert.equal(webp.length, 34);
	await bomb('VP8L 16383x16383', send(webp, 'image/webp', 'bomb.webp'));
});

test('bomb: JPEG, TIFF and PNG headers declaring 30000×30000 → 422 without decoding', async () => {
	await bomb('JPEG 30000x30000', send(jpegWithHeaderDims(30000, 30000), 'image/jpeg', 'big.jpg'));
	await bomb('TIFF 30000x30000', send(tiffWithHeaderDims(30000, 30000), 'image/tiff', 'big.tif'));
	await bomb('PNG 30000x30000', send(pngWithHeaderDims(30000, 30000), 'image/png', 'big.png'));
});

test('bomb: the zTXt bomb through a direct upload (upload-url, PUT, complete) → 422', async () => {
	const png = ztxtBombPng();
	const r = await api('POST', '/api/v1/images/upload-url', {
		token: w.tDoctor, body: { fileName: 'bomb.png', contentType: 'image/png', caseId: w.case },
	});
	assert.equal(r.status, 200, r.text);
	const d = r.json.data;
	if (!REMOTE) {
		await bomb('zTXt direct PUT', () => api(d.method, d.uploadUrl, { body: png, headers: d.headers }));
		return;
	}
	// The store takes any bytes; complete must refuse them (and remove
	// the object, which the guard checks).
	await bomb('zTXt complete', async () => {
		const p = curl(d.method, d.uploadUrl, { body: png, headers: d.headers });
		assert.equal(p.status, 200, `the store took the PUT: ${p.status}`);
		return api('POST', `/api/v1/images/${d.imageId}/complete`, { token: w.tDoctor });
	});
});
