/**
 * The storage port. One implementation over Kysely serves both the embedded SQLite store and
 * PostgreSQL (src/adapters/store/); the use cases see only this interface.
 *
 * Tenancy: every stored row carries the tenant (the sending client) it came from, and every read
 * names the tenants it may see. Writes always go to exactly one tenant.
 */
import type { AuditTrail } from './audit-trail.js';
import type { OperationOutcome, Resource } from 'fhir/r4.js';
import type { SearchCriterion } from '../fhir/search-parameters.js';

export type TenantId = string;

export interface SearchRequest {
  resourceType: string;
  /** The tenants whose rows are visible; never empty. */
  tenants: readonly TenantId[];
  criteria: readonly SearchCriterion[];
  /** Page size (`_count`), already clamped by the caller. */
  count: number;
  /** Rows to skip (`_offset`). */
  offset: number;
  /** `_sort` keys, e.g. `['-_lastUpdated']`; default is `_lastUpdated` ascending then id. */
  sort?: readonly string[];
  /** Whether the caller wants the total count (`_total=accurate`); a count costs all matches, so only on request. */
  withTotal?: boolean;
  /**
   * Keyset paging: an opaque cursor from a previous result's `cursors`; the page starts after
   * that row in the same order. Only valid with the same criteria and sort.
   */
  after?: string;
  /**
   * Aborted when the caller no longer wants the answer (its HTTP client went away): the store
   * then cancels the running statement where the engine can (PostgreSQL), docs/resilience.md.
   */
  signal?: AbortSignal;
}

export interface SearchResult<T extends Resource = Resource> {
  resources: T[];
  /** Present when asked for. */
  total?: number;
  /** For each resource, the opaque cursor that continues the search after it (`SearchRequest.after`). */
  cursors?: string[];
}

export interface ResourceReader {
  /** The current version, or undefined when unknown or deleted in every visible tenant. */
  read<T extends Resource = Resource>(tenants: readonly TenantId[], resourceType: string, id: string): Promise<T | undefined>;
  /** A given version from history (vread). */
  readVersion<T extends Resource = Resource>(
    tenants: readonly TenantId[],
    resourceType: string,
    id: string,
    versionId: string,
  ): Promise<T | undefined>;
  /** All versions, newest first. */
  history<T extends Resource = Resource>(tenants: readonly TenantId[], resourceType: string, id: string): Promise<T[]>;
  search<T extends Resource = Resource>(request: SearchRequest): Promise<SearchResult<T>>;
}

export interface ReferralRow {
  tenant: TenantId;
  id: string;
  /** The ServiceRequest's business identifier from the sender (system + value): the idempotency key. */
  identifierSystem: string;
  identifierValue: string;
  serviceRequestId: string;
  taskId: string;
  /** `businessStatus` code of the referral's Task. */
  status: string;
  /** The translated referral, as JSON. */
  referral: unknown;
  createdAt: string;
  updatedAt: string;
}

export type ClaimReferralResult = { claimed: true } | { claimed: false; existing: ReferralRow };

/** A message announcing a state change, committed with it and delivered afterwards (transactional outbox). */
export interface NewOutboxMessage {
  id: string;
  tenant: TenantId;
  /** Messages with the same key (a referral's id) are delivered one at a time, in enqueue order. */
  orderingKey: string;
  /** What to do, e.g. `ehr-upsert`; the delivery use case dispatches on it. */
  kind: string;
  payload: unknown;
}

export type OutboxStatus = 'pending' | 'delivering' | 'delivered' | 'dead';

export interface OutboxMessage extends NewOutboxMessage {
  /** Store-assigned, increasing in enqueue order: the order within an ordering key. */
  sequence: number;
  status: OutboxStatus;
  /** Delivery attempts started so far. */
  attempts: number;
  /** When the message may next be tried (pending), or when its lease ends (delivering). */
  nextAttemptAt: string;
  /** The last failure, as the receiving server or the network described it. */
  lastError?: OperationOutcome;
  createdAt: string;
  updatedAt: string;
  deliveredAt?: string;
}

