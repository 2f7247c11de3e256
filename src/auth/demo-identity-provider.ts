/**
 * DEMO ONLY: an OpenID Connect identity provider embedded in the gateway, so that `npm start` and
 * the sandbox have people to sign in to the console with (issue 14) and nothing to set up. It is
 * panva's oidc-provider (a certified OpenID Provider implementation) with the demo users and the
 * signing key of fixtures/security/demo-identity-provider.json: the key is public in the
 * repository, so the gateway logs a loud warning when it runs and configuration refuses it with
 * NODE_ENV=production (there, people sign in at the organisation's own provider:
 * AUTH_TRUSTED_ISSUERS, docs/security.md).
 *
 * The console is its one client: public (no secret), authorization code with PKCE
 * (https://datatracker.ietf.org/doc/html/rfc9700), redirected back to /console/signed-in. The
 * access token is a JWT (RFC 9068) for the gateway's FHIR base as resource (RFC 8707), verified by
 * the gateway as any trusted issuer's token (src/auth/trusted-issuers.ts).
 *
 * Its issuer is `{the gateway's origin}/demo-idp`, the origin being PUBLIC_BASE_URL's or the
 * request's (as for the gateway's own tokens), so one provider is made per origin it is reached
 * at. Logging in is choosing one of the demo users: there are no passwords to keep.
 */
import { createHash, randomBytes } from 'node:crypto';
import express, { type Request, type Response, type Router } from 'express';
import type { JWK } from 'jose';
import type { default as Provider, Configuration, KoaContextWithOIDC } from 'oidc-provider';

// Loaded at the first sign-in, not at start-up: it is the largest module of the demo (about 0.8 s).
let oidcProvider: Promise<typeof import('oidc-provider')> | undefined;
const loadOidcProvider = (): Promise<typeof import('oidc-provider')> => (oidcProvider ??= import('oidc-provider'));
import type { Logger } from '../logging/logger.js';
import { embeddedTrustedIssuer, type TrustedIssuer } from './trusted-issuers.js';

export const DEMO_IDP_PATH = '/demo-idp';
/** The one scope of the gateway as a resource server (the role comes from the users map, not from scopes). */
const GATEWAY_SCOPE = 'infusion-gateway';

export interface DemoUser {
  sub: string;
  name: string;
  role: 'coordinator' | 'operator';
  tenant?: string;
  description: string;
}

export interface DemoIdentityProviderFile {
  demoOnly: boolean;
  keys: JWK[];
  users: DemoUser[];
  consoleClientId: string;
}

export interface DemoIdentityProvider {
  /** Where it is mounted: DEMO_IDP_PATH. */
  path: string;
  router: Router;
  /** The trust the gateway gives its tokens (a users map of the demo users). */
  trustedIssuer: TrustedIssuer;
  consoleClientId: string;
  issuerAt(origin: string): string;
}

/** The sign-in page's one style sheet, allowed by its hash in the page's CSP (no other inline content). */
const LOGIN_STYLE =
  'body{font-family:system-ui,sans-serif;margin:0;background:#f3f5f7;color:#1b1f24;line-height:1.45}' +
  'main{max-width:42rem;margin:2rem auto;background:#fff;border:1px solid #c9d0d8;border-radius:8px;padding:1rem 1.5rem}' +
  'h1{font-size:1.5rem}ul{list-style:none;padding:0}li{margin:1rem 0}' +
  'button{font:inherit;padding:.45rem .9rem;border-radius:4px;border:1px solid #0b5cad;background:#0b5cad;color:#fff;cursor:pointer}' +
  'button:focus-visible{outline:3px solid #ffbf47;outline-offset:2px}' +
  '.flag{background:#fff3cd;color:#5c3c00;padding:.1rem .4rem;border-radius:4px}.who{display:block;color:#4f5863;font-size:.9rem;margin-top:.25rem}';
const LOGIN_STYLE_HASH = `'sha256-${createHash('sha256').update(LOGIN_STYLE).digest('base64')}'`;

const escapeHtml = (text: string): string => text.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);

/** The sign-in page: one button per demo user, a real form (keyboard and screen readers need nothing else). */
function loginPage(uid: string, users: readonly DemoUser[]): string {
  const choices = users
    .map(
      (user) =>
        `<li><button type="submit" name="user" value="${escapeHtml(user.sub)}">Sign in as ${escapeHtml(user.name)}</button> <span class="who">${escapeHtml(user.role)}: ${escapeHtml(user.description)}</span></li>`,
    )
    .join('\n');
  return `<!doctype html>
<html lang="en">
<head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1"><title>Demo sign-in · Infusion referrals</title><style>${LOGIN_STYLE}</style></head>
<body>
<main>
<h1>Demo sign-in</h1>
<p><strong class="flag">Demo identity provider: for local demos and tests only.</strong> In production, people sign in at their organisation's own identity provider.</p>
<form method="post" action="${DEMO_IDP_PATH}/interaction/${encodeURIComponent(uid)}/login">
<ul>
${choices}
</ul>
</form>
</main>
</body>
</html>`;
}

