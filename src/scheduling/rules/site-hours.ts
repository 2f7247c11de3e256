/**
 * A site's calendar: when an infusion site is open, in its own time zone, and how many chairs it
 * has. Pure: built from the directory's Location and HealthcareService, queried with UTC instants.
 *
 * - Hours: `Location.hoursOfOperation` (https://hl7.org/fhir/R4/location-definitions.html#Location.hoursOfOperation),
 *   wall-clock times in the site's zone, which the `timezone` extension names
 *   (http://hl7.org/fhir/StructureDefinition/timezone, an IANA zone). Wall-clock times are turned
 *   into UTC per day, so a 07:30-17:30 day stays 07:30-17:30 local on both sides of a
 *   daylight-saving change and no slot is shifted or dropped (docs/architecture.md, habit 4).
 * - Chairs: the `chair-count` extension on the HealthcareService (fixtures/README.md, "Directory").
 * - Closures: the six US holidays the sites name in `availabilityExceptions`, computed by rule for
 *   any year (5 U.S.C. 6103), explicit closure dates, and `HealthcareService.notAvailable` periods.
 *
 * Conversions between UTC and wall-clock time go through a per-zone cache of UTC offsets (one
 * entry per UTC day, the day's transition found by bisection when it has one), because a luxon or
 * Intl offset lookup costs about 10 µs and the slot finder needs thousands of them.
 */
import { TIMEZONE_EXTENSION_URL } from '../../directory/rules/site-directory.js';
import type { HealthcareService, Location, OperationOutcomeIssue, Period } from 'fhir/r4.js';
import { DateTime, IANAZone } from 'luxon';
import { errorIssue, hasErrors, informationIssue, OperationOutcomeError, unprocessable, warningIssue } from '../../fhir/outcomes.js';
import { GATEWAY_CANONICAL_BASE } from '../../referral/rules/referral-status.js';

export const CHAIR_COUNT_EXTENSION_URL = `${GATEWAY_CANONICAL_BASE}/StructureDefinition/chair-count`;

export const MINUTE_MS = 60_000;
export const DAY_MS = 86_400_000;

export type DayOfWeek = 'mon' | 'tue' | 'wed' | 'thu' | 'fri' | 'sat' | 'sun';
/** In ISO order: index 0 is Monday, as luxon's `weekday - 1`. */
export const DAYS_OF_WEEK: readonly DayOfWeek[] = ['mon', 'tue', 'wed', 'thu', 'fri', 'sat', 'sun'];

/** One opening-hours entry, as FHIR writes it: wall-clock `HH:mm`, `closing` exclusive. */
export interface OpeningHours {
  daysOfWeek: readonly DayOfWeek[];
  /** `HH:mm` local; `00:00` for an all-day entry. */
  opening: string;
  /** `HH:mm` local, after `opening`; `24:00` for an all-day entry (open until midnight). */
  closing: string;
}

export const US_HOLIDAYS = ['new-years-day', 'memorial-day', 'independence-day', 'labor-day', 'thanksgiving-day', 'christmas-day'] as const;
export type UsHoliday = (typeof US_HOLIDAYS)[number];

/**
 * - `actual-date`: closed on the holiday's own date only.
 * - `actual-and-observed` (default): also closed on the federal observed weekday when a fixed-date
 *   holiday falls on a weekend (Saturday -> the Friday before, Sunday -> the Monday after;
 *   https://www.opm.gov/policy-data-oversight/pay-leave/federal-holidays/). We close both because
 *   booking into a closed site wastes a dose compounded for the patient (field note 001), while hiding
 *   one day's slots only costs a choice; a deployment whose sites open on the observed day says so.
 */
export type HolidayObservance = 'actual-date' | 'actual-and-observed';

/** A closed stretch of time, in UTC milliseconds; `end` undefined means closed until further notice. */
export interface ClosurePeriod {
  start: number;
  end?: number;
  reason: string;
}

export interface SiteClosures {
  holidays: readonly UsHoliday[];
  holidayObservance: HolidayObservance;
  /** Whole local days closed, `yyyy-MM-dd` in the site's zone. */
  dates: readonly string[];
  periods: readonly ClosurePeriod[];
}

