/* api.js — the page's calls to the polaimg API.
 *
 * Every call carries the tab's token in an Authorization header (never in a
 * URL) and omits cookies. JSON calls and image bytes use fetch; uploads use
 * XMLHttpRequest, the one browser API that reports upload progress.
 *
 * A failed call throws an ApiError holding the HTTP status (0 when the
 * service could not be reached), the API's error code, its details and its
 * requestId; messages.js turns it into a sentence for people. A 401 also
 * calls the onUnauthorized hook given to apiInit, so that the page can ask
 * for a new token wherever the session ran out.
 */

let apiBase = '/api/v1/images';
let tokenFn = () => null;
let unauthorizedHook = () => {};

export function apiInit({ base, token, onUnauthorized }) {
	if (typeof base === 'string' && base.length > 0)
		apiBase = base.replace(/\/+$/, '');
	tokenFn = token;
	unauthorizedHook = onUnauthorized || (() => {});
}

export function apiUrl(path) {
	return apiBase + path;
}

export class ApiError extends Error {
	/* status: HTTP status or 0; body: the parsed JSON error body or null. */
	constructor(status, body, requestId) {
		super(body && typeof body.error === 'string' ? body.error : `HTTP ${status}`);
		this.name = 'ApiError';
		this.status = status;
		this.code = body && typeof body.code === 'string' ? body.code : null;
		this.details = body && Array.isArray(body.details) ? body.details : [];
		this.requestId = (body && typeof body.requestId === 'string' && body.requestId) || requestId || null;
	}
}

/* Thrown (rejected) when the person cancelled an operation. */
export class Cancelled extends Error {
	constructor() {
		super('cancelled');
		this.name = 'Cancelled';
	}
}

function authHeaders(extra = {}) {
	const h = { ...extra };
	const t = tokenFn();
	if (t)
		h.Authorization = `Bearer ${t}`;
	return h;
}

function parseJson(text) {
	try {
		return JSON.parse(text);
	} catch {
		return null;
	}
}

function fail(status, body, requestId) {
	const err = new ApiError(status, body, requestId);
	if (status === 401)
		unauthorizedHook(err);
	return err;
}

async function send(path, init) {
	const url = /^https?:/.test(path) ? path : apiUrl(path);
	let res;
	try {
		res = await fetch(url, { credentials: 'omit', ...init });
	} catch (e) {
		if (e && e.name === 'AbortError')
			throw new Cancelled();
		throw new ApiError(0, null, null);
	}
	return res;
}

/* A JSON call: method, path under apiBase, optional JSON body. Resolves to
 * the parsed response body; throws ApiError for any status >= 400. */
export async function apiJson(method, path, { body, signal } = {}) {
	const headers = authHeaders({ Accept: 'application/json' });
	const init = { method, headers, signal, cache: 'no-store' };
	if (body !== undefined) {
		headers['Content-Type'] = 'application/json';
		init.body = JSON.stringify(body);
	}
	const res = await send(path, init);
	const text = await res.text().catch(() => '');
	const json = parseJson(text);
	if (!res.ok)
		throw fail(res.status, json, res.headers.get('X-Request-Id'));
	return json;
}

/* Image bytes through the proxy, as a Blob. The browser may keep a copy
 * (Cache-Control: private), but it must ask the service again each time
 * (If-None-Match, answered 304 only after the token was checked): the HTTP
 * cache is shared by everyone who uses this browser, tokens are not. */
export async function apiBlob(path, { signal } = {}) {
	const res = await send(path, { method: 'GET', headers: authHeaders(), signal, cache: 'no-cache' });
	if (!res.ok) {
		const json = parseJson(await res.text().catch(() => ''));
		throw fail(res.status, json, res.headers.get('X-Request-Id'));
	}
	try {
		return await res.blob();
	} catch (e) {
		if (e && e.name === 'AbortError')
			throw new Cancelled();
		throw new ApiError(0, null, null);
	}
}

/* One upload request with progress. opts: method, url, headers (sent as
 * given), body, bearer (add the Authorization header: only for the API,
 * never for a storage URL), onProgress(fraction 0..1) — called with 1 once
 * the whole body has been sent, also when the browser reported no
 * intermediate progress. Returns {promise, abort}; the promise resolves to
 * {status, json, text, requestId} for any HTTP answer, and rejects with
 * ApiError(0) when no answer came or Cancelled after abort(). */
export function xhrSend({ method, url, headers = {}, body, bearer = false, onProgress = () => {} }) {
	const xhr = new XMLHttpRequest();
	const promise = new Promise((resolve, reject) => {
		xhr.open(method, url, true);
		for (const [k, v] of Object.entries(bearer ? authHeaders(headers) : headers))
			xhr.setRequestHeader(k, v);
		xhr.upload.addEventListener('progress', (e) => {
			if (e.lengthComputable && e.total > 0)
				onProgress(Math.min(1, e.loaded / e.total));
		});
		xhr.upload.addEventListener('load', () => onProgress(1));
		xhr.addEventListener('load', () => {
			const text = xhr.responseText || '';
			resolve({
				status: xhr.status, text, json: parseJson(text),
				requestId: xhr.getResponseHeader('X-Request-Id'),
			});
		});
		xhr.addEventListener('error', () => reject(new ApiError(0, null, null)));
		xhr.addEventListener('timeout', () => reject(new ApiError(0, null, null)));
		xhr.addEventListener('abort', () => reject(new Cancelled()));
		xhr.send(body);
	});
	return { promise, abort: () => xhr.abort() };
}

/* Turns an xhrSend answer with status >= 400 into an ApiError (calling the
 * 401 hook when the answer came from the API). */
export function xhrError(r, fromApi = true) {
	if (fromApi)
		return fail(r.status, r.json, r.requestId);
	return new ApiError(r.status, null, null);
}
