// Direct upload on local storage: POST upload-url → PUT uploadUrl (no bearer
// token, exactly the returned method and headers) → 201 ready; complete;
// every refusal of the PUT; upload-url validation.
import { test } from 'node:test';
import {
	BASE_URL, MAX_UPLOAD_BYTES, RFC3339_UTC_RE, api, assert, assertError, assertImage, imageRow, listFiles,
	makeImage, objectsOf, seedWorld, sha256, sleep, tmpEntries, uuid,
} from './lib.mjs';

async function uploadUrl(tok, body) {
	return api('POST', '/api/v1/images/upload-url', { token: tok, body });
}

async function uploadUrlOk(tok, body) {
	const r = await uploadUrl(tok, body);
	assert.equal(r.status, 200, `upload-url: ${r.status} ${r.text}`);
	return r.json.data;
}

// PUT the bytes exactly as the upload-url answer says.
function put(d, data, { url = d.uploadUrl, headers = d.headers, method = d.method } = {}) {
	return api(method, url, { body: data, headers });
}

// After a refused PUT: still pending, no objects, .tmp empty.
function assertStillPending(w, imageId) {
	const row = imageRow(imageId);
	assert.equal(row.status, 'pending');
	assert.deepEqual(objectsOf(w.case, imageId), []);
	assert.deepEqual(tmpEntries(), []);
}

test('upload-url: 200 with the exact shape; the image is pending', async () => {
	const w = seedWorld();
	const r = await uploadUrl(w.tPatient, { fileName: 'eye.jpg', contentType: 'image/jpeg', caseId: w.case });
	assert.equal(r.status, 200, r.text);
	assert.deepEqual(Object.keys(r.json).sort(), ['data', 'message']);
	assert.equal(r.json.message, 'Upload URL generated successfully');
	const d = r.json.data;
	assert.deepEqual(Object.keys(d).sort(), ['expiresAt', 'expiresIn', 'headers', 'imageId', 'key', 'method', 'uploadUrl']);
	assert.match(d.imageId, /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/);
	assert.equal(d.method, 'PUT');
	assert.deepEqual(d.headers, { 'Content-Type': 'image/jpeg' });
	assert.equal(d.expiresIn, 900);
	assert.match(d.expiresAt, RFC3339_UTC_RE);
	assert.ok(Math.abs(Date.parse(d.expiresAt) - (Date.now() + 900000)) < 60000, d.expiresAt);
	const u = new URL(d.uploadUrl);
	assert.equal(`${u.protocol}//${u.host}`, BASE_URL);
	assert.equal(u.pathname, `/api/v1/images/${d.imageId}/upload`);
	assert.ok(u.searchParams.get('token'), 'token query parameter');
	assert.ok(d.key.startsWith(`cases/${w.case}/${d.imageId}`), d.key);
	const row = imageRow(d.imageId);
	assert.equal(row.status, 'pending');
	assert.equal(row.case_id, w.case);
	assert.equal(row.uploaded_by, w.patient);
	assert.deepEqual(objectsOf(w.case, d.imageId), []);
});

test('direct upload: PUT with the returned method and headers → 201 ready, listed, stored', async () => {
	const w = seedWorld();
	const jpg = makeImage(120, 90, 'jpg');
	const d = await uploadUrlOk(w.tPatient, {
		fileName: 'eye.jpg', contentType: 'image/jpeg', caseId: w.case, eyeSide: 'right', imageType: 'oct',
		description: 'direct', capturedAt: '2024-05-06T07:08:09Z', fileSize: jpg.length,
	});
	const r = await put(d, jpg);
	assert.equal(r.status, 201, r.text);
	assert.deepEqual(Object.keys(r.json), ['data']);
	assertImage(r.json.data, {
		id: d.imageId, caseId: w.case, status: 'ready', eyeSide: 'right', imageType: 'oct', description: 'direct',
		fileSize: jpg.length, sha256: sha256(jpg), width: 120, height: 90, mimeType: 'image/jpeg', order: 1,
		uploadedBy: w.patient,
	});
	assert.match(r.json.data.capturedAt, /^2024-05-06T07:08:09(\.0+)?Z$/);
	assert.deepEqual(objectsOf(w.case, d.imageId), ['display.jpg', 'original', 'thumb.jpg']);
	assert.deepEqual(tmpEntries(), []);
	const l = await api('GET', `/api/v1/images/cases/${w.case}`, { token: w.tPatient });
	assert.deepEqual(l.json.data.images.map((i) => i.id), [d.imageId]);
	const o = await api('GET', `/api/v1/images/${d.imageId}/proxy?variant=original`, { token: w.tPatient });
	assert.ok(o.buf.equals(jpg), 'original bytes');
});

