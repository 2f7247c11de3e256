import { expect } from 'chai';
import { formatAppointmentTime, reminderMessage } from '../../src/delivery/rules/reminder-text.js';

describe('reminder text', function () {
  it("states the time absolutely: weekday, date, time and the site's zone", async function () {
    expect(formatAppointmentTime(new Date('2026-12-16T15:30:00Z'), 'America/Chicago', 'en-US')).to.equal(
      'Wednesday, December 16, 2026 at 9:30 AM CST',
    );
  });

  it('names daylight time in summer and keeps MST all year in Phoenix', async function () {
    expect(formatAppointmentTime(new Date('2026-07-16T15:30:00Z'), 'America/Chicago')).to.equal('Thursday, July 16, 2026 at 10:30 AM CDT');
    expect(formatAppointmentTime(new Date('2026-07-16T15:30:00Z'), 'America/Phoenix')).to.equal('Thursday, July 16, 2026 at 8:30 AM MST');
    expect(formatAppointmentTime(new Date('2026-07-16T15:30:00Z'), 'America/New_York')).to.equal('Thursday, July 16, 2026 at 11:30 AM EDT');
  });

  it("gives the site's local date when it differs from the UTC date", async function () {
    // 03:00 UTC on the 17th is still the evening of Wednesday the 16th in Chicago.
    expect(formatAppointmentTime(new Date('2026-12-17T03:00:00Z'), 'America/Chicago')).to.equal(
      'Wednesday, December 16, 2026 at 9:00 PM CST',
    );
  });

  it("gives the same parts in another locale's words", async function () {
    const text = formatAppointmentTime(new Date('2026-12-16T15:30:00Z'), 'America/Chicago', 'es-US');
    expect(text).to.contain('miércoles');
    expect(text).to.contain('2026');
    expect(text).to.contain('CST');
    expect(text).not.to.match(/[\u202f\u00a0]/);
  });

  it('refuses a zone that is not an IANA zone', async function () {
    expect(() => formatAppointmentTime(new Date('2026-12-16T15:30:00Z'), 'Central Time')).to.throw(RangeError);
  });

  it('writes a reminder with the site and the absolute time, and nothing relative', async function () {
    const text = reminderMessage({
      siteName: 'Harbor Infusion Center - Nashville Midtown',
      start: new Date('2026-12-16T15:30:00Z'),
      timeZone: 'America/Chicago',
      sitePhone: '(615) 555-0100',
    });
    expect(text).to.equal(
      'Reminder: you have an infusion appointment at Harbor Infusion Center - Nashville Midtown on Wednesday, December 16, 2026 at 9:30 AM CST. ' +
        'Your medication is prepared for this appointment, so if you need to change it, please call the center at (615) 555-0100 ' +
        'at least 1 business day ahead. The center takes no walk-ins; come at the time above.',
    );
    expect(text).not.to.match(/\b(tomorrow|today|next week|this week)\b/i);
  });

  it("asks for the drug's longer notice when it has one", async function () {
    const text = reminderMessage({
      siteName: 'Harbor Infusion Center - Green Hills',
      start: new Date('2026-12-17T23:00:00Z'),
      timeZone: 'America/Chicago',
      rescheduleNoticeBusinessDays: 2,
    });
    expect(text).to.contain('on Thursday, December 17, 2026 at 5:00 PM CST');
    expect(text).to.contain('please call the center at least 2 business days ahead');
  });
});
