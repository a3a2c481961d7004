// DICOMweb under /api/v1/images/dicom-web/: the `polaimg token` verb for a
// service account, QIDO-RS searches (studies, series, instances; matching
// on PatientID, StudyDate, Modality, StudyInstanceUID; a patient sees only
// their own), WADO-RS retrievals (the original byte for byte in
// multipart/related, metadata as application/dicom+json, the rendered JPEG)
// and their audit rows. Files are made with DCMTK's img2dcm.
import { test } from 'node:test';
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import {
	TEST_TMP, api, assert, assertError, auditByRequest, auditRows, lit, makeImage, polaimgCli, seedWorld, sql, upload, uuid,
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
	assert.equal(Number(r.headers.get('content-length')), r.buf.length);
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
