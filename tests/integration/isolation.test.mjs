// Uploads do not share fate with reads (the ingest pool, max_uploads_per_user,
// the memory limits derived from max_pixels):
// (a) reads while four large uploads are being decoded: no case list waits
//     a second (the harness runs the ingest pool by default);
// (b) max_uploads_per_user: a user's third upload in flight is refused with
//     429 TOO_MANY_UPLOADS and Retry-After, another user's is accepted; the
//     count of a SIGKILLed worker is released;
// (c) an image of exactly max_pixels is processed, one pixel more is refused,
//     and the ingest worker stays below its documented memory figure;
// (d) an ingest worker that hits its address-space limit costs that upload
//     only: the pool respawns or keeps it, reads are unaffected.
// (b), (c) and (d) run against polaimg instances of their own (own
// configuration, own nginx from the shipped snippet), so that killed
// workers and smaller limits do not touch the main instance.
import { test, after } from 'node:test';
import { spawn } from 'node:child_process';
import net from 'node:net';
import {
	api, assert, assertError, convertCached, fs, makeImage, path, seedWorld, sleep, token, createUser, POLAIMG_BIN, POLAIMG_CONF, TEST_TMP,
} from './lib.mjs';

const REPO = path.resolve(path.dirname(new URL(import.meta.url).pathname), '..', '..');
const POOLS = Number(process.env.ITEST_POOLS || '2');
const SERVER = process.env.ITEST_SERVER || 'nginx';
const NGINX = '/usr/sbin/nginx';
const instances = [];

after(() => {
	for (const i of instances) i.stop();
});

// A large image that takes ImageMagick seconds to decode and derive.
const bomb = () => convertCached(['-size', '6000x6000', 'gradient:#2040ff-#20c040', '-depth', '8'], 'png');
// A palette PNG of exactly w×h (the most memory a pixel takes: the index
// channel and the PNG reader's rows).
const palette = (w, h) => convertCached(['-limit', 'memory', '2GiB', '-limit', 'map', '2GiB', '-size', `${w}x${h}`,
	'xc:white', '-fill', 'black', '-draw', `line 0,0 ${w - 1},${h - 1}`, '-define', 'png:format=png8'], 'png');
const png = { contentType: 'image/png', filename: 'a.png' };

function freePort() {
	return new Promise((resolve, reject) => {
		const s = net.createServer();
		s.once('error', reject);
		s.listen(0, '127.0.0.1', () => { const { port } = s.address(); s.close(() => resolve(port)); });
	});
}

function status(pid) {
	try { return fs.readFileSync(`/proc/${pid}/status`, 'utf8'); } catch { return ''; }
}
const kb = (st, key) => Number((st.match(new RegExp(`^${key}:\\s+(\\d+) kB`, 'm')) || [0, 0])[1]);

