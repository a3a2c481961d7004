// DICOMweb under /api/v1/images/dicom-web/: the `polaimg token` verb for a
// service account, QIDO-RS searches (studies, series, instances; matching
// on PatientID, StudyDate, Modality, StudyInstanceUID; a patient sees only
// their own), WADO-RS retrievals (the original byte for byte in
// multipart/related, metadata as application/dicom+json, the rendered JPEG)
// and their audit rows. Files are made with DCMTK's img2dcm.
import { test } from 'node:test';
import { execFileSync, spawnSync } from 'node:child_process';
import { createVerify, generateKeyPairSync } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import {
	POLAIMG_BIN, POLAIMG_CONF, TEST_TMP, api, assert, serviceEnv, assertError, auditByRequest, auditRows, lit, makeImage, polaimgCli, seedWorld, sql, upload, uuid,
} from './lib.mjs';

const DIR = fs.mkdtempSync(path.join(TEST_TMP, 'dicomweb-'));
let seq = 0;
const tmp = (ext) => path.join(DIR, `f${++seq}.${ext}`);
const newUid = () => `2.25.${BigInt('0x' + uuid().replace(/-/g, '')).toString()}`;
const DW = '/api/v1/images/dicom-web';

// A small ophthalmic photograph (img2dcm) with the given UIDs and modality.
function opFile({ study, series, modality = 'OP', date = '20260304' }) {
	const jpg = tmp('jpg');
	fs.writeFileSync(jpg, makeImage(48, 32, 'jpg'));
	const out = tmp('dcm');
	const k = [`SOPInstanceUID=${newUid()}`, `StudyInstanceUID=${study}`, `SeriesInstanceUID=${series}`,
		`Modality=${modality}`, `AcquisitionDateTime=${date}120000+0000`, 'PatientID=HN-DW1']
		.flatMap((v) => ['-k', v]);
	execFileSync('img2dcm', ['-oph', '--no-checks', ...k, jpg, out], { stdio: 'ignore' });
	return fs.readFileSync(out);
}

async function store(tok, caseId, buf) {
	const r = await upload(tok, caseId, buf, { filename: 'scan.dcm', contentType: 'application/dicom' });
	assert.equal(r.status, 201, r.text);
	return r.json.data;
}

// The parts of a multipart/related answer: [{headers, body}].
function parts(r) {
	const ct = r.headers.get('content-type');
	assert.match(ct, /^multipart\/related; type="application\/dicom"; boundary=/);
	const boundary = ct.match(/boundary=([^;]+)/)[1];
	const out = [];
	const delim = Buffer.from(`--${boundary}`);
	let i = r.buf.indexOf(delim);
	for (;;) {
		const start = i + delim.length;
		if (r.buf.subarray(start, start + 2).toString() === '--') break;
		const hend = r.buf.indexOf('\r\n\r\n', start);
		const head = r.buf.subarray(start + 2, hend).toString();
		const len = Number(head.match(/Content-Length: (\d+)/i)[1]);
		out.push({ head, body: r.buf.subarray(hend + 4, hend + 4 + len) });
		i = hend + 4 + len + 2;
		assert.ok(r.buf.subarray(i, i + delim.length).equals(delim), 'a delimiter follows each part');
	}
	return out;
}

const val = (o, tag) => (o[tag] && o[tag].Value ? o[tag].Value : undefined);

// One study of two series (one image OP, one XC) in the patient's case, one
// study in the other patient's case; the case's hospital number HN-DW1.
const w = seedWorld();
const S1 = newUid(), SE1 = newUid(), SE2 = newUid(), S2 = newUid(), SE3 = newUid();
const files = {};
let ready;
async function world() {
	if (ready) return ready;
	ready = (async () => {
		sql('ALTER TABLE patient_cases ADD COLUMN IF NOT EXISTS hn text');
		sql(`UPDATE patient_cases SET hn = 'HN-DW1' WHERE id = ${lit(w.case)}`);
		files.a = opFile({ study: S1, series: SE1 });
		files.b = opFile({ study: S1, series: SE2, modality: 'XC' });
		files.c = opFile({ study: S2, series: SE3, date: '20250101' });
		files.imgA = await store(w.tDoctor, w.case, files.a);
		files.imgB = await store(w.tDoctor, w.case, files.b);
		sql(`UPDATE patient_cases SET hn = NULL WHERE id = ${lit(w.otherCase)}`);
		files.imgC = await store(w.tDoctor, w.otherCase, files.c);
	})();
	return ready;
}

