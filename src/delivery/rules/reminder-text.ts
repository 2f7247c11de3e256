/**
 * The words of an appointment reminder. docs/domain.md "The path of one referral", 6: state dates
 * absolutely (weekday, date, time and time zone), because a patient took "Wednesday" to mean the
 * wrong week. So never "tomorrow" or "next Wednesday", always the site's own zone abbreviation
 * ("CST", "MST" for Phoenix, which keeps no daylight-saving time).
 *
 * No PHI: a reminder may travel by SMS or e-mail and be seen by others, so it names the site and
 * the time only: no patient name, no drug (a drug name discloses a diagnosis). Pure.
 */
import { DateTime } from 'luxon';

export const DEFAULT_REMINDER_LOCALE = 'en-US';

/**
 * "Wednesday, December 16, 2026 at 9:30 AM CST": weekday, date, time and zone in the site's zone.
 * Other locales get the same parts in their own words and order (Intl).
 */
export function formatAppointmentTime(start: Date, timeZone: string, locale: string = DEFAULT_REMINDER_LOCALE): string {
  const local = DateTime.fromJSDate(start, { zone: timeZone });
  if (!local.isValid) throw new RangeError(`'${timeZone}' is not an IANA time zone`);
  if (locale === 'en-US') return local.setLocale('en-US').toFormat("cccc, LLLL d, yyyy 'at' h:mm a ZZZZ");
  const text = local.setLocale(locale).toLocaleString({
    weekday: 'long',
    year: 'numeric',
    month: 'long',
    day: 'numeric',
    hour: 'numeric',
    minute: '2-digit',
    timeZoneName: 'short',
  });
  // ICU puts narrow and no-break spaces around the time; some SMS gateways mangle them.
  return text.replace(/[\u202f\u00a0]/g, ' ');
}

export interface ReminderMessageInput {
  siteName: string;
  start: Date;
  /** The site's IANA zone: the time a patient must be there is the site's wall-clock time. */
  timeZone: string;
  /** The site's phone for changes (a business number, not PHI). */
  sitePhone?: string;
  /** The pharmacy lead time: a reschedule needs this notice (field note 001). */
  rescheduleNoticeBusinessDays?: number;
  locale?: 'en-US';
}

/**
 * The reminder text (en-US). It says that the dose is prepared for this visit, so a change needs
 * notice, and that there are no walk-ins (field note 001, docs/domain.md 7).
 */
export function reminderMessage(input: ReminderMessageInput): string {
  const when = formatAppointmentTime(input.start, input.timeZone, input.locale ?? DEFAULT_REMINDER_LOCALE);
  const notice = input.rescheduleNoticeBusinessDays ?? 1;
  const dayWord = notice === 1 ? 'business day' : 'business days';
  const call = input.sitePhone === undefined ? 'call the center' : `call the center at ${input.sitePhone}`;
  return (
    `Reminder: you have an infusion appointment at ${input.siteName} on ${when}. ` +
    `Your medication is prepared for this appointment, so if you need to change it, please ${call} ` +
    `at least ${notice} ${dayWord} ahead. The center takes no walk-ins; come at the time above.`
  );
}
