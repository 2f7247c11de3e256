/**
 * What fhir-kit-client throws, classified (and turned into EhrCallError; the payer adapter makes
 * PayerCallError from the same classification): the one place that knows its shapes.
 *
 * fhir-kit-client 2 (dist/http-client.js) throws an Error carrying `response: { status, data }` and
 * `config: { headers, … }` (the response's Headers) for any non-2xx answer, and for a body that is
 * not JSON; fetch itself rejects with `TypeError('fetch failed')` (cause: ECONNREFUSED,
 * UND_ERR_SOCKET, …) when the network fails, `TypeError('terminated')` when the connection drops
 * mid-body, and a `TimeoutError` when our AbortSignal fires.
 *
 * Diagnostics we write name the interaction and the resource type, never a URL (search URLs hold
 * identifiers) nor any resource content; the EHR's own OperationOutcome is passed on as it came.
 * Retry rule (ports/ehr-fhir.ts): network errors, timeouts, 408, 429 and 5xx are worth retrying;
 * other 4xx are not (https://hl7.org/fhir/R4/http.html#Status-Codes).
 */
import { SmartTokenError } from '../../auth/smart-backend-client.js';
import type { OperationOutcome } from 'fhir/r4.js';
import { errorIssue, operationOutcome, unavailable, type IssueCode } from '../../fhir/outcomes.js';
import { EhrCallError } from '../../ports/ehr-fhir.js';
import type { FhirCallError } from '../../ports/fhir-call-error.js';
import { isRetryableStatus } from '../../delivery/rules/retry-policy.js';

/** What was being done, for diagnostics: `search ServiceRequest`, `update Task`. */
export interface EhrInteraction {
  tenant: string;
  interaction: string;
  resourceType: string;
}

export function describeInteraction(what: EhrInteraction): string {
  return `${what.interaction} ${what.resourceType} (EHR of tenant ${JSON.stringify(what.tenant)})`;
}

/** Retry-After as delay-seconds or an HTTP-date (https://www.rfc-editor.org/rfc/rfc9110#field.retry-after). */
export function parseRetryAfter(value: string | null | undefined, now: Date = new Date()): number | undefined {
  if (value === null || value === undefined) return undefined;
  const trimmed = value.trim();
  if (/^\d+$/.test(trimmed)) return Number(trimmed);
  const date = Date.parse(trimmed);
  if (Number.isNaN(date)) return undefined;
  return Math.max(0, Math.ceil((date - now.getTime()) / 1000));
}

export function isOperationOutcome(value: unknown): value is OperationOutcome {
  return (
    typeof value === 'object' &&
    value !== null &&
    (value as { resourceType?: unknown }).resourceType === 'OperationOutcome' &&
    Array.isArray((value as { issue?: unknown }).issue)
  );
}

const CODE_BY_STATUS: Record<number, IssueCode> = {
  400: 'invalid',
  401: 'login',
  403: 'forbidden',
  404: 'not-found',
  405: 'not-supported',
  408: 'timeout',
  409: 'conflict',
  410: 'deleted',
  412: 'conflict',
  413: 'too-long',
  415: 'not-supported',
  422: 'processing',
  429: 'throttled',
  500: 'exception',
};

function codeForStatus(status: number): IssueCode {
  return CODE_BY_STATUS[status] ?? (status >= 500 ? 'transient' : 'processing');
}

interface ThrownHttpError {
  response: { status: number; data: unknown };
  config?: { headers?: unknown };
}

function isThrownHttpError(err: unknown): err is ThrownHttpError {
  if (typeof err !== 'object' || err === null || !('response' in err)) return false;
  const response = (err as { response: unknown }).response;
  return typeof response === 'object' && response !== null && typeof (response as { status?: unknown }).status === 'number';
}

function headerOf(err: ThrownHttpError, name: string): string | undefined {
  const headers = err.config?.headers;
  if (headers instanceof Headers) return headers.get(name) ?? undefined;
  if (typeof headers === 'object' && headers !== null) {
    const value = (headers as Record<string, unknown>)[name];
    return typeof value === 'string' ? value : undefined;
  }
  return undefined;
}

function isTimeout(err: unknown): boolean {
  return err instanceof Error && (err.name === 'TimeoutError' || err.name === 'AbortError');
}

function isNetworkFailure(err: unknown): err is TypeError {
  return err instanceof TypeError && (err.message === 'fetch failed' || err.message === 'terminated');
}

/** The system error code under a fetch failure (ECONNREFUSED, UND_ERR_SOCKET, …), if any. */
function networkCode(err: Error): string | undefined {
  let cause: unknown = err.cause;
  for (let depth = 0; depth < 3 && typeof cause === 'object' && cause !== null; depth += 1) {
    const code = (cause as { code?: unknown }).code;
    if (typeof code === 'string') return code;
    const errors = (cause as { errors?: unknown }).errors;
    cause = Array.isArray(errors) && errors.length > 0 ? errors[0] : (cause as { cause?: unknown }).cause;
  }
  return undefined;
}

