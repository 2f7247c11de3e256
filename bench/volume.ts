/**
 * Searches and intake at volume (issue 11, docs/search.md): a gateway on each engine, its store
 * grown through the store's bulk path (test/support/referral-volume.ts: realistic status and site
 * spreads, plus one Coverage per referral spread over payers) to each size in turn, and at each
 * size, over HTTP on 127.0.0.1, one request at a time:
 * - the coordinator queue: `Task?business-status=verifying-coverage&_count=50` (30% of referrals),
 * - the identifier search: `ServiceRequest?identifier=<system>|<a random stored order>`,
 * - the payer query: `Coverage?beneficiary=Patient/…&payor=Organization/…`,
 * - intake: POST of a new referral (the infliximab fixture with a fresh order number).
 * The baseline is intake on the same gateway's empty store, measured first in the same run.
 *
 * Sizes: BENCH_VOLUME_SIZES (default 10000,100000); BENCH_VOLUME_MAX=1000000 adds that size.
 * Engines: BENCH_VOLUME_ENGINES (default sqlite,postgres). Run alone: `npx tsx bench/volume.ts`
 * (writes bench/results/volume-<date>.json); `npm run bench` runs it as its volume section.
 */
import { randomUUID } from 'node:crypto';
import { readFile, writeFile } from 'node:fs/promises';
import { loadavg } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { startGateway, type Engine, type RunningGateway } from '../test/support/gateway.js';
import { storeReferralVolume, storeVolumeCoverages, VOLUME_PAYERS } from '../test/support/referral-volume.js';

const ROOT = path.resolve(import.meta.dirname, '..');
const SAMPLES = Number(process.env['BENCH_VOLUME_SAMPLES'] ?? 200);
const STATUS = encodeURIComponent('https://fhir.infusion-gateway.example/CodeSystem/referral-status|verifying-coverage');
const ORDER_SYSTEM = 'urn:example:volume-order';

export interface Latency {
  samples: number;
  p50Ms: number;
  p99Ms: number;
}

export interface VolumeStep {
  referrals: number;
  /** The machine's 1-minute load average when the step was measured (it is shared). */
  loadAverage: number;
  loadSeconds: number;
  queueSearch: Latency;
  identifierSearch: Latency;
  coverageSearch: Latency;
  intake: Latency & { perSecond: number };
}

export interface VolumeBenchResult {
  sizes: number[];
  engines: Partial<Record<Engine, { emptyIntake: Latency & { perSecond: number }; steps: VolumeStep[] }>>;
}

function latency(values: number[]): Latency {
  const sorted = [...values].sort((a, b) => a - b);
  const at = (q: number): number => sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil(q * sorted.length) - 1))]!;
  return { samples: sorted.length, p50Ms: Number(at(0.5).toFixed(2)), p99Ms: Number(at(0.99).toFixed(2)) };
}

async function timed(times: number, work: (i: number) => Promise<void>): Promise<number[]> {
  const samples: number[] = [];
  for (let i = 0; i < times; i += 1) {
    const started = performance.now();
    await work(i);
    samples.push(performance.now() - started);
  }
  return samples;
}

async function getJson(url: string): Promise<any> {
  // One retry for a kept-alive socket the server closed while the store was loading (ECONNRESET).
  const response = await fetch(url, { headers: { accept: 'application/fhir+json' } }).catch(() =>
    fetch(url, { headers: { accept: 'application/fhir+json' } }),
  );
  if (!response.ok) throw new Error(`${url} answered ${response.status}: ${await response.text()}`);
  return response.json();
}

/** A fixed, well-spread sequence of stored indexes (not Math.random: two runs ask the same). */
const spreadIndex = (i: number, size: number): number => (i * 104_729 + 7) % size;

async function intake(gateway: RunningGateway, template: Record<string, unknown>): Promise<Latency & { perSecond: number }> {
  const post = async (): Promise<void> => {
    const body = JSON.stringify({ ...template, identifier: [{ ...(template['identifier'] as object[])[0], value: randomUUID() }] });
    const response = await fetch(`${gateway.baseUrl}/fhir/ServiceRequest`, {
      method: 'POST',
      headers: { 'content-type': 'application/fhir+json', accept: 'application/fhir+json', prefer: 'return=minimal' },
      body,
    });
    await response.arrayBuffer();
    if (response.status !== 201) throw new Error(`intake answered ${response.status}`);
  };
  await timed(100, post); // warm-up: JIT and caches, so the empty store is not measured cold
  const started = performance.now();
  const samples = await timed(SAMPLES, post);
  return { ...latency(samples), perSecond: Math.round((SAMPLES * 1000) / (performance.now() - started)) };
}

