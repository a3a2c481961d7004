// A stand-in for the Supabase Storage REST API (supabase/storage), for
// polaimg's tests. It listens on 127.0.0.1 and serves, under /storage/v1,
// the routes polaimg's Supabase back end and its clients use:
//
//   POST   /object/:bucket/*            upload (x-upsert: false → never replace)
//   PUT    /object/:bucket/*            upload that replaces
//   GET    /object/authenticated/:bucket/*, GET /object/:bucket/*   (Range)
//   HEAD   /object/authenticated/:bucket/*, HEAD /object/:bucket/*
//   GET    /object/info/authenticated/:bucket/*, GET /object/info/:bucket/*
//   DELETE /object/:bucket/*            and DELETE /object/:bucket {"prefixes"}
//   POST   /object/list/:bucket         one folder level, folders have id null
//   POST   /object/sign/:bucket/*       {"expiresIn"} → {"signedURL"}
//   GET    /object/sign/:bucket/*?token=        (also HEAD; Range)
//   POST   /object/upload/sign/:bucket/*        → {"url", "token"}
//   PUT    /object/upload/sign/:bucket/*?token= the bytes as the body
//   POST   /bucket, GET /bucket, GET /bucket/:id
//
// Authenticated routes want the service key as "Authorization: Bearer" (a
// JWT verified with the project JWT secret, role service_role) and as
// "apikey" (supabase-js sends both; the real gateway does not insist on
// apikey for storage, this stand-in does, to keep clients honest).
//
// Signed-URL tokens are verified the way supabase/storage does it in 2026
// (src/storage/object.ts verifyObjectSignature, src/internal/auth/jwt.ts):
// jose's jwtVerify with HS256 and the JWT secret (exp checked there), then
// the token's scope (download tokens: scope "download", or legacy tokens
// without scope and without "upsert"; upload tokens: scope "upload", or
// legacy ones carrying "upsert"), then url === "<bucket>/<decoded object
// path>", then exp once more. Tokens are made the same way the server makes
// them: SignJWT({url, scope}) / ({owner, url, upsert, scope}), setIssuedAt,
// setExpirationTime("<n>s"). Errors have the server's shape: HTTP 400 (500
// for internal errors) and a body {"statusCode": "<real status>", "code",
// "error", "message"}, e.g. {"statusCode":"409","code":"KeyAlreadyExists",
// "error":"Duplicate","message":"The resource already exists"}.
//
// Objects are files under <data>/<bucket>/<key>, published with a link()
// so a create never replaces; their metadata (type, etag, times) sits in
// <data>/.meta/<bucket>/<key>.json. Not implemented: multipart/form-data
// uploads, image transformations, RLS (only the service role exists), TUS.
//
// Test controls (no authentication, never in a real deployment):
//   POST /__fault {"mode": "ok"|"down"|"error"|"slow"|"cut", "ms": N, "count": N}
//     down  = the socket is destroyed without an answer; error = HTTP 500;
//     slow  = every answer waits ms; cut = object bodies stop half-way;
//     count = only the next N storage requests, then back to ok.
//   GET  /__fault → the current fault; GET /__stats → request counters.
//
// Usage: node server.mjs --data DIR [--port N] [--port-file FILE]
//        env SUPA_JWT_SECRET (required), SUPA_SERVICE_KEY (required)
//        node server.mjs --make-service-key   (prints a service key for
//        SUPA_JWT_SECRET on stdout)

import crypto from 'node:crypto';
import fs from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import { SignJWT, jwtVerify } from 'jose';

const PREFIX = '/storage/v1';
const UPLOAD_URL_TTL = Number(process.env.SUPA_UPLOAD_URL_TTL || 7200); // uploadSignedUrlExpirationTime
const JWT_SECRET = process.env.SUPA_JWT_SECRET || '';
const enc = new TextEncoder();

