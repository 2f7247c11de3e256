/**
 * The stand-in EHR itself: a real FHIR server (Medplum's FhirRouter over its MemoryRepository)
 * that other tests break on purpose, in-process and as a separate process with a control API.
 */
import { expect } from 'chai';
import { spawn } from 'node:child_process';
import http from 'node:http';
import path from 'node:path';
import readline from 'node:readline';
import { startStandInEhr, type StandInEhr } from '../../../src/sandbox/stand-in-ehr.js';

const ROOT = path.resolve(import.meta.dirname, '../../..');

async function fhir(
  url: string,
  init: { method?: string; body?: unknown; headers?: Record<string, string> } = {},
): Promise<{ status: number; headers: Headers; body: any }> {
  const response = await fetch(url, {
    method: init.method ?? (init.body === undefined ? 'GET' : 'POST'),
    headers: { accept: 'application/fhir+json', 'content-type': 'application/fhir+json', ...init.headers },
    ...(init.body !== undefined ? { body: JSON.stringify(init.body) } : {}),
  });
  const text = await response.text();
  return { status: response.status, headers: response.headers, body: text === '' ? undefined : JSON.parse(text) };
}

/**
 * The system error code of a request on a new connection, or 'answered' when it got an answer. A
 * new connection each time (agent: false): fetch would reuse a pooled keep-alive socket that the
 * refusing server has just dropped and fail with UND_ERR_SOCKET instead of being refused.
 */
function networkOutcome(url: string): Promise<string> {
  return new Promise((resolve) => {
    const request = http.get(url, { agent: false }, (response) => {
      response.resume();
      resolve('answered');
    });
    request.on('error', (err: NodeJS.ErrnoException) => resolve(err.code ?? 'failed'));
  });
}

