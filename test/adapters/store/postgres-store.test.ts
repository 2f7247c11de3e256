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

  /** A store in a schema of its own and a client on that schema, for watching what the store does to its tables. */
  async function withWatchedStore(
    options: { statisticsNapMs?: number },
    work: (
      store: Awaited<ReturnType<typeof openStore>>,
      analysedResources: () => Promise<number>,
      client: import('pg').Client,
    ) => Promise<void>,
  ): Promise<void> {
    const schema = await createPostgresSchema();
    const pg = (await import('pg')).default;
    const client = new pg.Client({ connectionString: schema.databaseUrl, options: `-c search_path=${schema.name}` });
    await client.connect();
    try {
      const store = await openStore({ databaseUrl: schema.databaseUrl, postgresSchema: schema.name, ...options });
      const analysedResources = async () =>
        Number(
          (await client.query<{ n: number }>(`select reltuples::float8 as n from pg_class where oid = to_regclass('resources')`)).rows[0]!
            .n,
        );
      try {
        await work(store, analysedResources, client);
      } finally {
        await store.close();
      }
    } finally {
      await client.end();
      await schema.drop();
    }
  }

  const writeBasics = async (store: Awaited<ReturnType<typeof openStore>>, count: number) => {
    for (let i = 0; i < count; i++) {
      await store.transaction((tx) => tx.create('default', { resourceType: 'Basic', id: `b${i}`, code: { text: 'x' } }, new Date()));
    }
  };

  it('analyses again by itself as the store grows, so that a read by id keeps to the primary key', async function () {
    this.timeout(30_000);
    await withWatchedStore({ statisticsNapMs: 0 }, async (store, analysedResources, client) => {
      expect(await analysedResources(), 'analysed empty when opened').to.equal(0);
      // The rule's 50 + 10% of 0, one transaction each, as intake writes.
      await writeBasics(store, 50);
      const deadline = Date.now() + 20_000;
      while ((await analysedResources()) < 50 && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 100));
      expect(await analysedResources()).to.equal(50);
      // Fifty rows fit a page or two, where a scan of the table is as good; among the indexes,
      // statistics of an empty table chose resources_by_last_updated (docs/search.md#statistics-kept).
      await client.query('set enable_seqscan = off');
      const { rows } = await client.query<{ 'QUERY PLAN': string }>(
        `explain select content from resources where tenant in ('default') and resource_type = 'Basic' and id = 'b7'`,
      );
      expect(rows.map((r) => r['QUERY PLAN']).join('\n')).to.contain('resources_pk');
    });
  });

  it('compresses large JSON values with LZ4 where the server has it, and reads them back whole', async function () {
    await withWatchedStore({}, async (store, _analysed, client) => {
      const { rows: settings } = await client.query<{ lz4: boolean }>(
        `select coalesce((select 'lz4' = any(enumvals) from pg_settings where name = 'default_toast_compression'), false) as lz4`,
      );
      const expected = settings[0]!.lz4 ? 'l' : '';
      const { rows } = await client.query<{ column: string; compression: string }>(
        `select c.relname || '.' || a.attname as column, a.attcompression as compression
           from pg_attribute a join pg_class c on c.oid = a.attrelid
          where c.relnamespace = current_schema()::regnamespace and c.relkind = 'r'
            and (c.relname, a.attname) in (('resources', 'content'), ('resource_history', 'content'), ('outbox_messages', 'payload'), ('referrals', 'referral'))
          order by 1`,
      );
      expect(rows).to.deep.equal(
        ['outbox_messages.payload', 'referrals.referral', 'resource_history.content', 'resources.content'].map((column) => ({
          column,
          compression: expected,
        })),
      );
      // Past the 2 kB at which PostgreSQL compresses, and compressible.
      const text = 'infliximab 5 mg/kg at weeks 0, 2 and 6, then every 8 weeks. '.repeat(200);
      await store.transaction((tx) => tx.create('default', { resourceType: 'Basic', id: 'large', code: { text } }, new Date()));
      const stored = await store.read(['default'], 'Basic', 'large');
      expect((stored as { code?: { text?: string } } | undefined)?.code?.text).to.equal(text);
      const { rows: sizes } = await client.query<{ stored: number }>(
        `select pg_column_size(content) as stored from resources where id = 'large'`,
      );
      expect(sizes[0]!.stored, 'stored compressed').to.be.below(text.length / 4);
    });
  });

  it('leaves a minute between those ANALYZEs by default, as autovacuum naps', async function () {
    this.timeout(30_000);
    await withWatchedStore({}, async (store, analysedResources) => {
      await writeBasics(store, 60);
      // With statisticsNapMs 0 the same writes are counted within a second (the test above).
      await new Promise((resolve) => setTimeout(resolve, 1500));
      expect(await analysedResources(), 'still the statistics taken when the store opened').to.equal(0);
    });
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
