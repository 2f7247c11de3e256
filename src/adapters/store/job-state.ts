/**
 * What the scheduled jobs keep in the database so that any process can run them: the pull jobs'
 * cursors, and the election of one runner per cron tick across the cluster.
 */
import type { Kysely } from 'kysely';
import type { StoreEngine } from './engine.js';
import { fromJsonColumn, toJsonColumn } from './json-columns.js';
import type { StoreDatabase } from './schema.js';

/** A claimed tick is kept this long: long enough for every process to have passed that tick. */
export const JOB_RUN_RETENTION_MS = 24 * 60 * 60_000;

/** How often one store prunes old ticks: pruning is housekeeping, not worth a query per tick. */
export const JOB_RUN_PRUNE_INTERVAL_MS = 60 * 60_000;

export async function readCursor(db: Kysely<StoreDatabase>, engine: StoreEngine, name: string): Promise<unknown> {
  const row = await db.selectFrom('job_cursors').select('value').where('name', '=', name).executeTakeFirst();
  return row === undefined ? undefined : fromJsonColumn(engine, row.value);
}

export async function writeCursor(db: Kysely<StoreDatabase>, name: string, value: unknown, now: Date): Promise<void> {
  const json = toJsonColumn(value, 'A cursor value');
  const at = now.toISOString();
  await db
    .insertInto('job_cursors')
    .values({ name, value: json, updated_at: at })
    .onConflict((oc) => oc.column('name').doUpdateSet({ value: json, updated_at: at }))
    .execute();
}

/**
 * The primary key decides, never a read first: of several processes inserting the same key, one
 * inserts and the others do nothing (on PostgreSQL a concurrent insert of the same key waits for
 * the first to commit, then does nothing).
 */
export async function claimJobRun(db: Kysely<StoreDatabase>, key: string, now: Date): Promise<boolean> {
  const inserted = await db
    .insertInto('job_runs')
    .values({ key, claimed_at: now.toISOString() })
    .onConflict((oc) => oc.column('key').doNothing())
    .returning('key')
    .executeTakeFirst();
  return inserted !== undefined;
}

export async function pruneJobRuns(db: Kysely<StoreDatabase>, now: Date): Promise<void> {
  const cutoff = new Date(now.getTime() - JOB_RUN_RETENTION_MS).toISOString();
  await db.deleteFrom('job_runs').where('claimed_at', '<', cutoff).execute();
}
