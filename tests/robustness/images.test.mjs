// Image attacks through the real service (nginx → polaimg → ImageMagick):
// decompression bombs, a JPEG with thousands of scans and a slow one under
// the limit, a PNG metadata bomb, a TIFF with thousands of IFDs, ImageTragick
// payloads and an SVG with external entities disguised as JPEG/PNG, and a
// JPEG/HTML polyglot, and hostile DICOM files. Every refusal is the documented error, fast, with no
// worker death and nothing left in storage or the database (guard() of
// ../integration/lib.mjs); every accepted file is served with its sniffed
// type and nosniff.
import { after, before, test } from 'node:test';
import {
	api, assert, assertError, fs, guard, logSize, seedWorld, sha256, upload, uploadOk, workerCrashes,
} from '../integration/lib.mjs';
import {
	dicomDeflate, dicomElement, dicomNested, dicomNestedDefined, dicomSc, imageTragick, jpegHtmlPolyglot, jpegManyScans, jpegSlowProgressive, jpegWithHeaderDims, pngGiantZtxt,
	pngRealBomb, tiffManyIfds,
} from './craft.mjs';
import { record } from './robust.mjs';

let w;
let known;
const times = {};
const marker = `/tmp/polaimg-robust-${process.pid}`;

before(async () => {
	w = seedWorld();
	known = await uploadOk(w.tDoctor, w.case, (await import('../integration/lib.mjs')).makeImage(64, 48, 'jpg'));
});

after(() => record('images', { timesMs: times }));

const send = (data, filename, contentType) => upload(w.tDoctor, w.case, data, { filename, contentType });

// Refused with status/code within ms; the service is unchanged.
async function refused(name, data, filename, contentType, status, code, ms) {
	const g = await guard(w, known.id);
	const t0 = Date.now();
	const r = await send(data, filename, contentType);
	times[name] = Date.now() - t0;
	assertError(r, status, code);
	assert.ok(times[name] < ms, `${name}: refused in ${times[name]} ms (limit ${ms})`);
	await g.check();
}

test('bomb: PNG declaring 12000×12000 (over max_pixels), 2 KB → 422 before decoding', async () => {
	const { pngWithHeaderDims } = await import('../integration/lib.mjs');
	await refused('png-declared', pngWithHeaderDims(12000, 12000), 'a.png', 'image/png', 422, 'UNPROCESSABLE_IMAGE', 2000);
});

test('bomb: PNG whose IDAT really inflates to 20000×20000 → 422 before decoding', async () => {
	const png = await pngRealBomb(20000);
	assert.ok(png.length < 1024 * 1024, `${png.length} bytes`);
	await refused('png-real', png, 'a.png', 'image/png', 422, 'UNPROCESSABLE_IMAGE', 2000);
});

test('bomb: JPEG declaring 60000×60000, 2 KB → 422 quickly', async () => {
	await refused('jpeg-declared', jpegWithHeaderDims(60000, 60000), 'a.jpg', 'image/jpeg', 422, 'UNPROCESSABLE_IMAGE', 2000);
});

test('bomb: TIFF declaring 50000×50000 with one byte of data → 422 quickly', async () => {
	await refused('tiff-declared', tiffManyIfds(1, { width: 50000, height: 50000 }), 'a.tif', 'image/tiff',
		422, 'UNPROCESSABLE_IMAGE', 2000);
});

test('progressive JPEG with 3000 scans → 422 quickly ("too many scans")', async () => {
	const jpg = jpegManyScans(3000);
	await refused('jpeg-3000-scans', jpg, 'a.jpg', 'image/jpeg', 422, 'UNPROCESSABLE_IMAGE', 5000);
});

test('progressive JPEG, 883 valid scans over 2000×2000: bounded time, worker survives', async () => {
	const jpg = jpegSlowProgressive(2000);
	const logAt = logSize();
	const t0 = Date.now();
	const r = await send(jpg, 'a.jpg', 'image/jpeg');
	times['jpeg-883-scans-2000'] = Date.now() - t0;
	assert.ok([201, 422].includes(r.status), `${r.status} ${r.text}`);
	assert.ok(times['jpeg-883-scans-2000'] < 60000, `took ${times['jpeg-883-scans-2000']} ms`);
	assert.deepEqual(workerCrashes(logAt), []);
	const h = await api('GET', '/api/v1/images/health');
	assert.equal(h.status, 200);
});

test('PNG with a zTXt chunk inflating to 64 MiB: accepted or 422, fast, no text in the copies', async () => {
	const png = pngGiantZtxt(64);
	assert.ok(png.length < 256 * 1024);
	const logAt = logSize();
	const t0 = Date.now();
	const r = await send(png, 'a.png', 'image/png');
	times['png-ztxt-64m'] = Date.now() - t0;
	assert.ok([201, 422].includes(r.status), `${r.status} ${r.text}`);
	assert.ok(times['png-ztxt-64m'] < 10000, `took ${times['png-ztxt-64m']} ms`);
	assert.deepEqual(workerCrashes(logAt), []);
	if (r.status === 201) {
		const d = await api('GET', `/api/v1/images/${r.json.data.id}/proxy`, { token: w.tDoctor });
		assert.equal(d.status, 200);
		assert.equal(d.headers.get('content-type'), 'image/png');
		assert.ok(!d.buf.includes(Buffer.from('zTXt')) && !d.buf.includes(Buffer.from('tEXt')),
			'the display copy carries no text chunk');
		assert.ok(d.buf.length < 1024 * 1024);
	}
});

