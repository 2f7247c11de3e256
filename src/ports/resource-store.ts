/**
 * The storage port. One implementation over Kysely serves both the embedded SQLite store and
 * PostgreSQL (src/adapters/store/); the use cases see only this interface.
 *
 * Tenancy: every stored row carries the tenant (the sending client) it came from, and every read
 * names the tenants it may see. Writes always go to exactly one tenant.
 */
import type { Resource } from 'fhir/r4.js';

export type TenantId = string;

/** One parsed search parameter: the values are ORed, several parameters are ANDed. */
export interface SearchCriterion {
  /** The search parameter's code, e.g. `focus`, `beneficiary`, `_id`, `_lastUpdated`. */
  name: string;
  /** e.g. `exact`, `contains`, `missing`, `not` (only where the parameter's type allows). */
  modifier?: string;
  /** Raw values from the query string, already split on unescaped commas. */
  values: string[];
}

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
  /** Whether the caller wants the total count (`_total=accurate` or first page). */
  withTotal?: boolean;
}

export interface SearchResult<T extends Resource = Resource> {
  resources: T[];
  /** Present when asked for. */
  total?: number;
}

export interface StoredResourceMeta {
  tenant: TenantId;
  resourceType: string;
  id: string;
  versionId: string;
  lastUpdated: string;
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

export interface ResourceWriter extends ResourceReader {
  /**
   * Stores a new resource: version 1, `meta.lastUpdated` = `now`. Uses `resource.id` when given
   * (the caller assigns ids, e.g. after rewriting a Bundle's urn:uuid references), else assigns one.
   * Throws OperationOutcomeError (409) when the id already exists in that tenant.
   */
  create<T extends Resource>(tenant: TenantId, resource: T, now: Date): Promise<T>;
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
   * Makes the transactions that lock the same key run one after another from here to their end,
   * so that a check-then-write on that key (a conditional create) cannot race.
   */
  lock(key: string): Promise<void>;
  updateReferralStatus(tenant: TenantId, id: string, status: string, now: Date): Promise<void>;
}

export interface ResourceStore extends ResourceReader {
  /**
   * Runs `work` in one database transaction: all of it is stored or none of it.
   * If `work` throws, everything it wrote is rolled back and the error is rethrown.
   */
  transaction<T>(work: (tx: ResourceWriter) => Promise<T>): Promise<T>;
  findReferralByIdentifier(tenant: TenantId, identifierSystem: string, identifierValue: string): Promise<ReferralRow | undefined>;
  /** Resolves when the database answers (for /readyz). */
  ping(): Promise<void>;
  close(): Promise<void>;
}
