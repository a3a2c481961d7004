// The polaimg command line next to the running service: --version,
// check-config (secrets masked), refusal of a bad config, migrate again.
import { test } from 'node:test';
import {
	JWT_SECRET, PACKAGE_VERSION, POLAIMG_BIN, POLAIMG_CONF, URL_SIGNING_KEY, assert, fs, path, polaimgCli, serviceEnv, sqlRows, sqlValue,
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
