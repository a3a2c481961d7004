// Every answer is as fresh as the database at the start of its request,
// although polaimg reads less per request than it answers: each worker
// keeps the case lists it answered (src/listcache.c) under the case's
// version, which a trigger changes with every change to the case's images
// (sql/002_case_versions.sql); the user, the case and the image are read on
// every request in one statement; the audit rows of reads are gathered and
// written in batches (src/auditbuf.c).
//
// The lists are asked for in bursts of parallel requests, so that every
// worker has the case's list in its cache before each change; the change is
// made straight in PostgreSQL (as the clinic application or an operator
// would), never through polaimg.
import { before, test } from 'node:test';
import {
	api, assert, assertError, auditByRequest, createCase, createUser, lit, makeImage, seedWorld, sleep, sql, sqlValue,
	token, uploadOk,
} from './lib.mjs';

let w;
let jpg;

before(() => {
	w = seedWorld();
	jpg = makeImage(64, 48, 'jpg');
});

const BURST = 8;
// A change made straight in PostgreSQL reaches the workers as a
// notification: a request that starts within milliseconds of the COMMIT may
// still be answered from the row before it. README ("Reads per request")
// documents the bound; the tests wait a generous 1 s (the notification takes
// about a millisecond) and then expect every answer to follow the change.
const NOTIFY_BOUND_MS = 1000;
const delivered = () => sleep(NOTIFY_BOUND_MS);
const listPath = (caseId, q = '') => `/api/v1/images/cases/${caseId}${q}`;

// BURST parallel list requests; every answer, in order.
async function burst(tok, caseId, q = '') {
	return Promise.all(Array.from({ length: BURST }, () => api('GET', listPath(caseId, q), { token: tok })));
}

function assertAll(rs, status, check) {
	for (const r of rs) {
		assert.equal(r.status, status, JSON.stringify(r.json));
		if (check) check(r.json);
	}
}

const ids = (j) => j.data.images.map((i) => i.id);

test('freshness: a case gets a version row that changes with each change to its images', async () => {
	const c = createCase(w.patient);
	assert.equal(sqlValue(`SELECT count(*) FROM polaimg_case_versions WHERE case_id = ${lit(c)}`), '0');
	const a = await uploadOk(w.tDoctor, c, jpg);
	const v1 = BigInt(sqlValue(`SELECT version FROM polaimg_case_versions WHERE case_id = ${lit(c)}`));
	sql(`UPDATE case_images SET description = 'x' WHERE id = ${lit(a.id)}`);
	const v2 = BigInt(sqlValue(`SELECT version FROM polaimg_case_versions WHERE case_id = ${lit(c)}`));
	assert.ok(v2 > v1, `${v2} > ${v1}`);
	sql(`UPDATE case_images SET description = 'x' WHERE id = ${lit(a.id)}`);
	const v3 = BigInt(sqlValue(`SELECT version FROM polaimg_case_versions WHERE case_id = ${lit(c)}`));
	assert.ok(v3 > v2, 'an UPDATE that changes nothing still changes the version');
	// Moving an image to another case changes both cases' versions.
	const d = createCase(w.patient);
	sql(`UPDATE case_images SET case_id = ${lit(d)} WHERE id = ${lit(a.id)}`);
	const v4 = BigInt(sqlValue(`SELECT version FROM polaimg_case_versions WHERE case_id = ${lit(c)}`));
	const vd = BigInt(sqlValue(`SELECT version FROM polaimg_case_versions WHERE case_id = ${lit(d)}`));
	assert.ok(v4 > v3 && vd > v3, 'both cases of a moved image get new versions');
	sql(`DELETE FROM case_images WHERE id = ${lit(a.id)}`);
	const vd2 = BigInt(sqlValue(`SELECT version FROM polaimg_case_versions WHERE case_id = ${lit(d)}`));
	assert.ok(vd2 > vd, 'a DELETE changes the version');
});

