// Hostile inputs through nginx. After each one: health is ok, the workers
// still serve an authenticated GET, no new file in storage, storage/.tmp is
// empty and no new case_images row (guard() in lib.mjs).
import { before, test } from 'node:test';
import {
	MAX_UPLOAD_BYTES, REMOTE, api, assert, assertError, curl, fs, guard, imageRow, imageRowCount, listFiles, makeImage, multipart,
	pngWithHeaderDims, rawRequest, seedWorld, sha256, upload, uploadOk,
} from './lib.mjs';

let w;
let known; // a ready image the guard reads after every hostile request
let jpg;

before(async () => {
	w = seedWorld();
	jpg = makeImage(600, 400, 'jpg');
	known = await uploadOk(w.tDoctor, w.case, makeImage(64, 48, 'jpg'));
});

// Runs fn (which makes the hostile request and checks its answer), then the
// guard checks.
async function hostile(fn) {
	const g = await guard(w, known.id);
	await fn();
	await g.check();
}

const postUpload = (body, contentType) => api('POST', '/api/v1/images/upload', {
	token: w.tDoctor, body, headers: { 'Content-Type': contentType },
});

const postJson = (text) => api('POST', '/api/v1/images/upload-url', {
	token: w.tDoctor, body: text, headers: { 'Content-Type': 'application/json' },
});

const uploadAsJpeg = (data) => upload(w.tDoctor, w.case, data, { filename: 'photo.jpg', contentType: 'image/jpeg' });

const NOT_IMAGES = {
	GIF: () => makeImage(64, 48, 'gif'),
	SVG: () => Buffer.from('<?xml version="1.0" encoding="UTF-8"?>\n<svg xmlns="http://www.w3.org/2000/svg" ' +
		'width="64" height="64"><rect width="64" height="64" fill="red"/>' +
		'<image href="file:///etc/passwd" width="64" height="64"/></svg>\n'),
	PDF: () => Buffer.from('%PDF-1.4\n1 0 obj << /Type /Catalog /Pages 2 0 R >> endobj\n' +
		'2 0 obj << /Type /Pages /Kids [] /Count 0 >> endobj\ntrailer << /Root 1 0 R >>\n%%EOF\n'),
	MVG: () => Buffer.from("push graphic-context\nviewbox 0 0 64 64\nfill 'red'\nrectangle 0,0 63,63\n" +
		"image over 0,0 0,0 'label:@/etc/passwd'\npop graphic-context\n"),
	HTML: () => Buffer.from('<!DOCTYPE html><html><body><script>alert(1)</script></body></html>'),
	'BMP (not accepted)': () => Buffer.concat([Buffer.from('BM'), Buffer.alloc(200)]),
};

for (const [name, make] of Object.entries(NOT_IMAGES)) {
	test(`hostile: a ${name} named .jpg and declared image/jpeg → 415`, async () => {
		await hostile(async () => {
			assertError(await uploadAsJpeg(make()), 415, 'UNSUPPORTED_MEDIA_TYPE');
		});
	});
}

test('hostile: a truncated JPEG → 422', async () => {
	await hostile(async () => {
		assertError(await uploadAsJpeg(jpg.subarray(0, Math.floor(jpg.length * 0.4))), 422, 'UNPROCESSABLE_IMAGE');
	});
});

test('hostile: a JPEG cut right after its headers → 422', async () => {
	await hostile(async () => {
		assertError(await uploadAsJpeg(jpg.subarray(0, 400)), 422, 'UNPROCESSABLE_IMAGE');
	});
});

test('hostile: an empty image part → 4xx, nothing stored', async () => {
	await hostile(async () => {
		const r = await uploadAsJpeg(Buffer.alloc(0));
		assert.ok([400, 415, 422].includes(r.status), `empty file: ${r.status}`);
		assertError(r, r.status, { 400: 'VALIDATION_FAILED', 415: 'UNSUPPORTED_MEDIA_TYPE', 422: 'UNPROCESSABLE_IMAGE' }[r.status]);
	});
});

test('hostile: a 30000×30000 PNG of a few KB → 422 quickly, before decoding', async () => {
	const png = pngWithHeaderDims(30000, 30000);
	assert.ok(png.length < 8192);
	await hostile(async () => {
		const t0 = Date.now();
		const r = await upload(w.tDoctor, w.case, png, { filename: 'a.png', contentType: 'image/png' });
		const ms = Date.now() - t0;
		assertError(r, 422, 'UNPROCESSABLE_IMAGE');
		assert.ok(ms < 2000, `refused in ${ms} ms`);
	});
});

