// Who and whose (docs/api.md, "The image resource" and the case list):
// - each image names its uploader ({id, name, role}) and says what kind of
//   date capturedAt is (capturedAtSource: client, exif, upload);
// - width and height are as displayed (after the EXIF orientation);
// - the case list carries the case (patient id, name, hospital number) and
//   the viewer with what the access table allows them (canUpload,
//   canDelete) for patient, doctor and admin;
// on both database shapes: polaimg's stand-in tables (the main instance:
// no names, so null) and a PolaCare database (tests/data/polacare_schema.sql,
// the platform's tables with their NOT NULL columns and enums), served here
// by an instance of its own with local_timezone = Asia/Bangkok and a short
// auth_cache_ttl: EXIF times without an offset are Bangkok time, and a
// renamed user or case shows within auth_cache_ttl.
import { test, after, before } from 'node:test';
import { spawn, spawnSync, execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import {
	REMOTE, api, assert, curl, exifApp1, lit, makeImage, multipart, seedWorld, serviceEnv, sleep,
	spliceApp1, token, upload, uploadOk, uuid, POLAIMG_BIN, POLAIMG_CONF, TEST_TMP,
} from './lib.mjs';

const jpg = makeImage(64, 48);
const rotated = spliceApp1(makeImage(64, 48), exifApp1({ orientation: 6 }));
const bangkokExif = (offsetTimeOriginal) => spliceApp1(makeImage(40, 30),
	exifApp1({ dateTimeOriginal: '2026:11:20 20:12:00', offsetTimeOriginal }));

// ---- the stand-in tables (the main instance) -----------------------------------

let w;
before(() => { w = seedWorld(); });

const list = (tok, caseId, q = '') => api('GET', `/api/v1/images/cases/${caseId}${q}`, { token: tok });

test('stand-in tables: each image names its uploader by id and role (no name column: null)', async () => {
	const a = await uploadOk(w.tDoctor, w.case, jpg);
	const b = await uploadOk(w.tPatient, w.case, jpg);
	assert.deepEqual(a.uploader, { id: w.doctor, name: null, role: 'doctor' }, 'in the upload answer');
	assert.deepEqual(b.uploader, { id: w.patient, name: null, role: 'patient' });
	const g = await api('GET', `/api/v1/images/${a.id}`, { token: w.tAdmin });
	assert.equal(g.status, 200, g.text);
	assert.deepEqual(g.json.data.uploader, { id: w.doctor, name: null, role: 'doctor' }, 'GET /:id');
	const r = await list(w.tAdmin, w.case);
	assert.equal(r.status, 200, r.text);
	assert.deepEqual(r.json.data.images.map((i) => i.uploader),
		[{ id: w.doctor, name: null, role: 'doctor' }, { id: w.patient, name: null, role: 'patient' }]);
	assert.deepEqual(r.json.data.case, { id: w.case, patientId: w.patient, patientName: null, hn: null });
});

test('viewer: what the access table allows patient, doctor and admin on the case', async () => {
	const want = {
		[w.patient]: ['patient', w.tPatient, true, false],
		[w.doctor]: ['doctor', w.tDoctor, true, true],
		[w.admin]: ['admin', w.tAdmin, true, true],
	};
	for (const [id, [role, tok, canUpload, canDelete]] of Object.entries(want)) {
		// Twice: the second answer comes from the worker's copy of the list,
		// which must not carry the first caller's viewer.
		for (let i = 0; i < 2; i++) {
			const r = await list(tok, w.case);
			assert.equal(r.status, 200, r.text);
			assert.deepEqual(r.json.data.viewer, { id, role, canUpload, canDelete }, `${role} #${i + 1}`);
			assert.deepEqual(r.json.data.case.patientId, w.patient);
		}
	}
	// The page's promise is the server's: a patient's delete is refused.
	const img = (await list(w.tPatient, w.case)).json.data.images[0];
	assert.equal((await api('DELETE', `/api/v1/images/${img.id}`, { token: w.tPatient })).status, 403);
	// Another patient is not a viewer of this case at all.
	assert.equal((await list(w.tOther, w.case)).status, 403);
});

test('capturedAtSource: client, exif, upload', async () => {
	const c = await uploadOk(w.tDoctor, w.case, jpg, { fields: { capturedAt: '2025-01-02T03:04:05Z' } });
	assert.equal(c.capturedAtSource, 'client');
	const e = await uploadOk(w.tDoctor, w.case, spliceApp1(makeImage(40, 30), exifApp1({ dateTimeOriginal: '2021:03:04 05:06:07' })));
	assert.equal(e.capturedAtSource, 'exif');
	assert.match(e.capturedAt, /^2021-03-04T05:06:07Z$/, 'UTC host, no local_timezone: the clock as UTC');
	const u = await uploadOk(w.tDoctor, w.case, jpg);
	assert.equal(u.capturedAtSource, 'upload');
	assert.equal(u.capturedAt, u.createdAt);
	const both = await uploadOk(w.tDoctor, w.case, spliceApp1(makeImage(40, 30), exifApp1({ dateTimeOriginal: '2021:03:04 05:06:07' })),
		{ fields: { capturedAt: '2024-12-31T23:00:00Z' } });
	assert.equal(both.capturedAtSource, 'client', 'the client\'s date wins over EXIF');
	const r = await list(w.tDoctor, w.case);
	const by = Object.fromEntries(r.json.data.images.map((i) => [i.id, i.capturedAtSource]));
	assert.deepEqual([by[c.id], by[e.id], by[u.id], by[both.id]], ['client', 'exif', 'upload', 'client'], 'as listed');
});

test('capturedAtSource: a direct upload reads EXIF too (and without a date says upload)', async () => {
	const w2 = seedWorld();
	const go = async (data) => {
		const d = await api('POST', '/api/v1/images/upload-url', { token: w2.tDoctor,
			body: { caseId: w2.case, fileName: 'a.jpg', contentType: 'image/jpeg', fileSize: data.length } });
		assert.equal(d.status, 200, d.text);
		const { uploadUrl, headers, method, imageId } = d.json.data;
		if (REMOTE) {
			const p = curl(method, uploadUrl, { body: data, headers });
			assert.equal(p.status, 200, p.text);
			const r = await api('POST', `/api/v1/images/${imageId}/complete`, { token: w2.tDoctor });
			assert.equal(r.status, 200, r.text);
			return r.json.data;
		}
		const r = await api(method, uploadUrl, { body: data, headers });
		assert.equal(r.status, 201, r.text);
		return r.json.data;
	};
	const e = await go(spliceApp1(makeImage(40, 30), exifApp1({ dateTimeOriginal: '2021:03:04 05:06:07' })));
	assert.equal(e.capturedAtSource, 'exif');
	assert.match(e.capturedAt, /^2021-03-04T05:06:07Z$/);
	assert.deepEqual(e.uploader, { id: w2.doctor, name: null, role: 'doctor' });
	const u = await go(jpg);
	assert.equal(u.capturedAtSource, 'upload');
	const g = await api('GET', `/api/v1/images/${e.id}`, { token: w2.tDoctor });
	assert.equal(g.json.data.capturedAtSource, 'exif');
	assert.equal(g.json.data.capturedAt, e.capturedAt);
});

test('width and height are as displayed: EXIF orientation 6 turns 64×48 into 48×64', async () => {
	const img = await uploadOk(w.tDoctor, w.case, rotated);
	assert.deepEqual([img.width, img.height], [48, 64], 'in the upload answer');
	const g = await api('GET', `/api/v1/images/${img.id}`, { token: w.tDoctor });
	assert.deepEqual([g.json.data.width, g.json.data.height], [48, 64], 'GET /:id');
	const flat = await uploadOk(w.tDoctor, w.case, spliceApp1(makeImage(64, 48), exifApp1({ orientation: 3 })));
	assert.deepEqual([flat.width, flat.height], [64, 48], 'orientation 3 (upside down) keeps them');
	const plain = await uploadOk(w.tDoctor, w.case, jpg);
	assert.deepEqual([plain.width, plain.height], [64, 48], 'no orientation');
});

test('local_timezone: a zone the system does not know stops polaimg at start', () => {
	const run = (tz) => spawnSync(POLAIMG_BIN, ['-c', POLAIMG_CONF, 'check-config'],
		{ encoding: 'utf8', env: { ...serviceEnv(), POLAIMG_LOCAL_TIMEZONE: tz } });
	for (const bad of ['Mars/Olympus_Mons', 'Bangkok', '../../../etc/passwd', '/etc/localtime', 'Asia/../Asia/Bangkok']) {
		const r = run(bad);
		assert.notEqual(r.status, 0, `${bad} accepted`);
		assert.match(r.stderr, /local_timezone/, r.stderr);
	}
	for (const good of ['Asia/Bangkok', 'UTC', 'America/New_York']) {
		const r = run(good);
		assert.equal(r.status, 0, `${good}: ${r.stderr}`);
	}
});

// ---- a PolaCare database ---------------------------------------------------------

const DB = 'pcnames_' + uuid().slice(0, 8);
const PGHOST = process.env.PGHOST;
const SCHEMA = path.join(path.dirname(new URL(import.meta.url).pathname), '..', 'data', 'polacare_schema.sql');
const TTL = 2;                     // auth_cache_ttl of the instance, seconds
const pc = {
	patient: uuid(), doctor: uuid(), admin: uuid(), other: uuid(), kase: uuid(), legacy: uuid(),
};
let proc, dir, sock;

function psql(query) {
	return execFileSync('psql', ['-X', '-q', '-At', '-v', 'ON_ERROR_STOP=1', '-d', DB, '-c', query],
		{ encoding: 'utf8' }).trim();
}

after(() => {
	if (proc) proc.kill('SIGTERM');
	try { execFileSync('psql', ['-X', '-q', '-d', 'postgres', '-c', `DROP DATABASE IF EXISTS ${DB} WITH (FORCE)`]); } catch { /* best effort */ }
});

// One FastCGI request through cgi-fcgi to the instance; {status, json, text}.
function fcgi(method, uri, { tok, body, contentType } = {}) {
	const env = {
		PATH: process.env.PATH, REQUEST_METHOD: method, REQUEST_URI: uri, REMOTE_ADDR: '127.0.0.1',
		CONTENT_LENGTH: String(body ? body.length : 0), SERVER_PROTOCOL: 'HTTP/1.1',
		HTTP_HOST: 'localhost', SERVER_PORT: '80',
	};
	if (contentType) env.CONTENT_TYPE = contentType;
	if (tok) env.HTTP_AUTHORIZATION = `Bearer ${tok}`;
	const r = spawnSync('cgi-fcgi', ['-bind', '-connect', sock], { env, input: body || Buffer.alloc(0), timeout: 30000 });
	assert.equal(r.status, 0, `cgi-fcgi failed: ${r.stderr}`);
	const out = r.stdout;
	const sep = out.indexOf('\r\n\r\n');
	const head = out.subarray(0, sep).toString('utf8').split('\r\n');
	const headers = Object.fromEntries(head.map((l) => [l.slice(0, l.indexOf(':')).toLowerCase(), l.slice(l.indexOf(':') + 1).trim()]));
	const text = out.subarray(sep + 4).toString('utf8');
	let json;
	try { json = JSON.parse(text); } catch { json = undefined; }
	return { status: Number((headers.status || '200').split(' ')[0]), json, text };
}

function pcUpload(tok, data, fields = {}) {
	const mp = multipart({ caseId: pc.kase, ...fields }, { filename: 'x.jpg', contentType: 'image/jpeg', data });
	const r = fcgi('POST', '/api/v1/images/upload', { tok, body: mp.body, contentType: mp.contentType });
	assert.equal(r.status, 201, r.text);
	return r.json.data;
}

const pcList = (tok) => fcgi('GET', `/api/v1/images/cases/${pc.kase}`, { tok });

test('PolaCare database: the platform\'s tables, migrated, served with local_timezone = Asia/Bangkok', async () => {
	execFileSync('psql', ['-X', '-q', '-v', 'ON_ERROR_STOP=1', '-d', 'postgres', '-c', `CREATE DATABASE ${DB}`]);
	execFileSync('psql', ['-X', '-q', '-v', 'ON_ERROR_STOP=1', '-d', DB, '-f', SCHEMA]);
	const user = (id, phone, name, hn, role) => `(${lit(id)}, ${lit(phone)}, 'x', ${lit(name)}, ${lit(hn)}, 'Male',
		'1970-01-01', 70, 170, 24.2, ${lit(role)}, now())`;
	psql(`INSERT INTO users (id, phone_number, password, name, hn, gender, date_of_birth, weight, height, bmi,
		role, updated_at) VALUES ${user(pc.patient, '0810000001', 'Somchai Jaidee', 'HN-000123', 'patient')},
		${user(pc.doctor, '0810000002', 'Dr Malee Srisuk', 'HN-D0002', 'doctor')},
		${user(pc.admin, '0810000003', 'Admin Niran', 'HN-A0003', 'admin')},
		${user(pc.other, '0810000004', 'Other Patient', 'HN-000999', 'patient')};
		INSERT INTO patient_cases (id, patient_id, hn, patient_name, diagnosis, updated_at, created_by)
		VALUES (${lit(pc.kase)}, ${lit(pc.patient)}, 'HN-000123', 'Somchai Jaidee (case)', 'cataract', now(), ${lit(pc.doctor)});
		INSERT INTO case_images (id, case_id, image_url, image_type, eye_side, "order", updated_at)
		VALUES (${lit(pc.legacy)}, ${lit(pc.kase)}, 'https://bucket.example/old.jpg', 'slit_lamp', 'left', 1, now())`);
	dir = fs.mkdtempSync(path.join(TEST_TMP, 'names-'));
	sock = path.join(dir, 'polaimg.sock');
	const store = path.join(dir, 'store');
	fs.mkdirSync(store);
	const drop = /^(listen|ingest_listen|workers|ingest_workers|log_file|database_url|storage_dir|auth_cache_ttl|local_timezone)\s*=/;
	const conf = path.join(dir, 'polaimg.conf');
	fs.writeFileSync(conf, [...fs.readFileSync(POLAIMG_CONF, 'utf8').split('\n').filter((l) => !drop.test(l)),
		`listen = unix:${sock}`, 'workers = 1', `storage_dir = ${store}`,
		`database_url = host=${PGHOST} dbname=${DB} user=postgres`,
		`auth_cache_ttl = ${TTL}`, 'local_timezone = Asia/Bangkok', ''].join('\n'));
	for (let i = 0; i < 2; i++) {
		const m = spawnSync(POLAIMG_BIN, ['-c', conf, 'migrate', '--dir', 'sql'], { env: serviceEnv(), encoding: 'utf8' });
		assert.equal(m.status, 0, m.stderr + m.stdout);
	}
	const logFd = fs.openSync(path.join(dir, 'polaimg.log'), 'a');
	proc = spawn(POLAIMG_BIN, ['-c', conf, 'serve'], { env: serviceEnv(), stdio: ['ignore', logFd, logFd] });
	for (let i = 0; i < 100 && !fs.existsSync(sock); i++) await sleep(100);
	assert.ok(fs.existsSync(sock), fs.readFileSync(path.join(dir, 'polaimg.log'), 'utf8'));
	assert.equal(fcgi('GET', '/api/v1/images/health').status, 200);
});

test('PolaCare database: EXIF DateTimeOriginal without an offset is Bangkok time; an offset wins', () => {
	const local = pcUpload(token(pc.doctor), bangkokExif());
	assert.equal(local.capturedAt, '2026-11-20T13:12:00Z', '20:12 in Bangkok (UTC+7)');
	assert.equal(local.capturedAtSource, 'exif');
	const same = pcUpload(token(pc.doctor), bangkokExif('+07:00'));
	assert.equal(same.capturedAt, '2026-11-20T13:12:00Z');
	const tokyo = pcUpload(token(pc.doctor), bangkokExif('+09:00'));
	assert.equal(tokyo.capturedAt, '2026-11-20T11:12:00Z', 'OffsetTimeOriginal +09:00 wins over local_timezone');
	const west = pcUpload(token(pc.doctor), bangkokExif('-03:30'));
	assert.equal(west.capturedAt, '2026-11-20T23:42:00Z');
});

test('PolaCare database: the case\'s patient name and HN, each image\'s uploader name and role', () => {
	const up = pcUpload(token(pc.patient), jpg, { eyeSide: 'right' });
	assert.deepEqual(up.uploader, { id: pc.patient, name: 'Somchai Jaidee', role: 'patient' }, 'in the upload answer');
	const r = pcList(token(pc.doctor));
	assert.equal(r.status, 200, r.text);
	const d = r.json.data;
	assert.deepEqual(d.case, { id: pc.kase, patientId: pc.patient, patientName: 'Somchai Jaidee (case)', hn: 'HN-000123' });
	assert.deepEqual(d.viewer, { id: pc.doctor, role: 'doctor', canUpload: true, canDelete: true });
	const legacy = d.images.find((i) => i.id === pc.legacy);
	assert.equal(legacy.uploader, null, 'a row of the old backend has no uploader');
	assert.equal(legacy.capturedAtSource, 'upload');
	const mine = d.images.filter((i) => i.id !== pc.legacy);
	assert.ok(mine.length >= 5, `${mine.length} images`);
	for (const i of mine.filter((x) => x.uploadedBy === pc.doctor))
		assert.deepEqual(i.uploader, { id: pc.doctor, name: 'Dr Malee Srisuk', role: 'doctor' });
	assert.deepEqual(d.images.find((i) => i.id === up.id).uploader,
		{ id: pc.patient, name: 'Somchai Jaidee', role: 'patient' });
	const g = fcgi('GET', `/api/v1/images/${mine[0].id}`, { tok: token(pc.patient) });
	assert.equal(g.status, 200, g.text);
	assert.deepEqual(g.json.data.uploader, { id: pc.doctor, name: 'Dr Malee Srisuk', role: 'doctor' }, 'GET /:id');
	// The viewer of patient and admin; another patient is refused.
	assert.deepEqual(pcList(token(pc.patient)).json.data.viewer,
		{ id: pc.patient, role: 'patient', canUpload: true, canDelete: false });
	assert.deepEqual(pcList(token(pc.admin)).json.data.viewer,
		{ id: pc.admin, role: 'admin', canUpload: true, canDelete: true });
	assert.equal(pcList(token(pc.other)).status, 403);
	assert.equal(fcgi('DELETE', `/api/v1/images/${up.id}`, { tok: token(pc.patient) }).status, 403);
});

test('PolaCare database: the case\'s own columns, else (empty) the patient\'s users row', async () => {
	psql(`UPDATE patient_cases SET patient_name = '', hn = '' WHERE id = ${lit(pc.kase)}`);
	const deadline = Date.now() + 10 * TTL * 1000;
	let c;
	for (;;) {
		c = pcList(token(pc.admin)).json.data.case;
		if (c.patientName !== 'Somchai Jaidee (case)' || Date.now() > deadline) break;
		await sleep(100);
	}
	assert.deepEqual(c, { id: pc.kase, patientId: pc.patient, patientName: 'Somchai Jaidee', hn: 'HN-000123' });
	psql(`UPDATE patient_cases SET patient_name = 'Somchai Jaidee (case)', hn = 'HN-000123' WHERE id = ${lit(pc.kase)}`);
});

test('PolaCare database: a renamed user and a renamed case show within auth_cache_ttl', async () => {
	const tok = token(pc.patient);
	const img = pcList(tok).json.data.images.find((i) => i.uploadedBy === pc.doctor);
	// Both answers are now in the worker's copies.
	assert.equal(fcgi('GET', `/api/v1/images/${img.id}`, { tok }).json.data.uploader.name, 'Dr Malee Srisuk');
	psql(`UPDATE users SET name = 'Dr Malee Srisuk-Wong', updated_at = now() WHERE id = ${lit(pc.doctor)};
		UPDATE patient_cases SET patient_name = 'Somchai J.', updated_at = now() WHERE id = ${lit(pc.kase)}`);
	const t0 = Date.now();
	// A generous ceiling: ten times auth_cache_ttl.
	const until = async (what, probe) => {
		while (!probe()) {
			assert.ok(Date.now() - t0 < 10 * TTL * 1000, `${what} not renamed after ${10 * TTL} s`);
			await sleep(100);
		}
		return Date.now() - t0;
	};
	const tGet = await until('GET /:id', () => fcgi('GET', `/api/v1/images/${img.id}`, { tok }).json.data.uploader.name === 'Dr Malee Srisuk-Wong');
	const tList = await until('the list', () => {
		const d = pcList(tok).json.data;
		return d.images.find((i) => i.id === img.id).uploader.name === 'Dr Malee Srisuk-Wong' && d.case.patientName === 'Somchai J.';
	});
	console.log(`renamed: GET /:id after ${tGet} ms, the list after ${tList} ms (auth_cache_ttl ${TTL} s)`);
});

test('PolaCare database: a direct upload on the platform\'s tables names its uploader', () => {
	const d = fcgi('POST', '/api/v1/images/upload-url', { tok: token(pc.admin), contentType: 'application/json',
		body: Buffer.from(JSON.stringify({ caseId: pc.kase, fileName: 'a.jpg', contentType: 'image/jpeg' })) });
	assert.equal(d.status, 200, d.text);
	assert.equal(psql(`SELECT status FROM case_images WHERE id = ${lit(d.json.data.imageId)}`), 'pending');
	assert.equal(psql(`SELECT uploaded_by FROM case_images WHERE id = ${lit(d.json.data.imageId)}`), pc.admin);
});
