// Direct upload: POST upload-url → PUT uploadUrl (no bearer token, exactly
// the returned method and headers) → ready; complete; every refusal of the
// PUT; upload-url validation.
//
// Where the PUT goes depends on the back end (docs/api.md, upload-url):
//   local     to polaimg (PUT /api/v1/images/<id>/upload?token=…), which
//             checks the bytes and completes the image itself: 201 {data}.
//   s3        to the store: a SigV4 presigned PUT with Content-Type signed.
//             S3 answers 200 with an empty body (errors are XML with HTTP
//             403/400); the image stays pending until POST /complete, which
//             checks the object and answers 200 {data}.
//   supabase  to the store: a signed upload URL (a JWT scoped "upload",
//             upsert false). The stand-in answers 200 {"Key"}; errors are
//             HTTP 400 with the real status in the JSON. Content-Type is not
//             part of the signature: complete checks it instead (415).
// Each test says what it expects of each; the checks on polaimg's side
// (pending row, no objects left, .tmp empty) are the same for all three.
import { test } from 'node:test';
import {
	BASE_URL, MAX_UPLOAD_BYTES, REMOTE, RFC3339_UTC_RE, STORAGE, api, assert, assertError, assertImage,
	assertStoreRefused, assertStoreUrl, curl, imageRow, listFiles, makeImage, objectsOf, polaimgCli,
	readObject, seedWorld, sha256, sleep, tmpEntries, uuid,
} from './lib.mjs';

async function uploadUrl(tok, body) {
	return api('POST', '/api/v1/images/upload-url', { token: tok, body });
}

async function uploadUrlOk(tok, body) {
	const r = await uploadUrl(tok, body);
	assert.equal(r.status, 200, `upload-url: ${r.status} ${r.text}`);
	return r.json.data;
}

// PUT the bytes exactly as the upload-url answer says: to polaimg through
// nginx (local), or straight to the store with curl, as a client would.
function put(d, data, { url = d.uploadUrl, headers = d.headers, method = d.method } = {}) {
	return REMOTE ? curl(method, url, { body: data, headers }) : api(method, url, { body: data, headers });
}

const complete = (tok, id) => api('POST', `/api/v1/images/${id}/complete`, { token: tok });

// The store took a PUT: S3 answers 200 with an empty body, the Supabase
// stand-in 200 {"Key": "<bucket>/<key>"}.
function assertStoreTook(r, d) {
	assert.equal(r.status, 200, `the store refused the PUT: ${r.status} ${r.text.slice(0, 300)}`);
	if (STORAGE === 'supabase') assert.equal(r.json?.Key, `${process.env.SUPA_BUCKET}/${d.key}`);
	else assert.equal(r.buf.length, 0);
}

// Sends the bytes as told and finishes the upload the way the back end
// needs it; returns the ready image. Local: the PUT answers 201 {data}.
// Remote: the store takes the PUT, the image is still pending with the
// original in the store and absent from the list, then complete answers
// 200 {data}.
async function directUpload(tok, d, data) {
	const r = await put(d, data);
	if (!REMOTE) {
		assert.equal(r.status, 201, r.text);
		assert.deepEqual(Object.keys(r.json), ['data']);
		return r.json.data;
	}
	assertStoreTook(r, d);
	const row = imageRow(d.imageId);
	assert.equal(row.status, 'pending', 'the store has the bytes; polaimg does not know yet');
	assert.deepEqual(objectsOf(row.case_id, d.imageId), ['original']);
	assert.ok(readObject(row.case_id, d.imageId, 'original').equals(Buffer.from(data)), 'the store holds the bytes sent');
	const l = await api('GET', `/api/v1/images/cases/${row.case_id}`, { token: tok });
	assert.ok(!l.json.data.images.some((i) => i.id === d.imageId), 'a pending image is not listed');
	const c = await complete(tok, d.imageId);
	assert.equal(c.status, 200, c.text);
	assert.deepEqual(Object.keys(c.json), ['data']);
	return c.json.data;
}