test('complete: after the PUT it returns the ready image, and is idempotent', async () => {
	const w = seedWorld();
	const jpg = makeImage(64, 48, 'jpg');
	const d = await uploadUrlOk(w.tDoctor, { fileName: 'a.jpg', contentType: 'image/jpeg', caseId: w.case });
	const p = await put(d, jpg);
	assert.equal(p.status, 201, p.text);
	for (let i = 0; i < 2; i++) {
		const c = await api('POST', `/api/v1/images/${d.imageId}/complete`, { token: w.tDoctor });
		assert.equal(c.status, 200, c.text);
		assert.deepEqual(Object.keys(c.json), ['data']);
		assert.deepEqual(c.json.data, p.json.data);
	}
});

test('complete: a pending image with nothing uploaded → 409 CONFLICT, stays pending', async () => {
	const w = seedWorld();
	const d = await uploadUrlOk(w.tDoctor, { fileName: 'a.jpg', contentType: 'image/jpeg', caseId: w.case });
	assertError(await api('POST', `/api/v1/images/${d.imageId}/complete`, { token: w.tDoctor }), 409, 'CONFLICT');
	assertStillPending(w, d.imageId);
});

test('PUT: a second PUT on a ready image → 409 CONFLICT, original unchanged', async () => {
	const w = seedWorld();
	const jpg = makeImage(64, 48, 'jpg');
	const d = await uploadUrlOk(w.tDoctor, { fileName: 'a.jpg', contentType: 'image/jpeg', caseId: w.case });
	assert.equal((await put(d, jpg)).status, 201);
	assertError(await put(d, makeImage(100, 50, 'jpg')), 409, 'CONFLICT');
	const o = await api('GET', `/api/v1/images/${d.imageId}/proxy?variant=original`, { token: w.tDoctor });
	assert.ok(o.buf.equals(jpg));
	assert.deepEqual(tmpEntries(), []);
});

test('PUT: a tampered token → 403 FORBIDDEN, nothing stored', async () => {
	const w = seedWorld();
	const d = await uploadUrlOk(w.tDoctor, { fileName: 'a.jpg', contentType: 'image/jpeg', caseId: w.case });
	const u = new URL(d.uploadUrl);
	const t = u.searchParams.get('token');
	const flip = (s, i) => s.slice(0, i) + (s[i] === 'A' ? 'B' : 'A') + s.slice(i + 1);
	for (const bad of [flip(t, t.length - 2), flip(t, 1), `${t}x`, '', 'garbage']) {
		u.searchParams.set('token', bad);
		assertError(await put(d, makeImage(64, 48, 'jpg'), { url: u.toString() }), 403, 'FORBIDDEN');
	}
	u.searchParams.delete('token');
	const r = await put(d, makeImage(64, 48, 'jpg'), { url: u.toString() });
	assert.ok([400, 403].includes(r.status), `no token at all: ${r.status}`);
	assertStillPending(w, d.imageId);
});

test("PUT: one image's token on another pending image's URL → 403", async () => {
	const w = seedWorld();
	const a = await uploadUrlOk(w.tDoctor, { fileName: 'a.jpg', contentType: 'image/jpeg', caseId: w.case });
	const b = await uploadUrlOk(w.tDoctor, { fileName: 'b.jpg', contentType: 'image/jpeg', caseId: w.case });
	const url = a.uploadUrl.replace(a.imageId, b.imageId);
	assert.notEqual(url, a.uploadUrl);
	assertError(await put(a, makeImage(64, 48, 'jpg'), { url }), 403, 'FORBIDDEN');
	assertStillPending(w, b.imageId);
	assertStillPending(w, a.imageId);
});

test('PUT: a Content-Type other than the one given to upload-url → 403', async () => {
	const w = seedWorld();
	const d = await uploadUrlOk(w.tDoctor, { fileName: 'a.jpg', contentType: 'image/jpeg', caseId: w.case });
	assertError(await put(d, makeImage(64, 48, 'png'), { headers: { 'Content-Type': 'image/png' } }), 403, 'FORBIDDEN');
	assertError(await put(d, makeImage(64, 48, 'jpg'), { headers: { 'Content-Type': 'application/octet-stream' } }), 403, 'FORBIDDEN');
	assertStillPending(w, d.imageId);
});

test('PUT: an expired upload URL (expiresIn 1, 2 s later) → 403', async () => {
	const w = seedWorld();
	const d = await uploadUrlOk(w.tDoctor, { fileName: 'a.jpg', contentType: 'image/jpeg', caseId: w.case, expiresIn: 1 });
	assert.equal(d.expiresIn, 1);
	await sleep(2100);
	assertError(await put(d, makeImage(64, 48, 'jpg')), 403, 'FORBIDDEN');
	assertStillPending(w, d.imageId);
});

test('PUT: sniffed type differs from the declared contentType → 415, stays pending', async () => {
	const w = seedWorld();
	const d = await uploadUrlOk(w.tDoctor, { fileName: 'a.jpg', contentType: 'image/jpeg', caseId: w.case });
	const files = listFiles();
	assertError(await put(d, makeImage(64, 48, 'png')), 415, 'UNSUPPORTED_MEDIA_TYPE');
	assertStillPending(w, d.imageId);
	assert.deepEqual(listFiles(), files);
	// The URL still works for the right bytes.
	assert.equal((await put(d, makeImage(64, 48, 'jpg'))).status, 201);
});

