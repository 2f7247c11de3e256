/**
 * The server side of the coordinator console (issue 14), in one place so that it moves into the
 * route table as a whole:
 *
 *   GET /console/...                 the console's static files (built by scripts/build-console.mjs)
 *   GET /console/config.json         what the browser needs to call the API (bases, tenant, thresholds)
 *   GET /fhir/Task/$network-metrics  the network's picture as a MeasureReport (read-only operation)
 *   GET /admin/connections           connection health of each EHR and payer, for operators
 *
 * The console itself only calls the gateway's FHIR and operator APIs, so it can do nothing those
 * would refuse. The static files carry no patient data; the pages are routed in the browser with
 * ids only, so no PHI reaches a URL, and this file logs nothing about a request.
 */
import { existsSync } from 'node:fs';
import path from 'node:path';
import express, { type NextFunction, type Request, type Response, type Router } from 'express';
import type { OperationOutcome, Organization, Resource } from 'fhir/r4.js';
import { errorIssue, operationOutcome, statusOf } from '../fhir/outcomes.js';
import type { NetworkMetricsReader, OutboxStore, ResourceReader } from '../ports/resource-store.js';
import type { Clock } from '../ports/clock.js';
import type { SiteDirectorySource } from '../domain/site-directory.js';
import { reportNetworkMetrics } from '../use-cases/network-metrics.js';
import type { Logger } from '../logging/logger.js';
import { fhirJsonBody, negotiate } from './routes.js';

/** Where `npm install` builds the console (scripts/build-console.mjs). */
export const CONSOLE_BUILD_DIR = path.resolve(import.meta.dirname, '../../generated/console');

export interface ConnectionTarget {
  /** An EHR (by the tenant it serves) or a payer (by its directory Organization id). */
  kind: 'ehr' | 'payer';
  id: string;
  baseUrl: string;
  /** EHRs: whether the gateway pulls referrals from it. */
  poll?: boolean;
}

export interface ConsoleRouteOptions {
  staticDir?: string;
  defaultTenant: string;
  directoryTenant: string;
  siteTooFarKm: number;
  /** The FHIR base as clients see it (PUBLIC_BASE_URL), when configured: the console uses its path. */
  publicBaseUrl?: string;
  connections: readonly ConnectionTarget[];
  /** How long a connection probe waits for an answer. */
  probeTimeoutMs?: number;
  /** How often the console's queues refresh themselves. */
  refreshSeconds?: number;
  /** The FHIR JSON body limits, for $network-metrics invoked with POST. */
  body: { bodyLimitBytes: number; jsonMaxDepth: number };
  /**
   * Where people sign in (OpenID Connect, authorization code with PKCE): the identity provider's
   * issuer (the demo one's depends on the origin the gateway is reached at) and the console's
   * client id there. Absent: no sign-in page (AUTH=off, or a pasted token only).
   */
  signIn?: { issuerAt(gatewayOrigin: string): string; clientId: string; scope: string; demo: boolean };
}

export interface ConsoleDeps {
  store: ResourceReader & OutboxStore & NetworkMetricsReader;
  clock: Clock;
  sites: SiteDirectorySource;
  logger: Logger;
}

function sendJson(res: Response, status: number, body: unknown, mediaType = 'application/json'): void {
  res.status(status).type(mediaType).send(JSON.stringify(body));
}

function sendOutcome(res: Response, outcome: OperationOutcome): void {
  sendJson(res, statusOf(outcome), outcome, 'application/fhir+json');
}

/**
 * Headers for the console's pages: scripts and styles only from this origin (the build bundles
 * everything), no framing, no referrer (a URL never leaves the page), no caching of index.html
 * (a new build is picked up at once; the hashed assets are cached for good).
 */
function consoleHeaders(connectTo: readonly string[]) {
  // The identity provider's origin, when it is another: the console reads its discovery document
  // and redeems the code at its token endpoint (https://openid.net/specs/openid-connect-discovery-1_0.html).
  const connectSrc = ["'self'", ...connectTo].join(' ');
  return (_req: Request, res: Response, next: NextFunction): void => {
    res.setHeader(
      'Content-Security-Policy',
      `default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src ${connectSrc}; font-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'`,
    );
    setPageHeaders(res);
    next();
  };
}

