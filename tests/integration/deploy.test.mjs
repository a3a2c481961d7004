// Deployment shapes beyond the pre-forked master behind nginx:
// - `polaimg migrate` on an existing PolaCare database (Prisma schema: text
//   ids, upper-case enums, timestamp(3)) extends it without losing a row, and
//   the service then works on it: old rows are listed, new uploads store the
//   eye side in the "EyeSide" enum;
// - the same binary started by spawn-fcgi (fd 0 is the listening socket)
//   runs a single worker, driven here with cgi-fcgi, a real FastCGI client.
import { test, after } from 'node:test';
import { spawn, spawnSync, execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import {
	assert, lit, makeImage, multipart, serviceEnv, sleep, sha256, token, uuid,
	POLAIMG_BIN, POLAIMG_CONF, TEST_TMP,
} from './lib.mjs';

const DB = 'polacare_' + uuid().slice(0, 8);
const PGHOST = process.env.PGHOST;
const SCHEMA = path.join(path.dirname(new URL(import.meta.url).pathname), '..', 'data', 'polacare_schema_legacy.sql');
const SOCK = path.join(TEST_TMP, `fcgi-${DB}.sock`);
const dbEnv = { ...serviceEnv(), POLAIMG_DATABASE_URL: `host=${PGHOST} dbname=${DB} user=postgres` };

function psql(db, query) {
	return execFileSync('psql', ['-X', '-q', '-At', '-v', 'ON_ERROR_STOP=1', '-d', db, '-c', query],
		{ encoding: 'utf8' }).trim();
}

const ids = { patient: uuid(), doctor: uuid(), kase: uuid(), img1: uuid(), img2: uuid() };
let spawned;

after(() => {
	if (spawned) spawned.kill('SIGKILL');
	try { fs.unlinkSync(SOCK); } catch { /* gone already */ }
	try { psql('postgres', `DROP DATABASE IF EXISTS ${DB} WITH (FORCE)`); } catch { /* best effort */ }
});

// One FastCGI request through cgi-fcgi; returns {status, headers, body}.
function fcgi(method, uri, { tok, body, contentType } = {}) {
	const env = {
		PATH: process.env.PATH, REQUEST_METHOD: method, REQUEST_URI: uri, REMOTE_ADDR: '127.0.0.1',
		CONTENT_LENGTH: String(body ? body.length : 0), SERVER_PROTOCOL: 'HTTP/1.1',
	};
	if (contentType) env.CONTENT_TYPE = contentType;
	if (tok) env.HTTP_AUTHORIZATION = `Bearer ${tok}`;
	const r = spawnSync('cgi-fcgi', ['-bind', '-connect', SOCK], { env, input: body || Buffer.alloc(0), timeout: 30000 });
	assert.equal(r.status, 0, `cgi-fcgi failed: ${r.stderr}`);
	const out = r.stdout;
	const sep = out.indexOf('\r\n\r\n');
	const head = out.subarray(0, sep).toString('utf8').split('\r\n');
	const headers = Object.fromEntries(head.map((l) => [l.slice(0, l.indexOf(':')).toLowerCase(), l.slice(l.indexOf(':') + 1).trim()]));
	return { status: Number((headers.status || '200').split(' ')[0]), headers, body: out.subarray(sep + 4) };
}

test('PolaCare database: schema and rows of the old backend', () => {
	psql('postgres', `CREATE DATABASE ${DB}`);
	execFileSync('psql', ['-X', '-q', '-v', 'ON_ERROR_STOP=1', '-d', DB, '-f', SCHEMA]);
	psql(DB, `INSERT INTO users (id, email, role, updated_at) VALUES
		(${lit(ids.patient)}, 'p@example.org', 'PATIENT', now()), (${lit(ids.doctor)}, 'd@example.org', 'DOCTOR', now());
		INSERT INTO patient_cases (id, patient_id, title, updated_at) VALUES (${lit(ids.kase)}, ${lit(ids.patient)}, 'OD check', now());
		INSERT INTO case_images (id, case_id, image_url, eye_side, description, "order", updated_at) VALUES
		(${lit(ids.img1)}, ${lit(ids.kase)}, 'https://bucket.example/old1.jpg', 'LEFT', 'legacy one', 1, now()),
		(${lit(ids.img2)}, ${lit(ids.kase)}, 'https://bucket.example/old2.jpg', 'RIGHT', NULL, 2, now())`);
	assert.equal(psql(DB, 'SELECT count(*) FROM case_images'), '2');
});

test('PolaCare database: polaimg migrate extends it, twice, losing nothing', () => {
	for (let i = 0; i < 2; i++) {
		const r = spawnSync(POLAIMG_BIN, ['-c', POLAIMG_CONF, 'migrate', '--dir', 'sql'], { env: dbEnv, encoding: 'utf8' });
		assert.equal(r.status, 0, r.stderr + r.stdout);
	}
	assert.equal(psql(DB, 'SELECT count(*) FROM case_images'), '2', 'no row lost');
	assert.equal(psql(DB, `SELECT image_url || '|' || eye_side || '|' || description FROM case_images WHERE id = ${lit(ids.img1)}`),
		'https://bucket.example/old1.jpg|LEFT|legacy one', 'old values untouched');
	assert.equal(psql(DB, `SELECT format_type(atttypid, atttypmod) FROM pg_attribute
		WHERE attrelid = 'case_images'::regclass AND attname = 'eye_side'`), '"EyeSide"', 'the enum column keeps its type');
	assert.equal(psql(DB, `SELECT string_agg(enumlabel, ',' ORDER BY enumsortorder) FROM pg_enum
		WHERE enumtypid = '"EyeSide"'::regtype`), 'LEFT,RIGHT,BOTH,UNKNOWN', 'the missing label added in the enum\'s case');
	for (const col of ['status', 'sha256', 'file_size', 'width', 'height', 'deleted_at', 'storage_key'])
		assert.equal(psql(DB, `SELECT count(*) FROM information_schema.columns WHERE table_name = 'case_images' AND column_name = '${col}'`), '1', col);
	assert.equal(psql(DB, 'SELECT count(*) FROM image_events'), '0');
	assert.equal(psql(DB, 'SELECT count(*) FROM users'), '2', 'users untouched');
});

test('spawn-fcgi: one worker on the inherited socket serves the PolaCare database', async () => {
	spawned = spawn('spawn-fcgi', ['-n', '-s', SOCK, '-M', '0600', '--', POLAIMG_BIN, '-c', POLAIMG_CONF, 'serve'],
		{ env: dbEnv, stdio: ['ignore', 'ignore', 'pipe'] });
	let stderr = '';
	spawned.stderr.on('data', (d) => { stderr += d; });
	for (let i = 0; i < 100 && !fs.existsSync(SOCK); i++) await sleep(50);
	assert.ok(fs.existsSync(SOCK), `spawn-fcgi did not create the socket: ${stderr}`);

	const health = fcgi('GET', '/api/v1/images/health');
	assert.equal(health.status, 200, health.body.toString());
	assert.equal(JSON.parse(health.body).status, 'ok');

	// A PolaCare doctor (role 'DOCTOR' in the "UserRole" enum) uploads.
	const jpg = makeImage(80, 60);
	const mp = multipart({ caseId: ids.kase, eyeSide: 'both', imageType: 'fundus' },
		{ filename: 'x.jpg', contentType: 'image/jpeg', data: jpg });
	const up = fcgi('POST', '/api/v1/images/upload', { tok: token(ids.doctor), body: mp.body, contentType: mp.contentType });
	assert.equal(up.status, 201, up.body.toString());
	const img = JSON.parse(up.body).data;
	assert.equal(img.eyeSide, 'both');
	assert.equal(img.order, 3, 'order continues after the legacy rows');
	assert.equal(img.sha256, sha256(jpg));
	assert.equal(psql(DB, `SELECT eye_side::text FROM case_images WHERE id = ${lit(img.id)}`), 'BOTH',
		'stored as the enum label');

	// The patient lists the case: legacy rows and the new one, in order.
	const list = fcgi('GET', `/api/v1/images/cases/${ids.kase}`, { tok: token(ids.patient) });
	assert.equal(list.status, 200, list.body.toString());
	const data = JSON.parse(list.body).data;
	assert.equal(data.total, 3);
	assert.deepEqual(data.images.map((i) => [i.id, i.eyeSide]),
		[[ids.img1, 'left'], [ids.img2, 'right'], [img.id, 'both']]);
	assert.equal(data.images[0].description, 'legacy one');

	// The single worker keeps serving after an error.
	const bad = fcgi('GET', '/api/v1/images/not-a-uuid', { tok: token(ids.patient) });
	assert.equal(bad.status, 400);
	assert.equal(fcgi('GET', '/api/v1/images/health').status, 200);
	assert.equal(psql(DB, `SELECT count(*) FROM image_events WHERE action = 'upload' AND image_id = ${lit(img.id)}`), '1');
});
