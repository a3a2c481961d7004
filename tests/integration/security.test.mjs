// Attacks on polaimg behind the web server, one group per finding:
//
//  - a signed URL redeemed by polaimg itself (local storage: the upload
//    PUT and the /file download link) is checked against the user it was
//    issued to at the moment it is used: 401 when that user is no longer
//    active or no longer exists, 403 when a patient's case went to another
//    patient; links of the format before issuers were recorded keep
//    working until they expire. URLs the store redeems (S3, Supabase) are
//    bounded by their lifetime only: that is what the remote branch shows
//    (and what the README says);
//  - unsafe requests authenticated by the polacare_token cookie need an
//    allowed Origin (or Referer): 403 CSRF_REJECTED; bearer requests do not;
//  - a NUL or malformed UTF-8 in a text field is 400 VALIDATION_FAILED
//    naming the field, never a value cut at the NUL;
//  - a body over the web server's limit is answered in the JSON error shape;
//  - JWT algorithm names are case-sensitive;
//  - a user deactivated straight in the database is refused by every
//    request that starts a second after the commit.
//
// Changes to users and cases are made straight in PostgreSQL (as the clinic
// application would) and the next request waits SETTLE_MS: the documented
// bound within which every worker has dropped its copies (README, "Reads
// per request").
import { test } from 'node:test';
import { createHmac } from 'node:crypto';
import {
	BASE_URL, REMOTE, URL_SIGNING_KEY, api, assert, assert401, assertError, auditByRequest, createCase, createUser,
	curl, imageRow, imageRowCount, lit, makeImage, multipart, rawRequest, seedWorld, sleep, sql, token, upload,
	uploadOk,
} from './lib.mjs';

const SETTLE_MS = 1000;
const settle = () => sleep(SETTLE_MS);
const b64url = (buf) => Buffer.from(buf).toString('base64url');
const jpg = makeImage(64, 48, 'jpg');

async function uploadUrlOk(tok, body) {
	const r = await api('POST', '/api/v1/images/upload-url', { token: tok, body });
	assert.equal(r.status, 200, `upload-url: ${r.status} ${r.text}`);
	return r.json.data;
}

async function downloadUrlOk(tok, id, q = '') {
	const r = await api('GET', `/api/v1/images/${id}/download-url${q}`, { token: tok });
	assert.equal(r.status, 200, `download-url: ${r.status} ${r.text}`);
	return r.json.data;
}

// PUT the bytes as the upload-url answer says (local: polaimg; remote: the store).
const put = (d, data) => (REMOTE ? curl(d.method, d.uploadUrl, { body: data, headers: d.headers })
	: api(d.method, d.uploadUrl, { body: data, headers: d.headers }));

// ---- 6. the issuer of a signed URL, checked when polaimg redeems it ---------------

test('issuer: a doctor deactivated after receiving an upload URL cannot use it (local: 401; store: complete 401)', async () => {
	const w = seedWorld();
	const doc = createUser('doctor');
	const d = await uploadUrlOk(token(doc), { caseId: w.case, fileName: 'a.jpg', contentType: 'image/jpeg' });
	if (!REMOTE) {
		const u = new URL(d.uploadUrl);
		assert.match(u.searchParams.get('token'), new RegExp(`^\\d+\\.${doc}\\.[A-Za-z0-9_-]{43}$`),
			'the upload token names its issuer');
	}
	sql(`UPDATE users SET is_active = false WHERE id = ${lit(doc)}`);
	await settle();
	const r = await put(d, jpg);
	if (!REMOTE) {
		assert401(r, 'INVALID_TOKEN');
	} else {
		// The store redeems its own presigned URL: polaimg never sees it,
		// so it works until it expires (max_upload_url_ttl bounds that);
		// the image becomes ready only through complete, which checks
		// the (now inactive) user.
		assert.equal(r.status, 200, `the store took the PUT: ${r.status} ${r.text.slice(0, 200)}`);
		const c = await api('POST', `/api/v1/images/${d.imageId}/complete`, { token: token(doc) });
		assert401(c, 'INVALID_TOKEN');
	}
	assert.equal(imageRow(d.imageId).status, 'pending', 'nothing was stored under the deactivated doctor');
});

