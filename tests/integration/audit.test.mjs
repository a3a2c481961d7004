// image_events: one row per upload, upload_url, complete, view, list, proxy,
// download_url, file (signed-URL redemption) and delete, with the request id
// of the response's X-Request-Id header, the caller, the image and the case.
//
// With S3 or Supabase the signed URLs are the store's: the direct-upload PUT
// and the download go to the store, never through polaimg, so polaimg
// audits what it sees — issuing the URL (upload_url, download_url) and the
// complete — and has no "file" row to write (docs/api.md audits "local
// signed-URL redemption"). The tests below say so where it applies.
import { before, test } from 'node:test';
import {
	REMOTE, api, assert, assertStoreRefused, auditByRequest, auditRows, curl, lit, makeImage, seedWorld, upload,
	uploadOk,
} from './lib.mjs';

let w;
let jpg;
let img;

before(async () => {
	w = seedWorld();
	jpg = makeImage(64, 48, 'jpg');
	img = await uploadOk(w.tDoctor, w.case, jpg);
});

// The single audit row of response r, checked against exp.
async function oneRow(r, exp) {
	assert.ok(r.requestId, 'response has X-Request-Id');
	const rows = await auditByRequest(r.requestId);
	assert.equal(rows.length, 1, `exactly one audit row for request ${r.requestId}: ${JSON.stringify(rows)}`);
	const row = rows[0];
	assert.equal(row.request_id, r.requestId);
	assert.ok(row.created_at, 'created_at');
	assert.ok(Math.abs(Date.parse(row.created_at) - Date.now()) < 120000, `created_at is now: ${row.created_at}`);
	assert.equal(row.remote_addr, '127.0.0.1');
	for (const [k, v] of Object.entries(exp)) assert.equal(row[k], v, `image_events.${k}`);
	return row;
}

test('audit: upload', async () => {
	const r = await upload(w.tPatient, w.case, jpg);
	assert.equal(r.status, 201);
	await oneRow(r, {
		action: 'upload', outcome: 'ok', user_id: w.patient, role: 'patient', image_id: r.json.data.id, case_id: w.case,
	});
});

test('audit: upload_url, and the PUT (local) or complete (remote) that completes the image', async () => {
	const r = await api('POST', '/api/v1/images/upload-url', {
		token: w.tDoctor, body: { fileName: 'a.jpg', contentType: 'image/jpeg', caseId: w.case },
	});
	assert.equal(r.status, 200);
	const id = r.json.data.imageId;
	await oneRow(r, { action: 'upload_url', outcome: 'ok', user_id: w.doctor, role: 'doctor', image_id: id, case_id: w.case });
	if (!REMOTE) {
		// the local PUT carries no bearer token: the row names the user the URL was issued to
		const p = await api('PUT', r.json.data.uploadUrl, { body: jpg, headers: r.json.data.headers });
		assert.equal(p.status, 201);
		// h_put_upload records the completion as "complete" (not "upload")
		await oneRow(p, { action: 'complete', outcome: 'ok', image_id: id, case_id: w.case, user_id: w.doctor });
		return;
	}
	// the PUT goes to the store: no row; complete (by the admin) writes one
	const before = auditRows(`image_id = ${lit(id)}`).length;
	const p = curl('PUT', r.json.data.uploadUrl, { body: jpg, headers: r.json.data.headers });
	assert.equal(p.status, 200, p.text);
	assert.equal(auditRows(`image_id = ${lit(id)}`).length, before, 'polaimg never saw the PUT');
	const c = await api('POST', `/api/v1/images/${id}/complete`, { token: w.tAdmin });
	assert.equal(c.status, 200, c.text);
	await oneRow(c, { action: 'complete', outcome: 'ok', user_id: w.admin, role: 'admin', image_id: id, case_id: w.case });
});

test('audit: complete (of an image already ready) is audited', async () => {
	const c = await api('POST', `/api/v1/images/${img.id}/complete`, { token: w.tAdmin });
	assert.equal(c.status, 200);
	await oneRow(c, { action: 'complete', outcome: 'ok', user_id: w.admin, role: 'admin', image_id: img.id, case_id: w.case });
});

test('audit: view (GET /:id)', async () => {
	const r = await api('GET', `/api/v1/images/${img.id}`, { token: w.tPatient });
	assert.equal(r.status, 200);
	await oneRow(r, { action: 'view', outcome: 'ok', user_id: w.patient, role: 'patient', image_id: img.id, case_id: w.case });
});

test('audit: list', async () => {
	const r = await api('GET', `/api/v1/images/cases/${w.case}`, { token: w.tAdmin });
	assert.equal(r.status, 200);
	await oneRow(r, { action: 'list', outcome: 'ok', user_id: w.admin, role: 'admin', case_id: w.case });
});

