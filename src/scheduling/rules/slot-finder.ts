/**
 * Finding free chair time: the next N appointment proposals across sites, earliest first, for the
 * `Appointment/$find` operation (IHE ITI Scheduling, https://profiles.ihe.net/ITI/Scheduling/).
 *
 * A proposal fits entirely within one open interval of its site and on one chair that is free for
 * the whole chair time (bookings and live holds are `busy`). Pure: the range is a parameter.
 *
 * Speed (issue 6: 50 sites x 20 chairs x 60 days, limit 10, well under 10 ms p95; see
 * bench/find-slots.ts): nothing is materialised per slot. Each site's open intervals are read a day
 * at a time (cached per calendar), candidate starts walk a grid, a busy chair makes the walk jump
 * to the end of the earliest blocking interval, and once `limit` proposals are held no site looks
 * past the latest of them.
 */
import {
  localDayAndMinute,
  isoWeekdayOfEpochDay,
  openOnDay,
  utcOfWallTime,
  DAY_MS,
  DAYS_OF_WEEK,
  MINUTE_MS,
  type DayOfWeek,
  type SiteCalendar,
} from './site-hours.js';

/**
 * "Evening" means an appointment that starts at or after 17:00 site-local time: after a usual
 * working day, when the working patients of field note 001 ask for slots (field note 001: slots exist on evenings
 * and weekends).
 */
export const EVENING_STARTS_AT_LOCAL = '17:00';
const EVENING_MINUTE = 17 * 60;

export const DEFAULT_STEP_MINUTES = 15;

/** A booking or a live hold on one chair. */
export interface BusyInterval {
  locationId: string;
  chairId: string;
  start: Date;
  end: Date;
}

/** Every filter given must hold (they combine with AND); times and days are site-local. */
export interface SlotFilters {
  /** Start at or after 17:00 local (EVENING_STARTS_AT_LOCAL). */
  eveningsOnly?: boolean;
  /** Saturday or Sunday. */
  weekendsOnly?: boolean;
  /** An evening or any time on a weekend: the usual wish of a patient who works weekdays. */
  eveningsOrWeekends?: boolean;
  /** `HH:mm`: start at or after this local time. */
  startAfterLocal?: string;
  daysOfWeek?: readonly DayOfWeek[];
}

export interface FindSlotsInput {
  /** In order of preference: at equal start times the earlier site comes first. */
  sites: readonly SiteCalendar[];
  /** Chair time from the drug catalog (first dose or maintenance, observation included). */
  durationMinutes: number;
  /** No proposal starts before this (the pharmacy lead time, the requested period). */
  earliest: Date;
  /** No proposal ends after this (the order's and the authorization's period). */
  latest: Date;
  /** Bookings and live holds, as a list or as an index kept by the caller. */
  busy?: readonly BusyInterval[] | BusyIndex;
  filters?: SlotFilters;
  /** Candidate starts are every stepMinutes from the opening time; default 15. */
  stepMinutes?: number;
  limit: number;
}

export interface SlotProposal {
  locationId: string;
  chairId: string;
  start: Date;
  end: Date;
}

interface Candidate {
  start: number;
  site: number;
  chair: number;
}

/**
 * The next `limit` proposals, earliest first: at most one per site and start time (on the site's
 * first free chair, in chair order), ties between sites broken by the order of `sites`.
 */
