/* format.js — labels and formats shared by the gallery, the viewer and the
 * upload list. Dates are shown in the browser's time zone and language. */

export const EYE_GROUPS = [
	{ side: 'right', title: 'Right eye (OD)', short: 'Right eye' },
	{ side: 'left', title: 'Left eye (OS)', short: 'Left eye' },
	{ side: 'both', title: 'Both eyes', short: 'Both eyes' },
	{ side: 'unknown', title: 'Unknown eye', short: 'Eye unknown' },
];

export const IMAGE_TYPES = { slit_lamp: 'Slit lamp', fundus: 'Fundus', oct: 'OCT', other: 'Other' };

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
