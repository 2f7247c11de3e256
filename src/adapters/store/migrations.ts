/**
 * Schema migrations, in code, run by Kysely's Migrator on both engines at start-up. Append new
 * migrations with a name that sorts after the last; never edit one that has shipped.
 */
import { sql, type Kysely, type Migration, type MigrationProvider, type SqlBool } from 'kysely';
import type { StoreEngine } from './engine.js';

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

function initialSchema(engine: StoreEngine): Migration {
  const t = columnTypes(engine);
  return {
    async up(db: Kysely<unknown>): Promise<void> {
      await db.schema
        .createTable('resources')
        .addColumn('tenant', t.text, (c) => c.notNull())
        .addColumn('resource_type', t.text, (c) => c.notNull())
        .addColumn('id', t.text, (c) => c.notNull())
        .addColumn('version_id', t.integer, (c) => c.notNull())
        .addColumn('last_updated', t.text, (c) => c.notNull())
        .addColumn('content', t.json, (c) => c.notNull())
        .addPrimaryKeyConstraint('resources_pk', ['tenant', 'resource_type', 'id'])
        .execute();
      // The default search order: _lastUpdated, then id.
      await db.schema
        .createIndex('resources_by_last_updated')
        .on('resources')
        .columns(['tenant', 'resource_type', 'last_updated', 'id'])
        .execute();

      await db.schema
        .createTable('resource_history')
        .addColumn('tenant', t.text, (c) => c.notNull())
        .addColumn('resource_type', t.text, (c) => c.notNull())
        .addColumn('id', t.text, (c) => c.notNull())
        .addColumn('version_id', t.integer, (c) => c.notNull())
        .addColumn('last_updated', t.text, (c) => c.notNull())
        .addColumn('content', t.json, (c) => c.notNull())
        .addPrimaryKeyConstraint('resource_history_pk', ['tenant', 'resource_type', 'id', 'version_id'])
        .execute();

      await db.schema
        .createTable('search_index')
        .addColumn('tenant', t.text, (c) => c.notNull())
        .addColumn('resource_type', t.text, (c) => c.notNull())
        .addColumn('resource_id', t.text, (c) => c.notNull())
        .addColumn('param', t.text, (c) => c.notNull())
        .addColumn('token_system', t.text)
        .addColumn('token_code', t.text)
        .addColumn('string_norm', t.text)
        .addColumn('string_exact', t.text)
        .addColumn('ref_type', t.text)
        .addColumn('ref_id', t.text)
        .addColumn('uri', t.text)
        .addColumn('date_low', t.text)
        .addColumn('date_high', t.text)
        .addForeignKeyConstraint(
          'search_index_resource_fk',
          ['tenant', 'resource_type', 'resource_id'],
          'resources',
          ['tenant', 'resource_type', 'id'],
          (fk) => fk.onDelete('cascade'),
        )
        .execute();
      // Rewriting a resource's rows, and the per-resource EXISTS probe of every criterion.
      await db.schema
        .createIndex('search_index_by_resource')
        .on('search_index')
        .columns(['tenant', 'resource_type', 'resource_id', 'param'])
        .execute();
      // Selective lookups by value, one per parameter type.
      await db.schema
        .createIndex('search_index_by_token')
        .on('search_index')
        .columns(['tenant', 'resource_type', 'param', 'token_code', 'token_system'])
        .execute();
      await db.schema
        .createIndex('search_index_by_reference')
        .on('search_index')
        .columns(['tenant', 'resource_type', 'param', 'ref_id', 'ref_type'])
        .execute();
      await db.schema
        .createIndex('search_index_by_string')
        .on('search_index')
        .columns(['tenant', 'resource_type', 'param', 'string_norm'])
        .execute();
      await db.schema
        .createIndex('search_index_by_date')
        .on('search_index')
        .columns(['tenant', 'resource_type', 'param', 'date_low', 'date_high'])
        .execute();

      await db.schema
        .createTable('referrals')
        .addColumn('tenant', t.text, (c) => c.notNull())
        .addColumn('id', t.text, (c) => c.notNull())
        .addColumn('identifier_system', t.text, (c) => c.notNull())
        .addColumn('identifier_value', t.text, (c) => c.notNull())
        .addColumn('service_request_id', t.text, (c) => c.notNull())
        .addColumn('task_id', t.text, (c) => c.notNull())
        .addColumn('status', t.text, (c) => c.notNull())
        .addColumn('referral', t.json, (c) => c.notNull())
        .addColumn('created_at', t.text, (c) => c.notNull())
        .addColumn('updated_at', t.text, (c) => c.notNull())
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
        .addColumn('id', t.text, (c) => c.notNull())
        .addColumn('tenant', t.text, (c) => c.notNull())
        .addColumn('ordering_key', t.text, (c) => c.notNull())
        .addColumn('kind', t.text, (c) => c.notNull())
        .addColumn('payload', t.json, (c) => c.notNull())
        .addColumn('status', t.text, (c) => c.notNull())
        .addColumn('attempts', t.integer, (c) => c.notNull().defaultTo(0))
        .addColumn('next_attempt_at', t.text, (c) => c.notNull())
        .addColumn('last_error', t.json)
        .addColumn('created_at', t.text, (c) => c.notNull())
        .addColumn('updated_at', t.text, (c) => c.notNull())
        .addColumn('delivered_at', t.text)
        .addUniqueConstraint('outbox_messages_id_unique', ['id'])
        .addCheckConstraint('outbox_messages_status_check', sql`status in ('pending', 'delivering', 'delivered', 'dead')`)
        .addCheckConstraint('outbox_messages_attempts_check', sql`attempts >= 0`)
        .execute();
      // The claim's scan, in sequence order over the messages that may be due (pending, or
      // delivering with a lease that may have run out) and only those: delivered and dead rows,
      // the bulk of the table over time, are not in it, so a claim never walks past them.
      await db.schema
        .createIndex('outbox_messages_unsettled')
        .on('outbox_messages')
        .columns(['sequence', 'next_attempt_at'])
        .where(sql<SqlBool>`status in ('pending', 'delivering')`)
        .execute();
      // The claim's head-of-key probe: is there an earlier undelivered message with this key?
      await db.schema
        .createIndex('outbox_messages_undelivered_by_key')
        .on('outbox_messages')
        .columns(['ordering_key', 'sequence'])
        .where(sql<SqlBool>`status <> 'delivered'`)
        .execute();
      // The operator's listings (dead letters first of all), in sequence order.
      await db.schema.createIndex('outbox_messages_by_status').on('outbox_messages').columns(['status', 'sequence']).execute();
      await db.schema.createIndex('outbox_messages_by_tenant').on('outbox_messages').columns(['tenant', 'status', 'sequence']).execute();

      await db.schema
        .createTable('job_cursors')
        .addColumn('name', t.text, (c) => c.primaryKey())
        .addColumn('value', t.json, (c) => c.notNull())
        .addColumn('updated_at', t.text, (c) => c.notNull())
        .execute();

      await db.schema
        .createTable('job_runs')
        // A job name and its tick: the primary key is the election (first insert wins).
        .addColumn('key', t.text, (c) => c.primaryKey())
        .addColumn('claimed_at', t.text, (c) => c.notNull())
        .execute();
      // Pruning of old ticks.
      await db.schema.createIndex('job_runs_by_claimed_at').on('job_runs').column('claimed_at').execute();
    },
  };
}

