/**
 * Queries cancelled when their caller no longer wants the answer (issue 11, docs/resilience.md):
 * a search whose HTTP client went away must not keep a PostgreSQL backend busy until its
 * statement_timeout. The store runs a cancellable query inside `whileWanted(signal, …)`; the pool
 * wrapper below notes which pooled connection that work checked out and, when the signal aborts,
 * asks PostgreSQL to cancel that backend's running statement (a CancelRequest on a connection of
 * its own, https://www.postgresql.org/docs/current/protocol-flow.html#PROTOCOL-FLOW-CANCELING-REQUESTS).
 * The statement ends with 57014; the connection itself stays open and goes back to the pool.
 *
 * SQLite has nothing to cancel: better-sqlite3 runs a statement to its end on the event loop, so
 * by the time a disconnect could be noticed the statement is over. Its statements are bounded
 * instead (page sizes, caps, indexes read in page order: docs/search.md).
 */
import { AsyncLocalStorage } from 'node:async_hooks';
import type pg from 'pg';

const wanted = new AsyncLocalStorage<AbortSignal>();

/** Runs `work` so that the PostgreSQL statements it starts are cancelled when `signal` aborts. */
export function whileWanted<T>(signal: AbortSignal | undefined, work: () => Promise<T>): Promise<T> {
  return signal === undefined ? work() : wanted.run(signal, work);
}

type PooledClient = pg.PoolClient & { processID?: number | null; secretKey?: number | null };

/**
 * The pool as Kysely's PostgresDialect sees it: `connect` checks a client out and, inside
 * `whileWanted`, cancels its backend's statement on abort until the client is released.
 */
export function cancellablePool(driver: typeof pg, pool: pg.Pool, cancelConfig: pg.ClientConfig): pg.Pool {
  const connect = async (): Promise<PooledClient> => {
    const client = (await pool.connect()) as PooledClient;
    const signal = wanted.getStore();
    if (signal === undefined) return client;
    // A failed cancel leaves the statement to its statement_timeout: nothing more to do.
    const cancel = (): void => void cancelBackend(driver, cancelConfig, client).catch(() => undefined);
    if (signal.aborted) cancel();
    else signal.addEventListener('abort', cancel, { once: true });
    const release = client.release;
    client.release = (error?: Error | boolean) => {
      signal.removeEventListener('abort', cancel);
      client.release = release;
      return release.call(client, error);
    };
    return client;
  };
  return new Proxy(pool, {
    get(target, property, receiver) {
      if (property === 'connect') return connect;
      const value = Reflect.get(target, property, receiver);
      return typeof value === 'function' ? value.bind(target) : value;
    },
  });
}

/** pg_cancel_backend by the protocol's own CancelRequest: no pooled connection needed, even when all are busy. */
async function cancelBackend(driver: typeof pg, config: pg.ClientConfig, client: PooledClient): Promise<void> {
  if (!client.processID) return;
  const canceller = new driver.Client(config);
  canceller.on('error', () => undefined);
  await canceller.connect();
  try {
    await canceller.query('select pg_cancel_backend($1)', [client.processID]);
  } finally {
    await canceller.end();
  }
}
