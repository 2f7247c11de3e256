/**
 * What every JWT check of the gateway shares (its own access tokens, trusted issuers' tokens, CDS
 * Hooks clients' JWTs): which issuer's keys to try, and why a token was refused, in words a client
 * can act on (https://datatracker.ietf.org/doc/html/rfc6750#section-3). Verification itself is
 * jose's (docs/security.md).
 */
import { decodeJwt, errors } from 'jose';

/** The unverified `iss` of a compact JWT, only to choose whose keys verify it; verification follows. */
export function unverifiedIssuer(token: string): string | undefined {
  try {
    const { iss } = decodeJwt(token);
    return typeof iss === 'string' ? iss : undefined;
  } catch {
    return undefined;
  }
}

/** The reason for a refusal jose's verification raised that is the token's own fault, if it is one of those. */
export function tokenRefusalReason(error: unknown): string | undefined {
  if (error instanceof errors.JWTExpired) return 'the access token has expired';
  if (error instanceof errors.JWTClaimValidationFailed) return `the access token's ${error.claim} claim is not accepted here`;
  if (error instanceof errors.JOSEAlgNotAllowed) return 'the access token is not signed with an algorithm accepted here';
  return undefined;
}
