/**
 * Pharmacy lead time: how soon a dose can be given after it may be prepared.
 *
 * Field note 001 (docs/domain.md, "The path of one referral", 5): every dose is compounded for its patient
 * and appointment the day before, with no spare stock. So the earliest start is N business days
 * (per drug in the catalog, default 1) after the later of now and the authorization's approval,
 * and a reschedule needs the same notice. Business days are the site's: Monday to Friday, minus
 * its holidays and closure dates, in its own time zone. Pure: `now` is a parameter.
 */
import type { OperationOutcomeIssue } from 'fhir/r4.js';
import { errorIssue, warningIssue } from '../../fhir/outcomes.js';
import { closedDays, localDayAndMinute, isoWeekdayOfEpochDay, utcOfWallTime, yearOfEpochDay, type SiteClosures } from './site-hours.js';

export interface LeadTimeInput {
  now: Date;
  /** When the prior authorization was approved; the dose is not prepared before that. */
  authorizedAt?: Date;
  /** Whole business days; 0 means no lead time. */
  leadTimeBusinessDays: number;
  /** The site's IANA zone: business days and time of day are the site's. */
  timeZone: string;
  /**
   * The site's whole-day closures (holidays and closure dates). Closure periods (a site closed
   * for a stretch) are not business-day matters: the slot finder keeps appointments out of them.
   */
  closures: Pick<SiteClosures, 'holidays' | 'holidayObservance' | 'dates'>;
}

/** Far beyond any lead time plus holidays: a guard against a calendar with no business day. */
const MAX_DAYS_SEARCHED = 3_660;

/**
 * The earliest instant an appointment may start: N business days after the later of now and the
 * authorization, at the same local time of day (Friday 16:00 + 1 business day -> Monday 16:00).
 *
 * When that later instant falls on a day that is not a business day (a Saturday, a holiday),
 * counting starts from the beginning of the next business day, since the pharmacy does nothing
 * before then: Saturday 10:00 + 1 -> Tuesday 00:00 (the pharmacy compounds on Monday).
 * A local time skipped by a spring-forward change moves forward by the gap.
 */
export function earliestStart(input: LeadTimeInput): Date {
  const { leadTimeBusinessDays: days, timeZone } = input;
  if (!Number.isInteger(days) || days < 0) throw new RangeError(`leadTimeBusinessDays must be a whole number >= 0, got ${days}`);
  const from = Math.max(input.now.getTime(), input.authorizedAt?.getTime() ?? Number.NEGATIVE_INFINITY);
  if (days === 0) return new Date(from);

  const isBusinessDay = businessDayTest(input.closures);
  let { day, minute } = localDayAndMinute(timeZone, from);
  if (!isBusinessDay(day)) {
    day = nextBusinessDay(day, isBusinessDay);
    minute = 0;
  }
  for (let n = 0; n < days; n++) day = nextBusinessDay(day, isBusinessDay);
  return new Date(utcOfWallTime(timeZone, day, minute));
}

/** Whether `start` leaves at least the lead time from now (and from the authorization). */
export function hasLeadTime(input: LeadTimeInput & { start: Date }): boolean {
  return input.start.getTime() >= earliestStart(input).getTime();
}

export type LateReschedulePolicy = 'refuse' | 'flag';

/**
 * The issue a reschedule with less notice than the lead time raises: an error under the `refuse`
 * policy, a warning under `flag` (the coordinator then confirms the pharmacy can still prepare
 * the dose). None when the notice is enough.
 */
export function rescheduleNoticeIssues(input: LeadTimeInput & { start: Date; policy: LateReschedulePolicy }): OperationOutcomeIssue[] {
  const earliest = earliestStart(input);
  if (input.start.getTime() >= earliest.getTime()) return [];
  const message =
    `A new time needs ${input.leadTimeBusinessDays} business day(s) of notice for the pharmacy to prepare the dose; ` +
    `the earliest possible start is ${earliest.toISOString()}`;
  return input.policy === 'refuse'
    ? [errorIssue('business-rule', message, 'Appointment.start')]
    : [warningIssue('business-rule', message, 'Appointment.start')];
}

function businessDayTest(closures: LeadTimeInput['closures']): (day: number) => boolean {
  const full: SiteClosures = { ...closures, periods: [] };
  return (day) => isoWeekdayOfEpochDay(day) <= 5 && !closedDays(full, yearOfEpochDay(day)).has(day);
}

function nextBusinessDay(day: number, isBusinessDay: (day: number) => boolean): number {
  for (let next = day + 1, i = 0; i < MAX_DAYS_SEARCHED; next++, i++) {
    if (isBusinessDay(next)) return next;
  }
  throw new RangeError('The site calendar has no business day within ten years');
}
