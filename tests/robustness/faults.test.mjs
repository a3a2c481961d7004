// Faults, each against a polaimg instance of its own (robust.mjs), in the
// order written: a worker SIGKILLed mid-upload, PostgreSQL stopped under
// load, local storage full and read-only, a decode that outlives
// request_timeout, and `polaimg sweep` reconciling orphans both ways. After
// each: `polaimg verify` must report zero losses.
//
// Local-storage scenarios (disk full, read-only, the sweep of local files)
// are skipped when the harness runs another storage back end; the others
// run on any back end (the instances inherit the harness's storage keys).
import { after, before, describe, test } from 'node:test';
import { execFileSync } from 'node:child_process';
import {
	api, assert, assertError, assertNoLeak, fs, lit, makeImage, multipart, path, pgStart, pgStop, sleep, sql, uuid,
} from '../integration/lib.mjs';
import { jpegSlowProgressive } from './craft.mjs';
import {
	alive, dfAvail, eventually, isLocal, openFiles, record, startInstance, stopAll, workerEndLines,
} from './robust.mjs';

const survived = {};

after(async () => {
	await stopAll();
	record('faults', { survived });
});

function pgIsUp() {
	try { sql('SELECT 1'); return true; } catch { return false; }
}

// Files (relative) under dir, recursively; [] if absent.
function filesUnder(dir) {
	const out = [];
	const walk = (d, rel) => {
		let ents;
		try { ents = fs.readdirSync(d, { withFileTypes: true }); } catch { return; }
		for (const e of ents) {
			const r = rel ? `${rel}/${e.name}` : e.name;
			if (e.isDirectory()) walk(path.join(d, e.name), r);
			else out.push(r);
		}
	};
	walk(dir, '');
	return out.sort();
}

// Sets the mtime of every file under dir `ago` seconds into the past.
function backdate(dir, ago) {
	const t = new Date(Date.now() - ago * 1000);
	for (const f of filesUnder(dir)) fs.utimesSync(path.join(dir, f), t, t);
}

// ---------------------------------------------------------------------------------------

describe('a worker SIGKILLed in the middle of an upload', () => {
	let inst;
	let big;
	let w;
	before(async () => {
		inst = await startInstance({ conf: { workers: 3 } });
		w = inst.seedWorld();
		// A PNG is decoded in full (no shrink-on-load): seconds of work.
		big = makeImage(5000, 3500, 'png');
	});

	test('the master respawns it, the client gets an error, the others complete, nothing half-stored', async () => {
		const workers = await inst.waitWorkers(3);
		assert.ok(workers, 'three workers');
		const mp = multipart({ caseId: w.case }, { filename: 'big.png', contentType: 'image/png', data: big });
		const mk = () => api('POST', `${inst.base}/api/v1/images/upload`, {
			token: w.tDoctor, body: mp.body, headers: { 'Content-Type': mp.contentType },
		});
		const before = inst.countRows(`case_id = ${lit(w.case)}`);
		const reqs = [mk(), mk(), mk()];
		// The victim: a worker with a file of the upload open in storage/.tmp.
		const tmpDir = path.join(inst.storageDir, '.tmp');
		const victim = await eventually(() => inst.workers().find((p) =>
			openFiles(p).some((f) => f.startsWith(tmpDir))), 20000, 20);
		assert.ok(victim, 'a worker busy with an upload');
		process.kill(victim, 'SIGKILL');
		const res = await Promise.all(reqs);
		const codes = res.map((r) => r.status).sort();
		const ok = res.filter((r) => r.status === 201).length;
		assert.ok(codes.some((c) => c >= 500), `the killed request failed: ${codes}`);
		assert.ok(codes.every((c) => c === 201 || c === 502), `only 201 and 502: ${codes}`);
		assert.ok(ok >= 1, `the other in-flight uploads completed: ${codes}`);
		// Respawned.
		const again = await inst.waitWorkers(3);
		assert.ok(again && !again.includes(victim), `a new worker replaced ${victim}: ${again}`);
		assert.ok(alive(inst.masterPid), 'the master lives');
		assert.ok(workerEndLines(inst.logText()).some((l) => l.includes(`worker ${victim} killed by signal 9`)),
			'the master logged the death');
		// Exactly the completed uploads have rows (and the harness ones).
		assert.equal(inst.countRows(`case_id = ${lit(w.case)}`), before + ok);
		// Every object under the case belongs to a ready row with all its
		// objects (verify), and what the dead worker left is what sweep
		// clears: orphans older than an hour, temp files older than a day.
		const summary = inst.verifyOk('worker kill');
		if (isLocal) {
			backdate(path.join(inst.storageDir, 'cases'), 7200);
			backdate(tmpDir, 2 * 86400);
			const s = inst.cli('sweep');
			assert.equal(s.status, 0, s.stdout + s.stderr);
			assert.deepEqual(fs.readdirSync(tmpDir), [], '.tmp is empty after sweep');
			assert.match(inst.verifyOk('sweep after worker kill'), / 0 orphan objects/);
			record('faults', { workerKill: { codes, verify: summary, sweep: s.stdout.trim().split('\n').pop() } });
		}
		survived.workerKill = true;
	});
	after(() => inst?.stop());
});

