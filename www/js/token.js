/* token.js — the bearer token of this browser tab.
 *
 * A token arrives either in the address (?token=… or, better, #token=…,
 * which browsers never send to a server: a hand-off from another clinic
 * application) or pasted into the sign-in form. It is kept in sessionStorage
 * only: never in localStorage, never in a cookie, never in a URL the page
 * requests; it travels only in the Authorization header of API calls. The
 * hand-off parameter is removed from the address at once with
 * history.replaceState, so it stays in no history entry, bookmark or copied
 * link.
 *
 * The payload is decoded for display only (who is signed in, the role claim
 * when the token has one, the expiry): the service verifies the signature
 * and reads the role from its own users table on every request, and nothing
 * here grants anything.
 */

const KEY = 'polaimg.token';
const DELETE_DENIED_KEY = 'polaimg.deleteDenied';

/* Moves a ?token= or #token= hand-off from the address into sessionStorage
 * and removes it from the address. Returns null, or a message when the
 * address held something that is not a token. */
export function takeHandOff() {
	const url = new URL(window.location.href);
	let tok = null;
	let changed = false;
	if (url.searchParams.has('token')) {
		tok = url.searchParams.get('token');
		url.searchParams.delete('token');
		changed = true;
	}
	if (url.hash.length > 1) {
		const h = new URLSearchParams(url.hash.slice(1));
		if (h.has('token')) {
			tok = tok || h.get('token');
			h.delete('token');
			url.hash = h.toString();
			changed = true;
		}
	}
	if (changed)
		history.replaceState(history.state, '', url.pathname + url.search + url.hash);
	if (!tok)
		return null;
	return setToken(tok);
}

/* Cleans what a person may paste around a token ("Bearer ", quotes,
 * white space). */
function clean(raw) {
	let t = String(raw || '').trim();
	t = t.replace(/^bearer\s+/i, '').replace(/^["']|["']$/g, '').trim();
	return t;
}

/* Stores a token for this tab. Returns null, or a message saying why the
 * text is not a token (then nothing is stored). */
export function setToken(raw) {
	const t = clean(raw);
	if (!/^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*$/.test(t))
		return 'This does not look like an access token. A token has three parts separated by dots.';
	sessionStorage.setItem(KEY, t);
	sessionStorage.removeItem(DELETE_DENIED_KEY);
	return null;
}

export function getToken() {
	return sessionStorage.getItem(KEY);
}

export function clearToken() {
	sessionStorage.removeItem(KEY);
	sessionStorage.removeItem(DELETE_DENIED_KEY);
}

function b64urlDecode(s) {
	const b64 = s.replace(/-/g, '+').replace(/_/g, '/') + '==='.slice((s.length + 3) % 4);
	const bin = atob(b64);
	const bytes = Uint8Array.from(bin, (c) => c.charCodeAt(0));
	return new TextDecoder().decode(bytes);
}

/* The claims of a token, for display: {userId, role, exp} where role is
 * 'patient', 'doctor', 'admin' or null (no such claim), exp a Date or null.
 * null when the payload cannot be read. */
export function claims(tok = getToken()) {
	if (!tok)
		return null;
	try {
		const p = JSON.parse(b64urlDecode(tok.split('.')[1]));
		if (!p || typeof p !== 'object')
			return null;
		const id = typeof p.userId === 'string' ? p.userId : typeof p.sub === 'string' ? p.sub : null;
		let role = typeof p.role === 'string' ? p.role.toLowerCase() : null;
		if (!['patient', 'doctor', 'admin'].includes(role))
			role = null;
		const exp = Number.isFinite(p.exp) ? new Date(p.exp * 1000) : null;
		return { userId: id, role, exp };
	} catch {
		return null;
	}
}

/* Whether the page offers the delete button. The API has no "who am I"
 * endpoint, so the page cannot know the role the service will apply. It
 * hides the button when the token's role claim says "patient", or after the
 * service refused a delete in this session (403); otherwise it shows it and
 * the service decides (a refusal is explained to the person). */
export function mayOfferDelete() {
	const c = claims();
	if (c && c.role === 'patient')
		return false;
	return sessionStorage.getItem(DELETE_DENIED_KEY) === null;
}

export function noteDeleteDenied() {
	sessionStorage.setItem(DELETE_DENIED_KEY, '1');
}
