/**
 * createApp: the Express application, without listen(): main.ts listens on PORT, tests on port 0.
 */
import express, { type Express } from 'express';
import type { CapabilityStatement } from 'fhir/r4.js';
import { notFound, unavailable } from './fhir/outcomes.js';
import { createFhirHandlers, type ConformanceResources } from './http/fhir-handlers.js';
import { fhirErrorHandler, fhirRouter, requestContext, type HttpOptions } from './http/routes.js';
import { notificationRouter, payerNotificationRouter } from './http/notification-routes.js';
import { operatorRouter } from './http/operator-routes.js';
import { cdsHooksRouter } from './http/cds-hooks-routes.js';
import { setRetryAfter } from './http/retry-after.js';
import { refuseForbiddenUrlCharacters } from './http/url-rules.js';
import { consoleRoutes, type ConsoleRouteOptions } from './http/console-routes.js';
import { apiDocsRoutes } from './http/api-docs-routes.js';
import { PLAIN_ROUTES } from './http/plain-routes.js';
import type { CdsDeps } from './use-cases/cds-site-check.js';
import { authorizeRequests } from './auth/authorize.js';
import { smartRoutes, type AuthService } from './auth/token-endpoint.js';
import type { CdsClientTrust } from './auth/cds-client-trust.js';
import type { EhrFhir } from './ports/ehr-fhir.js';
import type { GatewayDeps } from './use-cases/deps.js';

export interface AppOptions extends HttpOptions {
  /** Authentication and the route table's decisions; undefined = AUTH=off (development only). */
  auth: AuthService | undefined;
  capabilityStatement: CapabilityStatement;
  conformance: ConformanceResources;
  /** The EHR client of a tenant with an EHR connection. */
  ehrFor(tenant: string): EhrFhir | undefined;
  /** The channel header secret of a tenant's EHR Subscription, if one was set up (src/http/notification-auth.ts). */
  subscriptionSecretFor(tenant: string): string | undefined;
  /** The CDS Hooks site-check service's dependencies. */
  cds: CdsDeps;
  /** Who may call our hooks (https://cds-hooks.hl7.org/2.0/#trusting-cds-clients). */
  cdsClientTrust: CdsClientTrust;
  /** The coordinator console (issue 14): its pages, $network-metrics, connection health. */
  console: Omit<ConsoleRouteOptions, 'body'>;
}

export function createApp(deps: GatewayDeps, options: AppOptions): Express {
  const app = express();
  app.disable('x-powered-by');
  app.set('trust proxy', false);
  app.set('query parser', 'simple');

  app.get('/healthz', (_req, res) => {
    res.json({ status: 'ok' });
  });
  // Not ready while the database is away or requests queue for its connections beyond the
  // threshold (DB_MAX_WAITING): a load balancer then sends traffic to another process.
  app.get('/readyz', async (_req, res) => {
    const readiness = await deps.store.readiness();
    if (readiness.ready) {
      res.json({ status: 'ready' });
      return;
    }
    deps.logger.warn('readiness check failed', { reason: readiness.reason });
    setRetryAfter(res, 503);
    res.status(503).type('application/fhir+json').send(JSON.stringify(unavailable(readiness.diagnostics)));
  });

  app.use(requestContext(deps.logger, options.defaultTenant));
  // Before any route reads a path segment or parameter: both engines then see the same input.
  app.use(refuseForbiddenUrlCharacters((res, outcome) => res.status(400).type('application/fhir+json').send(JSON.stringify(outcome))));
  // The route table decides who may call what, before any handler (src/http/route-table.ts).
  app.use(authorizeRequests({ service: options.auth, logger: deps.logger, defaultTenant: options.defaultTenant }));
  if (options.auth) app.use(smartRoutes(options.auth));
  // DEMO ONLY (never in production): the people `npm start` and the sandbox sign in with.
  if (options.auth?.demoIdentityProvider) app.use(options.auth.demoIdentityProvider.path, options.auth.demoIdentityProvider.router);
  app.use(consoleRoutes(deps, { ...options.console, body: { bodyLimitBytes: options.bodyLimitBytes, jsonMaxDepth: options.jsonMaxDepth } }));
  app.use(
    apiDocsRoutes({
      capabilityStatement: options.capabilityStatement,
      conformance: options.conformance,
      plainRoutes: PLAIN_ROUTES,
      ...(options.auth ? { tokenUrl: '/oauth/token' } : {}),
    }),
  );
  app.use('/fhir', fhirRouter(createFhirHandlers(deps, options.capabilityStatement, options.conformance), options));
  app.use('/subscription-notifications', notificationRouter(deps, options));
  // Payers' Subscription notifications of decided prior authorizations (Da Vinci PAS pended requests).
  app.use('/payer-notifications', payerNotificationRouter(deps, options));
  // Operators' outbox API. Unauthenticated until the security work lands: bind to a private
  // interface or put it behind the reverse proxy's authentication in the meantime.
  app.use('/admin', operatorRouter({ outbox: deps.store, clock: deps.clock, logger: deps.logger }));
  // CDS Hooks 2.0 (https://cds-hooks.hl7.org/2.0/): the site check at order time, inside the EHR.
  app.use('/cds-services', cdsHooksRouter(options.cds, {
      bodyLimitBytes: options.bodyLimitBytes,
      clientTrust: options.cdsClientTrust,
      ...(options.publicBaseUrl !== undefined ? { publicOrigin: new URL(options.publicBaseUrl).origin } : {}),
    }),);
  app.use((req, res) => {
    res.status(404).type('application/fhir+json').send(JSON.stringify(notFound(`Path ${req.path}`)));
  });
  app.use(fhirErrorHandler(deps.logger));
  return app;
}
