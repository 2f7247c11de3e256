import { TIMEZONE_EXTENSION_URL } from '../../src/directory/rules/site-directory.js';
import { expect } from 'chai';
import type { Bundle, HealthcareService, Location, Resource } from 'fhir/r4.js';
import { DateTime } from 'luxon';
import { OperationOutcomeError } from '../../src/fhir/outcomes.js';
import {
  CHAIR_COUNT_EXTENSION_URL,
  epochDayOf,
  holidayDates,
  holidaysNamedIn,
  instantWithSiteOffset,
  isClosedOn,
  openIntervals,
  parseSiteCalendar,
  siteCalendarFromLocation,
  utcOfWallTime,
  type SiteCalendar,
} from '../../src/scheduling/rules/site-hours.js';
import { readFixture } from '../support/fixtures.js';

const directory = readFixture<Bundle<Resource>>('directory/demo-directory.bundle.json');
const resources = (directory.entry ?? []).map((e) => e.resource as Resource);

function fixtureSite(id: string, options: Parameters<typeof siteCalendarFromLocation>[2] = {}): SiteCalendar {
  const location = resources.find((r): r is Location => r.resourceType === 'Location' && r.id === `hin-${id}`);
  const service = resources.find((r): r is HealthcareService => r.resourceType === 'HealthcareService' && r.id === `hs-${id}`);
  if (!location || !service) throw new Error(`no fixture site ${id}`);
  return siteCalendarFromLocation(location, service, options);
}

const iso = (intervals: Array<{ start: Date; end: Date }>): string[][] =>
  intervals.map((i) => [i.start.toISOString(), i.end.toISOString()]);

function allDaySite(timeZone: string): SiteCalendar {
  return {
    locationId: 'always-open',
    timeZone,
    active: true,
    weeklyHours: [{ daysOfWeek: ['mon', 'tue', 'wed', 'thu', 'fri', 'sat', 'sun'], opening: '00:00', closing: '24:00' }],
    chairs: ['chair-1'],
    closures: { holidays: [], holidayObservance: 'actual-date', dates: [], periods: [] },
  };
}

