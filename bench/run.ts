/**
 * `npm run bench`: intake throughput and latency, beside a bare Express JSON echo measured in the
 * same run on the same machine, so that the ratio (not the absolute figure) is what to compare.
 *
 * Each server runs in its own child process; autocannon drives it from this process over
 * 127.0.0.1. Every intake request carries a new order number, so each one is a real intake
 * (validation, translation, a transaction with the idempotency claim, ServiceRequest and Task).
 * Beside them, the site check (issue 4): its per-call cost against directory size
 * (bench/site-check.ts, in this process) and the CDS Hooks endpoint under load
 * (bench/cds-hooks.ts, beside the same echo fed the hook request). And the coverage step (issue 5):
 * referrals from POST to ready-to-schedule with the stand-in payer on loopback, beside the payer's
 * round trips alone (bench/coverage-step.ts). And scheduling (issue 6): the pure slot search
 * (bench/find-slots.ts) and Appointment/$find and $book over HTTP beside GET /healthz
 * (bench/scheduling.ts). And the coordinator console (issue 14): a queue of 10,000 referrals opened
 * in Chromium beside its API calls alone, and $network-metrics at that volume (bench/console-queue.ts).
 * And searches at volume (issue 11): the coordinator queue, identifier and payer searches and
 * intake at 10,000 and 100,000 stored referrals (1,000,000 with BENCH_VOLUME_MAX=1000000), on
 * both engines, against intake on the empty store (bench/volume.ts).
 * Results go to bench/results/latest.json and a line each to bench/results/history.jsonl.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { appendFile, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import readline from 'node:readline';
import autocannon from 'autocannon';
import pg from 'pg';
import { benchCdsHooks, cdsHooksTable } from './cds-hooks.js';
import { benchCoverageStep, coverageStepTable } from './coverage-step.js';
import { benchSiteCheck, siteCheckTable } from './site-check.js';
import { benchFindSlots } from './find-slots.js';
import { benchScheduling, schedulingTable } from './scheduling.js';
import { benchLeanIntake, intakeLoad as load, leanIntakeFailed, leanIntakeTable } from './lean-intake.js';
import { benchConsoleQueue, consoleQueueTable } from './console-queue.js';
import { benchVolume, volumeTable } from './volume.js';
import { requestToken } from '../src/auth/demo-token.js';

const ROOT = path.resolve(import.meta.dirname, '..');
// The measures below predate authentication (issue 10) and compare with their history: their
// gateways run with AUTH=off; the token check's own cost is measured by intake with and without it.
process.env['AUTH'] ??= 'off';
const DURATION_SECONDS = Number(process.env['BENCH_SECONDS'] ?? 10);
const CONNECTIONS = Number(process.env['BENCH_CONNECTIONS'] ?? 8);
const POSTGRES_URL = process.env['TEST_DATABASE_URL'] ?? 'postgres://postgres@127.0.0.1:5432/test';
const BENCH_DATABASE = 'gateway_bench';

/** A fresh PostgreSQL database for the run (dropped afterwards), or undefined when none answers. */
async function createBenchDatabase(): Promise<{ url: string; drop: () => Promise<void> } | undefined> {
  const admin = new pg.Client({ connectionString: POSTGRES_URL });
  try {
    await admin.connect();
  } catch {
    return undefined;
  }
  await admin.query(`DROP DATABASE IF EXISTS ${BENCH_DATABASE}`);
  await admin.query(`CREATE DATABASE ${BENCH_DATABASE}`);
  await admin.end();
  const url = new URL(POSTGRES_URL);
  url.pathname = `/${BENCH_DATABASE}`;
  return {
    url: url.toString(),
    drop: async () => {
      const client = new pg.Client({ connectionString: POSTGRES_URL });
      await client.connect();
      await client.query(`DROP DATABASE IF EXISTS ${BENCH_DATABASE} WITH (FORCE)`);
      await client.end();
    },
  };
}

interface Figures {
  requestsPerSecond: { mean: number; median: number };
  latencyMs: { p50: number; p90: number; p99: number; max: number };
  requests: number;
  non2xx: number;
  errors: number;
}

