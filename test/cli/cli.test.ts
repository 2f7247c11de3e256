/**
 * The installed command, run as a person or a script runs it (`node bin/infusion-gateway.js`,
 * what `npx infusion-gateway` starts), against a real test gateway and a stand-in EHR over
 * HTTP on 127.0.0.1: help, exit codes, --json, and each command's findings.
 */
import { expect } from 'chai';
import { execFile } from 'node:child_process';
import { cpSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { FIXTURES_DIR, readFixture } from '../support/fixtures.js';
import { fhirFetch, startGateway, type RunningGateway } from '../support/gateway.js';
import { startStandInEhr, type StandInEhr } from '../../src/sandbox/stand-in-ehr.js';
import { accessToken, isGatewayOrigin } from '../support/test-clients.js';

const ROOT = path.resolve(import.meta.dirname, '../..');
const BIN = path.join(ROOT, 'bin/infusion-gateway.js');

interface Run {
  code: number;
  stdout: string;
  stderr: string;
}

/** Runs the CLI as a child process (asynchronously: the gateway it talks to runs in this process). */
/**
 * Runs the CLI. Pointed (--to) at a test gateway without a token of its own, it calls as that
 * tenant's EHR, with a token from the gateway's token endpoint (test-clients.ts).
 */
async function cli(args: readonly string[], env: Record<string, string> = {}): Promise<Run> {
  const to = args[args.indexOf('--to') + 1];
  if (
    args.includes('--to') &&
    to !== undefined &&
    URL.canParse(to) &&
    !args.includes('--token') &&
    env['GATEWAY_TOKEN'] === undefined &&
    isGatewayOrigin(new URL(to).origin)
  ) {
    env = { ...env, GATEWAY_TOKEN: await accessToken(new URL(to).origin, { role: 'ehr' }) };
  }
  return new Promise((resolve) => {
    execFile(
      process.execPath,
      [BIN, ...args],
      { cwd: ROOT, env: { ...process.env, ...env }, maxBuffer: 64 * 1024 * 1024 },
      (error, stdout, stderr) => {
        resolve({ code: error ? (typeof error.code === 'number' ? error.code : -1) : 0, stdout, stderr });
      },
    );
  });
}

const json = (run: Run): any => JSON.parse(run.stdout);

describe('infusion-gateway CLI', function () {
  this.timeout(120_000);
  let gw: RunningGateway;
  let fhir: string;
  let scratch: string;

  before(async () => {
    gw = await startGateway({ env: { EHR_POLL: 'false' } });
    fhir = `${gw.baseUrl}/fhir`;
    scratch = mkdtempSync(path.join(os.tmpdir(), 'cli-test-'));
  });
  after(async () => {
    await gw.stop();
    rmSync(scratch, { recursive: true, force: true });
  });

  describe('usage', () => {
    it('answers --help for the program and every command with exit code 0', async () => {
      const runs = await Promise.all([[], ['validate'], ['send'], ['check'], ['replay']].map((command) => cli([...command, '--help'])));
      for (const run of runs) {
        expect(run.code, run.stderr).to.equal(0);
        expect(run.stdout).to.match(/^Usage: infusion-gateway/);
      }
      expect(runs[0]!.stdout).to.contain('validate').and.contain('send').and.contain('check').and.contain('replay');
      expect(runs[4]!.stdout).to.contain('--dry-run').and.contain('--since');
    });

    it('exits 2 for wrong usage: an unknown command, a missing --to, a bad URL, a missing folder', async () => {
      const runs = await Promise.all([
        cli(['frobnicate']),
        cli(['send', 'fixtures/referrals/infliximab/service-request.json']),
        cli(['check', 'fixtures/', '--to', 'not a url']),
        cli(['check', path.join(scratch, 'nowhere'), '--to', fhir]),
        cli(['replay', '--from', fhir, '--since', '2026-01-01']),
        cli(['replay', '--from', fhir, '--since', 'yesterday', '--dry-run']),
      ]);
      for (const run of runs) expect(run.code, `${run.stdout}${run.stderr}`).to.equal(2);
      expect(runs[1]!.stderr).to.contain("required option '--to <fhir base>'");
      expect(runs[4]!.stderr).to.contain('--dry-run');
    });
  });

  describe('validate', () => {
    it('passes valid referrals, Bundles and a directory offline with exit code 0 and states the throughput', async () => {
      const run = await cli(['validate', 'fixtures/referrals', 'fixtures/directory', 'fixtures/site-check']);
      expect(run.code, run.stdout).to.equal(0);
      expect(run.stdout).to.match(/28 resources in \d+ files: 28 valid, 0 with errors .* \d+ resources\/s/);
      expect(run.stdout).to.contain('without a resourceType skipped');
    });

    it('reports every problem with its FHIRPath and exits 1, the same problems intake reports', async () => {
      const run = await cli(['validate', '--json', 'fixtures/invalid/several-base-problems/request.json']);
      expect(run.code).to.equal(1);
      const report = json(run);
      expect(report.resourcesWithErrors).to.equal(1);
      const expressions = report.documents[0].issues.filter((i: any) => i.severity === 'error').map((i: any) => i.expression[0]);
      const expected = readFixture('invalid/several-base-problems/expected.json').issues.map((i: any) => i.expression);
      expect([...new Set(expressions)]).to.have.members(expected);
    });

    it('reads NDJSON line by line, naming the line of each problem, including a line that is not JSON', async () => {
      const good = JSON.stringify(readFixture('referrals/vedolizumab/service-request.json'));
      const bad = JSON.stringify({ ...readFixture('referrals/vedolizumab/service-request.json'), intent: 'proposal' });
      const file = path.join(scratch, 'orders.ndjson');
      writeFileSync(file, `${good}\n${bad}\n{not json\n`);
      const run = await cli(['validate', '--json', file]);
      expect(run.code).to.equal(1);
      const report = json(run);
      expect(report.resources).to.equal(3);
      expect(report.documents.map((d: any) => [d.source.endsWith(':1'), d.source.endsWith(':2'), d.source.endsWith(':3')])).to.deep.equal([
        [true, false, false],
        [false, true, false],
        [false, false, true],
      ]);
      expect(report.documents[0].issues.filter((i: any) => i.severity === 'error')).to.deep.equal([]);
      expect(report.documents[1].issues.map((i: any) => i.expression[0])).to.include('ServiceRequest.intent');
      expect(report.documents[2].issues[0].diagnostics).to.match(/^Not valid JSON/);
    });
  });

  describe('check', () => {
    it('passes every fixture case against a running gateway', async () => {
      const run = await cli(['check', 'fixtures/', '--to', fhir, '--json']);
      const report = json(run);
      expect(
        report.results.filter((r: any) => !r.passed),
        JSON.stringify(
          report.results.filter((r: any) => !r.passed),
          null,
          1,
        ),
      ).to.deep.equal([]);
      expect(run.code).to.equal(0);
      expect(report.cases).to.be.at.least(29);
      expect(report.results.map((r: any) => r.name)).to.include.members([
        'invalid/several-base-problems',
        'site-check/seed-000-practice-address-patient-choice',
      ]);
    });

    it('fails a case whose expectation is wrong, with a readable difference, and exits 1', async () => {
      const cases = path.join(scratch, 'hospital-cases');
      cpSync(path.join(FIXTURES_DIR, 'site-check/too-far'), path.join(cases, 'too-far-wrong'), { recursive: true });
      cpSync(path.join(FIXTURES_DIR, 'site-check/ok'), path.join(cases, 'ok'), { recursive: true });
      const expectedFile = path.join(cases, 'too-far-wrong/expected.json');
      const wrong = {
        ...JSON.parse(readFileSync(expectedFile, 'utf8')),
        reasons: ['out-of-network'],
        firstSuggestion: 'hin-nashville-midtown',
      };
      writeFileSync(expectedFile, JSON.stringify(wrong));
      const run = await cli(['check', cases, '--to', fhir]);
      expect(run.code, run.stderr).to.equal(1);
      expect(run.stdout).to.match(/ok\s+pass/);
      expect(run.stdout).to.match(/too-far-wrong\s+FAIL/);
      expect(run.stdout).to.contain('reasons: expected ["out-of-network"], got ["too-far"]');
      expect(run.stdout).to.contain('firstSuggestion: expected hin-nashville-midtown, got hin-dallas-lake-highlands');
      expect(run.stdout).to.contain('2 cases against');
      expect(run.stdout).to.contain('1 passed, 1 failed');
    });
  });

  describe('send', () => {
    it("posts a referral and a transaction Bundle and shows each referral's Task and businessStatus", async () => {
      const order = readFixture('site-check/seed-000-practice-address-patient-choice/service-request.json');
      order.identifier[0].value = `cli-send-${Date.now()}`;
      const file = path.join(scratch, 'seed-000.json');
      writeFileSync(file, JSON.stringify(order));
      const run = await cli([
        'send',
        file,
        'fixtures/referrals/ocrelizumab/transaction-bundle.json',
        '--to',
        fhir,
        '--json',
        '--settle',
        '300',
      ]);
      expect(run.code, run.stderr).to.equal(0);
      const report = json(run);
      expect(report.results).to.have.length(2);
      const [single, bundle] = report.results;
      expect(single.httpStatus).to.equal(201);
      expect(single.statuses.at(-1)).to.equal('misroute-suspected');
      const task = await fhirFetch(`${fhir}/Task/${single.taskId}`);
      expect(task.body.focus.reference).to.equal(`ServiceRequest/${single.serviceRequestId}`);
      expect(bundle.httpStatus).to.equal(200);
      expect(bundle.statuses.at(-1)).to.equal('verifying-coverage');
    });

    it('shows a refusal with every issue and its expression, and exits 1', async () => {
      const run = await cli(['send', 'fixtures/invalid/missing-subject-requester-insurance/request.json', '--to', fhir]);
      expect(run.code).to.equal(1);
      expect(run.stdout).to.contain('ServiceRequest.subject');
      expect(run.stdout).to.contain('ServiceRequest.requester');
      expect(run.stdout).to.contain('1 refused or rejected');
    });
  });

  describe('replay', () => {
    let ehr: StandInEhr;
    const cases = ['seed-000-practice-address-patient-choice', 'too-far', 'ok', 'out-of-network'];

    before(async () => {
      ehr = await startStandInEhr();
      for (const name of cases) {
        const created = await fhirFetch(`${ehr.baseUrl}/ServiceRequest`, { body: readFixture(`site-check/${name}/service-request.json`) });
        expect(created.status).to.equal(201);
      }
    });
    after(async () => {
      await ehr.stop();
    });

    it('--dry-run reads every order page by page and shows the misroutes found, writing nothing', async () => {
      const before = await fhirFetch(`${fhir}/ServiceRequest?_count=0`);
      await fetch(`${ehr.controlUrl}/requests`, { method: 'DELETE' });
      const run = await cli(['replay', '--from', ehr.baseUrl, '--since', '2000-01-01', '--dry-run', '--page-size', '3', '--json']);
      expect(run.code, run.stderr).to.equal(1);
      const report = json(run);
      expect(report.summary.orders).to.equal(4);
      expect(report.summary.misroutes).to.equal(3);
      const byReason = report.orders.map((o: any) => [o.outcome, o.misrouteReasons]);
      expect(byReason).to.deep.include(['misroute-suspected', ['practice-address', 'not-patient-choice']]);
      expect(byReason).to.deep.include(['misroute-suspected', ['too-far']]);
      expect(byReason).to.deep.include(['verifying-coverage', []]);
      const requests: Array<{ method: string; query: string }> = await (await fetch(`${ehr.controlUrl}/requests`)).json();
      expect(requests.every((r) => r.method === 'GET')).to.equal(true);
      expect(requests.filter((r) => r.query.includes('_lastUpdated')).length, 'two pages').to.be.at.least(2);
      const after = await fhirFetch(`${fhir}/ServiceRequest?_count=0`);
      expect(after.body.total).to.equal(before.body.total);
    });

    it('prints a readable summary table for people', async () => {
      const run = await cli(['replay', '--from', ehr.baseUrl, '--since', '2000-01-01', '--dry-run']);
      expect(run.code).to.equal(1);
      expect(run.stdout).to.match(/orders\s+misroutes\s+no suitable site\s+coverage problems/);
      expect(run.stdout).to.match(/\n4\s+3\s+0\s+/);
      expect(run.stdout).to.contain('Dry run: nothing was written.');
    });

    it('without --dry-run sends each order to the gateway at --to and reports the decision of its Task', async () => {
      const run = await cli(['replay', '--from', ehr.baseUrl, '--since', '2000-01-01', '--to', fhir, '--json', '--settle', '300']);
      expect(run.code, run.stderr).to.equal(1);
      const report = json(run);
      expect(report.dryRun).to.equal(false);
      expect(report.orders.map((o: any) => o.outcome).sort()).to.deep.equal([
        'misroute-suspected',
        'misroute-suspected',
        'misroute-suspected',
        'verifying-coverage',
      ]);
      expect(report.orders.flatMap((o: any) => o.misrouteReasons)).to.include.members(['too-far', 'practice-address', 'out-of-network']);
    });

    // Last: it adds orders to the EHR the replays above read.
    it('sends the bearer token of GATEWAY_TOKEN, and --token before it, on every request', async () => {
      await fetch(`${ehr.controlUrl}/requests`, { method: 'DELETE' });
      const fromEnv = await cli(['send', 'fixtures/referrals/vedolizumab/service-request.json', '--to', ehr.baseUrl, '--timeout', '500'], {
        GATEWAY_TOKEN: 'token-from-env',
      });
      const fromOption = await cli(
        [
          'send',
          'fixtures/referrals/vedolizumab/service-request.json',
          '--to',
          ehr.baseUrl,
          '--timeout',
          '500',
          '--token',
          'token-from-option',
        ],
        { GATEWAY_TOKEN: 'token-from-env' },
      );
      expect(fromEnv.stderr + fromOption.stderr).to.contain('HTTP 201');
      const requests: Array<{ method: string; authorization?: string }> = await (await fetch(`${ehr.controlUrl}/requests`)).json();
      const posts = requests.filter((r) => r.method === 'POST');
      expect(posts.map((r) => r.authorization)).to.deep.equal(['Bearer token-from-env', 'Bearer token-from-option']);
      expect(requests.every((r) => r.authorization !== undefined)).to.equal(true);
    });
  });
});
