/**
 * The gateway's access tokens: short-lived JWTs it signs itself (SMART Backend Services,
 * https://hl7.org/fhir/smart-app-launch/backend-services.html#issue-access-token), checked on
 * every request: signature by one of the gateway's keys, an algorithm of its own (never `none`,
 * never an HMAC keyed with a public key), `exp`, `aud` (this FHIR base) and `iss` (this gateway).
 * A token verified once is remembered until its `exp` (verifiedTokens below), so a client's
 * requests with the same token cost one signature check, not one each.
 */
import { randomUUID } from 'node:crypto';
import { jwtVerify, SignJWT } from 'jose';
import { tokenRefusalReason } from './jwt-reading.js';
import type { Caller, Role } from './caller.js';
import type { RegisteredClient } from './client-registry.js';
import { SIGNING_ALGORITHMS, type SigningKeys } from './signing-keys.js';

export interface TokenContext {
  /** This gateway as issuer, e.g. `https://gateway.example` (PUBLIC_BASE_URL's origin). */
  issuer: string;
  /** The FHIR base the token is for, e.g. `https://gateway.example/fhir`. */
  audience: string;
}

export async function issueAccessToken(
  keys: SigningKeys,
  client: RegisteredClient,
  scopes: readonly string[],
  context: TokenContext & { now: Date; lifetimeSeconds: number },
): Promise<string> {
  const issuedAt = Math.floor(context.now.getTime() / 1000);
  return new SignJWT({
    scope: scopes.join(' '),
    role: client.role,
    ...(client.tenant !== undefined ? { tenant: client.tenant } : {}),
    ...(client.payer !== undefined ? { payer: client.payer } : {}),
  })
    .setProtectedHeader({ alg: keys.signing.alg, kid: keys.signing.kid, typ: 'at+jwt' })
    .setIssuer(context.issuer)
    .setSubject(client.clientId)
    .setAudience(context.audience)
    .setIssuedAt(issuedAt)
    .setExpirationTime(issuedAt + context.lifetimeSeconds)
    .setJti(randomUUID())
    .sign(keys.signing.key);
}

export type TokenCheck = { kind: 'caller'; caller: Caller } | { kind: 'refused'; reason: string };

/** How many verified tokens each key set remembers; the oldest is forgotten first beyond it. */
export const VERIFIED_TOKEN_CACHE_SIZE = 10_000;

interface VerifiedToken {
  caller: Caller;
  issuer: string;
  audience: string;
  /** `exp` in seconds since the epoch: the token is refused from that second on, as jose does. */
  exp: number;
  /** `nbf` in seconds, when the token has one. */
  nbf: number | undefined;
}

/**
 * Tokens verified by each key set, keyed by the exact token string. A key set is loaded whole
 * and never changed in place (signing-keys.ts): rotating or revoking a key makes a new SigningKeys,
 * whose cache starts empty, so no token is ever accepted on a key that is gone. Only successes
 * are remembered; an ES384 signature check costs about 1.4 ms (docs/resilience.md).
 */
const verifiedTokens = new WeakMap<SigningKeys, Map<string, VerifiedToken>>();

function cachedCaller(keys: SigningKeys, token: string, context: TokenContext & { now: Date }): Caller | undefined {
  const entry = verifiedTokens.get(keys)?.get(token);
  if (entry === undefined) return undefined;
  const seconds = Math.floor(context.now.getTime() / 1000);
  if (seconds >= entry.exp) {
    verifiedTokens.get(keys)?.delete(token);
    return undefined;
  }
  if (entry.nbf !== undefined && entry.nbf > seconds) return undefined;
  // The issuer and audience come from the request's URL: a token verified for another is checked anew.
  if (entry.issuer !== context.issuer || entry.audience !== context.audience) return undefined;
  return entry.caller;
}

function remember(keys: SigningKeys, token: string, entry: VerifiedToken): void {
  let cache = verifiedTokens.get(keys);
  if (cache === undefined) {
    cache = new Map();
    verifiedTokens.set(keys, cache);
  }
  if (cache.size >= VERIFIED_TOKEN_CACHE_SIZE) {
    const oldest = cache.keys().next();
    if (oldest.done !== true) cache.delete(oldest.value);
  }
  cache.set(token, entry);
}

/** Verifies a bearer token; the reason of a refusal is safe to log and to answer with. */
export async function verifyAccessToken(keys: SigningKeys, token: string, context: TokenContext & { now: Date }): Promise<TokenCheck> {
  const cached = cachedCaller(keys, token, context);
  if (cached !== undefined) return { kind: 'caller', caller: cached };
  try {
    const { payload } = await jwtVerify(token, keys.verificationKey, {
      algorithms: [...SIGNING_ALGORITHMS],
      issuer: context.issuer,
      audience: context.audience,
      currentDate: context.now,
      requiredClaims: ['sub', 'exp', 'role'],
      typ: 'at+jwt',
    });
    const role = payload['role'] as Role;
    if (!['ehr', 'payer', 'coordinator', 'operator'].includes(role)) return { kind: 'refused', reason: 'the token names no role' };
    const caller: Caller = {
      clientId: payload.sub!,
      role,
      ...(typeof payload['tenant'] === 'string' ? { tenant: payload['tenant'] } : {}),
      ...(typeof payload['payer'] === 'string' ? { payer: payload['payer'] } : {}),
      scopes: typeof payload['scope'] === 'string' ? payload['scope'].split(' ').filter(Boolean) : [],
    };
    remember(keys, token, {
      caller,
      issuer: context.issuer,
      audience: context.audience,
      exp: payload.exp!,
      nbf: typeof payload.nbf === 'number' ? payload.nbf : undefined,
    });
    return { kind: 'caller', caller };
  } catch (error) {
    return { kind: 'refused', reason: tokenRefusalReason(error) ?? 'the access token is not one this gateway issued' };
  }
}
