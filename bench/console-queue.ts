/**
 * The coordinator console on a queue of 10,000 referrals (issue 14, "opens in under a second"):
 * the referrals are stored straight into a PostgreSQL store (test/support/referral-volume.ts) and
 * its schema analysed, as autovacuum would have done on a store that grew to this size (without
 * statistics PostgreSQL plans the search index's joins blind), a gateway serves them on 127.0.0.1, and headless Chromium (Debian's, as in the browser tests)
 * opens the verifying-coverage queue LOADS times; each load is timed from navigation start to the
 * console's own mark `console:queue-rendered` (the first page of rows on screen).
 *
 * Baselines in the same run: the two API calls the page needs (the Task page and its orders by
 * `_id`) timed from Node; and GET Task/$network-metrics (the network's picture) at that volume.
 * On the embedded SQLite store the queue's API calls are timed too (a few times only: until the
 * search work of issue 11 lands they take seconds there). Without Chromium, the browser part is
 * skipped and says so. Run alone: `npx tsx bench/console-queue.ts`.
 */
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { chromium } from 'playwright-core';
import { startGateway, type Engine, type RunningGateway } from '../test/support/gateway.js';
import { analyzePostgresSchema, storeReferralVolume } from '../test/support/referral-volume.js';

const VOLUME = Number(process.env['BENCH_CONSOLE_REFERRALS'] ?? 10_000);
const LOADS = Number(process.env['BENCH_CONSOLE_LOADS'] ?? 10);
const SQLITE_REPEATS = 3;
const QUEUE = 'verifying-coverage';
const STATUS = encodeURIComponent(`https://fhir.infusion-gateway.example/CodeSystem/referral-status|${QUEUE}`);
const CHROMIUM = process.env['CHROMIUM_PATH'] ?? '/usr/bin/chromium';

export interface Spread {
  samples: number;
  medianMs: number;
  p99Ms: number;
  maxMs: number;
}

export interface ConsoleQueueBenchResult {
  referrals: number;
  inQueue: number;
  postgres: { browserOpen: Spread | 'skipped: no Chromium'; queueApiCalls: Spread; networkMetrics: Spread; ratioOpenToApi?: number };
  sqlite: { queueApiCalls: Spread };
}

function spread(values: number[]): Spread {
  const sorted = [...values].sort((a, b) => a - b);
  const at = (q: number): number => sorted[Math.min(sorted.length - 1, Math.ceil(q * sorted.length) - 1)]!;
  const middle = Math.floor(sorted.length / 2);
  const median = sorted.length % 2 === 1 ? sorted[middle]! : (sorted[middle - 1]! + sorted[middle]!) / 2;
  return {
    samples: sorted.length,
    medianMs: Math.round(median),
    p99Ms: Math.round(at(0.99)),
    maxMs: Math.round(sorted[sorted.length - 1]!),
  };
}

async function timed(times: number, work: () => Promise<void>): Promise<number[]> {
  const samples: number[] = [];
  for (let i = 0; i < times; i += 1) {
    const started = performance.now();
    await work();
    samples.push(performance.now() - started);
  }
  return samples;
}

async function getJson(url: string): Promise<any> {
  const response = await fetch(url, { headers: { accept: 'application/fhir+json' } });
  if (!response.ok) throw new Error(`${url} answered ${response.status}`);
  return response.json();
}

/** The queue page's two API calls: the Task page, then its orders by _id. */
async function queueApiCalls(gateway: RunningGateway): Promise<void> {
  const tasks = await getJson(`${gateway.baseUrl}/fhir/Task?business-status=${STATUS}&_sort=_lastUpdated&_count=50`);
  const ids = tasks.entry.map((e: any) => e.resource.focus.reference.split('/')[1]).join(',');
  await getJson(`${gateway.baseUrl}/fhir/ServiceRequest?_id=${ids}&_count=50`);
}

