/**
 * `Appointment/$find` and `$book` over HTTP (issue 6, "Speed"). The gateway runs as `npm start`
 * does (src/main.ts, demo directory, embedded SQLite) in a child process, with the stand-in payer
 * in this process clearing its referrals (tocilizumab, Sonoran Care: no prior authorization).
 *
 * - $find: autocannon GETs $find for cleared referrals (8 connections, BENCH_SECONDS), beside
 *   GET /healthz on the same server as the baseline of an HTTP round trip through the gateway.
 * - $book: each of BOOKINGS cleared referrals books its first proposal, one after another, timed
 *   one by one (the chair lock and the overlap check, the Appointment, the Task, two outbox rows).
 *
 * - multi-site $find (issue 12): `near=||5000|km`, every site the referral allows (the plan's
 *   network, the drug given), ranked by start then distance, 1 connection, beside the
 *   single-site $find on 1 connection: the ratio is what searching several sites costs.
 * - walk-in: POST Appointment with status arrived, refused 422 with the next three slots
 *   (the $find search plus the refusal), 1 connection.
 *
 * The pure slot search over 50 sites x 20 chairs x 60 days is bench/find-slots.ts.
 * Run alone: `npx tsx bench/scheduling.ts`.
 */
import { randomUUID } from 'node:crypto';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import autocannon from 'autocannon';
import { startStandInPayer } from '../src/sandbox/stand-in-payer.js';
import { figures, startChild, stopChild, type CdsLoadFigures } from './cds-hooks.js';

const ROOT = path.resolve(import.meta.dirname, '..');
const DURATION_SECONDS = Number(process.env['BENCH_SECONDS'] ?? 10);
const CONNECTIONS = Number(process.env['BENCH_CONNECTIONS'] ?? 8);
const REFERRALS_FOR_FIND = 20;
const BOOKINGS = Number(process.env['BENCH_BOOKINGS'] ?? 60);

export interface SchedulingBenchResult {
  durationSeconds: number;
  connections: number;
  healthz: CdsLoadFigures;
  find: CdsLoadFigures & { proposalsPerAnswer: number };
  findOneConnection: CdsLoadFigures;
  findMultiSite: CdsLoadFigures & { sites: number };
  walkIn: CdsLoadFigures;
  book: { bookings: number; medianMs: number; p95Ms: number; maxMs: number; refused: number };
  ratios: { findToHealthzMedianRps: number; multiSiteToSingleSiteP50: number; walkInToFindP50: number };
}

async function json(url: string, init: { method?: string; body?: unknown } = {}): Promise<{ status: number; body: any }> {
  const response = await fetch(url, {
    method: init.method ?? (init.body === undefined ? 'GET' : 'POST'),
    headers: { 'content-type': 'application/fhir+json', accept: 'application/fhir+json' },
    ...(init.body !== undefined ? { body: JSON.stringify(init.body) } : {}),
  });
  return { status: response.status, body: await response.json() };
}

async function clearedReferrals(base: string, count: number): Promise<string[]> {
  const template = JSON.parse(await readFile(path.join(ROOT, 'fixtures/referrals/tocilizumab/service-request.json'), 'utf8'));
  const created: Array<{ serviceRequestId: string; taskId: string }> = [];
  for (let i = 0; i < count; i += 1) {
    const body = structuredClone(template);
    body.identifier[0].value = `bench-sched-${randomUUID()}`;
    for (const code of ['prior-treatment-failure', 'tb-screening', 'baseline-labs']) {
      body.contained.push({
        resourceType: 'DocumentReference',
        id: `doc-${code}`,
        status: 'current',
        type: { coding: [{ system: 'https://fhir.infusion-gateway.example/CodeSystem/documentation-requirement', code }] },
        content: [{ attachment: { title: code } }],
      });
      body.supportingInfo = [...(body.supportingInfo ?? []), { reference: `#doc-${code}` }];
    }
    const posted = await json(`${base}/fhir/ServiceRequest`, { body });
    if (posted.status !== 201) throw new Error(`intake answered ${posted.status}`);
    const task = await json(`${base}/fhir/Task?focus=ServiceRequest/${posted.body.id}`);
    created.push({ serviceRequestId: posted.body.id, taskId: task.body.entry[0].resource.id });
  }
  for (const { taskId } of created) {
    for (let tries = 0; ; tries += 1) {
      const task = await json(`${base}/fhir/Task/${taskId}`);
      if (task.body.businessStatus.coding[0].code === 'ready-to-schedule') break;
      if (tries > 400) throw new Error(`referral not cleared: ${task.body.businessStatus.coding[0].code}`);
      await new Promise((resolve) => setTimeout(resolve, 25));
    }
  }
  return created.map((c) => c.serviceRequestId);
}

function percentile(sorted: readonly number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]!;
}

