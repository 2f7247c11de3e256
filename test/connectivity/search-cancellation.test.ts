/**
 * A search whose HTTP client goes away has its PostgreSQL statement cancelled, and its connection
 * goes back to the pool (issue 11, docs/resilience.md): an abandoned search must not hold a
 * backend until statement_timeout. The slow search is made slow without pg_sleep: the test holds
 * an ACCESS EXCLUSIVE lock on the gateway's `search_index` in a transaction of its own, so the
 * search waits on it (state active, wait_event_type Lock) until it is cancelled.
 */
import { expect } from 'chai';
import pg from 'pg';
import { postgresApplicationName } from '../../src/adapters/store/index.js';
import { attachTestToken } from '../support/test-clients.js';
import { fhirFetch, startGateway, waitUntil, type RunningGateway } from '../support/gateway.js';
import { TEST_DATABASE_URL } from '../support/postgres.js';

describe('a search abandoned by its client (postgres)', function () {
  this.timeout(60_000);
  let gateway: RunningGateway;
  let admin: pg.Client;
  /** Holds the lock in its own transaction; `admin` watches (pg_stat_activity is a snapshot per transaction). */
  let locker: pg.Client;

  before(async function () {
    gateway = await startGateway({ engine: 'postgres' });
    admin = new pg.Client({ connectionString: TEST_DATABASE_URL });
    await admin.connect();
    locker = new pg.Client({ connectionString: TEST_DATABASE_URL });
    await locker.connect();
  });

  after(async function () {
    await locker?.query('rollback').catch(() => undefined);
    await locker?.end();
    await admin?.end();
    await gateway?.stop();
  });

  const gatewayBackends = async (): Promise<Array<{ pid: number; state: string; wait: string | null; query: string }>> =>
    (
      await admin.query<{ pid: number; state: string; wait: string | null; query: string }>(
        'select pid, state, wait_event_type as wait, query from pg_stat_activity where application_name = $1',
        [postgresApplicationName(gateway.postgresSchema)],
      )
    ).rows;

  it('is cancelled within a second of the disconnect, and its connection serves the next search', async function () {
    const url = `${gateway.baseUrl}/fhir/Task?business-status=verifying-coverage`;
    // A warm pool first: the search below then runs on a connection that already exists.
    expect((await fhirFetch(url)).status).to.equal(200);

    await locker.query('begin');
    await locker.query(`lock table "${gateway.postgresSchema}".search_index in access exclusive mode`);
    const headers: Record<string, string> = { accept: 'application/fhir+json' };
    await attachTestToken(url, 'GET', headers);
    const client = new AbortController();
    const abandoned = fetch(url, { headers, signal: client.signal }).catch((error: Error) => error);
    // The search is running and waits on the lock.
    await waitUntil(
      'the search waits on the lock',
      async () => (await gatewayBackends()).some((b) => b.state === 'active' && b.wait === 'Lock' && /search_index/.test(b.query)),
      10_000,
    );

    client.abort();
    expect(await abandoned).to.be.instanceOf(Error);
    const abortedAt = performance.now();
    await waitUntil(
      'the search statement ends',
      async () => !(await gatewayBackends()).some((b) => b.state === 'active' && /search_index/.test(b.query)),
      5_000,
    );
    const cancelledInMs = performance.now() - abortedAt;
    expect(cancelledInMs, 'the statement ran on after the client left').to.be.below(1_000);
    await locker.query('rollback');

    // The connection was not lost: the backend that ran the search is idle in the pool and serves the next one.
    const backends = await gatewayBackends();
    expect(backends.length).to.be.greaterThan(0);
    expect(
      backends.every((b) => b.state === 'idle'),
      JSON.stringify(backends),
    ).to.equal(true);
    expect((await fhirFetch(url)).status).to.equal(200);
  });
});