/** Follow-up jobs find referrals by status (pended authorizations, say), least recently changed first; payers by id alone. */
function referralsByStatus(): Migration {
  return {
    async up(db: Kysely<any>): Promise<void> {
      await db.schema.createIndex('referrals_by_status').on('referrals').columns(['status', 'updated_at', 'id']).execute();
      // A payer names a claim by the referral's id alone, without a tenant.
      await db.schema.createIndex('referrals_by_id').on('referrals').column('id').execute();
    },
  };
}

/** Chair bookings and holds (issue 6): the table the no-double-booking rule is enforced on. */
function chairBookings(engine: StoreEngine): Migration {
  const t = columnTypes(engine);
  return {
    async up(db: Kysely<any>): Promise<void> {
      await db.schema
        .createTable('chair_bookings')
        .addColumn('appointment_id', t.text, (c) => c.primaryKey())
        .addColumn('tenant', t.text, (c) => c.notNull())
        .addColumn('referral_id', t.text, (c) => c.notNull())
        .addColumn('location_id', t.text, (c) => c.notNull())
        .addColumn('chair_id', t.text, (c) => c.notNull())
        .addColumn('start_at', t.text, (c) => c.notNull())
        .addColumn('end_at', t.text, (c) => c.notNull())
        .addColumn('status', t.text, (c) => c.notNull())
        .addColumn('hold_expires_at', t.text)
        .addColumn('created_at', t.text, (c) => c.notNull())
        .addColumn('updated_at', t.text, (c) => c.notNull())
        .addCheckConstraint('chair_bookings_status_check', sql`status in ('held', 'booked')`)
        .addCheckConstraint('chair_bookings_interval_check', sql`start_at < end_at`)
        .execute();
      // The overlap probe under the chair's lock, and $find's busy intervals of a site.
      await db.schema
        .createIndex('chair_bookings_by_chair')
        .on('chair_bookings')
        .columns(['location_id', 'chair_id', 'start_at'])
        .execute();
    },
  };
}

