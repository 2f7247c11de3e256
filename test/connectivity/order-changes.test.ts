/**
 * Orders that change after they are sent (docs/order-changes.md), end to end over real HTTP: a
 * tocilizumab order written to the stand-in EHR, pulled by the gateway, cleared by the stand-in
 * payer and booked at the Denver site; then the EHR revokes it, marks it in error, holds it (and
 * takes it off hold), or changes its drug, period or site. Each change reaches the gateway by pull
 * (the poll job's use case) and by push (an id-only Subscription notification); then the same
 * change is delivered again both ways. What must hold: the chairs are freed (chair_bookings), the
 * Appointments cancelled with the patient told, and the EHR told once (its received writes counted).
 */
import { expect } from 'chai';
import { randomUUID } from 'node:crypto';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { pollCursorName, pollEhrServiceRequests } from '../../src/intake/stories/poll-ehr.js';
import { reminderId, sendReminders } from '../../src/delivery/stories/send-reminders.js';
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
import { payerConnections } from '../support/referral-flow.js';
import { startStandInEhr, type StandInEhr } from '../../src/sandbox/stand-in-ehr.js';
import { startStandInPayer, type StandInPayer } from '../../src/sandbox/stand-in-payer.js';
import { stopEhrCheckingWrittenReferences } from '../support/written-references.js';
import { allInEhr } from './ehr-helpers.js';

const BASE = 'https://fhir.infusion-gateway.example';
const ORDER_CHANGE_REASON = `${BASE}/CodeSystem/order-change-reason`;
const APPOINTMENT_ID = `${BASE}/appointment-id`;
const REFERRAL_ID = `${BASE}/referral-id`;
const INFLIXIMAB = readFixture('referrals/infliximab/service-request.json').code;

type Delivery = 'pull' | 'push';
type Writes = Record<string, number>;

