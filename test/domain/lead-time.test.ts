import { expect } from 'chai';
import { earliestStart, hasLeadTime, rescheduleNoticeIssues } from '../../src/scheduling/rules/lead-time.js';
import { US_HOLIDAYS, type SiteClosures } from '../../src/scheduling/rules/site-hours.js';

const closures: SiteClosures = { holidays: US_HOLIDAYS, holidayObservance: 'actual-and-observed', dates: [], periods: [] };
const chicago = { timeZone: 'America/Chicago', closures, leadTimeBusinessDays: 1 };
const at = (iso: string): Date => new Date(iso);

describe('pharmacy lead time', function () {
  it('puts Friday 16:00 plus one business day on Monday 16:00, across the weekend', async function () {
    // Friday 2026-12-11 16:00 CST.
    expect(earliestStart({ ...chicago, now: at('2026-12-11T22:00:00Z') }).toISOString()).to.equal('2026-12-14T22:00:00.000Z');
  });

  it('counts from the authorization when it comes after now', async function () {
    // Now Monday 09:00 CST; approved Wednesday 14:00 CST -> Thursday 14:00 CST.
    const earliest = earliestStart({ ...chicago, now: at('2026-12-14T15:00:00Z'), authorizedAt: at('2026-12-16T20:00:00Z') });
    expect(earliest.toISOString()).to.equal('2026-12-17T20:00:00.000Z');
  });

  it('counts from now when the authorization is older', async function () {
    const earliest = earliestStart({ ...chicago, now: at('2026-12-16T20:00:00Z'), authorizedAt: at('2026-12-01T15:00:00Z') });
    expect(earliest.toISOString()).to.equal('2026-12-17T20:00:00.000Z');
  });

  it('skips Thanksgiving, a site closure', async function () {
    // Wednesday 2026-11-25 10:00 CST; Thursday 26th is Thanksgiving.
    expect(earliestStart({ ...chicago, now: at('2026-11-25T16:00:00Z') }).toISOString()).to.equal('2026-11-27T16:00:00.000Z');
    expect(earliestStart({ ...chicago, now: at('2026-11-25T16:00:00Z'), leadTimeBusinessDays: 2 }).toISOString()).to.equal(
      '2026-11-30T16:00:00.000Z',
    );
  });

  it('skips the Friday on which a Saturday Independence Day is observed', async function () {
    // Thursday 2026-07-02 10:00 CDT; Friday 3rd observed, Saturday 4th and Sunday 5th the weekend.
    expect(earliestStart({ ...chicago, now: at('2026-07-02T15:00:00Z') }).toISOString()).to.equal('2026-07-06T15:00:00.000Z');
  });

  it('skips an explicit closure date of the site', async function () {
    const withClosure = { ...closures, dates: ['2026-12-15'] };
    // Monday 2026-12-14 10:00 CST; Tuesday closed -> Wednesday.
    expect(earliestStart({ ...chicago, closures: withClosure, now: at('2026-12-14T16:00:00Z') }).toISOString()).to.equal(
      '2026-12-16T16:00:00.000Z',
    );
  });

  it('starts counting on the next business day when now falls on a weekend', async function () {
    // Saturday 2026-12-12 10:00 CST: the pharmacy compounds on Monday, so Tuesday from 00:00 CST.
    expect(earliestStart({ ...chicago, now: at('2026-12-12T16:00:00Z') }).toISOString()).to.equal('2026-12-15T06:00:00.000Z');
  });

  it("counts business days in the site's zone, not in UTC", async function () {
    // Friday 23:00 CST is already Saturday in UTC; for the site it is still Friday.
    expect(earliestStart({ ...chicago, now: at('2026-12-12T05:00:00Z') }).toISOString()).to.equal('2026-12-15T05:00:00.000Z');
  });

  it('keeps the local time of day across the fall-back change', async function () {
    // Friday 2026-10-30 16:00 CDT (UTC-5) -> Monday 2026-11-02 16:00 CST (UTC-6).
    expect(earliestStart({ ...chicago, now: at('2026-10-30T21:00:00Z') }).toISOString()).to.equal('2026-11-02T22:00:00.000Z');
  });

  it('keeps the same UTC time over that weekend in Phoenix, which has no daylight-saving time', async function () {
    // Friday 2026-10-30 16:00 MST -> Monday 2026-11-02 16:00 MST.
    const phoenix = { ...chicago, timeZone: 'America/Phoenix' };
    expect(earliestStart({ ...phoenix, now: at('2026-10-30T23:00:00Z') }).toISOString()).to.equal('2026-11-02T23:00:00.000Z');
  });

  it("takes a drug's longer lead time: two business days from Thursday is Monday", async function () {
    expect(earliestStart({ ...chicago, leadTimeBusinessDays: 2, now: at('2026-12-10T17:00:00Z') }).toISOString()).to.equal(
      '2026-12-14T17:00:00.000Z',
    );
  });

  it('returns now itself for a lead time of zero, even on a weekend', async function () {
    expect(earliestStart({ ...chicago, leadTimeBusinessDays: 0, now: at('2026-12-12T16:00:00Z') }).toISOString()).to.equal(
      '2026-12-12T16:00:00.000Z',
    );
  });

  it('refuses a lead time that is not a whole number of days', async function () {
    expect(() => earliestStart({ ...chicago, leadTimeBusinessDays: -1, now: at('2026-12-12T16:00:00Z') })).to.throw(RangeError);
    expect(() => earliestStart({ ...chicago, leadTimeBusinessDays: 1.5, now: at('2026-12-12T16:00:00Z') })).to.throw(RangeError);
  });

  it('tells whether a reschedule leaves the lead time', async function () {
    const now = at('2026-12-11T22:00:00Z'); // Friday 16:00 CST
    expect(hasLeadTime({ ...chicago, now, start: at('2026-12-14T15:00:00Z') })).to.equal(false); // Monday 09:00
    expect(hasLeadTime({ ...chicago, now, start: at('2026-12-14T22:00:00Z') })).to.equal(true); // Monday 16:00
    expect(hasLeadTime({ ...chicago, now, start: at('2026-12-15T14:00:00Z') })).to.equal(true); // Tuesday 08:00
  });

  it('refuses or flags a late reschedule per policy, pointing at Appointment.start', async function () {
    const late = { ...chicago, now: at('2026-12-11T22:00:00Z'), start: at('2026-12-14T15:00:00Z') };
    const refused = rescheduleNoticeIssues({ ...late, policy: 'refuse' });
    expect(refused).to.have.length(1);
    expect(refused[0]).to.deep.include({ severity: 'error', code: 'business-rule', expression: ['Appointment.start'] });
    expect(refused[0]?.diagnostics).to.contain('2026-12-14T22:00:00.000Z');
    const flagged = rescheduleNoticeIssues({ ...late, policy: 'flag' });
    expect(flagged[0]).to.deep.include({ severity: 'warning', code: 'business-rule', expression: ['Appointment.start'] });
    expect(rescheduleNoticeIssues({ ...late, start: at('2026-12-15T14:00:00Z'), policy: 'refuse' })).to.deep.equal([]);
  });
});
