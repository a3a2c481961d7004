#!/usr/bin/env node
// A verifying front for s3rver: an S3-compatible test server that checks
// SigV4 the way S3 does.
//
// s3rver 3.7.1 gives S3's semantics (buckets, objects, ListObjectsV2, Range,
// ETags) but does not verify SigV4 signatures. This front listens on
// 127.0.0.1, recomputes every request's signature with the AWS SDK's own
// signer (@smithy/signature-v4, the one @aws-sdk/client-s3 uses) from the
// bytes that actually arrived — method, raw path, query, the signed headers
// as received, the Host header included — and refuses what S3 would refuse:
//
//   403 SignatureDoesNotMatch   header-signed or presigned request whose
//                               signature differs (tampered URL, another
//                               Content-Type than the signed one, wrong Host)
//   403 AccessDenied            presigned URL past X-Amz-Date + X-Amz-Expires
//                               ("Request has expired"), or no signature
//   403 InvalidAccessKeyId      another access key id
//   403 RequestTimeTooSkewed    x-amz-date more than 15 minutes off
//   400 XAmzContentSHA256Mismatch  a PUT body whose SHA-256 is not the signed
//                               x-amz-content-sha256 (unless UNSIGNED-PAYLOAD)
//   412 PreconditionFailed      PUT with "If-None-Match: *" on an existing key
//                               (s3rver ignores If-None-Match: the front HEADs
//                               the key first, one PUT per key at a time)
//   416 InvalidRange           GET whose Range starts past the end, with
//                               Content-Range: bytes */size (s3rver never
//                               answers 416 and reads "bytes=-N" wrongly: the
//                               front resolves suffix and open ranges against
//                               the object's size first, and drops a Range
//                               of several ranges, as S3 does)
//
// Everything else is forwarded verbatim to a plain s3rver started by this
// process on another 127.0.0.1 port (its files in --dir), and the answer is
// piped back. The test credentials are registered with s3rver so that it
// accepts the forwarded Authorization headers and presigned URLs.
//
// Control endpoints (no signature; this is a test server on loopback):
//   POST /__fault {"mode":"none"|"down"|"error"|"slow"|"lost", "count":N,
//                  "methods":["PUT",...], "ms":N, "status":N}
//        down  = drop the connection without an answer
//        error = answer 503 ServiceUnavailable (or "status")
//        slow  = wait "ms" (default 5000) before handling the request
//        lost  = handle the request, then drop the connection instead of
//                answering (the client cannot know whether it worked)
//        count = affect only the next N matching requests, then back to none
//        methods = affect only these methods (default: all)
//   GET  /__fault      the current fault and counters
//   GET  /__requests   the last 200 requests: method, path, auth kind,
//                      status, if-none-match, x-amz-content-sha256, range
//   POST /__reset-log  empties that list
//
// Usage: node --openssl-legacy-provider front.mjs --dir DIR --bucket B [--region R] [--port P]
//        with S3_ACCESS_KEY_ID and S3_SECRET_ACCESS_KEY in the environment.
//        Prints one JSON line {"port":…, "s3rverPort":…} when ready.
//        (--openssl-legacy-provider: s3rver encrypts its ListObjectsV2
//        continuation tokens with DES, which OpenSSL 3 keeps there.)

import http from 'node:http';
import { createHash, randomBytes } from 'node:crypto';
import { createRequire } from 'node:module';
import { parseArgs } from 'node:util';

const require = createRequire(import.meta.url);
const S3rver = require('s3rver');
const AWSAccount = require('s3rver/lib/models/account.js');
const { SignatureV4 } = require('@smithy/signature-v4');
const { HttpRequest } = require('@smithy/protocol-http');
const { Sha256 } = require('@aws-crypto/sha256-js');

const { values: opts } = parseArgs({
	options: {
		dir: { type: 'string' },
		bucket: { type: 'string' },
		region: { type: 'string', default: 'us-east-1' },
		port: { type: 'string', default: '0' },
	},
});
const ACCESS_KEY_ID = process.env.S3_ACCESS_KEY_ID;
const SECRET = process.env.S3_SECRET_ACCESS_KEY;
if (!opts.dir || !opts.bucket || !ACCESS_KEY_ID || !SECRET) {
	console.error('usage: S3_ACCESS_KEY_ID=… S3_SECRET_ACCESS_KEY=… node front.mjs --dir DIR --bucket B [--region R] [--port P]');
	process.exit(2);
}
const REGION = opts.region;
const MAX_BODY = 256 * 1024 * 1024;
const SKEW_MS = 15 * 60 * 1000;
const MAX_EXPIRES = 604800;

