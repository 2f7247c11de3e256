/**
 * The authorization-server half of SMART Backend Services
 * (https://hl7.org/fhir/smart-app-launch/STU2/backend-services.html) for the stand-in EHR and
 * payer: `<fhir base>/.well-known/smart-configuration`, a token endpoint that verifies the client's
 * signed assertion against a JWKS the test gives it, and a middleware that lets FHIR requests
 * through only with a live access token it issued. Tokens can be expired at will, to test refresh.
 */
import express, { type NextFunction, type Request, type Response, type Router } from 'express';
import { randomBytes } from 'node:crypto';
import { createLocalJWKSet, jwtVerify, type JSONWebKeySet } from 'jose';

export interface SmartAuthorizationOptions {
  clientId: string;
  /** The client's public keys (what it registered). */
  jwks: JSONWebKeySet;
  /** Lifetime of issued access tokens; default 300 s. */
  tokenLifetimeSeconds?: number;
  /** The server's clock (assertion checks and token expiry); default the real one. */
  now?: () => Date;
}

export interface SmartAuthorizationServer {
  /** Serves GET {fhirPath}/.well-known/smart-configuration and POST /auth/token. */
  router: Router;
  /** Answers 401 to a request without a live token issued here. */
  requireToken(req: Request, res: Response, next: NextFunction): void;
  /** Access tokens issued so far. */
  tokensIssued(): number;
  /** Client assertions refused so far (bad signature, wrong aud, replayed jti, ...). */
  assertionsRefused(): number;
  /** Makes every token issued so far invalid at once (a token revoked or expired early). */
  expireAll(): void;
  /** Requests answered 401 for want of a live token. */
  unauthorizedRequests(): number;
}

const ASSERTION_TYPE = 'urn:ietf:params:oauth:client-assertion-type:jwt-bearer';

export function smartAuthorizationServer(
  options: SmartAuthorizationOptions & { fhirPath: string; origin: () => string },
): SmartAuthorizationServer {
  const keys = createLocalJWKSet(options.jwks);
  const lifetime = options.tokenLifetimeSeconds ?? 300;
  const now = options.now ?? ((): Date => new Date());
  const live = new Map<string, number>();
  const seenJti = new Set<string>();
  let issued = 0;
  let refused = 0;
  let unauthorized = 0;
  const router = express.Router();
  const tokenUrl = (): string => `${options.origin()}/auth/token`;

  router.get(`${options.fhirPath}/.well-known/smart-configuration`, (_req, res) => {
    res.json({
      token_endpoint: tokenUrl(),
      token_endpoint_auth_methods_supported: ['private_key_jwt'],
      token_endpoint_auth_signing_alg_values_supported: ['RS384', 'ES384'],
      grant_types_supported: ['client_credentials'],
      scopes_supported: ['system/*.rs', 'system/*.cruds'],
      capabilities: ['client-confidential-asymmetric'],
    });
  });

  router.post('/auth/token', express.urlencoded({ extended: false }), async (req, res) => {
    const form = req.body as Record<string, string | undefined>;
    const refuse = (error: string): void => {
      refused += 1;
      res.status(error === 'invalid_client' ? 401 : 400).json({ error });
    };
    if (
      form['grant_type'] !== 'client_credentials' ||
      form['client_assertion_type'] !== ASSERTION_TYPE ||
      typeof form['client_assertion'] !== 'string'
    ) {
      refuse('invalid_request');
      return;
    }
    try {
      const { payload } = await jwtVerify(form['client_assertion'], keys, {
        issuer: options.clientId,
        subject: options.clientId,
        audience: tokenUrl(),
        requiredClaims: ['exp', 'jti'],
        currentDate: now(),
      });
      // https://hl7.org/fhir/smart-app-launch/STU2/backend-services.html: exp no more than five minutes in the future, jti not reused.
      if (payload.exp! - Math.floor(now().getTime() / 1000) > 300 + 5 || seenJti.has(payload.jti!)) {
        refuse('invalid_client');
        return;
      }
      seenJti.add(payload.jti!);
    } catch {
      refuse('invalid_client');
      return;
    }
    const token = randomBytes(24).toString('base64url');
    live.set(token, now().getTime() + lifetime * 1000);
    issued += 1;
    res.json({ access_token: token, token_type: 'bearer', expires_in: lifetime, scope: form['scope'] ?? '' });
  });

  return {
    router,
    requireToken(req, res, next) {
      const token = /^Bearer (.+)$/.exec(req.headers.authorization ?? '')?.[1];
      const until = token === undefined ? undefined : live.get(token);
      if (until === undefined || until <= now().getTime()) {
        unauthorized += 1;
        res
          .status(401)
          .set('www-authenticate', 'Bearer error="invalid_token"')
          .type('application/fhir+json')
          .send(
            JSON.stringify({
              resourceType: 'OperationOutcome',
              issue: [{ severity: 'error', code: 'login', diagnostics: 'A live access token from this server is required' }],
            }),
          );
        return;
      }
      next();
    },
    tokensIssued: () => issued,
    assertionsRefused: () => refused,
    expireAll: () => live.clear(),
    unauthorizedRequests: () => unauthorized,
  };
}
