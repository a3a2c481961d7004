// Outages: PostgreSQL stopped (503 DATABASE_UNAVAILABLE, health 503, recovery
// after restart) and storage unwritable (<storage_dir>/.tmp replaced by a
// regular file: temp-file creation fails with ENOTDIR → 503
// STORAGE_UNAVAILABLE). Each describe breaks something in before(), its
// tests run in the order written against the broken state, and after()
// repairs it whatever happened; the recovery test after each describe then
// checks the service came back.
import { after, before, describe, test } from 'node:test';
import {
	STORAGE_DIR, api, assert, assertError, assertNoLeak, auditByRequest, fs, imageRow, imageRowCount, listFiles, makeImage,
	path, pgStart, pgStop, seedWorld, sleep, sql, upload, uploadOk,
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

	test('direct-upload PUT → 503 STORAGE_UNAVAILABLE, image stays pending', async () => {
		const u = await api('POST', '/api/v1/images/upload-url', {
			token: w.tDoctor, body: { fileName: 'a.jpg', contentType: 'image/jpeg', caseId: w.case },
		});
		assert.equal(u.status, 200, u.text);
		const r = await api('PUT', u.json.data.uploadUrl, { body: jpg, headers: u.json.data.headers });
		assertError(r, 503, 'STORAGE_UNAVAILABLE');
		assert.equal(imageRow(u.json.data.imageId).status, 'pending');
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
});