/** Authentication (issue 10): the gateway's signing keys and the client assertion ids already used. */
function auth(engine: StoreEngine): Migration {
  const t = columnTypes(engine);
  return {
    async up(db: Kysely<any>): Promise<void> {
      await db.schema
        .createTable('signing_keys')
        .addColumn('kid', t.text, (c) => c.primaryKey())
        .addColumn('private_jwk', t.text, (c) => c.notNull())
        .addColumn('created_at', t.text, (c) => c.notNull())
        .execute();
      await db.schema
        .createTable('used_assertions')
        // client id and jti: the primary key refuses a replay, whichever process sees it second.
        .addColumn('jti_key', t.text, (c) => c.primaryKey())
        .addColumn('expires_at', t.text, (c) => c.notNull())
        .execute();
      await db.schema.createIndex('used_assertions_by_expiry').on('used_assertions').column('expires_at').execute();
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
        await db.schema
          .createIndex(index.name)
          .on('search_index')
          .columns(['tenant', 'resource_type', 'param', ...index.columns, 'resource_id'])
          .execute();
        await db.schema.dropIndex(index.old).execute();
      }
      // Exact string and uri matches had no index at all.
      await db.schema
        .createIndex('search_index_exact_ids')
        .on('search_index')
        .columns(['tenant', 'resource_type', 'param', 'string_exact', 'resource_id'])
        .where(sql<SqlBool>`string_exact is not null`)
        .execute();
      await db.schema
        .createIndex('search_index_uri_ids')
        .on('search_index')
        .columns(['tenant', 'resource_type', 'param', 'uri', 'resource_id'])
        .where(sql<SqlBool>`uri is not null`)
        .execute();
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
      await db.schema.createIndex('chair_bookings_by_referral').on('chair_bookings').columns(['referral_id']).execute();
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
      await db.schema
        .createTable('audit_events')
        .addColumn('id', t.text, (c) => c.primaryKey())
        .addColumn('recorded', t.text, (c) => c.notNull())
        .addColumn('agent_who', t.text, (c) => c.notNull())
        .addColumn('agent_role', t.text, (c) => c.notNull())
        .addColumn('tenant', t.text)
        .addColumn('action', t.text, (c) => c.notNull())
        .addColumn('subtype', t.text, (c) => c.notNull())
        .addColumn('outcome', t.integer, (c) => c.notNull())
        // The rest of the record (entities, query names, operation): references and names only.
        .addColumn('detail', t.json, (c) => c.notNull())
        .addCheckConstraint('audit_events_action_check', sql`action in ('C', 'R', 'U', 'D', 'E')`)
        .addCheckConstraint('audit_events_outcome_check', sql`outcome in (0, 4, 8, 12)`)
        .execute();
      // Newest first, with the id as tie-breaker (the keyset of the next link); the purge's range.
      await db.schema.createIndex('audit_events_by_recorded').on('audit_events').columns(['recorded', 'id']).execute();
      // agent=: one client's events, newest first.
      await db.schema.createIndex('audit_events_by_agent').on('audit_events').columns(['agent_who', 'recorded', 'id']).execute();
      await db.schema
        .createTable('audit_event_entities')
        .addColumn('event_id', t.text, (c) => c.notNull())
        .addColumn('reference', t.text, (c) => c.notNull())
        // Copied from the event so that entity= is answered in time order from this index alone.
        .addColumn('recorded', t.text, (c) => c.notNull())
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
      await db.schema
        .createIndex('audit_event_entities_by_reference')
        .on('audit_event_entities')
        .columns(['reference', 'recorded', 'event_id'])
        .execute();
      await db.schema.createIndex('audit_event_entities_by_recorded').on('audit_event_entities').column('recorded').execute();
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
        await db.schema
          .createIndex(index.name)
          .on('search_index')
          .columns(['tenant', 'resource_type', 'param', index.value, 'last_updated', 'resource_id', index.qualifier])
          .execute();
        await db.schema.dropIndex(index.old).execute();
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
      };
    },
  };
}