export interface SiteCalendar {
  locationId: string;
  /** IANA zone the hours are written in. */
  timeZone: string;
  /** False for an inactive or suspended Location or an inactive service: never open. */
  active: boolean;
  weeklyHours: readonly OpeningHours[];
  /** Chair ids, `chair-1` .. `chair-N` from the chair count. */
  chairs: readonly string[];
  closures: SiteClosures;
}

export interface UtcInterval {
  start: Date;
  end: Date;
}

export interface SiteCalendarOptions {
  holidayObservance?: HolidayObservance;
  /** Further whole-day closures (`yyyy-MM-dd`, site-local), e.g. from the deployment's configuration. */
  closureDates?: readonly string[];
}

export interface ParsedSiteCalendar {
  /** Present when there is no issue of severity error. */
  calendar?: SiteCalendar;
  issues: OperationOutcomeIssue[];
}

const TIME_PATTERN = /^([01][0-9]|2[0-3]):([0-5][0-9])(?::([0-5][0-9])(?:\.[0-9]+)?)?$/;
const DATE_PATTERN = /^([0-9]{4})-([0-9]{2})-([0-9]{2})$/;

/** The words a site may use for each holiday in its free-text `availabilityExceptions`. */
const HOLIDAY_PATTERNS: ReadonlyArray<[UsHoliday, RegExp]> = [
  ['new-years-day', /new\s+year(?:['’]?s)?(?:\s+day)?/i],
  ['memorial-day', /memorial\s+day/i],
  ['independence-day', /independence\s+day|fourth\s+of\s+july|july\s+4(?:th)?\b/i],
  ['labor-day', /labou?r\s+day/i],
  ['thanksgiving-day', /thanksgiving/i],
  ['christmas-day', /christmas(?!\s+eve)/i],
];

/** Chair ids for a chair count: stable, so bookings made today still name a chair tomorrow. */
export function chairIds(count: number): string[] {
  return Array.from({ length: count }, (_, i) => `chair-${i + 1}`);
}

/**
 * The holidays named in a free-text `availabilityExceptions` ("Closed on New Year's Day, Memorial
 * Day, ..."). Only the six US holidays the network's sites use are recognised.
 */
export function holidaysNamedIn(text: string | undefined): UsHoliday[] {
  if (text === undefined) return [];
  return HOLIDAY_PATTERNS.filter(([, pattern]) => pattern.test(text)).map(([holiday]) => holiday);
}

/**
 * Reads a site's calendar from its Location and its infusion HealthcareService, collecting every
 * problem (each with a FHIRPath expression) instead of stopping at the first.
 */
export function parseSiteCalendar(
  location: Location,
  healthcareService: HealthcareService,
  options: SiteCalendarOptions = {},
): ParsedSiteCalendar {
  const issues: OperationOutcomeIssue[] = [];
  if (location.id === undefined) issues.push(errorIssue('required', 'The site Location has no id', 'Location.id'));

  const zoneExpression = `Location.extension('${TIMEZONE_EXTENSION_URL}').value`;
  const timeZone = location.extension?.find((e) => e.url === TIMEZONE_EXTENSION_URL)?.valueCode;
  if (timeZone === undefined) {
    issues.push(errorIssue('required', 'The site has no time zone; its hours cannot be placed in time', zoneExpression));
  } else if (!IANAZone.isValidZone(timeZone)) {
    issues.push(errorIssue('value', `The site's time zone '${timeZone}' is not an IANA time zone`, zoneExpression));
  }

  const weeklyHours: OpeningHours[] = [];
  const fromLocation = location.hoursOfOperation ?? [];
  // The building's hours govern; the service's availableTime is the fallback when the Location
  // gives none (in the directory both say the same).
  const source =
    fromLocation.length > 0
      ? fromLocation.map((h, i) => ({ ...h, at: `Location.hoursOfOperation[${i}]` }))
      : (healthcareService.availableTime ?? []).map((h, i) => ({
          daysOfWeek: h.daysOfWeek,
          allDay: h.allDay,
          openingTime: h.availableStartTime,
          closingTime: h.availableEndTime,
          at: `HealthcareService.availableTime[${i}]`,
        }));
  for (const entry of source) {
    const days = (entry.daysOfWeek ?? []).filter((d): d is DayOfWeek => (DAYS_OF_WEEK as readonly string[]).includes(d));
    if (days.length === 0) {
      issues.push(warningIssue('incomplete', 'Opening hours without days of the week are ignored', `${entry.at}.daysOfWeek`));
      continue;
    }
    if (entry.allDay === true) {
      weeklyHours.push({ daysOfWeek: days, opening: '00:00', closing: '24:00' });
      continue;
    }
    const opening = minutesOfTime(entry.openingTime);
    const closing = minutesOfTime(entry.closingTime);
    if (opening === undefined || closing === undefined || closing <= opening) {
      issues.push(
        warningIssue(
          'value',
          'Opening hours need an opening time before the closing time on the same day; this entry is ignored',
          opening === undefined ? `${entry.at}.openingTime` : `${entry.at}.closingTime`,
        ),
      );
      continue;
    }
    weeklyHours.push({ daysOfWeek: days, opening: formatMinutes(opening), closing: formatMinutes(closing) });
  }
  if (weeklyHours.length === 0) {
    issues.push(warningIssue('incomplete', 'The site gives no opening hours; no slot can be offered there', 'Location.hoursOfOperation'));
  }

  const chairExpression = `HealthcareService.extension('${CHAIR_COUNT_EXTENSION_URL}').value`;
  const chairCount = healthcareService.extension?.find((e) => e.url === CHAIR_COUNT_EXTENSION_URL)?.valueInteger;
  if (chairCount === undefined) {
    issues.push(errorIssue('required', 'The infusion service has no chair count', chairExpression));
  } else if (!Number.isInteger(chairCount) || chairCount < 0) {
    issues.push(errorIssue('value', 'The chair count must be a whole number, zero or more', chairExpression));
  }

  const locationId = location.id ?? '';
  const serviceAtLocation = (healthcareService.location ?? []).some((r) => r.reference === `Location/${locationId}`);
  if (location.id !== undefined && !serviceAtLocation) {
    issues.push(errorIssue('invalid', `The HealthcareService is not given at Location/${locationId}`, 'HealthcareService.location'));
  }

  const dates: string[] = [];
  (options.closureDates ?? []).forEach((date) => {
    if (dateKey(date) === undefined) issues.push(errorIssue('value', `Closure date '${date}' is not a yyyy-MM-dd date`));
    else dates.push(date);
  });

  const periods: ClosurePeriod[] = [];
  if (timeZone !== undefined && IANAZone.isValidZone(timeZone)) {
    (healthcareService.notAvailable ?? []).forEach((n, i) => {
      if (n.during === undefined) {
        // Without a period the entry is only prose; nothing can be closed by it.
        issues.push(
          informationIssue(
            'informational',
            'A notAvailable entry without a period closes nothing',
            `HealthcareService.notAvailable[${i}].during`,
          ),
        );
        return;
      }
      const period = closurePeriod(n.during, timeZone, n.description);
      if (period === undefined) {
        issues.push(
          errorIssue('value', 'The closure period has an unreadable start or end', `HealthcareService.notAvailable[${i}].during`),
        );
      } else {
        periods.push(period);
      }
    });
  }

  if (hasErrors(issues) || timeZone === undefined || chairCount === undefined) return { issues };
  return {
    calendar: {
      locationId,
      timeZone,
      active: location.status !== 'inactive' && location.status !== 'suspended' && healthcareService.active !== false,
      weeklyHours,
      chairs: chairIds(chairCount),
      closures: {
        holidays: holidaysNamedIn(location.availabilityExceptions),
        holidayObservance: options.holidayObservance ?? 'actual-and-observed',
        dates,
        periods,
      },
    },
    issues,
  };
}

/** As parseSiteCalendar, but throws an OperationOutcomeError (422) listing every error. */
export function siteCalendarFromLocation(
  location: Location,
  healthcareService: HealthcareService,
  options: SiteCalendarOptions = {},
): SiteCalendar {
  const parsed = parseSiteCalendar(location, healthcareService, options);
  if (parsed.calendar === undefined) throw new OperationOutcomeError(unprocessable(parsed.issues));
  return parsed.calendar;
}

/**
 * The site's open intervals between two instants, in UTC, merged where they touch (an all-day
 * site is one interval across midnight) and clipped to [fromUtc, toUtc).
 */
export function openIntervals(calendar: SiteCalendar, fromUtc: Date, toUtc: Date): UtcInterval[] {
  return openIntervalsMs(calendar, fromUtc.getTime(), toUtc.getTime()).map(([start, end]) => ({
    start: new Date(start),
    end: new Date(end),
  }));
}

/** A FHIR date or dateTime as an instant: a date is the start (or the end) of that day at the site. */
export function instantAtSite(value: string | undefined, timeZone: string, edge: 'start' | 'end'): Date | undefined {
  if (value === undefined) return undefined;
  if (value.length <= 10) {
    const day = DateTime.fromISO(value, { zone: timeZone });
    if (!day.isValid) return undefined;
    return (edge === 'start' ? day.startOf('day') : day.endOf('day')).toJSDate();
  }
  const instant = new Date(value);
  return Number.isNaN(instant.getTime()) ? undefined : instant;
}

/**
 * An instant as a FHIR instant with the site's UTC offset ("2026-12-16T09:30:00-06:00"), as a
 * booked Appointment's start and end carry it (issue 6), so the EHR shows the site's wall clock.
 */
export function instantWithSiteOffset(instant: Date, timeZone: string): string {
  const ms = instant.getTime();
  const offset = offsetMinutesAt(timeZone, ms);
  const local = new Date(ms + offset * MINUTE_MS).toISOString().slice(0, 19);
  if (offset === 0) return `${local}Z`;
  const sign = offset < 0 ? '-' : '+';
  const abs = Math.abs(offset);
  return `${local}${sign}${String(Math.floor(abs / 60)).padStart(2, '0')}:${String(abs % 60).padStart(2, '0')}`;
}

/** Whether a site-local day (`yyyy-MM-dd`) is a whole-day closure: a holiday or a closure date. */
export function isClosedOn(closures: SiteClosures, localDate: string): boolean {
  const day = dateKey(localDate);
  if (day === undefined) throw new RangeError(`'${localDate}' is not a yyyy-MM-dd date`);
  return closedDays(closures, yearOfEpochDay(day)).has(day);
}

/** The dates of the named holidays in a year (and their observed dates), `yyyy-MM-dd`, sorted. */
export function holidayDates(closures: Pick<SiteClosures, 'holidays' | 'holidayObservance'>, year: number): string[] {
  return [...holidayDays(closures.holidays, closures.holidayObservance, year)].sort((a, b) => a - b).map(formatEpochDay);
}

// ---------------------------------------------------------------------------------------------
// Internals shared with lead-time.ts and slot-finder.ts (exported, but not part of the story).

/** Days since 1970-01-01 of a civil date; plain arithmetic, no zone. */
export function epochDayOf(year: number, month: number, day: number): number {
  return Math.floor(Date.UTC(year, month - 1, day) / DAY_MS);
}

/** 1 = Monday ... 7 = Sunday (1970-01-01 was a Thursday). */
export function isoWeekdayOfEpochDay(day: number): number {
  return ((((day + 3) % 7) + 7) % 7) + 1;
}

export function yearOfEpochDay(day: number): number {
  return new Date(day * DAY_MS).getUTCFullYear();
}

export function formatEpochDay(day: number): string {
  return new Date(day * DAY_MS).toISOString().slice(0, 10);
}

/** `yyyy-MM-dd` -> epoch day, or undefined when it is not a real date. */
export function dateKey(date: string): number | undefined {
  const match = DATE_PATTERN.exec(date);
  if (!match) return undefined;
  const [year, month, day] = [Number(match[1]), Number(match[2]), Number(match[3])];
  const epochDay = epochDayOf(year, month, day);
  return formatEpochDay(epochDay) === date ? epochDay : undefined;
}

/** The zone's UTC offset in minutes at an instant (cached; see the module comment). */
export function offsetMinutesAt(timeZone: string, utcMs: number): number {
  return zoneOffsets(timeZone).at(utcMs);
}

/** The site-local epoch day and minute of day of an instant. */
export function localDayAndMinute(timeZone: string, utcMs: number): { day: number; minute: number } {
  const wall = utcMs + offsetMinutesAt(timeZone, utcMs) * MINUTE_MS;
  const day = Math.floor(wall / DAY_MS);
  return { day, minute: Math.floor((wall - day * DAY_MS) / MINUTE_MS) };
}

/**
 * The instant a wall-clock time names in a zone. A time skipped by a spring-forward change
 * (02:30 on 2027-03-14 in Chicago) moves forward by the gap; a time repeated by a fall-back change
 * (01:30 on 2026-11-01) is its first occurrence. That is the `compatible` disambiguation of
 * TC39 Temporal (https://tc39.es/proposal-temporal/docs/timezone.html#ambiguity); luxon agrees on
 * skipped times, but for repeated ones depends on the current date, so it is not used here.
 */
export function utcOfWallTime(timeZone: string, epochDay: number, minuteOfDay: number): number {
  const wall = epochDay * DAY_MS + minuteOfDay * MINUTE_MS;
  const offsets = zoneOffsets(timeZone);
  // The offsets in force a day either side; a wall time maps through one, both (repeated) or
  // neither (skipped). Assumes at most one change within two days, true of the tz database.
  const before = offsets.at(wall - DAY_MS);
  const after = offsets.at(wall + DAY_MS);
  const first = wall - before * MINUTE_MS;
  if (offsets.at(first) === before) return first;
  const second = wall - after * MINUTE_MS;
  if (offsets.at(second) === after) return second;
  // Skipped: read with the offset before the change, which lands after the gap.
  return first;
}

/** Whole-day closures of a year as epoch days: holidays (with observed days) and closure dates. */
export function closedDays(closures: SiteClosures, year: number): ReadonlySet<number> {
  return memoized(closedDaysCache, closures, year, () => {
    const days = new Set(holidayDays(closures.holidays, closures.holidayObservance, year));
    for (const date of closures.dates) {
      const day = dateKey(date);
      if (day !== undefined) days.add(day);
    }
    return days;
  });
}

/**
 * Open intervals as [startMs, endMs) pairs, merged and clipped. Per local day the intervals are
 * computed once per calendar object and cached, so repeated searches cost map lookups.
 */
export function openIntervalsMs(calendar: SiteCalendar, fromMs: number, toMs: number): Array<[number, number]> {
  if (!calendar.active || !(toMs > fromMs)) return [];
  const result: Array<[number, number]> = [];
  // A local day can start up to 14 h before its UTC date does: start one day early.
  const firstDay = localDayAndMinute(calendar.timeZone, fromMs).day - 1;
  const lastDay = localDayAndMinute(calendar.timeZone, toMs).day + 1;
  for (let day = firstDay; day <= lastDay; day++) {
    for (const [start, end] of openOnDay(calendar, day)) {
      const s = Math.max(start, fromMs);
      const e = Math.min(end, toMs);
      if (e <= s) continue;
      const last = result[result.length - 1];
      if (last !== undefined && s <= last[1]) last[1] = Math.max(last[1], e);
      else result.push([s, e]);
    }
  }
  return result;
}

/** A calendar's open intervals on one local day, UTC ms, sorted, merged, closures removed. */
export function openOnDay(calendar: SiteCalendar, day: number): ReadonlyArray<readonly [number, number]> {
  return memoized(dayCache, calendar, day, () => computeOpenOnDay(calendar, day), MAX_CACHED_DAYS_PER_CALENDAR);
}

const MAX_CACHED_DAYS_PER_CALENDAR = 4_000;
const dayCache = new WeakMap<SiteCalendar, Map<number, ReadonlyArray<readonly [number, number]>>>();
const closedDaysCache = new WeakMap<SiteClosures, Map<number, ReadonlySet<number>>>();

/**
 * A value per (object, key), computed once and kept as long as the object lives; past
 * `maxPerOwner` keys an object's values are dropped and computed again on demand.
 */
function memoized<Owner extends object, Key, Value>(
  cache: WeakMap<Owner, Map<Key, Value>>,
  owner: Owner,
  key: Key,
  compute: () => Value,
  maxPerOwner = Number.POSITIVE_INFINITY,
): Value {
  let byKey = cache.get(owner);
  if (byKey === undefined) {
    byKey = new Map();
    cache.set(owner, byKey);
  }
  let value = byKey.get(key);
  if (value === undefined) {
    value = compute();
    if (byKey.size > maxPerOwner) byKey.clear();
    byKey.set(key, value);
  }
  return value;
}
const weekTableCache = new WeakMap<readonly OpeningHours[], ReadonlyArray<ReadonlyArray<readonly [number, number]>>>();

function computeOpenOnDay(calendar: SiteCalendar, day: number): ReadonlyArray<readonly [number, number]> {
  if (closedDays(calendar.closures, yearOfEpochDay(day)).has(day)) return [];
  const ranges = weekTable(calendar.weeklyHours)[isoWeekdayOfEpochDay(day) - 1] ?? [];
  let intervals: Array<[number, number]> = ranges.map(([open, close]) => [
    utcOfWallTime(calendar.timeZone, day, open),
    // 24:00 is the next day's midnight, which may have its own offset.
    close === 1440 ? utcOfWallTime(calendar.timeZone, day + 1, 0) : utcOfWallTime(calendar.timeZone, day, close),
  ]);
  for (const period of calendar.closures.periods) {
    intervals = subtract(intervals, period.start, period.end ?? Number.POSITIVE_INFINITY);
  }
  return intervals.filter(([s, e]) => e > s);
}

/** Per ISO weekday (index 0 = Monday), the day's opening ranges in local minutes, merged. */
function weekTable(hours: readonly OpeningHours[]): ReadonlyArray<ReadonlyArray<readonly [number, number]>> {
  let table = weekTableCache.get(hours);
  if (table === undefined) {
    const days: Array<Array<[number, number]>> = DAYS_OF_WEEK.map(() => []);
    for (const entry of hours) {
      const open = minutesOfTime(entry.opening);
      const close = entry.closing === '24:00' ? 1440 : minutesOfTime(entry.closing);
      if (open === undefined || close === undefined || close <= open) continue;
      for (const d of entry.daysOfWeek) days[DAYS_OF_WEEK.indexOf(d)]?.push([open, close]);
    }
    table = days.map((ranges) => {
      ranges.sort((a, b) => a[0] - b[0]);
      const merged: Array<[number, number]> = [];
      for (const [s, e] of ranges) {
        const last = merged[merged.length - 1];
        if (last !== undefined && s <= last[1]) last[1] = Math.max(last[1], e);
        else merged.push([s, e]);
      }
      return merged;
    });
    weekTableCache.set(hours, table);
  }
  return table;
}

function subtract(intervals: Array<[number, number]>, start: number, end: number): Array<[number, number]> {
  const out: Array<[number, number]> = [];
  for (const [s, e] of intervals) {
    if (end <= s || start >= e) {
      out.push([s, e]);
      continue;
    }
    if (start > s) out.push([s, start]);
    if (end < e) out.push([end, e]);
  }
  return out;
}

function minutesOfTime(time: string | undefined): number | undefined {
  if (time === undefined) return undefined;
  const match = TIME_PATTERN.exec(time);
  if (!match) return undefined;
  return Number(match[1]) * 60 + Number(match[2]);
}

function formatMinutes(minutes: number): string {
  return `${String(Math.floor(minutes / 60)).padStart(2, '0')}:${String(minutes % 60).padStart(2, '0')}`;
}

/**
 * A FHIR Period as a closure. A date-only start is the start of that local day; a date-only end
 * closes through the end of that local day (FHIR Period ends are inclusive at their precision,
 * https://hl7.org/fhir/R4/datatypes.html#Period).
 */
function closurePeriod(during: Period, timeZone: string, description: string): ClosurePeriod | undefined {
  const start = during.start === undefined ? Number.NEGATIVE_INFINITY : instantOf(during.start, timeZone, { endOfDay: false });
  const end = during.end === undefined ? undefined : instantOf(during.end, timeZone, { endOfDay: true });
  if (start === undefined || (during.end !== undefined && end === undefined)) return undefined;
  const period: ClosurePeriod = { start, reason: description };
  if (end !== undefined) period.end = end;
  return period;
}

function instantOf(value: string, timeZone: string, options: { endOfDay: boolean }): number | undefined {
  const day = dateKey(value);
  if (day !== undefined) return utcOfWallTime(timeZone, options.endOfDay ? day + 1 : day, 0);
  // A dateTime in a FHIR Period carries its offset when it has a time (R4 dateTime).
  if (!/^[0-9]{4}-[0-9]{2}-[0-9]{2}T.+(Z|[+-][0-9]{2}:[0-9]{2})$/.test(value)) return undefined;
  const ms = Date.parse(value);
  return Number.isNaN(ms) ? undefined : ms;
}

// ---------------------------------------------------------------------------------------------
// Holidays by rule

function nthWeekdayOfMonth(year: number, month: number, isoWeekday: number, n: number): number {
  const first = epochDayOf(year, month, 1);
  const shift = (isoWeekday - isoWeekdayOfEpochDay(first) + 7) % 7;
  return first + shift + (n - 1) * 7;
}

function lastWeekdayOfMonth(year: number, month: number, isoWeekday: number): number {
  const last = epochDayOf(year, month + 1, 1) - 1;
  const shift = (isoWeekdayOfEpochDay(last) - isoWeekday + 7) % 7;
  return last - shift;
}

function holidayDay(holiday: UsHoliday, year: number): number {
  switch (holiday) {
    case 'new-years-day':
      return epochDayOf(year, 1, 1);
    case 'memorial-day':
      return lastWeekdayOfMonth(year, 5, 1);
    case 'independence-day':
      return epochDayOf(year, 7, 4);
    case 'labor-day':
      return nthWeekdayOfMonth(year, 9, 1, 1);
    case 'thanksgiving-day':
      return nthWeekdayOfMonth(year, 11, 4, 4);
    case 'christmas-day':
      return epochDayOf(year, 12, 25);
  }
}

const FIXED_DATE_HOLIDAYS: ReadonlySet<UsHoliday> = new Set(['new-years-day', 'independence-day', 'christmas-day']);

/** Closed days falling in `year`: a New Year's Day on a Saturday is observed on the 31st before. */
function holidayDays(holidays: readonly UsHoliday[], observance: HolidayObservance, year: number): Set<number> {
  const days = new Set<number>();
  for (const holiday of holidays) {
    for (const y of [year, year + 1]) {
      const actual = holidayDay(holiday, y);
      const candidates = [actual];
      if (observance === 'actual-and-observed' && FIXED_DATE_HOLIDAYS.has(holiday)) {
        const weekday = isoWeekdayOfEpochDay(actual);
        if (weekday === 6) candidates.push(actual - 1);
        if (weekday === 7) candidates.push(actual + 1);
      }
      for (const day of candidates) if (yearOfEpochDay(day) === year) days.add(day);
    }
  }
  return days;
}

// ---------------------------------------------------------------------------------------------
// Per-zone offset cache

interface ZoneOffsets {
  at(utcMs: number): number;
}

/** An offset that holds all UTC day, or one change at `change` (first instant of the new offset). */
type DayOffsets = number | { before: number; after: number; change: number };

const zoneCache = new Map<string, ZoneOffsets>();
const MAX_CACHED_DAYS_PER_ZONE = 50_000;

function zoneOffsets(timeZone: string): ZoneOffsets {
  let offsets = zoneCache.get(timeZone);
  if (offsets === undefined) {
    const zone = IANAZone.create(timeZone);
    if (!zone.isValid) throw new RangeError(`'${timeZone}' is not an IANA time zone`);
    const days = new Map<number, DayOffsets>();
    const dayOffsets = (day: number): DayOffsets => {
      let entry = days.get(day);
      if (entry === undefined) {
        const start = day * DAY_MS;
        const before = zone.offset(start);
        const after = zone.offset(start + DAY_MS - 1);
        if (before === after) {
          entry = before;
        } else {
          // Bisect to the minute (zones change offset on whole minutes); assumes one change per
          // UTC day at most, which holds for every zone in the tz database.
          let lo = start;
          let hi = start + DAY_MS - 1;
          while (hi - lo > MINUTE_MS) {
            const mid = lo + Math.floor((hi - lo) / 2 / MINUTE_MS) * MINUTE_MS;
            if (zone.offset(mid) === before) lo = mid;
            else hi = mid;
          }
          // offset(lo) is still `before` and the change lies in (lo, lo + 1 min]: on the next minute.
          entry = { before, after, change: lo + MINUTE_MS };
        }
        if (days.size > MAX_CACHED_DAYS_PER_ZONE) days.clear();
        days.set(day, entry);
      }
      return entry;
    };
    offsets = {
      at(utcMs: number): number {
        const entry = dayOffsets(Math.floor(utcMs / DAY_MS));
        if (typeof entry === 'number') return entry;
        return utcMs < entry.change ? entry.before : entry.after;
      },
    };
    zoneCache.set(timeZone, offsets);
  }
  return offsets;
}
