/**
 * Group commit for the embedded SQLite store (docs/resilience.md#sqlite-group-commit). SQLite has
 * one connection here, so transactions already run one after another; what each paid alone was
 * its COMMIT: the pages it changed written to the WAL and, under synchronous=FULL, the WAL synced
 * (most of an intake's database time). Transactions that queue while a group waits to start
 * (one event-loop turn) or runs now join it, each inside a SAVEPOINT of its own, and share one
 * COMMIT:
 *
 * - atomic each: a unit that fails is rolled back to its savepoint and its caller gets its error;
 *   the others in the group are not touched (the first unit of a group, which runs before any
 *   savepoint is needed, rolls the whole transaction back, with nothing else in it yet);
 * - durable each: no caller hears of success before the group's COMMIT returns, so an
 *   acknowledged write is on disk exactly as before; a failed COMMIT fails every unit of the group;
 * - isolated: units run one at a time, as before, each in its caller's async context (the audit
 *   trail's agent, the log's request id).
 *
 * A group takes at most MAX_GROUP units, so that a reader waiting for the connection waits for a
 * bounded batch; a unit that arrives alone commits alone, with the same statements as before
 * (BEGIN ... COMMIT, no savepoint).
 */
import { AsyncLocalStorage } from 'node:async_hooks';
import { sql, type Kysely, type Transaction } from 'kysely';

/** Units per group: about the intake concurrency a gateway sees on one core. */
const MAX_GROUP = 8;

interface Unit<DB> {
  run: (trx: Transaction<DB>) => Promise<unknown>;
  /** Runs a function in the async context the unit was queued from. */
  inCallerContext: <R>(fn: () => R) => R;
  resolve: (value: unknown) => void;
  reject: (error: unknown) => void;
}

/** Thrown inside the transaction to roll it back when its first unit failed; never seen outside. */
class FirstUnitFailed extends Error {
  constructor(readonly failure: unknown) {
    super('the first unit of a group failed');
  }
}

export class SqliteGroupCommit<DB> {
  readonly #db: Kysely<DB>;
  readonly #queue: Array<Unit<DB>> = [];
  #draining = false;

  constructor(db: Kysely<DB>) {
    this.#db = db;
  }

  /** Runs `work` in a transaction shared with whatever other work arrives meanwhile; resolves after the shared COMMIT. */
  run<T>(work: (trx: Transaction<DB>) => Promise<T>): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      this.#queue.push({
        run: work,
        inCallerContext: AsyncLocalStorage.snapshot(),
        resolve: resolve as (value: unknown) => void,
        reject,
      });
      if (this.#draining) return;
      this.#draining = true;
      // better-sqlite3 answers at once, so a running group never yields to the event loop: the
      // group starts one turn later, after the requests already read have reached their own
      // transaction and queued behind this one.
      setImmediate(() => void this.#drain());
    });
  }

  async #drain(): Promise<void> {
    try {
      while (this.#queue.length > 0) await this.#commitGroup();
    } finally {
      this.#draining = false;
    }
  }

  /** One transaction: the first queued unit, then those that arrive while the group runs (each in a savepoint), then COMMIT. */
  async #commitGroup(): Promise<void> {
    const first = this.#queue.shift()!;
    const done: Array<{ unit: Unit<DB>; value: unknown }> = [];
    const failed: Array<{ unit: Unit<DB>; error: unknown }> = [];
    /** A unit whose savepoint statements had not finished when the transaction failed. */
    let inFlight: Unit<DB> | undefined;
    try {
      await this.#db.transaction().execute(async (trx) => {
        try {
          done.push({ unit: first, value: await first.inCallerContext(() => first.run(trx)) });
        } catch (error) {
          throw new FirstUnitFailed(error);
        }
        while (this.#queue.length > 0 && done.length + failed.length < MAX_GROUP) {
          const unit = this.#queue.shift()!;
          inFlight = unit;
          await sql`savepoint unit`.execute(trx);
          let outcome: { value: unknown } | { error: unknown };
          try {
            outcome = { value: await unit.inCallerContext(() => unit.run(trx)) };
          } catch (error) {
            outcome = { error };
          }
          if ('error' in outcome) {
            await sql`rollback to unit`.execute(trx);
            await sql`release unit`.execute(trx);
            failed.push({ unit, error: outcome.error });
          } else {
            await sql`release unit`.execute(trx);
            done.push({ unit, value: outcome.value });
          }
          inFlight = undefined;
        }
      });
    } catch (error) {
      if (error instanceof FirstUnitFailed) {
        // Rolled back with nothing else in it: the units behind it start a new group.
        first.reject(error.failure);
        return;
      }
      // The COMMIT failed (or a savepoint statement did): nothing of the group is stored.
      for (const { unit } of done) unit.reject(error);
      for (const { unit, error: own } of failed) unit.reject(own);
      inFlight?.reject(error);
      return;
    }
    for (const { unit, value } of done) unit.resolve(value);
    for (const { unit, error } of failed) unit.reject(error);
  }
}