// Starts polaimg (two pools unless pools = 1) with the main instance's
// configuration plus `extra` lines, and nginx in front of it from the
// shipped snippet. Returns { base, log(), ingestPids(), readPids(), stop() }.
async function instance(name, extra, pools = POOLS) {
	const dir = fs.mkdtempSync(path.join(TEST_TMP, `iso-${name}-`));
	const sock = path.join(dir, 'polaimg.sock');
	const isock = pools === 2 ? path.join(dir, 'ingest.sock') : sock;
	const port = await freePort();
	const drop = /^(listen|ingest_listen|workers|ingest_workers|public_base_url|log_file|max_uploads_per_user|max_pixels)\s*=/;
	const base = fs.readFileSync(POLAIMG_CONF, 'utf8').split('\n').filter((l) => !drop.test(l));
	const conf = path.join(dir, 'polaimg.conf');
	// A store of its own: a killed worker leaves its temp files there, not in
	// the main instance's (whose .tmp other tests expect empty).
	const store = path.join(dir, 'store');
	fs.mkdirSync(store);
	fs.writeFileSync(conf, [...base.filter((l) => !/^storage_dir\s*=/.test(l)), `storage_dir = ${store}`,
		`listen = unix:${sock}`, `public_base_url = http://127.0.0.1:${port}`,
		...(pools === 2 ? [`ingest_listen = unix:${isock}`] : []),
		...extra.filter((l) => pools === 2 || !/^ingest_/.test(l)), ''].join('\n'));
	const logPath = path.join(dir, 'polaimg.log');
	const logFd = fs.openSync(logPath, 'a');
	const env = Object.fromEntries(Object.entries(process.env).filter(([k]) =>
		!/^(POLAIMG_|STORAGE_|SUPABASE_)/.test(k) && !['JWT_SECRET', 'DATABASE_URL'].includes(k)));
	const proc = spawn(POLAIMG_BIN, ['-c', conf, 'serve'], { env, stdio: ['ignore', logFd, logFd] });
	const inst = { base: `http://127.0.0.1:${port}`, dir, proc, nginx: null };
	inst.log = () => fs.readFileSync(logPath, 'utf8');
	const pidsOf = (pool) => {
		const started = [...inst.log().matchAll(new RegExp(`worker (\\d+) started${pool}`, 'g'))].map((m) => Number(m[1]));
		return started.filter((p) => status(p) !== '' && !/State:\s+Z/.test(status(p)));
	};
	inst.ingestPids = () => pidsOf(pools === 2 ? ' \\(ingest pool\\)' : '');
	inst.readPids = () => pidsOf(pools === 2 ? ' \\(read pool\\)' : '');
	inst.stop = () => {
		if (inst.nginx) { try { inst.nginx.kill('SIGTERM'); } catch { /* gone */ } }
		try { proc.kill('SIGTERM'); } catch { /* gone */ }
	};
	instances.push(inst);
	for (let i = 0; i < 100 && !(fs.existsSync(sock) && fs.existsSync(isock)); i++) await sleep(100);
	assert.ok(fs.existsSync(sock) && fs.existsSync(isock), `instance ${name} did not start:\n${inst.log()}`);
	// nginx from the shipped snippet, as run.sh makes it.
	const ngx = path.join(dir, 'nginx');
	fs.mkdirSync(path.join(ngx, 'logs'), { recursive: true });
	fs.mkdirSync(path.join(ngx, 'tmp'), { recursive: true });
	for (const f of ['fastcgi_params', 'mime.types']) fs.copyFileSync(`/etc/nginx/${f}`, path.join(ngx, f));
	const snippet = fs.readFileSync(path.join(REPO, 'conf/nginx/polaimg.conf'), 'utf8')
		.replaceAll('/run/polaimg/polaimg.sock', sock).replaceAll('/run/polaimg/ingest.sock', isock)
		.replaceAll('/var/lib/polaimg/store/', `${store}/`).replaceAll('/usr/share/polaimg/www/', `${REPO}/www/`)
		.replaceAll('/var/log/nginx/access.log', `${ngx}/logs/access.log`);
	fs.writeFileSync(path.join(ngx, 'snippet.conf'), snippet);
	fs.writeFileSync(path.join(ngx, 'nginx.conf'), `user root;
worker_processes 1;
error_log ${ngx}/logs/error.log info;
pid ${ngx}/nginx.pid;
events { worker_connections 256; }
http {
	include mime.types;
	access_log ${ngx}/logs/access.log;
	include ${path.join(REPO, 'conf/nginx/polaimg-log.conf')};
	client_body_temp_path ${ngx}/tmp/body;
	proxy_temp_path ${ngx}/tmp/proxy;
	fastcgi_temp_path ${ngx}/tmp/fastcgi;
	uwsgi_temp_path ${ngx}/tmp/uwsgi;
	scgi_temp_path ${ngx}/tmp/scgi;
	server {
		listen 127.0.0.1:${port};
		root ${ngx};
		include ${ngx}/snippet.conf;
	}
}
`);
	inst.nginx = spawn(NGINX, ['-p', ngx, '-e', `${ngx}/logs/error.log`, '-c', `${ngx}/nginx.conf`, '-g', 'daemon off;'],
		{ stdio: 'ignore' });
	for (let i = 0; i < 50; i++) {
		const r = await fetch(`${inst.base}/api/v1/images/health`).catch(() => null);
		if (r && r.status === 200) return inst;
		await sleep(100);
	}
	assert.fail(`nginx for ${name} did not come up`);
}

