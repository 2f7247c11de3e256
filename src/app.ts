/**
 * createApp: the Express application, without listen(): main.ts listens on PORT, tests on port 0.
 */
import express, { type Express } from 'express';
import type { CapabilityStatement } from 'fhir/r4.js';
import { notFound, unavailable } from './fhir/outcomes.js';
import { createFhirHandlers, type ConformanceResources } from './http/fhir-handlers.js';
import { fhirErrorHandler, fhirRouter, requestContext, type HttpOptions } from './http/routes.js';
import type { GatewayDeps } from './use-cases/deps.js';

export interface AppOptions extends HttpOptions {
  capabilityStatement: CapabilityStatement;
  conformance: ConformanceResources;
}

export function createApp(deps: GatewayDeps, options: AppOptions): Express {
  const app = express();
  app.disable('x-powered-by');
  app.set('trust proxy', false);
  app.set('query parser', 'simple');

  app.get('/healthz', (_req, res) => {
    res.json({ status: 'ok' });
  });
  app.get('/readyz', async (_req, res) => {
    try {
      await deps.store.ping();
      res.json({ status: 'ready' });
    } catch {
      deps.logger.warn('readiness check failed: database unreachable');
      res.status(503).type('application/fhir+json').send(JSON.stringify(unavailable('The database is not reachable')));
    }
  });

  app.use(requestContext(deps.logger, options.defaultTenant));
  app.use('/fhir', fhirRouter(createFhirHandlers(deps, options.capabilityStatement, options.conformance), options));
  app.use((req, res) => {
    res.status(404).type('application/fhir+json').send(JSON.stringify(notFound(`Path ${req.path}`)));
  });
  app.use(fhirErrorHandler(deps.logger));
  return app;
}
