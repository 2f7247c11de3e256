/**
 * No-shows end to end, with literal dates and a clock the test moves: a tocilizumab referral
 * cleared by the stand-in payer, booked over HTTP at the Denver site for Wednesday 2026-12-02
 * 07:00-08:45 MST, then left unattended past its end and the 30-minute grace. The node-cron job
 * (NO_SHOW_CRON every second) marks it; the stand-in EHR receives the write-back.
 */
import { expect } from 'chai';
import { bookFirstSlot, payerConnections } from '../support/referral-flow.js';
import { readFixture, withOrderNumber } from '../support/fixtures.js';
import { fhirFetch, startGateway, waitUntil, type RunningGateway, movableClock, businessStatusOf } from '../support/gateway.js';
import { startStandInEhr, type StandInEhr } from '../../src/sandbox/stand-in-ehr.js';
import { stopEhrCheckingWrittenReferences } from '../support/written-references.js';
import { startStandInPayer, type StandInPayer } from '../../src/sandbox/stand-in-payer.js';
import { allInEhr } from '../connectivity/ehr-helpers.js';
import { markNoShow, markNoShows } from '../../src/scheduling/stories/mark-no-shows.js';

const BASE = 'https://fhir.infusion-gateway.example';
const NO_SHOW_FEE = `${BASE}/StructureDefinition/no-show-fee`;
const TASK_TYPE = `${BASE}/CodeSystem/referral-task-type`;
const APPOINTMENT_ID = `${BASE}/appointment-id`;
const RESCHEDULE_ID = `${BASE}/reschedule-id`;
const REFERRAL_ID = `${BASE}/referral-id`;

const outputCodes = (task: any): string[] => (task.output ?? []).map((o: any) => o.type.coding[0].code);

