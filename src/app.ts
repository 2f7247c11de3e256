/**
 * createApp: the Express application, without listen(): main.ts listens on PORT, tests on port 0.
 */
import express, { type Express } from 'express';
import type { Task } from 'fhir/r4.js';
import { notFound } from './fhir/outcomes.js';
import { fhirErrorHandler, requestContext } from './http/routes.js';
import { cdsHooksErrors } from './http/cds-hooks-routes.js';
import { consoleAssets } from './http/console-routes.js';
import { createRouteHandlers } from './http/route-handlers.js';
import { tableRouter } from './http/table-router.js';
import { refuseForbiddenUrlCharacters } from './http/url-rules.js';
import { authorizeRequests } from './auth/authorize.js';
import { auditRequests } from './http/audit-requests.js';
import { payersOfReferralTask } from './auth/payer-reach.js';
import type { GatewayDeps } from './ports/gateway-deps.js';
import type { AppOptions } from './http/app-options.js';

export function createApp(deps: GatewayDeps, options: AppOptions): Express {
  const app = express();
  app.disable('x-powered-by');
  app.set('trust proxy', false);
  app.set('query parser', 'simple');

  app.use(requestContext(deps.logger, options.defaultTenant));
  // Before any route reads a path segment or parameter: both engines then see the same input.
  app.use(refuseForbiddenUrlCharacters((res, outcome) => res.status(400).type('application/fhir+json').send(JSON.stringify(outcome))));
  // The audit trail (docs/audit.md): before authorization, so that refusals are recorded too.
  if (options.audit) app.use(auditRequests({ trail: deps.store, clock: deps.clock, logger: deps.logger }));
  // The route table decides who may call what, before any handler (src/http/route-table.ts).
  app.use(
    authorizeRequests({
      service: options.auth,
      logger: deps.logger,
      defaultTenant: options.defaultTenant,
      directoryTenant: deps.tenancy.directoryTenant,
    }),
  );
  app.use(consoleAssets(options.console));
  // Every route: one per row of the route table, answered by the row's named handler.
  app.use(
    tableRouter(
      createRouteHandlers(deps, { ...options, taskPayers: (tenant, task) => payersOfReferralTask(deps.store, tenant, task as Task) }),
    ),
  );
  // CDS Hooks 2.0 (https://cds-hooks.hl7.org/2.0/) answers its body errors in its own JSON.
  app.use('/cds-services', cdsHooksErrors(options.cds, { bodyLimitBytes: options.bodyLimitBytes }));
  app.use((req, res) => {
    res
      .status(404)
      .type('application/fhir+json')
      .send(JSON.stringify(notFound(`Path ${req.path}`)));
  });
  app.use(fhirErrorHandler(deps.logger));
  return app;
}
