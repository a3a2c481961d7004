// DELETE /api/v1/images/:id, `polaimg restore <id>` and `polaimg sweep`
// (delete_retention_days = 0 in the test config: a sweep purges at once).
// Each test uses its own images. `polaimg sweep` purges every deleted image
// of every test that ran before; no test relies on another's images.
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import {
	OBJECT_LAYOUT, OBJECT_ROOT, POLAIMG_BIN, POLAIMG_CONF, REMOTE, STORAGE, api, assert, assertError, auditRows, curl,
	imageRow, lit, makeImage, objectsOf, polaimgCli, seedWorld, serviceEnv, sql, TEST_TMP, uploadOk,
} from './lib.mjs';

async function everyReadIs404(w, img, tok) {
	const reads = [
		['GET', `/api/v1/images/${img.id}`],
		['GET', `/api/v1/images/${img.id}/proxy`],
		['GET', `/api/v1/images/${img.id}/proxy?variant=original`],
		['GET', `/api/v1/images/${img.id}/download-url`],
		['POST', `/api/v1/images/${img.id}/complete`],
		['DELETE', `/api/v1/images/${img.id}`],
	];
	for (const [m, p] of reads) assertError(await api(m, p, { token: tok }), 404, 'NOT_FOUND');
}

test('delete: 200 message; then 404 on every read, absent from the list, delete again 404', async () => {
	const w = seedWorld();
	const jpg = makeImage(64, 48, 'jpg');
	const keep = await uploadOk(w.tDoctor, w.case, jpg);
	const img = await uploadOk(w.tDoctor, w.case, jpg);
	const dl = await api('GET', `/api/v1/images/${img.id}/download-url?variant=original`, { token: w.tDoctor });
	assert.equal(dl.status, 200);
	const r = await api('DELETE', `/api/v1/images/${img.id}`, { token: w.tDoctor });
	assert.equal(r.status, 200, r.text);
	assert.deepEqual(r.json, { message: 'Image deleted successfully' });
	await everyReadIs404(w, img, w.tDoctor);
	await everyReadIs404(w, img, w.tAdmin);
	// the patient owning the case sees 404 (not 403) for GET
	assertError(await api('GET', `/api/v1/images/${img.id}`, { token: w.tPatient }), 404, 'NOT_FOUND');
	const l = await api('GET', `/api/v1/images/cases/${w.case}`, { token: w.tPatient });
	assert.deepEqual(l.json.data.images.map((i) => i.id), [keep.id]);
	assert.equal(l.json.data.total, 1);
	// A signed URL issued before the delete. Local: polaimg redeems it and
	// finds no live image → 404. Remote: the URL is the store's, which knows
	// nothing of the delete, and the objects stay until the sweep: it keeps
	// serving the bytes until it expires — the documented limit of presigned
	// URLs (README.md, "Storage back ends"; keep max_download_url_ttl short).
	const f = curl('GET', dl.json.data.downloadUrl);
	if (REMOTE) {
		assert.equal(f.status, 200, `a store URL outlives the delete: ${f.status} ${f.text.slice(0, 200)}`);
		assert.ok(f.buf.equals(jpg), 'the original, until the URL expires or the sweep purges it');
	} else {
		assertError(f, 404, 'NOT_FOUND');
	}
	// soft delete: row marked, objects kept until the sweep
	assert.notEqual(imageRow(img.id).deleted_at, null);
	assert.deepEqual(objectsOf(w.case, img.id), ['display.jpg', 'original', 'thumb.jpg']);
});

test('delete: an admin may delete; a later upload gets a higher order', async () => {
	const w = seedWorld();
	const jpg = makeImage(64, 48, 'jpg');
	const a = await uploadOk(w.tDoctor, w.case, jpg);
	const b = await uploadOk(w.tDoctor, w.case, jpg);
	assert.equal((await api('DELETE', `/api/v1/images/${b.id}`, { token: w.tAdmin })).status, 200);
	const c = await uploadOk(w.tDoctor, w.case, jpg);
	assert.ok(c.order > a.order, `order ${c.order} after ${a.order}`);
});

