/**
 * Schema migrations, in code, run by Kysely's Migrator on both engines at start-up. Append new
 * migrations with a name that sorts after the last; never edit one that has shipped.
 */
import { sql, type CreateTableBuilder, type Expression, type Kysely, type Migration, type MigrationProvider, type SqlBool } from 'kysely';
import type { StoreEngine } from './engine.js';

/** Adds the columns, in the order given, each `not null`: for a CreateTableBuilder's `$call`. */
function notNull(columns: Record<string, Expression<unknown>>) {
  return <T extends string>(table: CreateTableBuilder<T, any>): CreateTableBuilder<T, any> =>
    Object.entries(columns).reduce((tb, [name, type]) => tb.addColumn(name, type, (c) => c.notNull()), table);
}

/** Adds the columns, in the order given, each nullable: for a CreateTableBuilder's `$call`. */
function nullable(columns: Record<string, Expression<unknown>>) {
  return <T extends string>(table: CreateTableBuilder<T, any>): CreateTableBuilder<T, any> =>
    Object.entries(columns).reduce((tb, [name, type]) => tb.addColumn(name, type), table);
}

/** Column types that differ between the engines; everything else is written once. */
function columnTypes(engine: StoreEngine) {
  const postgres = engine === 'postgresql';
  return {
    // "C" collation: byte order, so ISO instants and ids sort the same way as on SQLite (BINARY).
    text: postgres ? sql`text collate "C"` : sql`text`,
    json: postgres ? sql`jsonb` : sql`text`,
    integer: sql`integer`,
  };
}

type ColumnTypes = ReturnType<typeof columnTypes>;

/** A resource version as stored: the current one in `resources`, every one in `resource_history`. */
function storedVersionColumns(t: ColumnTypes): Record<string, Expression<unknown>> {
  return { tenant: t.text, resource_type: t.text, id: t.text, version_id: t.integer, last_updated: t.text, content: t.json };
}

/** A table whose first column, `key`, is its text primary key: the rest is for the caller to add. */
function keyedTable(db: Kysely<any>, t: ColumnTypes, name: string, key: string) {
  return db.schema.createTable(name).addColumn(key, t.text, (c) => c.primaryKey());
}

/** A table of a text primary key and `not null` columns. */
async function createKeyedTable(
  db: Kysely<any>,
  t: ColumnTypes,
  name: string,
  key: string,
  columns: Record<string, Expression<unknown>>,
): Promise<void> {
  await keyedTable(db, t, name, key).$call(notNull(columns)).execute();
}

/** An index `name` of `table` on `columns`, in order; `where` makes it partial. */
async function createIndex(
  db: Kysely<any>,
  name: string,
  table: string,
  columns: readonly string[],
  where?: Expression<SqlBool>,
): Promise<void> {
  const index = db.schema
    .createIndex(name)
    .on(table)
    .columns([...columns]);
  await (where ? index.where(where) : index).execute();
}

/**
 * An index of `search_index` by value: every search names its tenant, resource type and
 * parameter first, then the value columns of the parameter's type. `where` makes it partial.
 */
async function createValueIndex(
  db: Kysely<any>,
  name: string,
  valueColumns: readonly string[],
  where?: Expression<SqlBool>,
): Promise<void> {
  await createIndex(db, name, 'search_index', ['tenant', 'resource_type', 'param', ...valueColumns], where);
}

