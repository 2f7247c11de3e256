/**
 * Starts a real gateway on 127.0.0.1 and a random port, over a fresh embedded SQLite file or a
 * throwaway PostgreSQL schema, with the demo directory and catalog from fixtures/.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { openStore, type StoreOptions } from '../../src/adapters/store/index.js';
import { loadConfig } from '../../src/config/config.js';
import { buildGateway, type Gateway } from '../../src/gateway.js';
import type { Clock } from '../../src/ports/clock.js';
import { capturingLogger } from './log-capture.js';
import { createPostgresSchema } from './postgres.js';
import type { Role } from '../../src/auth/caller.js';
import { attachTestToken, registerGatewayOrigin, writeTestRegistry } from './test-clients.js';

export type Engine = 'sqlite' | 'postgres';

export interface RunningGateway {
  baseUrl: string;
  gateway: Gateway;
  /** The throwaway PostgreSQL schema (postgres engine only): its application_name finds the gateway's backends; bulk-load tests ANALYZE it. */
  postgresSchema?: string;
  stop(): Promise<void>;
}

/** A clock the test moves: scheduling, reminders and no-shows are tested with literal dates. */
export function movableClock(iso: string): Clock & { set(iso: string): void } {
  let current = new Date(iso);
  return { now: () => new Date(current), set: (next) => (current = new Date(next)) };
}

/** The businessStatus code of a referral Task as the API returned it. */
export const businessStatusOf = (task: any): string => task.businessStatus.coding[0].code;

export async function startGateway(
  options: {
    engine?: Engine;
    env?: Record<string, string>;
    clock?: Clock;
    background?: boolean;
    sqliteFile?: string;
    /** Store limits (pool size, timeouts) and, on postgres, another URL (e.g. a test's TCP proxy). */
    store?: Omit<StoreOptions, 'postgresSchema' | 'sqliteFile'>;
  } = {},
): Promise<RunningGateway> {
  const engine = options.engine ?? 'sqlite';
  const dir = await mkdtemp(path.join(os.tmpdir(), 'gateway-test-'));
  const cleanups: Array<() => Promise<void>> = [() => rm(dir, { recursive: true, force: true })];
  let store;
  let postgresSchema: string | undefined;
  if (engine === 'postgres') {
    const schema = await createPostgresSchema();
    postgresSchema = schema.name;
    cleanups.unshift(schema.drop);
    store = await openStore({ databaseUrl: schema.databaseUrl, ...options.store, postgresSchema: schema.name });
  } else {
    // Test gateways trade the power-cut durability of synchronous=FULL (the product's default,
    // checked in sqlite-store.test.ts) for speed: no test cuts the power, and fsync per commit on a
    // shared disk made the write-heavy suites several times slower.
    store = await openStore({
      sqliteSynchronous: 'normal',
      ...options.store,
      sqliteFile: options.sqliteFile ?? path.join(dir, 'gateway.sqlite'),
    });
  }
  const config = loadConfig({ DATA_DIR: dir, LOG_LEVEL: 'debug', AUTH_CLIENTS: await writeTestRegistry(dir), ...options.env });
  const gateway = await buildGateway(config, {
    logger: capturingLogger(),
    clock: options.clock ?? { now: () => new Date() },
    store,
    softwareVersion: 'test',
  });
  const background = options.background ? gateway.startBackgroundWork() : undefined;
  const server = gateway.app.listen(0, '127.0.0.1');
  await new Promise<void>((resolve) => server.once('listening', () => resolve()));
  const { port } = server.address() as AddressInfo;
  registerGatewayOrigin(`http://127.0.0.1:${port}`);
  return {
    baseUrl: `http://127.0.0.1:${port}`,
    gateway,
    ...(postgresSchema !== undefined ? { postgresSchema } : {}),
    stop: async () => {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
      await background?.stop();
      await gateway.close();
      for (const cleanup of cleanups) await cleanup();
    },
  };
}

/** Polls `check` until it returns true or `timeoutMs` passes; throws with `what` on time-out. */
export async function waitUntil(what: string, check: () => Promise<boolean>, timeoutMs = 20_000, intervalMs = 50): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (await check()) return;
    if (Date.now() > deadline) throw new Error(`Timed out after ${timeoutMs} ms waiting until ${what}`);
    await new Promise((resolve) => setTimeout(resolve, intervalMs));
  }
}

/** fetch with FHIR JSON defaults; returns status, headers and the parsed body (if any). */
export async function fhirFetch(
  url: string,
  init: {
    method?: string;
    body?: unknown;
    headers?: Record<string, string>;
    /** Who calls: a test client (test-clients.ts), 'anonymous' for no token; by default a role the route table allows. */
    as?: { role: Role; tenant?: string; payer?: string } | 'anonymous';
  } = {},
): Promise<{ status: number; headers: Headers; body: any }> {
  const headers: Record<string, string> = { accept: 'application/fhir+json', ...init.headers };
  const method = init.method ?? (init.body === undefined ? 'GET' : 'POST');
  await attachTestToken(url, method, headers, init.as);
  let body: string | undefined;
  if (init.body !== undefined) {
    body = typeof init.body === 'string' ? init.body : JSON.stringify(init.body);
    headers['content-type'] ??= 'application/fhir+json';
  }
  const response = await fetch(url, { method, headers, ...(body !== undefined ? { body } : {}) });
  const text = await response.text();
  return { status: response.status, headers: response.headers, body: text === '' ? undefined : JSON.parse(text) };
}

/** fetch, with a test client's token for a gateway as fhirFetch attaches one (or none for 'anonymous'). */
export async function gatewayFetch(
  url: string,
  init: RequestInit & { as?: { role: Role; tenant?: string; payer?: string } | 'anonymous' } = {},
): Promise<Response> {
  const headers = Object.fromEntries(new Headers(init.headers).entries());
  await attachTestToken(url, init.method ?? 'GET', headers, init.as);
  const { as: _as, ...rest } = init;
  return fetch(url, { ...rest, headers });
}