test('freshness: a list shows a change made in the database once it is delivered', async () => {
	const c = createCase(w.patient);
	const a = await uploadOk(w.tDoctor, c, jpg, { fields: { description: 'first' } });
	const b = await uploadOk(w.tDoctor, c, jpg, { fields: { description: 'second' } });
	assertAll(await burst(w.tPatient, c), 200, (j) => assert.deepEqual(ids(j), [a.id, b.id]));
	assertAll(await burst(w.tPatient, c), 200, (j) => assert.equal(j.data.images[0].description, 'first'));

	// an edited field
	sql(`UPDATE case_images SET description = 'edited' WHERE id = ${lit(a.id)}`);
	await delivered();
	assertAll(await burst(w.tPatient, c), 200, (j) => assert.equal(j.data.images[0].description, 'edited'));

	// a soft delete by another application
	sql(`UPDATE case_images SET deleted_at = now() WHERE id = ${lit(a.id)}`);
	await delivered();
	assertAll(await burst(w.tPatient, c), 200, (j) => {
		assert.deepEqual(ids(j), [b.id]);
		assert.equal(j.data.total, 1);
	});

	// and its undoing
	sql(`UPDATE case_images SET deleted_at = NULL WHERE id = ${lit(a.id)}`);
	await delivered();
	assertAll(await burst(w.tPatient, c), 200, (j) => assert.deepEqual(ids(j), [a.id, b.id]));

	// a new order
	sql(`UPDATE case_images SET "order" = 10 WHERE id = ${lit(a.id)}`);
	await delivered();
	assertAll(await burst(w.tPatient, c), 200, (j) => assert.deepEqual(ids(j), [b.id, a.id]));

	// a row removed outright
	sql(`DELETE FROM case_images WHERE id = ${lit(b.id)}`);
	await delivered();
	assertAll(await burst(w.tPatient, c), 200, (j) => assert.deepEqual(ids(j), [a.id]));
});

test('freshness: pages and filters are kept apart and all follow a change', async () => {
	const c = createCase(w.patient);
	const l = await uploadOk(w.tDoctor, c, jpg, { fields: { eyeSide: 'left' } });
	const r = await uploadOk(w.tDoctor, c, jpg, { fields: { eyeSide: 'right' } });
	const views = ['', '?eyeSide=left', '?eyeSide=right', '?limit=1', '?limit=1&offset=1'];
	const want = (v) => ({
		'': [l.id, r.id], '?eyeSide=left': [l.id], '?eyeSide=right': [r.id], '?limit=1': [l.id], '?limit=1&offset=1': [r.id],
	})[v];
	for (let round = 0; round < 2; round++) {
		for (const v of views) assertAll(await burst(w.tPatient, c, v), 200, (j) => assert.deepEqual(ids(j), want(v), v));
	}
	sql(`UPDATE case_images SET eye_side = polaimg_eye_side('right') WHERE id = ${lit(l.id)}`);
	await delivered();
	assertAll(await burst(w.tPatient, c, '?eyeSide=left'), 200, (j) => assert.deepEqual(ids(j), []));
	assertAll(await burst(w.tPatient, c, '?eyeSide=right'), 200, (j) => assert.deepEqual(ids(j), [l.id, r.id]));
	assertAll(await burst(w.tPatient, c, '?limit=1'), 200, (j) => assert.equal(j.data.total, 2));
});

test('freshness: an upload and a delete through polaimg show at once in every worker', async () => {
	const c = createCase(w.patient);
	assertAll(await burst(w.tPatient, c), 200, (j) => assert.deepEqual([j.data.images, j.data.total], [[], 0]));
	const a = await uploadOk(w.tPatient, c, jpg);
	assertAll(await burst(w.tPatient, c), 200, (j) => assert.deepEqual(ids(j), [a.id]));
	const d = await api('DELETE', `/api/v1/images/${a.id}`, { token: w.tDoctor });
	assert.equal(d.status, 200);
	assertAll(await burst(w.tPatient, c), 200, (j) => assert.deepEqual(ids(j), []));
});

