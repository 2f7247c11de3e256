/**
 * The one ResourceStore implementation, over Kysely: the same queries serve the embedded SQLite
 * store and PostgreSQL (see open-store.ts for the dialect set-up).
 *
 * Every version is kept in `resource_history` (vread, _history: https://hl7.org/fhir/R4/http.html#vread);
 * `resources` holds the current one; `search_index` is rewritten with each version in the same
 * transaction, so a search never sees a resource without its index rows or the other way round.
 */
import { AsyncLocalStorage } from 'node:async_hooks';
import type { OperationOutcome, Resource } from 'fhir/r4.js';
import {
  CompiledQuery,
  sql,
  type Expression,
  type ExpressionBuilder,
  type Insertable,
  type Kysely,
  type Selectable,
  type SqlBool,
} from 'kysely';
import { newTimeOrderedId } from '../../fhir/ids.js';
import { badRequest, conflict, errorIssue, notFound, OperationOutcomeError, preconditionFailed } from '../../fhir/outcomes.js';
import {
  indexedSearchParametersFor,
  normalizeSearchString,
  parseSearchCriteria,
  parseSearchSort,
  type IndexValue,
} from '../../fhir/search-parameters.js';
import { currentAuditContext, type AuditContext, type AuditRecord, type AuditSearch, type AuditTrail } from '../../ports/audit-trail.js';
import {
  AUDIT_EVENT_COLUMNS,
  AUDIT_EVENT_ENTITY_COLUMNS,
  auditRowsOf,
  insertAuditEvents,
  purgeAuditEvents,
  readAuditEvent,
  searchAuditEvents,
} from './audit-events.js';
import { newReferralQuery, recordsetInsert } from './new-referral-statement.js';
import type {
  ChairBooking,
  ChairReservation,
  ClaimReferralResult,
  NetworkMetricsQuery,
  NetworkMetricsRows,
  NewOutboxMessage,
  NewReferral,
  NewReferralResult,
  OutboxMessage,
  OutboxStatus,
  ReferralImport,
  ReferralRow,
  ResourceStore,
  ResourceWriter,
  SearchRequest,
  SearchResult,
  StoreReadiness,
  TenantId,
} from '../../ports/resource-store.js';
import type { StoreEngine } from './engine.js';
import * as authState from './auth-state.js';
import * as jobState from './job-state.js';
import { networkMetrics } from './network-metrics.js';
import * as outbox from './outbox.js';
import type { ChairBookingsTable, ReferralsTable, ResourcesTable, SearchIndexTable, StoreDatabase } from './schema.js';
import { whileWanted } from './query-cancellation.js';
import { SqliteGroupCommit } from './sqlite-group-commit.js';
import { criterionCondition, drivenCondition, driverCondition, orderedDriver, type SearchScope } from './search-query.js';
import type { AuthStateStore, StoredSigningKey } from '../../ports/auth-state.js';
import { recordNewReferralIn } from '../../ports/record-new-referral.js';

/** https://hl7.org/fhir/R4/datatypes.html#id */
const ID_PATTERN = /^[A-Za-z0-9\-.]{1,64}$/;

const HISTORY_COLUMNS = ['tenant', 'resource_type', 'id', 'version_id', 'last_updated', 'content'] as const satisfies ReadonlyArray<
  keyof ResourcesTable
>;
const INDEX_COLUMNS = [
  'tenant',
  'resource_type',
  'resource_id',
  'param',
  'token_system',
  'token_code',
  'string_norm',
  'string_exact',
  'ref_type',
  'ref_id',
  'uri',
  'date_low',
  'date_high',
  'last_updated',
] as const satisfies ReadonlyArray<keyof SearchIndexTable>;

/** One `search_index` row, for SQLite (insertIndexRows). */
const INSERT_INDEX_ROW = `insert into "search_index" (${INDEX_COLUMNS.map((column) => `"${column}"`).join(', ')}) values (${INDEX_COLUMNS.map(() => '?').join(', ')})`;

/** Rows per multi-row INSERT on PostgreSQL. */
const INDEX_INSERT_CHUNK = 500;
/** Rows per statement of a bulk import (at most 10 columns: 5,000 parameters). */
const IMPORT_CHUNK = 500;

/** Attempts of an optimistic write that lost a race to a concurrent writer of the same row. */
const WRITE_ATTEMPTS = 5;

function assertTenants(tenants: readonly TenantId[]): void {
  if (tenants.length === 0) throw new Error('A store read must name at least one tenant');
}

function assertId(resourceType: string, id: string): void {
  if (!ID_PATTERN.test(id)) {
    throw new OperationOutcomeError(
      badRequest([errorIssue('value', `Invalid resource id: 1 to 64 letters, digits, '-' or '.'`, `${resourceType}.id`)]),
    );
  }
}

/** Accepts `3` as well as an ETag's `W/"3"`. */
function normalizeVersion(version: string | undefined): string | undefined {
  if (version === undefined) return undefined;
  const m = /^(?:W\/)?"?([^"]*)"?$/.exec(version.trim());
  return m ? m[1] : version;
}

/** A resource as stored: id and meta set, and its JSON text, made once for every row that holds it. */
interface Stamped<T extends Resource> {
  resource: T & { id: string };
  content: string;
}

/**
 * The resource with its id and meta set, and its JSON text. The caller's object is never touched
 * (the top level and meta are new objects); the elements below are shared, not deep-copied: the
 * stored text is made here, once, so nothing done to either object later can change what is stored.
 */
function stamp<T extends Resource>(resource: T, id: string, version: number, now: Date): Stamped<T> {
  const { resourceType, id: _previousId, meta, ...rest } = resource;
  const stamped = {
    resourceType,
    id,
    meta: { ...meta, versionId: String(version), lastUpdated: now.toISOString() },
    ...rest,
  } as unknown as T & { id: string };
  return { resource: stamped, content: JSON.stringify(stamped) };
}

/** A stamped version's row, the same in `resources` (the current one) and `resource_history`. */
function versionRow(tenant: TenantId, { resource, content }: Stamped<Resource>, version: number) {
  return {
    tenant,
    resource_type: resource.resourceType,
    id: resource.id,
    version_id: version,
    last_updated: resource.meta!.lastUpdated!,
    content,
  };
}

/**
 * The referrals table's plain columns, by ReferralRow field: written once, so a row and its
 * ReferralRow cannot drift apart (referralRowOf and referralOf read this list both ways).
 */
const REFERRAL_COLUMNS = [
  ['tenant', 'tenant'],
  ['id', 'id'],
  ['identifierSystem', 'identifier_system'],
  ['identifierValue', 'identifier_value'],
  ['serviceRequestId', 'service_request_id'],
  ['taskId', 'task_id'],
  ['status', 'status'],
] as const satisfies ReadonlyArray<readonly [keyof ReferralRow, keyof ReferralsTable]>;

/** Every column of a new `referrals` row, as referralRowOf fills them. */
const REFERRAL_TABLE_COLUMNS = [
  ...REFERRAL_COLUMNS.map(([, column]) => column),
  'referral',
  'created_at',
  'updated_at',
] as const satisfies ReadonlyArray<keyof ReferralsTable>;

type ReferralColumnFields = Pick<ReferralRow, (typeof REFERRAL_COLUMNS)[number][0]>;

