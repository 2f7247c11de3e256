/**
 * The audit trail's tables (migration 0008, docs/audit.md): appended inside a resource write's
 * own transaction (by KyselyResourceStore.transaction) or on their own (reads, searches,
 * refusals); searched by the operator; purged by age. Nothing here updates a row.
 */
import type { Insertable, Kysely, Selectable } from 'kysely';
import type { AuditAction, AuditOutcome, AuditRecord, AuditSearch } from '../../ports/audit-trail.js';
import type { StoreEngine } from './engine.js';
import { fromJsonColumn, toJsonColumn } from './json-columns.js';
import type { AuditEventEntitiesTable, AuditEventsTable, StoreDatabase } from './schema.js';

interface AuditDetail {
  entities: string[];
  operation?: string;
  outcomeDescription?: string;
  query?: { resourceType: string; parameterNames: string[] };
}

/** The rows of `audit_events` and `audit_event_entities` that hold these records. */
export function auditRowsOf(records: readonly AuditRecord[]): {
  events: Array<Insertable<AuditEventsTable>>;
  entities: AuditEventEntitiesTable[];
} {
  return {
    events: records.map(eventRowOf),
    entities: records.flatMap((record) =>
      [...new Set(record.entities)].map((reference) => ({ event_id: record.id, reference, recorded: record.recorded.toISOString() })),
    ),
  };
}

export const AUDIT_EVENT_COLUMNS = [
  'id',
  'recorded',
  'agent_who',
  'agent_role',
  'tenant',
  'action',
  'subtype',
  'outcome',
  'detail',
] as const satisfies ReadonlyArray<keyof AuditEventsTable>;

export const AUDIT_EVENT_ENTITY_COLUMNS = ['event_id', 'reference', 'recorded'] as const satisfies ReadonlyArray<
  keyof AuditEventEntitiesTable
>;

export async function insertAuditEvents(db: Kysely<StoreDatabase>, engine: StoreEngine, records: readonly AuditRecord[]): Promise<void> {
  if (records.length === 0) return;
  const { events, entities } = auditRowsOf(records);
  if (engine === 'postgresql' && entities.length > 0) {
    // One round trip instead of two (docs/resilience.md, intake's round trips): PostgreSQL runs a
    // data-modifying WITH whether or not the statement reads it. https://www.postgresql.org/docs/15/queries-with.html#QUERIES-WITH-MODIFYING
    await db
      .with('events', (cte) => cte.insertInto('audit_events').values(events).returning('id'))
      .insertInto('audit_event_entities')
      .values(entities)
      .execute();
    return;
  }
  await db.insertInto('audit_events').values(events).execute();
  if (entities.length > 0) await db.insertInto('audit_event_entities').values(entities).execute();
}

function eventRowOf(record: AuditRecord): Insertable<AuditEventsTable> {
  const detail: AuditDetail = {
    entities: [...record.entities],
    ...(record.operation !== undefined ? { operation: record.operation } : {}),
    ...(record.outcomeDescription !== undefined ? { outcomeDescription: record.outcomeDescription } : {}),
    ...(record.query ? { query: { resourceType: record.query.resourceType, parameterNames: [...record.query.parameterNames] } } : {}),
  };
  return {
    id: record.id,
    recorded: record.recorded.toISOString(),
    agent_who: record.agent.who,
    agent_role: record.agent.role,
    tenant: record.agent.tenant ?? null,
    action: record.action,
    subtype: record.subtype,
    outcome: record.outcome,
    detail: toJsonColumn(detail, 'An audit record'),
  };
}

function recordOf(engine: StoreEngine, row: Selectable<AuditEventsTable>): AuditRecord {
  const detail = fromJsonColumn(engine, row.detail) as AuditDetail;
  return {
    id: row.id,
    recorded: new Date(row.recorded),
    action: row.action as AuditAction,
    subtype: row.subtype,
    ...(detail.operation !== undefined ? { operation: detail.operation } : {}),
    outcome: Number(row.outcome) as AuditOutcome,
    ...(detail.outcomeDescription !== undefined ? { outcomeDescription: detail.outcomeDescription } : {}),
    agent: { who: row.agent_who, role: row.agent_role, ...(row.tenant !== null ? { tenant: row.tenant } : {}) },
    entities: detail.entities,
    ...(detail.query ? { query: detail.query } : {}),
  };
}

/** Newest first; `entity` goes through the entity index, `agent` through the agent index. */
export async function searchAuditEvents(db: Kysely<StoreDatabase>, engine: StoreEngine, search: AuditSearch): Promise<AuditRecord[]> {
  let query = db.selectFrom('audit_events').selectAll('audit_events');
  if (search.entity !== undefined) {
    const reference = search.entity;
    query = query.where('audit_events.id', 'in', (eb) =>
      eb.selectFrom('audit_event_entities').select('event_id').where('reference', '=', reference),
    );
  }
  if (search.agent !== undefined) query = query.where('audit_events.agent_who', '=', search.agent);
  if (search.recordedFrom)
    query = query.where('audit_events.recorded', search.recordedFrom.inclusive ? '>=' : '>', search.recordedFrom.at.toISOString());
  if (search.recordedTo)
    query = query.where('audit_events.recorded', search.recordedTo.inclusive ? '<=' : '<', search.recordedTo.at.toISOString());
  if (search.after) {
    const { recorded, id } = search.after;
    query = query.where((eb) =>
      eb.or([
        eb('audit_events.recorded', '<', recorded),
        eb.and([eb('audit_events.recorded', '=', recorded), eb('audit_events.id', '<', id)]),
      ]),
    );
  }
  const rows = await query.orderBy('audit_events.recorded', 'desc').orderBy('audit_events.id', 'desc').limit(search.count).execute();
  return rows.map((row) => recordOf(engine, row));
}

export async function readAuditEvent(db: Kysely<StoreDatabase>, engine: StoreEngine, id: string): Promise<AuditRecord | undefined> {
  const row = await db.selectFrom('audit_events').selectAll().where('id', '=', id).executeTakeFirst();
  return row === undefined ? undefined : recordOf(engine, row);
}

/** The retention purge (docs/audit.md): every record older than `before`, entities first. */
export async function purgeAuditEvents(db: Kysely<StoreDatabase>, before: Date): Promise<number> {
  const cutoff = before.toISOString();
  return db.transaction().execute(async (trx) => {
    await trx.deleteFrom('audit_event_entities').where('recorded', '<', cutoff).execute();
    const deleted = await trx.deleteFrom('audit_events').where('recorded', '<', cutoff).executeTakeFirst();
    return Number(deleted.numDeletedRows);
  });
}
