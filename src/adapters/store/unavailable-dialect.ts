/**
 * Wraps a Kysely dialect so that every failure of the database that passes (connection refused or
 * cut, server shutting down, pool exhausted, statement timeout, SQLite busy) leaves the store as a
 * StoreUnavailableError: the HTTP edge answers it 503 with Retry-After and the outbox retries it.
 * Every other error (a constraint, a bug) passes through untouched. The wrapper also reports each
 * statement sent, so that tests and the bench can count an intake's round trips.
 */
import type {
  CompiledQuery,
  DatabaseConnection,
  DatabaseIntrospector,
  Dialect,
  DialectAdapter,
  Driver,
  Kysely,
  QueryCompiler,
  QueryResult,
  TransactionSettings,
} from 'kysely';
import { StoreUnavailableError, type StoreUnavailableReason } from '../../ports/store-unavailable.js';

/** Node's socket error codes that mean the server cannot be reached or the link broke. */
const SOCKET_ERROR_CODES = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'EPIPE',
  'ETIMEDOUT',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'ENOTFOUND',
  'EAI_AGAIN',
]);

/**
 * PostgreSQL SQLSTATEs (https://www.postgresql.org/docs/current/errcodes-appendix.html) that say
 * "not now" rather than "never": class 08 connection exceptions, 53 insufficient resources, the
 * 57P0x shutdowns, and the time limits this store sets.
 */
function postgresReason(sqlState: string): StoreUnavailableReason | undefined {
  if (sqlState.startsWith('08') || sqlState === '57P01' || sqlState === '57P02' || sqlState === '57P03') return 'unreachable';
  if (sqlState.startsWith('53') || sqlState === '55P03' || sqlState === '40P01') return 'busy';
  if (sqlState === '57014' || sqlState === '25P03') return 'timeout';
  return undefined;
}

/** node-postgres reports a dead or closing connection by these messages, without a code. */
const PG_CONNECTION_MESSAGES = [/^Connection terminated/, /is not queryable/, /^Query read timeout/, /^The server does not support SSL/];

/** What a database error means for availability; undefined when it is not about availability. */
export function unavailableReasonOf(error: unknown): StoreUnavailableReason | undefined {
  if (error instanceof StoreUnavailableError) return error.reason;
  if (typeof error !== 'object' || error === null) return undefined;
  const { code, message } = error as { code?: unknown; message?: unknown };
  if (typeof code === 'string') {
    if (SOCKET_ERROR_CODES.has(code)) return 'unreachable';
    if (/^[0-9A-Z]{5}$/.test(code)) {
      const reason = postgresReason(code);
      if (reason) return reason;
    }
    // better-sqlite3: another connection (a backup, a second process) holds the lock past busy_timeout.
    if (code.startsWith('SQLITE_BUSY') || code.startsWith('SQLITE_LOCKED')) return 'busy';
    if (code === 'SQLITE_INTERRUPT') return 'timeout';
  }
  if (typeof message === 'string') {
    // pg-pool: no connection became free (or none could be opened) within connectionTimeoutMillis.
    if (message.startsWith('timeout exceeded when trying to connect')) return 'busy';
    if (PG_CONNECTION_MESSAGES.some((pattern) => pattern.test(message))) return 'unreachable';
  }
  return undefined;
}

function translated(error: unknown): unknown {
  if (error instanceof StoreUnavailableError) return error;
  const reason = unavailableReasonOf(error);
  return reason === undefined ? error : new StoreUnavailableError(reason, { cause: error });
}

async function translating<T>(work: () => Promise<T>): Promise<T> {
  try {
    return await work();
  } catch (error) {
    throw translated(error);
  }
}

/** Told of every statement the store sends, transaction control included, with a query's SQL text. */
export type StatementObserver = (kind: 'query' | 'begin' | 'commit' | 'rollback', sql?: string) => void;

class TranslatingConnection implements DatabaseConnection {
  constructor(
    readonly inner: DatabaseConnection,
    private readonly observe: StatementObserver | undefined,
  ) {}

  executeQuery<R>(compiledQuery: CompiledQuery): Promise<QueryResult<R>> {
    this.observe?.('query', compiledQuery.sql);
    return translating(() => this.inner.executeQuery<R>(compiledQuery));
  }

  async *streamQuery<R>(compiledQuery: CompiledQuery, chunkSize?: number): AsyncIterableIterator<QueryResult<R>> {
    this.observe?.('query', compiledQuery.sql);
    try {
      yield* this.inner.streamQuery<R>(compiledQuery, chunkSize);
    } catch (error) {
      throw translated(error);
    }
  }
}

const innerOf = (connection: DatabaseConnection): DatabaseConnection =>
  connection instanceof TranslatingConnection ? connection.inner : connection;

class TranslatingDriver implements Driver {
  constructor(
    private readonly inner: Driver,
    private readonly observe: StatementObserver | undefined,
  ) {}

  init(): Promise<void> {
    return translating(() => this.inner.init());
  }

  async acquireConnection(): Promise<DatabaseConnection> {
    return new TranslatingConnection(await translating(() => this.inner.acquireConnection()), this.observe);
  }

  beginTransaction(connection: DatabaseConnection, settings: TransactionSettings): Promise<void> {
    this.observe?.('begin');
    return translating(() => this.inner.beginTransaction(innerOf(connection), settings));
  }

  commitTransaction(connection: DatabaseConnection): Promise<void> {
    this.observe?.('commit');
    return translating(() => this.inner.commitTransaction(innerOf(connection)));
  }

  rollbackTransaction(connection: DatabaseConnection): Promise<void> {
    this.observe?.('rollback');
    return translating(() => this.inner.rollbackTransaction(innerOf(connection)));
  }

  async savepoint(connection: DatabaseConnection, name: string, compile: QueryCompiler['compileQuery']): Promise<void> {
    if (!this.inner.savepoint) throw new Error('The database driver has no savepoints');
    await translating(() => this.inner.savepoint!(innerOf(connection), name, compile));
  }

  async rollbackToSavepoint(connection: DatabaseConnection, name: string, compile: QueryCompiler['compileQuery']): Promise<void> {
    if (!this.inner.rollbackToSavepoint) throw new Error('The database driver has no savepoints');
    await translating(() => this.inner.rollbackToSavepoint!(innerOf(connection), name, compile));
  }

  async releaseSavepoint(connection: DatabaseConnection, name: string, compile: QueryCompiler['compileQuery']): Promise<void> {
    if (!this.inner.releaseSavepoint) throw new Error('The database driver has no savepoints');
    await translating(() => this.inner.releaseSavepoint!(innerOf(connection), name, compile));
  }

  releaseConnection(connection: DatabaseConnection): Promise<void> {
    return this.inner.releaseConnection(innerOf(connection));
  }

  destroy(): Promise<void> {
    return this.inner.destroy();
  }
}

/** The dialect, with its driver's passing failures turned into StoreUnavailableError. */
export function unavailableTranslatingDialect(dialect: Dialect, options: { observe?: StatementObserver } = {}): Dialect {
  return {
    createDriver: (): Driver => new TranslatingDriver(dialect.createDriver(), options.observe),
    createQueryCompiler: (): QueryCompiler => dialect.createQueryCompiler(),
    createAdapter: (): DialectAdapter => dialect.createAdapter(),
    createIntrospector: (db: Kysely<any>): DatabaseIntrospector => dialect.createIntrospector(db),
  };
}
