/**
 * A real FHIR R4 server to stand in for an EHR in tests: Medplum's FhirRouter over its
 * MemoryRepository (stand-in-ehr/medplum-fhir.ts) behind a few lines of Express, on 127.0.0.1.
 * It serves create, read, update, search (`_lastUpdated` prefixes, `_sort`, `_count` with `next`
 * links), conditional create (If-None-Exist) and batch/transaction Bundles
 * (https://hl7.org/fhir/R4/http.html), and it breaks on demand so tests can break the EHR:
 *
 * - `refuse`: stops listening (connections refused); listens again on the same port when cleared
 * - `error-500`, `reject-400` (with an OperationOutcome), `throttle-429` (with Retry-After: 1)
 * - `hang`: accepts and never answers (the connection is dropped when the mode is cleared)
 *
 * In-process: `startStandInEhr()`. As its own process (for tests that kill the gateway):
 * `node --import tsx src/sandbox/stand-in-ehr.ts` (PORT, CONTROL_PORT) prints one JSON line
 * `{"message":"stand-in EHR listening","port":N,"baseUrl":"…","controlUrl":"…"}` and answers the
 * control API below on its own port (controlUrl) and on the FHIR port (`/_control/…`, which is
 * down while refusing, hence the separate one):
 *
 *   POST   /_control/fail      {"mode": "hang" | … | null, "count"?: N}  (count: only the next N)
 *   GET    /_control/requests  the request log: [{ method, path, status, query, authorization? }]
 *   DELETE /_control/requests  clears the log
 *   GET    /_control/count?type=Task&identifier=system|value   {"count": n} (any search params)
 *   GET    /_control/state     {"mode", "failNext", "listening"}
 *   POST   /_control/reset     empties the repository and the log, clears failures
 */
import { smartAuthorizationServer, type SmartAuthorizationOptions, type SmartAuthorizationServer } from './smart-authorization-server.js';
import express, { type NextFunction, type Request, type Response } from 'express';
import { standInFailureHandler } from './stand-in-failures.js';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { MemoryRepository } from '@medplum/fhir-router';
import type { Resource } from 'fhir/r4.js';
import type { FhirAnswer, WrittenReferences } from './stand-in-ehr/medplum-fhir.js';

export type FailureMode = 'refuse' | 'error-500' | 'throttle-429' | 'hang' | 'reject-400';
export const FAILURE_MODES: readonly FailureMode[] = ['refuse', 'error-500', 'throttle-429', 'hang', 'reject-400'];

export interface StandInRequest {
  method: string;
  /** The path without its query string, e.g. `/fhir/Task` or `/fhir/Task/123`. */
  path: string;
  /** The HTTP status answered; 0 when the connection was dropped or left unanswered. */
  status: number;
  /** The query string without `?` (empty when none). */
  query: string;
  /** The Authorization header as received, when there was one. */
  authorization?: string;
  /** The If-None-Exist header (conditional create), when there was one. */
  ifNoneExist?: string;
}

/** Runs before a FHIR request is handled (after any failure was applied). */
export type RequestHook = (request: { method: string; path: string; query: string }) => void | Promise<void>;

export interface StandInEhr {
  /** The FHIR R4 base: http://127.0.0.1:<port>/fhir */
  baseUrl: string;
  port: number;
  /** The control API on its own port, reachable while the FHIR port refuses connections. */
  controlUrl: string;
  /** Direct access to the stored resources, for seeding and assertions (Medplum's own types). */
  repo: MemoryRepository;
  /** Stores a resource as it is (the EHR assigns id, versionId and lastUpdated), past any failure mode. */
  seed<T extends Resource>(resource: T): Promise<T & { id: string }>;
  /** How many resources of a type match a search, e.g. `count('Task', { identifier: 'sys|val' })`. */
  count(resourceType: string, params?: Record<string, string>): Promise<number>;
  /** Every reference in every resource clients wrote, resolved here; and the writes refused as invalid (validateResource). */
  resolveWrittenReferences(options?: { exceptTypes?: readonly string[] }): Promise<WrittenReferences>;
  /** Fails every request this way until cleared with `undefined` (which also cancels failNext). */
  failWith(mode: FailureMode | undefined): void;
  /** Fails only the next `count` requests this way (`refuse` drops their connections). */
  failNext(count: number, mode: FailureMode): void;
  /** Resolves once the listener matches the last failWith (closed for refuse, listening otherwise). */
  settled(): Promise<void>;
  /** FHIR requests in the order they ended (answered, dropped, or hung until the client gave up). */
  requests(): StandInRequest[];
  clearRequests(): void;
  /**
   * Lets a test act between two requests, e.g. create the resource a conditional create is about
   * to make, as a concurrent writer would. `undefined` removes it.
   */
  onRequest(hook: RequestHook | undefined): void;
  stop(): Promise<void>;
}

