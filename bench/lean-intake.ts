/**
 * Intake against its floor, per engine, in one run: POST /fhir/ServiceRequest on the gateway
 * (each request a new order number, so each one a real intake) beside the lean Express + the same
 * generated validator + one INSERT (bench/lean-intake-server.ts) on the same engine, at the same
 * connections. Also SQLite intake with synchronous=NORMAL, to show what durable commits (FULL,
 * the default) cost. The goal (issue 11): intake at least 0.3 of the floor on each engine.
 *
 * `npx tsx bench/lean-intake.ts` runs it alone; `npm run bench` includes it.
 */
import { randomUUID } from 'node:crypto';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import autocannon from 'autocannon';
import { createTestDatabase } from '../test/support/process.js';
import { figures, startChild, stopChild, type CdsLoadFigures } from './cds-hooks.js';

const ROOT = path.resolve(import.meta.dirname, '..');
const DURATION_SECONDS = Number(process.env['BENCH_SECONDS'] ?? 10);
const CONNECTIONS = Number(process.env['BENCH_CONNECTIONS'] ?? 8);
/**
 * Statements one intake sends with the audit trail on (as here), seen by
 * test/use-cases/intake-round-trips.test.ts. PostgreSQL records the whole referral in one
 * data-modifying statement without BEGIN and COMMIT (docs/resilience.md#intake-in-one-statement):
 * 1 round trip. SQLite, in process, one statement per table but the search index, one prepared
 * statement per row (faster there than a multi-row VALUES, docs/resilience.md#sqlite-index-rows):
 * 7, and 14 index rows for the bench's order. Was 11 before issue 11, without audit. These are an
 * intake's statements alone: under this bench's concurrency SQLite intakes share BEGIN and COMMIT,
 * each one that joins a group adding SAVEPOINT and RELEASE (docs/resilience.md#sqlite-group-commit).
 */
export const STATEMENTS_PER_INTAKE = { sqlite: 7 + 14, postgresql: 1 } as const;

export interface LeanIntakeResult {
  durationSeconds: number;
  connections: number;
  statementsPerIntake: typeof STATEMENTS_PER_INTAKE;
  sqlite: { lean: CdsLoadFigures; intake: CdsLoadFigures; intakeSynchronousNormal: CdsLoadFigures; ratio: number; fullToNormal: number };
  postgres?: { lean: CdsLoadFigures; intake: CdsLoadFigures; ratio: number };
}

/** POSTs the template at `url`, each request with a new order number: every one a real intake, never a duplicate. */
export async function intakeLoad(
  url: string,
  template: Record<string, unknown>,
  seconds: number,
  extraHeaders: Record<string, string> = {},
): Promise<autocannon.Result> {
  return autocannon({
    url,
    method: 'POST',
    connections: CONNECTIONS,
    duration: seconds,
    headers: { 'content-type': 'application/fhir+json', accept: 'application/fhir+json', prefer: 'return=minimal', ...extraHeaders },
    requests: [
      {
        setupRequest: (request) => ({
          ...request,
          body: JSON.stringify({ ...template, identifier: [{ ...(template['identifier'] as object[])[0], value: randomUUID() }] }),
        }),
      },
    ],
  });
}

async function measure(args: string[], env: Record<string, string>, template: Record<string, unknown>): Promise<CdsLoadFigures> {
  // Without authentication, like the lean server beside it (bench/run.ts measures the token check apart).
  const server = await startChild(args, { PORT: '0', HOST: '127.0.0.1', LOG_LEVEL: 'info', AUTH: 'off', ...env });
  try {
    const url = `http://127.0.0.1:${server.port}/fhir/ServiceRequest`;
    await intakeLoad(url, template, 2); // warm-up: JIT, caches, connection pool
    return figures(await intakeLoad(url, template, DURATION_SECONDS));
  } finally {
    await stopChild(server.child);
  }
}

/** A database of its own for the run, so that no other bench or test shares its tables; undefined without a server. */
async function createDatabase(): Promise<{ url: string; drop(): Promise<void> } | undefined> {
  try {
    return await createTestDatabase();
  } catch {
    return undefined;
  }
}