// Bytes that polaimg must refuse (wrong type, corrupt, too large), sent
// with the right URL and headers. Local: the PUT itself is refused with
// status/code. Remote: the store cannot look at the bytes and takes them;
// complete refuses with status/code and deletes the object.
async function refusedBytes(tok, d, data, status, code) {
	const r = await put(d, data);
	if (!REMOTE) {
		assertError(r, status, code);
		return;
	}
	assertStoreTook(r, d);
	assertError(await complete(tok, d.imageId), status, code);
}

// A PUT that must not reach the bytes' destination: local → polaimg's 403
// FORBIDDEN; remote → the store's refusal (S3 403 with one of s3Codes,
// Supabase 400 with one of supaCodes).
function assertPutRefused(r, store, what) {
	if (REMOTE) assertStoreRefused(r, store, what);
	else assertError(r, 403, 'FORBIDDEN');
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
	assert.equal(d.key, `cases/${w.case}/${d.imageId}/original`);
	if (REMOTE) {
		// the store's own URL for the original's key, valid expiresIn
		assert.equal(assertStoreUrl(d.uploadUrl, d.key, 'PUT'), 900);
	} else {
		const u = new URL(d.uploadUrl);
		assert.equal(`${u.protocol}//${u.host}`, BASE_URL);
		assert.equal(u.pathname, `/api/v1/images/${d.imageId}/upload`);
		assert.ok(u.searchParams.get('token'), 'token query parameter');
	}
	const row = imageRow(d.imageId);
	assert.equal(row.status, 'pending');
	assert.equal(row.case_id, w.case);
	assert.equal(row.uploaded_by, w.patient);
	assert.deepEqual(objectsOf(w.case, d.imageId), []);
});

test('direct upload: PUT with the returned method and headers (+ complete for remote) → ready, listed, stored', async () => {
	const w = seedWorld();
	const jpg = makeImage(120, 90, 'jpg');
	const d = await uploadUrlOk(w.tPatient, {
		fileName: 'eye.jpg', contentType: 'image/jpeg', caseId: w.case, eyeSide: 'right', imageType: 'oct',
		description: 'direct', capturedAt: '2024-05-06T07:08:09Z', fileSize: jpg.length,
	});
	const img = await directUpload(w.tPatient, d, jpg);
	assertImage(img, {
		id: d.imageId, caseId: w.case, status: 'ready', eyeSide: 'right', imageType: 'oct', description: 'direct',
		fileSize: jpg.length, sha256: sha256(jpg), width: 120, height: 90, mimeType: 'image/jpeg', order: 1,
		uploadedBy: w.patient,
	});
	assert.match(img.capturedAt, /^2024-05-06T07:08:09(\.0+)?Z$/);
	assert.deepEqual(objectsOf(w.case, d.imageId), ['display.jpg', 'original', 'thumb.jpg']);
	assert.ok(readObject(w.case, d.imageId, 'original').equals(jpg));
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
	const img = await directUpload(w.tDoctor, d, jpg);
	assertImage(img, { status: 'ready', sha256: sha256(jpg) });
	for (let i = 0; i < 2; i++) {
		const c = await complete(w.tDoctor, d.imageId);
		assert.equal(c.status, 200, c.text);
		assert.deepEqual(Object.keys(c.json), ['data']);
		assert.deepEqual(c.json.data, img);
	}
	assert.deepEqual(objectsOf(w.case, d.imageId), ['display.jpg', 'original', 'thumb.jpg']);
});

test('complete: a pending image with nothing uploaded → 409 CONFLICT, stays pending', async () => {
	const w = seedWorld();
	const d = await uploadUrlOk(w.tDoctor, { fileName: 'a.jpg', contentType: 'image/jpeg', caseId: w.case });
	assertError(await api('POST', `/api/v1/images/${d.imageId}/complete`, { token: w.tDoctor }), 409, 'CONFLICT');
	assertStillPending(w, d.imageId);
});

