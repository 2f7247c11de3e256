/**
 * Opens the store: embedded SQLite (better-sqlite3, a file under the data directory) or
 * PostgreSQL (pg.Pool) when `databaseUrl` is a postgres:// URL; then runs the migrations.
 * Everything past this file is written once for both engines.
 */
import { mkdirSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import Database from 'better-sqlite3';
import { Kysely, Migrator, PostgresDialect, SqliteDialect, sql, type PostgresPool, type SqliteDatabase } from 'kysely';
import type pg from 'pg';
import type { ResourceStore } from '../../ports/resource-store.js';
import type { AuthStateStore } from '../../ports/auth-state.js';
import { storeEngineOf, type StoreEngine } from './engine.js';
import { KyselyResourceStore, type PoolLoad } from './kysely-resource-store.js';
import { migrationProvider } from './migrations.js';
import { preparingPool } from './prepared-statements.js';
import { cancellablePool } from './query-cancellation.js';
import type { StoreDatabase } from './schema.js';
import { unavailableTranslatingDialect, type StatementObserver } from './unavailable-dialect.js';

export interface StoreOptions {
  /** `postgres://` / `postgresql://` selects PostgreSQL; otherwise a SQLite path (`sqlite:` prefix or `file:` URL allowed). */
  databaseUrl?: string;
  /** The SQLite file (`:memory:` for tests); wins over a non-PostgreSQL `databaseUrl`. Default `data/gateway.sqlite`. */
  sqliteFile?: string;
  /** PostgreSQL schema to use (created if missing); the pool's search_path is set to it. */
  postgresSchema?: string;
  /**
   * PostgreSQL: send the statements registered in prepared-statements.ts as named statements,
   * prepared once per connection (default true; docs/resilience.md#prepared-statements). Off for
   * a pooler between the gateway and PostgreSQL that cannot keep a connection's prepared
   * statements, such as PgBouncer in transaction mode before 1.21.
   */
  preparedStatements?: boolean;
  /** PostgreSQL pool size (default 10). */
  poolSize?: number;
  /**
   * Errors of pooled PostgreSQL connections, idle or checked out (a server restart, a failover, a
   * terminated backend); without it they are ignored, never fatal. The broken connection leaves
   * the pool and the next request opens a new one.
   */
  onPoolError?: (error: Error) => void;
  /** PostgreSQL `statement_timeout` of every pooled connection, in ms (default 30 s; 0 = none). Migrations run without it. */
  statementTimeoutMs?: number;
  /** How long a request waits for a pooled PostgreSQL connection, opening one included, before a 503 (default 10 s). */
  connectTimeoutMs?: number;
  /** /readyz answers 503 while more requests than this wait for a PostgreSQL connection (default 2 x poolSize). */
  maxWaitingRequests?: number;
  /**
   * SQLite `synchronous` in WAL mode (https://www.sqlite.org/pragma.html#pragma_synchronous).
   * `full` (default): a commit is on disk before it is acknowledged. `normal`: faster, but the
   * last commits before a power cut or OS crash (not a process crash) can be lost.
   */
  sqliteSynchronous?: SqliteSynchronous;
  /** Told of every statement sent, transaction control included (tests and benches count round trips). */
  observeStatements?: StatementObserver;
  /**
   * PostgreSQL: the least time between two ANALYZEs the store starts as it grows, in ms (default
   * 60 s, autovacuum's naptime; docs/search.md#statistics-kept).
   */
  statisticsNapMs?: number;
}

export type SqliteSynchronous = 'full' | 'normal';

export const DEFAULT_STATEMENT_TIMEOUT_MS = 30_000;
export const DEFAULT_CONNECT_TIMEOUT_MS = 10_000;
export const DEFAULT_POOL_SIZE = 10;

export interface OpenedResourceStore extends ResourceStore, AuthStateStore {
  readonly engine: StoreEngine;
  /** The durability and time-limit settings in force on the store's connections. */
  settings(): Promise<Record<string, string>>;
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
  // foreign keys are off by default in SQLite. synchronous must be set after journal_mode and
  // explicitly: in WAL mode SQLite's compiled default is NORMAL here, and under NORMAL a commit is
  // not yet synced when acknowledged, so a referral answered 201 could be lost to a power cut.
  database.pragma('journal_mode = WAL');
  database.pragma(`synchronous = ${(options.sqliteSynchronous ?? 'full') === 'full' ? 'FULL' : 'NORMAL'}`);
  database.pragma(`busy_timeout = ${SQLITE_BUSY_TIMEOUT_MS}`);
  database.pragma('foreign_keys = ON');
  database.pragma('temp_store = MEMORY');
  return new Kysely<StoreDatabase>({
    dialect: unavailableTranslatingDialect(new SqliteDialect({ database: withStatementCache(database) }), withObserver(options)),
  });
}

/** Distinct SQL texts whose prepared statements are kept; the least recently used goes first. */
const SQLITE_STATEMENT_CACHE_SIZE = 500;

/**
 * Kysely prepares every query anew on SQLite; better-sqlite3 statements can be run again and
 * again, and the store's queries come from a small set of shapes. Safe to share: the store runs
 * one statement at a time on its one connection, and never streams (iterate) a cached one.
 */
function withStatementCache(database: Database.Database): SqliteDatabase {
  const statements = new Map<string, Database.Statement>();
  return {
    close: () => database.close(),
    prepare: (text: string) => {
      let statement = statements.get(text);
      if (statement !== undefined) {
        statements.delete(text);
      } else {
        statement = database.prepare(text);
        if (statements.size >= SQLITE_STATEMENT_CACHE_SIZE) statements.delete(statements.keys().next().value!);
      }
      statements.set(text, statement);
      return statement;
    },
  };
}

function withObserver(options: StoreOptions): { observe?: StatementObserver } {
  return options.observeStatements ? { observe: options.observeStatements } : {};
}

/**
 * The PostgreSQL driver, loaded when a store opens on PostgreSQL: the embedded SQLite default
 * (`npm start`) never pays for it at start-up (docs/architecture.md, start-up).
 */
async function loadPostgresDriver(): Promise<typeof pg> {
  return (await import('pg')).default;
}

function newPostgresPool(
  driver: typeof pg,
  url: string,
  options: StoreOptions,
  schema: string | undefined,
  limits: { max: number; statementTimeoutMs: number },
): pg.Pool {
  const pool = new driver.Pool({
    connectionString: url,
    max: limits.max,
    application_name: postgresApplicationName(schema),
    // Bounds the wait for a pooled connection (and the opening of one): past it the request is a
    // 503, not a hang, while the database is away or every connection is busy.
    connectionTimeoutMillis: options.connectTimeoutMs ?? DEFAULT_CONNECT_TIMEOUT_MS,
    // TCP keepalive: a connection whose peer vanished without a word (a failover) errors out
    // instead of waiting forever.
    keepAlive: true,
    keepAliveInitialDelayMillis: 10_000,
    // Set at connection start-up, so every pooled connection sees the schema and the time limit.
    ...(limits.statementTimeoutMs > 0 ? { statement_timeout: limits.statementTimeoutMs } : {}),
    ...(schema === undefined ? {} : { options: `-c search_path=${schema}` }),
  });
  const onError = (error: Error): void => options.onPoolError?.(error);
  // An idle client's error is emitted on the pool; a checked-out client's on the client itself
  // (pg-pool removes its own listener while a client is lent). Either, unhandled, would end the
  // process: so every client gets a listener for its whole life.
  pool.on('error', onError);
  pool.on('connect', (client) => client.on('error', onError));
  return pool;
}

/** The pool as Kysely sees it, preparing the registered statements unless the options say not to. */
function withPreparedStatements(pool: pg.Pool, options: StoreOptions): PostgresPool {
  return options.preparedStatements === false ? pool : preparingPool(pool);
}

async function openPostgres(url: string, options: StoreOptions): Promise<{ db: Kysely<StoreDatabase>; pool: pg.Pool; schema: string }> {
  const schema = options.postgresSchema;
  if (schema !== undefined && !SCHEMA_NAME.test(schema)) {
    throw new Error(`postgresSchema must be a plain identifier (letters, digits, _), got ${JSON.stringify(schema)}`);
  }
  const driver = await loadPostgresDriver();
  const pool = newPostgresPool(driver, url, options, schema, {
    max: options.poolSize ?? DEFAULT_POOL_SIZE,
    statementTimeoutMs: options.statementTimeoutMs ?? DEFAULT_STATEMENT_TIMEOUT_MS,
  });
  // A search's statement is cancelled when its HTTP client goes away (query-cancellation.ts).
  const cancelConfig = {
    connectionString: url,
    application_name: `${postgresApplicationName(schema)}:cancel`.slice(0, 63),
    connectionTimeoutMillis: options.connectTimeoutMs ?? DEFAULT_CONNECT_TIMEOUT_MS,
  };
  const db = new Kysely<StoreDatabase>({
    dialect: unavailableTranslatingDialect(
      new PostgresDialect({ pool: withPreparedStatements(cancellablePool(driver, pool, cancelConfig), options) }),
      withObserver(options),
    ),
  });
  try {
    if (schema !== undefined) {
      const exists = await sql<{ found: number }>`select 1 as found from pg_namespace where nspname = ${schema}`.execute(db);
      if (exists.rows.length === 0) await sql`create schema if not exists ${sql.id(schema)}`.execute(db);
    }
    const current = await sql<{ schema: string | null }>`select current_schema() as schema`.execute(db);
    const effective = current.rows[0]?.schema;
    if (!effective) throw new Error('PostgreSQL has no current schema: set postgresSchema or the role search_path');
    return { db, pool, schema: effective };
  } catch (error) {
    await db.destroy();
    throw error;
  }
}

/**
 * Migrations run on a connection of their own without statement_timeout: building an index on a
 * large table may rightly take longer than any request should.
 */
async function migratePostgres(url: string, options: StoreOptions, schema: string): Promise<void> {
  const pool = newPostgresPool(await loadPostgresDriver(), url, options, options.postgresSchema, { max: 1, statementTimeoutMs: 0 });
  const db = new Kysely<StoreDatabase>({ dialect: new PostgresDialect({ pool }) });
  try {
    for (let attempt = 1; ; attempt++) {
      try {
        await migrate(db, 'postgresql', schema);
        return;
      } catch (error) {
        if (attempt >= MIGRATION_ATTEMPTS || !isOtherSchemaDropped(error, schema)) throw error;
        await new Promise((resolve) => setTimeout(resolve, 50 * attempt));
      }
    }
  } finally {
    await db.destroy();
  }
}

const MIGRATION_ATTEMPTS = 5;

/**
 * Kysely's migrator looks for its bookkeeping tables through an introspection query over every
 * schema of the database; a schema dropped by someone else while it runs (another tenant's
 * deployment, parallel test runs) fails it with 3F000 naming that schema. Nothing of ours is
 * wrong, and the migrations themselves run in a transaction: trying again is safe.
 */
function isOtherSchemaDropped(error: unknown, schema: string): boolean {
  const cause = (error as { cause?: { code?: unknown; message?: unknown } } | undefined)?.cause;
  const message = typeof cause?.message === 'string' ? cause.message : '';
  return cause?.code === '3F000' && !message.includes(`"${schema}"`);
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
    throw new Error(
      `Database migration ${failed} failed: ${error instanceof Error ? error.message : 'a value that is not an Error was thrown'}`,
      {
        cause: error,
      },
    );
  }
}