function arg(name, dflt) {
	const i = process.argv.indexOf(name);
	return i >= 0 && i + 1 < process.argv.length ? process.argv[i + 1] : dflt;
}

if (!JWT_SECRET) {
	console.error('server.mjs: SUPA_JWT_SECRET is required');
	process.exit(2);
}

if (process.argv.includes('--make-service-key')) {
	const now = Math.floor(Date.now() / 1000);
	const key = await new SignJWT({ iss: 'supabase-demo', role: 'service_role' })
		.setProtectedHeader({ alg: 'HS256', typ: 'JWT' })
		.setIssuedAt(now)
		.setExpirationTime(now + 10 * 365 * 86400)
		.sign(enc.encode(JWT_SECRET));
	process.stdout.write(key + '\n');
	process.exit(0);
}

const SERVICE_KEY = process.env.SUPA_SERVICE_KEY || '';
const DATA = arg('--data');
if (!SERVICE_KEY || !DATA) {
	console.error('usage: SUPA_JWT_SECRET=… SUPA_SERVICE_KEY=… node server.mjs --data DIR [--port N] [--port-file F]');
	process.exit(2);
}
const META = path.join(DATA, '.meta');
const TMP = path.join(DATA, '.tmp');
fs.mkdirSync(META, { recursive: true });
fs.mkdirSync(TMP, { recursive: true });

// ---- errors in the server's shape ------------------------------------------

class StorageError extends Error {
	constructor(status, code, message, error) {
		super(message);
		this.status = status;   // the "real" status, named in the body
		this.code = code;
		this.error = error || code;
	}
}
const E = {
	invalidJWT: (m) => new StorageError(400, 'InvalidJWT', m || 'Invalid JWT'),
	accessDenied: (m) => new StorageError(403, 'AccessDenied', m || 'Access denied', 'Unauthorized'),
	invalidSignature: (m) => new StorageError(400, 'InvalidSignature', m || 'Invalid signature'),
	expired: () => new StorageError(400, 'ExpiredToken', 'The provided token has expired.'),
	noSuchKey: () => new StorageError(404, 'NoSuchKey', 'Object not found', 'not_found'),
	noSuchBucket: () => new StorageError(404, 'NoSuchBucket', 'Bucket not found', 'Bucket not found'),
	duplicate: () => new StorageError(409, 'KeyAlreadyExists', 'The resource already exists', 'Duplicate'),
	bucketExists: () => new StorageError(409, 'BucketAlreadyExists', 'The resource already exists', 'Duplicate'),
	invalidKey: (k) => new StorageError(400, 'InvalidKey', `Invalid key: ${k}`),
	validation: (m) => new StorageError(400, 'InvalidRequest', m, 'Bad Request'),
	tooLarge: () => new StorageError(413, 'EntityTooLarge', 'The object exceeded the maximum allowed size', 'Payload too large'),
	mime: (t) => new StorageError(415, 'InvalidMimeType', `mime type ${t} is not supported`, 'invalid_mime_type'),
	internal: () => new StorageError(500, 'InternalError', 'Internal server error', 'internal'),
};

function sendJSON(res, httpStatus, body, extra = {}) {
	const data = Buffer.from(JSON.stringify(body));
	res.writeHead(httpStatus, { 'Content-Type': 'application/json; charset=utf-8', 'Content-Length': data.length, ...extra });
	res.end(res.req.method === 'HEAD' ? undefined : data);
}

function sendError(res, e) {
	if (!(e instanceof StorageError)) {
		console.error(e);
		e = E.internal();
	}
	// error-handler.ts: every error but a 500 is answered with HTTP 400.
	sendJSON(res, e.status === 500 ? 500 : 400,
		{ statusCode: String(e.status), code: e.code, error: e.error, message: e.message });
}

// ---- keys, buckets, objects ---------------------------------------------------

