/**
 * The gateway as real processes on one real PostgreSQL, talking to a real FHIR server: killed with
 * SIGKILL in the middle of delivery, and two of them serving traffic side by side for a minute.
 */
import { expect } from 'chai';
import { randomUUID } from 'node:crypto';
import { fhirFetch, waitUntil } from '../support/gateway.js';
import { readFixture, withOrderNumber } from '../support/fixtures.js';
import { createTestDatabase, logEvents, startGatewayProcess, type GatewayProcess } from '../support/process.js';
import { startStandInEhr, type StandInEhr } from '../../src/sandbox/stand-in-ehr.js';
import { phiFoundIn } from '../support/phi.js';
import { outboxTotal, referralTasksInEhr } from './ehr-helpers.js';

const OUTBOX = {
  OUTBOX_POLL_MS: '50',
  OUTBOX_RETRY_BASE_MS: '50',
  OUTBOX_RETRY_MAX_MS: '500',
  OUTBOX_MAX_ATTEMPTS: '10000',
  DIRECTORY_BUNDLE: 'none',
};

async function kill(process: GatewayProcess, signal: NodeJS.Signals): Promise<void> {
  if (process.child.exitCode !== null || process.child.signalCode !== null) return;
  process.child.kill(signal);
  await process.exited;
}

describe('gateway processes on one PostgreSQL', function () {
  this.timeout(240_000);
  let ehr: StandInEhr;
  let database: { url: string; drop(): Promise<void> };
  const processes: GatewayProcess[] = [];

  beforeEach(async () => {
    ehr = await startStandInEhr();
    database = await createTestDatabase();
  });
  afterEach(async () => {
    for (const p of processes.splice(0)) await kill(p, 'SIGKILL');
    await ehr.stop();
    await database.drop();
  });

  function start(env: Record<string, string> = {}): GatewayProcess {
    const started = startGatewayProcess({
      PORT: '0',
      HOST: '127.0.0.1',
      DATABASE_URL: database.url,
      EHR_FHIR_BASE_URL: ehr.baseUrl,
      EHR_POLL: 'false',
      ...OUTBOX,
      ...env,
    });
    processes.push(started);
    return started;
  }

  it('loses and duplicates nothing when killed with SIGKILL in the middle of delivery', async () => {
    // The EHR holds every request open: deliveries are in flight when the gateway dies.
    ehr.failWith('hang');
    const first = start({ OUTBOX_LEASE_MS: '3000', EHR_REQUEST_TIMEOUT_MS: '60000' });
    const firstPort = await first.listening;
    const template = readFixture('referrals/infliximab/service-request.json');
    for (let i = 0; i < 30; i += 1) {
      const response = await fhirFetch(`http://127.0.0.1:${firstPort}/fhir/ServiceRequest`, {
        body: withOrderNumber(template, `kill-${i}-${randomUUID()}`),
        headers: { prefer: 'return=minimal' },
      });
      expect(response.status).to.equal(201);
    }
    await waitUntil('deliveries are in flight', async () => (await outboxTotal(`http://127.0.0.1:${firstPort}`, 'delivering')) > 0);
    await kill(first, 'SIGKILL');

    ehr.failWith(undefined);
    const second = start({ OUTBOX_LEASE_MS: '3000' });
    const secondPort = await second.listening;
    await waitUntil(
      'every message is delivered after the restart',
      async () => (await outboxTotal(`http://127.0.0.1:${secondPort}`, 'delivered')) === 30,
      60_000,
      200,
    );
    const tasks = await referralTasksInEhr(ehr.baseUrl);
    expect(tasks.size).to.equal(30);
    expect([...tasks.values()].every((copies) => copies.length === 1)).to.equal(true);
    expect((await fhirFetch(`http://127.0.0.1:${secondPort}/fhir/ServiceRequest?_count=0`)).body.total).to.equal(30);
    // The processes' own logs (not the in-process capture the root hook reads) carry no PHI either.
    expect(phiFoundIn([...first.lines, ...second.lines])).to.deep.equal([]);
  });

  it('behaves as one gateway when two serve a minute of traffic: each cron tick runs once, each message is delivered once', async () => {
    const env = { EHR_POLL: 'true', EHR_POLL_CRON: '* * * * * *' };
    const a = start(env);
    const b = start(env);
    const ports = [await a.listening, await b.listening];
    const template = readFixture('referrals/vedolizumab/service-request.json');
    const started = Date.now();
    let posted = 0;
    let seededInEhr = 0;
    // A minute of traffic: referrals pushed to either gateway, and orders appearing in the EHR for the pull job.
    while (Date.now() - started < 60_000) {
      const port = ports[posted % 2] as number;
      const response = await fhirFetch(`http://127.0.0.1:${port}/fhir/ServiceRequest`, {
        body: withOrderNumber(template, `two-${posted}-${randomUUID()}`),
        headers: { prefer: 'return=minimal' },
      });
      expect(response.status).to.equal(201);
      posted += 1;
      if (posted % 20 === 0) {
        const created = await fhirFetch(`${ehr.baseUrl}/ServiceRequest`, {
          body: withOrderNumber(readFixture('referrals/ocrelizumab/service-request.json'), `ehr-${seededInEhr}-${randomUUID()}`),
        });
        expect(created.status).to.equal(201);
        seededInEhr += 1;
      }
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
    const expectedReferrals = posted + seededInEhr;
    await waitUntil(
      'every referral is in',
      async () => (await fhirFetch(`http://127.0.0.1:${ports[0]}/fhir/Task?_count=0`)).body.total === expectedReferrals,
      30_000,
      250,
    );
    await waitUntil(
      'every write-back is delivered',
      async () => (await outboxTotal(`http://127.0.0.1:${ports[0] as number}`, 'delivered')) === expectedReferrals,
      60_000,
      250,
    );

    // Each message delivered once: one Task per referral in the EHR, and one create per Task.
    const tasks = await referralTasksInEhr(ehr.baseUrl);
    expect(tasks.size).to.equal(expectedReferrals);
    expect([...tasks.values()].every((copies) => copies.length === 1)).to.equal(true);
    const taskCreates = ehr.requests().filter((r) => r.method === 'POST' && r.path.endsWith('/Task') && r.status === 201);
    expect(taskCreates.length).to.equal(expectedReferrals);
    // Both processes did deliver: the work was shared, not done by one.
    const deliveredBy = [a, b].map((p) => logEvents(p.lines, 'outbox message delivered').length);
    expect(deliveredBy.every((n) => n > 0)).to.equal(true);
    expect(deliveredBy[0]! + deliveredBy[1]!).to.equal(expectedReferrals);

    // Each cron tick of each job ran in exactly one of the two processes.
    const runs = [a, b].flatMap((p) => logEvents(p.lines, 'cluster job ran').map((e) => `${String(e['job'])}@${String(e['tick'])}`));
    expect(runs.filter((run) => run.startsWith('ehr-poll:')).length).to.be.at.least(50);
    expect(new Set(runs).size).to.equal(runs.length);
    expect(phiFoundIn([...a.lines, ...b.lines])).to.deep.equal([]);
  });
});