function initialSchema(engine: StoreEngine): Migration {
  const t = columnTypes(engine);
  return {
    async up(db: Kysely<unknown>): Promise<void> {
      await db.schema
        .createTable('resources')
        .$call(notNull(storedVersionColumns(t)))
        .addPrimaryKeyConstraint('resources_pk', ['tenant', 'resource_type', 'id'])
        .execute();
      // The default search order: _lastUpdated, then id.
      await createIndex(db, 'resources_by_last_updated', 'resources', ['tenant', 'resource_type', 'last_updated', 'id']);

      await db.schema
        .createTable('resource_history')
        .$call(notNull(storedVersionColumns(t)))
        .addPrimaryKeyConstraint('resource_history_pk', ['tenant', 'resource_type', 'id', 'version_id'])
        .execute();

      await db.schema
        .createTable('search_index')
        .$call(notNull({ tenant: t.text, resource_type: t.text, resource_id: t.text, param: t.text }))
        .$call(
          nullable({
            token_system: t.text,
            token_code: t.text,
            string_norm: t.text,
            string_exact: t.text,
            ref_type: t.text,
            ref_id: t.text,
            uri: t.text,
            date_low: t.text,
            date_high: t.text,
          }),
        )
        .addForeignKeyConstraint(
          'search_index_resource_fk',
          ['tenant', 'resource_type', 'resource_id'],
          'resources',
          ['tenant', 'resource_type', 'id'],
          (fk) => fk.onDelete('cascade'),
        )
        .execute();
      // Rewriting a resource's rows, and the per-resource EXISTS probe of every criterion.
      await createIndex(db, 'search_index_by_resource', 'search_index', ['tenant', 'resource_type', 'resource_id', 'param']);
      // Selective lookups by value, one per parameter type.
      await createValueIndex(db, 'search_index_by_token', ['token_code', 'token_system']);
      await createValueIndex(db, 'search_index_by_reference', ['ref_id', 'ref_type']);
      await createValueIndex(db, 'search_index_by_string', ['string_norm']);
      await createValueIndex(db, 'search_index_by_date', ['date_low', 'date_high']);

      await db.schema
        .createTable('referrals')
        .$call(
          notNull({
            tenant: t.text,
            id: t.text,
            identifier_system: t.text,
            identifier_value: t.text,
            service_request_id: t.text,
            task_id: t.text,
            status: t.text,
            referral: t.json,
            created_at: t.text,
            updated_at: t.text,
          }),
        )
        .addPrimaryKeyConstraint('referrals_pk', ['tenant', 'id'])
        // The idempotency key: the sender's order number, per tenant. claimReferral relies on it.
        .addUniqueConstraint('referrals_identifier_unique', ['tenant', 'identifier_system', 'identifier_value'])
        .execute();
    },
  };
}

/**
 * The transactional outbox, the pull jobs' cursors and the cluster-wide election of cron ticks
 * (issue 3: several instances on one PostgreSQL).
 */
function outboxAndJobs(engine: StoreEngine): Migration {
  const t = columnTypes(engine);
  const postgres = engine === 'postgresql';
  return {
    async up(db: Kysely<unknown>): Promise<void> {
      await db.schema
        .createTable('outbox_messages')
        // The order within an ordering key, assigned by the database at insert time. enqueue takes
        // a per-key lock first on PostgreSQL, so within a key this order is also commit order.
        .addColumn('sequence', postgres ? sql`bigint` : sql`integer`, (c) =>
          postgres ? c.primaryKey().generatedAlwaysAsIdentity() : c.primaryKey().autoIncrement(),
        )
        .$call(notNull({ id: t.text, tenant: t.text, ordering_key: t.text, kind: t.text, payload: t.json, status: t.text }))
        .addColumn('attempts', t.integer, (c) => c.notNull().defaultTo(0))
        .addColumn('next_attempt_at', t.text, (c) => c.notNull())
        .addColumn('last_error', t.json)
        .$call(notNull({ created_at: t.text, updated_at: t.text }))
        .addColumn('delivered_at', t.text)
        .addUniqueConstraint('outbox_messages_id_unique', ['id'])
        .addCheckConstraint('outbox_messages_status_check', sql`status in ('pending', 'delivering', 'delivered', 'dead')`)
        .addCheckConstraint('outbox_messages_attempts_check', sql`attempts >= 0`)
        .execute();
      // The claim's scan, in sequence order over the messages that may be due (pending, or
      // delivering with a lease that may have run out) and only those: delivered and dead rows,
      // the bulk of the table over time, are not in it, so a claim never walks past them.
      await createIndex(
        db,
        'outbox_messages_unsettled',
        'outbox_messages',
        ['sequence', 'next_attempt_at'],
        sql<SqlBool>`status in ('pending', 'delivering')`,
      );
      // The claim's head-of-key probe: is there an earlier undelivered message with this key?
      await createIndex(
        db,
        'outbox_messages_undelivered_by_key',
        'outbox_messages',
        ['ordering_key', 'sequence'],
        sql<SqlBool>`status <> 'delivered'`,
      );
      // The operator's listings (dead letters first of all), in sequence order.
      await createIndex(db, 'outbox_messages_by_status', 'outbox_messages', ['status', 'sequence']);
      await createIndex(db, 'outbox_messages_by_tenant', 'outbox_messages', ['tenant', 'status', 'sequence']);

      await createKeyedTable(db, t, 'job_cursors', 'name', { value: t.json, updated_at: t.text });

      // The key, a job name and its tick: the primary key is the election (first insert wins).
      await createKeyedTable(db, t, 'job_runs', 'key', { claimed_at: t.text });
      // Pruning of old ticks.
      await createIndex(db, 'job_runs_by_claimed_at', 'job_runs', ['claimed_at']);
    },
  };
}