test('issuer: an upload URL of a user since removed is refused; of a patient whose case moved, 403', { skip: REMOTE && 'the store redeems presigned URLs' }, async () => {
	const w = seedWorld();
	const doc = createUser('doctor');
	const d1 = await uploadUrlOk(token(doc), { caseId: w.case, fileName: 'a.jpg', contentType: 'image/jpeg' });
	sql(`DELETE FROM users WHERE id = ${lit(doc)}`);
	const p = createUser('patient');
	const c = createCase(p);
	const d2 = await uploadUrlOk(token(p), { caseId: c, fileName: 'b.jpg', contentType: 'image/jpeg' });
	const other = createUser('patient');
	sql(`UPDATE patient_cases SET patient_id = ${lit(other)} WHERE id = ${lit(c)}`);
	await settle();
	assert401(await put(d1, jpg), 'INVALID_TOKEN');
	const r = await put(d2, jpg);
	assertError(r, 403, 'FORBIDDEN');
	assert.equal(imageRow(d1.imageId).status, 'pending');
	assert.equal(imageRow(d2.imageId).status, 'pending');
	const audit = await auditByRequest(r.requestId);
	assert.deepEqual(audit.map((a) => [a.user_id, a.outcome]), [[p, 'denied']], 'the refusal is on the record');
	// An active issuer still allowed the case: the URL works.
	const d3 = await uploadUrlOk(w.tDoctor, { caseId: w.case, fileName: 'c.jpg', contentType: 'image/jpeg' });
	const ok = await put(d3, jpg);
	assert.equal(ok.status, 201, ok.text);
	assert.equal(ok.json.data.uploadedBy, w.doctor);
});

test('issuer: a download link stops working when its patient is deactivated or loses the case', async () => {
	const w = seedWorld();
	const img = await uploadOk(w.tDoctor, w.case, jpg);
	const d = await downloadUrlOk(w.tPatient, img.id, '?variant=thumbnail');
	if (REMOTE) {
		// Presigned by the store: bounded by its lifetime only
		// (max_download_url_ttl), as the README says.
		sql(`UPDATE users SET is_active = false WHERE id = ${lit(w.patient)}`);
		await settle();
		assert.equal(curl('GET', d.downloadUrl).status, 200, 'a presigned URL works until it expires');
		return;
	}
	const u = new URL(d.downloadUrl);
	assert.equal(u.searchParams.get('uid'), w.patient, 'the link names its issuer');
	const okr = curl('GET', d.downloadUrl);
	assert.equal(okr.status, 200, okr.text);
	const okAudit = await auditByRequest(okr.requestId);
	assert.deepEqual(okAudit.map((a) => [a.user_id, a.action, a.outcome]), [[w.patient, 'file', 'ok']],
		'the download is audited under its issuer');
	// Removing the issuer from the URL breaks the signature.
	u.searchParams.delete('uid');
	assertError(curl('GET', u.toString()), 403, 'FORBIDDEN');
	// The case goes to another patient: 403.
	sql(`UPDATE patient_cases SET patient_id = ${lit(w.otherPatient)} WHERE id = ${lit(w.case)}`);
	await settle();
	assertError(curl('GET', d.downloadUrl), 403, 'FORBIDDEN');
	// Back, then the patient is deactivated: 401.
	sql(`UPDATE patient_cases SET patient_id = ${lit(w.patient)} WHERE id = ${lit(w.case)}`);
	await settle();
	assert.equal(curl('GET', d.downloadUrl).status, 200);
	sql(`UPDATE users SET is_active = false WHERE id = ${lit(w.patient)}`);
	await settle();
	assert401(curl('GET', d.downloadUrl), 'INVALID_TOKEN');
	// A doctor's link to the same image still works.
	const dd = await downloadUrlOk(w.tDoctor, img.id, '?variant=thumbnail');
	assert.equal(curl('GET', dd.downloadUrl).status, 200);
});

// Links of the format before issuers (polaimg-v1) are accepted until they
// expire: made here the way polaimg made them.
const v1sig = (purpose, id, variant, expires) => b64url(createHmac('sha256', URL_SIGNING_KEY)
	.update(`polaimg-v1\n${purpose}\n${id}\n${variant}\n${expires}`).digest());

