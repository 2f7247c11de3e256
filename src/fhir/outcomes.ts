/**
 * OperationOutcome values and the one error type that carries them.
 *
 * Outcomes are values (https://hl7.org/fhir/R4/operationoutcome.html): every refusal the gateway
 * makes is an OperationOutcome listing every issue found, and the HTTP status is derived from the
 * outcome, never chosen separately at the edge (see medplum packages/core/src/outcomes.ts).
 */
import type { OperationOutcome, OperationOutcomeIssue } from 'fhir/r4.js';

export type IssueSeverity = OperationOutcomeIssue['severity'];
export type IssueCode = OperationOutcomeIssue['code'];

/**
 * Well-known outcome ids. Where the issue code alone cannot tell the HTTP status apart
 * (415 and 406 are both `not-supported`, 412 and 409 both `conflict`), the outcome's id says it.
 */
const STATUS_BY_OUTCOME_ID: Record<string, number> = {
  ok: 200,
  created: 201,
  'bad-request': 400,
  unauthorized: 401,
  forbidden: 403,
  'not-found': 404,
  gone: 410,
  'method-not-allowed': 405,
  'not-acceptable': 406,
  conflict: 409,
  'precondition-failed': 412,
  'payload-too-large': 413,
  'unsupported-media-type': 415,
  unprocessable: 422,
  'too-many-requests': 429,
  'server-error': 500,
  unavailable: 503,
};

const STATUS_BY_ISSUE_CODE: Partial<Record<IssueCode, number>> = {
  invalid: 400,
  structure: 400,
  required: 400,
  value: 400,
  invariant: 400,
  'not-found': 404,
  deleted: 410,
  conflict: 409,
  duplicate: 409,
  'too-long': 413,
  'not-supported': 400,
  'business-rule': 422,
  processing: 422,
  throttled: 429,
  exception: 500,
  timeout: 504,
  transient: 503,
};

export function issue(
  severity: IssueSeverity,
  code: IssueCode,
  diagnostics: string,
  expression?: string | readonly string[],
): OperationOutcomeIssue {
  const result: OperationOutcomeIssue = { severity, code, diagnostics };
  if (expression !== undefined) {
    result.expression = typeof expression === 'string' ? [expression] : [...expression];
  }
  return result;
}

export function errorIssue(code: IssueCode, diagnostics: string, expression?: string | readonly string[]): OperationOutcomeIssue {
  return issue('error', code, diagnostics, expression);
}

export function warningIssue(code: IssueCode, diagnostics: string, expression?: string | readonly string[]): OperationOutcomeIssue {
  return issue('warning', code, diagnostics, expression);
}

export function informationIssue(code: IssueCode, diagnostics: string, expression?: string | readonly string[]): OperationOutcomeIssue {
  return issue('information', code, diagnostics, expression);
}

export function hasErrors(issues: readonly OperationOutcomeIssue[]): boolean {
  return issues.some((i) => i.severity === 'error' || i.severity === 'fatal');
}

export function operationOutcome(id: string, issues: readonly OperationOutcomeIssue[]): OperationOutcome {
  return { resourceType: 'OperationOutcome', id, issue: [...issues] };
}

/** The HTTP status an outcome stands for: its well-known id first, then its first error's code. */
export function statusOf(outcome: OperationOutcome): number {
  const byId = outcome.id === undefined ? undefined : STATUS_BY_OUTCOME_ID[outcome.id];
  if (byId !== undefined) return byId;
  const firstError = outcome.issue.find((i) => i.severity === 'error' || i.severity === 'fatal');
  if (!firstError) return 200;
  return STATUS_BY_ISSUE_CODE[firstError.code] ?? 400;
}

export function allOk(diagnostics = 'All OK'): OperationOutcome {
  return operationOutcome('ok', [informationIssue('informational', diagnostics)]);
}

/** 400: the request is malformed or structurally invalid; lists every issue. */
export function badRequest(issues: readonly OperationOutcomeIssue[]): OperationOutcome {
  return operationOutcome('bad-request', issues);
}

