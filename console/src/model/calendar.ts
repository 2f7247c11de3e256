/**
 * The scheduling calendar: proposals of `Appointment/$find` laid out as a week at the site, in the
 * site's own time zone (a coordinator in another zone still sees the site's wall clock, and the
 * zone is named). Luxon does the zone arithmetic, as the gateway's scheduling does. Pure.
 */
import type { Appointment } from 'fhir/r4.js';
import { DateTime } from 'luxon';
import { CHAIR_IDENTIFIER_SYSTEM, HOLD_EXPIRES_EXTENSION_URL } from '../../../src/scheduling/rules/appointment.js';
import { EVENING_STARTS_AT_LOCAL } from '../../../src/scheduling/rules/slot-finder.js';

/** Starts at or after this site-local hour are evenings: the gateway's own rule. */
export const EVENING_HOUR = Number(EVENING_STARTS_AT_LOCAL.split(':')[0]);

export interface CalendarSlot {
  appointment: Appointment;
  start: DateTime;
  end: DateTime;
  chair: string;
  evening: boolean;
  weekend: boolean;
}

export interface CalendarDay {
  /** ISO date at the site. */
  date: string;
  label: string;
  slots: CalendarSlot[];
}

/** Monday 00:00 at the site of the week holding `instant`. */
export function weekStart(instant: Date, timeZone: string): DateTime {
  return DateTime.fromJSDate(instant, { zone: timeZone }).startOf('week');
}

/** The seven days of a week at the site, each as [start, end) instants. */
export function weekDays(start: DateTime): Array<{ date: string; from: Date; to: Date }> {
  return Array.from({ length: 7 }, (_, i) => {
    const day = start.plus({ days: i });
    return { date: day.toISODate() ?? '', from: day.toJSDate(), to: day.plus({ days: 1 }).toJSDate() };
  });
}

export function chairOf(appointment: Appointment): string {
  const chair = appointment.participant?.find((p) => p.actor?.identifier?.system === CHAIR_IDENTIFIER_SYSTEM)?.actor;
  return chair?.display ?? chair?.identifier?.value ?? 'a chair';
}

export function calendarSlot(appointment: Appointment, timeZone: string): CalendarSlot | undefined {
  if (!appointment.start || !appointment.end) return undefined;
  const start = DateTime.fromISO(appointment.start, { zone: timeZone });
  const end = DateTime.fromISO(appointment.end, { zone: timeZone });
  if (!start.isValid || !end.isValid) return undefined;
  return { appointment, start, end, chair: chairOf(appointment), evening: start.hour >= EVENING_HOUR, weekend: start.weekday >= 6 };
}

/** The week's days with their proposals, earliest first. */
export function calendarWeek(start: DateTime, proposals: readonly Appointment[], timeZone: string): CalendarDay[] {
  const slots = proposals.map((a) => calendarSlot(a, timeZone)).filter((s): s is CalendarSlot => s !== undefined);
  return weekDays(start).map(({ date }) => {
    const day = DateTime.fromISO(date, { zone: timeZone });
    return {
      date,
      label: day.toFormat('ccc d LLL'),
      slots: slots.filter((s) => s.start.toISODate() === date).sort((a, b) => a.start.toMillis() - b.start.toMillis()),
    };
  });
}

/** "Tue 9 Dec 2026, 10:15 to 12:45 CST": the date stated absolutely, as reminders do (field note 001). */
export function formatSlot(start: DateTime, end: DateTime): string {
  return `${start.toFormat('ccc d LLL yyyy, HH:mm')} to ${end.toFormat('HH:mm ZZZZ')}`;
}

export function formatInstantAt(value: string | undefined, timeZone: string): string {
  if (value === undefined) return '';
  const at = DateTime.fromISO(value, { zone: timeZone });
  return at.isValid ? at.toFormat('ccc d LLL yyyy, HH:mm ZZZZ') : value;
}

/** The zone as a coordinator reads it: "America/Chicago (CST, UTC-6)". */
export function zoneLabel(timeZone: string, at: Date): string {
  const local = DateTime.fromJSDate(at, { zone: timeZone });
  return `${timeZone} (${local.toFormat('ZZZZ')}, UTC${local.toFormat('Z')})`;
}

const isChair = (p: NonNullable<Appointment['participant']>[number]): boolean => p.actor?.identifier?.system === CHAIR_IDENTIFIER_SYSTEM;

/**
 * A booked Appointment moved to a proposal's time and chair, for the PUT that reschedules it:
 * only the time and the chair change (the gateway keeps everything else, and the patient).
 */
export function rescheduled(current: Appointment & { id: string }, proposal: Appointment): Appointment & { id: string } {
  const chair = proposal.participant?.find(isChair);
  const participant = (current.participant ?? []).map((p) => (isChair(p) && chair ? { ...p, actor: chair.actor } : p));
  return {
    ...current,
    ...(proposal.start !== undefined ? { start: proposal.start } : {}),
    ...(proposal.end !== undefined ? { end: proposal.end } : {}),
    ...(proposal.minutesDuration !== undefined ? { minutesDuration: proposal.minutesDuration } : {}),
    participant,
  };
}

export function holdExpiresAt(appointment: Appointment): string | undefined {
  return appointment.extension?.find((e) => e.url === HOLD_EXPIRES_EXTENSION_URL)?.valueInstant;
}