// The same URL once more after the image is ready:
//   local     polaimg refuses: 409 CONFLICT.
//   supabase  the store refuses: the token says upsert false, so the key
//             cannot be written twice (HTTP 400, statusCode 409,
//             KeyAlreadyExists).
//   s3        the store TAKES it: a presigned PUT cannot be conditional,
//             since docs/api.md fixes the client's headers to Content-Type alone
//             (If-None-Match would have to be sent by the client). This is
//             the limit README.md documents: within the URL's lifetime the
//             uploader can replace the original. What polaimg guarantees
//             then: the recorded image does not change (complete answers
//             the same resource) and `polaimg verify` reports the object
//             as differing from the recorded size/SHA-256.
test('PUT: a second PUT on a ready image: local 409, Supabase refused; S3 replaces it and verify reports it', async () => {
	const w = seedWorld();
	const jpg = makeImage(64, 48, 'jpg');
	const other = makeImage(100, 50, 'jpg');
	const d = await uploadUrlOk(w.tDoctor, { fileName: 'a.jpg', contentType: 'image/jpeg', caseId: w.case });
	const img = await directUpload(w.tDoctor, d, jpg);
	const again = await put(d, other);
	if (STORAGE === 'local') {
		assertError(again, 409, 'CONFLICT');
	} else if (STORAGE === 'supabase') {
		assert.equal(again.status, 400, again.text);
		assert.equal(again.json.statusCode, '409');
		assert.equal(again.json.code, 'KeyAlreadyExists');
	} else {
		assertStoreTook(again, d);
		assert.ok(readObject(w.case, d.imageId, 'original').equals(other), 'S3 replaced the original');
		const c = await complete(w.tDoctor, d.imageId);
		assert.equal(c.status, 200, c.text);
		assert.deepEqual(c.json.data, img, 'the recorded image is unchanged');
		const key = `cases/${w.case}/${d.imageId}/original`;
		const v = polaimgCli('verify');
		assert.equal(v.status, 1, `verify must fail: ${v.stdout}${v.stderr}`);
		assert.match(v.stdout, new RegExp(`^(size|sha256) mismatch ${key} \\(image ${d.imageId}\\)`, 'm'));
		// the uploader puts the first bytes back: verify agrees again
		assertStoreTook(await put(d, jpg), d);
		const v2 = polaimgCli('verify');
		assert.match(v2.stdout, new RegExp(`^ok ${key}$`, 'm'), v2.stdout);
	}
	assert.ok(readObject(w.case, d.imageId, 'original').equals(jpg));
	const o = await api('GET', `/api/v1/images/${d.imageId}/proxy?variant=original`, { token: w.tDoctor });
	assert.ok(o.buf.equals(jpg));
	assert.equal(o.headers.get('etag'), `"${sha256(jpg)}"`);
	assert.deepEqual(tmpEntries(), []);
});

