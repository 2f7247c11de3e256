/**
 * Story: the outbox worker delivers what the gateway decided to the EHRs, once each, in order per
 * referral, whatever the network does. The same queue carries the referral's own next steps
 * (checking coverage with the payer, say): committed with the change that calls for them, retried
 * with the same backoff when a payer is down, dead-lettered when refused for good.
 *
 *   claim due messages (one worker per message, head of each referral's queue only)
 *     -> deliver each through the tenant's EhrFhir
 *     -> delivered | retry later (backoff with jitter) | dead-letter (permanent refusal)
 *
 * A worker that dies mid-delivery loses its lease and another worker delivers again; the
 * receiving side is idempotent (upsert by the gateway's identifier), so nothing is duplicated.
 */
import type { OperationOutcome } from 'fhir/r4.js';
import { retryDecision, type RetryPolicy } from '../rules/retry-policy.js';
import { EHR_UPSERT, isEhrUpsertPayload } from '../rules/write-back.js';
import { errorIssue, OperationOutcomeError, operationOutcome, statusOf } from '../../fhir/outcomes.js';
import type { Logger } from '../../logging/logger.js';
import type { Clock } from '../../ports/clock.js';
import { EhrCallError, type EhrFhir } from '../../ports/ehr-fhir.js';
import type { OutboxMessage, OutboxStore } from '../../ports/resource-store.js';
import { GATEWAY_AGENT, type AuditOutcome, type AuditTrail } from '../../ports/audit-trail.js';
import { randomUUID } from 'node:crypto';

export interface DeliveryDeps {
  outbox: OutboxStore;
  /** The EHR of a tenant, if write-back is configured for it. */
  ehrFor(tenant: string): EhrFhir | undefined;
  clock: Clock;
  logger: Logger;
  retryPolicy: RetryPolicy;
  random: () => number;
  /**
   * Handlers of the other message kinds (a referral's next step). A handler that throws an error
   * carrying `retryable` (EhrCallError, PayerCallError) is retried or dead-lettered by that flag.
   */
  steps?: ReadonlyMap<string, (message: OutboxMessage) => Promise<void>>;
  /** Where each write-back to an EHR is recorded, with the gateway as agent (docs/audit.md). */
  audit?: AuditTrail;
}

/**
 * A write-back discloses PHI to an EHR: one AuditEvent per attempt, the gateway as agent, the
 * EHR's order the write is about as entity (its reference only), the attempt's result as outcome.
 */
async function recordWriteBack(deps: DeliveryDeps, message: OutboxMessage, outcome: AuditOutcome): Promise<void> {
  if (deps.audit === undefined || message.kind !== EHR_UPSERT || !isEhrUpsertPayload(message.payload)) return;
  // The payload is the EHR's copy (no gateway id): its order as the EHR names it is what was written about.
  const focus = (message.payload.resource as { focus?: { reference?: string } }).focus?.reference;
  await deps.audit.recordAuditEvents([
    {
      id: randomUUID(),
      recorded: deps.clock.now(),
      action: 'E',
      subtype: 'job',
      operation: 'ehr-write-back',
      outcome,
      agent: { ...GATEWAY_AGENT, tenant: message.tenant },
      entities: focus !== undefined && /^[A-Z][A-Za-z]+\/[A-Za-z0-9\-.]{1,64}$/.test(focus) ? [focus] : [],
    },
  ]);
}

export interface DeliveryRound {
  claimed: number;
  delivered: number;
  retried: number;
  dead: number;
}

type Attempt = { kind: 'delivered' } | { kind: 'failed'; outcome: OperationOutcome; retryable: boolean; retryAfterSeconds?: number };

async function runStep(deps: DeliveryDeps, message: OutboxMessage, step: (message: OutboxMessage) => Promise<void>): Promise<Attempt> {
  try {
    await step(message);
    return { kind: 'delivered' };
  } catch (err) {
    if (err instanceof OperationOutcomeError) {
      const { retryable, retryAfterSeconds } = err as OperationOutcomeError & { retryable?: unknown; retryAfterSeconds?: number };
      // Without a flag: a concurrent change (409, 412) is worth another look; any other refusal is final.
      const worthRetrying = typeof retryable === 'boolean' ? retryable : [409, 412].includes(statusOf(err.outcome));
      return {
        kind: 'failed',
        outcome: err.outcome,
        retryable: worthRetrying,
        ...(retryAfterSeconds !== undefined ? { retryAfterSeconds } : {}),
      };
    }
    deps.logger.error('outbox step failed unexpectedly', { messageId: message.id, kind: message.kind, errorName: (err as Error).name });
    return {
      kind: 'failed',
      retryable: true,
      outcome: operationOutcome('exception', [errorIssue('exception', `Step ${message.kind} failed inside the gateway`)]),
    };
  }
}

