/* app.js — the clinic page: sign in with a token, open a case, view,
 * compare and add images, delete them (doctors and administrators).
 *
 * The case answer names the patient (data.case: patientName, hn; the ids
 * when the service knows no name) and says what the signed-in user may do
 * (data.viewer: canUpload, canDelete): the page shows only those actions.
 * Against a service that does not say, it falls back to the token's role
 * claim and hides Delete after the first refusal.
 *
 * The page is static and talks to the polaimg API only (docs/api.md); it keeps
 * no state on any server. What it keeps in the browser: the token (and a
 * "delete was refused" flag) in sessionStorage, the open case id in the
 * address (?case=…, so a reload reopens it). config.json, next to this
 * page, is edited by the administrator: {"apiBase": "/api/v1/images",
 * "upload": "service" | "direct"} (see upload.js).
 */

import { ApiError, apiInit, apiJson } from './api.js';
import { MSG, describe } from './messages.js';
import { Gallery } from './gallery.js';
import { Viewer } from './viewer.js';
import { Uploader, lastType } from './upload.js';
import { Compare } from './compare.js';
import { shortId } from './format.js';
import { claims, clearToken, getToken, mayOfferDelete, noteDeleteDenied, setToken, takeHandOff } from './token.js';

const UUID_RE = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
const PAGE = 500;

const $ = (id) => document.getElementById(id);

const state = {
	caseId: null, config: { apiBase: '/api/v1/images', upload: 'service' }, loadSeq: 0,
	rights: null, /* data.viewer of the case answer, when the service sends it */
};
let gallery;
let viewer;
let uploader;
let compare;

async function loadConfig() {
	try {
		const res = await fetch('config.json', { cache: 'no-cache', credentials: 'omit' });
		if (!res.ok)
			return;
		const c = await res.json();
		if (c && typeof c.apiBase === 'string')
			state.config.apiBase = c.apiBase;
		if (c && (c.upload === 'service' || c.upload === 'direct'))
			state.config.upload = c.upload;
	} catch {
		/* No or bad config.json: the defaults. */
	}
}

function announce(text) {
	const s = $('status');
	s.textContent = '';
	/* A new text node each time, so that the same sentence twice is
	 * announced twice. */
	window.setTimeout(() => { s.textContent = text; }, 50);
}

/* --- signing in ---------------------------------------------------------- */

function showSession() {
	const c = claims();
	const who = $('who');
	if (!c) {
		who.textContent = 'Signed in';
	} else {
		const bits = [c.userId ? `User ${c.userId.slice(0, 8)}…` : 'Signed in'];
		const role = (state.rights && state.rights.role) || c.role;
		if (role)
			bits.push(role);
		if (c.exp)
			bits.push(`until ${c.exp.toLocaleTimeString(undefined, { hour: '2-digit', minute: '2-digit' })}`);
		who.textContent = bits.join(' · ');
	}
	$('session').hidden = false;
}

function askForToken(message) {
	$('token-error').textContent = message || '';
	$('token-panel').hidden = false;
	$('case-panel').hidden = true;
	$('session').hidden = true;
	if (viewer && viewer.isOpen)
		$('viewer').close();
	const input = $('token-input');
	input.value = '';
	input.focus();
}

function signedIn() {
	$('token-panel').hidden = true;
	$('case-panel').hidden = false;
	showSession();
	applyRights();
	if (state.caseId)
		openCase(state.caseId);
	else
		$('case-input').focus();
}

function onUnauthorized(err) {
	clearToken();
	askForToken(describe(err, 'case'));
}

function signOut() {
	clearToken();
	uploader.reset();
	gallery.clear();
	state.caseId = null;
	state.rights = null;
	setCaseInAddress(null);
	$('case-view').hidden = true;
	$('case-input').value = '';
	$('case-error').textContent = '';
	askForToken('');
	announce('Signed out.');
}

/* --- the case -------------------------------------------------------------- */

function setCaseInAddress(id) {
	const url = new URL(window.location.href);
	if (id)
		url.searchParams.set('case', id);
	else
		url.searchParams.delete('case');
	history.replaceState(history.state, '', url.pathname + url.search + url.hash);
}

function updateCount() {
	const n = gallery.count();
	$('case-count').textContent = n === 1 ? '1 image' : `${n} images`;
	$('compare-open').disabled = n < 2;
}

