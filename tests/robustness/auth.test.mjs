// Authentication attacks through the real service: unsigned tokens,
// algorithm confusion against an RS256 deployment (a second polaimg with
// jwt_algorithm = RS256 and a key made here), a forged role claim, a token
// of a deleted user, replayed signed download URLs, and a local upload
// token used for a download. Nothing may get through; nothing may crash.
import { after, before, describe, test } from 'node:test';
import { createHmac, createSign } from 'node:crypto';
import {
	TEST_TMP, api, assert, assert401, assertError, createUser, fs, lit, logSize, makeImage, path, seedWorld, sleep,
	sql, token, uploadOk, uuid, workerCrashes,
} from '../integration/lib.mjs';
import { rsaKeys, startInstance, stopAll } from './robust.mjs';

const b64url = (buf) => Buffer.from(buf).toString('base64').replace(/=+$/, '').replace(/\+/g, '-').replace(/\//g, '_');
const now = () => Math.floor(Date.now() / 1000);

function jwt(header, payload, signer) {
	const input = `${b64url(JSON.stringify(header))}.${b64url(JSON.stringify(payload))}`;
	return `${input}.${signer ? b64url(signer(input)) : ''}`;
}
const claims = (userId, extra = {}) => ({ userId, iat: now(), exp: now() + 600, ...extra });

let w;
let img;
let imgOther;
let logAt;

before(async () => {
	w = seedWorld();
	img = await uploadOk(w.tDoctor, w.case, makeImage(80, 60, 'jpg'));
	imgOther = await uploadOk(w.tDoctor, w.otherCase, makeImage(80, 60, 'png'));
	logAt = logSize();
});

after(async () => {
	await stopAll();
	assert.deepEqual(workerCrashes(logAt), [], 'no worker crashed');
});

describe('unsigned and mis-signed tokens (HS256 deployment)', () => {
	for (const alg of ['none', 'None', 'NONE', 'nOnE']) {
		test(`alg "${alg}", empty signature → 401 INVALID_TOKEN`, async () => {
			const t = jwt({ alg, typ: 'JWT' }, claims(w.admin));
			assert401(await api('GET', `/api/v1/images/${img.id}`, { token: t }), 'INVALID_TOKEN');
		});
	}

	test('alg none with a valid HS256 signature appended → 401', async () => {
		const t = jwt({ alg: 'none', typ: 'JWT' }, claims(w.admin),
			(input) => createHmac('sha256', process.env.JWT_SECRET).update(input).digest());
		assert401(await api('GET', `/api/v1/images/${img.id}`, { token: t }), 'INVALID_TOKEN');
	});

	test('a header that names no alg, or a non-string alg → 401', async () => {
		for (const header of [{ typ: 'JWT' }, { alg: null }, { alg: ['HS256'] }, { alg: 'HS256', crit: ['x'] }]) {
			const t = jwt(header, claims(w.admin),
				(input) => createHmac('sha256', process.env.JWT_SECRET).update(input).digest());
			const r = await api('GET', `/api/v1/images/${img.id}`, { token: t });
			assert.ok(r.status === 401 || (header.crit && r.status === 200), `${JSON.stringify(header)}: ${r.status}`);
		}
	});

	test('a forged role claim is ignored: a patient "admin" cannot read, list or delete another patient\'s images', async () => {
		const t = token(w.patient, { role: 'admin' });
		assertError(await api('GET', `/api/v1/images/${imgOther.id}`, { token: t }), 403, 'FORBIDDEN');
		assertError(await api('GET', `/api/v1/images/cases/${w.otherCase}`, { token: t }), 403, 'FORBIDDEN');
		assertError(await api('GET', `/api/v1/images/${imgOther.id}/proxy`, { token: t }), 403, 'FORBIDDEN');
		assertError(await api('DELETE', `/api/v1/images/${img.id}`, { token: t }), 403, 'FORBIDDEN');
		assert.equal((await api('GET', `/api/v1/images/${img.id}`, { token: w.tDoctor })).status, 200);
	});

	test('a token of a user deleted from users → 401 INVALID_TOKEN once the change is delivered', async () => {
		const d = createUser('doctor');
		const t = token(d);
		assert.equal((await api('GET', `/api/v1/images/${img.id}`, { token: t })).status, 200);
		sql(`DELETE FROM users WHERE id = ${lit(d)}`);
		// A request that starts within milliseconds of the commit may still
		// meet the old row (docs/design.md, "Copies of rows": the bound is
		// PostgreSQL's delivery of the notification); one second later no
		// worker may.
		await new Promise((r) => setTimeout(r, 1000));
		for (let i = 0; i < 3; i++) // every worker
			assert401(await api('GET', `/api/v1/images/${img.id}`, { token: t }), 'INVALID_TOKEN');
	});

	test('a token for a user id that never existed → 401', async () => {
		assert401(await api('GET', `/api/v1/images/${img.id}`, { token: token(uuid()) }), 'INVALID_TOKEN');
	});
});

describe('algorithm confusion against an RS256 deployment', () => {
	let inst;
	let keys;
	let pubPath;
	let imgR;
	let wr;

	const rs256 = (payload, key = keys.privateKey) => jwt({ alg: 'RS256', typ: 'JWT' }, payload,
		(input) => createSign('RSA-SHA256').update(input).sign(key));
	const get = (t) => api('GET', `${inst.base}/api/v1/images/${imgR.id}`, { token: t });

	before(async () => {
		keys = rsaKeys();
		pubPath = path.join(TEST_TMP, `rs256-${process.pid}.pem`);
		fs.writeFileSync(pubPath, keys.publicKey);
		inst = await startInstance({ conf: { jwt_algorithm: 'RS256', jwt_public_key_file: pubPath, jwt_secret: null, workers: 1 } });
		wr = inst.seedWorld();
		const u = await inst.upload(rs256(claims(wr.doctor)), wr.case, makeImage(80, 60, 'jpg'));
		assert.equal(u.status, 201, u.text);
		imgR = u.json.data;
	});

	test('a genuine RS256 token works (the instance is real)', async () => {
		const r = await get(rs256(claims(wr.doctor)));
		assert.equal(r.status, 200, r.text);
	});

	test('HS256 signed with the RS256 public key (PEM as the HMAC secret) → 401', async () => {
		for (const secret of [keys.publicKey, keys.publicKey.trim(), fs.readFileSync(pubPath)]) {
			const t = jwt({ alg: 'HS256', typ: 'JWT' }, claims(wr.admin),
				(input) => createHmac('sha256', secret).update(input).digest());
			assert401(await get(t), 'INVALID_TOKEN');
		}
	});

	test('HS256 signed with the harness\'s HS secret → 401 (only RS256 is accepted)', async () => {
		assert401(await get(token(wr.admin)), 'INVALID_TOKEN');
	});

	test('alg none → 401; RS256 signed by another key → 401; RS512 → 401', async () => {
		assert401(await get(jwt({ alg: 'none' }, claims(wr.admin))), 'INVALID_TOKEN');
		assert401(await get(rs256(claims(wr.admin), rsaKeys().privateKey)), 'INVALID_TOKEN');
		const rs512 = jwt({ alg: 'RS512', typ: 'JWT' }, claims(wr.admin),
			(input) => createSign('RSA-SHA512').update(input).sign(keys.privateKey));
		assert401(await get(rs512), 'INVALID_TOKEN');
	});

	test('an RS256 token with a tampered payload → 401', async () => {
		const t = rs256(claims(wr.patient)).split('.');
		t[1] = b64url(JSON.stringify(claims(wr.admin)));
		assert401(await get(t.join('.')), 'INVALID_TOKEN');
	});
});

describe('signed URLs replayed', () => {
	let url;

	before(async () => {
		const d = await api('GET', `/api/v1/images/${img.id}/download-url?variant=display&expiresIn=2`, { token: w.tPatient });
		assert.equal(d.status, 200, d.text);
		url = new URL(d.json.data.downloadUrl);
		assert.equal((await api('GET', url.toString())).status, 200, 'the genuine URL works');
	});

	test('the same signature for another image → 403', async () => {
		const x = new URL(url);
		x.pathname = `/api/v1/images/${imgOther.id}/file`;
		assertError(await api('GET', x.toString()), 403, 'FORBIDDEN');
	});

	test('the same signature for another variant → 403', async () => {
		for (const v of ['original', 'thumbnail']) {
			const x = new URL(url);
			x.searchParams.set('variant', v);
			assertError(await api('GET', x.toString()), 403, 'FORBIDDEN');
		}
	});

	test('a later expiry with the same signature → 403', async () => {
		const x = new URL(url);
		x.searchParams.set('expires', String(Number(x.searchParams.get('expires')) + 3600));
		assertError(await api('GET', x.toString()), 403, 'FORBIDDEN');
	});

	test('after its expiry → 403', async () => {
		await sleep(Math.max(0, Number(url.searchParams.get('expires')) * 1000 - Date.now()) + 1100);
		assertError(await api('GET', url.toString()), 403, 'FORBIDDEN');
	});

	test('a local upload token used to download → 403, whole or as sig', async () => {
		const u = await api('POST', '/api/v1/images/upload-url', {
			token: w.tDoctor, body: { fileName: 'a.jpg', contentType: 'image/jpeg', caseId: w.case },
		});
		assert.equal(u.status, 200, u.text);
		const up = new URL(u.json.data.uploadUrl);
		const tok = up.searchParams.get('token');
		// "<expires>.<issuer>.<sig>": the issuer is the uid of a download link.
		const parts = tok.split('.');
		const [exp, uid, sig] = [parts[0], parts[1], parts[parts.length - 1]];
		const id = u.json.data.imageId;
		// The pending image, then a ready one, with the token as sig or split into expires and sig.
		for (const target of [id, img.id]) {
			for (const q of [`variant=original&expires=${exp}&sig=${sig}`, `variant=original&expires=${exp}&sig=${tok}`,
				`variant=original&expires=${exp}&uid=${uid}&sig=${sig}`,
				`token=${tok}`, `variant=original&token=${tok}`]) {
				const r = await api('GET', `/api/v1/images/${target}/file?${q}`);
				assert.ok([400, 403].includes(r.status), `${q}: ${r.status}`);
				assert.ok(!r.headers.get('content-type')?.startsWith('image/'));
			}
			// GET on the upload URL itself serves nothing.
			const g = await api('GET', `/api/v1/images/${target}/upload?token=${tok}`);
			assert.ok([403, 404, 405].includes(g.status), `GET upload URL: ${g.status}`);
		}
		// And the upload token of one image does not upload into another.
		const u2 = await api('POST', '/api/v1/images/upload-url', {
			token: w.tDoctor, body: { fileName: 'b.jpg', contentType: 'image/jpeg', caseId: w.case },
		});
		const put = await api('PUT', `/api/v1/images/${u2.json.data.imageId}/upload?token=${tok}`, {
			body: makeImage(64, 48, 'jpg'), headers: { 'Content-Type': 'image/jpeg' },
		});
		assertError(put, 403, 'FORBIDDEN');
	});

	test('a download signature used as an upload token → 403', async () => {
		const u = await api('POST', '/api/v1/images/upload-url', {
			token: w.tDoctor, body: { fileName: 'c.jpg', contentType: 'image/jpeg', caseId: w.case },
		});
		const id = u.json.data.imageId;
		const d = new URL(url);
		for (const forged of [`${d.searchParams.get('expires')}.${d.searchParams.get('sig')}`,
			`${d.searchParams.get('expires')}.${d.searchParams.get('uid')}.${d.searchParams.get('sig')}`]) {
			const put = await api('PUT', `/api/v1/images/${id}/upload?token=${forged}`, {
				body: makeImage(64, 48, 'jpg'), headers: { 'Content-Type': 'image/jpeg' },
			});
			assertError(put, 403, 'FORBIDDEN');
		}
	});
});
