/**
 * Retry-After on a 503 (https://www.rfc-editor.org/rfc/rfc9110#name-retry-after): tells a client
 * (an EHR, a payer, the bench) when a passing unavailability is worth retrying.
 */
import type { Response } from 'express';
import { retryAfterSecondsOf, STORE_RETRY_AFTER_SECONDS } from '../ports/store-unavailable.js';

export function setRetryAfter(res: Response, status: number, error?: unknown): void {
  if (status !== 503 || res.headersSent) return;
  res.setHeader('Retry-After', String(retryAfterSecondsOf(error) ?? STORE_RETRY_AFTER_SECONDS));
}
