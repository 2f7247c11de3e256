/**
 * Story: a manager reads the network's picture for a period (issue 14): `GET
 * /fhir/Task/$network-metrics?period-start=&period-end=` (src/http/operations/network-metrics.ts) answers a MeasureReport
 * (src/directory/rules/network-metrics.ts) computed by SQL aggregates in the store, for the caller's
 * tenant. Read-only; published as profiles/OperationDefinition-network-metrics.json.
 */
import type { MeasureReport, OperationOutcomeIssue } from 'fhir/r4.js';
import { networkMetricsReport } from '../rules/network-metrics.js';
import { badRequest, errorIssue } from '../../fhir/outcomes.js';
import { dateRangeOf } from '../../fhir/search-parameters.js';
import type { NetworkMetricsReader, TenantId } from '../../ports/resource-store.js';
import type { Clock } from '../../ports/clock.js';
import type { SiteDirectorySource } from '../rules/site-directory.js';
import type { Refusal } from '../../ports/refusal.js';

/** Without a period: the last 90 days. */
export const DEFAULT_PERIOD_DAYS = 90;
/** The longest period one report covers: its cost grows with the referrals it groups. */
export const MAX_PERIOD_DAYS = 3 * 366;
const DAY_MS = 86_400_000;

export interface NetworkMetricsDeps {
  store: NetworkMetricsReader;
  clock: Clock;
  sites: SiteDirectorySource;
}

export async function reportNetworkMetrics(
  deps: NetworkMetricsDeps,
  /** The period's edges as given (FHIR dates or dateTimes; the operation's definition has checked names and types). */
  input: { tenant: TenantId; periodStart?: string; periodEnd?: string },
): Promise<{ kind: 'report'; report: MeasureReport } | Refusal> {
  const issues: OperationOutcomeIssue[] = [];
  const now = deps.clock.now();
  const bound = (name: 'period-start' | 'period-end', edge: 'low' | 'high'): Date | undefined => {
    const raw = name === 'period-start' ? input.periodStart : input.periodEnd;
    if (raw === undefined) return undefined;
    const range = dateRangeOf(raw);
    if (!range) {
      issues.push(errorIssue('value', `${name} must be a FHIR date or dateTime (got '${raw}')`, name));
      return undefined;
    }
    // An end date covers its whole day: the period ends just after it.
    return edge === 'low' ? new Date(range.low) : new Date(Date.parse(range.high) + 1);
  };
  const end = bound('period-end', 'high') ?? now;
  const start = bound('period-start', 'low') ?? new Date(end.getTime() - DEFAULT_PERIOD_DAYS * DAY_MS);
  if (issues.length === 0 && start.getTime() >= end.getTime())
    issues.push(errorIssue('value', 'period-start must be before period-end', 'period-start'));
  if (issues.length === 0 && end.getTime() - start.getTime() > MAX_PERIOD_DAYS * DAY_MS) {
    issues.push(errorIssue('value', `The period may span at most ${MAX_PERIOD_DAYS} days`, 'period-start'));
  }
  if (issues.length > 0) return { kind: 'refused', outcome: badRequest(issues) };

  const rows = await deps.store.networkMetrics({
    tenants: [input.tenant],
    from: start.toISOString(),
    to: end.toISOString(),
    now: now.toISOString(),
  });
  const directory = await deps.sites.current();
  const report = networkMetricsReport({
    rows,
    period: { start: start.toISOString(), end: end.toISOString() },
    now,
    siteName: (id) => directory.site(id)?.name ?? id,
  });
  return { kind: 'report', report };
}
