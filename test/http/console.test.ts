/**
 * The console's server side over real HTTP (src/http/console-routes.ts): its pages and their
 * headers, its configuration, Task/$network-metrics and the operators' connection health.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { expect } from 'chai';
import express from 'express';
import { consoleRoutes, probeFhirServer } from '../../src/http/console-routes.js';
import { readFixture, withOrderNumber } from '../support/fixtures.js';
import { fhirFetch, startGateway, waitUntil, type RunningGateway } from '../support/gateway.js';
import { startStandInEhr, type StandInEhr } from '../../src/sandbox/stand-in-ehr.js';
import { startStandInPayer, type StandInPayer } from '../../src/sandbox/stand-in-payer.js';
import { outboxTotal } from '../connectivity/ehr-helpers.js';

const MISROUTED = ['site-check/too-far/service-request.json', 'site-check/drug-not-offered/service-request.json'];

async function listen(server: Server): Promise<{ server: Server; url: string }> {
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', () => resolve()));
  return { server, url: `http://127.0.0.1:${(server.address() as AddressInfo).port}` };
}

describe('the console served by the gateway', function () {
  let gateway: RunningGateway;

  before(async function () {
    gateway = await startGateway();
  });
  after(async function () {
    await gateway.stop();
  });

  it('serves the app at every page path with a strict CSP, no referrer and no caching of the page', async function () {
    for (const page of ['/console/', '/console/queues/auth-pending', '/console/referrals/some-task-id/schedule']) {
      const response = await fetch(`${gateway.baseUrl}${page}`);
      expect(response.status, page).to.equal(200);
      expect(response.headers.get('content-type')).to.match(/^text\/html/);
      expect(response.headers.get('content-security-policy')).to.include("script-src 'self'").and.to.include("frame-ancestors 'none'");
      expect(response.headers.get('referrer-policy')).to.equal('no-referrer');
      expect(response.headers.get('cache-control')).to.equal('no-cache');
      expect(await response.text()).to.match(/<script type="module"[^>]+src="\/console\/assets\/index-[^"]+\.js"/);
    }
  });

  it('redirects /console to /console/ so relative assets resolve', async function () {
    const response = await fetch(`${gateway.baseUrl}/console`, { redirect: 'manual' });
    expect(response.status).to.equal(301);
    expect(response.headers.get('location')).to.equal('/console/');
  });

  it('serves its hashed assets as immutable and answers a missing one 404 with an OperationOutcome, not the page', async function () {
    const page = await (await fetch(`${gateway.baseUrl}/console/`)).text();
    const script = /src="(\/console\/assets\/index-[^"]+\.js)"/.exec(page)![1]!;
    const asset = await fetch(`${gateway.baseUrl}${script}`);
    expect(asset.status).to.equal(200);
    expect(asset.headers.get('cache-control')).to.include('immutable');
    const missing = await fhirFetch(`${gateway.baseUrl}/console/assets/index-gone.js`);
    expect(missing.status).to.equal(404);
    expect(missing.body.resourceType).to.equal('OperationOutcome');
  });

  it('tells the browser where the API is, where people sign in and the thresholds it draws, and nothing about anyone', async function () {
    const config = await fhirFetch(`${gateway.baseUrl}/console/config.json`);
    expect(config.status).to.equal(200);
    expect(config.body).to.deep.equal({
      fhirBase: '/fhir',
      adminBase: '/admin',
      defaultTenant: 'default',
      directoryTenant: 'network',
      siteTooFarKm: 40,
      refreshSeconds: 15,
      // Outside production with no AUTH_TRUSTED_ISSUERS: the embedded demo identity provider, at the origin the console was reached at.
      signIn: { issuer: `${gateway.baseUrl}/demo-idp`, clientId: 'infusion-console-demo', scope: 'openid profile', demo: true },
    });
  });

  it("names the organisation's identity provider when one is configured, and lets the console reach it (CSP connect-src)", async function () {
    const configured = await startGateway({
      env: {
        AUTH_TRUSTED_ISSUERS: JSON.stringify([
          {
            issuer: 'https://login.hospital-a.example',
            jwksUrl: 'https://login.hospital-a.example/jwks',
            subjectClaim: 'sub',
            tenants: ['default'],
            access: { from: 'claims', roleClaim: 'roles' },
          },
        ]),
        CONSOLE_OIDC_ISSUER: 'https://login.hospital-a.example',
        CONSOLE_OIDC_CLIENT_ID: 'infusion-console',
      },
    });
    try {
      const response = await fetch(`${configured.baseUrl}/console/config.json`);
      expect(((await response.json()) as { signIn: unknown }).signIn).to.deep.equal({
        issuer: 'https://login.hospital-a.example',
        clientId: 'infusion-console',
        scope: 'openid profile',
        demo: false,
      });
      expect(response.headers.get('content-security-policy')).to.contain("connect-src 'self' https://login.hospital-a.example;");
      // No demo identity provider beside a configured one.
      expect((await fetch(`${configured.baseUrl}/demo-idp/.well-known/openid-configuration`)).status).to.equal(404);
    } finally {
      await configured.stop();
    }
  });

  it('says how to build the console when it is not built (503 with an OperationOutcome)', async function () {
    const empty = await mkdtemp(path.join(os.tmpdir(), 'console-unbuilt-'));
    const app = express();
    app.use(
      consoleRoutes(gateway.gateway.deps, {
        staticDir: empty,
        defaultTenant: 'default',
        directoryTenant: 'network',
        siteTooFarKm: 40,
        connections: [],
      }),
    );
    const { server, url } = await listen(createServer(app));
    try {
      const response = await fhirFetch(`${url}/console/queues/scheduled`);
      expect(response.status).to.equal(503);
      expect(response.body.issue[0].diagnostics).to.include('npm run build:console');
    } finally {
      server.close();
      await rm(empty, { recursive: true, force: true });
    }
  });
});

describe('Task/$network-metrics over HTTP', function () {
  let gateway: RunningGateway;

  before(async function () {
    gateway = await startGateway();
    for (const [index, fixture] of MISROUTED.entries()) {
      const created = await fhirFetch(`${gateway.baseUrl}/fhir/ServiceRequest`, {
        body: withOrderNumber(readFixture(fixture), `METRICS-${index}`),
      });
      expect(created.status).to.equal(201);
    }
    const plain = await fhirFetch(`${gateway.baseUrl}/fhir/ServiceRequest`, {
      body: readFixture('referrals/vedolizumab/service-request.json'),
    });
    expect(plain.status).to.equal(201);
  });
  after(async function () {
    await gateway.stop();
  });

  it('is published: an OperationDefinition, and an operation of Task in the CapabilityStatement', async function () {
    const definition = await fhirFetch(`${gateway.baseUrl}/fhir/OperationDefinition/network-metrics`);
    expect(definition.status).to.equal(200);
    expect(definition.body).to.include({ code: 'network-metrics', affectsState: false });
    const metadata = await fhirFetch(`${gateway.baseUrl}/fhir/metadata`);
    const task = metadata.body.rest[0].resource.find((r: any) => r.type === 'Task');
    expect(task.operation.map((o: any) => o.definition)).to.include(definition.body.url);
  });

  it("answers a MeasureReport of the caller's tenant: the referrals received and the misroutes caught", async function () {
    const response = await fhirFetch(`${gateway.baseUrl}/fhir/Task/$network-metrics`);
    expect(response.status).to.equal(200);
    expect(response.body).to.include({ resourceType: 'MeasureReport', type: 'summary', status: 'complete' });
    const group = (code: string): any => response.body.group.find((g: any) => g.code.coding[0].code === code);
    const count = (g: any, kind: string): number => g.population.find((p: any) => p.code.coding[0].code === kind).count;
    expect(count(group('referrals'), 'initial-population')).to.equal(MISROUTED.length + 1);
    expect(count(group('misroutes-caught'), 'numerator')).to.equal(MISROUTED.length);
    const other = await fhirFetch(`${gateway.baseUrl}/fhir/Task/$network-metrics`, { headers: { 'x-tenant-id': 'another-hospital' } });
    expect(
      count(
        other.body.group.find((g: any) => g.code.coding[0].code === 'referrals'),
        'initial-population',
      ),
    ).to.equal(0);
  });

  it('answers the same report to POST with a Parameters body as to GET with the query', async function () {
    const query = 'period-start=2026-01-01&period-end=2026-12-31';
    const byGet = await fhirFetch(`${gateway.baseUrl}/fhir/Task/$network-metrics?${query}`);
    const byPost = await fhirFetch(`${gateway.baseUrl}/fhir/Task/$network-metrics`, {
      body: {
        resourceType: 'Parameters',
        parameter: [
          { name: 'period-start', valueDate: '2026-01-01' },
          { name: 'period-end', valueDate: '2026-12-31' },
        ],
      },
    });
    expect(byGet.status).to.equal(200);
    expect(byPost.status).to.equal(200);
    expect(byPost.body.group).to.deep.equal(byGet.body.group);
    expect(byPost.body.period).to.deep.equal(byGet.body.period);
    const notParameters = await fhirFetch(`${gateway.baseUrl}/fhir/Task/$network-metrics`, { body: { resourceType: 'Patient' } });
    expect(notParameters.status).to.equal(400);
    expect(notParameters.body.issue[0].expression).to.deep.equal(['resourceType']);
  });

  it('refuses bad parameters with every problem at once, each naming its parameter', async function () {
    const response = await fhirFetch(`${gateway.baseUrl}/fhir/Task/$network-metrics?period-start=yesterday&colour=blue`);
    expect(response.status).to.equal(400);
    expect(response.body.issue.map((i: any) => i.expression[0]).sort()).to.deep.equal(['colour', 'period-start']);
  });

  it('refuses a period that ends before it starts, or spans more than three years', async function () {
    for (const query of ['period-start=2026-12-01&period-end=2026-11-01', 'period-start=2020-01-01&period-end=2026-01-01']) {
      const response = await fhirFetch(`${gateway.baseUrl}/fhir/Task/$network-metrics?${query}`);
      expect(response.status, query).to.equal(400);
      expect(response.body.issue[0].expression).to.deep.equal(['period-start']);
    }
  });
});

describe('connection health for operators (GET /admin/connections)', function () {
  let ehr: StandInEhr;
  let payer: StandInPayer;
  let gateway: RunningGateway;
  let closedPort: number;
  let notFhir: { server: Server; url: string };

  before(async function () {
    ehr = await startStandInEhr();
    payer = await startStandInPayer({ defaultRule: {} });
    const { server, url } = await listen(createServer());
    closedPort = Number(new URL(url).port);
    await new Promise<void>((resolve) => server.close(() => resolve()));
    // Something answering at a base URL that is not an R4 FHIR server's, each way it can happen.
    notFhir = await listen(
      createServer((req, res) => {
        const answers: Record<string, [number, string, string]> = {
          '/405/metadata': [
            405,
            'application/fhir+json',
            JSON.stringify({ resourceType: 'OperationOutcome', issue: [{ severity: 'error', code: 'not-supported' }] }),
          ],
          '/html/metadata': [200, 'text/html', '<html><body>Sign in</body></html>'],
          '/r5/metadata': [
            200,
            'application/fhir+json',
            JSON.stringify({ resourceType: 'CapabilityStatement', status: 'active', kind: 'instance', fhirVersion: '5.0.0' }),
          ],
          '/locked/metadata': [
            401,
            'application/fhir+json',
            JSON.stringify({ resourceType: 'OperationOutcome', issue: [{ severity: 'error', code: 'login' }] }),
          ],
        };
        const [status, type, body] = answers[req.url ?? ''] ?? [404, 'text/plain', 'no'];
        res.writeHead(status, { 'content-type': type }).end(body);
      }),
    );
    gateway = await startGateway({
      background: true,
      env: {
        EHR_CONNECTIONS: JSON.stringify([{ tenant: 'default', baseUrl: ehr.baseUrl, poll: false }]),
        PAYER_CONNECTIONS: JSON.stringify([
          { payer: 'payer-cumberland', baseUrl: payer.baseUrl },
          { payer: 'payer-sonoran', baseUrl: `http://127.0.0.1:${closedPort}/fhir` },
          { payer: 'payer-peachtree', baseUrl: `${notFhir.url}/405` },
        ]),
      },
    });
  });
  after(async function () {
    await gateway.stop();
    await payer.stop();
    await ehr.stop();
    await new Promise<void>((resolve) => notFhir.server.close(() => resolve()));
  });

  it('probes each EHR and payer: answering, failing or unreachable, with the time it took', async function () {
    const response = await fhirFetch(`${gateway.baseUrl}/admin/connections`);
    expect(response.status).to.equal(200);
    const byId = new Map(response.body.connections.map((c: any) => [`${c.kind}:${c.id}`, c]));
    expect((byId.get('ehr:default') as any).probe).to.include({ state: 'up', httpStatus: 200, fhirVersion: '4.0.1' });
    expect((byId.get('payer:payer-cumberland') as any).probe).to.include({ state: 'up', httpStatus: 200, fhirVersion: '4.0.1' });
    expect((byId.get('payer:payer-cumberland') as any).name).to.equal('Cumberland Health Plan');
    expect((byId.get('payer:payer-sonoran') as any).probe).to.include({ state: 'down', problem: 'Connection failed' });
    // A 405 at /metadata is something answering, not a FHIR server: not up.
    const peachtree = (byId.get('payer:payer-peachtree') as any).probe;
    expect(peachtree).to.include({ state: 'degraded', httpStatus: 405 });
    expect(peachtree.problem).to.contain('without a CapabilityStatement');
  });

  it('counts only a FHIR R4 CapabilityStatement at /metadata as up', async function () {
    const probe = (base: string): Promise<any> => probeFhirServer(base, { timeoutMs: 3000 });
    expect(await probe(`${notFhir.url}/html`)).to.include({ state: 'degraded', httpStatus: 200 });
    expect(await probe(`${notFhir.url}/locked`)).to.include({ state: 'degraded', httpStatus: 401 });
    expect(await probe(`${notFhir.url}/nothing`)).to.include({ state: 'degraded', httpStatus: 404 });
    const r5 = await probe(`${notFhir.url}/r5`);
    expect(r5).to.include({ state: 'degraded', httpStatus: 200 });
    expect(r5.problem).to.contain('FHIR 5.0.0');
    expect(await probe(payer.baseUrl)).to.include({ state: 'up', fhirVersion: '4.0.1' });
  });

  it('has the stand-in payer name what it supports at /metadata, without credentials, while its operations still need them', async function () {
    const guarded = await startStandInPayer({ defaultRule: {}, bearerToken: 'payer-secret' });
    try {
      const metadata = await fetch(`${guarded.baseUrl}/metadata`, { headers: { accept: 'application/fhir+json' } });
      expect(metadata.status).to.equal(200);
      const statement = (await metadata.json()) as any;
      expect(statement).to.include({ resourceType: 'CapabilityStatement', status: 'active', kind: 'instance', fhirVersion: '4.0.1' });
      const operations = statement.rest[0].resource.map((r: any) => `${r.type}/$${r.operation.map((o: any) => o.name).join(',$')}`);
      expect(operations).to.deep.equal(['CoverageEligibilityRequest/$submit', 'Claim/$submit,$inquire']);
      expect(statement.rest[0].security.description).to.contain('bearer token');
      const unauthenticated = await fetch(`${guarded.baseUrl}/Claim/$submit`, {
        method: 'POST',
        headers: { 'content-type': 'application/fhir+json' },
        body: '{}',
      });
      expect(unauthenticated.status).to.equal(401);
    } finally {
      await guarded.stop();
    }
  });

  it('shows the outbox behind an EHR: what waits, what died and why it waits', async function () {
    ehr.failWith('error-500');
    const created = await fhirFetch(`${gateway.baseUrl}/fhir/ServiceRequest`, {
      body: readFixture('referrals/infliximab/service-request.json'),
    });
    expect(created.status).to.equal(201);
    await waitUntil('the write-back has failed once', async () => {
      const health = await fhirFetch(`${gateway.baseUrl}/admin/connections`);
      return health.body.connections.find((c: any) => c.kind === 'ehr').outbox.oldestPendingAttempts >= 1;
    });
    const health = await fhirFetch(`${gateway.baseUrl}/admin/connections`);
    const outbox = health.body.connections.find((c: any) => c.kind === 'ehr').outbox;
    expect(outbox.pending).to.equal(await outboxTotal(gateway.baseUrl, 'pending'));
    expect(outbox.dead).to.equal(0);
    expect(outbox.lastError.resourceType).to.equal('OperationOutcome');
    expect(health.body.connections.find((c: any) => c.kind === 'ehr').probe.state).to.equal('degraded');
    ehr.failWith(undefined);
  });
});