test('TIFF with 5000 chained IFDs: first page only, bounded time', async () => {
	const tif = tiffManyIfds(5000);
	const logAt = logSize();
	const t0 = Date.now();
	const r = await send(tif, 'a.tif', 'image/tiff');
	times['tiff-5000-ifds'] = Date.now() - t0;
	assert.ok([201, 422].includes(r.status), `${r.status} ${r.text}`);
	if (r.status === 201) assert.equal(r.json.data.width, 1);
	assert.ok(times['tiff-5000-ifds'] < 10000, `took ${times['tiff-5000-ifds']} ms`);
	assert.deepEqual(workerCrashes(logAt), []);
});

test('TIFF whose IFD chain loops → bounded time, no hang', async () => {
	const tif = tiffManyIfds(3, { loop: true });
	const logAt = logSize();
	const t0 = Date.now();
	const r = await send(tif, 'a.tif', 'image/tiff');
	times['tiff-ifd-loop'] = Date.now() - t0;
	assert.ok([201, 422].includes(r.status), `${r.status} ${r.text}`);
	assert.ok(times['tiff-ifd-loop'] < 10000);
	assert.deepEqual(workerCrashes(logAt), []);
});

const P = imageTragick(marker);
for (const [name, data, filename, ct] of [
	['MVG (ImageTragick) as .jpg', P.mvg, 'x.jpg', 'image/jpeg'],
	['MVG (ImageTragick) as .png', P.mvg, 'x.png', 'image/png'],
	['MSL as .png', P.msl, 'x.png', 'image/png'],
	['MSL as .jpg', P.msl, 'x.jpg', 'image/jpeg'],
	['SVG with external entities as .png', P.svgXxe, 'x.png', 'image/png'],
	['SVG with external entities as .jpg', P.svgXxe, 'x.jpg', 'image/jpeg'],
]) {
	test(`script: ${name} → 415, nothing executed`, async () => {
		await refused(name, data, filename, ct, 415, 'UNSUPPORTED_MEDIA_TYPE', 2000);
		for (const s of ['mvg', 'msl', 'svg']) assert.ok(!fs.existsSync(`${marker}-${s}`), `${marker}-${s} was created`);
	});
}

test('script: MVG behind JPEG magic bytes → 422 (the JPEG coder is forced), nothing executed', async () => {
	await refused('MVG with JPEG magic', P.mvgAsJpeg, 'x.jpg', 'image/jpeg', 422, 'UNPROCESSABLE_IMAGE', 2000);
	for (const s of ['mvg2', 'eph']) assert.ok(!fs.existsSync(`${marker}-${s}`));
});

test('script: MSL behind PNG magic bytes → 422, nothing executed', async () => {
	await refused('MSL with PNG magic', P.mslAsPng, 'x.png', 'image/png', 422, 'UNPROCESSABLE_IMAGE', 2000);
	assert.ok(!fs.existsSync(`${marker}-msl2`));
});

