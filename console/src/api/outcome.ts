/**
 * OperationOutcomes (https://hl7.org/fhir/R4/operationoutcome.html) as sentences a coordinator can
 * act on: one per issue, its severity first, where it lies (the FHIRPath `expression`) last.
 * Pure: no DOM, tested in Node.
 */
import type { OperationOutcome, OperationOutcomeIssue } from 'fhir/r4.js';

export interface IssueMessage {
  severity: OperationOutcomeIssue['severity'];
  text: string;
  /** FHIRPath expressions the issue names, for an integration engineer. */
  where: string[];
}

export function isOperationOutcome(value: unknown): value is OperationOutcome {
  return typeof value === 'object' && value !== null && (value as { resourceType?: unknown }).resourceType === 'OperationOutcome';
}

const SEVERITY_ORDER: Record<OperationOutcomeIssue['severity'], number> = { fatal: 0, error: 1, warning: 2, information: 3 };

/** Every issue of an outcome, most severe first, each as a sentence. */
export function issueMessages(outcome: OperationOutcome): IssueMessage[] {
  return [...(outcome.issue ?? [])]
    .sort((a, b) => SEVERITY_ORDER[a.severity] - SEVERITY_ORDER[b.severity])
    .map((issue) => ({
      severity: issue.severity,
      text: issue.diagnostics ?? issue.details?.text ?? issue.details?.coding?.[0]?.display ?? `The server reported ${issue.code}`,
      where: [...(issue.expression ?? issue.location ?? [])],
    }));
}

/** What a failed call says, when the body was not an OperationOutcome. */
export function statusMessage(status: number): string {
  if (status === 0) return 'The gateway could not be reached; check the network and try again.';
  if (status === 401) return 'You are not signed in, or your session has ended; sign in again.';
  if (status === 403) return 'You are not allowed to do this.';
  if (status === 404) return 'Not found: it may have been removed, or it belongs to another organisation.';
  if (status === 409 || status === 412) return 'Someone changed this in the meantime; reload and try again.';
  if (status === 429) return 'The gateway is busy; try again in a moment.';
  if (status >= 500) return `The gateway failed (HTTP ${status}); try again, and tell an operator if it persists.`;
  return `The request was refused (HTTP ${status}).`;
}