/** A new referral's row, created and updated at `at`. */
function referralRowOf(row: Omit<ReferralRow, 'createdAt' | 'updatedAt'>, at: string): Insertable<ReferralsTable> {
  const columns = Object.fromEntries(REFERRAL_COLUMNS.map(([field, column]) => [column, row[field]]));
  return { ...columns, referral: JSON.stringify(row.referral ?? null), created_at: at, updated_at: at } as Insertable<ReferralsTable>;
}

/** Version 1 of new resources (an id given where none is, validated), and their `resources` rows. */
function firstVersions(tenant: TenantId, resources: ReadonlyArray<{ resource: Resource; at: Date }>) {
  const stamped = resources.map(({ resource, at }) => {
    const id = resource.id ?? newTimeOrderedId();
    assertId(resource.resourceType, id);
    return stamp(resource, id, 1, at);
  });
  const rows = stamped.map((version) => versionRow(tenant, version, 1));
  return { stamped, rows };
}

/**
 * SQLite gives the JSON text back; PostgreSQL's jsonb gives an object whose keys are in jsonb's
 * own order, so resourceType, id and meta are put first again for readable responses.
 */
function decodeResource<T extends Resource>(content: unknown): T {
  const parsed = (typeof content === 'string' ? JSON.parse(content) : content) as Record<string, unknown>;
  const { resourceType, id, meta, ...rest } = parsed;
  return { resourceType, id, meta, ...rest } as unknown as T;
}

function decodeJson(content: unknown): unknown {
  return typeof content === 'string' ? JSON.parse(content) : content;
}

function chairBookingOf(row: Selectable<ChairBookingsTable>): ChairBooking {
  return {
    appointmentId: row.appointment_id,
    tenant: row.tenant,
    referralId: row.referral_id,
    locationId: row.location_id,
    chairId: row.chair_id,
    start: row.start_at,
    end: row.end_at,
    status: row.status === 'held' ? 'held' : 'booked',
    ...(row.hold_expires_at !== null ? { holdExpiresAt: row.hold_expires_at } : {}),
  };
}

function referralOf(row: Selectable<ReferralsTable>): ReferralRow {
  const fields = Object.fromEntries(REFERRAL_COLUMNS.map(([field, column]) => [field, row[column]])) as ReferralColumnFields;
  return { ...fields, referral: decodeJson(row.referral), createdAt: row.created_at, updatedAt: row.updated_at };
}

function indexRowsOf(tenant: TenantId, resource: Resource & { id: string }): SearchIndexTable[] {
  const rows: SearchIndexTable[] = [];
  for (const parameter of indexedSearchParametersFor(resource.resourceType)) {
    for (const value of parameter.extract(resource)) {
      rows.push(indexRow(tenant, resource, parameter.code, value));
    }
  }
  return rows;
}

function indexRow(tenant: TenantId, resource: Resource & { id: string }, param: string, value: IndexValue): SearchIndexTable {
  const row: SearchIndexTable = {
    tenant,
    resource_type: resource.resourceType,
    resource_id: resource.id,
    param,
    token_system: null,
    token_code: null,
    string_norm: null,
    string_exact: null,
    ref_type: null,
    ref_id: null,
    uri: null,
    date_low: null,
    date_high: null,
    last_updated: resource.meta?.lastUpdated ?? null,
  };
  switch (value.kind) {
    case 'token':
      row.token_system = value.system ?? null;
      row.token_code = value.code;
      break;
    case 'string':
      row.string_norm = normalizeSearchString(value.value);
      row.string_exact = value.value;
      break;
    case 'reference':
      row.ref_type = value.type;
      row.ref_id = value.id;
      break;
    case 'date':
      row.date_low = value.low;
      row.date_high = value.high;
      break;
    case 'uri':
      row.uri = value.value;
      break;
  }
  return row;
}

/** Reads and writes through one Kysely handle: the root one, or a transaction's. */
class KyselyResourceAccess implements ResourceWriter {
  /** The resources this handle created or changed: a transaction's AuditEvents name them. */
  readonly changes: Array<{ action: 'C' | 'U'; reference: string }> = [];

  constructor(
    private readonly db: Kysely<StoreDatabase>,
    private readonly engine: StoreEngine,
  ) {}

  async lock(key: string): Promise<void> {
    // SQLite runs one transaction at a time on its one connection: holding it is the lock.
    if (this.engine !== 'postgresql') return;
    // Held until the transaction ends; hashtextextended gives the 64-bit key the lock takes.
    await sql`select pg_advisory_xact_lock(hashtextextended(${key}, 0))`.execute(this.db);
  }

