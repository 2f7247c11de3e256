/**
 * The tables, as Kysely sees them. JSON columns are `jsonb` on PostgreSQL and `text` on SQLite:
 * they are written as JSON text on both and read back either parsed (pg) or as text (SQLite).
 *
 * Instants (`last_updated`, `date_low`, ...) are fixed-width UTC ISO strings
 * (`YYYY-MM-DDTHH:mm:ss.sssZ`), so string order is time order on both engines (PostgreSQL text
 * columns use the "C" collation for the same reason).
 */
import type { ColumnType, Generated } from 'kysely';

/** Written as JSON text; read back as text (SQLite) or already parsed (PostgreSQL jsonb). */
export type JsonColumn = ColumnType<unknown, string, string>;

export interface ResourcesTable {
  tenant: string;
  resource_type: string;
  id: string;
  version_id: number;
  last_updated: string;
  content: JsonColumn;
}

/** Every version of every resource: the same columns as the current one (migration 0001). */
export type ResourceHistoryTable = ResourcesTable;

/** One row per (resource, search parameter, value); rewritten with every version. */
export interface SearchIndexTable {
  tenant: string;
  resource_type: string;
  resource_id: string;
  param: string;
  token_system: string | null;
  token_code: string | null;
  /** Normalised (lower case, no accents) for the default and `:contains` string matches. */
  string_norm: string | null;
  /** As written, for `:exact`. */
  string_exact: string | null;
  ref_type: string | null;
  ref_id: string | null;
  uri: string | null;
  date_low: string | null;
  date_high: string | null;
  /** The resource's `last_updated` (migration 0009): index order of a page sorted by it. */
  last_updated: string | null;
}

export interface ReferralsTable {
  tenant: string;
  id: string;
  identifier_system: string;
  identifier_value: string;
  service_request_id: string;
  task_id: string;
  status: string;
  referral: JsonColumn;
  created_at: string;
  updated_at: string;
}

/** A nullable JSON column. */
export type NullableJsonColumn = ColumnType<unknown, string | null, string | null>;

/**
 * The transactional outbox (migration 0002). `sequence` is assigned by the database
 * (PostgreSQL identity, a bigint that pg reads back as a string; SQLite autoincrement).
 */
export interface OutboxMessagesTable {
  sequence: Generated<string | number>;
  id: string;
  tenant: string;
  ordering_key: string;
  kind: string;
  payload: JsonColumn;
  /** pending | delivering | delivered | dead */
  status: string;
  attempts: number;
  next_attempt_at: string;
  last_error: NullableJsonColumn;
  created_at: string;
  updated_at: string;
  delivered_at: string | null;
}

export interface JobCursorsTable {
  name: string;
  value: JsonColumn;
  updated_at: string;
}

/** One row per job tick that some process claimed; the key is the primary key. */
export interface JobRunsTable {
  key: string;
  claimed_at: string;
}

/**
 * Who holds which chair when (migration 0004). Chairs belong to the network, not to a tenant: the
 * overlap check spans every tenant. `start_at`/`end_at` are UTC ISO instants, so text order is time order.
 */
export interface ChairBookingsTable {
  appointment_id: string;
  tenant: string;
  referral_id: string;
  location_id: string;
  chair_id: string;
  start_at: string;
  end_at: string;
  status: string;
  hold_expires_at: string | null;
  created_at: string;
  updated_at: string;
}

/** The gateway's own token signing keys, when AUTH_SIGNING_KEYS names none (docs/security.md). */
export interface SigningKeysTable {
  kid: string;
  /** The private JWK, as JSON text: the database is as secret as the keys it keeps. */
  private_jwk: string;
  created_at: string;
}

/** Client assertion ids (`jti`) already used, kept until the assertion would have expired. */
export interface UsedAssertionsTable {
  jti_key: string;
  expires_at: string;
}

/** The audit trail (migration 0008, docs/audit.md): appended, never updated; purged by age. */
export interface AuditEventsTable {
  id: string;
  recorded: string;
  agent_who: string;
  agent_role: string;
  tenant: string | null;
  action: string;
  subtype: string;
  outcome: number;
  detail: JsonColumn;
}

export interface AuditEventEntitiesTable {
  event_id: string;
  reference: string;
  recorded: string;
}

export interface StoreDatabase {
  resources: ResourcesTable;
  resource_history: ResourceHistoryTable;
  search_index: SearchIndexTable;
  referrals: ReferralsTable;
  outbox_messages: OutboxMessagesTable;
  job_cursors: JobCursorsTable;
  job_runs: JobRunsTable;
  chair_bookings: ChairBookingsTable;
  signing_keys: SigningKeysTable;
  used_assertions: UsedAssertionsTable;
  audit_events: AuditEventsTable;
  audit_event_entities: AuditEventEntitiesTable;
}