// ---------------------------------------------------------------------------------------

describe('PostgreSQL stopped during load', () => {
	let inst;
	let img;
	let w;
	before(async () => {
		inst = await startInstance({ conf: { workers: 3 } });
		w = inst.seedWorld();
		const u = await inst.upload(w.tDoctor, w.case, makeImage(64, 48, 'jpg'));
		assert.equal(u.status, 201, u.text);
		img = u.json.data;
	});
	after(async () => {
		if (!pgIsUp()) pgStart();
		await inst?.stop();
	});

	test('503 DATABASE_UNAVAILABLE while it is down, no worker crash, recovery within seconds', async () => {
		const small = makeImage(96, 64, 'jpg');
		const mp = multipart({ caseId: w.case }, { filename: 'a.jpg', contentType: 'image/jpeg', data: small });
		const results = []; // {t, kind, status, code}
		let stop = false;
		const kinds = {
			get: () => api('GET', `${inst.base}/api/v1/images/${img.id}`, { token: w.tDoctor }),
			list: () => api('GET', `${inst.base}/api/v1/images/cases/${w.case}?limit=5`, { token: w.tPatient }),
			dl: () => api('GET', `${inst.base}/api/v1/images/${img.id}/download-url`, { token: w.tPatient }),
			upload: () => api('POST', `${inst.base}/api/v1/images/upload`, {
				token: w.tDoctor, body: mp.body, headers: { 'Content-Type': mp.contentType },
			}),
		};
		const loop = async (kind) => {
			while (!stop) {
				const t = Date.now();
				let r;
				try { r = await kinds[kind](); } catch (e) { r = { status: 0, json: { code: String(e) } }; }
				results.push({ t, t1: Date.now(), kind, status: r.status, code: r.json?.code, r });
			}
		};
		const loops = ['get', 'list', 'dl', 'upload', 'get', 'list', 'dl', 'upload'].map(loop);
		const crashAt = workerEndLines(inst.logText()).length;
		await sleep(1500);
		const tStop = Date.now();
		pgStop();
		const tStopped = Date.now();
		await sleep(3000);
		const tStart = Date.now();
		pgStart();
		const tStarted = Date.now();
		// Recovered: a full round of every kind succeeds.
		const recovered = await eventually(async () => {
			const rs = await Promise.all(Object.values(kinds).map((f) => f()));
			return rs.every((r) => r.status >= 200 && r.status < 300);
		}, 20000, 200);
		const tRecovered = Date.now();
		await sleep(1000);
		stop = true;
		await Promise.all(loops);
		assert.ok(recovered, 'the service recovered');
		const bad = results.filter((x) => !((x.status >= 200 && x.status < 300) ||
			(x.status === 503 && x.code === 'DATABASE_UNAVAILABLE')));
		assert.deepEqual(bad.map((x) => `${x.kind} ${x.status} ${x.code}`), [], 'only 2xx and 503 DATABASE_UNAVAILABLE');
		const down = results.filter((x) => x.t >= tStopped && x.t1 < tStart);
		assert.ok(down.length > 0 && down.every((x) => x.status === 503), 'every request while it was down got 503');
		for (const x of down.slice(0, 5)) assertNoLeak(x.r);
		const before = results.filter((x) => x.t1 < tStop);
		assert.deepEqual(before.filter((x) => x.status >= 300).map((x) => `${x.kind} ${x.status}`), [], 'all fine before');
		const after503 = results.filter((x) => x.t > tRecovered && x.status !== 200 && x.status !== 201);
		assert.deepEqual(after503.map((x) => x.status), [], 'all fine after recovery');
		assert.deepEqual(workerEndLines(inst.logText()).slice(crashAt), [], 'no worker ended');
		const recoveryMs = tRecovered - tStarted;
		assert.ok(recoveryMs < 10000, `recovered ${recoveryMs} ms after PostgreSQL was back`);
		const summary = inst.verifyOk('PostgreSQL outage');
		assert.match(summary, / 0 orphan objects/, 'a refused upload left no objects');
		record('faults', {
			pgOutage: {
				requests: results.length, during: down.length, recoveryMs, stopMs: tStopped - tStop, startMs: tStarted - tStart,
			},
		});
		survived.pgOutage = true;
	});
});