/** Follow-up jobs find referrals by status (pended authorizations, say), least recently changed first; payers by id alone. */
function referralsByStatus(): Migration {
  return {
    async up(db: Kysely<any>): Promise<void> {
      await createIndex(db, 'referrals_by_status', 'referrals', ['status', 'updated_at', 'id']);
      // A payer names a claim by the referral's id alone, without a tenant.
      await createIndex(db, 'referrals_by_id', 'referrals', ['id']);
    },
  };
}

/** Chair bookings and holds (issue 6): the table the no-double-booking rule is enforced on. */
function chairBookings(engine: StoreEngine): Migration {
  const t = columnTypes(engine);
  return {
    async up(db: Kysely<any>): Promise<void> {
      await keyedTable(db, t, 'chair_bookings', 'appointment_id')
        .$call(
          notNull({
            tenant: t.text,
            referral_id: t.text,
            location_id: t.text,
            chair_id: t.text,
            start_at: t.text,
            end_at: t.text,
            status: t.text,
          }),
        )
        .addColumn('hold_expires_at', t.text)
        .$call(notNull({ created_at: t.text, updated_at: t.text }))
        .addCheckConstraint('chair_bookings_status_check', sql`status in ('held', 'booked')`)
        .addCheckConstraint('chair_bookings_interval_check', sql`start_at < end_at`)
        .execute();
      // The overlap probe under the chair's lock, and $find's busy intervals of a site.
      await createIndex(db, 'chair_bookings_by_chair', 'chair_bookings', ['location_id', 'chair_id', 'start_at']);
    },
  };
}

/** Authentication (issue 10): the gateway's signing keys and the client assertion ids already used. */
function auth(engine: StoreEngine): Migration {
  const t = columnTypes(engine);
  return {
    async up(db: Kysely<any>): Promise<void> {
      await createKeyedTable(db, t, 'signing_keys', 'kid', { private_jwk: t.text, created_at: t.text });
      // The key, client id and jti: the primary key refuses a replay, whichever process sees it second.
      await createKeyedTable(db, t, 'used_assertions', 'jti_key', { expires_at: t.text });
      await createIndex(db, 'used_assertions_by_expiry', 'used_assertions', ['expires_at']);
    },
  };
}

/**
 * Searches that stay fast at volume (issue 11, docs/search.md). Each value index now ends in the
 * resource id, so a criterion is answered from the index alone (a covering range scan yielding
 * the matching ids) and the planner can start from the rarest criterion and probe `resources` by
 * primary key. The old value indexes are their prefixes and go, so intake writes no more index
 * entries than before. Statistics are gathered after migrations by openStore, not here.
 */
