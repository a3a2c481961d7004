// The C-STORE bridge of README "DICOM", with real tools: storescu (DCMTK)
// sends a file by C-STORE to an Orthanc (Debian orthanc + orthanc-dicomweb)
// started here on 127.0.0.1, which forwards it by STOW-RS to a case root of
// polaimg with a service account's token from `polaimg token`; and the
// other way, Orthanc searches polaimg (QIDO-RS) and retrieves (WADO-RS) a
// file uploaded to polaimg. Both directions are compared byte for byte.
// Skipped when Orthanc or its DICOMweb plugin is not installed.
import { test, after } from 'node:test';
import { execFileSync, spawn } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import {
	BASE_URL, TEST_TMP, api, assert, lit, makeImage, polaimgCli, seedWorld, sleep, sql, upload, uuid,
} from './lib.mjs';

const ORTHANC = '/usr/sbin/Orthanc';
const PLUGIN = '/usr/share/orthanc/plugins/libOrthancDicomWeb.so';
const have = fs.existsSync(ORTHANC) && fs.existsSync(PLUGIN);
const DIR = fs.mkdtempSync(path.join(TEST_TMP, 'orthanc-'));
const newUid = () => `2.25.${BigInt('0x' + uuid().replace(/-/g, '')).toString()}`;

// A free TCP port on 127.0.0.1.
const freePort = () => new Promise((res, rej) => {
	const s = net.createServer();
	s.once('error', rej);
	s.listen(0, '127.0.0.1', () => { const p = s.address().port; s.close(() => res(p)); });
});

function opFile(study) {
	const jpg = path.join(DIR, `${uuid()}.jpg`);
	fs.writeFileSync(jpg, makeImage(40, 30, 'jpg'));
	const out = path.join(DIR, `${uuid()}.dcm`);
	execFileSync('img2dcm', ['-oph', '--no-checks', '-k', `SOPInstanceUID=${newUid()}`, '-k', `StudyInstanceUID=${study}`,
		'-k', `SeriesInstanceUID=${newUid()}`, '-k', 'PatientID=HN-ORTHANC', jpg, out], { stdio: 'ignore' });
	return out;
}

let orthanc;
after(() => { if (orthanc) orthanc.kill('SIGTERM'); });

async function startOrthanc(caseId, tok) {
	const http = await freePort();
	const dicom = await freePort();
	const auth = { Authorization: `Bearer ${tok}` };
	const conf = {
		Name: 'polaimg-test', StorageDirectory: path.join(DIR, 'db'), IndexDirectory: path.join(DIR, 'db'),
		HttpPort: http, DicomPort: dicom, DicomAet: 'ORTHANC', RemoteAccessAllowed: false,
		AuthenticationEnabled: false, HttpBindAddress: '127.0.0.1', DicomServerEnabled: true,
		Plugins: [PLUGIN], HttpTimeout: 30, StableAge: 1,
		DicomWeb: {
			Enable: true, Root: '/dicom-web/',
			Servers: {
				polaimg: { Url: `${BASE_URL}/api/v1/images/dicom-web/cases/${caseId}/`, HttpHeaders: auth },
				'polaimg-read': { Url: `${BASE_URL}/api/v1/images/dicom-web/`, HttpHeaders: auth },
			},
		},
	};
	const cf = path.join(DIR, 'orthanc.json');
	fs.writeFileSync(cf, JSON.stringify(conf));
	const log = fs.openSync(path.join(DIR, 'orthanc.log'), 'w');
	orthanc = spawn(ORTHANC, [cf], { stdio: ['ignore', log, log] });
	const url = `http://127.0.0.1:${http}`;
	for (let i = 0; i < 150; i++) {
		try { if ((await fetch(`${url}/system`)).ok) return { url, dicom }; } catch { /* starting */ }
		await sleep(100);
	}
	throw new Error(`Orthanc did not start: ${fs.readFileSync(path.join(DIR, 'orthanc.log'), 'utf8').slice(-2000)}`);
}