async function benchEngine(engine: Engine, sizes: number[], template: Record<string, unknown>, progress: (line: string) => void) {
  // Search cost alone, as before authentication: the token check's cost is bench/run.ts's intake with and without it.
  const gateway = await startGateway({ engine, env: { AUTH: 'off' } });
  try {
    const emptyIntake = await intake(gateway, template);
    progress(`${engine}: intake on an empty store ${emptyIntake.perSecond}/s, p50 ${emptyIntake.p50Ms} ms, p99 ${emptyIntake.p99Ms} ms`);
    const steps: VolumeStep[] = [];
    let stored = 0;
    const now = new Date();
    for (const size of sizes) {
      const loadStarted = performance.now();
      await storeReferralVolume(gateway.gateway.deps.store, {
        count: size,
        from: stored,
        tenant: 'default',
        now,
        concurrency: engine === 'postgres' ? 2 : 1,
      });
      await storeVolumeCoverages(gateway.gateway.deps.store, { tenant: 'default', from: stored, to: size, now: new Date() });
      await gateway.gateway.deps.store.refreshStatistics();
      stored = size;
      const loadSeconds = Math.round((performance.now() - loadStarted) / 1000);
      // Warm-up of each query shape, then the samples.
      const queue = () => getJson(`${gateway.baseUrl}/fhir/Task?business-status=${STATUS}&_count=50`).then(() => undefined);
      const byIdentifier = async (i: number) => {
        const n = spreadIndex(i, size);
        const found = await getJson(
          `${gateway.baseUrl}/fhir/ServiceRequest?identifier=${encodeURIComponent(`${ORDER_SYSTEM}|VOL-ORD-${n}`)}`,
        );
        if (found.entry?.length !== 1) throw new Error(`identifier VOL-ORD-${n} found ${found.entry?.length ?? 0}`);
      };
      const coverage = async (i: number) => {
        const n = spreadIndex(i, size);
        const found = await getJson(
          `${gateway.baseUrl}/fhir/Coverage?beneficiary=Patient/vol-patient-${n}&payor=Organization/vol-payer-${n % VOLUME_PAYERS}`,
        );
        if (found.entry?.length !== 1) throw new Error(`coverage of vol-patient-${n} found ${found.entry?.length ?? 0}`);
      };
      await timed(5, queue);
      const step: VolumeStep = {
        referrals: size,
        loadSeconds,
        loadAverage: Number(loadavg()[0]!.toFixed(1)),
        queueSearch: latency(await timed(SAMPLES, queue)),
        identifierSearch: latency(await timed(SAMPLES, byIdentifier)),
        coverageSearch: latency(await timed(SAMPLES, coverage)),
        intake: await intake(gateway, template),
      };
      steps.push(step);
      progress(
        `${engine} at ${size} (load average ${loadavg()
          .map((l) => l.toFixed(1))
          .join(' ')}): ${JSON.stringify(step)}`,
      );
    }
    return { emptyIntake, steps };
  } finally {
    await gateway.stop();
  }
}

export async function benchVolume(progress: (line: string) => void = () => undefined): Promise<VolumeBenchResult> {
  const sizes = (process.env['BENCH_VOLUME_SIZES'] ?? '10000,100000').split(',').map(Number);
  const max = Number(process.env['BENCH_VOLUME_MAX'] ?? 0);
  if (max > 0 && !sizes.includes(max)) sizes.push(max);
  sizes.sort((a, b) => a - b);
  const engines = (process.env['BENCH_VOLUME_ENGINES'] ?? 'sqlite,postgres').split(',') as Engine[];
  const template = JSON.parse(await readFile(path.join(ROOT, 'fixtures/referrals/infliximab/service-request.json'), 'utf8')) as Record<
    string,
    unknown
  >;
  const result: VolumeBenchResult = { sizes, engines: {} };
  for (const engine of engines) result.engines[engine] = await benchEngine(engine, sizes, template, progress);
  return result;
}

export function volumeTable(result: VolumeBenchResult): string {
  const lines = [`  p50 / p99 in ms, one request at a time; intake per second against the empty store's`];
  for (const [engine, figures] of Object.entries(result.engines)) {
    if (!figures) continue;
    lines.push(
      `  ${engine}: empty store intake ${figures.emptyIntake.perSecond}/s (p50 ${figures.emptyIntake.p50Ms}, p99 ${figures.emptyIntake.p99Ms})`,
    );
    for (const s of figures.steps) {
      const pair = (l: Latency): string => `${l.p50Ms} / ${l.p99Ms}`;
      lines.push(
        `    ${String(s.referrals).padStart(8)} referrals: queue ${pair(s.queueSearch)}, identifier ${pair(s.identifierSearch)}, coverage ${pair(s.coverageSearch)}, ` +
          `intake ${pair(s.intake)} at ${s.intake.perSecond}/s (${(s.intake.perSecond / figures.emptyIntake.perSecond).toFixed(2)} of empty); loaded in ${s.loadSeconds} s; load average ${s.loadAverage}`,
      );
    }
  }
  return lines.join('\n');
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const result = await benchVolume((line) => process.stderr.write(`${line}\n`));
  const file = path.join(ROOT, `bench/results/volume-${new Date().toISOString().slice(0, 16).replace(':', '')}.json`);
  await writeFile(file, `${JSON.stringify({ date: new Date().toISOString(), samples: SAMPLES, ...result }, null, 2)}\n`);
  process.stdout.write(`${volumeTable(result)}\nwritten to ${path.relative(ROOT, file)}\n`);
}
