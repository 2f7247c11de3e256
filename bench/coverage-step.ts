/**
 * The coverage step's cost (issue 5, "`npm run bench` adds the coverage step's cost, with the
 * stand-in payer on loopback"). In one script, on the same machine:
 *
 *   (a) referrals from POST /fhir/ServiceRequest to ready-to-schedule, through the outbox worker's
 *       coverage step: eligibility (CoverageEligibilityRequest/$submit) and prior authorization
 *       (Da Vinci PAS Claim/$submit, approved at once), the verified Coverage and the Task written
 *       in one transaction. Latency one referral at a time (median and p95 per referral), then
 *       throughput for N referrals posted at once and worked off by the worker.
 *   (b) the baseline: the same two payer round trips alone, through the gateway's own payer
 *       adapter (fhir-kit-client) against the same stand-in payer, one at a time.
 *
 * The ratio (a) median / (b) median says what the gateway adds around the payer's calls, whatever
 * the machine. Latency in (a) is observed by polling the Task every few milliseconds, and includes
 * the worker's poll interval (OUTBOX_POLL_MS, set low here).
 *
 * The gateway (src/main.ts, embedded SQLite, demo directory, no EHR) and the stand-in payer
 * (src/sandbox/stand-in-payer.ts) each run in their own child process; this process drives them
 * over 127.0.0.1.
 *
 * Run alone: `npx tsx bench/coverage-step.ts` prints a table; `npm run bench` records it in
 * bench/results/latest.json.
 */
import { randomUUID } from 'node:crypto';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Coverage, FhirResource, ServiceRequest } from 'fhir/r4.js';
import { createFhirKitPayer } from '../src/adapters/fhir/fhir-kit-payer.js';
import { buildEligibilityRequest } from '../src/coverage/rules/eligibility.js';
import { buildPriorAuthorizationBundle } from '../src/coverage/rules/prior-authorization.js';
import { startChild, stopChild } from './cds-hooks.js';

const ROOT = path.resolve(import.meta.dirname, '..');
const SEQUENTIAL = Number(process.env['BENCH_COVERAGE_SEQUENTIAL'] ?? 100);
const THROUGHPUT = Number(process.env['BENCH_COVERAGE_REFERRALS'] ?? 300);
const PAYER_CALLS = Number(process.env['BENCH_COVERAGE_PAYER_CALLS'] ?? 300);
const CONCURRENCY = Number(process.env['BENCH_CONNECTIONS'] ?? 8);
const WARM_UP = 10;
const POLL_MS = 2;
const WORKER_POLL_MS = '10';
const STATUS_SYSTEM = 'https://fhir.infusion-gateway.example/CodeSystem/referral-status';
const DOCUMENTATION = 'https://fhir.infusion-gateway.example/CodeSystem/documentation-requirement';
/** What infliximab's payers ask for (fixtures/drug-catalog.json): attached, so nothing holds the referral for review. */
const DOCUMENTS = ['prior-treatment-failure', 'tb-screening', 'hepatitis-b-screening', 'current-weight'];
const PAYERS = ['payer-cumberland', 'payer-peachtree', 'payer-sonoran'];

export interface Distribution {
  median: number;
  p95: number;
  mean: number;
}

export interface CoverageStepBenchResult {
  /** (a) one referral at a time, POST to ready-to-schedule, milliseconds. */
  perReferralMs: Distribution & { referrals: number };
  /** (a) N referrals posted at once (CONCURRENCY in flight), until the last is ready-to-schedule. */
  throughput: { referrals: number; seconds: number; referralsPerSecond: number; concurrency: number };
  /** (b) payer round trips alone, milliseconds. */
  payerAloneMs: { eligibility: Distribution; priorAuthSubmit: Distribution; calls: number };
  /** (a) median per referral / ((b) eligibility median + (b) submit median). */
  ratioReferralToPayerCallsMedian: number;
  workerPollMs: number;
}

function distribution(samples: readonly number[]): Distribution {
  const sorted = [...samples].sort((a, b) => a - b);
  const at = (q: number): number => sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))]!;
  const round = (n: number): number => Number(n.toFixed(2));
  return { median: round(at(0.5)), p95: round(at(0.95)), mean: round(sorted.reduce((a, b) => a + b, 0) / sorted.length) };
}

/** The infliximab referral with its documents attached and a new order number and member each time. */
function referralFactory(template: ServiceRequest): () => string {
  return () => {
    const body = structuredClone(template);
    body.identifier = [{ ...body.identifier![0]!, value: randomUUID() }];
    const coverage = body.contained!.find((r): r is Coverage => r.resourceType === 'Coverage')!;
    const member = `B${randomUUID().slice(0, 8)}`;
    coverage.subscriberId = member;
    coverage.identifier![0]!.value = member;
    for (const code of DOCUMENTS) {
      body.contained!.push({
        resourceType: 'DocumentReference',
        id: `doc-${code}`,
        status: 'current',
        type: { coding: [{ system: DOCUMENTATION, code }] },
        content: [{ attachment: { contentType: 'application/pdf', title: code } }],
      } as FhirResource);
      body.supportingInfo = [...(body.supportingInfo ?? []), { reference: `#doc-${code}` }];
    }
    return JSON.stringify(body);
  };
}

