// polaimg's SigV4 against the official AWS SDK for JavaScript, at fixed times.
//
//   POLAIMG_BIN=src/polaimg node --test tests/reference/presign.test.mjs
//
// (needs `npm ci --prefix tests` and a C compiler; POLAIMG_BIN defaults to
// src/polaimg, then build/src/polaimg.)
//
// 1. Presigned URLs. For every combination of target (AWS virtual-host,
//    an explicit regional endpoint, an IP endpoint, localhost with forced
//    path style, a dotted bucket, a custom https host with a port and a
//    base path), key (spaces, '+', '~', '%', unicode, "!'()*", slashes …),
//    method (GET; PUT with a signed Content-Type), expiry and date,
//    `polaimg presign` is run with a temp config and its URL compared with
//    @aws-sdk/s3-request-presigner's getSignedUrl() for the same command on
//    an @aws-sdk/client-s3 client configured the same way:
//      - scheme, host, path: byte for byte;
//      - the query: every parameter byte for byte, the same set. The SDK
//        lists the parameters alphabetically, polaimg in AWS's documented
//        order (canonical order, X-Amz-Signature last), so the SDK's query
//        is put in that order and then the whole URL compared byte for byte.
//    Three SDK behaviours are switched off because polaimg's URLs do not
//    have them (S3 accepts URLs with or without): the `x-id=GetObject`
//    parameter, the hoisted `X-Amz-Content-Sha256=UNSIGNED-PAYLOAD`, and
//    checksum parameters. content-type is signed on PUT (the presigner
//    leaves it unsigned unless asked, via signableHeaders).
//    Each URL is also checked against @smithy/signature-v4's presign() on
//    the parsed request (a second, lower-level comparison).
// 2. Header-signed requests (what storage_s3.c sends). sign_request.c runs
//    sigv4_sign_request() and its URL is compared with the URL the S3
//    client builds for the same operation (HeadObject, GetObject with Range,
//    PutObject with Content-Type and If-None-Match, DeleteObject,
//    ListObjectsV2 with a prefix and a continuation token, HeadBucket), its
//    Authorization header byte for byte with @smithy/signature-v4's sign()
//    of that SDK request at the same date.
// 3. AWS's published presigned-GET example, as a known answer.
//
// The number of comparisons is printed at the end.

import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { createHash } from 'node:crypto';

import {
	S3Client, GetObjectCommand, PutObjectCommand, HeadObjectCommand,
	DeleteObjectCommand, ListObjectsV2Command, HeadBucketCommand,
} from '@aws-sdk/client-s3';
import { getSignedUrl } from '@aws-sdk/s3-request-presigner';
import { SignatureV4 } from '@smithy/signature-v4';
import { HttpRequest } from '@smithy/protocol-http';
import { Sha256 } from '@aws-crypto/sha256-js';

const HERE = dirname(fileURLToPath(import.meta.url));
const REPO = resolve(HERE, '../..');
const BIN = process.env.POLAIMG_BIN ||
	[join(REPO, 'src/polaimg'), join(REPO, 'build/src/polaimg')].find((p) => existsSync(p));
const TMP = mkdtempSync(join(tmpdir(), 'polaimg-ref-'));
after(() => rmSync(TMP, { recursive: true, force: true }));

const counts = { presignUrl: 0, presignSigner: 0, headerUrl: 0, headerAuth: 0, knownAnswer: 0 };
after(() => {
	const total = Object.values(counts).reduce((a, b) => a + b, 0);
	console.log(`# reference comparisons: ${counts.presignUrl} presigned URLs with ` +
		`getSignedUrl, ${counts.presignSigner} with SignatureV4.presign, ` +
		`${counts.headerUrl} request URLs and ${counts.headerAuth} Authorization ` +
		`headers with the S3 client and SignatureV4.sign, ${counts.knownAnswer} ` +
		`AWS known answers; ${total} in all`);
});

const CREDS = [
	{ accessKeyId: 'AKIAIOSFODNN7EXAMPLE', secretAccessKey: 'wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY' },
	{ accessKeyId: 'AKIA2POLAIMGTEST0001', secretAccessKey: 'x+/y=z0123456789abcdefABCDEF/+/+0123456789' },
];

