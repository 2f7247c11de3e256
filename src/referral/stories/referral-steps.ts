/**
 * The steps of a referral's own processing (coverage verification, prior-auth submission), queued in
 * the outbox with the change that calls for them (docs/architecture.md "Outbox"). Their names live
 * here, not in one story, so intake, the site check and the coverage story share them without
 * importing each other.
 */
import type { NewOutboxMessage, TenantId } from '../../ports/resource-store.js';

export const VERIFY_COVERAGE_STEP = 'verify-coverage';
export const SUBMIT_PRIOR_AUTH_STEP = 'submit-prior-auth';

export interface ReferralStepPayload {
  referralId: string;
}

/**
 * A step of a referral's own processing, queued in the outbox with the change that calls for it.
 * Its ordering key is not the write-back's: a slow EHR does not hold up the coverage check.
 */
export function referralStep(
  kind: typeof VERIFY_COVERAGE_STEP | typeof SUBMIT_PRIOR_AUTH_STEP,
  input: { messageId: string; tenant: TenantId; referralId: string },
): NewOutboxMessage {
  const payload: ReferralStepPayload = { referralId: input.referralId };
  return { id: input.messageId, tenant: input.tenant, orderingKey: `referral-steps:${input.referralId}`, kind, payload };
}

export function isReferralStepPayload(value: unknown): value is ReferralStepPayload {
  return typeof value === 'object' && value !== null && typeof (value as ReferralStepPayload).referralId === 'string';
}
