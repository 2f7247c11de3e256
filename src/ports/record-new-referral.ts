/**
 * ResourceStore.recordNewReferral as the statements of one transaction: what it means, the way
 * SQLite runs it, and the way a story that writes more in the same transaction (a transaction
 * Bundle, a conditional create) records a referral. Claim first: a lost claim writes nothing.
 */
import type { Resource } from 'fhir/r4.js';
import type { NewReferral, NewReferralResult, ResourceWriter } from './resource-store.js';

export async function recordNewReferralIn(tx: ResourceWriter, referral: NewReferral, now: Date): Promise<NewReferralResult> {
  const claim = await tx.claimReferral(referral.claim, now);
  if (!claim.claimed) return claim;
  const stored = (await tx.createAll(referral.claim.tenant, referral.resources, now)) as Array<Resource & { id: string }>;
  for (const message of referral.messages(stored)) await tx.enqueue(message, now);
  return { claimed: true, stored };
}