// The URL's credential, tampered with: local and Supabase carry a token
// parameter, S3 its X-Amz-* parameters (the signature, and the expiry and
// date it covers). Refused by whoever checks it: polaimg 403 FORBIDDEN, S3
// 403 SignatureDoesNotMatch, Supabase InvalidJWT.
test('PUT: a tampered URL → refused (local 403 FORBIDDEN, S3 403, Supabase 400), nothing stored', async () => {
	const w = seedWorld();
	const d = await uploadUrlOk(w.tDoctor, { fileName: 'a.jpg', contentType: 'image/jpeg', caseId: w.case });
	const flip = (s, i) => s.slice(0, i) + (s[i] === 'A' ? 'B' : 'A') + s.slice(i + 1);
	const flipHex = (s, i) => s.slice(0, i) + (s[i] === '0' ? '1' : '0') + s.slice(i + 1);
	const tampered = [];
	const withParam = (name, value) => { const u = new URL(d.uploadUrl); u.searchParams.set(name, value); return u.toString(); };
	if (STORAGE === 's3') {
		const u = new URL(d.uploadUrl);
		const sig = u.searchParams.get('X-Amz-Signature');
		const date = u.searchParams.get('X-Amz-Date');
		tampered.push(['signature, last digit', withParam('X-Amz-Signature', flipHex(sig, sig.length - 1))]);
		tampered.push(['signature, first digit', withParam('X-Amz-Signature', flipHex(sig, 0))]);
		tampered.push(['longer lifetime', withParam('X-Amz-Expires', '3600')]);
		tampered.push(['date a second later', withParam('X-Amz-Date', date.replace(/(\d)Z$/, (m, x) => `${(Number(x) + 1) % 10}Z`))]);
		tampered.push(['another key', d.uploadUrl.replace('/original?', '/display.jpg?')]);
	} else {
		const t = new URL(d.uploadUrl).searchParams.get('token');
		for (const bad of [flip(t, t.length - 2), flip(t, 1), `${t}x`, 'garbage'])
			tampered.push([`token ${bad.slice(0, 12)}…`, withParam('token', bad)]);
	}
	for (const [what, url] of tampered)
		assertPutRefused(await put(d, makeImage(64, 48, 'jpg'), { url }),
			{ s3Codes: ['SignatureDoesNotMatch'], supaCodes: ['InvalidJWT'] }, what);
	// no credential at all
	const u = new URL(d.uploadUrl);
	for (const p of ['token', 'X-Amz-Signature']) u.searchParams.delete(p);
	if (STORAGE !== 's3') u.searchParams.set('token', '');
	const r = await put(d, makeImage(64, 48, 'jpg'), { url: u.toString() });
	assert.ok([400, 403].includes(r.status), `no credential: ${r.status} ${r.text.slice(0, 200)}`);
	u.searchParams.delete('token');
	const r2 = await put(d, makeImage(64, 48, 'jpg'), { url: u.toString() });
	assert.ok([400, 403].includes(r2.status), `no credential parameter: ${r2.status} ${r2.text.slice(0, 200)}`);
	assertStillPending(w, d.imageId);
	// and the untouched URL still works
	assertImage(await directUpload(w.tDoctor, d, makeImage(64, 48, 'jpg')), { status: 'ready' });
});

test("PUT: one image's URL credential on another pending image's URL → refused", async () => {
	const w = seedWorld();
	const a = await uploadUrlOk(w.tDoctor, { fileName: 'a.jpg', contentType: 'image/jpeg', caseId: w.case });
	const b = await uploadUrlOk(w.tDoctor, { fileName: 'b.jpg', contentType: 'image/jpeg', caseId: w.case });
	const url = a.uploadUrl.replace(a.imageId, b.imageId);
	assert.notEqual(url, a.uploadUrl);
	// S3: the key is signed; Supabase: the token's url claim names a's key
	assertPutRefused(await put(a, makeImage(64, 48, 'jpg'), { url }),
		{ s3Codes: ['SignatureDoesNotMatch'], supaCodes: ['InvalidSignature'] }, 'another image');
	assertStillPending(w, b.imageId);
	assertStillPending(w, a.imageId);
});

// Another Content-Type than the URL was issued for: local 403 (polaimg
// compares it), S3 403 SignatureDoesNotMatch (content-type is a signed
// header). A Supabase signed upload URL does not cover Content-Type, so the
// store takes the bytes; complete then finds the object's type differs
// from the declared one (PNG bytes: also by sniffing; JPEG bytes sent as
// application/octet-stream: by the type the store recorded) → 415, the
// object is deleted and the image stays pending.
test('PUT: a Content-Type other than the one given to upload-url → refused (Supabase: 415 at complete)', async () => {
	const w = seedWorld();
	const d = await uploadUrlOk(w.tDoctor, { fileName: 'a.jpg', contentType: 'image/jpeg', caseId: w.case });
	for (const [data, type] of [[makeImage(64, 48, 'png'), 'image/png'], [makeImage(64, 48, 'jpg'), 'application/octet-stream'],
		[makeImage(64, 48, 'jpg'), 'text/html']]) {
		const r = await put(d, data, { headers: { 'Content-Type': type } });
		if (STORAGE === 'supabase') {
			assertStoreTook(r, d);
			assert.deepEqual(objectsOf(w.case, d.imageId), ['original']);
			assertError(await complete(w.tDoctor, d.imageId), 415, 'UNSUPPORTED_MEDIA_TYPE');
		} else {
			assertPutRefused(r, { s3Codes: ['SignatureDoesNotMatch'] }, type);
		}
		assertStillPending(w, d.imageId);
	}
	// the same URL with the declared type works
	assertImage(await directUpload(w.tDoctor, d, makeImage(64, 48, 'jpg')), { status: 'ready', mimeType: 'image/jpeg' });
});