test('audit: proxy, with the variant', async () => {
	let r = await api('GET', `/api/v1/images/${img.id}/proxy`, { token: w.tPatient });
	assert.equal(r.status, 200);
	await oneRow(r, {
		action: 'proxy', outcome: 'ok', user_id: w.patient, role: 'patient', image_id: img.id, case_id: w.case, variant: 'display',
	});
	r = await api('GET', `/api/v1/images/${img.id}/proxy?thumbnail=true`, { token: w.tPatient });
	assert.equal(r.status, 200);
	await oneRow(r, { action: 'proxy', image_id: img.id, variant: 'thumbnail' });
	r = await api('GET', `/api/v1/images/${img.id}/proxy?variant=original`, { token: w.tDoctor });
	await oneRow(r, { action: 'proxy', image_id: img.id, variant: 'original', user_id: w.doctor, role: 'doctor' });
});

test('audit: download_url and file (redemption of the signed URL)', async () => {
	const r = await api('GET', `/api/v1/images/${img.id}/download-url?variant=original`, { token: w.tPatient });
	assert.equal(r.status, 200);
	await oneRow(r, {
		action: 'download_url', outcome: 'ok', user_id: w.patient, role: 'patient', image_id: img.id, case_id: w.case,
		variant: 'original',
	});
	if (REMOTE) {
		// the store serves its URL: no request reaches polaimg, no "file" row
		const before = auditRows(`image_id = ${lit(img.id)} AND action = 'file'`);
		const f = curl('GET', r.json.data.downloadUrl);
		assert.equal(f.status, 200);
		assert.ok(f.buf.equals(jpg));
		assert.deepEqual(auditRows(`image_id = ${lit(img.id)} AND action = 'file'`), before);
		return;
	}
	const f = await api('GET', r.json.data.downloadUrl);
	assert.equal(f.status, 200);
	// the row is the issuer's: the link names who it was handed to
	await oneRow(f, {
		action: 'file', outcome: 'ok', user_id: w.patient, role: 'patient', image_id: img.id, case_id: w.case,
		variant: 'original',
	});
});

test('audit: a refused signed URL is audited as denied (local; the store refuses its own)', async () => {
	const r = await api('GET', `/api/v1/images/${img.id}/download-url?variant=original`, { token: w.tPatient });
	const u = new URL(r.json.data.downloadUrl);
	if (REMOTE) {
		// the store checks its URLs: a changed key is refused there, and
		// polaimg, which never sees the request, has nothing to audit
		u.pathname = u.pathname.replace(/original$/, 'display.jpg');
		const before = auditRows(`image_id = ${lit(img.id)} AND outcome = 'denied'`);
		assertStoreRefused(curl('GET', u.toString()),
			{ s3Codes: ['SignatureDoesNotMatch'], supaCodes: ['InvalidSignature'] }, 'changed key');
		assert.deepEqual(auditRows(`image_id = ${lit(img.id)} AND outcome = 'denied'`), before);
		return;
	}
	u.searchParams.set('variant', 'display');
	const f = await api('GET', u.toString());
	assert.equal(f.status, 403);
	await oneRow(f, { action: 'file', outcome: 'denied', image_id: img.id });
});

test('audit: delete', async () => {
	const d = await uploadOk(w.tDoctor, w.case, jpg);
	const r = await api('DELETE', `/api/v1/images/${d.id}`, { token: w.tDoctor });
	assert.equal(r.status, 200);
	await oneRow(r, { action: 'delete', outcome: 'ok', user_id: w.doctor, role: 'doctor', image_id: d.id, case_id: w.case });
});

test('audit: a 401 writes no row', async () => {
	const r = await api('GET', `/api/v1/images/${img.id}`);
	assert.equal(r.status, 401);
	assert.deepEqual(await auditByRequest(r.requestId, 300), []);
});

test('audit: request ids are unique per response and rows are append-only', async () => {
	const before = auditRows(`image_id = ${lit(img.id)}`);
	const a = await api('GET', `/api/v1/images/${img.id}`, { token: w.tDoctor });
	const b = await api('GET', `/api/v1/images/${img.id}`, { token: w.tDoctor });
	assert.notEqual(a.requestId, b.requestId);
	// Read rows are written within audit_read_delay (100 ms) of their answer.
	await auditByRequest(a.requestId);
	await auditByRequest(b.requestId);
	const after = auditRows(`image_id = ${lit(img.id)}`);
	assert.equal(after.length, before.length + 2);
	assert.deepEqual(after.slice(0, before.length), before, 'earlier rows unchanged');
});
