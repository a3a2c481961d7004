// bench/page.bench.mjs — the clinic page's time to the first screen of
// thumbnails, in headless Debian chromium against the real polaimg, nginx
// and PostgreSQL. Not part of any test run or CI; run it by hand:
//
//     POLAIMG_BIN=$PWD/build/src/polaimg tests/integration/run.sh -- bench/page.bench.mjs
//
// (after tests/e2e/run.sh has installed chromium and tests/e2e/node_modules
// once). A case of 40 images (fundus-like JPEGs, 640×480, and portraits);
// ROUNDS fresh browser contexts (empty cache) open it at 1280×900 by
// hand-off. Reported: the median, min and max of the time from the start of
// navigation until every thumbnail whose tile is on the screen is decoded
// (performance.now() in the page), how many thumbnails that screen held,
// how many were fetched by then, and the page's cumulative layout shift.
// Figures are printed, never asserted.

import { test } from 'node:test';
import { makeImage } from '../tests/integration/lib.mjs';
import { fundus, open, signIn, useBrowser, worldWithImages } from '../tests/e2e/helpers.mjs';

const ROUNDS = Number(process.env.ROUNDS || 7);
const SCREEN = { width: 1280, height: 900 };

useBrowser();

const median = (xs) => {
	const s = xs.slice().sort((a, b) => a - b);
	return s[Math.floor(s.length / 2)];
};

test('time to the first screen of thumbnails', async () => {
	const specs = [];
	for (let i = 0; i < 40; i++)
		specs.push({ data: i % 4 === 3 ? makeImage(300 + i, 600, 'jpg') : fundus(i % 6), eye: ['right', 'left'][i % 2] });
	const w = await worldWithImages(specs);
	const rows = [];
	for (let r = 0; r < ROUNDS; r++) {
		const { ctx, page, requests } = await open({ viewport: SCREEN });
		await signIn(page, w.tDoctor, w.case);
		const h = await page.waitForFunction(() => {
			const tiles = [...document.querySelectorAll('.tile')];
			if (tiles.length === 0)
				return false;
			const onScreen = tiles.filter((t) => {
				const b = t.querySelector('.thumb').getBoundingClientRect();
				return b.bottom > 0 && b.top < window.innerHeight;
			});
			const done = onScreen.every((t) => {
				const im = t.querySelector('img');
				return im.complete && im.naturalWidth > 0 && (im.getAttribute('src') || '').startsWith('blob:');
			});
			return done ? { ms: performance.now(), n: onScreen.length } : false;
		}, null, { polling: 'raf', timeout: 30000 });
		const { ms, n } = await h.jsonValue();
		const fetched = requests.filter((q) => q.url().includes('thumbnail=true')).length;
		await new Promise((res) => setTimeout(res, 500));
		const cls = await page.evaluate(() => new Promise((resolve) => {
			let sum = 0;
			new PerformanceObserver((list) => {
				for (const e of list.getEntries())
					if (!e.hadRecentInput)
						sum += e.value;
			}).observe({ type: 'layout-shift', buffered: true });
			setTimeout(() => resolve(sum), 100);
		}));
		rows.push({ ms, n, fetched, cls });
		await ctx.close();
	}
	const ms = rows.map((x) => x.ms);
	console.log(`first screen of thumbnails, 40-image case, 1280×900, ${ROUNDS} cold rounds: ` +
		`median ${median(ms).toFixed(0)} ms (min ${Math.min(...ms).toFixed(0)}, max ${Math.max(...ms).toFixed(0)}); ` +
		`${rows[0].n} thumbnails on that screen, ${median(rows.map((x) => x.fetched))} fetched by then; ` +
		`cumulative layout shift ${Math.max(...rows.map((x) => x.cls)).toFixed(4)} (worst round)`);
});
