// GET /api/v1/images/:id/download-url and the local signed /file URL it
// hands out: shape, bytes without a bearer token, every tampering, expiry.
import { test } from 'node:test';
import {
	BASE_URL, RFC3339_UTC_RE, api, assert, assertError, dims, makeImage, seedWorld, sha256, sleep, uploadOk,
} from './lib.mjs';

async function dl(tok, id, query = '') {
	return api('GET', `/api/v1/images/${id}/download-url${query}`, { token: tok });
}

async function dlOk(tok, id, query = '') {
	const r = await dl(tok, id, query);
	assert.equal(r.status, 200, `download-url: ${r.status} ${r.text}`);
	return r.json.data;
}

// GET with no Authorization header and no cookie.
const fetchAnon = (url) => api('GET', url);

test('download-url: 200 {data: {downloadUrl, expiresIn: 3600, expiresAt}} pointing at /file', async () => {
	const w = seedWorld();
	const img = await uploadOk(w.tDoctor, w.case, makeImage(64, 48, 'jpg'));
	const r = await dl(w.tPatient, img.id);
	assert.equal(r.status, 200, r.text);
	assert.deepEqual(Object.keys(r.json), ['data']);
	const d = r.json.data;
	assert.deepEqual(Object.keys(d).sort(), ['downloadUrl', 'expiresAt', 'expiresIn']);
	assert.equal(d.expiresIn, 3600);
	assert.match(d.expiresAt, RFC3339_UTC_RE);
	assert.ok(Math.abs(Date.parse(d.expiresAt) - (Date.now() + 3600000)) < 60000, d.expiresAt);
	const u = new URL(d.downloadUrl);
	assert.equal(`${u.protocol}//${u.host}`, BASE_URL);
	assert.equal(u.pathname, `/api/v1/images/${img.id}/file`);
	assert.ok(['original', 'display', 'thumbnail'].includes(u.searchParams.get('variant')));
	assert.match(u.searchParams.get('expires'), /^\d+$/);
	assert.ok(Math.abs(Number(u.searchParams.get('expires')) * 1000 - Date.parse(d.expiresAt)) < 2000);
	assert.ok(u.searchParams.get('sig'));
});

test('download-url: the variant=original URL gives the exact uploaded bytes without a bearer token', async () => {
	const w = seedWorld();
	const jpg = makeImage(150, 100, 'jpg');
	const img = await uploadOk(w.tDoctor, w.case, jpg);
	const d = await dlOk(w.tPatient, img.id, '?variant=original&expiresIn=120');
	assert.equal(d.expiresIn, 120);
	assert.equal(new URL(d.downloadUrl).searchParams.get('variant'), 'original');
	const f = await fetchAnon(d.downloadUrl);
	assert.equal(f.status, 200, f.text.slice(0, 200));
	assert.equal(sha256(f.buf), sha256(jpg));
	assert.equal(sha256(f.buf), img.sha256);
	assert.equal(f.headers.get('content-type'), 'image/jpeg');
	assert.equal(Number(f.headers.get('content-length')), jpg.length);
	// the link can be used more than once until it expires
	assert.equal((await fetchAnon(d.downloadUrl)).status, 200);
});

test('download-url: thumbnail=true and variant=display/thumbnail give those variants', async () => {
	const w = seedWorld();
	const img = await uploadOk(w.tDoctor, w.case, makeImage(800, 600, 'jpg'));
	const t1 = await dlOk(w.tDoctor, img.id, '?thumbnail=true');
	assert.equal(new URL(t1.downloadUrl).searchParams.get('variant'), 'thumbnail');
	const tb = await fetchAnon(t1.downloadUrl);
	assert.equal(tb.status, 200);
	const td = dims(tb.buf);
	assert.ok(td.width <= 400 && td.height <= 400 && Math.max(td.width, td.height) === 400, JSON.stringify(td));
	const t2 = await dlOk(w.tDoctor, img.id, '?variant=thumbnail');
	assert.ok((await fetchAnon(t2.downloadUrl)).buf.equals(tb.buf));
	const dd = await dlOk(w.tDoctor, img.id, '?variant=display');
	const db = await fetchAnon(dd.downloadUrl);
	assert.equal(db.status, 200);
	const proxied = await api('GET', `/api/v1/images/${img.id}/proxy?variant=display`, { token: w.tDoctor });
	assert.ok(db.buf.equals(proxied.buf), 'display via signed URL equals display via proxy');
});

