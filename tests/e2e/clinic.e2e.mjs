// Browser tests of the clinic page (www/, served by nginx at /images/)
// against the real polaimg, nginx and PostgreSQL started by
// tests/integration/run.sh (run them with tests/e2e/run.sh).
//
// Headless Debian chromium driven by playwright-core. Every test seeds its
// own users and cases (lib.mjs) and opens fresh browser contexts, so the
// tests do not depend on each other. Each step leaves a screenshot in
// $E2E_OUT/screenshots.

import { after, before, describe, test } from 'node:test';
import { createRequire } from 'node:module';
import {
	BASE_URL, MAX_UPLOAD_BYTES, api, assert, convertCached, fs, makeImage, path, sha256, sql, lit,
	seedWorld, token, uploadOk,
} from '../integration/lib.mjs';

const require = createRequire(import.meta.url);
const { chromium } = require('playwright-core');

const OUT = process.env.E2E_OUT || path.join(path.dirname(new URL(import.meta.url).pathname), 'out');
const SHOTS = path.join(OUT, 'screenshots');
fs.mkdirSync(SHOTS, { recursive: true });

const PAGE_URL = `${BASE_URL}/images/`;
const DESKTOP = { width: 1280, height: 860 };
const PHONE = { width: 375, height: 667 };

let browser;
let shotSeq = 0;

before(async () => {
	browser = await chromium.launch({
		executablePath: '/usr/bin/chromium',
		headless: true,
		// playwright-core gives every launch a fresh, temporary
		// --user-data-dir of its own (it refuses one in args).
		args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
			'--disable-background-networking', '--disable-component-update', '--disable-sync'],
	});
});

after(async () => {
	if (browser)
		await browser.close();
});

// A fresh context and page. Collects page errors, console errors and CSP
// violations in `problems`, and every request (with all its headers) in
// `requests`.
async function open({ viewport = DESKTOP, phone = false } = {}) {
	const ctx = await browser.newContext({
		viewport, deviceScaleFactor: phone ? 2 : 1, isMobile: phone, hasTouch: phone,
		locale: 'en-GB', timezoneId: 'UTC', acceptDownloads: true,
	});
	const page = await ctx.newPage();
	const problems = [];
	const requests = [];
	page.on('pageerror', (e) => problems.push(`pageerror: ${e.message}`));
	page.on('console', (m) => {
		if (m.type() === 'error' && !/status of 4\d\d|status of 5\d\d/.test(m.text()))
			problems.push(`console: ${m.text()}`);
	});
	page.on('request', (r) => requests.push(r));
	return { ctx, page, problems, requests };
}

// A screenshot of the whole page, or of the screen only while a dialog is
// open (a modal viewer covers the screen, not the page).
async function shot(page, name) {
	shotSeq++;
	const file = path.join(SHOTS, `${String(shotSeq).padStart(2, '0')}-${name}.png`);
	const modal = await page.evaluate(() => document.querySelector('dialog[open]') !== null);
	await page.screenshot({ path: file, fullPage: !modal });
	return file;
}

// Opens the page with a token hand-off (#token= by default, or ?token=).
async function signIn(page, tok, caseId, { query = false } = {}) {
	const q = new URLSearchParams();
	if (caseId)
		q.set('case', caseId);
	if (query)
		q.set('token', tok);
	const url = `${PAGE_URL}${q.toString() ? `?${q}` : ''}${query ? '' : `#token=${tok}`}`;
	const res = await page.goto(url);
	assert.equal(res.status(), 200);
	await page.waitForSelector('html[data-ready="true"]');
	return res;
}

async function waitCase(page, n) {
	await page.waitForFunction((want) => {
		const c = document.getElementById('case-count');
		return c && c.textContent === (want === 1 ? '1 image' : `${want} images`);
	}, n);
}

// All thumbnails of the page shown (blob: src, decoded).
async function waitThumbs(page, n) {
	await page.waitForFunction((want) => {
		const imgs = [...document.querySelectorAll('.tile img')];
		return imgs.length === want && imgs.every((i) => i.src.startsWith('blob:') && i.complete && i.naturalWidth > 0);
	}, n, { timeout: 15000 });
}

const groupIds = (page) => page.$$eval('.group', (secs) => secs.map((s) => ({
	eye: s.dataset.eye,
	title: s.querySelector('h3 span').textContent,
	ids: [...s.querySelectorAll('.tile')].map((t) => t.dataset.id),
})));

function noProblems(problems) {
	assert.deepEqual(problems, [], 'no page error, console error or CSP violation');
}

// Images that look a little like eye photos, for the screenshots.
function fundus(seed = 0) {
	const d = 380 + seed * 12;
	return convertCached(['-size', '640x480', 'xc:black',
		'-fill', '#a63a17', '-draw', 'circle 320,240 320,22',
		'-fill', '#cf5a26', '-draw', 'circle 320,240 320,80',
		'-fill', '#9c3314', '-draw', `circle ${d - 130},245 ${d - 110},245`,
		'-fill', '#f4c98a', '-draw', `circle ${d},232 ${d + 30},232`,
		'-stroke', '#6e1204', '-strokewidth', '5', '-fill', 'none',
		'-draw', `path 'M ${d},225 Q 260,120 120,170'`,
		'-draw', `path 'M ${d},240 Q 260,350 130,300'`,
		'-draw', `path 'M ${d},222 Q 450,130 510,160'`,
		'-draw', `path 'M ${d},242 Q 450,340 500,310'`,
		'-blur', '0x2', '-quality', '90'], 'jpg');
}

function slitLamp(hue = '#3f6d8f') {
	return convertCached(['-size', '640x480', 'xc:#e9d2c3',
		'-fill', '#fbf7f2', '-draw', 'ellipse 320,240 260,140 0,360',
		'-fill', hue, '-draw', 'circle 320,240 320,140',
		'-fill', '#0b0b0b', '-draw', 'circle 320,240 320,200',
		'-fill', '#ffffff', '-draw', 'circle 345,215 345,205',
		'-blur', '0x1.5', '-quality', '90'], 'jpg');
}

