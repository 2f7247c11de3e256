/**
 * The store could not do its work for a reason that passes: the database is away (connections
 * refused or cut, a failover, a restart), every pooled connection is busy past the acquire
 * timeout, or a statement ran past its time limit. Not the request's fault, so it is answered
 * 503 with Retry-After (https://hl7.org/fhir/R4/http.html#Status-Codes) and the outbox retries a
 * step that met it instead of dead-lettering it.
 */
import { errorIssue, OperationOutcomeError, operationOutcome } from '../fhir/outcomes.js';

/** How long a client should wait before retrying, when nothing better is known. */
export const STORE_RETRY_AFTER_SECONDS = 5;

export type StoreUnavailableReason = 'unreachable' | 'busy' | 'timeout';

const DIAGNOSTICS: Record<StoreUnavailableReason, string> = {
  unreachable: 'The database is not reachable right now; nothing was stored. Retry later.',
  busy: 'The database has no free connection right now; nothing was stored. Retry later.',
  timeout: 'The database did not finish the request within its time limit; nothing was stored. Retry later.',
};

export class StoreUnavailableError extends OperationOutcomeError {
  /** Read by the outbox (deliver-outbox.ts): a step that met this is retried, never dead-lettered. */
  readonly retryable = true;
  readonly retryAfterSeconds: number;
  readonly reason: StoreUnavailableReason;

  constructor(reason: StoreUnavailableReason, options: { cause?: unknown; retryAfterSeconds?: number } = {}) {
    super(operationOutcome('unavailable', [errorIssue(reason === 'timeout' ? 'timeout' : 'transient', DIAGNOSTICS[reason])]), {
      cause: options.cause,
    });
    this.name = 'StoreUnavailableError';
    this.reason = reason;
    this.retryAfterSeconds = options.retryAfterSeconds ?? STORE_RETRY_AFTER_SECONDS;
  }
}

/** The Retry-After seconds an error asks for, when it is a passing unavailability. */
export function retryAfterSecondsOf(error: unknown): number | undefined {
  return error instanceof StoreUnavailableError ? error.retryAfterSeconds : undefined;
}