const HOST = '127.0.0.1';

export async function startStandInEhr(
  options: { port?: number; controlPort?: number; requireSmartBackend?: SmartAuthorizationOptions } = {},
): Promise<StandInEhr & { smart?: SmartAuthorizationServer }> {
  let port = options.port ?? 0;
  const { createMedplumFhir, outcomeAnswer } = await loadMedplumFhir();
  const fhir = createMedplumFhir(() => `http://${HOST}:${port}/fhir`);
  const log: StandInRequest[] = [];
  const hung = new Set<Response>();
  let mode: FailureMode | undefined;
  let next: { mode: FailureMode; count: number } | undefined;
  let wantListening = true;
  let closing: Promise<void> = Promise.resolve();
  let transition: Promise<void> = Promise.resolve();
  let stopped = false;
  let hook: RequestHook | undefined;

  const app = express();
  const server = http.createServer(app);
  // Longer than undici's 4 s keep-alive, so an idle pooled connection is never closed under a request.
  server.keepAliveTimeout = 30_000;

  function takeFailure(): FailureMode | undefined {
    if (next && next.count > 0) {
      next.count -= 1;
      const taken = next.mode;
      if (next.count === 0) next = undefined;
      return taken;
    }
    return mode;
  }

  function releaseHung(): void {
    for (const res of hung) res.socket?.destroy();
    hung.clear();
  }

  function stopListening(): void {
    if (!server.listening) return;
    closing = new Promise<void>((resolve) => server.close(() => resolve()));
    // Pooled keep-alive connections would otherwise still reach us: an EHR that is down drops them.
    server.closeAllConnections();
  }

  function startListening(): void {
    transition = transition
      .then(async () => {
        await closing;
        if (!wantListening || stopped || server.listening) return;
        await listen(server, port);
        // Told to refuse again while the listener was coming up.
        if (!wantListening || stopped) stopListening();
      })
      .catch((err: unknown) => {
        process.emitWarning(`stand-in EHR could not listen again on port ${port}: ${String(err)}`);
      });
  }

  function failWith(newMode: FailureMode | undefined): void {
    mode = newMode;
    next = undefined;
    if (newMode !== 'hang') releaseHung();
    wantListening = newMode !== 'refuse';
    if (wantListening) startListening();
    else stopListening();
  }

  function failNext(count: number, failMode: FailureMode): void {
    if (!Number.isInteger(count) || count < 0) throw new Error(`failNext needs a count of 0 or more, not ${count}`);
    next = count > 0 ? { mode: failMode, count } : undefined;
  }

  const settled = async (): Promise<void> => {
    await closing;
    await transition;
  };

  // Control API: on the FHIR server and on a port of its own.
  const controls = {
    failWith,
    failNext,
    settled,
    count: fhir.count,
    requests: () => log.map((entry) => ({ ...entry })),
    clearRequests: () => void log.splice(0),
    state: () => ({ mode: mode ?? null, failNext: next ?? null, listening: server.listening }),
    reset: () => {
      fhir.repo.clear();
      log.splice(0);
      failWith(undefined);
    },
  };
  app.use('/_control', controlRouter(controls, { onFhirPort: true }));
  // SMART Backend Services: discovery and token endpoint, then no FHIR request without a live token.
  const smart = options.requireSmartBackend
    ? smartAuthorizationServer({ ...options.requireSmartBackend, fhirPath: '/fhir', origin: () => `http://${HOST}:${port}` })
    : undefined;
  if (smart) app.use(smart.router);

  app.use('/fhir', (req: Request, res: Response, nextHandler: NextFunction) => {
    const url = new URL(req.originalUrl, 'http://stand-in.invalid');
    res.on('close', () => {
      const entry: StandInRequest = {
        method: req.method,
        path: url.pathname,
        status: res.writableFinished ? res.statusCode : 0,
        query: url.search.slice(1),
      };
      if (req.headers.authorization !== undefined) entry.authorization = req.headers.authorization;
      const ifNoneExist = req.headers['if-none-exist'];
      if (typeof ifNoneExist === 'string') entry.ifNoneExist = ifNoneExist;
      log.push(entry);
    });
    const failure = takeFailure();
    switch (failure) {
      case undefined:
        if (smart) smart.requireToken(req, res, nextHandler);
        else nextHandler();
        return;
      case 'refuse':
        // A request that arrives anyway (failNext, or on a connection opened before the close).
        req.socket.destroy();
        return;
      case 'hang':
        hung.add(res);
        res.on('close', () => hung.delete(res));
        return;
      case 'error-500':
        send(res, outcomeAnswer(500, 'exception', 'The stand-in EHR was told to fail with 500'));
        return;
      case 'throttle-429':
        send(res, { ...outcomeAnswer(429, 'throttled', 'The stand-in EHR was told to throttle'), headers: { 'retry-after': '1' } });
        return;
      case 'reject-400': {
        const resourceType = url.pathname.split('/').filter(Boolean)[1] ?? 'Bundle';
        send(res, outcomeAnswer(400, 'invalid', 'The stand-in EHR was told to reject this request', resourceType));
        return;
      }
    }
  });
  app.use(
    '/fhir',
    express.json({ type: ['application/json', 'application/fhir+json', 'application/json-patch+json'], limit: '50mb' }),
    express.urlencoded({ extended: false }),
    async (req: Request, res: Response) => {
      if (hook) {
        const url = new URL(req.originalUrl, 'http://stand-in.invalid');
        await hook({ method: req.method, path: url.pathname, query: url.search.slice(1) });
      }
      const answer = await fhir.handle({ method: req.method, path: req.url, body: req.body, headers: req.headers });
      send(res, answer);
    },
  );
  app.use((_req: Request, res: Response) => send(res, outcomeAnswer(404, 'not-found', 'Not a FHIR or control path of the stand-in EHR')));
  app.use(
    standInFailureHandler('The stand-in EHR failed', (res, status, code, diagnostics) =>
      send(res, outcomeAnswer(status, code, diagnostics)),
    ),
  );

  await listen(server, port);
  port = (server.address() as AddressInfo).port;

  const controlApp = express();
  controlApp.use('/_control', controlRouter(controls, { onFhirPort: false }));
  const controlServer = http.createServer(controlApp);
  await listen(controlServer, options.controlPort ?? 0);
  const controlPort = (controlServer.address() as AddressInfo).port;

  return {
    ...(smart ? { smart } : {}),
    baseUrl: `http://${HOST}:${port}/fhir`,
    port,
    controlUrl: `http://${HOST}:${controlPort}/_control`,
    repo: fhir.repo,
    seed: fhir.seed,
    count: fhir.count,
    resolveWrittenReferences: fhir.resolveWrittenReferences,
    failWith,
    failNext,
    settled,
    requests: () => log.map((entry) => ({ ...entry })),
    clearRequests: () => void log.splice(0),
    onRequest: (newHook) => {
      hook = newHook;
    },
    stop: async () => {
      if (stopped) return;
      stopped = true;
      wantListening = false;
      releaseHung();
      stopListening();
      await settled();
      const controlClosed = new Promise<void>((resolve) => controlServer.close(() => resolve()));
      controlServer.closeAllConnections();
      await controlClosed;
    },
  };
}