// storage settings → the SDK client options that address the bucket the
// same way (polaimg picks path style for IPs, localhost and dotted buckets;
// the SDK would use <bucket>.localhost, hence forcePathStyle there).
const TARGETS = [
	{ name: 'AWS, virtual host', region: 'eu-west-1', bucket: 'examplebucket', endpoint: '', sdk: {} },
	{ name: 'regional endpoint, virtual host', region: 'eu-west-1', bucket: 'polaimg-images',
		endpoint: 'https://s3.eu-west-1.amazonaws.com', sdk: {} },
	{ name: 'IP endpoint, path style', region: 'us-east-1', bucket: 'polaimg',
		endpoint: 'http://127.0.0.1:9000', sdk: { forcePathStyle: true } },
	{ name: 'localhost, forced path style', region: 'eu-central-1', bucket: 'images',
		endpoint: 'http://localhost:9000', forcePath: true, sdk: { forcePathStyle: true } },
	{ name: 'dotted bucket, path style', region: 'us-west-2', bucket: 'images.clinic.example',
		endpoint: '', sdk: {} },
	{ name: 'custom host and port, virtual host', region: 'ca-central-1', bucket: 'eyes',
		endpoint: 'https://minio.clinic.example:9443', sdk: {} },
	{ name: 'custom host, base path, forced path style', region: 'ap-south-1', bucket: 'eyes',
		endpoint: 'https://gw.clinic.example/storage/s3', forcePath: true, sdk: { forcePathStyle: true } },
];

const KEYS = [
	'cases/0b7c5e52-54a4-4bd1-9d0c-2b0d3d9e8a11/6f1f1a7e-5f0b-4a4e-8f1c-6a1f0c2d3e4f/original',
	'photo.jpg',
	'a b/c d.jpg',
	'plus+sign/x+y=z.png',
	'tilde~/~x~.tif',
	'percent%20/100%.jpg',
	'unicode/é ü ß 日本 😀.jpg',
	"sub-delims/!'()*$&,;=@:[].webp",
	'deep/a/b/c/d/e/f/g.jpeg',
	'double//slash/and trailing/',
	'control-ish/tab\there',
];

const DATES = ['20240501T120000Z', '20130524T000000Z', '20991231T235959Z'];
const EXPIRES = [1, 300, 604800];

function amzToDate(s) {
	return new Date(`${s.slice(0, 4)}-${s.slice(4, 6)}-${s.slice(6, 8)}T${s.slice(9, 11)}:${s.slice(11, 13)}:${s.slice(13, 15)}Z`);
}

function confFor(t, cred) {
	const file = join(TMP, `${createHash('sha1').update(JSON.stringify([t, cred])).digest('hex')}.conf`);
	writeFileSync(file, [
		'database_url = host=/nonexistent dbname=unused',
		'jwt_secret = reference-test-jwt-secret-0123456789abcdef',
		'url_signing_key = reference-test-url-signing-key-0123456789',
		'storage_provider = s3',
		`storage_bucket = ${t.bucket}`,
		`storage_region = ${t.region}`,
		`storage_endpoint = ${t.endpoint}`,
		`storage_access_key_id = ${cred.accessKeyId}`,
		`storage_secret_access_key = ${cred.secretAccessKey}`,
		`storage_force_path_style = ${t.forcePath ? 'true' : 'false'}`,
		'',
	].join('\n'));
	return file;
}

function polaimgPresign(conf, args) {
	return execFileSync(BIN, ['-c', conf, 'presign', ...args], {
		env: { PATH: process.env.PATH },       // no POLAIMG_* overrides
		encoding: 'utf8',
	});
}

function clientFor(t, cred) {
	const c = new S3Client({
		region: t.region,
		credentials: cred,
		endpoint: t.endpoint || undefined,
		requestChecksumCalculation: 'WHEN_REQUIRED',
		responseChecksumValidation: 'WHEN_REQUIRED',
		...t.sdk,
	});
	c.middlewareStack.add((next) => async (args) => {
		delete args.request.query['x-id'];
		return next(args);
	}, { step: 'build', name: 'polaimgDropXId' });
	return c;
}

// The SDK's URL with its query in polaimg's (AWS's documented) order:
// the canonical order, then X-Amz-Signature.
function reorder(url) {
	const q = url.indexOf('?');
	const params = url.slice(q + 1).split('&');
	const sig = params.filter((p) => p.startsWith('X-Amz-Signature='));
	const rest = params.filter((p) => !p.startsWith('X-Amz-Signature='))
		.sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
	return `${url.slice(0, q)}?${[...rest, ...sig].join('&')}`;
}

