// Happy paths of POST /api/v1/images/upload, GET /api/v1/images/:id and
// GET /api/v1/images/cases/:caseId: the exact image resource, defaults,
// server-measured fields, sniffed type, stored objects.
import { test } from 'node:test';
import {
	STORAGE, api, assert, assertImage, assertAppUrl, dims, exifApp1, imageRow, lit, listFiles, makeImage,
	objectsOf, readObject, seedWorld, sha256, spliceApp1, sqlValue, tmpEntries, token, upload, uploadOk,
	createUser, createCase,
} from './lib.mjs';

const near = (iso, ms = 120000) => Math.abs(Date.parse(iso) - Date.now()) < ms;

test('upload: 201, message, and every field of the image resource with defaults', async () => {
	const w = seedWorld();
	const jpg = makeImage(160, 120, 'jpg');
	const r = await upload(w.tPatient, w.case, jpg);
	assert.equal(r.status, 201, r.text);
	assert.match(r.headers.get('content-type') || '', /^application\/json/);
	assert.deepEqual(Object.keys(r.json).sort(), ['data', 'message']);
	assert.equal(r.json.message, 'Image uploaded successfully');
	const img = r.json.data;
	assertImage(img, {
		caseId: w.case, imageType: 'slit_lamp', eyeSide: 'unknown', description: null, order: 1,
		fileSize: jpg.length, mimeType: 'image/jpeg', width: 160, height: 120, sha256: sha256(jpg),
		status: 'ready', uploadedBy: w.patient, storageType: STORAGE,
	});
	assert.ok(near(img.capturedAt), `capturedAt defaults to the upload time: ${img.capturedAt}`);
	assert.ok(near(img.createdAt), `createdAt is now: ${img.createdAt}`);
	assert.ok(near(img.updatedAt));
	assert.ok(r.requestId);
});

test('upload: stores original (byte-identical), display.jpg and thumb.jpg; .tmp stays empty', async () => {
	const w = seedWorld();
	const jpg = makeImage(200, 100, 'jpg');
	const img = await uploadOk(w.tDoctor, w.case, jpg);
	assert.deepEqual(objectsOf(w.case, img.id), ['display.jpg', 'original', 'thumb.jpg']);
	assert.ok(readObject(w.case, img.id, 'original').equals(jpg), 'the stored original is the uploaded bytes');
	assert.deepEqual(tmpEntries(), []);
	const row = imageRow(img.id);
	assert.equal(row.status, 'ready');
	assert.equal(row.storage_key, `cases/${w.case}/${img.id}`);
	assert.equal(row.sha256, sha256(jpg));
	assert.equal(Number(row.file_size), jpg.length);
	assert.equal(row.deleted_at, null);
});

test('upload: order is 1 + the case highest: 1, 2, 3', async () => {
	const w = seedWorld();
	const jpg = makeImage(64, 48, 'jpg');
	const orders = [];
	for (const t of [w.tPatient, w.tDoctor, w.tAdmin]) orders.push((await uploadOk(t, w.case, jpg)).order);
	assert.deepEqual(orders, [1, 2, 3]);
	// another case starts again at 1
	const other = await uploadOk(w.tDoctor, w.otherCase, jpg);
	assert.equal(other.order, 1);
});

test('upload: explicit eyeSide, imageType, description (UTF-8), capturedAt are stored', async () => {
	const w = seedWorld();
	const description = 'Hornhaut – Ödem, Fluoreszein 👁 "quoted" <b>';
	const img = await uploadOk(w.tDoctor, w.case, makeImage(64, 48, 'jpg'), {
		fields: { eyeSide: 'left', imageType: 'fundus', description, capturedAt: '2025-01-02T03:04:05Z' },
	});
	assertImage(img, { eyeSide: 'left', imageType: 'fundus', description, uploadedBy: w.doctor });
	assert.equal(Date.parse(img.capturedAt), Date.parse('2025-01-02T03:04:05Z'));
	assert.match(img.capturedAt, /^2025-01-02T03:04:05(\.0+)?Z$/);
	const g = await api('GET', `/api/v1/images/${img.id}`, { token: w.tPatient });
	assert.equal(g.json.data.description, description);
});

test('upload: every eyeSide and imageType value is accepted', async () => {
	const w = seedWorld();
	const jpg = makeImage(64, 48, 'jpg');
	for (const [eyeSide, imageType] of [['right', 'oct'], ['both', 'other'], ['unknown', 'slit_lamp']]) {
		const img = await uploadOk(w.tDoctor, w.case, jpg, { fields: { eyeSide, imageType } });
		assert.equal(img.eyeSide, eyeSide);
		assert.equal(img.imageType, imageType);
	}
});

