/**
 * The audit trail over real HTTP on both engines (docs/audit.md): a referral's whole path (intake,
 * site confirmation, coverage, booking) found through the operator's search, with references and
 * parameter names only; a refused write leaves no success AuditEvent and nothing partial; only
 * operators search; unknown parameters are refused with their expression.
 */
import { expect } from 'chai';
import Database from 'better-sqlite3';
import { randomUUID } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import pg from 'pg';
import { TEST_DATABASE_URL } from '../support/postgres.js';
import { readFixture, withOrderNumber } from '../support/fixtures.js';
import {
  businessStatusOf,
  fhirFetch,
  movableClock,
  startGateway,
  waitUntil,
  type Engine,
  type RunningGateway,
} from '../support/gateway.js';
import { purgeExpiredAuditEvents } from '../../src/audit/stories/purge-audit-trail.js';
import { phiMarkers } from '../support/phi.js';
import { payerConnections } from '../support/referral-flow.js';
import { startStandInPayer, type StandInPayer } from '../../src/sandbox/stand-in-payer.js';
import { clientIdOf } from '../support/test-clients.js';
import { demoHookAuthorization } from '../support/cds-client.js';

const OPERATOR = { role: 'operator' as const };
const COORDINATOR = { role: 'coordinator' as const, tenant: 'default' };
const EHR = { role: 'ehr' as const, tenant: 'default' };

/** Every AuditEvent the operator's search finds, following next links. */
async function auditEvents(fhir: string, query: string): Promise<any[]> {
  const events: any[] = [];
  let url: string | undefined = `${fhir}/AuditEvent?${query}`;
  while (url !== undefined) {
    const page = await fhirFetch(url, { as: OPERATOR });
    expect(page.status, JSON.stringify(page.body)).to.equal(200);
    expect(page.body.type).to.equal('searchset');
    events.push(...(page.body.entry ?? []).map((e: any) => e.resource));
    url = page.body.link.find((l: any) => l.relation === 'next')?.url;
  }
  return events;
}

/**
 * Reads, searches and refusals are recorded once the answer is sent (docs/audit.md): the test
 * waits until the search finds what it looks for.
 */
async function auditEventsOnceThere(fhir: string, query: string, there: (events: any[]) => boolean): Promise<any[]> {
  let events: any[] = [];
  await waitUntil(`the AuditEvents of ${query}`, async () => there((events = await auditEvents(fhir, query))));
  return events;
}

const subtypesOf = (events: any[]): string[] => events.map((e) => e.subtype.map((s: any) => s.code).join(' '));