test('freshness: access follows the database on the next request (user, role, case owner)', async () => {
	const patient = createUser('patient');
	const tok = token(patient);
	const c = createCase(patient);
	const a = await uploadOk(w.tDoctor, c, jpg);
	assertAll(await burst(tok, c), 200);
	const proxies = () => Promise.all(Array.from({ length: BURST }, () =>
		api('GET', `/api/v1/images/${a.id}/proxy`, { token: tok })));
	assertAll(await proxies(), 200);

	// the case is given to another patient: this one is refused once the
	// change has been delivered (NOTIFY_BOUND_MS, see above)
	sql(`UPDATE patient_cases SET patient_id = ${lit(w.otherPatient)} WHERE id = ${lit(c)}`);
	await delivered();
	for (const r of await burst(tok, c)) assertError(r, 403, 'FORBIDDEN');
	for (const r of await proxies()) assertError(r, 403, 'FORBIDDEN');
	for (const r of await burst(w.tOther, c)) assert.equal(r.status, 200);

	// back, then the user is deactivated: 401
	sql(`UPDATE patient_cases SET patient_id = ${lit(patient)} WHERE id = ${lit(c)}`);
	await delivered();
	assertAll(await burst(tok, c), 200);
	sql(`UPDATE users SET is_active = false WHERE id = ${lit(patient)}`);
	await delivered();
	for (const r of await burst(tok, c)) assertError(r, 401, 'INVALID_TOKEN');
	for (const r of await proxies()) assertError(r, 401, 'INVALID_TOKEN');

	// a doctor demoted to patient loses the other patients' cases
	const doc = createUser('doctor');
	const tdoc = token(doc);
	assertAll(await burst(tdoc, c), 200);
	sql(`UPDATE users SET role = 'patient' WHERE id = ${lit(doc)}`);
	await delivered();
	for (const r of await burst(tdoc, c)) assertError(r, 403, 'FORBIDDEN');
	// and a user removed altogether is unknown
	sql(`DELETE FROM users WHERE id = ${lit(doc)}`);
	await delivered();
	for (const r of await burst(tdoc, c)) assertError(r, 401, 'INVALID_TOKEN');
});

test('freshness: an image deleted in the database is gone for view and proxy', async () => {
	const a = await uploadOk(w.tDoctor, w.case, jpg);
	const paths = [`/api/v1/images/${a.id}`, `/api/v1/images/${a.id}/proxy`, `/api/v1/images/${a.id}/download-url`];
	for (const p of paths) assert.equal((await api('GET', p, { token: w.tPatient })).status, 200, p);
	sql(`UPDATE case_images SET deleted_at = now() WHERE id = ${lit(a.id)}`);
	await delivered();
	for (const p of paths) assertError(await api('GET', p, { token: w.tPatient }), 404, 'NOT_FOUND');
});

test('freshness: the audit rows of a burst of parallel reads are all written, each with its own request', async () => {
	const c = createCase(w.patient);
	const a = await uploadOk(w.tDoctor, c, jpg);
	const rs = await Promise.all([
		...Array.from({ length: 20 }, () => api('GET', listPath(c), { token: w.tPatient })),
		...Array.from({ length: 20 }, () => api('GET', `/api/v1/images/${a.id}/proxy`, { token: w.tDoctor })),
		...Array.from({ length: 5 }, () => api('GET', listPath(c), { token: w.tOther })),
	]);
	const started = Date.now();
	for (const [i, r] of rs.entries()) {
		const rows = await auditByRequest(r.requestId, 3000);
		assert.equal(rows.length, 1, `request ${i}: one row`);
		const row = rows[0];
		if (i < 20) assert.deepEqual([row.action, row.outcome, row.user_id, row.case_id], ['list', 'ok', w.patient, c]);
		else if (i < 40) {
			assert.deepEqual([row.action, row.outcome, row.user_id, row.image_id, row.variant],
				['proxy', 'ok', w.doctor, a.id, 'display']);
		} else assert.deepEqual([row.action, row.outcome, row.user_id, row.case_id], ['list', 'denied', w.otherPatient, c]);
		assert.ok(Math.abs(Date.parse(row.created_at) - started) < 60000, row.created_at);
	}
});