// ---------------------------------------------------------------------------------------

// A fault that cannot be staged here (mount not permitted) fails the
// suite: a skipped fault is a fault not tested. ROBUST_ALLOW_SKIPPED_FAULTS=1
// turns that into a skip, for machines known to lack the permission; CI
// does not set it. (Not a POLAIMG_ name: tests/integration/run.sh clears
// those, as polaimg reads them as settings.)
const ALLOW_SKIPPED_FAULTS = process.env.ROBUST_ALLOW_SKIPPED_FAULTS === '1';
function faultUnavailable(t, why) {
	if (ALLOW_SKIPPED_FAULTS) return t.skip(`${why} (allowed: ROBUST_ALLOW_SKIPPED_FAULTS=1)`);
	assert.fail(`${why}: this fault cannot be staged here; set ROBUST_ALLOW_SKIPPED_FAULTS=1 to skip it knowingly`);
}

let mountError = '';
function tryMount(dir, sizeKiB) {
	try {
		execFileSync('mount', ['-t', 'tmpfs', '-o', `size=${sizeKiB}k,mode=0755`, 'tmpfs', dir], { stdio: 'pipe' });
		return true;
	} catch (e) {
		mountError = String(e.stderr || e.message).trim();
		return false;
	}
}

describe('local storage full, then read-only', { skip: !isLocal && 'local storage only' }, () => {
	let inst;
	let mnt;
	let mounted = false;
	let jpg;
	let img;
	let w;
	const filler = () => path.join(mnt, '.filler');

	before(async () => {
		mnt = fs.mkdtempSync('/tmp/polaimg-robust-tmpfs-');
		mounted = tryMount(mnt, 4096);
		if (!mounted) return;
		inst = await startInstance({ storageDir: mnt, conf: { workers: 2 } });
		w = inst.seedWorld();
		jpg = makeImage(900, 700, 'jpg', ['+noise', 'Gaussian']);
		const r = await inst.upload(w.tDoctor, w.case, makeImage(120, 90, 'jpg'));
		assert.equal(r.status, 201, r.text);
		img = r.json.data;
	});
	after(async () => {
		await inst?.stop();
		if (mounted) {
			try { execFileSync('mount', ['-o', 'remount,rw', mnt], { stdio: 'ignore' }); } catch { /* ok */ }
			try { execFileSync('umount', [mnt], { stdio: 'ignore' }); } catch { /* ok */ }
		}
		fs.rmSync(mnt, { recursive: true, force: true });
	});

	const send = (data) => inst.upload(w.tDoctor, w.case, data);
	// Fills the file system, leaving about `leave` bytes free.
	const fillLeaving = (leave) => {
		fs.rmSync(filler(), { force: true });
		const avail = dfAvail(mnt);
		const n = Math.max(0, avail - leave);
		const fd = fs.openSync(filler(), 'w');
		try {
			const chunk = Buffer.alloc(64 * 1024, 0x5a);
			for (let done = 0; done < n;) {
				const k = Math.min(chunk.length, n - done);
				try { fs.writeSync(fd, chunk, 0, k); } catch { break; }
				done += k;
			}
		} finally { fs.closeSync(fd); }
	};
	const casesFiles = () => filesUnder(path.join(mnt, 'cases'));

	test('tmpfs mounted as storage_dir (else a failure, unless ROBUST_ALLOW_SKIPPED_FAULTS=1)', (t) => {
		if (!mounted) return faultUnavailable(t, `mount -t tmpfs failed (${mountError})`);
		assert.ok(fs.readFileSync('/proc/mounts', 'utf8').split('\n').some((l) => l.split(' ')[1] === mnt && l.split(' ')[2] === 'tmpfs'),
			`${mnt} is a tmpfs in /proc/mounts`);
	});

	test('full before the original fits → 503 STORAGE_UNAVAILABLE, no row, nothing half-written', async (t) => {
		if (!mounted) return faultUnavailable(t, 'no tmpfs');
		const rows = inst.countRows();
		const files = casesFiles();
		fillLeaving(jpg.length / 4);
		const r = await send(jpg);
		assertError(r, 503, 'STORAGE_UNAVAILABLE');
		assertNoLeak(r);
		assert.equal(inst.countRows(), rows);
		assert.deepEqual(casesFiles(), files);
		assert.deepEqual(fs.readdirSync(path.join(mnt, '.tmp')), []);
	});

	test('full while the copies are written → 503 STORAGE_UNAVAILABLE, no row, nothing half-written', async (t) => {
		if (!mounted) return faultUnavailable(t, 'no tmpfs');
		const rows = inst.countRows();
		const files = casesFiles();
		const codes = [];
		// Room for the original, short of the derived copies: try a few margins.
		for (const extra of [2048, 16384, 40960]) {
			fillLeaving(jpg.length + extra);
			const r = await send(jpg);
			codes.push(r.status);
			if (r.status === 201) {
				// It fitted after all: take it out of the comparison.
				files.push(...filesUnder(path.join(mnt, 'cases', w.case, r.json.data.id)).map((f) => `${w.case}/${r.json.data.id}/${f}`));
				continue;
			}
			assertError(r, 503, 'STORAGE_UNAVAILABLE');
			assertNoLeak(r);
		}
		assert.ok(codes.includes(503), `at least one upload ran out of space: ${codes}`);
		assert.equal(inst.countRows(), rows + codes.filter((c) => c === 201).length);
		assert.deepEqual(casesFiles().sort(), files.sort());
		assert.deepEqual(fs.readdirSync(path.join(mnt, '.tmp')), [], 'no temp file left');
		record('faults', { diskFull: { codes } });
	});

	test('space back → uploads work again; verify: zero losses', async (t) => {
		if (!mounted) return faultUnavailable(t, 'no tmpfs');
		fs.rmSync(filler(), { force: true });
		const r = await send(makeImage(100, 80, 'jpg'));
		assert.equal(r.status, 201, r.text);
		inst.verifyOk('disk full');
		survived.diskFull = true;
	});

	test('read-only storage → uploads 503 STORAGE_UNAVAILABLE, reads still served, health says storage error', async (t) => {
		if (!mounted) return faultUnavailable(t, 'no tmpfs');
		const rows = inst.countRows();
		execFileSync('mount', ['-o', 'remount,ro', mnt]);
		try {
			const files = casesFiles();
			const r = await send(makeImage(100, 80, 'jpg'));
			assertError(r, 503, 'STORAGE_UNAVAILABLE');
			assertNoLeak(r);
			assert.equal(inst.countRows(), rows);
			assert.deepEqual(casesFiles(), files);
			const g = await api('GET', `${inst.base}/api/v1/images/${img.id}/proxy?variant=original`, { token: w.tDoctor });
			assert.equal(g.status, 200, 'reads work on read-only storage');
			const h = await api('GET', `${inst.base}/api/v1/images/health`);
			assert.equal(h.status, 503);
			assert.equal(h.json.storage, 'error');
			inst.verifyOk('read-only storage (verify reads only)');
		} finally {
			execFileSync('mount', ['-o', 'remount,rw', mnt]);
		}
		const r2 = await eventually(async () => (await send(makeImage(100, 80, 'jpg'))).status === 201, 5000);
		assert.ok(r2, 'uploads work again once writable');
		inst.verifyOk('read-only storage');
		survived.readOnly = true;
	});
});

