// The polaimg command line next to the running service: --version,
// check-config (secrets masked), refusal of a bad config, migrate again.
import { test } from 'node:test';
import {
	JWT_SECRET, PACKAGE_VERSION, POLAIMG_BIN, POLAIMG_CONF, STORAGE_DIR, URL_SIGNING_KEY, assert, fs, path, polaimgCli, serviceEnv, sqlRows, sqlValue,
	TEST_TMP,
} from './lib.mjs';
import { spawnSync } from 'node:child_process';

function runWith(confText, ...args) {
	const p = path.join(TEST_TMP, `cli-${process.pid}-${Math.random().toString(36).slice(2)}.conf`);
	fs.writeFileSync(p, confText);
	try {
		return spawnSync(POLAIMG_BIN, ['-c', p, ...args], { encoding: 'utf8', env: serviceEnv(), timeout: 30000 });
	} finally {
		fs.rmSync(p, { force: true });
	}
}

test('cli: --version prints "polaimg <version of configure.ac>"', () => {
	const r = polaimgCli('--version');
	assert.equal(r.status, 0);
	assert.equal(r.stdout, `polaimg ${PACKAGE_VERSION}\n`);
});

test('cli: check-config succeeds and masks the secrets', () => {
	const r = polaimgCli('check-config');
	assert.equal(r.status, 0, r.stderr);
	const out = r.stdout + r.stderr;
	assert.match(out, /max_upload_bytes/);
	assert.ok(!out.includes(JWT_SECRET), 'jwt_secret is masked');
	assert.ok(!out.includes(URL_SIGNING_KEY), 'url_signing_key is masked');
});

test('cli: an unknown key makes polaimg exit non-zero naming the key', () => {
	const conf = `${fs.readFileSync(POLAIMG_CONF, 'utf8')}\nbogus_setting = 1\n`;
	const r = runWith(conf, 'check-config');
	assert.notEqual(r.status, 0);
	assert.match(r.stdout + r.stderr, /bogus_setting/);
});

test('cli: a bad value (jwt_secret shorter than 32 bytes) is refused naming the key', () => {
	const conf = fs.readFileSync(POLAIMG_CONF, 'utf8').replace(/^jwt_secret = .*$/m, 'jwt_secret = short');
	const r = runWith(conf, 'check-config');
	assert.notEqual(r.status, 0);
	assert.match(r.stdout + r.stderr, /jwt_secret/);
	assert.ok(!(r.stdout + r.stderr).includes(JWT_SECRET));
});

test('cli: migrate once more is a no-op', () => {
	const migrations = () => sqlRows('SELECT version, applied_at FROM schema_migrations ORDER BY version');
	const applied = migrations();
	assert.ok(applied.length > 0, 'the harness has migrated');
	const before = sqlValue('SELECT count(*) FROM case_images');
	const r = polaimgCli('migrate');
	assert.equal(r.status, 0, r.stderr);
	assert.equal(r.stdout, `migrations: 0 applied, ${applied.length} already present\n`);
	assert.deepEqual(migrations(), applied, 'schema_migrations unchanged');
	assert.equal(sqlValue('SELECT count(*) FROM case_images'), before);
});

// --- A configuration no worker can start with (item: broken config reported as running) ---

const baseConf = () => fs.readFileSync(POLAIMG_CONF, 'utf8')
	.replace(/^(listen|ingest_listen|ingest_workers|workers|log_file) = .*$/mg, '');

test('cli: check-config runs the checks of a worker and reports every problem at once', () => {
	// HS512 wants a 64-byte secret (the harness's is 48); no policy.xml there.
	const conf = `${baseConf()}\njwt_algorithm = HS512\nimaging_policy_dir = /nonexistent-policy\n`;
	const r = runWith(conf, 'check-config');
	assert.equal(r.status, 1, r.stdout + r.stderr);
	assert.match(r.stderr, /jwt_secret: must be at least 64 bytes for HS512/);
	assert.match(r.stderr, /imaging_policy_dir: \/nonexistent-policy\/policy\.xml/);
	assert.ok(!(r.stdout + r.stderr).includes(JWT_SECRET));
	const rs = runWith(`${baseConf()}\njwt_algorithm = RS256\njwt_public_key_file = /nonexistent.pem\n`, 'check-config');
	assert.equal(rs.status, 1, rs.stdout + rs.stderr);
	assert.match(rs.stderr, /jwt: cannot open the public key file; jwt_public_key_file = \/nonexistent\.pem/);
});