test('upload: capturedAt with a UTC offset is returned in UTC', async () => {
	const w = seedWorld();
	const img = await uploadOk(w.tDoctor, w.case, makeImage(64, 48, 'jpg'), {
		fields: { capturedAt: '2025-06-30T23:30:00+02:00' },
	});
	assert.match(img.capturedAt, /^2025-06-30T21:30:00(\.0+)?Z$/);
});

test('upload: capturedAt comes from EXIF DateTimeOriginal when the client gives none', async () => {
	const w = seedWorld();
	const jpg = spliceApp1(makeImage(64, 48, 'jpg'), exifApp1({ dateTimeOriginal: '2021:03:04 05:06:07' }));
	const img = await uploadOk(w.tPatient, w.case, jpg);
	assert.match(img.capturedAt, /^2021-03-04T05:06:07(\.0+)?Z$/);
	assert.equal(img.sha256, sha256(jpg));
	assert.equal(img.fileSize, jpg.length);
});

test('upload: mimeType is sniffed: a PNG declared image/jpeg and named .jpg is image/png', async () => {
	const w = seedWorld();
	const png = makeImage(90, 70, 'png');
	const img = await uploadOk(w.tPatient, w.case, png, { filename: 'photo.jpg', contentType: 'image/jpeg' });
	assertImage(img, { mimeType: 'image/png', width: 90, height: 70, fileSize: png.length, sha256: sha256(png) });
	assert.deepEqual(objectsOf(w.case, img.id), ['display.png', 'original', 'thumb.png']);
});

test('upload: a JPEG declared application/octet-stream is image/jpeg', async () => {
	const w = seedWorld();
	const jpg = makeImage(64, 48, 'jpg');
	const img = await uploadOk(w.tPatient, w.case, jpg, { filename: 'x.bin', contentType: 'application/octet-stream' });
	assert.equal(img.mimeType, 'image/jpeg');
});

test('upload: TIFF and WebP are accepted and measured', async () => {
	const w = seedWorld();
	for (const [fmt, mime] of [['tiff', 'image/tiff'], ['webp', 'image/webp']]) {
		const buf = makeImage(80, 60, fmt);
		const img = await uploadOk(w.tDoctor, w.case, buf, { filename: `a.${fmt}`, contentType: mime });
		assertImage(img, { mimeType: mime, width: 80, height: 60, fileSize: buf.length, sha256: sha256(buf) });
		const p = await api('GET', `/api/v1/images/${img.id}/proxy`, { token: w.tDoctor });
		assert.equal(p.status, 200, `display of ${fmt}`);
		assert.deepEqual(dims(p.buf), { width: 80, height: 60 });
	}
});

test('metadata: GET /:id returns {data: image} equal to the upload response', async () => {
	const w = seedWorld();
	const img = await uploadOk(w.tPatient, w.case, makeImage(64, 48, 'jpg'));
	for (const t of [w.tPatient, w.tDoctor, w.tAdmin]) {
		const r = await api('GET', `/api/v1/images/${img.id}`, { token: t });
		assert.equal(r.status, 200, r.text);
		assert.deepEqual(Object.keys(r.json), ['data']);
		assert.deepEqual(r.json.data, img);
	}
});

test('auth: the polacare_token cookie is accepted when there is no Authorization header', async () => {
	const w = seedWorld();
	const img = await uploadOk(w.tPatient, w.case, makeImage(64, 48, 'jpg'));
	const r = await api('GET', `/api/v1/images/${img.id}`, { cookie: `theme=dark; polacare_token=${w.tPatient}; x=1` });
	assert.equal(r.status, 200, r.text);
	assert.equal(r.json.data.id, img.id);
});

test('auth: the user id may come from the sub claim', async () => {
	const w = seedWorld();
	const img = await uploadOk(w.tPatient, w.case, makeImage(64, 48, 'jpg'));
	const r = await api('GET', `/api/v1/images/${img.id}`, { token: token(w.patient, { claimName: 'sub' }) });
	assert.equal(r.status, 200, r.text);
});

test('list: {data: {images, total}}, ready images ordered by order, exact resources', async () => {
	const w = seedWorld();
	const jpg = makeImage(64, 48, 'jpg');
	const a = await uploadOk(w.tPatient, w.case, jpg, { fields: { eyeSide: 'left' } });
	const b = await uploadOk(w.tDoctor, w.case, jpg, { fields: { eyeSide: 'right' } });
	const c = await uploadOk(w.tDoctor, w.case, jpg, { fields: { eyeSide: 'left' } });
	const r = await api('GET', `/api/v1/images/cases/${w.case}`, { token: w.tPatient });
	assert.equal(r.status, 200, r.text);
	assert.deepEqual(Object.keys(r.json), ['data']);
	assert.deepEqual(Object.keys(r.json.data).sort(), ['case', 'images', 'total', 'viewer']);
	assert.equal(r.json.data.total, 3);
	assert.deepEqual(r.json.data.images.map((i) => i.id), [a.id, b.id, c.id]);
	assert.deepEqual(r.json.data.images, [a, b, c]);
});

