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
import { CompiledQuery, sql, type Insertable, type RawBuilder } from 'kysely';
import { prepareOnEveryConnection } from './prepared-statements.js';
import type {
  AuditEventEntitiesTable,
  AuditEventsTable,
  OutboxMessagesTable,
  ReferralsTable,
  ResourcesTable,
  SearchIndexTable,
} from './schema.js';

/** Rows of one table, their JSON columns holding JSON text (as the store writes them everywhere). */
interface RowsOf<Row> {
  rows: readonly Row[];
  columns: ReadonlyArray<keyof Row & string>;
  /** Columns whose values are JSON text, spliced in as JSON values (jsonb columns). */
  jsonColumns?: ReadonlyArray<keyof Row & string>;
}

/** Any table's rows, as the statement reads them. */
interface TableRows {
  rows: readonly object[];
  columns: readonly string[];
  jsonColumns?: readonly string[];
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
function recordsetJson({ rows, columns, jsonColumns = [] }: TableRows): string {
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
 * `insert into <table> (<columns>) select <columns> from json_populate_recordset($n::json)`, the
 * rows typed by the table; `where` when given (the claim won, every resource row inserted), before
 * anything the caller appends. Also createAll's index rows on PostgreSQL.
 */
export function recordsetInsert(table: string, columns: readonly string[], json: string, where?: RawBuilder<unknown>): RawBuilder<unknown> {
  const list = sql.join(columns.map((column) => sql.ref(column)));
  const source = sql`json_populate_recordset(null::${sql.table(table)}, ${json}::json)`;
  return sql`insert into ${sql.table(table)} (${list}) select ${list} from ${source}${where === undefined ? sql`` : sql` where ${where}`}`;
}

const CLAIM_WON = sql`exists (select 1 from claim)`;

/** One table's part of the statement: its CTE's name, its table and its rows (as one JSON parameter). */
interface Part {
  cte: string;
  table: string;
  rows: TableRows;
}

/** The parts in the statement's order: the claim and the resources always, the others when they have rows. */
function partsOf(rows: NewReferralRows): Part[] {
  const optional = (cte: string, table: string, tableRows: TableRows): Part[] =>
    tableRows.rows.length === 0 ? [] : [{ cte, table, rows: tableRows }];
  return [
    { cte: 'claim', table: 'referrals', rows: rows.claim },
    { cte: 'inserted', table: 'resources', rows: rows.resources },
    ...optional('indexed', 'search_index', rows.searchIndex),
    ...optional('messages', 'outbox_messages', rows.outboxMessages),
    ...optional('events', 'audit_events', rows.auditEvents),
    ...optional('entities', 'audit_event_entities', rows.auditEventEntities),
  ];
}

/** The statement for these parts, each part's JSON its one parameter, in the parts' order. */
function statementOf(parts: readonly Part[], parameters: readonly string[]): RawBuilder<{ claimed: number }> {
  const ctes = parts.map(({ cte, table, rows }, index) => {
    const insert = recordsetInsert(table, rows.columns, parameters[index]!, cte === 'claim' ? undefined : CLAIM_WON);
    if (cte === 'claim') return sql`claim as (${insert} on conflict (tenant, identifier_system, identifier_value) do nothing returning id)`;
    if (cte !== 'inserted') return sql`${sql.ref(cte)} as (${insert})`;
    // No ON CONFLICT: an id already taken fails the whole statement, so nothing of it is stored.
    const resourceColumns = sql.join(rows.columns.map((column) => sql.ref(column)));
    return sql`inserted as (${insert} returning ${resourceColumns}), history as (insert into ${sql.table('resource_history')} (${resourceColumns}) select ${resourceColumns} from inserted)`;
  });
  return sql<{ claimed: number }>`with ${sql.join(ctes)} select count(*)::int as claimed from claim`;
}

/** What compiles a statement: the store's Kysely instance (kysely's index does not export its type). */
type Compiler = Parameters<RawBuilder<unknown>['compile']>[0];

/**
 * Statement texts by compiler, then by the parts' names and columns: the text is the same for any
 * rows of that shape. By compiler because a Kysely instance's plugins could change the text.
 */
const statementTexts = new WeakMap<Compiler, Map<string, string>>();

/**
 * The statement, compiled; its one row says whether the claim was won (`claimed` 1) or the number
 * was taken (0). Its text depends only on which tables have rows and on their columns, so it is
 * built and compiled once per shape (docs/resilience.md#prepared-statements) and prepared on every
 * PostgreSQL connection; each call serialises its rows only.
 */
export function newReferralQuery(rows: NewReferralRows, compiler: Compiler): CompiledQuery<{ claimed: number }> {
  const parts = partsOf(rows);
  const parameters = parts.map((part) => recordsetJson(part.rows));
  const shape = parts.map(({ cte, rows: { columns } }) => `${cte}(${columns.join(',')})`).join(' ');
  let texts = statementTexts.get(compiler);
  if (texts === undefined) statementTexts.set(compiler, (texts = new Map()));
  let text = texts.get(shape);
  if (text === undefined) {
    const compiled = statementOf(parts, parameters).compile(compiler);
    // The cached text is reused with parameters built as above: they must be the compiled ones, in order.
    if (compiled.parameters.length !== parameters.length || compiled.parameters.some((value, i) => value !== parameters[i])) {
      throw new Error('The new-referral statement does not take its parameters in the order of its parts');
    }
    text = compiled.sql;
    texts.set(shape, text);
    prepareOnEveryConnection(text);
  }
  return CompiledQuery.raw(text, parameters) as CompiledQuery<{ claimed: number }>;
}
