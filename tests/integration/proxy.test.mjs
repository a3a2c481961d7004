// GET /api/v1/images/:id/proxy: headers, variants, conditional and range
// requests (served by nginx with offload=nginx, by polaimg with offload=none).
import { before, test } from 'node:test';
import {
	OFFLOAD, api, assert, assertError, dims, makeImage, seedWorld, sha256, uploadOk,
} from './lib.mjs';

let w;
let jpg;
let img;

before(async () => {
	w = seedWorld();
	jpg = makeImage(600, 400, 'jpg');
	img = await uploadOk(w.tDoctor, w.case, jpg);
});

const proxy = (query = '', headers = {}, tok = w.tPatient) =>
	api('GET', `/api/v1/images/${img.id}/proxy${query}`, { token: tok, headers });

function assertBytesHeaders(r, variant, ext, mime) {
	assert.equal(r.status, 200, r.text.slice(0, 200));
	assert.equal(r.headers.get('content-type'), mime);
	assert.equal(Number(r.headers.get('content-length')), r.buf.length);
	assert.equal(r.headers.get('etag'), `"${sha256(r.buf)}"`, 'strong ETag = SHA-256 of the served bytes');
	assert.equal(r.headers.get('cache-control'), 'private, max-age=300');
	assert.equal(r.headers.get('x-content-type-options'), 'nosniff');
	assert.equal(r.headers.get('content-disposition'), `inline; filename="${img.id}-${variant}.${ext}"`);
	assert.ok(r.requestId, 'X-Request-Id');
	assert.equal(r.headers.get('x-accel-redirect'), null, 'X-Accel-Redirect never reaches the client');
}

test('proxy: default is the display copy, with all the headers of docs/api.md', async () => {
	const r = await proxy();
	assertBytesHeaders(r, 'display', 'jpg', 'image/jpeg');
	assert.deepEqual(dims(r.buf), { width: 600, height: 400 });
	assert.equal(r.buf.readUInt16BE(0), 0xffd8, 'a JPEG');
	assert.ok(!/public/.test(r.headers.get('cache-control')));
});

test('proxy: variant=display equals the default', async () => {
	const a = await proxy();
	const b = await proxy('?variant=display');
	assert.equal(b.status, 200);
	assert.ok(a.buf.equals(b.buf));
	assert.equal(a.headers.get('etag'), b.headers.get('etag'));
});

test('proxy: thumbnail=true gives the thumbnail (fits 400×400)', async () => {
	const r = await proxy('?thumbnail=true');
	assertBytesHeaders(r, 'thumbnail', 'jpg', 'image/jpeg');
	const d = dims(r.buf);
	assert.equal(d.width, 400);
	assert.ok(Math.abs(d.height - 267) <= 1, JSON.stringify(d));
	const v = await proxy('?variant=thumbnail');
	assert.ok(v.buf.equals(r.buf));
});

test('proxy: variant=original returns the exact uploaded bytes; ETag is the image sha256', async () => {
	const r = await proxy('?variant=original');
	assertBytesHeaders(r, 'original', 'jpg', 'image/jpeg');
	assert.ok(r.buf.equals(jpg));
	assert.equal(r.headers.get('etag'), `"${img.sha256}"`);
});

test('proxy: a PNG image is served as image/png with .png names', async () => {
	const png = makeImage(500, 300, 'png');
	const p = await uploadOk(w.tDoctor, w.case, png, { contentType: 'image/png', filename: 'a.png' });
	const r = await api('GET', `/api/v1/images/${p.id}/proxy`, { token: w.tDoctor });
	assert.equal(r.status, 200);
	assert.equal(r.headers.get('content-type'), 'image/png');
	assert.equal(r.headers.get('content-disposition'), `inline; filename="${p.id}-display.png"`);
	assert.equal(r.headers.get('etag'), `"${sha256(r.buf)}"`);
	const t = await api('GET', `/api/v1/images/${p.id}/proxy?thumbnail=true`, { token: w.tDoctor });
	assert.equal(t.headers.get('content-type'), 'image/png');
	assert.deepEqual(dims(t.buf), { width: 400, height: 240 });
	const o = await api('GET', `/api/v1/images/${p.id}/proxy?variant=original`, { token: w.tDoctor });
	assert.ok(o.buf.equals(png));
	assert.equal(o.headers.get('content-type'), 'image/png');
});