test('list: eyeSide filter, limit and offset; total counts all matches', async () => {
	const w = seedWorld();
	const jpg = makeImage(64, 48, 'jpg');
	const ids = [];
	for (const eyeSide of ['left', 'right', 'left', 'left']) ids.push((await uploadOk(w.tDoctor, w.case, jpg, { fields: { eyeSide } })).id);
	let r = await api('GET', `/api/v1/images/cases/${w.case}?eyeSide=left`, { token: w.tDoctor });
	assert.equal(r.status, 200, r.text);
	assert.equal(r.json.data.total, 3);
	assert.deepEqual(r.json.data.images.map((i) => i.id), [ids[0], ids[2], ids[3]]);
	r = await api('GET', `/api/v1/images/cases/${w.case}?limit=2`, { token: w.tDoctor });
	assert.equal(r.json.data.total, 4);
	assert.deepEqual(r.json.data.images.map((i) => i.id), ids.slice(0, 2));
	r = await api('GET', `/api/v1/images/cases/${w.case}?limit=2&offset=3`, { token: w.tDoctor });
	assert.equal(r.json.data.total, 4);
	assert.deepEqual(r.json.data.images.map((i) => i.id), [ids[3]]);
	r = await api('GET', `/api/v1/images/cases/${w.case}?eyeSide=left&limit=1&offset=1`, { token: w.tDoctor });
	assert.equal(r.json.data.total, 3);
	assert.deepEqual(r.json.data.images.map((i) => i.id), [ids[2]]);
	r = await api('GET', `/api/v1/images/cases/${w.case}?offset=10`, { token: w.tDoctor });
	assert.equal(r.status, 200);
	assert.deepEqual(r.json.data.images, []);
	assert.equal(r.json.data.total, 4);
	r = await api('GET', `/api/v1/images/cases/${w.case}?eyeSide=both`, { token: w.tDoctor });
	assert.deepEqual([r.json.data.images, r.json.data.total], [[], 0]);
	r = await api('GET', `/api/v1/images/cases/${w.case}?limit=500`, { token: w.tDoctor });
	assert.equal(r.status, 200);
	assert.equal(r.json.data.images.length, 4);
});

test('list: a case without images gives {images: [], total: 0}', async () => {
	const w = seedWorld();
	const r = await api('GET', `/api/v1/images/cases/${w.case}`, { token: w.tPatient });
	assert.equal(r.status, 200, r.text);
	assert.deepEqual(r.json, { data: { images: [], total: 0,
		case: { id: w.case, patientId: w.patient, patientName: null, hn: null },
		viewer: { id: w.patient, role: 'patient', canUpload: true, canDelete: false } } });
});

test('list: pending (direct-upload, not yet sent) images are not listed', async () => {
	const w = seedWorld();
	const ready = await uploadOk(w.tDoctor, w.case, makeImage(64, 48, 'jpg'));
	const u = await api('POST', '/api/v1/images/upload-url', {
		token: w.tDoctor, body: { fileName: 'a.jpg', contentType: 'image/jpeg', caseId: w.case },
	});
	assert.equal(u.status, 200, u.text);
	assert.equal(sqlValue(`SELECT status FROM case_images WHERE id = ${lit(u.json.data.imageId)}`), 'pending');
	const r = await api('GET', `/api/v1/images/cases/${w.case}`, { token: w.tDoctor });
	assert.deepEqual(r.json.data.images.map((i) => i.id), [ready.id]);
	assert.equal(r.json.data.total, 1);
});

test('upload: a doctor and an admin may upload to any case; uploadedBy is the caller', async () => {
	const p = createUser('patient');
	const c = createCase(p);
	const d = createUser('doctor');
	const a = createUser('admin');
	const jpg = makeImage(64, 48, 'jpg');
	assert.equal((await uploadOk(token(d), c, jpg)).uploadedBy, d);
	assert.equal((await uploadOk(token(a), c, jpg)).uploadedBy, a);
});

test('upload: resource URLs point at this image', async () => {
	const w = seedWorld();
	const img = await uploadOk(w.tPatient, w.case, makeImage(64, 48, 'jpg'));
	assertAppUrl(img.imageUrl, `/api/v1/images/${img.id}/proxy`);
	const url = img.imageUrl.startsWith('/') ? img.imageUrl : img.imageUrl.slice(img.imageUrl.indexOf('/api/'));
	const r = await api('GET', url, { token: w.tPatient });
	assert.equal(r.status, 200);
	const t = img.thumbnailUrl.startsWith('/') ? img.thumbnailUrl : img.thumbnailUrl.slice(img.thumbnailUrl.indexOf('/api/'));
	const rt = await api('GET', t, { token: w.tPatient });
	assert.equal(rt.status, 200);
	assert.ok(listFiles().some((f) => f.startsWith(`cases/${w.case}/${img.id}/`)));
});
