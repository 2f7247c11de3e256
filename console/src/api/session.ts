/**
 * Who is calling the gateway, for every API call of the console: the one place phase B (OpenID
 * Connect sign-in) changes. Today the API is unauthenticated and the tenant is named in the
 * X-Tenant-Id header; with sign-in, `accessToken` carries the person's token and the tenant comes
 * from it.
 *
 * Nothing about the person or their patients is written to localStorage or sessionStorage. The
 * pasted access token alone is kept in sessionStorage (this tab only, gone when it closes) so a
 * reload does not sign the person out; it lives 5 minutes. Real OIDC sign-in is later work.
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

const TOKEN_KEY = 'console.accessToken';

function storedToken(): string | undefined {
  try {
    return globalThis.sessionStorage?.getItem(TOKEN_KEY) ?? undefined;
  } catch {
    return undefined;
  }
}

let current: Session = { tenant: 'default', ...(storedToken() !== undefined ? { accessToken: storedToken()! } : {}) };
const listeners = new Set<Listener>();

export function currentSession(): Session {
  return current;
}

export function updateSession(next: Partial<Session>): void {
  current = { ...current, ...next };
  if ('accessToken' in next) {
    try {
      if (next.accessToken === undefined || next.accessToken === '') {
        globalThis.sessionStorage?.removeItem(TOKEN_KEY);
        delete current.accessToken;
      } else globalThis.sessionStorage?.setItem(TOKEN_KEY, next.accessToken);
    } catch {
      // Storage refused (private mode): the token stays in memory for this page.
    }
  }
  for (const listener of listeners) listener(current);
}

export function onSessionChange(listener: Listener): () => void {
  listeners.add(listener);
  return () => listeners.delete(listener);
}