test('proxy: If-None-Match with the ETag → 304 without a body', async () => {
	const full = await proxy();
	const etag = full.headers.get('etag');
	const r = await proxy('', { 'If-None-Match': etag });
	assert.equal(r.status, 304, r.text.slice(0, 200));
	assert.equal(r.buf.length, 0);
	assert.equal(r.headers.get('etag'), etag);
	assert.ok(/private/.test(r.headers.get('cache-control') || ''), 'Cache-Control on the 304');
});

test('proxy: If-None-Match lists, W/ prefix and * → 304; another ETag → 200', async () => {
	const full = await proxy('?variant=original');
	const etag = full.headers.get('etag');
	for (const inm of [`"0000", ${etag}`, `W/${etag}`, '*']) {
		const r = await proxy('?variant=original', { 'If-None-Match': inm });
		assert.equal(r.status, 304, `If-None-Match: ${inm} → ${r.status}`);
	}
	const r = await proxy('?variant=original', { 'If-None-Match': `"${'0'.repeat(64)}"` });
	assert.equal(r.status, 200);
	assert.ok(r.buf.equals(jpg));
	// the display ETag does not match the original
	const d = await proxy('', { 'If-None-Match': etag });
	assert.equal(d.status, 200);
});

test('proxy: Range bytes=0-99 → 206 with Content-Range and the first 100 bytes', async () => {
	const r = await proxy('?variant=original', { Range: 'bytes=0-99' });
	assert.equal(r.status, 206, r.text.slice(0, 200));
	assert.equal(r.headers.get('content-range'), `bytes 0-99/${jpg.length}`);
	assert.equal(Number(r.headers.get('content-length')), 100);
	assert.equal(r.buf.length, 100);
	assert.ok(r.buf.equals(jpg.subarray(0, 100)));
	assert.equal(r.headers.get('content-type'), 'image/jpeg');
});

test('proxy: suffix range bytes=-50 → the last 50 bytes', async () => {
	const r = await proxy('?variant=original', { Range: 'bytes=-50' });
	assert.equal(r.status, 206);
	assert.equal(r.headers.get('content-range'), `bytes ${jpg.length - 50}-${jpg.length - 1}/${jpg.length}`);
	assert.ok(r.buf.equals(jpg.subarray(jpg.length - 50)));
});

test('proxy: open range bytes=100- → the rest', async () => {
	const r = await proxy('?variant=original', { Range: 'bytes=100-' });
	assert.equal(r.status, 206);
	assert.equal(r.headers.get('content-range'), `bytes 100-${jpg.length - 1}/${jpg.length}`);
	assert.ok(r.buf.equals(jpg.subarray(100)));
});

test('proxy: unsatisfiable range → 416 with Content-Range bytes */size', async () => {
	const r = await proxy('?variant=original', { Range: `bytes=${jpg.length}-` });
	assert.equal(r.status, 416);
	assert.equal(r.headers.get('content-range'), `bytes */${jpg.length}`);
});

test('proxy: multi-range with offload=none → 200 full body', { skip: OFFLOAD !== 'none' && 'nginx answers multi-range itself' }, async () => {
	const r = await proxy('?variant=original', { Range: 'bytes=0-9,20-29' });
	assert.equal(r.status, 200);
	assert.ok(r.buf.equals(jpg));
});

test('proxy: invalid variant → 400 VALIDATION_FAILED (variant)', async () => {
	assertError(await proxy('?variant=huge'), 400, 'VALIDATION_FAILED', 'variant');
});

test('proxy: HEAD is answered with the headers and no body', async () => {
	const r = await api('HEAD', `/api/v1/images/${img.id}/proxy?variant=original`, { token: w.tPatient });
	assert.ok([200, 405].includes(r.status), `HEAD → ${r.status}`);
	assert.equal(r.buf.length, 0);
	if (r.status === 200) assert.equal(r.headers.get('etag'), `"${img.sha256}"`);
});
