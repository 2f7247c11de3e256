/**
 * A new referral in one PostgreSQL statement (docs/resilience.md#intake-in-one-statement): the
 * order-number claim, the first versions of its resources with their history and search index
 * rows, its outbox messages and its audit records, written by one data-modifying `WITH` that runs
 * as its own transaction, without BEGIN and COMMIT. Everything but the claim is written only when
 * the claim inserted its row (`exists (select 1 from claim)`); a lost claim writes nothing.
 *
 * Each table's rows travel as one JSON parameter read by `json_populate_recordset`, typed by the
 * table itself, so the statement's text is the same for any number of rows and free of the
 * bound-parameter limit. PostgreSQL runs every data-modifying CTE to completion whether or not the
 * statement reads it: https://www.postgresql.org/docs/15/queries-with.html#QUERIES-WITH-MODIFYING
 */
import { sql, type Insertable, type RawBuilder } from 'kysely';
import type {
  AuditEventEntitiesTable,
  AuditEventsTable,
  OutboxMessagesTable,
  ReferralsTable,
  ResourcesTable,
  SearchIndexTable,
} from './schema.js';

/** Rows of one table, their JSON columns holding JSON text (as the store writes them everywhere). */
export interface RowsOf<Row> {
  rows: readonly Row[];
  columns: ReadonlyArray<keyof Row & string>;
  /** Columns whose values are JSON text, spliced in as JSON values (jsonb columns). */
  jsonColumns?: ReadonlyArray<keyof Row & string>;
}

export interface NewReferralRows {
  /** The `referrals` row whose unique (tenant, identifier_system, identifier_value) is the claim. */
  claim: RowsOf<Insertable<ReferralsTable>>;
  /** The first versions, written to `resources` and `resource_history`. */
  resources: RowsOf<Insertable<ResourcesTable>>;
  searchIndex: RowsOf<SearchIndexTable>;
  outboxMessages: RowsOf<Insertable<OutboxMessagesTable>>;
  auditEvents: RowsOf<Insertable<AuditEventsTable>>;
  auditEventEntities: RowsOf<AuditEventEntitiesTable>;
}

/**
 * The rows as the JSON array `json_populate_recordset` reads: plain values as JSON, and the JSON
 * columns' text spliced in unchanged, so a resource's content is serialised once, by the caller.
 * `JSON.stringify` with a list of keys writes those keys only (a missing or undefined one reads
 * as null); the JSON columns follow, inside the same object.
 */
function recordsetJson<Row extends object>({ rows, columns, jsonColumns = [] }: RowsOf<Row>): string {
  const plain = columns.filter((column) => !jsonColumns.includes(column));
  const members = rows.map((row) => {
    const fields = JSON.stringify(row, plain).slice(1, -1);
    const spliced = jsonColumns.map((column) => {
      const value = (row as Record<string, unknown>)[column] ?? null;
      return `${JSON.stringify(column)}:${typeof value === 'string' ? value : JSON.stringify(value)}`;
    });
    return `{${[...(fields === '' ? [] : [fields]), ...spliced].join(',')}}`;
  });
  return `[${members.join(',')}]`;
}

/**
 * `insert into <table> (<columns>) select <columns> from json_populate_recordset(...)`, the rows
 * typed by the table; `where` when given (the claim won), before anything the caller appends.
 */
function recordsetInsert<Row extends object>(table: string, rows: RowsOf<Row>, where?: RawBuilder<unknown>): RawBuilder<unknown> {
  const columns = sql.join(rows.columns.map((column) => sql.ref(column)));
  const source = sql`json_populate_recordset(null::${sql.table(table)}, ${recordsetJson(rows)}::json)`;
  return sql`insert into ${sql.table(table)} (${columns}) select ${columns} from ${source}${where === undefined ? sql`` : sql` where ${where}`}`;
}

const CLAIM_WON = sql`exists (select 1 from claim)`;

/** The statement; its one row says whether the claim was won (`claimed` 1) or the number was taken (0). */
export function newReferralStatement(rows: NewReferralRows): RawBuilder<{ claimed: number }> {
  const resourceColumns = sql.join(rows.resources.columns.map((column) => sql.ref(column)));
  const optional = <Row extends object>(name: string, table: string, tableRows: RowsOf<Row>) =>
    tableRows.rows.length === 0 ? [] : [sql`${sql.ref(name)} as (${recordsetInsert(table, tableRows, CLAIM_WON)})`];
  const ctes = [
    sql`claim as (${recordsetInsert('referrals', rows.claim)} on conflict (tenant, identifier_system, identifier_value) do nothing returning id)`,
    // No ON CONFLICT: an id already taken fails the whole statement, so nothing of it is stored.
    sql`inserted as (${recordsetInsert('resources', rows.resources, CLAIM_WON)} returning ${resourceColumns})`,
    sql`history as (insert into ${sql.table('resource_history')} (${resourceColumns}) select ${resourceColumns} from inserted)`,
    ...optional('indexed', 'search_index', rows.searchIndex),
    ...optional('messages', 'outbox_messages', rows.outboxMessages),
    ...optional('events', 'audit_events', rows.auditEvents),
    ...optional('entities', 'audit_event_entities', rows.auditEventEntities),
  ];
  return sql<{ claimed: number }>`with ${sql.join(ctes)} select count(*)::int as claimed from claim`;
}
