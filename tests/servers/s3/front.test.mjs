// The verifying S3 front's own test: it must accept what the AWS SDK for
// JavaScript sends and refuse what S3 refuses, or the suites that run
// polaimg against it prove nothing.
//
//   node --test tests/servers/s3/front.test.mjs     (after npm ci --prefix tests)

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import http from 'node:http';
import { createHash, randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { createInterface } from 'node:readline';

import {
	S3Client, PutObjectCommand, GetObjectCommand, HeadObjectCommand,
	DeleteObjectCommand, ListObjectsV2Command,
} from '@aws-sdk/client-s3';
import { getSignedUrl } from '@aws-sdk/s3-request-presigner';
import { SignatureV4 } from '@smithy/signature-v4';
import { HttpRequest } from '@smithy/protocol-http';
import { Sha256 } from '@aws-crypto/sha256-js';

const HERE = dirname(fileURLToPath(import.meta.url));
const TMP = mkdtempSync(join(tmpdir(), 'polaimg-s3front-'));
const BUCKET = 'front-test';
const REGION = 'eu-central-1';
const CREDS = { accessKeyId: 'AKIAFRONTTEST0000001', secretAccessKey: 'front/test+secret0123456789abcdefghijkl' };
let child, endpoint, port, client;

before(async () => {
	child = spawn(process.execPath, ['--openssl-legacy-provider', join(HERE, 'front.mjs'),
		'--dir', join(TMP, 'data'), '--bucket', BUCKET, '--region', REGION], {
		env: { ...process.env, S3_ACCESS_KEY_ID: CREDS.accessKeyId, S3_SECRET_ACCESS_KEY: CREDS.secretAccessKey },
		stdio: ['ignore', 'pipe', 'inherit'],
	});
	const line = await new Promise((resolve, reject) => {
		createInterface({ input: child.stdout }).once('line', resolve);
		child.once('exit', (c) => reject(new Error(`front exited with ${c}`)));
	});
	port = JSON.parse(line).port;
	endpoint = `http://127.0.0.1:${port}`;
	client = new S3Client({ region: REGION, endpoint, forcePathStyle: true, credentials: CREDS });
});

after(() => {
	child?.kill('SIGTERM');
	rmSync(TMP, { recursive: true, force: true });
});

const fault = (f) => fetch(`${endpoint}/__fault`, { method: 'POST', body: JSON.stringify(f) });
const errCode = async (r) => (/<Code>([^<]*)<\/Code>/.exec(await r.text()) || [])[1];

// A header-signed request made with the SDK's signer, with a chosen
// payload hash (so the body can lie about it).
async function signedFetch(method, key, { body, payloadHash, headers = {}, creds = CREDS } = {}) {
	const signer = new SignatureV4({ credentials: creds, region: REGION, service: 's3', sha256: Sha256, uriEscapePath: false });
	const req = new HttpRequest({
		method, protocol: 'http:', hostname: '127.0.0.1', port, path: `/${BUCKET}/${key}`,
		headers: { host: `127.0.0.1:${port}`, 'x-amz-content-sha256': payloadHash ??
			createHash('sha256').update(body ?? '').digest('hex'), ...headers },
	});
	const s = await signer.sign(req);
	return fetch(`${endpoint}/${BUCKET}/${key}`, { method, headers: s.headers, body });
}

test('the SDK client works through the front: put, head, get, range, list, delete', async () => {
	const body = randomBytes(5000);
	await client.send(new PutObjectCommand({ Bucket: BUCKET, Key: 'a/one.jpg', Body: body, ContentType: 'image/jpeg' }));
	const h = await client.send(new HeadObjectCommand({ Bucket: BUCKET, Key: 'a/one.jpg' }));
	assert.equal(h.ContentLength, 5000);
	const g = await client.send(new GetObjectCommand({ Bucket: BUCKET, Key: 'a/one.jpg', Range: 'bytes=10-19' }));
	assert.deepEqual(Buffer.from(await g.Body.transformToByteArray()), body.subarray(10, 20));
	for (let i = 0; i < 5; i++)
		await client.send(new PutObjectCommand({ Bucket: BUCKET, Key: `list/k${i}`, Body: 'x' }));
	const keys = [];
	let token;
	do {
		const l = await client.send(new ListObjectsV2Command({ Bucket: BUCKET, Prefix: 'list/', MaxKeys: 2, ContinuationToken: token }));
		keys.push(...(l.Contents || []).map((c) => c.Key));
		token = l.IsTruncated ? l.NextContinuationToken : undefined;
	} while (token);
	assert.deepEqual(keys, ['list/k0', 'list/k1', 'list/k2', 'list/k3', 'list/k4']);
	await client.send(new DeleteObjectCommand({ Bucket: BUCKET, Key: 'a/one.jpg' }));
	await assert.rejects(client.send(new HeadObjectCommand({ Bucket: BUCKET, Key: 'a/one.jpg' })),
		(e) => e.$metadata.httpStatusCode === 404);
});

test('Range as S3 reads it: suffix, clamped end, unsatisfiable → 416, several → whole', async () => {
	const body = randomBytes(1000);
	await client.send(new PutObjectCommand({ Bucket: BUCKET, Key: 'r/obj', Body: body }));
	const get = async (range) => {
		const r = await signedFetch('GET', 'r/obj', { headers: { range } });
		return { status: r.status, cr: r.headers.get('content-range'), buf: Buffer.from(await r.arrayBuffer()) };
	};
	let r = await get('bytes=-50');
	assert.equal(r.status, 206);
	assert.equal(r.cr, 'bytes 950-999/1000');
	assert.deepEqual(r.buf, body.subarray(950));
	r = await get('bytes=990-2000');
	assert.equal(r.cr, 'bytes 990-999/1000');
	assert.deepEqual(r.buf, body.subarray(990));
	r = await get('bytes=1000-');
	assert.equal(r.status, 416);
	assert.equal(r.cr, 'bytes */1000');
	r = await get('bytes=0-1,5-6');
	assert.equal(r.status, 200);
	assert.equal(r.buf.length, 1000);
});

test('If-None-Match: * creates once, then 412', async () => {
	const r1 = await signedFetch('PUT', 'cond/x', { body: 'one', headers: { 'if-none-match': '*' } });
	assert.equal(r1.status, 200);
	const r2 = await signedFetch('PUT', 'cond/x', { body: 'two', headers: { 'if-none-match': '*' } });
	assert.equal(r2.status, 412);
	assert.equal(await errCode(r2), 'PreconditionFailed');
	const g = await client.send(new GetObjectCommand({ Bucket: BUCKET, Key: 'cond/x' }));
	assert.equal(await g.Body.transformToString(), 'one', 'the first object stays');
});

test('header signatures: wrong secret, unknown key, body hash, skew, anonymous', async () => {
	let r = await signedFetch('GET', 'cond/x', { creds: { ...CREDS, secretAccessKey: 'not-the-secret' } });
	assert.equal(r.status, 403);
	assert.equal(await errCode(r), 'SignatureDoesNotMatch');
	r = await signedFetch('GET', 'cond/x', { creds: { ...CREDS, accessKeyId: 'AKIAOTHER' } });
	assert.equal(await errCode(r), 'InvalidAccessKeyId');
	r = await signedFetch('PUT', 'hash/x', { body: 'real body', payloadHash: createHash('sha256').update('other').digest('hex') });
	assert.equal(r.status, 400);
	assert.equal(await errCode(r), 'XAmzContentSHA256Mismatch');
	r = await fetch(`${endpoint}/${BUCKET}/cond/x`);
	assert.equal(r.status, 403);
	assert.equal(await errCode(r), 'AccessDenied');
	// a header changed after signing
	const signer = new SignatureV4({ credentials: CREDS, region: REGION, service: 's3', sha256: Sha256, uriEscapePath: false });
	const s = await signer.sign(new HttpRequest({ method: 'GET', protocol: 'http:', hostname: '127.0.0.1', port,
		path: `/${BUCKET}/cond/x`, headers: { host: `127.0.0.1:${port}`, range: 'bytes=0-1',
			'x-amz-content-sha256': createHash('sha256').update('').digest('hex') } }));
	r = await fetch(`${endpoint}/${BUCKET}/cond/x`, { headers: { ...s.headers, range: 'bytes=0-2' } });
	assert.equal(r.status, 403, 'tampered Range');
	const old = await signer.sign(new HttpRequest({ method: 'GET', protocol: 'http:', hostname: '127.0.0.1', port,
		path: `/${BUCKET}/cond/x`, headers: { host: `127.0.0.1:${port}`,
			'x-amz-content-sha256': createHash('sha256').update('').digest('hex') } }),
	{ signingDate: new Date(Date.now() - 3600e3) });
	r = await fetch(`${endpoint}/${BUCKET}/cond/x`, { headers: old.headers });
	assert.equal(await errCode(r), 'RequestTimeTooSkewed');
});

test('presigned URLs: good, tampered, expired, wrong Content-Type', async () => {
	const get = await getSignedUrl(client, new GetObjectCommand({ Bucket: BUCKET, Key: 'cond/x' }), { expiresIn: 60 });
	let r = await fetch(get);
	assert.equal(r.status, 200);
	assert.equal(await r.text(), 'one');
	r = await fetch(get.replace('cond/x', 'cond/y'));
	assert.equal(r.status, 403);
	assert.equal(await errCode(r), 'SignatureDoesNotMatch');
	// fetch() cannot set Host; node:http can.
	const status = await new Promise((resolve, reject) => {
		const u = new URL(get);
		http.get({ host: '127.0.0.1', port, path: u.pathname + u.search, headers: { host: 'localhost' } },
			(res) => { res.resume(); resolve(res.statusCode); }).on('error', reject);
	});
	assert.equal(status, 403, 'another Host');
	const expired = await getSignedUrl(client, new GetObjectCommand({ Bucket: BUCKET, Key: 'cond/x' }),
		{ expiresIn: 60, signingDate: new Date(Date.now() - 120e3) });
	r = await fetch(expired);
	assert.equal(r.status, 403);
	assert.match(await r.text(), /Request has expired/);
	const put = await getSignedUrl(client, new PutObjectCommand({ Bucket: BUCKET, Key: 'up/x.png', ContentType: 'image/png' }),
		{ expiresIn: 60, signableHeaders: new Set(['content-type']) });
	r = await fetch(put, { method: 'PUT', body: 'png', headers: { 'content-type': 'image/jpeg' } });
	assert.equal(r.status, 403, 'other Content-Type');
	r = await fetch(put, { method: 'PUT', body: 'png', headers: { 'content-type': 'image/png' } });
	assert.equal(r.status, 200);
});

test('faults: error, down, count, methods; the request log', async () => {
	await fault({ mode: 'error', count: 1 });
	let r = await signedFetch('GET', 'cond/x');
	assert.equal(r.status, 503);
	r = await signedFetch('GET', 'cond/x');
	assert.equal(r.status, 200, 'count: 1 affects one request');
	await fault({ mode: 'down', methods: ['PUT'] });
	await assert.rejects(signedFetch('PUT', 'f/x', { body: 'x' }));
	r = await signedFetch('GET', 'cond/x');
	assert.equal(r.status, 200, 'GET unaffected');
	await fault({ mode: 'none' });
	r = await signedFetch('PUT', 'f/x', { body: 'x' });
	assert.equal(r.status, 200);
	const log = await (await fetch(`${endpoint}/__requests`)).json();
	const last = log[log.length - 1];
	assert.equal(last.method, 'PUT');
	assert.equal(last.auth, 'header');
	assert.equal(last.contentSha256, createHash('sha256').update('x').digest('hex'));
	r = await fault({ mode: 'bogus' });
	assert.equal(r.status, 400);
});
