/**
 * The gateway survives PostgreSQL going away under load: through a TCP proxy of the test's own
 * that the test cuts and restores, and by pg_terminate_backend on the gateway's own backends
 * (found by their application_name). The shared server is never stopped.
 */
import { expect } from 'chai';
import { randomUUID } from 'node:crypto';
import pg from 'pg';
import { openStore, postgresApplicationName, type OpenedResourceStore } from '../../src/adapters/store/index.js';
import { scheduleClusterJob } from '../../src/adapters/cron/cluster-job.js';
import { StoreUnavailableError } from '../../src/ports/store-unavailable.js';
import { fhirFetch, startGateway, waitUntil, type RunningGateway } from '../support/gateway.js';
import { readFixture, withOrderNumber } from '../support/fixtures.js';
import { createPostgresSchema, TEST_DATABASE_URL, type PostgresTestSchema } from '../support/postgres.js';
import { startStandInEhr, type StandInEhr } from '../../src/sandbox/stand-in-ehr.js';
import { startTcpProxy, type TcpProxy } from '../support/tcp-proxy.js';
import { referralTasksInEhr } from './ehr-helpers.js';

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

function urlThrough(proxy: TcpProxy): string {
  const url = new URL(TEST_DATABASE_URL);
  url.hostname = '127.0.0.1';
  url.port = String(proxy.port);
  return url.toString();
}

interface IntakeAnswer {
  status: number;
  retryAfter: string | null;
  outcomeType: string | undefined;
  serviceRequestId?: string;
  at: number;
}

/** Clients posting new referrals until told to stop; every answer is kept. */
function startIntakeLoad(baseUrl: string, clients: number): { answers: IntakeAnswer[]; stop(): Promise<void> } {
  const template = readFixture('referrals/vedolizumab/service-request.json');
  const answers: IntakeAnswer[] = [];
  let running = true;
  const client = async (): Promise<void> => {
    while (running) {
      const response = await fhirFetch(`${baseUrl}/fhir/ServiceRequest`, { body: withOrderNumber(template, `outage-${randomUUID()}`) });
      answers.push({
        status: response.status,
        retryAfter: response.headers.get('retry-after'),
        outcomeType: response.body?.resourceType,
        ...(response.status === 201 ? { serviceRequestId: response.body.id } : {}),
        at: Date.now(),
      });
      if (response.status === 503) await sleep(50);
    }
  };
  const loops = Array.from({ length: clients }, () => client());
  return {
    answers,
    stop: async () => {
      running = false;
      await Promise.all(loops);
    },
  };
}

async function intakeWorks(baseUrl: string): Promise<boolean> {
  const response = await fhirFetch(`${baseUrl}/fhir/ServiceRequest`, {
    body: withOrderNumber(readFixture('referrals/infliximab/service-request.json'), `probe-${randomUUID()}`),
  });
  return response.status === 201;
}

