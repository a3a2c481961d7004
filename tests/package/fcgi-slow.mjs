// fcgi-slow.mjs — one upload sent straight to polaimg's FastCGI socket, its
// body trickled over a few seconds, so that the request is in flight inside
// a polaimg worker for that long (nginx would buffer the body first). Used by
// tests/package/run.sh to upgrade the package under a running request.
//
//     node fcgi-slow.mjs SOCKET TOKEN CASE_ID IMAGE SECONDS [RELEASE_FILE]
//
// The body goes in 20 slices over SECONDS; with RELEASE_FILE, the last slice
// waits until that file exists, so the caller decides when the request can
// end. Prints one JSON line {status, seconds, body} and exits 0 when polaimg
// answered 201. Only Node built-ins; FastCGI 1.0 records, one request.
import fs from 'node:fs';
import net from 'node:net';
import { randomBytes } from 'node:crypto';

const [sockPath, token, caseId, imagePath, secondsArg, releaseFile] = process.argv.slice(2);
if (!secondsArg) {
	console.error('usage: node fcgi-slow.mjs SOCKET TOKEN CASE_ID IMAGE SECONDS [RELEASE_FILE]');
	process.exit(2);
}
const seconds = Number(secondsArg);

const BEGIN_REQUEST = 1, END_REQUEST = 3, PARAMS = 4, STDIN = 5, STDOUT = 6;

function record(type, content = Buffer.alloc(0)) {
	const h = Buffer.alloc(8);
	h[0] = 1;                   // version
	h[1] = type;
	h.writeUInt16BE(1, 2);      // request id
	h.writeUInt16BE(content.length, 4);
	return Buffer.concat([h, content]);
}

function nameValue(name, value) {
	const len = (n) => {
		if (n < 128) return Buffer.from([n]);
		const b = Buffer.alloc(4);
		b.writeUInt32BE((n | 0x80000000) >>> 0);
		return b;
	};
	const n = Buffer.from(name), v = Buffer.from(value);
	return Buffer.concat([len(n.length), len(v.length), n, v]);
}

const boundary = '----polaimgslow' + randomBytes(8).toString('hex');
const body = Buffer.concat([
	Buffer.from(`--${boundary}\r\nContent-Disposition: form-data; name="caseId"\r\n\r\n${caseId}\r\n`),
	Buffer.from(`--${boundary}\r\nContent-Disposition: form-data; name="image"; filename="slow.jpg"\r\n` +
		'Content-Type: image/jpeg\r\n\r\n'),
	fs.readFileSync(imagePath),
	Buffer.from(`\r\n--${boundary}--\r\n`),
]);
const params = Buffer.concat(Object.entries({
	REQUEST_METHOD: 'POST',
	REQUEST_URI: '/api/v1/images/upload',
	DOCUMENT_URI: '/api/v1/images/upload',
	QUERY_STRING: '',
	SERVER_PROTOCOL: 'HTTP/1.1',
	REMOTE_ADDR: '127.0.0.1',
	CONTENT_TYPE: `multipart/form-data; boundary=${boundary}`,
	CONTENT_LENGTH: String(body.length),
	HTTP_AUTHORIZATION: `Bearer ${token}`,
}).map(([k, v]) => nameValue(k, v)));

const t0 = Date.now();
const out = [];
let pending = Buffer.alloc(0);
let ended = false;
const sock = net.connect(sockPath);
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

sock.on('data', (d) => {
	pending = Buffer.concat([pending, d]);
	while (pending.length >= 8) {
		const len = pending.readUInt16BE(4), pad = pending[6];
		if (pending.length < 8 + len + pad) break;
		if (pending[1] === STDOUT) out.push(pending.subarray(8, 8 + len));
		if (pending[1] === END_REQUEST) ended = true;
		pending = pending.subarray(8 + len + pad);
	}
});
sock.on('error', (e) => finish(`socket error: ${e.code || e}`));
sock.on('close', () => finish(ended ? null : 'connection closed before END_REQUEST'));

function finish(err) {
	if (finish.done) return;
	finish.done = true;
	const raw = Buffer.concat(out).toString('latin1');
	const sep = raw.indexOf('\r\n\r\n');
	const m = /^Status: (\d{3})/m.exec(sep < 0 ? raw : raw.slice(0, sep));
	const status = err ? 0 : (m ? Number(m[1]) : 200);
	console.log(JSON.stringify({
		status, seconds: (Date.now() - t0) / 1000, error: err || undefined,
		body: sep < 0 ? raw.slice(0, 300) : raw.slice(sep + 4, sep + 4 + 2000),
	}));
	process.exit(status === 201 ? 0 : 1);
}

sock.on('connect', async () => {
	const begin = Buffer.alloc(8);
	begin.writeUInt16BE(1, 0);  // FCGI_RESPONDER, flags 0: close when done
	sock.write(record(BEGIN_REQUEST, begin));
	for (let i = 0; i < params.length; i += 65535)
		sock.write(record(PARAMS, params.subarray(i, i + 65535)));
	sock.write(record(PARAMS));
	// The body in 20 slices over `seconds`; the last one, with a release
	// file, once that file exists (two minutes at most).
	const slice = Math.ceil(body.length / 20);
	for (let i = 0; i < body.length; i += slice) {
		await sleep((seconds * 1000) / 20);
		if (releaseFile && i + slice >= body.length)
			for (let t = 0; t < 2400 && !fs.existsSync(releaseFile); t++) await sleep(50);
		const part = body.subarray(i, i + slice);
		for (let j = 0; j < part.length; j += 65535)
			sock.write(record(STDIN, part.subarray(j, j + 65535)));
	}
	sock.write(record(STDIN));
});