test('PUT: a corrupt JPEG → 422, stays pending, nothing stored', async () => {
	const w = seedWorld();
	const jpg = makeImage(300, 200, 'jpg');
	const d = await uploadUrlOk(w.tDoctor, { fileName: 'a.jpg', contentType: 'image/jpeg', caseId: w.case });
	const files = listFiles();
	assertError(await put(d, jpg.subarray(0, Math.floor(jpg.length / 3))), 422, 'UNPROCESSABLE_IMAGE');
	assertStillPending(w, d.imageId);
	assert.deepEqual(listFiles(), files);
});

test('PUT: a body over max_upload_bytes → 413, stays pending', async () => {
	const w = seedWorld();
	const d = await uploadUrlOk(w.tDoctor, { fileName: 'a.jpg', contentType: 'image/jpeg', caseId: w.case });
	const jpg = makeImage(64, 48, 'jpg');
	const big = Buffer.concat([jpg, Buffer.alloc(MAX_UPLOAD_BYTES + 1 - jpg.length)]);
	assertError(await put(d, big), 413, 'PAYLOAD_TOO_LARGE');
	assertStillPending(w, d.imageId);
});

test('PUT: a PNG direct upload (contentType image/png) works', async () => {
	const w = seedWorld();
	const png = makeImage(70, 50, 'png');
	const d = await uploadUrlOk(w.tPatient, { fileName: 'a.png', contentType: 'image/png', caseId: w.case });
	assert.deepEqual(d.headers, { 'Content-Type': 'image/png' });
	const r = await put(d, png);
	assert.equal(r.status, 201, r.text);
	assertImage(r.json.data, { mimeType: 'image/png', width: 70, height: 50, sha256: sha256(png) });
});

test('upload-url: validation — fileName, contentType, caseId, fileSize, expiresIn, enums, JSON', async () => {
	const w = seedWorld();
	const base = { fileName: 'a.jpg', contentType: 'image/jpeg', caseId: w.case };
	const cases = [
		[{ ...base, fileName: undefined }, 400, 'fileName'],
		[{ ...base, fileName: '' }, 400, 'fileName'],
		[{ ...base, fileName: 'x'.repeat(256) }, 400, 'fileName'],
		[{ ...base, contentType: undefined }, 400, 'contentType'],
		[{ ...base, caseId: undefined }, 400, 'caseId'],
		[{ ...base, caseId: 'nope' }, 400, 'caseId'],
		[{ ...base, expiresIn: 0 }, 400, 'expiresIn'],
		[{ ...base, expiresIn: 3601 }, 400, 'expiresIn'],
		[{ ...base, expiresIn: 'soon' }, 400, 'expiresIn'],
		[{ ...base, eyeSide: 'middle' }, 400, 'eyeSide'],
		[{ ...base, imageType: 'xray' }, 400, 'imageType'],
		[{ ...base, capturedAt: 'yesterday' }, 400, 'capturedAt'],
		[{ ...base, description: 'd'.repeat(2001) }, 400, 'description'],
		[{ ...base, fileSize: 'big' }, 400, 'fileSize'],
	];
	for (const [body, status, field] of cases) {
		const r = await uploadUrl(w.tDoctor, JSON.parse(JSON.stringify(body)));
		assertError(r, status, 'VALIDATION_FAILED', field);
	}
	assertError(await uploadUrl(w.tDoctor, { ...base, contentType: 'image/gif' }), 415, 'UNSUPPORTED_MEDIA_TYPE');
	assertError(await uploadUrl(w.tDoctor, { ...base, contentType: 'text/html' }), 415, 'UNSUPPORTED_MEDIA_TYPE');
	assertError(await uploadUrl(w.tDoctor, { ...base, fileSize: MAX_UPLOAD_BYTES + 1 }), 413, 'PAYLOAD_TOO_LARGE');
	assertError(await uploadUrl(w.tDoctor, { ...base, caseId: uuid() }), 404, 'NOT_FOUND');
	// limits that are fine
	assert.equal((await uploadUrl(w.tDoctor, { ...base, fileName: 'x'.repeat(255) })).status, 200);
	assert.equal((await uploadUrl(w.tDoctor, { ...base, fileSize: MAX_UPLOAD_BYTES })).status, 200);
	const r = await uploadUrl(w.tDoctor, { ...base, expiresIn: 3600 });
	assert.equal(r.status, 200);
	assert.equal(r.json.data.expiresIn, 3600);
	for (const ct of ['image/png', 'image/tiff', 'image/webp'])
		assert.equal((await uploadUrl(w.tDoctor, { ...base, contentType: ct })).status, 200, ct);
});