test('dicomweb: polaimg token mints a working token for an active service account, audited; refused for an inactive one; deactivation revokes it', async () => {
	const svc = uuid();
	sql(`INSERT INTO users (id, role, is_active) VALUES (${lit(svc)}, 'doctor', true)`);
	const r = polaimgCli('token', '--user', svc, '--days', '30');
	assert.equal(r.status, 0, r.stderr);
	const tok = r.stdout.trim();
	assert.match(tok, /^[\w-]+\.[\w-]+\.[\w-]+$/);
	const claims = JSON.parse(Buffer.from(tok.split('.')[1], 'base64url').toString());
	assert.equal(claims.sub, svc);
	const days = (claims.exp - Math.floor(Date.now() / 1000)) / 86400;
	assert.ok(days > 29.9 && days <= 30, `exp in 30 days (${days})`);
	const ok = await api('GET', `${DW}/studies`, { token: tok });
	assert.equal(ok.status, 200, ok.text);
	const rows = auditRows(`action = 'token' AND variant = ${lit(svc)}`);
	assert.equal(rows.length, 1);
	assert.match(rows[0].user_id, /^cli:/);
	assert.equal(rows[0].role, 'doctor');
	assert.equal(rows[0].outcome, 'ok');

	const inactive = polaimgCli('token', '--user', w.inactive);
	assert.equal(inactive.status, 1);
	assert.equal(inactive.stdout, '');
	assert.match(inactive.stderr, /not active/);
	const unknown = polaimgCli('token', '--user', uuid());
	assert.equal(unknown.status, 1);
	assert.equal(unknown.stdout, '');
	assert.equal(polaimgCli('token', '--user', 'x').status, 2);
	assert.equal(polaimgCli('token', '--user', svc, '--days', '0').status, 2);
	assert.equal(auditRows(`action = 'token' AND variant = ${lit(w.inactive)}`).length, 0);

	sql(`UPDATE users SET is_active = false WHERE id = ${lit(svc)}`);
	let gone;
	for (let i = 0; i < 50; i++) { // auth_cache_ttl at most
		gone = await api('GET', `${DW}/studies`, { token: tok });
		if (gone.status === 401) break;
		await new Promise((res) => setTimeout(res, 200));
	}
	assert.equal(gone.status, 401);
});

