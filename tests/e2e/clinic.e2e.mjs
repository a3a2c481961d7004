// Browser tests of the clinic page (www/, served by nginx at /images/)
// against the real polaimg, nginx and PostgreSQL started by
// tests/integration/run.sh (run them with tests/e2e/run.sh): sign-in,
// upload, viewer, download, delete, errors, phones. clinician.e2e.mjs has
// the clinician's points (names, compare, portrait tiles, the eye chosen,
// rights, keyboard, axe-core).
//
// Headless Debian chromium driven by playwright-core. Every test seeds its
// own users and cases (lib.mjs) and opens fresh browser contexts, so the
// tests do not depend on each other. Each step leaves a screenshot in
// $E2E_OUT/screenshots.

import { describe, test } from 'node:test';
import {
	BASE_URL, MAX_UPLOAD_BYTES, api, assert, fs, makeImage, path, sha256, sql, lit,
	seedWorld, token,
} from '../integration/lib.mjs';
import {
	DESKTOP, OUT, PAGE_URL, PHONE, addFiles, assertTokenHandling, blobAlive, file, fundus, groupIds, noProblems, noiseImage,
	chooseAll, octScan, open, proxyRequests, queueRows, setRowEye, shot, signIn, slitLamp, translateOf, useBrowser,
	viewerState, waitCase, waitQueue, waitThumbs, waitViewerImage, worldWithImages,
} from './helpers.mjs';

useBrowser();
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
			t.querySelector('.tile-meta').textContent, t.querySelector('.tile-date').textContent,
			t.querySelector('.tile-desc').textContent, t.querySelector('time').getAttribute('datetime')]));
		for (const m of meta)
			assert.deepEqual(m, ['Fundus', '20 Nov 2026, 10:15', 'Annual screening', '2026-11-20T10:15:00Z']);

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

	test('patients: another patient\'s case is refused with the documented message; a role claim hides delete', async () => {
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

		// Own case: no Delete for a patient (clinician.e2e.mjs checks the
		// case answer's viewer.canDelete, whatever the token's claims).
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
		await chooseAll(page, ['right', 'left', 'both']);
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
		await chooseAll(page, ['right']);
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
		await chooseAll(page, ['left']);
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
		await chooseAll(page, ['left']);
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
		assert.deepEqual(order.slice(0, 4), ['btn btn-primary', 'compare-open', 'reload', 'Add images'], `tab order: ${order}`);
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
		await chooseAll(page, ['both', 'right', 'left'], 'slit_lamp');
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
