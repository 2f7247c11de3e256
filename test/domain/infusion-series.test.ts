import { expect } from 'chai';
import { findDrugById, parseDrugCatalog, type CatalogDrug } from '../../src/directory/rules/drug-catalog.js';
import { DEFAULT_RENEWAL_NOTICE_DAYS, isRenewalDue, planSeries } from '../../src/scheduling/rules/infusion-series.js';
import { readFixture } from '../support/fixtures.js';

const catalog = parseDrugCatalog(readFixture('drug-catalog.json')).catalog;
function drug(id: string): CatalogDrug {
  const found = catalog && findDrugById(catalog, id);
  if (!found) throw new Error(`no ${id} in the fixture catalog`);
  return found;
}

const iso = (dates: Date[]): string[] => dates.map((d) => d.toISOString());
const at = (value: string): Date => new Date(value);
// Wednesday 2026-12-16 09:30 CST.
const firstStart = at('2026-12-16T15:30:00Z');
// The order is valid through 2027-06-30 in Chicago.
const orderValidUntil = at('2027-06-30T23:59:59-05:00');

describe('infusion series', function () {
  it("plans infliximab induction at weeks 0, 2 and 6, then every 8 weeks, within the order's validity", async function () {
    const plan = planSeries({ firstStart, drug: drug('infliximab'), orderValidUntil, timeZone: 'America/Chicago' });
    expect(iso(plan.doses)).to.deep.equal([
      '2026-12-16T15:30:00.000Z', // week 0
      '2026-12-30T15:30:00.000Z', // week 2
      '2027-01-27T15:30:00.000Z', // week 6
      '2027-03-24T14:30:00.000Z', // week 14, 09:30 CDT after the spring-forward change
      '2027-05-19T14:30:00.000Z', // week 22
    ]);
    expect(plan.firstUncoveredDose?.toISOString()).to.equal('2027-07-14T14:30:00.000Z'); // week 30
  });

  it('needs a renewal when the order ends before the series would, due 30 days before the end', async function () {
    const plan = planSeries({ firstStart, drug: drug('infliximab'), orderValidUntil, timeZone: 'America/Chicago' });
    expect(plan.renewalNeeded).to.equal(true);
    expect(DEFAULT_RENEWAL_NOTICE_DAYS).to.equal(30);
    expect(plan.renewalDueBy?.toISOString()).to.equal('2027-06-01T04:59:59.000Z');
    expect(isRenewalDue(plan, at('2027-05-31T12:00:00Z'))).to.equal(false);
    expect(isRenewalDue(plan, at('2027-06-01T05:00:00Z'))).to.equal(true);
  });

  it('takes the renewal notice as a parameter', async function () {
    const plan = planSeries({ firstStart, drug: drug('infliximab'), orderValidUntil, renewalNoticeDays: 45, timeZone: 'America/Chicago' });
    expect(plan.renewalDueBy?.toISOString()).to.equal('2027-05-17T04:59:59.000Z');
  });

  it('needs no renewal when the whole series fits in the order', async function () {
    const plan = planSeries({
      firstStart,
      drug: drug('vedolizumab'),
      phase: 'maintenance',
      maxDoses: 3,
      orderValidUntil,
      timeZone: 'America/Chicago',
    });
    expect(iso(plan.doses)).to.deep.equal(['2026-12-16T15:30:00.000Z', '2027-02-10T15:30:00.000Z', '2027-04-07T14:30:00.000Z']);
    expect(plan).to.deep.include({ renewalNeeded: false, reauthorizationNeeded: false });
    expect(plan).not.to.have.property('renewalDueBy');
    expect(plan).not.to.have.property('firstUncoveredDose');
    expect(isRenewalDue(plan, at('2030-01-01T00:00:00Z'))).to.equal(false);
  });

  it('plans doses only within the authorization and says a new one is needed', async function () {
    const plan = planSeries({
      firstStart,
      drug: drug('infliximab'),
      orderValidUntil,
      authorizationEnd: at('2027-02-28T23:59:59-06:00'),
      maxDoses: 4,
      timeZone: 'America/Chicago',
    });
    expect(iso(plan.doses)).to.deep.equal(['2026-12-16T15:30:00.000Z', '2026-12-30T15:30:00.000Z', '2027-01-27T15:30:00.000Z']);
    // The order covers all four doses; the authorization only three.
    expect(plan).to.deep.include({ renewalNeeded: false, reauthorizationNeeded: true });
    expect(plan.firstUncoveredDose?.toISOString()).to.equal('2027-03-24T14:30:00.000Z');
  });

  it('plans no dose when the first one would fall after the order has ended', async function () {
    const plan = planSeries({
      firstStart: at('2027-07-07T14:30:00Z'),
      drug: drug('infliximab'),
      orderValidUntil,
      timeZone: 'America/Chicago',
    });
    expect(plan.doses).to.deep.equal([]);
    expect(plan.renewalNeeded).to.equal(true);
    expect(plan.firstUncoveredDose?.toISOString()).to.equal('2027-07-07T14:30:00.000Z');
  });

  it("counts a dose on the order's last instant as covered", async function () {
    const plan = planSeries({
      firstStart,
      drug: drug('infliximab'),
      phase: 'maintenance',
      orderValidUntil: at('2027-02-10T15:30:00Z'),
      timeZone: 'America/Chicago',
    });
    expect(iso(plan.doses)).to.deep.equal(['2026-12-16T15:30:00.000Z', '2027-02-10T15:30:00.000Z']);
  });

  it('skips the induction for a patient already on maintenance', async function () {
    const plan = planSeries({
      firstStart,
      drug: drug('infliximab'),
      phase: 'maintenance',
      maxDoses: 3,
      orderValidUntil,
      timeZone: 'America/Chicago',
    });
    expect(iso(plan.doses)).to.deep.equal(['2026-12-16T15:30:00.000Z', '2027-02-10T15:30:00.000Z', '2027-04-07T14:30:00.000Z']);
  });

  it('keeps UTC times without a time zone', async function () {
    const plan = planSeries({ firstStart, drug: drug('natalizumab'), maxDoses: 4, orderValidUntil });
    expect(iso(plan.doses)).to.deep.equal([
      '2026-12-16T15:30:00.000Z',
      '2027-01-13T15:30:00.000Z',
      '2027-02-10T15:30:00.000Z',
      '2027-03-10T15:30:00.000Z',
    ]);
  });

  it('refuses an interval or a dose count that cannot make a series', async function () {
    expect(() => planSeries({ firstStart, drug: { typicalIntervalWeeks: 0 }, orderValidUntil })).to.throw(RangeError);
    expect(() => planSeries({ firstStart, drug: drug('infliximab'), maxDoses: 0, orderValidUntil })).to.throw(RangeError);
  });
});
