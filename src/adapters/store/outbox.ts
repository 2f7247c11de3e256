/**
 * The transactional outbox over Kysely, one implementation for SQLite and PostgreSQL.
 *
 * A message is inserted in the transaction of the change it announces (enqueue), and workers in
 * any process claim, deliver and settle it afterwards. Claiming takes a lease: the message turns
 * `delivering` with `next_attempt_at` = end of the lease, so a worker that dies mid-delivery only
 * delays its messages until the lease runs out. Delivery is therefore at least once; receivers
 * stay idempotent (conditional create, update by id), and the lease must outlast one delivery
 * attempt (HTTP timeout included), or a slow worker and the one that took over would both hold
 * the message.
 *
 * Per-key ordering: only the head of an ordering key (no earlier message with that key that is not
 * delivered) is claimable. On PostgreSQL this holds under concurrency without any lock beyond the
 * claimed rows themselves, because "every earlier message is delivered" is monotonic:
 *  - delivered is final (nothing moves a message out of it), so once a snapshot shows message n as
 *    the head of its key, every earlier message's delivery has committed and no worker holds one;
 *  - two workers that see the same head both try to lock it FOR UPDATE SKIP LOCKED: one gets it,
 *    the other skips it; a worker that meets it after the first committed re-checks the row's
 *    newest version (READ COMMITTED re-evaluates the WHERE on it) and finds it `delivering` with
 *    a live lease, so not due;
 *  - later messages of that key are not heads in any snapshot taken before the head is delivered.
 * So at most one message per key is held at a time (lease expiry aside, see above).
 * The remaining hole is commit order: sequence numbers are handed out at INSERT time, so two
 * transactions enqueuing for the same key could commit in the other order and let a worker claim
 * the later message while the earlier is still invisible. enqueue therefore takes a transaction-
 * scoped advisory lock on the key first: enqueues of one key run one after another, and within a
 * key sequence order is commit order. SQLite runs one transaction at a time, which gives both.
 */
import type { OperationOutcome } from 'fhir/r4.js';
import { sql } from 'kysely';
import type { Expression, ExpressionBuilder, Insertable, Kysely, Selectable, SqlBool, Updateable } from 'kysely';
import type { NewOutboxMessage, OutboxMessage, OutboxStatus, TenantId } from '../../ports/resource-store.js';
import type { StoreEngine } from './engine.js';
import { fromJsonColumn, toJsonColumn } from './json-columns.js';
import type { OutboxMessagesTable, StoreDatabase } from './schema.js';

const UNSETTLED: readonly OutboxStatus[] = ['pending', 'delivering'];

/** Namespaces the outbox's advisory locks apart from ResourceWriter.lock keys. */
const ORDERING_LOCK_PREFIX = 'outbox-ordering-key:';

function messageOf(engine: StoreEngine, row: Selectable<OutboxMessagesTable>): OutboxMessage {
  const message: OutboxMessage = {
    id: row.id,
    tenant: row.tenant,
    orderingKey: row.ordering_key,
    kind: row.kind,
    payload: fromJsonColumn(engine, row.payload),
    sequence: Number(row.sequence),
    status: row.status as OutboxStatus,
    attempts: Number(row.attempts),
    nextAttemptAt: row.next_attempt_at,
    createdAt: row.created_at,
    updatedAt: row.updated_at,
  };
  if (row.last_error !== null) message.lastError = fromJsonColumn(engine, row.last_error) as OperationOutcome;
  if (row.delivered_at !== null) message.deliveredAt = row.delivered_at;
  return message;
}

/** A new message's row: pending, due at once. */
export function outboxRowOf(message: NewOutboxMessage, now: Date): Insertable<OutboxMessagesTable> {
  const at = now.toISOString();
  return {
    id: message.id,
    tenant: message.tenant,
    ordering_key: message.orderingKey,
    kind: message.kind,
    payload: toJsonColumn(message.payload, 'An outbox payload'),
    status: 'pending',
    attempts: 0,
    next_attempt_at: at,
    last_error: null,
    created_at: at,
    updated_at: at,
    delivered_at: null,
  };
}

