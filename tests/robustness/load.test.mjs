// Load, with wrk (load.lua) against 127.0.0.1, bounded in time:
//
// 1. One polaimg (4 workers, never recycled, so their memory can be watched)
//    behind nginx: four wrk processes of 16 connections each — 64 in all —
//    list, proxy, download-url and upload at once for LOAD_SECONDS
//    (default 20; tests/robustness/load.sh runs 120). Every request is valid:
//    any status outside 2xx, and any socket error or timeout, is an
//    unexpected error; there must be none. Reported: requests/s and
//    latencies (p50/p90/p99/p99.9) per kind, worker RSS at start and end.
// 2. Scale-out: two masters (two sockets, as if on two hosts) behind one
//    nginx upstream with fastcgi_next_upstream, sharing PostgreSQL and
//    storage. Mixed load on 64 connections; halfway through, one master and
//    all its workers are SIGKILLed. Requests in flight on the dead master
//    fail (502); every later request is served by the other; afterwards
//    `polaimg verify` finds every recorded image complete (no upload
//    recorded without its objects, no image lost).
import { after, before, describe, test } from 'node:test';
import { spawn, spawnSync } from 'node:child_process';
import { assert, fs, makeImage, multipart, path, sleep } from '../integration/lib.mjs';
import { REPO_ROOT, record, rssKiB, startInstance, stopAll } from './robust.mjs';

const SECONDS = Math.max(3, Number(process.env.LOAD_SECONDS || 20));
const WRK = spawnSync('sh', ['-c', 'command -v wrk'], { encoding: 'utf8' }).stdout.trim();
const LUA = path.join(REPO_ROOT, 'tests/robustness/load.lua');

after(() => stopAll());

// Seeds a case with `n` images in inst; writes the wrk config; returns its path.
async function prepare(inst, n = 12) {
	const w = inst.seedWorld();
	const ids = [];
	for (let i = 0; i < n; i++) {
		const r = await inst.upload(w.tDoctor, w.case, makeImage(640 + i, 480, 'jpg'));
		assert.equal(r.status, 201, r.text);
		ids.push(r.json.data.id);
	}
	const mp = multipart({ caseId: w.case, eyeSide: 'left', imageType: 'fundus' },
		{ filename: 'load.jpg', contentType: 'image/jpeg', data: makeImage(800, 600, 'jpg') });
	const bodyPath = path.join(inst.dir, 'upload-body');
	fs.writeFileSync(bodyPath, mp.body);
	const conf = path.join(inst.dir, 'wrk.conf');
	fs.writeFileSync(conf, [`token=${w.tDoctor}`, `case=${w.case}`, `ids=${ids.join(' ')}`, `body=${bodyPath}`,
		`ctype=${mp.contentType}`].join('\n') + '\n');
	return { conf, w, ids };
}

// Runs wrk for `seconds` with `conns` connections in `mode`; resolves the
// parsed LOAD line (and the raw output).
function wrk(base, mode, conf, seconds, conns) {
	return new Promise((resolve, reject) => {
		const p = spawn(WRK, ['-t1', `-c${conns}`, `-d${seconds}s`, '--timeout', '30s', '--latency', '-s', LUA, base,
			'--', mode, conf], { stdio: ['ignore', 'pipe', 'pipe'] });
		let out = '';
		p.stdout.on('data', (d) => { out += d; });
		p.stderr.on('data', (d) => { out += d; });
		p.on('error', reject);
		p.on('exit', (code) => {
			const m = /^LOAD (.*)$/m.exec(out);
			if (code !== 0 || !m) return reject(new Error(`wrk ${mode} exited ${code}:\n${out}`));
			const r = { raw: out };
			for (const kv of m[1].split(' ')) {
				const [k, v] = kv.split('=');
				r[k] = k === 'mode' ? v : Number(v);
			}
			resolve(r);
		});
	});
}

const socketErrors = (r) => r.connect + r.read + r.write + r.timeout;