/** A failed call to a FHIR server, classified: what went wrong and whether trying again can help. */
export interface ClassifiedFailure {
  outcome: OperationOutcome;
  retryable: boolean;
  httpStatus?: number;
  retryAfterSeconds?: number;
  cause?: { code: string };
}

/**
 * Classifies anything a fhir-kit-client call threw. `party` names the server in diagnostics ('EHR',
 * 'payer'); `idPrefix` starts the OperationOutcome ids (`ehr-timeout`, `payer-http-503`).
 */
function classifyClientFailure(
  err: unknown,
  context: { party: string; idPrefix: string; doing: string; timeoutMs: number },
): ClassifiedFailure {
  const { party, idPrefix, doing } = context;
  if (isThrownHttpError(err)) {
    const { status, data } = err.response;
    const retryAfterSeconds = parseRetryAfter(headerOf(err, 'retry-after'));
    const extra = retryAfterSeconds !== undefined ? { retryAfterSeconds } : {};
    if (status < 400) {
      // fhir-kit-client also throws for a 2xx whose body is not JSON: a misconfigured base URL
      // (a web page, a login portal) more likely than a passing fault.
      return {
        outcome: operationOutcome(`${idPrefix}-unreadable-answer`, [
          errorIssue('exception', `The ${party} answered HTTP ${status} with a body that is not FHIR JSON, during ${doing}`),
        ]),
        retryable: false,
        httpStatus: status,
        ...extra,
      };
    }
    // The error's message holds the request URL (search parameters carry identifiers): the
    // original is not kept as the cause, so no log line can print it.
    const outcome = isOperationOutcome(data)
      ? data
      : operationOutcome(`${idPrefix}-http-${status}`, [
          errorIssue(codeForStatus(status), `The ${party} answered HTTP ${status} without an OperationOutcome, during ${doing}`),
        ]);
    return { outcome, retryable: isRetryableStatus(status), httpStatus: status, ...extra };
  }

  if (isTimeout(err)) {
    return {
      outcome: operationOutcome(`${idPrefix}-timeout`, [
        errorIssue('timeout', `The ${party} did not answer within ${context.timeoutMs} ms, during ${doing}`),
      ]),
      retryable: true,
    };
  }

  if (isNetworkFailure(err)) {
    const code = networkCode(err);
    return {
      outcome: unavailable(`The ${party} could not be reached${code !== undefined ? ` (${code})` : ''}, during ${doing}`),
      retryable: true,
      ...(code !== undefined ? { cause: { code } } : {}),
    };
  }

  if (err instanceof SmartTokenError) {
    // No access token (SMART Backend Services): the server's outage passes, a refused registration does not.
    const retryable = err.status === undefined || isRetryableStatus(err.status);
    return {
      outcome: operationOutcome(`${idPrefix}-token`, [
        errorIssue(retryable ? 'transient' : 'security', `${err.message}, so the ${party} was not called, during ${doing}`),
      ]),
      retryable,
      ...(err.status !== undefined ? { httpStatus: err.status } : {}),
    };
  }

  // Anything else is the client refusing before sending (a bad URL, a bad resource type): a
  // mistake on our side that trying again cannot fix. Its message may hold a URL, so it stays out.
  const name = err instanceof Error ? err.name : typeof err;
  return {
    outcome: operationOutcome(`${idPrefix}-client-error`, [
      errorIssue('exception', `The FHIR client failed (${name}) before the ${party} answered, during ${doing}`),
    ]),
    retryable: false,
  };
}

/**
 * Turns anything a fhir-kit-client call threw into the port's error class: one of its own stays
 * as it is, anything else is classified (classifyClientFailure, whose `context` this is).
 */
export function toCallError<E extends FhirCallError>(
  err: unknown,
  errorClass: new (outcome: OperationOutcome, options: Omit<ClassifiedFailure, 'outcome'>) => E,
  context: Parameters<typeof classifyClientFailure>[1],
): E {
  if (err instanceof errorClass) return err;
  const { outcome, ...options } = classifyClientFailure(err, context);
  return new errorClass(outcome, options);
}

/** Turns anything a fhir-kit-client call threw into an EhrCallError. */
export function toEhrCallError(err: unknown, what: EhrInteraction, timeoutMs: number): EhrCallError {
  return toCallError(err, EhrCallError, { party: 'EHR', idPrefix: 'ehr', doing: describeInteraction(what), timeoutMs });
}

/** An error of ours about the EHR's answer or our request, never worth retrying as is. */
export function permanentEhrError(code: IssueCode, diagnostics: string, httpStatus?: number): EhrCallError {
  return new EhrCallError(operationOutcome(`ehr-${code}`, [errorIssue(code, diagnostics)]), {
    retryable: false,
    ...(httpStatus !== undefined ? { httpStatus } : {}),
  });
}
