/**
 * Every named handler of the route table (src/http/route-table.ts), gathered from the areas that
 * implement them. The return type is the whole HandlerName list: a row naming a handler nobody
 * implements does not compile.
 */
import type { Request, Response } from 'express';
import { unavailable } from '../fhir/outcomes.js';
import { demoIdentityProviderHandlers, smartHandlers } from '../auth/token-endpoint.js';
import type { AppOptions } from './app-options.js';
import type { GatewayDeps } from '../ports/gateway-deps.js';
import { apiDocsHandlers } from './api-docs-routes.js';
import { cdsHooksHandlers } from './cds-hooks-routes.js';
import { consoleHandlers } from './console-routes.js';
import { createFhirHandlers } from './fhir-handlers.js';
import { notificationHandlers } from './notification-routes.js';
import { operatorHandlers } from './operator-routes.js';
import { PLAIN_ROUTES } from './plain-routes.js';
import { setRetryAfter } from './retry-after.js';
import { fhirRouteHandlers } from './routes.js';
import type { RouteHandlers } from './table-router.js';

/** Liveness, and readiness: not ready while the database is away or requests queue for its connections beyond DB_MAX_WAITING. */
function healthHandlers(deps: Pick<GatewayDeps, 'store' | 'logger'>): Pick<RouteHandlers, 'liveness' | 'readiness'> {
  function liveness(_req: Request, res: Response): void {
    res.json({ status: 'ok' });
  }
  // A load balancer then sends traffic to another process.
  async function readiness(_req: Request, res: Response): Promise<void> {
    const state = await deps.store.readiness();
    if (state.ready) {
      res.json({ status: 'ready' });
      return;
    }
    deps.logger.warn('readiness check failed', { reason: state.reason });
    setRetryAfter(res, 503);
    res
      .status(503)
      .type('application/fhir+json')
      .send(JSON.stringify(unavailable(state.diagnostics)));
  }
  return { liveness: [liveness], readiness: [readiness] };
}

export function createRouteHandlers(deps: GatewayDeps, options: AppOptions): RouteHandlers {
  return {
    ...healthHandlers(deps),
    ...apiDocsHandlers({
      capabilityStatement: options.capabilityStatement,
      conformance: options.conformance,
      plainRoutes: PLAIN_ROUTES,
      ...(options.auth ? { tokenUrl: '/oauth/token' } : {}),
    }),
    ...consoleHandlers(deps, options.console),
    ...smartHandlers(options.auth),
    ...demoIdentityProviderHandlers(options.auth),
    ...cdsHooksHandlers(options.cds, {
      bodyLimitBytes: options.bodyLimitBytes,
      clientTrust: options.cdsClientTrust,
      ...(options.publicBaseUrl !== undefined ? { publicOrigin: new URL(options.publicBaseUrl).origin } : {}),
    }),
    ...operatorHandlers({ outbox: deps.store, clock: deps.clock, logger: deps.logger }),
    ...notificationHandlers(deps, options),
    ...fhirRouteHandlers(createFhirHandlers(deps, options.capabilityStatement, options.conformance), options),
  };
}