for (const engine of ['sqlite', 'postgres'] as Engine[]) {
  describe(`audit trail (${engine})`, function () {
    this.timeout(120_000);
    let payer: StandInPayer;
    let gw: RunningGateway;
    let fhir: string;

    before(async () => {
      payer = await startStandInPayer({ defaultRule: {} });
      gw = await startGateway({
        engine,
        background: true,
        env: { PAYER_CONNECTIONS: payerConnections(payer.baseUrl), OUTBOX_POLL_MS: '25', EHR_POLL: 'false' },
      });
      fhir = `${gw.baseUrl}/fhir`;
    });
    after(async () => {
      await gw.stop();
      await payer.stop();
    });

    it("records a referral's whole path, found by entity, agent and date, with no PHI", async () => {
      const started = new Date(Date.now() - 1000).toISOString();
      const body = withOrderNumber(
        readFixture('site-check/seed-000-practice-address-patient-choice/service-request.json'),
        `audit-${randomUUID()}`,
      );
      const created = await fhirFetch(`${fhir}/ServiceRequest`, { as: EHR, body });
      expect(created.status, JSON.stringify(created.body)).to.equal(201);
      const serviceRequest = `ServiceRequest/${created.body.id}`;
      const tasks = await fhirFetch(`${fhir}/Task?focus=${serviceRequest}&status=on-hold`, { as: EHR });
      const taskId = tasks.body.entry[0].resource.id;
      await waitUntil(
        'the referral is held for its site',
        async () => businessStatusOf((await fhirFetch(`${fhir}/Task/${taskId}`, { as: COORDINATOR })).body) === 'misroute-suspected',
      );
      const confirmed = await fhirFetch(`${fhir}/Task/${taskId}/$confirm-site`, {
        as: COORDINATOR,
        body: {
          resourceType: 'Parameters',
          parameter: [{ name: 'location', valueReference: { reference: 'Location/hin-nashville-green-hills' } }],
        },
      });
      expect(confirmed.status, JSON.stringify(confirmed.body)).to.equal(200);
      await waitUntil(
        'coverage cleared the referral',
        async () => businessStatusOf((await fhirFetch(`${fhir}/Task/${taskId}`, { as: COORDINATOR })).body) === 'ready-to-schedule',
      );
      const found = await fhirFetch(`${fhir}/Appointment/$find?referral=${serviceRequest}&_count=1`, { as: COORDINATOR });
      expect(found.status, JSON.stringify(found.body)).to.equal(200);
      const booked = await fhirFetch(`${fhir}/Appointment/$book`, {
        as: COORDINATOR,
        body: { resourceType: 'Parameters', parameter: [{ name: 'appt-resource', resource: found.body.entry[0].resource }] },
      });
      expect(booked.status, JSON.stringify(booked.body)).to.equal(201);

      // The operator finds the path by the referral and by the Task, newest first, two at a time.
      const byReferral = await auditEventsOnceThere(fhir, `entity=${serviceRequest}&date=ge${started}&_count=2`, (found) =>
        found.some((e) => e.subtype.some((s: any) => s.code === '$find')),
      );
      const byTask = await auditEvents(fhir, `entity=Task/${taskId}`);
      const all = [...new Map([...byReferral, ...byTask].map((e) => [e.id, e])).values()];
      const subtypes = subtypesOf(all);
      // Intake (a create, in its own transaction), the reads and searches, the site confirmation,
      // the coverage step (the gateway itself), $find and $book.
      expect(subtypes).to.include('create');
      expect(subtypes).to.include('search-type');
      expect(subtypes).to.include('read');
      expect(subtypes).to.include('operation $confirm-site');
      expect(subtypes).to.include('operation $find');
      expect(subtypes).to.include('operation $book');
      const intake = all.find((e) => e.subtype[0].code === 'create' && e.entity.some((x: any) => x.what?.reference === serviceRequest));
      expect(intake.action).to.equal('C');
      expect(intake.outcome).to.equal('0');
      expect(intake.agent[0].who.identifier.value).to.equal(clientIdOf('ehr', 'default'));
      expect(intake.agent[0].role[0].coding[0].code).to.equal('ehr');
      expect(intake.source.observer.display).to.equal('infusion-gateway');
      const confirmation = all.find((e) => e.subtype.some((s: any) => s.code === '$confirm-site'));
      expect(confirmation.action).to.equal('U');
      expect(confirmation.agent[0].who.identifier.value).to.equal(clientIdOf('coordinator', 'default'));
      const coverage = all.filter((e) => e.agent[0].role[0].coding[0].code === 'gateway');
      expect(coverage.length, 'the coverage step, by the gateway itself').to.be.greaterThan(0);
      // Newest first.
      const recorded = byReferral.map((e) => e.recorded);
      expect(recorded).to.deep.equal([...recorded].sort((a: string, b: string) => b.localeCompare(a)));
      // A search records its type and parameter names, never their values.
      const search = all.find((e) => e.subtype[0].code === 'search-type');
      const query = search.entity.find((x: any) => x.role?.code === '24');
      expect(Buffer.from(query.query, 'base64').toString('utf8')).to.equal('Task?focus&status');

      // By agent: the coordinator's own events.
      const coordinatorEvents = await auditEvents(fhir, `agent=${clientIdOf('coordinator', 'default')}&date=ge${started}`);
      expect(coordinatorEvents.length).to.be.greaterThan(0);
      expect(coordinatorEvents.every((e) => e.agent[0].who.identifier.value === clientIdOf('coordinator', 'default'))).to.equal(true);
      // A date range before the path finds none of it.
      expect(await auditEvents(fhir, `entity=${serviceRequest}&date=lt${started}`)).to.deep.equal([]);
      // Read one by id.
      const one = await fhirFetch(`${fhir}/AuditEvent/${intake.id}`, { as: OPERATOR });
      expect(one.status).to.equal(200);
      expect(one.body.id).to.equal(intake.id);

      const text = JSON.stringify(all);
      const leaked = phiMarkers().filter((marker) => text.toLowerCase().includes(marker.toLowerCase()));
      expect(leaked).to.deep.equal([]);
    });

    it('records a refused write as a failure, with no success event and nothing stored', async () => {
      const orderNumber = `audit-refused-${randomUUID()}`;
      const body = withOrderNumber(readFixture('referrals/infliximab/service-request.json'), orderNumber) as any;
      body.subject = { reference: 'Patient/not-there' };
      delete body.contained;
      body.status = 'not-a-status';
      const refused = await fhirFetch(`${fhir}/ServiceRequest`, { as: { role: 'ehr', tenant: 'tenant-a' }, body });
      expect(refused.status).to.be.within(400, 499);
      const events = await auditEventsOnceThere(fhir, `agent=${clientIdOf('ehr', 'tenant-a')}`, (found) =>
        found.some((e) => e.subtype[0].code === 'create'),
      );
      expect(events.filter((e) => e.outcome === '0')).to.deep.equal([]);
      const failure = events.find((e) => e.subtype[0].code === 'create');
      expect(failure.outcome).to.equal('4');
      expect(failure.action).to.equal('C');
      const stored = await fhirFetch(`${fhir}/ServiceRequest?identifier=${encodeURIComponent(orderNumber)}`, {
        as: { role: 'ehr', tenant: 'tenant-a' },
      });
      expect(stored.body.entry ?? []).to.deep.equal([]);
    });

    it('records a CDS Hooks call with the EHR issuer as agent and the patient by reference; an unsigned call as refused', async () => {
      const serviceUrl = `${gw.baseUrl}/cds-services/infusion-site-check`;
      const answer = await fhirFetch(serviceUrl, {
        body: readFixture('cds-hooks/order-sign-misroute.json'),
        headers: await demoHookAuthorization(serviceUrl),
      });
      expect(answer.status).to.equal(200);
      const events = await auditEventsOnceThere(fhir, 'entity=Patient/cds-patient-ms', (found) => found.length === 1);
      expect(events[0].agent[0].role[0].coding[0].code).to.equal('cds-client');
      expect(events[0].subtype.map((s: any) => s.code)).to.deep.equal(['operation', 'POST /cds-services/:id']);
      expect(events[0].outcome).to.equal('0');
      const unsigned = await fhirFetch(serviceUrl, { body: readFixture('cds-hooks/order-sign-good.json'), as: 'anonymous' });
      expect(unsigned.status).to.equal(401);
      const refused = await auditEventsOnceThere(fhir, 'agent=anonymous', (found) =>
        found.some((e) => e.subtype[1]?.code === 'POST /cds-services/:id'),
      );
      expect(refused.find((e) => e.subtype[1]?.code === 'POST /cds-services/:id').outcome).to.equal('4');
    });

    it('lets operators alone search, and refuses unknown parameters with their expression', async () => {
      for (const caller of [EHR, COORDINATOR, { role: 'payer' as const, payer: 'payer-sonoran' }]) {
        const answer = await fhirFetch(`${fhir}/AuditEvent`, { as: caller });
        expect(answer.status, caller.role).to.equal(403);
      }
      expect((await fhirFetch(`${fhir}/AuditEvent`, { as: 'anonymous' })).status).to.equal(401);
      const metadata = await fhirFetch(`${fhir}/metadata`, { as: 'anonymous' });
      const declared = metadata.body.rest[0].resource.find((r: any) => r.type === 'AuditEvent');
      expect(declared.interaction.map((i: any) => i.code)).to.deep.equal(['read', 'search-type']);
      expect(declared.searchParam.map((p: any) => p.name)).to.deep.equal(['agent', 'entity', 'date']);
      const refused = await fhirFetch(`${fhir}/AuditEvent?name=Smith&entity=not%20a%20reference&date=yesterday`, { as: OPERATOR });
      expect(refused.status).to.equal(400);
      expect(refused.body.issue.map((i: any) => i.expression[0]).sort()).to.deep.equal(['date', 'entity', 'name']);
      // The refusals were recorded, without the query's values.
      const refusals = await auditEventsOnceThere(fhir, `agent=${clientIdOf('ehr', 'default')}`, (found) =>
        found.some((e) => e.subtype[0].code === 'search-type' && e.outcome === '4'),
      );
      expect(refusals.find((e) => e.subtype[0].code === 'search-type' && e.outcome === '4').entity[0].description).to.equal('AuditEvent');
      const operatorEvents = JSON.stringify(
        await auditEventsOnceThere(fhir, `agent=${clientIdOf('operator')}`, (found) => found.some((e) => e.outcome === '4')),
      );
      expect(operatorEvents).to.not.include('Smith');
      expect(operatorEvents).to.not.include('yesterday');
    });
  });
}

