/**
 * The sandbox (src/sandbox/, docs/cli.md#sandbox): the gateway, the stand-in EHR and the stand-in
 * payer wired together, over real HTTP on 127.0.0.1 with the demo clients' real tokens. Seed 000's
 * story end to end, the request collection (requests/*.http) with each request's expected status,
 * `check fixtures/` passing and failing readably, and the `token` and `send --client` commands.
 */
import { expect } from 'chai';
import { execFile } from 'node:child_process';
import { cpSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { readdir } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { withFreshOrderNumbers } from '../../src/cli/fixture-cases.js';
import { ROUTE_TABLE, findRoute } from '../../src/http/route-table.js';
import { startSandbox, type Sandbox } from '../../src/sandbox/sandbox.js';
import { playSeedStory } from '../../src/sandbox/story.js';
import { FIXTURES_DIR } from '../support/fixtures.js';
import { runHttpFile, type SentRequest } from '../support/http-file.js';
import { phiFoundIn } from '../support/phi.js';

const ROOT = path.resolve(import.meta.dirname, '../..');
const BIN = path.join(ROOT, 'bin/infusion-gateway.js');
const REQUESTS = path.join(ROOT, 'requests');

interface Run {
  code: number;
  stdout: string;
  stderr: string;
}

/** The CLI as a person runs it: a child process, with no test credentials of any kind. */
function cli(args: readonly string[], env: Record<string, string> = {}, timeoutMs = 120_000): Promise<Run> {
  return new Promise((resolve) => {
    execFile(
      process.execPath,
      [BIN, ...args],
      { cwd: ROOT, env: { ...process.env, ...env }, timeout: timeoutMs, maxBuffer: 64 * 1024 * 1024 },
      (error, stdout, stderr) => {
        resolve({ code: error ? (typeof error.code === 'number' ? error.code : -1) : 0, stdout, stderr });
      },
    );
  });
}

/** Routes the collection leaves to the CLI or that are assets of a page it opens, and why. */
const NOT_IN_COLLECTION: Record<string, string> = {
  'POST /oauth/token': 'needs a signed client assertion: `infusion-gateway token` makes it (tested below)',
  'GET /api-docs/:file': "Swagger UI's assets, fetched by the page /api-docs",
  'GET /console/*rest': "the console's assets and pages, fetched by /console/",
  'GET /console': 'redirects to /console/',
  'POST /cds-services/:id/feedback': 'CDS Hooks feedback: not a route of the README',
};

describe('sandbox', function () {
  this.timeout(120_000);
  let sandbox: Sandbox;
  let scratch: string;

  before(async () => {
    sandbox = await startSandbox({ port: 0, logLevel: 'debug' });
    scratch = mkdtempSync(path.join(os.tmpdir(), 'sandbox-test-'));
  });

  after(async () => {
    // The gateway's log went to a file of the sandbox: no patient data may be in it either.
    const lines = readFileSync(sandbox.logFile, 'utf8').split('\n');
    await sandbox.stop();
    rmSync(scratch, { recursive: true, force: true });
    expect(lines.length).to.be.greaterThan(10);
    expect(phiFoundIn(lines).map((f) => f.marker)).to.deep.equal([]);
  });

  it("plays seed 000's story from the order to the booked Appointment, Coverage and Task in the EHR, printing each step", async () => {
    const printed: string[] = [];
    const result = await playSeedStory({
      fhirBase: sandbox.fhirBase,
      ehrBase: sandbox.ehr.baseUrl,
      payerBase: sandbox.payer.baseUrl,
      projectRoot: ROOT,
      print: (line) => printed.push(line),
    });

    expect(result.reasons).to.deep.equal(['practice-address', 'not-patient-choice']);
    expect(result.suggestions).to.deep.equal(['hin-nashville-green-hills', 'hin-nashville-midtown', 'hin-nashville-donelson']);
    expect(result.confirmedLocation).to.equal('hin-nashville-green-hills');
    expect(result.statuses).to.deep.equal(['misroute-suspected', 'verifying-coverage', 'auth-required', 'ready-to-schedule', 'scheduled']);
    expect(result.appointment.status).to.equal('booked');
    expect(result.inEhr.Appointment).to.have.length(1);
    expect(result.inEhr.Coverage).to.have.length(1);
    expect(result.inEhr.Task).to.have.length(1);
    // Read back from the EHR itself: the Appointment booked at the patient's site, the Task scheduled.
    const ehrAppointment = await (await fetch(`${sandbox.ehr.baseUrl}/Appointment/${result.inEhr.Appointment[0]}`)).json();
    expect(ehrAppointment.status).to.equal('booked');
    expect(ehrAppointment.start).to.equal(result.appointment.start);
    const ehrTask = await (await fetch(`${sandbox.ehr.baseUrl}/Task/${result.inEhr.Task[0]}`)).json();
    expect(ehrTask.businessStatus.coding[0].code).to.equal('scheduled');

    const text = printed.join('\n');
    const inOrder = [
      '4400 Harding Pike, Suite 300, Nashville, TN 37205',
      "the ordering practice's own address",
      'flags a misroute',
      "1. Harbor Infusion Center - Green Hills (Location/hin-nashville-green-hills)  <- the patient's choice",
      '$confirm-site',
      'authorization required, denial risks for the coordinator to review',
      '$submit-prior-auth',
      'payer answered 200 to POST /fhir/CoverageEligibilityRequest/$submit',
      'payer answered 200 to POST /fhir/Claim/$submit',
      'prior authorization: approved',
      'First slot found at Harbor Infusion Center - Green Hills',
      `201 Created: Appointment/${result.appointment.id}, booked`,
      '6. In the EHR',
      "the EHR's Task is at scheduled",
    ];
    let from = 0;
    for (const step of inOrder) {
      const at = text.indexOf(step, from);
      expect(at, `"${step}" after position ${from} in:\n${text}`).to.be.greaterThan(-1);
      from = at;
    }
    // What reached the EHR, in the order the outbox delivered it.
    const inEhr = text.slice(text.indexOf('6. In the EHR'));
    for (const line of [
      `Appointment/${result.inEhr.Appointment[0]}: booked`,
      `Coverage/${result.inEhr.Coverage[0]}: active`,
      `Task/${result.inEhr.Task[0]}: businessStatus`,
    ])
      expect(inEhr).to.contain(line);
    // Nothing about the patient is printed.
    expect(
      phiFoundIn(printed)
        .filter((f) => !f.marker.includes('Harding Pike'))
        .map((f) => f.marker),
    ).to.deep.equal([]);
  });

  it('runs the request collection: every request answers its expected status, and the collection covers every route', async () => {
    const tokens = {
      EHR_TOKEN: await token('demo-ehr'),
      COORD_TOKEN: await token('demo-coordinator'),
      OPERATOR_TOKEN: await token('demo-operator'),
      PAYER_TOKEN: await token('demo-payer-sonoran'),
      CDS_JWT: (await cli(['token', '--cds-service', `${sandbox.gatewayUrl}/cds-services/infusion-site-check`])).stdout.trim(),
    };
    // intake.http twice, once after the gateway verified the Coverage of the same member (referral-path.http,
    // coverage-by-phone.http): its conditional create of that Coverage must still find the EHR's one alone.
    const order = [
      'public.http',
      'referral-path.http',
      'coverage-by-phone.http',
      'intake.http',
      'operator.http',
      'notifications.http',
      'cds-hooks.http',
      'intake.http',
    ];
    const files = (await readdir(REQUESTS)).filter((f) => f.endsWith('.http'));
    expect([...files].sort()).to.deep.equal([...new Set(order)].sort());
    const sent: SentRequest[] = [];
    for (const file of order)
      sent.push(
        ...(await runHttpFile(path.join(REQUESTS, file), {
          variables: { gateway: sandbox.gatewayUrl },
          env: { ...process.env, ...tokens },
        })),
      );

    const failed = sent
      .filter((s) => s.failures.length > 0)
      .map((s) => `${path.basename(s.block.file)} ${s.block.method} ${s.block.url} (${s.block.title}): ${s.failures.join('; ')}`);
    expect(failed, failed.join('\n')).to.deep.equal([]);
    expect(
      sent.every((s) => s.block.expectStatus !== undefined),
      'every request states its expected status',
    ).to.equal(true);
    expect(sent.length).to.be.at.least(60);

    const covered = new Set<string>();
    for (const s of sent) {
      const route = findRoute(s.block.method, decodeURIComponent(new URL(s.url).pathname));
      if (route) covered.add(`${route.entry.method} ${route.entry.path}`);
    }
    const missing = ROUTE_TABLE.map((r) => `${r.method} ${r.path}`).filter((r) => !covered.has(r) && NOT_IN_COLLECTION[r] === undefined);
    expect(missing, 'routes no request of requests/*.http calls').to.deep.equal([]);
  });

  it("keeps the collection's order bodies equal to the fixtures they come from", () => {
    const pairs = [
      ['site-check/seed-000-practice-address-patient-choice/service-request.json', 'bodies/seed-000-order.json'],
      ['referrals/infliximab/transaction-bundle.json', 'bodies/infliximab-transaction.json'],
    ] as const;
    for (const [fixture, body] of pairs) {
      const expected = withFreshOrderNumbers(JSON.parse(readFileSync(path.join(FIXTURES_DIR, fixture), 'utf8')), '{{orderSuffix}}');
      expect(JSON.parse(readFileSync(path.join(REQUESTS, body), 'utf8')), body).to.deep.equal(expected);
    }
  });

  it('check fixtures/ --to the sandbox passes every case, as a SMART backend client', async () => {
    const run = await cli(['check', 'fixtures/', '--to', sandbox.fhirBase, '--client', 'demo-ehr', '--json']);
    const report = JSON.parse(run.stdout);
    const failures = report.results.filter((r: any) => !r.passed);
    expect(failures, JSON.stringify(failures, null, 1)).to.deep.equal([]);
    expect(run.code).to.equal(0);
    expect(report.cases).to.be.at.least(29);
  });

  it('check fails a deliberately wrong expectation with a readable difference and exit code 1', async () => {
    const cases = path.join(scratch, 'wrong');
    cpSync(path.join(FIXTURES_DIR, 'site-check/seed-000-practice-address-patient-choice'), path.join(cases, 'seed-000-wrong'), {
      recursive: true,
    });
    const expectedFile = path.join(cases, 'seed-000-wrong/expected.json');
    writeFileSync(
      expectedFile,
      JSON.stringify({ ...JSON.parse(readFileSync(expectedFile, 'utf8')), decision: 'ok', firstSuggestion: 'hin-nashville-donelson' }),
    );
    const run = await cli(['check', cases, '--to', sandbox.fhirBase, '--client', 'demo-ehr']);
    expect(run.code, run.stderr).to.equal(1);
    expect(run.stdout).to.match(/seed-000-wrong\s+FAIL/);
    expect(run.stdout).to.contain('decision: expected ok, got misroute-suspected');
    expect(run.stdout).to.contain('firstSuggestion: expected hin-nashville-donelson, got hin-nashville-green-hills');
    expect(run.stdout).to.contain('0 passed, 1 failed');
  });

  it('token prints a token the gateway takes; exit 2 for a client without a key or no gateway, 1 for a scope the gateway refuses', async () => {
    const ok = await cli(['token', 'demo-coordinator', '--gateway', sandbox.gatewayUrl]);
    expect(ok.code, ok.stderr).to.equal(0);
    const tasks = await fetch(`${sandbox.fhirBase}/Task`, { headers: { authorization: `Bearer ${ok.stdout.trim()}` } });
    expect(tasks.status).to.equal(200);
    const fromEnv = await cli(['token', 'demo-ehr', '--json'], { GATEWAY_URL: sandbox.gatewayUrl });
    expect(fromEnv.code).to.equal(0);
    expect(JSON.parse(fromEnv.stdout).accessToken).to.be.a('string');
    const unknown = await cli(['token', 'nobody', '--gateway', sandbox.gatewayUrl]);
    expect(unknown.code).to.equal(2);
    expect(unknown.stderr).to.contain("no key for client 'nobody'");
    const refused = await cli(['token', 'demo-payer-sonoran', '--gateway', sandbox.gatewayUrl, '--scope', 'system/Location.cu']);
    expect(refused.code).to.equal(1);
    expect(refused.stderr).to.contain('invalid_scope');
    const nobodyThere = await cli(['token', 'demo-ehr', '--gateway', 'http://127.0.0.1:1']);
    expect(nobodyThere.code).to.equal(2);
    const help = await cli(['token', '--help']);
    expect(help.code).to.equal(0);
    expect(help.stdout).to.contain('--cds-service');
  });

  it('send --client demo-ehr authenticates as a SMART backend client and follows the Task; without credentials it is refused', async () => {
    const order = path.join(scratch, 'order.json');
    writeFileSync(
      order,
      JSON.stringify(
        withFreshOrderNumbers(
          JSON.parse(readFileSync(path.join(FIXTURES_DIR, 'referrals/infliximab/service-request.json'), 'utf8')),
          'send-client',
        ),
      ),
    );
    const run = await cli(['send', order, '--to', sandbox.fhirBase, '--client', 'demo-ehr', '--json']);
    expect(run.code, run.stderr).to.equal(0);
    const [sent] = JSON.parse(run.stdout).results;
    expect(sent.httpStatus).to.equal(201);
    expect(sent.statuses[0]).to.be.oneOf(['received', 'verifying-coverage', 'auth-required']);
    const anonymous = await cli(['send', order, '--to', sandbox.fhirBase, '--json'], { GATEWAY_TOKEN: '' });
    expect(anonymous.code).to.equal(1);
    expect(JSON.parse(anonymous.stdout).results[0].httpStatus).to.equal(401);
  });

  it('`sandbox --story --exit` runs as a person runs it and ends with a booked Appointment', async () => {
    const run = await cli(['sandbox', '--story', '--exit', '--port', '0']);
    expect(run.code, run.stderr).to.equal(0);
    expect(run.stdout).to.contain('Sandbox up');
    expect(run.stdout).to.match(/infusion-gateway token demo-ehr --gateway http:\/\/127\.0\.0\.1:\d+/);
    expect(run.stdout).to.match(/Story done: Appointment\/[\w-]+ booked \d+\.\d s after the process started/);
  });

  async function token(client: string): Promise<string> {
    const run = await cli(['token', client, '--gateway', sandbox.gatewayUrl]);
    expect(run.code, run.stderr).to.equal(0);
    return run.stdout.trim();
  }
});