  /** One resource's rows, current (`resources`) or every version (`resource_history`), in one tenant or any of several. */
  #rowsOf(table: 'resources' | 'resource_history', tenants: TenantId | readonly TenantId[], resourceType: string, id: string) {
    const from = this.db.selectFrom(table);
    const inTenants = typeof tenants === 'string' ? from.where('tenant', '=', tenants) : from.where('tenant', 'in', tenants);
    return inTenants.where('resource_type', '=', resourceType).where('id', '=', id);
  }

  /** Where the same id exists in several visible tenants, the first tenant listed wins. */
  private async owningTenant(tenants: readonly TenantId[], resourceType: string, id: string): Promise<TenantId | undefined> {
    assertTenants(tenants);
    const rows = await this.#rowsOf('resources', tenants, resourceType, id).select('tenant').execute();
    return tenants.find((t) => rows.some((r) => r.tenant === t));
  }

  async read<T extends Resource = Resource>(tenants: readonly TenantId[], resourceType: string, id: string): Promise<T | undefined> {
    assertTenants(tenants);
    const rows = await this.#rowsOf('resources', tenants, resourceType, id).select(['tenant', 'content']).execute();
    const tenant = tenants.find((t) => rows.some((r) => r.tenant === t));
    const row = rows.find((r) => r.tenant === tenant);
    return row ? decodeResource<T>(row.content) : undefined;
  }

  async readVersion<T extends Resource = Resource>(
    tenants: readonly TenantId[],
    resourceType: string,
    id: string,
    versionId: string,
  ): Promise<T | undefined> {
    const version = normalizeVersion(versionId);
    if (version === undefined || !/^[1-9]\d{0,8}$/.test(version)) return undefined;
    const tenant = await this.owningTenant(tenants, resourceType, id);
    if (tenant === undefined) return undefined;
    const row = await this.#rowsOf('resource_history', tenant, resourceType, id)
      .select('content')
      .where('version_id', '=', Number(version))
      .executeTakeFirst();
    return row ? decodeResource<T>(row.content) : undefined;
  }

  async history<T extends Resource = Resource>(tenants: readonly TenantId[], resourceType: string, id: string): Promise<T[]> {
    const tenant = await this.owningTenant(tenants, resourceType, id);
    if (tenant === undefined) return [];
    const rows = await this.#rowsOf('resource_history', tenant, resourceType, id).select('content').orderBy('version_id', 'desc').execute();
    return rows.map((r) => decodeResource<T>(r.content));
  }

  /** The page query and the unpaged, unsorted base a count runs on. */
  #searchQueries(request: SearchRequest) {
    assertTenants(request.tenants);
    const { parsed, issues } = parseSearchCriteria(request.resourceType, request.criteria);
    const sort = parseSearchSort(request.sort);
    const allIssues = [...issues, ...sort.issues];
    if (allIssues.length > 0) throw new OperationOutcomeError(badRequest(allIssues));

    const target = { tenants: request.tenants, resourceType: request.resourceType };
    const base = this.db
      .selectFrom('resources as r')
      .where('r.tenant', 'in', request.tenants)
      .where('r.resource_type', '=', request.resourceType)
      .where((eb) => eb.and(parsed.map((c) => criterionCondition(eb, c, target))));

    // A total order (the keys asked for, then id, then tenant) makes keyset paging gapless. The
    // tie-breakers run in the first key's direction, so `-_lastUpdated` is one backward index walk.
    const keys = sort.keys.length > 0 ? sort.keys : [{ key: '_lastUpdated' as const, descending: false }];
    const order: OrderKey[] = keys.map((k) => ({ column: k.key === '_id' ? 'id' : 'last_updated', descending: k.descending }));
    const tieDescending = order[0]!.descending;
    if (!keys.some((k) => k.key === '_id')) order.push({ column: 'id', descending: tieDescending });
    order.push({ column: 'tenant', descending: tieDescending });
    const shape = order.map((k) => `${k.descending ? '-' : ''}${k.column}`).join(',');
    const after = request.after === undefined ? undefined : decodeCursor(request.after, shape);

    // A page in index order (docs/search.md#ordered-pages): one tenant, sorted by _lastUpdated
    // alone, from the start or a cursor, and a criterion to drive from. It may meet a resource
    // twice (two index rows with the same value), so it is read by driven pages, not counted.
    const driver =
      request.tenants.length === 1 && request.offset === 0 && keys.length === 1 && keys[0]!.key === '_lastUpdated'
        ? orderedDriver(parsed)
        : undefined;
    if (driver !== undefined) {
      const drivenColumn = { last_updated: 'd.last_updated', id: 'd.resource_id', tenant: 'd.tenant' } as const;
      const driven = (cursor: readonly string[] | undefined, limit: number) => {
        let page = this.db
          .selectFrom('search_index as d')
          .innerJoin('resources as r', (join) =>
            join.onRef('r.tenant', '=', 'd.tenant').onRef('r.resource_type', '=', 'd.resource_type').onRef('r.id', '=', 'd.resource_id'),
          )
          .select(['r.content', 'r.last_updated', 'r.id', 'r.tenant'])
          .where('d.tenant', '=', request.tenants[0]!)
          .where('d.resource_type', '=', request.resourceType)
          .where((eb) => driverCondition(eb, driver))
          .where((eb) => eb.and(parsed.filter((c) => c !== driver).map((c) => drivenCondition(eb, c, target))));
        if (cursor !== undefined)
          page = page.where((eb) =>
            afterKeys(
              eb as unknown as KeyExpressions,
              order.map((k) => ({ ...k, ref: drivenColumn[k.column] })),
              cursor,
            ),
          );
        for (const k of order) page = page.orderBy(drivenColumn[k.column], k.descending ? 'desc' : 'asc');
        return page.limit(Math.max(0, limit));
      };
      return { base, page: driven(after, request.count), driven, after, order, shape };
    }

    let page = base.select(['r.content', 'r.last_updated', 'r.id', 'r.tenant']);
    if (after !== undefined)
      page = page.where((eb) =>
        afterKeys(
          eb as unknown as KeyExpressions,
          order.map((k) => ({ ...k, ref: `r.${k.column}` as const })),
          after,
        ),
      );
    for (const k of order) page = page.orderBy(`r.${k.column}`, k.descending ? 'desc' : 'asc');
    page = page.limit(Math.max(0, request.count)).offset(Math.max(0, request.offset));
    return { base, page, driven: undefined, after, order, shape };
  }

  async search<T extends Resource = Resource>(request: SearchRequest): Promise<SearchResult<T>> {
    return whileWanted(request.signal, () => this.#search<T>(request));
  }

  async #search<T extends Resource>(request: SearchRequest): Promise<SearchResult<T>> {
    const { base, page, driven, order, shape } = this.#searchQueries(request);
    let rows = request.count > 0 ? await page.execute() : [];
    if (driven !== undefined) {
      // A driven page may hold a resource twice (adjacent: its rows share the sort keys); drop the
      // repeats and read on after the last row until the page is full or the matches end.
      let more = rows.length === request.count;
      rows = dropRepeats(rows);
      while (more && rows.length < request.count) {
        const wanted = request.count - rows.length;
        const last = rows[rows.length - 1]!;
        const fetched = await driven(
          order.map((k) => last[k.column]),
          wanted,
        ).execute();
        more = fetched.length === wanted;
        rows = dropRepeats([...rows, ...fetched]);
      }
    }
    const result: SearchResult<T> = {
      resources: rows.map((r) => decodeResource<T>(r.content)),
      cursors: rows.map((r) =>
        encodeCursor(
          shape,
          order.map((k) => r[k.column]),
        ),
      ),
    };
    if (request.withTotal) {
      const counted = await base.select((eb) => eb.fn.countAll().as('total')).executeTakeFirstOrThrow();
      result.total = Number(counted.total);
    }
    return result;
  }

  /**
   * The engine's plan for a search's page query, one line per node (EXPLAIN QUERY PLAN on SQLite,
   * EXPLAIN on PostgreSQL): for the tests that check the searches use the intended indexes.
   */
  async explainSearch(request: SearchRequest): Promise<string[]> {
    const compiled = this.#searchQueries(request).page.compile();
    const prefix = this.engine === 'postgresql' ? 'explain ' : 'explain query plan ';
    const { rows } = await this.db.executeQuery<Record<string, unknown>>(
      CompiledQuery.raw(prefix + compiled.sql, [...compiled.parameters]),
    );
    return rows.map((row) => String(row['QUERY PLAN'] ?? row['detail']));
  }

  async create<T extends Resource>(tenant: TenantId, resource: T, now: Date): Promise<T> {
    const [stored] = await this.createAll(tenant, [resource], now);
    return stored as T;
  }

  /**
   * One INSERT per table for all of them (resources, resource_history, search_index): an intake
   * stores its ServiceRequest and Task in three statements, not six.
   */
  async createAll(tenant: TenantId, resources: readonly Resource[], now: Date): Promise<Resource[]> {
    if (resources.length === 0) return [];
    const { stamped, rows } = firstVersions(
      tenant,
      resources.map((resource) => ({ resource, at: now })),
    );
    const indexRows = stamped.flatMap(({ resource }) => indexRowsOf(tenant, resource));
    const inserted =
      this.engine === 'postgresql' ? await this.#insertFirstVersionsAtOnce(rows, indexRows) : await this.#insertResourceRows(rows);
    if (inserted.length !== rows.length) {
      const taken = rows.find(
        (row, index) =>
          rows.findIndex((r) => r.resource_type === row.resource_type && r.id === row.id) !== index ||
          !inserted.some((i) => i.resource_type === row.resource_type && i.id === row.id),
      )!;
      // Undo this call's other rows, so that a caller carrying on after the 409 stores nothing of it.
      if (inserted.length > 0) {
        await this.db
          .deleteFrom('resources')
          .where('tenant', '=', tenant)
          .where((eb) => eb.or(inserted.map((row) => eb.and({ resource_type: row.resource_type, id: row.id }))))
          .execute();
      }
      throw new OperationOutcomeError(conflict(`${taken.resource_type}/${taken.id} already exists`, `${taken.resource_type}.id`));
    }
    if (this.engine !== 'postgresql') {
      await this.db.insertInto('resource_history').values(rows).execute();
      await this.insertIndexRows(indexRows);
    }
    for (const row of rows) this.changes.push({ action: 'C', reference: `${row.resource_type}/${row.id}` });
    return stamped.map(({ resource }) => resource);
  }

  // ON CONFLICT DO NOTHING rather than catching a unique violation: on PostgreSQL an error
  // would abort the whole transaction, and the caller may want to carry on after a 409.
  #insertResourceRows(rows: ReadonlyArray<Insertable<ResourcesTable>>): Promise<Array<{ resource_type: string; id: string }>> {
    return this.db
      .insertInto('resources')
      .values(rows)
      .onConflict((oc) => oc.columns(['tenant', 'resource_type', 'id']).doNothing())
      .returning(['resource_type', 'id'])
      .execute();
  }

  /**
   * PostgreSQL: the current rows, their history and their search index in one statement, one
   * round trip instead of three (docs/resilience.md, intake's round trips). History and index rows
   * are written only when every resource row was: after a conflict `createAll` removes what it
   * inserted and answers 409, with nothing else of the call stored. The index rows travel as one
   * JSON parameter typed by the table itself (`json_populate_recordset`), free of the
   * bound-parameter limit, inserted as the new-referral statement inserts its rows (`recordsetInsert`,
   * parenthesised here: Kysely leaves a raw CTE bare). https://www.postgresql.org/docs/15/queries-with.html#QUERIES-WITH-MODIFYING
   */
  #insertFirstVersionsAtOnce(
    rows: ReadonlyArray<Insertable<ResourcesTable>>,
    indexRows: readonly SearchIndexTable[],
  ): Promise<Array<{ resource_type: string; id: string }>> {
    const everyRowInserted = sql<boolean>`(select count(*) from inserted) = ${rows.length}`;
    return this.db
      .with('inserted', (cte) =>
        cte
          .insertInto('resources')
          .values(rows)
          .onConflict((oc) => oc.columns(['tenant', 'resource_type', 'id']).doNothing())
          .returning(HISTORY_COLUMNS),
      )
      .with('history', (cte) =>
        cte
          .insertInto('resource_history')
          .columns(HISTORY_COLUMNS)
          .expression((eb) => eb.selectFrom('inserted').select(HISTORY_COLUMNS).where(everyRowInserted))
          .returning('id'),
      )
      .with('indexed', () => sql<object>`(${recordsetInsert('search_index', INDEX_COLUMNS, JSON.stringify(indexRows), everyRowInserted)})`)
      .selectFrom('inserted')
      .select(['resource_type', 'id'])
      .execute();
  }

  async update<T extends Resource>(
    tenant: TenantId,
    resource: T & { id: string },
    now: Date,
    options?: { ifMatchVersionId?: string },
  ): Promise<T> {
    const resourceType = resource.resourceType;
    const id = resource.id;
    assertId(resourceType, id);
    const expected = normalizeVersion(options?.ifMatchVersionId);
    const stale = (reason: string): OperationOutcomeError =>
      new OperationOutcomeError(
        preconditionFailed(`Version ${expected} of ${resourceType}/${id} is not current: ${reason}`, `${resourceType}.meta.versionId`),
      );

    // Optimistic: write only if the version read is still current. A concurrent writer makes the
    // conditional write touch no row (PostgreSQL re-checks the WHERE after waiting for its lock),
    // and then we read again. https://hl7.org/fhir/R4/http.html#concurrency
    for (let attempt = 0; attempt < WRITE_ATTEMPTS; attempt++) {
      const current = await this.#rowsOf('resources', tenant, resourceType, id).select('version_id').executeTakeFirst();

      if (!current) {
        if (expected !== undefined) throw stale('the resource does not exist');
        const stored = stamp(resource, id, 1, now);
        if (!(await this.insertCurrent(tenant, stored, 1))) continue;
        await this.insertVersion(tenant, stored, 1);
        await this.writeIndex(tenant, stored.resource, { replace: false });
        this.changes.push({ action: 'C', reference: `${resourceType}/${id}` });
        return stored.resource;
      }

      if (expected !== undefined && String(current.version_id) !== expected) throw stale(`the current version is ${current.version_id}`);
      const next = current.version_id + 1;
      const stored = stamp(resource, id, next, now);
      const updated = await this.db
        .updateTable('resources')
        .set({ version_id: next, last_updated: stored.resource.meta!.lastUpdated!, content: stored.content })
        .where('tenant', '=', tenant)
        .where('resource_type', '=', resourceType)
        .where('id', '=', id)
        .where('version_id', '=', current.version_id)
        .executeTakeFirst();
      if (updated.numUpdatedRows === 0n) {
        if (expected !== undefined) throw stale('it was changed concurrently');
        continue;
      }
      await this.insertVersion(tenant, stored, next);
      await this.writeIndex(tenant, stored.resource, { replace: true });
      this.changes.push({ action: 'U', reference: `${resourceType}/${id}` });
      return stored.resource;
    }
    throw new OperationOutcomeError(conflict(`${resourceType}/${id} is being changed concurrently; retry`, `${resourceType}.id`));
  }

  async importReferrals(tenant: TenantId, input: ReferralImport): Promise<void> {
    const referralRows = input.referrals.map((row) => {
      assertTenants([row.tenant]);
      return referralRowOf(row, row.at.toISOString());
    });
    const { stamped, rows: resourceRows } = firstVersions(tenant, input.resources);
    // Multi-row statements sized well under both engines' bound-parameter limits.
    for (let i = 0; i < referralRows.length; i += IMPORT_CHUNK)
      await this.db
        .insertInto('referrals')
        .values(referralRows.slice(i, i + IMPORT_CHUNK))
        .execute();
    for (let i = 0; i < resourceRows.length; i += IMPORT_CHUNK) {
      const chunk = resourceRows.slice(i, i + IMPORT_CHUNK);
      await this.db.insertInto('resources').values(chunk).execute();
      await this.db.insertInto('resource_history').values(chunk).execute();
    }
    await this.insertIndexRows(stamped.flatMap(({ resource }) => indexRowsOf(tenant, resource)));
  }

  async claimReferral(row: Omit<ReferralRow, 'createdAt' | 'updatedAt'>, now: Date): Promise<ClaimReferralResult> {
    const at = now.toISOString();
    // The unique constraint decides, never a read first. On PostgreSQL an INSERT that meets an
    // uncommitted row with the same key waits for that transaction: if it commits, DO NOTHING
    // and the SELECT below (a new snapshot under READ COMMITTED) sees the winner; if it rolls
    // back, this INSERT goes through and this caller wins.
    for (let attempt = 0; attempt < WRITE_ATTEMPTS; attempt++) {
      const inserted = await this.db
        .insertInto('referrals')
        .values(referralRowOf(row, at))
        .onConflict((oc) => oc.columns(['tenant', 'identifier_system', 'identifier_value']).doNothing())
        .returning('id')
        .executeTakeFirst();
      if (inserted) return { claimed: true };
      const existing = await this.findReferralByIdentifier(row.tenant, row.identifierSystem, row.identifierValue);
      if (existing) return { claimed: false, existing };
    }
    throw new Error('Could not claim the referral nor read the claim that won');
  }

  async enqueue(message: NewOutboxMessage, now: Date): Promise<void> {
    await outbox.enqueueMessage(this.db, this.engine, message, now);
  }

  async updateReferralStatus(tenant: TenantId, id: string, status: string, now: Date): Promise<void> {
    const result = await this.db
      .updateTable('referrals')
      .set({ status, updated_at: now.toISOString() })
      .where('tenant', '=', tenant)
      .where('id', '=', id)
      .executeTakeFirst();
    if (result.numUpdatedRows === 0n) throw new OperationOutcomeError(notFound('Referral', id));
  }

  async updateReferral(tenant: TenantId, id: string, changes: { status: string; referral: unknown }, now: Date): Promise<void> {
    const result = await this.db
      .updateTable('referrals')
      .set({ status: changes.status, referral: JSON.stringify(changes.referral ?? null), updated_at: now.toISOString() })
      .where('tenant', '=', tenant)
      .where('id', '=', id)
      .executeTakeFirst();
    if (result.numUpdatedRows === 0n) throw new OperationOutcomeError(notFound('Referral', id));
  }

  async findReferralByIdentifier(tenant: TenantId, identifierSystem: string, identifierValue: string): Promise<ReferralRow | undefined> {
    const row = await this.db
      .selectFrom('referrals')
      .selectAll()
      .where('tenant', '=', tenant)
      .where('identifier_system', '=', identifierSystem)
      .where('identifier_value', '=', identifierValue)
      .executeTakeFirst();
    return row ? referralOf(row) : undefined;
  }

  async reserveChair(booking: ChairBooking, now: Date): Promise<ChairReservation> {
    await this.lock(`chair:${booking.locationId}:${booking.chairId}`);
    const at = now.toISOString();
    const overlapping = await this.db
      .selectFrom('chair_bookings')
      .selectAll()
      .where('location_id', '=', booking.locationId)
      .where('chair_id', '=', booking.chairId)
      .where('appointment_id', '<>', booking.appointmentId)
      .where('start_at', '<', booking.end)
      .where('end_at', '>', booking.start)
      .where((eb) => eb.or([eb('status', '=', 'booked'), eb('hold_expires_at', '>', at)]))
      .orderBy('start_at')
      .executeTakeFirst();
    if (overlapping) return { reserved: false, conflict: chairBookingOf(overlapping) };
    const row = {
      appointment_id: booking.appointmentId,
      tenant: booking.tenant,
      referral_id: booking.referralId,
      location_id: booking.locationId,
      chair_id: booking.chairId,
      start_at: booking.start,
      end_at: booking.end,
      status: booking.status,
      hold_expires_at: booking.holdExpiresAt ?? null,
      updated_at: at,
    };
    await this.db
      .insertInto('chair_bookings')
      .values({ ...row, created_at: at })
      .onConflict((oc) => oc.column('appointment_id').doUpdateSet(row))
      .execute();
    return { reserved: true };
  }

  async releaseChair(appointmentId: string): Promise<void> {
    await this.db.deleteFrom('chair_bookings').where('appointment_id', '=', appointmentId).execute();
  }

  async listReferralChairBookings(referralId: string): Promise<ChairBooking[]> {
    const rows = await this.db.selectFrom('chair_bookings').selectAll().where('referral_id', '=', referralId).orderBy('start_at').execute();
    return rows.map(chairBookingOf);
  }

  async readChairBooking(appointmentId: string): Promise<ChairBooking | undefined> {
    const row = await this.db.selectFrom('chair_bookings').selectAll().where('appointment_id', '=', appointmentId).executeTakeFirst();
    return row ? chairBookingOf(row) : undefined;
  }

  async listChairBookings(locationIds: readonly string[], from: Date, to: Date, now: Date): Promise<ChairBooking[]> {
    if (locationIds.length === 0) return [];
    const rows = await this.db
      .selectFrom('chair_bookings')
      .selectAll()
      .where('location_id', 'in', [...locationIds])
      .where('start_at', '<', to.toISOString())
      .where('end_at', '>', from.toISOString())
      .where((eb) => eb.or([eb('status', '=', 'booked'), eb('hold_expires_at', '>', now.toISOString())]))
      .orderBy('start_at')
      .execute();
    return rows.map(chairBookingOf);
  }

  async findReferralById(id: string): Promise<ReferralRow | undefined> {
    const row = await this.db.selectFrom('referrals').selectAll().where('id', '=', id).executeTakeFirst();
    return row ? referralOf(row) : undefined;
  }

  async readReferral(tenant: TenantId, id: string): Promise<ReferralRow | undefined> {
    const row = await this.db.selectFrom('referrals').selectAll().where('tenant', '=', tenant).where('id', '=', id).executeTakeFirst();
    return row ? referralOf(row) : undefined;
  }

  async listReferralsByStatus(status: string, options: { limit: number }): Promise<ReferralRow[]> {
    const rows = await this.db
      .selectFrom('referrals')
      .selectAll()
      .where('status', '=', status)
      .orderBy('updated_at')
      .orderBy('id')
      .limit(options.limit)
      .execute();
    return rows.map(referralOf);
  }

  private async insertCurrent(tenant: TenantId, stamped: Stamped<Resource>, version: number): Promise<boolean> {
    const inserted = await this.db
      .insertInto('resources')
      .values(versionRow(tenant, stamped, version))
      .onConflict((oc) => oc.columns(['tenant', 'resource_type', 'id']).doNothing())
      .returning('id')
      .executeTakeFirst();
    return inserted !== undefined;
  }

  private async insertVersion(tenant: TenantId, stamped: Stamped<Resource>, version: number): Promise<void> {
    await this.db
      .insertInto('resource_history')
      .values(versionRow(tenant, stamped, version))
      .execute();
  }

  private async writeIndex(tenant: TenantId, stored: Resource & { id: string }, options: { replace: boolean }): Promise<void> {
    if (options.replace) {
      await this.db
        .deleteFrom('search_index')
        .where('tenant', '=', tenant)
        .where('resource_type', '=', stored.resourceType)
        .where('resource_id', '=', stored.id)
        .execute();
    }
    await this.insertIndexRows(indexRowsOf(tenant, stored));
  }

  /**
   * PostgreSQL: many rows per statement (each statement a round trip). SQLite: one prepared
   * statement per row, compiled once: in-process there is no round trip to save, and a multi-row
   * VALUES into this table measured three times slower than the same rows one by one (8 rows:
   * 0.31 against 0.11 ms, docs/resilience.md#sqlite-index-rows).
   */
  private async insertIndexRows(rows: readonly SearchIndexTable[]): Promise<void> {
    if (this.engine !== 'postgresql') {
      for (const row of rows) {
        await this.db.executeQuery(
          CompiledQuery.raw(
            INSERT_INDEX_ROW,
            INDEX_COLUMNS.map((column) => row[column]),
          ),
        );
      }
      return;
    }
    for (let i = 0; i < rows.length; i += INDEX_INSERT_CHUNK) {
      await this.db
        .insertInto('search_index')
        .values(rows.slice(i, i + INDEX_INSERT_CHUNK))
        .execute();
    }
  }
}

