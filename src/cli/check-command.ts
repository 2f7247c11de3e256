/**
 * `infusion-gateway check <fixtures folder> --to <fhir base>`: runs every fixture case (a folder
 * with expected.json, fixtures/README.md) against a running gateway, any deployment, and prints
 * pass or fail per case with the difference.
 */
import { randomUUID } from 'node:crypto';
import { statSync } from 'node:fs';
import { compareOutcome, describeDifference, expectedBusinessStatus, findFixtureCases, type Difference } from './fixture-cases.js';
import { credentialsFrom, FhirClient, type CredentialOptions } from './fhir-client.js';
import { EXIT, printJson, startProgress, table, type ExitCode, type Terminal } from './output.js';
import { createdServiceRequestIds, followReferralTask } from './referral-progress.js';

export interface CheckOptions extends CredentialOptions {
  to: string;
  json: boolean;
  timeoutMs: number;
  settleMs: number;
}

export interface CaseResult {
  name: string;
  description?: string;
  passed: boolean;
  differences: Difference[];
}

export async function checkCommand(folder: string, options: CheckOptions, terminal: Terminal): Promise<ExitCode> {
  try {
    if (!statSync(folder).isDirectory()) throw new Error('not a folder');
  } catch {
    terminal.err(`Not a fixtures folder: ${folder}`);
    return EXIT.usage;
  }
  const { cases, problems } = findFixtureCases(folder, { orderSuffix: `check-${randomUUID().slice(0, 8)}` });
  if (cases.length === 0) {
    terminal.err(
      `No fixture cases (folders with expected.json) under ${folder}${problems.length > 0 ? `:\n  ${problems.join('\n  ')}` : ''}`,
    );
    return EXIT.usage;
  }
  const client = new FhirClient(options.to, credentialsFrom(options, options.to));
  const results: CaseResult[] = problems.map((p) => ({
    name: p.split(':')[0]!,
    passed: false,
    differences: [{ field: 'case', expected: 'a readable case', actual: p }],
  }));
  const progress = startProgress(terminal, { total: cases.length, label: 'checking', json: options.json });
  for (const fixtureCase of cases) {
    const reply = await client.request(fixtureCase.request.method, fixtureCase.request.path, {
      body: fixtureCase.request.body,
      contentType: fixtureCase.request.contentType,
      headers: fixtureCase.request.headers,
    });
    let task: any;
    const ids = reply.status >= 200 && reply.status < 300 ? createdServiceRequestIds(reply) : [];
    if (ids.length > 0) {
      const until = expectedBusinessStatus(fixtureCase.expected);
      const trail = await followReferralTask(client, ids[0]!, {
        timeoutMs: options.timeoutMs,
        settleMs: options.settleMs,
        ...(until ? { until } : {}),
      });
      task = trail.task;
    }
    const issues = reply.body?.resourceType === 'OperationOutcome' ? (reply.body.issue ?? []) : [];
    const differences = compareOutcome(fixtureCase.expected, { status: reply.status, issues, ...(task ? { task } : {}) });
    results.push({
      name: fixtureCase.name,
      ...(fixtureCase.expected.description ? { description: fixtureCase.expected.description } : {}),
      passed: differences.length === 0,
      differences,
    });
    progress.tick();
  }
  progress.stop();
  const failed = results.filter((r) => !r.passed);
  if (options.json)
    printJson(terminal, {
      gateway: client.base,
      cases: results.length,
      passed: results.length - failed.length,
      failed: failed.length,
      results,
    });
  else {
    terminal.out(
      table(
        ['case', 'result'],
        results.map((r) => [r.name, r.passed ? 'pass' : 'FAIL']),
      ),
    );
    for (const r of failed)
      terminal.out(`\nFAIL ${r.name}${r.description ? `: ${r.description}` : ''}\n  ${r.differences.map(describeDifference).join('\n  ')}`);
    terminal.out(`\n${results.length} cases against ${client.base}: ${results.length - failed.length} passed, ${failed.length} failed`);
  }
  return failed.length > 0 ? EXIT.findings : EXIT.ok;
}
