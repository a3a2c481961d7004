// Helpers for the polaimg HTTP integration tests (node:test files in this
// directory). Only Node built-ins: fetch, node:crypto, node:child_process,
// node:fs, node:net. The environment comes from run.sh (see its header):
// BASE_URL, JWT_SECRET, URL_SIGNING_KEY, PG*, STORAGE_DIR, MAX_UPLOAD_BYTES,
// OFFLOAD, POLAIMG_BIN, POLAIMG_CONF, PG_CTL_STOP, PG_CTL_START, ITEST_*, ...
//
// The same tests run against every storage back end (ITEST_STORAGE = local,
// s3 or supabase). The storage helpers at the end of this file read the
// objects wherever the back end keeps them, so a test asks "which objects
// does this image have" the same way for all three; where a back end
// legitimately behaves differently (a direct upload goes to the store, a
// presigned URL is the store's), the test branches on STORAGE and says why.
//
// Every test seeds its own users and cases with random UUIDs (seedWorld),
// so tests do not depend on each other. Images are made with
// /usr/bin/convert (never `convert` on PATH) and cached in IMAGE_CACHE_DIR.

import assert from 'node:assert/strict';
import { createHash, createHmac, randomBytes, randomUUID } from 'node:crypto';
import { execFileSync, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';

function need(name) {
	const v = process.env[name];
	if (v === undefined || v === '')
		throw new Error(`${name} is not set: run the tests through tests/integration/run.sh`);
	return v;
}

export const BASE_URL = need('BASE_URL');
export const JWT_SECRET = need('JWT_SECRET');
export const URL_SIGNING_KEY = need('URL_SIGNING_KEY');
export const STORAGE_DIR = need('STORAGE_DIR');
export const MAX_UPLOAD_BYTES = Number(need('MAX_UPLOAD_BYTES'));
export const OFFLOAD = process.env.OFFLOAD || 'nginx';
export const POLAIMG_BIN = need('POLAIMG_BIN');
export const POLAIMG_CONF = need('POLAIMG_CONF');
export const TEST_TMP = process.env.TEST_TMP || '/tmp';
export const IMAGE_CACHE_DIR = process.env.IMAGE_CACHE_DIR || path.join(TEST_TMP, 'images');
export const CONVERT = '/usr/bin/convert';
export const IDENTIFY = '/usr/bin/identify';
export const BASE_PORT = Number(new URL(BASE_URL).port);

// The storage back end under test and where its objects are (see run.sh).
export const STORAGE = process.env.ITEST_STORAGE || 'local';
export const REMOTE = STORAGE !== 'local';
export const OBJECT_ROOT = process.env.ITEST_OBJECT_ROOT || STORAGE_DIR;
export const OBJECT_LAYOUT = process.env.ITEST_OBJECT_LAYOUT || 'plain';
export const STORE_URL = process.env.ITEST_STORE_URL || '';
export const FAULT_URL = process.env.ITEST_FAULT_URL || '';
if (!['local', 's3', 'supabase'].includes(STORAGE))
	throw new Error(`ITEST_STORAGE=${STORAGE}: must be local, s3 or supabase`);
if (REMOTE && (!STORE_URL || !FAULT_URL || !process.env.ITEST_OBJECT_ROOT))
	throw new Error('remote storage: ITEST_STORE_URL, ITEST_FAULT_URL and ITEST_OBJECT_ROOT must be set (run.sh)');

// The version the build announces (--version, health), from AC_INIT in
// configure.ac: the one place it is written.
export const PACKAGE_VERSION = (() => {
	const ac = fs.readFileSync(new URL('../../configure.ac', import.meta.url), 'utf8');
	const m = /^AC_INIT\(\[polaimg\],\s*\[([^\]]+)\]/m.exec(ac);
	if (!m) throw new Error('configure.ac: no AC_INIT([polaimg], [version])');
	return m[1];
})();

export const UUID_RE = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;
export const RFC3339_UTC_RE = /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z$/;
export const SHA256_RE = /^[0-9a-f]{64}$/;

export const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
export const sha256 = (buf) => createHash('sha256').update(buf).digest('hex');
export const uuid = () => randomUUID();

// ---- JWT ---------------------------------------------------------------------

const b64url = (buf) => Buffer.from(buf).toString('base64')
	.replace(/=+$/, '').replace(/\+/g, '-').replace(/\//g, '_');

// A signed JWT for userId. opts: exp (seconds since epoch; null = no exp;
// default now + 600), nbf, iat, alg ('HS256' default; 'HS384', 'HS512';
// 'none' = unsigned), role (adds a role claim), claimName ('userId' default,
// or 'sub'), secret (default JWT_SECRET), extra (more claims).
export function token(userId, opts = {}) {
	const now = Math.floor(Date.now() / 1000);
	const alg = opts.alg || 'HS256';
	const header = { alg, typ: 'JWT' };
	const payload = { [opts.claimName || 'userId']: userId, iat: opts.iat ?? now };
	const exp = opts.exp === undefined ? now + 600 : opts.exp;
	if (exp !== null) payload.exp = exp;
	if (opts.nbf !== undefined) payload.nbf = opts.nbf;
	if (opts.role !== undefined) payload.role = opts.role;
	Object.assign(payload, opts.extra || {});
	const signingInput = `${b64url(JSON.stringify(header))}.${b64url(JSON.stringify(payload))}`;
	if (alg === 'none') return `${signingInput}.`;
	const hash = { HS256: 'sha256', HS384: 'sha384', HS512: 'sha512' }[alg];
	if (!hash) throw new Error(`token(): unsupported alg ${alg}`);
	const sig = createHmac(hash, opts.secret ?? JWT_SECRET).update(signingInput).digest();
	return `${signingInput}.${b64url(sig)}`;
}

// An "alg: none" token for userId (unsigned, empty signature).
export const tokenNone = (userId, opts = {}) => token(userId, { ...opts, alg: 'none' });

// A token signed with another secret.
export const tokenBadSig = (userId, opts = {}) =>
	token(userId, { ...opts, secret: 'x'.repeat(48) });

// ---- HTTP ----------------------------------------------------------------------

// One request through nginx. body: Buffer/Uint8Array/string sent as is, or a
// plain object sent as JSON. Returns {status, headers, buf, text, json,
// requestId}; json is the parsed body when it parses, else undefined.
export async function api(method, urlPath, { token: tok, body, headers = {}, cookie } = {}) {
	const h = { ...headers };
	if (tok) h.Authorization = `Bearer ${tok}`;
	if (cookie) h.Cookie = cookie;
	let payload = body;
	if (body !== undefined && !(body instanceof Uint8Array) && typeof body !== 'string') {
		payload = JSON.stringify(body);
		if (!Object.keys(h).some((k) => k.toLowerCase() === 'content-type'))
			h['Content-Type'] = 'application/json';
	}
	const url = /^https?:/.test(urlPath) ? urlPath : BASE_URL + urlPath;
	const res = await fetch(url, { method, headers: h, body: payload, redirect: 'manual' });
	const buf = Buffer.from(await res.arrayBuffer());
	const text = buf.toString('utf8');
	let json;
	try { json = JSON.parse(text); } catch { json = undefined; }
	return {
		status: res.status, headers: res.headers, buf, text, json,
		requestId: res.headers.get('x-request-id'),
	};
}

// multipart/form-data body from fields ({name: string}) and an optional file
// {field, filename, contentType, data}. Returns {body, contentType, boundary}.
export function multipart(fields = {}, file = null, boundary = '----polaimgtest' + randomBytes(8).toString('hex')) {
	const parts = [];
	for (const [k, v] of Object.entries(fields)) {
		parts.push(Buffer.from(`--${boundary}\r\nContent-Disposition: form-data; name="${k}"\r\n\r\n`));
		parts.push(Buffer.from(String(v), 'utf8'));
		parts.push(Buffer.from('\r\n'));
	}
	if (file) {
		parts.push(Buffer.from(`--${boundary}\r\nContent-Disposition: form-data; name="${file.field || 'image'}"; ` +
			`filename="${file.filename || 'photo.jpg'}"\r\nContent-Type: ${file.contentType || 'image/jpeg'}\r\n\r\n`));
		parts.push(Buffer.from(file.data));
		parts.push(Buffer.from('\r\n'));
	}
	parts.push(Buffer.from(`--${boundary}--\r\n`));
	return { body: Buffer.concat(parts), contentType: `multipart/form-data; boundary=${boundary}`, boundary };
}

// POST /api/v1/images/upload with image bytes `data` for caseId. opts:
// fields (extra text fields), filename, contentType (declared part type),
// noCaseId.
export async function upload(tok, caseId, data, opts = {}) {
	const fields = opts.noCaseId ? { ...(opts.fields || {}) } : { caseId, ...(opts.fields || {}) };
	const mp = multipart(fields, data === null ? null : {
		filename: opts.filename || 'photo.jpg', contentType: opts.contentType || 'image/jpeg', data,
	});
	return api('POST', '/api/v1/images/upload', {
		token: tok, body: mp.body, headers: { 'Content-Type': mp.contentType, ...(opts.headers || {}) },
	});
}

// Upload that must succeed; returns the image resource.
export async function uploadOk(tok, caseId, data, opts = {}) {
	const r = await upload(tok, caseId, data, opts);
	assert.equal(r.status, 201, `upload failed: ${r.status} ${r.text}`);
	return r.json.data;
}

// A raw HTTP/1.1 exchange on a fresh TCP connection to nginx. `request` is
// the complete request (string or Buffer); "Connection: close" is the
// caller's business. Resolves {status, headers (lower-case map), body
// (Buffer), raw} or {error} when the connection fails without a response.
// The body of a Transfer-Encoding: chunked message (what arrived of it).
function dechunk(buf) {
	const out = [];
	for (let i = 0; ;) {
		const eol = buf.indexOf('\r\n', i);
		const n = eol < 0 ? 0 : parseInt(buf.subarray(i, eol).toString('latin1'), 16);
		if (!(n > 0)) return Buffer.concat(out);
		out.push(buf.subarray(eol + 2, eol + 2 + n));
		i = eol + 2 + n + 2;
	}
}

export function rawRequest(request, { timeoutMs = 10000 } = {}) {
	return new Promise((resolve) => {
		const chunks = [];
		const sock = net.connect(BASE_PORT, '127.0.0.1');
		const timer = setTimeout(() => { sock.destroy(); finish('timeout'); }, timeoutMs);
		let done = false;
		function finish(err) {
			if (done) return;
			done = true;
			clearTimeout(timer);
			const raw = Buffer.concat(chunks);
			const sep = raw.indexOf('\r\n\r\n');
			if (sep < 0) return resolve({ error: err || 'no response', raw });
			const head = raw.subarray(0, sep).toString('latin1').split('\r\n');
			const m = /^HTTP\/1\.[01] (\d{3})/.exec(head[0]);
			const headers = {};
			for (const line of head.slice(1)) {
				const i = line.indexOf(':');
				if (i > 0) headers[line.slice(0, i).trim().toLowerCase()] = line.slice(i + 1).trim();
			}
			// HTTP/1.1 allows a chunked body even with Connection: close
			// (Apache sends one); body is the decoded payload.
			let body = raw.subarray(sep + 4);
			if (/chunked/i.test(headers['transfer-encoding'] || '')) body = dechunk(body);
			resolve({ status: m ? Number(m[1]) : 0, headers, body, raw });
		}
		sock.on('data', (d) => chunks.push(d));
		// Do not half-close our side before the answer: nginx takes an
		// early FIN as the client going away.
		sock.on('end', () => { sock.end(); finish(); });
		sock.on('close', () => finish());
		sock.on('error', (e) => finish(e.code || String(e)));
		sock.on('connect', () => sock.write(request));
	});
}

// ---- error bodies ------------------------------------------------------------------

// Asserts an error response: status, JSON body {"error","code","requestId"}
// (+ "details" for VALIDATION_FAILED), requestId equal to X-Request-Id.
// field: for VALIDATION_FAILED, a details[].field that must be present.
export function assertError(r, status, code, field) {
	assert.equal(r.status, status, `expected ${status} ${code}, got ${r.status}: ${r.text.slice(0, 300)}`);
	assert.ok(r.json && typeof r.json === 'object', `error body is not JSON: ${r.text.slice(0, 200)}`);
	assert.match(r.headers.get('content-type') || '', /^application\/json/);
	assert.equal(r.json.code, code);
	assert.equal(typeof r.json.error, 'string');
	assert.ok(r.json.error.length > 0);
	assert.equal(typeof r.json.requestId, 'string');
	assert.ok(r.json.requestId.length > 0);
	assert.equal(r.json.requestId, r.requestId, 'body requestId equals the X-Request-Id header');
	const keys = Object.keys(r.json).sort();
	if (code === 'VALIDATION_FAILED') {
		assert.equal(r.json.error, 'Validation failed');
		assert.deepEqual(keys, ['code', 'details', 'error', 'requestId']);
		assert.ok(Array.isArray(r.json.details) && r.json.details.length > 0, 'details is a non-empty array');
		for (const d of r.json.details) {
			assert.equal(typeof d.field, 'string');
			assert.equal(typeof d.message, 'string');
		}
		if (field) {
			const fields = r.json.details.map((d) => d.field);
			assert.ok(fields.includes(field), `details name field ${field}: ${JSON.stringify(r.json.details)}`);
		}
	} else {
		assert.deepEqual(keys, ['code', 'error', 'requestId']);
	}
	if (status >= 500) assertNoLeak(r);
}

// The fixed 401 bodies of docs/api.md.
export function assert401(r, code) {
	const msg = { AUTH_REQUIRED: 'Authentication required', TOKEN_EXPIRED: 'Token expired', INVALID_TOKEN: 'Invalid token' }[code];
	assertError(r, 401, code);
	assert.equal(r.json.error, msg);
}

// A 5xx body must not reveal internals: SQL, paths, secrets, library names.
export function assertNoLeak(r) {
	const rid = r.json && typeof r.json.requestId === 'string' ? r.json.requestId : '';
	const t = rid ? r.text.split(rid).join('') : r.text;
	const needles = [STORAGE_DIR, TEST_TMP, '/tmp/', '/var/', JWT_SECRET, URL_SIGNING_KEY, 'SELECT', 'INSERT',
		'UPDATE ', 'case_images', 'image_events', 'postgres', 'libpq', 'ERROR:', 'errno', '.c:',
		'ENOTDIR', 'ENOENT', 'Not a directory', 'No such file', 'dbname', 'host=',
		// remote storage: its address, credentials and answers stay inside
		'127.0.0.1:', 'X-Amz-', '<Error>', '<?xml', 'statusCode', 'curl', 'supabase', 's3rver',
		...[process.env.S3_SECRET_ACCESS_KEY, process.env.S3_ACCESS_KEY_ID, process.env.SUPA_SERVICE_KEY,
			process.env.SUPA_JWT_SECRET].filter(Boolean)];
	for (const n of needles)
		assert.ok(!t.includes(n), `5xx body reveals ${JSON.stringify(n)}: ${t.slice(0, 300)}`);
}

// ---- database -------------------------------------------------------------------

// SQL literal (for uuids, enums and short test strings).
export function lit(v) {
	if (v === null || v === undefined) return 'NULL';
	if (typeof v === 'boolean' || typeof v === 'number') return String(v);
	return `'${String(v).replace(/'/g, "''")}'`;
}

// Runs SQL with psql -At; returns the output lines (fields split on \x1f).
export function sql(query) {
	const out = execFileSync('psql', ['-X', '-q', '-At', '-F', '\x1f', '-v', 'ON_ERROR_STOP=1', '-c', query], {
		encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'],
	});
	return out.split('\n').filter((l) => l.length > 0).map((l) => l.split('\x1f'));
}

// Rows of a SELECT as objects (row_to_json).
export function sqlRows(select) {
	return sql(`SELECT row_to_json(t) FROM (${select}) t`).map((r) => JSON.parse(r[0]));
}

export const sqlValue = (query) => {
	const rows = sql(query);
	return rows.length ? rows[0][0] : undefined;
};

export function createUser(role, { active = true } = {}) {
	const id = uuid();
	sql(`INSERT INTO users (id, role, is_active) VALUES (${lit(id)}, ${lit(role)}, ${active})`);
	return id;
}

export function createCase(patientId) {
	const id = uuid();
	sql(`INSERT INTO patient_cases (id, patient_id) VALUES (${lit(id)}, ${lit(patientId)})`);
	return id;
}

// A fresh cast: two patients with one case each, a doctor, an admin, an
// inactive doctor, and tokens for all of them.
export function seedWorld() {
	const w = {
		patient: uuid(), otherPatient: uuid(), doctor: uuid(), admin: uuid(), inactive: uuid(),
		case: uuid(), otherCase: uuid(),
	};
	sql(`INSERT INTO users (id, role, is_active) VALUES (${lit(w.patient)}, 'patient', true),
		(${lit(w.otherPatient)}, 'patient', true), (${lit(w.doctor)}, 'doctor', true),
		(${lit(w.admin)}, 'admin', true), (${lit(w.inactive)}, 'doctor', false);
		INSERT INTO patient_cases (id, patient_id) VALUES (${lit(w.case)}, ${lit(w.patient)}),
		(${lit(w.otherCase)}, ${lit(w.otherPatient)})`);
	w.tPatient = token(w.patient);
	w.tOther = token(w.otherPatient);
	w.tDoctor = token(w.doctor);
	w.tAdmin = token(w.admin);
	w.tInactive = token(w.inactive);
	return w;
}

export const imageRowCount = (caseId) =>
	Number(sqlValue(`SELECT count(*) FROM case_images WHERE case_id = ${lit(caseId)}`));

export const imageRow = (imageId) =>
	sqlRows(`SELECT * FROM case_images WHERE id = ${lit(imageId)}`)[0];

// Audit rows with this request id, waiting up to waitMs for them to appear.
export async function auditByRequest(requestId, waitMs = 1500) {
	const deadline = Date.now() + waitMs;
	for (;;) {
		const rows = sqlRows(`SELECT id, created_at, user_id, role, action, image_id, case_id, variant, outcome,
			remote_addr, request_id FROM image_events WHERE request_id = ${lit(requestId)} ORDER BY id`);
		if (rows.length || Date.now() > deadline) return rows;
		await sleep(100);
	}
}

export function auditRows(where) {
	return sqlRows(`SELECT id, created_at, user_id, role, action, image_id, case_id, variant, outcome,
		remote_addr, request_id FROM image_events WHERE ${where} ORDER BY id`);
}

// ---- polaimg CLI and PostgreSQL control -----------------------------------------------

// Runs `polaimg -c conf <args>`; returns {status, stdout, stderr}.
// polaimg reads POLAIMG_<KEY>, JWT_SECRET, DATABASE_URL, STORAGE_* and
// SUPABASE_* from the environment as configuration overrides; the test
// variables of those names are not passed on.
export function serviceEnv() {
	return Object.fromEntries(Object.entries(process.env).filter(([k]) =>
		!/^(POLAIMG_|STORAGE_|SUPABASE_)/.test(k) && !['JWT_SECRET', 'DATABASE_URL'].includes(k)));
}

export function polaimgCli(...args) {
	const r = spawnSync(POLAIMG_BIN, ['-c', POLAIMG_CONF, ...args], { encoding: 'utf8', timeout: 60000, env: serviceEnv() });
	return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

export function pgStop() {
	execFileSync('sh', ['-c', need('PG_CTL_STOP')], { stdio: 'ignore' });
}
export function pgStart() {
	execFileSync('sh', ['-c', need('PG_CTL_START')], { stdio: 'ignore' });
}

// ---- images ------------------------------------------------------------------------

fs.mkdirSync(IMAGE_CACHE_DIR, { recursive: true });

// Runs /usr/bin/convert with args, output file last; cached by the args.
// Returns the bytes of the result.
export function convertCached(args, ext) {
	const key = createHash('sha256').update(JSON.stringify(args)).digest('hex').slice(0, 16);
	const out = path.join(IMAGE_CACHE_DIR, `${key}.${ext}`);
	if (!fs.existsSync(out)) {
		const tmp = `${out}.part.${process.pid}.${ext}`;
		execFileSync(CONVERT, [...args, `${ext}:${tmp}`], { stdio: ['ignore', 'ignore', 'pipe'] });
		fs.renameSync(tmp, out);
	}
	return fs.readFileSync(out);
}

// A w×h test image: a gradient with a red square marker in the top-left
// corner (a quarter of the shorter side). fmt: jpg, png, tiff, webp, gif.
export function makeImage(w = 64, h = 48, fmt = 'jpg', extra = []) {
	const m = Math.max(2, Math.floor(Math.min(w, h) / 4));
	const args = ['-size', `${w}x${h}`, 'gradient:#2040ff-#20c040', '-depth', '8', '-fill', '#ff0000',
		'-draw', `rectangle 0,0 ${m - 1},${m - 1}`, ...extra];
	if (fmt === 'jpg') args.push('-quality', '92');
	return convertCached(args, { jpg: 'jpg', png: 'png', tiff: 'tiff', webp: 'webp', gif: 'gif' }[fmt]);
}

// Writes bytes to a temp file (for identify/convert); returns its path.
let tmpSeq = 0;
export function tmpFile(buf, ext = 'bin') {
	const p = path.join(IMAGE_CACHE_DIR, `t${process.pid}-${++tmpSeq}.${ext}`);
	fs.writeFileSync(p, buf);
	return p;
}

// identify -format on the bytes; returns stdout.
export function identify(buf, format, ext = 'img') {
	const p = tmpFile(buf, ext);
	try {
		return execFileSync(IDENTIFY, ['-format', format, p], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
	} finally {
		fs.rmSync(p, { force: true });
	}
}

export function identifyVerbose(buf) {
	const p = tmpFile(buf);
	try {
		return execFileSync(IDENTIFY, ['-verbose', p], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'], maxBuffer: 64 << 20 });
	} finally {
		fs.rmSync(p, { force: true });
	}
}

export function dims(buf) {
	const [w, h] = identify(buf, '%w %h').trim().split(/\s+/).map(Number);
	return { width: w, height: h };
}

// [r, g, b] 0..255 of the pixel at (x, y).
export function pixel(buf, x, y) {
	const p = tmpFile(buf);
	try {
		const s = execFileSync(CONVERT, [p, '-format', `%[pixel:p{${x},${y}}]`, 'info:'], { encoding: 'utf8' }).trim();
		const m = /\(([^)]*)\)/.exec(s);
		if (!m) {
			const named = { red: [255, 0, 0], blue: [0, 0, 255], lime: [0, 255, 0], white: [255, 255, 255], black: [0, 0, 0] }[s];
			if (named) return named;
			throw new Error(`cannot parse pixel ${s}`);
		}
		return m[1].split(',').slice(0, 3).map((v) => v.trim().endsWith('%')
			? Math.round(parseFloat(v) * 2.55) : Math.round(parseFloat(v)));
	} finally {
		fs.rmSync(p, { force: true });
	}
}

export const isRed = ([r, g, b]) => r > 180 && g < 90 && b < 90;

// CRC-32 (IEEE) as used by PNG chunks.
const CRC_TABLE = (() => {
	const t = new Uint32Array(256);
	for (let n = 0; n < 256; n++) {
		let c = n;
		for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
		t[n] = c >>> 0;
	}
	return t;
})();
export function crc32(buf) {
	let c = 0xffffffff;
	for (const b of buf) c = CRC_TABLE[(c ^ b) & 0xff] ^ (c >>> 8);
	return (c ^ 0xffffffff) >>> 0;
}

// A small PNG whose IHDR claims width×height (CRC recomputed), so the
// header says "huge" while the file is a few KB.
export function pngWithHeaderDims(width, height) {
	const png = Buffer.from(makeImage(64, 64, 'png'));
	assert.equal(png.toString('latin1', 12, 16), 'IHDR');
	png.writeUInt32BE(width, 16);
	png.writeUInt32BE(height, 20);
	png.writeUInt32BE(crc32(png.subarray(12, 29)), 29);
	return png;
}

// ---- EXIF (hand-made APP1) ---------------------------------------------------------

// One IFD (big-endian). entries: [{tag, type, count, data(Buffer)}] sorted by
// tag; values over 4 bytes go to a data area placed right after the IFD.
// Returns {buf, size} for an IFD starting at TIFF offset `at`; `next` = the
// next-IFD offset.
function ifd(entries, at, next = 0) {
	const n = entries.length;
	const head = Buffer.alloc(2 + n * 12 + 4);
	head.writeUInt16BE(n, 0);
	let dataOff = at + head.length;
	const datas = [];
	entries.forEach((e, i) => {
		const o = 2 + i * 12;
		head.writeUInt16BE(e.tag, o);
		head.writeUInt16BE(e.type, o + 2);
		head.writeUInt32BE(e.count, o + 4);
		if (e.data.length <= 4) {
			e.data.copy(head, o + 8);
		} else {
			head.writeUInt32BE(dataOff, o + 8);
			let d = e.data;
			if (d.length % 2) d = Buffer.concat([d, Buffer.alloc(1)]);
			datas.push(d);
			dataOff += d.length;
		}
	});
	head.writeUInt32BE(next, 2 + n * 12);
	const buf = Buffer.concat([head, ...datas]);
	return { buf, size: buf.length };
}

const SHORT = 3, LONG = 4, ASCII = 2, RATIONAL = 5, BYTE = 1;
const short = (v) => { const b = Buffer.alloc(2); b.writeUInt16BE(v); return b; };
const long = (v) => { const b = Buffer.alloc(4); b.writeUInt32BE(v); return b; };
const ascii = (s) => Buffer.from(s + '\0', 'latin1');
const rationals = (pairs) => Buffer.concat(pairs.map(([a, b]) => Buffer.concat([long(a), long(b)])));

// An EXIF APP1 segment (marker included). opts: orientation (1..8),
// dateTimeOriginal ('YYYY:MM:DD HH:MM:SS'), offsetTimeOriginal ('+HH:MM',
// with dateTimeOriginal), gps (true: a fixed position).
export function exifApp1({ orientation, dateTimeOriginal, offsetTimeOriginal, gps } = {}) {
	// Layout: TIFF header (8) | IFD0 | Exif IFD | GPS IFD. IFD sizes do not
	// depend on the offsets, so lay out twice: once to measure, once for real.
	const build = (exifAt, gpsAt) => {
		const e0 = [];
		if (orientation) e0.push({ tag: 0x0112, type: SHORT, count: 1, data: short(orientation) });
		if (dateTimeOriginal) e0.push({ tag: 0x8769, type: LONG, count: 1, data: long(exifAt) });
		if (gps) e0.push({ tag: 0x8825, type: LONG, count: 1, data: long(gpsAt) });
		e0.push({ tag: 0x0131, type: ASCII, count: 12, data: ascii('polaimgtest') });
		e0.sort((a, b) => a.tag - b.tag);
		const i0 = ifd(e0, 8);
		const exifEntries = dateTimeOriginal ? [
			{ tag: 0x9003, type: ASCII, count: 20, data: ascii(dateTimeOriginal) },
			...(offsetTimeOriginal ? [{ tag: 0x9011, type: ASCII, count: 7, data: ascii(offsetTimeOriginal) }] : []),
		] : [];
		const ie = exifEntries.length ? ifd(exifEntries, 8 + i0.size) : { buf: Buffer.alloc(0), size: 0 };
		const gpsEntries = gps ? [
			{ tag: 0x0000, type: BYTE, count: 4, data: Buffer.from([2, 3, 0, 0]) },
			{ tag: 0x0001, type: ASCII, count: 2, data: ascii('N') },
			{ tag: 0x0002, type: RATIONAL, count: 3, data: rationals([[48, 1], [51, 1], [2964, 100]]) },
			{ tag: 0x0003, type: ASCII, count: 2, data: ascii('E') },
			{ tag: 0x0004, type: RATIONAL, count: 3, data: rationals([[2, 1], [17, 1], [4020, 100]]) },
		] : [];
		const ig = gpsEntries.length ? ifd(gpsEntries, 8 + i0.size + ie.size) : { buf: Buffer.alloc(0), size: 0 };
		return { i0, ie, ig };
	};
	const m = build(0, 0);
	const exifAt = 8 + m.i0.size;
	const gpsAt = exifAt + m.ie.size;
	const { i0, ie, ig } = build(exifAt, gpsAt);
	const tiff = Buffer.concat([Buffer.from('MM\0\x2a', 'latin1'), long(8), i0.buf, ie.buf, ig.buf]);
	const payload = Buffer.concat([Buffer.from('Exif\0\0', 'latin1'), tiff]);
	const seg = Buffer.alloc(4);
	seg.writeUInt16BE(0xffe1, 0);
	seg.writeUInt16BE(payload.length + 2, 2);
	return Buffer.concat([seg, payload]);
}

// Inserts an APP1 segment into a JPEG after SOI and a leading APP0 (JFIF).
export function spliceApp1(jpeg, app1) {
	assert.equal(jpeg.readUInt16BE(0), 0xffd8, 'SOI');
	let at = 2;
	if (jpeg.readUInt16BE(2) === 0xffe0) at = 4 + jpeg.readUInt16BE(4);
	return Buffer.concat([jpeg.subarray(0, at), app1, jpeg.subarray(at)]);
}

// ---- storage --------------------------------------------------------------------
//
// Where the objects are, by back end (run.sh exports the root):
//   local     <storage_dir>/<key>
//   s3        s3rver's files: <bucket dir>/<key>._S3rver_object (with
//             ._S3rver_metadata.json and .md5 files beside it)
//   supabase  the stand-in's bucket directory: <bucket dir>/<key>
// Every back end uses <storage_dir>/.tmp as scratch space for temp files.

const S3RVER_OBJECT = '._S3rver_object';

// Files under dir as paths relative to dir (symlinks count as files).
function walkFiles(dir) {
	const out = [];
	const walk = (d, rel) => {
		let ents;
		try { ents = fs.readdirSync(d, { withFileTypes: true }); } catch (e) {
			if (e.code === 'ENOENT' || e.code === 'ENOTDIR') return;
			throw e;
		}
		for (const e of ents) {
			const r = rel ? `${rel}/${e.name}` : e.name;
			if (e.isDirectory()) walk(path.join(d, e.name), r);
			else out.push(r);
		}
	};
	walk(dir, '');
	return out;
}

// The object keys the back end holds, sorted.
export function objectKeys() {
	const files = walkFiles(OBJECT_ROOT);
	if (OBJECT_LAYOUT === 's3rver')
		return files.filter((f) => f.endsWith(S3RVER_OBJECT)).map((f) => f.slice(0, -S3RVER_OBJECT.length)).sort();
	return files.sort();
}

// Everything storage holds: for local storage all files under storage_dir
// (objects and .tmp entries); for a remote back end the object keys plus
// whatever is under storage_dir (its scratch space). Sorted.
export function listFiles() {
	if (!REMOTE) return walkFiles(STORAGE_DIR).sort();
	return [...new Set([...objectKeys(), ...walkFiles(STORAGE_DIR)])].sort();
}

// Entries in <storage_dir>/.tmp (must be [] between requests).
export function tmpEntries() {
	try { return fs.readdirSync(path.join(STORAGE_DIR, '.tmp')); } catch (e) {
		if (e.code === 'ENOENT') return [];
		throw e;
	}
}

// The file holding object <key>.
function objectFile(key) {
	return path.join(OBJECT_ROOT, OBJECT_LAYOUT === 's3rver' ? key + S3RVER_OBJECT : key);
}

// The object names of one image (original, display.jpg, ...), sorted; []
// when none.
export function objectsOf(caseId, imageId) {
	const prefix = `cases/${caseId}/${imageId}/`;
	return objectKeys().filter((k) => k.startsWith(prefix)).map((k) => k.slice(prefix.length)).sort();
}

// The bytes of object `name` of an image, read where the back end keeps it
// (not through polaimg).
export function readObject(caseId, imageId, name) {
	return fs.readFileSync(objectFile(`cases/${caseId}/${imageId}/${name}`));
}

// ---- remote storage: the store's own URLs and its fault switch -------------------

// The fault switch of the S3 front and the Supabase stand-in: "down" drops
// every connection without an answer (both servers), "ok" heals. Local
// storage has no such switch (outage.test.mjs breaks its .tmp instead).
export async function storeFault(mode) {
	if (!REMOTE) throw new Error('storeFault: local storage has no store to take down');
	const m = mode === 'ok' ? (STORAGE === 's3' ? 'none' : 'ok') : mode;
	const r = await fetch(FAULT_URL, { method: 'POST', headers: { 'Content-Type': 'application/json' },
		body: JSON.stringify({ mode: m }) });
	assert.equal(r.status, 200, `fault switch ${m}: ${r.status} ${await r.text()}`);
}

// A request straight to the store (a presigned URL), as a plain client:
// curl, no cookies, no bearer token, nothing of polaimg's. Same answer
// shape as api(); headers.get() is case-insensitive. code is the store's
// error code, if any: S3's <Code> or Supabase's JSON "code".
export function curl(method, url, { body, headers = {} } = {}) {
	const dir = fs.mkdtempSync(path.join(TEST_TMP, 'curl-'));
	try {
		const args = ['-s', '-S', '-g', '-X', method, '-D', path.join(dir, 'h'), '-o', path.join(dir, 'b'),
			'--max-time', '30'];
		if (method === 'HEAD') args.splice(args.indexOf('-X'), 2, '-I');
		for (const [k, v] of Object.entries(headers)) args.push('-H', `${k}: ${v}`);
		if (body !== undefined) {
			fs.writeFileSync(path.join(dir, 'in'), body);
			args.push('--data-binary', `@${path.join(dir, 'in')}`);
		}
		args.push(url);
		const r = spawnSync('curl', args, { encoding: 'utf8' });
		if (r.status !== 0) return { status: 0, error: r.stderr.trim(), headers: new Headers(), buf: Buffer.alloc(0), text: '' };
		const blocks = fs.readFileSync(path.join(dir, 'h'), 'latin1').split(/\r\n\r\n/).filter((b) => b.trim());
		const head = blocks[blocks.length - 1].split('\r\n');
		const headersOut = new Headers();
		for (const line of head.slice(1)) {
			const i = line.indexOf(':');
			if (i > 0) headersOut.append(line.slice(0, i).trim(), line.slice(i + 1).trim());
		}
		const buf = fs.existsSync(path.join(dir, 'b')) ? fs.readFileSync(path.join(dir, 'b')) : Buffer.alloc(0);
		const text = buf.toString('utf8');
		let json;
		try { json = JSON.parse(text); } catch { json = undefined; }
		const xmlCode = /<Code>([^<]*)<\/Code>/.exec(text);
		return {
			status: Number(/^HTTP\/[\d.]+ (\d{3})/.exec(head[0])?.[1] || 0), headers: headersOut, buf, text, json,
			requestId: headersOut.get('x-request-id'), code: xmlCode ? xmlCode[1] : json?.code,
		};
	} finally {
		fs.rmSync(dir, { recursive: true, force: true });
	}
}

// Asserts that the store refused a request made with one of its URLs, the
// way that store refuses: S3 with HTTP 403 and an XML <Error> whose code is
// one of s3Codes; Supabase with HTTP 400 (its error handler answers every
// client error so) and a JSON body naming the real status (400 or 403) and
// one of supaCodes.
export function assertStoreRefused(r, { s3Codes, supaCodes }, what = '') {
	if (STORAGE === 's3') {
		assert.equal(r.status, 403, `${what}: S3 answers 403, got ${r.status} ${r.text.slice(0, 300)}`);
		assert.ok(s3Codes.includes(r.code), `${what}: S3 error code ${r.code} not in ${s3Codes}`);
	} else {
		assert.equal(r.status, 400, `${what}: Supabase answers 400, got ${r.status} ${r.text.slice(0, 300)}`);
		assert.ok(['400', '403'].includes(r.json?.statusCode), `${what}: statusCode ${r.json?.statusCode}`);
		assert.ok(supaCodes.includes(r.code), `${what}: Supabase error code ${r.code} not in ${supaCodes}`);
	}
}

// The claims of a Supabase signed-URL token (not verified: the stand-in does
// that; tests look at scope, url and lifetime).
export function jwtClaims(tok) {
	return JSON.parse(Buffer.from(tok.split('.')[1], 'base64url').toString('utf8'));
}

// The variant a download URL serves: local /file URLs name it; a store's
// URL names the object (original, display.jpg, thumb.png, ...).
export function downloadUrlVariant(url) {
	const u = new URL(url);
	if (!REMOTE) return u.searchParams.get('variant');
	const name = decodeURIComponent(u.pathname.split('/').pop());
	return { original: 'original', 'display.jpg': 'display', 'display.png': 'display',
		'thumb.jpg': 'thumbnail', 'thumb.png': 'thumbnail' }[name] ?? `unknown object ${name}`;
}

// Asserts a URL polaimg handed out for the store's object `key` (method
// GET or PUT) and returns its lifetime in seconds as the URL states it.
// S3: a SigV4 presigned URL on the endpoint, path style
// /<bucket>/<key>, the Content-Type signed for PUT. Supabase: the signed
// URL route of the stand-in with a token scoped for the method's purpose.
export function assertStoreUrl(url, key, method) {
	const u = new URL(url);
	assert.equal(`${u.protocol}//${u.host}`, STORE_URL, 'the URL points at the store');
	if (STORAGE === 's3') {
		assert.equal(decodeURIComponent(u.pathname), `/${process.env.S3_BUCKET}/${key}`);
		assert.equal(u.searchParams.get('X-Amz-Algorithm'), 'AWS4-HMAC-SHA256');
		assert.match(u.searchParams.get('X-Amz-Signature') || '', /^[0-9a-f]{64}$/);
		assert.ok((u.searchParams.get('X-Amz-Credential') || '').startsWith(`${process.env.S3_ACCESS_KEY_ID}/`));
		const signed = (u.searchParams.get('X-Amz-SignedHeaders') || '').split(';');
		assert.ok(signed.includes('host'));
		assert.equal(signed.includes('content-type'), method === 'PUT', `content-type signed for ${method}: ${signed}`);
		return Number(u.searchParams.get('X-Amz-Expires'));
	}
	const bucket = process.env.SUPA_BUCKET;
	const route = method === 'PUT' ? '/storage/v1/object/upload/sign/' : '/storage/v1/object/sign/';
	assert.equal(decodeURIComponent(u.pathname), `${route}${bucket}/${key}`);
	const c = jwtClaims(u.searchParams.get('token'));
	assert.equal(c.url, `${bucket}/${key}`);
	assert.equal(c.scope, method === 'PUT' ? 'upload' : 'download');
	if (method === 'PUT') assert.equal(c.upsert, false, 'a signed upload URL never overwrites');
	return c.exp - c.iat;
}

// ---- image resource ---------------------------------------------------------------

export const IMAGE_KEYS = ['id', 'caseId', 'imageUrl', 'thumbnailUrl', 'storageType', 'imageType', 'eyeSide',
	'capturedAt', 'description', 'order', 'fileSize', 'mimeType', 'width', 'height', 'sha256', 'status',
	'uploadedBy', 'uploader', 'capturedAtSource', 'createdAt', 'updatedAt', 'frames', 'dicom'].sort();

// URLs we hand out may be relative or prefixed with public_base_url.
export function assertAppUrl(actual, relPath) {
	assert.ok(actual === relPath || actual === BASE_URL + relPath,
		`expected ${relPath} (optionally prefixed by ${BASE_URL}), got ${actual}`);
}

// Checks every field of an image resource; exp overrides the expectations.
export function assertImage(img, exp = {}) {
	assert.deepEqual(Object.keys(img).sort(), IMAGE_KEYS, 'image resource has exactly the docs/api.md fields');
	assert.match(img.id, UUID_RE);
	assert.match(img.caseId, UUID_RE);
	assertAppUrl(img.imageUrl, `/api/v1/images/${img.id}/proxy`);
	assertAppUrl(img.thumbnailUrl, `/api/v1/images/${img.id}/proxy?thumbnail=true`);
	assert.equal(img.storageType, STORAGE, 'storageType names the configured back end');
	assert.ok(['slit_lamp', 'fundus', 'oct', 'other'].includes(img.imageType));
	assert.ok(['left', 'right', 'both', 'unknown'].includes(img.eyeSide));
	assert.match(img.capturedAt, RFC3339_UTC_RE);
	assert.ok(img.description === null || typeof img.description === 'string');
	assert.ok(Number.isInteger(img.order) && img.order >= 1);
	assert.ok(['pending', 'ready'].includes(img.status));
	if (img.status === 'ready') {
		assert.ok(Number.isInteger(img.fileSize) && img.fileSize > 0);
		assert.equal(typeof img.mimeType, 'string');
		assert.ok(Number.isInteger(img.width) && img.width > 0);
		assert.ok(Number.isInteger(img.height) && img.height > 0);
		assert.match(img.sha256, SHA256_RE);
	}
	assert.match(img.uploadedBy, UUID_RE);
	assert.equal(img.uploader.id, img.uploadedBy, 'uploader.id is uploadedBy');
	assert.deepEqual(Object.keys(img.uploader).sort(), ['id', 'name', 'role']);
	assert.ok(img.uploader.name === null || typeof img.uploader.name === 'string');
	assert.ok([null, 'patient', 'doctor', 'admin'].includes(img.uploader.role));
	assert.ok(['client', 'exif', 'dicom', 'upload'].includes(img.capturedAtSource));
	assert.match(img.createdAt, RFC3339_UTC_RE);
	assert.match(img.updatedAt, RFC3339_UTC_RE);
	for (const [k, v] of Object.entries(exp)) assert.deepEqual(img[k], v, `image.${k}`);
}

// ---- polaimg log -------------------------------------------------------------------

export const POLAIMG_LOG = process.env.POLAIMG_LOG || '';

export function logSize() {
	try { return fs.statSync(POLAIMG_LOG).size; } catch { return 0; }
}

// The master's lines about workers that crashed (killed by a signal, exited
// non-zero) written since byte offset `from` of the polaimg log.
export function workerCrashes(from = 0) {
	if (!POLAIMG_LOG) return [];
	let text;
	try { text = fs.readFileSync(POLAIMG_LOG).subarray(from).toString('utf8'); } catch { return []; }
	return text.split('\n').filter((l) =>
		/master: worker \d+ (killed by signal|exited with status [1-9]|ended with wait status)/.test(l));
}

// ---- "the service is still fine" after a hostile input -------------------------------

// Takes a snapshot before a hostile request; check() afterwards asserts:
// health ok, an authenticated GET of a known image works, no new file in
// storage, .tmp empty, no new case_images row for the case.
export async function guard(w, imageId) {
	const logAt = logSize();
	const files = listFiles();
	const rows = imageRowCount(w.case);
	const total = Number(sqlValue('SELECT count(*) FROM case_images'));
	return {
		async check() {
			const h = await api('GET', '/api/v1/images/health');
			assert.equal(h.status, 200, `health after hostile input: ${h.status} ${h.text}`);
			assert.equal(h.json.status, 'ok');
			const g = await api('GET', `/api/v1/images/${imageId}`, { token: w.tDoctor });
			assert.equal(g.status, 200, `authenticated GET after hostile input: ${g.status} ${g.text}`);
			assert.deepEqual(tmpEntries(), [], 'storage .tmp is empty');
			assert.deepEqual(listFiles(), files, 'no new files in storage');
			assert.equal(imageRowCount(w.case), rows, 'no new case_images row for the case');
			assert.equal(Number(sqlValue('SELECT count(*) FROM case_images')), total, 'no new case_images row');
			assert.deepEqual(workerCrashes(logAt), [], 'no worker crashed');
		},
	};
}

export { assert, fs, path, randomBytes };