test('dicomweb: polaimg token with RS256 signs with the private key of --key, verifiable with the configured public key', () => {
	const svc = uuid();
	sql(`INSERT INTO users (id, role, is_active) VALUES (${lit(svc)}, 'admin', true)`);
	const { publicKey, privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
	const pub = path.join(DIR, 'pub.pem'), priv = path.join(DIR, 'priv.pem');
	fs.writeFileSync(pub, publicKey.export({ type: 'spki', format: 'pem' }));
	fs.writeFileSync(priv, privateKey.export({ type: 'pkcs8', format: 'pem' }));
	const env = { ...serviceEnv(), POLAIMG_JWT_ALGORITHM: 'RS256', POLAIMG_JWT_PUBLIC_KEY_FILE: pub };
	const run = (...a) => spawnSync(POLAIMG_BIN, ['-c', POLAIMG_CONF, 'token', '--user', svc, ...a], { env, encoding: 'utf8' });
	const none = run();
	assert.equal(none.status, 2, 'RS256 needs --key');
	assert.match(none.stderr, /--key/);
	const r = run('--key', priv, '--days', '2');
	assert.equal(r.status, 0, r.stderr);
	const [h, p, sig] = r.stdout.trim().split('.');
	assert.equal(JSON.parse(Buffer.from(h, 'base64url')).alg, 'RS256');
	assert.ok(createVerify('RSA-SHA256').update(`${h}.${p}`).verify(publicKey, Buffer.from(sig, 'base64url')), 'signature verifies');
	assert.equal(JSON.parse(Buffer.from(p, 'base64url')).userId, svc);
});

test('dicomweb: QIDO-RS studies, series and instances, with their counts and matching keys', async () => {
	await world();
	let r = await api('GET', `${DW}/studies?StudyInstanceUID=${S1}`, { token: w.tDoctor });
	assert.equal(r.status, 200, r.text);
	assert.equal(r.headers.get('content-type'), 'application/dicom+json');
	assert.equal(r.json.length, 1);
	const st = r.json[0];
	assert.deepEqual(val(st, '0020000D'), [S1]);
	assert.deepEqual(val(st, '00201206'), [2]);
	assert.deepEqual(val(st, '00201208'), [2]);
	assert.deepEqual(val(st, '00080061').sort(), ['OP', 'XC']);
	assert.deepEqual(val(st, '00100020'), ['HN-DW1']);
	assert.deepEqual(val(st, '00080020'), ['20260304']);
	assert.match(val(st, '00081190')[0], new RegExp(`/api/v1/images/dicom-web/studies/${S1}$`));

	r = await api('GET', `${DW}/studies/${S1}/series`, { token: w.tDoctor });
	assert.equal(r.status, 200);
	assert.deepEqual(r.json.map((o) => val(o, '0020000E')[0]).sort(), [SE1, SE2].sort());
	r = await api('GET', `${DW}/studies/${S1}/series?Modality=XC`, { token: w.tDoctor });
	assert.deepEqual(r.json.map((o) => val(o, '0020000E')[0]), [SE2]);
	r = await api('GET', `${DW}/studies/${S1}/series/${SE1}/instances`, { token: w.tDoctor });
	assert.equal(r.json.length, 1);
	assert.deepEqual(val(r.json[0], '00080018'), [files.imgA.dicom.sopInstanceUid]);
	assert.deepEqual(val(r.json[0], '00080016'), ['1.2.840.10008.5.1.4.1.1.77.1.5.1'], 'SOPClassUID (sql/007)');

	// PatientID (the case's hospital number), StudyDate (single and range), tags by number.
	r = await api('GET', `${DW}/studies?PatientID=HN-DW1`, { token: w.tDoctor });
	assert.deepEqual(r.json.map((o) => val(o, '0020000D')[0]), [S1]);
	r = await api('GET', `${DW}/studies?00100020=HN-NOBODY`, { token: w.tDoctor });
	assert.deepEqual(r.json, []);
	r = await api('GET', `${DW}/studies?StudyDate=20250101&StudyInstanceUID=${S2}`, { token: w.tDoctor });
	assert.equal(r.json.length, 1);
	r = await api('GET', `${DW}/studies?StudyDate=20250102-20261231&StudyInstanceUID=${S2}`, { token: w.tDoctor });
	assert.deepEqual(r.json, []);
	r = await api('GET', `${DW}/studies?StudyDate=20260301-&0020000D=${S1}`, { token: w.tDoctor });
	assert.equal(r.json.length, 1);

	r = await api('GET', `${DW}/studies?StudyDate=2026`, { token: w.tDoctor });
	assertError(r, 400, 'VALIDATION_FAILED', 'StudyDate');
	r = await api('GET', `${DW}/studies/abc/series`, { token: w.tDoctor });
	assertError(r, 400, 'VALIDATION_FAILED', 'study');
	r = await api('GET', `${DW}/studies`);
	assertError(r, 401, 'AUTH_REQUIRED');
});

test('dicomweb: a patient finds only the studies of their own cases; QIDO is audited per case', async () => {
	await world();
	let r = await api('GET', `${DW}/studies`, { token: w.tPatient });
	assert.deepEqual(r.json.map((o) => val(o, '0020000D')[0]), [S1]);
	r = await api('GET', `${DW}/studies`, { token: w.tOther });
	assert.deepEqual(r.json.map((o) => val(o, '0020000D')[0]), [S2]);
	r = await api('GET', `${DW}/studies/${S1}/series`, { token: w.tOther });
	assert.deepEqual(r.json, []);
	const rows = await auditByRequest(r.requestId);
	assert.equal(rows.length, 1);
	assert.equal(rows[0].action, 'qido');
	assert.equal(rows[0].variant, 'series');
	assert.equal(rows[0].user_id, w.otherPatient);
	r = await api('GET', `${DW}/studies/${S1}/series`, { token: w.tPatient });
	const own = await auditByRequest(r.requestId);
	assert.deepEqual(own.map((x) => [x.action, x.case_id, x.outcome]), [['qido', w.case, 'ok']]);
});

test('dicomweb: an image read back (GET /:id) has the modality and frames it was stored with', async () => {
	await world();
	const r = await api('GET', `/api/v1/images/${files.imgB.id}`, { token: w.tDoctor });
	assert.equal(r.status, 200);
	assert.equal(r.json.data.frames, 1);
	assert.deepEqual(r.json.data.dicom, files.imgB.dicom);
	assert.equal(r.json.data.dicom.modality, 'XC');
});

test('dicomweb: WADO-RS sends the original byte for byte (instance, series, study), metadata and the rendered JPEG', async () => {
	await world();
	const a = files.imgA.dicom;
	let r = await api('GET', `${DW}/studies/${S1}/series/${SE1}/instances/${a.sopInstanceUid}`, { token: w.tPatient });
	assert.equal(r.status, 200, r.text);
	let p = parts(r);
	assert.equal(p.length, 1);
	assert.match(p[0].head, /Content-Type: application\/dicom/);
	assert.ok(p[0].body.equals(files.a), 'the original, byte for byte');
	// polaimg sends Content-Length; Apache's mod_proxy_fcgi may pass the body chunked instead.
	if (r.headers.get('content-length') !== null) assert.equal(Number(r.headers.get('content-length')), r.buf.length);
	const rows = await auditByRequest(r.requestId);
	assert.deepEqual(rows.map((x) => [x.action, x.image_id, x.variant, x.outcome]), [['wado', files.imgA.id, 'original', 'ok']]);

	r = await api('GET', `${DW}/studies/${S1}`, { token: w.tDoctor });
	p = parts(r);
	assert.equal(p.length, 2);
	assert.deepEqual(p.map((x) => x.body.toString('base64')).sort(), [files.a, files.b].map((b) => b.toString('base64')).sort());
	r = await api('GET', `${DW}/studies/${S1}/series/${SE2}`, { token: w.tDoctor });
	p = parts(r);
	assert.equal(p.length, 1);
	assert.ok(p[0].body.equals(files.b));

	r = await api('GET', `${DW}/studies/${S1}/series/${SE1}/instances/${a.sopInstanceUid}/metadata`, { token: w.tDoctor });
	assert.equal(r.status, 200);
	assert.equal(r.headers.get('content-type'), 'application/dicom+json');
	assert.deepEqual(val(r.json[0], '00080018'), [a.sopInstanceUid]);
	assert.deepEqual(val(r.json[0], '00280010'), [32]);
	assert.deepEqual(val(r.json[0], '00280011'), [48]);
	assert.deepEqual(val(r.json[0], '00080060'), ['OP']);
	assert.deepEqual(val(r.json[0], '00080016'), ['1.2.840.10008.5.1.4.1.1.77.1.5.1']);
	assert.deepEqual(val(r.json[0], '00280008'), [1]);

	r = await api('GET', `${DW}/studies/${S1}/series/${SE1}/instances/${a.sopInstanceUid}/rendered`, { token: w.tDoctor });
	assert.equal(r.status, 200);
	assert.equal(r.headers.get('content-type'), 'image/jpeg');
	assert.equal(r.buf[0], 0xff);
	assert.equal(r.buf[1], 0xd8);
});

test('dicomweb: another patient is refused an instance (403, denied row), a study of theirs is 404', async () => {
	await world();
	const a = files.imgA.dicom;
	let r = await api('GET', `${DW}/studies/${S1}/series/${SE1}/instances/${a.sopInstanceUid}`, { token: w.tOther });
	assertError(r, 403, 'FORBIDDEN');
	const rows = await auditByRequest(r.requestId);
	assert.deepEqual(rows.map((x) => [x.action, x.outcome]), [['wado', 'denied']]);
	r = await api('GET', `${DW}/studies/${S1}/series/${SE1}/instances/${a.sopInstanceUid}/rendered`, { token: w.tOther });
	assertError(r, 403, 'FORBIDDEN');
	r = await api('GET', `${DW}/studies/${S1}`, { token: w.tOther });
	assertError(r, 404, 'NOT_FOUND');
	r = await api('GET', `${DW}/studies/${S1}/series/${SE1}/instances/1.2.3`, { token: w.tDoctor });
	assertError(r, 404, 'NOT_FOUND');
});

// ---- STOW-RS ------------------------------------------------------------------

// A multipart/related body of DICOM files (and any other parts given as {type, data}).
function stowBody(items, boundary = 'stow' + uuid().slice(0, 8)) {
	const chunks = [];
	for (const it of items) {
		const part = Buffer.isBuffer(it) ? { type: 'application/dicom', data: it } : it;
		chunks.push(Buffer.from(`--${boundary}\r\nContent-Type: ${part.type}\r\n\r\n`), part.data, Buffer.from('\r\n'));
	}
	chunks.push(Buffer.from(`--${boundary}--\r\n`));
	return { body: Buffer.concat(chunks), contentType: `multipart/related; type="application/dicom"; boundary=${boundary}` };
}

const stow = (tok, caseId, items) => {
	const b = stowBody(items);
	return api('POST', `${DW}/cases/${caseId}/studies`, { token: tok, body: b.body, headers: { 'Content-Type': b.contentType } });
};

const sopsOf = (ans, tag) => (ans[tag] ? ans[tag].Value : []).map((o) => val(o, '00081155') ? val(o, '00081155')[0] : null);

test('dicomweb: STOW-RS stores instances into the case of its URL (200, ReferencedSOPSequence), retrievable byte for byte', async () => {
	await world();
	const S = newUid(), SE = newUid();
	const a = opFile({ study: S, series: SE }), b = opFile({ study: S, series: SE });
	const r = await stow(w.tDoctor, w.case, [a, b]);
	assert.equal(r.status, 200, r.text);
	assert.equal(r.headers.get('content-type'), 'application/dicom+json');
	const ref = r.json['00081199'].Value;
	assert.equal(ref.length, 2);
	assert.equal(r.json['00081198'], undefined, 'no FailedSOPSequence');
	assert.match(val(r.json, '00081190')[0], new RegExp(`/dicom-web/studies/${S}$`));
	assert.deepEqual(val(ref[0], '00081150'), ['1.2.840.10008.5.1.4.1.1.77.1.5.1']);
	for (const [i, buf] of [a, b].entries()) {
		const sop = val(ref[i], '00081155')[0];
		assert.match(val(ref[i], '00081190')[0], new RegExp(`/studies/${S}/series/${SE}/instances/${sop}$`));
		const g = await api('GET', `${DW}/studies/${S}/series/${SE}/instances/${sop}`, { token: w.tPatient });
		assert.ok(parts(g)[0].body.equals(buf), 'the stored original is the file sent');
	}
	const rows = await auditByRequest(r.requestId);
	assert.deepEqual(rows.map((x) => [x.action, x.case_id, x.outcome]), [['stow', w.case, 'ok'], ['stow', w.case, 'ok']]);
	const list = await api('GET', `/api/v1/images/cases/${w.case}`, { token: w.tPatient });
	const stored = list.json.data.images.filter((im) => im.dicom && im.dicom.studyInstanceUid === S);
	assert.equal(stored.length, 2);
	assert.equal(stored[0].imageType, 'other');
	assert.equal(stored[0].capturedAtSource, 'dicom');
});

test('dicomweb: STOW-RS answers 202 for some refused (duplicate 0111, wrong patient 0110, not DICOM C000), 409 for all', async () => {
	await world();
	const S = newUid(), SE = newUid();
	const a = opFile({ study: S, series: SE });
	const first = await stow(w.tDoctor, w.case, [a]);
	assert.equal(first.status, 200);
	const sopA = sopsOf(first.json, '00081199')[0];
	const wrong = (() => {
		const jpg = tmp('jpg');
		fs.writeFileSync(jpg, makeImage(40, 30, 'jpg'));
		const out = tmp('dcm');
		execFileSync('img2dcm', ['-oph', '--no-checks', '-k', `SOPInstanceUID=${newUid()}`, '-k', 'PatientID=HN-SOMEONE-ELSE', jpg, out], { stdio: 'ignore' });
		return fs.readFileSync(out);
	})();
	const fresh = opFile({ study: S, series: SE });
	let r = await stow(w.tDoctor, w.case, [a, wrong, { type: 'image/jpeg', data: makeImage(8, 8, 'jpg') }, fresh]);
	assert.equal(r.status, 202, r.text);
	const failed = r.json['00081198'].Value;
	assert.deepEqual(failed.map((o) => val(o, '00081197')[0]), [0x0111, 0x0110, 0xC000]);
	assert.equal(val(failed[0], '00081155')[0], sopA, 'the duplicate is named');
	assert.equal(r.json['00081199'].Value.length, 1);
	let rows;
	for (let i = 0; i < 30; i++) { // the error rows are gathered (audit_read_delay)
		rows = await auditByRequest(r.requestId);
		if (rows.length >= 4) break;
		await new Promise((res) => setTimeout(res, 100));
	}
	assert.deepEqual(rows.map((x) => x.outcome).sort(), ['error', 'error', 'error', 'ok']);

	r = await stow(w.tDoctor, w.case, [a, fresh]);
	assert.equal(r.status, 409, r.text);
	assert.equal(r.json['00081198'].Value.length, 2);
	assert.equal(r.json['00081199'], undefined);
});

test('dicomweb: STOW-RS is refused to another patient (403), for a bad case id (400), a missing case (404), a non-multipart body (415)', async () => {
	await world();
	const a = opFile({ study: newUid(), series: newUid() });
	let r = await stow(w.tOther, w.case, [a]);
	assertError(r, 403, 'FORBIDDEN');
	assert.deepEqual((await auditByRequest(r.requestId)).map((x) => [x.action, x.outcome]), [['stow', 'denied']]);
	r = await stow(w.tDoctor, 'nope', [a]);
	assertError(r, 400, 'VALIDATION_FAILED', 'id');
	r = await stow(w.tDoctor, uuid(), [a]);
	assertError(r, 404, 'NOT_FOUND');
	r = await api('POST', `${DW}/cases/${w.case}/studies`, { token: w.tDoctor, body: a, headers: { 'Content-Type': 'application/dicom' } });
	assertError(r, 415, 'UNSUPPORTED_MEDIA_TYPE');
	r = await api('POST', `${DW}/cases/${w.case}/studies`, { token: w.tDoctor, body: Buffer.from('--x\r\nContent-Type: application/dicom\r\n\r\nabc'), headers: { 'Content-Type': 'multipart/related; boundary=x' } });
	assertError(r, 400, 'VALIDATION_FAILED', 'body');
	// The patient themself may store into their own case, as with POST /upload.
	r = await stow(w.tPatient, w.case, [a]);
	assert.equal(r.status, 200, r.text);
});