/**
 * Opens the store named by the options and brings its schema up to date.
 * `store.engine` tells which engine it runs on (for logs and /readyz).
 */
export async function openStore(options: StoreOptions): Promise<OpenedResourceStore> {
  const engine = storeEngineOf(options);
  if (engine === 'postgresql') {
    const { db, pool, schema } = await openPostgres(options.databaseUrl!, options);
    try {
      await migratePostgres(options.databaseUrl!, options, schema);
    } catch (error) {
      await db.destroy();
      throw error;
    }
    const maxWaiting = options.maxWaitingRequests ?? 2 * (options.poolSize ?? DEFAULT_POOL_SIZE);
    const poolLoad = (): PoolLoad => ({ waiting: pool.waitingCount, maxWaiting });
    const store = new KyselyResourceStore(db, engine, {
      poolLoad,
      ...(options.statisticsNapMs !== undefined ? { statisticsNapMs: options.statisticsNapMs } : {}),
    });
    await refreshStatisticsOrClose(store);
    return store;
  }
  const db = openSqlite(options);
  try {
    await migrate(db, engine, undefined);
  } catch (error) {
    await db.destroy();
    throw error;
  }
  const store = new KyselyResourceStore(db, engine);
  await refreshStatisticsOrClose(store);
  return store;
}

/**
 * Statistics after migrations, on every start: autovacuum may be off (it is on the machines this
 * runs on), and a new index or a restored database has none, so the planner would guess.
 */
async function refreshStatisticsOrClose(store: KyselyResourceStore): Promise<void> {
  try {
    await store.refreshStatistics();
  } catch (error) {
    await store.close();
    throw error;
  }
}