async function postReferral(fhir: string, body: string): Promise<string> {
  const response = await fetch(`${fhir}/ServiceRequest`, {
    method: 'POST',
    headers: { 'content-type': 'application/fhir+json', accept: 'application/fhir+json' },
    body,
  });
  if (response.status !== 201) throw new Error(`intake answered ${response.status}`);
  const created = (await response.json()) as { id: string };
  const tasks = (await (
    await fetch(`${fhir}/Task?focus=ServiceRequest/${created.id}`, { headers: { accept: 'application/fhir+json' } })
  ).json()) as { entry: Array<{ resource: { id: string } }> };
  return tasks.entry[0]!.resource.id;
}

async function waitReady(fhir: string, taskId: string): Promise<void> {
  const deadline = performance.now() + 60_000;
  for (;;) {
    const task = (await (await fetch(`${fhir}/Task/${taskId}`, { headers: { accept: 'application/fhir+json' } })).json()) as {
      businessStatus?: { coding?: Array<{ code?: string }> };
    };
    const status = task.businessStatus?.coding?.[0]?.code;
    if (status === 'ready-to-schedule') return;
    if (status !== 'verifying-coverage' && status !== 'received' && status !== 'auth-pending')
      throw new Error(`a bench referral settled in ${status}, not ready-to-schedule`);
    if (performance.now() > deadline) throw new Error('a bench referral did not reach ready-to-schedule in 60 s');
    await new Promise((resolve) => setTimeout(resolve, POLL_MS));
  }
}

async function readyCount(fhir: string): Promise<number> {
  const url = `${fhir}/Task?business-status=${encodeURIComponent(`${STATUS_SYSTEM}|ready-to-schedule`)}&_count=0`;
  return ((await (await fetch(url, { headers: { accept: 'application/fhir+json' } })).json()) as { total: number }).total;
}

/** (b) The payer's round trips alone, through the gateway's adapter, one at a time. */
async function measurePayerAlone(payerBase: string, template: ServiceRequest): Promise<CoverageStepBenchResult['payerAloneMs']> {
  const payer = createFhirKitPayer({ payerOrganizationId: 'payer-cumberland', baseUrl: payerBase });
  const coverage = template.contained!.find((r) => r.resourceType === 'Coverage') as Coverage;
  const eligibility: number[] = [];
  const submit: number[] = [];
  for (let i = 0; i < PAYER_CALLS + WARM_UP; i += 1) {
    const member = `B${randomUUID().slice(0, 8)}`;
    const memberCoverage: Coverage = { ...coverage, subscriberId: member, identifier: [{ ...coverage.identifier![0]!, value: member }] };
    const now = new Date();
    const request = buildEligibilityRequest({
      id: randomUUID(),
      coverage: memberCoverage,
      patient: { reference: 'Patient/bench' },
      insurer: { reference: 'Organization/payer-cumberland' },
      facility: { reference: 'Location/hin-nashville-green-hills' },
      drugCodings: template.code?.coding ?? [],
      diagnoses: (template.reasonCode ?? []).flatMap((c) => c.coding ?? []),
      now,
    });
    let started = performance.now();
    await payer.checkEligibility(request);
    if (i >= WARM_UP) eligibility.push(performance.now() - started);
    const bundle = buildPriorAuthorizationBundle({
      bundleId: randomUUID(),
      claimId: `pa-${randomUUID()}`,
      now,
      patient: { resourceType: 'Patient', id: 'bench' },
      coverage: memberCoverage,
      insurer: { reference: 'Organization/payer-cumberland' },
      provider: { reference: 'Organization/infusion-network' },
      site: { reference: 'Location/hin-nashville-green-hills' },
      drugCodings: template.code?.coding ?? [],
      diagnoses: (template.reasonCode ?? []).flatMap((c) => c.coding ?? []),
      servicedPeriod: { start: '2026-12-01' },
      quantity: { value: 1, unit: 'infusion' },
    });
    started = performance.now();
    await payer.submitPriorAuthorization(bundle);
    if (i >= WARM_UP) submit.push(performance.now() - started);
  }
  return { eligibility: distribution(eligibility), priorAuthSubmit: distribution(submit), calls: PAYER_CALLS };
}