test('restore: `polaimg restore <id>` brings a deleted image back before the sweep', async () => {
	const w = seedWorld();
	const jpg = makeImage(64, 48, 'jpg');
	const img = await uploadOk(w.tDoctor, w.case, jpg);
	assert.equal((await api('DELETE', `/api/v1/images/${img.id}`, { token: w.tDoctor })).status, 200);
	assertError(await api('GET', `/api/v1/images/${img.id}`, { token: w.tDoctor }), 404, 'NOT_FOUND');
	const c = polaimgCli('restore', img.id);
	assert.equal(c.status, 0, `restore: ${c.stdout}${c.stderr}`);
	const g = await api('GET', `/api/v1/images/${img.id}`, { token: w.tPatient });
	assert.equal(g.status, 200, g.text);
	assert.equal(g.json.data.id, img.id);
	assert.equal(g.json.data.sha256, img.sha256);
	const p = await api('GET', `/api/v1/images/${img.id}/proxy?variant=original`, { token: w.tPatient });
	assert.ok(p.buf.equals(jpg));
	const l = await api('GET', `/api/v1/images/cases/${w.case}`, { token: w.tPatient });
	assert.deepEqual(l.json.data.images.map((i) => i.id), [img.id]);
	assert.equal(imageRow(img.id).deleted_at, null);
	const rows = auditRows(`image_id = ${lit(img.id)} AND action = 'restore'`);
	assert.equal(rows.length, 1, 'restore is audited');
	assert.equal(rows[0].outcome, 'ok');
});

test('restore: an unknown or non-UUID id → non-zero exit', async () => {
	assert.notEqual(polaimgCli('restore', '00000000-0000-4000-8000-000000000000').status, 0);
	assert.notEqual(polaimgCli('restore', 'not-a-uuid').status, 0);
});

test('sweep: with retention 0 purges a deleted image\'s objects; restored and live images are kept', async () => {
	const w = seedWorld();
	const jpg = makeImage(64, 48, 'jpg');
	const live = await uploadOk(w.tDoctor, w.case, jpg);
	const restored = await uploadOk(w.tDoctor, w.case, jpg);
	const gone = await uploadOk(w.tDoctor, w.case, jpg);
	const dl = await api('GET', `/api/v1/images/${gone.id}/download-url?variant=original`, { token: w.tDoctor });
	assert.equal(dl.status, 200);
	for (const i of [restored, gone])
		assert.equal((await api('DELETE', `/api/v1/images/${i.id}`, { token: w.tDoctor })).status, 200);
	assert.equal(polaimgCli('restore', restored.id).status, 0);
	assert.deepEqual(objectsOf(w.case, gone.id), ['display.jpg', 'original', 'thumb.jpg']);
	const s = polaimgCli('sweep');
	assert.equal(s.status, 0, `sweep: ${s.stdout}${s.stderr}`);
	assert.deepEqual(objectsOf(w.case, gone.id), [], 'purged objects');
	// after the purge no URL serves the bytes any more: the store has no
	// object (S3 404 NoSuchKey; Supabase HTTP 400 with statusCode 404),
	// polaimg no image (404)
	const f = curl('GET', dl.json.data.downloadUrl);
	assert.ok(!f.buf.equals(jpg), 'no bytes after the purge');
	if (STORAGE === 's3') {
		assert.equal(f.status, 404, f.text.slice(0, 200));
		assert.equal(f.code, 'NoSuchKey');
	} else if (STORAGE === 'supabase') {
		assert.equal(f.status, 400, f.text.slice(0, 200));
		assert.equal(f.json.statusCode, '404');
		assert.equal(f.code, 'NoSuchKey');
	} else {
		assertError(f, 404, 'NOT_FOUND');
	}
	for (const i of [live, restored])
		assert.deepEqual(objectsOf(w.case, i.id), ['display.jpg', 'original', 'thumb.jpg']);
	assertError(await api('GET', `/api/v1/images/${gone.id}`, { token: w.tDoctor }), 404, 'NOT_FOUND');
	const l = await api('GET', `/api/v1/images/cases/${w.case}`, { token: w.tDoctor });
	assert.deepEqual(l.json.data.images.map((i) => i.id).sort(), [live.id, restored.id].sort());
	const purge = auditRows(`image_id = ${lit(gone.id)} AND action = 'purge'`);
	assert.equal(purge.length, 1, 'purge is audited');
	// restoring a purged image is refused: its objects are gone
	assert.notEqual(polaimgCli('restore', gone.id).status, 0);
	assertError(await api('GET', `/api/v1/images/${gone.id}`, { token: w.tDoctor }), 404, 'NOT_FOUND');
	// a second sweep has nothing to do and succeeds
	assert.equal(polaimgCli('sweep').status, 0);
	assert.deepEqual(objectsOf(w.case, live.id), ['display.jpg', 'original', 'thumb.jpg']);
});

