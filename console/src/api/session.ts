/**
 * Who is calling the gateway, for every API call of the console. People sign in with OpenID
 * Connect (api/sign-in.ts) at the identity provider the gateway names; `accessToken` then carries
 * their token, and the gateway takes their role and tenant from it. A developer may paste a token
 * instead (`npm run -s token -- demo-coordinator`). With AUTH=off (local development only) there
 * is no token and the tenant is named in the X-Tenant-Id header.
 *
 * Nothing about patients is written to localStorage or sessionStorage. The access token and the
 * signed-in person's display name are kept in sessionStorage (this tab only, gone when it closes)
 * so a reload does not sign the person out; never in localStorage, never in a URL.
 */
export interface Session {
  /** The tenant whose queues are worked without authentication (AUTH=off: sent as X-Tenant-Id). */
  tenant: string;
  /** The person's bearer token; absent before sign-in (or with AUTH=off). */
  accessToken?: string;
  /** Who is signed in, as the identity provider's ID token names them. */
  personName?: string;
  /** Why the person sees the sign-in page again (a session ended, a sign-in failed); memory only. */
  notice?: string;
}

/** Where people sign in: published by the gateway at /console/config.json. */
export interface SignInConfig {
  /** The identity provider's issuer (OpenID discovery at {issuer}/.well-known/openid-configuration). */
  issuer: string;
  /** The console's client id there (a public client: PKCE, no secret). */
  clientId: string;
  scope: string;
  /** The embedded demo identity provider of `npm start` (never in production). */
  demo: boolean;
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
  /** Absent: no identity provider is configured (AUTH=off, or a pasted token only). */
  signIn?: SignInConfig;
}

type Listener = (session: Session) => void;

const TOKEN_KEY = 'console.accessToken';
const NAME_KEY = 'console.personName';

function stored(key: string): string | undefined {
  try {
    return globalThis.sessionStorage?.getItem(key) ?? undefined;
  } catch {
    return undefined;
  }
}

function store(key: string, value: string | undefined): void {
  try {
    if (value === undefined || value === '') globalThis.sessionStorage?.removeItem(key);
    else globalThis.sessionStorage?.setItem(key, value);
  } catch {
    // Storage refused (private mode): the value stays in memory for this page.
  }
}

const storedToken = stored(TOKEN_KEY);
const storedName = stored(NAME_KEY);
let current: Session = {
  tenant: 'default',
  ...(storedToken !== undefined ? { accessToken: storedToken } : {}),
  ...(storedToken !== undefined && storedName !== undefined ? { personName: storedName } : {}),
};
const listeners = new Set<Listener>();

export function currentSession(): Session {
  return current;
}

export function updateSession(next: Partial<Session>): void {
  current = { ...current, ...next };
  if ('accessToken' in next) {
    store(TOKEN_KEY, next.accessToken);
    if (next.accessToken === undefined || next.accessToken === '') {
      // Signed out: who it was goes too.
      delete current.accessToken;
      delete current.personName;
      store(NAME_KEY, undefined);
    }
  }
  if ('personName' in next) {
    store(NAME_KEY, next.personName);
    if (next.personName === undefined) delete current.personName;
  }
  for (const listener of listeners) listener(current);
}

export function onSessionChange(listener: Listener): () => void {
  listeners.add(listener);
  return () => listeners.delete(listener);
}