const oj = async (url, method = 'GET', body) => {
	const r = await fetch(url, { method, body: body === undefined ? undefined : JSON.stringify(body) });
	const text = await r.text();
	assert.ok(r.ok, `${method} ${url}: ${r.status} ${text}`);
	try { return JSON.parse(text); } catch { return text; }
};
const obytes = async (url) => Buffer.from(await (await fetch(url)).arrayBuffer());

test('orthanc: C-STORE to Orthanc, STOW-RS on to a polaimg case root; Orthanc QIDO and WADO from polaimg; bytes equal both ways', { skip: !have && 'orthanc or orthanc-dicomweb not installed' }, async () => {
	const w = seedWorld();
	sql('ALTER TABLE patient_cases ADD COLUMN IF NOT EXISTS hn text');
	sql(`UPDATE patient_cases SET hn = 'HN-ORTHANC' WHERE id = ${lit(w.case)}`);
	const svc = uuid();
	sql(`INSERT INTO users (id, role, is_active) VALUES (${lit(svc)}, 'doctor', true)`);
	const t = polaimgCli('token', '--user', svc, '--days', '1');
	assert.equal(t.status, 0, t.stderr);
	const o = await startOrthanc(w.case, t.stdout.trim());

	// Push: storescu → Orthanc (C-STORE) → polaimg (STOW-RS).
	const study = newUid();
	const f = path.join(DIR, 'raw.dcm'); // uncompressed, as a modality sends it
	execFileSync('dcmdjpeg', [opFile(study), f], { stdio: 'ignore' });
	execFileSync('storescu', ['-aec', 'ORTHANC', '127.0.0.1', String(o.dicom), f], { stdio: 'pipe' });
	const found = await oj(`${o.url}/tools/find`, 'POST', { Level: 'Study', Query: { StudyInstanceUID: study } });
	assert.equal(found.length, 1, 'Orthanc received the C-STORE');
	const stow = await oj(`${o.url}/dicom-web/servers/polaimg/stow`, 'POST', { Resources: [found[0]] });
	assert.ok(stow !== undefined);
	const inst = (await oj(`${o.url}/studies/${found[0]}/instances`))[0];
	const sent = await obytes(`${o.url}/instances/${inst.ID}/file`);
	const sop = inst.MainDicomTags.SOPInstanceUID;
	const q = await api('GET', `/api/v1/images/dicom-web/studies?StudyInstanceUID=${study}`, { token: w.tDoctor });
	assert.equal(q.json.length, 1, 'polaimg has the study');
	const list = await api('GET', `/api/v1/images/cases/${w.case}`, { token: w.tDoctor });
	const img = list.json.data.images.find((im) => im.dicom && im.dicom.sopInstanceUid === sop);
	assert.ok(img, 'filed into the case of the root');
	const orig = await api('GET', `/api/v1/images/${img.id}/proxy?variant=original`, { token: w.tDoctor });
	assert.ok(orig.buf.equals(sent), 'polaimg holds exactly the bytes Orthanc sent');

	// Pull: a file uploaded to polaimg, found by Orthanc's QIDO, fetched by its WADO-RS retrieve.
	const study2 = newUid();
	const f2 = opFile(study2);
	const bytes2 = fs.readFileSync(f2);
	const up = await upload(w.tDoctor, w.case, bytes2, { filename: 'x.dcm', contentType: 'application/dicom' });
	assert.equal(up.status, 201, up.text);
	const qido = await oj(`${o.url}/dicom-web/servers/polaimg-read/get`, 'POST', { Uri: '/studies', Arguments: { StudyInstanceUID: study2 } });
	assert.equal(qido.length, 1, 'Orthanc finds the study by QIDO-RS');
	assert.equal(qido[0]['0020000D'].Value[0], study2);
	await oj(`${o.url}/dicom-web/servers/polaimg-read/retrieve`, 'POST', { Resources: [{ Study: study2 }] });
	const got = await oj(`${o.url}/tools/find`, 'POST', { Level: 'Instance', Query: { SOPInstanceUID: up.json.data.dicom.sopInstanceUid } });
	assert.equal(got.length, 1, 'Orthanc retrieved the instance');
	const fetched = await obytes(`${o.url}/instances/${got[0]}/file`);
	assert.ok(fetched.equals(bytes2), 'Orthanc holds exactly the bytes uploaded to polaimg');
});