function signerFor(t, cred) {
	return new SignatureV4({ credentials: cred, region: t.region, service: 's3', sha256: Sha256,
		uriEscapePath: false, applyChecksum: false });
}

// Splits a URL into an HttpRequest without decoding the path.
function requestOf(method, url, headers, skipQuery) {
	const m = /^(https?):\/\/([^/:]+)(?::(\d+))?(\/[^?]*)(?:\?(.*))?$/.exec(url);
	assert.ok(m, `unparsable URL ${url}`);
	const query = {};
	for (const p of (m[5] || '').split('&').filter(Boolean)) {
		const eq = p.indexOf('=');
		const k = decodeURIComponent(eq < 0 ? p : p.slice(0, eq));
		if (skipQuery && skipQuery(k))
			continue;
		query[k] = eq < 0 ? '' : decodeURIComponent(p.slice(eq + 1));
	}
	return new HttpRequest({
		method, protocol: `${m[1]}:`, hostname: m[2], port: m[3] ? Number(m[3]) : undefined,
		path: m[4], query, headers: { host: m[2] + (m[3] ? `:${m[3]}` : ''), ...headers },
	});
}

test('polaimg binary is there', () => {
	assert.ok(BIN && existsSync(BIN), 'set POLAIMG_BIN to the polaimg binary');
});

for (const t of TARGETS) {
	test(`presigned URLs: ${t.name}`, async () => {
		for (const [ci, cred] of CREDS.entries()) {
			const conf = confFor(t, cred);
			const client = clientFor(t, cred);
			const signer = signerFor(t, cred);
			for (const [ki, key] of KEYS.entries()) {
				// every key with each method; dates and expiries rotate
				const date = DATES[(ki + ci) % DATES.length];
				const expires = EXPIRES[(ki + 2 * ci) % EXPIRES.length];
				for (const method of ['GET', 'PUT']) {
					const ctype = method === 'PUT' ? (ki % 2 ? 'image/png' : 'image/jpeg') : null;
					const args = ['--method', method, '--key', key, '--expires', String(expires), '--date', date];
					if (ctype)
						args.push('--content-type', ctype);
					const ours = polaimgPresign(conf, args).replace(/\n$/, '');
					const Cmd = method === 'GET' ? GetObjectCommand : PutObjectCommand;
					const input = { Bucket: t.bucket, Key: key, ...(ctype ? { ContentType: ctype } : {}) };
					const sdkUrl = await getSignedUrl(client, new Cmd(input), {
						signingDate: amzToDate(date),
						expiresIn: expires,
						unhoistableHeaders: new Set(['x-amz-content-sha256']),
						unsignableHeaders: new Set(['x-amz-content-sha256']),
						...(ctype ? { signableHeaders: new Set(['content-type']) } : {}),
					});
					const what = `${method} ${JSON.stringify(key)} ${date} ${expires}s (${t.name})`;
					assert.equal(ours.split('?')[0], sdkUrl.split('?')[0], `origin and path: ${what}`);
					assert.deepEqual(ours.split('?')[1].split('&').sort(),
						sdkUrl.split('?')[1].split('&').sort(), `query parameters: ${what}`);
					assert.equal(ours, reorder(sdkUrl), `whole URL: ${what}`);
					counts.presignUrl++;

					const req = requestOf(method, ours, {
						...(ctype ? { 'content-type': ctype } : {}),
						'x-amz-content-sha256': 'UNSIGNED-PAYLOAD',
					}, (k) => k.startsWith('X-Amz-'));
					const p = await signer.presign(req, {
						signingDate: amzToDate(date), expiresIn: expires,
						unsignableHeaders: new Set(['x-amz-content-sha256']),
						unhoistableHeaders: new Set(['x-amz-content-sha256']),
					});
					assert.equal(new URL(ours).searchParams.get('X-Amz-Signature'),
						p.query['X-Amz-Signature'], `SignatureV4.presign: ${what}`);
					counts.presignSigner++;
				}
			}
		}
	});
}

// ---- header-signed requests --------------------------------------------------

const SIGN_BIN = join(TMP, 'sign_request');

