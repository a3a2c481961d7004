// Helpers for the polaimg robustness suite (tests/robustness/*.test.mjs),
// run through tests/integration/run.sh, whose PostgreSQL, polaimg and nginx
// they use (see ../integration/lib.mjs for the environment).
//
// Fault scenarios kill workers, fill disks and change settings, so they run
// against instances of their own: startInstance() starts another polaimg
// master (its own configuration, socket, log, database and storage) behind
// another nginx on a free port. The database is a new one in the harness's
// PostgreSQL cluster, migrated by `polaimg migrate`, so that `polaimg
// verify` on an instance sees exactly the images stored in that instance's
// storage. When the harness runs another storage back end, its storage
// settings are inherited too (every key of the harness's configuration is;
// only local-disk scenarios override storage_dir). Every instance started
// is stopped by stopAll() (call it in after()).
//
// Figures for the summary of tests/robustness/run.sh are written with
// record(name, object) to $ROBUST_RESULTS_DIR/<name>.json when that is set.

import { execFileSync, spawn, spawnSync } from 'node:child_process';
import { generateKeyPairSync } from 'node:crypto';
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import {
	POLAIMG_BIN, POLAIMG_CONF, TEST_TMP, api, assert, lit, multipart, serviceEnv, sleep, sql, token, uuid,
} from '../integration/lib.mjs';

export const REPO_ROOT = path.resolve(path.dirname(new URL(import.meta.url).pathname), '../..');
export const RESULTS_DIR = process.env.ROBUST_RESULTS_DIR || '';
export const BASE_CONF_TEXT = fs.readFileSync(POLAIMG_CONF, 'utf8');

// The harness's settings as a map (key = value lines).
export function parseConf(text) {
	const out = {};
	for (const line of text.split('\n')) {
		const m = /^\s*([a-z0-9_]+)\s*=\s*(.*?)\s*$/.exec(line);
		if (m) out[m[1]] = m[2];
	}
	return out;
}
export const BASE_CONF = parseConf(BASE_CONF_TEXT);
export const STORAGE_PROVIDER = BASE_CONF.storage_provider || 'local';
export const isLocal = STORAGE_PROVIDER === 'local';

// Appends figures to $ROBUST_RESULTS_DIR/<name>.json (merged into what is there).
export function record(name, obj) {
	if (!RESULTS_DIR) return;
	fs.mkdirSync(RESULTS_DIR, { recursive: true });
	const p = path.join(RESULTS_DIR, `${name}.json`);
	let cur = {};
	try { cur = JSON.parse(fs.readFileSync(p, 'utf8')); } catch { /* first */ }
	fs.writeFileSync(p, JSON.stringify({ ...cur, ...obj }, null, 1));
}

// ---- processes ------------------------------------------------------------------

// Parent pid of pid from /proc, or -1.
function ppidOf(pid) {
	try {
		const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
		return Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
	} catch { return -1; }
}

// Live children of pid (zombies excluded).
export function childrenOf(pid) {
	const out = [];
	for (const d of fs.readdirSync('/proc')) {
		if (!/^\d+$/.test(d)) continue;
		if (ppidOf(Number(d)) !== pid) continue;
		try {
			const st = fs.readFileSync(`/proc/${d}/stat`, 'utf8');
			if (st.slice(st.lastIndexOf(')') + 2)[0] === 'Z') continue;
		} catch { continue; }
		out.push(Number(d));
	}
	return out.sort((a, b) => a - b);
}

export function alive(pid) {
	try { process.kill(pid, 0); return true; } catch { return false; }
}

// VmRSS of pid in KiB, or -1.
export function rssKiB(pid) {
	try {
		const m = /VmRSS:\s+(\d+) kB/.exec(fs.readFileSync(`/proc/${pid}/status`, 'utf8'));
		return m ? Number(m[1]) : -1;
	} catch { return -1; }
}

// Paths of the files pid has open.
export function openFiles(pid) {
	const out = [];
	try {
		for (const fd of fs.readdirSync(`/proc/${pid}/fd`)) {
			try { out.push(fs.readlinkSync(`/proc/${pid}/fd/${fd}`)); } catch { /* closed meanwhile */ }
		}
	} catch { /* gone */ }
	return out;
}

// Polls fn until it returns a truthy value or ms pass; returns the value (or false).
export async function eventually(fn, ms = 10000, every = 100) {
	const deadline = Date.now() + ms;
	for (;;) {
		try {
			const v = await fn();
			if (v) return v;
		} catch { /* keep polling */ }
		if (Date.now() > deadline) return false;
		await sleep(every);
	}
}

async function portFree(port) {
	return new Promise((resolve) => {
		const s = net.createServer();
		s.once('error', () => resolve(false));
		s.listen(port, '127.0.0.1', () => s.close(() => resolve(true)));
	});
}