const ratio = (a: CdsLoadFigures, b: CdsLoadFigures): number =>
  Number((a.requestsPerSecond.median / b.requestsPerSecond.median).toFixed(3));

export async function benchLeanIntake(): Promise<LeanIntakeResult> {
  const template = JSON.parse(await readFile(path.join(ROOT, 'fixtures/referrals/infliximab/service-request.json'), 'utf8')) as Record<
    string,
    unknown
  >;
  const dir = await mkdtemp(path.join(os.tmpdir(), 'gateway-bench-lean-'));
  const postgres = await createDatabase();
  try {
    const lean = await measure(['bench/lean-intake-server.ts'], { LEAN_SQLITE_FILE: path.join(dir, 'lean.sqlite') }, template);
    const intake = await measure(['src/main.ts'], { DATA_DIR: path.join(dir, 'full') }, template);
    const intakeSynchronousNormal = await measure(
      ['src/main.ts'],
      { DATA_DIR: path.join(dir, 'normal'), SQLITE_SYNCHRONOUS: 'normal' },
      template,
    );
    const result: LeanIntakeResult = {
      durationSeconds: DURATION_SECONDS,
      connections: CONNECTIONS,
      statementsPerIntake: STATEMENTS_PER_INTAKE,
      sqlite: { lean, intake, intakeSynchronousNormal, ratio: ratio(intake, lean), fullToNormal: ratio(intake, intakeSynchronousNormal) },
    };
    if (postgres) {
      const leanPg = await measure(['bench/lean-intake-server.ts'], { LEAN_DATABASE_URL: postgres.url }, template);
      const intakePg = await measure(['src/main.ts'], { DATA_DIR: path.join(dir, 'pg'), DATABASE_URL: postgres.url }, template);
      result.postgres = { lean: leanPg, intake: intakePg, ratio: ratio(intakePg, leanPg) };
    }
    return result;
  } finally {
    await postgres?.drop();
    await rm(dir, { recursive: true, force: true });
  }
}

export function leanIntakeTable(result: LeanIntakeResult): string {
  const line = (name: string, f: CdsLoadFigures): string =>
    `  ${name.padEnd(44)} ${String(f.requestsPerSecond.median).padStart(6)} req/s median, p50 ${f.latencyMs.p50} ms, p99 ${f.latencyMs.p99} ms (${f.non2xx} non-2xx, ${f.errors} errors)`;
  return [
    `intake beside its floor (lean Express + the same validator + one INSERT), ${result.connections} connections, statements per intake: SQLite ${result.statementsPerIntake.sqlite} (7 and one per index row, in process), PostgreSQL ${result.statementsPerIntake.postgresql} (round trip):`,
    line('SQLite floor (synchronous=FULL)', result.sqlite.lean),
    line('SQLite intake (synchronous=FULL, default)', result.sqlite.intake),
    line('SQLite intake (synchronous=NORMAL)', result.sqlite.intakeSynchronousNormal),
    `  SQLite intake / floor: ${result.sqlite.ratio}; FULL / NORMAL: ${result.sqlite.fullToNormal}`,
    ...(result.postgres
      ? [
          line('PostgreSQL floor', result.postgres.lean),
          line('PostgreSQL intake', result.postgres.intake),
          `  PostgreSQL intake / floor: ${result.postgres.ratio}`,
        ]
      : ['  PostgreSQL: skipped (no server at TEST_DATABASE_URL)']),
  ].join('\n');
}

export function leanIntakeFailed(result: LeanIntakeResult): boolean {
  const all = [
    result.sqlite.lean,
    result.sqlite.intake,
    result.sqlite.intakeSynchronousNormal,
    result.postgres?.lean,
    result.postgres?.intake,
  ];
  return all.some((f) => f !== undefined && (f.non2xx > 0 || f.errors > 0));
}

if (process.argv[1] !== undefined && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const result = await benchLeanIntake();
  process.stdout.write(
    `${leanIntakeTable(result)}\n${JSON.stringify({ sqliteRatio: result.sqlite.ratio, postgresRatio: result.postgres?.ratio, fullToNormal: result.sqlite.fullToNormal })}\n`,
  );
  if (leanIntakeFailed(result)) process.exitCode = 1;
}
