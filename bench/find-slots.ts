/**
 * findSlots over synthetic networks: sites (10, 50, 100) x days ahead (14, 30, 60) x 20 chairs,
 * limit 10, a 150-minute visit. Issue 6 asks for under 10 ms p95 at 50 sites x 60 days.
 *
 * Scenarios:
 * - `typical`: the first three days mostly booked, then a few bookings per chair per week; the
 *   bookings are passed as a list, so indexing them is part of every call, as in a `$find` that
 *   reads them from the store each time.
 * - `typical, prebuilt index`: the same with a BusyIndex the caller keeps.
 * - `evenings only` and `weekends only`: the same bookings with a filter.
 * - `fully booked`: every chair busy over the whole range, so nothing is found and every day of
 *   every site is looked at: the worst case, which shows the growth with sites and days.
 *
 * Each figure is over repeated runs after a warm-up (caches warm, as in a running server); `cold`
 * is the first run on fresh calendar objects, zone caches already filled by earlier scenarios.
 * Runnable alone: `npx tsx bench/find-slots.ts` prints a table.
 */
import { pathToFileURL } from 'node:url';
import { BusyIndex, findSlots, type BusyInterval, type FindSlotsInput } from '../src/scheduling/rules/slot-finder.js';
import { US_HOLIDAYS, type SiteCalendar } from '../src/scheduling/rules/site-hours.js';

const SITE_COUNTS = [10, 50, 100];
const DAY_COUNTS = [14, 30, 60];
const CHAIRS = 20;
const RUNS = Number(process.env['BENCH_FIND_RUNS'] ?? 200);
const WARM_UP = 20;
const ZONES = ['America/New_York', 'America/Chicago', 'America/Denver', 'America/Phoenix'];
/** Monday 2026-12-14 12:00 UTC: before 07:00 in every zone used. */
const EARLIEST = Date.parse('2026-12-14T12:00:00Z');
const DAY_MS = 86_400_000;

interface Figures {
  medianMs: number;
  p95Ms: number;
  coldMs: number;
  proposals: number;
  busyIntervals: number;
}

function siteCalendars(count: number): SiteCalendar[] {
  return Array.from({ length: count }, (_, i) => ({
    locationId: `site-${i}`,
    timeZone: ZONES[i % ZONES.length]!,
    active: true,
    weeklyHours: [
      // Every third site has evening hours.
      { daysOfWeek: ['mon', 'tue', 'wed', 'thu', 'fri'], opening: '07:00', closing: i % 3 === 0 ? '21:00' : '18:00' },
      { daysOfWeek: ['sat'], opening: '08:00', closing: '14:00' },
    ],
    chairs: Array.from({ length: CHAIRS }, (_, c) => `chair-${c + 1}`),
    closures: { holidays: US_HOLIDAYS, holidayObservance: 'actual-and-observed', dates: [], periods: [] },
  }));
}

/** mulberry32, seeded: the same bookings on every run and machine. */
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

function typicalBookings(sites: readonly SiteCalendar[], days: number): BusyInterval[] {
  const random = seeded(6);
  const busy: BusyInterval[] = [];
  for (const site of sites) {
    for (const chairId of site.chairs) {
      // The next three days: most chairs booked through the day (12:00-24:00 UTC covers every zone's day).
      for (let d = 0; d < 3; d++) {
        if (random() < 0.8)
          busy.push({
            locationId: site.locationId,
            chairId,
            start: new Date(EARLIEST + d * DAY_MS),
            end: new Date(EARLIEST + d * DAY_MS + 12 * 3_600_000),
          });
      }
      // Later: about two bookings per chair per week, at random quarter-hours.
      for (let b = 0; b < Math.round((days / 7) * 2); b++) {
        const start = EARLIEST + 3 * DAY_MS + Math.floor(random() * (days - 3) * 96) * 900_000;
        busy.push({
          locationId: site.locationId,
          chairId,
          start: new Date(start),
          end: new Date(start + (2 + Math.floor(random() * 12)) * 900_000),
        });
      }
    }
  }
  return busy;
}

function fullyBooked(sites: readonly SiteCalendar[], days: number): BusyInterval[] {
  return sites.flatMap((site) =>
    site.chairs.map((chairId) => ({
      locationId: site.locationId,
      chairId,
      start: new Date(EARLIEST - DAY_MS),
      end: new Date(EARLIEST + (days + 1) * DAY_MS),
    })),
  );
}