test('hostile: a file of exactly max_upload_bytes is accepted', async () => {
	const small = makeImage(64, 48, 'jpg');
	const data = Buffer.concat([small, Buffer.alloc(MAX_UPLOAD_BYTES - small.length)]);
	assert.equal(data.length, MAX_UPLOAD_BYTES);
	const img = await uploadOk(w.tDoctor, w.case, data);
	assert.equal(img.fileSize, MAX_UPLOAD_BYTES);
	assert.equal(img.sha256, sha256(data));
	assert.equal(img.width, 64);
});

test('hostile: one byte over max_upload_bytes → 413', async () => {
	const small = makeImage(64, 48, 'jpg');
	const data = Buffer.concat([small, Buffer.alloc(MAX_UPLOAD_BYTES + 1 - small.length)]);
	await hostile(async () => {
		assertError(await uploadAsJpeg(data), 413, 'PAYLOAD_TOO_LARGE');
	});
});

test('hostile: malformed JSON to upload-url → 400 (body)', async () => {
	for (const text of ['{"fileName": "a.jpg", ', '{fileName: 1}', '', 'null', '[1,2,3]', '"just a string"',
		'{"fileName":"a.jpg"}{"x":1}', '\u0000\u0001']) {
		await hostile(async () => {
			assertError(await postJson(text), 400, 'VALIDATION_FAILED', 'body');
		});
	}
});

test('hostile: deeply nested JSON (10 KB) → 400', async () => {
	await hostile(async () => {
		assertError(await postJson('['.repeat(5000) + ']'.repeat(5000)), 400, 'VALIDATION_FAILED', 'body');
		assertError(await postJson('{"a":'.repeat(2000) + '1' + '}'.repeat(2000)), 400, 'VALIDATION_FAILED', 'body');
	});
});

test('hostile: a 2 MB JSON body → 400 or 413', async () => {
	await hostile(async () => {
		const r = await postJson(JSON.stringify({ fileName: 'a.jpg', contentType: 'image/jpeg', caseId: w.case,
			description: 'x'.repeat(2 << 20) }));
		assert.ok([400, 413].includes(r.status), `status ${r.status}`);
		assertError(r, r.status, r.status === 400 ? 'VALIDATION_FAILED' : 'PAYLOAD_TOO_LARGE');
	});
});

test('hostile: multipart whose body uses another boundary → 400 (body)', async () => {
	const mp = multipart({ caseId: w.case }, { data: jpg }, 'realboundary123');
	await hostile(async () => {
		assertError(await postUpload(mp.body, 'multipart/form-data; boundary=otherboundary456'), 400, 'VALIDATION_FAILED', 'body');
	});
});

test('hostile: multipart truncated in the middle of the file → 400 (body)', async () => {
	const mp = multipart({ caseId: w.case }, { data: jpg });
	await hostile(async () => {
		assertError(await postUpload(mp.body.subarray(0, Math.floor(mp.body.length / 2)), mp.contentType), 400, 'VALIDATION_FAILED', 'body');
	});
});

test('hostile: multipart without the closing boundary → 400 (body)', async () => {
	const mp = multipart({ caseId: w.case }, { data: jpg });
	const body = mp.body.subarray(0, mp.body.length - (mp.boundary.length + 6)); // drop "--B--\r\n"
	assert.ok(body.toString('latin1').endsWith('\r\n'));
	await hostile(async () => {
		assertError(await postUpload(body, mp.contentType), 400, 'VALIDATION_FAILED', 'body');
	});
});

test('hostile: multipart/form-data without a boundary parameter → 400', async () => {
	const mp = multipart({ caseId: w.case }, { data: jpg });
	await hostile(async () => {
		assertError(await postUpload(mp.body, 'multipart/form-data'), 400, 'VALIDATION_FAILED', 'body');
	});
});

test('hostile: multipart with a 100 KB part header line → 400', async () => {
	const b = 'hdrboundary';
	const body = Buffer.concat([
		Buffer.from(`--${b}\r\nContent-Disposition: form-data; name="caseId"; x="${'a'.repeat(100000)}"\r\n\r\n${w.case}\r\n`),
		Buffer.from(`--${b}\r\nContent-Disposition: form-data; name="image"; filename="a.jpg"\r\nContent-Type: image/jpeg\r\n\r\n`),
		jpg, Buffer.from(`\r\n--${b}--\r\n`),
	]);
	await hostile(async () => {
		assertError(await postUpload(body, `multipart/form-data; boundary=${b}`), 400, 'VALIDATION_FAILED');
	});
});