test('cli: check-config --json is one object {ok, errors[], counts}', () => {
	const good = polaimgCli('check-config', '--json');
	assert.equal(good.status, 0, good.stderr);
	assert.deepEqual(JSON.parse(good.stdout), { ok: true, errors: [], counts: { errors: 0 } });
	const bad = runWith(`${baseConf()}\njwt_algorithm = HS512\nimaging_policy_dir = /nonexistent-policy\n`, 'check-config', '--json');
	assert.equal(bad.status, 1);
	const o = JSON.parse(bad.stdout);
	assert.equal(o.ok, false);
	assert.equal(o.errors.length, 3, o.errors.join('\n'));   // the value, the policy, the key
	assert.equal(o.counts.errors, 3);
	assert.ok(o.errors.some((e) => e.startsWith('imaging_policy_dir:')));
});

test('cli: serve with such a configuration exits non-zero at once, naming the problems', () => {
	const dir = fs.mkdtempSync(path.join(TEST_TMP, 'serve-bad-'));
	try {
		const conf = `${baseConf()}\nlisten = unix:${dir}/s.sock\nworkers = 1\njwt_algorithm = RS256\n` +
			`jwt_public_key_file = ${dir}/missing.pem\nimaging_policy_dir = /nonexistent-policy\n`;
		// Before: the master forked workers that all exited at start, for ever (the timeout below).
		const r = runWith(conf, 'serve');
		assert.equal(r.status, 1, `status ${r.status} signal ${r.signal}: ${r.stderr.slice(-2000)}`);
		assert.match(r.stderr, /imaging_policy_dir/);
		assert.match(r.stderr, /jwt_public_key_file/);
		assert.ok(!fs.existsSync(`${dir}/s.sock`), 'no socket was opened');
	} finally {
		fs.rmSync(dir, { recursive: true, force: true });
	}
});

test('cli: a POLAIMG_ variable that is not a key (a script\'s POLAIMG_BIN) is a warning, not a refusal', () => {
	const r = spawnSync(POLAIMG_BIN, ['-c', POLAIMG_CONF, 'check-config'],
		{ encoding: 'utf8', env: { ...serviceEnv(), POLAIMG_BIN: '/usr/sbin/polaimg', POLAIMG_NOTAKEY: '1' }, timeout: 30000 });
	assert.equal(r.status, 0, r.stderr);
	assert.match(r.stderr, /warning: environment POLAIMG_BIN: not a polaimg key; ignored/);
	assert.match(r.stderr, /POLAIMG_NOTAKEY/);
	// A known key with a bad value is still refused.
	const bad = spawnSync(POLAIMG_BIN, ['-c', POLAIMG_CONF, 'check-config'],
		{ encoding: 'utf8', env: { ...serviceEnv(), POLAIMG_WORKERS: 'many' }, timeout: 30000 });
	assert.notEqual(bad.status, 0);
	assert.match(bad.stderr, /POLAIMG_WORKERS/);
});

// Waits until text(s) matches re; false after ms.
async function waitFor(text, re, ms) {
	const end = Date.now() + ms;
	while (Date.now() < end) {
		if (re.test(text())) return true;
		await new Promise((r) => setTimeout(r, 100));
	}
	return false;
}