for (const engine of ['sqlite', 'postgres'] as Engine[]) {
  describe(`audit trail retention (${engine})`, function () {
    this.timeout(60_000);
    let gw: RunningGateway | undefined;
    afterEach(async () => {
      await gw?.stop();
      gw = undefined;
    });

    it('the purge job removes only the events older than AUDIT_RETENTION_DAYS, and records that it ran', async () => {
      const clock = movableClock('2026-01-10T12:00:00Z');
      // The purge job every second; the other jobs not during this test.
      const quiet = '0 0 3 1 1 *';
      gw = await startGateway({
        engine,
        clock,
        background: true,
        env: {
          AUDIT_RETENTION_DAYS: '30',
          AUDIT_PURGE_CRON: '* * * * * *',
          REMINDER_CRON: quiet,
          NO_SHOW_CRON: quiet,
          PRIOR_AUTH_INQUIRY_CRON: quiet,
          EHR_POLL: 'false',
        },
      });
      const fhir = `${gw.baseUrl}/fhir`;
      const old = await fhirFetch(`${fhir}/ServiceRequest/old-one`, { as: EHR });
      expect(old.status).to.equal(404);
      await auditEventsOnceThere(fhir, 'entity=ServiceRequest/old-one', (found) => found.length === 1);
      // 31 days later the first read is past retention; a read of now is not.
      clock.set('2026-02-10T12:00:00Z');
      expect((await fhirFetch(`${fhir}/ServiceRequest/new-one`, { as: EHR })).status).to.equal(404);
      await auditEventsOnceThere(fhir, 'entity=ServiceRequest/old-one', (found) => found.length === 0);
      const kept = await auditEventsOnceThere(fhir, 'entity=ServiceRequest/new-one', (found) => found.length === 1);
      expect(kept[0].recorded).to.equal('2026-02-10T12:00:00.000Z');
      const purges = await auditEventsOnceThere(fhir, 'agent=infusion-gateway', (found) => found.some((e) => e.action === 'D'));
      expect(purges.find((e) => e.action === 'D').subtype[0].code).to.equal('audit-retention');
    });

    it('is append-only in the database: an UPDATE of either table is refused, whoever sends it', async () => {
      const dir = await mkdtemp(path.join(os.tmpdir(), 'audit-append-only-'));
      const sqliteFile = path.join(dir, 'gateway.sqlite');
      gw = await startGateway({ engine, sqliteFile });
      const fhir = `${gw.baseUrl}/fhir`;
      await fhirFetch(`${fhir}/Task/append-only`, { as: COORDINATOR });
      await auditEventsOnceThere(fhir, 'entity=Task/append-only', (found) => found.length === 1);
      const statements = ["update audit_events set agent_who = 'someone-else'", "update audit_event_entities set reference = 'Task/other'"];
      if (engine === 'postgres') {
        const client = new pg.Client({ connectionString: TEST_DATABASE_URL });
        await client.connect();
        try {
          await client.query(`set search_path to "${gw.postgresSchema!}"`);
          for (const statement of statements) {
            const refused = await client.query(statement).then(
              () => undefined,
              (error: Error) => error.message,
            );
            expect(refused, statement).to.match(/append-only/);
          }
        } finally {
          await client.end();
        }
      } else {
        const db = new Database(sqliteFile);
        try {
          for (const statement of statements) expect(() => db.prepare(statement).run(), statement).to.throw(/append-only/);
        } finally {
          db.close();
        }
      }
      const still = await auditEvents(fhir, 'entity=Task/append-only');
      expect(still[0].agent[0].who.identifier.value).to.equal(clientIdOf('coordinator', 'default'));
      await rm(dir, { recursive: true, force: true });
    });

    it('computes the cutoff from the clock it is given', async () => {
      const clock = movableClock('2026-03-01T00:00:00Z');
      gw = await startGateway({ engine, clock });
      const fhir = `${gw.baseUrl}/fhir`;
      await fhirFetch(`${fhir}/Task/a-day-old`, { as: COORDINATOR });
      await auditEventsOnceThere(fhir, 'entity=Task/a-day-old', (found) => found.length === 1);
      const store = gw.gateway.deps.store;
      // One day's retention, a day and a millisecond later: gone; exactly a day later: kept.
      expect((await purgeExpiredAuditEvents(store, { now: new Date('2026-03-02T00:00:00.000Z'), retentionDays: 1 })).purged).to.equal(0);
      expect(
        (await purgeExpiredAuditEvents(store, { now: new Date('2026-03-02T00:00:00.001Z'), retentionDays: 1 })).purged,
      ).to.be.greaterThan(0);
      expect(await auditEvents(fhir, 'entity=Task/a-day-old')).to.deep.equal([]);
    });
  });
}