test('issuer: links of the old format (no issuer) keep working until they expire', { skip: REMOTE && 'local URLs only' }, async () => {
	const w = seedWorld();
	const img = await uploadOk(w.tDoctor, w.case, jpg);
	const exp = Math.floor(Date.now() / 1000) + 300;
	const file = (e, sig) => `${BASE_URL}/api/v1/images/${img.id}/file?variant=display&expires=${e}&sig=${sig}`;
	const r = curl('GET', file(exp, v1sig('download', img.id, 'display', exp)));
	assert.equal(r.status, 200, r.text);
	const past = Math.floor(Date.now() / 1000) - 5;
	assertError(curl('GET', file(past, v1sig('download', img.id, 'display', past))), 403, 'FORBIDDEN');
	// An old upload token: its image's uploader (the row) is checked.
	const d = await uploadUrlOk(w.tDoctor, { caseId: w.case, fileName: 'a.jpg', contentType: 'image/jpeg' });
	const e2 = Math.floor(Date.now() / 1000) + 300;
	const old = `${BASE_URL}/api/v1/images/${d.imageId}/upload?token=${e2}.${v1sig('upload', d.imageId, 'original', e2)}`;
	const p = await api('PUT', old, { body: jpg, headers: d.headers });
	assert.equal(p.status, 201, p.text);
	assert.equal(p.json.data.uploadedBy, w.doctor);
});

// ---- 7. cookie-authenticated unsafe requests need an allowed Origin --------------------

test('csrf: a cookie POST /upload from another origin is 403 CSRF_REJECTED and stores nothing', async () => {
	const w = seedWorld();
	const cookie = `polacare_token=${w.tDoctor}`;
	const send = (headers) => {
		const mp = multipart({ caseId: w.case }, { data: jpg });
		return api('POST', '/api/v1/images/upload', { cookie, body: mp.body,
			headers: { 'Content-Type': mp.contentType, ...headers } });
	};
	assertError(await send({ Origin: 'https://evil.example' }), 403, 'CSRF_REJECTED');
	assertError(await send({}), 403, 'CSRF_REJECTED');           // neither Origin nor Referer
	assertError(await send({ Origin: 'null' }), 403, 'CSRF_REJECTED');
	assertError(await send({ Referer: 'https://evil.example/page' }), 403, 'CSRF_REJECTED');
	assertError(await send({ Origin: BASE_URL.replace('127.0.0.1', 'localhost') }), 403, 'CSRF_REJECTED');
	assert.equal(imageRowCount(w.case), 0, 'nothing stored');
	// The request's own origin (allowed_origins empty), by Origin or by Referer.
	const a = await send({ Origin: BASE_URL });
	assert.equal(a.status, 201, a.text);
	const b = await send({ Referer: `${BASE_URL}/images/?case=${w.case}` });
	assert.equal(b.status, 201, b.text);
	// Bearer requests are not affected, whatever their Origin.
	const c = await upload(w.tDoctor, w.case, jpg, { headers: { Origin: 'https://evil.example' } });
	assert.equal(c.status, 201, c.text);
	assert.equal(imageRowCount(w.case), 3);
});

test('csrf: cookie DELETE and upload-url from another origin refused; GET with the cookie works from anywhere', async () => {
	const w = seedWorld();
	const img = await uploadOk(w.tDoctor, w.case, jpg);
	const cookie = `polacare_token=${w.tAdmin}`;
	const evil = { Origin: 'https://evil.example' };
	assertError(await api('DELETE', `/api/v1/images/${img.id}`, { cookie, headers: evil }), 403, 'CSRF_REJECTED');
	assert.equal(imageRow(img.id).deleted_at, null, 'not deleted');
	assertError(await api('POST', '/api/v1/images/upload-url', { cookie, headers: evil,
		body: { caseId: w.case, fileName: 'a.jpg', contentType: 'image/jpeg' } }), 403, 'CSRF_REJECTED');
	assertError(await api('POST', `/api/v1/images/${img.id}/complete`, { cookie, headers: evil }), 403, 'CSRF_REJECTED');
	const g = await api('GET', `/api/v1/images/${img.id}`, { cookie, headers: evil });
	assert.equal(g.status, 200, g.text);
	// An invalid cookie is still 401, not 403.
	assertError(await api('DELETE', `/api/v1/images/${img.id}`, { cookie: 'polacare_token=x.y.z', headers: evil }),
		401, 'INVALID_TOKEN');
	const del = await api('DELETE', `/api/v1/images/${img.id}`, { cookie, headers: { Origin: BASE_URL } });
	assert.equal(del.status, 200, del.text);
});

