// The error codes of docs/api.md that a request can trigger (DATABASE_UNAVAILABLE
// and STORAGE_UNAVAILABLE are in outage.test.mjs; hostile bodies in
// hostile.test.mjs): body shape {"error","code","requestId"(,"details")},
// X-Request-Id, the check order of the contract.
import { before, test } from 'node:test';
import {
	api, assert, assertError, imageRowCount, makeImage, multipart, randomBytes, seedWorld, upload, uploadOk, uuid,
} from './lib.mjs';

let w;
let img;
let jpg;

before(async () => {
	w = seedWorld();
	jpg = makeImage(64, 48, 'jpg');
	img = await uploadOk(w.tDoctor, w.case, jpg);
});

test('VALIDATION_FAILED: a path id that is not a UUID → 400 with details field "id"', async () => {
	for (const p of ['/api/v1/images/not-a-uuid', '/api/v1/images/12345/proxy', '/api/v1/images/xyz/download-url',
		`/api/v1/images/${img.id.replace(/-/g, '')}x`, `/api/v1/images/${img.id}0`]) {
		const r = await api('GET', p, { token: w.tDoctor });
		assertError(r, 400, 'VALIDATION_FAILED', 'id');
		assert.equal(r.json.details[0].field, 'id');
	}
	// the list route's path parameter is :caseId
	const r = await api('GET', '/api/v1/images/cases/not-a-case', { token: w.tDoctor });
	assertError(r, 400, 'VALIDATION_FAILED');
	assert.ok(['id', 'caseId'].includes(r.json.details[0].field), JSON.stringify(r.json.details));
	assertError(await api('DELETE', '/api/v1/images/nope', { token: w.tDoctor }), 400, 'VALIDATION_FAILED', 'id');
	assertError(await api('POST', '/api/v1/images/nope/complete', { token: w.tDoctor }), 400, 'VALIDATION_FAILED', 'id');
});

test('VALIDATION_FAILED: list query — limit, offset, eyeSide', async () => {
	for (const [q, field] of [['limit=0', 'limit'], ['limit=501', 'limit'], ['limit=abc', 'limit'], ['limit=-1', 'limit'],
		['offset=-1', 'offset'], ['offset=x', 'offset'], ['eyeSide=middle', 'eyeSide']]) {
		assertError(await api('GET', `/api/v1/images/cases/${w.case}?${q}`, { token: w.tDoctor }), 400, 'VALIDATION_FAILED', field);
	}
});

test('VALIDATION_FAILED: upload fields — image, caseId, eyeSide, imageType, capturedAt, description', async () => {
	const cases = [
		[() => upload(w.tDoctor, w.case, null), 'image'],
		[() => upload(w.tDoctor, w.case, jpg, { noCaseId: true }), 'caseId'],
		[() => upload(w.tDoctor, 'not-a-uuid', jpg), 'caseId'],
		[() => upload(w.tDoctor, w.case, jpg, { fields: { eyeSide: 'middle' } }), 'eyeSide'],
		[() => upload(w.tDoctor, w.case, jpg, { fields: { imageType: 'xray' } }), 'imageType'],
		[() => upload(w.tDoctor, w.case, jpg, { fields: { capturedAt: '2025-13-45T99:00:00Z' } }), 'capturedAt'],
		[() => upload(w.tDoctor, w.case, jpg, { fields: { capturedAt: 'last tuesday' } }), 'capturedAt'],
		[() => upload(w.tDoctor, w.case, jpg, { fields: { description: 'x'.repeat(2001) } }), 'description'],
	];
	const rows = imageRowCount(w.case);
	for (const [f, field] of cases) assertError(await f(), 400, 'VALIDATION_FAILED', field);
	assert.equal(imageRowCount(w.case), rows, 'no row for a refused upload');
});

test('VALIDATION_FAILED: a description that is not valid UTF-8', async () => {
	const boundary = 'b0undary';
	const body = Buffer.concat([
		Buffer.from(`--${boundary}\r\nContent-Disposition: form-data; name="caseId"\r\n\r\n${w.case}\r\n`),
		Buffer.from(`--${boundary}\r\nContent-Disposition: form-data; name="description"\r\n\r\n`),
		Buffer.from([0x61, 0xc3, 0x28, 0xff, 0x62]),
		Buffer.from(`\r\n--${boundary}\r\nContent-Disposition: form-data; name="image"; filename="a.jpg"\r\n` +
			'Content-Type: image/jpeg\r\n\r\n'),
		jpg,
		Buffer.from(`\r\n--${boundary}--\r\n`),
	]);
	const r = await api('POST', '/api/v1/images/upload', {
		token: w.tDoctor, body, headers: { 'Content-Type': `multipart/form-data; boundary=${boundary}` },
	});
	assertError(r, 400, 'VALIDATION_FAILED', 'description');
});

test('a description of exactly 2000 characters (multi-byte) is accepted', async () => {
	const description = 'ü'.repeat(2000);
	const i = await uploadOk(w.tDoctor, w.case, jpg, { fields: { description } });
	assert.equal(i.description, description);
});

test('FORBIDDEN: body shape', async () => {
	const r = await api('GET', `/api/v1/images/${img.id}`, { token: w.tOther });
	assertError(r, 403, 'FORBIDDEN');
});

