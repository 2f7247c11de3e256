/**
 * The CDS Hooks site check under load (issue 4, "Speed"): POST /cds-services/infusion-site-check
 * with an order-sign request that the check flags (fixtures/cds-hooks/order-sign-misroute.json,
 * a warning card with suggestions) and one it lets through (order-sign-good.json, no card).
 * The target is p99 under 50 ms; CDS Hooks gives a service about 500 ms in all
 * (https://cds-hooks.hl7.org/2.0/#cds-services).
 *
 * The gateway runs as `npm start` does (src/main.ts, demo directory, embedded SQLite, info logs)
 * in its own child process; autocannon drives it from this process over 127.0.0.1. The baseline,
 * measured in the same run on the same machine, is bench/echo-server.ts (a bare Express app that
 * parses a JSON body and echoes it) fed the same hook request: the ratio is what the check costs.
 *
 * Run alone: `npx tsx bench/cds-hooks.ts` prints a table; `npm run bench` records it in
 * bench/results/latest.json.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import readline from 'node:readline';
import { fileURLToPath } from 'node:url';
import autocannon from 'autocannon';
import { demoHookAuthorization, demoIssuer, signHookJwt } from '../test/support/cds-client.js';

const ROOT = path.resolve(import.meta.dirname, '..');
const DURATION_SECONDS = Number(process.env['BENCH_SECONDS'] ?? 10);
const CONNECTIONS = Number(process.env['BENCH_CONNECTIONS'] ?? 8);
const WARM_UP_SECONDS = 2;
const SERVICE_PATH = '/cds-services/infusion-site-check';
export const CDS_P99_TARGET_MS = 50;

export interface CdsLoadFigures {
  requestsPerSecond: { mean: number; median: number };
  latencyMs: { p50: number; p90: number; p97_5: number; p99: number; max: number };
  requests: number;
  non2xx: number;
  errors: number;
}

export interface CdsHooksBenchResult {
  durationSeconds: number;
  connections: number;
  /** Bare Express echo of the misroute hook request: the floor for a JSON POST of this size. */
  echo: CdsLoadFigures;
  /** The hook the check flags: one warning card with suggestions. */
  misroute: CdsLoadFigures & { cards: number };
  /** The hook the check lets through: no card. */
  good: CdsLoadFigures & { cards: number };
  ratios: { misrouteToEchoMedianRps: number; goodToEchoMedianRps: number };
  target: { p99BelowMs: number; holds: boolean };
}

/** Starts a server script in its own process and waits for its JSON "... listening" log line with the port. */
export async function startChild(args: string[], env: Record<string, string>): Promise<{ child: ChildProcess; port: number }> {
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
  // From here on the logs are drained unread: parsing a line per request would load this process, which drives the load.
  lines.close();
  child.stdout?.resume();
  return { child, port };
}

export async function stopChild(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  child.kill('SIGTERM');
  await exited;
}

export function figures(result: autocannon.Result): CdsLoadFigures {
  return {
    requestsPerSecond: { mean: result.requests.average, median: result.requests.p50 },
    latencyMs: {
      p50: result.latency.p50,
      p90: result.latency.p90,
      p97_5: result.latency.p97_5,
      p99: result.latency.p99,
      max: result.latency.max,
    },
    requests: result.requests.total,
    non2xx: result.non2xx,
    errors: result.errors,
  };
}

/** Calls a hook service as an EHR does: each call with its own JWT, signed ahead so signing is not timed. */
const TOKENS_PER_SECOND = Number(process.env['BENCH_CDS_TOKENS_PER_SECOND'] ?? 3000);

async function hookTokens(url: string, count: number): Promise<string[]> {
  const { iss, key } = await demoIssuer();
  const tokens: string[] = [];
  for (let i = 0; i < count; i += 1) tokens.push(`Bearer ${await signHookJwt(key, { iss, aud: url, expiresIn: 240 })}`);
  return tokens;
}

async function load(url: string, body: string, seconds: number, options: { signed: boolean }): Promise<autocannon.Result> {
  // The echo baseline takes no token; a hook call refuses a JWT it has seen (CDS Hooks 2.0 security).
  const tokens = options.signed ? await hookTokens(url, seconds * TOKENS_PER_SECOND) : [];
  return autocannon({
    url,
    method: 'POST',
    connections: CONNECTIONS,
    duration: seconds,
    headers: { 'content-type': 'application/json', accept: 'application/json' },
    body,
    ...(options.signed
      ? { requests: [{ setupRequest: (request) => ({ ...request, headers: { ...request.headers, authorization: tokens.pop() ?? '' } }) }] }
      : {}),
  });
}

async function measure(url: string, body: string, options: { signed: boolean } = { signed: true }): Promise<CdsLoadFigures> {
  await load(url, body, WARM_UP_SECONDS, options); // warm-up: JIT, caches
  return figures(await load(url, body, DURATION_SECONDS, options));
}

