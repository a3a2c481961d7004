// The clinic page as a clinician uses it, in headless Chromium against the
// real polaimg, nginx and PostgreSQL (tests/e2e/run.sh): whose images and
// who took them, the compare view (two images, synchronised zoom and pan,
// per-eye timelines), portrait thumbnails shown whole, the eye chosen for
// every upload, failed uploads with an empty bar, a patient who sees no
// Delete, a keyboard-only walk with visible focus, axe-core, and the
// screenshots the README shows (docs/screenshots/, 1280×900).
//
// Names: the PolaCare platform's users.name and patient_cases.patient_name
// and hn, which polaimg reads when the columns exist; withNames() adds
// them to the test database (IF NOT EXISTS) and fills them for one world.

import { describe, test } from 'node:test';
import { createRequire } from 'node:module';
import { api, assert, fs, lit, makeImage, path, seedWorld, sql } from '../integration/lib.mjs';
import {
	OUT, PHONE, addFiles, file, fundus, noProblems, octScan, open, setRowEye, setRowType, shot, signIn,
	slitLamp, useBrowser, waitCase, waitQueue, waitThumbs, worldWithImages,
} from './helpers.mjs';

const require = createRequire(import.meta.url);
const AXE = fs.readFileSync(require.resolve('axe-core/axe.min.js'), 'utf8');
const DOCS = path.join(OUT, 'docs');
fs.mkdirSync(DOCS, { recursive: true });
const SCREEN = { width: 1280, height: 900 };

useBrowser();

function withNames(w, { patientName = 'Somchai Jaidee', hn = '6512345', doctorName = 'Anong Srisuk' } = {}) {
	sql(`ALTER TABLE users ADD COLUMN IF NOT EXISTS name varchar(255);
		ALTER TABLE patient_cases ADD COLUMN IF NOT EXISTS patient_name varchar(255);
		ALTER TABLE patient_cases ADD COLUMN IF NOT EXISTS hn varchar(50);
		UPDATE users SET name = ${lit(doctorName)} WHERE id = ${lit(w.doctor)};
		UPDATE users SET name = ${lit(patientName)} WHERE id = ${lit(w.patient)};
		UPDATE patient_cases SET patient_name = ${lit(patientName)}, hn = ${lit(hn)} WHERE id = ${lit(w.case)}`);
	Object.assign(w, { patientName, hn, doctorName });
	return w;
}

// A JPEG with an EXIF block whose IFD0 holds one ImageDescription (0x010E),
// as some fundus cameras write the eye; spliced in after the SOI marker.
function withDescription(jpeg, text) {
	const str = Buffer.from(`${text}\0`, 'latin1');
	const tiff = Buffer.alloc(8 + 2 + 12 + 4);
	tiff.write('II', 0, 'latin1');
	tiff.writeUInt16LE(42, 2);
	tiff.writeUInt32LE(8, 4);
	tiff.writeUInt16LE(1, 8);
	tiff.writeUInt16LE(0x010e, 10);
	tiff.writeUInt16LE(2, 12); // ASCII
	tiff.writeUInt32LE(str.length, 14);
	tiff.writeUInt32LE(tiff.length, 18); // the text follows the IFD
	tiff.writeUInt32LE(0, 22);
	const body = Buffer.concat([Buffer.from('Exif\0\0', 'latin1'), tiff, str]);
	const app1 = Buffer.alloc(4);
	app1.writeUInt16BE(0xffe1, 0);
	app1.writeUInt16BE(body.length + 2, 2);
	return Buffer.concat([jpeg.subarray(0, 2), app1, body, jpeg.subarray(2)]);
}

// The case answer as the page gets it (the doctor's view unless tok).
async function caseAnswer(w, tok = w.tDoctor) {
	const r = await api('GET', `/api/v1/images/cases/${w.case}`, { token: tok });
	assert.equal(r.status, 200);
	return r.json.data;
}

const tileTexts = (page) => page.$$eval('.tile', (ts) => ts.map((t) => ({
	id: t.dataset.id,
	type: t.querySelector('.tile-meta').textContent.trim(),
	by: (t.querySelector('.tile-by') || t.querySelector('.tile-meta')).textContent.trim(),
})));