const signer = new SignatureV4({
	credentials: { accessKeyId: ACCESS_KEY_ID, secretAccessKey: SECRET },
	region: REGION,
	service: 's3',
	sha256: Sha256,
	uriEscapePath: false,       // S3: the path is signed as sent
	applyChecksum: false,
});

// ---- fault injection and request log -------------------------------------

let fault = { mode: 'none' };
const counters = { requests: 0, verified: 0, refused: 0, faulted: 0 };
const requestLog = [];

function faultFor(method) {
	if (fault.mode === 'none')
		return null;
	if (Array.isArray(fault.methods) && !fault.methods.includes(method))
		return null;
	const f = fault;
	if (typeof f.count === 'number') {
		f.count -= 1;
		if (f.count <= 0)
			fault = { mode: 'none' };
	}
	return f;
}

function logRequest(entry) {
	requestLog.push(entry);
	if (requestLog.length > 200)
		requestLog.shift();
}

// ---- S3 answers ------------------------------------------------------------

function xmlEscape(s) {
	return String(s).replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&apos;' })[c]);
}

function sendError(req, res, status, code, message) {
	const body = req.method === 'HEAD' ? '' :
		'<?xml version="1.0" encoding="UTF-8"?>\n' +
		`<Error><Code>${xmlEscape(code)}</Code><Message>${xmlEscape(message)}</Message>` +
		`<RequestId>${randomBytes(8).toString('hex')}</RequestId></Error>`;
	res.writeHead(status, {
		'Content-Type': 'application/xml',
		'Content-Length': Buffer.byteLength(body),
		'x-polaimg-front': code,
	});
	res.end(body);
	return status;
}

class S3Refusal extends Error {
	constructor(status, code, message) {
		super(message);
		this.status = status;
		this.code = code;
	}
}

// ---- parsing the request -----------------------------------------------

// The raw query as a list of [name, value], both percent-decoded ('+' is a
// plus sign, as S3 reads it).
function parseQuery(raw) {
	const out = [];
	if (!raw)
		return out;
	for (const piece of raw.split('&')) {
		if (piece === '')
			continue;
		const eq = piece.indexOf('=');
		const name = eq < 0 ? piece : piece.slice(0, eq);
		const value = eq < 0 ? '' : piece.slice(eq + 1);
		try {
			out.push([decodeURIComponent(name), decodeURIComponent(value)]);
		} catch {
			throw new S3Refusal(400, 'InvalidArgument', 'malformed percent-encoding in the query');
		}
	}
	return out;
}

function queryObject(pairs, skip) {
	const q = {};
	for (const [k, v] of pairs) {
		if (skip && skip(k))
			continue;
		if (k in q)
			q[k] = Array.isArray(q[k]) ? [...q[k], v] : [q[k], v];
		else
			q[k] = v;
	}
	return q;
}

// "AWS4-HMAC-SHA256 Credential=…, SignedHeaders=…, Signature=…"
function parseAuthorization(h) {
	const m = /^AWS4-HMAC-SHA256 (.*)$/.exec(h);
	if (!m)
		throw new S3Refusal(400, 'InvalidArgument', 'Unsupported Authorization Type');
	const parts = {};
	for (const p of m[1].split(',')) {
		const t = p.trim();
		const eq = t.indexOf('=');
		if (eq > 0)
			parts[t.slice(0, eq)] = t.slice(eq + 1);
	}
	if (!parts.Credential || !parts.SignedHeaders || !parts.Signature)
		throw new S3Refusal(400, 'AuthorizationHeaderMalformed',
			'the authorization header requires Credential, SignedHeaders and Signature');
	return parts;
}