/** One call before the load: the hook must answer 200 with the cards the fixture expects, or the figures mean nothing. */
async function cardsOf(url: string, body: string, fixture: string): Promise<number> {
  const response = await fetch(url, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...(await demoHookAuthorization(url)) },
    body,
  });
  if (response.status !== 200) throw new Error(`${fixture}: the CDS service answered ${response.status}`);
  const answer = (await response.json()) as { cards?: unknown[] };
  return answer.cards?.length ?? 0;
}

export async function benchCdsHooks(): Promise<CdsHooksBenchResult> {
  const misrouteBody = await readFile(path.join(ROOT, 'fixtures/cds-hooks/order-sign-misroute.json'), 'utf8');
  const goodBody = await readFile(path.join(ROOT, 'fixtures/cds-hooks/order-sign-good.json'), 'utf8');
  const dataDir = await mkdtemp(path.join(os.tmpdir(), 'gateway-bench-cds-'));
  const echo = await startChild(['bench/echo-server.ts'], {});
  try {
    const echoFigures = await measure(`http://127.0.0.1:${echo.port}/fhir/ServiceRequest`, misrouteBody, { signed: false });
    await stopChild(echo.child);
    const gateway = await startChild(['src/main.ts'], {
      PORT: '0',
      HOST: '127.0.0.1',
      LOG_LEVEL: 'info',
      DATA_DIR: dataDir,
      DIRECTORY_BUNDLE: 'fixtures/directory/demo-directory.bundle.json',
    });
    try {
      const url = `http://127.0.0.1:${gateway.port}${SERVICE_PATH}`;
      const misrouteCards = await cardsOf(url, misrouteBody, 'order-sign-misroute.json');
      const goodCards = await cardsOf(url, goodBody, 'order-sign-good.json');
      if (misrouteCards === 0 || goodCards !== 0) {
        throw new Error(`expected a card for the misroute and none for the good order; got ${misrouteCards} and ${goodCards}`);
      }
      const misroute = { ...(await measure(url, misrouteBody)), cards: misrouteCards };
      const good = { ...(await measure(url, goodBody)), cards: goodCards };
      const ratio = (f: CdsLoadFigures): number => Number((f.requestsPerSecond.median / echoFigures.requestsPerSecond.median).toFixed(3));
      return {
        durationSeconds: DURATION_SECONDS,
        connections: CONNECTIONS,
        echo: echoFigures,
        misroute,
        good,
        ratios: { misrouteToEchoMedianRps: ratio(misroute), goodToEchoMedianRps: ratio(good) },
        target: {
          p99BelowMs: CDS_P99_TARGET_MS,
          holds: misroute.latencyMs.p99 < CDS_P99_TARGET_MS && good.latencyMs.p99 < CDS_P99_TARGET_MS,
        },
      };
    } finally {
      await stopChild(gateway.child);
    }
  } finally {
    await stopChild(echo.child);
    await rm(dataDir, { recursive: true, force: true });
  }
}

export function cdsHooksTable(result: CdsHooksBenchResult): string {
  const header = ['request', 'req/s median', 'p50 ms', 'p97.5 ms', 'p99 ms', 'max ms', 'non-2xx', 'errors'];
  const row = (name: string, f: CdsLoadFigures): string[] => [
    name,
    String(f.requestsPerSecond.median),
    String(f.latencyMs.p50),
    String(f.latencyMs.p97_5),
    String(f.latencyMs.p99),
    String(f.latencyMs.max),
    String(f.non2xx),
    String(f.errors),
  ];
  const rows = [
    row('echo (baseline)', result.echo),
    row(`order-sign misroute (${result.misroute.cards} card)`, result.misroute),
    row('order-sign good (no card)', result.good),
  ];
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
  const line = (cells: string[]): string =>
    `| ${cells.map((c, i) => (i === 0 ? c.padEnd(widths[i]!) : c.padStart(widths[i]!))).join(' | ')} |`;
  return [
    line(header),
    `|${widths.map((w) => '-'.repeat(w + 2)).join('|')}|`,
    ...rows.map(line),
    `${result.connections} connections, ${result.durationSeconds} s each; ratios to echo (median req/s): ${JSON.stringify(result.ratios)}`,
    `target p99 < ${result.target.p99BelowMs} ms: ${result.target.holds ? 'holds' : 'MISSED'}`,
  ].join('\n');
}

if (process.argv[1] !== undefined && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const result = await benchCdsHooks();
  process.stdout.write(`${cdsHooksTable(result)}\n`);
  const failed = [result.misroute, result.good].some((f) => f.non2xx > 0 || f.errors > 0);
  if (failed) process.exitCode = 1;
}
