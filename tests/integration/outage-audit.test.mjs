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
//   and empties the spool;
// - a spool left by a crash (a torn last record, a row already written):
//   the valid rows are written once, in time order, the torn one skipped
//   and logged.
import { after, describe, test } from 'node:test';
import {
	TEST_TMP, api, assert, crc32, fs, lit, path, pgStart, pgStop, polaimgCli, sleep, sql, sqlRows, uuid,
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

// One spool record (src/spool.h): "PIA1", u32 length, u32 CRC-32, then
// i64 created_at (unix us), u32 NULL mask, 9 fields of u8 length + bytes.
function spoolRecord(unixUs, fields) {
	const parts = [];
	const head = Buffer.alloc(12);
	head.writeBigInt64LE(BigInt(unixUs), 0);
	let mask = 0;
	fields.forEach((f, i) => { if (f === null) mask |= 1 << i; });
	head.writeUInt32LE(mask, 8);
	parts.push(head);
	for (const f of fields) {
		const b = Buffer.from(f ?? '', 'latin1');
		parts.push(Buffer.from([b.length]), b);
	}
	const payload = Buffer.concat(parts);
	const hdr = Buffer.alloc(12);
	hdr.write('PIA1', 0, 'latin1');
	hdr.writeUInt32LE(payload.length, 4);
	hdr.writeUInt32LE(crc32(payload), 8);
	return Buffer.concat([hdr, payload]);
}

test('a spool left by a crash: valid rows written once and in time order, a torn record skipped', async () => {
	assert.ok(pgIsUp());
	assert.equal(spoolSize(), 0);
	const img = uuid();
	const row = (rid, us) => spoolRecord(us, [null, null, 'file', img, null, 'display', 'denied', '127.0.0.1', rid]);
	const t = Date.now() * 1000;
	// a row already in image_events (a replay that committed, then a crash before the file was emptied)
	const done = `spool-done-${uuid()}`;
	sql(`INSERT INTO image_events (created_at, action, image_id, variant, outcome, remote_addr, request_id)
		VALUES (to_timestamp(${t - 3000000} / 1000000.0), 'file', ${lit(img)}, 'display', 'denied', '127.0.0.1', ${lit(done)})`);
	const us = Number(sql(`SELECT (extract(epoch from created_at) * 1000000)::bigint FROM image_events
		WHERE request_id = ${lit(done)}`)[0][0]);
	const later = `spool-later-${uuid()}`, earlier = `spool-earlier-${uuid()}`, torn = `spool-torn-${uuid()}`;
	const tornRec = row(torn, t - 500000);
	fs.appendFileSync(SPOOL, Buffer.concat([
		row(later, t - 1000000), // appended first, made later
		row(done, us),
		row(earlier, t - 2000000),
		tornRec.subarray(0, tornRec.length - 7),
	]));
	const owner = fs.statSync(path.dirname(SPOOL)); // polaimg's user, who must rewrite it
	fs.chownSync(SPOOL, owner.uid, owner.gid);
	const v = polaimgCli('verify');
	assert.notEqual(v.status, 0);
	assert.match(v.stdout, /audit spool .*: 3 audit row\(s\) not yet in image_events \(1 damaged record/);
	// the next flush of a worker (after any audited request) takes the spool
	const now = await deniedRequests(1);
	assert.ok(await eventually(() => spoolSize() === 0), 'the spool is emptied');
	const rows = rowsOf([earlier, done, later, torn, ...now]);
	assert.deepEqual(rows.map((r) => r.request_id), [done, earlier, later, now[0]],
		'the row already written not again, then the older spooled row, the torn one skipped, the new row last');
	assert.equal(rowsOf([done]).length, 1, 'the row already written is there once');
});
