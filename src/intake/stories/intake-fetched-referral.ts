/**
 * Intake of a ServiceRequest the gateway read from the EHR itself (pull, or a subscription
 * notification), rather than one the EHR posted. Same validation, translation and idempotency as
 * push intake; what differs is how a refusal is told: there is no HTTP request to answer, so a
 * rejected Task is written back to the EHR naming every problem, and the log says how many.
 */
import type { OperationOutcomeIssue, ServiceRequest, Task } from 'fhir/r4.js';
import {
  GATEWAY_CANONICAL_BASE,
  REJECTION_REASON_SYSTEM,
  TASK_CODE_SYSTEM,
  taskStatusFields,
} from '../../referral/rules/referral-status.js';
import { EHR_UPSERT, type EhrUpsertPayload } from '../../delivery/rules/write-back.js';
import { hasErrors } from '../../fhir/outcomes.js';
import { withServerId } from '../../fhir/resources.js';
import type { GatewayDeps } from '../../ports/gateway-deps.js';
import { followOrderChange } from '../../order-changes/stories/follow-order-change.js';
import { prepareReferral, recordNewReferral, validateReferralRequest } from './intake-referral.js';
import { placerIdentifier } from '../../referral/rules/referral.js';

/** `changed`: an order the gateway had, changed since (followed); `duplicate`: the same order again. */
export type FetchedIntakeResult = 'accepted' | 'rejected' | 'duplicate' | 'changed' | 'refused';

const REFUSED_ORDER_SYSTEM = `${GATEWAY_CANONICAL_BASE}/refused-order`;

/** The Task that tells the EHR its order could not be taken, with each problem as a note. */
function refusalTask(ehrServiceRequestId: string, issues: readonly OperationOutcomeIssue[], now: Date): Task {
  const errors = issues.filter((i) => i.severity === 'error' || i.severity === 'fatal');
  return {
    resourceType: 'Task',
    identifier: [{ system: REFUSED_ORDER_SYSTEM, value: ehrServiceRequestId }],
    ...taskStatusFields('rejected'),
    statusReason: {
      coding: [{ system: REJECTION_REASON_SYSTEM, code: 'invalid-referral' }],
      text: `The order is not a valid infusion referral: ${errors.length} problem(s)`,
    },
    intent: 'order',
    code: { coding: [{ system: TASK_CODE_SYSTEM, code: 'fulfill' }] },
    focus: { reference: `ServiceRequest/${ehrServiceRequestId}` },
    basedOn: [{ reference: `ServiceRequest/${ehrServiceRequestId}` }],
    authoredOn: now.toISOString(),
    lastModified: now.toISOString(),
    note: errors.map((i) => ({ text: `${i.expression?.join(', ') ?? '(resource)'}: ${i.diagnostics ?? i.code}` })),
  };
}

export async function intakeFetchedServiceRequest(
  deps: GatewayDeps,
  tenant: string,
  fetched: ServiceRequest & { id: string },
): Promise<FetchedIntakeResult> {
  const now = deps.clock.now();
  const refuse = async (issues: readonly OperationOutcomeIssue[]): Promise<FetchedIntakeResult> => {
    if (deps.writeBackTenants.has(tenant)) {
      const payload: EhrUpsertPayload = {
        resource: refusalTask(fetched.id, issues, now),
        identifier: { system: REFUSED_ORDER_SYSTEM, value: fetched.id },
      };
      await deps.store.transaction((tx) =>
        tx.enqueue({ id: deps.newId(), tenant, orderingKey: `ehr-order:${tenant}:${fetched.id}`, kind: EHR_UPSERT, payload }, now),
      );
    }
    deps.logger.warn('fetched ServiceRequest refused', {
      ehrServiceRequestId: fetched.id,
      errors: issues.filter((i) => i.severity === 'error').length,
    });
    return 'refused';
  };

  // An order the gateway already has is a change to follow (docs/order-changes.md), not a new
  // referral: a revoked or held order is no valid referral, yet it must stop or hold the one it made.
  const order = placerIdentifier(fetched);
  const existing =
    order?.system && order.value && !hasErrors(deps.validator.validateBase(fetched))
      ? await deps.store.findReferralByIdentifier(tenant, order.system, order.value)
      : undefined;
  if (existing) {
    const followed = await followOrderChange(deps, { tenant, row: existing, order: fetched, ehrServiceRequestId: fetched.id });
    if (followed.kind === 'refused') {
      deps.logger.warn('changed order not taken: no longer a valid referral', { referralId: existing.id, errors: followed.issues.length });
      return 'refused';
    }
    return followed.kind === 'applied' ? 'changed' : 'duplicate';
  }

  const { base, profile } = validateReferralRequest(deps, fetched);
  if (hasErrors(base) || hasErrors(profile)) return refuse([...base, ...profile]);
  const serviceRequest = withServerId(fetched, deps.newId());
  const prepared = await prepareReferral(deps, deps.store, tenant, serviceRequest, new Map(), { ehrServiceRequestId: fetched.id });
  if (!prepared.ok) return refuse(prepared.issues);
  const recorded = await recordNewReferral(deps.store, prepared.prepared, now);
  if (recorded.kind === 'duplicate') return 'duplicate';
  deps.logger.info('referral received from the EHR', {
    referralId: prepared.prepared.referralId,
    serviceRequestId: recorded.serviceRequest.id,
    ehrServiceRequestId: fetched.id,
    businessStatus: recorded.status,
  });
  return recorded.status === 'rejected' ? 'rejected' : 'accepted';
}
