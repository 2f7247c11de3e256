/**
 * The CDS Hooks site-check service over real HTTP on 127.0.0.1: discovery, order-sign and
 * order-select with prefetch, the fallback to the hook's fhirServer (the stand-in EHR) without it,
 * the SSRF guard, and refusals. Hook requests come from fixtures/cds-hooks/.
 */
import { expect } from 'chai';
import express from 'express';
import type { Coverage, OperationOutcome, Patient, Resource, ServiceRequest } from 'fhir/r4.js';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { createFhirKitEhr } from '../../src/adapters/fhir/fhir-kit-ehr.js';
import type { CdsCard, CdsServiceResponse } from '../../src/site-check/rules/cds-cards.js';
import { findDrugByCodings, parseDrugCatalog } from '../../src/directory/rules/drug-catalog.js';
import { DEFAULT_SITE_CHECK_POLICY } from '../../src/site-check/rules/site-check.js';
import { SiteDirectory } from '../../src/directory/rules/site-directory.js';
import { cdsHooksRouter } from '../../src/http/cds-hooks-routes.js';
import type { CdsDeps } from '../../src/site-check/stories/cds-site-check.js';
import { readFixture } from '../support/fixtures.js';
import { capturedLogLines, capturingLogger } from '../support/log-capture.js';
import { phiFoundIn } from '../support/phi.js';
import { startStandInEhr, type StandInEhr } from '../../src/sandbox/stand-in-ehr.js';
import { newSigningKey, signHookJwt, startJwksServer, type JwksServer, type SigningKey } from '../support/cds-client.js';
import { createCdsClientTrust, remoteIssuer } from '../../src/auth/cds-client-trust.js';

const TEST_EHR_ISSUER = 'https://ehr.test.invalid/cds-client';

const ACCESS_TOKEN = 'cds-fixture-access-token';

interface Listening {
  url: string;
  close(): Promise<void>;
}

