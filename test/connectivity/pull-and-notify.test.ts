/**
 * Intake both ways from a real FHIR server: the pull job (search by _lastUpdated, following next
 * links, a persisted cursor) and Subscription notifications (R4 backport rest-hook).
 */
import { expect } from 'chai';
import { randomUUID } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { pollEhrServiceRequests } from '../../src/intake/stories/poll-ehr.js';
import { fhirFetch, startGateway, waitUntil, type RunningGateway } from '../support/gateway.js';
import { readFixture, withOrderNumber } from '../support/fixtures.js';
import { startStandInEhr, type StandInEhr } from '../../src/sandbox/stand-in-ehr.js';
import { stopEhrCheckingWrittenReferences } from '../support/written-references.js';

const QUIET = { OUTBOX_POLL_MS: '25', EHR_POLL: 'false', EHR_REQUEST_TIMEOUT_MS: '3000' };

async function seedOrders(ehr: StandInEhr, count: number, label: string): Promise<string[]> {
  const ids: string[] = [];
  const drugs = ['infliximab', 'ocrelizumab', 'vedolizumab', 'immune-globulin-iv'];
  for (let i = 0; i < count; i += 1) {
    const serviceRequest = withOrderNumber(
      readFixture(`referrals/${drugs[i % drugs.length]}/service-request.json`),
      `${label}-${i}-${randomUUID()}`,
    );
    const created = await fhirFetch(`${ehr.baseUrl}/ServiceRequest`, { body: serviceRequest });
    expect(created.status, JSON.stringify(created.body)).to.equal(201);
    ids.push(created.body.id);
  }
  return ids;
}

async function referralCount(gw: RunningGateway): Promise<number> {
  return (await fhirFetch(`${gw.baseUrl}/fhir/Task?_count=0`)).body.total;
}

describe('pulling ServiceRequests from the EHR', function () {
  this.timeout(60_000);
  let ehr: StandInEhr;
  let dir: string;

  beforeEach(async () => {
    ehr = await startStandInEhr();
    dir = await mkdtemp(path.join(os.tmpdir(), 'gateway-pull-'));
  });
  afterEach(async () => {
    await ehr.stop();
    await rm(dir, { recursive: true, force: true });
  });

  it('takes every order once across a restart, following next links, neither skipping nor repeating', async () => {
    const sqliteFile = path.join(dir, 'gateway.sqlite');
    await seedOrders(ehr, 10, 'before');
    const first = await startGateway({ sqliteFile, env: { ...QUIET, EHR_FHIR_BASE_URL: ehr.baseUrl } });
    // Interrupted after two pages of three, as a crash or a deploy would.
    const partial = await pollEhrServiceRequests(first.gateway.deps, {
      tenant: 'default',
      ehr: first.gateway.ehrClients.get('default')!,
      pageSize: 3,
      maxPages: 2,
    });
    expect(partial.read).to.equal(6);
    expect(partial.outcomes.accepted).to.equal(6);
    await first.stop();

    await seedOrders(ehr, 5, 'after');
    const second = await startGateway({ sqliteFile, env: { ...QUIET, EHR_FHIR_BASE_URL: ehr.baseUrl } });
    try {
      const rest = await pollEhrServiceRequests(second.gateway.deps, {
        tenant: 'default',
        ehr: second.gateway.ehrClients.get('default')!,
        pageSize: 3,
      });
      expect(rest.outcomes).to.deep.equal({ accepted: 9, rejected: 0, duplicate: 0, changed: 0, refused: 0 });
      expect(rest.pages).to.be.at.least(3);
      const again = await pollEhrServiceRequests(second.gateway.deps, {
        tenant: 'default',
        ehr: second.gateway.ehrClients.get('default')!,
        pageSize: 3,
      });
      expect(again.read).to.equal(0);
      expect(await referralCount(second)).to.equal(15);
    } finally {
      await second.stop();
    }
  });

  it('runs on its node-cron schedule and writes the Tasks back', async () => {
    const gw = await startGateway({
      background: true,
      env: { ...QUIET, EHR_POLL: 'true', EHR_POLL_CRON: '* * * * * *', EHR_FHIR_BASE_URL: ehr.baseUrl },
    });
    try {
      const ids = await seedOrders(ehr, 3, 'cron');
      await waitUntil('the poll took the three orders', async () => (await referralCount(gw)) === 3);
      await waitUntil('their Tasks reached the EHR', async () => {
        const tasks = (await fhirFetch(`${ehr.baseUrl}/Task?_count=100`)).body.entry ?? [];
        return tasks.length === 3;
      });
      const tasks = (await fhirFetch(`${ehr.baseUrl}/Task?_count=100`)).body.entry.map((e: any) => e.resource);
      // Read from the EHR, so the Task points at the EHR's own ServiceRequest.
      expect(tasks.map((t: any) => t.focus.reference).sort()).to.deep.equal(ids.map((id) => `ServiceRequest/${id}`).sort());
    } finally {
      await gw.stop();
    }
  });

  it('writes a rejected Task back for an order that is not a valid referral', async () => {
    const gw = await startGateway({ background: true, env: { ...QUIET, EHR_FHIR_BASE_URL: ehr.baseUrl } });
    try {
      const invalid = withOrderNumber(readFixture('referrals/infliximab/service-request.json'), `invalid-${randomUUID()}`);
      delete invalid.insurance;
      const created = await fhirFetch(`${ehr.baseUrl}/ServiceRequest`, { body: invalid });
      expect(created.status).to.equal(201);
      const result = await pollEhrServiceRequests(gw.gateway.deps, { tenant: 'default', ehr: gw.gateway.ehrClients.get('default')! });
      expect(result.outcomes.refused).to.equal(1);
      await waitUntil(
        'the refusal reached the EHR',
        async () => ((await fhirFetch(`${ehr.baseUrl}/Task?_count=10`)).body.entry ?? []).length === 1,
      );
      const task = (await fhirFetch(`${ehr.baseUrl}/Task?_count=10`)).body.entry[0].resource;
      expect(task.status).to.equal('rejected');
      expect(task.focus.reference).to.equal(`ServiceRequest/${created.body.id}`);
      expect(task.note.map((n: any) => n.text).join(' ')).to.contain('ServiceRequest.insurance');
      expect(await referralCount(gw)).to.equal(0);
    } finally {
      await gw.stop();
    }
  });
});