// lib.upload goes to BASE_URL; the same request to another instance.
async function postUpload(base, tok, caseId, data) {
	const boundary = '----iso' + Math.random().toString(16).slice(2);
	const body = Buffer.concat([
		Buffer.from(`--${boundary}\r\nContent-Disposition: form-data; name="caseId"\r\n\r\n${caseId}\r\n`),
		Buffer.from(`--${boundary}\r\nContent-Disposition: form-data; name="image"; filename="a.png"\r\n` +
			'Content-Type: image/png\r\n\r\n'), data, Buffer.from(`\r\n--${boundary}--\r\n`)]);
	const res = await fetch(`${base}/api/v1/images/upload`, {
		method: 'POST', body, headers: { Authorization: `Bearer ${tok}`, 'Content-Type': `multipart/form-data; boundary=${boundary}` },
	});
	const text = await res.text();
	let json;
	try { json = JSON.parse(text); } catch { json = undefined; }
	return { status: res.status, headers: res.headers, text, json, requestId: res.headers.get('x-request-id') };
}

// Case lists in two loops until stop() is called; returns the latencies.
function readLoop(base, tok, caseId) {
	const lat = [];
	const bad = [];
	let running = true;
	const one = async () => {
		while (running) {
			const t0 = Date.now();
			const r = await fetch(`${base}/api/v1/images/cases/${caseId}`, { headers: { Authorization: `Bearer ${tok}` } });
			await r.arrayBuffer();
			lat.push(Date.now() - t0);
			if (r.status !== 200) bad.push(r.status);
			await sleep(20);
		}
	};
	const loops = [one(), one()];
	return { lat, bad, async stop() { running = false; await Promise.all(loops); } };
}

test('(a) reads never wait behind image decoding: four large uploads in flight, no case list waits 1 s', {
	skip: SERVER !== 'nginx' && 'needs nginx' || (POOLS !== 2 && !process.env.ITEST_FORCE_ISOLATION) && 'single pool',
}, async () => {
	const w = seedWorld();
	const data = bomb();
	const docs = [token(createUser('doctor')), token(createUser('doctor'))];
	// Warm: one read so that the workers' connections and caches exist.
	assert.equal((await api('GET', `/api/v1/images/cases/${w.case}`, { token: w.tPatient })).status, 200);
	const reads = readLoop(process.env.BASE_URL, w.tPatient, w.case);
	const t0 = Date.now();
	const ups = await Promise.all([0, 1, 2, 3].map((i) => postUpload(process.env.BASE_URL, docs[i % 2], w.case, data)));
	const upMs = Date.now() - t0;
	await reads.stop();
	for (const u of ups) assert.equal(u.status, 201, `bomb upload: ${u.status} ${u.text}`);
	const slow = reads.lat.filter((ms) => ms > 1000);
	const sorted = [...reads.lat].sort((x, y) => x - y);
	console.log(`# (a) uploads ${upMs} ms; ${reads.lat.length} case lists, max ${sorted.at(-1)} ms, ` +
		`p50 ${sorted[Math.floor(sorted.length / 2)]} ms, ${slow.length} over 1 s`);
	assert.deepEqual(reads.bad, [], 'every case list answered 200');
	assert.ok(reads.lat.length >= 10, `reads ran during the uploads (${reads.lat.length})`);
	assert.equal(slow.length, 0, `case lists that waited longer than 1 s: ${slow.join(', ')}`);
});

test('routing: the shipped snippet sends uploads to the ingest pool, reads and other methods to the read pool', {
	skip: (SERVER !== 'nginx' && 'needs nginx') || (POOLS !== 2 && 'single pool'),
}, async () => {
	const w = seedWorld();
	const log = () => fs.readFileSync(process.env.POLAIMG_LOG, 'utf8');
	const up = await postUpload(process.env.BASE_URL, w.tDoctor, w.case, makeImage(64, 48, 'png'));
	assert.equal(up.status, 201);
	const list = await api('GET', `/api/v1/images/cases/${w.case}`, { token: w.tPatient });
	assert.equal(list.status, 200);
	const other = await api('GET', '/api/v1/images/upload', { token: w.tDoctor });
	await sleep(200);
	const pidOf = (rid) => (log().match(new RegExp(`polaimg\\[(\\d+)\\] info: [A-Z]+ \\S+ \\d+ .* rid=${rid}`)) || [])[1];
	const ingest = [...log().matchAll(/worker (\d+) started \(ingest pool\)/g)].map((m) => m[1]);
	const read = [...log().matchAll(/worker (\d+) started \(read pool\)/g)].map((m) => m[1]);
	assert.ok(ingest.includes(pidOf(up.requestId)), 'the upload was served by an ingest worker');
	assert.ok(read.includes(pidOf(list.requestId)), 'the case list was served by a read worker');
	assert.ok(read.includes(pidOf(other.requestId)), `GET on an ingest path (${other.status}) went to the read pool`);
});

