/**
 * Where EHRs send Subscription notifications (rest-hook): POST /subscription-notifications/{tenant}.
 * The tenant is in the path because a notifying server sends the endpoint's URL and may not add
 * custom headers; it must be a tenant with an EHR connection.
 *
 * Where payers send theirs (decided prior authorizations): POST /payer-notifications/{payerOrganizationId},
 * the payer's Organization id in the directory; it must be a payer with a connection.
 */
import type { Request, Response } from 'express';
import { notFound, statusOf } from '../fhir/outcomes.js';
import type { EhrFhir } from '../ports/ehr-fhir.js';
import type { GatewayDeps } from '../ports/gateway-deps.js';
import { receivePayerNotification as settlePayerNotification } from '../coverage/stories/receive-payer-notification.js';
import { receiveSubscriptionNotification as settleSubscriptionNotification } from '../intake/stories/receive-subscription-notification.js';
import { fhirJsonBody, negotiate, type HttpOptions } from './routes.js';
import { requireNotifyingEhr, requireNotifyingPayer } from './notification-auth.js';
import type { RouteHandlers } from './table-router.js';

/** The notification rows' named handlers: who is asking is checked before the body is even read. */
export function notificationHandlers(
  deps: GatewayDeps,
  options: Pick<HttpOptions, 'bodyLimitBytes' | 'jsonMaxDepth'> & {
    ehrFor(tenant: string): EhrFhir | undefined;
    subscriptionSecretFor(tenant: string): string | undefined;
  },
): Pick<RouteHandlers, 'receiveSubscriptionNotification' | 'receivePayerNotification'> {
  async function receiveSubscriptionNotification(req: Request, res: Response): Promise<void> {
    const tenant = String(req.params['tenant']);
    const ehr = options.ehrFor(tenant);
    if (!deps.writeBackTenants.has(tenant) || !ehr) {
      const outcome = notFound(`EHR connection for tenant ${tenant}`);
      res.status(statusOf(outcome)).type('application/fhir+json').send(JSON.stringify(outcome));
      return;
    }
    const result = await settleSubscriptionNotification(deps, { tenant, body: req.body, ehr });
    res.status(statusOf(result.outcome)).type('application/fhir+json').send(JSON.stringify(result.outcome));
  }

  async function receivePayerNotification(req: Request, res: Response): Promise<void> {
    const result = await settlePayerNotification(deps, { payerOrganizationId: String(req.params['payer']), body: req.body });
    res.status(statusOf(result.outcome)).type('application/fhir+json').send(JSON.stringify(result.outcome));
  }

  const body = fhirJsonBody(options);
  return {
    receiveSubscriptionNotification: [
      negotiate,
      requireNotifyingEhr('tenant', options.subscriptionSecretFor),
      body,
      receiveSubscriptionNotification,
    ],
    receivePayerNotification: [negotiate, requireNotifyingPayer('payer'), body, receivePayerNotification],
  };
}
