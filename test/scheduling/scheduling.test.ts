/**
 * Scheduling over HTTP with literal dates and a clock the test sets: a cleared referral (the
 * stand-in payer clears it) is found slots, held and booked; walk-ins and late reschedules are
 * refused; the booked Appointment reaches the stand-in EHR.
 */
import { expect } from 'chai';
import { payerConnections } from '../support/referral-flow.js';
import { randomUUID } from 'node:crypto';
import { readFixture, withOrderNumber } from '../support/fixtures.js';
import {
  fhirFetch,
  startGateway,
  waitUntil,
  type Engine,
  type RunningGateway,
  movableClock,
  businessStatusOf,
} from '../support/gateway.js';
import { startStandInEhr, type StandInEhr } from '../../src/sandbox/stand-in-ehr.js';
import { startStandInPayer, type StandInPayer } from '../../src/sandbox/stand-in-payer.js';
import { allInEhr } from '../connectivity/ehr-helpers.js';
import type { Clock } from '../../src/ports/clock.js';

const TYPES = 'https://fhir.infusion-gateway.example/CodeSystem/task-parameter-type';
const DOCUMENTATION = 'https://fhir.infusion-gateway.example/CodeSystem/documentation-requirement';
const APPOINTMENT_ID = 'https://fhir.infusion-gateway.example/appointment-id';

async function startWorld(
  engine: Engine,
  clock: Clock,
): Promise<{ gw: RunningGateway; payer: StandInPayer; ehr: StandInEhr; stop(): Promise<void> }> {
  // Every member is in force; tocilizumab needs no authorization from Sonoran, infliximab is approved.
  const payer = await startStandInPayer({
    defaultRule: {
      eligibility: { inForce: true, authRequired: false },
      priorAuth: { kind: 'approve', authorizationNumber: 'AUTH-SCHED', period: { start: '2026-12-01', end: '2027-02-28' } },
    },
  });
  const ehr = await startStandInEhr();
  const gw = await startGateway({
    engine,
    clock,
    background: true,
    env: {
      PAYER_CONNECTIONS: payerConnections(payer.baseUrl),
      EHR_FHIR_BASE_URL: ehr.baseUrl,
      EHR_POLL: 'false',
      OUTBOX_POLL_MS: '25',
      PRIOR_AUTH_INQUIRY_CRON: '0 0 0 1 1 *',
      REMINDER_CRON: '0 0 0 1 1 *',
      NO_SHOW_CRON: '0 0 0 1 1 *',
    },
  });
  return {
    gw,
    payer,
    ehr,
    stop: async () => {
      await gw.stop();
      await payer.stop();
      await ehr.stop();
    },
  };
}

/** Posts a referral and waits until the coverage step has cleared it. */
async function clearedReferral(
  gw: RunningGateway,
  drug: 'tocilizumab' | 'infliximab',
  change: (sr: any) => void = () => {},
): Promise<{ serviceRequestId: string; taskId: string }> {
  const body = withOrderNumber(readFixture(`referrals/${drug}/service-request.json`), `sched-${randomUUID()}`);
  const documents =
    drug === 'infliximab'
      ? ['prior-treatment-failure', 'tb-screening', 'hepatitis-b-screening', 'current-weight']
      : ['prior-treatment-failure', 'tb-screening', 'baseline-labs'];
  for (const code of documents) {
    body.contained.push({
      resourceType: 'DocumentReference',
      id: `doc-${code}`,
      status: 'current',
      type: { coding: [{ system: DOCUMENTATION, code }] },
      content: [{ attachment: { title: code } }],
    });
    body.supportingInfo = [...(body.supportingInfo ?? []), { reference: `#doc-${code}` }];
  }
  change(body);
  const created = await fhirFetch(`${gw.baseUrl}/fhir/ServiceRequest`, { body });
  expect(created.status, JSON.stringify(created.body?.issue)).to.equal(201);
  const taskId = (await fhirFetch(`${gw.baseUrl}/fhir/Task?focus=ServiceRequest/${created.body.id}`)).body.entry[0].resource.id;
  let last = '';
  await waitUntil('the referral was cleared', async () => {
    last = businessStatusOf((await fhirFetch(`${gw.baseUrl}/fhir/Task/${taskId}`)).body);
    return last === 'ready-to-schedule';
  }).catch(async (err) => {
    const outbox = (await fhirFetch(`${gw.baseUrl}/admin/outbox?_count=50`)).body;
    throw new Error(
      `${err.message}; Task at ${last}; outbox ${JSON.stringify(outbox.messages.map((m: any) => [m.kind, m.status, m.attempts, m.nextAttemptAt, m.lastError?.issue?.[0]?.diagnostics]))}`,
    );
  });
  return { serviceRequestId: created.body.id, taskId };
}

