/**
 * Opens the store: embedded SQLite (better-sqlite3, a file under the data directory) or
 * PostgreSQL (pg.Pool) when `databaseUrl` is a postgres:// URL; then runs the migrations.
 * Everything past this file is written once for both engines.
 */
import { mkdirSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import Database from 'better-sqlite3';
import { Kysely, Migrator, PostgresDialect, SqliteDialect, sql } from 'kysely';
import pg from 'pg';
import type { ResourceStore } from '../../ports/resource-store.js';
import { storeEngineOf, type StoreEngine } from './engine.js';
import { KyselyResourceStore } from './kysely-resource-store.js';
import { migrationProvider } from './migrations.js';
import type { StoreDatabase } from './schema.js';

export { storeEngineOf, type StoreEngine } from './engine.js';

export interface StoreOptions {
  /** `postgres://` / `postgresql://` selects PostgreSQL; otherwise a SQLite path (`sqlite:` prefix or `file:` URL allowed). */
  databaseUrl?: string;
  /** The SQLite file (`:memory:` for tests); wins over a non-PostgreSQL `databaseUrl`. Default `data/gateway.sqlite`. */
  sqliteFile?: string;
  /** PostgreSQL schema to use (created if missing); the pool's search_path is set to it. */
  postgresSchema?: string;
  /** PostgreSQL pool size (default 10). */
  poolSize?: number;
  /** Errors of idle pooled PostgreSQL connections (e.g. a server restart); without it they are ignored, not fatal. */
  onPoolError?: (error: Error) => void;
}

export interface OpenedResourceStore extends ResourceStore {
  readonly engine: StoreEngine;
}

export const DEFAULT_SQLITE_FILE = 'data/gateway.sqlite';

/** SQLite waits this long for a lock held by another connection (e.g. a backup tool) before failing. */
const SQLITE_BUSY_TIMEOUT_MS = 5_000;

const SCHEMA_NAME = /^[A-Za-z_][A-Za-z0-9_]{0,62}$/;

/** The PostgreSQL `application_name` of the store's connections: tells them apart in pg_stat_activity. */
export function postgresApplicationName(schema?: string): string {
  return (schema === undefined ? 'infusion-gateway' : `infusion-gateway:${schema}`).slice(0, 63);
}

function sqliteFileOf(options: StoreOptions): string {
  if (options.sqliteFile !== undefined) return options.sqliteFile;
  const url = options.databaseUrl;
  if (url === undefined || url === '') return DEFAULT_SQLITE_FILE;
  if (url.startsWith('file:')) return fileURLToPath(url);
  return url.replace(/^sqlite:(\/\/)?/, '');
}

function openSqlite(options: StoreOptions): Kysely<StoreDatabase> {
  const file = sqliteFileOf(options);
  if (file !== ':memory:') mkdirSync(dirname(resolve(file)), { recursive: true });
  const database = new Database(file);
  // WAL: readers do not block the writer; busy_timeout: wait instead of failing on a lock;
  // foreign keys are off by default in SQLite. synchronous stays FULL: a referral acknowledged
  // with 201 must survive a power cut.
  database.pragma('journal_mode = WAL');
  database.pragma(`busy_timeout = ${SQLITE_BUSY_TIMEOUT_MS}`);
  database.pragma('foreign_keys = ON');
  return new Kysely<StoreDatabase>({ dialect: new SqliteDialect({ database }) });
}

async function openPostgres(url: string, options: StoreOptions): Promise<{ db: Kysely<StoreDatabase>; schema: string }> {
  const schema = options.postgresSchema;
  if (schema !== undefined && !SCHEMA_NAME.test(schema)) {
    throw new Error(`postgresSchema must be a plain identifier (letters, digits, _), got ${JSON.stringify(schema)}`);
  }
  const pool = new pg.Pool({
    connectionString: url,
    max: options.poolSize ?? 10,
    application_name: postgresApplicationName(schema),
    // Set at connection start-up, so every pooled connection (and the migrator) sees the schema.
    ...(schema === undefined ? {} : { options: `-c search_path=${schema}` }),
  });
  // An idle client's error is emitted on the pool; unhandled, it would end the process.
  pool.on('error', (error) => options.onPoolError?.(error));
  const db = new Kysely<StoreDatabase>({ dialect: new PostgresDialect({ pool }) });
  try {
    if (schema !== undefined) {
      const exists = await sql<{ found: number }>`select 1 as found from pg_namespace where nspname = ${schema}`.execute(db);
      if (exists.rows.length === 0) await sql`create schema if not exists ${sql.id(schema)}`.execute(db);
    }
    const current = await sql<{ schema: string | null }>`select current_schema() as schema`.execute(db);
    const effective = current.rows[0]?.schema;
    if (!effective) throw new Error('PostgreSQL has no current schema: set postgresSchema or the role search_path');
    return { db, schema: effective };
  } catch (error) {
    await db.destroy();
    throw error;
  }
}

async function migrate(db: Kysely<StoreDatabase>, engine: StoreEngine, schema: string | undefined): Promise<void> {
  const migrator = new Migrator({
    db,
    provider: migrationProvider(engine),
    // Pin the bookkeeping tables to our schema: Kysely otherwise finds a kysely_migration table
    // in any schema of the database and would take another schema's for ours.
    ...(schema === undefined ? {} : { migrationTableSchema: schema }),
  });
  const { error, results } = await migrator.migrateToLatest();
  if (error !== undefined) {
    const failed = results?.find((r) => r.status === 'Error')?.migrationName ?? 'unknown';
    throw new Error(`Database migration ${failed} failed: ${error instanceof Error ? error.message : String(error)}`, {
      cause: error,
    });
  }
}

/**
 * Opens the store named by the options and brings its schema up to date.
 * `store.engine` tells which engine it runs on (for logs and /readyz).
 */
export async function openStore(options: StoreOptions): Promise<OpenedResourceStore> {
  const engine = storeEngineOf(options);
  let db: Kysely<StoreDatabase>;
  let schema: string | undefined;
  if (engine === 'postgresql') {
    ({ db, schema } = await openPostgres(options.databaseUrl!, options));
  } else {
    db = openSqlite(options);
  }
  try {
    await migrate(db, engine, schema);
  } catch (error) {
    await db.destroy();
    throw error;
  }
  return new KyselyResourceStore(db, engine);
}