// src/storage/limits.ts isValidKey
const KEY_RE = /^(\w|\/|!|-|\.|\*|'|\(|\)| |&|\$|@|=|;|:|\+|,|\?)*$/;
function checkKey(key) {
	if (!key || !KEY_RE.test(key) || key.split('/').some((s) => s === '' || s === '.' || s === '..'))
		throw E.invalidKey(key);
}

const buckets = new Map(); // id → {id, name, public, file_size_limit, allowed_mime_types, created_at, updated_at}
const bucketFile = path.join(META, 'buckets.json');
try {
	for (const b of JSON.parse(fs.readFileSync(bucketFile, 'utf8'))) buckets.set(b.id, b);
} catch { /* first start */ }
function saveBuckets() {
	fs.writeFileSync(bucketFile, JSON.stringify([...buckets.values()]));
}
function bucketOf(id) {
	const b = buckets.get(id);
	if (!b) throw E.noSuchBucket();
	return b;
}

const objPath = (b, k) => path.join(DATA, b, k);
const metaPath = (b, k) => path.join(META, b, k + '.json');

function readMeta(b, k) {
	try {
		const st = fs.statSync(objPath(b, k));
		if (!st.isFile()) return null;
		return JSON.parse(fs.readFileSync(metaPath(b, k), 'utf8'));
	} catch {
		return null;
	}
}

function findObject(b, k) {
	const m = readMeta(b, k);
	if (!m) throw E.noSuchKey();
	return m;
}

// Every object key of a bucket, sorted (collation C).
function allKeys(b) {
	const out = [];
	const root = path.join(DATA, b);
	const walk = (dir, rel) => {
		let ents;
		try { ents = fs.readdirSync(dir, { withFileTypes: true }); } catch { return; }
		for (const e of ents) {
			const r = rel ? `${rel}/${e.name}` : e.name;
			if (e.isDirectory()) walk(path.join(dir, e.name), r);
			else if (e.isFile() && fs.existsSync(metaPath(b, r))) out.push(r);
		}
	};
	walk(root, '');
	return out.sort((x, y) => (x < y ? -1 : x > y ? 1 : 0));
}

function removeEmptyDirs(base, rel) {
	const parts = rel.split('/');
	for (let i = parts.length - 1; i > 0; i--) {
		try { fs.rmdirSync(path.join(base, ...parts.slice(0, i))); } catch { break; }
	}
}

function deleteObject(b, k) {
	try { fs.unlinkSync(objPath(b, k)); } catch (e) { if (e.code === 'ENOENT') return false; throw e; }
	try { fs.unlinkSync(metaPath(b, k)); } catch { /* ignore */ }
	removeEmptyDirs(path.join(DATA, b), k);
	removeEmptyDirs(path.join(META, b), k);
	return true;
}

function infoBody(b, k, m) {
	return {
		id: m.id, name: k, version: m.version, bucket_id: b, size: m.size,
		content_type: m.mimetype, cache_control: m.cacheControl, etag: m.eTag,
		metadata: null, last_modified: m.updated_at, created_at: m.created_at,
	};
}

// Receives the request body into a temp file and publishes it as b/k:
// link() for a create (fails if the object exists), rename() for upsert.
async function storeBody(req, b, k, { upsert, owner }) {
	checkKey(k);
	const bucket = bucketOf(b);
	const existing = readMeta(b, k);
	if (existing && !upsert) throw E.duplicate();
	const ctype = req.headers['content-type'] || 'text/plain;charset=UTF-8';
	if (ctype.toLowerCase().startsWith('multipart/form-data'))
		throw E.validation('multipart/form-data uploads are not implemented by this stand-in');
	const mimetype = ctype.split(';')[0].trim();
	if (Array.isArray(bucket.allowed_mime_types) && bucket.allowed_mime_types.length > 0 &&
		!bucket.allowed_mime_types.some((p) => p === mimetype || (p.endsWith('/*') && mimetype.startsWith(p.slice(0, -1)))))
		throw E.mime(mimetype);
	const limit = bucket.file_size_limit || Infinity;
	const tmp = path.join(TMP, crypto.randomUUID());
	const md5 = crypto.createHash('md5');
	let size = 0;
	const fd = fs.openSync(tmp, 'wx', 0o600);
	try {
		for await (const chunk of req) {
			size += chunk.length;
			if (size > limit) throw E.tooLarge();
			md5.update(chunk);
			fs.writeSync(fd, chunk);
		}
		fs.fsyncSync(fd);
	} catch (e) {
		fs.closeSync(fd);
		fs.rmSync(tmp, { force: true });
		throw e;
	}
	fs.closeSync(fd);
	const now = new Date().toISOString();
	const meta = {
		id: existing?.id || crypto.randomUUID(), version: crypto.randomUUID(), owner: owner || null,
		size, mimetype, eTag: `"${md5.digest('hex')}"`,
		cacheControl: req.headers['cache-control'] || 'no-cache',
		created_at: existing?.created_at || now, updated_at: now,
	};
	const dst = objPath(b, k);
	fs.mkdirSync(path.dirname(dst), { recursive: true });
	fs.mkdirSync(path.dirname(metaPath(b, k)), { recursive: true });
	fs.writeFileSync(metaPath(b, k) + '.tmp', JSON.stringify(meta));
	try {
		if (upsert) fs.renameSync(tmp, dst);
		else fs.linkSync(tmp, dst);
	} catch (e) {
		fs.rmSync(tmp, { force: true });
		fs.rmSync(metaPath(b, k) + '.tmp', { force: true });
		if (e.code === 'EEXIST') throw E.duplicate();
		throw e;
	}
	fs.rmSync(tmp, { force: true });
	fs.renameSync(metaPath(b, k) + '.tmp', metaPath(b, k));
	return meta;
}

// ---- bytes with Range ------------------------------------------------------------

// One "bytes=a-b" range of size bytes: {start, end}, null for none, 'bad'.
function parseRange(h, size) {
	if (!h) return null;
	const m = /^bytes=(\d*)-(\d*)$/.exec(h.trim());
	if (!m || (m[1] === '' && m[2] === '')) return null; // ignored, as S3 does
	let start, end;
	if (m[1] === '') {
		const n = Number(m[2]);
		if (n === 0) return 'bad';
		start = Math.max(0, size - n);
		end = size - 1;
	} else {
		start = Number(m[1]);
		end = m[2] === '' ? size - 1 : Math.min(Number(m[2]), size - 1);
		if (m[2] !== '' && Number(m[2]) < start) return null;
	}
	if (start >= size) return 'bad';
	return { start, end };
}

function sendObject(req, res, b, k, m, { expires } = {}) {
	const size = m.size;
	const r = parseRange(req.headers.range, size);
	const headers = {
		'Accept-Ranges': 'bytes',
		'Content-Type': m.mimetype.includes('text/html') ? 'text/plain' : m.mimetype,
		ETag: m.eTag,
		'Last-Modified': new Date(m.updated_at).toUTCString(),
	};
	if (expires) headers.Expires = expires;
	else headers['Cache-Control'] = m.cacheControl;
	if (r === 'bad') {
		res.writeHead(416, { ...headers, 'Content-Range': `bytes */${size}`, 'Content-Length': 0 });
		res.end();
		return;
	}
	const start = r ? r.start : 0;
	const end = r ? r.end : size - 1;
	const len = size === 0 ? 0 : end - start + 1;
	headers['Content-Length'] = len;
	if (r) headers['Content-Range'] = `bytes ${start}-${end}/${size}`;
	res.writeHead(r ? 206 : 200, headers);
	if (req.method === 'HEAD' || len === 0) {
		res.end();
		return;
	}
	if (fault.mode === 'cut' && takeFault()) {
		// Send about half of the bytes, then drop the connection.
		const half = Math.max(1, Math.floor(len / 2));
		const s = fs.createReadStream(objPath(b, k), { start, end: start + half - 1 });
		s.on('data', (c) => res.write(c));
		s.on('end', () => setTimeout(() => res.socket?.destroy(), 20));
		return;
	}
	fs.createReadStream(objPath(b, k), { start, end }).pipe(res);
}

// ---- authentication and signed tokens -------------------------------------------

async function requireServiceKey(req) {
	const auth = req.headers.authorization;
	if (!auth) throw E.validation("headers must have required property 'authorization'");
	const m = /^Bearer\s+(.+)$/i.exec(auth);
	if (!m) throw E.accessDenied('Invalid authorization header');
	let payload;
	try {
		({ payload } = await jwtVerify(m[1], enc.encode(JWT_SECRET), { algorithms: ['HS256'] }));
	} catch (e) {
		throw E.accessDenied(e.message);
	}
	if (payload.role !== 'service_role' || m[1] !== SERVICE_KEY)
		throw E.accessDenied('this stand-in knows only the service role');
	if (req.headers.apikey !== SERVICE_KEY) {
		const err = new StorageError(401, 'InvalidApiKey', 'Invalid API key');
		err.gateway = true;
		throw err;
	}
}

// signJWT in src/internal/auth/jwt.ts
function signToken(payload, expiresIn) {
	return new SignJWT(payload)
		.setIssuedAt()
		.setExpirationTime(`${Math.floor(expiresIn)}s`)
		.setProtectedHeader({ alg: 'HS256' })
		.sign(enc.encode(JWT_SECRET));
}

const isUploadScoped = (p) => p.scope === 'upload' || (p.scope === undefined && 'upsert' in p);
const isDownloadScoped = (p) => p.scope === 'download' || (p.scope === undefined && !('upsert' in p));

// verifyObjectSignature in src/storage/object.ts
async function verifyObjectSignature(token, bucket, objectName, scope) {
	if (!token) throw E.validation("querystring must have required property 'token'");
	let payload;
	try {
		({ payload } = await jwtVerify(token, enc.encode(JWT_SECRET), { algorithms: ['HS256'] }));
	} catch (e) {
		throw E.invalidJWT(e.message);
	}
	const ok = scope === 'upload' ? isUploadScoped(payload) : isDownloadScoped(payload);
	if (!ok) throw E.invalidSignature(`Token is not scoped for ${scope}`);
	if (payload.url !== `${bucket}/${objectName}`) throw E.invalidSignature();
	if (payload.exp * 1000 < Date.now()) throw E.expired();
	return payload;
}

// ---- routing ----------------------------------------------------------------------

async function readJSON(req) {
	const chunks = [];
	let n = 0;
	for await (const c of req) {
		n += c.length;
		if (n > 1 << 20) throw E.validation('body too large');
		chunks.push(c);
	}
	if (n === 0) return {};
	try {
		return JSON.parse(Buffer.concat(chunks).toString('utf8'));
	} catch {
		throw E.validation('Body is not valid JSON');
	}
}

function dec(v) {
	try {
		return decodeURIComponent(v);
	} catch {
		throw E.validation('invalid path encoding');
	}
}

// "/a/b%20c/d" after a route prefix → {bucket, name} with decoded parts.
function splitObject(rest) {
	const i = rest.indexOf('/');
	if (i <= 0 || i === rest.length - 1) throw E.validation('params must have required property \'*\'');
	let bucket, name;
	try {
		bucket = decodeURIComponent(rest.slice(0, i));
		name = decodeURIComponent(rest.slice(i + 1));
	} catch {
		throw E.validation('invalid path encoding');
	}
	checkKey(name); // findObject and uploads check it too (mustBeValidKey)
	return { bucket, name };
}

const stats = { requests: 0, byRoute: {} };
let fault = { mode: 'ok', ms: 0, count: 0 };
// Is the configured fault to be applied to this request? A fault with a
// count applies to that many requests, then the server is healthy again.
function takeFault() {
	if (fault.mode === 'ok') return false;
	if (fault.count > 0 && --fault.count === 0) fault = { mode: 'ok', ms: 0, count: 0 };
	return true;
}

function count(route) {
	stats.requests++;
	stats.byRoute[route] = (stats.byRoute[route] || 0) + 1;
}

async function route(req, res, url) {
	const p = url.pathname.slice(PREFIX.length);
	const m = req.method;
	let r;

	// ---- buckets
	if (p === '/bucket' && m === 'GET') {
		count('bucket.list');
		await requireServiceKey(req);
		return sendJSON(res, 200, [...buckets.values()]);
	}
	if (p === '/bucket' && m === 'POST') {
		count('bucket.create');
		await requireServiceKey(req);
		const body = await readJSON(req);
		const id = body.id || body.name;
		if (!id || !/^[A-Za-z0-9_-][A-Za-z0-9_.-]*$/.test(id)) throw new StorageError(400, 'InvalidBucketName', 'Bucket name invalid', 'Invalid Input');
		if (buckets.has(id)) throw E.bucketExists();
		const now = new Date().toISOString();
		buckets.set(id, {
			id, name: body.name || id, owner: '', public: !!body.public,
			file_size_limit: body.file_size_limit ?? null, allowed_mime_types: body.allowed_mime_types ?? null,
			created_at: now, updated_at: now,
		});
		saveBuckets();
		fs.mkdirSync(path.join(DATA, id), { recursive: true });
		return sendJSON(res, 200, { name: id });
	}
	if ((r = /^\/bucket\/([^/]+)$/.exec(p)) && m === 'GET') {
		count('bucket.get');
		await requireServiceKey(req);
		return sendJSON(res, 200, bucketOf(dec(r[1])));
	}

	// ---- signed URLs (no service key; the token is the authorization)
	if (p.startsWith('/object/sign/') && (m === 'GET' || m === 'HEAD')) {
		count('object.sign.get');
		const { bucket, name } = splitObject(p.slice('/object/sign/'.length));
		const payload = await verifyObjectSignature(url.searchParams.get('token'), bucket, name, 'download');
		bucketOf(bucket);
		const meta = findObject(bucket, name);
		return sendObject(req, res, bucket, name, meta, { expires: new Date(payload.exp * 1000).toUTCString() });
	}
	if (p.startsWith('/object/upload/sign/') && m === 'PUT') {
		count('object.upload.sign.put');
		const { bucket, name } = splitObject(p.slice('/object/upload/sign/'.length));
		const payload = await verifyObjectSignature(url.searchParams.get('token'), bucket, name, 'upload');
		await storeBody(req, bucket, name, { upsert: !!payload.upsert, owner: payload.owner });
		return sendJSON(res, 200, { Key: `${bucket}/${name}` });
	}

	// ---- everything else needs the service key
	if (p.startsWith('/object/sign/') && m === 'POST') {
		count('object.sign.create');
		await requireServiceKey(req);
		const { bucket, name } = splitObject(p.slice('/object/sign/'.length));
		const body = await readJSON(req);
		if (!Number.isInteger(body.expiresIn) || body.expiresIn < 1)
			throw E.validation('body/expiresIn must be >= 1');
		bucketOf(bucket);
		findObject(bucket, name);
		// signObjectUrl: url = decodeURI(path after /object/sign/)
		const urlToSign = decodeURI(url.pathname.slice((PREFIX + '/object/sign/').length));
		const token = await signToken({ url: urlToSign, scope: 'download' }, body.expiresIn);
		return sendJSON(res, 200, { signedURL: `/object/sign/${urlToSign}?token=${token}` });
	}
	if (p.startsWith('/object/upload/sign/') && m === 'POST') {
		count('object.upload.sign.create');
		await requireServiceKey(req);
		const { bucket, name } = splitObject(p.slice('/object/upload/sign/'.length));
		await readJSON(req);
		checkKey(name);
		bucketOf(bucket);
		const upsert = req.headers['x-upsert'] === 'true';
		if (!upsert && readMeta(bucket, name)) throw E.duplicate();
		const urlPath = `${bucket}/${name}`;
		const token = await signToken({ owner: undefined, url: urlPath, upsert, scope: 'upload' }, UPLOAD_URL_TTL);
		return sendJSON(res, 200, { url: `/object/upload/sign/${urlPath}?token=${token}`, token });
	}
	if ((r = /^\/object\/list\/([^/]+)$/.exec(p)) && m === 'POST') {
		count('object.list');
		await requireServiceKey(req);
		const bucket = dec(r[1]);
		bucketOf(bucket);
		const body = await readJSON(req);
		let prefix = typeof body.prefix === 'string' ? body.prefix : '';
		if (prefix !== '' && !prefix.endsWith('/')) prefix += '/';
		const limit = Math.min(Number.isInteger(body.limit) ? body.limit : 100, 1000);
		const offset = Number.isInteger(body.offset) ? body.offset : 0;
		const search = typeof body.search === 'string' ? body.search.toLowerCase() : '';
		const level = new Map();
		for (const k of allKeys(bucket)) {
			if (!k.startsWith(prefix)) continue;
			const rest = k.slice(prefix.length);
			const slash = rest.indexOf('/');
			const name = slash >= 0 ? rest.slice(0, slash) : rest;
			if (search && !name.toLowerCase().startsWith(search)) continue;
			if (slash >= 0) {
				if (!level.has(name)) level.set(name, { name, id: null, updated_at: null, created_at: null, last_accessed_at: null, metadata: null });
			} else {
				const mt = readMeta(bucket, k);
				if (!mt) continue;
				level.set(name, {
					name, id: mt.id, updated_at: mt.updated_at, created_at: mt.created_at, last_accessed_at: mt.updated_at,
					metadata: {
						eTag: mt.eTag, size: mt.size, mimetype: mt.mimetype, cacheControl: mt.cacheControl,
						lastModified: mt.updated_at, contentLength: mt.size, httpStatusCode: 200,
					},
				});
			}
		}
		let ents = [...level.values()].sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
		if (body.sortBy?.order === 'desc') ents.reverse();
		ents = ents.slice(offset, offset + limit);
		return sendJSON(res, 200, ents);
	}
	if (p.startsWith('/object/info/')) {
		if (m !== 'GET') throw E.validation('method not allowed');
		count('object.info');
		await requireServiceKey(req);
		let rest = p.slice('/object/info/'.length);
		if (rest.startsWith('authenticated/')) rest = rest.slice('authenticated/'.length);
		const { bucket, name } = splitObject(rest);
		bucketOf(bucket);
		return sendJSON(res, 200, infoBody(bucket, name, findObject(bucket, name)));
	}
	if (p.startsWith('/object/') && (m === 'GET' || m === 'HEAD')) {
		count(m === 'GET' ? 'object.get' : 'object.head');
		let rest = p.slice('/object/'.length);
		if (rest.startsWith('authenticated/')) rest = rest.slice('authenticated/'.length);
		await requireServiceKey(req);
		const { bucket, name } = splitObject(rest);
		bucketOf(bucket);
		return sendObject(req, res, bucket, name, findObject(bucket, name));
	}
	if (p.startsWith('/object/') && (m === 'POST' || m === 'PUT')) {
		count(m === 'POST' ? 'object.create' : 'object.update');
		await requireServiceKey(req);
		const { bucket, name } = splitObject(p.slice('/object/'.length));
		// createObject: upsert only with x-upsert: true; updateObject replaces.
		const upsert = m === 'PUT' || req.headers['x-upsert'] === 'true';
		const meta = await storeBody(req, bucket, name, { upsert });
		return sendJSON(res, 200, { Id: meta.id, Key: `${bucket}/${name}` });
	}
	if ((r = /^\/object\/([^/]+)$/.exec(p)) && m === 'DELETE') {
		count('object.delete.many');
		await requireServiceKey(req);
		const bucket = dec(r[1]);
		bucketOf(bucket);
		const body = await readJSON(req);
		if (!Array.isArray(body.prefixes) || body.prefixes.length < 1)
			throw E.validation('body/prefixes must NOT have fewer than 1 items');
		const out = [];
		for (const k of body.prefixes) {
			let valid = typeof k === 'string';
			try { if (valid) checkKey(k); } catch { valid = false; }
			const mt = valid ? readMeta(bucket, k) : null;
			if (mt && deleteObject(bucket, k)) out.push({ name: k, bucket_id: bucket, id: mt.id });
		}
		return sendJSON(res, 200, out);
	}
	if (p.startsWith('/object/') && m === 'DELETE') {
		count('object.delete');
		await requireServiceKey(req);
		const { bucket, name } = splitObject(p.slice('/object/'.length));
		bucketOf(bucket);
		findObject(bucket, name);
		deleteObject(bucket, name);
		return sendJSON(res, 200, { message: 'Successfully deleted' });
	}
	res.writeHead(404, { 'Content-Type': 'application/json' });
	res.end(JSON.stringify({ message: `Route ${m}:${url.pathname} not found`, error: 'Not Found', statusCode: 404 }));
}

const server = http.createServer(async (req, res) => {
	const url = new URL(req.url, 'http://127.0.0.1');
	try {
		if (url.pathname === '/__fault') {
			if (req.method === 'POST') {
				const b = await readJSON(req);
				const mode = ['ok', 'down', 'error', 'slow', 'cut'].includes(b.mode) ? b.mode : null;
				if (!mode) return sendJSON(res, 400, { message: 'mode: ok, down, error, slow or cut' });
				fault = { mode, ms: Number(b.ms) || 0, count: Number(b.count) || 0 };
			}
			return sendJSON(res, 200, fault);
		}
		if (url.pathname === '/__stats') return sendJSON(res, 200, stats);
		if (!url.pathname.startsWith(PREFIX + '/')) {
			res.writeHead(404, { 'Content-Type': 'application/json' });
			return res.end(JSON.stringify({ message: 'no Route matched with those values' }));
		}
		if (process.env.SUPA_LOG) console.error(`${req.method} ${url.pathname} [${Object.keys(req.headers).join(' ')}]`);
		if (fault.mode === 'down' && takeFault()) {
			req.socket.destroy();
			return;
		}
		if (fault.mode === 'error' && takeFault()) return sendError(res, E.internal());
		if (fault.mode === 'slow') {
			const ms = fault.ms;
			if (takeFault()) await new Promise((ok) => setTimeout(ok, ms));
		}
		await route(req, res, url);
	} catch (e) {
		if (res.headersSent) {
			res.destroy();
			return;
		}
		if (e instanceof StorageError && e.gateway) return sendJSON(res, 401, { message: e.message });
		sendError(res, e);
	}
});
server.keepAliveTimeout = 30000;

const port = Number(arg('--port', '0'));
server.listen(port, '127.0.0.1', () => {
	const actual = server.address().port;
	const pf = arg('--port-file');
	if (pf) {
		fs.writeFileSync(pf + '.tmp', String(actual));
		fs.renameSync(pf + '.tmp', pf);
	}
	console.error(`supabase stand-in listening on 127.0.0.1:${actual}`);
});

function stop() {
	server.close(() => process.exit(0));
	server.closeAllConnections();
	setTimeout(() => process.exit(0), 500).unref();
}
process.on('SIGTERM', stop);
process.on('SIGINT', stop);
