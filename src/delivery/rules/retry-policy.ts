/**
 * When to try a failed delivery again, and when to give up: pure, with time and randomness as
 * parameters.
 *
 * Exponential backoff with "full jitter" (https://aws.amazon.com/blogs/architecture/exponential-backoff-and-jitter/):
 * the n-th retry waits a uniformly random time in [0, min(maxDelay, base * 2^(n-1))). The jitter
 * spreads the retries of many messages that failed together (an EHR outage) instead of sending
 * them back in synchronised waves when it returns.
 *
 * A server's Retry-After (https://www.rfc-editor.org/rfc/rfc9110#field.retry-after, sent with 429
 * and 503) is a lower bound: we never come back earlier than it asked.
 */

export interface RetryPolicy {
  /** The cap of the first retry's delay; each further attempt doubles it. */
  baseDelayMs: number;
  /** No computed delay exceeds this (a Retry-After may). */
  maxDelayMs: number;
  /** Attempts in all, the first included: after this many failures a retryable error is dead too. */
  maxAttempts: number;
}

/**
 * 1 s doubling to a 10 min cap, 20 attempts (19 retries): the caps add up to about 1 h 47 min
 * (half of that on average with full jitter), enough to ride out a restart or a short maintenance
 * window of the EHR before an operator is needed.
 */
export const DEFAULT_RETRY_POLICY: RetryPolicy = Object.freeze({
  baseDelayMs: 1_000,
  maxDelayMs: 10 * 60_000,
  maxAttempts: 20,
});

export interface RetryError {
  /** False for a permanent refusal (e.g. a 4xx other than 408 and 429): retrying cannot help. */
  retryable: boolean;
  /** The server's Retry-After, in seconds, when it sent one. */
  retryAfterSeconds?: number;
}

export type RetryDecision = { kind: 'retry'; delayMs: number } | { kind: 'dead' };

/** 2^30 times any sensible base is far beyond any sensible cap: the exponent stops growing there. */
const MAX_EXPONENT = 30;

/**
 * What to do after a failed attempt.
 * `attempts` counts the attempts made so far, the one that just failed included (>= 1).
 * `random` returns a number in [0, 1), like Math.random (tests pass a fixed one).
 */
export function retryDecision(input: { attempts: number; error: RetryError; policy: RetryPolicy; random: () => number }): RetryDecision {
  const { attempts, error, policy } = input;
  if (!Number.isInteger(attempts) || attempts < 1) throw new RangeError(`attempts must be a whole number >= 1, got ${attempts}`);
  if (!error.retryable) return { kind: 'dead' };
  if (attempts >= policy.maxAttempts) return { kind: 'dead' };

  const cap = Math.min(policy.maxDelayMs, policy.baseDelayMs * 2 ** Math.min(attempts - 1, MAX_EXPONENT));
  const jitter = Math.min(Math.max(input.random(), 0), 1);
  const backoff = Math.floor(jitter * cap);
  const retryAfter = error.retryAfterSeconds;
  const floor = retryAfter !== undefined && Number.isFinite(retryAfter) && retryAfter > 0 ? Math.ceil(retryAfter * 1000) : 0;
  return { kind: 'retry', delayMs: Math.max(backoff, floor) };
}

/**
 * Whether an HTTP status from the receiving server is worth retrying: server errors, 408 (request
 * timeout) and 429 (too many requests) are; every other 4xx is a refusal of the message itself
 * (https://hl7.org/fhir/R4/http.html#summary), which sending it again cannot change.
 */
export function isRetryableStatus(status: number): boolean {
  if (status === 408 || status === 429) return true;
  if (status >= 400 && status < 500) return false;
  return status >= 500;
}