async function attempt(deps: DeliveryDeps, message: OutboxMessage): Promise<Attempt> {
  const step = deps.steps?.get(message.kind);
  if (step) return runStep(deps, message, step);
  if (message.kind !== EHR_UPSERT || !isEhrUpsertPayload(message.payload)) {
    return {
      kind: 'failed',
      retryable: false,
      outcome: operationOutcome('bad-message', [errorIssue('not-supported', `Outbox message kind ${message.kind} has no delivery`)]),
    };
  }
  const ehr = deps.ehrFor(message.tenant);
  if (!ehr) {
    // The connection was removed from the configuration after the message was made: keep it
    // visible to operators rather than drop it.
    return {
      kind: 'failed',
      retryable: false,
      outcome: operationOutcome('no-ehr', [errorIssue('not-found', `No EHR connection is configured for tenant ${message.tenant}`)]),
    };
  }
  try {
    await ehr.upsertByIdentifier(message.payload.resource, message.payload.identifier);
    return { kind: 'delivered' };
  } catch (err) {
    if (err instanceof EhrCallError) {
      return {
        kind: 'failed',
        outcome: err.outcome,
        retryable: err.retryable,
        ...(err.retryAfterSeconds !== undefined ? { retryAfterSeconds: err.retryAfterSeconds } : {}),
      };
    }
    deps.logger.error('outbox delivery failed unexpectedly', { messageId: message.id, errorName: (err as Error).name });
    return {
      kind: 'failed',
      retryable: true,
      outcome: operationOutcome('exception', [errorIssue('exception', 'Delivery failed inside the gateway')]),
    };
  }
}

/** Claims and delivers one batch. Returns what happened, for the worker loop and for tests. */
export async function deliverDueMessages(deps: DeliveryDeps, options: { limit: number; leaseMs: number }): Promise<DeliveryRound> {
  const messages = await deps.outbox.claimDueMessages(deps.clock.now(), options);
  const round: DeliveryRound = { claimed: messages.length, delivered: 0, retried: 0, dead: 0 };
  // Different referrals in parallel; the claim already guarantees one message per referral.
  await Promise.all(
    messages.map(async (message) => {
      const result = await attempt(deps, message);
      const now = deps.clock.now();
      if (result.kind === 'delivered') {
        await deps.outbox.markDelivered(message.id, now);
        await recordWriteBack(deps, message, 0);
        round.delivered += 1;
        deps.logger.info('outbox message delivered', { messageId: message.id, kind: message.kind, attempts: message.attempts });
        return;
      }
      const decision = retryDecision({
        attempts: message.attempts,
        error: {
          retryable: result.retryable,
          ...(result.retryAfterSeconds !== undefined ? { retryAfterSeconds: result.retryAfterSeconds } : {}),
        },
        policy: deps.retryPolicy,
        random: deps.random,
      });
      const failure = { messageId: message.id, attempts: message.attempts, issueCodes: result.outcome.issue.map((i) => i.code).join(',') };
      if (decision.kind === 'retry') {
        await deps.outbox.scheduleRetry(message.id, new Date(now.getTime() + decision.delayMs), result.outcome, now);
        round.retried += 1;
        deps.logger.warn('outbox delivery failed; will retry', { ...failure, delayMs: decision.delayMs });
      } else {
        await deps.outbox.markDead(message.id, result.outcome, now);
        round.dead += 1;
        deps.logger.error('outbox message dead-lettered', { ...failure, retryable: result.retryable });
      }
      // docs/audit.md: a write-back's event has outcome 8 when it is retried, 4 when dead-lettered.
      await recordWriteBack(deps, message, decision.kind === 'retry' ? 8 : 4);
    }),
  );
  return round;
}
