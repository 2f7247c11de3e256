/**
 * The storage contract on a real PostgreSQL server (TEST_DATABASE_URL, default
 * postgres://postgres@127.0.0.1:5432/test), each database a throwaway schema.
 * When the server is down these tests FAIL, saying how to start it.
 */
import { expect } from 'chai';
import { openStore } from '../../../src/adapters/store/index.js';
import { assertPostgresReachable, createPostgresSchema } from '../../support/postgres.js';
import { describeStoreContract } from './store-contract.js';

describe('PostgreSQL server for the store tests', function () {
  it('is reachable', async function () {
    await assertPostgresReachable();
  });
});

describeStoreContract('PostgreSQL', async () => {
  const schema = await createPostgresSchema();
  return {
    open: () => openStore({ databaseUrl: schema.databaseUrl, postgresSchema: schema.name, poolSize: 8 }),
    waitForLockWaiters: (count) => schema.waitForLockWaiters(count),
    severalStores: true,
    drop: () => schema.drop(),
  };
});

describe('PostgreSQL store set-up', function () {
  it('reports the postgresql engine and keeps its tables in the schema it was given', async function () {
    const schema = await createPostgresSchema();
    try {
      const store = await openStore({ databaseUrl: schema.databaseUrl, postgresSchema: schema.name });
      try {
        expect(store.engine).to.equal('postgresql');
        await store.ping();
      } finally {
        await store.close();
      }
      const pg = (await import('pg')).default;
      const client = new pg.Client({ connectionString: schema.databaseUrl });
      await client.connect();
      try {
        const { rows } = await client.query<{ table_name: string }>(
          `select table_name from information_schema.tables where table_schema = $1 order by table_name`,
          [schema.name],
        );
        expect(rows.map((r) => r.table_name)).to.include.members([
          'job_cursors',
          'job_runs',
          'outbox_messages',
          'referrals',
          'resource_history',
          'resources',
          'search_index',
        ]);
      } finally {
        await client.end();
      }
    } finally {
      await schema.drop();
    }
  });

  it('refuses a schema name that is not a plain identifier', async function () {
    let error: unknown;
    try {
      await openStore({ databaseUrl: 'postgres://postgres@127.0.0.1:5432/test', postgresSchema: 'x; drop table y' });
    } catch (e) {
      error = e;
    }
    expect(error).to.be.instanceOf(Error);
    expect((error as Error).message).to.contain('postgresSchema');
  });
});
