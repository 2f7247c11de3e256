/**
 * Trusting CDS clients (CDS Hooks 2.0, https://cds-hooks.hl7.org/2.0/#trusting-cds-clients):
 * every hook call (and feedback call) carries `Authorization: Bearer <JWT>` signed by the EHR.
 * We accept it only when
 *   - `iss` is one of the trusted issuers (CDS_TRUSTED_ISSUERS) and the signature verifies against
 *     that issuer's JWKS (fetched from its jwksUrl, cached, fetched again on an unknown `kid`),
 *   - `aud` is this service's URL, `exp` lies ahead (and `iat` is not in the future),
 *   - `jti` is present and has not been seen before while the token could still be used.
 * Anything else is a 401. The JWT only identifies the EHR; the hook's `fhirAuthorization` stays the
 * only credential we use to read from the EHR's FHIR server.
 */
import { createLocalJWKSet, createRemoteJWKSet, errors, jwtVerify, type JSONWebKeySet, type JWTVerifyGetKey } from 'jose';
import type { Clock } from '../ports/clock.js';
import { unverifiedIssuer } from './jwt-reading.js';

export interface TrustedCdsIssuer {
  /** The `iss` the EHR puts in its JWTs. */
  readonly iss: string;
  /** Where its public keys are (JWK Set); remote sets are cached and refetched on an unknown kid. */
  readonly keys: JWTVerifyGetKey;
}

/** Remembers the jti of accepted tokens until they expire, so that a captured token cannot be replayed. */
export interface JtiReplayGuard {
  /** True when this (iss, jti) is new (and now recorded until expiresAt); false when seen before. */
  firstUse(iss: string, jti: string, expiresAt: Date, now: Date): boolean;
}

export type CdsClientDecision = { readonly trusted: true; readonly iss: string } | { readonly trusted: false; readonly reason: string };

export interface CdsClientTrust {
  /**
   * Checks the Authorization header of a hook call made to `serviceUrl`. `acceptedAudiences`
   * lists the absolute URLs the JWT's `aud` may name (the service endpoint; for feedback also the
   * feedback endpoint).
   */
  verify(authorization: string | undefined, acceptedAudiences: readonly string[]): Promise<CdsClientDecision>;
}

/** Longest lifetime accepted for a hook JWT: the spec recommends exp no more than 5 minutes out. */
const MAX_TOKEN_LIFETIME_SECONDS = 5 * 60;
/** Leeway for the EHR's and our clocks disagreeing a little. */
const CLOCK_TOLERANCE_SECONDS = 30;

/** In-process replay guard: enough for one gateway process; expired entries are dropped as it goes. */
export function inMemoryJtiReplayGuard(): JtiReplayGuard {
  const seen = new Map<string, number>();
  return {
    firstUse(iss, jti, expiresAt, now) {
      const nowMs = now.getTime();
      for (const [key, until] of seen) {
        if (until <= nowMs) seen.delete(key);
      }
      const key = `${iss}\u0000${jti}`;
      if (seen.has(key)) return false;
      seen.set(key, expiresAt.getTime() + CLOCK_TOLERANCE_SECONDS * 1000);
      return true;
    },
  };
}

/** An issuer whose JWKS is served at a URL (the normal case, CDS_TRUSTED_ISSUERS). */
export function remoteIssuer(iss: string, jwksUrl: string, options: { refetchCooldownMs?: number } = {}): TrustedCdsIssuer {
  // jose caches the set (10 minutes) and refetches it when a token names a kid it does not hold,
  // at most once per cooldown (default 30 s) so that a flood of unknown kids cannot make us hammer
  // the EHR's JWKS endpoint.
  return {
    iss,
    keys: createRemoteJWKSet(new URL(jwksUrl), { cooldownDuration: options.refetchCooldownMs ?? 30_000, cacheMaxAge: 10 * 60_000 }),
  };
}

/** An issuer whose public keys are given inline (the demo issuer in fixtures/security/). */
export function localIssuer(iss: string, jwks: JSONWebKeySet): TrustedCdsIssuer {
  return { iss, keys: createLocalJWKSet(jwks) };
}

function bearerToken(authorization: string | undefined): string | undefined {
  const match = /^Bearer\s+([A-Za-z0-9._~+/=-]+)\s*$/i.exec(authorization ?? '');
  return match?.[1];
}

export function createCdsClientTrust(options: {
  issuers: readonly TrustedCdsIssuer[];
  clock: Clock;
  replayGuard?: JtiReplayGuard;
}): CdsClientTrust {
  const byIss = new Map(options.issuers.map((i) => [i.iss, i]));
  const replayGuard = options.replayGuard ?? inMemoryJtiReplayGuard();
  return {
    async verify(authorization, acceptedAudiences) {
      const token = bearerToken(authorization);
      if (token === undefined) return { trusted: false, reason: 'no Bearer JWT in Authorization' };
      const iss = unverifiedIssuer(token);
      const issuer = iss === undefined ? undefined : byIss.get(iss);
      if (issuer === undefined) return { trusted: false, reason: 'issuer not trusted' };
      const now = options.clock.now();
      try {
        const { payload } = await jwtVerify(token, issuer.keys, {
          issuer: issuer.iss,
          audience: [...acceptedAudiences],
          requiredClaims: ['exp', 'jti'],
          currentDate: now,
          clockTolerance: CLOCK_TOLERANCE_SECONDS,
          // The spec's algorithms are asymmetric (ES384 and RS384 named); never 'none' or an HMAC.
          algorithms: ['ES256', 'ES384', 'ES512', 'RS256', 'RS384', 'RS512', 'PS256', 'PS384', 'PS512', 'EdDSA'],
        });
        const expiresAt = new Date(payload.exp! * 1000);
        const issuedAt = payload.iat !== undefined ? payload.iat * 1000 : now.getTime();
        if (expiresAt.getTime() - Math.min(issuedAt, now.getTime()) > (MAX_TOKEN_LIFETIME_SECONDS + CLOCK_TOLERANCE_SECONDS) * 1000) {
          return { trusted: false, reason: 'token lives longer than 5 minutes' };
        }
        if (!replayGuard.firstUse(issuer.iss, String(payload.jti), expiresAt, now)) return { trusted: false, reason: 'jti replayed' };
        return { trusted: true, iss: issuer.iss };
      } catch (err) {
        // The reason by kind only: the token itself is never logged nor echoed.
        if (err instanceof errors.JWTExpired) return { trusted: false, reason: 'token expired' };
        if (err instanceof errors.JWTClaimValidationFailed) return { trusted: false, reason: `claim ${err.claim} not accepted` };
        if (err instanceof errors.JWKSNoMatchingKey) return { trusted: false, reason: 'no key of the issuer matches' };
        if (err instanceof errors.JWSSignatureVerificationFailed) return { trusted: false, reason: 'signature does not verify' };
        if (err instanceof errors.JOSEError) return { trusted: false, reason: err.code };
        return { trusted: false, reason: 'issuer keys unavailable' };
      }
    },
  };
}