// Each pane of the compare view as shown.
const panes = (page) => page.$$eval('#compare .pane', (ps) => ps.map((p) => {
	const st = p.querySelector('.stage');
	const img = st.querySelector('img');
	return {
		id: p.dataset.id || '',
		title: p.querySelector('.pane-title').textContent,
		meta: p.querySelector('.pane-meta').textContent,
		eye: p.querySelector('.pane-eye').value,
		loaded: !img.hidden && img.complete && img.naturalWidth > 0 && (img.getAttribute('src') || '').startsWith('blob:'),
		k: Number(st.dataset.k || '0'),
		centre: (st.dataset.centre || '').split(',').map(Number),
		strip: [...p.querySelectorAll('.tl-group')].map((g) => ({
			type: g.querySelector('h4').textContent,
			ids: [...g.querySelectorAll('.tl-item')].map((b) => b.dataset.id),
			pressed: [...g.querySelectorAll('.tl-item')].filter((b) => b.getAttribute('aria-pressed') === 'true').map((b) => b.dataset.id),
		})),
	};
}));

async function waitPanes(page, ids) {
	await page.waitForFunction((want) => {
		const ps = [...document.querySelectorAll('#compare .pane')];
		return document.getElementById('compare').open && ps.length === 2 && ps.every((p, i) => {
			const img = p.querySelector('.stage img');
			return p.dataset.id === want[i] && !img.hidden && img.complete && img.naturalWidth > 0;
		});
	}, ids, { timeout: 15000 });
}

// axe-core inside the page (evaluated through the DevTools protocol, which
// the page's CSP does not govern); the serious and critical violations.
async function axe(page, what) {
	await page.evaluate(AXE);
	const res = await page.evaluate(async () => {
		const r = await window.axe.run(document, { resultTypes: ['violations'] });
		return r.violations.map((v) => ({ id: v.id, impact: v.impact, nodes: v.nodes.map((n) => n.target.join(' ')).slice(0, 5) }));
	});
	const bad = res.filter((v) => v.impact === 'serious' || v.impact === 'critical');
	assert.deepEqual(bad, [], `${what}: axe-core serious/critical violations`);
	return res;
}

// The focused element, and whether its focus can be seen (an outline of at
// least 2 px, on the element or on the label of a visually hidden input).
const focusInfo = (page) => page.evaluate(() => {
	const e = document.activeElement;
	let shown = e;
	if (e && e.matches('input.visually-hidden') && e.nextElementSibling && e.nextElementSibling.tagName === 'LABEL')
		shown = e.nextElementSibling;
	const cs = getComputedStyle(shown);
	const visible = (cs.outlineStyle !== 'none' && parseFloat(cs.outlineWidth) >= 2) || (cs.boxShadow && cs.boxShadow !== 'none');
	return {
		id: e.id, tag: e.tagName, cls: String(e.className || ''),
		text: (e.getAttribute('aria-label') || e.textContent || '').trim().replace(/\s+/g, ' ').slice(0, 60),
		visible, outline: `${cs.outlineStyle} ${cs.outlineWidth}`, focus: e.matches(':focus'),
	};
});

// Presses Tab (or Shift+Tab) until match(focusInfo) holds; every element
// passed on the way must show its focus.
async function tabTo(page, match, { back = false, max = 40 } = {}) {
	const seen = [];
	for (let i = 0; i < max; i++) {
		await page.keyboard.press(back ? 'Shift+Tab' : 'Tab');
		const f = await focusInfo(page);
		seen.push(f.id || f.text || f.tag);
		assert.ok(f.visible, `focus visible on ${JSON.stringify(f)}`);
		if (match(f))
			return f;
	}
	throw new Error(`not reached by ${back ? 'Shift+Tab' : 'Tab'}: ${seen.join(' → ')}`);
}

// ---------------------------------------------------------------------------