// ---- 8. NUL and malformed UTF-8 in text fields ----------------------------------------

function rawMultipart(fields) {
	const boundary = '----polaimgsec' + Date.now();
	const parts = [];
	for (const [k, v] of fields) {
		parts.push(Buffer.from(`--${boundary}\r\nContent-Disposition: form-data; name="${k}"\r\n\r\n`));
		parts.push(Buffer.isBuffer(v) ? v : Buffer.from(v, 'latin1'));
		parts.push(Buffer.from('\r\n'));
	}
	parts.push(Buffer.from(`--${boundary}\r\nContent-Disposition: form-data; name="image"; filename="a.jpg"\r\n` +
		'Content-Type: image/jpeg\r\n\r\n'), jpg, Buffer.from(`\r\n--${boundary}--\r\n`));
	return { body: Buffer.concat(parts), contentType: `multipart/form-data; boundary=${boundary}` };
}

test('text: a NUL or malformed UTF-8 in a multipart field is 400 naming the field, nothing stored', async () => {
	const w = seedWorld();
	const send = (fields) => {
		const mp = rawMultipart(fields);
		return api('POST', '/api/v1/images/upload', { token: w.tDoctor, body: mp.body,
			headers: { 'Content-Type': mp.contentType } });
	};
	const bad = [
		['caseId', `${w.case}\0B`], ['description', 'visible\0hidden'],
		['description', Buffer.from([0x61, 0xc0, 0x80, 0x62])],          // overlong NUL
		['description', Buffer.from([0xed, 0xa0, 0x80])],                // surrogate U+D800
		['description', Buffer.from([0xf4, 0x90, 0x80, 0x80])],          // above U+10FFFF
		['eyeSide', 'left\0right'], ['imageType', Buffer.from([0xe0, 0x80, 0xaf])],
		['capturedAt', '2026-01-01T00:00:00Z\0junk'],
	];
	for (const [field, value] of bad) {
		const fields = [['caseId', w.case], ...(field === 'caseId' ? [] : [[field, value]])];
		if (field === 'caseId') fields[0] = ['caseId', value];
		const r = await send(fields);
		assertError(r, 400, 'VALIDATION_FAILED', field);
	}
	// A caseId that is A\0B with A a real case: stored as A before.
	assertError(await send([['caseId', `${w.case}\0${w.otherCase}`]]), 400, 'VALIDATION_FAILED', 'caseId');
	assert.equal(imageRowCount(w.case), 0, 'nothing stored');
	const ok = await send([['caseId', w.case], ['description', 'caf\u00e9 \u{1F441}']].map(([k, v]) => [k, Buffer.from(v, 'utf8')]));
	assert.equal(ok.status, 201, ok.text);
	assert.equal(ok.json.data.description, 'caf\u00e9 \u{1F441}');
});

test('text: JSON strings of upload-url with \\u0000 or malformed UTF-8 are 400 naming the field', async () => {
	const w = seedWorld();
	const send = (raw) => api('POST', '/api/v1/images/upload-url', { token: w.tDoctor, body: Buffer.from(raw),
		headers: { 'Content-Type': 'application/json' } });
	const base = `"caseId":"${w.case}","contentType":"image/jpeg"`;
	assertError(await send(`{${base},"fileName":"a.jpg","description":"visible\\u0000hidden"}`), 400, 'VALIDATION_FAILED', 'description');
	assertError(await send(`{"caseId":"${w.case}\\u0000x","contentType":"image/jpeg","fileName":"a.jpg"}`), 400, 'VALIDATION_FAILED', 'caseId');
	assertError(await send(Buffer.concat([Buffer.from(`{${base},"fileName":"a`), Buffer.from([0xc0, 0xaf]),
		Buffer.from('.jpg"}')])), 400, 'VALIDATION_FAILED', 'fileName');
	// A member name with \u0000 (json-c would cut it to "caseId").
	assertError(await send(`{"caseId\\u0000x":"${w.case}","contentType":"image/jpeg","fileName":"a.jpg"}`), 400, 'VALIDATION_FAILED', 'body');
	assert.equal(imageRowCount(w.case), 0);
	const ok = await send(`{${base},"fileName":"a.jpg","description":"\\u00e9"}`);
	assert.equal(ok.status, 200, ok.text);
});