export function findSlots(input: FindSlotsInput): SlotProposal[] {
  const { sites, durationMinutes, limit } = input;
  const stepMinutes = input.stepMinutes ?? DEFAULT_STEP_MINUTES;
  if (!Number.isInteger(durationMinutes) || durationMinutes <= 0)
    throw new RangeError(`durationMinutes must be a whole number > 0, got ${durationMinutes}`);
  if (!Number.isInteger(stepMinutes) || stepMinutes <= 0)
    throw new RangeError(`stepMinutes must be a whole number > 0, got ${stepMinutes}`);
  if (!Number.isInteger(limit) || limit < 0) throw new RangeError(`limit must be a whole number >= 0, got ${limit}`);
  const earliest = input.earliest.getTime();
  const latest = input.latest.getTime();
  const duration = durationMinutes * MINUTE_MS;
  const step = stepMinutes * MINUTE_MS;
  if (limit === 0 || !(latest - earliest >= duration)) return [];

  const accept = filterTest(input.filters ?? {});
  const busy = input.busy instanceof BusyIndex ? input.busy : BusyIndex.from(input.busy ?? [], { from: input.earliest, to: input.latest });
  const best: Candidate[] = [];
  // Once `limit` candidates are held, nothing starting at or after the last one can enter.
  const threshold = (): number => (best.length === limit ? best[limit - 1]!.start : Number.POSITIVE_INFINITY);

  sites.forEach((site, siteIndex) => {
    if (!site.active || site.chairs.length === 0) return;
    const chairBusy = site.chairs.map((chair) => busy.chair(site.locationId, chair));
    // Stops the whole site once a candidate can no longer enter the list.
    let done = false;

    const scanRun = (runStart: number, runEnd: number): void => {
      const alignUp = (t: number): number => (t <= runStart ? runStart : runStart + Math.ceil((t - runStart) / step) * step);
      const lastStart = Math.min(runEnd, latest) - duration;
      let s = alignUp(earliest);
      while (s <= lastStart) {
        if (s >= threshold()) {
          done = true;
          return;
        }
        const skipTo = accept(site.timeZone, s);
        if (skipTo !== undefined) {
          s = alignUp(Math.max(skipTo, s + step));
          continue;
        }
        const end = s + duration;
        let freeChair = -1;
        let nextTry = Number.POSITIVE_INFINITY;
        for (let c = 0; c < chairBusy.length; c++) {
          const blockedUntil = blockingEnd(chairBusy[c]!, s, end);
          if (blockedUntil === undefined) {
            freeChair = c;
            break;
          }
          if (blockedUntil < nextTry) nextTry = blockedUntil;
        }
        if (freeChair >= 0) {
          insert(best, { start: s, site: siteIndex, chair: freeChair }, limit);
          s += step;
        } else {
          s = alignUp(nextTry);
        }
      }
    };

    // Open intervals day by day in the site's zone; touching ones (an all-day site at midnight)
    // are merged into one run so that a visit may cross midnight there.
    let runStart = Number.NaN;
    let runEnd = Number.NaN;
    const firstDay = localDayAndMinute(site.timeZone, earliest).day - 1;
    for (let day = firstDay; !done; day++) {
      // A local day starts at most 14 h before its UTC date (UTC+14): past the bound, stop.
      if (day * DAY_MS - 14 * 60 * MINUTE_MS > Math.min(latest - duration, threshold())) break;
      for (const [s, e] of openOnDay(site, day)) {
        if (s === runEnd) {
          runEnd = e;
          continue;
        }
        if (!Number.isNaN(runStart)) {
          scanRun(runStart, runEnd);
          if (done) break;
        }
        runStart = s;
        runEnd = e;
      }
    }
    if (!done && !Number.isNaN(runStart)) scanRun(runStart, runEnd);
  });

  return best.map((c) => {
    const site = sites[c.site]!;
    return { locationId: site.locationId, chairId: site.chairs[c.chair]!, start: new Date(c.start), end: new Date(c.start + duration) };
  });
}

const EMPTY: readonly number[] = [];

/** Keeps `best` sorted by start (earlier sites first at equal starts) and at most `limit` long. */
function insert(best: Candidate[], candidate: Candidate, limit: number): void {
  let i = best.length;
  while (i > 0 && best[i - 1]!.start > candidate.start) i--;
  if (i >= limit) return;
  best.splice(i, 0, candidate);
  if (best.length > limit) best.pop();
}

/**
 * Busy intervals per location and chair, as flat sorted arrays [s0, e0, s1, e1, ...] of merged
 * intervals. findSlots builds one from an array on every call; a caller that searches often (the
 * `$find` operation over a store of bookings) can keep one and pass it instead, since building it
 * is the part of a search that grows with the number of bookings.
 */
export class BusyIndex {
  private constructor(private readonly byLocation: ReadonlyMap<string, ReadonlyMap<string, readonly number[]>>) {}

