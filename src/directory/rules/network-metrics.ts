/**
 * The network's picture as a FHIR MeasureReport (https://hl7.org/fhir/R4/measurereport.html,
 * type `summary`): what a manager reads at a glance, from the gateway's own data (issue 14).
 *
 *   referrals              received in the period, stratified by current business status
 *   misroutes-caught       of those, held by the site check at intake (field note 000); by current status
 *   days-to-first-infusion from the order to the first infusion booked or given: the median
 *                          (measureScore, days), the distribution (stratifier `days`), and the
 *                          median by drug and by site
 *   prior-auth-appeals     denials appealed in the period (one appeal Task each) and appeals won
 *   no-shows               appointments due in the period and the ones missed, overall and by site
 *
 * Codes: profiles/CodeSystem-network-metric.json; populations from
 * http://terminology.hl7.org/CodeSystem/measure-population. Pure: the counts come in, the report
 * goes out.
 */
import type {
  CodeableConcept,
  MeasureReport,
  MeasureReportGroup,
  MeasureReportGroupPopulation,
  MeasureReportGroupStratifierStratum,
  Quantity,
} from 'fhir/r4.js';
import type { NetworkMetricsRows } from '../../ports/resource-store.js';
import { GATEWAY_CANONICAL_BASE, REFERRAL_STATUS_SYSTEM } from '../../referral/rules/referral-status.js';

export const NETWORK_METRIC_SYSTEM = `${GATEWAY_CANONICAL_BASE}/CodeSystem/network-metric`;
export const NETWORK_PICTURE_MEASURE = `${GATEWAY_CANONICAL_BASE}/Measure/network-picture`;
const POPULATION_SYSTEM = 'http://terminology.hl7.org/CodeSystem/measure-population';
const UCUM = 'http://unitsofmeasure.org';

export interface CountAt {
  value: number;
  count: number;
}

/**
 * The median of a distribution given as counts per value: the middle value, or the mean of the two
 * middle values when the count is even. Undefined for an empty distribution.
 */
export function medianOfCounts(distribution: readonly CountAt[]): number | undefined {
  const sorted = distribution.filter((d) => d.count > 0).sort((a, b) => a.value - b.value);
  const total = sorted.reduce((sum, d) => sum + d.count, 0);
  if (total === 0) return undefined;
  const valueAt = (position: number): number => {
    let seen = 0;
    for (const d of sorted) {
      seen += d.count;
      if (position < seen) return d.value;
    }
    return sorted[sorted.length - 1]!.value;
  };
  return total % 2 === 1 ? valueAt((total - 1) / 2) : (valueAt(total / 2 - 1) + valueAt(total / 2)) / 2;
}

function code(value: string, display?: string): CodeableConcept {
  return { coding: [{ system: NETWORK_METRIC_SYSTEM, code: value, ...(display !== undefined ? { display } : {}) }] };
}

function population(
  kind: 'initial-population' | 'numerator' | 'denominator' | 'measure-population',
  count: number,
): MeasureReportGroupPopulation {
  return { code: { coding: [{ system: POPULATION_SYSTEM, code: kind }] }, count };
}

const days = (value: number): Quantity => ({ value, unit: 'days', system: UCUM, code: 'd' });
const proportion = (part: number, whole: number): Quantity => ({
  value: whole === 0 ? 0 : Math.round((part / whole) * 1000) / 1000,
  unit: '1',
  system: UCUM,
  code: '1',
});

function sumBy<T>(rows: readonly T[], key: (row: T) => string, value: (row: T) => number): Map<string, number> {
  const sums = new Map<string, number>();
  for (const row of rows) sums.set(key(row), (sums.get(key(row)) ?? 0) + value(row));
  return sums;
}

const total = (rows: ReadonlyArray<{ count: number }>): number => rows.reduce((sum, r) => sum + r.count, 0);

function statusStratum(status: string, count: number): MeasureReportGroupStratifierStratum {
  return {
    value: { coding: [{ system: REFERRAL_STATUS_SYSTEM, code: status }], text: status },
    population: [population('initial-population', count)],
  };
}

/** Medians of days by a key (drug or site), each stratum with its count. */
function medianStrata(
  rows: NetworkMetricsRows['daysToFirstInfusion'],
  key: (row: NetworkMetricsRows['daysToFirstInfusion'][number]) => string,
  label: (key: string) => CodeableConcept,
): MeasureReportGroupStratifierStratum[] {
  const groups = new Map<string, CountAt[]>();
  for (const row of rows) groups.set(key(row), [...(groups.get(key(row)) ?? []), { value: row.days, count: row.count }]);
  return [...groups.entries()]
    .sort(([a], [b]) => a.localeCompare(b))
    .map(([value, distribution]) => ({
      value: label(value),
      population: [population('measure-population', total(distribution))],
      measureScore: days(medianOfCounts(distribution) ?? 0),
    }));
}

