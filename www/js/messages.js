/* messages.js — what the page says when something goes wrong.
 *
 * One sentence per documented API error (docs/api.md, "Errors"), chosen by HTTP
 * status first (nginx may answer 413 or 5xx with a page of its own, without
 * the JSON body) and worded for the action in progress. 5xx messages carry
 * the request id, which the administrator finds in polaimg's log and audit
 * trail. The README of the repository lists these messages.
 */

import { ApiError, Cancelled } from './api.js';

export const MSG = {
	network: 'The image service could not be reached. Check the network connection and try again.',
	expired: 'Your session has expired. Paste a new token to continue.',
	invalid: 'The token was not accepted. Paste a new token to continue.',
	forbiddenCase: 'You are not allowed to see this case.',
	forbiddenImage: 'You are not allowed to see this image.',
	forbiddenUpload: 'You are not allowed to add images to this case.',
	forbiddenDelete: 'Only doctors and administrators can delete images.',
	forbiddenStorage: 'The storage refused the upload (the upload link may have expired). Try again.',
	notFoundCase: 'There is no case with this id.',
	notFoundImage: 'This image no longer exists.',
	tooLarge: 'This file is too large for the image store.',
	wrongType: 'This file type is not accepted. Use JPEG, PNG, TIFF or WebP images.',
	unprocessable: 'This image could not be read: the file is damaged or has too many pixels.',
	conflict: 'This upload was already finished.',
	unavailable: 'The image service is unavailable at the moment. Try again in a few minutes.',
	internal: 'Something went wrong in the image service.',
	badCaseId: 'A case id looks like 3f2b8c4e-1d2a-4c7b-9e5f-0a1b2c3d4e5f (32 hexadecimal digits in five groups).',
	cancelled: 'Cancelled.',
};

const FIELD_NAMES = {
	caseId: 'case id', eyeSide: 'eye', imageType: 'image type', capturedAt: 'captured date',
	description: 'description', image: 'file', contentType: 'file type', fileName: 'file name',
	fileSize: 'file size', id: 'image id', body: 'request',
};

/* A sentence for err (an ApiError, Cancelled or anything else) during
 * action: 'case' (open a case), 'image' (view one), 'upload', 'storage'
 * (the direct PUT to a storage URL), 'delete', 'download'. */
export function describe(err, action) {
	if (err instanceof Cancelled)
		return MSG.cancelled;
	if (!(err instanceof ApiError))
		return `${MSG.internal} (${String(err && err.message ? err.message : err)})`;
	const s = err.status;
	if (s === 0)
		return MSG.network;
	if (s === 401)
		return err.code === 'TOKEN_EXPIRED' || err.code === 'AUTH_REQUIRED' ? MSG.expired : MSG.invalid;
	if (s === 403) {
		if (action === 'storage')
			return MSG.forbiddenStorage;
		return {
			case: MSG.forbiddenCase, upload: MSG.forbiddenUpload, delete: MSG.forbiddenDelete,
		}[action] || MSG.forbiddenImage;
	}
	if (s === 404)
		return action === 'case' || action === 'upload' ? MSG.notFoundCase : MSG.notFoundImage;
	if (s === 413)
		return MSG.tooLarge;
	if (s === 415)
		return MSG.wrongType;
	if (s === 422)
		return MSG.unprocessable;
	if (s === 409)
		return MSG.conflict;
	if (s === 400) {
		if (err.details.length > 0) {
			const parts = err.details.map((d) => `${FIELD_NAMES[d.field] || d.field} ${d.message}`);
			return `Please check: ${parts.join('; ')}.`;
		}
		return 'The request was not accepted (400).';
	}
	const ref = err.requestId ? ` Reference: ${err.requestId}.` : '';
	if (s === 502 || s === 503 || s === 504)
		return MSG.unavailable + ref;
	return `${MSG.internal} (HTTP ${s}).${ref}`;
}
