/**
 * `npm run fuzz`: the long fuzz run. FUZZ_REQUESTS (default 10,000) hostile requests per engine,
 * FUZZ_CONCURRENCY (default 4) at a time, seeded by FUZZ_SEED (printed, so a run can be
 * repeated). Prints the answers per route and status, every 5xx and hang with the server's error
 * (kind and stack, never content), checks that nothing was stored in part and that no PHI reached
 * a log line, and exits 1 if any of that failed. FUZZ_ENGINES=sqlite,postgres picks the engines;
 * FUZZ_DUMP=file writes each failing request whole (JSON lines) to replay it.
 */
import { appendFile } from 'node:fs/promises';
import fc from 'fast-check';
import { capturedLogLines } from '../support/log-capture.js';
import { phiFoundIn } from '../support/phi.js';
import type { Engine } from '../support/gateway.js';
import { fuzzRequest, sendFuzzRequest, type FuzzRequest } from './fuzz-requests.js';
import { startFuzzWorld } from './fuzz-world.js';

const requests = Number(process.env.FUZZ_REQUESTS ?? 10_000);
const concurrency = Number(process.env.FUZZ_CONCURRENCY ?? 4);
const seed = Number(process.env.FUZZ_SEED ?? Date.now() % 2 ** 31);
const engines = (process.env.FUZZ_ENGINES ?? 'sqlite,postgres').split(',').map((e) => e.trim()) as Engine[];
const HANG_MS = 10_000;

interface Failure {
  route: string;
  status: number;
  request: string;
  serverError?: string;
}

function shortRequest(request: FuzzRequest): string {
  const body =
    request.body === undefined
      ? ''
      : 'json' in request.body
        ? ` ${JSON.stringify(request.body.json).slice(0, 300)}`
        : ` <${request.body.raw.length} raw bytes>`;
  return `${request.method} ${request.url.slice(0, 200)}${body}`;
}

async function fuzzEngine(engine: Engine): Promise<boolean> {
  const world = await startFuzzWorld(engine);
  const started = Date.now();
  const tally = new Map<string, Map<number, number>>();
  const failures: Failure[] = [];
  try {
    const batch = fc.sample(fuzzRequest(world.targets), { numRuns: requests, seed });
    let next = 0;
    const worker = async (): Promise<void> => {
      while (next < batch.length) {
        const request = batch[next++]!;
        const logMark = capturedLogLines().length;
        const answer = await sendFuzzRequest(world.gateway.baseUrl, request, { timeoutMs: HANG_MS });
        const byStatus = tally.get(request.route) ?? new Map<number, number>();
        byStatus.set(answer.status, (byStatus.get(answer.status) ?? 0) + 1);
        tally.set(request.route, byStatus);
        if (answer.hung || answer.status >= 500 || (answer.status >= 400 && answer.resourceType !== 'OperationOutcome')) {
          const serverError = capturedLogLines()
            .slice(logMark)
            .find((line) => line.includes('"level":"error"'));
          failures.push({
            route: request.route,
            status: answer.status,
            request: shortRequest(request),
            ...(serverError ? { serverError: serverError.slice(0, 600) } : {}),
          });
          const dump = process.env.FUZZ_DUMP;
          if (dump !== undefined) {
            const body =
              request.body === undefined
                ? undefined
                : 'json' in request.body
                  ? { json: request.body.json }
                  : { raw: Buffer.from(request.body.raw).toString('base64') };
            await appendFile(dump, `${JSON.stringify({ engine, status: answer.status, ...request, body })}\n`);
          }
        }
      }
    };
    await Promise.all(Array.from({ length: concurrency }, () => worker()));
    const partial = await world.partialWrites();
    const seconds = (Date.now() - started) / 1000;
    console.log(`\n== ${engine}: ${batch.length} requests in ${seconds.toFixed(1)} s (seed ${seed})`);
    for (const [route, byStatus] of [...tally.entries()].sort(([a], [b]) => a.localeCompare(b))) {
      const statuses = [...byStatus.entries()].sort((a, b) => a[0] - b[0]).map(([status, n]) => `${status === 0 ? 'hang' : status}:${n}`);
      console.log(`  ${route.padEnd(44)} ${statuses.join(' ')}`);
    }
    const fiveHundreds = failures.filter((f) => f.status >= 500).length;
    const hangs = failures.filter((f) => f.status === 0).length;
    console.log(
      `  5xx: ${fiveHundreds}, hangs: ${hangs}, refusals without an OperationOutcome: ${failures.length - fiveHundreds - hangs}, partial writes: ${partial.length === 0 ? 'none' : partial.join('; ')}`,
    );
    const seen = new Set<string>();
    for (const failure of failures) {
      const signature = `${failure.route} ${failure.status} ${failure.serverError?.replace(/"requestId":"[^"]*"/, '').replace(/"timestamp":"[^"]*"/, '') ?? ''}`;
      if (seen.has(signature)) continue;
      seen.add(signature);
      console.log(
        `  - ${failure.route} -> ${failure.status === 0 ? 'hang' : failure.status}\n    request: ${failure.request}\n    server: ${failure.serverError ?? '(no error logged)'}`,
      );
    }
    return failures.length === 0 && partial.length === 0;
  } finally {
    await world.stop();
  }
}

let ok = true;
for (const engine of engines) ok = (await fuzzEngine(engine)) && ok;
const phi = phiFoundIn(capturedLogLines());
if (phi.length > 0) {
  ok = false;
  console.log(`PHI reached ${phi.length} log line(s), e.g. ${phi[0]?.marker}`);
}
console.log(ok ? '\nfuzz: no 5xx, no hang, no partial write' : '\nfuzz: FAILED');
process.exit(ok ? 0 : 1);
