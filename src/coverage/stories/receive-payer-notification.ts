/**
 * Story: a payer notifies the gateway that a pended prior authorization was decided, through a
 * FHIR Subscription (R4 Subscriptions Backport, rest-hook channel:
 * https://hl7.org/fhir/uv/subscriptions-backport/STU1.1/channels.html; Da Vinci PAS subscribes
 * providers to updates of pended requests: https://hl7.org/fhir/us/davinci-pas/).
 *
 *   POST /payer-notifications/{payerOrganizationId}: a `history` Bundle, the subscription status first
 *     -> handshake / heartbeat: acknowledged, nothing to do
 *     -> each notification event naming a ClaimResponse:
 *        full-resource: the ClaimResponse is in the Bundle; its request names the Claim the gateway
 *                       sent (`pa-<referralId>`, verify-coverage.ts), so the referral is found and
 *                       the decision taken exactly as an answer to `$inquire` (settlePendedAuthorization)
 *        id-only:       only the payer's ClaimResponse id, which does not say whose it is; as PAS
 *                       has it, the provider then asks `Claim/$inquire`: the gateway follows up
 *                       that payer's pended requests now (followUpPendingAuthorizations)
 *
 * Refusals: a body that is no notification, or a ClaimResponse that does not name a claim of the
 * gateway, 400; a claim the gateway did not send to this payer, 404; a ClaimResponse whose decision
 * cannot be told, 422. Nothing changes on a refusal. A decision for a referral no longer waiting on
 * it (decided already, by an inquiry or an earlier notification) is acknowledged and ignored, so a
 * payer may send a notification again.
 *
 * The payer's identity is not checked here yet (authentication comes with the security work);
 * what a notification can do is bounded: it can only decide a request the gateway sent to that
 * payer and that is still pended.
 */
import type { Bundle, BundleEntry, ClaimResponse, OperationOutcome, OperationOutcomeIssue, Resource } from 'fhir/r4.js';
import {
  PRIOR_AUTHORIZATION_CLAIM_SYSTEM,
  interpretClaimResponseBundle,
  type PriorAuthorizationDecision,
} from '../rules/prior-authorization.js';
import { badRequest, errorIssue, hasErrors, informationIssue, notFound, operationOutcome, unprocessable } from '../../fhir/outcomes.js';
import { parseLiteralReference } from '../../fhir/search-parameters.js';
import type { TenantId } from '../../ports/resource-store.js';
import type { GatewayDeps } from '../../ports/gateway-deps.js';
import { notificationBundleIssues, notificationStatusOf } from '../../intake/stories/receive-subscription-notification.js';
import { followUpPendingAuthorizations, referralWithPayer, settlePendedAuthorization } from './verify-coverage.js';

/** The prefix of the Claim identifiers the gateway sends (verify-coverage.ts: `pa-${referralId}`). */
const CLAIM_PREFIX = 'pa-';

export interface PayerNotificationResult {
  outcome: OperationOutcome;
}

/** One notification event about a ClaimResponse carried in the Bundle. */
interface CarriedResponse {
  event: number;
  /** The entry's index in the notification Bundle. */
  entry: number;
  response: ClaimResponse;
  claimId: string;
}

/** A claim of the gateway's, found: the referral it is for, and the payer's decision. */
interface FoundClaim extends CarriedResponse {
  tenant: TenantId;
  referralId: string;
  decision: PriorAuthorizationDecision;
}

/**
 * The Claim the gateway sent, as the ClaimResponse names it: `request` by identifier (PAS), else by
 * reference (`Claim/pa-…`), else the response's own identifier when it echoes the Claim's.
 */
export function claimIdentifierOf(response: ClaimResponse): string | undefined {
  const ours = (value: string | undefined): string | undefined => (value?.startsWith(CLAIM_PREFIX) ? value : undefined);
  const byRequestIdentifier = response.request?.identifier;
  if (
    byRequestIdentifier?.value &&
    (byRequestIdentifier.system === undefined || byRequestIdentifier.system === PRIOR_AUTHORIZATION_CLAIM_SYSTEM)
  ) {
    return ours(byRequestIdentifier.value);
  }
  const byReference = parseLiteralReference(response.request?.reference ?? '');
  if (byReference?.type === 'Claim') return ours(byReference.id);
  return ours(response.identifier?.find((i) => i.system === PRIOR_AUTHORIZATION_CLAIM_SYSTEM)?.value);
}

function isNotificationBundle(body: unknown): body is Bundle {
  return typeof body === 'object' && body !== null && (body as Bundle).resourceType === 'Bundle' && (body as Bundle).type === 'history';
}

/** Issues about one ClaimResponse, moved from the one-entry Bundle it was read in to its place in the notification. */
function placed(issues: readonly OperationOutcomeIssue[], entry: number): OperationOutcomeIssue[] {
  return issues.map((i) => ({
    ...i,
    ...(i.expression ? { expression: i.expression.map((e) => e.replace(/^Bundle\.entry\[0\]/, `Bundle.entry[${entry}]`)) } : {}),
  }));
}