export function createDemoIdentityProvider(
  file: DemoIdentityProviderFile,
  options: { logger: Logger; publicBaseUrl?: string; accessTokenTtlSeconds: number },
): DemoIdentityProvider {
  const users = new Map(file.users.map((user) => [user.sub, user]));
  const publicKeys = file.keys.map(({ d: _d, p: _p, q: _q, dp: _dp, dq: _dq, qi: _qi, ...publicPart }) => publicPart);
  const originOf = (req: Request): string =>
    options.publicBaseUrl !== undefined ? new URL(options.publicBaseUrl).origin : `${req.protocol}://${req.get('host') ?? 'localhost'}`;
  const fhirBaseAt = (origin: string): string => options.publicBaseUrl ?? `${origin}/fhir`;
  // Cookies of one process's providers; a restart signs people out of the demo provider, nothing more.
  const cookieKeys = [randomBytes(32).toString('base64url')];
  const providers = new Map<string, Provider>();

  async function providerAt(origin: string): Promise<Provider> {
    let provider = providers.get(origin);
    if (provider !== undefined) return provider;
    const { default: OidcProvider, errors: oidcErrors } = await loadOidcProvider();
    const fhirBase = fhirBaseAt(origin);
    const configuration: Configuration = {
      clients: [
        {
          client_id: file.consoleClientId,
          client_name: 'Infusion referrals console (demo)',
          token_endpoint_auth_method: 'none',
          grant_types: ['authorization_code'],
          response_types: ['code'],
          redirect_uris: [`${origin}/console/signed-in`],
          post_logout_redirect_uris: [`${origin}/console/`],
        },
      ],
      jwks: { keys: file.keys as never },
      cookies: { keys: cookieKeys },
      // The console calls discovery and the token endpoint from the gateway's own origin only.
      clientBasedCORS: (_ctx, requestOrigin) => requestOrigin === origin,
      claims: { openid: ['sub'], profile: ['name'] },
      scopes: ['openid', 'profile'],
      findAccount: (_ctx, id) => {
        const user = users.get(id);
        return user === undefined ? undefined : { accountId: id, claims: () => ({ sub: id, name: user.name }) };
      },
      interactions: { url: (_ctx, interaction) => `${DEMO_IDP_PATH}/interaction/${interaction.uid}` },
      features: {
        devInteractions: { enabled: false },
        resourceIndicators: {
          enabled: true,
          defaultResource: () => fhirBase,
          useGrantedResource: () => true,
          getResourceServerInfo: (_ctx, indicator) => {
            if (indicator !== fhirBase) throw new oidcErrors.InvalidTarget();
            return {
              scope: GATEWAY_SCOPE,
              audience: fhirBase,
              accessTokenTTL: options.accessTokenTtlSeconds,
              accessTokenFormat: 'jwt',
              jwt: { sign: { alg: 'RS256' } },
            };
          },
        },
      },
      // The console is the provider's own first-party client: no consent screen.
      loadExistingGrant: async (ctx: KoaContextWithOIDC) => {
        const accountId = ctx.oidc.session?.accountId;
        if (accountId === undefined || ctx.oidc.client?.clientId !== file.consoleClientId) return undefined;
        const grantId = ctx.oidc.result?.consent?.grantId ?? ctx.oidc.session?.grantIdFor(file.consoleClientId);
        if (grantId !== undefined) {
          const existing = await ctx.oidc.provider.Grant.find(grantId);
          if (existing !== undefined) return existing;
        }
        const grant = new ctx.oidc.provider.Grant({ clientId: file.consoleClientId, accountId });
        grant.addOIDCScope('openid profile');
        grant.addResourceScope(fhirBase, GATEWAY_SCOPE);
        await grant.save();
        return grant;
      },
      ttl: {
        AccessToken: options.accessTokenTtlSeconds,
        AuthorizationCode: 60,
        IdToken: 3600,
        Interaction: 600,
        Session: 8 * 3600,
        Grant: 8 * 3600,
      },
    };
    provider = providers.get(origin) ?? new OidcProvider(`${origin}${DEMO_IDP_PATH}`, configuration);
    // Behind a TLS-terminating proxy (PUBLIC_BASE_URL https), its cookies are secure ones.
    provider.proxy = options.publicBaseUrl?.startsWith('https:') === true;
    providers.set(origin, provider);
    return provider;
  }

  const router = express.Router();
  router.get('/interaction/:uid', async (req: Request, res: Response) => {
    const provider = await providerAt(originOf(req));
    const details = await provider.interactionDetails(req, res);
    res.setHeader('Cache-Control', 'no-store');
    res.setHeader(
      'Content-Security-Policy',
      `default-src 'none'; style-src ${LOGIN_STYLE_HASH}; form-action 'self'; frame-ancestors 'none'; base-uri 'none'`,
    );
    res.type('html').send(loginPage(details.uid, file.users));
  });
  router.post('/interaction/:uid/login', express.urlencoded({ extended: false, limit: '4kb' }), async (req: Request, res: Response) => {
    const provider = await providerAt(originOf(req));
    const chosen = (req.body as Record<string, unknown> | undefined)?.['user'];
    const user = typeof chosen === 'string' ? users.get(chosen) : undefined;
    if (user === undefined) {
      res.status(400).type('text').send('Choose one of the demo users.');
      return;
    }
    // The demo user's id only: no name in the log.
    options.logger.info('demo identity provider: a demo user signed in', { demoUser: user.sub, role: user.role });
    await provider.interactionFinished(req, res, { login: { accountId: user.sub } }, { mergeWithLastSubmission: false });
  });
  router.use(async (req: Request, res: Response) => {
    await (await providerAt(originOf(req))).callback()(req, res);
  });

  const trustedIssuer = embeddedTrustedIssuer(
    {
      name: 'demo-idp',
      subjectClaim: 'sub',
      demoOnly: true,
      access: {
        from: 'users',
        users: Object.fromEntries(
          file.users.map((u) => [u.sub, { role: u.role, ...(u.tenant !== undefined ? { tenant: u.tenant } : {}) }]),
        ),
      },
    },
    { keys: publicKeys as never },
    DEMO_IDP_PATH,
  );
  return {
    path: DEMO_IDP_PATH,
    router,
    trustedIssuer,
    consoleClientId: file.consoleClientId,
    issuerAt: (origin) => `${origin}${DEMO_IDP_PATH}`,
  };
}