describe('load: 64 connections of list, proxy, download-url and upload', { skip: !WRK && 'wrk is not installed' }, () => {
	let inst;
	let prep;
	before(async () => {
		inst = await startInstance({ conf: { workers: 4, max_requests: 0, log_level: 'warn' } });
		prep = await prepare(inst);
	});

	test(`${SECONDS} s: zero unexpected errors; p99 and worker RSS reported`, async () => {
		const workers = await inst.waitWorkers(4);
		// Warm every worker (first use of ImageMagick, PostgreSQL statements),
		// so "start" is the steady state and not the empty process.
		await wrk(inst.base, 'mixed', prep.conf, 2, 8);
		const rssStart = Object.fromEntries(workers.map((p) => [p, rssKiB(p)]));
		const rows0 = inst.countRows();
		const runs = await Promise.all(['list', 'proxy', 'downloadurl', 'upload'].map((m) =>
			wrk(inst.base, m, prep.conf, SECONDS, 16)));
		const rssEnd = Object.fromEntries(workers.map((p) => [p, rssKiB(p)]));
		const same = inst.workers();
		assert.deepEqual(same, workers, 'the same workers served the whole run (none died or was replaced)');
		const byMode = {};
		for (const r of runs) {
			byMode[r.mode] = {
				requests: r.requests, rps: r.rps, p50: r.p50, p90: r.p90, p99: r.p99, p999: r.p999, max: r.max,
				errors: r.status_errors + socketErrors(r),
			};
		}
		const total = runs.reduce((a, r) => a + r.requests, 0);
		const errors = runs.reduce((a, r) => a + r.status_errors + socketErrors(r), 0);
		const uploads = runs.find((r) => r.mode === 'upload').requests;
		record('load', {
			seconds: SECONDS, connections: 64, workers: 4, requests: total,
			rps: Math.round(runs.reduce((a, r) => a + r.rps, 0) * 10) / 10, errors, byMode,
			rssStartKiB: rssStart, rssEndKiB: rssEnd,
		});
		for (const r of runs) {
			assert.equal(r.status_errors, 0, `${r.mode}: ${r.status_errors} non-2xx responses\n${r.raw}`);
			assert.equal(socketErrors(r), 0, `${r.mode}: socket errors or timeouts\n${r.raw}`);
			assert.ok(r.requests > 0, `${r.mode} made progress`);
		}
		// Every upload answered 201 has its row (and, verify says, its
		// objects); requests still in flight when wrk stopped counting may
		// have completed too (at most one per upload connection).
		const added = inst.countRows() - rows0;
		assert.ok(added >= uploads && added <= uploads + 16, `${added} rows for ${uploads} uploads answered 201`);
		const v = inst.verifyOk('load');
		record('load', { verify: v });
		// RSS: flat means no growth with the number of requests served; allow
		// for allocator high-water marks (a worker that decoded the largest
		// image keeps its heap), not for a leak per request.
		for (const p of workers) {
			const grow = rssEnd[p] - rssStart[p];
			assert.ok(grow < 64 * 1024, `worker ${p} grew by ${grow} KiB (${rssStart[p]} → ${rssEnd[p]})`);
		}
	});
});

describe('scale-out: two masters behind one nginx upstream; one SIGKILLed mid-load', { skip: !WRK && 'wrk is not installed' }, () => {
	let inst;
	let prep;
	before(async () => {
		inst = await startInstance({ masters: 2, conf: { workers: 2, max_requests: 0, log_level: 'warn' } });
		prep = await prepare(inst);
	});

	test(`${SECONDS} s mixed load, master B killed at ${Math.floor(SECONDS / 2)} s: failover, nothing lost`, async () => {
		await inst.waitWorkers(2, 0);
		await inst.waitWorkers(2, 1);
		const rows0 = inst.countRows();
		const run = wrk(inst.base, 'mixed', prep.conf, SECONDS, 64);
		await sleep(SECONDS * 500);
		const killedAt = Math.floor(Date.now() / 1000);
		const killedWorkers = inst.killMaster(1);
		const r = await run;
		// After the failover: a second run must be clean.
		const after = await wrk(inst.base, 'mixed', prep.conf, 3, 64);
		const errs = r.status_errors + socketErrors(r);
		record('scaleout', {
			seconds: SECONDS, connections: 64, masters: 2, workersEach: 2, requests: r.requests, rps: r.rps,
			p50: r.p50, p99: r.p99, errorsDuringKill: errs, errors502: r.c502,
			errorWindow: errs ? [r.first_err - killedAt, r.last_err - killedAt] : null,
			afterRequests: after.requests, afterErrors: after.status_errors + socketErrors(after),
		});
		assert.ok(killedWorkers.length === 2, 'master B had its two workers');
		assert.equal(socketErrors(r), 0, `socket errors: ${r.raw}`);
		// The only failures are requests that master B held when it died:
		// 502s, within a second or two of the kill, at most one per connection.
		assert.equal(r.status_errors, r.c502, `only 502s: ${r.raw}`);
		assert.ok(r.c502 <= 64, `${r.c502} 502s`);
		if (r.c502 > 0) {
			assert.ok(r.first_err >= killedAt - 1 && r.last_err <= killedAt + 2,
				`errors only around the kill (${r.first_err - killedAt}..${r.last_err - killedAt} s)`);
		}
		assert.equal(after.status_errors + socketErrors(after), 0, `after the failover: ${after.raw}`);
		assert.ok(after.requests > 0);
		// Nothing recorded without its objects, nothing lost.
		assert.ok(inst.countRows() > rows0, 'uploads were recorded');
		const v = inst.verifyOk('scale-out kill');
		record('scaleout', { verify: v });
	});
});
