/**
 * Story: an EHR posts one infusion ServiceRequest (POST /fhir/ServiceRequest), optionally as a
 * conditional create (If-None-Exist, https://hl7.org/fhir/R4/http.html#ccreate).
 */
import type { OperationOutcomeIssue, ServiceRequest, Task } from 'fhir/r4.js';
import {
  badRequest,
  dedupeIssues,
  errorIssue,
  hasErrors,
  informationIssue,
  preconditionFailed,
  unprocessable,
} from '../../fhir/outcomes.js';
import { withServerId } from '../../fhir/resources.js';
import type { GatewayDeps } from '../../ports/gateway-deps.js';
import { findByConditionalQueryLocked } from './conditional.js';
import {
  prepareReferral,
  recordNewReferral,
  recordReferral,
  referralOutcomeIssues,
  validateReferralRequest,
  type RecordedReferral,
  type StoredServiceRequest,
} from './intake-referral.js';
import { refusal, transactionUnlessRefused, type Refusal } from '../../ports/refusal.js';

export type CreateServiceRequestResult =
  | { kind: 'created'; serviceRequest: StoredServiceRequest; task: Task; issues: OperationOutcomeIssue[] }
  | { kind: 'existing'; serviceRequest: ServiceRequest; issues: OperationOutcomeIssue[] }
  | Refusal;

export async function createServiceRequest(
  deps: GatewayDeps,
  input: { tenant: string; body: unknown; ifNoneExist?: string },
): Promise<CreateServiceRequestResult> {
  const { body, tenant } = input;
  if (typeof body !== 'object' || body === null || Array.isArray(body)) {
    return {
      kind: 'refused',
      outcome: badRequest([errorIssue('structure', 'The body must be a FHIR ServiceRequest resource (a JSON object)')]),
    };
  }
  const resourceType = (body as { resourceType?: unknown }).resourceType;
  if (resourceType !== 'ServiceRequest') {
    return {
      kind: 'refused',
      outcome: badRequest([
        errorIssue(
          'invalid',
          `Expected a ServiceRequest at this endpoint but got ${typeof resourceType === 'string' ? resourceType : 'no resourceType'}`,
          'resourceType',
        ),
      ]),
    };
  }

  const { base, profile } = validateReferralRequest(deps, body);
  if (hasErrors(base)) return { kind: 'refused', outcome: badRequest(dedupeIssues([...base, ...profile])) };
  if (hasErrors(profile)) return { kind: 'refused', outcome: unprocessable(profile) };
  const warnings = [...base, ...profile];

  const serviceRequest = withServerId(body as ServiceRequest, deps.newId());
  const prepared = await prepareReferral(deps, deps.store, tenant, serviceRequest);
  if (!prepared.ok) return { kind: 'refused', outcome: unprocessable(prepared.issues) };

  const now = deps.clock.now();
  // A plain create records the referral at once (one statement on PostgreSQL); a conditional
  // create searches and records in one transaction, so that two alike cannot both create.
  const ifNoneExist = input.ifNoneExist;
  const recorded =
    ifNoneExist === undefined
      ? await recordNewReferral(deps.store, prepared.prepared, now)
      : await transactionUnlessRefused(
          deps.store,
          async (tx): Promise<RecordedReferral | { kind: 'matched'; resource: ServiceRequest } | Refusal> => {
            const matches = await findByConditionalQueryLocked(tx, deps.tenancy, tenant, 'ServiceRequest', ifNoneExist, 'If-None-Exist');
            if (matches.kind === 'invalid') return refusal(badRequest(matches.issues));
            if (matches.resources.length > 1) {
              return refusal(
                preconditionFailed(
                  `If-None-Exist matched ${matches.resources.length} ServiceRequests; it must match at most one`,
                  'If-None-Exist',
                ),
              );
            }
            const [match] = matches.resources;
            if (match) return { kind: 'matched', resource: match as ServiceRequest };
            return recordReferral(tx, prepared.prepared, now);
          },
        );
  if (recorded.kind === 'refused') return recorded;
  if (recorded.kind === 'matched') {
    return {
      kind: 'existing',
      serviceRequest: recorded.resource,
      issues: [informationIssue('duplicate', 'If-None-Exist matched an existing ServiceRequest; nothing was created')],
    };
  }
  if (recorded.kind === 'duplicate') {
    const existing = await deps.store.read<ServiceRequest>([tenant], 'ServiceRequest', recorded.existing.serviceRequestId);
    if (!existing)
      return refusal(unprocessable([errorIssue('exception', 'The original referral for this order number could not be read')]));
    deps.logger.info('duplicate referral answered with the original', {
      referralId: recorded.existing.id,
      serviceRequestId: recorded.existing.serviceRequestId,
      taskId: recorded.existing.taskId,
    });
    return {
      kind: 'existing',
      serviceRequest: existing,
      issues: [
        informationIssue(
          'duplicate',
          `This order number was already received; tracked by Task/${recorded.existing.taskId}`,
          'ServiceRequest.identifier',
        ),
      ],
    };
  }
  deps.logger.info('referral received', {
    referralId: prepared.prepared.referralId,
    serviceRequestId: recorded.serviceRequest.id,
    taskId: recorded.task.id,
    businessStatus: recorded.status,
    drug: prepared.prepared.translation.referral.drug?.catalogId ?? null,
  });
  return {
    kind: 'created',
    serviceRequest: recorded.serviceRequest,
    task: recorded.task,
    issues: [...warnings, ...referralOutcomeIssues(prepared.prepared, recorded.task.id, recorded.status)],
  };
}
