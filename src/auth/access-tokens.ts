/**
 * The gateway's access tokens: short-lived JWTs it signs itself (SMART Backend Services,
 * https://hl7.org/fhir/smart-app-launch/backend-services.html#issue-access-token), checked on
 * every request: signature by one of the gateway's keys, an algorithm of its own (never `none`,
 * never an HMAC keyed with a public key), `exp`, `aud` (this FHIR base) and `iss` (this gateway).
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

/** Verifies a bearer token; the reason of a refusal is safe to log and to answer with. */
export async function verifyAccessToken(keys: SigningKeys, token: string, context: TokenContext & { now: Date }): Promise<TokenCheck> {
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
    return { kind: 'caller', caller };
  } catch (error) {
    return { kind: 'refused', reason: tokenRefusalReason(error) ?? 'the access token is not one this gateway issued' };
  }
}
