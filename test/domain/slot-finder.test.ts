import { expect } from 'chai';
import type { Bundle, HealthcareService, Location, Resource } from 'fhir/r4.js';
import { DateTime } from 'luxon';
import {
  BusyIndex,
  findSlots,
  type BusyInterval,
  type FindSlotsInput,
  type SlotFilters,
  type SlotProposal,
} from '../../src/scheduling/rules/slot-finder.js';
import {
  DAYS_OF_WEEK,
  openIntervals,
  siteCalendarFromLocation,
  type DayOfWeek,
  type SiteCalendar,
} from '../../src/scheduling/rules/site-hours.js';
import { readFixture } from '../support/fixtures.js';

const directory = readFixture<Bundle<Resource>>('directory/demo-directory.bundle.json');
const resources = (directory.entry ?? []).map((e) => e.resource as Resource);

function fixtureSite(id: string): SiteCalendar {
  const location = resources.find((r): r is Location => r.resourceType === 'Location' && r.id === `hin-${id}`);
  const service = resources.find((r): r is HealthcareService => r.resourceType === 'HealthcareService' && r.id === `hs-${id}`);
  if (!location || !service) throw new Error(`no fixture site ${id}`);
  return siteCalendarFromLocation(location, service);
}

const donelson = fixtureSite('nashville-donelson'); // Mon-Fri 07:30-17:30 Chicago, 8 chairs
const greenHills = fixtureSite('nashville-green-hills'); // Mon-Wed, Fri 08-18, Thu 08-21, Sat 09-14 Chicago
const dallasUptown = fixtureSite('dallas-uptown'); // Mon-Fri 07-21, Sat-Sun 08-17 Chicago
const nashvilleMidtown = fixtureSite('nashville-midtown'); // Mon-Fri 07-20, Sat 08-16 Chicago
const atlantaMidtown = fixtureSite('atlanta-midtown'); // Mon-Fri 07-20, Sat 08-16 New York
const phoenix = fixtureSite('phoenix-camelback'); // Mon-Fri 06-18, Sat 07-13 Phoenix
const denver = fixtureSite('denver-cherry-creek'); // Mon-Fri 07-19, Sat 08-14 Denver

const starts = (proposals: SlotProposal[]): string[] => proposals.map((p) => p.start.toISOString());
const at = (iso: string): Date => new Date(iso);
const busyAll = (site: SiteCalendar, start: string, end: string): BusyInterval[] =>
  site.chairs.map((chairId) => ({ locationId: site.locationId, chairId, start: at(start), end: at(end) }));

