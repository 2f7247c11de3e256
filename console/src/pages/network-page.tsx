/**
 * The network's picture (issue 14): days from order to first infusion (median, distribution, by
 * drug and by site), misroutes caught, denials and appeals won, no-shows, for a period, from
 * Task/$network-metrics.
 */
import type { MeasureReport } from 'fhir/r4.js';
import type { JSX } from 'preact';
import { useState } from 'preact/hooks';
import { BarChart, Histogram } from '../components/charts.js';
import { Loading, Messages, useApi, useLoad } from '../components/common.js';
import { dayBins, networkPicture } from '../model/metrics.js';
import { referralStatusDisplay, type ReferralStatus } from '../model/referral.js';

const PERIODS = [30, 90, 365] as const;
const percent = (share: number): string => `${Math.round(share * 1000) / 10}%`;

export function NetworkPage(): JSX.Element {
  const api = useApi();
  const [days, setDays] = useState<(typeof PERIODS)[number]>(90);
  const [loaded] = useLoad(async () => {
    const end = new Date();
    const start = new Date(end.getTime() - days * 86_400_000);
    return api.operation<MeasureReport>('Task/$network-metrics', {
      query: [
        ['period-start', start.toISOString()],
        ['period-end', end.toISOString()],
      ],
    });
  }, [api, days]);
  const picture = loaded.state === 'ready' ? networkPicture(loaded.value) : undefined;
  return (
    <div class="network-page">
      <h1>The network's picture</h1>
      <fieldset class="inline">
        <legend>Period</legend>
        {PERIODS.map((p) => (
          <label key={p}>
            <input type="radio" name="period" checked={days === p} onChange={() => setDays(p)} /> last {p} days
          </label>
        ))}
      </fieldset>
      {loaded.state === 'loading' && <Loading what="the figures" />}
      {loaded.state === 'failed' && <Messages error={loaded.error} title="The figures could not be computed" />}
      {picture && (
        <>
          <ul class="kpis">
            <li>
              <span class="kpi-value">{picture.referrals}</span> referrals received
            </li>
            <li>
              <span class="kpi-value">{picture.daysToFirstInfusion.median ?? '–'}</span> median days from order to first infusion (
              {picture.daysToFirstInfusion.count} referrals)
            </li>
            <li>
              <span class="kpi-value">{picture.misroutes.caught}</span> misroutes caught ({percent(picture.misroutes.share)};{' '}
              {picture.misroutes.awaiting} awaiting the patient)
            </li>
            <li>
              <span class="kpi-value">
                {picture.appeals.won} of {picture.appeals.denials}
              </span>{' '}
              denials won on appeal ({picture.appeals.open} open, {picture.appeals.lost} lost)
            </li>
            <li>
              <span class="kpi-value">{percent(picture.noShows.rate)}</span> no-shows ({picture.noShows.missed} of {picture.noShows.due}{' '}
              appointments due)
            </li>
          </ul>
          <div class="charts">
            <Histogram
              id="days-histogram"
              title="Days from order to first infusion (the median's bar is darker)"
              bins={dayBins(picture.daysToFirstInfusion.distribution)}
              xLabel="Days"
              {...(picture.daysToFirstInfusion.median !== undefined ? { median: picture.daysToFirstInfusion.median } : {})}
            />
            <BarChart
              id="days-by-drug"
              title="Median days to first infusion, by drug"
              bars={picture.daysToFirstInfusion.byDrug}
              unit="Drug"
              valueHeading="Median days"
            />
            <BarChart
              id="days-by-site"
              title="Median days to first infusion, by site"
              bars={picture.daysToFirstInfusion.bySite}
              unit="Site"
              valueHeading="Median days"
            />
            <BarChart
              id="no-shows-by-site"
              title="No-show rate, by site"
              bars={picture.noShows.bySite}
              unit="Site"
              valueHeading="No-show rate"
              format={percent}
            />
            <BarChart
              id="by-status"
              title="Referrals received, by where they are now"
              bars={picture.byStatus.map((b) => ({ ...b, label: referralStatusDisplay(b.label as ReferralStatus) ?? b.label }))}
              unit="Status"
              valueHeading="Referrals"
            />
          </div>
        </>
      )}
    </div>
  );
}