test('sweep: pending uploads past their URL expiry are removed', async () => {
	const w = seedWorld();
	const u = await api('POST', '/api/v1/images/upload-url', {
		token: w.tDoctor, body: { fileName: 'a.jpg', contentType: 'image/jpeg', caseId: w.case, expiresIn: 1 },
	});
	assert.equal(u.status, 200);
	const fresh = await api('POST', '/api/v1/images/upload-url', {
		token: w.tDoctor, body: { fileName: 'b.jpg', contentType: 'image/jpeg', caseId: w.case },
	});
	await new Promise((r) => setTimeout(r, 2100));
	assert.equal(polaimgCli('sweep').status, 0);
	const row = imageRow(u.json.data.imageId);
	assert.ok(row === undefined || row.deleted_at !== null, 'expired pending image is gone');
	assert.equal(imageRow(fresh.json.data.imageId).status, 'pending', 'an unexpired pending image stays');
});

// Orphans (objects no row names) are removed only once older than an hour.
// The age comes from the store's listing: the file's mtime (local), S3's
// LastModified ("2026-01-02T03:04:05.000Z"), Supabase's updated_at, each
// read as UTC whatever TZ says. The sweep runs under a TZ 14 hours off UTC:
// a date read as local time would make the fresh orphans 14 hours old.
// Aging a file ages the object for local storage and s3rver (its
// LastModified is the file's mtime); the Supabase stand-in keeps its dates
// in memory, so there only the fresh half is checked.
test('sweep: orphan objects are removed once an hour old by the store\'s date, read as UTC; fresh ones kept', async () => {
	const w = seedWorld();
	const jpg = makeImage(64, 48, 'jpg');
	const old = await uploadOk(w.tDoctor, w.case, jpg);
	const fresh = await uploadOk(w.tDoctor, w.case, jpg);
	const names = ['display.jpg', 'original', 'thumb.jpg'];
	const ids = [old.id, fresh.id].map(lit).join(', ');
	const canAge = STORAGE === 'local' || OBJECT_LAYOUT === 's3rver';
	// The rows forget their objects: all six are orphans now.
	sql(`UPDATE case_images SET storage_key = storage_key || '.moved' WHERE id IN (${ids})`);
	if (canAge) {
		const then = new Date(Date.now() - 2 * 3600 * 1000);
		for (const n of names) {
			const key = `cases/${w.case}/${old.id}/${n}`;
			fs.utimesSync(path.join(OBJECT_ROOT, OBJECT_LAYOUT === 's3rver' ? `${key}._S3rver_object` : key), then, then);
		}
	}
	const s = spawnSync(POLAIMG_BIN, ['-c', POLAIMG_CONF, 'sweep'],
		{ encoding: 'utf8', timeout: 60000, env: { ...serviceEnv(), TZ: 'Pacific/Kiritimati' } });
	assert.equal(s.status, 0, `sweep: ${s.stdout}${s.stderr}`);
	assert.deepEqual(objectsOf(w.case, fresh.id), names, `fresh orphans are kept: ${s.stdout}`);
	assert.ok(!s.stdout.includes(`${fresh.id}/`), s.stdout);
	if (canAge) {
		assert.deepEqual(objectsOf(w.case, old.id), [], `two-hour-old orphans are removed: ${s.stdout}`);
		for (const n of names)
			assert.ok(s.stdout.includes(`removed orphan object cases/${w.case}/${old.id}/${n}`), s.stdout);
	}
	// Give the rows their keys back; the one whose objects are gone is
	// deleted and purged by the next sweep, which succeeds.
	sql(`UPDATE case_images SET storage_key = left(storage_key, -6) WHERE id IN (${ids})`);
	assert.equal((await api('DELETE', `/api/v1/images/${old.id}`, { token: w.tDoctor })).status, 200);
	const s2 = polaimgCli('sweep');
	assert.equal(s2.status, 0, `sweep: ${s2.stdout}${s2.stderr}`);
	assert.deepEqual(objectsOf(w.case, fresh.id), names);
	assertError(await api('GET', `/api/v1/images/${old.id}`, { token: w.tDoctor }), 404, 'NOT_FOUND');
});

// --- Operator verbs: what they say, whom they audit, what monitoring reads ---

const operator = `cli:${os.userInfo().username}`;

