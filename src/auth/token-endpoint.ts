/**
 * SMART Backend Services, the server side (https://hl7.org/fhir/smart-app-launch/backend-services.html):
 * discovery at .well-known/smart-configuration, the gateway's public keys at jwks_uri, and the
 * token endpoint: a client-credentials grant authenticated by a JWT assertion (RFC 7523,
 * private_key_jwt) signed with a key of the client's registered JWKS.
 */
import express, { type NextFunction, type Request, type Response } from 'express';
import { notFound } from '../fhir/outcomes.js';
import type { RouteHandlers } from '../http/table-router.js';
import { decodeJwt, errors, jwtVerify } from 'jose';
import type { Logger } from '../logging/logger.js';
import type { AuthStateStore } from '../ports/auth-state.js';
import type { Clock } from '../ports/clock.js';
import { issueAccessToken } from './access-tokens.js';
import type { ClientRegistry } from './client-registry.js';
import { grantScopes } from './scopes.js';
import type { TrustedIssuer } from './trusted-issuers.js';
import type { DemoIdentityProvider } from './demo-identity-provider.js';
import { SIGNING_ALGORITHMS, type SigningKeys } from './signing-keys.js';

export const ASSERTION_TYPE = 'urn:ietf:params:oauth:client-assertion-type:jwt-bearer';
/** An assertion may not be valid for longer than this (SMART: "no more than five minutes in the future"). */
export const MAX_ASSERTION_LIFETIME_SECONDS = 300;

export interface AuthService {
  keys: SigningKeys;
  registry: ClientRegistry;
  state: AuthStateStore;
  clock: Clock;
  logger: Logger;
  tokenLifetimeSeconds: number;
  /** PUBLIC_BASE_URL (the FHIR base as clients see it), when configured. */
  publicBaseUrl?: string;
  /** Identity providers whose people's tokens are accepted too (AUTH_TRUSTED_ISSUERS, or the demo one). */
  trustedIssuers: readonly TrustedIssuer[];
  /** DEMO ONLY: the embedded identity provider, when it runs (never in production). */
  demoIdentityProvider?: DemoIdentityProvider;
}

/** This gateway's URLs as the caller sees them: from PUBLIC_BASE_URL, else from the request's Host. */
export function gatewayUrls(
  req: Request,
  publicBaseUrl: string | undefined,
): { origin: string; fhirBase: string; tokenUrl: string; jwksUrl: string } {
  const fhirBase = publicBaseUrl ?? `${req.protocol}://${req.get('host') ?? 'localhost'}/fhir`;
  const origin = new URL(fhirBase).origin;
  return { origin, fhirBase, tokenUrl: `${origin}/oauth/token`, jwksUrl: `${origin}/oauth/jwks` };
}

export const SCOPES_SUPPORTED = [
  'system/ServiceRequest.crus',
  'system/Task.rsu',
  'system/Appointment.crsu',
  'system/Coverage.rs',
  'system/Location.crsu',
  'system/Organization.crsu',
  'system/AuditEvent.rs',
  'system/*.rs',
  'system/*.read',
  'system/*.write',
];

function oauthError(res: Response, status: 400 | 401, error: string, description: string): void {
  res.status(status).set('Cache-Control', 'no-store').json({ error, error_description: description });
}

/** The SMART rows' named handlers (src/http/route-table.ts); without authentication (AUTH=off) they answer 404. */
/**
 * DEMO ONLY: the embedded OpenID provider (src/auth/demo-identity-provider.ts) answers under its
 * path as if mounted there (req.url relative to it, req.baseUrl the path), the way Express mounts a
 * router; where there is none (production, AUTH_TRUSTED_ISSUERS set, AUTH=off) the rows answer 404.
 */
export function demoIdentityProviderHandlers(service: AuthService | undefined): Pick<RouteHandlers, 'demoIdentityProvider'> {
  const idp = service?.demoIdentityProvider;
  function demoIdentityProvider(req: Request, res: Response, next: NextFunction): void {
    if (idp === undefined) {
      res
        .status(404)
        .type('application/fhir+json')
        .send(JSON.stringify(notFound(`Path ${req.path} (no demo identity provider here)`)));
      return;
    }
    const { url, baseUrl } = req;
    req.url = req.url.slice(idp.path.length) || '/';
    req.baseUrl = idp.path;
    idp.router(req, res, (error?: unknown) => {
      req.url = url;
      req.baseUrl = baseUrl;
      next(error);
    });
  }
  return { demoIdentityProvider: [demoIdentityProvider] };
}

