/**
 * The audit trail (issue 10, docs/audit.md): one record per read, search, write and operation on
 * PHI-bearing resources, in the shape of IHE Basic Audit Log Patterns
 * (https://profiles.ihe.net/ITI/BALP/) and FHIR R4 AuditEvent
 * (https://hl7.org/fhir/R4/auditevent.html). A record holds references and parameter names only,
 * never values: no name, birth date, identifier, address or phone number can reach it.
 *
 * Who is acting travels with the work in an AsyncLocalStorage (the audit context): the HTTP edge
 * opens one per request, background jobs one per run with the gateway itself as agent. The
 * store's write transaction reads it and writes the change's AuditEvent in the same transaction
 * as the change (docs/audit.md, "the transaction rule").
 */
import { AsyncLocalStorage } from 'node:async_hooks';
import { newTimeOrderedId } from '../fhir/ids.js';
import type { Clock } from './clock.js';

/** AuditEvent.action (https://hl7.org/fhir/R4/valueset-audit-event-action.html). */
export type AuditAction = 'C' | 'R' | 'U' | 'D' | 'E';

/** AuditEvent.outcome: 0 success, 4 minor failure (refused), 8 serious failure, 12 major failure. */
export type AuditOutcome = 0 | 4 | 8 | 12;

/** Who acted: a client of the gateway (from its access token) or the gateway itself. */
export interface AuditAgent {
  /** The client id, or the gateway's own name for background work; `anonymous` without a token. */
  readonly who: string;
  /** The caller's role (ehr, payer, coordinator, operator), `gateway` for background work. */
  readonly role: string;
  readonly tenant?: string;
}

/** A resource reference (`ServiceRequest/123`, `Task/9/_history/2`), never anything else. */
export type AuditEntityReference = string;

export interface AuditRecord {
  readonly id: string;
  readonly recorded: Date;
  readonly action: AuditAction;
  /**
   * The RESTful interaction (read, vread, history-instance, search-type, create, update, delete,
   * transaction), or `operation` with the operation's name (`$book`), or the background job.
   */
  readonly subtype: string;
  readonly operation?: string;
  readonly outcome: AuditOutcome;
  /** Why it failed: a status line only (`404`), never the outcome's text, which can quote data. */
  readonly outcomeDescription?: string;
  readonly agent: AuditAgent;
  /** The resources acted on. */
  readonly entities: readonly AuditEntityReference[];
  /** A search: the resource type searched and the parameter NAMES (values can be PHI: name=Smith). */
  readonly query?: { readonly resourceType: string; readonly parameterNames: readonly string[] };
}

export interface AuditSearch {
  agent?: string;
  entity?: string;
  /** Inclusive/exclusive bounds on `recorded`, from the `date` parameter's prefixes. */
  recordedFrom?: { at: Date; inclusive: boolean };
  recordedTo?: { at: Date; inclusive: boolean };
  count: number;
  /** Keyset: the last (recorded, id) of the previous page; newest first. */
  after?: { recorded: string; id: string };
}

export interface AuditTrail {
  /** Appends records outside any resource transaction (reads, searches, refusals). */
  recordAuditEvents(records: readonly AuditRecord[]): Promise<void>;
  searchAuditEvents(search: AuditSearch): Promise<AuditRecord[]>;
  readAuditEvent(id: string): Promise<AuditRecord | undefined>;
  /** Deletes the records older than `before`; returns how many. */
  purgeAuditEvents(before: Date): Promise<number>;
}

/** What the store needs to audit the writes of a transaction run for this request or job. */
export interface AuditContext {
  agent(): AuditAgent;
  /** The request's interaction: `create`, `update`, `transaction`, `operation` ... */
  readonly subtype: string;
  readonly operation?: string;
  /** What the request names (its path's resource, reference-valued parameters), added to each change's record. */
  readonly entities: readonly AuditEntityReference[];
  readonly clock: Clock;
  readonly newId: () => string;
  /** Set by the store once a transaction of this request committed a change with its AuditEvent. */
  changesRecorded: number;
}

const auditContexts = new AsyncLocalStorage<AuditContext>();

export function runAudited<T>(context: AuditContext, work: () => T): T {
  return auditContexts.run(context, work);
}

export function currentAuditContext(): AuditContext | undefined {
  return auditContexts.getStore();
}

/** The agent of background work: the gateway itself (BALP's "system" actor). */
export const GATEWAY_AGENT: AuditAgent = { who: 'infusion-gateway', role: 'gateway' };

/**
 * Runs background work (a job tick, an outbox step) as the gateway itself: the changes it commits
 * are recorded with the gateway as agent and the job's name as subtype (docs/audit.md).
 */
export function runAsGateway<T>(job: string, clock: Clock, work: () => Promise<T>): Promise<T> {
  return runAudited(
    { agent: () => GATEWAY_AGENT, subtype: 'job', operation: job, entities: [], clock, newId: newTimeOrderedId, changesRecorded: 0 },
    work,
  );
}

/** AuditEvent.outcome from an HTTP status (docs/audit.md). */
export function auditOutcomeOf(status: number): AuditOutcome {
  if (status < 400) return 0;
  if (status < 500) return 4;
  if (status === 503) return 8;
  return 12;
}