/** 422: well-formed but refused by a business rule or profile; lists every issue. */
export function unprocessable(issues: readonly OperationOutcomeIssue[]): OperationOutcome {
  return operationOutcome('unprocessable', issues);
}

export function notFound(resourceType: string, id?: string): OperationOutcome {
  const what = id === undefined ? resourceType : `${resourceType}/${id}`;
  return operationOutcome('not-found', [errorIssue('not-found', `${what} is not known to this server`)]);
}

export function conflict(diagnostics: string, expression?: string): OperationOutcome {
  return operationOutcome('conflict', [errorIssue('conflict', diagnostics, expression)]);
}

export function preconditionFailed(diagnostics: string, expression?: string): OperationOutcome {
  return operationOutcome('precondition-failed', [errorIssue('conflict', diagnostics, expression)]);
}

export function payloadTooLarge(diagnostics: string): OperationOutcome {
  return operationOutcome('payload-too-large', [errorIssue('too-long', diagnostics)]);
}

export function unsupportedMediaType(diagnostics: string): OperationOutcome {
  return operationOutcome('unsupported-media-type', [errorIssue('not-supported', diagnostics)]);
}

export function notAcceptable(diagnostics: string): OperationOutcome {
  return operationOutcome('not-acceptable', [errorIssue('not-supported', diagnostics)]);
}

/** 401: no credentials, or credentials this server does not accept (https://hl7.org/fhir/R4/http.html#security). */
export function unauthorized(diagnostics: string): OperationOutcome {
  return operationOutcome('unauthorized', [errorIssue('login', diagnostics, 'Authorization')]);
}

/** 403: an authenticated caller whose role or scopes do not allow this. */
export function forbidden(diagnostics: string): OperationOutcome {
  return operationOutcome('forbidden', [errorIssue('forbidden', diagnostics)]);
}

export function methodNotAllowed(diagnostics: string): OperationOutcome {
  return operationOutcome('method-not-allowed', [errorIssue('not-supported', diagnostics)]);
}

export function serverError(diagnostics = 'Internal server error'): OperationOutcome {
  return operationOutcome('server-error', [errorIssue('exception', diagnostics)]);
}

export function unavailable(diagnostics: string): OperationOutcome {
  return operationOutcome('unavailable', [errorIssue('transient', diagnostics)]);
}

/** The one error type: thrown where a value cannot be returned, turned into a response at the edge. */
export class OperationOutcomeError extends Error {
  readonly outcome: OperationOutcome;

  constructor(outcome: OperationOutcome, options?: { cause?: unknown }) {
    super(outcome.issue.map((i) => i.diagnostics ?? i.code).join('; '), options);
    this.name = 'OperationOutcomeError';
    this.outcome = outcome;
  }

  get status(): number {
    return statusOf(this.outcome);
  }
}

/** Turns anything thrown into an OperationOutcome, hiding internals of unexpected errors. */
export function outcomeFromError(err: unknown): OperationOutcome {
  if (err instanceof OperationOutcomeError) return err.outcome;
  return serverError();
}

/**
 * Drops an issue that repeats an earlier one (same severity, code and expression), e.g. a missing
 * element that both base R4 and a profile require: one problem, reported once.
 */
export function dedupeIssues(issues: readonly OperationOutcomeIssue[]): OperationOutcomeIssue[] {
  const seen = new Set<string>();
  return issues.filter((i) => {
    if (!i.expression || i.expression.length === 0) return true;
    const key = `${i.severity}|${i.code}|${i.expression.join(',')}`;
    if (seen.has(key)) return false;
    seen.add(key);
    return true;
  });
}

/** Prefixes every issue's FHIRPath expression, e.g. to place a resource's issues inside a Bundle. */
export function prefixIssues(issues: readonly OperationOutcomeIssue[], replaceRoot: { from: string; to: string }): OperationOutcomeIssue[] {
  return issues.map((i) => {
    if (!i.expression) return i;
    return {
      ...i,
      expression: i.expression.map((e) =>
        e === replaceRoot.from || e.startsWith(`${replaceRoot.from}.`) || e.startsWith(`${replaceRoot.from}[`)
          ? replaceRoot.to + e.slice(replaceRoot.from.length)
          : e,
      ),
    };
  });
}
