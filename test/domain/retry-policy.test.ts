import { expect } from 'chai';
import { DEFAULT_RETRY_POLICY, isRetryableStatus, retryDecision, type RetryPolicy } from '../../src/delivery/rules/retry-policy.js';

const POLICY: RetryPolicy = { baseDelayMs: 1_000, maxDelayMs: 60_000, maxAttempts: 8 };
const retryable = { retryable: true };
const always = (value: number) => (): number => value;

describe('retry policy', function () {
  it('waits a random share of base * 2^(attempts-1): full jitter', async function () {
    expect(retryDecision({ attempts: 1, error: retryable, policy: POLICY, random: always(0.5) })).to.deep.equal({
      kind: 'retry',
      delayMs: 500,
    });
    expect(retryDecision({ attempts: 2, error: retryable, policy: POLICY, random: always(0.5) })).to.deep.equal({
      kind: 'retry',
      delayMs: 1_000,
    });
    expect(retryDecision({ attempts: 3, error: retryable, policy: POLICY, random: always(0.25) })).to.deep.equal({
      kind: 'retry',
      delayMs: 1_000,
    });
    expect(retryDecision({ attempts: 4, error: retryable, policy: POLICY, random: always(0.999) })).to.deep.equal({
      kind: 'retry',
      delayMs: 7_992,
    });
  });

  it('may retry at once when the random draw is 0', async function () {
    expect(retryDecision({ attempts: 5, error: retryable, policy: POLICY, random: always(0) })).to.deep.equal({
      kind: 'retry',
      delayMs: 0,
    });
  });

  it('never lets the exponential cap exceed maxDelayMs', async function () {
    // 1 s * 2^6 = 64 s, above the 60 s cap.
    expect(retryDecision({ attempts: 7, error: retryable, policy: POLICY, random: always(0.5) })).to.deep.equal({
      kind: 'retry',
      delayMs: 30_000,
    });
    const generous: RetryPolicy = { ...POLICY, maxAttempts: 10_000 };
    expect(retryDecision({ attempts: 5_000, error: retryable, policy: generous, random: always(0.5) })).to.deep.equal({
      kind: 'retry',
      delayMs: 30_000,
    });
  });

  it('honours Retry-After as a lower bound, and keeps a longer backoff', async function () {
    expect(
      retryDecision({ attempts: 1, error: { retryable: true, retryAfterSeconds: 30 }, policy: POLICY, random: always(0.5) }),
    ).to.deep.equal({
      kind: 'retry',
      delayMs: 30_000,
    });
    // A Retry-After beyond maxDelayMs is still honoured: the server asked for it.
    expect(
      retryDecision({ attempts: 1, error: { retryable: true, retryAfterSeconds: 120 }, policy: POLICY, random: always(0.5) }),
    ).to.deep.equal({
      kind: 'retry',
      delayMs: 120_000,
    });
    expect(
      retryDecision({ attempts: 6, error: { retryable: true, retryAfterSeconds: 2 }, policy: POLICY, random: always(0.5) }),
    ).to.deep.equal({
      kind: 'retry',
      delayMs: 16_000,
    });
  });

  it('dead-letters a permanent error at once, whatever the attempt', async function () {
    expect(retryDecision({ attempts: 1, error: { retryable: false }, policy: POLICY, random: always(0.5) })).to.deep.equal({
      kind: 'dead',
    });
    expect(
      retryDecision({ attempts: 1, error: { retryable: false, retryAfterSeconds: 5 }, policy: POLICY, random: always(0.5) }),
    ).to.deep.equal({
      kind: 'dead',
    });
  });

  it('dead-letters a retryable error once maxAttempts attempts have failed', async function () {
    expect(retryDecision({ attempts: 7, error: retryable, policy: POLICY, random: always(0.5) }).kind).to.equal('retry');
    expect(retryDecision({ attempts: 8, error: retryable, policy: POLICY, random: always(0.5) })).to.deep.equal({ kind: 'dead' });
    expect(retryDecision({ attempts: 9, error: retryable, policy: POLICY, random: always(0.5) })).to.deep.equal({ kind: 'dead' });
  });

  it('draws the jitter once per decision', async function () {
    let draws = 0;
    const random = (): number => {
      draws += 1;
      return 0.5;
    };
    retryDecision({ attempts: 2, error: retryable, policy: POLICY, random });
    expect(draws).to.equal(1);
  });

  it('refuses an attempt count below 1', async function () {
    expect(() => retryDecision({ attempts: 0, error: retryable, policy: POLICY, random: always(0.5) })).to.throw(RangeError);
  });

  it('by default retries 19 times over at most about 1 h 47 min, doubling from 1 s to a 10 min cap', async function () {
    expect(DEFAULT_RETRY_POLICY).to.deep.equal({ baseDelayMs: 1_000, maxDelayMs: 600_000, maxAttempts: 20 });
    let longest = 0;
    let retries = 0;
    for (let attempts = 1; ; attempts++) {
      const decision = retryDecision({ attempts, error: retryable, policy: DEFAULT_RETRY_POLICY, random: always(1) });
      if (decision.kind === 'dead') break;
      retries += 1;
      longest += decision.delayMs;
    }
    expect(retries).to.equal(19);
    // 1 + 2 + ... + 512 s, then nine waits of 600 s.
    expect(longest).to.equal((1_023 + 9 * 600) * 1_000);
  });

  it('retries server errors, 408 and 429, and no other client error', async function () {
    expect([500, 502, 503, 504, 408, 429].map(isRetryableStatus)).to.deep.equal([true, true, true, true, true, true]);
    expect([400, 401, 403, 404, 409, 410, 412, 422].map(isRetryableStatus)).to.deep.equal(Array(8).fill(false));
  });
});
