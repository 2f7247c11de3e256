/**
 * Order renewal end to end, with literal dates and a clock the test moves: a tocilizumab order
 * for 13 infusions every 4 weeks, booked over HTTP for Wednesday 2026-12-02 07:00 MST at the
 * Denver site. An order that ends on 2026-12-31 covers two of them (December 2 and 30): 30 days
 * (RENEWAL_NOTICE_DAYS) before its end, the job on NO_SHOW_CRON (every second here) asks the
 * referring side for a renewal, once; the stand-in EHR receives the Task.
 */
import { expect } from 'chai';
import { bookFirstSlot, payerConnections } from '../support/referral-flow.js';
import { readFixture, withOrderNumber } from '../support/fixtures.js';
import { fhirFetch, startGateway, waitUntil, type RunningGateway, movableClock } from '../support/gateway.js';
import { startStandInEhr, type StandInEhr } from '../../src/sandbox/stand-in-ehr.js';
import { startStandInPayer, type StandInPayer } from '../../src/sandbox/stand-in-payer.js';
import { allInEhr } from '../connectivity/ehr-helpers.js';
import { renewOrders } from '../../src/order-changes/stories/renew-orders.js';

const BASE = 'https://fhir.infusion-gateway.example';
const TASK_TYPE = `${BASE}/CodeSystem/referral-task-type`;
const RENEWAL_ID = `${BASE}/renewal-id`;
const NPI = 'http://hl7.org/fhir/sid/us-npi';

const inputOf = (task: any, code: string): any => task.input.find((i: any) => i.type.coding[0].code === code);

describe('order renewal', function () {
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
    await ehr.stop();
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
        RENEWAL_NOTICE_DAYS: '30',
        ...env,
      },
    });
    return { running: gw, fhir: `${gw.baseUrl}/fhir` };
  }

  /** A cleared tocilizumab referral whose order ends on `orderEnd`, booked at its first free slot. */
  function book(fhir: string, orderNumber: string, orderEnd: string): ReturnType<typeof bookFirstSlot> {
    const body = withOrderNumber(readFixture('referrals/tocilizumab/service-request.json'), orderNumber);
    body.occurrenceTiming.repeat.boundsPeriod.end = orderEnd;
    return bookFirstSlot(fhir, body);
  }

  const renewalsOf = async (fhir: string, taskId: string): Promise<any[]> =>
    ((await fhirFetch(`${fhir}/Task?part-of=Task/${taskId}&code=${encodeURIComponent(`${TASK_TYPE}|renew-order`)}`)).body.entry ?? []).map(
      (e: any) => e.resource,
    );

  it('asks the referring side once to renew an order that ends before its series, 30 days before the end', async () => {
    const clock = movableClock('2026-11-27T15:00:00Z');
    const { running, fhir } = await gateway(clock);
    const { taskId, serviceRequestId, appointment } = await book(fhir, 'RENEW-1', '2026-12-31');
    expect(appointment.start).to.equal('2026-12-02T07:00:00-07:00');

    // Tuesday December 1, 5 PM in Denver: the order's end is 30 days and a few hours away.
    clock.set('2026-12-02T00:00:00Z');
    expect(await renewOrders(running.gateway.deps)).to.include({ opened: 0 });
    expect(await renewalsOf(fhir, taskId)).to.have.length(0);

    // Wednesday December 2, 1 AM in Denver: 30 days to go.
    clock.set('2026-12-02T08:00:00Z');
    await waitUntil('the renewal Task is open', async () => (await renewalsOf(fhir, taskId)).length === 1);
    const [renewal] = await renewalsOf(fhir, taskId);
    expect(renewal.status).to.equal('requested');
    expect(renewal.intent).to.equal('order');
    expect(renewal.focus).to.deep.equal({ reference: `ServiceRequest/${serviceRequestId}` });
    expect(renewal.partOf).to.deep.equal([{ reference: `Task/${taskId}` }]);
    expect(renewal.owner).to.deep.include({ type: 'Practitioner', identifier: { system: NPI, value: '1762039489' } });
    expect(inputOf(renewal, 'order-end').valueDate).to.equal('2026-12-31');
    expect(inputOf(renewal, 'first-uncovered-dose').valueDateTime).to.equal('2027-01-27T07:00:00-07:00');
    expect(renewal.description).to.include('2 of the 13 doses');
    expect(renewal.restriction.period.end).to.equal('2026-12-31');

    // Later runs open no second one.
    clock.set('2026-12-09T08:00:00Z');
    expect(await renewOrders(running.gateway.deps)).to.include({ opened: 0 });
    expect(await renewalsOf(fhir, taskId)).to.have.length(1);

    const key = `${renewal.identifier[0].value}`;
    expect(renewal.identifier[0].system).to.equal(RENEWAL_ID);
    await waitUntil('the renewal Task reached the EHR', async () =>
      (await allInEhr(ehr.baseUrl, 'Task')).some((t) => t.identifier?.some((i: any) => i.system === RENEWAL_ID && i.value === key)),
    );
    const inEhr = (await allInEhr(ehr.baseUrl, 'Task')).filter((t) =>
      t.identifier?.some((i: any) => i.system === RENEWAL_ID && i.value === key),
    );
    expect(inEhr).to.have.length(1);
    expect(inEhr[0].focus.identifier.value).to.equal('RENEW-1');
    expect(inEhr[0].owner.identifier).to.deep.equal({ system: NPI, value: '1762039489' });
  });

  it('asks for nothing when the order covers the whole series', async () => {
    const clock = movableClock('2026-11-27T15:00:00Z');
    const { running, fhir } = await gateway(clock, { NO_SHOW_CRON: '0 0 3 1 1 *' });
    // 13 infusions every 4 weeks from 2026-12-02 end on 2027-11-03, within the order (to 2027-12-01).
    const { taskId } = await book(fhir, 'RENEW-COVERED', '2027-12-01');
    clock.set('2027-11-20T12:00:00Z');
    expect(await renewOrders(running.gateway.deps)).to.include({ opened: 0 });
    expect(await renewalsOf(fhir, taskId)).to.have.length(0);
  });
});