let nextPort = 18300 + (process.pid % 200);
async function freePort() {
	for (let i = 0; i < 400; i++) {
		const p = nextPort++;
		if (nextPort > 18999) nextPort = 18300;
		if (await portFree(p)) return p;
	}
	throw new Error('no free port');
}

// ---- instances ------------------------------------------------------------------------

const instances = [];
let seq = 0;

// The harness's configuration with overrides (value null removes the key).
export function confText(overrides) {
	const kv = { ...BASE_CONF, ...overrides };
	return Object.entries(kv).filter(([, v]) => v !== null && v !== undefined)
		.map(([k, v]) => `${k} = ${v}`).join('\n') + '\n';
}

// nginx in front of one or more polaimg sockets (an upstream with failover
// when several). store: the local storage root (for the internal location).
// The instances run one pool each (these tests are about one master's
// faults; isolation.test.mjs tests the two pools), so the shipped snippet's
// ingest socket is mapped to the same socket as its read socket. Inside an
// `if` (the snippet's method switch) only fastcgi_pass itself is allowed.
function nginxConf(dir, port, sockets, store) {
	const snippet = fs.readFileSync(path.join(REPO_ROOT, 'conf/nginx/polaimg.conf'), 'utf8')
		.replace(/^( +)fastcgi_pass unix:\/run\/polaimg\/(?:polaimg|ingest)\.sock;/gm, (m, indent) => {
			if (sockets.length === 1) return `${indent}fastcgi_pass unix:${sockets[0]};`;
			if (indent.length > 4) return `${indent}fastcgi_pass polaimg_pool;`;
			return `${indent}fastcgi_pass polaimg_pool;\n${indent}fastcgi_next_upstream error timeout;\n` +
				`${indent}fastcgi_next_upstream_tries 2;`;
		})
		.replace(/\/var\/lib\/polaimg\/store\//g, `${store}/`)
		.replace(/\/var\/log\/nginx\/access\.log/g, `${dir}/logs/access.log`);
	if (/\/run\/polaimg\//.test(snippet)) throw new Error('a socket of the shipped snippet was not mapped');
	fs.writeFileSync(path.join(dir, 'polaimg-snippet.conf'), snippet);
	const upstream = sockets.length === 1 ? '' :
		`upstream polaimg_pool {\n${sockets.map((s) => `\t\tserver unix:${s} max_fails=1 fail_timeout=30s;`).join('\n')}\n\t}`;
	return `user root;
worker_processes 2;
error_log ${dir}/logs/error.log warn;
pid ${dir}/nginx.pid;
events { worker_connections 1024; }
http {
	include ${dir}/mime.types;
	default_type application/octet-stream;
	access_log off;
	include ${path.join(REPO_ROOT, 'conf/nginx/polaimg-log.conf')};
	client_body_temp_path ${dir}/tmp/body;
	proxy_temp_path ${dir}/tmp/proxy;
	fastcgi_temp_path ${dir}/tmp/fastcgi;
	uwsgi_temp_path ${dir}/tmp/uwsgi;
	scgi_temp_path ${dir}/tmp/scgi;
	sendfile on;
	${upstream}
	server {
		listen 127.0.0.1:${port} backlog=1024;
		server_name localhost;
		include ${dir}/polaimg-snippet.conf;
	}
}
`;
}

// A polaimg master started with conf (text) at confPath, logging to logPath.
function startMaster(confPath, logPath, { valgrind = null } = {}) {
	const out = fs.openSync(logPath, 'a');
	const args = ['-c', confPath, 'serve'];
	const child = valgrind
		? spawn('valgrind', [...valgrind, POLAIMG_BIN, ...args], { stdio: ['ignore', out, out], env: serviceEnv() })
		: spawn(POLAIMG_BIN, args, { stdio: ['ignore', out, out], env: serviceEnv() });
	fs.closeSync(out);
	return child;
}

async function waitSocket(sock, child, ms = 15000) {
	const ok = await eventually(() => fs.existsSync(sock) || child.exitCode !== null, ms);
	if (!ok || child.exitCode !== null) throw new Error(`polaimg did not come up on ${sock}`);
}

// Starts polaimg (one master, or `masters` masters for scale-out) and one
// nginx. opts: conf (overrides of the harness's settings), storageDir
// (local storage root; default: a new directory), masters (default 1),
// valgrind (argument list: run the master under valgrind).
// Returns an object with base (URL), conf/confPath/log of each master,
// pids, helpers (workers(), cli(), stop(), killMaster(i)).
export async function startInstance(opts = {}) {
	const id = `rob${process.pid}-${++seq}`;
	const dir = path.join(TEST_TMP, id);
	fs.mkdirSync(path.join(dir, 'logs'), { recursive: true });
	fs.mkdirSync(path.join(dir, 'tmp'), { recursive: true });
	fs.mkdirSync(path.join(dir, 'spool'), { recursive: true }); // audit_spool_dir: one per database
	const storageDir = opts.storageDir || path.join(dir, 'store');
	fs.mkdirSync(storageDir, { recursive: true });
	const port = await freePort();
	const base = `http://127.0.0.1:${port}`;
	const n = opts.masters || 1;
	const db = id.replace(/[^a-z0-9]/g, '_');
	const inst = {
		id, dir, port, base, storageDir, db, masters: [], nginx: null,
	};
	sql(`CREATE DATABASE ${db}`);
	for (let i = 0; i < n; i++) {
		const sock = path.join(dir, `polaimg-${i}.sock`);
		const confPath = path.join(dir, `polaimg-${i}.conf`);
		const log = path.join(dir, `polaimg-${i}.log`);
		// One pool (ingest_listen removed): the harness's own ingest socket
		// belongs to the harness's instance. No per-user limit of uploads
		// (max_uploads_per_user = 0): the load and fault scenarios upload
		// as one doctor from many connections (isolation.test.mjs tests
		// the limit).
		const over = {
			listen: `unix:${sock}`, ingest_listen: null, max_uploads_per_user: 0,
			public_base_url: base, log_level: 'info',
			audit_spool_dir: path.join(dir, 'spool'),
			database_url: `host=${process.env.PGHOST} dbname=${db} user=${process.env.PGUSER || 'postgres'}`,
			...(opts.conf || {}),
		};
		if (isLocal) over.storage_dir = storageDir;
		fs.writeFileSync(confPath, confText(over));
		if (i === 0) {
			const m = spawnSync(POLAIMG_BIN, ['-c', confPath, 'migrate', '--dir', path.join(REPO_ROOT, 'sql')],
				{ encoding: 'utf8', env: serviceEnv() });
			if (m.status !== 0) throw new Error(`migrate ${db}: ${m.stdout}${m.stderr}`);
		}
		const child = startMaster(confPath, log, { valgrind: opts.valgrind });
		inst.masters.push({ sock, confPath, log, child, pid: child.pid });
	}
	instances.push(inst);
	for (const m of inst.masters) await waitSocket(m.sock, m.child, opts.valgrind ? 60000 : 15000);
	for (const f of ['fastcgi_params', 'mime.types']) fs.copyFileSync(`/etc/nginx/${f}`, path.join(dir, f));
	fs.writeFileSync(path.join(dir, 'nginx.conf'), nginxConf(dir, port, inst.masters.map((m) => m.sock), storageDir));
	const nginx = spawn('/usr/sbin/nginx', ['-p', dir, '-e', path.join(dir, 'logs/error.log'), '-c',
		path.join(dir, 'nginx.conf'), '-g', 'daemon off;'], { stdio: 'ignore' });
	inst.nginx = nginx;
	const up = await eventually(() => new Promise((resolve) => {
		const s = net.connect(port, '127.0.0.1');
		s.on('connect', () => { s.destroy(); resolve(true); });
		s.on('error', () => resolve(false));
	}), 10000);
	if (!up) throw new Error(`nginx did not start on ${port}`);

	inst.conf = inst.masters[0].confPath;
	inst.log = inst.masters[0].log;
	inst.masterPid = inst.masters[0].pid;
	// Worker pids of master i (default 0).
	inst.workers = (i = 0) => childrenOf(inst.masters[i].pid);
	// Waits until master i runs `count` workers; returns their pids.
	inst.waitWorkers = async (count, i = 0, ms = 15000) =>
		eventually(() => { const w = inst.workers(i); return w.length === count ? w : false; }, ms);
	// `polaimg -c <conf of master 0> args…` → {status, stdout, stderr}.
	inst.cli = (...args) => {
		const r = spawnSync(POLAIMG_BIN, ['-c', inst.conf, ...args], { encoding: 'utf8', timeout: 120000, env: serviceEnv() });
		return { status: r.status, stdout: r.stdout || '', stderr: r.stderr || '' };
	};
	// polaimg verify on this instance's storage: asserts zero losses.
	inst.verifyOk = (what = '') => verifyOk(inst.cli, what);
	inst.logText = (i = 0) => { try { return fs.readFileSync(inst.masters[i].log, 'utf8'); } catch { return ''; } };
	// SIGKILLs master i and every worker it has.
	inst.killMaster = (i = 0) => {
		const m = inst.masters[i];
		const ws = childrenOf(m.pid);
		try { process.kill(m.pid, 'SIGKILL'); } catch { /* gone */ }
		for (const w of ws) { try { process.kill(w, 'SIGKILL'); } catch { /* gone */ } }
		m.killed = true;
		return ws;
	};
	inst.stop = () => stopInstance(inst);
	// SQL on the instance's database (psql -At; rows of fields).
	inst.sql = (q) => execFileSync('psql', ['-X', '-q', '-At', '-F', '\x1f', '-v', 'ON_ERROR_STOP=1', '-d', db, '-c', q],
		{ encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] }).split('\n').filter((l) => l).map((l) => l.split('\x1f'));
	inst.countRows = (where = 'true') => Number(inst.sql(`SELECT count(*) FROM case_images WHERE ${where}`)[0][0]);
	// seedWorld() of lib.mjs, in this instance's database.
	inst.seedWorld = () => {
		const w = {
			patient: uuid(), otherPatient: uuid(), doctor: uuid(), admin: uuid(), case: uuid(), otherCase: uuid(),
		};
		inst.sql(`INSERT INTO users (id, role, is_active) VALUES (${lit(w.patient)}, 'patient', true),
			(${lit(w.otherPatient)}, 'patient', true), (${lit(w.doctor)}, 'doctor', true),
			(${lit(w.admin)}, 'admin', true);
			INSERT INTO patient_cases (id, patient_id) VALUES (${lit(w.case)}, ${lit(w.patient)}),
			(${lit(w.otherCase)}, ${lit(w.otherPatient)})`);
		w.tPatient = token(w.patient, { exp: Math.floor(Date.now() / 1000) + 86400 });
		w.tOther = token(w.otherPatient, { exp: Math.floor(Date.now() / 1000) + 86400 });
		w.tDoctor = token(w.doctor, { exp: Math.floor(Date.now() / 1000) + 86400 });
		w.tAdmin = token(w.admin, { exp: Math.floor(Date.now() / 1000) + 86400 });
		return w;
	};
	// POST /upload of data (bytes) to caseId with token tok → api() result.
	inst.upload = (tok, caseId, data, { filename = 'a.jpg', contentType = 'image/jpeg' } = {}) => {
		const mp = multipart({ caseId }, { filename, contentType, data });
		return api('POST', `${base}/api/v1/images/upload`, {
			token: tok, body: mp.body, headers: { 'Content-Type': mp.contentType },
		});
	};
	return inst;
}

async function stopProc(child, signal, ms) {
	if (!child || child.exitCode !== null || child.signalCode !== null) return;
	const done = new Promise((r) => child.once('exit', r));
	try { child.kill(signal); } catch { return; }
	const t = await Promise.race([done.then(() => true), sleep(ms).then(() => false)]);
	if (!t) { try { child.kill('SIGKILL'); } catch { /* gone */ } await done; }
}

export async function stopInstance(inst) {
	const i = instances.indexOf(inst);
	if (i >= 0) instances.splice(i, 1);
	await stopProc(inst.nginx, 'SIGQUIT', 5000);
	for (const m of inst.masters) {
		const ws = childrenOf(m.pid);
		await stopProc(m.child, 'SIGTERM', 15000);
		for (const w of ws) { try { process.kill(w, 'SIGKILL'); } catch { /* gone */ } }
	}
}

export async function stopAll() {
	for (const inst of [...instances]) await stopInstance(inst);
}

// Runs `polaimg verify` through cli and asserts it found nothing wrong;
// returns its summary line.
export function verifyOk(cli, what = '') {
	const r = cli('verify', '--quiet');
	const summary = (r.stdout.match(/^verify: .*$/m) || [''])[0];
	assert.equal(r.status, 0, `polaimg verify after ${what}: exit ${r.status}\n${r.stdout}\n${r.stderr}`);
	assert.match(summary, / 0 missing, 0 mismatched, 0 unreadable,/);
	return summary;
}

// The master's log lines about workers that ended abnormally (a signal, a
// non-zero status); recycling after max_requests is normal.
export function workerEndLines(text) {
	return text.split('\n').filter((l) =>
		/master: worker \d+ (killed by signal|exited with status [1-9]|ended with wait status)/.test(l));
}

// ---- keys -----------------------------------------------------------------------------

// A fresh RSA key pair as PEM strings.
export function rsaKeys(bits = 2048) {
	return generateKeyPairSync('rsa', {
		modulusLength: bits,
		publicKeyEncoding: { type: 'spki', format: 'pem' },
		privateKeyEncoding: { type: 'pkcs8', format: 'pem' },
	});
}

// ---- misc -----------------------------------------------------------------------------

export function dfAvail(dir) {
	const out = execFileSync('df', ['-B1', '--output=avail', dir], { encoding: 'utf8' });
	return Number(out.trim().split('\n')[1]);
}