test('build the sign_request driver', () => {
	const cc = process.env.CC || 'cc';
	const crypto = (() => {
		try {
			return execFileSync('pkg-config', ['--cflags', '--libs', 'libcrypto'], { encoding: 'utf8' })
				.trim().split(/\s+/).filter(Boolean);
		} catch {
			return ['-lcrypto'];
		}
	})();
	execFileSync(cc, ['-std=gnu11', '-D_GNU_SOURCE', '-Wall', '-Werror', `-I${join(REPO, 'src')}`,
		join(HERE, 'sign_request.c'), join(REPO, 'src/sigv4.c'), join(REPO, 'src/common.c'), ...crypto, '-o', SIGN_BIN],
	{ stdio: 'inherit' });
	assert.ok(existsSync(SIGN_BIN));
});

function signRequest(t, cred, pathStyle, method, key, query, date, payload, headers) {
	const out = execFileSync(SIGN_BIN, [t.endpoint, t.bucket, pathStyle ? '1' : '0', t.region,
		method, key, query, date, payload, ...Object.entries(headers).map(([k, v]) => `${k}:${v}`)], {
		env: { SIGV4_ACCESS_KEY_ID: cred.accessKeyId, SIGV4_SECRET_ACCESS_KEY: cred.secretAccessKey },
		encoding: 'utf8',
	}).split('\n');
	return { url: out[0], authorization: out[1].replace(/^Authorization: /, ''),
		amzDate: out[2].replace(/^x-amz-date: /, ''), host: out[4].replace(/^Host: /, '') };
}

// The request the S3 client would send for cmd, taken just before signing.
async function sdkRequest(client, cmd) {
	let captured;
	const stack = client.middlewareStack.clone();
	stack.add(() => async (args) => {
		captured = args.request;
		throw Object.assign(new Error('captured'), { polaimgCaptured: true });
	}, { step: 'finalizeRequest', priority: 'high', name: 'polaimgCapture' });
	const handler = cmd.resolveMiddleware(stack, client.config, {});
	try {
		await handler({ input: cmd.input });
	} catch (e) {
		if (!e.polaimgCaptured)
			throw e;
	}
	return captured;
}

function urlOf(r) {
	const qs = Object.entries(r.query || {}).map(([k, v]) =>
		`${encodeURIComponent(k)}${v === null ? '' : `=${encodeURIComponent(v)}`}`);
	return `${r.protocol}//${r.hostname}${r.port ? `:${r.port}` : ''}${r.path}${qs.length ? `?${qs.join('&')}` : ''}`;
}

const EMPTY = createHash('sha256').update('').digest('hex');