export interface NetworkReportInput {
  rows: NetworkMetricsRows;
  period: { start: string; end: string };
  now: Date;
  /** A site's name for its Location id (from the directory); the id when unknown. */
  siteName(locationId: string): string;
}

export function networkMetricsReport(input: NetworkReportInput): MeasureReport {
  const { rows } = input;
  const received = total(rows.referralsByStatus);
  const flagged = total(rows.misroutesByStatus);
  const firsts = rows.daysToFirstInfusion;
  const distribution = [
    ...sumBy(
      firsts,
      (r) => String(r.days),
      (r) => r.count,
    ).entries(),
  ]
    .map(([value, count]) => ({ value: Number(value), count }))
    .sort((a, b) => a.value - b.value);
  const median = medianOfCounts(distribution);
  const drugNames = new Map(firsts.map((r) => [r.drugId, r.drugName]));
  const site = (id: string): CodeableConcept => ({
    coding: [{ system: `${GATEWAY_CANONICAL_BASE}/sid/location-id`, code: id, display: input.siteName(id) }],
    text: input.siteName(id),
  });

  const appealOutcome = (row: NetworkMetricsRows['appeals'][number]): 'won' | 'lost' | 'open' => {
    // A won appeal completes its Task and moves the referral on (src/coverage/stories/update-appeal.ts).
    if (row.appealStatus === 'completed' && (row.referralStatus === 'ready-to-schedule' || row.referralStatus === 'scheduled'))
      return 'won';
    if (['completed', 'failed', 'cancelled', 'rejected'].includes(row.appealStatus)) return 'lost';
    return 'open';
  };
  const appealCounts = sumBy(rows.appeals, appealOutcome, (r) => r.count);
  const appeals = total(rows.appeals);

  const due = rows.appointmentsDue;
  const missed = due.filter((r) => r.status === 'noshow');
  const dueBySite = sumBy(
    due,
    (r) => r.siteId,
    (r) => r.count,
  );
  const missedBySite = sumBy(
    missed,
    (r) => r.siteId,
    (r) => r.count,
  );

  const groups: MeasureReportGroup[] = [
    {
      code: code('referrals', 'Referrals received'),
      population: [population('initial-population', received)],
      stratifier: [
        { code: [code('status', 'Current business status')], stratum: rows.referralsByStatus.map((r) => statusStratum(r.status, r.count)) },
      ],
    },
    {
      code: code('misroutes-caught', 'Misroutes caught at intake'),
      population: [population('denominator', received), population('numerator', flagged)],
      measureScore: proportion(flagged, received),
      stratifier: [
        { code: [code('status', 'Current business status')], stratum: rows.misroutesByStatus.map((r) => statusStratum(r.status, r.count)) },
      ],
    },
    {
      code: code('days-to-first-infusion', 'Days from order to first infusion'),
      population: [population('measure-population', total(distribution))],
      ...(median !== undefined ? { measureScore: days(median) } : {}),
      stratifier: [
        {
          code: [code('days', 'Days from order to first infusion')],
          stratum: distribution.map((d) => ({ value: { text: String(d.value) }, population: [population('measure-population', d.count)] })),
        },
        {
          code: [code('drug', 'Drug')],
          stratum: medianStrata(
            firsts,
            (r) => r.drugId,
            (id) => ({ coding: [{ system: `${GATEWAY_CANONICAL_BASE}/drug-catalog`, code: id }], text: drugNames.get(id) ?? id }),
          ),
        },
        { code: [code('site', 'Site')], stratum: medianStrata(firsts, (r) => r.siteId, site) },
      ],
    },
    {
      code: code('prior-auth-appeals', 'Prior-authorization denials and appeals won'),
      population: [population('denominator', appeals), population('numerator', appealCounts.get('won') ?? 0)],
      measureScore: proportion(appealCounts.get('won') ?? 0, appeals),
      stratifier: [
        {
          code: [code('appeal-outcome', 'Appeal outcome')],
          stratum: (['won', 'lost', 'open'] as const).map((outcome) => ({
            value: { text: outcome },
            population: [population('initial-population', appealCounts.get(outcome) ?? 0)],
          })),
        },
      ],
    },
    {
      code: code('no-shows', 'No-shows'),
      population: [population('denominator', total(due)), population('numerator', total(missed))],
      measureScore: proportion(total(missed), total(due)),
      stratifier: [
        {
          code: [code('site', 'Site')],
          stratum: [...dueBySite.entries()]
            .sort(([a], [b]) => a.localeCompare(b))
            .map(([siteId, dueCount]) => ({
              value: site(siteId),
              population: [population('denominator', dueCount), population('numerator', missedBySite.get(siteId) ?? 0)],
              measureScore: proportion(missedBySite.get(siteId) ?? 0, dueCount),
            })),
        },
      ],
    },
  ];
  return {
    resourceType: 'MeasureReport',
    status: 'complete',
    type: 'summary',
    measure: NETWORK_PICTURE_MEASURE,
    date: input.now.toISOString(),
    period: input.period,
    group: groups,
  };
}
