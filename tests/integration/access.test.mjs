// The access table of docs/api.md, one test per cell: eight actions (upload,
// upload-url, complete, metadata, list, proxy, download-url, delete) × eleven
// callers (patient on own case, patient on another patient's case, doctor,
// admin, no token, expired token, alg:none token, inactive user, unknown
// user, userId not a UUID, bad signature).
//
// The describe's before() seeds one world and two ready images (one in each
// patient's case); every cell is otherwise independent. Deleting cells use a
// fresh image of their own.
import { describe, before, test } from 'node:test';
import {
	api, assert, assert401, assertError, auditByRequest, createUser, imageRowCount, listFiles, makeImage,
	seedWorld, sleep, sql, lit, token, tokenBadSig, tokenNone, upload, uploadOk, uuid,
} from './lib.mjs';

const now = () => Math.floor(Date.now() / 1000);

let w;
let img; // ready image in the patient's own case
let imgOther; // ready image in the other patient's case
let jpg;

before(async () => {
	w = seedWorld();
	jpg = makeImage(64, 48, 'jpg');
	img = await uploadOk(w.tDoctor, w.case, jpg);
	imgOther = await uploadOk(w.tDoctor, w.otherCase, jpg);
});

// Callers: token factory, the case/image they aim at, expected outcome.
const callers = {
	'patient, own case': { tok: () => w.tPatient, target: 'own', expect: 'ok' },
	"patient, other patient's case": { tok: () => w.tPatient, target: 'other', expect: 403 },
	doctor: { tok: () => w.tDoctor, target: 'own', expect: 'ok' },
	admin: { tok: () => w.tAdmin, target: 'other', expect: 'ok' },
	'no token': { tok: () => undefined, target: 'own', expect: 'AUTH_REQUIRED' },
	'expired token': { tok: () => token(w.patient, { exp: now() - 120, iat: now() - 720 }), target: 'own', expect: 'TOKEN_EXPIRED' },
	'alg:none token': { tok: () => tokenNone(w.patient), target: 'own', expect: 'INVALID_TOKEN' },
	'inactive user': { tok: () => w.tInactive, target: 'own', expect: 'INVALID_TOKEN' },
	'unknown user': { tok: () => token(uuid()), target: 'own', expect: 'INVALID_TOKEN' },
	'userId not a UUID': { tok: () => token('12345'), target: 'own', expect: 'INVALID_TOKEN' },
	'bad signature': { tok: () => tokenBadSig(w.patient), target: 'own', expect: 'INVALID_TOKEN' },
};

// Actions: do(tok, caseId, image) → response; ok = expected success status;
// audit = image_events.action.
const actions = {
	upload: {
		audit: 'upload', ok: 201,
		do: (tok, caseId) => upload(tok, caseId, jpg),
	},
	'upload-url': {
		audit: 'upload_url', ok: 200,
		do: (tok, caseId) => api('POST', '/api/v1/images/upload-url', {
			token: tok, body: { fileName: 'eye.jpg', contentType: 'image/jpeg', caseId },
		}),
	},
	complete: {
		audit: 'complete', ok: 200,
		do: (tok, caseId, im) => api('POST', `/api/v1/images/${im.id}/complete`, { token: tok }),
	},
	metadata: {
		audit: 'view', ok: 200,
		do: (tok, caseId, im) => api('GET', `/api/v1/images/${im.id}`, { token: tok }),
	},
	list: {
		audit: 'list', ok: 200,
		do: (tok, caseId) => api('GET', `/api/v1/images/cases/${caseId}`, { token: tok }),
	},
	proxy: {
		audit: 'proxy', ok: 200,
		do: (tok, caseId, im) => api('GET', `/api/v1/images/${im.id}/proxy`, { token: tok }),
	},
	'download-url': {
		audit: 'download_url', ok: 200,
		do: (tok, caseId, im) => api('GET', `/api/v1/images/${im.id}/download-url`, { token: tok }),
	},
	delete: {
		audit: 'delete', ok: 200, fresh: true,
		do: (tok, caseId, im) => api('DELETE', `/api/v1/images/${im.id}`, { token: tok }),
	},
};

