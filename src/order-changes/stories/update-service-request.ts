/**
 * Story: the EHR updates an order it sent (`PUT /fhir/ServiceRequest/{id}`,
 * https://hl7.org/fhir/R4/http.html#update): revoked, on hold, in error, active again, or edited.
 * The referral follows (follow-order-change.ts, docs/order-changes.md). The order number cannot
 * change (it is the referral's identity); a new order is POSTed. Nothing is stored when the change
 * is refused.
 */
import type { OperationOutcomeIssue, Resource, ServiceRequest } from 'fhir/r4.js';
import { placerIdentifier } from '../../referral/rules/referral.js';
import { badRequest, errorIssue, hasErrors, informationIssue, notFound, preconditionFailed, unprocessable } from '../../fhir/outcomes.js';
import type { TenantId } from '../../ports/resource-store.js';
import type { GatewayDeps } from '../../ports/gateway-deps.js';
import { followOrderChange } from './follow-order-change.js';
import type { Refusal } from '../../ports/refusal.js';

export type UpdateServiceRequestResult = { kind: 'ok'; status: 200; resource: Resource; issues: OperationOutcomeIssue[] } | Refusal;

export async function updateServiceRequest(
  deps: GatewayDeps,
  input: { tenant: TenantId; id: string; body: unknown; ifMatch?: string },
): Promise<UpdateServiceRequestResult> {
  const body = input.body as ServiceRequest | null;
  if (typeof body !== 'object' || body === null || Array.isArray(body) || body.resourceType !== 'ServiceRequest') {
    return {
      kind: 'refused',
      outcome: badRequest([errorIssue('invalid', 'The body must be a FHIR ServiceRequest resource', 'resourceType')]),
    };
  }
  if (body.id !== input.id) {
    return {
      kind: 'refused',
      outcome: badRequest([
        errorIssue('invalid', `The resource id (${body.id ?? 'missing'}) must equal the id in the URL (${input.id})`, 'ServiceRequest.id'),
      ]),
    };
  }
  const base = deps.validator.validateBase(body);
  if (hasErrors(base)) return { kind: 'refused', outcome: badRequest(base) };

  const current = await deps.store.read<ServiceRequest>([input.tenant], 'ServiceRequest', input.id);
  if (!current) return { kind: 'refused', outcome: notFound('ServiceRequest', input.id) };
  if (input.ifMatch !== undefined && current.meta?.versionId !== input.ifMatch) {
    return {
      kind: 'refused',
      outcome: preconditionFailed(
        `If-Match names version ${input.ifMatch} but the current version is ${current.meta?.versionId ?? 'unknown'}`,
        'If-Match',
      ),
    };
  }
  const was = placerIdentifier(current);
  const now = placerIdentifier(body);
  if (!was?.system || !was.value || now?.system !== was.system || now.value !== was.value) {
    return {
      kind: 'refused',
      outcome: unprocessable([
        errorIssue(
          'business-rule',
          "The order number (the placer identifier) is the referral's identity and cannot change; send a new order with POST",
          'ServiceRequest.identifier',
        ),
      ]),
    };
  }
  const row = await deps.store.findReferralByIdentifier(input.tenant, was.system, was.value);
  if (!row || row.serviceRequestId !== input.id) return { kind: 'refused', outcome: notFound('ServiceRequest', input.id) };

  const followed = await followOrderChange(deps, { tenant: input.tenant, row, order: body });
  switch (followed.kind) {
    case 'unchanged':
      return {
        kind: 'ok',
        status: 200,
        resource: current,
        issues: [informationIssue('informational', 'The order is unchanged; nothing was stored')],
      };
    case 'ignored':
      return { kind: 'refused', outcome: unprocessable([errorIssue('business-rule', followed.why, 'ServiceRequest.status')]) };
    case 'refused':
      return { kind: 'refused', outcome: unprocessable(followed.issues) };
    case 'applied': {
      const stored = await deps.store.read<ServiceRequest>([input.tenant], 'ServiceRequest', input.id);
      return {
        kind: 'ok',
        status: 200,
        resource: stored ?? followed.serviceRequest,
        issues: [
          informationIssue(
            'informational',
            `The referral follows the changed order (${followed.decision}): ${followed.appointmentsCancelled} appointment(s) cancelled, ${followed.chairsReleased} chair(s) released`,
          ),
        ],
      };
    }
  }
}
