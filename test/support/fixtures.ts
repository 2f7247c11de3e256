/** One place that loads fixtures/ for tests. */
import { readdirSync, readFileSync, existsSync } from 'node:fs';
import path from 'node:path';
import type { Identifier } from 'fhir/r4.js';

export const FIXTURES_DIR = path.resolve(import.meta.dirname, '../../fixtures');

export function readFixture<T = any>(relativePath: string): T {
  return JSON.parse(readFileSync(path.join(FIXTURES_DIR, relativePath), 'utf8')) as T;
}

/** The drugs that have referral fixtures: fixtures/referrals/<drug>/service-request.json. */
export function referralFixtureDrugs(): string[] {
  const dir = path.join(FIXTURES_DIR, 'referrals');
  return readdirSync(dir, { withFileTypes: true })
    .filter((d) => d.isDirectory() && existsSync(path.join(dir, d.name, 'service-request.json')))
    .map((d) => d.name)
    .sort();
}

export interface InvalidCase {
  name: string;
  meta: { method: string; path: string; contentType: string; description: string; headers?: Record<string, string> };
  expected: { status: number; issues: Array<{ expression?: string; code?: string }> };
  /** The raw request body, exactly as sent. */
  body: string;
}

export function invalidCases(): InvalidCase[] {
  const dir = path.join(FIXTURES_DIR, 'invalid');
  return readdirSync(dir, { withFileTypes: true })
    .filter((d) => d.isDirectory())
    .map((d) => {
      const caseDir = path.join(dir, d.name);
      const bodyFile = readdirSync(caseDir).find((f) => f.startsWith('request.')) as string;
      return {
        name: d.name,
        meta: JSON.parse(readFileSync(path.join(caseDir, 'meta.json'), 'utf8')),
        expected: JSON.parse(readFileSync(path.join(caseDir, 'expected.json'), 'utf8')),
        body: readFileSync(path.join(caseDir, bodyFile), 'utf8'),
      };
    })
    .sort((a, b) => a.name.localeCompare(b.name));
}

/** A copy of a ServiceRequest fixture with a fresh order number, so each test gets its own referral. */
export function withOrderNumber<T extends { identifier?: Identifier[] }>(serviceRequest: T, value: string): T {
  const copy = structuredClone(serviceRequest);
  const identifiers = copy.identifier ?? [];
  const placer = identifiers.findIndex((i) => i.type?.coding?.some((c) => c.code === 'PLAC'));
  const index = placer >= 0 ? placer : 0;
  copy.identifier = identifiers.map((identifier, i) => (i === index ? { ...identifier, value } : identifier));
  return copy;
}
