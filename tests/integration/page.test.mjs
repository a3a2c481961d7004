// The clinic web page as the shipped web-server configuration serves it
// (nginx snippet or Apache conf-available file): the files are there, and
// the security headers the page relies on come with them — above all a
// Content-Security-Policy that allows no inline script. The page's
// behaviour is tested in a browser by tests/e2e/.
import { test } from 'node:test';
import { assert, BASE_PORT, BASE_URL, rawRequest } from './lib.mjs';

async function get(path) {
	const r = await fetch(BASE_URL + path, { redirect: 'manual' });
	return { status: r.status, headers: r.headers, text: await r.text() };
}

test('page: /images/ is the web page, with its security headers', async () => {
	const r = await get('/images/');
	assert.equal(r.status, 200);
	assert.match(r.headers.get('content-type'), /^text\/html/);
	assert.match(r.text, /<script type="module" src="[^"]+"><\/script>/, 'scripts come from files');
	assert.doesNotMatch(r.text, /<script(?![^>]*\bsrc=)[^>]*>/i, 'no inline script in the page');
	const csp = r.headers.get('content-security-policy') || '';
	assert.match(csp, /default-src 'none'/);
	assert.match(csp, /script-src 'self'(;|$)/, 'scripts only from this origin, none inline');
	assert.doesNotMatch(csp, /unsafe-inline|unsafe-eval/);
	assert.match(csp, /frame-ancestors 'none'/);
	assert.equal(r.headers.get('x-content-type-options'), 'nosniff');
	assert.equal(r.headers.get('referrer-policy'), 'no-referrer');
	assert.equal(r.headers.get('cache-control'), 'no-cache');
});

test('page: its modules and styles are served with their types', async () => {
	const js = await get('/images/js/app.js');
	assert.equal(js.status, 200);
	assert.match(js.headers.get('content-type'), /javascript/);
	assert.equal(js.headers.get('x-content-type-options'), 'nosniff');
	const css = await get('/images/style.css');
	assert.equal(css.status, 200);
	assert.match(css.headers.get('content-type'), /^text\/css/);
});

test('page: /images redirects to /images/, and nothing outside the page is served', async () => {
	const r = await get('/images');
	assert.equal(r.status, 301);
	assert.match(r.headers.get('location'), /\/images\/$/);
	assert.notEqual((await get('/images/no-such-file.js')).status, 200);
});

// fetch() normalises "/images/../../etc/passwd" to "/etc/passwd" before
// sending it, so a traversal has to go out byte for byte on a socket.
async function getRaw(rawPath) {
	return rawRequest(`GET ${rawPath} HTTP/1.1\r\nHost: 127.0.0.1:${BASE_PORT}\r\nConnection: close\r\n\r\n`);
}

test('page: a path climbing out of /images/ is refused by the web server (sent raw, not normalised)', async () => {
	// A path that climbs above the root, plainly or %-encoded dots: nginx
	// and Apache both answer 400. With %2f for the slashes there is no
	// climb to refuse: nginx says 400, Apache 404 (AllowEncodedSlashes off).
	for (const [p, codes] of [
		['/images/../../etc/passwd', [400]],
		['/images/../../../../../../etc/passwd', [400]],
		['/images/%2e%2e/%2e%2e/etc/passwd', [400]],
		['/images/js/../../../etc/passwd', [400]],
		['/images/..%2f..%2fetc%2fpasswd', [400, 404]],
	]) {
		const r = await getRaw(p);
		assert.ok(!r.error, `${p}: an answer (${r.error})`);
		assert.ok(codes.includes(r.status), `${p}: ${codes.join(' or ')}, got ${r.status}`);
		assert.ok(!r.body.toString('latin1').includes('root:'), `${p}: no /etc/passwd content`);
	}
});