test('polyglot JPEG/HTML: stored as is, always served as image/jpeg with nosniff', async () => {
	const poly = jpegHtmlPolyglot();
	// Declared as text/html: the declared type is never trusted.
	const img = await uploadOk(w.tDoctor, w.case, poly, { filename: 'x.html', contentType: 'text/html' });
	assert.equal(img.mimeType, 'image/jpeg');
	assert.equal(img.sha256, sha256(poly));
	for (const q of ['?variant=original', '', '?thumbnail=true']) {
		const r = await api('GET', `/api/v1/images/${img.id}/proxy${q}`, { token: w.tPatient });
		assert.equal(r.status, 200, q);
		assert.equal(r.headers.get('content-type'), 'image/jpeg', q);
		assert.equal(r.headers.get('x-content-type-options'), 'nosniff', q);
		assert.match(r.headers.get('content-disposition') || '', /\.jpg"$/);
		if (q === '?variant=original') assert.ok(r.buf.equals(poly), 'the original is byte for byte what was sent');
		else assert.ok(!r.buf.includes(Buffer.from('<script')), 'derived copies drop the markup');
	}
	const u = await api('GET', `/api/v1/images/${img.id}/download-url`, { token: w.tPatient });
	assert.equal(u.status, 200);
	const f = await api('GET', u.json.data.downloadUrl);
	assert.equal(f.status, 200);
	assert.equal(f.headers.get('content-type'), 'image/jpeg');
	assert.equal(f.headers.get('x-content-type-options'), 'nosniff');
	assert.ok(f.buf.equals(poly));
});

// ---- DICOM -----------------------------------------------------------------------------

const us16 = (v) => { const b = Buffer.alloc(2); b.writeUInt16LE(v); return b; };

test('dicom: the crafted Secondary Capture file itself is taken (the baseline of the hostile ones below)', async () => {
	const img = await uploadOk(w.tDoctor, w.case, dicomSc(), { filename: 's.dcm', contentType: 'application/dicom' });
	assert.equal(img.mimeType, 'application/dicom');
	assert.equal(img.width, 16);
});

test('dicom: hostile files → 422, fast, worker alive, nothing stored', async () => {
	const cases = {
		'rows and columns 65535': dicomSc({ rows: dicomElement([0x28, 0x10], 'US', us16(65535)),
			columns: dicomElement([0x28, 0x11], 'US', us16(65535)) }),
		'number of frames 2^31-1': dicomSc({ rows: Buffer.concat([
			dicomElement([0x28, 8], 'IS', '2147483647'), dicomElement([0x28, 0x10], 'US', us16(16))]) }),
		'pixel data cut short': dicomSc({ pixels: Buffer.alloc(100, 128) }),
		'pixel data length past the end of the file': Buffer.concat([dicomSc({ pixels: Buffer.alloc(0) }).subarray(0, -4),
			Buffer.from([0xf0, 0xff, 0xff, 0x7f])]),
		'Rows with VR FD (8 bytes)': dicomSc({ rows: dicomElement([0x28, 0x10], 'FD', Buffer.alloc(8, 0x41)) }),
		'Columns with VR SQ': dicomSc({ columns: dicomElement([0x28, 0x11], 'SQ', Buffer.alloc(0), 0xffffffff) }),
		'an element length past the end of the file': dicomSc({ middle: [dicomElement([8, 0x80], 'UT', Buffer.alloc(0), 0x7ffffff0)] }),
	};
	await refusedAll(cases);
});

// Each of cases (name → bytes) sent as a DICOM file: 422, within a generous
// ceiling, the worker alive and nothing stored (guard()); all answers
// compared at once, so that one failure names every case that differs.
async function refusedAll(cases) {
	const got = {};
	for (const [what, data] of Object.entries(cases)) {
		const g = await guard(w, known.id);
		const t0 = Date.now();
		const r = await send(data, 'h.dcm', 'application/dicom');
		times[`dicom ${what}`] = Date.now() - t0;
		got[what] = `${r.status} ${r.json?.code}`;
		if (r.status === 201) {
			const d = await api('DELETE', `/api/v1/images/${r.json.data.id}`, { token: w.tDoctor });
			assert.equal(d.status, 200);
			continue;
		}
		assert.ok(times[`dicom ${what}`] < 20000, `${what}: refused in ${times[`dicom ${what}`]} ms`);
		await g.check();
	}
	assert.deepEqual(got, Object.fromEntries(Object.keys(cases).map((k) => [k, '422 UNPROCESSABLE_IMAGE'])));
}

// DCMTK reads nested sequences recursively without a depth limit: 10,000
// levels (320 KB) overflowed a worker's stack (SIGSEGV, a 502) until
// dicom.cc bounded the nesting of items of undefined length (64 levels).
test('dicom: 10,000 levels of nested sequences → 422, worker alive; 20 levels are taken', async () => {
	await refusedAll({ '10,000 levels of nested sequences': dicomNested(10000), '65 levels': dicomNested(65) });
	const img = await uploadOk(w.tDoctor, w.case, dicomNested(20), { filename: 's.dcm', contentType: 'application/dicom' });
	assert.equal(img.mimeType, 'application/dicom');
});

// The nesting the byte scan above did not see (sequences and items of
// defined length; anything inside a deflated data set), and the fuzzer's
// 538-byte deflated file whose element claims 3.9 GB, which DCMTK
// allocated: dicom.cc's structure walker refuses each before DCMTK reads
// the data set (depth 64 for every kind of item, every length proved, the
// inflated data set within max_dicom_bytes).
test('dicom: defined-length and deflated nesting, and a 3.9 GB deflated element → 422, worker alive', async () => {
	const DEFLATED = '1.2.840.10008.1.2.1.99';
	const fuzzed = fs.readFileSync(new URL('../fuzz/corpus/dicom/oom-deflated-element-length', import.meta.url));
	await refusedAll({
		'10,000 levels of defined length': dicomNestedDefined(10000),
		'40 levels of defined length': dicomNestedDefined(40),
		'10,000 levels inside a deflated data set': dicomDeflate(dicomNested(10000, { ts: DEFLATED })),
		'10,000 defined levels inside a deflated data set': dicomDeflate(dicomNestedDefined(10000, { ts: DEFLATED })),
		'a deflated element claiming 3.9 GB': Buffer.concat([Buffer.alloc(128), Buffer.from('DICM'), fuzzed]),
	});
	for (const [what, data] of Object.entries({
		'20 levels of defined length': dicomNestedDefined(20),
		'a deflated file': dicomDeflate(dicomSc({ ts: DEFLATED })),
		'20 levels inside a deflated data set': dicomDeflate(dicomNested(20, { ts: DEFLATED })),
	})) {
		const img = await uploadOk(w.tDoctor, w.case, data, { filename: 's.dcm', contentType: 'application/dicom' });
		assert.equal(img.mimeType, 'application/dicom', what);
	}
});