/** A webhook receiver for the patient's notices (the notifier's channel). */
async function startReceiver(): Promise<{ url: string; received: any[]; failNext(count: number): void; stop(): Promise<void> }> {
  const received: any[] = [];
  let failures = 0;
  const server = http.createServer((request, response) => {
    const chunks: Buffer[] = [];
    request.on('data', (chunk: Buffer) => chunks.push(chunk));
    request.on('end', () => {
      if (failures > 0) {
        failures -= 1;
        response.writeHead(503).end();
        return;
      }
      received.push(JSON.parse(Buffer.concat(chunks).toString('utf8')));
      response.writeHead(202).end();
    });
  });
  server.listen(0, '127.0.0.1');
  await new Promise<void>((resolve) => server.once('listening', () => resolve()));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}/notices`,
    received,
    failNext: (count) => (failures = count),
    stop: async () => {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

function notification(focus: string): unknown {
  return {
    resourceType: 'Bundle',
    type: 'history',
    timestamp: '2026-11-27T15:00:00Z',
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
            { name: 'type', valueCode: 'event-notification' },
            {
              name: 'notification-event',
              part: [
                { name: 'event-number', valueString: '1' },
                { name: 'focus', valueReference: { reference: focus } },
              ],
            },
          ],
        },
        request: { method: 'GET', url: 'Subscription/infusion-orders/$status' },
        response: { status: '200' },
      },
    ],
  };
}

for (const engine of ['sqlite', 'postgres'] as Engine[]) {
  describe(`orders that change after they are sent (${engine})`, function () {
    this.timeout(180_000);
    let payer: StandInPayer;
    let ehr: StandInEhr;
    let receiver: Awaited<ReturnType<typeof startReceiver>>;
    let gw: RunningGateway;
    let fhir: string;
    const clock = movableClock('2026-11-27T15:00:00Z');

    before(async () => {
      // Every member in force; tocilizumab at Sonoran Care needs no authorization.
      payer = await startStandInPayer({ defaultRule: {} });
      ehr = await startStandInEhr();
      receiver = await startReceiver();
      gw = await startGateway({
        engine,
        background: true,
        clock,
        env: {
          PAYER_CONNECTIONS: payerConnections(payer.baseUrl, ['payer-sonoran']),
          EHR_FHIR_BASE_URL: ehr.baseUrl,
          EHR_POLL: 'false',
          OUTBOX_POLL_MS: '25',
          NOTIFIER_WEBHOOK_URL: receiver.url,
          REMINDER_CRON: '0 0 3 1 1 *',
          NO_SHOW_CRON: '0 0 3 1 1 *',
          PRIOR_AUTH_INQUIRY_CRON: '0 0 3 1 1 *',
        },
      });
      fhir = `${gw.baseUrl}/fhir`;
    });
    after(async () => {
      await gw.stop();
      await receiver.stop();
      await payer.stop();
      // Everything written back resolves at the EHR, and the validating EHR refused none of it.
      await stopEhrCheckingWrittenReferences(ehr);
    });

    /** The gateway's writes the EHR took (2xx), by resource type: each upsert is one POST or PUT. */
    function ehrWrites(): Writes {
      const writes: Writes = {};
      for (const request of ehr.requests()) {
        if ((request.method !== 'POST' && request.method !== 'PUT') || request.status < 200 || request.status >= 300) continue;
        const type = request.path.split('/')[2] ?? '';
        if (type === 'ServiceRequest') continue; // the test, playing the EHR's clinicians
        writes[type] = (writes[type] ?? 0) + 1;
      }
      return writes;
    }
    const since = (before: Writes, after: Writes): Writes =>
      Object.fromEntries(
        Object.entries(after)
          .map(([type, n]) => [type, n - (before[type] ?? 0)])
          .filter(([, n]) => (n as number) > 0),
      );

    async function outboxSettled(): Promise<void> {
      await waitUntil('the outbox has delivered everything', async () => {
        const pending = (await fhirFetch(`${gw.baseUrl}/admin/outbox?status=pending&_count=0`)).body.total;
        const delivering = (await fhirFetch(`${gw.baseUrl}/admin/outbox?status=delivering&_count=0`)).body.total;
        return pending === 0 && delivering === 0;
      });
      expect((await fhirFetch(`${gw.baseUrl}/admin/outbox?status=dead&_count=0`)).body.total, 'dead letters').to.equal(0);
    }

    const poll = () => pollEhrServiceRequests(gw.gateway.deps, { tenant: 'default', ehr: gw.gateway.ehrClients.get('default')! });

    async function deliver(how: Delivery, ehrOrderId: string): Promise<string> {
      if (how === 'pull') {
        const result = await poll();
        return result.outcomes.changed > 0 ? 'changed' : result.outcomes.duplicate > 0 ? 'duplicate' : JSON.stringify(result.outcomes);
      }
      const response = await fhirFetch(`${gw.baseUrl}/subscription-notifications/default`, {
        as: { role: 'ehr', tenant: 'default' },
        body: notification(`${ehr.baseUrl}/ServiceRequest/${ehrOrderId}`),
      });
      expect(response.status, JSON.stringify(response.body)).to.equal(200);
      return response.body.issue
        .map((i: any) => i.diagnostics)
        .join(' ')
        .split(': ')
        .pop();
    }

    /** The same change delivered again, both ways (the poll from the start, cursor forgotten): nothing more is written. */
    async function deliverAgainChangesNothing(ehrOrderId: string): Promise<void> {
      const writes = ehrWrites();
      const messages = (await fhirFetch(`${gw.baseUrl}/admin/outbox?_count=0`)).body.total;
      await gw.gateway.deps.store.writeCursor(pollCursorName('default'), null, new Date());
      const pulled = await poll();
      expect(pulled.outcomes.changed, 'changes found when pulled again').to.equal(0);
      expect(await deliver('push', ehrOrderId)).to.equal('duplicate');
      await outboxSettled();
      expect((await fhirFetch(`${gw.baseUrl}/admin/outbox?_count=0`)).body.total, 'outbox messages after the same change again').to.equal(
        messages,
      );
      expect(since(writes, ehrWrites()), 'EHR writes after the same change again').to.deep.equal({});
    }

    /** An order in the EHR, pulled, cleared by the payer and booked at its first slot. */
    async function bookedFromEhr(
      label: string,
    ): Promise<{ ehrOrderId: string; serviceRequestId: string; taskId: string; referralId: string; appointment: any }> {
      const order = withOrderNumber(readFixture('referrals/tocilizumab/service-request.json'), `${label}-${randomUUID()}`);
      const created = await fhirFetch(`${ehr.baseUrl}/ServiceRequest`, { body: order });
      expect(created.status).to.equal(201);
      expect((await poll()).outcomes.accepted).to.equal(1);
      const placer = order.identifier[0];
      const serviceRequestId = (
        await fhirFetch(`${fhir}/ServiceRequest?identifier=${encodeURIComponent(`${placer.system}|${placer.value}`)}`)
      ).body.entry[0].resource.id;
      const task = (await fhirFetch(`${fhir}/Task?focus=ServiceRequest/${serviceRequestId}`)).body.entry[0].resource;
      await waitUntil(
        'the referral is ready to schedule',
        async () => businessStatusOf((await fhirFetch(`${fhir}/Task/${task.id}`)).body) === 'ready-to-schedule',
      );
      const found = await fhirFetch(`${fhir}/Appointment/$find?referral=ServiceRequest/${serviceRequestId}&_count=1`);
      expect(found.status, JSON.stringify(found.body?.issue)).to.equal(200);
      const booked = await fhirFetch(`${fhir}/Appointment/$book`, {
        body: { resourceType: 'Parameters', parameter: [{ name: 'appt-resource', resource: found.body.entry[0].resource }] },
      });
      expect(booked.status, JSON.stringify(booked.body?.issue)).to.equal(201);
      expect(await gw.gateway.deps.store.readChairBooking(booked.body.id), 'the chair is booked').to.not.equal(undefined);
      await outboxSettled();
      const referralId = task.identifier.find((i: any) => i.system === REFERRAL_ID).value;
      return { ehrOrderId: created.body.id, serviceRequestId, taskId: task.id, referralId, appointment: booked.body };
    }

    async function changeInEhr(ehrOrderId: string, change: (order: any) => void): Promise<void> {
      const order = (await fhirFetch(`${ehr.baseUrl}/ServiceRequest/${ehrOrderId}`)).body;
      change(order);
      const updated = await fhirFetch(`${ehr.baseUrl}/ServiceRequest/${ehrOrderId}`, { method: 'PUT', body: order });
      expect(updated.status, JSON.stringify(updated.body)).to.equal(200);
    }

    /** The visit is cancelled with the reason, its chair freed, the EHR's copy cancelled, and the patient told. */
    async function visitCancelled(booked: { appointment: any; referralId: string }, reasonCode: string): Promise<void> {
      const appointment = (await fhirFetch(`${fhir}/Appointment/${booked.appointment.id}`)).body;
      expect(appointment.status).to.equal('cancelled');
      expect(appointment.cancelationReason.coding[0]).to.include({ system: ORDER_CHANGE_REASON, code: reasonCode });
      expect(await gw.gateway.deps.store.readChairBooking(booked.appointment.id), 'chair_bookings row').to.equal(undefined);
      const inEhr = (await allInEhr(ehr.baseUrl, 'Appointment')).filter((a) =>
        a.identifier?.some((i: any) => i.system === APPOINTMENT_ID && i.value === booked.appointment.id),
      );
      expect(inEhr.map((a) => a.status)).to.deep.equal(['cancelled']);
      const notices = (await allInEhr(ehr.baseUrl, 'Communication')).filter(
        (c) => c.about?.[0]?.identifier?.value === booked.appointment.id && c.category?.[0]?.coding?.[0]?.code === 'notification',
      );
      expect(
        notices.map((c) => c.status),
        'the notice in the EHR',
      ).to.deep.equal(['completed']);
      expect(
        receiver.received.some(
          (c) => c.about?.[0]?.reference === `Appointment/${booked.appointment.id}` && /is cancelled/.test(c.payload[0].contentString),
        ),
      ).to.equal(true);
    }

    async function ehrTask(referralId: string): Promise<any> {
      const tasks = (await allInEhr(ehr.baseUrl, 'Task')).filter((t) =>
        t.identifier?.some((i: any) => i.system === REFERRAL_ID && i.value === referralId),
      );
      expect(tasks).to.have.length(1);
      return tasks[0];
    }

    for (const how of ['pull', 'push'] as Delivery[]) {
      for (const [status, reason] of [
        ['revoked', 'order-revoked'],
        ['entered-in-error', 'order-entered-in-error'],
      ] as const) {
        it(`stops the referral when the EHR marks the order ${status} (${how}): chair freed, visit cancelled, patient told, the EHR told once`, async () => {
          const booked = await bookedFromEhr(`${status}-${how}`);
          const writes = ehrWrites();
          await changeInEhr(booked.ehrOrderId, (order) => (order.status = status));
          expect(await deliver(how, booked.ehrOrderId)).to.equal('changed');
          await outboxSettled();

          const task = (await fhirFetch(`${fhir}/Task/${booked.taskId}`)).body;
          expect([task.status, businessStatusOf(task), task.statusReason.coding[0].code]).to.deep.equal(['cancelled', 'cancelled', reason]);
          await visitCancelled(booked, reason);
          expect(since(writes, ehrWrites())).to.deep.equal({ Task: 1, Appointment: 1, Communication: 1 });
          const inEhr = await ehrTask(booked.referralId);
          expect([inEhr.status, inEhr.statusReason.coding[0].code]).to.deep.equal(['cancelled', reason]);
          // The order's versions are kept: as taken, then as the EHR changed it.
          const history = (await fhirFetch(`${fhir}/ServiceRequest/${booked.serviceRequestId}/_history`)).body;
          expect(history.entry.map((e: any) => e.resource.status)).to.deep.equal([status, 'active']);
          await deliverAgainChangesNothing(booked.ehrOrderId);
        });
      }

      it(`holds the referral while the order is on hold and resumes it when it is active again (${how})`, async () => {
        const booked = await bookedFromEhr(`hold-${how}`);
        let writes = ehrWrites();
        await changeInEhr(booked.ehrOrderId, (order) => (order.status = 'on-hold'));
        expect(await deliver(how, booked.ehrOrderId)).to.equal('changed');
        await outboxSettled();
        const held = (await fhirFetch(`${fhir}/Task/${booked.taskId}`)).body;
        expect([held.status, businessStatusOf(held), held.statusReason.coding[0].code]).to.deep.equal([
          'on-hold',
          'ready-to-schedule',
          'order-on-hold',
        ]);
        await visitCancelled(booked, 'order-on-hold');
        expect(since(writes, ehrWrites())).to.deep.equal({ Task: 1, Appointment: 1, Communication: 1 });
        expect((await ehrTask(booked.referralId)).status).to.equal('on-hold');
        // Nothing is booked while the order is held.
        const refused = await fhirFetch(`${fhir}/Appointment/$find?referral=ServiceRequest/${booked.serviceRequestId}&_count=1`);
        expect(refused.status).to.equal(422);
        expect(refused.body.issue[0].diagnostics).to.contain('on hold');
        await deliverAgainChangesNothing(booked.ehrOrderId);

        writes = ehrWrites();
        await changeInEhr(booked.ehrOrderId, (order) => (order.status = 'active'));
        expect(await deliver(how, booked.ehrOrderId)).to.equal('changed');
        await outboxSettled();
        const resumed = (await fhirFetch(`${fhir}/Task/${booked.taskId}`)).body;
        expect([resumed.status, businessStatusOf(resumed), resumed.statusReason]).to.deep.equal([
          'accepted',
          'ready-to-schedule',
          undefined,
        ]);
        expect(since(writes, ehrWrites())).to.deep.equal({ Task: 1 });
        expect((await ehrTask(booked.referralId)).status).to.equal('accepted');
        const again = await fhirFetch(`${fhir}/Appointment/$find?referral=ServiceRequest/${booked.serviceRequestId}&_count=1`);
        expect(again.status, JSON.stringify(again.body?.issue)).to.equal(200);
        await deliverAgainChangesNothing(booked.ehrOrderId);
      });

      const changes: Array<[string, (order: any) => void, string]> = [
        ['drug', (order) => (order.code = INFLIXIMAB), 'coverage'],
        ['period', (order) => (order.occurrenceTiming.repeat.boundsPeriod = { start: '2026-12-09', end: '2027-06-30' }), 'coverage'],
        [
          'site',
          (order) =>
            (order.locationReference = [
              { reference: 'Location/hin-phoenix-camelback', display: 'Harbor Infusion Center - Phoenix Camelback' },
            ]),
          'site',
        ],
      ];
      for (const [part, change, step] of changes) {
        it(`re-checks an order whose ${part} changed from the ${step} step, keeping the history (${how})`, async () => {
          const booked = await bookedFromEhr(`${part}-${how}`);
          const writes = ehrWrites();
          await changeInEhr(booked.ehrOrderId, change);
          expect(await deliver(how, booked.ehrOrderId)).to.equal('changed');
          await waitUntil(
            'the step ran again',
            async () => businessStatusOf((await fhirFetch(`${fhir}/Task/${booked.taskId}`)).body) !== 'verifying-coverage',
          );
          await outboxSettled();

          await visitCancelled(booked, 'order-changed');
          const task = (await fhirFetch(`${fhir}/Task/${booked.taskId}`)).body;
          const versions = (await fhirFetch(`${fhir}/Task/${booked.taskId}/_history`)).body.entry.map((e: any) =>
            businessStatusOf(e.resource),
          );
          if (step === 'coverage') {
            // Back through the coverage step (the payer asked again), then cleared for the changed order.
            expect(versions.slice(0, 2)).to.deep.equal(['ready-to-schedule', 'verifying-coverage']);
            expect(businessStatusOf(task)).to.equal('ready-to-schedule');
          } else {
            // The site check ran on the new site: Phoenix is far from a Denver patient with Denver near.
            expect(businessStatusOf(task)).to.equal('misroute-suspected');
            expect(task.statusReason.coding[0].code).to.equal('too-far');
          }
          expect(versions).to.include('scheduled');
          const changedWrites = since(writes, ehrWrites());
          expect(changedWrites).to.include({ Appointment: 1, Communication: 1 });
          expect(changedWrites['Task']).to.be.at.least(1);
          const history = (await fhirFetch(`${fhir}/ServiceRequest/${booked.serviceRequestId}/_history`)).body.entry.map(
            (e: any) => e.resource,
          );
          expect(history).to.have.length(2);
          if (part === 'drug') expect(history.map((r: any) => r.code.coding[0].code)).to.deep.equal(['191831', '612865']);
          await deliverAgainChangesNothing(booked.ehrOrderId);
        });
      }
    }

    it('gives a referral held for a reason of its own (a misroute to confirm) that reason back when the order resumes', async () => {
      const booked = await bookedFromEhr('misroute-hold');
      await changeInEhr(booked.ehrOrderId, (order) => (order.locationReference = [{ reference: 'Location/hin-phoenix-camelback' }]));
      expect(await deliver('pull', booked.ehrOrderId)).to.equal('changed');
      const misrouted = (await fhirFetch(`${fhir}/Task/${booked.taskId}`)).body;
      expect([misrouted.status, businessStatusOf(misrouted), misrouted.statusReason.coding[0].code]).to.deep.equal([
        'on-hold',
        'misroute-suspected',
        'too-far',
      ]);
      await changeInEhr(booked.ehrOrderId, (order) => (order.status = 'on-hold'));
      expect(await deliver('pull', booked.ehrOrderId)).to.equal('changed');
      expect((await fhirFetch(`${fhir}/Task/${booked.taskId}`)).body.statusReason.coding[0].code).to.equal('order-on-hold');
      await changeInEhr(booked.ehrOrderId, (order) => (order.status = 'active'));
      expect(await deliver('push', booked.ehrOrderId)).to.equal('changed');
      const resumed = (await fhirFetch(`${fhir}/Task/${booked.taskId}`)).body;
      expect([resumed.status, businessStatusOf(resumed), resumed.statusReason]).to.deep.equal([
        'on-hold',
        'misroute-suspected',
        misrouted.statusReason,
      ]);
      await outboxSettled();
    });

    it('follows a change pulled and pushed at the same instant once', async () => {
      const booked = await bookedFromEhr('both-at-once');
      const writes = ehrWrites();
      await changeInEhr(booked.ehrOrderId, (order) => (order.status = 'revoked'));
      const outcomes = await Promise.all([deliver('pull', booked.ehrOrderId), deliver('push', booked.ehrOrderId)]);
      expect([...outcomes].sort()).to.deep.equal(['changed', 'duplicate']);
      await outboxSettled();
      await visitCancelled(booked, 'order-revoked');
      expect(since(writes, ehrWrites())).to.deep.equal({ Task: 1, Appointment: 1, Communication: 1 });
      expect(receiver.received.filter((c) => c.about?.[0]?.reference === `Appointment/${booked.appointment.id}`)).to.have.length(1);
    });

    it("closes the referral's open sub-Tasks when the order ends (a reschedule Task after a no-show), written back once", async () => {
      const booked = await bookedFromEhr('subtasks');
      const stored = (await fhirFetch(`${fhir}/Appointment/${booked.appointment.id}`)).body;
      const missed = await fhirFetch(`${fhir}/Appointment/${booked.appointment.id}`, {
        method: 'PUT',
        body: { ...stored, status: 'noshow' },
      });
      expect(missed.status, JSON.stringify(missed.body)).to.equal(200);
      const reschedule = (await fhirFetch(`${fhir}/Task?part-of=Task/${booked.taskId}`)).body.entry[0].resource;
      expect(reschedule.status).to.equal('ready');
      await outboxSettled();
      const writes = ehrWrites();
      await changeInEhr(booked.ehrOrderId, (order) => (order.status = 'revoked'));
      expect(await deliver('pull', booked.ehrOrderId)).to.equal('changed');
      await outboxSettled();
      const closed = (await fhirFetch(`${fhir}/Task/${reschedule.id}`)).body;
      expect([closed.status, closed.statusReason.coding[0].code]).to.deep.equal(['cancelled', 'order-revoked']);
      // The referral Task and the reschedule Task, nothing else (the missed visit was already released).
      expect(since(writes, ehrWrites())).to.deep.equal({ Task: 2 });
      const inEhr = (await allInEhr(ehr.baseUrl, 'Task')).filter((t) =>
        t.identifier?.some((i: any) => i.value === reschedule.identifier[0].value && i.system === reschedule.identifier[0].system),
      );
      expect(inEhr.map((t) => t.status)).to.deep.equal(['cancelled']);
      await deliverAgainChangesNothing(booked.ehrOrderId);
    });

    it('follows a PUT of the order to the gateway, and refuses a changed order number', async () => {
      const order = withOrderNumber(readFixture('referrals/tocilizumab/service-request.json'), `put-${randomUUID()}`);
      const created = await fhirFetch(`${fhir}/ServiceRequest`, { body: order });
      expect(created.status).to.equal(201);
      const task = (await fhirFetch(`${fhir}/Task?focus=ServiceRequest/${created.body.id}`)).body.entry[0].resource;
      await waitUntil(
        'the referral is ready to schedule',
        async () => businessStatusOf((await fhirFetch(`${fhir}/Task/${task.id}`)).body) === 'ready-to-schedule',
      );
      await outboxSettled();
      const renumbered = structuredClone(created.body);
      renumbered.identifier[0].value = `other-${randomUUID()}`;
      expect((await fhirFetch(`${fhir}/ServiceRequest/${created.body.id}`, { method: 'PUT', body: renumbered })).status).to.equal(422);
      const same = await fhirFetch(`${fhir}/ServiceRequest/${created.body.id}`, { method: 'PUT', body: created.body });
      expect([same.status, same.body.meta.versionId]).to.deep.equal([200, '1']);

      const writes = ehrWrites();
      const revoked = await fhirFetch(`${fhir}/ServiceRequest/${created.body.id}`, {
        method: 'PUT',
        body: { ...created.body, status: 'revoked' },
      });
      expect(revoked.status, JSON.stringify(revoked.body)).to.equal(200);
      expect([revoked.body.status, revoked.body.meta.versionId]).to.deep.equal(['revoked', '2']);
      await outboxSettled();
      const stopped = (await fhirFetch(`${fhir}/Task/${task.id}`)).body;
      expect([stopped.status, stopped.statusReason.coding[0].code]).to.deep.equal(['cancelled', 'order-revoked']);
      expect(since(writes, ehrWrites())).to.deep.equal({ Task: 1 });
      // Revoked ends the order: it does not come back.
      const back = await fhirFetch(`${fhir}/ServiceRequest/${created.body.id}`, {
        method: 'PUT',
        body: { ...created.body, status: 'active' },
      });
      expect(back.status).to.equal(422);
      expect(back.body.issue[0].diagnostics).to.contain('revoked');
    });

    it("withdraws the reminder of a cancelled visit that was waiting for a retry, with the order's reason", async () => {
      const booked = await bookedFromEhr('reminder');
      try {
        // 72 hours before the visit the webhook refuses once: the reminder waits for a retry.
        clock.set(new Date(new Date(booked.appointment.start).getTime() - 70 * 3_600_000).toISOString());
        receiver.failNext(1);
        expect(await sendReminders(gw.gateway.deps)).to.include({ sent: 0, failed: 1 });
        const id = reminderId(booked.appointment.id, 72, new Date(booked.appointment.start));
        expect((await gw.gateway.deps.store.read<any>(['default'], 'Communication', id)).status).to.equal('in-progress');
        await changeInEhr(booked.ehrOrderId, (order) => (order.status = 'revoked'));
        expect(await deliver('push', booked.ehrOrderId)).to.equal('changed');
        const withdrawn = await gw.gateway.deps.store.read<any>(['default'], 'Communication', id);
        expect([withdrawn.status, withdrawn.statusReason.coding[0].code]).to.deep.equal(['not-done', 'order-revoked']);
        expect(await sendReminders(gw.gateway.deps)).to.include({ sent: 0, failed: 0 });
        await outboxSettled();
        const inEhr = (await allInEhr(ehr.baseUrl, 'Communication')).filter(
          (c) => c.category?.[0]?.coding?.[0]?.code === 'reminder' && c.about?.[0]?.identifier?.value === booked.appointment.id,
        );
        expect(inEhr.map((c) => [c.status, c.statusReason?.coding?.[0]?.code])).to.deep.equal([['not-done', 'order-revoked']]);
      } finally {
        clock.set('2026-11-27T15:00:00Z');
      }
    });
  });
}