// "20130524T000000Z" → Date, or null.
function parseAmzDate(s) {
	const m = /^(\d{4})(\d{2})(\d{2})T(\d{2})(\d{2})(\d{2})Z$/.exec(s || '');
	if (!m)
		return null;
	const d = new Date(Date.UTC(+m[1], +m[2] - 1, +m[3], +m[4], +m[5], +m[6]));
	return isNaN(d) ? null : d;
}

function checkCredential(credential, amzDate) {
	const [akid, date, region, service, term] = credential.split('/');
	if (akid !== ACCESS_KEY_ID)
		throw new S3Refusal(403, 'InvalidAccessKeyId',
			'The AWS Access Key Id you provided does not exist in our records.');
	if (date !== amzDate.slice(0, 8) || region !== REGION || service !== 's3' ||
	    term !== 'aws4_request')
		throw new S3Refusal(403, 'SignatureDoesNotMatch',
			'The credential scope does not match the request');
}

// The request as the signer sees it: the raw path, the decoded query, and
// the headers named in signedNames with the values that arrived.
function signable(req, path, query, signedNames) {
	const headers = {};
	for (const name of signedNames) {
		const v = req.headers[name];
		if (v === undefined)
			throw new S3Refusal(403, 'SignatureDoesNotMatch',
				`signed header ${name} is missing from the request`);
		headers[name] = Array.isArray(v) ? v.join(',') : v;
	}
	const host = req.headers.host || '';
	const colon = host.lastIndexOf(':');
	return new HttpRequest({
		method: req.method,
		protocol: 'http:',
		hostname: colon > 0 && !host.endsWith(']') ? host.slice(0, colon) : host,
		port: colon > 0 && !host.endsWith(']') ? Number(host.slice(colon + 1)) : undefined,
		path,
		query,
		headers,
	});
}

