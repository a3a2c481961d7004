// Outages: PostgreSQL stopped (503 DATABASE_UNAVAILABLE, health 503, recovery
// after restart); storage unwritable (<storage_dir>/.tmp replaced by a
// regular file: temp-file creation fails with ENOTDIR → 503
// STORAGE_UNAVAILABLE — every back end stages uploads there); and, for S3
// and Supabase, the store itself down (its /__fault switch: connections
// dropped, then 5xx answers) → 503 STORAGE_UNAVAILABLE with nothing
// half-recorded. Each describe breaks something in before(), its tests run
// in the order written against the broken state, and after() repairs it
// whatever happened; the recovery test after each describe then checks the
// service came back.
import { after, before, describe, test } from 'node:test';
import {
	REMOTE, STORAGE_DIR, api, assert, assertError, assertNoLeak, auditByRequest, curl, fs, imageRow,
	imageRowCount, listFiles, makeImage, objectsOf, path, pgStart, pgStop, seedWorld, sleep, sql, storeFault,
	tmpEntries, upload, uploadOk,
} from './lib.mjs';

let w;
let img;
let jpg;

before(async () => {
	w = seedWorld();
	jpg = makeImage(64, 48, 'jpg');
	img = await uploadOk(w.tDoctor, w.case, jpg);
});

// Polls fn until it returns true or ms pass; returns whether it did.
async function eventually(fn, ms = 10000) {
	const deadline = Date.now() + ms;
	while (Date.now() < deadline) {
		try {
			if (await fn()) return true;
		} catch { /* keep polling */ }
		await sleep(250);
	}
	return false;
}

function pgIsUp() {
	try { sql('SELECT 1'); return true; } catch { return false; }
}

describe('database down (in order: stop, requests, start)', () => {
	before(() => pgStop());
	after(() => { if (!pgIsUp()) pgStart(); });

	test('an authenticated request → 503 DATABASE_UNAVAILABLE without internals', async () => {
		for (let i = 0; i < 3; i++) { // reach both workers
			const r = await api('GET', `/api/v1/images/${img.id}`, { token: w.tDoctor });
			assertError(r, 503, 'DATABASE_UNAVAILABLE');
			assertNoLeak(r);
		}
	});

	test('list and upload → 503 DATABASE_UNAVAILABLE, nothing stored', async () => {
		const files = listFiles();
		assertError(await api('GET', `/api/v1/images/cases/${w.case}`, { token: w.tPatient }), 503, 'DATABASE_UNAVAILABLE');
		assertError(await upload(w.tDoctor, w.case, jpg), 503, 'DATABASE_UNAVAILABLE');
		assert.deepEqual(listFiles(), files);
	});

	test('health → 503 {status: error, database: error, storage: ok}', async () => {
		const r = await api('GET', '/api/v1/images/health');
		assert.equal(r.status, 503);
		assert.deepEqual(r.json, { status: 'error', database: 'error', storage: 'ok', version: '0.1.0' });
		assertNoLeak(r);
	});

	test('a request without a token still gets 401 AUTH_REQUIRED', async () => {
		const r = await api('GET', `/api/v1/images/${img.id}`);
		assert.equal(r.status, 401);
	});
});

test('database back: health and requests recover within 10 s of the restart', async () => {
	if (!pgIsUp()) pgStart();
	const t0 = Date.now();
	assert.ok(await eventually(async () => (await api('GET', '/api/v1/images/health')).status === 200), 'health recovers');
	// several requests in a row, so that both workers have reconnected
	assert.ok(await eventually(async () => {
		for (let i = 0; i < 6; i++) {
			if ((await api('GET', `/api/v1/images/${img.id}`, { token: w.tDoctor })).status !== 200) return false;
		}
		return true;
	}), 'authenticated GET recovers on every worker');
	assert.ok(Date.now() - t0 < 10000);
	const u = await upload(w.tDoctor, w.case, jpg);
	assert.equal(u.status, 201, u.text);
});

const TMP = path.join(STORAGE_DIR, '.tmp');
const SAVED = path.join(STORAGE_DIR, '.tmp.itest-saved');

function breakStorage() {
	if (fs.existsSync(TMP)) fs.renameSync(TMP, SAVED);
	fs.writeFileSync(TMP, 'not a directory\n');
}

function repairStorage() {
	if (fs.existsSync(TMP) && !fs.statSync(TMP).isDirectory()) fs.rmSync(TMP);
	if (fs.existsSync(SAVED)) fs.renameSync(SAVED, TMP);
	else fs.mkdirSync(TMP, { recursive: true });
}

// A direct upload whose complete failed while storage was broken (remote
// back ends): completed after the repair.
let stranded = null;

