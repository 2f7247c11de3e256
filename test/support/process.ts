/**
 * The gateway as a real child process (`node --import tsx src/main.ts`, or the compiled
 * `dist/main.js` that `npm start` runs), for tests that kill it,
 * restart it, or run several against one database.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import path from 'node:path';
import readline from 'node:readline';
import pg from 'pg';
import { randomUUID } from 'node:crypto';
import { registerGatewayOrigin, sharedTestRegistry } from './test-clients.js';

const ROOT = path.resolve(import.meta.dirname, '../..');
/** The test clients' registry (test-clients.ts), for gateways run as processes. */
const TEST_REGISTRY = await sharedTestRegistry();

export interface GatewayProcess {
  child: ChildProcess;
  /** Every line it printed, stdout and stderr. */
  lines: string[];
  /** Resolves with the port once it logs that it listens. */
  listening: Promise<number>;
  exited: Promise<number | null>;
}

export interface GatewayProcessOptions {
  /** Run what `npm start` runs, the compiled dist/main.js (see buildCompiledGateway), instead of src/ through tsx. */
  compiled?: boolean;
}

/** Compiles src/ to dist/ when a source changed since the last build, as `npm start` does first. */
export function buildCompiledGateway(): void {
  const result = spawnSync(process.execPath, ['scripts/build-server.mjs', '--if-stale'], { cwd: ROOT, encoding: 'utf8' });
  if (result.status !== 0) throw new Error(`build-server failed: ${result.stdout}${result.stderr}`);
}

export function startGatewayProcess(env: Record<string, string>, options: GatewayProcessOptions = {}): GatewayProcess {
  const entry = options.compiled ? ['--enable-source-maps', 'dist/main.js'] : ['--import', 'tsx', 'src/main.ts'];
  const child = spawn(process.execPath, entry, {
    cwd: ROOT,
    env: { ...process.env, LOG_LEVEL: 'info', AUTH_CLIENTS: TEST_REGISTRY, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const lines: string[] = [];
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  const listening = new Promise<number>((resolve, reject) => {
    void exited.then((code) => reject(new Error(`gateway exited with ${code}: ${lines.slice(-20).join('\n')}`)));
    for (const stream of [child.stdout, child.stderr]) {
      readline.createInterface({ input: stream as NodeJS.ReadableStream }).on('line', (line) => {
        lines.push(line);
        try {
          const parsed = JSON.parse(line) as { message?: string; port?: number };
          if (parsed.message === 'gateway listening' && parsed.port) {
            registerGatewayOrigin(`http://127.0.0.1:${parsed.port}`);
            resolve(parsed.port);
          }
        } catch {
          // a plain-text line
        }
      });
    }
  });
  listening.catch(() => undefined);
  return { child, lines, listening, exited };
}

/** The parsed JSON log lines of a process whose message is `message`. */
export function logEvents(processLines: readonly string[], message: string): Array<Record<string, unknown>> {
  return processLines
    .map((line) => {
      try {
        return JSON.parse(line) as Record<string, unknown>;
      } catch {
        return undefined;
      }
    })
    .filter((event): event is Record<string, unknown> => event?.['message'] === message);
}

const ADMIN_URL = process.env['TEST_DATABASE_URL'] ?? 'postgres://postgres@127.0.0.1:5432/test';

/** A fresh PostgreSQL database for processes to share (a schema would need a search_path per process). */
export async function createTestDatabase(): Promise<{ url: string; drop(): Promise<void> }> {
  const name = `gw_proc_${randomUUID().replace(/-/g, '').slice(0, 12)}`;
  const admin = new pg.Client({ connectionString: ADMIN_URL });
  await admin.connect();
  await admin.query(`CREATE DATABASE ${name}`);
  await admin.end();
  const url = new URL(ADMIN_URL);
  url.pathname = `/${name}`;
  return {
    url: url.toString(),
    drop: async () => {
      const client = new pg.Client({ connectionString: ADMIN_URL });
      await client.connect();
      await client.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
      await client.end();
    },
  };
}