test('cli: built and not installed, serve finds the tree\'s conf/policy.xml; SIGHUP with a broken configuration keeps the workers', {
	skip: !process.env.ITEST_BUILT_BIN && 'an installed binary',
}, async () => {
	const BUILT = process.env.ITEST_BUILT_BIN;
	const { spawn } = await import('node:child_process');
	const dir = fs.mkdtempSync(path.join(TEST_TMP, 'serve-tree-'));
	const confPath = path.join(dir, 'polaimg.conf');
	const conf = `${baseConf().replace(/^imaging_policy_dir = .*$/mg, '')}\nlisten = unix:${dir}/s.sock\nworkers = 1\nlog_level = debug\n`;
	fs.writeFileSync(confPath, conf);
	const child = spawn(BUILT, ['-c', confPath, 'serve'], { env: serviceEnv(), stdio: ['ignore', 'ignore', 'pipe'] });
	let err = '';
	child.stderr.on('data', (d) => { err += d; });
	const exited = new Promise((resolve) => child.on('exit', (code, signal) => resolve({ code, signal })));
	try {
		// Before: "the ImageMagick policy in /usr/local/share/polaimg is not in force", respawned for ever.
		assert.ok(await waitFor(() => err, /worker ready/, 20000), err.slice(-3000));
		assert.doesNotMatch(err, /not in force|cannot start/);
		const check = spawnSync(BUILT, ['-c', confPath, 'check-config'], { encoding: 'utf8', env: serviceEnv() });
		assert.equal(check.status, 0, check.stderr);
		assert.match(check.stdout, /^imaging_policy_dir = \/\S+\/conf  # /m);

		// SIGHUP with a configuration no worker could start with: logged, nothing changes.
		fs.writeFileSync(confPath, `${conf}\nimaging_policy_dir = ${dir}/no-policy\n`);
		const mark = err.length;
		child.kill('SIGHUP');
		assert.ok(await waitFor(() => err.slice(mark), /reload failed; keeping the current configuration and workers/, 20000), err.slice(mark));
		assert.match(err.slice(mark), /reload: imaging_policy_dir: .*no-policy\/policy\.xml/);
		assert.doesNotMatch(err.slice(mark), /worker \d+ started/);
		assert.equal(child.exitCode, null, 'the master is still running');
	} finally {
		child.kill('SIGTERM');
		const end = await exited;
		fs.rmSync(dir, { recursive: true, force: true });
		assert.equal(end.code, 0, `serve ended ${JSON.stringify(end)}: ${err.slice(-2000)}`);
	}
});

// --- Each host cleans its own scratch space (storage_dir/.tmp) ---

test('serve: removes this host\'s temp files whose writer is gone, at start and when it reaps a worker; never another host\'s or a live writer\'s', async () => {
	const { spawn } = await import('node:child_process');
	const os = await import('node:os');
	const tmp = path.join(STORAGE_DIR, '.tmp');
	fs.mkdirSync(tmp, { recursive: true });
	const host = os.hostname().slice(0, 64).replace(/[^A-Za-z0-9.-]/g, '_');
	const dead = spawnSync('true').pid;   // exited: its pid names no process
	const f = (name) => path.join(tmp, name);
	const mine = f(`up-${host}-${dead}-aaaaaa`);
	const other = f(`up-other-host-${dead}-bbbbbb`);
	const live = f(`up-${host}-${process.pid}-cccccc`);
	for (const p of [mine, other, live]) fs.writeFileSync(p, Buffer.alloc(600 * 1024));
	const dir = fs.mkdtempSync(path.join(TEST_TMP, 'serve-tmp-'));
	const confPath = path.join(dir, 'polaimg.conf');
	fs.writeFileSync(confPath, `${baseConf()}\nlisten = unix:${dir}/s.sock\nworkers = 1\nlog_level = debug\n`);
	const child = spawn(POLAIMG_BIN, ['-c', confPath, 'serve'], { env: serviceEnv(), stdio: ['ignore', 'ignore', 'pipe'] });
	let err = '';
	child.stderr.on('data', (d) => { err += d; });
	const exited = new Promise((resolve) => child.on('exit', (code, signal) => resolve({ code, signal })));
	let killed;
	try {
		assert.ok(await waitFor(() => err, /worker ready/, 20000), err.slice(-3000));
		// Before: nothing removed them; README told to run sweep on one host only.
		assert.ok(!fs.existsSync(mine), 'this host\'s file of a gone writer is removed at start');
		assert.ok(fs.existsSync(other), 'another host\'s file is left alone (a shared mount)');
		assert.ok(fs.existsSync(live), 'a live writer\'s file is left alone');
		const wpid = Number(/worker (\d+) started/.exec(err)[1]);
		killed = f(`up-${host}-${wpid}-dddddd`);
		fs.writeFileSync(killed, Buffer.alloc(600 * 1024));
		process.kill(wpid, 'SIGKILL');   // as request_timeout or the OOM killer would
		assert.ok(await waitFor(() => (fs.existsSync(killed) ? '' : 'gone'), /gone/, 10000),
			`the killed worker's temp file is removed when the master reaps it: ${err.slice(-1500)}`);
		// The master logs after the unlink: wait for the line, do not race it.
		assert.ok(await waitFor(() => err, new RegExp(`removed 1 temp file of worker ${wpid}`), 10000),
			err.slice(-1500));
		assert.ok(fs.existsSync(other) && fs.existsSync(live));
	} finally {
		child.kill('SIGTERM');
		await exited;
		for (const p of [mine, other, live, killed].filter(Boolean)) fs.rmSync(p, { force: true });
		fs.rmSync(dir, { recursive: true, force: true });
	}
});