describe("when PostgreSQL drops the gateway's connections", function () {
  this.timeout(120_000);
  let proxy: TcpProxy;
  let ehr: StandInEhr;
  let gw: RunningGateway;
  let admin: pg.Client;

  beforeEach(async () => {
    const upstream = new URL(TEST_DATABASE_URL);
    proxy = await startTcpProxy({ host: upstream.hostname, port: Number(upstream.port || 5432) });
    ehr = await startStandInEhr();
    gw = await startGateway({
      engine: 'postgres',
      background: true,
      store: { databaseUrl: urlThrough(proxy), poolSize: 6, connectTimeoutMs: 1_000 },
      env: {
        EHR_FHIR_BASE_URL: ehr.baseUrl,
        EHR_POLL: 'false',
        OUTBOX_POLL_MS: '50',
        OUTBOX_RETRY_BASE_MS: '20',
        OUTBOX_RETRY_MAX_MS: '500',
        OUTBOX_MAX_ATTEMPTS: '10000',
      },
    });
    admin = new pg.Client({ connectionString: TEST_DATABASE_URL });
    await admin.connect();
  });
  afterEach(async () => {
    await admin.end();
    await proxy.restore().catch(() => undefined);
    await gw.stop();
    await ehr.stop();
    await proxy.stop();
  });

  it('answers 503 with Retry-After while the database is away, stores every 201 and takes intake again within 10 s: two cuts and a termination under load', async () => {
    const load = startIntakeLoad(gw.baseUrl, 4);
    try {
      await waitUntil('the load has stored referrals', async () => load.answers.some((a) => a.status === 201), 10_000);

      // Faults 1 and 2: the network to the database is cut (every connection dropped, new ones
      // refused) for a second, twice, under load.
      for (const cut of [1, 2]) {
        const before = load.answers.length;
        await proxy.cut();
        await waitUntil(
          `intake answers 503 during cut ${cut}`,
          async () => load.answers.slice(before).some((a) => a.status === 503),
          10_000,
        );
        const readyDuringCut = await fhirFetch(`${gw.baseUrl}/readyz`);
        expect(readyDuringCut.status).to.equal(503);
        expect(readyDuringCut.headers.get('retry-after')).to.match(/^\d+$/);
        expect(readyDuringCut.body.resourceType).to.equal('OperationOutcome');
        expect((await fhirFetch(`${gw.baseUrl}/healthz`)).status).to.equal(200);
        await sleep(1_000);
        await proxy.restore();
        const restoredAt = Date.now();
        await waitUntil(`intake works after cut ${cut}`, () => intakeWorks(gw.baseUrl), 10_000);
        expect(Date.now() - restoredAt).to.be.below(10_000);
        expect((await fhirFetch(`${gw.baseUrl}/readyz`)).status).to.equal(200);
        await waitUntil(
          `the load stores referrals again after cut ${cut}`,
          async () => load.answers.slice(before).some((a) => a.status === 201),
          10_000,
        );
      }

      // Fault 3: the server terminates the gateway's own backends (a failover, an operator).
      await sleep(500);
      const terminated = await admin.query<{ terminated: boolean }>(
        'select pg_terminate_backend(pid) as terminated from pg_stat_activity where application_name = $1',
        [postgresApplicationName(gw.postgresSchema)],
      );
      expect(terminated.rows.length).to.be.greaterThan(0);
      const terminatedAt = Date.now();
      await waitUntil('intake works after the backends were terminated', () => intakeWorks(gw.baseUrl), 10_000);
      expect(Date.now() - terminatedAt).to.be.below(10_000);
      await sleep(500);
    } finally {
      await load.stop();
    }

    const statuses = new Set(load.answers.map((a) => a.status));
    expect(
      [...statuses].filter((s) => s !== 201 && s !== 503),
      'answers other than 201 and 503',
    ).to.deep.equal([]);
    const unavailable = load.answers.filter((a) => a.status === 503);
    expect(unavailable.length).to.be.greaterThan(0);
    for (const answer of unavailable) {
      expect(answer.retryAfter).to.match(/^\d+$/);
      expect(answer.outcomeType).to.equal('OperationOutcome');
    }

    // Every 201 is stored, with its Task and referral row.
    const created = load.answers.filter((a) => a.status === 201).map((a) => a.serviceRequestId!);
    expect(created.length).to.be.greaterThan(0);
    const tenantSchema = gw.postgresSchema!;
    const stored = await admin.query<{ id: string }>(
      `select id from "${tenantSchema}".resources where resource_type = 'ServiceRequest' and id = any($1)`,
      [created],
    );
    expect(stored.rows.map((r) => r.id).sort()).to.deep.equal([...created].sort());
    const referrals = await admin.query<{ n: string }>(
      `select count(*) as n from "${tenantSchema}".referrals where service_request_id = any($1)`,
      [created],
    );
    expect(Number(referrals.rows[0]?.n)).to.equal(created.length);
    const tasks = await admin.query<{ n: string }>(
      `select count(*) as n from "${tenantSchema}".referrals r join "${tenantSchema}".resources t on t.resource_type = 'Task' and t.id = r.task_id where r.service_request_id = any($1)`,
      [created],
    );
    expect(Number(tasks.rows[0]?.n)).to.equal(created.length);

    // The outbox worker resumed by itself: every stored referral's Task reaches the EHR.
    const allReferrals = await admin.query<{ n: string }>(`select count(*) as n from "${tenantSchema}".referrals`);
    await waitUntil(
      'every Task reached the EHR',
      async () => (await referralTasksInEhr(ehr.baseUrl)).size === Number(allReferrals.rows[0]?.n),
      60_000,
      200,
    );
  });
});