for (const t of TARGETS) {
	test(`header-signed requests: ${t.name}`, async () => {
		const pathStyle = t.sdk.forcePathStyle || t.forcePath || /127\.0\.0\.1|localhost/.test(t.endpoint) ||
			t.bucket.includes('.');
		for (const [ci, cred] of CREDS.entries()) {
			const client = clientFor(t, cred);
			const signer = signerFor(t, cred);
			for (const [ki, key] of KEYS.entries()) {
				const date = DATES[(ki + ci) % DATES.length];
				const body = `body of ${key}`;
				const sha = createHash('sha256').update(body).digest('hex');
				const ops = [
					{ method: 'HEAD', cmd: new HeadObjectCommand({ Bucket: t.bucket, Key: key }), headers: {}, payload: EMPTY },
					{ method: 'GET', cmd: new GetObjectCommand({ Bucket: t.bucket, Key: key, Range: 'bytes=100-199' }),
						headers: { range: 'bytes=100-199' }, payload: EMPTY },
					{ method: 'PUT', cmd: new PutObjectCommand({ Bucket: t.bucket, Key: key, Body: body,
						ContentType: 'image/jpeg', IfNoneMatch: '*' }),
					headers: { 'content-type': 'image/jpeg', 'if-none-match': '*' }, payload: sha },
					{ method: 'DELETE', cmd: new DeleteObjectCommand({ Bucket: t.bucket, Key: key }), headers: {}, payload: EMPTY },
				];
				if (ki < 4) {
					const prefix = key.split('/')[0] + '/';
					ops.push({ method: 'GET', bucket: true, cmd: new ListObjectsV2Command({ Bucket: t.bucket, Prefix: prefix }),
						query: `list-type=2&prefix=${encodeURIComponent(prefix)}`, headers: {}, payload: EMPTY });
					ops.push({ method: 'GET', bucket: true,
						cmd: new ListObjectsV2Command({ Bucket: t.bucket, Prefix: prefix, ContinuationToken: '1ueGcxLPRx1Tr/XYExHnhbYLgveDs2J/wm36Hy4vbOwM=' }),
						query: `list-type=2&prefix=${encodeURIComponent(prefix)}&continuation-token=${encodeURIComponent('1ueGcxLPRx1Tr/XYExHnhbYLgveDs2J/wm36Hy4vbOwM=')}`,
						headers: {}, payload: EMPTY });
				}
				if (ki === 0)
					ops.push({ method: 'HEAD', bucket: true, cmd: new HeadBucketCommand({ Bucket: t.bucket }), headers: {}, payload: EMPTY });
				for (const op of ops) {
					const what = `${op.method} ${op.bucket ? '(bucket)' : JSON.stringify(key)} ${op.query || ''} (${t.name})`;
					const ours = signRequest(t, cred, pathStyle, op.method, op.bucket ? '' : key, op.query || '',
						date, op.payload, op.headers);
					const sdk = await sdkRequest(client, op.cmd);
					assert.equal(sdk.method, op.method, what);
					// The SDK writes ListObjectsV2's bucket path with a trailing '/'
					// in path style ("/bucket/"); S3 treats both alike, polaimg
					// sends "/bucket". Everything else must be identical.
					const sdkUrl = urlOf(sdk).replace(`/${t.bucket}/?`, `/${t.bucket}?`).replace(new RegExp(`/${t.bucket}/$`), `/${t.bucket}`);
					const norm = (u) => {
						const [base, q] = u.split('?');
						return q ? `${base}?${q.split('&').sort().join('&')}` : base;
					};
					assert.equal(norm(ours.url), norm(sdkUrl), `URL: ${what}`);
					counts.headerUrl++;

					const req = requestOf(op.method, ours.url, { ...op.headers, 'x-amz-content-sha256': op.payload });
					const signed = await signer.sign(req, { signingDate: amzToDate(date) });
					assert.equal(ours.amzDate, date, what);
					assert.equal(ours.authorization, signed.headers.authorization, `Authorization: ${what}`);
					counts.headerAuth++;
				}
			}
		}
	});
}

test('AWS documentation example: presigned GET of examplebucket/test.txt', () => {
	const conf = confFor({ bucket: 'examplebucket', region: 'us-east-1', endpoint: 'https://s3.amazonaws.com' },
		CREDS[0]);
	const url = polaimgPresign(conf, ['--method', 'GET', '--key', 'test.txt', '--expires', '86400',
		'--date', '20130524T000000Z']).trim();
	assert.equal(url, 'https://examplebucket.s3.amazonaws.com/test.txt?X-Amz-Algorithm=AWS4-HMAC-SHA256' +
		'&X-Amz-Credential=AKIAIOSFODNN7EXAMPLE%2F20130524%2Fus-east-1%2Fs3%2Faws4_request' +
		'&X-Amz-Date=20130524T000000Z&X-Amz-Expires=86400&X-Amz-SignedHeaders=host' +
		'&X-Amz-Signature=aeeed9bbccd4d02ee5c0109b86d86835f995330da4c265957d157751f604d404');
	counts.knownAnswer++;
});

test('presign refuses what it cannot sign', () => {
	const conf = confFor(TARGETS[0], CREDS[0]);
	const run = (args) => {
		try {
			execFileSync(BIN, ['-c', conf, 'presign', ...args], { env: { PATH: process.env.PATH }, stdio: 'pipe' });
			return 0;
		} catch (e) {
			return e.status;
		}
	};
	assert.equal(run(['--method', 'GET']), 2, 'no key');
	assert.equal(run(['--method', 'POST', '--key', 'k']), 2, 'method');
	assert.equal(run(['--method', 'GET', '--key', 'k', '--content-type', 'image/png']), 2, 'content type on GET');
	assert.equal(run(['--method', 'GET', '--key', 'k', '--expires', '604801']), 2, 'expiry too long');
	assert.equal(run(['--method', 'GET', '--key', 'k', '--expires', '10x']), 2, 'expiry not a number');
	assert.equal(run(['--method', 'GET', '--key', 'k', '--date', '2024-05-01T12:00:00Z']), 2, 'date format');
	assert.equal(run(['--method', 'GET', '--key', 'a/../b']), 1, 'dot-dot segment');
	assert.equal(run(['--method', 'GET', '--key', 'k']), 0, 'plain GET, now');
});