function octScan() {
	return convertCached(['-size', '480x640', 'gradient:#101010-#303030', '-rotate', '90',
		'-stroke', '#d0d0d0', '-strokewidth', '6', '-fill', 'none',
		'-draw', "path 'M 0,260 C 200,250 260,330 320,330 C 380,330 440,250 640,260'",
		'-stroke', '#909090', '-strokewidth', '3',
		'-draw', "path 'M 0,300 C 200,290 260,360 320,360 C 380,360 440,290 640,300'",
		'-quality', '90'], 'jpg');
}

// A file for setInputFiles.
const file = (name, buffer, mimeType = 'image/jpeg') => ({ name, mimeType, buffer: Buffer.from(buffer) });


// Every row of the upload list, as the page shows it.
const queueRows = (page) => page.$$eval('#queue li', (lis) => lis.map((li) => ({
	name: li.querySelector('.qname').firstChild.textContent,
	state: li.dataset.state,
	value: li.querySelector('progress').value,
	pct: li.querySelector('.qpercent').textContent,
	status: li.querySelector('.qstatus').textContent,
})));

// Waits until the n rows of the upload list have all ended (done, failed or
// cancelled) and returns them.
async function waitQueue(page, n, timeout = 30000) {
	await page.waitForFunction((want) => {
		const lis = [...document.querySelectorAll('#queue li')];
		return lis.length === want && lis.every((li) => ['done', 'failed', 'cancelled'].includes(li.dataset.state));
	}, n, { timeout });
	return queueRows(page);
}