test('(b) max_uploads_per_user: the third upload in flight is refused (429), others go on; a killed worker frees its slot', {
	skip: SERVER !== 'nginx' && 'needs nginx',
}, async () => {
	// max_uploads_per_user is 2 by default.
	const inst = await instance('limit', [POOLS === 2 ? 'workers = 2' : 'workers = 4', 'ingest_workers = 4']);
	const w = seedWorld();
	const d1 = token(createUser('doctor'));
	const d2 = token(createUser('doctor'));
	const small = makeImage(64, 48, 'png');
	const big = bomb();
	// Workers decoding a large image (hundreds of MB resident): the uploads
	// in flight, as opposed to ones still queued at the socket.
	const decoding = async (n) => {
		let pids = [];
		for (let i = 0; i < 100 && pids.length < n; i++) {
			pids = inst.ingestPids().filter((p) => kb(status(p), 'VmRSS') > 100 * 1024);
			if (pids.length < n) await sleep(50);
		}
		return pids;
	};
	const inflight = [postUpload(inst.base, d1, w.case, big), postUpload(inst.base, d1, w.case, big)];
	assert.equal((await decoding(2)).length, 2, 'both uploads are being decoded');
	const third = await postUpload(inst.base, d1, w.case, small);
	assert.equal(third.status, 429, `third upload: ${third.status} ${third.text}`);
	assert.equal(third.json.code, 'TOO_MANY_UPLOADS');
	assert.match(third.headers.get('retry-after') || '', /^\d+$/, 'Retry-After');
	assert.match(third.headers.get('content-type') || '', /application\/json/);
	const other = await postUpload(inst.base, d2, w.case, small);
	assert.equal(other.status, 201, `another user's upload: ${other.status} ${other.text}`);
	for (const r of await Promise.all(inflight)) assert.equal(r.status, 201, `first two: ${r.status} ${r.text}`);
	const after2 = await postUpload(inst.base, d1, w.case, small);
	assert.equal(after2.status, 201, `after the two finished: ${after2.status} ${after2.text}`);

	// Two uploads in flight, then their workers are SIGKILLed: the slots
	// are released by the master, so the user may upload again at once.
	const doomed = [postUpload(inst.base, d1, w.case, big), postUpload(inst.base, d1, w.case, big)];
	const busy = await decoding(2);
	assert.equal(busy.length, 2, `two ingest workers decoding (${busy})`);
	assert.equal((await postUpload(inst.base, d1, w.case, small)).status, 429, 'limit reached again');
	for (const p of busy) process.kill(p, 'SIGKILL');
	for (const r of await Promise.all(doomed)) assert.ok(r.status >= 500, `killed upload answered ${r.status}`);
	// The master releases a slot when it reaps the worker (SIGCHLD):
	// nginx may see the connection close a moment before that.
	for (let i = 0; i < 50 && busy.some((p) => status(p) !== ''); i++) await sleep(100);
	let again;
	for (let i = 0; i < 20; i++) {
		again = await postUpload(inst.base, d1, w.case, small);
		if (again.status === 201) break;
		await sleep(200);
	}
	assert.equal(again.status, 201, `after the kill: ${again.status} ${again.text}`);
});

