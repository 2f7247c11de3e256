/**
 * Who is calling: established from a verified access token (SMART Backend Services, see
 * docs/security.md) and kept on the request. Every authorization decision, the tenant a request
 * works in, and every AuditEvent's agent come from here, never from a request header.
 */

/** The four kinds of caller the route table knows. */
export type Role = 'ehr' | 'payer' | 'coordinator' | 'operator';

export interface Caller {
  /** The registered client id (the token's `sub`). */
  readonly clientId: string;
  readonly role: Role;
  /** The tenant the caller works in: a hospital's id; absent for payers and the network's operators. */
  readonly tenant?: string;
  /** For a payer: its Organization id in the site directory (the `payor` of the Coverages it may read). */
  readonly payer?: string;
  /** The SMART scopes granted to the access token (for example `system/Task.rs`). */
  readonly scopes: readonly string[];
}
