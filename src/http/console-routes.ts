/**
 * The server side of the coordinator console (issue 14); its rows are in the route table
 * (src/http/route-table.ts):
 *
 *   GET /console/...                 the console's static files (built by scripts/build-console.mjs)
 *   GET /console/config.json         what the browser needs to call the API (bases, tenant, thresholds)
 *   GET /fhir/Task/$network-metrics  the network's picture (src/http/operations/network-metrics.ts)
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
import type { OutboxStore, ResourceReader } from '../ports/resource-store.js';
import type { Clock } from '../ports/clock.js';
import type { SiteDirectorySource } from '../directory/rules/site-directory.js';
import type { Logger } from '../logging/logger.js';
import { routerFromTable, type RouteHandlers } from './table-router.js';

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
  /**
   * Where people sign in (OpenID Connect, authorization code with PKCE): the identity provider's
   * issuer (the demo one's depends on the origin the gateway is reached at) and the console's
   * client id there. Absent: no sign-in page (AUTH=off, or a pasted token only).
   */
  signIn?: { issuerAt(gatewayOrigin: string): string; clientId: string; scope: string; demo: boolean };
}

export interface ConsoleDeps {
  store: ResourceReader & OutboxStore;
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
  return function setConsoleHeaders(_req: Request, res: Response, next: NextFunction): void {
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
  | { state: 'up'; httpStatus: number; latencyMs: number; fhirVersion: string }
  | { state: 'degraded'; httpStatus: number; latencyMs: number; problem: string }
  | { state: 'down'; latencyMs: number; problem: string };

/** The FHIR version the gateway speaks to EHRs and payers (https://hl7.org/fhir/R4/versions.html: 4.0.x is R4). */
const R4_VERSION = /^4\.0(\.\d+)?$/;

/**
 * Whether a FHIR server answers: `GET [base]/metadata`, the capabilities interaction every FHIR
 * server supports and serves without credentials (https://hl7.org/fhir/R4/http.html#capabilities).
 * Up means it answered what a FHIR R4 server answers there: 2xx with a CapabilityStatement of FHIR
 * 4.0.x. Any other answer (a 405 or 404 from something that is not a FHIR server at this base, a
 * login page, a 401, a 5xx, another FHIR version) is degraded, with the reason; no answer in time, down.
 */
export async function probeFhirServer(baseUrl: string, options: { timeoutMs: number }): Promise<ProbeResult> {
  const started = performance.now();
  const elapsed = (): number => Math.round(performance.now() - started);
  let response: globalThis.Response;
  let body: unknown;
  try {
    response = await fetch(`${baseUrl.replace(/\/+$/, '')}/metadata`, {
      headers: { accept: 'application/fhir+json' },
      signal: AbortSignal.timeout(options.timeoutMs),
      redirect: 'manual',
    });
    const text = await response.text();
    try {
      body = JSON.parse(text);
    } catch {
      body = undefined;
    }
  } catch (error) {
    const timedOut = (error as Error).name === 'TimeoutError';
    return { state: 'down', latencyMs: elapsed(), problem: timedOut ? `No answer within ${options.timeoutMs} ms` : 'Connection failed' };
  }
  const latencyMs = elapsed();
  const httpStatus = response.status;
  const capability =
    typeof body === 'object' && body !== null && (body as { resourceType?: unknown }).resourceType === 'CapabilityStatement'
      ? (body as { fhirVersion?: unknown })
      : undefined;
  const degraded = (problem: string): ProbeResult => ({ state: 'degraded', httpStatus, latencyMs, problem });
  if (httpStatus >= 500) return degraded(`GET /metadata failed with HTTP ${httpStatus}`);
  if (httpStatus < 200 || httpStatus > 299 || !capability)
    return degraded(`GET /metadata answered HTTP ${httpStatus} without a CapabilityStatement: no FHIR server answers at this base URL`);
  const fhirVersion = typeof capability.fhirVersion === 'string' ? capability.fhirVersion : '';
  if (!R4_VERSION.test(fhirVersion))
    return degraded(`The CapabilityStatement names FHIR ${fhirVersion || '(no version)'}; the gateway speaks FHIR R4 (4.0.1)`);
  return { state: 'up', httpStatus, latencyMs, fhirVersion };
}

async function outboxFigures(outbox: OutboxStore, tenant: string): Promise<Record<string, unknown>> {
  const [pending, dead, delivered] = await Promise.all([
    outbox.listOutboxMessages({ status: 'pending', tenant, count: 1, offset: 0 }),
    outbox.listOutboxMessages({ status: 'dead', tenant, count: 0, offset: 0 }),
    outbox.listOutboxMessages({ status: 'delivered', tenant, count: 0, offset: 0 }),
  ]);
  const lastDelivered =
    delivered.total > 0
      ? await outbox.listOutboxMessages({ status: 'delivered', tenant, count: 1, offset: delivered.total - 1 })
      : undefined;
  const oldest = pending.messages[0];
  return {
    pending: pending.total,
    dead: dead.total,
    delivered: delivered.total,
    ...(oldest
      ? {
          oldestPendingSince: oldest.createdAt,
          oldestPendingAttempts: oldest.attempts,
          ...(oldest.lastError ? { lastError: oldest.lastError } : {}),
        }
      : {}),
    ...(lastDelivered?.messages[0]?.deliveredAt ? { lastDeliveredAt: lastDelivered.messages[0].deliveredAt } : {}),
  };
}

/** The console's rows' named handlers (src/http/route-table.ts). */
export function consoleHandlers(
  deps: ConsoleDeps,
  options: ConsoleRouteOptions,
): Pick<RouteHandlers, 'consoleEntry' | 'consoleConfig' | 'consolePage' | 'connectionHealth'> {
  const staticDir = options.staticDir ?? CONSOLE_BUILD_DIR;
  const indexFile = path.join(staticDir, 'index.html');
  const fhirBase = options.publicBaseUrl !== undefined ? new URL(options.publicBaseUrl).pathname.replace(/\/+$/, '') : '/fhir';

  async function connectionHealth(_req: Request, res: Response): Promise<void> {
    const timeoutMs = options.probeTimeoutMs ?? 3000;
    const connections = await Promise.all(
      options.connections.map(async (target) => {
        const [probe, outbox, organization] = await Promise.all([
          probeFhirServer(target.baseUrl, { timeoutMs }),
          target.kind === 'ehr' ? outboxFigures(deps.store, target.id) : Promise.resolve(undefined),
          target.kind === 'payer'
            ? deps.store.read<Organization>([options.directoryTenant], 'Organization', target.id)
            : Promise.resolve(undefined as Resource | undefined),
        ]);
        const name = (organization as Organization | undefined)?.name;
        return { ...target, ...(name !== undefined ? { name } : {}), probe, ...(outbox ? { outbox } : {}) };
      }),
    );
    sendJson(res, 200, { checkedAt: deps.clock.now().toISOString(), connections });
  }

  const signIn = options.signIn;
  const externalIssuer = signIn !== undefined && !signIn.demo ? new URL(signIn.issuerAt('')).origin : undefined;
  const pageHeaders = consoleHeaders(externalIssuer !== undefined ? [externalIssuer] : []);

  function consoleConfig(req: Request, res: Response): void {
    res.setHeader('Cache-Control', 'no-cache');
    const gatewayOrigin =
      options.publicBaseUrl !== undefined ? new URL(options.publicBaseUrl).origin : `${req.protocol}://${req.get('host') ?? 'localhost'}`;
    sendJson(res, 200, {
      ...(signIn !== undefined
        ? { signIn: { issuer: signIn.issuerAt(gatewayOrigin), clientId: signIn.clientId, scope: signIn.scope, demo: signIn.demo } }
        : {}),
      fhirBase,
      adminBase: '/admin',
      defaultTenant: options.defaultTenant,
      directoryTenant: options.directoryTenant,
      siteTooFarKm: options.siteTooFarKm,
      refreshSeconds: options.refreshSeconds ?? 15,
    });
  }

  // Every path but the files and config.json is a page of the single-page app: the browser routes it (with ids only).
  function consolePage(_req: Request, res: Response): void {
    if (!existsSync(indexFile)) {
      sendOutcome(
        res,
        operationOutcome('unavailable', [
          errorIssue(
            'transient',
            'The console is not built: run `npm run build:console` (npm install does it when development dependencies are installed)',
          ),
        ]),
      );
      return;
    }
    res.setHeader('Cache-Control', 'no-cache');
    res.sendFile(indexFile);
  }

  // `/console` itself: the app's base is `/console/`, so relative asset URLs resolve.
  function consoleEntry(req: Request, res: Response): void {
    if (req.originalUrl === '/console') return res.redirect(301, '/console/');
    consolePage(req, res);
  }

  return {
    connectionHealth: [connectionHealth],
    consoleConfig: [pageHeaders, consoleConfig],
    consolePage: [pageHeaders, consolePage],
    consoleEntry: [pageHeaders, consoleEntry],
  };
}

/** The console's built files (hashed, cached for good): static middleware, before the table's router. */
export function consoleAssets(options: Pick<ConsoleRouteOptions, 'staticDir'>): Router {
  const router = express.Router();
  router.use(
    '/console/assets',
    // Assets are not documents: the CSP's connect-src matters only on the pages above.
    consoleHeaders([]),
    express.static(path.join(options.staticDir ?? CONSOLE_BUILD_DIR, 'assets'), { index: false, immutable: true, maxAge: '365d' }),
    (_req: Request, res: Response) =>
      sendOutcome(
        res,
        operationOutcome('not-found', [errorIssue('not-found', 'No such file of the console; reload the page to get the current version')]),
      ),
  );
  return router;
}

/** The console on its own (its tests serve it alone): its files and the table's console rows. */
export function consoleRoutes(deps: ConsoleDeps, options: ConsoleRouteOptions): Router {
  const router = express.Router();
  router.use(consoleAssets(options));
  router.use(routerFromTable(consoleHandlers(deps, options)));
  return router;
}