// Verifies req (body already read). Returns 'header' or 'query', or throws
// an S3Refusal.
async function verify(req, path, pairs, body) {
	const hasQuerySig = pairs.some(([k]) => k === 'X-Amz-Signature' || k === 'X-Amz-Algorithm');
	const auth = req.headers.authorization;
	if (hasQuerySig && auth)
		throw new S3Refusal(400, 'InvalidArgument', 'Only one auth mechanism allowed');
	if (!hasQuerySig && !auth)
		throw new S3Refusal(403, 'AccessDenied', 'Anonymous access is not allowed');

	if (hasQuerySig) {
		const q = Object.fromEntries(pairs);
		if (q['X-Amz-Algorithm'] !== 'AWS4-HMAC-SHA256')
			throw new S3Refusal(400, 'AuthorizationQueryParametersError',
				'X-Amz-Algorithm only supports "AWS4-HMAC-SHA256"');
		for (const p of ['X-Amz-Credential', 'X-Amz-Date', 'X-Amz-Expires', 'X-Amz-SignedHeaders', 'X-Amz-Signature'])
			if (!q[p])
				throw new S3Refusal(400, 'AuthorizationQueryParametersError', `${p} is missing`);
		const date = parseAmzDate(q['X-Amz-Date']);
		const expires = /^\d{1,6}$/.test(q['X-Amz-Expires']) ? Number(q['X-Amz-Expires']) : NaN;
		if (!date || !(expires >= 1 && expires <= MAX_EXPIRES))
			throw new S3Refusal(400, 'AuthorizationQueryParametersError',
				'X-Amz-Date or X-Amz-Expires is invalid');
		checkCredential(q['X-Amz-Credential'], q['X-Amz-Date']);
		// S3 checks the expiry before the signature.
		if (Date.now() > date.getTime() + expires * 1000)
			throw new S3Refusal(403, 'AccessDenied', 'Request has expired');
		if (date.getTime() > Date.now() + SKEW_MS)
			throw new S3Refusal(403, 'AccessDenied', 'Request is not valid yet');
		const signedNames = q['X-Amz-SignedHeaders'].split(';');
		const request = signable(req, path,
			queryObject(pairs, (k) => k === 'X-Amz-Signature'), signedNames);
		// The payload of a presigned request is UNSIGNED-PAYLOAD (the SDK
		// also writes it into the query as X-Amz-Content-Sha256).
		request.headers['x-amz-content-sha256'] = q['X-Amz-Content-Sha256'] || 'UNSIGNED-PAYLOAD';
		const names = new Set(signedNames);
		const signed = await signer.presign(request, {
			signingDate: date,
			expiresIn: expires,
			signableHeaders: names,
			unsignableHeaders: new Set(['x-amz-content-sha256'].filter((n) => !names.has(n))),
			unhoistableHeaders: new Set([...names, 'x-amz-content-sha256']),
		});
		if (signed.query['X-Amz-SignedHeaders'] !== q['X-Amz-SignedHeaders'] ||
		    signed.query['X-Amz-Signature'] !== q['X-Amz-Signature'])
			throw new S3Refusal(403, 'SignatureDoesNotMatch',
				'The request signature we calculated does not match the signature you provided.');
		return 'query';
	}

	const parts = parseAuthorization(auth);
	const amzDate = req.headers['x-amz-date'];
	const date = parseAmzDate(amzDate);
	if (!date)
		throw new S3Refusal(403, 'AccessDenied', 'AWS authentication requires a valid x-amz-date header');
	checkCredential(parts.Credential, amzDate);
	if (Math.abs(Date.now() - date.getTime()) > SKEW_MS)
		throw new S3Refusal(403, 'RequestTimeTooSkewed',
			'The difference between the request time and the current time is too large.');
	const payload = req.headers['x-amz-content-sha256'];
	if (!payload)
		throw new S3Refusal(400, 'InvalidRequest',
			'Missing required header for this request: x-amz-content-sha256');
	if (payload.startsWith('STREAMING-'))
		throw new S3Refusal(501, 'NotImplemented', 'chunked signing is not supported here');
	if (payload !== 'UNSIGNED-PAYLOAD' && !/^[0-9a-f]{64}$/.test(payload))
		throw new S3Refusal(400, 'InvalidArgument', 'x-amz-content-sha256 must be UNSIGNED-PAYLOAD or a SHA-256');
	const signedNames = parts.SignedHeaders.split(';');
	const names = new Set(signedNames);
	for (const must of ['host', 'x-amz-date', 'x-amz-content-sha256'])
		if (!names.has(must))
			throw new S3Refusal(403, 'SignatureDoesNotMatch', `${must} must be signed`);
	const request = signable(req, path, queryObject(pairs), signedNames);
	const signed = await signer.sign(request, { signingDate: date, signableHeaders: names });
	const mine = parseAuthorization(signed.headers.authorization);
	if (mine.SignedHeaders !== parts.SignedHeaders || mine.Signature !== parts.Signature ||
	    mine.Credential !== parts.Credential)
		throw new S3Refusal(403, 'SignatureDoesNotMatch',
			'The request signature we calculated does not match the signature you provided.');
	if (payload !== 'UNSIGNED-PAYLOAD') {
		const real = createHash('sha256').update(body).digest('hex');
		if (real !== payload)
			throw new S3Refusal(400, 'XAmzContentSHA256Mismatch',
				"The provided 'x-amz-content-sha256' header does not match what was computed.");
	}
	return 'header';
}

// ---- talking to s3rver ---------------------------------------------------------

let s3rverPort = 0;
const HOP = new Set(['connection', 'keep-alive', 'proxy-connection', 'transfer-encoding',
	'te', 'trailer', 'upgrade', 'expect', 'content-length']);

function forward(req, res, body) {
	return new Promise((resolve) => {
		const headers = {};
		for (const [k, v] of Object.entries(req.headers))
			if (!HOP.has(k))
				headers[k] = v;
		if (body.length > 0 || req.method === 'PUT' || req.method === 'POST')
			headers['content-length'] = String(body.length);
		const up = http.request({
			host: '127.0.0.1', port: s3rverPort, method: req.method, path: req.url, headers,
		}, (ur) => {
			const out = {};
			for (const [k, v] of Object.entries(ur.headers))
				if (!HOP.has(k) || k === 'content-length')
					out[k] = v;
			res.writeHead(ur.statusCode, out);
			ur.pipe(res);
			ur.on('end', () => resolve(ur.statusCode));
			ur.on('error', () => { res.destroy(); resolve(502); });
		});
		up.on('error', (e) => resolve(sendError(req, res, 502, 'InternalError', `s3rver: ${e.message}`)));
		up.end(body);
	});
}