/**
 * The transaction rule of the audit trail (docs/audit.md): the AuditEvents of a change are written
 * by the change's own transaction, just before it commits, so a change is never stored without its
 * record nor a record without its change. Who acts comes from the audit context of the request or
 * job running the transaction; work outside any context (migrations, test set-up) is not audited.
 */
async function recordChanges(
  trx: Kysely<StoreDatabase>,
  engine: StoreEngine,
  changes: ReadonlyArray<{ action: 'C' | 'U'; reference: string }>,
): Promise<void> {
  const audit = auditOfChanges(changes);
  if (audit === undefined) return;
  await insertAuditEvents(trx, engine, audit.records);
  audit.context.changesRecorded += audit.records.length;
}

/**
 * The AuditEvents of a transaction's changes: one per action (create, update) naming every
 * resource it touched and the request's own entities; none outside an audit context.
 */
function auditOfChanges(
  changes: ReadonlyArray<{ action: 'C' | 'U'; reference: string }>,
): { context: AuditContext; records: AuditRecord[] } | undefined {
  const context = currentAuditContext();
  if (context === undefined || changes.length === 0) return undefined;
  const recorded = context.clock.now();
  const agent = context.agent();
  const records: AuditRecord[] = (['C', 'U'] as const).flatMap((action) => {
    const changed = changes.filter((change) => change.action === action).map((change) => change.reference);
    if (changed.length === 0) return [];
    const entities = [...new Set([...changed, ...context.entities])];
    return [
      {
        id: context.newId(),
        recorded,
        action,
        subtype: context.subtype,
        ...(context.operation !== undefined ? { operation: context.operation } : {}),
        outcome: 0 as const,
        agent,
        entities,
      },
    ];
  });
  return { context, records };
}

