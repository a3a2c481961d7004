// What the browser tests of the clinic page share: one headless Debian
// chromium per test file (driven by playwright-core), fresh contexts that
// collect page errors and requests, sign-in by hand-off, waits on what the
// page shows, the eye-like test images, the upload list as the page shows
// it. The test files are tests/e2e/*.e2e.mjs (run with tests/e2e/run.sh).

import { after, before } from 'node:test';
import { createRequire } from 'node:module';
import {
	BASE_URL, assert, convertCached, fs, path, seedWorld, uploadOk,
} from '../integration/lib.mjs';

const require = createRequire(import.meta.url);
const { chromium } = require('playwright-core');

export const OUT = process.env.E2E_OUT || path.join(path.dirname(new URL(import.meta.url).pathname), 'out');
export const SHOTS = path.join(OUT, 'screenshots');
fs.mkdirSync(SHOTS, { recursive: true });

export const PAGE_URL = `${BASE_URL}/images/`;
export const DESKTOP = { width: 1280, height: 860 };
export const PHONE = { width: 375, height: 667 };

let browser;
let shotSeq = 0;
const SHOT_PREFIX = (process.argv[1] || '').includes('clinician') ? 'c' : '';

export function useBrowser() {
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
}

// A fresh context and page. Collects page errors, console errors and CSP
// violations in `problems`, and every request (with all its headers) in
// `requests`.
export async function open({ viewport = DESKTOP, phone = false } = {}) {
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
export async function shot(page, name) {
	shotSeq++;
	const file = path.join(SHOTS, `${SHOT_PREFIX}${String(shotSeq).padStart(2, '0')}-${name}.png`);
	const modal = await page.evaluate(() => document.querySelector('dialog[open]') !== null);
	await page.screenshot({ path: file, fullPage: !modal });
	return file;
}

// Opens the page with a token hand-off (#token= by default, or ?token=).
export async function signIn(page, tok, caseId, { query = false } = {}) {
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

export async function waitCase(page, n) {
	await page.waitForFunction((want) => {
		const c = document.getElementById('case-count');
		return c && c.textContent === (want === 1 ? '1 image' : `${want} images`);
	}, n);
}

// All thumbnails of the page shown (blob: src, decoded).
export async function waitThumbs(page, n) {
	await page.waitForFunction((want) => {
		const imgs = [...document.querySelectorAll('.tile img')];
		return imgs.length === want && imgs.every((i) => i.src.startsWith('blob:') && i.complete && i.naturalWidth > 0);
	}, n, { timeout: 15000 });
}

export const groupIds = (page) => page.$$eval('.group', (secs) => secs.map((s) => ({
	eye: s.dataset.eye,
	title: s.querySelector('h3 span').textContent,
	ids: [...s.querySelectorAll('.tile')].map((t) => t.dataset.id),
})));

export function noProblems(problems) {
	assert.deepEqual(problems, [], 'no page error, console error or CSP violation');
}

// Images that look a little like eye photos, for the screenshots.
export function fundus(seed = 0) {
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

export function slitLamp(hue = '#3f6d8f') {
	return convertCached(['-size', '640x480', 'xc:#e9d2c3',
		'-fill', '#fbf7f2', '-draw', 'ellipse 320,240 260,140 0,360',
		'-fill', hue, '-draw', 'circle 320,240 320,140',
		'-fill', '#0b0b0b', '-draw', 'circle 320,240 320,200',
		'-fill', '#ffffff', '-draw', 'circle 345,215 345,205',
		'-blur', '0x1.5', '-quality', '90'], 'jpg');
}

export function octScan() {
	return convertCached(['-size', '480x640', 'gradient:#101010-#303030', '-rotate', '90',
		'-stroke', '#d0d0d0', '-strokewidth', '6', '-fill', 'none',
		'-draw', "path 'M 0,260 C 200,250 260,330 320,330 C 380,330 440,250 640,260'",
		'-stroke', '#909090', '-strokewidth', '3',
		'-draw', "path 'M 0,300 C 200,290 260,360 320,360 C 380,360 440,290 640,300'",
		'-quality', '90'], 'jpg');
}

// A file for setInputFiles.
export const file = (name, buffer, mimeType = 'image/jpeg') => ({ name, mimeType, buffer: Buffer.from(buffer) });


// Every row of the upload list, as the page shows it.
export const queueRows = (page) => page.$$eval('#queue li', (lis) => lis.map((li) => ({
	name: li.querySelector('.qname').firstChild.textContent,
	state: li.dataset.state,
	value: li.querySelector('progress').value,
	pct: li.querySelector('.qpercent').textContent,
	status: li.querySelector('.qstatus').textContent,
})));

// Waits until the n rows of the upload list have all ended (done, failed or
// cancelled) and returns them.
export async function waitQueue(page, n, timeout = 30000) {
	await page.waitForFunction((want) => {
		const lis = [...document.querySelectorAll('#queue li')];
		return lis.length === want && lis.every((li) => ['done', 'failed', 'cancelled'].includes(li.dataset.state));
	}, n, { timeout });
	return queueRows(page);
}

// The requests a page made to the API: the token is never in a URL; API
// calls carry it as a bearer token; signed URLs (the local upload PUT, the
// /file download) carry no Authorization header at all.
export async function assertTokenHandling(requests, tok) {
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

export const proxyRequests = (requests, thumb = true) => requests.filter((r) =>
	/\/api\/v1\/images\/[0-9a-f-]{36}\/proxy/.test(r.url()) && r.url().includes('thumbnail=true') === thumb);

export async function addFiles(page, files, selector = '#file-input') {
	if (!(await page.$eval('#upload', (d) => d.open)))
		await page.click('#upload summary');
	await page.setInputFiles(selector, files);
}

export async function setRowEye(page, i, eye) {
	await page.locator('#queue li').nth(i).locator('select[id$="-eye"]').selectOption(eye);
}

export async function setRowType(page, i, type) {
	await page.locator('#queue li').nth(i).locator('select[id$="-type"]').selectOption(type);
}

// Every row of the upload list gets an eye (sides[i]) and the form a type.
export async function chooseAll(page, sides, type = 'fundus') {
	await page.selectOption('#up-type', type);
	for (const [i, side] of sides.entries())
		await setRowEye(page, i, side);
}

export async function viewerState(page) {
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

export async function waitViewerImage(page) {
	await page.waitForFunction(() => {
		const img = document.getElementById('v-img');
		return document.getElementById('viewer').open && !img.hidden && img.complete && img.naturalWidth > 0 &&
			(img.getAttribute('src') || '').startsWith('blob:');
	});
}

// Whether a blob: URL still resolves (loaded as an image: img-src allows
// blob:, connect-src does not).
export const blobAlive = (page, url) => page.evaluate((u) => new Promise((resolve) => {
	const i = new Image();
	i.onload = () => resolve(true);
	i.onerror = () => resolve(false);
	i.src = u;
}), url);

export const translateOf = (t) => {
	const m = /translate\(([-\d.e]+)px, ([-\d.e]+)px\)/.exec(t);
	return m ? [Number(m[1]), Number(m[2])] : null;
};

// A world with n images already in the doctor's case (through the API).
export async function worldWithImages(specs) {
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

export const noiseImage = (w, h) => convertCached(['-size', `${w}x${h}`, 'xc:gray', '+noise', 'Random', '-depth', '8'], 'png');

// ---------------------------------------------------------------------------