// ---------------------------------------------------------------------------------------

describe('a decode that outlives request_timeout', () => {
	let inst;
	let w;
	before(async () => {
		// 100 MP: the slow JPEG below is 10000×10000, over the default
		// max_pixels (50 MP), which would refuse it at once.
		inst = await startInstance({ conf: { workers: 2, request_timeout: 2, max_pixels: 100000000 } });
		w = inst.seedWorld();
	});
	after(() => inst?.stop());

	test('is killed by the master and logged; the worker is replaced; nothing stored', async () => {
		// CMYK, 841 scans: left to ImageMagick, whose libjpeg takes
		// seconds (polaimg's own decoder refuses a grey one past 100 scans).
		const jpg = jpegSlowProgressive(10000, 15, 4);
		const workers = await inst.waitWorkers(2);
		const rows = inst.countRows();
		const mp = multipart({ caseId: w.case }, { filename: 'slow.jpg', contentType: 'image/jpeg', data: jpg });
		const t0 = Date.now();
		const r = await api('POST', `${inst.base}/api/v1/images/upload`, {
			token: w.tDoctor, body: mp.body, headers: { 'Content-Type': mp.contentType },
		});
		const ms = Date.now() - t0;
		assert.equal(r.status, 502, `${r.status} ${r.text.slice(0, 200)}`);
		assert.ok(ms < 10000, `answered in ${ms} ms`);
		const re = /request ([0-9a-f]{32}) exceeded request_timeout \(2s\); worker (\d+) killed/;
		const log = await eventually(() => { const t = inst.logText(); return re.test(t) && /for request_timeout/.test(t) && t; }, 5000);
		assert.ok(log, `the master logged the kill:\n${inst.logText().split('\n').filter((l) => /master/.test(l)).join('\n')}`);
		const killed = re.exec(log);
		assert.ok(workers.includes(Number(killed[2])), `${killed[2]} was one of ${workers}`);
		assert.ok(log.includes(`worker ${killed[2]} killed by signal 9 (Killed) for request_timeout`), log);
		const again = await inst.waitWorkers(2);
		assert.ok(again && !again.includes(Number(killed[2])), 'replaced');
		assert.equal(inst.countRows(), rows, 'no row');
		const ok = await api('GET', `${inst.base}/api/v1/images/health`);
		assert.equal(ok.status, 200);
		const mp2 = multipart({ caseId: w.case }, { filename: 'a.jpg', contentType: 'image/jpeg', data: makeImage(64, 48, 'jpg') });
		const u = await api('POST', `${inst.base}/api/v1/images/upload`, {
			token: w.tDoctor, body: mp2.body, headers: { 'Content-Type': mp2.contentType },
		});
		assert.equal(u.status, 201, 'the replacement worker serves uploads');
		inst.verifyOk('request_timeout kill');
		record('faults', { timeoutKill: { ms, requestId: killed[1] } });
		survived.timeoutKill = true;
	});
});