export const OUTBOX_COLUMNS = [
  'id',
  'tenant',
  'ordering_key',
  'kind',
  'payload',
  'status',
  'attempts',
  'next_attempt_at',
  'last_error',
  'created_at',
  'updated_at',
  'delivered_at',
] as const satisfies ReadonlyArray<keyof OutboxMessagesTable>;

/** Inserts the message with the caller's handle: inside its transaction, it commits or rolls back with it. */
export async function enqueueMessage(db: Kysely<StoreDatabase>, engine: StoreEngine, message: NewOutboxMessage, now: Date): Promise<void> {
  if (engine === 'postgresql') {
    // Held to the end of the caller's transaction: see "commit order" above.
    await sql`select pg_advisory_xact_lock(hashtextextended(${ORDERING_LOCK_PREFIX + message.orderingKey}, 0))`.execute(db);
  }
  // DO NOTHING rather than a unique violation, which would abort the caller's whole transaction on PostgreSQL.
  const inserted = await db
    .insertInto('outbox_messages')
    .values(outboxRowOf(message, now))
    .onConflict((oc) => oc.column('id').doNothing())
    .returning('sequence')
    .executeTakeFirst();
  if (inserted === undefined) throw new Error(`Outbox message ${message.id} already exists`);
}

export async function claimDueMessages(
  db: Kysely<StoreDatabase>,
  engine: StoreEngine,
  now: Date,
  options: { limit: number; leaseMs: number },
): Promise<OutboxMessage[]> {
  if (!Number.isInteger(options.limit) || options.limit < 0)
    throw new RangeError(`limit must be a whole number >= 0, got ${options.limit}`);
  if (!Number.isFinite(options.leaseMs) || options.leaseMs <= 0) throw new RangeError(`leaseMs must be > 0, got ${options.leaseMs}`);
  if (options.limit === 0) return [];
  const at = now.toISOString();
  const leaseEnd = new Date(now.getTime() + options.leaseMs).toISOString();
  const postgres = engine === 'postgresql';

  const builder = db.transaction();
  // READ COMMITTED is what makes a skipped-then-committed row be re-checked on its newest version.
  const run = postgres ? builder.setIsolationLevel('read committed') : builder;
  const claimed = await run.execute(async (trx) => {
    const heads = await trx
      .selectFrom('outbox_messages as m')
      .select('m.sequence')
      .where('m.status', 'in', UNSETTLED)
      .where('m.next_attempt_at', '<=', at)
      .where((eb) =>
        eb.not(
          eb.exists(
            eb
              .selectFrom('outbox_messages as e')
              .select(sql.lit(1).as('one'))
              .whereRef('e.ordering_key', '=', 'm.ordering_key')
              .whereRef('e.sequence', '<', 'm.sequence')
              .where('e.status', '<>', 'delivered'),
          ),
        ),
      )
      .orderBy('m.sequence', 'asc')
      .limit(options.limit)
      // SQLite has no row locks (nor the syntax): its transactions already run one at a time.
      .$if(postgres, (qb) => qb.forUpdate().skipLocked())
      .execute();
    if (heads.length === 0) return [];
    return trx
      .updateTable('outbox_messages')
      .set((eb) => ({
        status: 'delivering',
        attempts: eb('attempts', '+', 1),
        next_attempt_at: leaseEnd,
        updated_at: at,
      }))
      .where(
        'sequence',
        'in',
        heads.map((h) => h.sequence),
      )
      .returningAll()
      .execute();
  });
  return claimed.map((row) => messageOf(engine, row)).sort((a, b) => a.sequence - b.sequence);
}

async function assertKnown(db: Kysely<StoreDatabase>, id: string): Promise<void> {
  const row = await db.selectFrom('outbox_messages').select('id').where('id', '=', id).executeTakeFirst();
  if (row === undefined) throw new Error(`Unknown outbox message ${id}`);
}