function setPageHeaders(res: Response): void {
  res.setHeader('Referrer-Policy', 'no-referrer');
  res.setHeader('X-Content-Type-Options', 'nosniff');
  res.setHeader('X-Frame-Options', 'DENY');
  res.setHeader('Cross-Origin-Opener-Policy', 'same-origin');
  res.setHeader('Permissions-Policy', 'geolocation=(), camera=(), microphone=()');
}

export type ProbeResult =
  | { state: 'up' | 'degraded'; httpStatus: number; latencyMs: number }
  | { state: 'down'; latencyMs: number; problem: string };

/**
 * Whether a FHIR server answers: `GET [base]/metadata` (public by the FHIR specification,
 * https://hl7.org/fhir/R4/http.html#capabilities), without credentials. Any answer below 500 means
 * it is up; 5xx degraded; no answer in time, down.
 */
export async function probeFhirServer(baseUrl: string, options: { timeoutMs: number }): Promise<ProbeResult> {
  const started = performance.now();
  try {
    const response = await fetch(`${baseUrl.replace(/\/+$/, '')}/metadata`, {
      headers: { accept: 'application/fhir+json' },
      signal: AbortSignal.timeout(options.timeoutMs),
      redirect: 'manual',
    });
    await response.body?.cancel();
    const latencyMs = Math.round(performance.now() - started);
    return { state: response.status >= 500 ? 'degraded' : 'up', httpStatus: response.status, latencyMs };
  } catch (error) {
    const latencyMs = Math.round(performance.now() - started);
    const timedOut = (error as Error).name === 'TimeoutError';
    return { state: 'down', latencyMs, problem: timedOut ? `No answer within ${options.timeoutMs} ms` : 'Connection failed' };
  }
}

async function outboxFigures(outbox: OutboxStore, tenant: string): Promise<Record<string, unknown>> {
  const [pending, dead, delivered] = await Promise.all([
    outbox.listOutboxMessages({ status: 'pending', tenant, count: 1, offset: 0 }),
    outbox.listOutboxMessages({ status: 'dead', tenant, count: 0, offset: 0 }),
    outbox.listOutboxMessages({ status: 'delivered', tenant, count: 0, offset: 0 }),
  ]);
  const lastDelivered = delivered.total > 0 ? await outbox.listOutboxMessages({ status: 'delivered', tenant, count: 1, offset: delivered.total - 1 }) : undefined;
  const oldest = pending.messages[0];
  return {
    pending: pending.total,
    dead: dead.total,
    delivered: delivered.total,
    ...(oldest ? { oldestPendingSince: oldest.createdAt, oldestPendingAttempts: oldest.attempts, ...(oldest.lastError ? { lastError: oldest.lastError } : {}) } : {}),
    ...(lastDelivered?.messages[0]?.deliveredAt ? { lastDeliveredAt: lastDelivered.messages[0].deliveredAt } : {}),
  };
}

/** A Parameters body of primitive values as the name/value pairs a query would carry. */
function parametersAsQuery(body: unknown): Array<[string, string]> | { outcome: OperationOutcome } {
  const parameters = body as { resourceType?: unknown; parameter?: unknown } | null;
  if (typeof parameters !== 'object' || parameters === null || parameters.resourceType !== 'Parameters') {
    return { outcome: operationOutcome('bad-request', [errorIssue('invalid', 'The body of $network-metrics must be a Parameters resource', 'resourceType')]) };
  }
  const pairs: Array<[string, string]> = [];
  const entries = Array.isArray(parameters.parameter) ? (parameters.parameter as Array<Record<string, unknown>>) : [];
  for (const [index, entry] of entries.entries()) {
    const valueKey = Object.keys(entry).find((key) => key.startsWith('value'));
    const value = valueKey === undefined ? undefined : entry[valueKey];
    if (typeof entry['name'] !== 'string' || (typeof value !== 'string' && typeof value !== 'number' && typeof value !== 'boolean')) {
      return { outcome: operationOutcome('bad-request', [errorIssue('invalid', 'Each parameter of $network-metrics has a name and a primitive value', `Parameters.parameter[${index}]`)]) };
    }
    pairs.push([entry['name'], String(value)]);
  }
  return pairs;
}

