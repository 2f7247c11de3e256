/**
 * A referral's history as a timeline: each version of its Task (https://hl7.org/fhir/R4/http.html#history)
 * with what changed from the version before. Pure.
 */
import type { Task } from 'fhir/r4.js';
import { businessStatusOf, conceptText, inputsOfType, outputsOfType, referralStatusDisplay, type ReferralStatus } from './referral.js';

export interface TimelineEntry {
  versionId: string;
  at: string;
  status?: ReferralStatus;
  statusLabel: string;
  /** What this version changed, in words. */
  changes: string[];
}

const OUTPUT_LABELS: Record<string, string> = {
  'confirmed-location': 'site confirmed',
  'verified-coverage': 'coverage verified',
  'authorization-number': 'authorization granted',
  'prior-authorization-claim': 'prior authorization sent',
  'patient-cost-estimate': 'cost estimate',
  appeal: 'appeal opened',
  appointment: 'appointment booked',
  'planned-dose': 'doses planned',
  'denial-risk': 'denial risks found',
  'coverage-issue': 'coverage problems found',
};

function outputKinds(task: Task): Set<string> {
  return new Set(Object.keys(OUTPUT_LABELS).filter((code) => outputsOfType(task, code).length > 0));
}

/** Versions oldest first, each with its changes against the one before. */
export function timeline(versions: readonly Task[]): TimelineEntry[] {
  const sorted = [...versions].sort((a, b) => Number(a.meta?.versionId ?? 0) - Number(b.meta?.versionId ?? 0));
  return sorted.map((task, index) => {
    const previous = index > 0 ? sorted[index - 1] : undefined;
    const status = businessStatusOf(task);
    const changes: string[] = [];
    if (!previous) changes.push('referral received');
    else if (businessStatusOf(previous) !== status)
      changes.push(`moved from ${businessStatusOf(previous) ?? 'unknown'} to ${status ?? 'unknown'}`);
    const before = previous ? outputKinds(previous) : new Set<string>();
    for (const kind of outputKinds(task)) if (!before.has(kind)) changes.push(OUTPUT_LABELS[kind]!);
    const reason = conceptText(task.statusReason);
    if (!previous && inputsOfType(task, 'misroute-reason').length > 0 && !reason) changes.push('site to be confirmed with the patient');
    if (reason && reason !== conceptText(previous?.statusReason)) changes.push(reason);
    return {
      versionId: task.meta?.versionId ?? String(index + 1),
      at: task.meta?.lastUpdated ?? task.lastModified ?? '',
      ...(status ? { status } : {}),
      statusLabel: status ? referralStatusDisplay(status) : 'unknown',
      changes,
    };
  });
}