export async function benchCoverageStep(): Promise<CoverageStepBenchResult> {
  const template = JSON.parse(
    await readFile(path.join(ROOT, 'fixtures/referrals/infliximab/service-request.json'), 'utf8'),
  ) as ServiceRequest;
  const nextReferral = referralFactory(template);
  const dataDir = await mkdtemp(path.join(os.tmpdir(), 'gateway-bench-coverage-'));
  const payer = await startChild(['src/sandbox/stand-in-payer.ts'], { PORT: '0' });
  const payerBase = `http://127.0.0.1:${payer.port}/fhir`;
  try {
    // Every member: in force, authorization required, approved at once.
    const rule = {
      eligibility: { inForce: true, authRequired: true, costShare: { copay: { value: 250, currency: 'USD' } } },
      priorAuth: { kind: 'approve', authorizationNumber: 'AUTH-BENCH' },
    };
    const set = await fetch(`http://127.0.0.1:${payer.port}/_control/default`, {
      method: 'PUT',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify(rule),
    });
    if (set.status !== 204) throw new Error(`the stand-in payer refused the rule: ${set.status}`);

    const payerAloneMs = await measurePayerAlone(payerBase, template);

    const gateway = await startChild(['src/main.ts'], {
      PORT: '0',
      HOST: '127.0.0.1',
      LOG_LEVEL: 'info',
      DATA_DIR: dataDir,
      DIRECTORY_BUNDLE: 'fixtures/directory/demo-directory.bundle.json',
      PAYER_CONNECTIONS: JSON.stringify(PAYERS.map((id) => ({ payer: id, baseUrl: payerBase }))),
      OUTBOX_POLL_MS: WORKER_POLL_MS,
    });
    try {
      const fhir = `http://127.0.0.1:${gateway.port}/fhir`;
      const latencies: number[] = [];
      for (let i = 0; i < SEQUENTIAL + WARM_UP; i += 1) {
        const body = nextReferral();
        const started = performance.now();
        await waitReady(fhir, await postReferral(fhir, body));
        if (i >= WARM_UP) latencies.push(performance.now() - started);
      }

      const readyBefore = await readyCount(fhir);
      const bodies = Array.from({ length: THROUGHPUT }, nextReferral);
      const started = performance.now();
      let next = 0;
      await Promise.all(
        Array.from({ length: CONCURRENCY }, async () => {
          while (next < bodies.length) await postReferral(fhir, bodies[next++]!);
        }),
      );
      for (;;) {
        if ((await readyCount(fhir)) - readyBefore >= THROUGHPUT) break;
        if (performance.now() - started > 300_000) throw new Error(`not all ${THROUGHPUT} referrals were ready-to-schedule in 5 minutes`);
        await new Promise((resolve) => setTimeout(resolve, 20));
      }
      const seconds = (performance.now() - started) / 1000;

      const perReferral = distribution(latencies);
      return {
        perReferralMs: { ...perReferral, referrals: SEQUENTIAL },
        throughput: {
          referrals: THROUGHPUT,
          seconds: Number(seconds.toFixed(2)),
          referralsPerSecond: Number((THROUGHPUT / seconds).toFixed(1)),
          concurrency: CONCURRENCY,
        },
        payerAloneMs,
        ratioReferralToPayerCallsMedian: Number(
          (perReferral.median / (payerAloneMs.eligibility.median + payerAloneMs.priorAuthSubmit.median)).toFixed(2),
        ),
        workerPollMs: Number(WORKER_POLL_MS),
      };
    } finally {
      await stopChild(gateway.child);
    }
  } finally {
    await stopChild(payer.child);
    await rm(dataDir, { recursive: true, force: true });
  }
}

export function coverageStepTable(result: CoverageStepBenchResult): string {
  const row = (name: string, d: Distribution): string =>
    `  ${name.padEnd(44)} ${String(d.median).padStart(8)} ${String(d.p95).padStart(8)} ${String(d.mean).padStart(8)}`;
  return [
    `  ${'ms'.padEnd(44)} ${'median'.padStart(8)} ${'p95'.padStart(8)} ${'mean'.padStart(8)}`,
    row(`referral, POST to ready-to-schedule (${result.perReferralMs.referrals})`, result.perReferralMs),
    row(`payer alone: eligibility $submit (${result.payerAloneMs.calls})`, result.payerAloneMs.eligibility),
    row(`payer alone: Claim/$submit (${result.payerAloneMs.calls})`, result.payerAloneMs.priorAuthSubmit),
    `  ratio, referral median / (eligibility + Claim/$submit medians): ${result.ratioReferralToPayerCallsMedian} (worker polls every ${result.workerPollMs} ms)`,
    `  throughput: ${result.throughput.referrals} referrals, ${result.throughput.concurrency} posting at once, all ready-to-schedule in ${result.throughput.seconds} s = ${result.throughput.referralsPerSecond} referrals/s`,
  ].join('\n');
}

const isMain = process.argv[1] !== undefined && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url);
if (isMain) {
  const result = await benchCoverageStep();
  process.stdout.write(`${coverageStepTable(result)}\n${JSON.stringify(result)}\n`);
}
