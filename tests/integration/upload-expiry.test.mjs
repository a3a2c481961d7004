// upload-url's expiresIn is the lifetime of the URL it hands out. polaimg's
// own URLs (local) and S3's presigned ones live as long as asked (900 s by
// default). A Supabase Storage server asked to sign an upload URL (no
// supabase_jwt_secret) picks the lifetime itself — a self-hosted server's
// UPLOAD_SIGNED_URL_EXPIRATION_TIME, 60 s by default — so polaimg reads the
// token's exp and answers the shorter of the two. Run with
// `--storage supabase --supabase-sign api` for that case: the stand-in then
// signs upload URLs for 60 s.
import { test } from 'node:test';
import {
	REMOTE, STORAGE, api, assert, curl, imageRow, lit, makeImage, seedWorld, sqlValue,
} from './lib.mjs';

const serverSigns = STORAGE === 'supabase' && process.env.ITEST_SUPABASE_SIGN === 'api';

const tokenExp = (url) => {
	const t = new URL(url).searchParams.get('token');
	return JSON.parse(Buffer.from(t.split('.')[1], 'base64url').toString()).exp;
};

test(`upload-url: expiresIn is the URL's own lifetime (${serverSigns ? 'the store\'s 60 s' : 'as asked'})`, async () => {
	const w = seedWorld();
	const t0 = Date.now();
	const r = await api('POST', '/api/v1/images/upload-url', {
		token: w.tDoctor, body: { fileName: 'a.jpg', contentType: 'image/jpeg', caseId: w.case },
	});
	assert.equal(r.status, 200, r.text);
	const d = r.json.data;
	const at = Date.parse(d.expiresAt);
	if (serverSigns) {
		// Before: expiresIn 900 for a URL the store refuses after 60 s.
		assert.ok(d.expiresIn <= 60 && d.expiresIn >= 50, `expiresIn ${d.expiresIn}`);
		assert.ok(Math.abs(at / 1000 - tokenExp(d.uploadUrl)) <= 1, `expiresAt ${d.expiresAt} is the token's exp`);
	} else {
		assert.equal(d.expiresIn, 900);
	}
	assert.ok(Math.abs(at - (t0 + d.expiresIn * 1000)) < 10000, `expiresAt ${d.expiresAt} is expiresIn from now`);
	// The pending row expires with the URL (sweep removes it then).
	assert.equal(imageRow(d.imageId).status, 'pending');
	const rowExp = Number(sqlValue(`SELECT extract(epoch FROM upload_expires_at) FROM case_images WHERE id = ${lit(d.imageId)}`));
	assert.ok(Math.abs(rowExp * 1000 - at) < 1500, `row ${rowExp} vs ${d.expiresAt}`);
	// And the URL works while it lives.
	const jpg = makeImage(64, 48, 'jpg');
	const p = REMOTE ? curl(d.method, d.uploadUrl, { body: jpg, headers: d.headers })
		: await api(d.method, d.uploadUrl, { body: jpg, headers: d.headers });
	assert.ok(p.status === 200 || p.status === 201, `PUT ${p.status} ${p.text.slice(0, 200)}`);
});
