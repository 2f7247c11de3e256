/**
 * Reminders end to end, with literal dates and a clock the test moves: a tocilizumab referral
 * cleared by the stand-in payer (no prior authorization for Sonoran Care), booked over HTTP at
 * the Denver site, reminded by the node-cron job (REMINDER_CRON every second) through the webhook
 * notifier to a receiver on 127.0.0.1 that records what it gets.
 */
import { expect } from 'chai';
import { bookFirstSlot, payerConnections } from '../support/referral-flow.js';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { readFixture, withOrderNumber } from '../support/fixtures.js';
import { fhirFetch, startGateway, waitUntil, type RunningGateway, movableClock } from '../support/gateway.js';
import { startStandInEhr, type StandInEhr } from '../../src/sandbox/stand-in-ehr.js';
import { startStandInPayer, type StandInPayer } from '../../src/sandbox/stand-in-payer.js';
import { stopEhrCheckingWrittenReferences } from '../support/written-references.js';
import { reminderId, sendReminders } from '../../src/delivery/stories/send-reminders.js';
import { allInEhr } from '../connectivity/ehr-helpers.js';

const REMINDER_ID = 'https://fhir.infusion-gateway.example/reminder-id';
/** The first Denver slot after the order's start (2026-12-02), in Mountain time. */
const FIRST_SLOT_TEXT = 'Wednesday, December 2, 2026 at 7:00 AM MST';

interface Delivery {
  status: number;
  idempotencyKey: string | undefined;
  body: any;
}