describe('slot finder', function () {
  it('proposes starts on a 15-minute grid from the opening time, on the first chair, earliest first', async function () {
    // Wednesday 2026-12-16, 07:00 CST; Donelson opens 07:30 CST (13:30Z).
    const proposals = findSlots({
      sites: [donelson],
      durationMinutes: 45,
      earliest: at('2026-12-16T13:00:00Z'),
      latest: at('2027-01-31T00:00:00Z'),
      limit: 3,
    });
    expect(proposals).to.deep.equal([
      { locationId: 'hin-nashville-donelson', chairId: 'chair-1', start: at('2026-12-16T13:30:00Z'), end: at('2026-12-16T14:15:00Z') },
      { locationId: 'hin-nashville-donelson', chairId: 'chair-1', start: at('2026-12-16T13:45:00Z'), end: at('2026-12-16T14:30:00Z') },
      { locationId: 'hin-nashville-donelson', chairId: 'chair-1', start: at('2026-12-16T14:00:00Z'), end: at('2026-12-16T14:45:00Z') },
    ]);
  });

  it('rounds an earliest start between grid points up to the next one', async function () {
    const proposals = findSlots({
      sites: [donelson],
      durationMinutes: 45,
      earliest: at('2026-12-16T14:07:00Z'),
      latest: at('2027-01-31T00:00:00Z'),
      limit: 1,
    });
    expect(starts(proposals)).to.deep.equal(['2026-12-16T14:15:00.000Z']);
  });

  it('skips a busy chair and offers the next free one', async function () {
    const busy: BusyInterval[] = [
      { locationId: donelson.locationId, chairId: 'chair-1', start: at('2026-12-16T13:30:00Z'), end: at('2026-12-16T16:00:00Z') },
    ];
    const proposals = findSlots({
      sites: [donelson],
      durationMinutes: 45,
      earliest: at('2026-12-16T13:00:00Z'),
      latest: at('2027-01-31T00:00:00Z'),
      busy,
      limit: 1,
    });
    expect(proposals[0]).to.deep.include({ chairId: 'chair-2', start: at('2026-12-16T13:30:00Z') });
  });

  it('waits until a chair is free for the whole visit when every chair is busy', async function () {
    // Every chair booked until 10:00 CST; one chair booked again from 12:00 CST.
    const busy = [
      ...busyAll(donelson, '2026-12-16T13:30:00Z', '2026-12-16T16:00:00Z'),
      { locationId: donelson.locationId, chairId: 'chair-1', start: at('2026-12-16T18:00:00Z'), end: at('2026-12-16T19:00:00Z') },
    ];
    const proposals = findSlots({
      sites: [donelson],
      durationMinutes: 150,
      earliest: at('2026-12-16T13:00:00Z'),
      latest: at('2027-01-31T00:00:00Z'),
      busy,
      limit: 1,
    });
    // chair-1 would run into its 12:00 booking (10:00 + 150 min = 12:30): chair-2 takes it.
    expect(proposals).to.deep.equal([
      { locationId: donelson.locationId, chairId: 'chair-2', start: at('2026-12-16T16:00:00Z'), end: at('2026-12-16T18:30:00Z') },
    ]);
  });

  it('ignores busy time at another site or on a chair the site does not have', async function () {
    const busy: BusyInterval[] = [
      { locationId: greenHills.locationId, chairId: 'chair-1', start: at('2026-12-16T00:00:00Z'), end: at('2026-12-17T00:00:00Z') },
      { locationId: donelson.locationId, chairId: 'chair-99', start: at('2026-12-16T00:00:00Z'), end: at('2026-12-17T00:00:00Z') },
    ];
    const proposals = findSlots({
      sites: [donelson],
      durationMinutes: 45,
      earliest: at('2026-12-16T13:00:00Z'),
      latest: at('2027-01-31T00:00:00Z'),
      busy,
      limit: 1,
    });
    expect(proposals[0]).to.deep.include({ chairId: 'chair-1', start: at('2026-12-16T13:30:00Z') });
  });

  it('offers only visits that end by closing time', async function () {
    // 150 minutes before 17:30 CST: the last start is 15:00 CST; at 15:10 the next is Thursday 07:30.
    const proposals = findSlots({
      sites: [donelson],
      durationMinutes: 150,
      earliest: at('2026-12-16T21:10:00Z'),
      latest: at('2027-01-31T00:00:00Z'),
      limit: 1,
    });
    expect(starts(proposals)).to.deep.equal(['2026-12-17T13:30:00.000Z']);
    const lastOfDay = findSlots({
      sites: [donelson],
      durationMinutes: 150,
      earliest: at('2026-12-16T20:50:00Z'),
      latest: at('2027-01-31T00:00:00Z'),
      limit: 1,
    });
    expect(lastOfDay[0]?.end.toISOString()).to.equal('2026-12-16T23:30:00.000Z');
  });

  it('finds exactly the free starts of a small site', async function () {
    const small: SiteCalendar = {
      locationId: 'small',
      timeZone: 'America/Chicago',
      active: true,
      weeklyHours: [{ daysOfWeek: ['wed'], opening: '08:00', closing: '10:00' }],
      chairs: ['only-chair'],
      closures: { holidays: [], holidayObservance: 'actual-date', dates: [], periods: [] },
    };
    const input: FindSlotsInput = {
      sites: [small],
      durationMinutes: 60,
      stepMinutes: 30,
      earliest: at('2026-12-16T00:00:00Z'),
      latest: at('2026-12-17T00:00:00Z'),
      limit: 10,
    };
    expect(starts(findSlots(input))).to.deep.equal(['2026-12-16T14:00:00.000Z', '2026-12-16T14:30:00.000Z', '2026-12-16T15:00:00.000Z']);
    const busy: BusyInterval[] = [
      { locationId: 'small', chairId: 'only-chair', start: at('2026-12-16T14:30:00Z'), end: at('2026-12-16T15:00:00Z') },
    ];
    expect(starts(findSlots({ ...input, busy }))).to.deep.equal(['2026-12-16T15:00:00.000Z']);
  });

  it('ends every proposal by `latest`', async function () {
    const proposals = findSlots({
      sites: [donelson],
      durationMinutes: 45,
      earliest: at('2026-12-16T13:00:00Z'),
      latest: at('2026-12-16T15:00:00Z'),
      limit: 10,
    });
    expect(starts(proposals)).to.deep.equal([
      '2026-12-16T13:30:00.000Z',
      '2026-12-16T13:45:00.000Z',
      '2026-12-16T14:00:00.000Z',
      '2026-12-16T14:15:00.000Z',
    ]);
  });

  it('offers nothing on Thanksgiving', async function () {
    const proposals = findSlots({
      sites: [donelson],
      durationMinutes: 45,
      earliest: at('2026-11-26T06:00:00Z'),
      latest: at('2026-12-31T00:00:00Z'),
      limit: 1,
    });
    expect(starts(proposals)).to.deep.equal(['2026-11-27T13:30:00.000Z']);
  });

  it('offers evening starts only, at or after 17:00 local, when asked', async function () {
    // From Monday 2026-12-14. Green Hills closes 18:00 except Thursdays (21:00).
    const earliest = at('2026-12-14T06:00:00Z');
    const short = findSlots({
      sites: [greenHills],
      durationMinutes: 45,
      earliest,
      latest: at('2027-01-31T00:00:00Z'),
      filters: { eveningsOnly: true },
      limit: 3,
    });
    expect(starts(short)).to.deep.equal(['2026-12-14T23:00:00.000Z', '2026-12-14T23:15:00.000Z', '2026-12-15T23:00:00.000Z']);
    // A 150-minute first dose fits only on Thursday evening.
    const long = findSlots({
      sites: [greenHills],
      durationMinutes: 150,
      earliest,
      latest: at('2027-01-31T00:00:00Z'),
      filters: { eveningsOnly: true },
      limit: 3,
    });
    expect(starts(long)).to.deep.equal(['2026-12-17T23:00:00.000Z', '2026-12-17T23:15:00.000Z', '2026-12-17T23:30:00.000Z']);
  });

  it('offers weekend starts only, when asked', async function () {
    // From Wednesday 2026-12-16; Dallas Uptown opens 08:00 CST on Saturdays and Sundays.
    const proposals = findSlots({
      sites: [dallasUptown],
      durationMinutes: 240,
      earliest: at('2026-12-16T06:00:00Z'),
      latest: at('2027-01-31T00:00:00Z'),
      filters: { weekendsOnly: true },
      stepMinutes: 60,
      limit: 12,
    });
    expect(proposals[0]?.start.toISOString()).to.equal('2026-12-19T14:00:00.000Z');
    const weekdays = proposals.map((p) => DateTime.fromJSDate(p.start, { zone: 'America/Chicago' }).weekday);
    expect(weekdays.every((d) => d === 6 || d === 7)).to.equal(true);
    expect(weekdays).to.include(7);
  });

  it('offers evenings or weekends, whichever comes first, when asked', async function () {
    // From Friday 2026-12-18 12:00 CST: Green Hills closes 18:00 on Fridays, so a 150-minute visit
    // cannot be an evening one; Saturday 09:00 CST is the first.
    const proposals = findSlots({
      sites: [greenHills],
      durationMinutes: 150,
      earliest: at('2026-12-18T18:00:00Z'),
      latest: at('2027-01-31T00:00:00Z'),
      filters: { eveningsOrWeekends: true },
      limit: 1,
    });
    expect(starts(proposals)).to.deep.equal(['2026-12-19T15:00:00.000Z']);
  });

  it('keeps to the days of the week and the earliest local time asked for', async function () {
    const filters: SlotFilters = { daysOfWeek: ['tue'], startAfterLocal: '13:00' };
    const proposals = findSlots({
      sites: [donelson],
      durationMinutes: 45,
      earliest: at('2026-12-16T06:00:00Z'),
      latest: at('2027-01-31T00:00:00Z'),
      filters,
      limit: 2,
    });
    expect(starts(proposals)).to.deep.equal(['2026-12-22T19:00:00.000Z', '2026-12-22T19:15:00.000Z']);
  });

  it('merges sites in different time zones earliest first, the earlier-listed site first at equal times', async function () {
    // Atlanta opens 07:00 EST (12:00Z), Nashville 07:00 CST (13:00Z).
    const proposals = findSlots({
      sites: [nashvilleMidtown, atlantaMidtown],
      durationMinutes: 45,
      earliest: at('2026-12-16T06:00:00Z'),
      latest: at('2027-01-31T00:00:00Z'),
      limit: 6,
    });
    expect(proposals.map((p) => [p.locationId, p.start.toISOString()])).to.deep.equal([
      ['hin-atlanta-midtown', '2026-12-16T12:00:00.000Z'],
      ['hin-atlanta-midtown', '2026-12-16T12:15:00.000Z'],
      ['hin-atlanta-midtown', '2026-12-16T12:30:00.000Z'],
      ['hin-atlanta-midtown', '2026-12-16T12:45:00.000Z'],
      ['hin-nashville-midtown', '2026-12-16T13:00:00.000Z'],
      ['hin-atlanta-midtown', '2026-12-16T13:00:00.000Z'],
    ]);
  });

  it('moves from the last slot before the fall-back change to the first after it without a shift', async function () {
    // Friday 2026-10-30 15:00 CDT is the last 150-minute start; next is Monday 07:30 CST.
    const proposals = findSlots({
      sites: [donelson],
      durationMinutes: 150,
      earliest: at('2026-10-30T20:00:00Z'),
      latest: at('2026-12-31T00:00:00Z'),
      limit: 2,
    });
    expect(starts(proposals)).to.deep.equal(['2026-10-30T20:00:00.000Z', '2026-11-02T13:30:00.000Z']);
  });

  it('keeps Phoenix on the same UTC hours over the change while Denver shifts by an hour', async function () {
    const first = (site: SiteCalendar, earliest: string): string | undefined =>
      findSlots({
        sites: [site],
        durationMinutes: 60,
        earliest: at(earliest),
        latest: at('2026-12-31T00:00:00Z'),
        limit: 1,
      })[0]?.start.toISOString();
    // Fridays 2026-10-30 and 2026-11-06.
    expect(first(phoenix, '2026-10-30T07:00:00Z')).to.equal('2026-10-30T13:00:00.000Z'); // 06:00 MST
    expect(first(phoenix, '2026-11-06T07:00:00Z')).to.equal('2026-11-06T13:00:00.000Z'); // 06:00 MST
    expect(first(denver, '2026-10-30T07:00:00Z')).to.equal('2026-10-30T13:00:00.000Z'); // 07:00 MDT
    expect(first(denver, '2026-11-06T07:00:00Z')).to.equal('2026-11-06T14:00:00.000Z'); // 07:00 MST
  });

  it('lets a visit cross midnight at a site open around the clock', async function () {
    const allDay: SiteCalendar = {
      locationId: 'always',
      timeZone: 'America/Chicago',
      active: true,
      weeklyHours: [{ daysOfWeek: DAYS_OF_WEEK, opening: '00:00', closing: '24:00' }],
      chairs: ['chair-1'],
      closures: { holidays: [], holidayObservance: 'actual-date', dates: [], periods: [] },
    };
    // Busy until 23:00 CST Wednesday: a 4-hour visit runs 23:00-03:00.
    const busy: BusyInterval[] = [
      { locationId: 'always', chairId: 'chair-1', start: at('2026-12-16T06:00:00Z'), end: at('2026-12-17T05:00:00Z') },
    ];
    const proposals = findSlots({
      sites: [allDay],
      durationMinutes: 240,
      earliest: at('2026-12-16T06:00:00Z'),
      latest: at('2026-12-31T00:00:00Z'),
      busy,
      limit: 1,
    });
    expect(proposals[0]).to.deep.include({ start: at('2026-12-17T05:00:00Z'), end: at('2026-12-17T09:00:00Z') });
  });

  it('offers nothing at an inactive site, for a zero limit, or when the range is shorter than the visit', async function () {
    const closed = fixtureSite('charlotte-elizabeth');
    expect(
      findSlots({
        sites: [closed],
        durationMinutes: 45,
        earliest: at('2026-12-16T00:00:00Z'),
        latest: at('2027-12-31T00:00:00Z'),
        limit: 5,
      }),
    ).to.deep.equal([]);
    expect(
      findSlots({
        sites: [donelson],
        durationMinutes: 45,
        earliest: at('2026-12-16T00:00:00Z'),
        latest: at('2027-12-31T00:00:00Z'),
        limit: 0,
      }),
    ).to.deep.equal([]);
    expect(
      findSlots({
        sites: [donelson],
        durationMinutes: 45,
        earliest: at('2026-12-16T14:00:00Z'),
        latest: at('2026-12-16T14:30:00Z'),
        limit: 5,
      }),
    ).to.deep.equal([]);
  });

  it('refuses a duration, step or limit that is not a whole positive number', async function () {
    const base: FindSlotsInput = {
      sites: [donelson],
      durationMinutes: 45,
      earliest: at('2026-12-16T00:00:00Z'),
      latest: at('2026-12-31T00:00:00Z'),
      limit: 5,
    };
    expect(() => findSlots({ ...base, durationMinutes: 0 })).to.throw(RangeError);
    expect(() => findSlots({ ...base, stepMinutes: 7.5 })).to.throw(RangeError);
    expect(() => findSlots({ ...base, limit: -1 })).to.throw(RangeError);
    expect(() => findSlots({ ...base, filters: { startAfterLocal: '5pm' } })).to.throw(RangeError);
  });

  it('agrees with an exhaustive search on random sites, bookings and filters', async function () {
    const random = seeded(20261123);
    const zones = ['America/Chicago', 'America/New_York', 'America/Phoenix', 'America/Denver', 'Europe/London'];
    // Ranges around both US changes and an ordinary stretch.
    const anchors = ['2026-10-28T00:00:00Z', '2027-03-10T00:00:00Z', '2026-12-14T00:00:00Z'];
    let compared = 0;
    let withProposals = 0;
    for (let round = 0; round < 150; round++) {
      const sites = Array.from({ length: 1 + Math.floor(random() * 4) }, (_, i) =>
        randomSite(`site-${i}`, zones[Math.floor(random() * zones.length)]!, random),
      );
      const earliest =
        Date.parse(anchors[round % anchors.length]!) + Math.floor(random() * 48) * 30 * 60_000 + Math.floor(random() * 15) * 60_000;
      const latest = earliest + (1 + Math.floor(random() * 10)) * 86_400_000;
      const busy: BusyInterval[] = [];
      for (const site of sites) {
        for (const chairId of site.chairs) {
          for (let b = 0; b < 12; b++) {
            const start = earliest + Math.floor((random() * (latest - earliest)) / 60_000 / 15) * 15 * 60_000;
            busy.push({
              locationId: site.locationId,
              chairId,
              start: new Date(start),
              end: new Date(start + (1 + Math.floor(random() * 16)) * 15 * 60_000),
            });
          }
        }
      }
      const filters: SlotFilters = {};
      const pick = random();
      if (pick < 0.15) filters.eveningsOnly = true;
      else if (pick < 0.3) filters.weekendsOnly = true;
      else if (pick < 0.4) filters.eveningsOrWeekends = true;
      else if (pick < 0.5) filters.daysOfWeek = [DAYS_OF_WEEK[Math.floor(random() * 7)]!, DAYS_OF_WEEK[Math.floor(random() * 7)]!];
      else if (pick < 0.6) filters.startAfterLocal = `${String(9 + Math.floor(random() * 8)).padStart(2, '0')}:30`;
      const input: FindSlotsInput = {
        sites,
        durationMinutes: [30, 45, 90, 150, 240][Math.floor(random() * 5)]!,
        stepMinutes: [15, 30, 60][Math.floor(random() * 3)]!,
        earliest: new Date(earliest),
        latest: new Date(latest),
        busy,
        filters,
        limit: 1 + Math.floor(random() * 15),
      };
      const expected = exhaustive(input);
      if (expected.length > 0) withProposals++;
      expect(starts(findSlots(input)), `round ${round}`).to.deep.equal(starts(expected));
      expect(
        findSlots(input).map((p) => `${p.locationId}/${p.chairId}`),
        `round ${round}`,
      ).to.deep.equal(expected.map((p) => `${p.locationId}/${p.chairId}`));
      // A caller's own index (built over all bookings, not only the range) gives the same answer.
      expect(starts(findSlots({ ...input, busy: BusyIndex.from(busy) })), `round ${round}`).to.deep.equal(starts(expected));
      compared++;
    }
    expect(compared).to.equal(150);
    // The comparison means something only if most rounds find proposals at all.
    expect(withProposals).to.be.greaterThan(100);
  });
});