// HEAD of the object at path on s3rver (no signature needed there):
// its size, or -1 when it does not exist.
function sizeAtS3rver(path) {
	return new Promise((resolve, reject) => {
		const r = http.request({ host: '127.0.0.1', port: s3rverPort, method: 'HEAD', path }, (ur) => {
			ur.resume();
			resolve(ur.statusCode === 200 ? Number(ur.headers['content-length']) : -1);
		});
		r.on('error', reject);
		r.end();
	});
}
const existsAtS3rver = async (path) => (await sizeAtS3rver(path)) >= 0;

// S3's reading of a GET's Range header against an object of size bytes
// (s3rver gets suffix ranges wrong and never answers 416): null to ignore
// the header (absent, malformed or several ranges: S3 sends the whole
// object), { unsatisfiable: true }, or { start, end } inclusive.
function s3Range(header, size) {
	const m = /^bytes=(\d*)-(\d*)$/.exec((header || '').trim());
	if (!m || (m[1] === '' && m[2] === ''))
		return null;
	let start, end;
	if (m[1] === '') {                      // suffix: the last n bytes
		const n = Number(m[2]);
		if (n === 0 || size === 0)
			return { unsatisfiable: true };
		start = Math.max(0, size - n);
		end = size - 1;
	} else {
		start = Number(m[1]);
		end = m[2] === '' ? size - 1 : Math.min(Number(m[2]), size - 1);
		if (m[2] !== '' && Number(m[2]) < start)
			return null;
		if (start >= size)
			return { unsatisfiable: true };
	}
	return { start, end };
}

// One conditional PUT per key at a time, so a HEAD-then-PUT cannot race.
const keyLocks = new Map();
async function withKeyLock(key, fn) {
	const prev = keyLocks.get(key) || Promise.resolve();
	let release;
	const mine = new Promise((r) => { release = r; });
	const chain = prev.then(() => mine);
	keyLocks.set(key, chain);
	await prev;
	try {
		return await fn();
	} finally {
		release();
		if (keyLocks.get(key) === chain)
			keyLocks.delete(key);
	}
}

// ---- the front server ------------------------------------------------------

function readBody(req) {
	return new Promise((resolve, reject) => {
		const chunks = [];
		let n = 0;
		req.on('data', (c) => {
			n += c.length;
			if (n > MAX_BODY) {
				reject(new S3Refusal(400, 'EntityTooLarge', 'body too large for the test server'));
				req.destroy();
				return;
			}
			chunks.push(c);
		});
		req.on('end', () => resolve(Buffer.concat(chunks)));
		req.on('error', reject);
	});
}

