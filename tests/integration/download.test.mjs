// GET /api/v1/images/:id/download-url and the signed URL it hands out:
// shape, bytes without a bearer token, every tampering, expiry.
//
// The URL is the back end's (docs/api.md, download-url): local — polaimg's own
// /file?variant&expires&sig, refused with 403 FORBIDDEN; s3 — a SigV4
// presigned GET of the object on the store, refused by S3 with 403 and an
// XML error; supabase — a signed URL (JWT scoped "download") on the store,
// refused with HTTP 400 and the reason in the JSON. Every URL is fetched
// with curl, as a client outside the browser would.
import { test } from 'node:test';
import {
	BASE_URL, REMOTE, RFC3339_UTC_RE, STORAGE, api, assert, assertError, assertStoreRefused, assertStoreUrl, curl,
	dims, downloadUrlVariant, jwtClaims, makeImage, seedWorld, sha256, sleep, uploadOk,
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
const fetchAnon = (url) => curl('GET', url);

// A signed URL that must not serve: local → polaimg's 403 FORBIDDEN;
// remote → the store's refusal.
function assertUrlRefused(r, store, what) {
	if (REMOTE) assertStoreRefused(r, store, what);
	else assertError(r, 403, 'FORBIDDEN');
}

test('download-url: 200 {data: {downloadUrl, expiresIn: 3600, expiresAt}} pointing at /file or the store', async () => {
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
	assert.equal(downloadUrlVariant(d.downloadUrl), 'original', 'the default variant of download-url');
	if (REMOTE) {
		assert.equal(assertStoreUrl(d.downloadUrl, `cases/${w.case}/${img.id}/original`, 'GET'), 3600);
		return;
	}
	const u = new URL(d.downloadUrl);
	assert.equal(`${u.protocol}//${u.host}`, BASE_URL);
	assert.equal(u.pathname, `/api/v1/images/${img.id}/file`);
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
	assert.equal(downloadUrlVariant(d.downloadUrl), 'original');
	if (REMOTE) assert.equal(assertStoreUrl(d.downloadUrl, `cases/${w.case}/${img.id}/original`, 'GET'), 120);
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
	assert.equal(downloadUrlVariant(t1.downloadUrl), 'thumbnail');
	const tb = await fetchAnon(t1.downloadUrl);
	assert.equal(tb.status, 200);
	const td = dims(tb.buf);
	assert.ok(td.width <= 400 && td.height <= 400 && Math.max(td.width, td.height) === 400, JSON.stringify(td));
	const t2 = await dlOk(w.tDoctor, img.id, '?variant=thumbnail');
	assert.equal(downloadUrlVariant(t2.downloadUrl), 'thumbnail');
	assert.ok((await fetchAnon(t2.downloadUrl)).buf.equals(tb.buf));
	const dd = await dlOk(w.tDoctor, img.id, '?variant=display');
	assert.equal(downloadUrlVariant(dd.downloadUrl), 'display');
	const db = await fetchAnon(dd.downloadUrl);
	assert.equal(db.status, 200);
	const proxied = await api('GET', `/api/v1/images/${img.id}/proxy?variant=display`, { token: w.tDoctor });
	assert.ok(db.buf.equals(proxied.buf), 'display via signed URL equals display via proxy');
});

// Each part of the URL that its signature covers, changed. Local: id,
// variant, expires, sig. S3: the key (another image, another variant) and
// the X-Amz-Expires, X-Amz-Date and X-Amz-Signature parameters. Supabase:
// the path (another image, another variant) against the token's url claim,
// and the token itself (its exp claim rewritten, its signature changed).
test('signed URL: tampered image, variant, expiry or signature → refused, no bytes', async () => {
	const w = seedWorld();
	const jpg = makeImage(64, 48, 'jpg');
	const a = await uploadOk(w.tDoctor, w.case, jpg);
	const b = await uploadOk(w.tDoctor, w.case, jpg);
	const d = await dlOk(w.tDoctor, a.id, '?variant=original');
	assert.equal((await fetchAnon(d.downloadUrl)).status, 200);
	const u = () => new URL(d.downloadUrl);
	const flip = (s, i) => s.slice(0, i) + (s[i] === '0' ? '1' : '0') + s.slice(i + 1);
	const flipB64 = (s, i) => s.slice(0, i) + (s[i] === 'A' ? 'B' : 'A') + s.slice(i + 1);
	const variants = [];
	let x = u(); x.pathname = x.pathname.replace(a.id, b.id); variants.push(['other id', x]);
	let missing;   // URLs with a part left out: 400 or 403 (a validation error or a refusal)
	if (STORAGE === 'local') {
		x = u(); x.searchParams.set('variant', 'display'); variants.push(['variant', x]);
		x = u(); x.searchParams.set('variant', 'thumbnail'); variants.push(['variant thumbnail', x]);
		x = u(); x.searchParams.set('expires', String(Number(x.searchParams.get('expires')) + 1)); variants.push(['expires+1', x]);
		x = u(); x.searchParams.set('expires', String(Number(x.searchParams.get('expires')) + 86400 * 365)); variants.push(['expires+1y', x]);
		const sig = u().searchParams.get('sig');
		x = u(); x.searchParams.set('sig', flip(sig, 0)); variants.push(['sig first char', x]);
		x = u(); x.searchParams.set('sig', flip(sig, sig.length - 1)); variants.push(['sig last char', x]);
		x = u(); x.searchParams.set('sig', sig.slice(0, -2)); variants.push(['sig shortened', x]);
		missing = [(y) => y.searchParams.delete('sig'), (y) => y.searchParams.set('sig', ''),
			(y) => y.searchParams.delete('expires')];
	} else {
		x = u(); x.pathname = x.pathname.replace(/original$/, 'display.jpg'); variants.push(['variant display', x]);
		x = u(); x.pathname = x.pathname.replace(/original$/, 'thumb.jpg'); variants.push(['variant thumbnail', x]);
	}
	if (STORAGE === 's3') {
		const sig = u().searchParams.get('X-Amz-Signature');
		x = u(); x.searchParams.set('X-Amz-Expires', String(Number(x.searchParams.get('X-Amz-Expires')) + 1)); variants.push(['expires+1', x]);
		x = u(); x.searchParams.set('X-Amz-Expires', '604800'); variants.push(['expires 7 days', x]);
		x = u(); x.searchParams.set('X-Amz-Date', x.searchParams.get('X-Amz-Date').replace(/(\d)Z$/, (m, n) => `${(Number(n) + 1) % 10}Z`));
		variants.push(['date', x]);
		x = u(); x.searchParams.set('X-Amz-Signature', flip(sig, 0)); variants.push(['sig first char', x]);
		x = u(); x.searchParams.set('X-Amz-Signature', flip(sig, sig.length - 1)); variants.push(['sig last char', x]);
		x = u(); x.searchParams.set('X-Amz-Signature', sig.slice(0, -2)); variants.push(['sig shortened', x]);
		missing = [(y) => y.searchParams.delete('X-Amz-Signature'), (y) => y.searchParams.set('X-Amz-Signature', ''),
			(y) => y.searchParams.delete('X-Amz-Expires')];
	}
	if (STORAGE === 'supabase') {
		const t = u().searchParams.get('token');
		const [h, p, sg] = t.split('.');
		const claims = jwtClaims(t);
		const withExp = (exp) => `${h}.${Buffer.from(JSON.stringify({ ...claims, exp })).toString('base64url')}.${sg}`;
		x = u(); x.searchParams.set('token', withExp(claims.exp + 1)); variants.push(['exp+1', x]);
		x = u(); x.searchParams.set('token', withExp(claims.exp + 86400 * 365)); variants.push(['exp+1y', x]);
		x = u(); x.searchParams.set('token', `${h}.${p}.${flipB64(sg, 0)}`); variants.push(['sig first char', x]);
		x = u(); x.searchParams.set('token', `${h}.${p}.${flipB64(sg, sg.length - 2)}`); variants.push(['sig last char', x]);
		x = u(); x.searchParams.set('token', `${h}.${p}.${sg.slice(0, -2)}`); variants.push(['sig shortened', x]);
		missing = [(y) => y.searchParams.delete('token'), (y) => y.searchParams.set('token', '')];
	}
	for (const [what, url] of variants) {
		const r = await fetchAnon(url.toString());
		// S3: the key and every X-Amz-* parameter are signed; Supabase: a path
		// that is not the token's url claim is InvalidSignature, a token whose
		// signature does not verify InvalidJWT
		assertUrlRefused(r, { s3Codes: ['SignatureDoesNotMatch'], supaCodes: ['InvalidSignature', 'InvalidJWT'] }, what);
		assert.ok(!r.buf.equals(jpg), `${what}: no bytes`);
	}
	for (const mutate of missing) {
		x = u();
		mutate(x);
		const r = await fetchAnon(x.toString());
		assert.ok([400, 403].includes(r.status), `${x.search}: ${r.status}`);
		assert.ok(!r.buf.equals(jpg), `${x.search}: no bytes`);
		if (!REMOTE) assert.equal(r.json?.code, r.status === 400 ? 'VALIDATION_FAILED' : 'FORBIDDEN');
		else assert.ok(r.code, `the store names its reason: ${r.text.slice(0, 200)}`);
	}
});

// Expired: local 403 FORBIDDEN; S3 403 AccessDenied ("Request has
// expired"); Supabase InvalidJWT (jose's exp check) or ExpiredToken.
test('signed URL: expired (expiresIn 1, 2 s later) → refused', async () => {
	const w = seedWorld();
	const img = await uploadOk(w.tDoctor, w.case, makeImage(64, 48, 'jpg'));
	const d = await dlOk(w.tDoctor, img.id, '?expiresIn=1&variant=original');
	assert.equal(d.expiresIn, 1);
	if (REMOTE) assert.equal(assertStoreUrl(d.downloadUrl, `cases/${w.case}/${img.id}/original`, 'GET'), 1);
	assert.equal((await fetchAnon(d.downloadUrl)).status, 200, 'valid at first');
	await sleep(2100);
	assertUrlRefused(await fetchAnon(d.downloadUrl),
		{ s3Codes: ['AccessDenied'], supaCodes: ['InvalidJWT', 'ExpiredToken'] }, 'expired');
});

// An upload URL's credential must never read anything. Local: the upload
// token as the /file sig. S3: the upload URL's signature on the download
// URL, and the upload URL itself used with GET (the method is signed).
// Supabase: the upload token (scope "upload") on the download route, for
// its own key and for the ready image's.
test('signed URL: an upload URL\'s credential used to download → refused', async () => {
	const w = seedWorld();
	const img = await uploadOk(w.tDoctor, w.case, makeImage(64, 48, 'jpg'));
	const up = await api('POST', '/api/v1/images/upload-url', {
		token: w.tDoctor, body: { fileName: 'a.jpg', contentType: 'image/jpeg', caseId: w.case },
	});
	assert.equal(up.status, 200);
	const upUrl = up.json.data.uploadUrl;
	const d = await dlOk(w.tDoctor, img.id, '?variant=original');
	const tries = [];
	if (STORAGE === 'local') {
		const upTok = new URL(upUrl).searchParams.get('token');
		for (const id of [img.id, up.json.data.imageId]) {
			const x = new URL(d.downloadUrl);
			x.pathname = `/api/v1/images/${id}/file`;
			x.searchParams.set('sig', upTok);
			tries.push([`upload token as sig (${id})`, x.toString()]);
		}
	} else if (STORAGE === 's3') {
		const x = new URL(d.downloadUrl);
		x.searchParams.set('X-Amz-Signature', new URL(upUrl).searchParams.get('X-Amz-Signature'));
		tries.push(['upload signature on the download URL', x.toString()]);
		tries.push(['the upload URL with GET', upUrl]);
	} else {
		const upTok = new URL(upUrl).searchParams.get('token');
		for (const key of [up.json.data.key, `cases/${w.case}/${img.id}/original`]) {
			const x = new URL(d.downloadUrl);
			x.pathname = `/storage/v1/object/sign/${process.env.SUPA_BUCKET}/${key}`;
			x.searchParams.set('token', upTok);
			tries.push([`upload token on the download route (${key})`, x.toString()]);
		}
	}
	for (const [what, url] of tries)
		assertUrlRefused(await fetchAnon(url), { s3Codes: ['SignatureDoesNotMatch'], supaCodes: ['InvalidSignature'] }, what);
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