test('hostile: garbage bytes declared multipart → 400', async () => {
	await hostile(async () => {
		const garbage = Buffer.alloc(50000, 0x41);
		assertError(await postUpload(garbage, 'multipart/form-data; boundary=zzz'), 400, 'VALIDATION_FAILED', 'body');
	});
});

test('hostile: a path-traversal filename is ignored: stored only under cases/<case>/<id>/', async () => {
	const before = listFiles();
	const rows = imageRowCount(w.case);
	const r = await upload(w.tDoctor, w.case, makeImage(64, 48, 'jpg'), { filename: '../../../../../tmp/evil.jpg' });
	assert.equal(r.status, 201, r.text);
	const added = listFiles().filter((f) => !before.includes(f));
	assert.deepEqual(added.sort(), ['display.jpg', 'original', 'thumb.jpg'].map((n) => `cases/${w.case}/${r.json.data.id}/${n}`).sort());
	assert.ok(!fs.existsSync('/tmp/evil.jpg'));
	assert.equal(imageRowCount(w.case), rows + 1);
});

test('hostile: percent-encoded path traversal in the id → 400/404, never file contents', async () => {
	for (const p of ['/api/v1/images/..%2F..%2Fetc%2Fpasswd', '/api/v1/images/..%2F..%2F..%2F..%2Fetc%2Fpasswd/proxy',
		'/api/v1/images/%2e%2e%2f%2e%2e%2fetc%2fpasswd/download-url', '/api/v1/images/cases/..%2F..%2Fetc',
		'/api/v1/images/%00/proxy']) {
		await hostile(async () => {
			const r = await api('GET', p, { token: w.tDoctor });
			assert.ok([400, 404].includes(r.status), `${p} → ${r.status}`);
			assert.ok(!r.text.includes('root:'), 'no /etc/passwd contents');
		});
	}
});

test('hostile: ids that reach polaimg undecoded (backslashes, double encoding) → 400 (id)', async () => {
	for (const p of ['/api/v1/images/..%5C..%5Cetc%5Cpasswd', '/api/v1/images/%252e%252e%252fetc%252fpasswd/proxy',
		'/api/v1/images/%252e%252e%252f%252e%252e%252fetc/download-url', `/api/v1/images/${known.id}%00/proxy`.replace('%00', '%2500')]) {
		await hostile(async () => {
			const r = await api('GET', p, { token: w.tDoctor });
			assertError(r, 400, 'VALIDATION_FAILED', 'id');
		});
	}
});

test('hostile: raw ../../etc/passwd request line → 400/404, never file contents', async () => {
	for (const target of ['/api/v1/images/../../etc/passwd', '/api/v1/images/../../../../../../etc/passwd',
		'/_polaimg/../../../../etc/passwd']) {
		await hostile(async () => {
			const r = await rawRequest(`GET ${target} HTTP/1.1\r\nHost: localhost\r\nAuthorization: Bearer ${w.tDoctor}\r\nConnection: close\r\n\r\n`);
			assert.ok(!r.error, `response received: ${r.error}`);
			assert.ok([400, 404].includes(r.status), `${target} → ${r.status}`);
			assert.ok(!r.body.toString('latin1').includes('root:'), 'no /etc/passwd contents');
		});
	}
});

test('hostile: the storage location is internal: /_polaimg/<key> from outside → 404', async () => {
	await hostile(async () => {
		const r = await api('GET', `/_polaimg/cases/${w.case}/${known.id}/original`, { token: w.tDoctor });
		assert.equal(r.status, 404);
		assert.ok(!r.buf.includes(Buffer.from([0xff, 0xd8, 0xff])), 'no image bytes');
	});
});

test('hostile: a 64 KB header → 4xx from nginx or polaimg, no crash', async () => {
	for (const name of ['X-Big', 'Cookie', 'Authorization']) {
		await hostile(async () => {
			const headers = name === 'Authorization'
				? `Authorization: Bearer ${'A'.repeat(65536)}`
				: `Authorization: Bearer ${w.tDoctor}\r\n${name}: ${'a'.repeat(65536)}`;
			const r = await rawRequest(`GET /api/v1/images/${known.id} HTTP/1.1\r\nHost: localhost\r\n${headers}\r\n` +
				'Connection: close\r\n\r\n');
			assert.ok(!r.error, `response received: ${r.error}`);
			assert.ok(r.status >= 400 && r.status < 500, `${name}: ${r.status}`);
		});
	}
});

