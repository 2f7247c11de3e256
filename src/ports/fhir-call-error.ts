/**
 * A failed call to another FHIR server (the EHR, a payer): an OperationOutcome (the server's, or
 * one describing the network failure) plus whether trying again can help. The rule is the same
 * for every server: permanent for 4xx other than 408 and 429; retryable for network errors,
 * timeouts, 408, 429 and 5xx. Each port names its own subclass, so callers tell them apart.
 */
import type { OperationOutcome } from 'fhir/r4.js';
import { OperationOutcomeError } from '../fhir/outcomes.js';

export abstract class FhirCallError extends OperationOutcomeError {
  readonly retryable: boolean;
  /** The HTTP status the server answered, absent when it did not answer. */
  readonly httpStatus: number | undefined;
  /** Seconds the server asked us to wait (Retry-After), if it said. */
  readonly retryAfterSeconds: number | undefined;

  constructor(
    outcome: OperationOutcome,
    options: { retryable: boolean; httpStatus?: number; retryAfterSeconds?: number; cause?: unknown },
  ) {
    super(outcome, { cause: options.cause });
    this.retryable = options.retryable;
    this.httpStatus = options.httpStatus;
    this.retryAfterSeconds = options.retryAfterSeconds;
  }
}