function searchAtVolume(): Migration {
  const valueIndexes = [
    { old: 'search_index_by_token', name: 'search_index_token_ids', columns: ['token_code', 'token_system'] },
    { old: 'search_index_by_reference', name: 'search_index_reference_ids', columns: ['ref_id', 'ref_type'] },
    { old: 'search_index_by_string', name: 'search_index_string_ids', columns: ['string_norm'] },
    { old: 'search_index_by_date', name: 'search_index_date_ids', columns: ['date_low', 'date_high'] },
  ];
  return {
    async up(db: Kysely<any>): Promise<void> {
      for (const index of valueIndexes) {
        await createValueIndex(db, index.name, [...index.columns, 'resource_id']);
        await db.schema.dropIndex(index.old).execute();
      }
      // Exact string and uri matches had no index at all.
      await createValueIndex(db, 'search_index_exact_ids', ['string_exact', 'resource_id'], sql<SqlBool>`string_exact is not null`);
      await createValueIndex(db, 'search_index_uri_ids', ['uri', 'resource_id'], sql<SqlBool>`uri is not null`);
    },
  };
}

/**
 * Orders that change after they are sent (docs/order-changes.md): releasing a referral's chairs
 * finds its holds and bookings by referral, not by chair.
 */
function chairBookingsByReferral(): Migration {
  return {
    async up(db: Kysely<any>): Promise<void> {
      await createIndex(db, 'chair_bookings_by_referral', 'chair_bookings', ['referral_id']);
    },
  };
}

/**
 * Extended statistics for searches of two criteria (docs/search.md#statistics), PostgreSQL only.
 * The planner multiplies the selectivities of `tenant`, `resource_type`, `param` and the value as if
 * they were independent; they are not (a `param` implies its `resource_type`, `code=fulfill` holds
 * for every referral Task), so a queue such as `Task?business-status=verifying-coverage&code=fulfill`
 * was estimated at 4% of its rows and read every match, then sorted: 663 ms at 100,000 referrals,
 * 4.0 ms with these (measured, docs/search.md). `dependencies` and `mcv` give it the real joint
 * frequencies ([CREATE STATISTICS](https://www.postgresql.org/docs/current/sql-createstatistics.html));
 * ANALYZE (ResourceStore.refreshStatistics) fills them. Token values only: the same on reference
 * values made the planner sort a payer's cursor pages of Coverage (search-plans.test.ts). SQLite
 * has no equivalent and needs none here: it drives from the first criterion's ordered index.
 */
function searchIndexStatistics(engine: StoreEngine): Migration {
  return {
    async up(db: Kysely<any>): Promise<void> {
      if (engine !== 'postgresql') return;
      await sql`create statistics search_index_token_statistics (dependencies, mcv)
                on tenant, resource_type, param, token_code from search_index`.execute(db);
    },
  };
}

/**
 * The audit trail (issue 10, docs/audit.md): append-only, apart from the retention purge. One row
 * per AuditEvent with the columns the operator's search filters on, and one row per entity
 * reference, so `entity=ServiceRequest/123` is an index range scan, not a scan of JSON.
 */
function auditEvents(engine: StoreEngine): Migration {
  const t = columnTypes(engine);
  return {
    async up(db: Kysely<any>): Promise<void> {
      await keyedTable(db, t, 'audit_events', 'id')
        .$call(notNull({ recorded: t.text, agent_who: t.text, agent_role: t.text }))
        .addColumn('tenant', t.text)
        // detail: the rest of the record (entities, query names, operation), references and names only.
        .$call(notNull({ action: t.text, subtype: t.text, outcome: t.integer, detail: t.json }))
        .addCheckConstraint('audit_events_action_check', sql`action in ('C', 'R', 'U', 'D', 'E')`)
        .addCheckConstraint('audit_events_outcome_check', sql`outcome in (0, 4, 8, 12)`)
        .execute();
      // Newest first, with the id as tie-breaker (the keyset of the next link); the purge's range.
      await createIndex(db, 'audit_events_by_recorded', 'audit_events', ['recorded', 'id']);
      // agent=: one client's events, newest first.
      await createIndex(db, 'audit_events_by_agent', 'audit_events', ['agent_who', 'recorded', 'id']);
      await db.schema
        .createTable('audit_event_entities')
        // recorded: copied from the event so that entity= is answered in time order from this index alone.
        .$call(notNull({ event_id: t.text, reference: t.text, recorded: t.text }))
        .addPrimaryKeyConstraint('audit_event_entities_pk', ['event_id', 'reference'])
        .execute();
      // Append-only in the database itself, not only by the code's habit: an UPDATE of either table
      // is refused whoever sends it; DELETE stays for the retention purge.
      for (const table of ['audit_events', 'audit_event_entities']) {
        if (engine === 'postgresql') {
          await sql`create function ${sql.raw(`${table}_append_only`)}() returns trigger language plpgsql as $$ begin raise exception '${sql.raw(table)} is append-only'; end $$`.execute(
            db,
          );
          await sql`create trigger ${sql.raw(`${table}_no_update`)} before update on ${sql.table(table)} for each row execute function ${sql.raw(`${table}_append_only`)}()`.execute(
            db,
          );
        } else {
          await sql`create trigger ${sql.raw(`${table}_no_update`)} before update on ${sql.table(table)} begin select raise(abort, '${sql.raw(table)} is append-only'); end`.execute(
            db,
          );
        }
      }
      await createIndex(db, 'audit_event_entities_by_reference', 'audit_event_entities', ['reference', 'recorded', 'event_id']);
      await createIndex(db, 'audit_event_entities_by_recorded', 'audit_event_entities', ['recorded']);
    },
  };
}