describe('cron jobs while PostgreSQL is away', function () {
  this.timeout(60_000);

  it('skip the ticks they cannot claim and run again by themselves once the database is back', async () => {
    const upstream = new URL(TEST_DATABASE_URL);
    const proxy = await startTcpProxy({ host: upstream.hostname, port: Number(upstream.port || 5432) });
    const schema = await createPostgresSchema();
    const store = await openStore({ databaseUrl: urlThrough(proxy), postgresSchema: schema.name, connectTimeoutMs: 500 });
    const runs: number[] = [];
    const job = scheduleClusterJob('outage-probe', '* * * * * *', async () => void runs.push(Date.now()), { coordinator: store });
    try {
      await waitUntil('the job runs', async () => runs.length > 0, 10_000);
      await proxy.cut();
      await sleep(1_500);
      const cutEnded = Date.now();
      const duringCut = runs.filter((at) => at > cutEnded - 1_000).length;
      await proxy.restore();
      await waitUntil('the job runs again after the cut', async () => runs.some((at) => at > cutEnded), 10_000);
      expect(duringCut, 'runs in the last second of the cut').to.equal(0);
    } finally {
      await job.stop();
      await store.close();
      await schema.drop();
      await proxy.stop();
    }
  });
});

describe('PostgreSQL limits that protect the pool', function () {
  this.timeout(30_000);
  let schema: PostgresTestSchema;
  let store: OpenedResourceStore | undefined;
  beforeEach(async () => {
    schema = await createPostgresSchema();
  });
  afterEach(async () => {
    await store?.close();
    store = undefined;
    await schema.drop();
  });

  it('runs every pooled connection with the configured statement_timeout', async () => {
    store = await openStore({ databaseUrl: schema.databaseUrl, postgresSchema: schema.name, statementTimeoutMs: 1_500 });
    expect(await store.settings()).to.deep.equal({ statement_timeout: '1500ms' });
  });

  it('ends a statement that outlives statement_timeout as a 503-worthy StoreUnavailableError', async () => {
    store = await openStore({ databaseUrl: schema.databaseUrl, postgresSchema: schema.name, statementTimeoutMs: 300 });
    const holder = new pg.Client({ connectionString: TEST_DATABASE_URL });
    await holder.connect();
    try {
      await holder.query('begin');
      await holder.query('select pg_advisory_xact_lock(hashtextextended($1, 0))', ['held-by-test']);
      const started = Date.now();
      const error = await store
        .transaction((tx) => tx.lock('held-by-test'))
        .then(
          () => undefined,
          (e: unknown) => e,
        );
      expect(error).to.be.instanceOf(StoreUnavailableError);
      expect((error as StoreUnavailableError).reason).to.equal('timeout');
      expect((error as StoreUnavailableError).status).to.equal(503);
      expect(Date.now() - started).to.be.below(5_000);
    } finally {
      await holder.query('rollback');
      await holder.end();
    }
  });

  it('reports the store not ready while more requests wait for a connection than allowed, and ready again after', async () => {
    store = await openStore({
      databaseUrl: schema.databaseUrl,
      postgresSchema: schema.name,
      poolSize: 1,
      maxWaitingRequests: 1,
      connectTimeoutMs: 5_000,
    });
    const opened = store;
    let release!: () => void;
    const held = new Promise<void>((resolve) => (release = resolve));
    const holding = opened.transaction(async () => held);
    await sleep(100);
    const waiting = [opened.read(['default'], 'Patient', 'a'), opened.read(['default'], 'Patient', 'b')];
    await sleep(100);
    const saturated = await opened.readiness();
    expect(saturated).to.deep.include({ ready: false, reason: 'saturated' });
    release();
    await holding;
    await Promise.all(waiting);
    expect(await opened.readiness()).to.deep.equal({ ready: true });
  });

  it('answers a request 503 when no connection frees up within the acquire timeout', async () => {
    store = await openStore({ databaseUrl: schema.databaseUrl, postgresSchema: schema.name, poolSize: 1, connectTimeoutMs: 200 });
    const opened = store;
    let release!: () => void;
    const held = new Promise<void>((resolve) => (release = resolve));
    const holding = opened.transaction(async () => held);
    await sleep(50);
    const error = await opened.read(['default'], 'Patient', 'a').then(
      () => undefined,
      (e: unknown) => e,
    );
    release();
    await holding;
    expect(error).to.be.instanceOf(StoreUnavailableError);
    expect((error as StoreUnavailableError).reason).to.equal('busy');
  });
});