describe('the clinic page for clinicians', () => {
	test('whose images and who took them: patient name and HN in the header, "by Dr … · date" under each image', async () => {
		const w = withNames(await worldWithImages([
			{ data: fundus(0), eye: 'right', captured: '2026-11-20T09:40:00Z' },
			{ data: fundus(2), eye: 'left' },
		]));
		const data = await caseAnswer(w);
		const { page, problems } = await open({ viewport: SCREEN });
		await signIn(page, w.tDoctor, w.case);
		await waitCase(page, 2);
		assert.equal(await page.textContent('#case-title'), 'Somchai Jaidee');
		assert.match(await page.textContent('#case-patient'), /HN 6512345/);
		const tiles = await tileTexts(page);
		const dated = tiles.find((t) => t.id === w.images[0].id);
		const undated = tiles.find((t) => t.id === w.images[1].id);
		assert.equal(dated.by, 'by Dr Anong Srisuk · 20 Nov 2026, 09:40');
		// No capture date given nor in the file: labelled as the upload time.
		const img1 = data.images.find((i) => i.id === w.images[1].id);
		assert.equal(img1.capturedAtSource, 'upload', 'the service says the date is the upload time');
		assert.match(undated.by, /^by Dr Anong Srisuk · uploaded \d+ \w+ \d{4}, \d\d:\d\d$/);
		// The viewer says it too.
		await page.click(`.tile[data-id="${w.images[0].id}"] .thumb`);
		await page.waitForFunction(() => document.getElementById('viewer').open);
		assert.match(await page.textContent('#v-meta'), /by Dr Anong Srisuk · 20 Nov 2026, 09:40/);
		await page.keyboard.press('Escape');
		await shot(page, 'names');

		// No names known (a database without the platform's columns filled):
		// short ids instead.
		const w2 = await worldWithImages([{ data: fundus(1), eye: 'right' }]);
		const p2 = await open({ viewport: SCREEN });
		await signIn(p2.page, w2.tDoctor, w2.case);
		await waitCase(p2.page, 1);
		assert.equal(await p2.page.textContent('#case-title'), `Patient ${w2.patient.slice(0, 8)}`);
		assert.match(await p2.page.textContent('#case-patient'), new RegExp(`patient id ${w2.patient}`));
		assert.match((await tileTexts(p2.page))[0].by, new RegExp(`^by user ${w2.doctor.slice(0, 8)} · uploaded `));
		noProblems(problems);
		noProblems(p2.problems);
	});

	test('compare: latest OD and OS of one type side by side, synchronised zoom and pan, per-eye timelines by date and type', async () => {
		const w = withNames(await worldWithImages([
			{ data: fundus(0), eye: 'right', type: 'fundus', captured: '2026-05-14T09:00:00Z' },
			{ data: fundus(1), eye: 'right', type: 'fundus', captured: '2026-11-20T09:40:00Z' },
			{ data: fundus(3), eye: 'left', type: 'fundus', captured: '2026-11-20T09:41:00Z' },
			{ data: fundus(2), eye: 'left', type: 'fundus', captured: '2026-05-14T09:02:00Z' },
			{ data: octScan(), eye: 'right', type: 'oct', captured: '2026-11-20T10:05:00Z' },
			{ data: slitLamp(), eye: 'left', type: 'slit_lamp', captured: '2026-11-20T09:52:00Z' },
		]));
		const [rOld, rNew, lNew, lOld, rOct, lSlit] = w.images;
		const { page, problems } = await open({ viewport: SCREEN });
		await signIn(page, w.tDoctor, w.case);
		await waitCase(page, 6);
		await page.click('#compare-open');
		await waitPanes(page, [rNew.id, lNew.id]);
		let ps = await panes(page);
		assert.deepEqual(ps.map((p) => [p.eye, p.title]), [['right', 'Right eye (OD) · Fundus'], ['left', 'Left eye (OS) · Fundus']]);
		assert.match(ps[0].meta, /by Dr Anong Srisuk · 20 Nov 2026, 09:40/);
		// Timelines: grouped by type (fundus, OCT, slit lamp, other), oldest first.
		assert.deepEqual(ps[0].strip.map((g) => [g.type, g.ids, g.pressed]),
			[['Fundus', [rOld.id, rNew.id], [rNew.id]], ['OCT', [rOct.id], []]]);
		assert.deepEqual(ps[1].strip.map((g) => [g.type, g.ids, g.pressed]),
			[['Fundus', [lOld.id, lNew.id], [lNew.id]], ['Slit lamp', [lSlit.id], []]]);
		assert.equal(ps[0].k, 1);
		assert.equal(ps[1].k, 1);

		// Wheel over the left-hand image: both zoom, the same image point
		// stays at both centres.
		const a = await page.locator('#pane-a .stage').boundingBox();
		await page.mouse.move(a.x + a.width * 0.6, a.y + a.height * 0.4);
		await page.mouse.wheel(0, -500);
		await page.waitForFunction(() => [...document.querySelectorAll('#compare .stage')].every((s) => Number(s.dataset.k) > 1.5));
		ps = await panes(page);
		assert.equal(ps[0].k, ps[1].k, 'same zoom');
		for (const i of [0, 1])
			assert.ok(Math.abs(ps[0].centre[i] - ps[1].centre[i]) < 0.01, `same centre: ${ps[0].centre} / ${ps[1].centre}`);
		assert.ok(Math.abs(ps[0].centre[0] - 0.5) > 0.02, 'zoomed about the pointer, not the centre');
		// Drag the right-hand image: both move.
		const before = ps[0].centre;
		const b = await page.locator('#pane-b .stage').boundingBox();
		await page.mouse.move(b.x + b.width / 2, b.y + b.height / 2);
		await page.mouse.down();
		await page.mouse.move(b.x + b.width / 2 + 80, b.y + b.height / 2 + 40, { steps: 5 });
		await page.mouse.up();
		ps = await panes(page);
		assert.ok(ps[0].centre[0] < before[0] - 0.02, `dragging the other pane moved this one: ${before} → ${ps[0].centre}`);
		for (const i of [0, 1])
			assert.ok(Math.abs(ps[0].centre[i] - ps[1].centre[i]) < 0.01, `still the same centre: ${ps[0].centre} / ${ps[1].centre}`);
		await page.click('#c-zoom-in');
		ps = await panes(page);
		assert.equal(ps[0].k, ps[1].k);
		await shot(page, 'compare-zoomed');
		await page.click('#c-fit');
		assert.deepEqual((await panes(page)).map((p) => p.k), [1, 1]);

		// Today against the last visit: the left-hand pane takes May's
		// image from its timeline.
		await page.click(`#pane-a .tl-item[data-id="${rOld.id}"]`);
		await waitPanes(page, [rOld.id, lNew.id]);
		assert.deepEqual((await panes(page))[0].strip[0].pressed, [rOld.id]);
		// The right-hand pane switches to the right eye: its latest fundus
		// (the type on the other side) that is not already shown.
		await page.selectOption('#pane-b-eye', 'right');
		await waitPanes(page, [rOld.id, rNew.id]);
		// Unsynchronised, a zoom stays on its pane.
		await page.click('#c-sync');
		const bb = await page.locator('#pane-b .stage').boundingBox();
		await page.mouse.move(bb.x + bb.width / 2, bb.y + bb.height / 2);
		await page.mouse.wheel(0, -400);
		await page.waitForFunction(() => Number(document.querySelector('#pane-b .stage').dataset.k) > 1.3);
		assert.equal((await panes(page))[0].k, 1, 'not synchronised: the other pane stays');
		await page.keyboard.press('Escape');
		await page.waitForFunction(() => !document.getElementById('compare').open);
		assert.equal(await page.evaluate(() => document.activeElement.id), 'compare-open', 'focus back on Compare');
		// The close event comes after the dialog is shut: strips emptied,
		// their blob: URLs revoked.
		await page.waitForFunction(() => document.querySelectorAll('#compare .tl-item').length === 0);
		noProblems(problems.filter((p) => !/ERR_FILE_NOT_FOUND/.test(p)));
	});

	test('compare on a 375 px phone: both images side by side, controls on the screen, a pinch zooms both', async () => {
		const w = await worldWithImages([
			{ data: fundus(0), eye: 'right', captured: '2026-11-20T09:40:00Z' },
			{ data: fundus(3), eye: 'left', captured: '2026-11-20T09:41:00Z' },
		]);
		const { ctx, page, problems } = await open({ viewport: PHONE, phone: true });
		await signIn(page, w.tDoctor, w.case);
		await waitCase(page, 2);
		await page.tap('#compare-open');
		await waitPanes(page, w.images.map((i) => i.id));
		const boxes = await page.$$eval('#compare .stage', (ss) => ss.map((x) => {
			const b = x.getBoundingClientRect();
			return [b.left, b.top, b.width, b.height];
		}));
		for (const [x, y, bw, bh] of boxes)
			assert.ok(x >= 0 && x + bw <= PHONE.width && y >= 0 && y + bh <= PHONE.height && bw > 150 && bh > 100,
				`each image on the screen and not tiny: ${boxes}`);
		for (const id of ['c-close', 'c-zoom-in', 'c-zoom-out', 'c-fit', 'pane-a-eye', 'pane-b-eye']) {
			const b = await page.locator(`#${id}`).boundingBox();
			assert.ok(b && b.x >= 0 && b.x + b.width <= PHONE.width && b.y + b.height <= PHONE.height, `${id} on the screen: ${JSON.stringify(b)}`);
		}
		const m = await page.evaluate(() => [document.documentElement.scrollWidth, document.documentElement.clientWidth]);
		assert.ok(m[0] <= m[1], `no horizontal scrolling: ${m}`);
		const [x, y, bw, bh] = boxes[0];
		const cx = x + bw / 2;
		const cy = y + bh / 2;
		const cdp = await ctx.newCDPSession(page);
		const touch = (type, pts) => cdp.send('Input.dispatchTouchEvent', {
			type, touchPoints: pts.map(([px, py], id) => ({ x: px, y: py, id, radiusX: 2, radiusY: 2, force: 1 })),
		});
		await touch('touchStart', [[cx - 15, cy], [cx + 15, cy]]);
		for (let d = 15; d <= 60; d += 9)
			await touch('touchMove', [[cx - d, cy], [cx + d, cy]]);
		await touch('touchEnd', []);
		const ks = (await panes(page)).map((p) => p.k);
		assert.ok(ks[0] > 2 && ks[0] === ks[1], `a pinch on one zoomed both: ${ks}`);
		await shot(page, 'phone-compare');
		noProblems(problems);
	});

	test('portrait and landscape thumbnails are shown whole in their square tile', async () => {
		const w = await worldWithImages([
			{ data: makeImage(300, 600, 'jpg'), eye: 'right' },
			{ data: makeImage(640, 240, 'jpg'), eye: 'left' },
		]);
		const { page, problems } = await open({ viewport: { width: 1280, height: 900 } });
		await signIn(page, w.tDoctor, w.case);
		await waitCase(page, 2);
		await waitThumbs(page, 2);
		const data = await caseAnswer(w);
		for (const img of w.images) {
			const m = await page.$eval(`.tile[data-id="${img.id}"] .thumb`, (btn) => {
				const im = btn.querySelector('img');
				const b = btn.getBoundingClientRect();
				const r = im.getBoundingClientRect();
				const fit = getComputedStyle(im).objectFit;
				// What object-fit: contain draws inside the <img> box.
				const s = fit === 'contain' ? Math.min(r.width / im.naturalWidth, r.height / im.naturalHeight) : 1;
				const cw = im.naturalWidth * s;
				const ch = im.naturalHeight * s;
				const cx = r.left + (r.width - cw) / 2;
				const cy = r.top + (r.height - ch) / 2;
				return {
					tile: [b.left, b.top, b.width, b.height], drawn: [cx, cy, cw, ch],
					natural: [im.naturalWidth, im.naturalHeight],
				};
			});
			const api = data.images.find((i) => i.id === img.id);
			const want = api.width / api.height;
			const [tx, ty, tw, th] = m.tile;
			const [cx, cy, cw, ch] = m.drawn;
			assert.ok(Math.abs(tw - th) < 1, `the tile stays square: ${m.tile}`);
			assert.ok(cx >= tx - 0.5 && cy >= ty - 0.5 && cx + cw <= tx + tw + 0.5 && cy + ch <= ty + th + 0.5,
				`${api.width}×${api.height}: the image drawn ${m.drawn} lies inside the tile ${m.tile}`);
			assert.ok(Math.abs(cw / ch - want) < 0.03, `drawn with the image's aspect ratio ${want}: ${cw}×${ch}`);
			assert.ok(Math.max(cw / tw, ch / th) > 0.97, `fills the tile along its long side: ${cw}×${ch} in ${tw}×${th}`);
		}
		await shot(page, 'portrait-tiles');
		noProblems(problems);
	});

	test('upload: the eye has no default and must be chosen (a hint is offered, not applied); the type is remembered', async () => {
		const w = withNames(seedWorld());
		const { ctx, page, problems, requests } = await open({ viewport: SCREEN });
		await signIn(page, w.tDoctor, w.case);
		await waitCase(page, 0);
		await addFiles(page, [file('scan_OD.jpg', fundus(0)), file('photo.jpg', fundus(2)),
			file('camera.jpg', withDescription(fundus(4), 'Fundus, left eye'))]);
		await page.waitForSelector('#queue li:nth-child(3)');
		const eyes = await page.$$eval('#queue li select', (ss) => ss.filter((x) => !x.id.endsWith('-type')).map((x) => x.value));
		assert.deepEqual(eyes, ['', '', ''], 'no eye preselected');
		await page.waitForSelector('#queue li:first-child .qhint:not([hidden])');
		const state = () => page.$$eval('#queue li', (lis) => lis.map((li) => ({
			eye: li.querySelector('select[id$="-eye"]').value,
			type: li.querySelector('select[id$="-type"]').value,
			hint: li.querySelector('.qhint').hidden ? null : li.querySelector('.qhint button').textContent,
			status: li.querySelector('.qstatus').textContent,
		})));
		await page.waitForSelector('#queue li:nth-child(3) .qhint:not([hidden])');
		let rows = await state();
		assert.deepEqual(rows.map((r) => r.eye), ['', '', ''], 'no eye preselected, hints or not');
		assert.equal(await page.$eval('#up-type', (s) => s.value), '', 'no type preselected in a fresh browser');
		assert.equal(rows[0].hint, 'Use Right eye (OD)', 'the file name suggests OD');
		assert.equal(rows[1].hint, null);
		assert.equal(rows[2].hint, 'Use Left eye (OS)', 'the EXIF ImageDescription suggests OS');
		assert.match(await page.textContent('#queue li:nth-child(3) .qhint'), /photo description suggests Left eye \(OS\)/);
		await shot(page, 'upload-eye-missing');
		// The third file is not wanted after all.
		await page.click('#queue li:nth-child(3) button:has-text("Cancel")');
		await page.click('#upload-start');
		rows = await state();
		assert.deepEqual(rows.map((r) => r.status), [
			'Choose the eye and the image type for this file.', 'Choose the eye and the image type for this file.', 'Cancelled.']);
		assert.equal(await page.evaluate(() => document.activeElement.id.endsWith('-eye')), true, 'focus on the missing eye');
		assert.equal(requests.filter((r) => r.url().endsWith('/api/v1/images/upload')).length, 0, 'nothing sent');
		// Take the hint for the first, choose the second by hand; the type
		// for both from the form.
		await page.click('#queue li:first-child .qhint button');
		await setRowEye(page, 1, 'left');
		await page.selectOption('#up-type', 'oct');
		await setRowType(page, 1, 'fundus');
		rows = await state();
		assert.deepEqual(rows.slice(0, 2).map((r) => [r.eye, r.type]), [['right', 'oct'], ['left', 'fundus']]);
		await page.click('#upload-start');
		const done = await waitQueue(page, 3);
		assert.deepEqual(done.map((r) => [r.state, r.value, r.pct]),
			[['done', 100, '100 %'], ['done', 100, '100 %'], ['cancelled', 0, '']]);
		const list = (await caseAnswer(w)).images;
		assert.deepEqual(list.map((i) => [i.eyeSide, i.imageType]), [['right', 'oct'], ['left', 'fundus']]);
		// The last type used, remembered in this browser.
		const p2 = await ctx.newPage();
		await signIn(p2, w.tDoctor, w.case);
		await waitCase(p2, 2);
		assert.equal(await p2.$eval('#up-type', (s) => s.value), 'fundus');
		noProblems(problems);
	});

	test('several files: each its own progress; a failed one shows its error and an empty bar, not 100 %', async () => {
		const w = withNames(seedWorld());
		const { page, problems } = await open({ viewport: SCREEN });
		await signIn(page, w.tDoctor, w.case);
		await waitCase(page, 0);
		await addFiles(page, [file('good.jpg', fundus(1)), file('damaged.jpg', fundus(0).subarray(0, 700)),
			file('also-good.jpg', slitLamp())]);
		await page.selectOption('#up-type', 'fundus');
		for (const [i, side] of ['right', 'left', 'both'].entries())
			await setRowEye(page, i, side);
		await page.click('#upload-start');
		const rows = await waitQueue(page, 3);
		assert.deepEqual(rows.map((r) => [r.name, r.state, r.value, r.pct]), [
			['good.jpg', 'done', 100, '100 %'], ['damaged.jpg', 'failed', 0, ''], ['also-good.jpg', 'done', 100, '100 %']]);
		assert.equal(rows[1].status, 'This image could not be read: the file is damaged or has too many pixels.');
		await shot(page, 'upload-failed-empty-bar');
		await waitCase(page, 2);
		noProblems(problems);
	});

	test('roles: a patient sees no Delete (the case answer says so), and never sends one', async () => {
		const w = await worldWithImages([{ data: fundus(0), eye: 'right' }, { data: fundus(1), eye: 'left' }]);
		const asPatient = await caseAnswer(w, w.tPatient);
		assert.equal(asPatient.viewer.canDelete, false);
		const { page, problems, requests } = await open({ viewport: SCREEN });
		await signIn(page, w.tPatient, w.case); // no role claim in the token
		await waitCase(page, 2);
		await waitThumbs(page, 2);
		assert.deepEqual(await page.$$eval('.tile-delete', (bs) => bs.map((b) => b.checkVisibility())), [false, false]);
		assert.equal(await page.$eval('#upload', (d) => !d.hidden), asPatient.viewer.canUpload, 'upload offered as the answer says');
		await page.click('.thumb');
		await page.waitForFunction(() => document.getElementById('viewer').open);
		assert.equal(await page.$eval('#v-delete', (b) => b.checkVisibility()), false);
		await page.keyboard.press('Escape');
		assert.equal(requests.filter((r) => r.method() === 'DELETE').length, 0);
		await shot(page, 'patient-no-delete');
		// The doctor, same case: Delete everywhere.
		const p2 = await open({ viewport: SCREEN });
		await signIn(p2.page, w.tDoctor, w.case);
		await waitCase(p2.page, 2);
		assert.deepEqual(await p2.page.$$eval('.tile-delete', (bs) => bs.map((b) => b.checkVisibility())), [true, true]);
		noProblems(problems);
		noProblems(p2.problems);
	});

	test('keyboard only, focus always visible: upload → compare → delete', async () => {
		const w = withNames(await worldWithImages([{ data: fundus(0), eye: 'right', captured: '2026-11-20T09:40:00Z' }]));
		const { page, problems } = await open({ viewport: SCREEN });
		await signIn(page, w.tDoctor, w.case);
		await waitCase(page, 1);
		await page.focus('#case-input');

		// Upload: open the panel, pick a file, choose eye and type, send.
		await tabTo(page, (f) => f.tag === 'SUMMARY');
		await page.keyboard.press('Enter');
		await tabTo(page, (f) => f.id === 'file-input');
		const [chooser] = await Promise.all([page.waitForEvent('filechooser'), page.keyboard.press('Space')]);
		await chooser.setFiles([file('left.jpg', fundus(3))]);
		await page.waitForSelector('#queue li');
		await tabTo(page, (f) => f.id.endsWith('-eye'));
		await page.keyboard.press('ArrowDown'); // Right eye (OD)
		await page.keyboard.press('ArrowDown'); // Left eye (OS)
		await tabTo(page, (f) => f.id.endsWith('-type'));
		await page.keyboard.press('ArrowDown'); // Fundus
		const row = await page.$eval('#queue li', (li) => [li.querySelector('select[id$="-eye"]').value, li.querySelector('select[id$="-type"]').value]);
		assert.deepEqual(row, ['left', 'fundus']);
		await tabTo(page, (f) => f.id === 'upload-start');
		await page.keyboard.press('Enter');
		assert.equal((await waitQueue(page, 1))[0].state, 'done');
		await waitCase(page, 2);

		// Compare: back to the button, open, zoom both, pick from a
		// timeline, close.
		await tabTo(page, (f) => f.id === 'compare-open', { back: true });
		await page.keyboard.press('Enter');
		const left = (await caseAnswer(w)).images.find((i) => i.eyeSide === 'left');
		await waitPanes(page, [w.images[0].id, left.id]);
		await page.keyboard.press('+');
		assert.deepEqual((await panes(page)).map((p) => p.k), [1.5, 1.5]);
		await tabTo(page, (f) => f.cls.includes('stage'));
		const c0 = (await panes(page))[0].centre;
		await page.keyboard.press('ArrowRight');
		assert.ok((await panes(page))[0].centre[0] > c0[0], 'arrow keys move the zoomed image');
		await tabTo(page, (f) => f.cls.includes('tl-item'));
		await page.keyboard.press('Enter');
		await page.keyboard.press('Escape');
		await page.waitForFunction(() => !document.getElementById('compare').open);
		assert.equal(await page.evaluate(() => document.activeElement.id), 'compare-open');

		// Delete: the tile's button, confirm with the keyboard.
		await tabTo(page, (f) => f.cls.includes('tile-delete'));
		await page.keyboard.press('Enter');
		await page.waitForSelector('#confirm[open]');
		assert.equal((await focusInfo(page)).text, 'Cancel');
		await tabTo(page, (f) => f.text === 'Delete image');
		await page.keyboard.press('Enter');
		await waitCase(page, 1);
		noProblems(problems.filter((p) => !/ERR_FILE_NOT_FOUND/.test(p)));
	});

	test('axe-core: no serious or critical violation in the case view, the upload form, the viewer and the compare view', async () => {
		const w = withNames(await worldWithImages([
			{ data: fundus(0), eye: 'right', captured: '2026-11-20T09:40:00Z' },
			{ data: fundus(3), eye: 'left', captured: '2026-11-20T09:41:00Z' },
		]));
		const { page, problems } = await open({ viewport: SCREEN });
		await signIn(page, w.tDoctor, w.case);
		await waitCase(page, 2);
		await waitThumbs(page, 2);
		await axe(page, 'case view');
		await addFiles(page, [file('scan_OS.jpg', fundus(2))]);
		await page.waitForSelector('#queue li');
		await new Promise((r) => setTimeout(r, 300)); // the eye hint, when there is one
		await axe(page, 'upload form');
		await page.click('#upload summary');
		await page.click('.thumb');
		await page.waitForFunction(() => document.getElementById('viewer').open);
		await axe(page, 'viewer');
		await page.keyboard.press('Escape');
		await page.click('#compare-open');
		await waitPanes(page, w.images.map((i) => i.id));
		await axe(page, 'compare view');
		noProblems(problems);
	});

	test('screenshots for the README (1280×900): the case view, the compare view, the upload form', async () => {
		const w = withNames(await worldWithImages([
			{ data: fundus(0), eye: 'right', type: 'fundus', description: 'Optic disc, 6-month follow-up', captured: '2026-11-20T09:40:00Z' },
			{ data: fundus(1), eye: 'right', type: 'fundus', captured: '2026-05-14T09:00:00Z' },
			{ data: slitLamp(), eye: 'right', type: 'slit_lamp', captured: '2026-11-20T09:52:00Z' },
			{ data: fundus(3), eye: 'left', type: 'fundus', captured: '2026-11-20T09:41:00Z' },
			{ data: fundus(2), eye: 'left', type: 'fundus', captured: '2026-05-14T09:02:00Z' },
			{ data: octScan(), eye: 'left', type: 'oct', description: 'Macula', captured: '2026-11-20T10:05:00Z' },
		]));
		const { page, problems } = await open({ viewport: SCREEN });
		await signIn(page, w.tDoctor, w.case);
		await waitCase(page, 6);
		await waitThumbs(page, 6);
		await page.screenshot({ path: path.join(DOCS, 'case-view.png') });
		await page.click('#compare-open');
		await waitPanes(page, [w.images[0].id, w.images[3].id]);
		await page.waitForFunction(() => [...document.querySelectorAll('#compare .tl-item img')].every((i) => i.complete && i.naturalWidth > 0));
		await page.screenshot({ path: path.join(DOCS, 'compare.png') });
		await page.keyboard.press('Escape');
		await page.evaluate(() => window.scrollTo(0, 0));
		await addFiles(page, [file('IMG_2231_OD.jpg', fundus(4)), file('IMG_2232.jpg', fundus(5))]);
		await page.selectOption('#up-type', 'fundus');
		await page.waitForSelector('#queue li:first-child .qhint:not([hidden])');
		await page.click('#upload-start');
		await page.evaluate(() => document.getElementById('upload').scrollIntoView());
		await page.screenshot({ path: path.join(DOCS, 'upload.png') });
		for (const f of ['case-view.png', 'compare.png', 'upload.png']) {
			const png = fs.readFileSync(path.join(DOCS, f));
			assert.deepEqual([png.readUInt32BE(16), png.readUInt32BE(20)], [1280, 900], `${f} is 1280×900`);
		}
		noProblems(problems.filter((p) => !/ERR_FILE_NOT_FOUND/.test(p)));
	});
});