/* The case's images, and the first page's case and viewer objects. */
async function fetchAll(caseId) {
	const out = { images: [], info: null, rights: null };
	for (let offset = 0; ; offset += PAGE) {
		const r = await apiJson('GET', `/cases/${encodeURIComponent(caseId)}?limit=${PAGE}&offset=${offset}`);
		const d = r && r.data ? r.data : {};
		if (offset === 0) {
			out.info = d.case && typeof d.case === 'object' ? d.case : null;
			out.rights = d.viewer && typeof d.viewer === 'object' ? d.viewer : null;
		}
		const page = Array.isArray(d.images) ? d.images : [];
		out.images.push(...page);
		const total = Number.isFinite(d.total) ? d.total : out.images.length;
		if (page.length === 0 || out.images.length >= total)
			return out;
	}
}

/* "Patient name · HN 12345" in the case header; ids when no name. */
function showPatient(info, id) {
	const title = $('case-title');
	const line = $('case-patient');
	if (!info) {
		title.textContent = `Case ${id}`;
		line.textContent = '';
		return;
	}
	title.textContent = info.patientName || `Patient ${shortId(info.patientId)}`;
	const bits = [];
	if (info.hn)
		bits.push(`HN ${info.hn}`);
	else if (!info.patientName && info.patientId)
		bits.push(`patient id ${info.patientId}`);
	bits.push(`case ${id}`);
	line.textContent = bits.join(' · ');
}

async function openCase(id) {
	const seq = ++state.loadSeq;
	if (state.caseId !== id)
		uploader.reset();
	state.caseId = id;
	setCaseInAddress(id);
	$('case-input').value = id;
	$('case-error').textContent = '';
	$('case-title').textContent = `Case ${id}`;
	$('case-patient').textContent = '';
	$('case-count').textContent = 'Loading…';
	try {
		const { images, info, rights } = await fetchAll(id);
		if (seq !== state.loadSeq)
			return;
		state.rights = rights;
		showSession();
		showPatient(info, id);
		applyRights();
		gallery.show(images);
		$('case-view').hidden = false;
		updateCount();
		announce(`Case opened: ${$('case-count').textContent}.`);
	} catch (e) {
		if (seq !== state.loadSeq)
			return;
		gallery.clear();
		$('case-view').hidden = true;
		if (e instanceof ApiError && e.status === 401)
			return; /* the token panel says it */
		$('case-error').textContent = describe(e, 'case');
	}
}

function submitCase(ev) {
	ev.preventDefault();
	const id = $('case-input').value.trim().toLowerCase();
	if (!UUID_RE.test(id)) {
		$('case-error').textContent = MSG.badCaseId;
		$('case-input').focus();
		return;
	}
	openCase(id);
}

/* --- delete ------------------------------------------------------------------ */

function mayDelete() {
	if (state.rights && typeof state.rights.canDelete === 'boolean')
		return state.rights.canDelete;
	return mayOfferDelete();
}

function applyRights() {
	const del = mayDelete();
	gallery.setShowDelete(del);
	viewer.setDeleteVisible(del);
	const up = !state.rights || state.rights.canUpload !== false;
	$('upload').hidden = !up;
	if (!up)
		$('upload').open = false;
}

function confirmDelete() {
	const dlg = $('confirm');
	return new Promise((resolve) => {
		dlg.returnValue = '';
		dlg.addEventListener('close', () => resolve(dlg.returnValue === 'delete'), { once: true });
		dlg.showModal();
	});
}

function showNotice(text) {
	if (viewer.isOpen)
		$('v-error').textContent = text;
	else
		$('case-error').textContent = text;
}

async function deleteImage(image) {
	const back = document.activeElement;
	if (!(await confirmDelete())) {
		if (back && back.isConnected)
			back.focus();
		return;
	}
	try {
		await apiJson('DELETE', `/${encodeURIComponent(image.id)}`);
		gallery.remove(image.id);
		updateCount();
		if (viewer.isOpen)
			viewer.update(gallery.ordered());
		if (compare.isOpen)
			compare.update(gallery.ordered());
		$('case-error').textContent = '';
		announce('Image deleted.');
		if (!viewer.isOpen)
			$('case-title').focus();
	} catch (e) {
		if (e instanceof ApiError && e.status === 401)
			return;
		if (e instanceof ApiError && e.status === 403) {
			noteDeleteDenied();
			if (state.rights)
				state.rights.canDelete = false;
			applyRights();
		}
		if (e instanceof ApiError && e.status === 404) {
			gallery.remove(image.id);
			updateCount();
			if (viewer.isOpen)
				viewer.update(gallery.ordered());
		}
		showNotice(describe(e, 'delete'));
		if (back && back.isConnected && !back.hidden)
			back.focus();
	}
}

/* --- download ------------------------------------------------------------------ */

const EXT = { 'image/jpeg': 'jpg', 'image/png': 'png', 'image/tiff': 'tif', 'image/webp': 'webp' };