/** A chair held (for a while) or booked for one appointment. Instants are UTC ISO strings. */
export interface ChairBooking {
  appointmentId: string;
  tenant: TenantId;
  referralId: string;
  locationId: string;
  chairId: string;
  start: string;
  end: string;
  status: 'held' | 'booked';
  /** A hold lapses by itself at this instant. */
  holdExpiresAt?: string;
}

export type ChairReservation = { reserved: true } | { reserved: false; conflict: ChairBooking };

export interface ReferralImport {
  referrals: ReadonlyArray<Omit<ReferralRow, 'createdAt' | 'updatedAt'> & { at: Date }>;
  resources: ReadonlyArray<{ resource: Resource; at: Date }>;
}

export interface ResourceWriter extends ResourceReader {
  /**
   * Stores a new resource: version 1, `meta.lastUpdated` = `now`. Uses `resource.id` when given
   * (the caller assigns ids, e.g. after rewriting a Bundle's urn:uuid references), else assigns one.
   * Throws OperationOutcomeError (409) when the id already exists in that tenant.
   */
  create<T extends Resource>(tenant: TenantId, resource: T, now: Date): Promise<T>;
  /**
   * Stores several new resources as `create` does, in one round trip per table; all or none (a
   * 409 for an id that exists leaves none of them stored). Returned in the order given.
   */
  createAll(tenant: TenantId, resources: readonly Resource[], now: Date): Promise<Resource[]>;
  /**
   * Stores a new version. With `ifMatchVersionId`, refuses with 412 unless it is the current
   * version. Creates the resource (version 1) when it does not exist (update-as-create).
   */
  update<T extends Resource>(
    tenant: TenantId,
    resource: T & { id: string },
    now: Date,
    options?: { ifMatchVersionId?: string },
  ): Promise<T>;
  /**
   * Claims the idempotency key of a referral. Enforced by a unique constraint on
   * (tenant, identifierSystem, identifierValue), never by read-then-write: of N concurrent claims
   * exactly one gets `claimed: true`; the others get the row that won (after it commits).
   */
  claimReferral(row: Omit<ReferralRow, 'createdAt' | 'updatedAt'>, now: Date): Promise<ClaimReferralResult>;
  /**
   * Bulk import of referrals already checked elsewhere (a migration from another system, the
   * volume bench): their rows and resources, each resource version 1 stamped at its own instant,
   * in a few multi-row statements per table. No idempotency: a referral key or id that exists
   * fails the import, and the transaction stores none of it. Refresh statistics afterwards.
   */
  importReferrals(tenant: TenantId, input: ReferralImport): Promise<void>;
  /**
   * Makes the transactions that lock the same key run one after another from here to their end,
   * so that a check-then-write on that key (a conditional create) cannot race.
   */
  lock(key: string): Promise<void>;
  updateReferralStatus(tenant: TenantId, id: string, status: string, now: Date): Promise<void>;
  /** The referral's row, read inside the transaction (after a `lock` on it, the version this transaction works on). */
  readReferral(tenant: TenantId, id: string): Promise<ReferralRow | undefined>;
  /** Replaces the referral's status and translated referral (an order that changed after it was sent, docs/order-changes.md). */
  updateReferral(tenant: TenantId, id: string, changes: { status: string; referral: unknown }, now: Date): Promise<void>;
  /** Adds a message to the outbox, in the caller's transaction: it exists if and only if the change commits. */
  enqueue(message: NewOutboxMessage, now: Date): Promise<void>;
  /**
   * Holds or books a chair for an appointment (replacing the appointment's earlier reservation),
   * unless a booking or an unexpired hold of another appointment overlaps it on that chair, in
   * any tenant. Runs under the chair's lock, so of N concurrent reservations of one chair and
   * time exactly one succeeds: the database, not the caller, keeps a chair from being booked twice.
   */
  reserveChair(booking: ChairBooking, now: Date): Promise<ChairReservation>;
  /** Frees the appointment's chair (cancelled, no-show, rescheduled elsewhere). */
  releaseChair(appointmentId: string): Promise<void>;
  readChairBooking(appointmentId: string): Promise<ChairBooking | undefined>;
  /** Every hold and booking of a referral (expired holds included): what an order change releases. */
  listReferralChairBookings(referralId: string): Promise<ChairBooking[]>;
}