test('hostile: three 7 KB headers (within nginx limits) reach polaimg → normal answer', async () => {
	await hostile(async () => {
		const big = (c) => c.repeat(7000);
		const r = await rawRequest(`GET /api/v1/images/${known.id} HTTP/1.1\r\nHost: localhost\r\n` +
			`Authorization: Bearer ${w.tDoctor}\r\nX-A: ${big('a')}\r\nX-B: ${big('b')}\r\n` +
			`Cookie: x=${big('c')}; polacare_token=garbage\r\nConnection: close\r\n\r\n`);
		assert.equal(r.status, 200, r.body?.toString().slice(0, 200));
		assert.equal(JSON.parse(r.body.toString()).data.id, known.id);
	});
});

test('hostile: a 16 KB token in a normal-sized request → 401, no crash', async () => {
	await hostile(async () => {
		const r = await api('GET', `/api/v1/images/${known.id}`, { headers: { Authorization: `Bearer ${'e'.repeat(6000)}.${'f'.repeat(1000)}.x` } });
		assert.equal(r.status, 401);
	});
});

test('hostile: a 20 KB query string → 4xx, no crash', async () => {
	await hostile(async () => {
		const r = await rawRequest(`GET /api/v1/images/cases/${w.case}?eyeSide=${'l'.repeat(20000)} HTTP/1.1\r\n` +
			`Host: localhost\r\nAuthorization: Bearer ${w.tDoctor}\r\nConnection: close\r\n\r\n`);
		assert.ok(!r.error);
		assert.ok(r.status >= 400 && r.status < 500, `status ${r.status}`);
	});
});

// Local: polaimg refuses the PUT. Remote: the store takes any bytes, and
// complete refuses them and deletes the object (the guard then finds
// storage as it was).
test('hostile: a direct-upload PUT of a GIF declared image/jpeg → 415, stays pending', async () => {
	const u = await api('POST', '/api/v1/images/upload-url', {
		token: w.tDoctor, body: { fileName: 'a.jpg', contentType: 'image/jpeg', caseId: w.case },
	});
	assert.equal(u.status, 200);
	await hostile(async () => {
		const gif = makeImage(64, 48, 'gif');
		if (!REMOTE) {
			const r = await api('PUT', u.json.data.uploadUrl, { body: gif, headers: u.json.data.headers });
			assertError(r, 415, 'UNSUPPORTED_MEDIA_TYPE');
			return;
		}
		const p = curl('PUT', u.json.data.uploadUrl, { body: gif, headers: u.json.data.headers });
		assert.equal(p.status, 200, p.text);
		const r = await api('POST', `/api/v1/images/${u.json.data.imageId}/complete`, { token: w.tDoctor });
		assertError(r, 415, 'UNSUPPORTED_MEDIA_TYPE');
	});
	assert.equal(imageRow(u.json.data.imageId).status, 'pending');
});

test('hostile: a request body on a GET and a chunked upload body are handled', async () => {
	await hostile(async () => {
		const r = await rawRequest(`GET /api/v1/images/${known.id} HTTP/1.1\r\nHost: localhost\r\n` +
			`Authorization: Bearer ${w.tDoctor}\r\nContent-Length: 5\r\nConnection: close\r\n\r\nhello`);
		assert.equal(r.status, 200);
	});
	const mp = multipart({ caseId: w.case }, { data: makeImage(64, 48, 'jpg') });
	const chunks = [];
	for (let i = 0; i < mp.body.length; i += 1000) {
		const c = mp.body.subarray(i, i + 1000);
		chunks.push(Buffer.from(`${c.length.toString(16)}\r\n`), c, Buffer.from('\r\n'));
	}
	chunks.push(Buffer.from('0\r\n\r\n'));
	const r = await rawRequest(Buffer.concat([Buffer.from(`POST /api/v1/images/upload HTTP/1.1\r\nHost: localhost\r\n` +
		`Authorization: Bearer ${w.tDoctor}\r\nContent-Type: ${mp.contentType}\r\nTransfer-Encoding: chunked\r\n` +
		'Connection: close\r\n\r\n'), ...chunks]));
	assert.equal(r.status, 201, r.body.toString().slice(0, 300));
});
