/**
 * Story: an EHR notifies the gateway of new or changed ServiceRequests through a FHIR Subscription
 * (R4 Subscriptions Backport, rest-hook channel:
 * https://hl7.org/fhir/uv/subscriptions-backport/STU1.1/channels.html).
 *
 * The notification is a `history` Bundle whose first entry is the subscription status: a
 * SubscriptionStatus (R4B and later) or, in R4, a Parameters carrying the backport's
 * subscription-status profile. Its notification events name the focus resources; with
 * `full-resource` payloads they are in the Bundle, with `id-only` they are read from the EHR.
 * Handshakes and heartbeats need no work.
 */
import type {
  Bundle,
  OperationOutcome,
  OperationOutcomeIssue,
  Parameters,
  ParametersParameter,
  Reference,
  Resource,
  ServiceRequest,
} from 'fhir/r4.js';
import { badRequest, errorIssue, hasErrors, informationIssue, operationOutcome, warningIssue } from '../../fhir/outcomes.js';
import { parseLiteralReference } from '../../fhir/search-parameters.js';
import { EhrCallError, type EhrFhir } from '../../ports/ehr-fhir.js';
import type { GatewayDeps } from '../../ports/gateway-deps.js';
import { intakeFetchedServiceRequest } from './intake-fetched-referral.js';

export interface SubscriptionStatusSummary {
  type: string;
  focus: Reference[];
}

function part(parameter: ParametersParameter, name: string): ParametersParameter | undefined {
  return parameter.part?.find((p) => p.name === name);
}

/** The notification's status, read from its first entry, or the 400 saying the entry is not one. */
export function notificationStatusOf(bundle: Bundle): { status: SubscriptionStatusSummary } | { refusal: OperationOutcome } {
  const statusResource = bundle.entry?.[0]?.resource;
  const status = statusResource ? readSubscriptionStatus(statusResource) : undefined;
  if (status) return { status };
  return {
    refusal: badRequest([
      errorIssue(
        'required',
        'The first entry must be the subscription status (SubscriptionStatus, or Parameters in R4)',
        'Bundle.entry[0].resource',
      ),
    ]),
  };
}

/** Reads the notification type and the focus references from either form of subscription status. */
export function readSubscriptionStatus(status: Resource): SubscriptionStatusSummary | undefined {
  if (status.resourceType === 'Parameters') {
    const parameters = (status as Parameters).parameter ?? [];
    const type = parameters.find((p) => p.name === 'type')?.valueCode;
    if (!type) return undefined;
    const focus = parameters
      .filter((p) => p.name === 'notification-event')
      .map((p) => part(p, 'focus')?.valueReference)
      .filter((r): r is Reference => r !== undefined);
    return { type, focus };
  }
  // R4B SubscriptionStatus, read structurally: @types/fhir's R4 has no such type.
  if ((status.resourceType as string) === 'SubscriptionStatus') {
    const record = status as unknown as { type?: string; notificationEvent?: Array<{ focus?: Reference }> };
    if (!record.type) return undefined;
    return {
      type: record.type,
      focus: (record.notificationEvent ?? []).map((e) => e.focus).filter((r): r is Reference => r !== undefined),
    };
  }
  return undefined;
}

export type NotificationResult =
  { kind: 'processed'; outcome: ReturnType<typeof operationOutcome> } | { kind: 'refused'; outcome: ReturnType<typeof operationOutcome> };

/**
 * Base R4 validation of a notification Bundle. An R4B SubscriptionStatus first entry is no R4
 * resource: the R4 schema checks the rest, and readSubscriptionStatus reads the status itself.
 */
export function notificationBundleIssues(deps: Pick<GatewayDeps, 'validator'>, bundle: Bundle): OperationOutcomeIssue[] {
  const first = bundle.entry?.[0];
  const isR4bStatus = (first?.resource?.resourceType as string | undefined) === 'SubscriptionStatus';
  const forSchema = isR4bStatus
    ? { ...bundle, entry: [{ ...first, resource: { resourceType: 'Parameters' } }, ...(bundle.entry ?? []).slice(1)] }
    : bundle;
  return deps.validator.validateBase(forSchema);
}

export async function receiveSubscriptionNotification(
  deps: GatewayDeps,
  input: { tenant: string; body: unknown; ehr: EhrFhir | undefined },
): Promise<NotificationResult> {
  const bundle = input.body as Bundle;
  if (typeof bundle !== 'object' || bundle === null || bundle.resourceType !== 'Bundle' || bundle.type !== 'history') {
    return {
      kind: 'refused',
      outcome: badRequest([errorIssue('invalid', 'A subscription notification is a Bundle of type history', 'Bundle.type')]),
    };
  }
  const baseIssues = notificationBundleIssues(deps, bundle);
  if (hasErrors(baseIssues)) return { kind: 'refused', outcome: badRequest(baseIssues) };
  const read = notificationStatusOf(bundle);
  if ('refusal' in read) return { kind: 'refused', outcome: read.refusal };
  const { status } = read;
  if (status.type !== 'event-notification') {
    return {
      kind: 'processed',
      outcome: operationOutcome('ok', [informationIssue('informational', `${status.type} notification acknowledged`)]),
    };
  }

  const issues: OperationOutcomeIssue[] = [];
  const inBundle = new Map<string, Resource>();
  for (const entry of (bundle.entry ?? []).slice(1)) {
    if (!entry.resource?.id) continue;
    inBundle.set(`${entry.resource.resourceType}/${entry.resource.id}`, entry.resource);
    if (entry.fullUrl) inBundle.set(entry.fullUrl, entry.resource);
  }
  for (const [index, focus] of status.focus.entries()) {
    const reference = focus.reference ?? '';
    // Relative or absolute (an id-only notification names the resource on the EHR's base).
    const parsed = parseLiteralReference(reference);
    if (parsed?.type !== 'ServiceRequest') continue;
    let serviceRequest = (inBundle.get(reference) ?? inBundle.get(`${parsed.type}/${parsed.id}`)) as ServiceRequest | undefined;
    if (!serviceRequest) {
      if (!input.ehr) {
        issues.push(
          errorIssue(
            'not-supported',
            'id-only notification, but no EHR connection is configured to read the resource from',
            `notification-event[${index}].focus`,
          ),
        );
        continue;
      }
      try {
        serviceRequest = await input.ehr.readReference<ServiceRequest>(reference);
      } catch (err) {
        if (!(err instanceof EhrCallError)) throw err;
        issues.push(
          warningIssue(
            err.retryable ? 'transient' : 'not-found',
            `Could not read ${parsed.type}/${parsed.id} from the EHR; the next poll will pick it up`,
            `notification-event[${index}].focus`,
          ),
        );
        continue;
      }
    }
    const outcome = await intakeFetchedServiceRequest(deps, input.tenant, { ...serviceRequest, id: serviceRequest.id ?? parsed.id });
    issues.push(informationIssue('informational', `ServiceRequest/${parsed.id}: ${outcome}`, `notification-event[${index}].focus`));
  }
  deps.logger.info('subscription notification processed', { events: status.focus.length });
  return {
    kind: 'processed',
    outcome: operationOutcome(
      'ok',
      issues.length > 0 ? issues : [informationIssue('informational', 'No ServiceRequest in this notification')],
    ),
  };
}