// ---------------------------------------------------------------------------------------

describe('polaimg sweep reconciles orphans both ways; verify finds damage', { skip: !isLocal && 'local storage only' }, () => {
	let inst;
	let img;
	let w;
	before(async () => {
		inst = await startInstance({ conf: { workers: 1 } });
		w = inst.seedWorld();
		const r = await inst.upload(w.tDoctor, w.case, makeImage(200, 150, 'png'), { filename: 'a.png', contentType: 'image/png' });
		assert.equal(r.status, 201, r.text);
		img = r.json.data;
	});
	after(() => inst?.stop());

	test('objects without a row and a row without objects are removed, and reported', async () => {
		const store = inst.storageDir;
		const src = path.join(store, 'cases', w.case, img.id);
		// Objects without a row: a copy of the image under an unknown id, and
		// an object of a case that does not exist.
		const orphanId = uuid();
		const orphanDir = path.join(store, 'cases', w.case, orphanId);
		fs.mkdirSync(orphanDir, { recursive: true });
		for (const f of fs.readdirSync(src)) fs.copyFileSync(path.join(src, f), path.join(orphanDir, f));
		const strayDir = path.join(store, 'cases', uuid(), uuid());
		fs.mkdirSync(strayDir, { recursive: true });
		fs.writeFileSync(path.join(strayDir, 'original'), 'stray');
		backdate(orphanDir, 7200);
		backdate(strayDir, 7200);
		// A young orphan stays (its row may be on its way).
		const youngDir = path.join(store, 'cases', w.case, uuid());
		fs.mkdirSync(youngDir);
		fs.writeFileSync(path.join(youngDir, 'original'), 'young');
		// A row without objects: a direct upload whose URL expired unused.
		const u = await api('POST', `${inst.base}/api/v1/images/upload-url`, {
			token: w.tDoctor, body: { fileName: 'b.jpg', contentType: 'image/jpeg', caseId: w.case, expiresIn: 1 },
		});
		assert.equal(u.status, 200, u.text);
		const pendingId = u.json.data.imageId;
		// A stale temp file.
		fs.writeFileSync(path.join(store, '.tmp', 'up-stale1'), 'x');
		backdate(path.join(store, '.tmp'), 2 * 86400);
		await sleep(2200);
		const v0 = inst.cli('verify', '--quiet');
		assert.equal(v0.status, 0, 'orphans are not losses');
		assert.match(v0.stdout, / 5 orphan objects/);
		const s = inst.cli('sweep');
		assert.equal(s.status, 0, s.stdout + s.stderr);
		const out = s.stdout;
		for (const f of fs.readdirSync(src)) assert.ok(out.includes(`removed orphan object cases/${w.case}/${orphanId}/${f}`), out);
		assert.match(out, /removed orphan object cases\/[0-9a-f-]+\/[0-9a-f-]+\/original/);
		assert.ok(out.includes(`purged expired pending image ${pendingId}`), out);
		assert.match(out, /1 expired pending uploads removed/);
		assert.match(out, /1 stale temp files removed/);
		assert.ok(!fs.existsSync(orphanDir) && !fs.existsSync(strayDir), 'orphans gone');
		assert.ok(fs.existsSync(youngDir), 'a young orphan is kept');
		fs.rmSync(youngDir, { recursive: true });
		assert.equal(inst.countRows(`id = ${lit(pendingId)}`), 0, 'the expired pending row is gone');
		assert.ok(fs.existsSync(path.join(src, 'original')), 'the live image is untouched');
		assert.match(inst.verifyOk('sweep'), / 0 orphan objects/);
		record('faults', { sweep: out.trim().split('\n').pop() });
		survived.sweep = true;
	});

	test('verify reports a changed byte and a missing object (exit 1), changes nothing', async () => {
		const dir = path.join(inst.storageDir, 'cases', w.case, img.id);
		const display = fs.readdirSync(dir).find((f) => f.startsWith('display'));
		const thumb = fs.readdirSync(dir).find((f) => f.startsWith('thumb'));
		const dpath = path.join(dir, display);
		const saved = fs.readFileSync(dpath);
		const flipped = Buffer.from(saved);
		flipped[flipped.length >> 1] ^= 1;
		fs.writeFileSync(dpath, flipped);
		fs.renameSync(path.join(dir, thumb), path.join(inst.dir, 'thumb.saved'));
		try {
			const v = inst.cli('verify', '--quiet');
			assert.equal(v.status, 1, v.stdout);
			assert.ok(v.stdout.includes(`sha256 mismatch cases/${w.case}/${img.id}/${display}`), v.stdout);
			assert.ok(v.stdout.includes(`missing cases/${w.case}/${img.id}/${thumb}`), v.stdout);
			assert.match(v.stdout, / 1 missing, 1 mismatched, 0 unreadable/);
			assert.ok(fs.readFileSync(dpath).equals(flipped), 'verify changed nothing');
			// A size change is caught before hashing.
			fs.writeFileSync(dpath, Buffer.concat([saved, Buffer.from('x')]));
			assert.match(inst.cli('verify', '--quiet').stdout, /size mismatch/);
		} finally {
			fs.writeFileSync(dpath, saved);
			fs.renameSync(path.join(inst.dir, 'thumb.saved'), path.join(dir, thumb));
		}
		inst.verifyOk('repair');
		// Deleted-but-not-purged images are checked too.
		const d = await api('DELETE', `${inst.base}/api/v1/images/${img.id}`, { token: w.tDoctor });
		assert.equal(d.status, 200);
		fs.renameSync(path.join(dir, thumb), path.join(inst.dir, 'thumb.saved'));
		try {
			assert.equal(inst.cli('verify', '--quiet').status, 1, 'a deleted image still needs its objects');
		} finally {
			fs.renameSync(path.join(inst.dir, 'thumb.saved'), path.join(dir, thumb));
		}
		inst.verifyOk('deleted image');
	});
});
