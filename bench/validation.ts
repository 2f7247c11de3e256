/**
 * What the base R4 invariants cost intake (issue 12: "keep intake fast"). In one process, on the
 * same machine and the same referrals (every fixtures/referrals/<drug>/service-request.json and
 * transaction-bundle.json), intake's validation (base R4 and the referral profile) with the
 * invariant walk (FHIRPath invariants, narrative, core extensions, calendar dates, Bundle
 * rules) and without it: the ratio of medians is the cost, whatever the machine.
 *
 *   npx tsx bench/validation.ts [rounds]
 */
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import type { Resource } from 'fhir/r4.js';
import { REFERRAL_PROFILE_URL } from '../src/referral/rules/referral-status.js';
import { FhirValidator } from '../src/fhir/validation/index.js';

const ROOT = path.resolve(import.meta.dirname, '..');
const rounds = Number(process.argv[2] ?? 2000);

const bodies: unknown[] = [];
for (const drug of readdirSync(path.join(ROOT, 'fixtures/referrals'))) {
  for (const file of ['service-request.json', 'transaction-bundle.json']) {
    try {
      bodies.push(JSON.parse(readFileSync(path.join(ROOT, 'fixtures/referrals', drug, file), 'utf8')));
    } catch {
      // not every folder holds both
    }
  }
}

function intakeValidation(validator: FhirValidator, body: unknown): number {
  const issues = validator.validateBase(body);
  const resource = body as Resource;
  if (resource.resourceType === 'ServiceRequest') issues.push(...validator.validateProfiles(resource, [REFERRAL_PROFILE_URL]));
  return issues.length;
}

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)] ?? Number.NaN;
}

export interface ValidationBench {
  bodies: number;
  rounds: number;
  withoutInvariantsMedianUs: number;
  withInvariantsMedianUs: number;
  ratio: number;
  loadMs: { without: number; with: number };
}

export async function benchValidation(): Promise<ValidationBench> {
  let started = performance.now();
  const without = await FhirValidator.load({ profilesDir: path.join(ROOT, 'profiles'), baseInvariants: false });
  const loadWithout = performance.now() - started;
  started = performance.now();
  const withInvariants = await FhirValidator.load({ profilesDir: path.join(ROOT, 'profiles') });
  const loadWith = performance.now() - started;
  const samples = { without: [] as number[], with: [] as number[] };
  // Warm up both, then alternate so that both see the same machine load.
  for (let i = 0; i < 200; i++) {
    for (const body of bodies) {
      intakeValidation(without, body);
      intakeValidation(withInvariants, body);
    }
  }
  for (let round = 0; round < rounds; round++) {
    for (const body of bodies) {
      let t = performance.now();
      intakeValidation(without, body);
      samples.without.push(performance.now() - t);
      t = performance.now();
      intakeValidation(withInvariants, body);
      samples.with.push(performance.now() - t);
    }
  }
  const withoutMedian = median(samples.without) * 1000;
  const withMedian = median(samples.with) * 1000;
  return {
    bodies: bodies.length,
    rounds,
    withoutInvariantsMedianUs: Number(withoutMedian.toFixed(1)),
    withInvariantsMedianUs: Number(withMedian.toFixed(1)),
    ratio: Number((withMedian / withoutMedian).toFixed(2)),
    loadMs: { without: Math.round(loadWithout), with: Math.round(loadWith) },
  };
}

if (import.meta.url === `file://${process.argv[1]}`) {
  console.log(JSON.stringify(await benchValidation(), null, 2));
}
