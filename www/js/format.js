/* format.js — labels and formats shared by the gallery, the viewer and the
 * upload list. Dates are shown in the browser's time zone and language. */

export const EYE_GROUPS = [
	{ side: 'right', title: 'Right eye (OD)', short: 'Right eye' },
	{ side: 'left', title: 'Left eye (OS)', short: 'Left eye' },
	{ side: 'both', title: 'Both eyes', short: 'Both eyes' },
	{ side: 'unknown', title: 'Unknown eye', short: 'Eye unknown' },
];

export const IMAGE_TYPES = { fundus: 'Fundus', oct: 'OCT', slit_lamp: 'Slit lamp', other: 'Other' };

export function eyeLabel(side) {
	const g = EYE_GROUPS.find((x) => x.side === side);
	return g ? g.title : EYE_GROUPS[3].title;
}

export function typeLabel(t) {
	return IMAGE_TYPES[t] || 'Other';
}

const dateFmt = new Intl.DateTimeFormat(undefined, { dateStyle: 'medium', timeStyle: 'short' });

export function dateLabel(iso) {
	if (!iso)
		return 'date unknown';
	const d = new Date(iso);
	return Number.isNaN(d.getTime()) ? 'date unknown' : dateFmt.format(d);
}

export function sizeLabel(n) {
	if (!Number.isFinite(n))
		return '';
	if (n < 1024)
		return `${n} B`;
	if (n < 1024 * 1024)
		return `${(n / 1024).toFixed(0)} KB`;
	return `${(n / (1024 * 1024)).toFixed(1)} MB`;
}

/* The order of the type groups in a timeline. */
export const TYPE_ORDER = ['fundus', 'oct', 'slit_lamp', 'other'];

export function typeKey(t) {
	return TYPE_ORDER.includes(t) ? t : 'other';
}

/* When an image was taken, for sorting: the capture date (sent by the
 * client or read from EXIF), else the upload time. */
export function whenOf(image) {
	const t = Date.parse(image.capturedAt || image.createdAt || '');
	return Number.isNaN(t) ? 0 : t;
}

/* The date under an image: the capture date, or "uploaded …" when the
 * service had none and used the upload time (capturedAtSource "upload"). */
export function imageDateLabel(image) {
	if (image.capturedAtSource === 'upload' || !image.capturedAt)
		return `uploaded ${dateLabel(image.capturedAt || image.createdAt)}`;
	return dateLabel(image.capturedAt);
}

export function shortId(id) {
	return String(id || '').slice(0, 8);
}

/* Who added an image: "Dr Name" for a doctor, the name otherwise, a short
 * user id when the service knows no name. */
export function personLabel(p) {
	if (!p || !p.id)
		return 'unknown user';
	if (!p.name)
		return `user ${shortId(p.id)}`;
	return p.role === 'doctor' && !/^dr\.?\s/i.test(p.name) ? `Dr ${p.name}` : p.name;
}

/* "by Dr Name · date": the line under a thumbnail. */
export function byLine(image) {
	const when = imageDateLabel(image);
	return image.uploader ? `by ${personLabel(image.uploader)} · ${when}` : when;
}