function notification(type: string, focus: string[]): unknown {
  return {
    resourceType: 'Bundle',
    type: 'history',
    timestamp: '2026-11-23T10:00:00Z',
    entry: [
      {
        fullUrl: `urn:uuid:${randomUUID()}`,
        resource: {
          resourceType: 'Parameters',
          meta: { profile: ['http://hl7.org/fhir/uv/subscriptions-backport/StructureDefinition/backport-subscription-status-r4'] },
          parameter: [
            { name: 'subscription', valueReference: { reference: 'Subscription/infusion-orders' } },
            { name: 'topic', valueCanonical: 'http://example.org/SubscriptionTopic/infusion-orders' },
            { name: 'status', valueCode: 'active' },
            { name: 'type', valueCode: type },
            ...focus.map((reference, index) => ({
              name: 'notification-event',
              part: [
                { name: 'event-number', valueString: String(index + 1) },
                { name: 'focus', valueReference: { reference } },
              ],
            })),
          ],
        },
        request: { method: 'GET', url: 'Subscription/infusion-orders/$status' },
        response: { status: '200' },
      },
    ],
  };
}

describe('Subscription notifications from the EHR', function () {
  this.timeout(60_000);
  let ehr: StandInEhr;
  let gw: RunningGateway;
  beforeEach(async () => {
    ehr = await startStandInEhr();
    gw = await startGateway({ env: { ...QUIET, EHR_FHIR_BASE_URL: ehr.baseUrl } });
  });
  afterEach(async () => {
    await gw.stop();
    await stopEhrCheckingWrittenReferences(ehr);
  });

  it('reads the ServiceRequests an id-only notification names and takes them, once', async () => {
    const ids = await seedOrders(ehr, 2, 'notified');
    const body = notification(
      'event-notification',
      ids.map((id) => `${ehr.baseUrl}/ServiceRequest/${id}`),
    );
    const response = await fhirFetch(`${gw.baseUrl}/subscription-notifications/default`, { as: { role: 'ehr', tenant: 'default' }, body });
    expect(response.status, JSON.stringify(response.body)).to.equal(200);
    expect(await referralCount(gw)).to.equal(2);
    const replay = await fhirFetch(`${gw.baseUrl}/subscription-notifications/default`, { as: { role: 'ehr', tenant: 'default' }, body });
    expect(replay.status).to.equal(200);
    expect(replay.body.issue.map((i: any) => i.diagnostics).join(' ')).to.contain('duplicate');
    expect(await referralCount(gw)).to.equal(2);
  });

  it('takes an R4B SubscriptionStatus notification as well as the R4 Parameters form', async () => {
    const [id] = await seedOrders(ehr, 1, 'r4b');
    const body = {
      resourceType: 'Bundle',
      type: 'history',
      timestamp: '2026-11-23T10:00:00Z',
      entry: [
        {
          fullUrl: `urn:uuid:${randomUUID()}`,
          resource: {
            resourceType: 'SubscriptionStatus',
            status: 'active',
            type: 'event-notification',
            subscription: { reference: 'Subscription/infusion-orders' },
            notificationEvent: [{ eventNumber: '1', focus: { reference: `${ehr.baseUrl}/ServiceRequest/${id}` } }],
          },
          // A history Bundle's entries carry request and response (bdl-3, bdl-4), as the backport's examples do.
          request: { method: 'GET', url: 'Subscription/infusion-orders/$status' },
          response: { status: '200' },
        },
      ],
    };
    const response = await fhirFetch(`${gw.baseUrl}/subscription-notifications/default`, { as: { role: 'ehr', tenant: 'default' }, body });
    expect(response.status, JSON.stringify(response.body)).to.equal(200);
    expect(await referralCount(gw)).to.equal(1);
  });

  it('acknowledges handshakes and heartbeats without work, and refuses an unknown tenant or a non-notification', async () => {
    const heartbeat = await fhirFetch(`${gw.baseUrl}/subscription-notifications/default`, {
      as: { role: 'ehr', tenant: 'default' },
      body: notification('heartbeat', []),
    });
    expect(heartbeat.status).to.equal(200);
    const unknown = await fhirFetch(`${gw.baseUrl}/subscription-notifications/nobody`, {
      as: { role: 'ehr', tenant: 'nobody' },
      body: notification('heartbeat', []),
    });
    expect(unknown.status).to.equal(404);
    const wrong = await fhirFetch(`${gw.baseUrl}/subscription-notifications/default`, {
      as: { role: 'ehr', tenant: 'default' },
      body: { resourceType: 'Bundle', type: 'collection' },
    });
    expect(wrong.status).to.equal(400);
    expect(wrong.body.issue[0].expression).to.deep.equal(['Bundle.type']);
  });

  it("takes notifications only from the tenant's own EHR: anonymous 401, a payer 403, another tenant's EHR 404 (not its endpoint)", async () => {
    const [id] = await seedOrders(ehr, 1, 'who');
    const body = notification('event-notification', [`${ehr.baseUrl}/ServiceRequest/${id}`]);
    const url = `${gw.baseUrl}/subscription-notifications/default`;
    const anonymous = await fhirFetch(url, { body, as: 'anonymous' });
    expect(anonymous.status).to.equal(401);
    expect(anonymous.body.issue[0]).to.include({ code: 'login' });
    expect((await fhirFetch(url, { body, as: { role: 'ehr', tenant: 'other-hospital' } })).status).to.equal(404);
    expect((await fhirFetch(url, { body, as: { role: 'payer', payer: 'payer-cumberland' } })).status).to.equal(403);
    // A header naming a tenant is no identity.
    expect((await fhirFetch(url, { body, as: 'anonymous', headers: { 'x-tenant-id': 'default' } })).status).to.equal(401);
    expect(await referralCount(gw)).to.equal(0);
  });
});