export async function benchScheduling(): Promise<SchedulingBenchResult> {
  const payer = await startStandInPayer({ defaultRule: { eligibility: { inForce: true, authRequired: false } } });
  const dataDir = await mkdtemp(path.join(os.tmpdir(), 'gateway-bench-scheduling-'));
  const connections = ['payer-cumberland', 'payer-peachtree', 'payer-sonoran'].map((id) => ({ payer: id, baseUrl: payer.baseUrl }));
  const gateway = await startChild(['src/main.ts'], {
    PORT: '0',
    HOST: '127.0.0.1',
    DATA_DIR: dataDir,
    LOG_LEVEL: 'info',
    PAYER_CONNECTIONS: JSON.stringify(connections),
    OUTBOX_POLL_MS: '20',
  });
  const base = `http://127.0.0.1:${gateway.port}`;
  try {
    const forFind = await clearedReferrals(base, REFERRALS_FOR_FIND);
    const sample = await json(`${base}/fhir/Appointment/$find?referral=ServiceRequest/${forFind[0]}&_count=10`);
    if (sample.status !== 200) throw new Error(`$find answered ${sample.status}`);
    const run = (requests: autocannon.Request[], connections = CONNECTIONS): Promise<autocannon.Result> =>
      autocannon({ url: base, connections, duration: DURATION_SECONDS, requests });
    const healthz = figures(await run([{ method: 'GET', path: '/healthz' }]));
    const findRequests = forFind.map((id): autocannon.Request => ({
      method: 'GET',
      path: `/fhir/Appointment/$find?referral=ServiceRequest/${id}&_count=10`,
      headers: { accept: 'application/fhir+json' },
    }));
    const find = figures(await run(findRequests));
    // One connection: the latency of one $find on an idle gateway, without queueing behind others.
    const findAlone = figures(await run(findRequests, 1));
    const near = encodeURIComponent('||5000|km');
    const multiSample = await json(`${base}/fhir/Appointment/$find?referral=ServiceRequest/${forFind[0]}&near=${near}&_count=10`);
    if (multiSample.status !== 200) throw new Error(`multi-site $find answered ${multiSample.status}`);
    const multiSites = new Set(multiSample.body.entry.map((e: any) => e.resource.participant[1].actor.reference)).size;
    const findMultiSite = figures(
      await run(
        forFind.map((id): autocannon.Request => ({
          method: 'GET',
          path: `/fhir/Appointment/$find?referral=ServiceRequest/${id}&near=${near}&_count=10`,
          headers: { accept: 'application/fhir+json' },
        })),
        1,
      ),
    );
    const walkInRequests = forFind.map((id): autocannon.Request => ({
      method: 'POST',
      path: '/fhir/Appointment',
      headers: { 'content-type': 'application/fhir+json', accept: 'application/fhir+json' },
      body: JSON.stringify({ ...sample.body.entry[0].resource, status: 'arrived', basedOn: [{ reference: `ServiceRequest/${id}` }] }),
    }));
    const walkIn = figures(await run(walkInRequests, 1));

    const forBooking = await clearedReferrals(base, BOOKINGS);
    const times: number[] = [];
    let refused = 0;
    for (const id of forBooking) {
      const [proposal] = (await json(`${base}/fhir/Appointment/$find?referral=ServiceRequest/${id}&_count=1`)).body.entry.map(
        (e: any) => e.resource,
      );
      const started = performance.now();
      const booked = await json(`${base}/fhir/Appointment/$book`, {
        body: { resourceType: 'Parameters', parameter: [{ name: 'appt-resource', resource: proposal }] },
      });
      times.push(performance.now() - started);
      if (booked.status !== 201) refused += 1;
    }
    const sorted = [...times].sort((a, b) => a - b);
    const round = (ms: number): number => Math.round(ms * 100) / 100;
    return {
      durationSeconds: DURATION_SECONDS,
      connections: CONNECTIONS,
      healthz,
      find: { ...find, proposalsPerAnswer: sample.body.entry.length },
      findOneConnection: findAlone,
      findMultiSite: { ...findMultiSite, sites: multiSites },
      walkIn,
      book: {
        bookings: times.length,
        medianMs: round(percentile(sorted, 50)),
        p95Ms: round(percentile(sorted, 95)),
        maxMs: round(sorted[sorted.length - 1]!),
        refused,
      },
      ratios: {
        findToHealthzMedianRps: Number((find.requestsPerSecond.median / healthz.requestsPerSecond.median).toFixed(3)),
        multiSiteToSingleSiteP50: Number((findMultiSite.latencyMs.p50 / Math.max(findAlone.latencyMs.p50, 0.001)).toFixed(2)),
        walkInToFindP50: Number((walkIn.latencyMs.p50 / Math.max(findAlone.latencyMs.p50, 0.001)).toFixed(2)),
      },
    };
  } finally {
    await stopChild(gateway.child);
    await payer.stop();
    await rm(dataDir, { recursive: true, force: true });
  }
}

export function schedulingTable(result: SchedulingBenchResult): string {
  const row = (name: string, f: CdsLoadFigures): string =>
    `| ${name} | ${f.requestsPerSecond.median} | ${f.latencyMs.p50} | ${f.latencyMs.p97_5} | ${f.latencyMs.p99} | ${f.non2xx} |`;
  return [
    '| request | req/s median | p50 ms | p97.5 ms | p99 ms | non-2xx |',
    '|---|---|---|---|---|---|',
    row('GET /healthz (baseline)', result.healthz),
    row(`$find (_count=10, ${result.find.proposalsPerAnswer} proposals), ${result.connections} connections`, result.find),
    row('$find, 1 connection', result.findOneConnection),
    row(`$find near (${result.findMultiSite.sites} sites proposed), 1 connection`, result.findMultiSite),
    row('walk-in POST Appointment arrived (422 + 3 slots), 1 connection', result.walkIn),
    `$find / healthz median req/s: ${result.ratios.findToHealthzMedianRps}; multi-site / single-site $find p50: ${result.ratios.multiSiteToSingleSiteP50}; walk-in / $find p50: ${result.ratios.walkInToFindP50}`,
    `$book, ${result.book.bookings} bookings one after another: median ${result.book.medianMs} ms, p95 ${result.book.p95Ms} ms, max ${result.book.maxMs} ms (${result.book.refused} refused)`,
  ].join('\n');
}

if (process.argv[1] !== undefined && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const result = await benchScheduling();
  process.stdout.write(`${schedulingTable(result)}\n`);
  if (result.book.refused > 0 || result.find.non2xx > 0) process.exitCode = 1;
}