type StatusCondition = (eb: ExpressionBuilder<StoreDatabase, 'outbox_messages'>) => Expression<SqlBool>;

const unsettled: StatusCondition = (eb) => eb('status', 'in', UNSETTLED);

/** Moves one message to another state if its status meets `from`; whether it did. */
async function moveMessage(
  db: Kysely<StoreDatabase>,
  id: string,
  from: StatusCondition,
  to: Updateable<OutboxMessagesTable>,
): Promise<boolean> {
  const result = await db.updateTable('outbox_messages').set(to).where('id', '=', id).where(from).executeTakeFirst();
  return result.numUpdatedRows > 0n;
}

/**
 * A delivery that happened is a fact: it settles the message whatever state it reached meanwhile
 * (e.g. a lease taken over by another worker). A delivered message is left as it is.
 */
export async function markDelivered(db: Kysely<StoreDatabase>, id: string, now: Date): Promise<void> {
  const at = now.toISOString();
  const moved = await moveMessage(db, id, (eb) => eb('status', '<>', 'delivered'), {
    status: 'delivered',
    delivered_at: at,
    updated_at: at,
  });
  if (!moved) await assertKnown(db, id);
}

/** Only an unsettled message goes back to pending: a delivered one stays delivered, a dead one waits for an operator. */
export async function scheduleRetry(
  db: Kysely<StoreDatabase>,
  id: string,
  nextAttemptAt: Date,
  error: OperationOutcome,
  now: Date,
): Promise<void> {
  const moved = await moveMessage(db, id, unsettled, {
    status: 'pending',
    next_attempt_at: nextAttemptAt.toISOString(),
    last_error: toJsonColumn(error, 'An outbox error'),
    updated_at: now.toISOString(),
  });
  if (!moved) await assertKnown(db, id);
}

/** Only an unsettled message dies: a delivery that went through is never turned into a dead letter. */
export async function markDead(db: Kysely<StoreDatabase>, id: string, error: OperationOutcome, now: Date): Promise<void> {
  const moved = await moveMessage(db, id, unsettled, {
    status: 'dead',
    last_error: toJsonColumn(error, 'An outbox error'),
    updated_at: now.toISOString(),
  });
  if (!moved) await assertKnown(db, id);
}

export async function retryDeadMessage(db: Kysely<StoreDatabase>, id: string, now: Date): Promise<boolean> {
  const at = now.toISOString();
  return moveMessage(db, id, (eb) => eb('status', '=', 'dead'), { status: 'pending', next_attempt_at: at, updated_at: at });
}

export async function listOutboxMessages(
  db: Kysely<StoreDatabase>,
  engine: StoreEngine,
  filter: { status?: OutboxStatus; tenant?: TenantId; count: number; offset: number },
): Promise<{ messages: OutboxMessage[]; total: number }> {
  const base = db
    .selectFrom('outbox_messages')
    .$if(filter.status !== undefined, (qb) => qb.where('status', '=', filter.status!))
    .$if(filter.tenant !== undefined, (qb) => qb.where('tenant', '=', filter.tenant!));
  const rows =
    filter.count > 0
      ? await base.selectAll().orderBy('sequence', 'asc').limit(filter.count).offset(Math.max(0, filter.offset)).execute()
      : [];
  const counted = await base.select((eb) => eb.fn.countAll().as('total')).executeTakeFirstOrThrow();
  return { messages: rows.map((row) => messageOf(engine, row)), total: Number(counted.total) };
}

export async function readOutboxMessage(db: Kysely<StoreDatabase>, engine: StoreEngine, id: string): Promise<OutboxMessage | undefined> {
  const row = await db.selectFrom('outbox_messages').selectAll().where('id', '=', id).executeTakeFirst();
  return row ? messageOf(engine, row) : undefined;
}