/**
 * Queues read in index order (issue 11, docs/search.md#ordered-pages). `search_index` carries its
 * resource's `last_updated`, and the token and reference indexes put it right after the value:
 * (…, param, value, last_updated, resource_id, qualifier). A single-tenant search sorted by
 * `_lastUpdated` (the default) is then driven from one criterion's index range, already in page
 * order, and stops at the page (LIMIT) instead of collecting and sorting every match; the other
 * criteria are point probes on (param, value, last_updated, resource_id). The qualifier (system,
 * reference type) stays in the index, after the id, so the IN subqueries of other searches are
 * still answered from it alone. These two replace 0007's token and reference indexes (their
 * columns are a subset), so intake writes no more index entries.
 */
function orderedSearchIndex(engine: StoreEngine): Migration {
  const t = columnTypes(engine);
  const valueIndexes = [
    { old: 'search_index_token_ids', name: 'search_index_token_ordered', value: 'token_code', qualifier: 'token_system' },
    { old: 'search_index_reference_ids', name: 'search_index_reference_ordered', value: 'ref_id', qualifier: 'ref_type' },
  ];
  return {
    async up(db: Kysely<any>): Promise<void> {
      await db.schema.alterTable('search_index').addColumn('last_updated', t.text).execute();
      await sql`update search_index set last_updated = (select r.last_updated from resources r
                 where r.tenant = search_index.tenant and r.resource_type = search_index.resource_type and r.id = search_index.resource_id)`.execute(
        db,
      );
      for (const index of valueIndexes) {
        await createValueIndex(db, index.name, [index.value, 'last_updated', 'resource_id', index.qualifier]);
        await db.schema.dropIndex(index.old).execute();
      }
    },
  };
}

/**
 * Each value index holds only the rows of its own kind (docs/search.md#partial-value-indexes). A
 * `search_index` row carries one kind of value (token, string, reference, date or uri) and the
 * other value columns are null, yet the string, date and reference indexes took every row: an
 * intake's 14 index rows (9 tokens, 3 dates, 2 references) made 70 index entries where 33 do.
 * Measured on a copy of a bench database (SQLite, synchronous=FULL): writing those rows went from
 * 0.2 to 0.12 ms and the commit that followed from 1.4 to 0.7 ms, the commit being the pages it
 * dirties. Every query on these indexes names the value column (search-query.ts says
 * `… is not null` outright), so both planners may use them: a partial index serves a query whose
 * WHERE implies the index's (https://www.sqlite.org/partialindex.html#queries_using_partial_indexes,
 * https://www.postgresql.org/docs/current/indexes-partial.html). Token rows are most rows, so that
 * index stays whole. Same names, so plans and docs read as before.
 */