test('restore: a live image is said to be live, not "purged"', async () => {
	const w = seedWorld();
	const img = await uploadOk(w.tDoctor, w.case, makeImage(64, 48, 'jpg'));
	const r = polaimgCli('restore', img.id);
	assert.equal(r.status, 1);
	assert.match(r.stderr, new RegExp(`image ${img.id} is live \\(not deleted\\): nothing to restore`));
	assert.doesNotMatch(r.stderr, /purged/);
});

test('restore and sweep: their audit rows name the operator (cli:<unix user>)', async () => {
	const w = seedWorld();
	const img = await uploadOk(w.tDoctor, w.case, makeImage(64, 48, 'jpg'));
	assert.equal((await api('DELETE', `/api/v1/images/${img.id}`, { token: w.tDoctor })).status, 200);
	assert.equal(polaimgCli('restore', img.id).status, 0);
	const restore = auditRows(`image_id = ${lit(img.id)} AND action = 'restore'`);
	assert.equal(restore.length, 1);
	assert.equal(restore[0].user_id, operator);
	assert.equal((await api('DELETE', `/api/v1/images/${img.id}`, { token: w.tDoctor })).status, 200);
	const s = polaimgCli('sweep');
	assert.equal(s.status, 0, s.stdout + s.stderr);
	const purge = auditRows(`image_id = ${lit(img.id)} AND action = 'purge'`);
	assert.equal(purge.length, 1);
	assert.equal(purge[0].user_id, operator);
});

test('sweep --json and verify --json: one object {ok, errors[], counts} on stdout', async () => {
	const w = seedWorld();
	const img = await uploadOk(w.tDoctor, w.case, makeImage(64, 48, 'jpg'));
	assert.equal((await api('DELETE', `/api/v1/images/${img.id}`, { token: w.tDoctor })).status, 200);
	const s = polaimgCli('sweep', '--json');
	assert.equal(s.status, 0, s.stdout + s.stderr);
	const o = JSON.parse(s.stdout);
	assert.deepEqual(Object.keys(o), ['ok', 'errors', 'counts']);
	assert.equal(o.ok, true);
	assert.deepEqual(o.errors, []);
	assert.ok(o.counts.purged_deleted >= 1, s.stdout);
	for (const k of ['purged_pending', 'orphans', 'temps', 'errors']) assert.equal(typeof o.counts[k], 'number', k);
	assert.match(s.stderr, new RegExp(`purged deleted image ${img.id}`), 'the per-image lines go to stderr');
	const v = polaimgCli('verify', '--json');
	const vo = JSON.parse(v.stdout);
	assert.equal(vo.ok, v.status === 0, v.stdout);
	assert.ok(Array.isArray(vo.errors));
	for (const k of ['images', 'objects', 'missing', 'mismatched', 'unreadable', 'legacy', 'orphans', 'spooled', 'errors'])
		assert.equal(typeof vo.counts[k], 'number', k);
	assert.ok(vo.counts.images >= 1);
	assert.equal(polaimgCli('verify', '--bogus').status, 2);
});

test('sweep: a store that cannot be listed is a failure (exit 1), not "0 errors"', {
	skip: STORAGE !== 'local' && 'a file in place of cases/ breaks the listing of local storage only',
}, () => {
	const dir = fs.mkdtempSync(path.join(TEST_TMP, 'sweep-unlistable-'));
	const confPath = path.join(dir, 'polaimg.conf');
	try {
		fs.writeFileSync(path.join(dir, 'cases'), 'not a directory\n');
		fs.writeFileSync(confPath, `${fs.readFileSync(POLAIMG_CONF, 'utf8')}\nstorage_dir = ${dir}\ndelete_retention_days = 36500\n`);
		const run = (...args) => spawnSync(POLAIMG_BIN, ['-c', confPath, 'sweep', ...args], { encoding: 'utf8', timeout: 60000, env: serviceEnv() });
		const s = run();
		assert.equal(s.status, 1, s.stdout + s.stderr);
		assert.match(s.stdout, /could not list the store for orphan objects/);
		assert.match(s.stdout, /[1-9]\d* errors/);
		const j = run('--json');
		assert.equal(j.status, 1);
		const o = JSON.parse(j.stdout);
		assert.equal(o.ok, false);
		assert.ok(o.errors.some((e) => e.startsWith('could not list the store')), j.stdout);
	} finally {
		fs.rmSync(dir, { recursive: true, force: true });
	}
});