  /** Keeps only the intervals that touch [from, to) when a range is given. */
  static from(busy: readonly BusyInterval[], range?: { from: Date; to: Date }): BusyIndex {
    const from = range?.from.getTime() ?? Number.NEGATIVE_INFINITY;
    const to = range?.to.getTime() ?? Number.POSITIVE_INFINITY;
    const raw = new Map<string, Map<string, Array<[number, number]>>>();
    for (const b of busy) {
      const s = b.start.getTime();
      const e = b.end.getTime();
      if (!(e > s) || e <= from || s >= to) continue;
      let byChair = raw.get(b.locationId);
      if (byChair === undefined) {
        byChair = new Map();
        raw.set(b.locationId, byChair);
      }
      let list = byChair.get(b.chairId);
      if (list === undefined) {
        list = [];
        byChair.set(b.chairId, list);
      }
      list.push([s, e]);
    }
    const index = new Map<string, Map<string, number[]>>();
    for (const [locationId, byChair] of raw) {
      const chairs = new Map<string, number[]>();
      for (const [chairId, list] of byChair) {
        list.sort((a, b) => a[0] - b[0]);
        const flat: number[] = [];
        for (const [s, e] of list) {
          const n = flat.length;
          if (n > 0 && s <= flat[n - 1]!) flat[n - 1] = Math.max(flat[n - 1]!, e);
          else flat.push(s, e);
        }
        chairs.set(chairId, flat);
      }
      index.set(locationId, chairs);
    }
    return new BusyIndex(index);
  }

  /** The chair's merged busy intervals, flat: [s0, e0, s1, e1, ...] in UTC ms. */
  chair(locationId: string, chairId: string): readonly number[] {
    return this.byLocation.get(locationId)?.get(chairId) ?? EMPTY;
  }
}

/** The end of the first busy interval overlapping [start, end), or undefined when the chair is free. */
function blockingEnd(flat: readonly number[], start: number, end: number): number | undefined {
  // First interval whose end is after `start` (ends are sorted, intervals being merged).
  let lo = 0;
  let hi = flat.length / 2;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (flat[mid * 2 + 1]! <= start) lo = mid + 1;
    else hi = mid;
  }
  if (lo * 2 >= flat.length) return undefined;
  return flat[lo * 2]! < end ? flat[lo * 2 + 1]! : undefined;
}

/**
 * The filters as one test: undefined when a start passes, else an instant before which no start
 * can pass on this grid walk (the next local midnight, or the local time the filter asks for).
 */
function filterTest(filters: SlotFilters): (timeZone: string, start: number) => number | undefined {
  const afterMinute = filters.startAfterLocal === undefined ? 0 : localMinuteOf(filters.startAfterLocal);
  const eveningMinute = filters.eveningsOnly === true ? EVENING_MINUTE : 0;
  const minMinute = Math.max(afterMinute, eveningMinute);
  const weekdays = new Set<number>(
    filters.daysOfWeek === undefined
      ? [1, 2, 3, 4, 5, 6, 7]
      : filters.daysOfWeek.map((d) => DAYS_OF_WEEK.indexOf(d) + 1).filter((d) => d > 0),
  );
  if (filters.weekendsOnly === true) for (const d of [1, 2, 3, 4, 5]) weekdays.delete(d);
  const eitherEveningOrWeekend = filters.eveningsOrWeekends === true;
  const trivial = minMinute === 0 && weekdays.size === 7 && !eitherEveningOrWeekend;
  if (trivial) return () => undefined;

  return (timeZone, start) => {
    const { day, minute } = localDayAndMinute(timeZone, start);
    const weekday = isoWeekdayOfEpochDay(day);
    if (!weekdays.has(weekday)) return utcOfWallTime(timeZone, day + 1, 0);
    const weekend = weekday >= 6;
    const floor = Math.max(minMinute, eitherEveningOrWeekend && !weekend ? EVENING_MINUTE : 0);
    if (minute < floor) return utcOfWallTime(timeZone, day, floor);
    return undefined;
  };
}

function localMinuteOf(time: string): number {
  const match = /^([01][0-9]|2[0-3]):([0-5][0-9])$/.exec(time);
  if (!match) throw new RangeError(`startAfterLocal must be HH:mm, got '${time}'`);
  return Number(match[1]) * 60 + Number(match[2]);
}