function partialValueIndexes(): Migration {
  const valueIndexes = [
    { name: 'search_index_string_ids', columns: ['string_norm', 'resource_id'], present: sql<SqlBool>`string_norm is not null` },
    { name: 'search_index_date_ids', columns: ['date_low', 'date_high', 'resource_id'], present: sql<SqlBool>`date_low is not null` },
    {
      name: 'search_index_reference_ordered',
      columns: ['ref_id', 'last_updated', 'resource_id', 'ref_type'],
      present: sql<SqlBool>`ref_id is not null`,
    },
  ];
  return {
    async up(db: Kysely<any>): Promise<void> {
      for (const index of valueIndexes) {
        await db.schema.dropIndex(index.name).execute();
        await createValueIndex(db, index.name, index.columns, index.present);
      }
    },
  };
}

/**
 * PostgreSQL: no foreign key from `search_index` to `resources` (docs/resilience.md#search-index-fk).
 * PostgreSQL checks such a key with a query of its own per inserted row, planned once per
 * connection: an intake's 14 index rows made 14 of them, and on a store whose statistics still
 * described it empty the plan read the key through `resources_by_last_updated`, scanning every
 * resource of the type: 27% of PostgreSQL's CPU under intake load at a few thousand referrals,
 * growing with the table (perf, 2026-12-05). The store itself keeps what the key promised: index
 * rows are written only by the statement or transaction that writes their resource version, and a
 * resource is deleted only by `createAll`'s undo, before any index row of it exists. SQLite keeps
 * the key (dropping it would rebuild the table), where the check is a lookup in the primary key.
 */
function searchIndexWithoutForeignKey(engine: StoreEngine): Migration {
  return {
    async up(db: Kysely<any>): Promise<void> {
      if (engine !== 'postgresql') return;
      await db.schema.alterTable('search_index').dropConstraint('search_index_resource_fk').execute();
    },
  };
}

/** The JSON columns whose values usually pass the 2 kB at which PostgreSQL compresses a row's values. */
const LARGE_JSON_COLUMNS = [
  ['resources', 'content'],
  ['resource_history', 'content'],
  ['outbox_messages', 'payload'],
  ['referrals', 'referral'],
] as const;

/**
 * PostgreSQL: large JSON values compressed with LZ4 instead of the default pglz
 * (docs/resilience.md#lz4-compression). A resource's JSON passes the 2 kB at which PostgreSQL
 * compresses a row's values (TOAST, https://www.postgresql.org/docs/current/storage-toast.html),
 * so an intake compressed four such values, and pglz took 12% of PostgreSQL's CPU under intake
 * load (perf, 2026-12-05). LZ4 compresses and decompresses several times faster. Only values
 * written from now on use it; older ones stay readable as they are. Servers before 14, or built
 * without LZ4, have no such choice and keep pglz.
 */
function lz4Compression(engine: StoreEngine): Migration {
  return {
    async up(db: Kysely<any>): Promise<void> {
      if (engine !== 'postgresql') return;
      const { rows } = await sql<{ lz4: boolean }>`
        select coalesce((select 'lz4' = any(enumvals) from pg_settings where name = 'default_toast_compression'), false) as lz4
      `.execute(db);
      if (!rows[0]?.lz4) return;
      for (const [table, column] of LARGE_JSON_COLUMNS) {
        await sql`alter table ${sql.table(table)} alter column ${sql.ref(column)} set compression lz4`.execute(db);
      }
    },
  };
}

export function migrationProvider(engine: StoreEngine): MigrationProvider {
  return {
    async getMigrations(): Promise<Record<string, Migration>> {
      return {
        '0001_initial': initialSchema(engine),
        '0002_outbox_and_jobs': outboxAndJobs(engine),
        '0003_referrals_by_status': referralsByStatus(),
        '0004_chair_bookings': chairBookings(engine),
        '0005_auth': auth(engine),
        '0007_search_at_volume': searchAtVolume(),
        '0008_audit_events': auditEvents(engine),
        '0009_ordered_search_index': orderedSearchIndex(engine),
        '0010_chair_bookings_by_referral': chairBookingsByReferral(),
        '0011_search_index_statistics': searchIndexStatistics(engine),
        '0012_partial_value_indexes': partialValueIndexes(),
        '0013_search_index_without_foreign_key': searchIndexWithoutForeignKey(engine),
        '0014_lz4_compression': lz4Compression(engine),
      };
    },
  };
}