describe('no-shows', function () {
  this.timeout(120_000);
  let payer: StandInPayer;
  let ehr: StandInEhr;
  let gw: RunningGateway | undefined;

  before(async () => {
    // Every member is in force and needs no authorization (tocilizumab at Sonoran Care needs none).
    payer = await startStandInPayer({ defaultRule: {} });
    ehr = await startStandInEhr();
  });
  afterEach(async () => {
    await gw?.stop();
    gw = undefined;
  });
  after(async () => {
    await payer.stop();
    await stopEhrCheckingWrittenReferences(ehr);
  });

  async function gateway(clock: { now(): Date }, env: Record<string, string> = {}): Promise<{ running: RunningGateway; fhir: string }> {
    gw = await startGateway({
      background: true,
      clock,
      env: {
        PAYER_CONNECTIONS: payerConnections(payer.baseUrl, ['payer-sonoran']),
        EHR_FHIR_BASE_URL: ehr.baseUrl,
        EHR_POLL: 'false',
        OUTBOX_POLL_MS: '25',
        NO_SHOW_CRON: '* * * * * *',
        REMINDER_CRON: '0 0 3 1 1 *',
        NO_SHOW_GRACE_MINUTES: '30',
        ...env,
      },
    });
    return { running: gw, fhir: `${gw.baseUrl}/fhir` };
  }

  /** A cleared tocilizumab referral booked at its first free slot. */
  const book = (fhir: string, orderNumber: string): ReturnType<typeof bookFirstSlot> =>
    bookFirstSlot(fhir, withOrderNumber(readFixture('referrals/tocilizumab/service-request.json'), orderNumber));

  it('marks a booked appointment no-show after its end and the grace, records the fee, frees the chair and opens a reschedule Task', async () => {
    const clock = movableClock('2026-11-27T15:00:00Z');
    const { running, fhir } = await gateway(clock);
    const { taskId, serviceRequestId, appointment } = await book(fhir, 'NOSHOW-1');
    expect([appointment.start, appointment.end]).to.deep.equal(['2026-12-02T07:00:00-07:00', '2026-12-02T08:45:00-07:00']);
    expect(await running.gateway.deps.store.readChairBooking(appointment.id)).to.not.equal(undefined);

    // 09:05 MST: past the end, within the grace.
    clock.set('2026-12-02T16:05:00Z');
    expect(await markNoShows(running.gateway.deps)).to.include({ markedNoShow: 0 });
    expect((await fhirFetch(`${fhir}/Appointment/${appointment.id}`)).body.status).to.equal('booked');

    // 09:16 MST: the grace is over; the job marks it.
    clock.set('2026-12-02T16:16:00Z');
    let missed: any;
    await waitUntil('the appointment is a no-show', async () => {
      missed = (await fhirFetch(`${fhir}/Appointment/${appointment.id}`)).body;
      return missed.status === 'noshow';
    });
    expect(missed.extension.find((e: any) => e.url === NO_SHOW_FEE).valueMoney).to.deep.equal({ value: 50, currency: 'USD' });
    expect(await running.gateway.deps.store.readChairBooking(appointment.id)).to.equal(undefined);

    const task = (await fhirFetch(`${fhir}/Task/${taskId}`)).body;
    expect(businessStatusOf(task)).to.equal('ready-to-schedule');
    expect(outputCodes(task)).to.not.include('appointment');

    const subTasks = await fhirFetch(`${fhir}/Task?part-of=Task/${taskId}&code=${encodeURIComponent(`${TASK_TYPE}|reschedule`)}`);
    expect(subTasks.body.entry).to.have.length(1);
    const reschedule = subTasks.body.entry[0].resource;
    expect(reschedule.status).to.equal('ready');
    expect(reschedule.focus).to.deep.equal({ reference: `Appointment/${appointment.id}` });
    expect(reschedule.identifier[0]).to.deep.equal({ system: RESCHEDULE_ID, value: appointment.id });
    expect(reschedule.description).to.include('Wednesday, December 2, 2026 at 7:00 AM MST');

    // The referral can be booked again: $find proposes times after the pharmacy lead time from now.
    const again = await fhirFetch(`${fhir}/Appointment/$find?referral=ServiceRequest/${serviceRequestId}&_count=1`);
    expect(again.status, JSON.stringify(again.body?.issue)).to.equal(200);
    expect(new Date(again.body.entry[0].resource.start).getTime()).to.be.greaterThan(new Date('2026-12-03T00:00:00Z').getTime());

    // Another run changes nothing.
    expect(await markNoShows(running.gateway.deps)).to.include({ markedNoShow: 0 });
    expect((await fhirFetch(`${fhir}/Task?part-of=Task/${taskId}`)).body.entry).to.have.length(1);

    // The EHR gets the missed Appointment, the reschedule Task and the referral Task back at ready.
    await waitUntil('the no-show reached the EHR', async () =>
      (await allInEhr(ehr.baseUrl, 'Appointment')).some(
        (a) => a.identifier?.some((i: any) => i.system === APPOINTMENT_ID && i.value === appointment.id) && a.status === 'noshow',
      ),
    );
    await waitUntil('the reschedule Task reached the EHR', async () =>
      (await allInEhr(ehr.baseUrl, 'Task')).some((t) =>
        t.identifier?.some((i: any) => i.system === RESCHEDULE_ID && i.value === appointment.id),
      ),
    );
    const inEhr = (await allInEhr(ehr.baseUrl, 'Task')).find((t) =>
      t.identifier?.some((i: any) => i.system === RESCHEDULE_ID && i.value === appointment.id),
    );
    expect(inEhr.focus).to.deep.equal({ type: 'Appointment', identifier: { system: APPOINTMENT_ID, value: appointment.id } });
    expect(inEhr.partOf[0].identifier.system).to.equal(REFERRAL_ID);
    await waitUntil('the referral Task is ready to schedule in the EHR', async () =>
      (await allInEhr(ehr.baseUrl, 'Task')).some(
        (t) =>
          t.identifier?.some((i: any) => i.system === REFERRAL_ID && i.value === inEhr.partOf[0].identifier.value) &&
          businessStatusOf(t) === 'ready-to-schedule',
      ),
    );
  });

  it('leaves an appointment the patient arrived for alone', async () => {
    const clock = movableClock('2026-11-27T15:00:00Z');
    const { running, fhir } = await gateway(clock, { NO_SHOW_CRON: '0 0 3 1 1 *' });
    const { appointment } = await book(fhir, 'NOSHOW-ARRIVED');
    clock.set('2026-12-02T13:55:00Z');
    const { meta: _meta, ...current } = (await fhirFetch(`${fhir}/Appointment/${appointment.id}`)).body;
    const arrived = await fhirFetch(`${fhir}/Appointment/${appointment.id}`, { method: 'PUT', body: { ...current, status: 'arrived' } });
    expect(arrived.status, JSON.stringify(arrived.body?.issue)).to.equal(200);
    clock.set('2026-12-02T18:00:00Z');
    expect(await markNoShows(running.gateway.deps)).to.include({ markedNoShow: 0 });
    expect((await fhirFetch(`${fhir}/Appointment/${appointment.id}`)).body.status).to.equal('arrived');
  });

  it('records a no-show the center reports before the grace ends the same way, once', async () => {
    const clock = movableClock('2026-11-27T15:00:00Z');
    const { running, fhir } = await gateway(clock, { NO_SHOW_CRON: '0 0 3 1 1 *' });
    const { taskId, appointment } = await book(fhir, 'NOSHOW-REPORTED');
    clock.set('2026-12-02T15:50:00Z'); // 08:50 MST, five minutes after the end
    expect(await markNoShow(running.gateway.deps, { tenant: 'default', appointmentId: appointment.id })).to.equal('marked');
    expect(await markNoShow(running.gateway.deps, { tenant: 'default', appointmentId: appointment.id })).to.equal('not-booked');
    const missed = (await fhirFetch(`${fhir}/Appointment/${appointment.id}`)).body;
    expect(missed.status).to.equal('noshow');
    expect(missed.extension.find((e: any) => e.url === NO_SHOW_FEE).valueMoney).to.deep.equal({ value: 50, currency: 'USD' });
    expect((await fhirFetch(`${fhir}/Task?part-of=Task/${taskId}`)).body.entry).to.have.length(1);
    expect(businessStatusOf((await fhirFetch(`${fhir}/Task/${taskId}`)).body)).to.equal('ready-to-schedule');
  });

  it('records no fee when the policy has none', async () => {
    const clock = movableClock('2026-11-27T15:00:00Z');
    const { running, fhir } = await gateway(clock, { NO_SHOW_CRON: '0 0 3 1 1 *', NO_SHOW_FEE: '0 USD' });
    const { appointment } = await book(fhir, 'NOSHOW-NOFEE');
    clock.set('2026-12-02T18:00:00Z');
    expect(await markNoShows(running.gateway.deps)).to.include({ markedNoShow: 1 });
    const missed = (await fhirFetch(`${fhir}/Appointment/${appointment.id}`)).body;
    expect(missed.status).to.equal('noshow');
    expect((missed.extension ?? []).filter((e: any) => e.url === NO_SHOW_FEE)).to.deep.equal([]);
  });
});
