// DICOM Part 10 through POST /api/v1/images/upload: every transfer syntax
// polaimg decodes (made with DCMTK's own tools from a real JPEG), JPEG 2000
// refused, MONOCHROME1 and 16-bit grey with a window, a multi-frame
// ophthalmic tomography volume (the middle frame is shown), the metadata
// mapped onto the image, the duplicate-instance and wrong-patient guards,
// the byte-exact original, and hostile headers.
import { test } from 'node:test';
import { execFileSync, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import {
	MAX_UPLOAD_BYTES, POLAIMG_BIN, POLAIMG_CONF, REMOTE, STORAGE, TEST_TMP, api, assert, assertError, assertImage, auditRows, dims, imageRow,
	imageRowCount, lit, makeImage, sleep, objectsOf, pixel, polaimgCli, readObject, seedWorld, serviceEnv, sha256, sql, tmpEntries,
	curl, upload, uploadOk, uuid,
} from './lib.mjs';

const DIR = fs.mkdtempSync(path.join(TEST_TMP, 'dicom-'));
let seq = 0;
const tmp = (ext) => path.join(DIR, `f${++seq}.${ext}`);
const run = (cmd, args) => execFileSync(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'] });

// A fresh SOP Instance UID per file (duplicates are refused).
const newUid = () => `2.25.${BigInt('0x' + uuid().replace(/-/g, '')).toString()}`;

// An ophthalmic photograph (img2dcm from a JPEG made by /usr/bin/convert):
// encapsulated JPEG baseline as img2dcm leaves it. keys: more -k values.
function opJpeg(w = 320, h = 240, keys = [], sop = '-oph') {
	const jpg = tmp('jpg');
	fs.writeFileSync(jpg, makeImage(w, h, 'jpg'));
	const out = tmp('dcm');
	const k = [`SOPInstanceUID=${newUid()}`, ...keys].flatMap((v) => ['-k', v]);
	run('img2dcm', [sop, '--no-checks', ...k, jpg, out]);
	return out;
}

// The file f in transfer syntax ts.
function transcode(f, ts) {
	const out = tmp('dcm');
	const raw = tmp('dcm');
	run('dcmdjpeg', [f, raw]);
	switch (ts) {
	case 'jpeg-baseline': return f;
	case 'explicit': return raw;
	case 'implicit': run('dcmconv', ['+ti', raw, out]); break;
	case 'deflated': run('dcmconv', ['+td', raw, out]); break;
	case 'rle': run('dcmcrle', [raw, out]); break;
	case 'jpeg-extended': run('dcmcjpeg', ['+ee', raw, out]); break;
	case 'jpeg-lossless': run('dcmcjpeg', ['+el', raw, out]); break;
	case 'jpeg-lossless-sv1': run('dcmcjpeg', ['+e1', raw, out]); break;
	case 'jpeg-ls': run('dcmcjpls', [raw, out]); break;
	case 'j2k': run('gdcmconv', ['--j2k', raw, out]); break;
	default: throw new Error(ts);
	}
	return out;
}

const xferOf = (f) => {
	const d = run('dcmdump', ['-M', '-Un', '+P', '0002,0010', f]).toString();
	return (d.match(/\[([0-9.]+)\]/) || [])[1];
};

// A file from a dcmdump-style text (dump2dcm), pixel data from a buffer.
function fromDump(lines, pixels, xfer = '+te') {
	const raw = tmp('raw');
	fs.writeFileSync(raw, pixels);
	const dump = tmp('dump');
	fs.writeFileSync(dump, [...lines, `(7fe0,0010) OW =${raw}`].join('\n') + '\n');
	const out = tmp('dcm');
	run('dump2dcm', [xfer === '+te' ? '--write-xfer-little' : xfer, dump, out]);
	return out;
}

const OP_SOP = '1.2.840.10008.5.1.4.1.1.77.1.5.1';
const OT_SOP = '1.2.840.10008.5.1.4.1.1.77.1.5.4';
const SC_SOP = '1.2.840.10008.5.1.4.1.1.7';

function greyHeader(sop, w, h, { bits = 8, frames = 0, photometric = 'MONOCHROME2', window = null, extra = [] } = {}) {
	return [
		'(0002,0010) UI =LittleEndianExplicit',
		`(0008,0016) UI [${sop}]`,
		`(0008,0018) UI [${newUid()}]`,
		'(0008,0060) CS [OT]',
		`(0020,000d) UI [${newUid()}]`,
		`(0020,000e) UI [${newUid()}]`,
		'(0028,0002) US 1',
		`(0028,0004) CS [${photometric}]`,
		...(frames ? [`(0028,0008) IS [${frames}]`] : []),
		`(0028,0010) US ${h}`,
		`(0028,0011) US ${w}`,
		`(0028,0100) US ${bits}`,
		`(0028,0101) US ${bits === 16 ? 12 : 8}`,
		`(0028,0102) US ${bits === 16 ? 11 : 7}`,
		'(0028,0103) US 0',
		...(window ? [`(0028,1050) DS [${window[0]}]`, `(0028,1051) DS [${window[1]}]`] : []),
		...extra,
	];
}

const dicomUpload = (tok, caseId, file, fields = {}) =>
	upload(tok, caseId, fs.readFileSync(file), { fields, filename: 'scan.dcm', contentType: 'application/dicom' });

async function proxyBytes(tok, id, variant) {
	const r = await api('GET', `/api/v1/images/${id}/proxy?variant=${variant}`, { token: tok });
	assert.equal(r.status, 200, r.text.slice(0, 200));
	return r;
}

// ---- transfer syntaxes -----------------------------------------------------------

const SYNTAXES = {
	'explicit': '1.2.840.10008.1.2.1',
	'implicit': '1.2.840.10008.1.2',
	'deflated': '1.2.840.10008.1.2.1.99',
	'rle': '1.2.840.10008.1.2.5',
	'jpeg-baseline': '1.2.840.10008.1.2.4.50',
	'jpeg-extended': '1.2.840.10008.1.2.4.51',
	'jpeg-lossless': '1.2.840.10008.1.2.4.57',
	'jpeg-lossless-sv1': '1.2.840.10008.1.2.4.70',
	'jpeg-ls': '1.2.840.10008.1.2.4.80',
};

for (const [ts, uid] of Object.entries(SYNTAXES)) {
	test(`dicom: ${ts} ophthalmic photograph → 201, application/dicom, rendered display and thumbnail`, async () => {
		const w = seedWorld();
		const f = transcode(opJpeg(320, 240), ts);
		assert.equal(xferOf(f), uid, `the test file is in ${ts}`);
		const bytes = fs.readFileSync(f);
		const r = await dicomUpload(w.tDoctor, w.case, f);
		assert.equal(r.status, 201, r.text);
		const img = r.json.data;
		assertImage(img, {
			mimeType: 'application/dicom', width: 320, height: 240, frames: 1, fileSize: bytes.length,
			sha256: sha256(bytes), status: 'ready', storageType: STORAGE,
		});
		assert.match(img.dicom.sopInstanceUid, /^\d+(\.\d+)+$/);
		assert.deepEqual(objectsOf(w.case, img.id), ['display.jpg', 'original', 'thumb.jpg']);
		assert.ok(readObject(w.case, img.id, 'original').equals(bytes), 'the original is stored byte-exact');
		const d = await proxyBytes(w.tDoctor, img.id, 'display');
		assert.equal(d.headers.get('content-type'), 'image/jpeg');
		assert.deepEqual(dims(d.buf), { width: 320, height: 240 });
		// makeImage's red square in the top-left corner: colours survived
		// the photometric interpretation (RGB / YBR).
		const [r0, g0, b0] = pixel(d.buf, 5, 5);
		assert.ok(r0 > 180 && g0 < 90 && b0 < 90, `top-left is red: ${[r0, g0, b0]}`);
		const t = await proxyBytes(w.tDoctor, img.id, 'thumbnail');
		assert.equal(t.headers.get('content-type'), 'image/jpeg');
		assert.ok(!t.buf.includes(Buffer.from('DICM')), 'the thumbnail is a plain JPEG');
		assert.deepEqual(tmpEntries(), []);
	});
}

test('dicom: the original downloads byte-exact with Content-Type application/dicom', async () => {
	const w = seedWorld();
	const f = transcode(opJpeg(200, 150), 'explicit');
	const bytes = fs.readFileSync(f);
	const img = (await dicomUpload(w.tDoctor, w.case, f)).json.data;
	const o = await proxyBytes(w.tPatient, img.id, 'original');
	assert.equal(o.headers.get('content-type'), 'application/dicom');
	assert.equal(sha256(o.buf), sha256(bytes));
	assert.equal(o.headers.get('etag'), `"${sha256(bytes)}"`);
	assert.match(o.headers.get('content-disposition') || '', /-original\.dcm"/);
	const row = imageRow(img.id);
	assert.equal(row.mime_type, 'application/dicom');
	assert.equal(row.sop_instance_uid, img.dicom.sopInstanceUid);
	assert.equal(row.frames, 1);
});

test('dicom: JPEG 2000 is refused with 415 UNSUPPORTED_TRANSFER_SYNTAX, nothing stored', async () => {
	const w = seedWorld();
	const f = transcode(opJpeg(200, 150), 'j2k');
	assert.match(xferOf(f), /^1\.2\.840\.10008\.1\.2\.4\.9[01]$/);
	const r = await dicomUpload(w.tDoctor, w.case, f);
	assertError(r, 415, 'UNSUPPORTED_TRANSFER_SYNTAX');
	assert.match(r.json.error, /JPEG 2000/);
	assert.equal(imageRowCount(w.case), 0);
	assert.deepEqual(tmpEntries(), []);
});

test('dicom: VL photographic and secondary capture are taken; other SOP classes are 415', async () => {
	const w = seedWorld();
	for (const sop of ['-vlp', '-sc']) {
		const img = await uploadOk(w.tDoctor, w.case, fs.readFileSync(opJpeg(96, 64, [], sop)));
		assert.equal(img.mimeType, 'application/dicom');
	}
	const ct = fromDump(greyHeader('1.2.840.10008.5.1.4.1.1.2', 8, 8), Buffer.alloc(64, 7));
	assertError(await dicomUpload(w.tDoctor, w.case, ct), 415, 'UNSUPPORTED_SOP_CLASS');
	assert.equal(imageRowCount(w.case), 2);
});

// ---- grey, windows, frames -----------------------------------------------------------

test('dicom: 16-bit MONOCHROME1 with a window is rendered through that window, inverted', async () => {
	const w = seedWorld();
	const W = 64, H = 48;
	const px = Buffer.alloc(W * H * 2);
	for (let y = 0; y < H; y++) for (let x = 0; x < W; x++) px.writeUInt16LE(1000 + Math.floor(x * 3000 / W), (y * W + x) * 2);
	// Window [1000, 2000]: the left third spans it, everything right of it
	// is above (white in MONOCHROME2, black in MONOCHROME1).
	const f = fromDump(greyHeader(SC_SOP, W, H, { bits: 16, photometric: 'MONOCHROME1', window: [1500, 1000] }), px);
	const img = await uploadOk(w.tDoctor, w.case, fs.readFileSync(f));
	assertImage(img, { width: W, height: H, frames: 1, mimeType: 'application/dicom' });
	const d = (await proxyBytes(w.tDoctor, img.id, 'display')).buf;
	const left = pixel(d, 1, 24)[0], mid = pixel(d, 32, 24)[0], right = pixel(d, 62, 24)[0];
	assert.ok(left > 220, `lowest values are white in MONOCHROME1: ${left}`);
	assert.ok(mid < 30 && right < 30, `values above the window are black: ${mid} ${right}`);
	const q = pixel(d, 10, 24)[0];
	assert.ok(q > 80 && q < 190, `inside the window, grey: ${q}`);
});

test('dicom: a multi-frame ophthalmic tomography volume shows its middle frame; frames is recorded', async () => {
	const w = seedWorld();
	const W = 40, H = 30, N = 5;
	const levels = [10, 60, 120, 180, 240];
	const px = Buffer.concat(levels.map((v) => Buffer.alloc(W * H, v)));
	const raw = fromDump(greyHeader(OT_SOP, W, H, { frames: N, window: [127.5, 256] }), px);
	// The volume uncompressed, and with every frame compressed on its own
	// (one fragment per frame: only the middle one is decoded).
	const variants = { explicit: raw };
	for (const [name, cmd, args] of [['rle', 'dcmcrle', []], ['jpeg-ls', 'dcmcjpls', []],
		['jpeg-lossless', 'dcmcjpeg', ['+e1']], ['deflated', 'dcmconv', ['+td']]]) {
		const out = tmp('dcm');
		run(cmd, [...args, raw, out]);
		// Each its own instance.
		modify(out, `SOPInstanceUID=${newUid()}`);
		variants[name] = out;
	}
	for (const [name, f] of Object.entries(variants)) {
		const img = await uploadOk(w.tDoctor, w.case, fs.readFileSync(f));
		assertImage(img, { width: W, height: H, frames: N });
		const d = (await proxyBytes(w.tDoctor, img.id, 'display')).buf;
		const g = pixel(d, 20, 15)[0];
		assert.ok(Math.abs(g - 120) < 12, `${name}: the middle frame (level 120) is shown, got ${g}`);
		assert.equal(imageRow(img.id).frames, N);
	}
});

test('dicom: an 8-bit grey image without a window uses the full range of its pixels', async () => {
	const w = seedWorld();
	const W = 32, H = 32;
	const px = Buffer.alloc(W * H);
	for (let i = 0; i < px.length; i++) px[i] = 100 + (i % W);       // 100..131
	const f = fromDump(greyHeader(SC_SOP, W, H), px);
	const img = await uploadOk(w.tDoctor, w.case, fs.readFileSync(f));
	const d = (await proxyBytes(w.tDoctor, img.id, 'display')).buf;
	assert.ok(pixel(d, 0, 16)[0] < 40 && pixel(d, 31, 16)[0] > 215, 'stretched to black..white');
});

// ---- metadata ------------------------------------------------------------------------

test('dicom: laterality, acquisition time, modality, manufacturer and UIDs are mapped onto the image', async () => {
	const w = seedWorld();
	const f = opJpeg(96, 64, ['Modality=OP', 'ImageLaterality=L', 'AcquisitionDateTime=20240131143015.25+0700',
		'Manufacturer=Topcon', 'ManufacturerModelName=TRC-50DX', 'StudyInstanceUID=1.2.3.4', 'SeriesInstanceUID=1.2.3.4.5']);
	const img = await uploadOk(w.tDoctor, w.case, fs.readFileSync(f));
	assert.equal(img.eyeSide, 'left');
	assert.equal(img.capturedAt, '2024-01-31T07:30:15Z');
	assert.deepEqual({ ...img.dicom, sopInstanceUid: undefined }, {
		modality: 'OP', manufacturer: 'Topcon', manufacturerModelName: 'TRC-50DX',
		studyInstanceUid: '1.2.3.4', seriesInstanceUid: '1.2.3.4.5', sopInstanceUid: undefined,
	});
	const row = imageRow(img.id);
	assert.equal(row.study_instance_uid, '1.2.3.4');
	assert.equal(row.series_instance_uid, '1.2.3.4.5');
	assert.equal(row.manufacturer_model_name, 'TRC-50DX');
	assert.equal(row.modality, 'OP');
	// Laterality (0020,0060) when ImageLaterality is absent; ContentDate and
	// ContentTime when there is no AcquisitionDateTime.
	const g = opJpeg(96, 64, ['Laterality=R', 'ContentDate=20230405', 'ContentTime=081500']);
	const img2 = await uploadOk(w.tDoctor, w.case, fs.readFileSync(g));
	assert.equal(img2.eyeSide, 'right');
	assert.equal(img2.capturedAt, '2023-04-05T08:15:00Z');
	// B → both; the client's own capturedAt wins over the file's.
	const h = opJpeg(96, 64, ['ImageLaterality=B', 'ContentDate=20230405']);
	const img3 = await uploadOk(w.tDoctor, w.case, fs.readFileSync(h), { fields: { capturedAt: '2020-01-02T03:04:05Z' } });
	assert.equal(img3.eyeSide, 'both');
	assert.equal(img3.capturedAt, '2020-01-02T03:04:05Z');
});

test('dicom: an eyeSide that agrees is fine; one that contradicts the laterality → 409 LATERALITY_MISMATCH', async () => {
	const w = seedWorld();
	const ok = await uploadOk(w.tDoctor, w.case, fs.readFileSync(opJpeg(64, 48, ['ImageLaterality=R'])),
		{ fields: { eyeSide: 'right' } });
	assert.equal(ok.eyeSide, 'right');
	const r = await dicomUpload(w.tDoctor, w.case, opJpeg(64, 48, ['ImageLaterality=R']), { eyeSide: 'left' });
	assertError(r, 409, 'LATERALITY_MISMATCH');
	assert.equal(imageRowCount(w.case), 1);
	assert.deepEqual(tmpEntries(), []);
});

// ---- duplicate instances ---------------------------------------------------------------

// 409 DUPLICATE_INSTANCE: the error shape plus "existing".
function assertDuplicate(r, existing) {
	assert.equal(r.status, 409, r.text);
	assert.deepEqual(Object.keys(r.json).sort(), ['code', 'error', 'existing', 'requestId']);
	assert.equal(r.json.code, 'DUPLICATE_INSTANCE');
	assert.deepEqual(r.json.existing, existing);
}

test('dicom: the same SOP Instance UID again → 409 DUPLICATE_INSTANCE naming the image; deleted too; purged → stored anew', async () => {
	const w = seedWorld();
	const f = opJpeg(64, 48);
	const first = await uploadOk(w.tDoctor, w.case, fs.readFileSync(f));
	let r = await dicomUpload(w.tDoctor, w.case, f);
	assertDuplicate(r, { imageId: first.id, deleted: false });
	// Into another case too: a SOP Instance UID is unique the world over.
	r = await dicomUpload(w.tDoctor, w.otherCase, f);
	assertDuplicate(r, { imageId: first.id, deleted: false });
	assert.equal(imageRowCount(w.otherCase), 0);
	// Another patient sending the same file to their own case: the 409,
	// but not which image (of which patient's case) holds it.
	r = await dicomUpload(w.tOther, w.otherCase, f);
	assert.equal(r.status, 409, r.text);
	assert.deepEqual(Object.keys(r.json).sort(), ['code', 'error', 'requestId']);
	assert.equal(r.json.code, 'DUPLICATE_INSTANCE');
	assert.ok(!r.text.includes(first.id), r.text);
	assert.equal(imageRowCount(w.otherCase), 0);
	// Its own patient sees it named.
	assertDuplicate(await dicomUpload(w.tPatient, w.case, f), { imageId: first.id, deleted: false });
	// Soft-deleted: still the same 409, saying so.
	assert.equal((await api('DELETE', `/api/v1/images/${first.id}`, { token: w.tDoctor })).status, 200);
	r = await dicomUpload(w.tDoctor, w.case, f);
	assertDuplicate(r, { imageId: first.id, deleted: true });
	// Purged (delete_retention_days = 0 in the test configuration): stored as new.
	const s = polaimgCli('sweep');
	assert.equal(s.status, 0, s.stderr);
	assert.ok(imageRow(first.id).purged_at, 'the sweep purged it');
	const again = await uploadOk(w.tDoctor, w.case, fs.readFileSync(f));
	assert.notEqual(again.id, first.id);
	assert.equal(again.dicom.sopInstanceUid, first.dicom.sopInstanceUid);
	assert.deepEqual(tmpEntries(), []);
});

// ---- wrong patient ---------------------------------------------------------------------

test('dicom: a PatientID that is not the case patient\'s hospital number → 409 PATIENT_MISMATCH; a doctor may force it (audited)', async () => {
	sql('ALTER TABLE patient_cases ADD COLUMN IF NOT EXISTS hn text');
	const w = seedWorld();
	sql(`UPDATE patient_cases SET hn = 'HN-0042' WHERE id = ${lit(w.case)}`);
	// The right patient.
	const ok = await uploadOk(w.tDoctor, w.case, fs.readFileSync(opJpeg(64, 48, ['PatientID=HN-0042'])));
	assert.equal(ok.mimeType, 'application/dicom');
	// Another patient's file: refused, and the refusal is on the record.
	const f = opJpeg(64, 48, ['PatientID=HN-9999']);
	const refused = await dicomUpload(w.tDoctor, w.case, f);
	assertError(refused, 409, 'PATIENT_MISMATCH');
	let arows = [];
	for (let i = 0; i < 30 && arows.length === 0; i++) {
		arows = auditRows(`request_id = ${lit(refused.requestId)}`);
		if (arows.length === 0) await sleep(100);
	}
	assert.deepEqual(arows.map((a) => [a.action, a.outcome, a.case_id]), [['upload', 'error', w.case]]);
	// force=true from the patient: still refused.
	assertError(await dicomUpload(w.tPatient, w.case, f, { force: 'true' }), 409, 'PATIENT_MISMATCH');
	assert.equal(imageRowCount(w.case), 1);
	// force=true from a doctor: stored, and the override is on the record.
	const r = await dicomUpload(w.tDoctor, w.case, f, { force: 'true' });
	assert.equal(r.status, 201, r.text);
	let rows = [];
	for (let i = 0; i < 30 && rows.length === 0; i++) {
		rows = auditRows(`image_id = ${lit(r.json.data.id)} AND action = 'patient_override'`);
		if (rows.length === 0) await sleep(100);
	}
	assert.equal(rows.length, 1);
	assert.equal(rows[0].user_id, w.doctor);
	assert.equal(rows[0].outcome, 'ok');
	// force must be a boolean.
	assertError(await dicomUpload(w.tDoctor, w.case, f, { force: 'yes' }), 400, 'VALIDATION_FAILED', 'force');
	// No hospital number: nothing to check.
	const other = await uploadOk(w.tOther, w.otherCase, fs.readFileSync(opJpeg(64, 48, ['PatientID=HN-9999'])));
	assert.equal(other.mimeType, 'application/dicom');
});

test('dicom: the hospital number of the patient (users.hn, PolaCare) is checked when the case has none', async () => {
	sql('ALTER TABLE users ADD COLUMN IF NOT EXISTS hn text');
	const w = seedWorld();
	sql(`UPDATE users SET hn = 'HN-7' WHERE id = ${lit(w.patient)}`);
	assertError(await dicomUpload(w.tDoctor, w.case, opJpeg(64, 48, ['PatientID=HN-8'])), 409, 'PATIENT_MISMATCH');
	await uploadOk(w.tDoctor, w.case, fs.readFileSync(opJpeg(64, 48, ['PatientID=HN-7'])));
});

// ---- limits and hostile headers ---------------------------------------------------------

test('dicom: a DICOM file past max_upload_bytes is taken (its own limit, max_dicom_bytes)', async () => {
	const w = seedWorld();
	const W = 1400, H = 1100;
	assert.ok(W * H * 3 > MAX_UPLOAD_BYTES, 'the test file is larger than max_upload_bytes');
	const f = transcode(opJpeg(W, H), 'explicit');
	const img = await uploadOk(w.tDoctor, w.case, fs.readFileSync(f));
	assert.equal(img.fileSize, fs.statSync(f).size);
	// A JPEG of that size is still refused.
	const big = Buffer.concat([makeImage(64, 48, 'jpg'), Buffer.alloc(MAX_UPLOAD_BYTES)]);
	assert.equal((await upload(w.tDoctor, w.case, big)).status, 413);
});

function rawGrey(W, H, extra = {}) {
	return fromDump(greyHeader(SC_SOP, W, H, extra), Buffer.alloc(W * H, 128));
}

// Rewrites tags of f in place (dcmodify, no backup).
function modify(f, ...kv) {
	run('dcmodify', ['-nb', ...kv.flatMap((v) => ['-i', v]), f]);
	return f;
}

test('dicom: hostile headers → 422, nothing stored: huge Rows/Columns, huge NumberOfFrames, truncated pixel data', async () => {
	const w = seedWorld();
	const cases = {
		'huge rows and columns': modify(rawGrey(16, 16), 'Rows=65535', 'Columns=65535'),
		'huge frame count': modify(rawGrey(16, 16), 'NumberOfFrames=2000000000'),
		'frames over max_frames (1024)': modify(rawGrey(16, 16), 'NumberOfFrames=1025'),
		'zero rows': modify(rawGrey(16, 16), 'Rows=0'),
		'bits allocated 32': modify(rawGrey(16, 16), 'BitsAllocated=32'),
	};
	// Truncated: the file cut in the middle of its pixel data.
	const full = fs.readFileSync(transcode(opJpeg(200, 150), 'explicit'));
	const cut = tmp('dcm');
	fs.writeFileSync(cut, full.subarray(0, full.length - 20000));
	cases['truncated native pixel data'] = cut;
	// Truncated compressed pixel data (JPEG-LS, the last fragment cut).
	const jls = fs.readFileSync(transcode(opJpeg(200, 150), 'jpeg-ls'));
	const cut2 = tmp('dcm');
	fs.writeFileSync(cut2, jls.subarray(0, jls.length - 4000));
	cases['truncated JPEG-LS pixel data'] = cut2;
	// Only the preamble and DICM.
	const stub = tmp('dcm');
	fs.writeFileSync(stub, Buffer.concat([Buffer.alloc(128), Buffer.from('DICM'), Buffer.from([2, 0, 0x10, 0])]));
	cases['a header that ends at once'] = stub;
	for (const [what, f] of Object.entries(cases)) {
		const t0 = Date.now();
		const r = await dicomUpload(w.tDoctor, w.case, f);
		assertError(r, 422, 'UNPROCESSABLE_IMAGE');
		assert.ok(Date.now() - t0 < 20000, `${what}: refused promptly`);
		assert.equal(imageRowCount(w.case), 0, what);
		assert.deepEqual(tmpEntries(), [], what);
	}
	// The worker survived all of them.
	await uploadOk(w.tDoctor, w.case, fs.readFileSync(opJpeg(64, 48)));
});

// ---- direct upload (upload-url → PUT → complete) ------------------------------------------

// upload-url for a DICOM file, the PUT as the answer says (to polaimg with
// local storage, to the store otherwise), and for a store POST /complete
// (query: "?force=true"). Returns the answer that decides: the PUT's
// (local) or complete's (store).
async function directDicom(tok, caseId, file, { body = {}, query = '' } = {}) {
	const bytes = fs.readFileSync(file);
	const u = await api('POST', '/api/v1/images/upload-url', {
		token: tok, body: { caseId, fileName: 'scan.dcm', contentType: 'application/dicom', fileSize: bytes.length, ...body },
	});
	assert.equal(u.status, 200, u.text);
	const d = u.json.data;
	assert.deepEqual(d.headers, { 'Content-Type': 'application/dicom' });
	if (!REMOTE) return { d, r: await api(d.method, d.uploadUrl + query.replace(/^\?/, '&'), { body: bytes, headers: d.headers }) };
	const p = curl(d.method, d.uploadUrl, { body: bytes, headers: d.headers });
	assert.equal(p.status, 200, p.text);
	return { d, r: await api('POST', `/api/v1/images/${d.imageId}/complete${query}`, { token: tok }) };
}

// A refused direct upload leaves the image pending, without any object, and
// nothing in the temporary directory.
function assertNothingStored(caseId, imageId) {
	assert.equal(imageRow(imageId).status, 'pending');
	assert.deepEqual(objectsOf(caseId, imageId), []);
	assert.deepEqual(tmpEntries(), []);
}

test('dicom: direct upload (upload-url, PUT, complete) → ready, byte-exact, application/dicom, eyeSide from the laterality', async () => {
	const w = seedWorld();
	const f = opJpeg(200, 150, ['ImageLaterality=L', 'AcquisitionDateTime=20240131143015']);
	const bytes = fs.readFileSync(f);
	const { d, r } = await directDicom(w.tDoctor, w.case, f);
	assert.equal(r.status, REMOTE ? 200 : 201, r.text);
	const img = r.json.data;
	assert.equal(img.id, d.imageId);
	assertImage(img, { width: 200, height: 150, frames: 1, mimeType: 'application/dicom', fileSize: bytes.length });
	assert.equal(img.eyeSide, 'left');
	assert.equal(img.capturedAt, '2024-01-31T14:30:15Z');
	assert.ok(img.dicom?.sopInstanceUid, 'the DICOM fields are recorded');
	const row = imageRow(img.id);
	assert.equal(row.status, 'ready');
	assert.equal(row.sop_instance_uid, img.dicom.sopInstanceUid);
	assert.equal(row.eye_side.toLowerCase(), 'left');
	const o = await proxyBytes(w.tPatient, img.id, 'original');
	assert.equal(o.headers.get('content-type'), 'application/dicom');
	assert.equal(sha256(o.buf), sha256(bytes));
	assert.deepEqual(objectsOf(w.case, img.id), ['display.jpg', 'original', 'thumb.jpg']);
	// A second complete answers the ready image.
	const again = await api('POST', `/api/v1/images/${img.id}/complete`, { token: w.tDoctor });
	assert.equal(again.status, 200, again.text);
	assert.deepEqual(tmpEntries(), []);
});

test('dicom: direct upload of an instance already stored → 409 DUPLICATE_INSTANCE, nothing stored; a contradicting eyeSide → 409 LATERALITY_MISMATCH', async () => {
	const w = seedWorld();
	const f = opJpeg(64, 48, ['ImageLaterality=R']);
	const first = await uploadOk(w.tDoctor, w.case, fs.readFileSync(f));
	const { d, r } = await directDicom(w.tDoctor, w.case, f);
	assertDuplicate(r, { imageId: first.id, deleted: false });
	assertNothingStored(w.case, d.imageId);
	const g = opJpeg(64, 48, ['ImageLaterality=R']);
	const l = await directDicom(w.tDoctor, w.case, g, { body: { eyeSide: 'left' } });
	assertError(l.r, 409, 'LATERALITY_MISMATCH');
	assertNothingStored(w.case, l.d.imageId);
});

test('dicom: direct upload of another patient\'s file → 409 PATIENT_MISMATCH; a doctor\'s force=true stores it (audited)', async () => {
	sql('ALTER TABLE patient_cases ADD COLUMN IF NOT EXISTS hn text');
	const w = seedWorld();
	sql(`UPDATE patient_cases SET hn = 'HN-0042' WHERE id = ${lit(w.case)}`);
	const f = opJpeg(64, 48, ['PatientID=HN-9999']);
	const { d, r } = await directDicom(w.tDoctor, w.case, f);
	assertError(r, 409, 'PATIENT_MISMATCH');
	assertNothingStored(w.case, d.imageId);
	const bad = await directDicom(w.tDoctor, w.case, f, { query: '?force=yes' });
	assertError(bad.r, 400, 'VALIDATION_FAILED', 'force');
	const ok = await directDicom(w.tDoctor, w.case, f, { query: '?force=true' });
	assert.equal(ok.r.status, REMOTE ? 200 : 201, ok.r.text);
	let rows = [];
	for (let i = 0; i < 30 && rows.length === 0; i++) {
		rows = auditRows(`image_id = ${lit(ok.d.imageId)} AND action = 'patient_override'`);
		if (rows.length === 0) await sleep(100);
	}
	assert.equal(rows.length, 1);
	assert.equal(rows[0].user_id, w.doctor);
});

test('dicom: upload-url takes application/dicom up to max_dicom_bytes', async () => {
	const w = seedWorld();
	const r = await api('POST', '/api/v1/images/upload-url', {
		token: w.tDoctor, body: { caseId: w.case, fileName: 'a.dcm', contentType: 'application/dicom', fileSize: MAX_UPLOAD_BYTES + 1 },
	});
	assert.equal(r.status, 200, r.text);
	const j = await api('POST', '/api/v1/images/upload-url', {
		token: w.tDoctor, body: { caseId: w.case, fileName: 'a.jpg', contentType: 'image/jpeg', fileSize: MAX_UPLOAD_BYTES + 1 },
	});
	assertError(j, 413, 'PAYLOAD_TOO_LARGE');
});

// ---- the PolaCare database shape -------------------------------------------------------

test('dicom: sql/006 on the older PolaCare shape (text ids, no hn; then hn added): columns, unique index, polaimg_case_hn', () => {
	const DB = 'polacare_dicom_' + uuid().slice(0, 8);
	const schema = path.join(path.dirname(new URL(import.meta.url).pathname), '..', 'data', 'polacare_schema_legacy.sql');
	const psql = (q) => execFileSync('psql', ['-X', '-q', '-At', '-v', 'ON_ERROR_STOP=1', '-d', DB, '-c', q], { encoding: 'utf8' }).trim();
	execFileSync('psql', ['-X', '-q', '-d', 'postgres', '-c', `CREATE DATABASE ${DB}`]);
	try {
		execFileSync('psql', ['-X', '-q', '-v', 'ON_ERROR_STOP=1', '-d', DB, '-f', schema]);
		const env = { ...serviceEnv(), POLAIMG_DATABASE_URL: `host=${process.env.PGHOST} dbname=${DB} user=postgres` };
		for (let i = 0; i < 2; i++) {
			const r = spawnSync(POLAIMG_BIN, ['-c', POLAIMG_CONF, 'migrate', '--dir', 'sql'], { env, encoding: 'utf8' });
			assert.equal(r.status, 0, r.stderr + r.stdout);
		}
		for (const col of ['frames', 'modality', 'manufacturer', 'manufacturer_model_name', 'study_instance_uid',
			'series_instance_uid', 'sop_instance_uid'])
			assert.equal(psql(`SELECT count(*) FROM information_schema.columns WHERE table_name = 'case_images' AND column_name = '${col}'`), '1', col);
		psql(`INSERT INTO users (id, email, role, updated_at) VALUES ('u1', 'p@example.org', 'PATIENT', now());
			INSERT INTO patient_cases (id, patient_id, title, updated_at) VALUES ('c1', 'u1', 't', now())`);
		assert.equal(psql(`SELECT coalesce(polaimg_case_hn('c1'), 'none')`), 'none', 'no hn column: none');
		psql(`ALTER TABLE users ADD COLUMN hn varchar(50); UPDATE users SET hn = 'HN-U1'`);
		assert.equal(psql(`SELECT polaimg_case_hn('c1')`), 'HN-U1', 'users.hn');
		psql(`ALTER TABLE patient_cases ADD COLUMN hn varchar(50); UPDATE patient_cases SET hn = 'HN-C1'`);
		assert.equal(psql(`SELECT polaimg_case_hn('c1')`), 'HN-C1', 'patient_cases.hn first');
		psql(`UPDATE patient_cases SET hn = '  '`);
		assert.equal(psql(`SELECT polaimg_case_hn('c1')`), 'HN-U1', 'a blank case hn is none');
		assert.equal(psql(`SELECT coalesce(polaimg_case_hn('nope'), 'none')`), 'none', 'unknown case');
		// One live row per SOP Instance UID; a purged row frees it.
		psql(`INSERT INTO case_images (id, case_id, image_url, updated_at, sop_instance_uid) VALUES ('i1', 'c1', 'x', now(), '1.2.3')`);
		assert.throws(() => psql(`INSERT INTO case_images (id, case_id, image_url, updated_at, sop_instance_uid) VALUES ('i2', 'c1', 'x', now(), '1.2.3')`));
		psql(`UPDATE case_images SET purged_at = now() WHERE id = 'i1';
			INSERT INTO case_images (id, case_id, image_url, updated_at, sop_instance_uid) VALUES ('i3', 'c1', 'x', now(), '1.2.3')`);
	} finally {
		execFileSync('psql', ['-X', '-q', '-d', 'postgres', '-c', `DROP DATABASE IF EXISTS ${DB} WITH (FORCE)`]);
	}
});
