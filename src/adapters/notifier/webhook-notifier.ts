/**
 * The webhook notifier: POSTs each Communication, as FHIR JSON (application/fhir+json,
 * https://hl7.org/fhir/R4/http.html#mime-type), to one URL, and lets the receiver (an SMS or
 * e-mail bridge, a contact center) reach the patient. Any 2xx is accepted.
 *
 * A retried reminder is the same Communication, and carries its id in an `Idempotency-Key` header
 * (https://datatracker.ietf.org/doc/draft-ietf-httpapi-idempotency-key-header/), so a receiver can
 * drop a copy that comes again after an answer was lost on the way back.
 *
 * No PHI leaves through errors: diagnostics name the status or the network failure, never the
 * URL (it may carry a token) nor the body (it names the patient); the receiver's answer is dropped.
 */
import type { Communication } from 'fhir/r4.js';
import { errorIssue, operationOutcome, type IssueCode } from '../../fhir/outcomes.js';
import { NotifierError, type Notifier } from '../../ports/notifier.js';
import { isRetryableStatus } from '../../delivery/rules/retry-policy.js';

export const DEFAULT_WEBHOOK_TIMEOUT_MS = 10_000;

export interface WebhookNotifierOptions {
  url: string;
  /** How long one POST may take before it counts as failed (retryable). */
  timeoutMs?: number;
  /** A bearer token, when the receiver wants one. */
  bearerToken?: string;
}

function failure(
  code: IssueCode,
  diagnostics: string,
  options: { retryable: boolean; httpStatus?: number; cause?: unknown },
): NotifierError {
  return new NotifierError(operationOutcome('notifier-failed', [errorIssue(code, diagnostics)]), options);
}

export function createWebhookNotifier(options: WebhookNotifierOptions): Notifier {
  const timeoutMs = options.timeoutMs ?? DEFAULT_WEBHOOK_TIMEOUT_MS;
  return {
    channel: 'webhook',
    async send(message: Communication): Promise<void> {
      const headers: Record<string, string> = { 'content-type': 'application/fhir+json', accept: 'application/fhir+json' };
      if (message.id !== undefined) headers['idempotency-key'] = message.id;
      if (options.bearerToken !== undefined) headers.authorization = `Bearer ${options.bearerToken}`;
      let response: Response;
      try {
        response = await fetch(options.url, {
          method: 'POST',
          headers,
          body: JSON.stringify(message),
          signal: AbortSignal.timeout(timeoutMs),
        });
      } catch (cause) {
        const timedOut = cause instanceof Error && (cause.name === 'TimeoutError' || cause.name === 'AbortError');
        throw timedOut
          ? failure('timeout', `The notifier webhook did not answer within ${timeoutMs} ms`, { retryable: true, cause })
          : failure('transient', 'The notifier webhook could not be reached', { retryable: true, cause });
      }
      // The answer is read and dropped: it frees the connection and may echo what we sent.
      await response.arrayBuffer().catch(() => undefined);
      if (response.ok) return;
      const retryable = isRetryableStatus(response.status);
      throw failure(retryable ? 'transient' : 'processing', `The notifier webhook answered HTTP ${response.status}`, {
        retryable,
        httpStatus: response.status,
      });
    },
  };
}
