import { expect } from 'chai';
import { medianOfCounts, networkMetricsReport } from '../../src/directory/rules/network-metrics.js';
import { dayBins, networkPicture } from '../../console/src/model/metrics.js';

describe('network metrics: the report and how the console reads it', () => {
  it('takes the median of a distribution given as counts, odd and even totals', () => {
    expect(
      medianOfCounts([
        { value: 3, count: 1 },
        { value: 10, count: 1 },
        { value: 7, count: 1 },
      ]),
    ).to.equal(7);
    expect(
      medianOfCounts([
        { value: 4, count: 2 },
        { value: 8, count: 2 },
      ]),
    ).to.equal(6);
    expect(medianOfCounts([{ value: 5, count: 0 }])).to.equal(undefined);
  });

  it('reports every figure as a MeasureReport group, and the console reads back the same numbers', () => {
    const report = networkMetricsReport({
      rows: {
        referralsByStatus: [
          { status: 'scheduled', count: 6 },
          { status: 'misroute-suspected', count: 2 },
          { status: 'auth-denied', count: 2 },
        ],
        misroutesByStatus: [
          { status: 'misroute-suspected', count: 2 },
          { status: 'scheduled', count: 1 },
        ],
        daysToFirstInfusion: [
          { drugId: 'infliximab', drugName: 'infliximab', siteId: 'a', days: 9, count: 2 },
          { drugId: 'infliximab', drugName: 'infliximab', siteId: 'b', days: 20, count: 1 },
          { drugId: 'ocrelizumab', drugName: 'ocrelizumab', siteId: 'a', days: 12, count: 3 },
        ],
        appeals: [
          { appealStatus: 'completed', referralStatus: 'scheduled', count: 1 },
          { appealStatus: 'ready', referralStatus: 'auth-denied', count: 2 },
        ],
        appointmentsDue: [
          { siteId: 'a', status: 'fulfilled', count: 7 },
          { siteId: 'a', status: 'noshow', count: 1 },
          { siteId: 'b', status: 'booked', count: 2 },
        ],
      },
      period: { start: '2026-09-01T00:00:00.000Z', end: '2026-12-01T00:00:00.000Z' },
      now: new Date('2026-12-01T00:00:00Z'),
      siteName: (id) => `Site ${id.toUpperCase()}`,
    });
    expect(report).to.include({ resourceType: 'MeasureReport', status: 'complete', type: 'summary' });
    const picture = networkPicture(report);
    expect(picture.referrals).to.equal(10);
    expect(picture.misroutes).to.deep.equal({ caught: 3, share: 0.3, awaiting: 2 });
    expect(picture.daysToFirstInfusion.median).to.equal(12);
    expect(picture.daysToFirstInfusion.count).to.equal(6);
    expect(picture.daysToFirstInfusion.distribution).to.deep.equal([
      { label: '9', value: 2 },
      { label: '12', value: 3 },
      { label: '20', value: 1 },
    ]);
    expect(picture.daysToFirstInfusion.byDrug).to.deep.equal([
      { label: 'infliximab', value: 9, count: 3 },
      { label: 'ocrelizumab', value: 12, count: 3 },
    ]);
    expect(picture.daysToFirstInfusion.bySite).to.deep.equal([
      { label: 'Site A', value: 12, count: 5 },
      { label: 'Site B', value: 20, count: 1 },
    ]);
    expect(picture.appeals).to.deep.equal({ denials: 3, won: 1, lost: 0, open: 2 });
    expect(picture.noShows).to.deep.include({ due: 10, missed: 1, rate: 0.1 });
    expect(picture.noShows.bySite).to.deep.equal([
      { label: 'Site A', value: 0.125, count: 8 },
      { label: 'Site B', value: 0, count: 2 },
    ]);
  });

  it('bins days one by one for two weeks, then by week, keeping empty bins between', () => {
    expect(
      dayBins([
        { label: '3', value: 1 },
        { label: '5', value: 2 },
        { label: '15', value: 1 },
        { label: '29', value: 4 },
      ]),
    ).to.deep.equal([
      { label: '3', value: 1 },
      { label: '4', value: 0 },
      { label: '5', value: 2 },
      ...[6, 7, 8, 9, 10, 11, 12, 13].map((d) => ({ label: String(d), value: 0 })),
      { label: '14-20', value: 1 },
      { label: '21-27', value: 0 },
      { label: '28-34', value: 4 },
    ]);
  });
});
