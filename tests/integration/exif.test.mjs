// EXIF handling: a JPEG whose stored pixels are 600×300 with a red marker in
// the stored top-left corner, EXIF Orientation 6 (rotate 90° clockwise to
// view), GPS tags, DateTimeOriginal and an embedded sRGB ICC profile.
// Upright it is 300×600 with the marker in the top-right corner. The display
// copy and the thumbnail must be upright, without EXIF/GPS, ICC kept; the
// original must be byte-identical.
import { before, test } from 'node:test';
import {
	api, assert, dims, exifApp1, identify, identifyVerbose, isRed, makeImage, pixel, seedWorld, sha256, spliceApp1,
	uploadOk,
} from './lib.mjs';

const ICC = '/usr/share/color/icc/ghostscript/srgb.icc';

let w;
let src;
let img;

before(async () => {
	w = seedWorld();
	const base = makeImage(600, 300, 'jpg', ['-profile', ICC]);
	src = spliceApp1(base, exifApp1({ orientation: 6, gps: true, dateTimeOriginal: '2022:07:08 09:10:11' }));
	// the fixture really is what we claim
	const props = identify(src, '%[exif:Orientation]|%[exif:GPSLatitudeRef]|%[profiles]|%w|%h', 'jpg');
	assert.equal(props, '6|N|exif,icc|600|300');
	assert.ok(isRed(pixel(src, 10, 10)), 'marker in the stored top-left corner');
	img = await uploadOk(w.tPatient, w.case, src);
});

const get = (q) => api('GET', `/api/v1/images/${img.id}/proxy${q}`, { token: w.tPatient });

function assertNoExif(buf, what) {
	assert.equal(identify(buf, '%[exif:*]', 'jpg').trim(), '', `${what}: no EXIF properties`);
	const v = identifyVerbose(buf);
	assert.ok(!/GPS/i.test(v), `${what}: no GPS in identify -verbose`);
	assert.ok(!/exif:/i.test(v), `${what}: no exif: in identify -verbose`);
	const profiles = identify(buf, '%[profiles]', 'jpg').trim().split(',').filter(Boolean);
	assert.ok(!profiles.includes('exif') && !profiles.includes('xmp') && !profiles.includes('iptc') &&
		!profiles.includes('8bim'), `${what}: profiles ${profiles}`);
}

test('exif: the resource is measured from the upload; capturedAt from DateTimeOriginal', () => {
	assert.equal(img.sha256, sha256(src));
	assert.equal(img.fileSize, src.length);
	assert.equal(img.mimeType, 'image/jpeg');
	assert.deepEqual([img.width, img.height].sort((a, b) => a - b), [300, 600]);
	assert.match(img.capturedAt, /^2022-07-08T09:10:11(\.0+)?Z$/);
});

test('exif: variant=original is byte-identical to the upload (EXIF and GPS untouched)', async () => {
	const r = await get('?variant=original');
	assert.equal(r.status, 200);
	assert.ok(r.buf.equals(src));
});

test('exif: the display copy is upright (300×600, marker top-right)', async () => {
	const r = await get('');
	assert.equal(r.status, 200);
	assert.deepEqual(dims(r.buf), { width: 300, height: 600 });
	assert.ok(isRed(pixel(r.buf, 290, 10)), `top-right is the marker: ${pixel(r.buf, 290, 10)}`);
	assert.ok(!isRed(pixel(r.buf, 10, 10)), 'top-left is not');
	assert.ok(!isRed(pixel(r.buf, 290, 590)), 'bottom-right is not');
	const o = identify(r.buf, '%[orientation]', 'jpg').trim();
	assert.ok(['Undefined', 'TopLeft'].includes(o), `orientation ${o}`);
});

test('exif: the display copy carries no EXIF/GPS but keeps the ICC profile', async () => {
	const r = await get('');
	assertNoExif(r.buf, 'display');
	const profiles = identify(r.buf, '%[profiles]', 'jpg').trim().split(',');
	assert.ok(profiles.includes('icc'), `display keeps the ICC profile: ${profiles}`);
	assert.match(identifyVerbose(r.buf), /Profile-icc: \d+ bytes/);
});

test('exif: the thumbnail is upright (fits 400×400, portrait, marker top-right) without EXIF/GPS', async () => {
	const r = await get('?thumbnail=true');
	assert.equal(r.status, 200);
	assert.deepEqual(dims(r.buf), { width: 200, height: 400 });
	assert.ok(isRed(pixel(r.buf, 193, 6)), `top-right is the marker: ${pixel(r.buf, 193, 6)}`);
	assert.ok(!isRed(pixel(r.buf, 6, 6)));
	assertNoExif(r.buf, 'thumbnail');
});

test('exif: the thumbnail keeps the ICC profile', async () => {
	const r = await get('?thumbnail=true');
	const profiles = identify(r.buf, '%[profiles]', 'jpg').trim().split(',');
	assert.ok(profiles.includes('icc'), `thumbnail profiles: ${profiles}`);
});

test('exif: the signed-URL display download is the same stripped copy', async () => {
	const d = await api('GET', `/api/v1/images/${img.id}/download-url?variant=display`, { token: w.tPatient });
	assert.equal(d.status, 200);
	const f = await api('GET', d.json.data.downloadUrl);
	assert.equal(f.status, 200);
	const p = await get('');
	assert.ok(f.buf.equals(p.buf));
});

test('exif: the display copy is a progressive JPEG', async () => {
	const r = await get('');
	assert.equal(identify(r.buf, '%[interlace]', 'jpg').trim(), 'JPEG');
});

test('exif: orientation 3 (180°) and 8 (270°) are applied too', async () => {
	for (const [o, corner] of [[3, [590, 290]], [8, [10, 590]]]) {
		const buf = spliceApp1(makeImage(600, 300, 'jpg'), exifApp1({ orientation: o }));
		const im = await uploadOk(w.tDoctor, w.case, buf);
		const r = await api('GET', `/api/v1/images/${im.id}/proxy`, { token: w.tDoctor });
		const want = o === 3 ? { width: 600, height: 300 } : { width: 300, height: 600 };
		assert.deepEqual(dims(r.buf), want, `orientation ${o}`);
		assert.ok(isRed(pixel(r.buf, corner[0], corner[1])), `orientation ${o}: marker at ${corner}`);
	}
});