describe('site hours', function () {
  it('reads a fixture site: its zone, weekly hours, chairs and the six holidays it names', async function () {
    const calendar = fixtureSite('nashville-donelson');
    expect(calendar).to.deep.include({ locationId: 'hin-nashville-donelson', timeZone: 'America/Chicago', active: true });
    expect(calendar.weeklyHours).to.deep.equal([{ daysOfWeek: ['mon', 'tue', 'wed', 'thu', 'fri'], opening: '07:30', closing: '17:30' }]);
    expect(calendar.chairs).to.have.length(8);
    expect(calendar.chairs[0]).to.equal('chair-1');
    expect(calendar.closures.holidays).to.have.members([
      'new-years-day',
      'memorial-day',
      'independence-day',
      'labor-day',
      'thanksgiving-day',
      'christmas-day',
    ]);
  });

  it('keeps a 07:30-17:30 day at 07:30-17:30 local on both sides of the fall-back change of 2026-11-01', async function () {
    const calendar = fixtureSite('nashville-donelson');
    const intervals = openIntervals(calendar, new Date('2026-10-29T00:00:00Z'), new Date('2026-11-04T00:00:00Z'));
    expect(iso(intervals)).to.deep.equal([
      ['2026-10-29T12:30:00.000Z', '2026-10-29T22:30:00.000Z'], // Thursday, CDT (UTC-5)
      ['2026-10-30T12:30:00.000Z', '2026-10-30T22:30:00.000Z'], // Friday, CDT
      ['2026-11-02T13:30:00.000Z', '2026-11-02T23:30:00.000Z'], // Monday, CST (UTC-6)
      ['2026-11-03T13:30:00.000Z', '2026-11-03T23:30:00.000Z'],
    ]);
  });

  it('keeps a 07:30-17:30 day at 07:30-17:30 local on both sides of the spring-forward change of 2027-03-14', async function () {
    const calendar = fixtureSite('nashville-donelson');
    const intervals = openIntervals(calendar, new Date('2027-03-12T00:00:00Z'), new Date('2027-03-16T00:00:00Z'));
    expect(iso(intervals)).to.deep.equal([
      ['2027-03-12T13:30:00.000Z', '2027-03-12T23:30:00.000Z'], // Friday, CST
      ['2027-03-15T12:30:00.000Z', '2027-03-15T22:30:00.000Z'], // Monday, CDT
    ]);
  });

  it('keeps the same UTC hours all year at a Phoenix site, which has no daylight-saving time', async function () {
    const calendar = fixtureSite('phoenix-camelback');
    // Local days: midnight MST (UTC-7) is 07:00 UTC. 06:00-18:00 MST is 13:00-01:00 UTC.
    const october = openIntervals(calendar, new Date('2026-10-30T07:00:00Z'), new Date('2026-10-31T07:00:00Z'));
    const november = openIntervals(calendar, new Date('2026-11-02T07:00:00Z'), new Date('2026-11-03T07:00:00Z'));
    expect(iso(october)).to.deep.equal([['2026-10-30T13:00:00.000Z', '2026-10-31T01:00:00.000Z']]);
    expect(iso(november)).to.deep.equal([['2026-11-02T13:00:00.000Z', '2026-11-03T01:00:00.000Z']]);
  });

  it('gives an all-day site 25 hours on the fall-back day and 23 on the spring-forward day, merged across midnight', async function () {
    const calendar = allDaySite('America/Chicago');
    const fall = openIntervals(calendar, new Date('2026-11-01T05:00:00Z'), new Date('2026-11-02T06:00:00Z'));
    expect(iso(fall)).to.deep.equal([['2026-11-01T05:00:00.000Z', '2026-11-02T06:00:00.000Z']]);
    const fallDay = [
      utcOfWallTime('America/Chicago', epochDayOf(2026, 11, 1), 0),
      utcOfWallTime('America/Chicago', epochDayOf(2026, 11, 2), 0),
    ];
    expect((fallDay[1]! - fallDay[0]!) / 3_600_000).to.equal(25);
    const springDay = [
      utcOfWallTime('America/Chicago', epochDayOf(2027, 3, 14), 0),
      utcOfWallTime('America/Chicago', epochDayOf(2027, 3, 15), 0),
    ];
    expect((springDay[1]! - springDay[0]!) / 3_600_000).to.equal(23);
  });

  it('turns every wall-clock time of the change days of several zones into an instant that shows that time', async function () {
    const zones = ['America/Chicago', 'America/New_York', 'America/Phoenix', 'America/Denver', 'Europe/London', 'Australia/Lord_Howe'];
    const days: Array<[number, number, number]> = [
      [2026, 11, 1],
      [2027, 3, 14],
      [2026, 10, 25],
      [2026, 10, 4],
      [2027, 4, 4],
    ];
    const wall = (ms: number, zone: string): string => DateTime.fromMillis(ms, { zone }).toFormat('yyyy-MM-dd HH:mm');
    let repeated = 0;
    let skipped = 0;
    for (const zone of zones) {
      for (const [year, month, day] of days) {
        for (let minute = 0; minute < 1440; minute += 15) {
          const asked = DateTime.fromObject(
            { year, month, day, hour: Math.floor(minute / 60), minute: minute % 60 },
            { zone: 'UTC' },
          ).toFormat('yyyy-MM-dd HH:mm');
          const instant = utcOfWallTime(zone, epochDayOf(year, month, day), minute);
          if (wall(instant, zone) === asked) {
            // A repeated time (fall-back) is its first occurrence: no earlier instant shows it.
            const earlier = [1, 2, 3, 4, 5, 6, 7, 8].map((k) => wall(instant - k * 15 * 60_000, zone));
            if (earlier.includes(asked)) throw new Error(`${zone} ${asked}: not the first occurrence`);
            if ([1, 2, 3, 4].some((k) => wall(instant + k * 15 * 60_000, zone) === asked)) repeated++;
          } else {
            // A skipped time (spring-forward) moves forward by the gap, as luxon moves it.
            const luxon = DateTime.fromObject(
              { year, month, day, hour: Math.floor(minute / 60), minute: minute % 60 },
              { zone },
            ).toMillis();
            expect(instant, `${zone} ${asked}`).to.equal(luxon);
            expect(instant).to.be.greaterThan(utcOfWallTime(zone, epochDayOf(year, month, day), minute - 15));
            skipped++;
          }
        }
      }
    }
    // Skipped: 02:00-02:45 on 2027-03-14 in Chicago, New York and Denver; 02:00 and 02:15 on
    // 2026-10-04 at Lord Howe (a half-hour change). Phoenix skips nothing.
    expect(skipped).to.equal(3 * 4 + 2);
    expect(repeated).to.be.greaterThan(0);
  });

  it('reads 01:30 on the fall-back day as its first occurrence (CDT) and a skipped 02:30 as 03:30 CDT', async function () {
    expect(new Date(utcOfWallTime('America/Chicago', epochDayOf(2026, 11, 1), 90)).toISOString()).to.equal('2026-11-01T06:30:00.000Z');
    expect(new Date(utcOfWallTime('America/Chicago', epochDayOf(2027, 3, 14), 150)).toISOString()).to.equal('2027-03-14T08:30:00.000Z');
  });

  it("writes an instant with the site's UTC offset of that moment, as an Appointment carries it", async function () {
    expect(instantWithSiteOffset(new Date('2026-12-16T15:30:00Z'), 'America/Chicago')).to.equal('2026-12-16T09:30:00-06:00');
    expect(instantWithSiteOffset(new Date('2026-07-16T15:30:00Z'), 'America/Chicago')).to.equal('2026-07-16T10:30:00-05:00');
    expect(instantWithSiteOffset(new Date('2026-07-16T15:30:00Z'), 'America/Phoenix')).to.equal('2026-07-16T08:30:00-07:00');
    expect(instantWithSiteOffset(new Date('2026-12-16T15:30:00Z'), 'Europe/London')).to.equal('2026-12-16T15:30:00Z');
    expect(Date.parse(instantWithSiteOffset(new Date('2026-11-01T06:30:00Z'), 'America/Chicago'))).to.equal(
      Date.parse('2026-11-01T06:30:00Z'),
    );
  });

  it('computes the six holidays by rule, with the federal observed weekday when one falls on a weekend', async function () {
    const closures = fixtureSite('nashville-donelson').closures;
    // 2026: July 4 is a Saturday, observed Friday July 3.
    expect(holidayDates(closures, 2026)).to.deep.equal([
      '2026-01-01',
      '2026-05-25',
      '2026-07-03',
      '2026-07-04',
      '2026-09-07',
      '2026-11-26',
      '2026-12-25',
    ]);
    // 2027: July 4 is a Sunday (-> Monday 5th); Christmas a Saturday (-> Friday 24th); New Year's Day
    // 2028 a Saturday, observed Friday 2027-12-31.
    expect(holidayDates(closures, 2027)).to.deep.equal([
      '2027-01-01',
      '2027-05-31',
      '2027-07-04',
      '2027-07-05',
      '2027-09-06',
      '2027-11-25',
      '2027-12-24',
      '2027-12-25',
      '2027-12-31',
    ]);
    expect(holidayDates({ ...closures, holidayObservance: 'actual-date' }, 2027)).to.deep.equal([
      '2027-01-01',
      '2027-05-31',
      '2027-07-04',
      '2027-09-06',
      '2027-11-25',
      '2027-12-25',
    ]);
  });

  it('recognises the holidays a site names in its free-text availability exceptions', async function () {
    expect(holidaysNamedIn('Closed on Thanksgiving and Christmas Day.')).to.deep.equal(['thanksgiving-day', 'christmas-day']);
    expect(holidaysNamedIn('Closed New Year’s Day and the Fourth of July')).to.deep.equal(['new-years-day', 'independence-day']);
    expect(holidaysNamedIn('Open every day of the year')).to.deep.equal([]);
    expect(holidaysNamedIn(undefined)).to.deep.equal([]);
  });

  it('is closed on Thanksgiving and open the day after', async function () {
    const calendar = fixtureSite('nashville-midtown');
    expect(openIntervals(calendar, new Date('2026-11-26T06:00:00Z'), new Date('2026-11-27T06:00:00Z'))).to.deep.equal([]);
    expect(iso(openIntervals(calendar, new Date('2026-11-27T06:00:00Z'), new Date('2026-11-28T06:00:00Z')))).to.deep.equal([
      ['2026-11-27T13:00:00.000Z', '2026-11-28T02:00:00.000Z'], // 07:00-20:00 CST
    ]);
  });

  it('closes a Saturday site on Independence Day 2026 (a Saturday) and on the observed Friday', async function () {
    const calendar = fixtureSite('nashville-midtown');
    expect(openIntervals(calendar, new Date('2026-07-03T05:00:00Z'), new Date('2026-07-05T05:00:00Z'))).to.deep.equal([]);
    const actualOnly = fixtureSite('nashville-midtown', { holidayObservance: 'actual-date' });
    expect(iso(openIntervals(actualOnly, new Date('2026-07-03T05:00:00Z'), new Date('2026-07-05T05:00:00Z')))).to.deep.equal([
      ['2026-07-03T12:00:00.000Z', '2026-07-04T01:00:00.000Z'], // Friday 07:00-20:00 CDT
    ]);
  });

  it('closes the explicit closure dates a deployment configures', async function () {
    const calendar = fixtureSite('nashville-donelson', { closureDates: ['2026-12-24'] });
    expect(isClosedOn(calendar.closures, '2026-12-24')).to.equal(true);
    expect(isClosedOn(calendar.closures, '2026-12-23')).to.equal(false);
    expect(openIntervals(calendar, new Date('2026-12-24T06:00:00Z'), new Date('2026-12-25T06:00:00Z'))).to.deep.equal([]);
  });

  it("never opens an inactive site, and reads its service's notAvailable period as a closure", async function () {
    const calendar = fixtureSite('charlotte-elizabeth');
    expect(calendar.active).to.equal(false);
    expect(calendar.closures.periods).to.deep.equal([{ start: Date.parse('2026-06-30T04:00:00Z'), reason: 'Site closed' }]);
    expect(openIntervals(calendar, new Date('2026-12-14T00:00:00Z'), new Date('2026-12-19T00:00:00Z'))).to.deep.equal([]);
  });

  it('removes a notAvailable period with times from the day it falls on', async function () {
    const location = resources.find((r): r is Location => r.id === 'hin-nashville-donelson')!;
    const service = resources.find((r): r is HealthcareService => r.id === 'hs-nashville-donelson')!;
    const calendar = siteCalendarFromLocation(location, {
      ...service,
      notAvailable: [{ description: 'Staff training', during: { start: '2026-12-16T12:00:00-06:00', end: '2026-12-16T13:00:00-06:00' } }],
    });
    expect(iso(openIntervals(calendar, new Date('2026-12-16T06:00:00Z'), new Date('2026-12-17T06:00:00Z')))).to.deep.equal([
      ['2026-12-16T13:30:00.000Z', '2026-12-16T18:00:00.000Z'],
      ['2026-12-16T19:00:00.000Z', '2026-12-16T23:30:00.000Z'],
    ]);
  });

  it('reports every problem of an unusable site at once, each with its FHIRPath, and refuses it with 422', async function () {
    const location: Location = {
      resourceType: 'Location',
      id: 'nowhere',
      hoursOfOperation: [{ daysOfWeek: ['mon'], openingTime: '18:00:00', closingTime: '08:00:00' }],
    };
    const service: HealthcareService = {
      resourceType: 'HealthcareService',
      id: 'hs-nowhere',
      location: [{ reference: 'Location/nowhere' }],
    };
    const parsed = parseSiteCalendar(location, service);
    expect(parsed.calendar).to.equal(undefined);
    const expressions = parsed.issues.map((i) => i.expression?.[0]);
    expect(expressions).to.include(`Location.extension('${TIMEZONE_EXTENSION_URL}').value`);
    expect(expressions).to.include(`HealthcareService.extension('${CHAIR_COUNT_EXTENSION_URL}').value`);
    expect(expressions).to.include('Location.hoursOfOperation[0].closingTime');
    expect(parsed.issues.every((i) => (i.expression ?? []).length === 1)).to.equal(true);
    expect(() => siteCalendarFromLocation(location, service))
      .to.throw(OperationOutcomeError)
      .that.satisfies((err: OperationOutcomeError) => err.status === 422);
  });

  it('refuses a time zone that is not an IANA zone', async function () {
    const location: Location = {
      resourceType: 'Location',
      id: 'x',
      extension: [{ url: TIMEZONE_EXTENSION_URL, valueCode: 'Central Time' }],
    };
    const service: HealthcareService = {
      resourceType: 'HealthcareService',
      location: [{ reference: 'Location/x' }],
      extension: [{ url: CHAIR_COUNT_EXTENSION_URL, valueInteger: 4 }],
    };
    const parsed = parseSiteCalendar(location, service);
    expect(parsed.calendar).to.equal(undefined);
    expect(parsed.issues.filter((i) => i.severity === 'error').map((i) => i.code)).to.deep.equal(['value']);
  });
});