/** The stand-in EHR needs Medplum, not installed without devDependencies (npm ci --omit=dev). */
export class StandInEhrUnavailableError extends Error {}

/**
 * Medplum's FHIR server (with its ~100 MB of R4 definitions) is a development dependency: loaded
 * here, when a stand-in EHR starts (tests, bench, the sandbox from a clone), never by the gateway
 * itself, so a production install without devDependencies runs without it.
 */
async function loadMedplumFhir(): Promise<typeof import('./stand-in-ehr/medplum-fhir.js')> {
  try {
    return await import('./stand-in-ehr/medplum-fhir.js');
  } catch (cause) {
    if ((cause as { code?: string }).code !== 'ERR_MODULE_NOT_FOUND') throw cause;
    throw new StandInEhrUnavailableError(
      'The stand-in EHR runs on Medplum (@medplum/fhir-router), a development dependency: run `npm install` without --omit=dev',
      { cause },
    );
  }
}

function send(res: Response, answer: FhirAnswer): void {
  res.status(answer.status);
  for (const [name, value] of Object.entries(answer.headers)) res.setHeader(name, value);
  res.setHeader('content-type', 'application/fhir+json; charset=utf-8');
  res.end(JSON.stringify(answer.body));
}

function listen(server: http.Server, port: number): Promise<void> {
  return new Promise<void>((resolve, reject) => {
    const onError = (err: Error): void => reject(err);
    server.once('error', onError);
    server.listen(port, HOST, () => {
      server.off('error', onError);
      resolve();
    });
  });
}