async function find(gw: RunningGateway, serviceRequestId: string, query = ''): Promise<any[]> {
  const found = await fhirFetch(`${gw.baseUrl}/fhir/Appointment/$find?referral=ServiceRequest/${serviceRequestId}${query}`);
  expect(found.status, JSON.stringify(found.body?.issue)).to.equal(200);
  return found.body.entry.map((e: any) => e.resource);
}

const book = (gw: RunningGateway, appointment: any): Promise<{ status: number; body: any }> =>
  fhirFetch(`${gw.baseUrl}/fhir/Appointment/$book`, {
    body: { resourceType: 'Parameters', parameter: [{ name: 'appt-resource', resource: appointment }] },
  });

describe('scheduling: find, hold and book cleared referrals', function () {
  this.timeout(120_000);
  // Friday 4 December 2026, 16:00 in Nashville (15:00 in Denver).
  const clock = movableClock('2026-12-04T22:00:00Z');
  let world: Awaited<ReturnType<typeof startWorld>>;

  before(async () => {
    world = await startWorld('sqlite', clock);
  });
  after(async () => {
    await world.stop();
  });
  beforeEach(() => clock.set('2026-12-04T22:00:00Z'));

  it("proposes nothing sooner than one business day after clearance: Friday afternoon leads to Monday, in the site's own zone", async () => {
    const { serviceRequestId } = await clearedReferral(world.gw, 'tocilizumab');
    const proposals = await find(world.gw, serviceRequestId, '&_count=3');
    // Denver (Mountain time): cleared Friday 15:00 MST, so Monday 15:00 MST; tocilizumab's first dose takes 105 minutes.
    expect(proposals.map((a) => a.start)).to.deep.equal([
      '2026-12-07T15:00:00-07:00',
      '2026-12-07T15:15:00-07:00',
      '2026-12-07T15:30:00-07:00',
    ]);
    expect(proposals[0].end).to.equal('2026-12-07T16:45:00-07:00');
    expect(proposals[0].status).to.equal('proposed');
    expect(proposals[0].participant.map((p: any) => p.actor.reference ?? p.actor.identifier.value)).to.deep.equal([
      proposals[0].participant[0].actor.reference ?? proposals[0].participant[0].actor.identifier.value,
      'Location/hin-denver-cherry-creek',
      'DEN-CCK/chair-1',
    ]);
  });

  it('fits the whole chair time inside the hours of a site in another zone (Nashville, Central time)', async () => {
    const { serviceRequestId } = await clearedReferral(world.gw, 'infliximab');
    const [first] = await find(world.gw, serviceRequestId, '&_count=1');
    // Monday 16:00 CST + 195 minutes would end after Green Hills closes at 18:00: Tuesday 08:00 it is.
    expect(first.start).to.equal('2026-12-08T08:00:00-06:00');
    expect(first.end).to.equal('2026-12-08T11:15:00-06:00');
  });

  it('honours an evenings-only preference', async () => {
    const { serviceRequestId } = await clearedReferral(world.gw, 'tocilizumab');
    const proposals = await find(world.gw, serviceRequestId, '&evenings-only=true&_count=2');
    expect(proposals.map((a) => a.start)).to.deep.equal(['2026-12-07T17:00:00-07:00', '2026-12-07T17:15:00-07:00']);
  });

  it('keeps wall-clock times across the daylight-saving change (14 March 2027)', async () => {
    clock.set('2027-03-12T22:00:00Z'); // Friday 15:00 MST
    const { serviceRequestId } = await clearedReferral(world.gw, 'tocilizumab');
    const [first] = await find(world.gw, serviceRequestId, '&_count=1');
    expect(first.start).to.equal('2027-03-15T15:00:00-06:00'); // Monday 15:00, now MDT
  });

  it('holds a chair for a while, then books it: the Task is scheduled with the series planned within the order', async () => {
    const { serviceRequestId, taskId } = await clearedReferral(world.gw, 'tocilizumab');
    const [proposal] = await find(world.gw, serviceRequestId, '&_count=1');
    const held = await fhirFetch(`${world.gw.baseUrl}/fhir/Appointment/$hold`, {
      body: { resourceType: 'Parameters', parameter: [{ name: 'appt-resource', resource: proposal }] },
    });
    expect(held.status, JSON.stringify(held.body?.issue)).to.equal(201);
    expect(held.body.status).to.equal('pending');
    // The held chair is not offered to another referral.
    const other = await clearedReferral(world.gw, 'tocilizumab');
    const [next] = await find(world.gw, other.serviceRequestId, '&_count=1');
    expect(next.participant[2].actor.identifier.value).to.equal('DEN-CCK/chair-2');

    const booked = await book(world.gw, held.body);
    expect(booked.status, JSON.stringify(booked.body?.issue)).to.equal(201);
    expect(booked.body.status).to.equal('booked');
    expect(booked.body.id).to.equal(held.body.id);
    const task = (await fhirFetch(`${world.gw.baseUrl}/fhir/Task/${taskId}`)).body;
    expect(businessStatusOf(task)).to.equal('scheduled');
    const planned = task.output
      .filter((o: any) => o.type.coding[0].system === TYPES && o.type.coding[0].code === 'planned-dose')
      .map((o: any) => o.valueDateTime);
    // Every 4 weeks from the first dose, 13 infusions at most, none after the order ends (2027-12-01).
    expect(planned[0]).to.equal('2026-12-07T15:00:00-07:00');
    expect(planned[1]).to.equal('2027-01-04T15:00:00-07:00');
    expect(planned.length).to.equal(13);
    expect(planned.every((d: string) => d < '2027-12-02')).to.equal(true);

    // The booked Appointment reaches the EHR, once.
    await waitUntil('the Appointment reached the EHR', async () =>
      (await allInEhr(world.ehr.baseUrl, 'Appointment')).some((a) => a.identifier?.[0]?.value === booked.body.id),
    );
    const inEhr = (await allInEhr(world.ehr.baseUrl, 'Appointment')).filter((a) =>
      a.identifier?.some((i: any) => i.system === APPOINTMENT_ID && i.value === booked.body.id),
    );
    expect(inEhr).to.have.length(1);
    expect(inEhr[0].status).to.equal('booked');
    expect(inEhr[0].start).to.equal('2026-12-07T15:00:00-07:00');
  });

  it('lets a hold lapse by itself', async () => {
    const { serviceRequestId } = await clearedReferral(world.gw, 'tocilizumab');
    const [proposal] = await find(world.gw, serviceRequestId, '&_count=1');
    const held = await fhirFetch(`${world.gw.baseUrl}/fhir/Appointment/$hold`, {
      body: { resourceType: 'Parameters', parameter: [{ name: 'appt-resource', resource: proposal }] },
    });
    expect(held.status).to.equal(201);
    clock.set('2026-12-04T22:11:00Z'); // 11 minutes later: the 10-minute hold has lapsed
    const lapsed = await book(world.gw, held.body);
    expect(lapsed.status).to.equal(409);
    expect(lapsed.body.issue[0].expression).to.deep.equal(['Appointment.id']);
  });

  it('refuses walk-ins: an Appointment for a referral not cleared, or for no referral, with why and the next slots', async () => {
    const body = withOrderNumber(readFixture('referrals/tocilizumab/service-request.json'), `walkin-${randomUUID()}`);
    // A member of its own whose payer is down: the referral stays in verifying-coverage.
    const coverage = body.contained.find((r: any) => r.resourceType === 'Coverage');
    coverage.subscriberId = coverage.identifier[0].value = `WALKIN-${randomUUID().slice(0, 8)}`;
    world.payer.setMemberRule(coverage.subscriberId, { eligibility: { kind: 'fail-500' } });
    const created = await fhirFetch(`${world.gw.baseUrl}/fhir/ServiceRequest`, { body });
    const appointment = {
      resourceType: 'Appointment',
      status: 'booked',
      start: '2026-12-08T09:00:00-07:00',
      end: '2026-12-08T10:45:00-07:00',
      basedOn: [{ reference: `ServiceRequest/${created.body.id}` }],
      participant: [{ actor: { reference: 'Location/hin-denver-cherry-creek' }, status: 'accepted' }],
    };
    const refused = await fhirFetch(`${world.gw.baseUrl}/fhir/Appointment`, { body: appointment });
    expect(refused.status).to.equal(422);
    expect(refused.body.issue[0].diagnostics).to.match(/^No walk-ins: the referral is not cleared/);
    const offers = refused.body.issue.filter((i: any) => i.severity === 'information');
    expect(offers).to.have.length(3);
    expect(offers[0].diagnostics).to.contain('Monday, December 7, 2026 at 3:00 PM MST');

    const { basedOn: _basedOn, ...noReferral } = appointment;
    const stranger = await fhirFetch(`${world.gw.baseUrl}/fhir/Appointment`, { body: noReferral });
    expect(stranger.status).to.equal(422);
    expect(stranger.body.issue[0].expression).to.deep.equal(['Appointment.basedOn']);
    const none = await fhirFetch(`${world.gw.baseUrl}/fhir/Appointment?based-on=ServiceRequest/${created.body.id}`);
    expect(none.body.total).to.equal(0);
  });

  describe('a patient with a cleared referral and no booking is refused with the next three real slots (seed 001)', () => {
    const OFFERED = 'https://fhir.infusion-gateway.example/StructureDefinition/offered-appointment';
    const CHAIR = 'https://fhir.infusion-gateway.example/sid/chair';
    const slotKey = (a: any): string =>
      `${a.start}|${a.end}|${a.participant.find((p: any) => p.actor.identifier?.system === CHAIR)?.actor.identifier.value}|${a.status}`;

    /** The offered Appointments of a refusal, each reached through its issue's reference. */
    function offersOf(outcome: any): any[] {
      const offers = outcome.issue.filter((i: any) => i.severity === 'information');
      return offers.map((issue: any) => {
        const reference = issue.extension.find((e: any) => e.url === OFFERED).valueReference.reference;
        expect(reference).to.match(/^#offer-\d$/);
        return outcome.contained.find((r: any) => `#${r.id}` === reference);
      });
    }

    async function walkInWorld(): Promise<{ serviceRequestId: string; otherHold: any; expected: any[] }> {
      const { serviceRequestId } = await clearedReferral(world.gw, 'tocilizumab');
      // Another patient holds the first chair of the first slot: no offer may name it.
      const other = await clearedReferral(world.gw, 'tocilizumab');
      const [first] = await find(world.gw, other.serviceRequestId, '&_count=1');
      const otherHold = await fhirFetch(`${world.gw.baseUrl}/fhir/Appointment/$hold`, {
        body: { resourceType: 'Parameters', parameter: [{ name: 'appt-resource', resource: first }] },
      });
      expect(otherHold.status).to.equal(201);
      const expected = await find(world.gw, serviceRequestId, '&_count=3');
      expect(expected).to.have.length(3);
      return { serviceRequestId, otherHold: otherHold.body, expected };
    }

    function expectRefusalWithSlots(refused: { status: number; body: any }, expected: any[], otherHold: any, expression: string): void {
      expect(refused.status, JSON.stringify(refused.body)).to.equal(422);
      expect(refused.body.issue[0].severity).to.equal('error');
      expect(refused.body.issue[0].diagnostics).to.match(/^No walk-ins/);
      expect(refused.body.issue[0].expression).to.deep.equal([expression]);
      expect(refused.body.issue.every((i: any) => Array.isArray(i.expression) && i.expression.length > 0)).to.equal(true);
      const offers = offersOf(refused.body);
      expect(offers.map(slotKey)).to.deep.equal(expected.map(slotKey));
      expect(offers.map(slotKey)).to.not.include(slotKey({ ...otherHold, status: 'proposed' }));
      const words = refused.body.issue.filter((i: any) => i.severity === 'information').map((i: any) => i.diagnostics);
      expect(words[0]).to.contain('Monday, December 7, 2026 at 3:00 PM MST');
      expect(words[0]).to.contain('Appointment/$book');
    }

    it('refuses POST Appointment with status arrived, and the offered slot books as it is', async () => {
      const { serviceRequestId, otherHold, expected } = await walkInWorld();
      const arrival = {
        resourceType: 'Appointment',
        status: 'arrived',
        start: '2026-12-04T15:30:00-07:00',
        end: '2026-12-04T17:15:00-07:00',
        basedOn: [{ reference: `ServiceRequest/${serviceRequestId}` }],
        participant: [{ actor: { reference: 'Location/hin-denver-cherry-creek' }, status: 'accepted' }],
      };
      const refused = await fhirFetch(`${world.gw.baseUrl}/fhir/Appointment`, { body: arrival });
      expectRefusalWithSlots(refused, expected, otherHold, 'Appointment.status');
      expect((await fhirFetch(`${world.gw.baseUrl}/fhir/Appointment?based-on=ServiceRequest/${serviceRequestId}`)).body.total).to.equal(0);

      const booked = await book(world.gw, offersOf(refused.body)[0]);
      expect(booked.status, JSON.stringify(booked.body?.issue)).to.equal(201);
      expect(booked.body.status).to.equal('booked');
      expect(booked.body.start).to.equal(expected[0].start);
    });

    it('refuses $book of a time never proposed: before the pharmacy lead time, and off the slot grid', async () => {
      const { serviceRequestId, otherHold, expected } = await walkInWorld();
      const template = { ...expected[0] };
      const tooSoon = await book(world.gw, { ...template, start: '2026-12-05T10:00:00-07:00', end: '2026-12-05T11:45:00-07:00' });
      expectRefusalWithSlots(tooSoon, expected, otherHold, 'Appointment.start');
      const offGrid = await book(world.gw, { ...template, start: '2026-12-08T09:07:00-07:00', end: '2026-12-08T10:52:00-07:00' });
      expectRefusalWithSlots(offGrid, expected, otherHold, 'Appointment.start');
      expect(offGrid.body.issue[1].diagnostics).to.contain('is not a slot $find proposes');
      expect((await fhirFetch(`${world.gw.baseUrl}/fhir/Appointment?based-on=ServiceRequest/${serviceRequestId}`)).body.total).to.equal(0);
    });

    it('refuses an update to arrived of an Appointment that is only held, or was never booked', async () => {
      const { serviceRequestId, otherHold, expected } = await walkInWorld();
      clock.set('2026-12-07T22:00:00Z'); // Monday 15:00 MST: the held time has come
      const heldArrival = await fhirFetch(`${world.gw.baseUrl}/fhir/Appointment/${otherHold.id}`, {
        method: 'PUT',
        body: { ...otherHold, status: 'arrived' },
      });
      expect(heldArrival.status).to.equal(422);
      expect(heldArrival.body.issue[0].diagnostics).to.match(/^No walk-ins: an appointment that is pending/);
      expect(offersOf(heldArrival.body)).to.have.length(3);

      clock.set('2026-12-04T22:00:00Z');
      const unknown = {
        resourceType: 'Appointment',
        id: `never-booked-${randomUUID().slice(0, 8)}`,
        status: 'arrived',
        start: '2026-12-04T15:30:00-07:00',
        end: '2026-12-04T17:15:00-07:00',
        basedOn: [{ reference: `ServiceRequest/${serviceRequestId}` }],
        participant: [{ actor: { reference: 'Location/hin-denver-cherry-creek' }, status: 'accepted' }],
      };
      const neverBooked = await fhirFetch(`${world.gw.baseUrl}/fhir/Appointment/${unknown.id}`, { method: 'PUT', body: unknown });
      expectRefusalWithSlots(neverBooked, expected, otherHold, 'Appointment.status');
    });
  });

  describe('multi-site $find: several sites, near the home, ranked by earliest start then distance', () => {
    const NASHVILLE = ['hin-nashville-green-hills', 'hin-nashville-midtown', 'hin-nashville-donelson'];
    const siteOf = (a: any): string =>
      a.participant.find((p: any) => p.actor.reference?.startsWith('Location/')).actor.reference.slice('Location/'.length);
    const toRad = (d: number): number => (d * Math.PI) / 180;
    const km = (a: { latitude: number; longitude: number }, b: { latitude: number; longitude: number }): number => {
      const h =
        Math.sin(toRad(b.latitude - a.latitude) / 2) ** 2 +
        Math.cos(toRad(a.latitude)) * Math.cos(toRad(b.latitude)) * Math.sin(toRad(b.longitude - a.longitude) / 2) ** 2;
      return 2 * 6371.0088 * Math.asin(Math.sqrt(h));
    };

    // A home beside Midtown: the confirmed site (Green Hills) is not the nearest.
    const HOME = { latitude: 36.1512, longitude: -86.7985 };
    const livingAtHome = (sr: any): void => {
      const patient = sr.contained.find((r: any) => r.resourceType === 'Patient');
      patient.address[0].extension = [
        {
          url: 'http://hl7.org/fhir/StructureDefinition/geolocation',
          extension: [
            { url: 'latitude', valueDecimal: HOME.latitude },
            { url: 'longitude', valueDecimal: HOME.longitude },
          ],
        },
      ];
    };

    /** Distances from the patient's home to the Nashville sites, their positions read over HTTP. */
    async function distancesFromHome(): Promise<Map<string, number>> {
      const home = HOME;
      const result = new Map<string, number>();
      for (const id of NASHVILLE) result.set(id, km(home, (await fhirFetch(`${world.gw.baseUrl}/fhir/Location/${id}`)).body.position));
      return result;
    }

    function expectRanked(proposals: any[], distances: Map<string, number>): void {
      for (let i = 1; i < proposals.length; i++) {
        const [a, b] = [proposals[i - 1], proposals[i]];
        const [ta, tb] = [new Date(a.start).getTime(), new Date(b.start).getTime()];
        expect(ta, `${a.start} before ${b.start}`).to.be.at.most(tb);
        if (ta === tb)
          expect(distances.get(siteOf(a))!, `${siteOf(a)} nearer than ${siteOf(b)} at ${a.start}`).to.be.at.most(distances.get(siteOf(b))!);
      }
    }

    it('proposes across the sites asked for, earliest first and nearer first at the same start, and says which site it left out and why', async () => {
      const { serviceRequestId } = await clearedReferral(world.gw, 'infliximab', livingAtHome);
      const distances = await distancesFromHome();
      const found = await fhirFetch(
        `${world.gw.baseUrl}/fhir/Appointment/$find?referral=ServiceRequest/${serviceRequestId}&location=hin-nashville-midtown,hin-atlanta-midtown&location=Location/hin-nashville-donelson&location=hin-nashville-green-hills&_count=12`,
      );
      expect(found.status, JSON.stringify(found.body?.issue)).to.equal(200);
      const proposals = found.body.entry.filter((e: any) => e.search.mode === 'match').map((e: any) => e.resource);
      expect(proposals).to.have.length(12);
      expect(new Set(proposals.map(siteOf)).size, 'more than one site proposed').to.be.greaterThan(1);
      expect(proposals.every((a: any) => NASHVILLE.includes(siteOf(a)))).to.equal(true);
      expectRanked(proposals, distances);
      // Same-start ties across sites occur, so the distance order is exercised, not only time.
      const ties = proposals.filter(
        (a: any, i: number) => i > 0 && new Date(a.start).getTime() === new Date(proposals[i - 1].start).getTime(),
      );
      expect(ties.length, proposals.map((a: any) => `${a.start} ${siteOf(a)}`).join('; ')).to.be.greaterThan(0);
      const outcome = found.body.entry.find((e: any) => e.search.mode === 'outcome').resource;
      expect(outcome.issue).to.have.length(1);
      expect(outcome.issue[0].severity).to.equal('warning');
      expect(outcome.issue[0].diagnostics).to.contain('Atlanta Midtown is not in the network');

      // The same search as Parameters (POST), location as References.
      const posted = await fhirFetch(`${world.gw.baseUrl}/fhir/Appointment/$find`, {
        body: {
          resourceType: 'Parameters',
          parameter: [
            { name: 'referral', valueReference: { reference: `ServiceRequest/${serviceRequestId}` } },
            ...['hin-nashville-midtown', 'hin-atlanta-midtown', 'hin-nashville-donelson', 'hin-nashville-green-hills'].map((id) => ({
              name: 'location',
              valueReference: { reference: `Location/${id}` },
            })),
            { name: '_count', valueInteger: 12 },
          ],
        },
      });
      expect(posted.status, JSON.stringify(posted.body?.issue)).to.equal(200);
      expect(posted.body.entry.filter((e: any) => e.search.mode === 'match').map((e: any) => e.resource)).to.deep.equal(proposals);

      // A proposal at another allowed site books there.
      const elsewhere = proposals.find((a: any) => siteOf(a) !== 'hin-nashville-green-hills');
      const booked = await book(world.gw, elsewhere);
      expect(booked.status, JSON.stringify(booked.body?.issue)).to.equal(201);
      expect(siteOf(booked.body)).to.equal(siteOf(elsewhere));
      expect(booked.body.start).to.equal(elsewhere.start);
      // And is worked there: cancelled, its chair freed for the next $find at that site.
      const cancelled = await fhirFetch(`${world.gw.baseUrl}/fhir/Appointment/${booked.body.id}`, {
        method: 'PUT',
        body: { ...booked.body, status: 'cancelled' },
      });
      expect(cancelled.status, JSON.stringify(cancelled.body?.issue)).to.equal(200);
      const again = await fhirFetch(
        `${world.gw.baseUrl}/fhir/Appointment/$find?referral=ServiceRequest/${serviceRequestId}&location=${siteOf(elsewhere)}&_count=12`,
      );
      expect(again.body.entry.map((e: any) => `${e.resource.start} ${e.resource.participant[2].actor.identifier.value}`)).to.include(
        `${elsewhere.start} ${elsewhere.participant[2].actor.identifier.value}`,
      );
    });

    it('takes near (FHIR latitude|longitude|distance|units, empty point = the home) with the evening filter across sites', async () => {
      const { serviceRequestId } = await clearedReferral(world.gw, 'infliximab', livingAtHome);
      const distances = await distancesFromHome();
      const within = [...distances].filter(([, d]) => d <= 8).map(([id]) => id);
      expect(within.length, 'the test needs sites on both sides of 8 km').to.be.within(1, NASHVILLE.length - 1);
      const found = await fhirFetch(
        `${world.gw.baseUrl}/fhir/Appointment/$find?referral=ServiceRequest/${serviceRequestId}&near=${encodeURIComponent('||8|km')}&_count=10`,
      );
      expect(found.status, JSON.stringify(found.body?.issue)).to.equal(200);
      const proposals = found.body.entry.map((e: any) => e.resource);
      expect(proposals.length).to.be.greaterThan(0);
      expect(proposals.every((a: any) => within.includes(siteOf(a)))).to.equal(true);
      expectRanked(proposals, distances);

      const evenings = await fhirFetch(
        `${world.gw.baseUrl}/fhir/Appointment/$find?referral=ServiceRequest/${serviceRequestId}&near=${encodeURIComponent('||20|km')}&evenings-or-weekends=true&_count=10`,
      );
      expect(evenings.status, JSON.stringify(evenings.body?.issue)).to.equal(200);
      const late = evenings.body.entry.map((e: any) => e.resource);
      expect(late.length).to.be.greaterThan(0);
      for (const a of late) {
        // Site-local wall clock: the offset is the site's, so the text is local time.
        const local = new Date(Date.parse(a.start.slice(0, 19) + 'Z'));
        const weekend = local.getUTCDay() === 0 || local.getUTCDay() === 6;
        expect(weekend || local.getUTCHours() >= 17, a.start).to.equal(true);
      }
      expectRanked(late, distances);
    });

    it('refuses when no site asked for is allowed, each with why, and a malformed near', async () => {
      const { serviceRequestId } = await clearedReferral(world.gw, 'infliximab');
      const refused = await fhirFetch(
        `${world.gw.baseUrl}/fhir/Appointment/$find?referral=ServiceRequest/${serviceRequestId}&location=hin-atlanta-midtown,hin-charlotte-elizabeth`,
      );
      expect(refused.status).to.equal(422);
      expect(refused.body.issue.map((i: any) => i.expression[0])).to.deep.equal(['location', 'location']);
      expect(refused.body.issue[1].diagnostics).to.contain('not an active infusion site');
      const malformed = await fhirFetch(`${world.gw.baseUrl}/fhir/Appointment/$find?referral=ServiceRequest/${serviceRequestId}&near=12km`);
      expect(malformed.status).to.equal(400);
      expect(malformed.body.issue[0].expression).to.deep.equal(['near']);
    });
  });

  it('refuses a reschedule with less notice than the pharmacy needs, and takes one with enough', async () => {
    const { serviceRequestId } = await clearedReferral(world.gw, 'tocilizumab');
    const [proposal] = await find(world.gw, serviceRequestId, '&_count=1');
    const booked = await book(world.gw, proposal);
    expect(booked.status).to.equal(201);
    clock.set('2026-12-07T16:00:00Z'); // Monday 09:00 MST, the morning of the visit
    const late = { ...booked.body, start: '2026-12-07T17:00:00-07:00', end: '2026-12-07T18:45:00-07:00' };
    const refused = await fhirFetch(`${world.gw.baseUrl}/fhir/Appointment/${booked.body.id}`, { method: 'PUT', body: late });
    expect(refused.status).to.equal(422);
    expect(refused.body.issue[0].expression).to.deep.equal(['Appointment.start']);
    const moved = { ...booked.body, start: '2026-12-09T09:00:00-07:00', end: '2026-12-09T10:45:00-07:00' };
    const accepted = await fhirFetch(`${world.gw.baseUrl}/fhir/Appointment/${booked.body.id}`, { method: 'PUT', body: moved });
    expect(accepted.status, JSON.stringify(accepted.body?.issue)).to.equal(200);
    expect(accepted.body.start).to.equal('2026-12-09T09:00:00-07:00');
  });

  it('keeps the appointment life cycle: no visit recorded ahead of its day, a chair change moves the booking, no revival after a cancellation', async () => {
    const { serviceRequestId } = await clearedReferral(world.gw, 'tocilizumab');
    const [proposal] = await find(world.gw, serviceRequestId, '&_count=1');
    const booked = (await book(world.gw, proposal)).body;
    const url = `${world.gw.baseUrl}/fhir/Appointment/${booked.id}`;
    const early = await fhirFetch(url, { method: 'PUT', body: { ...booked, status: 'fulfilled' } });
    expect(early.status).to.equal(422);
    expect(early.body.issue[0].expression).to.deep.equal(['Appointment.status']);
    const swapped = structuredClone(booked);
    swapped.participant[2].actor.identifier.value = 'DEN-CCK/chair-7';
    swapped.participant[2].actor.display = 'Chair 7';
    const swap = await fhirFetch(url, { method: 'PUT', body: swapped });
    expect(swap.status, JSON.stringify(swap.body?.issue)).to.equal(200);
    // Moving to another chair is a move: the chair booking follows it, so chair-7 is now taken.
    const other = await clearedReferral(world.gw, 'tocilizumab');
    const onChair7 = {
      ...swapped,
      id: undefined,
      status: 'proposed',
      basedOn: [{ reference: `ServiceRequest/${other.serviceRequestId}` }],
    };
    delete onChair7.id;
    delete onChair7.meta;
    delete onChair7.identifier;
    const taken = await book(world.gw, onChair7);
    expect(taken.status).to.equal(409);
    expect(taken.body.issue[0].diagnostics).to.contain('Chair chair-7');
    const cancelled = (await fhirFetch(url, { method: 'PUT', body: { ...swap.body, status: 'cancelled' } })).body;
    const revived = await fhirFetch(url, { method: 'PUT', body: { ...cancelled, status: 'booked' } });
    expect(revived.status).to.equal(422);
    expect(revived.body.issue[0].diagnostics).to.contain('cannot become booked');
  });

  it('after a dose is given, makes the referral ready for its next planned dose, a maintenance dose', async () => {
    const { serviceRequestId, taskId } = await clearedReferral(world.gw, 'tocilizumab');
    const [proposal] = await find(world.gw, serviceRequestId, '&_count=1');
    const booked = (await book(world.gw, proposal)).body;
    clock.set('2026-12-07T23:00:00Z'); // Monday 16:00 MST, during the visit
    const given = await fhirFetch(`${world.gw.baseUrl}/fhir/Appointment/${booked.id}`, {
      method: 'PUT',
      body: { ...booked, status: 'fulfilled' },
    });
    expect(given.status, JSON.stringify(given.body?.issue)).to.equal(200);
    expect(businessStatusOf((await fhirFetch(`${world.gw.baseUrl}/fhir/Task/${taskId}`)).body)).to.equal('ready-to-schedule');
    const [next] = await find(world.gw, serviceRequestId, '&_count=1');
    expect(next.description).to.equal('tocilizumab infusion (maintenance dose)');
    expect(next.minutesDuration).to.equal(90);
  });

  it('publishes $find, $hold and $book in the CapabilityStatement, with their OperationDefinitions', async () => {
    const metadata = await fhirFetch(`${world.gw.baseUrl}/fhir/metadata`);
    const appointment = metadata.body.rest[0].resource.find((r: any) => r.type === 'Appointment');
    expect(appointment.operation.map((o: any) => o.name)).to.deep.equal(['find', 'hold', 'book']);
    for (const operation of appointment.operation) {
      const definition = await fhirFetch(`${world.gw.baseUrl}/fhir/OperationDefinition/${operation.definition.split('/').pop()}`);
      expect(definition.status).to.equal(200);
      expect(definition.body.url).to.equal(operation.definition);
    }
  });

  it('frees the chair on a cancellation and returns the referral to ready-to-schedule', async () => {
    const { serviceRequestId, taskId } = await clearedReferral(world.gw, 'tocilizumab');
    const [proposal] = await find(world.gw, serviceRequestId, '&_count=1');
    const booked = await book(world.gw, proposal);
    const cancelled = await fhirFetch(`${world.gw.baseUrl}/fhir/Appointment/${booked.body.id}`, {
      method: 'PUT',
      body: { ...booked.body, status: 'cancelled' },
    });
    expect(cancelled.status, JSON.stringify(cancelled.body?.issue)).to.equal(200);
    expect(businessStatusOf((await fhirFetch(`${world.gw.baseUrl}/fhir/Task/${taskId}`)).body)).to.equal('ready-to-schedule');
    const [again] = await find(world.gw, serviceRequestId, '&_count=1');
    expect(again.start).to.equal(proposal.start);
    expect(again.participant[2].actor.identifier.value).to.equal(proposal.participant[2].actor.identifier.value);
  });
});

for (const engine of ['sqlite', 'postgres'] as Engine[]) {
  describe(`no double booking, ever (${engine})`, function () {
    this.timeout(120_000);
    const clock = movableClock('2026-12-04T22:00:00Z');
    let world: Awaited<ReturnType<typeof startWorld>>;
    before(async () => {
      world = await startWorld(engine, clock);
    });
    after(async () => {
      await world.stop();
    });

    it('gives exactly one booking and 49 conflicts naming the slot to 50 concurrent $book calls for one chair and time', async () => {
      // Fifty cleared referrals, fifty coordinators, one chair and time.
      const referrals: Array<{ serviceRequestId: string }> = [];
      for (let i = 0; i < 50; i += 1) referrals.push(await clearedReferral(world.gw, 'tocilizumab'));
      const [proposal] = await find(world.gw, referrals[0]!.serviceRequestId, '&_count=1');
      const attempts = referrals.map((r) => ({ ...proposal, basedOn: [{ reference: `ServiceRequest/${r.serviceRequestId}` }] }));
      const results = await Promise.all(attempts.map((a) => book(world.gw, a)));
      const statuses = results.map((r) => r.status);
      expect(
        statuses.filter((s) => s === 201),
        JSON.stringify(results.find((r) => r.status !== 201 && r.status !== 409)?.body),
      ).to.have.length(1);
      expect(statuses.filter((s) => s === 409)).to.have.length(49);
      const conflictIssue = results.find((r) => r.status === 409)!.body.issue[0];
      expect(conflictIssue.expression).to.deep.equal(['Appointment.start']);
      expect(conflictIssue.diagnostics).to.contain(
        'Chair chair-1 at Harbor Infusion Center - Denver Cherry Creek is taken from Monday, December 7, 2026 at 3:00 PM MST',
      );
      const booked = await fhirFetch(
        `${world.gw.baseUrl}/fhir/Appointment?status=booked&location=Location/hin-denver-cherry-creek&_count=100`,
      );
      expect(booked.body.total).to.equal(1);
    });

    it('offers a walk-in the slots $find gives, never a chair booked or held in the store', async () => {
      const first = await clearedReferral(world.gw, 'tocilizumab');
      const [proposal] = await find(world.gw, first.serviceRequestId, '&_count=1');
      expect((await book(world.gw, proposal)).status).to.equal(201);
      const walkIn = await clearedReferral(world.gw, 'tocilizumab');
      const expected = await find(world.gw, walkIn.serviceRequestId, '&_count=3');
      const refused = await fhirFetch(`${world.gw.baseUrl}/fhir/Appointment`, {
        body: { ...expected[0], status: 'arrived', basedOn: [{ reference: `ServiceRequest/${walkIn.serviceRequestId}` }] },
      });
      expect(refused.status).to.equal(422);
      const chairAndStart = (a: any): string => `${a.start} ${a.participant[2].actor.identifier.value}`;
      expect(refused.body.contained.map(chairAndStart)).to.deep.equal(expected.map(chairAndStart));
      expect(refused.body.contained.map(chairAndStart)).to.not.include(chairAndStart(proposal));
    });
  });
}