test('text: a query value with malformed UTF-8 or an encoded NUL is 400 naming the parameter', async () => {
	const w = seedWorld();
	const img = await uploadOk(w.tDoctor, w.case, jpg);
	assertError(await api('GET', `/api/v1/images/cases/${w.case}?eyeSide=left%C0%80`, { token: w.tDoctor }),
		400, 'VALIDATION_FAILED', 'eyeSide');
	assertError(await api('GET', `/api/v1/images/cases/${w.case}?limit=1%00`, { token: w.tDoctor }),
		400, 'VALIDATION_FAILED', 'limit');
	assertError(await api('GET', `/api/v1/images/${img.id}/download-url?variant=display%ED%A0%80`, { token: w.tDoctor }),
		400, 'VALIDATION_FAILED', 'variant');
	assertError(await api('GET', `/api/v1/images/${img.id}/proxy?variant=display%F4%90%80%80`, { token: w.tDoctor }),
		400, 'VALIDATION_FAILED', 'variant');
});

// ---- 9. the web server's own 413 --------------------------------------------------------

// nginx refuses the declared length at once (client_max_body_size) with the
// snippet's JSON page; Apache (both configurations) refuses it before
// reading the body (an <If> on Content-Length) with the JSON ErrorDocument:
// LimitRequestBody alone is enforced only while reading, and mod_proxy_fcgi
// streams past it while mod_fcgid passes an empty body on. polaimg itself
// refuses, before reading, a length no image within max_upload_bytes can
// have. The first 256 KiB are sent (Apache reads some of the body before
// it connects to polaimg).
test('413: a body over the web server limit gets the JSON error shape', async () => {
	const w = seedWorld();
	const r = await rawRequest(Buffer.concat([Buffer.from(`POST /api/v1/images/upload HTTP/1.1\r\nHost: 127.0.0.1\r\n` +
		`Authorization: Bearer ${w.tDoctor}\r\nContent-Type: multipart/form-data; boundary=x\r\n` +
		'Content-Length: 600000000\r\nConnection: close\r\n\r\n--x\r\n'), Buffer.alloc(256 * 1024, 0x41)]),
	{ timeoutMs: 30000 });
	assert.equal(r.status, 413, r.raw?.toString('latin1').slice(0, 800));
	assert.match(r.headers['content-type'] || '', /^application\/json/);
	const j = JSON.parse(r.body.toString('utf8'));
	assert.equal(j.code, 'PAYLOAD_TOO_LARGE');
	assert.equal(j.error, 'Payload too large');
	if (j.requestId !== undefined) assert.equal(j.requestId, r.headers['x-request-id']);
	assert.equal(imageRowCount(w.case), 0);
});

// ---- 10. JWT algorithm names are case-sensitive -------------------------------------------

test('jwt: "alg": "hs256" (or any other spelling of HS256) is 401', async () => {
	const w = seedWorld();
	const now = Math.floor(Date.now() / 1000);
	for (const alg of ['hs256', 'Hs256', 'hS256']) {
		const input = `${b64url(JSON.stringify({ alg, typ: 'JWT' }))}.${b64url(JSON.stringify({ userId: w.doctor, exp: now + 600 }))}`;
		const tok = `${input}.${b64url(createHmac('sha256', process.env.JWT_SECRET).update(input).digest())}`;
		const r = await api('GET', `/api/v1/images/cases/${w.case}`, { token: tok });
		assertError(r, 401, 'INVALID_TOKEN');
	}
	assert.equal((await api('GET', `/api/v1/images/cases/${w.case}`, { token: w.tDoctor })).status, 200);
});

// ---- 11. deactivation straight in the database: the bound -----------------------------------

test('freshness bound: no request starting 1 s after a deactivation commits is answered from the old row', async () => {
	const w = seedWorld();
	const doc = createUser('doctor');
	const tok = token(doc);
	const path = `/api/v1/images/cases/${w.case}`;
	// Every worker has the user's row (parallel requests).
	for (const r of await Promise.all(Array.from({ length: 12 }, () => api('GET', path, { token: tok }))))
		assert.equal(r.status, 200);
	sql(`UPDATE users SET is_active = false WHERE id = ${lit(doc)}`);
	await sleep(1000);
	const rs = await Promise.all(Array.from({ length: 12 }, () => api('GET', path, { token: tok })));
	assert.deepEqual(rs.map((r) => r.status), Array(12).fill(401), 'every request after the bound sees the change');
});