/**
 * The store whose transaction's work is running, if any (see KyselyResourceStore.#assertUsable).
 * One for the module, not one per store: on Node 20 every AsyncLocalStorage that has run stays on
 * the list each new promise is copied through, so a process that opened hundreds of stores (the
 * test suite) made every await slower with each, up to 8 times (docs/resilience.md#one-async-local-storage).
 */
const transactionWorkOf = new AsyncLocalStorage<KyselyResourceStore>();

/** How busy a connection pool is, and how many waiting requests make it saturated. */
export interface PoolLoad {
  waiting: number;
  maxWaiting: number;
}

export class KyselyResourceStore implements ResourceStore, AuthStateStore, AuditTrail {
  readonly engine: StoreEngine;
  readonly #db: Kysely<StoreDatabase>;
  readonly #root: KyselyResourceAccess;
  /** SQLite's transactions, committed in groups (sqlite-group-commit.ts); undefined on PostgreSQL. */
  readonly #groupCommit: SqliteGroupCommit<StoreDatabase> | undefined;
  #closed = false;
  /** When this store next prunes old job ticks (in the callers' time); see claimJobRun. */
  #nextJobRunPrune = Number.NEGATIVE_INFINITY;

  /** Connections taken and requests waiting for one (PostgreSQL's pool); undefined on SQLite. */
  readonly #poolLoad: (() => PoolLoad) | undefined;