async function startChild(args: string[], env: Record<string, string>): Promise<{ child: ChildProcess; port: number }> {
  const child = spawn(process.execPath, ['--import', 'tsx', ...args], {
    cwd: ROOT,
    env: { ...process.env, ...env },
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  const lines = readline.createInterface({ input: child.stdout as NodeJS.ReadableStream });
  const port = await new Promise<number>((resolve, reject) => {
    child.once('exit', (code) => reject(new Error(`${args.join(' ')} exited with ${code} before listening`)));
    lines.on('line', (line) => {
      try {
        const parsed = JSON.parse(line) as { message?: string; port?: number };
        if (parsed.message?.endsWith('listening') && parsed.port) resolve(parsed.port);
      } catch {
        // not a JSON log line
      }
    });
  });
  return { child, port };
}

async function stopChild(child: ChildProcess): Promise<void> {
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  child.kill('SIGTERM');
  await exited;
}

function figures(result: autocannon.Result): Figures {
  return {
    requestsPerSecond: { mean: result.requests.average, median: result.requests.p50 },
    latencyMs: { p50: result.latency.p50, p90: result.latency.p90, p99: result.latency.p99, max: result.latency.max },
    requests: result.requests.total,
    non2xx: result.non2xx,
    errors: result.errors,
  };
}

async function measureIntake(
  template: Record<string, unknown>,
  env: Record<string, string>,
  options: { asClient?: string } = {},
): Promise<Figures> {
  const gateway = await startChild(['src/main.ts'], { PORT: '0', HOST: '127.0.0.1', LOG_LEVEL: 'info', ...env });
  try {
    const url = `http://127.0.0.1:${gateway.port}/fhir/ServiceRequest`;
    // One token (5 minutes) for the whole measure, as a client would reuse it: the cost measured is the check on every request.
    const headers: Record<string, string> =
      options.asClient !== undefined
        ? { authorization: `Bearer ${await requestToken({ origin: `http://127.0.0.1:${gateway.port}`, clientId: options.asClient })}` }
        : {};
    await load(url, template, 2, headers); // warm-up: JIT, caches, connection pool
    return figures(await load(url, template, DURATION_SECONDS, headers));
  } finally {
    await stopChild(gateway.child);
  }
}

const DELIVERY_MESSAGES = Number(process.env['BENCH_DELIVERY_MESSAGES'] ?? 400);

/**
 * Outbox delivery throughput: an API-only gateway (OUTBOX_WORKER=off) takes N referrals, so N
 * write-back messages wait in the outbox; then a gateway with a worker starts on the same store
 * and the clock runs until the stand-in EHR has them all. Beside it, the stand-in EHR's own
 * create rate (autocannon POST Task), the ceiling a delivery can reach.
 */
async function measureDelivery(template: Record<string, unknown>, dataDir: string): Promise<Record<string, unknown>> {
  const ehr = await startChild(['src/sandbox/stand-in-ehr.ts'], { PORT: '0' });
  const ehrBase = `http://127.0.0.1:${ehr.port}/fhir`;
  const env = { DATA_DIR: dataDir, EHR_FHIR_BASE_URL: ehrBase, EHR_POLL: 'false', DIRECTORY_BUNDLE: 'none' };
  try {
    const api = await startChild(['src/main.ts'], { PORT: '0', HOST: '127.0.0.1', LOG_LEVEL: 'info', OUTBOX_WORKER: 'off', ...env });
    const url = `http://127.0.0.1:${api.port}/fhir/ServiceRequest`;
    for (let sent = 0; sent < DELIVERY_MESSAGES; sent += 8) {
      await Promise.all(
        Array.from({ length: Math.min(8, DELIVERY_MESSAGES - sent) }, async () => {
          const body = JSON.stringify({ ...template, identifier: [{ ...(template['identifier'] as object[])[0], value: randomUUID() }] });
          const response = await fetch(url, {
            method: 'POST',
            headers: { 'content-type': 'application/fhir+json', prefer: 'return=minimal' },
            body,
          });
          if (response.status !== 201) throw new Error(`intake answered ${response.status}`);
        }),
      );
    }
    await stopChild(api.child);
    progress(`${DELIVERY_MESSAGES} messages waiting; starting a worker`);

    const worker = await startChild(['src/main.ts'], { PORT: '0', HOST: '127.0.0.1', LOG_LEVEL: 'info', OUTBOX_POLL_MS: '20', ...env });
    // From the moment the worker's process listens: its start-up is not delivery.
    const started = performance.now();
    let delivered = 0;
    while (delivered < DELIVERY_MESSAGES) {
      await new Promise((resolve) => setTimeout(resolve, 100));
      const page = (await (await fetch(`http://127.0.0.1:${worker.port}/admin/outbox?status=delivered&_count=0`)).json()) as {
        total: number;
      };
      delivered = page.total;
      if (performance.now() - started > 300_000) throw new Error(`only ${delivered} of ${DELIVERY_MESSAGES} delivered in 5 minutes`);
    }
    const seconds = (performance.now() - started) / 1000;
    await stopChild(worker.child);

    const ehrCreate = await autocannon({
      url: `${ehrBase}/Task`,
      method: 'POST',
      connections: CONNECTIONS,
      duration: 5,
      headers: { 'content-type': 'application/fhir+json' },
      body: JSON.stringify({ resourceType: 'Task', status: 'requested', intent: 'order' }),
    });
    return {
      messages: DELIVERY_MESSAGES,
      seconds: Number(seconds.toFixed(2)),
      messagesPerSecond: Number((DELIVERY_MESSAGES / seconds).toFixed(1)),
      note: 'timed from the worker process listening until all are delivered (polled every 100 ms); each message is a search and a create in the EHR',
      ehrRawCreatesPerSecondMedian: ehrCreate.requests.p50,
    };
  } finally {
    await stopChild(ehr.child);
  }
}

function progress(message: string): void {
  process.stderr.write(`[bench] ${message}\n`);
}

async function main(): Promise<void> {
  const template = JSON.parse(await readFile(path.join(ROOT, 'fixtures/referrals/infliximab/service-request.json'), 'utf8')) as Record<
    string,
    unknown
  >;
  const dataDir = await mkdtemp(path.join(os.tmpdir(), 'gateway-bench-'));
  const postgres = await createBenchDatabase();
  const echo = await startChild(['bench/echo-server.ts'], {});
  try {
    progress('echo baseline');
    const echoUrl = `http://127.0.0.1:${echo.port}/fhir/ServiceRequest`;
    await load(echoUrl, template, 2);
    const echoResult = figures(await load(echoUrl, template, DURATION_SECONDS));
    progress('intake on SQLite');
    const intakeSqlite = await measureIntake(template, { DATA_DIR: dataDir });
    progress('intake on SQLite with authentication (a Bearer token checked on every request)');
    const authDir = await mkdtemp(path.join(os.tmpdir(), 'gateway-bench-auth-'));
    let intakeSqliteAuth: Figures;
    try {
      intakeSqliteAuth = await measureIntake(template, { DATA_DIR: authDir, AUTH: 'on' }, { asClient: 'demo-ehr' });
    } finally {
      await rm(authDir, { recursive: true, force: true });
    }
    // The audit trail's cost (docs/audit.md): the same authenticated intake with AUDIT=off, in the same run.
    progress('intake on SQLite with authentication and without the audit trail (AUDIT=off)');
    const noAuditDir = await mkdtemp(path.join(os.tmpdir(), 'gateway-bench-noaudit-'));
    let intakeSqliteAuthNoAudit: Figures;
    try {
      intakeSqliteAuthNoAudit = await measureIntake(template, { DATA_DIR: noAuditDir, AUTH: 'on', AUDIT: 'off' }, { asClient: 'demo-ehr' });
    } finally {
      await rm(noAuditDir, { recursive: true, force: true });
    }
    progress('intake on PostgreSQL');
    const intakePostgres = postgres ? await measureIntake(template, { DATA_DIR: dataDir, DATABASE_URL: postgres.url }) : undefined;
    progress('outbox delivery');
    const deliveryDir = await mkdtemp(path.join(os.tmpdir(), 'gateway-bench-delivery-'));
    let delivery: Awaited<ReturnType<typeof measureDelivery>>;
    try {
      delivery = await measureDelivery(template, deliveryDir);
    } finally {
      await rm(deliveryDir, { recursive: true, force: true });
    }
    progress('site check against directory size');
    const siteCheck = await benchSiteCheck();
    progress('CDS Hooks site check');
    const cdsHooks = await benchCdsHooks();
    progress('findSlots (pure scheduling maths)');
    const findSlots = await benchFindSlots();
    progress('coverage step with the stand-in payer');
    const coverageStep = await benchCoverageStep();
    progress('Appointment $find and $book over HTTP');
    const scheduling = await benchScheduling();
    progress('intake beside a lean Express + validator + one INSERT, per engine');
    const leanIntake = await benchLeanIntake();
    progress('the coordinator console on a queue of 10,000 referrals');
    const consoleQueue = await benchConsoleQueue();
    progress('searches and intake at volume, per engine');
    const volume = await benchVolume(progress);
    const ratio = (f: Figures): number => Number((f.requestsPerSecond.median / echoResult.requestsPerSecond.median).toFixed(3));
    const report = {
      date: new Date().toISOString(),
      node: process.version,
      cpus: os.cpus().length,
      durationSeconds: DURATION_SECONDS,
      connections: CONNECTIONS,
      echo: echoResult,
      delivery,
      siteCheck,
      cdsHooks,
      findSlots,
      coverageStep,
      scheduling,
      leanIntake,
      consoleQueue,
      volume,
      intake: {
        sqlite: intakeSqlite,
        sqliteWithAuth: intakeSqliteAuth,
        sqliteWithAuthNoAudit: intakeSqliteAuthNoAudit,
        ...(intakePostgres ? { postgres: intakePostgres } : { postgres: 'skipped: no PostgreSQL at TEST_DATABASE_URL' }),
      },
      ratios: {
        intakeSqliteToEchoMedianRps: ratio(intakeSqlite),
        intakeSqliteWithAuthToEchoMedianRps: ratio(intakeSqliteAuth),
        intakeSqliteWithAuthToWithoutMedianRps: Number(
          (intakeSqliteAuth.requestsPerSecond.median / intakeSqlite.requestsPerSecond.median).toFixed(3),
        ),
        intakeSqliteAuditedToUnauditedMedianRps: Number(
          (intakeSqliteAuth.requestsPerSecond.median / intakeSqliteAuthNoAudit.requestsPerSecond.median).toFixed(3),
        ),
        ...(intakePostgres ? { intakePostgresToEchoMedianRps: ratio(intakePostgres) } : {}),
      },
    };
    await writeFile(path.join(ROOT, 'bench/results/latest.json'), `${JSON.stringify(report, null, 2)}\n`);
    await appendFile(path.join(ROOT, 'bench/results/history.jsonl'), `${JSON.stringify(report)}\n`);
    const line = (name: string, f: Figures): string =>
      `${name} ${f.requestsPerSecond.median} req/s median, p50 ${f.latencyMs.p50} ms, p99 ${f.latencyMs.p99} ms (${f.non2xx} non-2xx, ${f.errors} errors)`;
    process.stdout.write(
      [
        line('echo (baseline):   ', echoResult),
        line('intake, SQLite:    ', intakeSqlite),
        line('intake, SQLite, with auth:', intakeSqliteAuth),
        line('intake, SQLite, with auth, AUDIT=off:', intakeSqliteAuthNoAudit),
        intakePostgres ? line('intake, PostgreSQL:', intakePostgres) : 'intake, PostgreSQL: skipped (no server)',
        `ratios to echo (median req/s): ${JSON.stringify(report.ratios)}`,
        `outbox delivery to the stand-in EHR: ${String(delivery['messagesPerSecond'])} messages/s (${String(delivery['messages'])} in ${String(delivery['seconds'])} s; the EHR alone takes ${String(delivery['ehrRawCreatesPerSecondMedian'])} creates/s)`,
        'site check, per call, against directory size:',
        siteCheckTable(siteCheck),
        'CDS Hooks site check under load:',
        cdsHooksTable(cdsHooks),
        `findSlots, 50 sites x 20 chairs x 60 days: ${JSON.stringify(findSlots['target'])}`,
        'coverage step, stand-in payer on loopback:',
        coverageStepTable(coverageStep),
        'Appointment $find and $book over HTTP:',
        schedulingTable(scheduling),
        leanIntakeTable(leanIntake),
        'coordinator console, queue of 10,000 referrals:',
        consoleQueueTable(consoleQueue),
        'searches and intake at volume:',
        volumeTable(volume),
        'written to bench/results/latest.json',
      ].join('\n') + '\n',
    );
    const failed =
      [intakeSqlite, intakeSqliteAuth, intakeSqliteAuthNoAudit, intakePostgres, cdsHooks.misroute, cdsHooks.good, scheduling.find].some(
        (f) => f && (f.non2xx > 0 || f.errors > 0),
      ) ||
      scheduling.book.refused > 0 ||
      leanIntakeFailed(leanIntake);
    if (failed) process.exitCode = 1;
  } finally {
    await stopChild(echo.child);
    await postgres?.drop();
    await rm(dataDir, { recursive: true, force: true });
  }
}

await main();
