import type { OperationOutcomeIssue } from 'fhir/r4.js';

/**
 * A configuration document (the client registry, the trusted issuers) refused at start-up: every
 * problem found, as issues, and all of them in the message, each as `where-in-document diagnostics`.
 */
export abstract class DocumentIssuesError extends Error {
  readonly issues: OperationOutcomeIssue[];
  constructor(where: string, issues: OperationOutcomeIssue[]) {
    super(`${where}: ${issues.map((i) => `${i.expression?.[0] ?? ''} ${i.diagnostics ?? ''}`.trim()).join('; ')}`);
    this.issues = issues;
  }
}
