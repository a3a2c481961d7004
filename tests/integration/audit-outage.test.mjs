// Audit rows across a database outage. A denied signed-URL request (a bad
// sig on /:id/file) is answered 403 without asking the database and writes
// one audit row on its own (db_audit_read), so it is audited whether the
// database is there or not:
// - polaimg's sessions terminated (pg_terminate_backend), or PostgreSQL
//   restarted: the batch is sent again on a fresh connection, every row
//   reaches image_events;
// - PostgreSQL stopped: the rows go to the spool (<TEST_TMP>/spool/
//   audit.spool), `polaimg verify` fails and names it; once PostgreSQL is
//   back a worker writes them, none lost, none twice, in the order made,
//   and empties the spool.
import { after, describe, test } from 'node:test';
import {
	TEST_TMP, api, assert, fs, lit, path, pgStart, pgStop, polaimgCli, sleep, sql, sqlRows, uuid,
} from './lib.mjs';

const SPOOL = path.join(TEST_TMP, 'spool', 'audit.spool');

// Polls fn until it returns true or ms pass; returns whether it did.
async function eventually(fn, ms = 20000) {
	const deadline = Date.now() + ms;
	while (Date.now() < deadline) {
		try {
			if (await fn()) return true;
		} catch { /* keep polling */ }
		await sleep(200);
	}
	return false;
}

function pgIsUp() {
	try { sql('SELECT 1'); return true; } catch { return false; }
}

// n denied signed-URL requests for one (made-up) image, one after the
// other: their request ids, in order.
async function deniedRequests(n) {
	const id = uuid();
	const exp = Math.floor(Date.now() / 1000) + 3600;
	const ids = [];
	for (let i = 0; i < n; i++) {
		const r = await api('GET', `/api/v1/images/${id}/file?variant=display&expires=${exp}&sig=${'0'.repeat(64)}`);
		assert.equal(r.status, 403, r.text);
		assert.ok(r.requestId);
		ids.push(r.requestId);
	}
	return ids;
}

// The audit rows of these request ids, in the order they were written.
const rowsOf = (ids) => sqlRows(`SELECT request_id, action, outcome FROM image_events
	WHERE request_id IN (${ids.map(lit).join(', ')}) ORDER BY id`);

// Every worker has a working connection: rows of a few requests written.
async function warmUp() {
	const ids = await deniedRequests(6);
	assert.ok(await eventually(() => rowsOf(ids).length === 6), 'warm-up rows written');
}

async function allRecorded(ids, what) {
	const ok = await eventually(() => rowsOf(ids).length >= ids.length);
	const rows = rowsOf(ids);
	assert.ok(ok, `${what}: ${rows.length} of ${ids.length} rows in image_events`);
	assert.equal(rows.length, ids.length, `${what}: each row once`);
	for (const r of rows) {
		assert.equal(r.action, 'file');
		assert.equal(r.outcome, 'denied');
	}
	return rows;
}

const spoolSize = () => { try { return fs.statSync(SPOOL).size; } catch { return 0; } };

after(() => { if (!pgIsUp()) pgStart(); });

describe('audit rows survive a broken connection', () => {
	test('polaimg sessions terminated, then 6 denied signed-URL requests: 6 rows', async () => {
		await warmUp();
		const killed = sql(`SELECT count(*) FROM (SELECT pg_terminate_backend(pid) FROM pg_stat_activity
			WHERE application_name = 'polaimg' AND pid <> pg_backend_pid()) t`)[0][0];
		assert.ok(Number(killed) >= 1, `sessions terminated: ${killed}`);
		const ids = await deniedRequests(6);
		await allRecorded(ids, 'after pg_terminate_backend');
	});

	test('PostgreSQL restarted, then 6 denied signed-URL requests: 6 rows', async () => {
		await warmUp();
		pgStop();
		pgStart();
		assert.ok(await eventually(pgIsUp), 'PostgreSQL is back');
		const ids = await deniedRequests(6);
		await allRecorded(ids, 'after a restart');
		assert.equal(spoolSize(), 0, 'nothing left in the spool');
	});
});

describe('audit rows while PostgreSQL is stopped (in order: stop, requests, verify, start)', () => {
	const N = 8;
	let ids;

	test('denied requests while stopped are answered and spooled; verify names the spool', async () => {
		await warmUp();
		pgStop();
		ids = await deniedRequests(N);
		// a worker retries for audit_retry_ms before it spools
		let v;
		assert.ok(await eventually(() => {
			v = polaimgCli('verify');
			return new RegExp(`audit spool .*: ${N} audit row`).test(v.stdout);
		}), `verify reports ${N} spooled rows: ${v && v.stdout} ${v && v.stderr}`);
		assert.notEqual(v.status, 0, 'verify fails while the spool holds rows');
		assert.match(v.stdout, new RegExp(SPOOL.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')));
		assert.ok(spoolSize() > 0, 'the spool file holds them');
	});

	test('started again: every row written once, in order, and the spool emptied', async () => {
		pgStart();
		assert.ok(await eventually(pgIsUp), 'PostgreSQL is back');
		// no request needed: an idle worker tries the spool every second
		const rows = await allRecorded(ids, 'after the outage');
		assert.deepEqual(rows.map((r) => r.request_id), ids, 'written in the order the requests were made');
		assert.ok(await eventually(() => spoolSize() === 0), 'the spool is emptied');
		const v = polaimgCli('verify');
		assert.doesNotMatch(v.stdout, /audit spool/);
		assert.match(v.stdout, / 0 spooled audit rows/);
		// and rows made now go straight to the database
		const more = await deniedRequests(2);
		await allRecorded(more, 'after the replay');
	});
});