export function consoleRoutes(deps: ConsoleDeps, options: ConsoleRouteOptions): Router {
  const router = express.Router();
  const staticDir = options.staticDir ?? CONSOLE_BUILD_DIR;
  const indexFile = path.join(staticDir, 'index.html');
  const fhirBase = options.publicBaseUrl !== undefined ? new URL(options.publicBaseUrl).pathname.replace(/\/+$/, '') : '/fhir';

  // GET with query parameters, or POST with a Parameters body: an operation without side effects
  // takes both (https://hl7.org/fhir/R4/operations.html#request).
  const networkMetrics = async (req: Request, res: Response): Promise<void> => {
    res.locals['route'] = '/fhir/Task/$network-metrics';
    res.locals['resourceType'] = 'Task';
    const url = new URL(req.originalUrl, 'http://placeholder');
    const query = req.method === 'POST' ? parametersAsQuery(req.body) : [...url.searchParams.entries()];
    if ('outcome' in query) return sendOutcome(res, query.outcome);
    const result = await reportNetworkMetrics(deps, { tenant: String(res.locals['tenant']), query });
    if (result.kind === 'refused') return sendOutcome(res, result.outcome);
    sendJson(res, 200, result.report, String(res.locals['mediaType'] ?? 'application/fhir+json'));
  };
  router.get('/fhir/Task/$network-metrics', negotiate, networkMetrics);
  router.post('/fhir/Task/$network-metrics', negotiate, fhirJsonBody(options.body), networkMetrics);

  router.get('/admin/connections', async (_req: Request, res: Response) => {
    res.locals['route'] = '/admin/connections';
    const timeoutMs = options.probeTimeoutMs ?? 3000;
    const connections = await Promise.all(
      options.connections.map(async (target) => {
        const [probe, outbox, organization] = await Promise.all([
          probeFhirServer(target.baseUrl, { timeoutMs }),
          target.kind === 'ehr' ? outboxFigures(deps.store, target.id) : Promise.resolve(undefined),
          target.kind === 'payer' ? deps.store.read<Organization>([options.directoryTenant], 'Organization', target.id) : Promise.resolve(undefined as Resource | undefined),
        ]);
        const name = (organization as Organization | undefined)?.name;
        return { ...target, ...(name !== undefined ? { name } : {}), probe, ...(outbox ? { outbox } : {}) };
      }),
    );
    sendJson(res, 200, { checkedAt: deps.clock.now().toISOString(), connections });
  });

  const pages = express.Router();
  const signIn = options.signIn;
  const externalIssuer = signIn !== undefined && !signIn.demo ? new URL(signIn.issuerAt('')).origin : undefined;
  pages.use(consoleHeaders(externalIssuer !== undefined ? [externalIssuer] : []));
  pages.get('/config.json', (req: Request, res: Response) => {
    res.setHeader('Cache-Control', 'no-cache');
    const gatewayOrigin = options.publicBaseUrl !== undefined ? new URL(options.publicBaseUrl).origin : `${req.protocol}://${req.get('host') ?? 'localhost'}`;
    sendJson(res, 200, {
      ...(signIn !== undefined ? { signIn: { issuer: signIn.issuerAt(gatewayOrigin), clientId: signIn.clientId, scope: signIn.scope, demo: signIn.demo } } : {}),
      fhirBase,
      adminBase: '/admin',
      defaultTenant: options.defaultTenant,
      directoryTenant: options.directoryTenant,
      siteTooFarKm: options.siteTooFarKm,
      refreshSeconds: options.refreshSeconds ?? 15,
    });
  });
  pages.use(
    '/assets',
    express.static(path.join(staticDir, 'assets'), { index: false, immutable: true, maxAge: '365d' }),
    (_req: Request, res: Response) => sendOutcome(res, operationOutcome('not-found', [errorIssue('not-found', 'No such file of the console; reload the page to get the current version')])),
  );
  // Every other path is a page of the single-page app: the browser routes it (with ids only).
  pages.get('/{*page}', (_req: Request, res: Response) => {
    if (!existsSync(indexFile)) {
      sendOutcome(res, operationOutcome('unavailable', [errorIssue('transient', 'The console is not built: run `npm run build:console` (npm install does it when development dependencies are installed)')]));
      return;
    }
    res.setHeader('Cache-Control', 'no-cache');
    res.sendFile(indexFile);
  });
  router.use('/console', (req: Request, res: Response, next: NextFunction) => {
    res.locals['route'] = '/console';
    // `/console` itself: the app's base is `/console/`, so relative asset URLs resolve.
    if (req.originalUrl === '/console') return res.redirect(301, '/console/');
    next();
  }, pages);
  return router;
}