/* Asks for a signed URL of the original and follows it: a same-origin URL
 * (local storage) downloads under the given name; a storage URL (S3,
 * Supabase) opens in a new tab, where the browser shows or saves it. */
async function download(image) {
	$('v-error').textContent = '';
	try {
		const r = await apiJson('GET', `/${encodeURIComponent(image.id)}/download-url?variant=original`);
		const a = document.createElement('a');
		a.href = r.data.downloadUrl;
		a.download = `${image.id}-original.${EXT[image.mimeType] || 'img'}`;
		a.target = '_blank';
		a.rel = 'noopener noreferrer';
		document.body.append(a);
		a.click();
		a.remove();
		announce('Download started.');
	} catch (e) {
		if (e instanceof ApiError && e.status === 401)
			return;
		$('v-error').textContent = describe(e, 'download');
	}
}

/* --- upload ----------------------------------------------------------------------- */

function uploadDefaults() {
	const when = $('up-date').value;
	let capturedAt = '';
	if (when) {
		const d = new Date(when);
		if (!Number.isNaN(d.getTime()))
			capturedAt = d.toISOString();
	}
	return { imageType: $('up-type').value, capturedAt, description: $('up-desc').value.trim() };
}

function wireDrop() {
	const zone = $('dropzone');
	const hasFiles = (e) => e.dataTransfer && [...e.dataTransfer.types].includes('Files');
	/* Anywhere on the page: a file dropped next to the zone must not make
	 * the browser leave the page to show it. */
	window.addEventListener('dragover', (e) => {
		if (hasFiles(e))
			e.preventDefault();
	});
	window.addEventListener('drop', (e) => {
		if (!hasFiles(e))
			return;
		e.preventDefault();
		zone.classList.remove('over');
		if ($('case-view').hidden || !state.caseId || $('upload').hidden)
			return;
		$('upload').open = true;
		uploader.addFiles(e.dataTransfer.files);
	});
	zone.addEventListener('dragenter', (e) => hasFiles(e) && zone.classList.add('over'));
	zone.addEventListener('dragleave', (e) => {
		if (!zone.contains(e.relatedTarget))
			zone.classList.remove('over');
	});
	for (const id of ['file-input', 'camera-input']) {
		const input = $(id);
		input.addEventListener('change', () => {
			uploader.addFiles(input.files);
			input.value = '';
		});
	}
}

/* --- start ------------------------------------------------------------------------- */

async function main() {
	const handOffError = takeHandOff();
	const fromAddress = new URL(window.location.href).searchParams.get('case');
	if (fromAddress && UUID_RE.test(fromAddress))
		state.caseId = fromAddress.toLowerCase();
	await loadConfig();
	apiInit({ base: state.config.apiBase, token: getToken, onUnauthorized });

	gallery = new Gallery({
		root: $('groups'), template: $('tile-template'),
		onOpen: (id) => {
			const list = gallery.ordered();
			viewer.open(list, Math.max(0, list.findIndex((i) => i.id === id)));
		},
		onDelete: (id) => {
			const image = gallery.ordered().find((i) => i.id === id);
			if (image)
				deleteImage(image);
		},
	});
	viewer = new Viewer({
		onDownload: download,
		onDelete: deleteImage,
		canDelete: mayDelete,
		onClosed: (id) => {
			const b = id ? gallery.button(id) : null;
			if (b)
				b.focus();
		},
	});
	uploader = new Uploader({
		mode: state.config.upload,
		caseId: () => state.caseId,
		defaults: uploadDefaults,
		onUploaded: (image) => {
			if (image.caseId === state.caseId) {
				gallery.add(image);
				updateCount();
			}
		},
		announce,
	});

	compare = new Compare({ onClosed: () => $('compare-open').focus() });
	$('compare-open').addEventListener('click', () => compare.open(gallery.ordered()));
	$('up-type').value = lastType();
	$('up-type').addEventListener('change', () => uploader.formType($('up-type').value));

	$('token-form').addEventListener('submit', (ev) => {
		ev.preventDefault();
		const err = setToken($('token-input').value);
		$('token-input').value = '';
		if (err) {
			$('token-error').textContent = err;
			$('token-input').focus();
			return;
		}
		$('token-error').textContent = '';
		signedIn();
	});
	$('signout').addEventListener('click', signOut);
	$('case-form').addEventListener('submit', submitCase);
	$('reload').addEventListener('click', () => state.caseId && openCase(state.caseId));
	$('case-title').tabIndex = -1;
	wireDrop();
	document.documentElement.dataset.ready = 'true';

	if (getToken() && !handOffError)
		signedIn();
	else
		askForToken(handOffError || '');
}

main();
