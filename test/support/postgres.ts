/**
 * A throwaway PostgreSQL schema per test database: `gw_test_<random>`, dropped CASCADE afterwards.
 * Stores opened with `{ databaseUrl, postgresSchema: name }` set their pool's search_path to it.
 *
 * PostgreSQL must be running: when it is not, this throws (tests fail, never skip) with the
 * command that starts it.
 */
import { randomBytes } from 'node:crypto';
import pg from 'pg';
import { postgresApplicationName } from '../../src/adapters/store/index.js';

export const TEST_DATABASE_URL = process.env.TEST_DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/test';

export interface PostgresTestSchema {
  databaseUrl: string;
  name: string;
  /** Resolves once `count` of the store's connections wait on a lock (e.g. a claim waiting on an open winner). */
  waitForLockWaiters(count: number): Promise<void>;
  drop(): Promise<void>;
}

/** The URL without its password, for messages. */
function redacted(url: string): string {
  try {
    const u = new URL(url);
    if (u.password) u.password = '***';
    return u.toString();
  } catch {
    return '(unparsable TEST_DATABASE_URL)';
  }
}

async function connect(): Promise<pg.Client> {
  const client = new pg.Client({ connectionString: TEST_DATABASE_URL });
  try {
    await client.connect();
    return client;
  } catch (error) {
    await client.end().catch(() => undefined);
    const reason = error instanceof Error ? error.message : String(error);
    throw new Error(
      `PostgreSQL is not reachable at ${redacted(TEST_DATABASE_URL)} (${reason}). ` +
        'Start it with: pg_ctlcluster --skip-systemctl-redirect $(ls /etc/postgresql) main start ' +
        "(and create the database once: psql -h 127.0.0.1 -U postgres -c 'create database test'), " +
        'or point TEST_DATABASE_URL at a server.',
      { cause: error },
    );
  }
}

/** Fails with a message saying how to start PostgreSQL when it is not running. */
export async function assertPostgresReachable(): Promise<void> {
  const client = await connect();
  await client.end();
}

export async function createPostgresSchema(): Promise<PostgresTestSchema> {
  const name = `gw_test_${randomBytes(6).toString('hex')}`;
  const admin = await connect();
  await admin.query(`create schema "${name}"`);
  let dropped = false;
  return {
    databaseUrl: TEST_DATABASE_URL,
    name,
    async waitForLockWaiters(count: number): Promise<void> {
      // Polls pg_stat_activity; the deadline only guards against a hang, it asserts nothing.
      const deadline = Date.now() + 15_000;
      for (;;) {
        const { rows } = await admin.query<{ waiting: string }>(
          `select count(*) as waiting from pg_stat_activity
            where application_name = $1 and wait_event_type = 'Lock'`,
          [postgresApplicationName(name)],
        );
        if (Number(rows[0]?.waiting ?? 0) >= count) return;
        if (Date.now() > deadline) throw new Error(`Fewer than ${count} sessions of ${name} ever waited on a lock`);
        await new Promise((resolve) => setTimeout(resolve, 5));
      }
    },
    async drop(): Promise<void> {
      if (dropped) return;
      dropped = true;
      try {
        await admin.query(`drop schema if exists "${name}" cascade`);
      } finally {
        await admin.end();
      }
    },
  };
}
