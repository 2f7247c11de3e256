#!/usr/bin/env node
/**
 * Runs one tier of the test suite with the suite's own mocha configuration (.mocharc.json):
 *
 *   npm run test:unit          pure functions: no database, no HTTP, no child process (seconds)
 *   npm run test:integration   real PostgreSQL and SQLite, real HTTP on 127.0.0.1
 *   npm run test:slow          several processes, outages, fuzzing, whole corpora
 *
 * `npm test` still runs every file once. The tiers are folders and files named below; whatever a
 * tier does not claim is integration, so a new test file always runs somewhere.
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const UNIT = [
  'test/domain/**/*.test.ts',
  'test/fhir/*.test.ts',
  'test/fhir/validation/generated-tables.test.ts',
  'test/fhir/validation/profile-engine.test.ts',
  'test/fhir/validation/referral-profile.test.ts',
  'test/fhir/validation/structure.test.ts',
  'test/fhir/validation/existence-rules.test.ts',
  'test/config/**/*.test.ts',
  'test/console/api.test.ts',
  'test/console/calendar.test.ts',
  'test/console/model.test.ts',
  'test/console/router.test.ts',
  'test/console/metrics.test.ts',
  'test/fixtures/**/*.test.ts',
  'test/http/content-negotiation.test.ts',
  'test/use-cases/poll-cursor.test.ts',
  'test/logging/*.test.ts',
];

const SLOW = [
  'test/connectivity/processes.test.ts',
  'test/connectivity/database-outage.test.ts',
  'test/connectivity/healthz-under-search-load.test.ts',
  'test/main/**/*.test.ts',
  'test/fuzz/**/*.test.ts',
  'test/fhir/validation/corpus.test.ts',
  'test/fhir/validation/medplum-comparison.test.ts',
];

const tier = process.argv[2];
const selection = {
  unit: { spec: UNIT },
  slow: { spec: SLOW },
  integration: { spec: ['test/**/*.test.ts'], ignore: [...UNIT, ...SLOW] },
}[tier];
if (selection === undefined) {
  console.error('usage: node scripts/test-tier.mjs unit|integration|slow [mocha options]');
  process.exit(2);
}
// A copy of .mocharc.json with the tier's spec and ignore: mocha's --ignore does not take part in
// a configuration's own file selection otherwise.
const config = { ...JSON.parse(readFileSync('.mocharc.json', 'utf8')), ...selection };
const configFile = join(mkdtempSync(join(tmpdir(), 'mocha-tier-')), `.mocharc.${tier}.json`);
writeFileSync(configFile, JSON.stringify(config));
const result = spawnSync('npx', ['mocha', '--config', configFile, ...process.argv.slice(3)], { stdio: 'inherit' });
process.exit(result.status ?? 1);
