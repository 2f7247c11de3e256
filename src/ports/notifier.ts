/**
 * Where reminders go: a Notifier takes one Communication (https://hl7.org/fhir/R4/communication.html)
 * and hands it to whatever reaches the patient. A webhook today
 * (src/adapters/notifier/webhook-notifier.ts); SMS or e-mail providers plug in behind the same port.
 *
 * Every failure is a NotifierError: an OperationOutcome plus whether trying again can help, as
 * with EhrCallError (src/ports/ehr-fhir.ts). Retryable: network errors, timeouts, 408, 429 and
 * 5xx; anything else is permanent.
 */
import type { Communication, OperationOutcome } from 'fhir/r4.js';
import { errorIssue, operationOutcome, OperationOutcomeError } from '../fhir/outcomes.js';

export class NotifierError extends OperationOutcomeError {
  readonly retryable: boolean;
  /** The HTTP status the receiver answered, absent when it did not answer. */
  readonly httpStatus: number | undefined;

  constructor(outcome: OperationOutcome, options: { retryable: boolean; httpStatus?: number; cause?: unknown }) {
    super(outcome, { cause: options.cause });
    this.name = 'NotifierError';
    this.retryable = options.retryable;
    this.httpStatus = options.httpStatus;
  }
}

export interface Notifier {
  /** What carries the messages (`webhook`, `none`, later `sms`, `email`), for logs. */
  readonly channel: string;
  /**
   * Hands the message over; resolves once the receiver has accepted it. The same Communication
   * (same id and identifier) may come again after a failure: a receiver dedupes on them.
   */
  send(message: Communication): Promise<void>;
}

/**
 * The notifier of a deployment with none configured: every reminder is recorded in the store, and
 * none is sent (a permanent failure, so the reminder says why and is not tried again).
 */
export const RECORD_ONLY_NOTIFIER: Notifier = {
  channel: 'none',
  send: async () => {
    throw new NotifierError(
      operationOutcome('not-sent', [
        errorIssue('not-supported', 'No notifier is configured (NOTIFIER_WEBHOOK_URL): the reminder is recorded, not sent'),
      ]),
      {
        retryable: false,
      },
    );
  },
};
