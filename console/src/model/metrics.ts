/**
 * The network's picture (Task/$network-metrics, a MeasureReport: src/directory/rules/network-metrics.ts)
 * read into the series the charts draw. Pure.
 */
import type { MeasureReport, MeasureReportGroup, MeasureReportGroupStratifierStratum } from 'fhir/r4.js';
import { NETWORK_METRIC_SYSTEM } from '../../../src/directory/rules/network-metrics.js';

export interface Bar {
  label: string;
  value: number;
  /** How many it is computed from, when that differs from the value. */
  count?: number;
}

export interface NetworkPicture {
  period: { start?: string; end?: string };
  referrals: number;
  misroutes: { caught: number; share: number; awaiting: number };
  daysToFirstInfusion: { median?: number; count: number; distribution: Bar[]; byDrug: Bar[]; bySite: Bar[] };
  appeals: { denials: number; won: number; lost: number; open: number };
  noShows: { due: number; missed: number; rate: number; bySite: Bar[] };
  byStatus: Bar[];
}

const isCode = (group: { code?: { coding?: Array<{ system?: string; code?: string }> } }, code: string): boolean =>
  group.code?.coding?.some((c) => c.system === NETWORK_METRIC_SYSTEM && c.code === code) === true;

function groupOf(report: MeasureReport, code: string): MeasureReportGroup | undefined {
  return report.group?.find((g) => isCode(g, code));
}

function populationOf(
  holder: { population?: Array<{ code?: { coding?: Array<{ code?: string }> }; count?: number }> } | undefined,
  kind: string,
): number {
  return holder?.population?.find((p) => p.code?.coding?.some((c) => c.code === kind))?.count ?? 0;
}

function strata(group: MeasureReportGroup | undefined, code: string): MeasureReportGroupStratifierStratum[] {
  return (
    group?.stratifier?.find((s) => s.code?.some((c) => c.coding?.some((x) => x.system === NETWORK_METRIC_SYSTEM && x.code === code)))
      ?.stratum ?? []
  );
}

const label = (stratum: MeasureReportGroupStratifierStratum): string =>
  stratum.value?.text ?? stratum.value?.coding?.[0]?.display ?? stratum.value?.coding?.[0]?.code ?? '';

export function networkPicture(report: MeasureReport): NetworkPicture {
  const referrals = groupOf(report, 'referrals');
  const misroutes = groupOf(report, 'misroutes-caught');
  const days = groupOf(report, 'days-to-first-infusion');
  const appeals = groupOf(report, 'prior-auth-appeals');
  const noShows = groupOf(report, 'no-shows');
  const outcome = (name: string): number =>
    populationOf(
      strata(appeals, 'appeal-outcome').find((s) => label(s) === name),
      'initial-population',
    );
  const median = days?.measureScore?.value;
  return {
    period: { ...(report.period.start ? { start: report.period.start } : {}), ...(report.period.end ? { end: report.period.end } : {}) },
    referrals: populationOf(referrals, 'initial-population'),
    misroutes: {
      caught: populationOf(misroutes, 'numerator'),
      share: misroutes?.measureScore?.value ?? 0,
      awaiting: populationOf(
        strata(misroutes, 'status').find((s) => label(s) === 'misroute-suspected'),
        'initial-population',
      ),
    },
    daysToFirstInfusion: {
      ...(median !== undefined ? { median } : {}),
      count: populationOf(days, 'measure-population'),
      distribution: strata(days, 'days').map((s) => ({ label: label(s), value: populationOf(s, 'measure-population') })),
      byDrug: strata(days, 'drug').map((s) => ({
        label: label(s),
        value: s.measureScore?.value ?? 0,
        count: populationOf(s, 'measure-population'),
      })),
      bySite: strata(days, 'site').map((s) => ({
        label: label(s),
        value: s.measureScore?.value ?? 0,
        count: populationOf(s, 'measure-population'),
      })),
    },
    appeals: { denials: populationOf(appeals, 'denominator'), won: outcome('won'), lost: outcome('lost'), open: outcome('open') },
    noShows: {
      due: populationOf(noShows, 'denominator'),
      missed: populationOf(noShows, 'numerator'),
      rate: noShows?.measureScore?.value ?? 0,
      bySite: strata(noShows, 'site').map((s) => ({
        label: label(s),
        value: s.measureScore?.value ?? 0,
        count: populationOf(s, 'denominator'),
      })),
    },
    byStatus: strata(referrals, 'status').map((s) => ({ label: label(s), value: populationOf(s, 'initial-population') })),
  };
}

/**
 * Day counts grouped into bins for the histogram: one bar per day up to two weeks, then by week,
 * so a long tail stays readable. Empty bins between the first and the last are kept (a gap is
 * information).
 */
export function dayBins(distribution: readonly Bar[]): Bar[] {
  const counts = distribution.map((d) => ({ day: Number(d.label), count: d.value })).filter((d) => Number.isFinite(d.day));
  if (counts.length === 0) return [];
  const binOf = (day: number): number => (day < 14 ? day : 14 + Math.floor((day - 14) / 7) * 7);
  const labelOf = (bin: number): string => (bin < 14 ? String(bin) : `${bin}-${bin + 6}`);
  const last = binOf(Math.max(...counts.map((c) => c.day)));
  const bins = new Map<number, number>();
  for (let bin = binOf(Math.min(...counts.map((c) => c.day))); bin <= last; bin = bin < 14 ? bin + 1 : bin + 7) bins.set(bin, 0);
  for (const c of counts) bins.set(binOf(c.day), (bins.get(binOf(c.day)) ?? 0) + c.count);
  return [...bins.entries()].map(([bin, value]) => ({ label: labelOf(bin), value }));
}