test('(c) max_pixels boundary: exactly max_pixels is processed, one pixel more refused; memory below the documented figure', {
	skip: SERVER !== 'nginx' && 'needs nginx',
}, async () => {
	const inst = await instance('pixels', ['max_pixels = 16000000', 'ingest_workers = 1', 'workers = 1']);
	const w = seedWorld();
	const exact = palette(4000, 4000);
	const over = palette(4000, 4001);
	const r = await postUpload(inst.base, w.tDoctor, w.case, exact);
	assert.equal(r.status, 201, `4000x4000 at max_pixels 16000000: ${r.status} ${r.text}`);
	assert.equal(r.json.data.width, 4000);
	const o = await postUpload(inst.base, w.tDoctor, w.case, over);
	assertError({ ...o, buf: Buffer.from(o.text) }, 422, 'UNPROCESSABLE_IMAGE');
	if (POOLS === 2) {
		const m = inst.log().match(/address space limited to (\d+) MiB/);
		assert.ok(m, 'the ingest worker logs its limit');
		const limitKb = Number(m[1]) * 1024;
		// 16 bytes a pixel + 224 MiB + 384 MiB (README).
		assert.equal(Number(m[1]), Math.floor((16 * 16000000 + (224 + 384) * 1048576) / 1048576));
		const [pid] = inst.ingestPids();
		const st = status(pid);
		console.log(`# (c) ingest worker ${pid}: VmHWM ${kb(st, 'VmHWM')} kB, VmPeak ${kb(st, 'VmPeak')} kB, ` +
			`limit ${limitKb} kB`);
		assert.ok(kb(st, 'VmHWM') > 200 * 1024, 'the worker that decoded it is the one measured');
		assert.ok(kb(st, 'VmHWM') < limitKb, 'VmHWM below the documented figure');
		assert.ok(kb(st, 'VmPeak') < limitKb, 'VmPeak below RLIMIT_AS');
	}
});

test('(d) an ingest worker at its address-space limit costs that upload only; reads and the pool go on', {
	skip: (SERVER !== 'nginx' && 'needs nginx') || (POOLS !== 2 && 'needs the ingest pool'),
}, async () => {
	const inst = await instance('rlimit', ['max_pixels = 16000000', 'ingest_workers = 1', 'workers = 1',
		'ingest_memory_limit = 320m']);
	const w = seedWorld();
	const before = inst.ingestPids();
	const r = await postUpload(inst.base, w.tDoctor, w.case, palette(4000, 4000));
	assert.ok([422, 500, 502, 503].includes(r.status), `upload past RLIMIT_AS: ${r.status} ${r.text}`);
	const list = await fetch(`${inst.base}/api/v1/images/cases/${w.case}`, { headers: { Authorization: `Bearer ${w.tPatient}` } });
	assert.equal(list.status, 200, 'reads unaffected');
	let ok;
	for (let i = 0; i < 30; i++) {
		ok = await postUpload(inst.base, w.tDoctor, w.case, makeImage(64, 48, 'png'));
		if (ok.status === 201) break;
		await sleep(200);
	}
	assert.equal(ok.status, 201, `a small upload afterwards: ${ok.status} ${ok.text}`);
	console.log(`# (d) upload past the limit: ${r.status}; ingest workers before ${before}, after ${inst.ingestPids()}`);
	assert.equal(inst.readPids().length, 1, 'the read worker is still there');
});

// A measurement more than a test (the image takes ImageMagick ~15 s to make):
// ITEST_MEASURE_DEFAULT=1 runs it.
test('(e) the default max_pixels (50 MP): a 7071x7071 palette PNG is processed under the default limits', {
	skip: (SERVER !== 'nginx' && 'needs nginx') || (!process.env.ITEST_MEASURE_DEFAULT && 'set ITEST_MEASURE_DEFAULT=1'),
}, async () => {
	const inst = await instance('default', ['ingest_workers = 1', 'workers = 1']);
	const w = seedWorld();
	const t0 = Date.now();
	const r = await postUpload(inst.base, w.tDoctor, w.case, palette(7071, 7071));
	assert.equal(r.status, 201, `7071x7071 at the default max_pixels: ${r.status} ${r.text}`);
	const [pid] = inst.ingestPids();
	const st = status(pid);
	const m = inst.log().match(/address space limited to (\d+) MiB/);
	console.log(`# (e) ${Date.now() - t0} ms; worker ${pid}: VmHWM ${kb(st, 'VmHWM')} kB, VmPeak ${kb(st, 'VmPeak')} kB, ` +
		`limit ${m ? m[1] : '-'} MiB`);
	if (m) assert.ok(kb(st, 'VmPeak') < Number(m[1]) * 1024);
});