async function control(req, res, path) {
	const json = (status, obj) => {
		const b = JSON.stringify(obj);
		res.writeHead(status, { 'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(b) });
		res.end(b);
	};
	if (path === '/__fault' && req.method === 'POST') {
		const body = (await readBody(req)).toString('utf8');
		let f;
		try {
			f = JSON.parse(body || '{}');
		} catch {
			return json(400, { error: 'invalid JSON' });
		}
		if (!['none', 'down', 'error', 'slow', 'lost'].includes(f.mode))
			return json(400, { error: 'mode must be none, down, error, slow or lost' });
		fault = f;
		return json(200, { fault, counters });
	}
	if (path === '/__fault' && req.method === 'GET')
		return json(200, { fault, counters });
	if (path === '/__requests' && req.method === 'GET')
		return json(200, requestLog);
	if (path === '/__reset-log' && req.method === 'POST') {
		requestLog.length = 0;
		return json(200, {});
	}
	return json(404, { error: 'unknown control endpoint' });
}

async function handle(req, res) {
	const q = req.url.indexOf('?');
	const path = q < 0 ? req.url : req.url.slice(0, q);
	const rawQuery = q < 0 ? '' : req.url.slice(q + 1);
	if (path.startsWith('/__'))
		return control(req, res, path);

	counters.requests++;
	const entry = {
		time: new Date().toISOString(), method: req.method, path, query: rawQuery,
		auth: 'none', status: 0, code: '',
		ifNoneMatch: req.headers['if-none-match'] ?? null,
		contentSha256: req.headers['x-amz-content-sha256'] ?? null,
		contentType: req.headers['content-type'] ?? null,
		range: req.headers.range ?? null,
		host: req.headers.host ?? null,
	};
	logRequest(entry);

	const f = faultFor(req.method);
	if (f) {
		counters.faulted++;
		if (f.mode === 'down') {
			entry.status = -1;
			entry.code = 'fault:down';
			req.socket.destroy();
			return;
		}
		if (f.mode === 'error') {
			entry.code = 'fault:error';
			entry.status = sendError(req, res, f.status || 503, 'ServiceUnavailable',
				'injected fault');
			return;
		}
		if (f.mode === 'slow') {
			entry.code = 'fault:slow';
			await new Promise((r) => setTimeout(r, f.ms ?? 5000));
			if (res.destroyed || req.socket.destroyed)
				return;
		}
	}

	if (f && f.mode === 'lost') {
		// Do the work, but never let the answer reach the client.
		entry.code = 'fault:lost';
		const sock = req.socket;
		res.writeHead = () => res;
		res.write = () => true;
		res.end = () => { sock.destroy(); return res; };
	}

	let body;
	try {
		body = await readBody(req);
		const pairs = parseQuery(rawQuery);
		entry.auth = await verify(req, path, pairs, body);
	} catch (e) {
		if (!(e instanceof S3Refusal))
			throw e;
		counters.refused++;
		entry.code = e.code;
		entry.status = sendError(req, res, e.status, e.code, e.message);
		return;
	}
	counters.verified++;

	const inm = req.headers['if-none-match'];
	if (req.method === 'PUT' && inm !== undefined) {
		if (inm.trim() !== '*') {
			entry.code = 'NotImplemented';
			entry.status = sendError(req, res, 501, 'NotImplemented',
				'If-None-Match on PUT supports only "*"');
			return;
		}
		entry.status = await withKeyLock(path, async () => {
			if (await existsAtS3rver(path)) {
				entry.code = 'PreconditionFailed';
				return sendError(req, res, 412, 'PreconditionFailed',
					'At least one of the pre-conditions you specified did not hold');
			}
			return forward(req, res, body);
		});
		return;
	}
	if (req.method === 'GET' && req.headers.range !== undefined && pathHasKey(path)) {
		const size = await sizeAtS3rver(path);
		if (size >= 0) {
			const r = s3Range(req.headers.range, size);
			if (r === null) {
				delete req.headers.range;
			} else if (r.unsatisfiable) {
				entry.code = 'InvalidRange';
				res.setHeader('Content-Range', `bytes */${size}`);
				entry.status = sendError(req, res, 416, 'InvalidRange',
					'The requested range is not satisfiable');
				return;
			} else {
				req.headers.range = `bytes=${r.start}-${r.end}`;
			}
		}
	}
	entry.status = await forward(req, res, body);
}

// "/bucket/key…" (path style, as polaimg and the tests address it).
const pathHasKey = (path) => /^\/[^/]+\/.+/.test(path);

// ---- start -----------------------------------------------------------------------

const account = new AWSAccount(123456789012, 'polaimg-tests');
account.createKeyPair(ACCESS_KEY_ID, SECRET);

const s3rver = new S3rver({
	address: '127.0.0.1',
	port: 0,
	silent: true,
	directory: opts.dir,
	configureBuckets: [{ name: opts.bucket }],
});
const addr = await s3rver.run();
s3rverPort = addr.port;

const server = http.createServer((req, res) => {
	handle(req, res).catch((e) => {
		console.error('front: internal error:', e);
		if (!res.headersSent)
			sendError(req, res, 500, 'InternalError', 'front: internal error');
		else
			res.destroy();
	});
});
server.keepAliveTimeout = 30000;
server.listen(Number(opts.port), '127.0.0.1', () => {
	console.log(JSON.stringify({ port: server.address().port, s3rverPort }));
});

const stop = () => {
	server.close();
	s3rver.close().catch(() => {}).finally(() => process.exit(0));
	setTimeout(() => process.exit(0), 2000).unref();
};
process.on('SIGTERM', stop);
process.on('SIGINT', stop);