interface Controls {
  failWith(mode: FailureMode | undefined): void;
  failNext(count: number, mode: FailureMode): void;
  settled(): Promise<void>;
  count(resourceType: string, params?: Record<string, string>): Promise<number>;
  requests(): StandInRequest[];
  clearRequests(): void;
  state(): Record<string, unknown>;
  reset(): void;
}

function controlRouter(ehr: Controls, where: { onFhirPort: boolean }): express.Router {
  const router = express.Router();
  router.use(express.json({ type: ['application/json', 'application/fhir+json'] }));
  router.post('/fail', async (req: Request, res: Response) => {
    const body = (req.body ?? {}) as { mode?: unknown; count?: unknown };
    const mode = body.mode ?? undefined;
    if (mode !== undefined && !FAILURE_MODES.includes(mode as FailureMode)) {
      res.status(400).json({ error: `mode must be one of ${FAILURE_MODES.join(', ')} or null` });
      return;
    }
    if (body.count !== undefined) {
      if (mode === undefined || typeof body.count !== 'number' || !Number.isInteger(body.count) || body.count < 0) {
        res.status(400).json({ error: 'count needs a mode and a whole number of 0 or more' });
        return;
      }
      ehr.failNext(body.count, mode as FailureMode);
      res.status(200).json(ehr.state());
      return;
    }
    if (mode === 'refuse' && where.onFhirPort) {
      // Answer first: refusing drops every connection to the FHIR port, this one included.
      res.on('finish', () => ehr.failWith('refuse'));
      res.status(202).json({ mode });
      return;
    }
    ehr.failWith(mode as FailureMode | undefined);
    await ehr.settled();
    res.status(200).json(ehr.state());
  });
  router.get('/requests', (_req: Request, res: Response) => {
    res.json(ehr.requests());
  });
  router.delete('/requests', (_req: Request, res: Response) => {
    ehr.clearRequests();
    res.status(204).end();
  });
  router.get('/count', async (req: Request, res: Response) => {
    const params: Record<string, string> = {};
    for (const [name, value] of Object.entries(req.query)) {
      if (name !== 'type' && typeof value === 'string') params[name] = value;
    }
    const type = req.query['type'];
    if (typeof type !== 'string' || !/^[A-Z][A-Za-z]+$/.test(type)) {
      res.status(400).json({ error: 'type=<ResourceType> is required' });
      return;
    }
    res.json({ count: await ehr.count(type, params) });
  });
  router.get('/state', (_req: Request, res: Response) => {
    res.json(ehr.state());
  });
  router.post('/reset', async (_req: Request, res: Response) => {
    ehr.reset();
    await ehr.settled();
    res.status(204).end();
  });
  return router;
}

const isMain = process.argv[1] !== undefined && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url);
if (isMain) {
  const ehr = await startStandInEhr({ port: Number(process.env['PORT'] ?? 0), controlPort: Number(process.env['CONTROL_PORT'] ?? 0) });
  process.stdout.write(
    `${JSON.stringify({ message: 'stand-in EHR listening', port: ehr.port, baseUrl: ehr.baseUrl, controlUrl: ehr.controlUrl })}\n`,
  );
  const shutdown = (): void => {
    void ehr.stop().then(() => process.exit(0));
  };
  process.once('SIGTERM', shutdown);
  process.once('SIGINT', shutdown);
}