describe('storage unwritable (in order: break, requests, repair)', () => {
	let rows;
	before(() => { rows = imageRowCount(w.case); breakStorage(); });
	after(() => repairStorage());

	test('upload → 503 STORAGE_UNAVAILABLE without internals, no row', async () => {
		const r = await upload(w.tDoctor, w.case, jpg);
		assertError(r, 503, 'STORAGE_UNAVAILABLE');
		assertNoLeak(r);
		assert.equal(imageRowCount(w.case), rows);
	});

	test('the failed upload is audited with outcome error', async () => {
		const r = await upload(w.tDoctor, w.case, jpg);
		assert.equal(r.status, 503);
		const a = await auditByRequest(r.requestId);
		assert.equal(a.length, 1, JSON.stringify(a));
		assert.equal(a[0].action, 'upload');
		assert.equal(a[0].outcome, 'error');
	});

	// Local: the PUT to polaimg cannot stage the bytes → 503. Remote: the PUT
	// goes to the store, which is fine and takes it; complete cannot stage
	// its copy → 503, the image stays pending with its original in the
	// store and no derived copies, and a complete after the repair works.
	test('direct upload: local PUT / remote complete → 503 STORAGE_UNAVAILABLE, image stays pending', async () => {
		const u = await api('POST', '/api/v1/images/upload-url', {
			token: w.tDoctor, body: { fileName: 'a.jpg', contentType: 'image/jpeg', caseId: w.case },
		});
		assert.equal(u.status, 200, u.text);
		const id = u.json.data.imageId;
		if (!REMOTE) {
			const r = await api('PUT', u.json.data.uploadUrl, { body: jpg, headers: u.json.data.headers });
			assertError(r, 503, 'STORAGE_UNAVAILABLE');
		} else {
			const p = curl('PUT', u.json.data.uploadUrl, { body: jpg, headers: u.json.data.headers });
			assert.equal(p.status, 200, p.text);
			const r = await api('POST', `/api/v1/images/${id}/complete`, { token: w.tDoctor });
			assertError(r, 503, 'STORAGE_UNAVAILABLE');
			assert.deepEqual(objectsOf(w.case, id), ['original'], 'the upload is kept for a later complete');
			stranded = id;
		}
		assert.equal(imageRow(id).status, 'pending');
	});

	test('reads still work while writes fail', async () => {
		const r = await api('GET', `/api/v1/images/${img.id}/proxy?variant=original`, { token: w.tDoctor });
		assert.equal(r.status, 200);
		assert.ok(r.buf.equals(jpg));
	});

	test('health → 503 with storage: error', async () => {
		const r = await api('GET', '/api/v1/images/health');
		assert.equal(r.status, 503, r.text);
		assert.deepEqual(r.json, { status: 'error', database: 'ok', storage: 'error', version: '0.1.0' });
		assertNoLeak(r);
	});
});

test('storage repaired: uploads work again and .tmp is empty', async () => {
	repairStorage();
	assert.ok(await eventually(async () => (await api('GET', '/api/v1/images/health')).status === 200, 5000));
	const r = await upload(w.tDoctor, w.case, jpg);
	assert.equal(r.status, 201, r.text);
	assert.ok(fs.statSync(TMP).isDirectory());
	assert.deepEqual(fs.readdirSync(TMP), []);
	if (REMOTE) {
		assert.ok(stranded, 'the remote direct upload of the broken phase');
		const c = await api('POST', `/api/v1/images/${stranded}/complete`, { token: w.tDoctor });
		assert.equal(c.status, 200, c.text);
		assert.equal(c.json.data.status, 'ready');
		assert.deepEqual(objectsOf(w.case, stranded), ['display.jpg', 'original', 'thumb.jpg']);
	}
});

// The remote store down: first every connection dropped without an answer
// ("down"), then every request answered with a server error ("error": S3
// 503 ServiceUnavailable, Supabase 500). Local storage has no separate store
// to take down: its outage is the describe above.
// The direct upload begun before the store went down (its URL stays valid).
let pending = null;

