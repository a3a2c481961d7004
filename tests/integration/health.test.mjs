// GET /api/v1/images/health: no authentication, fixed JSON shape.
import { test } from 'node:test';
import { PACKAGE_VERSION, api, assert } from './lib.mjs';

test('health: 200 with status/database/storage ok and version, no auth needed', async () => {
	const r = await api('GET', '/api/v1/images/health');
	assert.equal(r.status, 200);
	assert.match(r.headers.get('content-type') || '', /^application\/json/);
	assert.deepEqual(r.json, { status: 'ok', database: 'ok', storage: 'ok', version: PACKAGE_VERSION });
	assert.ok(r.requestId && r.requestId.length > 0, 'X-Request-Id header');
});

test('health: each response has its own X-Request-Id', async () => {
	const a = await api('GET', '/api/v1/images/health');
	const b = await api('GET', '/api/v1/images/health');
	assert.ok(a.requestId && b.requestId);
	assert.notEqual(a.requestId, b.requestId);
});

test('health: a bearer token is not required and a bad one is ignored', async () => {
	const r = await api('GET', '/api/v1/images/health', { token: 'not.a.jwt' });
	assert.equal(r.status, 200);
	assert.equal(r.json.status, 'ok');
});