function checkSuccess(action, r, caseId, im) {
	assert.equal(r.status, actions[action].ok, `${action}: ${r.status} ${r.text.slice(0, 300)}`);
	switch (action) {
	case 'upload':
		assert.equal(r.json.data.caseId, caseId);
		assert.equal(r.json.data.status, 'ready');
		break;
	case 'upload-url':
		assert.match(r.json.data.imageId, /^[0-9a-f-]{36}$/);
		break;
	case 'complete':
	case 'metadata':
		assert.equal(r.json.data.id, im.id);
		assert.equal(r.json.data.status, 'ready');
		break;
	case 'list':
		assert.ok(r.json.data.images.some((i) => i.id === im.id));
		break;
	case 'proxy':
		assert.ok(r.buf.length > 0);
		assert.match(r.headers.get('content-type') || '', /^image\//);
		break;
	case 'download-url':
		assert.equal(typeof r.json.data.downloadUrl, 'string');
		break;
	case 'delete':
		assert.deepEqual(r.json, { message: 'Image deleted successfully' });
		break;
	}
}

describe('access table', () => {
	for (const [action, A] of Object.entries(actions)) {
		for (const [who, C] of Object.entries(callers)) {
			let expect = C.expect;
			// Patients never delete, not even in their own case.
			if (action === 'delete' && who === 'patient, own case') expect = 403;
			test(`${action} × ${who} → ${expect === 'ok' ? A.ok : expect}`, async () => {
				const caseId = C.target === 'own' ? w.case : w.otherCase;
				let im = C.target === 'own' ? img : imgOther;
				if (A.fresh) im = await uploadOk(w.tDoctor, caseId, jpg);
				const rowsBefore = imageRowCount(caseId);
				const filesBefore = action === 'upload' || action === 'upload-url' ? listFiles() : null;
				const r = await A.do(C.tok(), caseId, im);
				if (expect === 'ok') {
					checkSuccess(action, r, caseId, im);
					return;
				}
				if (expect === 403) {
					assertError(r, 403, 'FORBIDDEN');
					// A denied attempt is audited with outcome 'denied'.
					const rows = await auditByRequest(r.requestId);
					assert.equal(rows.length, 1, `one audit row for the denied request: ${JSON.stringify(rows)}`);
					assert.equal(rows[0].outcome, 'denied');
					assert.equal(rows[0].action, A.audit);
					assert.equal(rows[0].user_id, w.patient);
					assert.equal(rows[0].role, 'patient');
					assert.equal(rows[0].case_id, caseId);
					if (!['upload', 'upload-url', 'list'].includes(action)) assert.equal(rows[0].image_id, im.id);
				} else {
					assert401(r, expect);
					// No user, no audit row.
					assert.deepEqual(await auditByRequest(r.requestId, 200), []);
				}
				// Nothing was created or deleted.
				assert.equal(imageRowCount(caseId), rowsBefore);
				if (filesBefore) assert.deepEqual(listFiles(), filesBefore);
				if (action === 'delete') {
					const g = await api('GET', `/api/v1/images/${im.id}`, { token: w.tDoctor });
					assert.equal(g.status, 200, 'a refused delete leaves the image in place');
				}
			});
		}
	}
});

describe('token edge cases', () => {
	test('a future nbf → 401 INVALID_TOKEN', async () => {
		const r = await api('GET', `/api/v1/images/${img.id}`, { token: token(w.doctor, { nbf: now() + 600 }) });
		assert401(r, 'INVALID_TOKEN');
	});

	test('a past nbf is fine', async () => {
		const r = await api('GET', `/api/v1/images/${img.id}`, { token: token(w.doctor, { nbf: now() - 60 }) });
		assert.equal(r.status, 200, r.text);
	});

	test('a token without exp → 401 INVALID_TOKEN (jwt_require_exp defaults to true)', async () => {
		const r = await api('GET', `/api/v1/images/${img.id}`, { token: token(w.doctor, { exp: null }) });
		assert401(r, 'INVALID_TOKEN');
	});

	test('an HS512 token signed with the right secret → 401 (only the configured algorithm)', async () => {
		const r = await api('GET', `/api/v1/images/${img.id}`, { token: token(w.doctor, { alg: 'HS512' }) });
		assert401(r, 'INVALID_TOKEN');
	});

	test('garbage bearer token → 401 INVALID_TOKEN', async () => {
		const r = await api('GET', `/api/v1/images/${img.id}`, { headers: { Authorization: 'Bearer not.a.jwt' } });
		assert401(r, 'INVALID_TOKEN');
	});

	test('a role claim in the token is ignored: a patient claiming admin is still a patient', async () => {
		const r = await api('GET', `/api/v1/images/${imgOther.id}`, { token: token(w.patient, { role: 'admin' }) });
		assertError(r, 403, 'FORBIDDEN');
	});

	test('a deactivated user is refused once the change is delivered (1 s, README "Reads per request")', async () => {
		const d = createUser('doctor');
		const t = token(d);
		assert.equal((await api('GET', `/api/v1/images/${img.id}`, { token: t })).status, 200);
		sql(`UPDATE users SET is_active = false WHERE id = ${lit(d)}`);
		await sleep(1000);
		assert401(await api('GET', `/api/v1/images/${img.id}`, { token: t }), 'INVALID_TOKEN');
	});

	test('authentication comes before id validation: no token on a bad id → 401', async () => {
		assert401(await api('GET', '/api/v1/images/not-a-uuid'), 'AUTH_REQUIRED');
	});

	test('a patient asking for a missing image gets 404, not 403', async () => {
		assertError(await api('GET', `/api/v1/images/${uuid()}`, { token: w.tPatient }), 404, 'NOT_FOUND');
		assertError(await api('GET', `/api/v1/images/cases/${uuid()}`, { token: w.tPatient }), 404, 'NOT_FOUND');
	});
});