describe('remote store down (in order: down, requests, errors, heal)', { skip: !REMOTE && 'local storage has no remote store' }, () => {
	let rows;
	before(async () => {
		const u = await api('POST', '/api/v1/images/upload-url', {
			token: w.tDoctor, body: { fileName: 'a.jpg', contentType: 'image/jpeg', caseId: w.case },
		});
		assert.equal(u.status, 200, u.text);
		pending = u.json.data;
		rows = imageRowCount(w.case);
		await storeFault('down');
	});
	after(async () => { await storeFault('ok'); });

	test('upload → 503 STORAGE_UNAVAILABLE without internals; no row, no object, .tmp empty; audited', async () => {
		const files = listFiles();
		const r = await upload(w.tDoctor, w.case, jpg);
		assertError(r, 503, 'STORAGE_UNAVAILABLE');
		assertNoLeak(r);
		assert.equal(imageRowCount(w.case), rows);
		assert.deepEqual(listFiles(), files);
		assert.deepEqual(tmpEntries(), []);
		const a = await auditByRequest(r.requestId);
		assert.equal(a.length, 1, JSON.stringify(a));
		assert.equal(a[0].action, 'upload');
		assert.equal(a[0].outcome, 'error');
	});

	test('health → 503 {database: ok, storage: error}', async () => {
		const r = await api('GET', '/api/v1/images/health');
		assert.equal(r.status, 503, r.text);
		assert.deepEqual(r.json, { status: 'error', database: 'ok', storage: 'error', version: '0.1.0' });
		assertNoLeak(r);
	});

	test('direct upload: the PUT cannot reach the store; complete → 503, the image stays pending', async () => {
		const p = curl('PUT', pending.uploadUrl, { body: jpg, headers: pending.headers });
		assert.ok(p.status === 0 || p.status >= 500, `PUT to a store that is down: ${p.status}`);
		const r = await api('POST', `/api/v1/images/${pending.imageId}/complete`, { token: w.tDoctor });
		assertError(r, 503, 'STORAGE_UNAVAILABLE');
		assertNoLeak(r);
		assert.equal(imageRow(pending.imageId).status, 'pending');
		assert.deepEqual(objectsOf(w.case, pending.imageId), []);
	});

	test('proxy → 503 STORAGE_UNAVAILABLE (the bytes are in the store); metadata still 200', async () => {
		for (const v of ['original', 'display', 'thumbnail']) {
			const r = await api('GET', `/api/v1/images/${img.id}/proxy?variant=${v}`, { token: w.tDoctor });
			assertError(r, 503, 'STORAGE_UNAVAILABLE');
			assert.ok(!r.buf.equals(jpg));
		}
		const g = await api('GET', `/api/v1/images/${img.id}`, { token: w.tDoctor });
		assert.equal(g.status, 200, g.text);
		assert.equal(g.json.data.status, 'ready');
	});

	test('download-url still answers: the URL is signed by polaimg, the store is not asked', async () => {
		const d = await api('GET', `/api/v1/images/${img.id}/download-url?variant=original`, { token: w.tDoctor });
		assert.equal(d.status, 200, d.text);
		assert.equal(curl('GET', d.json.data.downloadUrl).status, 0, 'but the store does not answer it');
	});

	test('the store answering 5xx instead: upload and complete → 503, nothing recorded', async () => {
		await storeFault('error');
		const files = listFiles();
		assertError(await upload(w.tDoctor, w.case, jpg), 503, 'STORAGE_UNAVAILABLE');
		assertError(await api('POST', `/api/v1/images/${pending.imageId}/complete`, { token: w.tDoctor }),
			503, 'STORAGE_UNAVAILABLE');
		assert.equal((await api('GET', '/api/v1/images/health')).status, 503);
		assert.equal(imageRowCount(w.case), rows);
		assert.deepEqual(listFiles(), files);
		assert.deepEqual(tmpEntries(), []);
		assert.equal(imageRow(pending.imageId).status, 'pending');
	});
});

test('remote store back: health, uploads, reads and the pending direct upload recover', { skip: !REMOTE && 'local storage has no remote store' }, async () => {
	await storeFault('ok');
	assert.ok(await eventually(async () => (await api('GET', '/api/v1/images/health')).status === 200, 5000), 'health recovers');
	const r = await upload(w.tDoctor, w.case, jpg);
	assert.equal(r.status, 201, r.text);
	const p = await api('GET', `/api/v1/images/${img.id}/proxy?variant=original`, { token: w.tDoctor });
	assert.equal(p.status, 200);
	assert.ok(p.buf.equals(jpg));
	// the direct upload begun before the outage: its URL is still valid
	assert.ok(pending, 'the direct upload of the outage phase');
	assert.equal(imageRow(pending.imageId).status, 'pending');
	const put = curl('PUT', pending.uploadUrl, { body: jpg, headers: pending.headers });
	assert.equal(put.status, 200, put.text);
	const c = await api('POST', `/api/v1/images/${pending.imageId}/complete`, { token: w.tDoctor });
	assert.equal(c.status, 200, c.text);
	assert.equal(c.json.data.status, 'ready');
	assert.deepEqual(tmpEntries(), []);
});