describe('Subscription notifications authenticated by their channel header secret', function () {
  this.timeout(60_000);
  const SECRET = `channel-secret-${randomUUID()}`;
  let ehr: StandInEhr;
  let gw: RunningGateway;
  before(async () => {
    ehr = await startStandInEhr();
    gw = await startGateway({
      env: {
        ...QUIET,
        EHR_CONNECTIONS: JSON.stringify([
          { tenant: 'default', baseUrl: ehr.baseUrl, poll: false, subscriptionSecretEnv: 'TEST_SUBSCRIPTION_SECRET' },
        ]),
        TEST_SUBSCRIPTION_SECRET: SECRET,
      },
    });
  });
  after(async () => {
    await gw.stop();
    await ehr.stop();
  });

  it('takes a notification carrying the secret the Subscription was set up with, and refuses a wrong or missing one', async () => {
    const [id] = await seedOrders(ehr, 1, 'secret');
    const body = notification('event-notification', [`${ehr.baseUrl}/ServiceRequest/${id}`]);
    const url = `${gw.baseUrl}/subscription-notifications/default`;
    expect((await fhirFetch(url, { body, as: 'anonymous', headers: { 'x-subscription-secret': `${SECRET}x` } })).status).to.equal(401);
    expect((await fhirFetch(url, { body, as: 'anonymous', headers: { 'x-subscription-secret': SECRET.slice(0, -1) } })).status).to.equal(
      401,
    );
    expect((await fhirFetch(url, { body, as: 'anonymous' })).status).to.equal(401);
    expect(await referralCount(gw)).to.equal(0);
    const accepted = await fhirFetch(url, { body, as: 'anonymous', headers: { 'x-subscription-secret': SECRET } });
    expect(accepted.status, JSON.stringify(accepted.body)).to.equal(200);
    expect(await referralCount(gw)).to.equal(1);
  });
});