/** The worker's side of the outbox. Several workers, in several processes, may run at once. */
export interface OutboxStore {
  /**
   * Claims up to `limit` messages that are due, for `leaseMs`: pending ones whose nextAttemptAt has
   * come, and delivering ones whose lease ran out (their worker died). Only the oldest undelivered
   * message of each ordering key is claimable (a dead one holds its key until retried), and a
   * message is claimed by one worker at a time (FOR UPDATE SKIP LOCKED on PostgreSQL). Claiming
   * counts an attempt.
   */
  claimDueMessages(now: Date, options: { limit: number; leaseMs: number }): Promise<OutboxMessage[]>;
  markDelivered(id: string, now: Date): Promise<void>;
  /** Back to pending, to be tried again at `nextAttemptAt`, remembering why it failed. */
  scheduleRetry(id: string, nextAttemptAt: Date, error: OperationOutcome, now: Date): Promise<void>;
  /** Dead-letter: no more automatic attempts; an operator can list and retry it. */
  markDead(id: string, error: OperationOutcome, now: Date): Promise<void>;
  listOutboxMessages(filter: {
    status?: OutboxStatus;
    tenant?: TenantId;
    count: number;
    offset: number;
  }): Promise<{ messages: OutboxMessage[]; total: number }>;
  readOutboxMessage(id: string): Promise<OutboxMessage | undefined>;
  /** A dead message back to pending, due now, attempts kept. Returns false if it was not dead. */
  retryDeadMessage(id: string, now: Date): Promise<boolean>;
}

/** Persistent cursors of the pull jobs (e.g. the last `_lastUpdated` read from an EHR). */
export interface CursorStore {
  readCursor(name: string): Promise<unknown>;
  writeCursor(name: string, value: unknown, now: Date): Promise<void>;
}

/**
 * Elects one runner per scheduled tick across every process on the same database: the first to
 * claim `key` (a job name and its tick) runs it; the others skip. Backed by a unique constraint.
 */
export interface JobRunCoordinator {
  claimJobRun(key: string, now: Date): Promise<boolean>;
}

/**
 * The network's figures for a period, as SQL aggregates (counts per group, never one row per
 * referral): what `GET /fhir/Task/$network-metrics` reports (src/directory/stories/network-metrics.ts).
 * Referrals count in the period by when the gateway received them; appointments by their start.
 */
export interface NetworkMetricsQuery {
  tenants: readonly TenantId[];
  /** Inclusive start and exclusive end, UTC ISO instants. */
  from: string;
  to: string;
  /** Appointments start before this to count as due (arrived, fulfilled or missed). */
  now: string;
}

export interface NetworkMetricsRows {
  /** Referrals received in the period, by their current business status. */
  referralsByStatus: Array<{ status: string; count: number }>;
  /** Of those, the ones the site check held as misroute-suspected at intake, by current status. */
  misroutesByStatus: Array<{ status: string; count: number }>;
  /**
   * Referrals received in the period with a first infusion booked or given: whole days from the
   * order (authoredOn, else receipt) to that infusion's start, by drug and site.
   */
  daysToFirstInfusion: Array<{ drugId: string; drugName: string; siteId: string; days: number; count: number }>;
  /** Appeal Tasks opened in the period (one per denial), by their status and the referral's status. */
  appeals: Array<{ appealStatus: string; referralStatus: string; count: number }>;
  /** Appointments that started in the period and before `now`, by site and status. */
  appointmentsDue: Array<{ siteId: string; status: string; count: number }>;
}

export interface NetworkMetricsReader {
  networkMetrics(query: NetworkMetricsQuery): Promise<NetworkMetricsRows>;
}