function percentile(sorted: readonly number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)]!;
}

const round3 = (n: number): number => Number(n.toFixed(3));

function measure(make: () => FindSlotsInput, busyIntervals: number): Figures {
  // Cold: fresh calendar objects, so their per-day caches are empty.
  const coldInput = make();
  let started = performance.now();
  findSlots(coldInput);
  const coldMs = performance.now() - started;

  const input = make();
  let proposals = 0;
  for (let i = 0; i < WARM_UP; i++) proposals = findSlots(input).length;
  const times: number[] = [];
  for (let i = 0; i < RUNS; i++) {
    started = performance.now();
    findSlots(input);
    times.push(performance.now() - started);
  }
  times.sort((a, b) => a - b);
  return {
    medianMs: round3(percentile(times, 50)),
    p95Ms: round3(percentile(times, 95)),
    coldMs: round3(coldMs),
    proposals,
    busyIntervals,
  };
}

/** Runs every scenario; returns { scenario: { "sites x days": figures } }. */
export async function benchFindSlots(): Promise<Record<string, unknown>> {
  const result: Record<string, Record<string, Figures>> = {
    typical: {},
    'typical, prebuilt index': {},
    'evenings only': {},
    'weekends only': {},
    'fully booked': {},
  };
  for (const siteCount of SITE_COUNTS) {
    for (const days of DAY_COUNTS) {
      const key = `${siteCount} sites x ${days} days`;
      const base = (sites: SiteCalendar[]): Omit<FindSlotsInput, 'busy'> => ({
        sites,
        durationMinutes: 150,
        earliest: new Date(EARLIEST),
        latest: new Date(EARLIEST + days * DAY_MS),
        limit: 10,
      });
      const busy = typicalBookings(siteCalendars(siteCount), days);
      result['typical']![key] = measure(() => ({ ...base(siteCalendars(siteCount)), busy }), busy.length);
      const index = BusyIndex.from(busy);
      result['typical, prebuilt index']![key] = measure(() => ({ ...base(siteCalendars(siteCount)), busy: index }), busy.length);
      result['evenings only']![key] = measure(
        () => ({ ...base(siteCalendars(siteCount)), busy, filters: { eveningsOnly: true } }),
        busy.length,
      );
      result['weekends only']![key] = measure(
        () => ({ ...base(siteCalendars(siteCount)), busy, filters: { weekendsOnly: true } }),
        busy.length,
      );
      const full = fullyBooked(siteCalendars(siteCount), days);
      result['fully booked']![key] = measure(() => ({ ...base(siteCalendars(siteCount)), busy: full }), full.length);
    }
  }
  const target = result['typical']!['50 sites x 60 days']!;
  return {
    runs: RUNS,
    chairsPerSite: CHAIRS,
    limit: 10,
    durationMinutes: 150,
    target: { scenario: 'typical, 50 sites x 60 days', p95Ms: target.p95Ms, under10MsP95: target.p95Ms < 10 },
    scenarios: result,
  };
}

async function main(): Promise<void> {
  const report = await benchFindSlots();
  const scenarios = report['scenarios'] as Record<string, Record<string, Figures>>;
  const lines = [`findSlots: ${RUNS} runs each after ${WARM_UP} warm-up runs; limit 10, 150-minute visit, ${CHAIRS} chairs per site`, ''];
  lines.push(
    [
      'scenario'.padEnd(26),
      'sites x days'.padEnd(20),
      'median ms'.padStart(10),
      'p95 ms'.padStart(10),
      'cold ms'.padStart(10),
      'found'.padStart(6),
      'busy'.padStart(8),
    ].join(' '),
  );
  for (const [scenario, byKey] of Object.entries(scenarios)) {
    for (const [key, f] of Object.entries(byKey)) {
      lines.push(
        [
          scenario.padEnd(26),
          key.padEnd(20),
          String(f.medianMs).padStart(10),
          String(f.p95Ms).padStart(10),
          String(f.coldMs).padStart(10),
          String(f.proposals).padStart(6),
          String(f.busyIntervals).padStart(8),
        ].join(' '),
      );
    }
  }
  lines.push('', `target (typical, 50 sites x 60 days, p95 < 10 ms): ${JSON.stringify(report['target'])}`);
  process.stdout.write(`${lines.join('\n')}\n`);
}

if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) {
  await main();
}