/** Every grid start of every open interval, checked one by one with luxon: slow and obvious. */
function exhaustive(input: FindSlotsInput): SlotProposal[] {
  const step = (input.stepMinutes ?? 15) * 60_000;
  const duration = input.durationMinutes * 60_000;
  const earliest = input.earliest.getTime();
  const latest = input.latest.getTime();
  const found: Array<SlotProposal & { site: number }> = [];
  if (input.busy instanceof BusyIndex) throw new Error('the exhaustive search takes a list of bookings');
  const busy = input.busy ?? [];
  input.sites.forEach((site, siteIndex) => {
    // Opening hours of these sites never run to midnight, so each interval starts at an opening time.
    for (const open of openIntervals(site, new Date(earliest - 2 * 86_400_000), new Date(latest + 2 * 86_400_000))) {
      for (let s = open.start.getTime(); s + duration <= Math.min(open.end.getTime(), latest); s += step) {
        if (s < earliest) continue;
        const local = DateTime.fromMillis(s, { zone: site.timeZone });
        const minute = local.hour * 60 + local.minute;
        const weekend = local.weekday >= 6;
        const f = input.filters ?? {};
        if (f.eveningsOnly && minute < 17 * 60) continue;
        if (f.weekendsOnly && !weekend) continue;
        if (f.eveningsOrWeekends && !weekend && minute < 17 * 60) continue;
        if (f.daysOfWeek && !f.daysOfWeek.includes(DAYS_OF_WEEK[local.weekday - 1] as DayOfWeek)) continue;
        if (f.startAfterLocal) {
          const [h, m] = f.startAfterLocal.split(':').map(Number);
          if (minute < h! * 60 + m!) continue;
        }
        const chairId = site.chairs.find(
          (chair) =>
            !busy.some(
              (b) => b.locationId === site.locationId && b.chairId === chair && b.start.getTime() < s + duration && b.end.getTime() > s,
            ),
        );
        if (chairId !== undefined)
          found.push({ locationId: site.locationId, chairId, start: new Date(s), end: new Date(s + duration), site: siteIndex });
      }
    }
  });
  found.sort((a, b) => a.start.getTime() - b.start.getTime() || a.site - b.site);
  return found.slice(0, input.limit).map(({ site: _site, ...proposal }) => proposal);
}

function randomSite(locationId: string, timeZone: string, random: () => number): SiteCalendar {
  const hours = Array.from({ length: 1 + Math.floor(random() * 3) }, () => {
    const days = DAYS_OF_WEEK.filter(() => random() < 0.5);
    const open = 5 * 60 + Math.floor(random() * 20) * 30; // 05:00 .. 14:30
    const close = Math.min(open + (2 + Math.floor(random() * 20)) * 30, 23 * 60);
    const hhmm = (m: number): string => `${String(Math.floor(m / 60)).padStart(2, '0')}:${String(m % 60).padStart(2, '0')}`;
    return { daysOfWeek: days.length > 0 ? days : (['mon'] as DayOfWeek[]), opening: hhmm(open), closing: hhmm(close) };
  });
  return {
    locationId,
    timeZone,
    active: true,
    weeklyHours: hours,
    chairs: Array.from({ length: 1 + Math.floor(random() * 3) }, (_, i) => `chair-${i + 1}`),
    closures: { holidays: ['thanksgiving-day', 'christmas-day'], holidayObservance: 'actual-and-observed', dates: [], periods: [] },
  };
}

/** mulberry32: a small seeded generator, so a failing round can be replayed. */
function seeded(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}