export function smartHandlers(service: AuthService | undefined): Pick<RouteHandlers, 'smartConfiguration' | 'publicKeys' | 'issueToken'> {
  if (service === undefined) {
    const off = (req: Request, res: Response): void => {
      res
        .status(404)
        .type('application/fhir+json')
        .send(JSON.stringify(notFound(`Path ${req.path} (authentication is off)`)));
    };
    return { smartConfiguration: [off], publicKeys: [off], issueToken: [off] };
  }
  const smartConfiguration = (req: Request, res: Response): void => {
    const urls = gatewayUrls(req, service.publicBaseUrl);
    res.json({
      issuer: urls.origin,
      jwks_uri: urls.jwksUrl,
      token_endpoint: urls.tokenUrl,
      grant_types_supported: ['client_credentials'],
      token_endpoint_auth_methods_supported: ['private_key_jwt'],
      token_endpoint_auth_signing_alg_values_supported: [...SIGNING_ALGORITHMS],
      scopes_supported: SCOPES_SUPPORTED,
      capabilities: ['client-confidential-asymmetric'],
      code_challenge_methods_supported: [],
    });
  };
  const publicKeys = (_req: Request, res: Response): void => {
    res.json(service.keys.publicJwks);
  };
  const issueToken = async (req: Request, res: Response): Promise<void> => {
    const form = (req.body ?? {}) as Record<string, unknown>;
    const text = (name: string): string | undefined => (typeof form[name] === 'string' ? (form[name] as string) : undefined);
    if (text('grant_type') !== 'client_credentials')
      return oauthError(res, 400, 'unsupported_grant_type', 'grant_type must be client_credentials');
    if (text('client_assertion_type') !== ASSERTION_TYPE)
      return oauthError(res, 400, 'invalid_request', `client_assertion_type must be ${ASSERTION_TYPE}`);
    const assertion = text('client_assertion');
    const scope = text('scope');
    if (assertion === undefined) return oauthError(res, 400, 'invalid_request', 'client_assertion is required');
    if (scope === undefined || scope.trim() === '') return oauthError(res, 400, 'invalid_request', 'scope is required');
    let claimedClient: string | undefined;
    try {
      claimedClient = decodeJwt(assertion).iss;
    } catch {
      return oauthError(res, 401, 'invalid_client', 'client_assertion is not a JWT');
    }
    const client = claimedClient === undefined ? undefined : service.registry.find(claimedClient);
    if (!client) return oauthError(res, 401, 'invalid_client', 'the assertion names no registered client');
    const now = service.clock.now();
    const urls = gatewayUrls(req, service.publicBaseUrl);
    let expiresAt: Date;
    let jti: string;
    try {
      const { payload } = await jwtVerify(assertion, service.registry.keyFor(client), {
        algorithms: [...SIGNING_ALGORITHMS],
        issuer: client.clientId,
        subject: client.clientId,
        audience: urls.tokenUrl,
        currentDate: now,
        requiredClaims: ['exp', 'jti'],
      });
      if (payload.exp! > Math.floor(now.getTime() / 1000) + MAX_ASSERTION_LIFETIME_SECONDS) {
        return oauthError(res, 401, 'invalid_client', `the assertion's exp is more than ${MAX_ASSERTION_LIFETIME_SECONDS} seconds ahead`);
      }
      expiresAt = new Date(payload.exp! * 1000);
      jti = payload.jti!;
    } catch (error) {
      const reason =
        error instanceof errors.JWTExpired
          ? 'the assertion has expired'
          : error instanceof errors.JWTClaimValidationFailed
            ? `the assertion's ${error.claim} claim is wrong`
            : error instanceof errors.JOSEAlgNotAllowed
              ? 'the assertion must be signed with RS384 or ES384'
              : 'the assertion is not signed by a key registered for this client';
      service.logger.warn('client assertion refused', { clientId: client.clientId, reason });
      return oauthError(res, 401, 'invalid_client', reason);
    }
    if (!(await service.state.claimAssertionId(client.clientId, jti, expiresAt, now))) {
      service.logger.warn('client assertion replayed', { clientId: client.clientId });
      return oauthError(res, 401, 'invalid_client', 'this assertion (its jti) was used before');
    }
    const granted = grantScopes(scope.split(/\s+/).filter(Boolean), client.scopes);
    if (granted.length === 0) return oauthError(res, 400, 'invalid_scope', 'none of the requested scopes is allowed for this client');
    const accessToken = await issueAccessToken(service.keys, client, granted, {
      issuer: urls.origin,
      audience: urls.fhirBase,
      now,
      lifetimeSeconds: service.tokenLifetimeSeconds,
    });
    service.logger.info('access token issued', { clientId: client.clientId, role: client.role, scope: granted.join(' ') });
    res
      .set('Cache-Control', 'no-store')
      .json({ access_token: accessToken, token_type: 'Bearer', expires_in: service.tokenLifetimeSeconds, scope: granted.join(' ') });
  };
  return {
    smartConfiguration: [smartConfiguration],
    publicKeys: [publicKeys],
    issueToken: [express.urlencoded({ extended: false, limit: '16kb' }), issueToken],
  };
}