async function listen(app: http.RequestListener): Promise<Listening & { server: http.Server }> {
  const server = http.createServer(app);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', () => resolve()));
  const { port } = server.address() as AddressInfo;
  return {
    server,
    url: `http://127.0.0.1:${port}`,
    close: async () => {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

/** Signs every POST (hook and feedback calls) as the test EHR, unless the test sets Authorization itself. */
let signAsTestEhr: ((url: string) => Promise<string>) | undefined;

async function call(
  url: string,
  init: { method?: string; body?: unknown; headers?: Record<string, string>; unsigned?: boolean } = {},
): Promise<{ status: number; headers: Headers; body: any }> {
  const headers: Record<string, string> = { ...init.headers };
  let body: string | undefined;
  if (init.body !== undefined) {
    body = typeof init.body === 'string' ? init.body : JSON.stringify(init.body);
    headers['content-type'] ??= 'application/json';
  }
  if (body !== undefined && !init.unsigned && headers['authorization'] === undefined && signAsTestEhr !== undefined) {
    headers['authorization'] = `Bearer ${await signAsTestEhr(url.replace(/\/feedback$/, ''))}`;
  }
  const response = await fetch(url, {
    method: init.method ?? (body === undefined ? 'GET' : 'POST'),
    headers,
    ...(body !== undefined ? { body } : {}),
  });
  const text = await response.text();
  return { status: response.status, headers: response.headers, body: text === '' ? undefined : JSON.parse(text) };
}

function hook(name: string): any {
  return readFixture(`cds-hooks/${name}`);
}

function draftOrder(request: any, index = 0): ServiceRequest {
  return request.context.draftOrders.entry[index].resource as ServiceRequest;
}

function expressionsOf(outcome: OperationOutcome): string[] {
  return outcome.issue.filter((i) => i.severity === 'error').flatMap((i) => i.expression ?? []);
}

describe('CDS Hooks site check over HTTP', () => {
  let ehr: StandInEhr;
  let service: Listening;
  let ehrKey: SigningKey;
  let jwks: JwksServer;
  let cdsLog: ReturnType<typeof capturingLogger>;
  let base: string;
  const opened: Array<{ baseUrl: string; bearerToken: string | undefined }> = [];
  const treatedBefore = new Map<string, string[]>();

  before(async () => {
    ehr = await startStandInEhr();
    ehrKey = await newSigningKey('ehr-key-1');
    jwks = await startJwksServer([ehrKey]);
    signAsTestEhr = (url) => signHookJwt(ehrKey, { iss: TEST_EHR_ISSUER, aud: url });
    cdsLog = capturingLogger();
    const directoryBundle = readFixture<{ entry: Array<{ resource: Resource }> }>('directory/demo-directory.bundle.json');
    const directory = SiteDirectory.fromResources(directoryBundle.entry.map((e) => e.resource));
    const { catalog } = parseDrugCatalog(readFixture('drug-catalog.json'));
    if (!catalog) throw new Error('the fixture drug catalog does not parse');
    const deps: CdsDeps = {
      sites: { current: async () => directory },
      sitePolicy: DEFAULT_SITE_CHECK_POLICY,
      drugs: { findCatalogDrug: (codings) => findDrugByCodings(catalog, codings) },
      logger: cdsLog,
      // With a trailing slash: the hook's fhirServer has none, and must still match.
      trustedFhirServers: [`${ehr.baseUrl}/`],
      openFhirServer: (baseUrl, bearerToken) => {
        opened.push({ baseUrl, bearerToken });
        return createFhirKitEhr(
          { tenant: 'cds-hooks-test', baseUrl, ...(bearerToken !== undefined ? { bearerToken } : {}) },
          { timeoutMs: 5_000 },
        );
      },
      previousSiteIds: async (patientId) => treatedBefore.get(patientId) ?? [],
    };
    const app = express();
    const clientTrust = createCdsClientTrust({
      issuers: [remoteIssuer(TEST_EHR_ISSUER, jwks.url, { refetchCooldownMs: 0 })],
      clock: { now: () => new Date() },
    });
    app.use('/cds-services', cdsHooksRouter(deps, { clientTrust }));
    service = await listen(app);
    base = `${service.url}/cds-services`;
  });

  after(async () => {
    signAsTestEhr = undefined;
    await service?.close();
    await jwks?.close();
    await ehr?.stop();
  });

  beforeEach(() => {
    treatedBefore.clear();
    ehr.clearRequests();
    ehr.failWith(undefined);
    opened.splice(0);
  });

  describe('discovery', () => {
    it('lists one service per hook, each asking for the Patient and the active Coverage as prefetch', async () => {
      const { status, headers, body } = await call(base);
      expect(status).to.equal(200);
      expect(headers.get('access-control-allow-origin')).to.equal('*');
      const services = body.services as Array<{ id: string; hook: string; prefetch: Record<string, string>; description: string }>;
      expect(services.map((s) => [s.id, s.hook])).to.deep.equal([
        ['infusion-site-check', 'order-sign'],
        ['infusion-site-check-select', 'order-select'],
      ]);
      for (const s of services) {
        expect(s.prefetch).to.deep.equal({
          patient: 'Patient/{{context.patientId}}',
          coverage: 'Coverage?patient={{context.patientId}}&status=active',
        });
        expect(s.description).to.be.a('string').and.not.equal('');
      }
    });

    it('answers a browser preflight so web-based CDS clients may call it', async () => {
      const { status, headers } = await call(`${base}/infusion-site-check`, {
        method: 'OPTIONS',
        headers: {
          origin: 'https://ehr.example.org',
          'access-control-request-method': 'POST',
          'access-control-request-headers': 'authorization, content-type',
        },
      });
      expect(status).to.equal(204);
      expect(headers.get('access-control-allow-origin')).to.equal('*');
      expect(headers.get('access-control-allow-methods')).to.include('POST');
      expect(headers.get('access-control-allow-headers')?.toLowerCase()).to.include('authorization');
    });
  });

  describe('order-sign with prefetch', () => {
    it('answers no card for an order sent to a site that gives the drug near the patient', async () => {
      const { status, body } = await call(`${base}/infusion-site-check`, { body: hook('order-sign-good.json') });
      expect(status).to.equal(200);
      expect(body).to.deep.equal({ cards: [] });
      expect(ehr.requests(), 'prefetch was enough').to.deep.equal([]);
    });

    it('warns about an ocrelizumab order auto-filled to Donelson and suggests Green Hills, near the patient', async () => {
      const request = hook('order-sign-misroute.json');
      const { status, body } = await call(`${base}/infusion-site-check`, { body: request });
      expect(status).to.equal(200);
      const cards = (body as CdsServiceResponse).cards;
      expect(cards).to.have.length(1);
      const card = cards[0] as CdsCard;
      expect(card.indicator).to.equal('warning');
      expect(card.uuid).to.match(/^[0-9a-f-]{36}$/);
      expect(card.summary.length).to.be.below(140);
      expect(card.source.topic).to.deep.equal({
        system: 'http://terminology.hl7.org/CodeSystem/cdshooks-card-type',
        code: 'network',
        display: 'Network',
      });
      expect(card.detail).to.include('**Drug not offered at the site**: Harbor Infusion Center - Donelson does not give the ordered drug');
      expect(card.selectionBehavior).to.equal('at-most-one');
      expect(card.overrideReasons?.map((r) => r.code)).to.include('patient-confirmed-site');
      expect(card.extension).to.deep.equal({ 'davinci-crd.associated-resource': ['ServiceRequest/draft-ocrelizumab-01'] });

      const [best, ...others] = card.suggestions ?? [];
      expect(best?.isRecommended).to.equal(true);
      expect(others.every((s) => s.isRecommended === false)).to.equal(true);
      expect(best?.label).to.include('Harbor Infusion Center - Green Hills');
      const action = best?.actions?.[0];
      expect(action?.type).to.equal('update');
      const updated = action?.resource as ServiceRequest;
      expect(updated.locationReference).to.deep.equal([
        { reference: 'Location/hin-nashville-green-hills', display: 'Harbor Infusion Center - Green Hills' },
      ]);
      const { locationReference: _new, ...updatedRest } = updated;
      const { locationReference: _old, ...draftRest } = draftOrder(request);
      expect(updatedRest, 'only the site changes').to.deep.equal(draftRest);
    });

    it('suggests the site the patient was treated at before, first, when the order names another', async () => {
      treatedBefore.set('cds-patient-crohns', ['hin-nashville-midtown']);
      const { body } = await call(`${base}/infusion-site-check`, { body: hook('order-sign-good.json') });
      const card = (body as CdsServiceResponse).cards[0];
      expect(card?.detail).to.include('The patient was treated at Harbor Infusion Center - Nashville Midtown before');
      expect(card?.suggestions?.[0]?.label).to.include('Harbor Infusion Center - Nashville Midtown (treated there before');
    });

    it('keeps the patient out of the summary', async () => {
      const request = hook('order-sign-misroute.json');
      const patient = request.prefetch.patient as Patient;
      const { body } = await call(`${base}/infusion-site-check`, { body: request });
      const summary = (body as CdsServiceResponse).cards[0]?.summary ?? '';
      expect(summary).not.to.equal('');
      for (const value of [
        patient.name?.[0]?.family,
        patient.name?.[0]?.given?.[0],
        patient.birthDate,
        patient.address?.[0]?.line?.[0],
        patient.address?.[0]?.postalCode,
      ]) {
        expect(summary).not.to.include(value as string);
      }
    });
  });

  describe('order-select', () => {
    it('checks only the selected order, though another draft order is misrouted too', async () => {
      const request = hook('order-select-two-orders.json');
      const { status, body } = await call(`${base}/infusion-site-check-select`, { body: request });
      expect(status).to.equal(200);
      const cards = (body as CdsServiceResponse).cards;
      expect(cards.map((c) => c.extension?.['davinci-crd.associated-resource'])).to.deep.equal([['ServiceRequest/draft-vedolizumab-01']]);
      expect(cards[0]?.detail).to.include('Harbor Infusion Center - Elizabeth (closed)');

      const onMainService = await call(`${base}/infusion-site-check`, { body: request });
      expect(
        onMainService.body.cards.map((c: CdsCard) => c.extension?.['davinci-crd.associated-resource']),
        'the main service takes order-select too',
      ).to.deep.equal([['ServiceRequest/draft-vedolizumab-01']]);

      request.context.selections = ['ServiceRequest/draft-ocrelizumab-01'];
      const other = await call(`${base}/infusion-site-check-select`, { body: request });
      expect(other.body.cards.map((c: CdsCard) => c.extension?.['davinci-crd.associated-resource'])).to.deep.equal([
        ['ServiceRequest/draft-ocrelizumab-01'],
      ]);
    });

    it('checks every draft order on order-sign, one card each', async () => {
      const request = hook('order-select-two-orders.json');
      request.hook = 'order-sign';
      delete request.context.selections;
      const { body } = await call(`${base}/infusion-site-check`, { body: request });
      expect(body.cards.map((c: CdsCard) => c.extension?.['davinci-crd.associated-resource'])).to.deep.equal([
        ['ServiceRequest/draft-ocrelizumab-01'],
        ['ServiceRequest/draft-vedolizumab-01'],
      ]);
    });

    it('refuses a selection that names no draft order', async () => {
      const request = hook('order-select-two-orders.json');
      request.context.selections = ['ServiceRequest/not-in-the-draft'];
      const { status, body } = await call(`${base}/infusion-site-check-select`, { body: request });
      expect(status).to.equal(400);
      expect(expressionsOf(body)).to.deep.equal(['context.selections[0]']);
    });

    it('refuses order-sign on the order-select service', async () => {
      const { status, body } = await call(`${base}/infusion-site-check-select`, { body: hook('order-sign-misroute.json') });
      expect(status).to.equal(400);
      expect(expressionsOf(body)).to.deep.equal(['hook']);
    });
  });

  describe('without prefetch', () => {
    async function seededRequest(): Promise<{ request: any; patientId: string; coverageId: string }> {
      const patient = await ehr.seed(readFixture<Patient>('cds-hooks/ehr-patient-ms.json'));
      const coverage = await ehr.seed({
        ...readFixture<Coverage>('cds-hooks/ehr-coverage-ms.json'),
        beneficiary: { reference: `Patient/${patient.id}` },
      });
      const request = hook('order-sign-misroute.no-prefetch.json');
      request.fhirServer = ehr.baseUrl;
      request.context.patientId = patient.id;
      const order = draftOrder(request);
      order.subject = { reference: `Patient/${patient.id}` };
      order.insurance = [{ reference: `Coverage/${coverage.id}` }];
      ehr.clearRequests();
      return { request, patientId: patient.id, coverageId: coverage.id };
    }

    it("reads the Patient and the active Coverage from the hook's FHIR server with its bearer token", async () => {
      const { request, patientId } = await seededRequest();
      const { status, body } = await call(`${base}/infusion-site-check`, { body: request });
      expect(status).to.equal(200);

      const reads = ehr.requests().map((r) => ({
        method: r.method,
        path: r.path,
        query: new URLSearchParams(r.query),
        authorization: r.authorization,
        status: r.status,
      }));
      const patientRead = reads.find((r) => r.path === `/fhir/Patient/${patientId}`);
      expect(patientRead).to.include({ method: 'GET', authorization: `Bearer ${ACCESS_TOKEN}`, status: 200 });
      const coverageSearch = reads.find((r) => r.path === '/fhir/Coverage');
      expect(coverageSearch).to.include({ method: 'GET', authorization: `Bearer ${ACCESS_TOKEN}`, status: 200 });
      expect(coverageSearch?.query.get('patient')).to.equal(`Patient/${patientId}`);
      expect(coverageSearch?.query.get('status')).to.equal('active');

      // The distance needs the Patient's home, "in network" the Coverage's plan: both were used.
      const best = (body as CdsServiceResponse).cards[0]?.suggestions?.[0];
      expect(best?.label).to.equal('Send to Harbor Infusion Center - Green Hills (in network, 3.2 km from home)');
    });

    it('answers 412 when the FHIR server fails, as it cannot check without the data', async () => {
      const { request } = await seededRequest();
      ehr.failWith('error-500');
      await ehr.settled();
      const { status, body } = await call(`${base}/infusion-site-check`, { body: request });
      expect(status).to.equal(412);
      expect(body.resourceType).to.equal('OperationOutcome');
      expect(expressionsOf(body)).to.include('fhirServer');
    });

    it('does not contact a fhirServer it does not trust, and answers 412', async () => {
      const hits: string[] = [];
      const untrusted = await listen((req, res) => {
        hits.push(req.url ?? '');
        res.writeHead(404).end();
      });
      try {
        const request = hook('order-sign-misroute.no-prefetch.json');
        request.fhirServer = `${untrusted.url}/fhir`;
        const { status, body } = await call(`${base}/infusion-site-check`, { body: request });
        expect(status).to.equal(412);
        expect(expressionsOf(body)).to.include.members(['prefetch.patient', 'prefetch.coverage', 'fhirServer']);
        expect(hits).to.deep.equal([]);
        expect(opened).to.deep.equal([]);
      } finally {
        await untrusted.close();
      }
    });

    it('answers 412 when there is neither prefetch nor a fhirServer', async () => {
      const request = hook('order-sign-misroute.no-prefetch.json');
      delete request.fhirServer;
      delete request.fhirAuthorization;
      const { status, body } = await call(`${base}/infusion-site-check`, { body: request });
      expect(status).to.equal(412);
      expect(expressionsOf(body)).to.deep.equal(['prefetch.patient', 'prefetch.coverage']);
    });

    it('needs no FHIR server for an order of a drug outside the catalog', async () => {
      const request = hook('order-sign-misroute.no-prefetch.json');
      delete request.fhirServer;
      delete request.fhirAuthorization;
      draftOrder(request).code = {
        coding: [{ system: 'http://www.nlm.nih.gov/research/umls/rxnorm', code: '121191', display: 'rituximab' }],
      };
      const { status, body } = await call(`${base}/infusion-site-check`, { body: request });
      expect(status).to.equal(200);
      expect(body).to.deep.equal({ cards: [] });
    });
  });

  describe('refusals', () => {
    it('lists every problem of a bad hook request in one 400 OperationOutcome', async () => {
      const expected = readFixture<{ status: number; expressions: string[] }>('cds-hooks/bad-request.expected.json');
      const { status, body } = await call(`${base}/infusion-site-check-select`, { body: hook('bad-request.json') });
      expect(status).to.equal(expected.status);
      expect(body.resourceType).to.equal('OperationOutcome');
      expect(expressionsOf(body)).to.have.members(expected.expressions);
    });

    it('refuses a body that is not JSON with 400, and another media type with 415', async () => {
      const malformed = await call(`${base}/infusion-site-check`, { body: '{"hook": "order-sign",' });
      expect(malformed.status).to.equal(400);
      expect(malformed.body.resourceType).to.equal('OperationOutcome');
      const xml = await call(`${base}/infusion-site-check`, { body: '<hook/>', headers: { 'content-type': 'application/xml' } });
      expect(xml.status).to.equal(415);
    });

    it('answers 404 for a service it does not offer', async () => {
      const { status, body } = await call(`${base}/some-other-service`, { body: hook('order-sign-good.json') });
      expect(status).to.equal(404);
      expect(body.resourceType).to.equal('OperationOutcome');
    });

    it('refuses a prefetched Patient that is not the patient of the hook', async () => {
      const request = hook('order-sign-misroute.json');
      request.context.patientId = 'someone-else';
      const { status, body } = await call(`${base}/infusion-site-check`, { body: request });
      expect(status).to.equal(400);
      expect(expressionsOf(body)).to.deep.equal(['prefetch.patient']);
    });
  });

  describe('feedback and logs', () => {
    it('takes feedback on its cards', async () => {
      const feedback = {
        feedback: [
          {
            card: '0f0e8a2c-6a40-4f6b-9d0e-5d6c2f1f3b11',
            outcome: 'overridden',
            overrideReason: {
              reason: {
                system: 'https://fhir.infusion-gateway.example/CodeSystem/site-check-override-reason',
                code: 'patient-confirmed-site',
              },
              userComment: 'She asked for Donelson',
            },
            outcomeTimestamp: '2026-11-23T10:00:00Z',
          },
        ],
      };
      const { status } = await call(`${base}/infusion-site-check/feedback`, { body: feedback });
      expect(status).to.equal(200);
      const line =
        capturedLogLines()
          .filter((l) => l.includes('"cds feedback"'))
          .at(-1) ?? '';
      expect(JSON.parse(line)).to.include({ overridden: 1, accepted: 0 });
      expect(line).not.to.include('She asked');
    });

    it('logs decisions and reason codes, but no patient data and no access token', async () => {
      const before = capturedLogLines().length;
      await call(`${base}/infusion-site-check`, { body: hook('order-sign-misroute.json') });
      const lines = capturedLogLines().slice(before);
      const checkLine = lines.find((l) => l.includes('"cds site check"'));
      expect(JSON.parse(checkLine ?? '{}')).to.deep.include({ decisions: ['misroute-suspected'], reasons: ['drug-not-offered'], cards: 1 });
      expect(phiFoundIn(capturedLogLines())).to.deep.equal([]);
      expect(capturedLogLines().some((l) => l.includes(ACCESS_TOKEN))).to.equal(false);
    });
  });

  // https://cds-hooks.hl7.org/2.0/#trusting-cds-clients
  describe('trusting CDS clients', () => {
    const serviceUrl = (): string => `${base}/infusion-site-check`;
    const bearer = (jwt: string): Record<string, string> => ({ authorization: `Bearer ${jwt}` });
    const refusedWith401 = (reply: { status: number; headers: Headers; body: any }): void => {
      expect(reply.status).to.equal(401);
      expect(reply.headers.get('www-authenticate')).to.match(/^Bearer/);
      expect(reply.body.resourceType).to.equal('OperationOutcome');
      expect(reply.body.issue[0]).to.include({ severity: 'error', code: 'login' });
      expect(reply.body.issue[0].expression).to.deep.equal(['Authorization']);
    };

    it('keeps discovery public: no JWT needed for GET /cds-services', async () => {
      const { status } = await call(base);
      expect(status).to.equal(200);
    });

    it('answers a call signed by a trusted EHR, addressed to this service', async () => {
      const jwt = await signHookJwt(ehrKey, { iss: TEST_EHR_ISSUER, aud: serviceUrl() });
      const { status, body } = await call(serviceUrl(), { body: hook('order-sign-good.json'), headers: bearer(jwt) });
      expect(status).to.equal(200);
      expect(body.cards).to.be.an('array');
    });

    it('refuses a call without Authorization, and does not read the EHR for it', async () => {
      refusedWith401(await call(serviceUrl(), { body: hook('order-sign-misroute.no-prefetch.json'), unsigned: true }));
      expect(opened).to.deep.equal([]);
    });

    it('refuses feedback without a JWT', async () => {
      refusedWith401(await call(`${serviceUrl()}/feedback`, { body: { feedback: [] }, unsigned: true }));
    });

    it('refuses a JWT from an issuer it does not trust, even with a key the trusted JWKS holds', async () => {
      const jwt = await signHookJwt(ehrKey, { iss: 'https://someone-else.invalid', aud: serviceUrl() });
      refusedWith401(await call(serviceUrl(), { body: hook('order-sign-good.json'), headers: bearer(jwt) }));
    });

    it('refuses a JWT signed by a key outside the issuer JWKS (forged with a copied kid)', async () => {
      const forger = await newSigningKey(ehrKey.kid);
      const jwt = await signHookJwt(forger, { iss: TEST_EHR_ISSUER, aud: serviceUrl() });
      refusedWith401(await call(serviceUrl(), { body: hook('order-sign-good.json'), headers: bearer(jwt) }));
    });

    it('refuses a JWT addressed to another service', async () => {
      const jwt = await signHookJwt(ehrKey, { iss: TEST_EHR_ISSUER, aud: `${base}/infusion-site-check-select` });
      refusedWith401(await call(serviceUrl(), { body: hook('order-sign-good.json'), headers: bearer(jwt) }));
    });

    it('refuses an expired JWT and one that lives longer than 5 minutes', async () => {
      const expired = await signHookJwt(ehrKey, {
        iss: TEST_EHR_ISSUER,
        aud: serviceUrl(),
        now: Math.floor(Date.now() / 1000) - 600,
        expiresIn: 120,
      });
      refusedWith401(await call(serviceUrl(), { body: hook('order-sign-good.json'), headers: bearer(expired) }));
      const longLived = await signHookJwt(ehrKey, { iss: TEST_EHR_ISSUER, aud: serviceUrl(), expiresIn: 3600 });
      refusedWith401(await call(serviceUrl(), { body: hook('order-sign-good.json'), headers: bearer(longLived) }));
    });

    it('refuses a replayed JWT (same jti), accepting it the first time only', async () => {
      const jwt = await signHookJwt(ehrKey, { iss: TEST_EHR_ISSUER, aud: serviceUrl() });
      const first = await call(serviceUrl(), { body: hook('order-sign-good.json'), headers: bearer(jwt) });
      expect(first.status).to.equal(200);
      refusedWith401(await call(serviceUrl(), { body: hook('order-sign-good.json'), headers: bearer(jwt) }));
    });

    it("refuses an unsigned ('none') JWT and a non-JWT bearer", async () => {
      const header = Buffer.from(JSON.stringify({ alg: 'none', typ: 'JWT' })).toString('base64url');
      const payload = Buffer.from(
        JSON.stringify({ iss: TEST_EHR_ISSUER, aud: serviceUrl(), exp: Math.floor(Date.now() / 1000) + 60, jti: 'x' }),
      ).toString('base64url');
      refusedWith401(await call(serviceUrl(), { body: hook('order-sign-good.json'), headers: bearer(`${header}.${payload}.`) }));
      refusedWith401(await call(serviceUrl(), { body: hook('order-sign-good.json'), headers: bearer(ACCESS_TOKEN) }));
    });

    it('fetches the JWKS again when the EHR rotates to a key it has not seen, then accepts', async () => {
      const rotated = await newSigningKey('ehr-key-2');
      jwks.publish([ehrKey, rotated]);
      const fetchesBefore = jwks.fetches();
      const jwt = await signHookJwt(rotated, { iss: TEST_EHR_ISSUER, aud: serviceUrl() });
      const { status } = await call(serviceUrl(), { body: hook('order-sign-good.json'), headers: bearer(jwt) });
      expect(status).to.equal(200);
      expect(jwks.fetches()).to.equal(fetchesBefore + 1);
    });

    it('never logs the JWT', async () => {
      const jwt = await signHookJwt(ehrKey, { iss: TEST_EHR_ISSUER, aud: `${base}/elsewhere` });
      await call(serviceUrl(), { body: hook('order-sign-good.json'), headers: bearer(jwt) });
      expect(capturedLogLines().some((l) => l.includes(jwt.split('.')[2]!))).to.equal(false);
      expect(capturedLogLines().some((l) => l.includes('"cds hook call refused"'))).to.equal(true);
    });
  });
});