describe('stand-in EHR', function () {
  let ehr: StandInEhr;

  beforeEach(async () => {
    ehr = await startStandInEhr();
  });
  afterEach(async () => {
    await ehr.stop();
  });

  it('processes a transaction: resolves urn:uuid references and honours ifNoneExist', async () => {
    const patientUrl = 'urn:uuid:0b8f3a52-6f0e-4d55-9a59-5d3c1b1f2a01';
    const transaction = {
      resourceType: 'Bundle',
      type: 'transaction',
      entry: [
        {
          fullUrl: patientUrl,
          resource: { resourceType: 'Patient', identifier: [{ system: 'urn:mrn', value: 'p-1' }] },
          request: { method: 'POST', url: 'Patient', ifNoneExist: 'identifier=urn:mrn|p-1' },
        },
        {
          resource: { resourceType: 'Coverage', status: 'active', beneficiary: { reference: patientUrl }, payor: [{ display: 'Payer' }] },
          request: { method: 'POST', url: 'Coverage' },
        },
      ],
    };
    const first = await fhir(ehr.baseUrl, { body: transaction });
    const second = await fhir(ehr.baseUrl, { body: transaction });

    expect(first.status).to.equal(200);
    expect(first.body.type).to.equal('transaction-response');
    const patientId = first.body.entry[0].resource.id;
    expect(first.body.entry[1].resource.beneficiary.reference).to.equal(`Patient/${patientId}`);
    expect(second.body.entry[0].resource.id).to.equal(patientId);
    expect(await ehr.count('Patient')).to.equal(1);
    expect(await ehr.count('Coverage')).to.equal(2);
  });

  it('pages searches with absolute next links and a default page size', async () => {
    for (let i = 0; i < 25; i += 1)
      await ehr.seed({
        resourceType: 'Practitioner',
        identifier: [{ system: 'http://hl7.org/fhir/sid/us-npi', value: `${1000000000 + i}` }],
      });
    const first = await fhir(`${ehr.baseUrl}/Practitioner`);
    const next = first.body.link.find((l: { relation: string }) => l.relation === 'next').url as string;
    const second = await fhir(next);

    expect(first.body.total).to.equal(25);
    expect(first.body.entry).to.have.length(20);
    expect(next.startsWith(`${ehr.baseUrl}/Practitioner?`)).to.equal(true);
    expect(second.body.entry).to.have.length(5);
    expect(second.body.link.find((l: { relation: string }) => l.relation === 'next')).to.equal(undefined);
  });

  it('fails only the next N requests with failNext, each with its status', async () => {
    ehr.failNext(2, 'throttle-429');
    const statuses = [];
    for (let i = 0; i < 3; i += 1) statuses.push((await fhir(`${ehr.baseUrl}/Appointment`)).status);

    expect(statuses).to.deep.equal([429, 429, 200]);
    expect(ehr.requests().map((r) => [r.method, r.path, r.status])).to.deep.equal([
      ['GET', '/fhir/Appointment', 429],
      ['GET', '/fhir/Appointment', 429],
      ['GET', '/fhir/Appointment', 200],
    ]);
  });

  it('refuses connections while told to, then listens again on the same port', async () => {
    ehr.failWith('refuse');
    await ehr.settled();
    const refused = await networkOutcome(`${ehr.baseUrl}/metadata`);
    ehr.failWith(undefined);
    await ehr.settled();
    const back = await fhir(`${ehr.baseUrl}/metadata`);

    expect(refused).to.equal('ECONNREFUSED');
    expect(back.status).to.equal(200);
    expect(back.body.resourceType).to.equal('CapabilityStatement');
  });

  it('runs as its own process, with a control API another process can use', async function () {
    this.timeout(60_000);
    const child = spawn(process.execPath, ['--import', 'tsx', 'src/sandbox/stand-in-ehr.ts'], {
      cwd: ROOT,
      env: { ...process.env, PORT: '0' },
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
    try {
      const firstLine = await new Promise<string>((resolve, reject) => {
        readline.createInterface({ input: child.stdout! }).once('line', resolve);
        void exited.then((code) => reject(new Error(`the stand-in EHR exited with ${code}`)));
      });
      const started = JSON.parse(firstLine) as { message: string; port: number; baseUrl: string; controlUrl: string };
      expect(started.message).to.equal('stand-in EHR listening');
      expect(started.baseUrl).to.equal(`http://127.0.0.1:${started.port}/fhir`);
      const onFhirPort = `http://127.0.0.1:${started.port}/_control`;

      const identifier = { system: 'https://fhir.infusion-gateway.example/referral-id', value: 'r-1' };
      const created = await fhir(`${started.baseUrl}/Task`, {
        body: { resourceType: 'Task', status: 'requested', intent: 'order', identifier: [identifier] },
      });
      expect(created.status).to.equal(201);
      const count = await fhir(
        `${onFhirPort}/count?type=Task&identifier=${encodeURIComponent(`${identifier.system}|${identifier.value}`)}`,
      );
      expect(count.body).to.deep.equal({ count: 1 });

      expect((await fhir(`${onFhirPort}/fail`, { body: { mode: 'error-500', count: 1 } })).status).to.equal(200);
      expect((await fhir(`${started.baseUrl}/Task`)).status).to.equal(500);
      expect((await fhir(`${started.baseUrl}/Task`)).status).to.equal(200);
      const log = await fhir(`${started.controlUrl}/requests`);
      expect(log.body.map((r: { method: string; path: string; status: number }) => `${r.method} ${r.path} ${r.status}`)).to.deep.equal([
        'POST /fhir/Task 201',
        'GET /fhir/Task 500',
        'GET /fhir/Task 200',
      ]);

      expect((await fhir(`${started.controlUrl}/fail`, { body: { mode: 'refuse' } })).status).to.equal(200);
      expect(await networkOutcome(`${started.baseUrl}/Task`)).to.equal('ECONNREFUSED');
      expect((await fhir(`${started.controlUrl}/fail`, { body: { mode: null } })).body.listening).to.equal(true);
      expect((await fhir(`${started.baseUrl}/Task`)).status).to.equal(200);
      // Told on the FHIR port itself: it answers before it stops listening.
      expect((await fhir(`${onFhirPort}/fail`, { body: { mode: 'refuse' } })).status).to.equal(202);
      expect((await fhir(`${started.controlUrl}/state`)).body.listening).to.equal(false);
      expect((await fhir(`${started.controlUrl}/reset`, { method: 'POST' })).status).to.equal(204);
      expect((await fhir(`${onFhirPort}/count?type=Task`)).body).to.deep.equal({ count: 0 });

      const requests = await fhir(`${started.controlUrl}/requests`);
      expect(requests.body).to.deep.equal([]);
      expect((await fhir(`${started.controlUrl}/fail`, { body: { mode: 'sulk' } })).status).to.equal(400);
    } finally {
      child.kill('SIGTERM');
      await exited;
    }
  });
});