export async function receivePayerNotification(
  deps: GatewayDeps,
  input: { payerOrganizationId: string; body: unknown },
): Promise<PayerNotificationResult> {
  const payerId = input.payerOrganizationId;
  if (!deps.payerFor(payerId)) return { outcome: notFound(`Payer connection ${payerId}`) };
  const bundle = input.body;
  if (!isNotificationBundle(bundle)) {
    return {
      outcome: badRequest([
        errorIssue(
          'invalid',
          'A subscription notification is a Bundle of type history',
          typeof bundle === 'object' && bundle !== null && (bundle as Resource).resourceType === 'Bundle' ? 'Bundle.type' : 'Bundle',
        ),
      ]),
    };
  }
  const baseIssues = notificationBundleIssues(deps, bundle);
  if (hasErrors(baseIssues)) return { outcome: badRequest(baseIssues) };
  const read = notificationStatusOf(bundle);
  if ('refusal' in read) return { outcome: read.refusal };
  const { status } = read;
  if (status.type !== 'event-notification') {
    return { outcome: operationOutcome('ok', [informationIssue('informational', `${status.type} notification acknowledged`)]) };
  }

  // Read every event first: a notification is taken whole or refused whole.
  const entries: BundleEntry[] = bundle.entry ?? [];
  const byReference = new Map<string, number>();
  entries.forEach((entry, index) => {
    if (index === 0 || !entry.resource?.id) return;
    byReference.set(`${entry.resource.resourceType}/${entry.resource.id}`, index);
    if (entry.fullUrl) byReference.set(entry.fullUrl, index);
  });
  const issues: OperationOutcomeIssue[] = [];
  const carried: CarriedResponse[] = [];
  let idOnly = 0;
  for (const [event, focus] of status.focus.entries()) {
    const reference = focus.reference ?? '';
    const parsed = parseLiteralReference(reference);
    if (parsed?.type !== 'ClaimResponse') {
      issues.push(informationIssue('informational', `Notification event ${event + 1} is not about a ClaimResponse; nothing to do`));
      continue;
    }
    const index = byReference.get(reference) ?? byReference.get(`ClaimResponse/${parsed.id}`);
    if (index === undefined) {
      idOnly += 1;
      continue;
    }
    const response = entries[index]!.resource as ClaimResponse;
    const claimId = claimIdentifierOf(response);
    if (claimId === undefined) {
      issues.push(
        errorIssue(
          'required',
          `The ClaimResponse must name the prior-authorization request the gateway sent (request.identifier ${PRIOR_AUTHORIZATION_CLAIM_SYSTEM}|${CLAIM_PREFIX}…)`,
          `Bundle.entry[${index}].resource.request`,
        ),
      );
      continue;
    }
    carried.push({ event, entry: index, response, claimId });
  }
  if (hasErrors(issues)) return { outcome: badRequest(issues) };

  const found: FoundClaim[] = [];
  const unknown: OperationOutcomeIssue[] = [];
  const undecidable: OperationOutcomeIssue[] = [];
  for (const item of carried) {
    const referralId = item.claimId.slice(CLAIM_PREFIX.length);
    // The payer names no tenant: the referral id in the claim identifier is enough.
    const row = await deps.store.findReferralById(referralId);
    const referral = row ? await referralWithPayer(deps, { tenant: row.tenant, referralId }) : undefined;
    // A claim sent to another payer is unknown to this one: say no more than that.
    if (!row || !referral || referral.payerOrganizationId !== payerId) {
      unknown.push(
        errorIssue(
          'not-found',
          `No prior-authorization request ${item.claimId} was sent to ${payerId}`,
          `Bundle.entry[${item.entry}].resource.request`,
        ),
      );
      continue;
    }
    const decision = interpretClaimResponseBundle({ resourceType: 'Bundle', type: 'collection', entry: [{ resource: item.response }] });
    // A payer that reports an error on the request decides it (as an answer to $inquire would);
    // a ClaimResponse the gateway cannot read decides nothing.
    if (decision.kind === 'error' && decision.issues.some((i) => i.code !== 'processing')) {
      undecidable.push(...placed(decision.issues, item.entry));
      continue;
    }
    found.push({ ...item, tenant: row.tenant, referralId, decision });
  }
  if (unknown.length > 0) return { outcome: operationOutcome('not-found', unknown) };
  if (undecidable.length > 0) return { outcome: unprocessable(undecidable) };

  const results: OperationOutcomeIssue[] = [...issues];
  let decided = 0;
  for (const item of found) {
    const result = await settlePendedAuthorization(deps, { tenant: item.tenant, referralId: item.referralId, decision: item.decision });
    if (result === 'decided') decided += 1;
    const said =
      result === 'decided'
        ? `decision taken (${item.decision.kind})`
        : result === 'pended'
          ? 'still pended; nothing changes'
          : 'the referral is not waiting on this decision (any more); ignored';
    results.push(
      informationIssue('informational', `Prior-authorization request ${item.claimId}: ${said}`, `Bundle.entry[${item.entry}].resource`),
    );
  }
  if (idOnly > 0) {
    // id-only: the ClaimResponse is the payer's and names no claim; ask the payer about ours.
    // At most one $inquire per pended request per minute, however many notifications arrive.
    const followUp = await followUpPendingAuthorizations(deps, { payerOrganizationId: payerId, oncePerMinute: true });
    decided += followUp.decided;
    const skipped = followUp.throttled > 0 ? `; ${followUp.throttled} already asked about this minute` : '';
    results.push(
      informationIssue(
        'informational',
        `${idOnly} id-only event(s): asked the payer ($inquire) about ${followUp.inquired} pended request(s); ${followUp.decided} decided${skipped}`,
      ),
    );
  }
  deps.logger.info('payer notification processed', { payer: payerId, events: status.focus.length, idOnly, decided });
  return {
    outcome: operationOutcome(
      'ok',
      results.length > 0 ? results : [informationIssue('informational', 'No ClaimResponse in this notification')],
    ),
  };
}