// The requests a page made to the API: the token is never in a URL; API
// calls carry it as a bearer token; signed URLs (the local upload PUT, the
// /file download) carry no Authorization header at all.
async function assertTokenHandling(requests, tok) {
	let n = 0;
	for (const r of requests) {
		const url = r.url();
		if (r.isNavigationRequest() && r.frame().parentFrame() === null && /\/images\/(\?|#|$)/.test(new URL(url).pathname + new URL(url).search))
			continue; /* the hand-off itself */
		assert.ok(!url.includes(tok), `token in a request URL: ${url}`);
		if (!url.startsWith(`${BASE_URL}/api/v1/images/`))
			continue;
		let h;
		try {
			h = await r.allHeaders();
		} catch {
			continue; /* aborted before it was sent */
		}
		if (/\/(upload|file)\?/.test(url))
			assert.equal(h.authorization, undefined, `no bearer token on a signed URL: ${r.method()} ${url}`);
		else
			assert.equal(h.authorization, `Bearer ${tok}`, `bearer token on ${r.method()} ${url}`);
		n++;
	}
	return n;
}

const proxyRequests = (requests, thumb = true) => requests.filter((r) =>
	/\/api\/v1\/images\/[0-9a-f-]{36}\/proxy/.test(r.url()) && r.url().includes('thumbnail=true') === thumb);

async function addFiles(page, files, selector = '#file-input') {
	if (!(await page.$eval('#upload', (d) => d.open)))
		await page.click('#upload summary');
	await page.setInputFiles(selector, files);
}

async function setRowEye(page, i, eye) {
	await page.locator('#queue li').nth(i).locator('select').selectOption(eye);
}

async function viewerState(page) {
	return page.evaluate(() => {
		const img = document.getElementById('v-img');
		return {
			open: document.getElementById('viewer').open,
			title: document.getElementById('viewer-title').textContent,
			src: img.getAttribute('src') || '',
			loaded: !img.hidden && img.complete && img.naturalWidth > 0,
			natural: [img.naturalWidth, img.naturalHeight],
			zoom: Number(document.getElementById('v-stage').dataset.zoom || '0'),
			zoomLabel: document.getElementById('v-zoom').textContent,
			transform: img.style.transform,
			error: document.getElementById('v-error').textContent,
			prevDisabled: document.getElementById('v-prev').disabled,
			nextDisabled: document.getElementById('v-next').disabled,
			deleteHidden: document.getElementById('v-delete').hidden,
		};
	});
}

async function waitViewerImage(page) {
	await page.waitForFunction(() => {
		const img = document.getElementById('v-img');
		return document.getElementById('viewer').open && !img.hidden && img.complete && img.naturalWidth > 0 &&
			(img.getAttribute('src') || '').startsWith('blob:');
	});
}

// Whether a blob: URL still resolves (loaded as an image: img-src allows
// blob:, connect-src does not).
const blobAlive = (page, url) => page.evaluate((u) => new Promise((resolve) => {
	const i = new Image();
	i.onload = () => resolve(true);
	i.onerror = () => resolve(false);
	i.src = u;
}), url);

const translateOf = (t) => {
	const m = /translate\(([-\d.e]+)px, ([-\d.e]+)px\)/.exec(t);
	return m ? [Number(m[1]), Number(m[2])] : null;
};

// A world with n images already in the doctor's case (through the API).
async function worldWithImages(specs) {
	const w = seedWorld();
	w.images = [];
	for (const s of specs) {
		const img = await uploadOk(w.tDoctor, w.case, s.data, {
			fields: {
				eyeSide: s.eye, imageType: s.type || 'fundus',
				...(s.description ? { description: s.description } : {}),
				...(s.captured ? { capturedAt: s.captured } : {}),
			},
		});
		w.images.push({ ...img, bytes: s.data });
	}
	return w;
}

const noiseImage = (w, h) => convertCached(['-size', `${w}x${h}`, 'xc:gray', '+noise', 'Random', '-depth', '8'], 'png');

// ---------------------------------------------------------------------------

describe('the clinic page (desktop)', () => {
	test('a ?token= hand-off leaves the address, lives in sessionStorage only; CSP forbids inline script', async () => {
		const w = seedWorld();
		const { page, problems, requests } = await open();
		const res = await signIn(page, w.tDoctor, w.case, { query: true });
		const h = res.headers();
		assert.match(h['content-security-policy'], /script-src 'self'/);
		assert.doesNotMatch(h['content-security-policy'], /unsafe-inline|unsafe-eval/);
		assert.match(h['content-security-policy'], /default-src 'none'/);
		assert.equal(h['x-content-type-options'], 'nosniff');
		assert.equal(h['referrer-policy'], 'no-referrer');
		assert.equal(h['x-frame-options'], 'DENY');
		await waitCase(page, 0);
		const u = new URL(page.url());
		assert.equal(u.searchParams.get('token'), null, 'token removed from the address');
		assert.equal(u.searchParams.get('case'), w.case);
		assert.ok(!page.url().includes(w.tDoctor));
		const store = await page.evaluate(() => ({
			session: sessionStorage.getItem('polaimg.token'), local: localStorage.length,
			cookie: document.cookie, history: history.length,
		}));
		assert.equal(store.session, w.tDoctor);
		assert.equal(store.local, 0, 'nothing in localStorage');
		assert.equal(store.cookie, '', 'no cookie');
		await shot(page, 'handoff-signed-in');

		// The page source has no inline script or handler, and the CSP
		// really stops one.
		const html = await (await fetch(PAGE_URL)).text();
		assert.doesNotMatch(html, /<script(?![^>]*\bsrc=)[^>]*>/i, 'no inline <script>');
		assert.doesNotMatch(html, /\son[a-z]+\s*=/i, 'no inline event handler');
		assert.doesNotMatch(html, /\sstyle\s*=/i, 'no inline style');
		const probe = await page.evaluate(() => new Promise((resolve) => {
			document.addEventListener('securitypolicyviolation',
				(e) => resolve({ directive: e.violatedDirective, ran: window.inlineRan === 1 }), { once: true });
			const s = document.createElement('script');
			s.textContent = 'window.inlineRan = 1;';
			document.body.append(s);
			setTimeout(() => resolve({ directive: null, ran: window.inlineRan === 1 }), 2000);
		}));
		assert.equal(probe.ran, false, 'inline script did not run');
		assert.match(String(probe.directive), /^script-src/);
		assert.ok(problems.every((p) => /Content Security Policy/.test(p)));
		problems.length = 0;

		// A reload keeps the session (same tab); sign out forgets it.
		await page.reload();
		await waitCase(page, 0);
		await page.click('#signout');
		await page.waitForSelector('#token-panel:not([hidden])');
		assert.equal(await page.evaluate(() => sessionStorage.length), 0, 'sign out empties sessionStorage');
		assert.equal(new URL(page.url()).searchParams.get('case'), null);
		assert.equal(await page.evaluate(() => document.activeElement.id), 'token-input');
		await shot(page, 'signed-out');

		// Pasting a token works too; junk is refused with a message.
		await page.fill('#token-input', 'not a token');
		await page.press('#token-input', 'Enter');
		assert.match(await page.textContent('#token-error'), /does not look like an access token/);
		await page.fill('#token-input', `Bearer ${w.tDoctor}`);
		await page.click('#token-form button[type="submit"]');
		await page.waitForSelector('#case-panel:not([hidden])');
		await page.fill('#case-input', 'not-a-case');
		await page.press('#case-input', 'Enter');
		assert.match(await page.textContent('#case-error'), /A case id looks like/);
		await page.fill('#case-input', w.case.toUpperCase());
		await page.click('#case-form button[type="submit"]');
		await waitCase(page, 0);
		assert.ok((await assertTokenHandling(requests, w.tDoctor)) >= 2);
		noProblems(problems);

		// A hand-off that is not a token: said so, nothing stored.
		const p2 = await open();
		await p2.page.goto(`${PAGE_URL}#token=garbage`);
		await p2.page.waitForSelector('html[data-ready="true"]');
		assert.match(await p2.page.textContent('#token-error'), /does not look like an access token/);
		assert.equal(await p2.page.evaluate(() => sessionStorage.length), 0);
		assert.equal(new URL(p2.page.url()).hash, '', 'removed from the address too');
		noProblems(p2.problems);
	});

	test('a doctor uploads three images with different eye sides: grouped, each progress bar at 100 %', async () => {
		const w = seedWorld();
		const { page, problems, requests } = await open();
		await signIn(page, w.tDoctor, w.case);
		await waitCase(page, 0);
		const files = [
			file('right-fundus.jpg', fundus(0)),
			file('left-fundus.jpg', fundus(2)),
			file('both-slit.jpg', slitLamp()),
		];
		await addFiles(page, files);
		await page.selectOption('#up-type', 'fundus');
		await page.fill('#up-desc', 'Annual screening');
		await page.fill('#up-date', '2026-11-20T10:15');
		await setRowEye(page, 0, 'right');
		await setRowEye(page, 1, 'left');
		await setRowEye(page, 2, 'both');
		assert.equal((await page.textContent('#upload-start')).trim(), 'Upload 3 files');
		await shot(page, 'upload-queued');
		await page.click('#upload-start');
		const rows = await waitQueue(page, 3);
		for (const r of rows) {
			assert.equal(r.state, 'done', `${r.name}: ${r.status}`);
			assert.equal(r.value, 100);
			assert.equal(r.pct, '100 %');
			assert.equal(r.status, 'Uploaded');
		}
		await shot(page, 'upload-done');
		await waitCase(page, 3);
		// Fold the upload panel: the thumbnails below it load when they
		// come near the screen.
		await page.click('#upload summary');
		await waitThumbs(page, 3);

		const groups = await groupIds(page);
		assert.deepEqual(groups.map((g) => [g.eye, g.title, g.ids.length]), [
			['right', 'Right eye (OD)', 1], ['left', 'Left eye (OS)', 1], ['both', 'Both eyes', 1]]);
		const list = (await api('GET', `/api/v1/images/cases/${w.case}`, { token: w.tDoctor })).json.data.images;
		assert.equal(list.length, 3);
		const byName = {};
		for (const [i, f] of files.entries()) {
			const img = list.find((x) => x.sha256 === sha256(f.buffer));
			assert.ok(img, `${f.name} stored byte for byte`);
			byName[f.name] = img;
			assert.equal(img.imageType, 'fundus');
			assert.equal(img.description, 'Annual screening');
			assert.equal(img.capturedAt, '2026-11-20T10:15:00Z');
			assert.equal(img.order, i + 1, 'sent one after the other, in list order');
		}
		assert.equal(byName['right-fundus.jpg'].eyeSide, 'right');
		assert.equal(byName['left-fundus.jpg'].eyeSide, 'left');
		assert.equal(byName['both-slit.jpg'].eyeSide, 'both');
		assert.deepEqual(groups.map((g) => g.ids[0]),
			[byName['right-fundus.jpg'].id, byName['left-fundus.jpg'].id, byName['both-slit.jpg'].id]);
		const meta = await page.$$eval('.tile', (ts) => ts.map((t) => [
			t.querySelector('.tile-meta').textContent, t.querySelector('.tile-desc').textContent,
			t.querySelector('time').getAttribute('datetime')]));
		for (const m of meta)
			assert.deepEqual(m, ['Fundus · 20 Nov 2026, 10:15', 'Annual screening', '2026-11-20T10:15:00Z']);

		// Thumbnails came through the proxy with the bearer token.
		assert.equal(proxyRequests(requests).length, 3);
		await assertTokenHandling(requests, w.tDoctor);
		const uploads = requests.filter((r) => r.url() === `${BASE_URL}/api/v1/images/upload`);
		assert.equal(uploads.length, 3, 'upload through the service (config "service")');
		await shot(page, 'case-grouped');
		noProblems(problems);
	});

	test('the viewer: display copy, wheel zoom, drag pan, next/previous with keys, Esc, blob URLs revoked', async () => {
		const w = await worldWithImages([
			{ data: fundus(0), eye: 'right' }, { data: fundus(3), eye: 'left' }, { data: octScan(), eye: 'unknown', type: 'oct' },
		]);
		const { page, problems, requests } = await open();
		await signIn(page, w.tDoctor, w.case);
		await waitCase(page, 3);
		await waitThumbs(page, 3);
		await page.click(`.tile[data-id="${w.images[0].id}"] .thumb`);
		await waitViewerImage(page);
		let v = await viewerState(page);
		assert.equal(v.title, 'Image 1 of 3 · Right eye (OD)');
		assert.deepEqual(v.natural, [640, 480], 'the display copy (a 640×480 original stays 640×480)');
		assert.equal(v.prevDisabled, true);
		assert.equal(v.nextDisabled, false);
		assert.equal(v.deleteHidden, false, 'a doctor sees delete');
		const display = requests.filter((r) => r.url() === `${BASE_URL}/api/v1/images/${w.images[0].id}/proxy`);
		assert.equal(display.length, 1, 'the display copy (no variant = display)');
		const fit = v.zoom;
		assert.ok(fit > 0);
		await shot(page, 'viewer-open');

		// Wheel zoom around the pointer, then drag to pan.
		const box = await page.locator('#v-stage').boundingBox();
		await page.mouse.move(box.x + box.width / 2 + 60, box.y + box.height / 2 + 40);
		await page.mouse.wheel(0, -400);
		await page.waitForFunction((f) => Number(document.getElementById('v-stage').dataset.zoom) > f * 1.5, fit);
		v = await viewerState(page);
		assert.match(v.zoomLabel, /^\d+ %$/);
		const t0 = translateOf(v.transform);
		await page.mouse.down();
		await page.mouse.move(box.x + box.width / 2 - 40, box.y + box.height / 2 - 10, { steps: 5 });
		await page.mouse.up();
		const t1 = translateOf((await viewerState(page)).transform);
		assert.ok(t1[0] < t0[0] - 50 && t1[1] < t0[1], `dragging moved the image: ${t0} → ${t1}`);
		await shot(page, 'viewer-zoomed');
		await page.click('#v-zoom-out');
		assert.ok((await viewerState(page)).zoom < v.zoom);
		await page.keyboard.press('0');
		assert.equal((await viewerState(page)).zoom, fit, '0 = fit');
		await page.keyboard.press('+');
		assert.ok((await viewerState(page)).zoom > fit);
		await page.click('#v-fit');
		assert.equal((await viewerState(page)).zoom, fit);

		// Keys: → next, ← previous; the blob URL shown before is revoked.
		const firstSrc = v.src;
		await page.keyboard.press('ArrowRight');
		await waitViewerImage(page);
		v = await viewerState(page);
		assert.equal(v.title, 'Image 2 of 3 · Left eye (OS)');
		assert.notEqual(v.src, firstSrc);
		assert.equal(await blobAlive(page, v.src), true, 'the blob: URL shown resolves');
		assert.equal(await blobAlive(page, firstSrc), false, 'the previous blob: URL was revoked');
		await page.keyboard.press('ArrowRight');
		await waitViewerImage(page);
		v = await viewerState(page);
		assert.equal(v.title, 'Image 3 of 3 · Unknown eye');
		assert.equal(v.nextDisabled, true);
		await page.keyboard.press('ArrowRight');
		assert.equal((await viewerState(page)).title, 'Image 3 of 3 · Unknown eye', 'no wrap at the end');
		await page.click('#v-prev');
		await waitViewerImage(page);
		assert.equal((await viewerState(page)).title, 'Image 2 of 3 · Left eye (OS)');
		await shot(page, 'viewer-second');
		const lastSrc = (await viewerState(page)).src;
		await page.keyboard.press('Escape');
		await page.waitForFunction(() => !document.getElementById('v-img').hasAttribute('src'));
		v = await viewerState(page);
		assert.equal(v.open, false, 'Esc closes');
		assert.equal(await blobAlive(page, lastSrc), false, 'closing revoked the blob: URL');
		const focused = await page.evaluate(() => document.activeElement.closest('.tile')?.dataset.id);
		assert.equal(focused, w.images[1].id, 'focus back on the thumbnail of the image last shown');
		await assertTokenHandling(requests, w.tDoctor);
		// The two revoked blob: URLs tried above, and nothing else.
		const gone = problems.filter((p) => /ERR_FILE_NOT_FOUND/.test(p));
		assert.equal(gone.length, 2);
		noProblems(problems.filter((p) => !gone.includes(p)));
	});

	test('download the original through its signed URL: same SHA-256 as the file uploaded', async () => {
		const w = await worldWithImages([{ data: fundus(1), eye: 'right' }, { data: makeImage(320, 200, 'png'), eye: 'left', type: 'other' }]);
		const { page, problems, requests } = await open();
		await signIn(page, w.tDoctor, w.case);
		await waitCase(page, 2);
		for (const img of w.images) {
			await page.click(`.tile[data-id="${img.id}"] .thumb`);
			await waitViewerImage(page);
			const [dl] = await Promise.all([page.waitForEvent('download'), page.click('#v-download')]);
			assert.match(dl.url(), new RegExp(`^${BASE_URL}/api/v1/images/${img.id}/file\\?variant=original&expires=\\d+&uid=${w.doctor}&sig=[A-Za-z0-9_-]+$`));
			const ext = img.mimeType === 'image/png' ? 'png' : 'jpg';
			assert.equal(dl.suggestedFilename(), `${img.id}-original.${ext}`);
			const bytes = fs.readFileSync(await dl.path());
			assert.equal(sha256(bytes), sha256(img.bytes), 'downloaded original = uploaded file');
			assert.equal(sha256(bytes), img.sha256);
			await page.keyboard.press('Escape');
		}
		const asked = requests.filter((r) => r.url().includes('/download-url'));
		assert.equal(asked.length, 2);
		for (const r of asked)
			assert.match(r.url(), /\/download-url\?variant=original$/);
		await assertTokenHandling(requests, w.tDoctor);
		await shot(page, 'after-download');
		noProblems(problems);
	});

	test('a doctor deletes with a confirmation (from a tile and from the viewer)', async () => {
		const w = await worldWithImages([
			{ data: fundus(0), eye: 'right' }, { data: fundus(1), eye: 'right' }, { data: slitLamp(), eye: 'left', type: 'slit_lamp' },
		]);
		const { page, problems } = await open();
		await signIn(page, w.tDoctor, w.case);
		await waitCase(page, 3);
		await waitThumbs(page, 3);
		const [a, b, c] = w.images;

		// Cancel keeps the image.
		await page.click(`.tile[data-id="${a.id}"] .tile-delete`);
		await page.waitForSelector('#confirm[open]');
		assert.equal(await page.evaluate(() => document.activeElement.textContent), 'Cancel', 'Cancel has the focus');
		await shot(page, 'delete-confirm');
		await page.keyboard.press('Escape');
		await page.waitForFunction(() => !document.getElementById('confirm').open);
		assert.equal((await api('GET', `/api/v1/images/${a.id}`, { token: w.tDoctor })).status, 200);
		await waitCase(page, 3);

		// Confirm deletes it.
		await page.click(`.tile[data-id="${a.id}"] .tile-delete`);
		await page.click('#confirm button[value="delete"]');
		await waitCase(page, 2);
		assert.equal(await page.$(`.tile[data-id="${a.id}"]`), null);
		assert.equal((await api('GET', `/api/v1/images/${a.id}`, { token: w.tDoctor })).status, 404);
		assert.deepEqual((await groupIds(page)).map((g) => [g.eye, g.ids]), [['right', [b.id]], ['left', [c.id]]]);
		await shot(page, 'deleted-from-tile');

		// From the viewer: it moves on to what is now at that place.
		await page.click(`.tile[data-id="${b.id}"] .thumb`);
		await waitViewerImage(page);
		await page.click('#v-delete');
		await page.click('#confirm button[value="delete"]');
		await page.waitForFunction(() => document.getElementById('viewer-title').textContent === 'Image 1 of 1 · Left eye (OS)');
		await waitViewerImage(page);
		await waitCase(page, 1);
		assert.equal((await api('GET', `/api/v1/images/${b.id}`, { token: w.tDoctor })).status, 404);
		await shot(page, 'deleted-from-viewer');
		await page.keyboard.press('Escape');
		assert.deepEqual((await groupIds(page)).map((g) => g.eye), ['left']);
		noProblems(problems);
	});

	test('patients: another patient\'s case is refused with the documented message; no delete for a patient', async () => {
		const w = await worldWithImages([{ data: fundus(0), eye: 'right' }]);
		// The other patient's case, seen by our patient.
		const { page, problems } = await open();
		await signIn(page, w.tPatient, w.otherCase);
		await page.waitForFunction(() => document.getElementById('case-error').textContent !== '');
		assert.equal(await page.textContent('#case-error'), 'You are not allowed to see this case.');
		assert.equal(await page.$eval('#case-error', (e) => e.getAttribute('role')), 'alert');
		assert.equal(await page.$eval('#case-view', (e) => e.hidden), true);
		await shot(page, 'patient-other-case');
		// An unknown case.
		await page.fill('#case-input', '00000000-0000-4000-8000-000000000999');
		await page.press('#case-input', 'Enter');
		await page.waitForFunction(() => document.getElementById('case-error').textContent === 'There is no case with this id.');

		// Own case, token without a role claim: the page offers delete, the
		// service refuses, the page explains and stops offering it.
		await page.fill('#case-input', w.case);
		await page.press('#case-input', 'Enter');
		await waitCase(page, 1);
		await waitThumbs(page, 1);
		assert.equal(await page.$eval('.tile-delete', (b) => b.hidden), false);
		await page.click('.tile-delete');
		await page.click('#confirm button[value="delete"]');
		await page.waitForFunction(() => document.getElementById('case-error').textContent !== '');
		assert.equal(await page.textContent('#case-error'), 'Only doctors and administrators can delete images.');
		assert.equal(await page.$eval('.tile-delete', (b) => b.hidden), true);
		assert.equal((await api('GET', `/api/v1/images/${w.images[0].id}`, { token: w.tDoctor })).status, 200);
		await shot(page, 'patient-delete-refused');
		noProblems(problems);

		// A token whose role claim says patient: no delete button at all.
		const withRole = token(w.patient, { role: 'patient' });
		const p2 = await open();
		await signIn(p2.page, withRole, w.case);
		await waitCase(p2.page, 1);
		assert.equal(await p2.page.$eval('.tile-delete', (b) => b.hidden), true);
		await p2.page.click('.thumb');
		await waitViewerImage(p2.page);
		assert.equal((await viewerState(p2.page)).deleteHidden, true);
		assert.match(await p2.page.textContent('#who'), /patient/);
		await shot(p2.page, 'patient-viewer');
		noProblems(p2.problems);
	});

	test('upload errors: wrong type (415), damaged image (422), too large (413), expired session (401)', async () => {
		const w = seedWorld();
		const { page, problems } = await open();
		await signIn(page, w.tDoctor, w.case);
		await waitCase(page, 0);
		const jpeg = fundus(0);
		const big = noiseImage(2300, 2100);
		assert.ok(big.length > MAX_UPLOAD_BYTES, `test file ${big.length} > ${MAX_UPLOAD_BYTES}`);
		await addFiles(page, [
			file('notes.jpg', Buffer.from('these are not the pixels you are looking for\n'.repeat(20))),
			file('damaged.jpg', jpeg.subarray(0, 600)),
			file('huge.png', big, 'image/png'),
		]);
		await page.click('#upload-start');
		let rows = await waitQueue(page, 3);
		assert.deepEqual(rows.map((r) => [r.name, r.state, r.status]), [
			['notes.jpg', 'failed', 'This file type is not accepted. Use JPEG, PNG, TIFF or WebP images.'],
			['damaged.jpg', 'failed', 'This image could not be read: the file is damaged or has too many pixels.'],
			['huge.png', 'failed', 'This file is too large for the image store.'],
		]);
		await shot(page, 'upload-errors');
		await page.click('#upload-clear');
		assert.equal((await queueRows(page)).length, 0);

		// The token runs out: the upload fails with a clear message, the page
		// asks for a new token, and the file can be sent again after it.
		const exp = Math.floor(Date.now() / 1000) + 3;
		await page.click('#signout');
		await page.fill('#token-input', token(w.doctor, { exp }));
		await page.press('#token-input', 'Enter');
		await page.fill('#case-input', w.case);
		await page.press('#case-input', 'Enter');
		await waitCase(page, 0);
		while (Date.now() < exp * 1000 + 1200)
			await new Promise((r) => setTimeout(r, 200));
		await addFiles(page, [file('late.jpg', jpeg)]);
		await page.click('#upload-start');
		await page.waitForSelector('#token-panel:not([hidden])');
		assert.equal(await page.textContent('#token-error'), 'Your session has expired. Paste a new token to continue.');
		assert.equal(await page.evaluate(() => sessionStorage.getItem('polaimg.token')), null);
		assert.equal(await page.evaluate(() => document.activeElement.id), 'token-input');
		await shot(page, 'session-expired');
		await page.fill('#token-input', w.tDoctor);
		await page.press('#token-input', 'Enter');
		await waitCase(page, 0);
		rows = await queueRows(page);
		assert.deepEqual(rows.map((r) => [r.name, r.state, r.status]),
			[['late.jpg', 'failed', 'Your session has expired. Paste a new token to continue.']]);
		await page.click('#queue li button:has-text("Retry")');
		rows = await waitQueue(page, 1);
		assert.equal(rows[0].state, 'done');
		await waitCase(page, 1);
		assert.equal(Number(sql(`SELECT count(*) FROM case_images WHERE case_id = ${lit(w.case)}`)[0][0]), 1,
			'only the good file was stored');
		// A patient-type problem (403) can't be reached from the UI: the
		// page never shows another patient's case.
		noProblems(problems);
	});

	test('cancel an upload in flight; progress moves step by step and reaches 100 % on retry', async () => {
		const w = seedWorld();
		const { ctx, page, problems } = await open();
		await signIn(page, w.tDoctor, w.case);
		await waitCase(page, 0);
		const cdp = await ctx.newCDPSession(page);
		await cdp.send('Network.enable');
		await cdp.send('Network.emulateNetworkConditions',
			{ offline: false, latency: 0, downloadThroughput: -1, uploadThroughput: 256 * 1024 });
		const big = noiseImage(900, 800);
		await addFiles(page, [file('slow.png', big, 'image/png')]);
		await page.click('#upload-start');
		await page.waitForFunction(() => {
			const p = document.querySelector('#queue progress');
			return p.value >= 10 && p.value < 80;
		}, null, { timeout: 20000 });
		await shot(page, 'upload-in-progress');
		const mid = (await queueRows(page))[0];
		assert.equal(mid.state, 'sending');
		await page.click('#queue li button:has-text("Cancel")');
		let rows = await waitQueue(page, 1);
		assert.equal(rows[0].state, 'cancelled');
		assert.equal(rows[0].status, 'Cancelled.');
		await shot(page, 'upload-cancelled');
		await new Promise((r) => setTimeout(r, 500));
		assert.equal(Number(sql(`SELECT count(*) FROM case_images WHERE case_id = ${lit(w.case)}`)[0][0]), 0,
			'nothing stored');

		// Retry, sampling the progress bar while it fills.
		const seen = new Set();
		await page.click('#queue li button:has-text("Retry")');
		for (let i = 0; i < 400; i++) {
			const r = (await queueRows(page))[0];
			seen.add(r.value);
			if (r.state === 'done' || r.state === 'failed')
				break;
			await new Promise((res) => setTimeout(res, 40));
		}
		rows = await waitQueue(page, 1);
		assert.equal(rows[0].state, 'done', rows[0].status);
		assert.equal(rows[0].value, 100);
		assert.equal(rows[0].pct, '100 %');
		const between = [...seen].filter((v) => v > 0 && v < 100);
		assert.ok(between.length >= 3, `intermediate progress values seen: ${[...seen].sort((x, y) => x - y)}`);
		await cdp.send('Network.emulateNetworkConditions', { offline: false, latency: 0, downloadThroughput: -1, uploadThroughput: -1 });
		await waitCase(page, 1);
		noProblems(problems);
	});

	test('direct signed-URL flow (config "direct"): local storage URL, and a storage URL elsewhere + complete', async () => {
		const w = seedWorld();
		const { page, problems, requests } = await open();
		await page.route('**/images/config.json', (route) => route.fulfill({
			status: 200, contentType: 'application/json', body: JSON.stringify({ apiBase: '/api/v1/images', upload: 'direct' }),
		}));
		await signIn(page, w.tDoctor, w.case);
		await waitCase(page, 0);

		// Local storage: the PUT to polaimg's own /upload URL finishes the image.
		const one = fundus(4);
		await addFiles(page, [file('direct-local.jpg', one)]);
		await setRowEye(page, 0, 'left');
		await page.click('#upload-start');
		let rows = await waitQueue(page, 1);
		assert.equal(rows[0].state, 'done', rows[0].status);
		assert.equal(rows[0].value, 100);
		const put = requests.filter((r) => r.method() === 'PUT');
		assert.equal(put.length, 1);
		assert.match(put[0].url(), new RegExp(`^${BASE_URL}/api/v1/images/[0-9a-f-]{36}/upload\\?token=`));
		assert.equal((await put[0].allHeaders())['content-type'], 'image/jpeg');
		assert.equal(requests.filter((r) => r.url().endsWith('/complete')).length, 0, 'no complete for the own URL');
		assert.equal(requests.filter((r) => r.url().endsWith('/api/v1/images/upload')).length, 0, 'no multipart upload');

		// A storage URL that is not polaimg's (as S3/Supabase give): the
		// page PUTs there with exactly the headers given, then calls
		// complete. The "storage" is simulated by the browser test: it
		// passes the bytes on to polaimg's local upload URL.
		await page.route('**/api/v1/images/upload-url', async (route) => {
			const res = await route.fetch();
			const body = await res.json();
			const real = body.data.uploadUrl;
			body.data.uploadUrl = `${BASE_URL}/storage-sim/${body.data.imageId}?sig=abc`;
			body.data.headers = { ...body.data.headers, 'x-amz-meta-e2e': 'yes' };
			await page.route(body.data.uploadUrl, async (r2) => {
				const h = await r2.request().allHeaders();
				assert.equal(h.authorization, undefined, 'no bearer token to the storage');
				assert.equal(h['x-amz-meta-e2e'], 'yes', 'the returned headers are sent');
				const fwd = await r2.fetch({ url: real, headers: { 'content-type': h['content-type'] } });
				assert.equal(fwd.status(), 201);
				await r2.fulfill({ status: 200, body: '' });
			});
			await route.fulfill({ response: res, json: body });
		});
		const two = slitLamp('#6a7f3a');
		await addFiles(page, [file('direct-remote.jpg', two)]);
		await setRowEye(page, 1, 'right');
		await page.click('#upload-start');
		rows = await waitQueue(page, 2);
		assert.equal(rows[1].state, 'done', rows[1].status);
		assert.equal(rows[1].value, 100);
		const completes = requests.filter((r) => r.url().endsWith('/complete'));
		assert.equal(completes.length, 1, 'complete called once for the foreign URL');
		assert.equal(completes[0].method(), 'POST');
		await waitCase(page, 2);
		await waitThumbs(page, 2);
		const list = (await api('GET', `/api/v1/images/cases/${w.case}`, { token: w.tDoctor })).json.data.images;
		assert.deepEqual(list.map((i) => [i.eyeSide, i.sha256]), [['left', sha256(one)], ['right', sha256(two)]]);
		await assertTokenHandling(requests.filter((r) => !r.url().includes('/storage-sim/')), w.tDoctor);
		await shot(page, 'direct-uploads');
		noProblems(problems);
	});

	test('keyboard only: Tab to a thumbnail, Enter opens, arrows move, Esc closes', async () => {
		const w = await worldWithImages([{ data: fundus(0), eye: 'right' }, { data: fundus(1), eye: 'left' }]);
		const { page, problems } = await open();
		await signIn(page, w.tDoctor, w.case);
		await waitCase(page, 2);
		await page.focus('#case-input');
		const order = [];
		for (let i = 0; i < 25; i++) {
			await page.keyboard.press('Tab');
			const d = await page.evaluate(() => {
				const e = document.activeElement;
				return { id: e.id, cls: e.className, text: (e.getAttribute('aria-label') || e.textContent || '').trim().slice(0, 40) };
			});
			const isThumb = d.cls.split(' ').includes('thumb');
			order.push(isThumb ? 'thumb' : d.id || d.cls || d.text);
			if (isThumb)
				break;
		}
		assert.deepEqual(order.slice(0, 3), ['btn btn-primary', 'reload', 'Add images'], `tab order: ${order}`);
		assert.equal(order[order.length - 1], 'thumb', `reached a thumbnail: ${order}`);
		await page.keyboard.press('Enter');
		await waitViewerImage(page);
		assert.equal((await viewerState(page)).title, 'Image 1 of 2 · Right eye (OD)');
		assert.equal(await page.evaluate(() => document.activeElement.id), 'v-close', 'focus moves into the viewer');
		await page.keyboard.press('ArrowRight');
		await waitViewerImage(page);
		assert.equal((await viewerState(page)).title, 'Image 2 of 2 · Left eye (OS)');
		await page.keyboard.press('Escape');
		await page.waitForFunction((id) => document.activeElement.closest('.tile')?.dataset.id === id, w.images[1].id);
		assert.equal((await viewerState(page)).open, false);
		noProblems(problems);
	});

	test('README screenshot of a case view', async () => {
		const w = await worldWithImages([
			{ data: fundus(0), eye: 'right', type: 'fundus', description: 'Optic disc, 6-month follow-up', captured: '2026-11-20T09:40:00Z' },
			{ data: slitLamp(), eye: 'right', type: 'slit_lamp', captured: '2026-11-20T09:52:00Z' },
			{ data: fundus(3), eye: 'left', type: 'fundus', captured: '2026-11-20T09:41:00Z' },
			{ data: octScan(), eye: 'left', type: 'oct', description: 'Macula', captured: '2026-11-20T10:05:00Z' },
			{ data: slitLamp('#6b4a2a'), eye: 'both', type: 'slit_lamp', captured: '2026-05-14T15:20:00Z' },
		]);
		const { page, problems } = await open({ viewport: { width: 1100, height: 760 } });
		await signIn(page, w.tDoctor, w.case);
		await waitCase(page, 5);
		await waitThumbs(page, 5);
		await page.screenshot({ path: path.join(OUT, 'case-view.png'), fullPage: true });
		await shot(page, 'case-view');
		noProblems(problems);
	});
});

describe('the clinic page on a 375 px phone screen', () => {
	const noOverflow = async (page, what) => {
		const m = await page.evaluate(() => ({ sw: document.documentElement.scrollWidth, cw: document.documentElement.clientWidth }));
		assert.ok(m.sw <= m.cw, `${what}: no horizontal scrolling (${m.sw} > ${m.cw})`);
	};

	test('sign in, open, upload from the camera input and the picker, view, pinch-zoom, delete, refusal', async () => {
		const w = seedWorld();
		const { ctx, page, problems, requests } = await open({ viewport: PHONE, phone: true });
		await signIn(page, w.tDoctor, w.case);
		await waitCase(page, 0);
		await noOverflow(page, 'empty case');
		await shot(page, 'phone-case-empty');

		// The camera input is an image input with capture; the picker takes several.
		assert.deepEqual(await page.$eval('#camera-input', (i) => [i.accept, i.getAttribute('capture'), i.multiple]),
			['image/*', 'environment', false]);
		assert.deepEqual(await page.$eval('#file-input', (i) => [i.accept, i.multiple]), ['image/*', true]);
		await addFiles(page, [file('camera.jpg', slitLamp())], '#camera-input');
		await addFiles(page, [file('r.jpg', fundus(0)), file('l.jpg', fundus(2))]);
		await setRowEye(page, 0, 'both');
		await setRowEye(page, 1, 'right');
		await setRowEye(page, 2, 'left');
		await noOverflow(page, 'upload list');
		await shot(page, 'phone-upload-queued');
		await page.tap('#upload-start');
		const rows = await waitQueue(page, 3);
		assert.deepEqual(rows.map((r) => [r.state, r.value, r.pct]), [['done', 100, '100 %'], ['done', 100, '100 %'], ['done', 100, '100 %']]);
		await shot(page, 'phone-upload-done');
		await page.tap('#upload summary');
		await waitCase(page, 3);
		await waitThumbs(page, 3);
		assert.deepEqual((await groupIds(page)).map((g) => g.eye), ['right', 'left', 'both']);
		// Two thumbnails side by side.
		const boxes = await page.$$eval('.tile', (ts) => ts.map((t) => t.getBoundingClientRect().width));
		assert.ok(boxes.every((x) => x > 120 && x < 185), `tile widths ${boxes}`);
		await noOverflow(page, 'grouped case');
		await shot(page, 'phone-case-grouped');

		// Viewer: tap, buttons reachable, pinch to zoom, next by button.
		await page.tap('.group[data-eye="right"] .thumb');
		await waitViewerImage(page);
		const fit = (await viewerState(page)).zoom;
		for (const id of ['v-prev', 'v-next', 'v-close', 'v-download', 'v-delete', 'v-zoom-in']) {
			const b = await page.locator(`#${id}`).boundingBox();
			assert.ok(b && b.x >= 0 && b.x + b.width <= PHONE.width && b.y + b.height <= PHONE.height,
				`${id} inside the screen: ${JSON.stringify(b)}`);
			assert.ok(b.height >= 36, `${id} is a touch-sized target`);
		}
		const stage = await page.locator('#v-stage').boundingBox();
		const cx = stage.x + stage.width / 2;
		const cy = stage.y + stage.height / 2;
		const cdp = await ctx.newCDPSession(page);
		const touch = (type, pts) => cdp.send('Input.dispatchTouchEvent', {
			type, touchPoints: pts.map(([x, y], id) => ({ x, y, id, radiusX: 2, radiusY: 2, force: 1 })),
		});
		await touch('touchStart', [[cx - 30, cy], [cx + 30, cy]]);
		for (let d = 30; d <= 120; d += 15)
			await touch('touchMove', [[cx - d, cy], [cx + d, cy]]);
		await touch('touchEnd', []);
		const pinched = (await viewerState(page)).zoom;
		assert.ok(pinched > fit * 2.5, `pinch zoomed in: ${fit} → ${pinched}`);
		await shot(page, 'phone-viewer-pinched');
		await page.tap('#v-next');
		await page.waitForFunction(() => document.getElementById('viewer-title').textContent === 'Image 2 of 3 · Left eye (OS)');
		await waitViewerImage(page);
		await shot(page, 'phone-viewer');
		await page.tap('#v-close');
		assert.equal((await viewerState(page)).open, false);

		// Delete as a doctor, confirmation on the small screen.
		await page.tap('.group[data-eye="both"] .tile-delete');
		await page.waitForSelector('#confirm[open]');
		const cb = await page.locator('#confirm').boundingBox();
		assert.ok(cb.x >= 0 && cb.x + cb.width <= PHONE.width, `confirmation fits: ${JSON.stringify(cb)}`);
		await shot(page, 'phone-delete-confirm');
		await page.tap('#confirm button[value="delete"]');
		await waitCase(page, 2);
		assert.deepEqual((await groupIds(page)).map((g) => g.eye), ['right', 'left']);
		await assertTokenHandling(requests, w.tDoctor);
		noProblems(problems);

		// A patient opening someone else's case.
		const p2 = await open({ viewport: PHONE, phone: true });
		await signIn(p2.page, w.tOther, w.case);
		await p2.page.waitForFunction(() => document.getElementById('case-error').textContent !== '');
		assert.equal(await p2.page.textContent('#case-error'), 'You are not allowed to see this case.');
		await noOverflow(p2.page, 'refusal');
		await shot(p2.page, 'phone-patient-refused');
		noProblems(p2.problems);
	});

	test('thumbnails load lazily as the list scrolls', async () => {
		const specs = [];
		for (let i = 0; i < 24; i++)
			specs.push({ data: makeImage(64 + i, 48, 'jpg'), eye: ['right', 'left'][i % 2] });
		const w = await worldWithImages(specs);
		const { page, problems, requests } = await open({ viewport: PHONE, phone: true });
		await signIn(page, w.tDoctor, w.case);
		await waitCase(page, 24);
		await page.waitForFunction(() => document.querySelectorAll('.tile img[src^="blob:"]').length >= 2);
		await new Promise((r) => setTimeout(r, 700));
		const early = proxyRequests(requests).length;
		assert.ok(early >= 2 && early <= 12, `only the thumbnails near the screen were fetched: ${early} of 24`);
		assert.equal(await page.$$eval('.tile img', (is) => is.every((i) => i.loading === 'lazy')), true);
		await shot(page, 'phone-lazy-top');
		for (let y = 0; y < 12; y++) {
			await page.mouse.wheel(0, 600);
			await new Promise((r) => setTimeout(r, 150));
		}
		await page.evaluate(() => window.scrollTo(0, document.body.scrollHeight));
		await waitThumbs(page, 24);
		assert.equal(proxyRequests(requests).length, 24, 'each thumbnail fetched once');
		await shot(page, 'phone-lazy-bottom');
		noProblems(problems);
	});
});