test('signed URL: tampered id, variant, expires or sig → 403 FORBIDDEN', async () => {
	const w = seedWorld();
	const jpg = makeImage(64, 48, 'jpg');
	const a = await uploadOk(w.tDoctor, w.case, jpg);
	const b = await uploadOk(w.tDoctor, w.case, jpg);
	const d = await dlOk(w.tDoctor, a.id, '?variant=original');
	assert.equal((await fetchAnon(d.downloadUrl)).status, 200);
	const u = () => new URL(d.downloadUrl);
	const variants = [];
	let x = u(); x.pathname = x.pathname.replace(a.id, b.id); variants.push(['other id', x]);
	x = u(); x.searchParams.set('variant', 'display'); variants.push(['variant', x]);
	x = u(); x.searchParams.set('variant', 'thumbnail'); variants.push(['variant thumbnail', x]);
	x = u(); x.searchParams.set('expires', String(Number(x.searchParams.get('expires')) + 1)); variants.push(['expires+1', x]);
	x = u(); x.searchParams.set('expires', String(Number(x.searchParams.get('expires')) + 86400 * 365)); variants.push(['expires+1y', x]);
	const sig = u().searchParams.get('sig');
	const flip = (s, i) => s.slice(0, i) + (s[i] === '0' ? '1' : '0') + s.slice(i + 1);
	x = u(); x.searchParams.set('sig', flip(sig, 0)); variants.push(['sig first char', x]);
	x = u(); x.searchParams.set('sig', flip(sig, sig.length - 1)); variants.push(['sig last char', x]);
	x = u(); x.searchParams.set('sig', sig.slice(0, -2)); variants.push(['sig shortened', x]);
	for (const [what, url] of variants) {
		const r = await fetchAnon(url.toString());
		assertError(r, 403, 'FORBIDDEN');
		assert.ok(!r.buf.equals(jpg), `${what}: no bytes`);
	}
	for (const mutate of [(y) => y.searchParams.delete('sig'), (y) => y.searchParams.set('sig', ''),
		(y) => y.searchParams.delete('expires')]) {
		x = u();
		mutate(x);
		const r = await fetchAnon(x.toString());
		assert.ok([400, 403].includes(r.status), `${x.search}: ${r.status}`);
		assert.equal(r.json?.code, r.status === 400 ? 'VALIDATION_FAILED' : 'FORBIDDEN');
	}
});

test('signed URL: expired (expiresIn 1, 2 s later) → 403', async () => {
	const w = seedWorld();
	const img = await uploadOk(w.tDoctor, w.case, makeImage(64, 48, 'jpg'));
	const d = await dlOk(w.tDoctor, img.id, '?expiresIn=1&variant=original');
	assert.equal(d.expiresIn, 1);
	await sleep(2100);
	assertError(await fetchAnon(d.downloadUrl), 403, 'FORBIDDEN');
});

test('signed URL: an upload token used as sig → 403', async () => {
	const w = seedWorld();
	const img = await uploadOk(w.tDoctor, w.case, makeImage(64, 48, 'jpg'));
	const up = await api('POST', '/api/v1/images/upload-url', {
		token: w.tDoctor, body: { fileName: 'a.jpg', contentType: 'image/jpeg', caseId: w.case },
	});
	assert.equal(up.status, 200);
	const upTok = new URL(up.json.data.uploadUrl).searchParams.get('token');
	const d = await dlOk(w.tDoctor, img.id, '?variant=original');
	for (const id of [img.id, up.json.data.imageId]) {
		const x = new URL(d.downloadUrl);
		x.pathname = `/api/v1/images/${id}/file`;
		x.searchParams.set('sig', upTok);
		assertError(await fetchAnon(x.toString()), 403, 'FORBIDDEN');
	}
});

test('download-url: validation of expiresIn and variant → 400 with the field', async () => {
	const w = seedWorld();
	const img = await uploadOk(w.tDoctor, w.case, makeImage(64, 48, 'jpg'));
	for (const [q, field] of [
		['?expiresIn=0', 'expiresIn'], ['?expiresIn=86401', 'expiresIn'], ['?expiresIn=abc', 'expiresIn'],
		['?expiresIn=-5', 'expiresIn'], ['?expiresIn=1.5', 'expiresIn'], ['?variant=full', 'variant'],
		['?variant=', 'variant'],
	]) assertError(await dl(w.tDoctor, img.id, q), 400, 'VALIDATION_FAILED', field);
	const d = await dlOk(w.tDoctor, img.id, '?expiresIn=86400');
	assert.equal(d.expiresIn, 86400);
});