/** A webhook receiver: records every POST, and answers 503 to the next `failNext` ones. */
async function startReceiver(): Promise<{ url: string; deliveries: Delivery[]; failNext(count: number): void; stop(): Promise<void> }> {
  const deliveries: Delivery[] = [];
  let failures = 0;
  const server = http.createServer((request, response) => {
    const chunks: Buffer[] = [];
    request.on('data', (chunk: Buffer) => chunks.push(chunk));
    request.on('end', () => {
      const status = failures > 0 ? 503 : 202;
      if (failures > 0) failures -= 1;
      deliveries.push({
        status,
        idempotencyKey: request.headers['idempotency-key'] as string | undefined,
        body: JSON.parse(Buffer.concat(chunks).toString('utf8')),
      });
      response.writeHead(status).end();
    });
  });
  server.listen(0, '127.0.0.1');
  await new Promise<void>((resolve) => server.once('listening', () => resolve()));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}/reminders`,
    deliveries,
    failNext: (count) => (failures = count),
    stop: async () => {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

/** A clock the test sets. */

describe('appointment reminders', function () {
  this.timeout(120_000);
  let payer: StandInPayer;
  let ehr: StandInEhr;
  let receiver: Awaited<ReturnType<typeof startReceiver>>;
  let gw: RunningGateway | undefined;

  before(async () => {
    // Every member is in force and needs no authorization (tocilizumab at Sonoran Care needs none).
    payer = await startStandInPayer({ defaultRule: {} });
    ehr = await startStandInEhr();
    receiver = await startReceiver();
  });
  afterEach(async () => {
    await gw?.stop();
    gw = undefined;
    receiver.failNext(0);
  });
  after(async () => {
    await receiver.stop();
    await payer.stop();
    // Reminders and notices are written back: each resolves at the EHR, which refused none of them.
    await stopEhrCheckingWrittenReferences(ehr);
  });

  async function gateway(clock: { now(): Date }, env: Record<string, string> = {}): Promise<RunningGateway> {
    gw = await startGateway({
      background: true,
      clock,
      env: {
        PAYER_CONNECTIONS: payerConnections(payer.baseUrl, ['payer-sonoran']),
        EHR_FHIR_BASE_URL: ehr.baseUrl,
        EHR_POLL: 'false',
        OUTBOX_POLL_MS: '25',
        REMINDER_CRON: '* * * * * *',
        // No no-shows during these tests: once a year, at a time no test runs.
        NO_SHOW_CRON: '0 0 3 1 1 *',
        NOTIFIER_WEBHOOK_URL: receiver.url,
        ...env,
      },
    });
    return gw;
  }

  /** A cleared tocilizumab referral booked at its first slot; returns the Appointment. */
  async function bookedAppointment(running: RunningGateway, orderNumber: string): Promise<any> {
    const body = withOrderNumber(readFixture('referrals/tocilizumab/service-request.json'), orderNumber);
    return (await bookFirstSlot(`${running.baseUrl}/fhir`, body)).appointment;
  }

  const deliveriesFor = (appointmentId: string): Delivery[] =>
    receiver.deliveries.filter((d) => d.body.about?.some((a: any) => a.reference === `Appointment/${appointmentId}`));
  const accepted = (appointmentId: string): Delivery[] => deliveriesFor(appointmentId).filter((d) => d.status === 202);
  const keyOf = (delivery: Delivery): string => delivery.body.identifier.find((i: any) => i.system === REMINDER_ID).value;

  it('sends one reminder at 72 hours and one at 24 hours before the visit, each stating the weekday, date, time and zone', async () => {
    // Friday after Thanksgiving, 8:00 AM in Denver: the first slot is at the order's start.
    const clock = movableClock('2026-11-27T15:00:00Z');
    const running = await gateway(clock);
    const appointment = await bookedAppointment(running, 'REM-72-24');
    expect(appointment.start).to.equal('2026-12-02T07:00:00-07:00');
    expect((await sendReminders(running.gateway.deps)).sent).to.equal(0);

    clock.set('2026-11-29T14:00:00Z'); // exactly 72 hours ahead
    await waitUntil('the 72-hour reminder reached the webhook', async () => accepted(appointment.id).length === 1);
    const first = accepted(appointment.id)[0]!;
    expect(keyOf(first)).to.equal(`${appointment.id}@2026-12-02T14:00:00.000Z:72h`);
    expect(first.idempotencyKey).to.equal(first.body.id);
    expect(first.body.status).to.equal('completed');
    expect(first.body.category[0].coding[0].code).to.equal('reminder');
    const text: string = first.body.payload[0].contentString;
    expect(text).to.include(FIRST_SLOT_TEXT);
    expect(text).to.include('Harbor Infusion Center - Denver Cherry Creek');
    expect(text).to.not.match(/Pellimore|Augustin|tocilizumab|Actemra/i);
    expect(first.body.subject).to.deep.equal(appointment.participant[0].actor);

    // The clock jumps 30 hours next: a run still holding its claim then would see the claim as
    // lapsed (CLAIM_LEASE_MS) and send again, which no real clock allows. Wait for the record.
    await waitUntil(
      'the 72-hour reminder was recorded as sent',
      async () => (await running.gateway.deps.store.read<any>(['default'], 'Communication', first.body.id))?.status === 'completed',
    );
    // Later runs before the 24-hour mark send nothing more.
    clock.set('2026-11-30T20:00:00Z');
    expect((await sendReminders(running.gateway.deps)).sent).to.equal(0);
    expect(deliveriesFor(appointment.id)).to.have.length(1);

    clock.set('2026-12-01T15:30:00Z');
    await waitUntil('the 24-hour reminder reached the webhook', async () => accepted(appointment.id).length === 2);
    const second = accepted(appointment.id)[1]!;
    expect(keyOf(second)).to.equal(`${appointment.id}@2026-12-02T14:00:00.000Z:24h`);
    expect(second.body.payload[0].contentString).to.include(FIRST_SLOT_TEXT);
    expect((await sendReminders(running.gateway.deps)).sent).to.equal(0);
    expect(deliveriesFor(appointment.id)).to.have.length(2);

    const stored = await running.gateway.deps.store.read<any>(['default'], 'Communication', first.body.id);
    expect(stored.status).to.equal('completed');
    expect(stored.sent).to.equal('2026-11-29T14:00:00.000Z');
  });

  it('retries a reminder the webhook refused on later runs, and never delivers it twice', async () => {
    const clock = movableClock('2026-11-27T15:00:00Z');
    const running = await gateway(clock);
    const appointment = await bookedAppointment(running, 'REM-RETRY');
    const id = reminderId(appointment.id, 72, new Date(appointment.start));
    receiver.failNext(2);
    clock.set('2026-11-29T18:00:00Z');
    await waitUntil('the reminder got through after two refusals', async () => accepted(appointment.id).length === 1);
    // The job records the delivery after the webhook's answer: wait for that before moving the clock.
    await waitUntil(
      'the delivery was recorded',
      async () => (await running.gateway.deps.store.read<any>(['default'], 'Communication', id))?.status === 'completed',
    );
    const tries = deliveriesFor(appointment.id);
    expect(tries.map((d) => d.status)).to.deep.equal([503, 503, 202]);
    expect(new Set(tries.map((d) => d.idempotencyKey))).to.deep.equal(new Set([id]));

    clock.set('2026-11-29T19:00:00Z');
    expect((await sendReminders(running.gateway.deps)).sent).to.equal(0);
    expect(deliveriesFor(appointment.id)).to.have.length(3);
    const stored = await running.gateway.deps.store.read<any>(['default'], 'Communication', id);
    expect(stored.status).to.equal('completed');
    expect(stored.statusReason).to.equal(undefined);
  });

  it('keeps a refused reminder waiting with the reason until the next run', async () => {
    const clock = movableClock('2026-11-27T15:00:00Z');
    // No cron ticks here: each run is the test's own.
    const running = await gateway(clock, { REMINDER_CRON: '0 0 3 1 1 *' });
    const appointment = await bookedAppointment(running, 'REM-WAIT');
    const id = reminderId(appointment.id, 72, new Date(appointment.start));
    receiver.failNext(1);
    clock.set('2026-11-29T18:00:00Z');
    expect(await sendReminders(running.gateway.deps)).to.include({ sent: 0, failed: 1 });
    const waiting = await running.gateway.deps.store.read<any>(['default'], 'Communication', id);
    expect(waiting.status).to.equal('in-progress');
    expect(waiting.statusReason.text).to.include('HTTP 503');
    expect(await sendReminders(running.gateway.deps)).to.include({ sent: 1, failed: 0 });
    expect(await sendReminders(running.gateway.deps)).to.include({ sent: 0, failed: 0 });
    expect(deliveriesFor(appointment.id).map((d) => d.status)).to.deep.equal([503, 202]);
  });

  it('sends only the nearest reminder when several fall due at once, and records the farther one as superseded', async () => {
    const clock = movableClock('2026-11-27T15:00:00Z');
    const running = await gateway(clock, { REMINDER_CRON: '0 0 3 1 1 *' });
    const appointment = await bookedAppointment(running, 'REM-LATE');
    clock.set('2026-12-01T20:00:00Z'); // 18 hours ahead: both offsets have passed
    expect(await sendReminders(running.gateway.deps)).to.include({ sent: 1, notDone: 1 });
    expect(accepted(appointment.id).map(keyOf)).to.deep.equal([`${appointment.id}@2026-12-02T14:00:00.000Z:24h`]);
    const superseded = await running.gateway.deps.store.read<any>(
      ['default'],
      'Communication',
      reminderId(appointment.id, 72, new Date(appointment.start)),
    );
    expect(superseded.status).to.equal('not-done');
    expect(superseded.statusReason.text).to.match(/superseded/i);
  });

  it('records reminders without sending them when no webhook is configured', async () => {
    const clock = movableClock('2026-11-27T15:00:00Z');
    const running = await gateway(clock, { REMINDER_CRON: '0 0 3 1 1 *', NOTIFIER_WEBHOOK_URL: '' });
    const appointment = await bookedAppointment(running, 'REM-NONE');
    clock.set('2026-11-29T18:00:00Z');
    expect(await sendReminders(running.gateway.deps)).to.include({ sent: 0, failed: 1 });
    expect(await sendReminders(running.gateway.deps)).to.include({ sent: 0, failed: 0 });
    const recorded = await running.gateway.deps.store.read<any>(
      ['default'],
      'Communication',
      reminderId(appointment.id, 72, new Date(appointment.start)),
    );
    expect(recorded.status).to.equal('not-done');
    expect(recorded.statusReason.text).to.include('NOTIFIER_WEBHOOK_URL');
    expect(recorded.payload[0].contentString).to.include(FIRST_SLOT_TEXT);
    expect(deliveriesFor(appointment.id)).to.have.length(0);
  });
  /** The booked visit moved a week later, same chair and time of day (a slot $find would propose), by PUT. */
  async function rescheduleAWeekLater(running: RunningGateway, appointment: any): Promise<any> {
    const week = (iso: string): string => iso.replace('2026-12-02', '2026-12-09');
    const moved = await fhirFetch(`${running.baseUrl}/fhir/Appointment/${appointment.id}`, {
      method: 'PUT',
      body: { ...appointment, start: week(appointment.start), end: week(appointment.end) },
    });
    expect(moved.status, JSON.stringify(moved.body)).to.equal(200);
    return moved.body;
  }
  const inEhrByKey = async (key: string): Promise<any[]> =>
    (await allInEhr(ehr.baseUrl, 'Communication')).filter((c) =>
      c.identifier?.some((i: any) => i.system === REMINDER_ID && i.value === key),
    );

  it('tells a patient already reminded that the visit moved, and reminds them again of the new time; every reminder is written back', async () => {
    const clock = movableClock('2026-11-27T15:00:00Z');
    const running = await gateway(clock, { REMINDER_CRON: '0 0 3 1 1 *' });
    const appointment = await bookedAppointment(running, 'REM-MOVED');
    clock.set('2026-11-29T14:00:00Z');
    expect(await sendReminders(running.gateway.deps)).to.include({ sent: 1 });
    const moved = await rescheduleAWeekLater(running, appointment);
    expect(moved.start).to.equal('2026-12-09T07:00:00-07:00');

    // The reminder of the old time was sent: it stays completed, and the patient is told the time moved.
    const old = await running.gateway.deps.store.read<any>(
      ['default'],
      'Communication',
      reminderId(appointment.id, 72, new Date(appointment.start)),
    );
    expect(old.status).to.equal('completed');
    const notices = deliveriesFor(appointment.id).filter((d) => d.body.category[0].coding[0].code === 'notification');
    expect(notices).to.have.length(1);
    expect(notices[0]!.body.payload[0].contentString).to.include(
      'has moved from Wednesday, December 2, 2026 at 7:00 AM MST to Wednesday, December 9, 2026 at 7:00 AM MST',
    );

    // 72 hours before the new time: a reminder of its own.
    clock.set('2026-12-06T14:00:00Z');
    expect(await sendReminders(running.gateway.deps)).to.include({ sent: 1 });
    const reminders = accepted(appointment.id)
      .filter((d) => d.body.category[0].coding[0].code === 'reminder')
      .map(keyOf);
    expect(reminders).to.deep.equal([`${appointment.id}@2026-12-02T14:00:00.000Z:72h`, `${appointment.id}@2026-12-09T14:00:00.000Z:72h`]);
    expect(accepted(appointment.id).at(-1)!.body.payload[0].contentString).to.include('Wednesday, December 9, 2026 at 7:00 AM MST');

    await waitUntil(
      'the reminders reached the EHR',
      async () => (await inEhrByKey(`${appointment.id}@2026-12-09T14:00:00.000Z:72h`)).length === 1,
    );
    expect((await inEhrByKey(`${appointment.id}@2026-12-02T14:00:00.000Z:72h`)).map((c) => c.status)).to.deep.equal(['completed']);
    expect((await inEhrByKey(`${appointment.id}@2026-12-09T14:00:00.000Z:72h`)).map((c) => c.status)).to.deep.equal(['completed']);
  });

  it('withdraws a reminder of the old time not yet sent when the visit moves (not-done, appointment-rescheduled), and writes that back', async () => {
    const clock = movableClock('2026-11-27T15:00:00Z');
    const running = await gateway(clock, { REMINDER_CRON: '0 0 3 1 1 *' });
    const appointment = await bookedAppointment(running, 'REM-WITHDRAWN');
    receiver.failNext(1);
    clock.set('2026-11-29T18:00:00Z');
    expect(await sendReminders(running.gateway.deps)).to.include({ sent: 0, failed: 1 });
    await rescheduleAWeekLater(running, appointment);

    const withdrawn = await running.gateway.deps.store.read<any>(
      ['default'],
      'Communication',
      reminderId(appointment.id, 72, new Date(appointment.start)),
    );
    expect(withdrawn.status).to.equal('not-done');
    expect(withdrawn.statusReason.coding[0]).to.include({
      system: 'https://fhir.infusion-gateway.example/CodeSystem/order-change-reason',
      code: 'appointment-rescheduled',
    });
    // Nothing was sent for the old time, so no notice; and the withdrawn one is not tried again.
    expect(await sendReminders(running.gateway.deps)).to.include({ sent: 0, failed: 0 });
    expect(deliveriesFor(appointment.id).map((d) => d.status)).to.deep.equal([503]);
    const key = `${appointment.id}@2026-12-02T14:00:00.000Z:72h`;
    await waitUntil('the withdrawal reached the EHR', async () => (await inEhrByKey(key))[0]?.status === 'not-done');
    expect((await inEhrByKey(key))[0].statusReason.coding[0].code).to.equal('appointment-rescheduled');
  });
  it('withdraws a reminder not yet sent when the visit is cancelled (not-done, appointment-cancelled)', async () => {
    const clock = movableClock('2026-11-27T15:00:00Z');
    const running = await gateway(clock, { REMINDER_CRON: '0 0 3 1 1 *' });
    const appointment = await bookedAppointment(running, 'REM-CANCELLED');
    receiver.failNext(1);
    clock.set('2026-11-29T18:00:00Z');
    expect(await sendReminders(running.gateway.deps)).to.include({ sent: 0, failed: 1 });
    const stored = (await fhirFetch(`${running.baseUrl}/fhir/Appointment/${appointment.id}`)).body;
    const cancelled = await fhirFetch(`${running.baseUrl}/fhir/Appointment/${appointment.id}`, {
      method: 'PUT',
      body: { ...stored, status: 'cancelled' },
    });
    expect(cancelled.status, JSON.stringify(cancelled.body)).to.equal(200);
    const withdrawn = await running.gateway.deps.store.read<any>(
      ['default'],
      'Communication',
      reminderId(appointment.id, 72, new Date(appointment.start)),
    );
    expect([withdrawn.status, withdrawn.statusReason.coding[0].code]).to.deep.equal(['not-done', 'appointment-cancelled']);
    expect(await sendReminders(running.gateway.deps)).to.include({ sent: 0, failed: 0 });
  });
});