async function withVolume<T>(engine: Engine, work: (gateway: RunningGateway, stored: Record<string, number>) => Promise<T>): Promise<T> {
  // Search cost alone, as before authentication: the token check's cost is bench/run.ts's intake with and without it.
  const gateway = await startGateway({ engine, env: { AUTH: 'off' } });
  try {
    const stored = await storeReferralVolume(gateway.gateway.deps.store, {
      count: VOLUME,
      tenant: 'default',
      now: new Date(),
      concurrency: engine === 'postgres' ? 4 : 1,
    });
    if (gateway.postgresSchema !== undefined) await analyzePostgresSchema(gateway.postgresSchema);
    return await work(gateway, stored);
  } finally {
    await gateway.stop();
  }
}

async function browserOpenings(gateway: RunningGateway): Promise<number[]> {
  const browser = await chromium.launch({
    executablePath: CHROMIUM,
    headless: true,
    args: [
      '--no-sandbox',
      '--disable-gpu',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
      '--no-first-run',
    ],
  });
  try {
    const page = await browser.newPage({ viewport: { width: 1366, height: 900 } });
    const samples: number[] = [];
    // One warm-up load (the JavaScript is fetched and compiled once, as for a coordinator's day).
    for (let load = 0; load <= LOADS; load += 1) {
      if (load === 0) await page.goto(`${gateway.baseUrl}/console/queues/${QUEUE}`);
      else await page.reload();
      await page.waitForFunction(() => performance.getEntriesByName('console:queue-rendered').length > 0, undefined, { timeout: 120_000 });
      if (load > 0) samples.push(await page.evaluate(() => performance.getEntriesByName('console:queue-rendered')[0]!.startTime));
    }
    return samples;
  } finally {
    await browser.close();
  }
}

export async function benchConsoleQueue(): Promise<ConsoleQueueBenchResult> {
  const postgres = await withVolume('postgres', async (gateway, stored) => {
    const browserOpen = existsSync(CHROMIUM) ? spread(await browserOpenings(gateway)) : ('skipped: no Chromium' as const);
    const queueApi = spread(await timed(LOADS, () => queueApiCalls(gateway)));
    const metrics = spread(
      await timed(LOADS, async () => {
        await getJson(`${gateway.baseUrl}/fhir/Task/$network-metrics`);
      }),
    );
    return {
      inQueue: stored[QUEUE] ?? 0,
      result: {
        browserOpen,
        queueApiCalls: queueApi,
        networkMetrics: metrics,
        ...(typeof browserOpen === 'object'
          ? { ratioOpenToApi: Number((browserOpen.medianMs / Math.max(1, queueApi.medianMs)).toFixed(2)) }
          : {}),
      },
    };
  });
  const sqlite = await withVolume('sqlite', async (gateway) => ({
    queueApiCalls: spread(await timed(SQLITE_REPEATS, () => queueApiCalls(gateway))),
  }));
  return { referrals: VOLUME, inQueue: postgres.inQueue, postgres: postgres.result, sqlite };
}

export function consoleQueueTable(result: ConsoleQueueBenchResult): string {
  const row = (name: string, s: Spread | string): string =>
    typeof s === 'string'
      ? `  ${name.padEnd(44)} ${s}`
      : `  ${name.padEnd(44)} median ${s.medianMs} ms, p99 ${s.p99Ms} ms, max ${s.maxMs} ms (${s.samples} samples)`;
  return [
    `  ${result.referrals} referrals stored, ${result.inQueue} in the ${QUEUE} queue`,
    row('PostgreSQL: console opens the queue (Chromium)', result.postgres.browserOpen),
    row('PostgreSQL: its two API calls alone', result.postgres.queueApiCalls),
    row('PostgreSQL: Task/$network-metrics', result.postgres.networkMetrics),
    ...(result.postgres.ratioOpenToApi !== undefined
      ? [`  ratio console open / API calls (median): ${result.postgres.ratioOpenToApi}`]
      : []),
    row('SQLite: the queue API calls alone', result.sqlite.queueApiCalls),
  ].join('\n');
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const result = await benchConsoleQueue();
  process.stdout.write(`${consoleQueueTable(result)}\n`);
}
