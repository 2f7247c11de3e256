/**
 * Who is calling the gateway, for every API call of the console: the one place phase B (OpenID
 * Connect sign-in) changes. Today the API is unauthenticated and the tenant is named in the
 * X-Tenant-Id header; with sign-in, `accessToken` carries the person's token and the tenant comes
 * from it.
 *
 * Held in memory only: nothing about the person or their patients is written to localStorage or
 * sessionStorage, so a shared workstation keeps nothing once the tab is closed.
 */
export interface Session {
  /** The tenant whose queues are worked (phase A: sent as X-Tenant-Id). */
  tenant: string;
  /** The person's bearer token (phase B); absent while the API is open. */
  accessToken?: string;
}

export interface ConsoleConfig {
  /** The FHIR API's base path on this origin, e.g. `/fhir`. */
  fhirBase: string;
  /** The operators' API base path, e.g. `/admin`. */
  adminBase: string;
  defaultTenant: string;
  directoryTenant: string;
  /** The site check's "too far" distance (SITE_TOO_FAR_KM), drawn on the map. */
  siteTooFarKm: number;
  /** How often the queues refresh themselves, in seconds. */
  refreshSeconds: number;
}

type Listener = (session: Session) => void;

let current: Session = { tenant: 'default' };
const listeners = new Set<Listener>();

export function currentSession(): Session {
  return current;
}

export function updateSession(next: Partial<Session>): void {
  current = { ...current, ...next };
  for (const listener of listeners) listener(current);
}

export function onSessionChange(listener: Listener): () => void {
  listeners.add(listener);
  return () => listeners.delete(listener);
}