  /** SQLite's periodic `PRAGMA optimize` (https://www.sqlite.org/pragma.html#pragma_optimize). */
  readonly #optimizeTimer: NodeJS.Timeout | undefined;

  /**
   * PostgreSQL: resources written since the last ANALYZE, the count that ANALYZE saw, and the one
   * running, for keeping statistics as the store grows (#keepStatistics).
   */
  #writtenSinceAnalyze = 0;
  #analyzedResources = 0;
  #analyzing: Promise<void> | undefined;
  #lastAnalyzeStarted = Number.NEGATIVE_INFINITY;
  readonly #statisticsNapMs: number;

  constructor(db: Kysely<StoreDatabase>, engine: StoreEngine, options: { poolLoad?: () => PoolLoad; statisticsNapMs?: number } = {}) {
    this.#db = db;
    this.engine = engine;
    this.#statisticsNapMs = options.statisticsNapMs ?? STATISTICS_NAP_MS;
    this.#root = new KyselyResourceAccess(db, engine);
    this.#poolLoad = options.poolLoad;
    this.#groupCommit = engine === 'sqlite' ? new SqliteGroupCommit(db) : undefined;
    if (engine === 'sqlite') {
      // SQLite's advice for long-lived connections: optimize every few hours. It re-analyses
      // only the tables whose size changed a lot, within analysis_limit, so it is quick.
      this.#optimizeTimer = setInterval(() => {
        if (!this.#closed) sql`pragma optimize`.execute(this.#db).catch(() => undefined);
      }, SQLITE_OPTIMIZE_INTERVAL_MS);
      this.#optimizeTimer.unref();
    }
  }

  async refreshStatistics(): Promise<void> {
    this.#assertUsable();
    if (this.engine === 'postgresql') {
      this.#writtenSinceAnalyze = 0;
      this.#lastAnalyzeStarted = performance.now();
      // Named tables (resolved through the store's search_path), not a bare ANALYZE, which would
      // analyse every schema of the database.
      for (const table of STATISTICS_TABLES) await sql`analyze ${sql.table(table)}`.execute(this.#db);
      const { rows } = await sql<{ resources: number }>`select reltuples::float8 as resources from pg_class
                                                        where oid = to_regclass('resources')`.execute(this.#db);
      this.#analyzedResources = Math.max(0, Number(rows[0]?.resources ?? 0));
      return;
    }
    // analysis_limit bounds the rows sampled per index, so this stays well under a second at a
    // million referrals (https://www.sqlite.org/lang_analyze.html#approx).
    await sql`pragma analysis_limit = ${sql.raw(String(SQLITE_ANALYSIS_LIMIT))}`.execute(this.#db);
    await sql`analyze`.execute(this.#db);
    await sql`pragma optimize`.execute(this.#db);
  }

  /**
   * PostgreSQL: ANALYZE again, in the background, once the resources written since the last one
   * reach 50 + 10% of the count it saw, and at most once a minute: autovacuum's own default rule and
   * naptime (https://www.postgresql.org/docs/15/routine-vacuuming.html#VACUUM-FOR-STATISTICS), kept
   * by the store because autovacuum may be off. Without the minute, a store growing from empty
   * under intake load analysed every second or two, and ANALYZE took 38% of PostgreSQL's CPU.
   * Without the rule, a store that starts empty keeps the statistics of an empty table, and the
   * planner then read a resource by id through `resources_by_last_updated`, scanning every
   * resource of its type (docs/search.md#statistics-kept).
   */
  #keepStatistics(written: number): void {
    if (this.engine !== 'postgresql' || written === 0) return;
    this.#writtenSinceAnalyze += written;
    if (this.#analyzing !== undefined || this.#closed) return;
    if (this.#writtenSinceAnalyze < ANALYZE_THRESHOLD + ANALYZE_SCALE_FACTOR * this.#analyzedResources) return;
    if (performance.now() - this.#lastAnalyzeStarted < this.#statisticsNapMs) return;
    this.#analyzing = this.refreshStatistics()
      // A failed ANALYZE (the database away, the store closing) waits for the next writes.
      .catch(() => undefined)
      .finally(() => (this.#analyzing = undefined));
  }

  /**
   * The store's own methods refuse to run inside its transaction's work: on SQLite they would
   * wait forever for the one connection the work holds, and on PostgreSQL they would not see the
   * work's own writes. The work must use its `tx`.
   */
  #assertUsable(): void {
    if (this.#closed) throw new Error('The store is closed');
    if (transactionWorkOf.getStore() === this) {
      throw new Error("Called the store inside its own transaction's work: use the tx argument instead");
    }
  }

  #reader(): KyselyResourceAccess {
    this.#assertUsable();
    return this.#root;
  }

  async read<T extends Resource = Resource>(tenants: readonly TenantId[], resourceType: string, id: string): Promise<T | undefined> {
    return this.#reader().read<T>(tenants, resourceType, id);
  }

  async readVersion<T extends Resource = Resource>(...args: Parameters<KyselyResourceAccess['readVersion']>): Promise<T | undefined> {
    return this.#reader().readVersion<T>(...args);
  }

  async history<T extends Resource = Resource>(tenants: readonly TenantId[], resourceType: string, id: string): Promise<T[]> {
    return this.#reader().history<T>(tenants, resourceType, id);
  }

  async search<T extends Resource = Resource>(request: SearchRequest): Promise<SearchResult<T>> {
    return this.#reader().search<T>(request);
  }

  /** See KyselyResourceAccess.explainSearch (tests of the query plans, docs/search.md). */
  async explainSearch(request: SearchRequest): Promise<string[]> {
    return this.#reader().explainSearch(request);
  }

  async findReferralByIdentifier(tenant: TenantId, identifierSystem: string, identifierValue: string): Promise<ReferralRow | undefined> {
    return this.#reader().findReferralByIdentifier(tenant, identifierSystem, identifierValue);
  }

  async readReferral(tenant: TenantId, id: string): Promise<ReferralRow | undefined> {
    return this.#reader().readReferral(tenant, id);
  }

  async findReferralById(id: string): Promise<ReferralRow | undefined> {
    return this.#reader().findReferralById(id);
  }

  async listChairBookings(locationIds: readonly string[], from: Date, to: Date, now: Date): Promise<ChairBooking[]> {
    return this.#reader().listChairBookings(locationIds, from, to, now);
  }

  async readChairBooking(appointmentId: string): Promise<ChairBooking | undefined> {
    return this.#reader().readChairBooking(appointmentId);
  }

  async listReferralsByStatus(status: string, options: { limit: number }): Promise<ReferralRow[]> {
    return this.#reader().listReferralsByStatus(status, options);
  }

  /**
   * On SQLite all work shares one connection, so transactions run one after another; on
   * PostgreSQL each takes a pooled connection, READ COMMITTED. Inside `work`, use `tx` only.
   */
  async transaction<T>(work: (tx: ResourceWriter) => Promise<T>): Promise<T> {
    this.#assertUsable();
    let written = 0;
    const unit = async (trx: Kysely<StoreDatabase>): Promise<T> => {
      const access = new KyselyResourceAccess(trx, this.engine);
      const result = await transactionWorkOf.run(this, () => work(access));
      await recordChanges(trx, this.engine, access.changes);
      written = access.changes.length;
      return result;
    };
    // SQLite: one connection, so transactions queue anyway; those that queue share a COMMIT.
    if (this.#groupCommit) return this.#groupCommit.run(unit);
    const result = await this.#db.transaction().setIsolationLevel('read committed').execute(unit);
    this.#keepStatistics(written);
    return result;
  }

  async recordNewReferral(referral: NewReferral, now: Date): Promise<NewReferralResult> {
    if (this.engine !== 'postgresql') return this.transaction((tx) => recordNewReferralIn(tx, referral, now));
    this.#assertUsable();
    const { tenant } = referral.claim;
    const at = now.toISOString();
    const { stamped, rows } = firstVersions(
      tenant,
      referral.resources.map((resource) => ({ resource, at: now })),
    );
    const stored = stamped.map(({ resource }) => resource);
    const references = rows.map((row) => `${row.resource_type}/${row.id}`);
    const audit = auditOfChanges(references.map((reference) => ({ action: 'C' as const, reference })));
    const { events, entities } = auditRowsOf(audit?.records ?? []);
    // The messages' ordering keys are the new referral's own (docs/resilience.md#intake-in-one-statement):
    // no other transaction can enqueue under them before this one commits, so the advisory lock
    // that enqueue takes to keep commit order within a key is not needed here.
    const query = newReferralQuery(
      {
        claim: { rows: [referralRowOf(referral.claim, at)], columns: REFERRAL_TABLE_COLUMNS, jsonColumns: ['referral'] },
        resources: { rows, columns: HISTORY_COLUMNS, jsonColumns: ['content'] },
        searchIndex: { rows: stamped.flatMap(({ resource }) => indexRowsOf(tenant, resource)), columns: INDEX_COLUMNS },
        outboxMessages: {
          rows: referral.messages(stored).map((message) => outbox.outboxRowOf(message, now)),
          columns: outbox.OUTBOX_COLUMNS,
          jsonColumns: ['payload', 'last_error'],
        },
        auditEvents: { rows: events, columns: AUDIT_EVENT_COLUMNS, jsonColumns: ['detail'] },
        auditEventEntities: { rows: entities, columns: AUDIT_EVENT_ENTITY_COLUMNS },
      },
      this.#db,
    );
    for (let attempt = 0; attempt < WRITE_ATTEMPTS; attempt++) {
      const result = await this.#db.executeQuery(query).catch((err: unknown) => {
        // The statement has no ON CONFLICT on `resources`: a taken id fails all of it, as createAll's 409.
        if ((err as { code?: string; constraint?: string }).constraint === 'resources_pk') {
          throw new OperationOutcomeError(conflict(`${references.join(' or ')} already exists`, `${rows[0]!.resource_type}.id`));
        }
        throw err;
      });
      if (result.rows[0]?.claimed === 1) {
        if (audit !== undefined) audit.context.changesRecorded += audit.records.length;
        this.#keepStatistics(rows.length);
        return { claimed: true, stored };
      }
      // As claimReferral: the number was taken by a transaction that has committed by now.
      const existing = await this.#root.findReferralByIdentifier(tenant, referral.claim.identifierSystem, referral.claim.identifierValue);
      if (existing) return { claimed: false, existing };
    }
    throw new Error('Could not claim the referral nor read the claim that won');
  }

  // The audit trail (docs/audit.md).

  async recordAuditEvents(records: readonly AuditRecord[]): Promise<void> {
    this.#assertUsable();
    await insertAuditEvents(this.#db, this.engine, records);
  }

  async searchAuditEvents(search: AuditSearch): Promise<AuditRecord[]> {
    this.#assertUsable();
    return searchAuditEvents(this.#db, this.engine, search);
  }

  async readAuditEvent(id: string): Promise<AuditRecord | undefined> {
    this.#assertUsable();
    return readAuditEvent(this.#db, this.engine, id);
  }

  async purgeAuditEvents(before: Date): Promise<number> {
    this.#assertUsable();
    return purgeAuditEvents(this.#db, before);
  }

  // The outbox, worker side (outbox.ts explains the claim and why it is race-free).

  async claimDueMessages(now: Date, options: { limit: number; leaseMs: number }): Promise<OutboxMessage[]> {
    this.#assertUsable();
    return outbox.claimDueMessages(this.#db, this.engine, now, options);
  }

  async markDelivered(id: string, now: Date): Promise<void> {
    this.#assertUsable();
    await outbox.markDelivered(this.#db, id, now);
  }

  async scheduleRetry(id: string, nextAttemptAt: Date, error: OperationOutcome, now: Date): Promise<void> {
    this.#assertUsable();
    await outbox.scheduleRetry(this.#db, id, nextAttemptAt, error, now);
  }

  async markDead(id: string, error: OperationOutcome, now: Date): Promise<void> {
    this.#assertUsable();
    await outbox.markDead(this.#db, id, error, now);
  }

  async listOutboxMessages(filter: {
    status?: OutboxStatus;
    tenant?: TenantId;
    count: number;
    offset: number;
  }): Promise<{ messages: OutboxMessage[]; total: number }> {
    this.#assertUsable();
    return outbox.listOutboxMessages(this.#db, this.engine, filter);
  }

  async readOutboxMessage(id: string): Promise<OutboxMessage | undefined> {
    this.#assertUsable();
    return outbox.readOutboxMessage(this.#db, this.engine, id);
  }

  async retryDeadMessage(id: string, now: Date): Promise<boolean> {
    this.#assertUsable();
    return outbox.retryDeadMessage(this.#db, id, now);
  }

  async networkMetrics(query: NetworkMetricsQuery): Promise<NetworkMetricsRows> {
    this.#assertUsable();
    return networkMetrics(this.#db, this.engine, query);
  }

  async readCursor(name: string): Promise<unknown> {
    this.#assertUsable();
    return jobState.readCursor(this.#db, this.engine, name);
  }

  async writeCursor(name: string, value: unknown, now: Date): Promise<void> {
    this.#assertUsable();
    await jobState.writeCursor(this.#db, name, value, now);
  }

  /** Also prunes ticks older than a day, at most once an hour per store, so job_runs stays small. */
  // Authentication's state (auth-state.ts).

  async signingKeys(): Promise<StoredSigningKey[]> {
    this.#assertUsable();
    return authState.signingKeys(this.#db);
  }

  async addSigningKey(key: StoredSigningKey): Promise<void> {
    this.#assertUsable();
    await authState.addSigningKey(this.#db, key);
  }

  async claimAssertionId(clientId: string, jti: string, expiresAt: Date, now: Date): Promise<boolean> {
    this.#assertUsable();
    return authState.claimAssertionId(this.#db, clientId, jti, expiresAt, now);
  }

  async claimJobRun(key: string, now: Date): Promise<boolean> {
    this.#assertUsable();
    if (now.getTime() >= this.#nextJobRunPrune) {
      this.#nextJobRunPrune = now.getTime() + jobState.JOB_RUN_PRUNE_INTERVAL_MS;
      await jobState.pruneJobRuns(this.#db, now);
    }
    return jobState.claimJobRun(this.#db, key, now);
  }

  async ping(): Promise<void> {
    this.#assertUsable();
    await sql`select 1`.execute(this.#db);
  }

  /**
   * Saturated first, without a query: a ping would only join the queue it measures. Then a ping,
   * which the pool's acquire timeout bounds when the database is away.
   */
  async readiness(): Promise<StoreReadiness> {
    const load = this.#poolLoad?.();
    if (load !== undefined && load.waiting > load.maxWaiting) {
      return {
        ready: false,
        reason: 'saturated',
        diagnostics: `${load.waiting} requests wait for a database connection (more than ${load.maxWaiting})`,
      };
    }
    try {
      await this.ping();
      return { ready: true };
    } catch {
      return { ready: false, reason: 'unreachable', diagnostics: 'The database is not reachable' };
    }
  }

  /**
   * The settings the database actually runs with on this store's connection, for operators and
   * tests: SQLite's journal mode and synchronous level, PostgreSQL's statement_timeout.
   */
  async settings(): Promise<Record<string, string>> {
    this.#assertUsable();
    if (this.engine === 'postgresql') {
      const { rows } = await sql<{ statement_timeout: string }>`show statement_timeout`.execute(this.#db);
      return { statement_timeout: String(rows[0]?.statement_timeout) };
    }
    const journal = await sql<{ journal_mode: string }>`pragma journal_mode`.execute(this.#db);
    const synchronous = await sql<{ synchronous: number }>`pragma synchronous`.execute(this.#db);
    const levels = ['off', 'normal', 'full', 'extra'];
    return {
      journal_mode: String(journal.rows[0]?.journal_mode),
      synchronous: levels[Number(synchronous.rows[0]?.synchronous)] ?? 'unknown',
    };
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    clearInterval(this.#optimizeTimer);
    await this.#analyzing;
    await this.#db.destroy();
  }
}

const SQLITE_OPTIMIZE_INTERVAL_MS = 60 * 60 * 1000;
const SQLITE_ANALYSIS_LIMIT = 1000;
/** PostgreSQL's autovacuum_analyze_threshold, autovacuum_analyze_scale_factor and autovacuum_naptime defaults (#keepStatistics). */
const ANALYZE_THRESHOLD = 50;
const ANALYZE_SCALE_FACTOR = 0.1;
const STATISTICS_NAP_MS = 60_000;
const STATISTICS_TABLES = ['resources', 'resource_history', 'search_index', 'referrals', 'outbox_messages', 'chair_bookings'] as const;

interface OrderKey {
  column: 'last_updated' | 'id' | 'tenant';
  descending: boolean;
}

/**
 * The cursor of keyset paging: the sort key values of a row, with the order they belong to, so a
 * cursor from another sort is refused rather than misread. Opaque to clients (base64url JSON).
 */
function encodeCursor(shape: string, values: readonly string[]): string {
  return Buffer.from(JSON.stringify({ o: shape, v: values })).toString('base64url');
}

function decodeCursor(cursor: string, shape: string): string[] {
  let decoded: unknown;
  try {
    decoded = JSON.parse(Buffer.from(cursor, 'base64url').toString('utf8'));
  } catch {
    decoded = undefined;
  }
  const value = decoded as { o?: unknown; v?: unknown } | undefined;
  const values = value?.v;
  if (
    value?.o !== shape ||
    !Array.isArray(values) ||
    values.length !== shape.split(',').length ||
    !values.every((v): v is string => typeof v === 'string')
  ) {
    throw new OperationOutcomeError(
      badRequest([errorIssue('value', '_cursor is not a cursor of this search (follow the next link as given)', '_cursor')]),
    );
  }
  return values;
}

/** Rows strictly after `values` in `order`: (k1 > v1) or (k1 = v1 and k2 > v2) or …, each in its direction. */
type KeyExpressions = ExpressionBuilder<SearchScope & { d: StoreDatabase['search_index'] }, 'r'>;
function afterKeys(eb: KeyExpressions, order: ReadonlyArray<OrderKey & { ref: string }>, values: readonly string[]): Expression<SqlBool> {
  const column = (key: { ref: string }) => sql.ref(key.ref);
  const first = order[0]!;
  return eb.and([
    // Redundant with the disjunction below, but a range the engines can seek in the index.
    sql<SqlBool>`${column(first)} ${sql.raw(first.descending ? '<=' : '>=')} ${values[0]!}`,
    eb.or(
      order.map((key, i) =>
        eb.and([
          ...order.slice(0, i).map((earlier, j) => sql<SqlBool>`${column(earlier)} = ${values[j]!}`),
          sql<SqlBool>`${column(key)} ${sql.raw(key.descending ? '<' : '>')} ${values[i]!}`,
        ]),
      ),
    ),
  ]);
}

/** A driven page's rows without the repeats of one resource (adjacent, as they share the sort keys). */
function dropRepeats<R extends { id: string; tenant: string }>(rows: readonly R[]): R[] {
  return rows.filter((row, i) => i === 0 || rows[i - 1]!.id !== row.id || rows[i - 1]!.tenant !== row.tenant);
}