/** Writes: one transaction, all of it stored or none (docs/architecture.md). */
export interface StoreTransactions {
  /**
   * Runs `work` in one database transaction: all of it is stored or none of it.
   * If `work` throws, everything it wrote is rolled back and the error is rethrown.
   */
  transaction<T>(work: (tx: ResourceWriter) => Promise<T>): Promise<T>;
  /**
   * A new referral, all or nothing: claims its order number (as `claimReferral`) and, when the
   * claim is won, stores its first resources (as `createAll`) and the outbox messages made from
   * them, audited like any transaction. A lost claim stores nothing and returns the referral that
   * holds the number. On PostgreSQL this is one statement, one round trip without BEGIN and
   * COMMIT (docs/resilience.md#intake-in-one-statement); on SQLite one transaction.
   */
  recordNewReferral(referral: NewReferral, now: Date): Promise<NewReferralResult>;
}

export interface NewReferral {
  claim: Omit<ReferralRow, 'createdAt' | 'updatedAt'>;
  /** Version 1 of each, in the claim's tenant, with ids given (the messages may name them). */
  resources: readonly Resource[];
  /** The messages to enqueue, from the resources as stored (`meta` set). */
  messages(stored: ReadonlyArray<Resource & { id: string }>): NewOutboxMessage[];
}

export type NewReferralResult = { claimed: true; stored: Array<Resource & { id: string }> } | { claimed: false; existing: ReferralRow };

/** The referral rows, read outside a transaction. */
export interface ReferralReader {
  findReferralByIdentifier(tenant: TenantId, identifierSystem: string, identifierValue: string): Promise<ReferralRow | undefined>;
  readReferral(tenant: TenantId, id: string): Promise<ReferralRow | undefined>;
  /**
   * A referral by its id whatever its tenant, for callers that are not a tenant (a payer naming a
   * claim the gateway sent). Referral ids are UUIDs the gateway assigns (version 7: time, then 74 random bits).
   */
  findReferralById(id: string): Promise<ReferralRow | undefined>;
  /** Referrals of every tenant in a status, least recently changed first (for follow-up jobs). */
  listReferralsByStatus(status: string, options: { limit: number }): Promise<ReferralRow[]>;
}

/** The chairs booked and held, for finding free chair time (src/scheduling/rules/slot-finder.ts). */
export interface ChairBookingReader {
  /** Bookings and unexpired holds overlapping [from, to) at these sites, every tenant: what $find must avoid. */
  listChairBookings(locationIds: readonly string[], from: Date, to: Date, now: Date): Promise<ChairBooking[]>;
  readChairBooking(appointmentId: string): Promise<ChairBooking | undefined>;
}

/** The store as a running part of the process: health, statistics, shutdown. */
export interface StoreLifecycle {
  /**
   * Gathers the query planner's statistics (ANALYZE on PostgreSQL, whose autovacuum may be off;
   * a bounded ANALYZE on SQLite). Run after migrations and after any bulk load: without them
   * the planner drives searches from the wrong index (docs/search.md).
   */
  refreshStatistics(): Promise<void>;
  /** Resolves when the database answers (for /readyz). */
  ping(): Promise<void>;
  /**
   * Whether the store can take work now (for /readyz): the database answers and requests are not
   * queueing for connections beyond the store's threshold.
   */
  readiness(): Promise<StoreReadiness>;
  close(): Promise<void>;
}

/**
 * The one storage port the store adapter implements, as the union of the narrower ports above:
 * a story takes the narrow ports it uses (issue 15), the composition root hands the whole store.
 */
export interface ResourceStore
  extends
    ResourceReader,
    StoreTransactions,
    ReferralReader,
    ChairBookingReader,
    OutboxStore,
    CursorStore,
    JobRunCoordinator,
    NetworkMetricsReader,
    AuditTrail,
    StoreLifecycle {}

export type StoreReadiness = { ready: true } | { ready: false; reason: 'unreachable' | 'saturated'; diagnostics: string };