// Expired: local 403 FORBIDDEN; S3 403 AccessDenied ("Request has
// expired"); Supabase: jose's exp check fails (InvalidJWT, or ExpiredToken
// from the server's second look at exp).
test('PUT: an expired upload URL (expiresIn 1, 2 s later) → refused', async () => {
	const w = seedWorld();
	const d = await uploadUrlOk(w.tDoctor, { fileName: 'a.jpg', contentType: 'image/jpeg', caseId: w.case, expiresIn: 1 });
	assert.equal(d.expiresIn, 1);
	if (REMOTE) assert.equal(assertStoreUrl(d.uploadUrl, d.key, 'PUT'), 1, 'the store URL lives 1 s');
	await sleep(2100);
	assertPutRefused(await put(d, makeImage(64, 48, 'jpg')),
		{ s3Codes: ['AccessDenied'], supaCodes: ['InvalidJWT', 'ExpiredToken'] }, 'expired');
	assertStillPending(w, d.imageId);
});

// (Remote: the store takes any bytes; complete sniffs them, refuses and
// deletes the object, so the upsert-false Supabase URL can be used again.)
test('PUT: sniffed type differs from the declared contentType → 415, stays pending', async () => {
	const w = seedWorld();
	const d = await uploadUrlOk(w.tDoctor, { fileName: 'a.jpg', contentType: 'image/jpeg', caseId: w.case });
	const files = listFiles();
	await refusedBytes(w.tDoctor, d, makeImage(64, 48, 'png'), 415, 'UNSUPPORTED_MEDIA_TYPE');
	assertStillPending(w, d.imageId);
	assert.deepEqual(listFiles(), files);
	// The URL still works for the right bytes.
	assertImage(await directUpload(w.tDoctor, d, makeImage(64, 48, 'jpg')), { status: 'ready' });
});

test('PUT: a corrupt JPEG → 422, stays pending, nothing stored', async () => {
	const w = seedWorld();
	const jpg = makeImage(300, 200, 'jpg');
	const d = await uploadUrlOk(w.tDoctor, { fileName: 'a.jpg', contentType: 'image/jpeg', caseId: w.case });
	const files = listFiles();
	await refusedBytes(w.tDoctor, d, jpg.subarray(0, Math.floor(jpg.length / 3)), 422, 'UNPROCESSABLE_IMAGE');
	assertStillPending(w, d.imageId);
	assert.deepEqual(listFiles(), files);
});

// (Remote: a presigned S3 PUT cannot bound the size and the test bucket
// has no size limit, so the store takes it; complete measures it → 413.)
test('PUT: a body over max_upload_bytes → 413, stays pending', async () => {
	const w = seedWorld();
	const d = await uploadUrlOk(w.tDoctor, { fileName: 'a.jpg', contentType: 'image/jpeg', caseId: w.case });
	const jpg = makeImage(64, 48, 'jpg');
	const big = Buffer.concat([jpg, Buffer.alloc(MAX_UPLOAD_BYTES + 1 - jpg.length)]);
	const files = listFiles();
	await refusedBytes(w.tDoctor, d, big, 413, 'PAYLOAD_TOO_LARGE');
	assertStillPending(w, d.imageId);
	assert.deepEqual(listFiles(), files);
});

test('PUT: a PNG direct upload (contentType image/png) works', async () => {
	const w = seedWorld();
	const png = makeImage(70, 50, 'png');
	const d = await uploadUrlOk(w.tPatient, { fileName: 'a.png', contentType: 'image/png', caseId: w.case });
	assert.deepEqual(d.headers, { 'Content-Type': 'image/png' });
	assertImage(await directUpload(w.tPatient, d, png), { mimeType: 'image/png', width: 70, height: 50, sha256: sha256(png) });
	assert.deepEqual(objectsOf(w.case, d.imageId), ['display.png', 'original', 'thumb.png']);
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