test('NOT_FOUND: missing image, missing case, unknown path', async () => {
	const id = uuid();
	for (const [m, p] of [['GET', `/api/v1/images/${id}`], ['GET', `/api/v1/images/${id}/proxy`],
		['GET', `/api/v1/images/${id}/download-url`], ['POST', `/api/v1/images/${id}/complete`],
		['DELETE', `/api/v1/images/${id}`], ['GET', `/api/v1/images/cases/${id}`],
		['GET', `/api/v1/images/${img.id}/bogus`], ['GET', '/api/v1/images/a/b/c/d'],
		['GET', `/api/v1/images/cases/${w.case}/extra`]]) {
		assertError(await api(m, p, { token: w.tDoctor }), 404, 'NOT_FOUND');
	}
	assertError(await upload(w.tDoctor, uuid(), jpg), 404, 'NOT_FOUND');
});

test('METHOD_NOT_ALLOWED: a known path with a wrong method → 405 with Allow', async () => {
	const cases = [
		['PUT', `/api/v1/images/${img.id}`, ['GET', 'DELETE']],
		['PATCH', `/api/v1/images/${img.id}`, ['GET', 'DELETE']],
		['POST', `/api/v1/images/${img.id}/proxy`, ['GET']],
		['DELETE', `/api/v1/images/${img.id}/download-url`, ['GET']],
		['GET', `/api/v1/images/${img.id}/complete`, ['POST']],
		['POST', `/api/v1/images/cases/${w.case}`, ['GET']],
		['DELETE', '/api/v1/images/health', ['GET']],
		['GET', '/api/v1/images/upload', ['POST']],
		['GET', '/api/v1/images/upload-url', ['POST']],
	];
	for (const [m, p, allow] of cases) {
		const r = await api(m, p, { token: w.tDoctor });
		assertError(r, 405, 'METHOD_NOT_ALLOWED');
		const got = (r.headers.get('allow') || '').split(',').map((s) => s.trim()).filter(Boolean);
		for (const a of allow) assert.ok(got.includes(a), `${m} ${p}: Allow "${r.headers.get('allow')}" has ${a}`);
		assert.ok(!got.includes(m), `${m} ${p}: Allow does not list ${m}`);
	}
});

test('CONFLICT: complete of a pending image without an object', async () => {
	const u = await api('POST', '/api/v1/images/upload-url', {
		token: w.tDoctor, body: { fileName: 'a.jpg', contentType: 'image/jpeg', caseId: w.case },
	});
	assert.equal(u.status, 200);
	assertError(await api('POST', `/api/v1/images/${u.json.data.imageId}/complete`, { token: w.tDoctor }), 409, 'CONFLICT');
});

test('PAYLOAD_TOO_LARGE: upload-url with fileSize over max_upload_bytes', async () => {
	const r = await api('POST', '/api/v1/images/upload-url', {
		token: w.tDoctor, body: { fileName: 'a.jpg', contentType: 'image/jpeg', caseId: w.case, fileSize: 1e12 },
	});
	assertError(r, 413, 'PAYLOAD_TOO_LARGE');
});

test('UNSUPPORTED_MEDIA_TYPE: upload without multipart/form-data', async () => {
	const rows = imageRowCount(w.case);
	for (const ct of ['application/json', 'text/plain', 'image/jpeg', 'multipart/mixed; boundary=abc',
		'application/x-www-form-urlencoded']) {
		const r = await api('POST', '/api/v1/images/upload', { token: w.tDoctor, body: ct === 'image/jpeg' ? jpg : '{}', headers: { 'Content-Type': ct } });
		assertError(r, 415, 'UNSUPPORTED_MEDIA_TYPE');
	}
	const r = await api('POST', '/api/v1/images/upload', { token: w.tDoctor, body: jpg });
	assert.ok([400, 415].includes(r.status), `no Content-Type at all: ${r.status}`);
	assert.equal(imageRowCount(w.case), rows);
});

test('UNPROCESSABLE_IMAGE: JPEG magic followed by garbage', async () => {
	const bad = Buffer.concat([Buffer.from([0xff, 0xd8, 0xff, 0xe0]), randomBytes(3000)]);
	const rows = imageRowCount(w.case);
	assertError(await upload(w.tDoctor, w.case, bad), 422, 'UNPROCESSABLE_IMAGE');
	assert.equal(imageRowCount(w.case), rows);
});

test('every response carries X-Request-Id, errors too, and the body repeats it', async () => {
	const r = await api('GET', `/api/v1/images/${uuid()}`, { token: w.tDoctor });
	assert.ok(r.requestId);
	assert.equal(r.json.requestId, r.requestId);
	const ok = await api('GET', `/api/v1/images/${img.id}`, { token: w.tDoctor });
	assert.ok(ok.requestId);
	const noauth = await api('GET', `/api/v1/images/${img.id}`);
	assert.equal(noauth.json.requestId, noauth.requestId);
});

test('multipart helper sanity: a well-formed multipart upload with extra unknown fields works', async () => {
	const mp = multipart({ caseId: w.case, unknownField: 'ignored' }, { filename: 'a.jpg', data: jpg });
	const r = await api('POST', '/api/v1/images/upload', { token: w.tDoctor, body: mp.body, headers: { 'Content-Type': mp.contentType } });
	assert.equal(r.status, 201, r.text);
});
