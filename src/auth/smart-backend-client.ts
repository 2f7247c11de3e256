/**
 * The gateway as a SMART Backend Services client of an EHR or payer
 * (https://hl7.org/fhir/smart-app-launch/STU2/backend-services.html):
 *
 *   1. discover the token endpoint at `<fhir base>/.well-known/smart-configuration`
 *      (https://hl7.org/fhir/smart-app-launch/STU2/conformance.html);
 *   2. sign a client assertion (iss = sub = our client id, aud = the token endpoint, exp at most
 *      five minutes ahead, a fresh jti) with our private key, and POST the client_credentials grant;
 *   3. keep the access token until shortly before it expires, then get another;
 *   4. when the server answers 401 to a request, get a new token once and send the request again.
 *
 * Tokens and keys never reach a log line, an error message or an OperationOutcome.
 */
import { randomUUID, type KeyObject } from 'node:crypto';
import { SignJWT } from 'jose';
import type { Clock } from '../ports/clock.js';

export interface SmartBackendCredentials {
  clientId: string;
  /** The private key whose public half the server holds in our registration (JWKS). */
  privateKey: KeyObject;
  kid: string;
  /** RS384 or ES384 per the spec; any JWS algorithm the key supports works. */
  alg: string;
  /** The system scopes asked for, e.g. `system/Task.cru system/ServiceRequest.rs`. */
  scope: string;
}

/** Where the adapters get the Bearer token of their next request. */
export interface AccessTokenSource {
  /** A live access token (cached, or obtained now). */
  token(): Promise<string>;
  /** The server refused `rejected`: drop it (if still cached) and obtain a new one. */
  renew(rejected: string): Promise<string>;
}

/** The token endpoint or discovery failed. Carries no token, key nor response body. */
export class SmartTokenError extends Error {
  /** HTTP status of the failed step, when there was an answer. */
  readonly status: number | undefined;
  constructor(message: string, status?: number) {
    super(message);
    this.name = 'SmartTokenError';
    this.status = status;
  }
}

/** Renew this long before the server's expiry, so that a request does not leave with a dying token. */
const EXPIRY_MARGIN_MS = 60_000;
/** The client assertion's lifetime: the spec allows at most five minutes. */
const ASSERTION_LIFETIME_SECONDS = 240;
const ASSERTION_TYPE = 'urn:ietf:params:oauth:client-assertion-type:jwt-bearer';

export function smartBackendTokenSource(options: {
  /** The FHIR base URL of the server we call. */
  fhirBaseUrl: string;
  credentials: SmartBackendCredentials;
  clock: Clock;
  timeoutMs?: number;
  newJti?: () => string;
}): AccessTokenSource {
  const base = options.fhirBaseUrl.replace(/\/+$/, '');
  const { credentials, clock } = options;
  const timeoutMs = options.timeoutMs ?? 10_000;
  const newJti = options.newJti ?? randomUUID;
  let tokenEndpoint: string | undefined;
  let cached: { token: string; renewAt: number } | undefined;
  let pending: Promise<string> | undefined;

  async function discover(): Promise<string> {
    if (tokenEndpoint !== undefined) return tokenEndpoint;
    const response = await fetch(`${base}/.well-known/smart-configuration`, {
      headers: { accept: 'application/json' },
      signal: AbortSignal.timeout(timeoutMs),
    }).catch(() => {
      throw new SmartTokenError('The SMART configuration could not be fetched');
    });
    if (!response.ok) throw new SmartTokenError(`The SMART configuration answered HTTP ${response.status}`, response.status);
    const configuration = (await response.json().catch(() => undefined)) as { token_endpoint?: unknown } | undefined;
    const endpoint = configuration?.token_endpoint;
    if (typeof endpoint !== 'string' || !/^https?:\/\//.test(endpoint))
      throw new SmartTokenError('The SMART configuration names no token_endpoint');
    tokenEndpoint = endpoint;
    return endpoint;
  }

  async function obtain(): Promise<string> {
    const endpoint = await discover();
    const now = clock.now();
    const issuedAt = Math.floor(now.getTime() / 1000);
    const assertion = await new SignJWT({})
      .setProtectedHeader({ alg: credentials.alg, kid: credentials.kid, typ: 'JWT' })
      .setIssuer(credentials.clientId)
      .setSubject(credentials.clientId)
      .setAudience(endpoint)
      .setIssuedAt(issuedAt)
      .setExpirationTime(issuedAt + ASSERTION_LIFETIME_SECONDS)
      .setJti(newJti())
      .sign(credentials.privateKey);
    const form = new URLSearchParams({
      grant_type: 'client_credentials',
      scope: credentials.scope,
      client_assertion_type: ASSERTION_TYPE,
      client_assertion: assertion,
    });
    const response = await fetch(endpoint, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded', accept: 'application/json' },
      body: form.toString(),
      signal: AbortSignal.timeout(timeoutMs),
    }).catch(() => {
      throw new SmartTokenError('The token endpoint could not be reached');
    });
    // The body may name the error (invalid_client, invalid_scope): that code is safe to report.
    const answer = (await response.json().catch(() => undefined)) as
      { access_token?: unknown; expires_in?: unknown; error?: unknown } | undefined;
    if (!response.ok || typeof answer?.access_token !== 'string') {
      const code = typeof answer?.error === 'string' && /^[a-z_]{1,40}$/.test(answer.error) ? ` (${answer.error})` : '';
      throw new SmartTokenError(`The token endpoint refused the client credentials grant: HTTP ${response.status}${code}`, response.status);
    }
    const expiresInMs = (typeof answer.expires_in === 'number' && answer.expires_in > 0 ? answer.expires_in : 300) * 1000;
    // A short-lived token is renewed at half its life rather than after it died.
    const renewAt = clock.now().getTime() + Math.max(expiresInMs - EXPIRY_MARGIN_MS, expiresInMs / 2);
    cached = { token: answer.access_token, renewAt };
    return answer.access_token;
  }

  /** One token request at a time: concurrent callers share it. */
  function shared(): Promise<string> {
    pending ??= obtain().finally(() => {
      pending = undefined;
    });
    return pending;
  }

  return {
    async token() {
      if (cached !== undefined && clock.now().getTime() < cached.renewAt) return cached.token;
      return shared();
    },
    async renew(rejected) {
      if (cached?.token === rejected) cached = undefined;
      if (cached !== undefined) return cached.token;
      return shared();
    },
  };
}

/** The HTTP status of a failed fhir-kit-client call (it throws `{ response: { status } }`). */
function statusOfFailure(err: unknown): number | undefined {
  const status = (err as { response?: { status?: unknown } } | null)?.response?.status;
  return typeof status === 'number' ? status : undefined;
}

/**
 * Sends a request with `Authorization: Bearer <token>`; on a 401, once, with a renewed token.
 * Without a token source the request goes as it is (static bearer tokens stay in the client).
 */
export async function withAccessToken<T>(
  source: AccessTokenSource | undefined,
  send: (headers: Record<string, string>) => Promise<T>,
): Promise<T> {
  if (source === undefined) return send({});
  const token = await source.token();
  try {
    return await send({ authorization: `Bearer ${token}` });
  } catch (err) {
    if (statusOfFailure(err) !== 401) throw err;
    const renewed = await source.renew(token);
    return send({ authorization: `Bearer ${renewed}` });
  }
}
