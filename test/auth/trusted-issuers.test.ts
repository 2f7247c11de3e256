/**
 * AUTH_TRUSTED_ISSUERS over real HTTP on both engines (docs/security.md): an organisation's identity provider,
 * played by a JWKS server on 127.0.0.1 and a key of the test's own, signs people's access tokens;
 * the gateway accepts them with the role and tenant its mapping gives, and refuses (401) a token
 * of an issuer it does not trust, for another audience, expired, unsigned (`alg: none`), or
 * naming a role or tenant the mapping does not give. Then the embedded demo identity provider's
 * authorization code flow with PKCE, driven by oauth4webapi as the console drives it.
 */
import type { AddressInfo } from 'node:net';
import { expect } from 'chai';
import express from 'express';
import { exportJWK, generateKeyPair, SignJWT, UnsecuredJWT, type CryptoKey } from 'jose';
import * as oauth from 'oauth4webapi';
import { parseTrustedIssuers, TrustedIssuersError } from '../../src/auth/trusted-issuers.js';
import { loadConfig } from '../../src/config/config.js';
import { readFixture, withOrderNumber } from '../support/fixtures.js';
import { fhirFetch, startGateway, type RunningGateway } from '../support/gateway.js';

const HOSPITAL_IDP = 'https://idp.hospital-a.example/realms/staff';
const NETWORK_IDP = 'https://login.network.example';

interface Idp {
  url: string;
  privateKey: CryptoKey;
  stop(): Promise<void>;
}

/** The organisation's identity provider as the gateway sees it: its JWKS at a URL. */
async function startJwksServer(): Promise<Idp> {
  const { publicKey, privateKey } = await generateKeyPair('ES256', { extractable: true });
  const jwk = { ...(await exportJWK(publicKey)), kid: 'staff-1', alg: 'ES256', use: 'sig' };
  const app = express();
  app.get('/jwks', (_req, res) => {
    res.json({ keys: [jwk] });
  });
  const server = app.listen(0, '127.0.0.1');
  await new Promise<void>((resolve) => server.once('listening', () => resolve()));
  const { port } = server.address() as AddressInfo;
  return { url: `http://127.0.0.1:${port}/jwks`, privateKey, stop: () => new Promise<void>((resolve) => server.close(() => resolve())) };
}

for (const engine of ['sqlite', 'postgres'] as const) {
  describe(`people’s tokens from trusted identity providers (AUTH_TRUSTED_ISSUERS), ${engine}`, function () {
    let idp: Idp;
    let gateway: RunningGateway;
    let fhirBase: string;
    let taskOfDefault: string;

    async function personToken(
      claims: Record<string, unknown>,
      options: { iss?: string; aud?: string; expiresIn?: number; key?: CryptoKey } = {},
    ): Promise<string> {
      const now = Math.floor(Date.now() / 1000);
      return new SignJWT(claims)
        .setProtectedHeader({ alg: 'ES256', kid: 'staff-1', typ: 'at+jwt' })
        .setIssuer(options.iss ?? HOSPITAL_IDP)
        .setAudience(options.aud ?? fhirBase)
        .setIssuedAt(now - 60)
        .setExpirationTime(now + (options.expiresIn ?? 300))
        .sign(options.key ?? idp.privateKey);
    }

    async function asPerson(token: string, path: string): Promise<{ status: number; body: any; challenge: string | null }> {
      const response = await fetch(`${gateway.baseUrl}${path}`, {
        headers: { authorization: `Bearer ${token}`, accept: 'application/fhir+json' },
      });
      const text = await response.text();
      return {
        status: response.status,
        body: text === '' ? undefined : JSON.parse(text),
        challenge: response.headers.get('www-authenticate'),
      };
    }

    before(async function () {
      idp = await startJwksServer();
      const issuers = [
        {
          issuer: HOSPITAL_IDP,
          name: 'hospital-a',
          jwksUrl: idp.url,
          subjectClaim: 'preferred_username',
          tenants: ['default', 'another-hospital'],
          access: {
            from: 'claims',
            roleClaim: 'groups',
            roleValues: { 'infusion-intake': 'coordinator', 'infusion-ops': 'operator' },
            tenantClaim: 'hospital',
          },
        },
        { issuer: NETWORK_IDP, jwksUrl: idp.url, subjectClaim: 'sub', access: { from: 'users', users: { 'ops-1': { role: 'operator' } } } },
      ];
      gateway = await startGateway({ engine, env: { AUTH_TRUSTED_ISSUERS: JSON.stringify(issuers) } });
      fhirBase = `${gateway.baseUrl}/fhir`;
      const created = await fhirFetch(`${fhirBase}/ServiceRequest`, {
        body: withOrderNumber(readFixture('referrals/infliximab/service-request.json'), 'TRUSTED-ISSUER-1'),
        as: { role: 'ehr', tenant: 'default' },
      });
      expect(created.status).to.equal(201);
      taskOfDefault = (
        await fhirFetch(`${fhirBase}/Task?focus=ServiceRequest/${created.body.id}`, { as: { role: 'coordinator', tenant: 'default' } })
      ).body.entry[0].resource.id;
    });

    after(async function () {
      await gateway?.stop();
      await idp?.stop();
    });

    it('accepts a coordinator of the hospital with the tenant its claim names, and nothing of another tenant', async function () {
      const own = await personToken({ preferred_username: 'dana', groups: ['staff', 'infusion-intake'], hospital: 'default' });
      const read = await asPerson(own, `/fhir/Task/${taskOfDefault}`);
      expect(read.status, JSON.stringify(read.body)).to.equal(200);
      expect(read.body.id).to.equal(taskOfDefault);
      expect((await asPerson(own, '/admin/outbox')).status).to.equal(403);

      const other = await personToken({ preferred_username: 'lee', groups: 'infusion-intake', hospital: 'another-hospital' });
      expect((await asPerson(other, `/fhir/Task/${taskOfDefault}`)).status).to.equal(404);
      const search = await asPerson(other, `/fhir/Task?_id=${taskOfDefault}`);
      expect(search.status).to.equal(200);
      expect(search.body.entry ?? []).to.deep.equal([]);
    });

    it('accepts operators mapped by claim or by the users map', async function () {
      const byClaim = await personToken({ preferred_username: 'sam', groups: ['infusion-ops'] });
      expect((await asPerson(byClaim, '/admin/outbox?status=dead')).status).to.equal(200);
      const byUser = await personToken({ sub: 'ops-1' }, { iss: NETWORK_IDP });
      expect((await asPerson(byUser, '/admin/outbox?status=dead')).status).to.equal(200);
      expect((await asPerson(byUser, `/fhir/Task/${taskOfDefault}`)).status).to.equal(200);
    });

    it('refuses, with 401 and a Bearer challenge, every token it must not trust', async function () {
      const stranger = (await generateKeyPair('ES256')).privateKey;
      const good = { preferred_username: 'dana', groups: ['infusion-intake'], hospital: 'default' };
      const now = Math.floor(Date.now() / 1000);
      const refused: Record<string, string> = {
        'an issuer not in the list': await personToken(good, { iss: 'https://idp.unknown.example' }),
        'a trusted issuer, a stranger’s key': await personToken(good, { key: stranger }),
        'another audience': await personToken(good, { aud: 'https://another-gateway.example/fhir' }),
        expired: await personToken(good, { expiresIn: -120 }),
        'alg none': new UnsecuredJWT(good)
          .setIssuer(HOSPITAL_IDP)
          .setAudience(fhirBase)
          .setIssuedAt(now)
          .setExpirationTime(now + 300)
          .encode(),
        'a role the mapping does not give': await personToken({ ...good, groups: ['coordinator-wannabe'] }),
        'a tenant the issuer may not speak for': await personToken({ ...good, hospital: 'other-hospital' }),
        'a coordinator with no tenant': await personToken({ preferred_username: 'dana', groups: ['infusion-intake'] }),
        'two roles at once': await personToken({ ...good, groups: ['infusion-intake', 'infusion-ops'] }),
        'a person the users map does not know': await personToken({ sub: 'ops-2' }, { iss: NETWORK_IDP }),
      };
      const answers: Record<string, number> = {};
      for (const [what, token] of Object.entries(refused)) {
        const answer = await asPerson(token, `/fhir/Task/${taskOfDefault}`);
        answers[what] = answer.status;
        expect(answer.challenge, what).to.match(/^Bearer /);
        expect(answer.body.resourceType, what).to.equal('OperationOutcome');
        expect(JSON.stringify(answer.body), what).to.not.contain('dana');
      }
      expect(answers).to.deep.equal(Object.fromEntries(Object.keys(refused).map((what) => [what, 401])));
    });

    it('refuses X-Tenant-Id naming another tenant for a person’s coordinator token, as for a client’s', async function () {
      const token = await personToken({ preferred_username: 'dana', groups: ['infusion-intake'], hospital: 'default' });
      const response = await fetch(`${fhirBase}/Task/${taskOfDefault}`, {
        headers: { authorization: `Bearer ${token}`, 'x-tenant-id': 'another-hospital' },
      });
      expect(response.status).to.equal(400);
    });
  });
}

describe('AUTH_TRUSTED_ISSUERS is checked at start-up, every problem named', function () {
  it('names each problem of a list with its place', function () {
    const list = [
      { issuer: 'ftp://idp.example', jwksUrl: 'https://idp.example/jwks', subjectClaim: 'sub', access: { from: 'claims' } },
      {
        issuer: 'https://idp.example',
        jwksUrl: 'https://idp.example/jwks',
        access: { from: 'users', users: { ann: { role: 'coordinator' } } },
        extra: true,
      },
    ];
    let error: unknown;
    try {
      parseTrustedIssuers(list, 'AUTH_TRUSTED_ISSUERS', { production: false });
    } catch (caught) {
      error = caught;
    }
    expect(error).to.be.instanceOf(TrustedIssuersError);
    const where = (error as TrustedIssuersError).issues.map((issue) => issue.expression?.[0]);
    expect(where).to.include.members([
      '[0].issuer',
      '[0].access.roleClaim',
      '[1].subjectClaim',
      '[1].extra',
      '[1].access.users.ann.tenant',
    ]);
  });

  it('refuses a demo issuer and a plain-http JWKS in production, and runs no demo provider there', function () {
    const demo = [
      {
        issuer: 'https://demo.example',
        jwksUrl: 'http://demo.example/jwks',
        subjectClaim: 'sub',
        demoOnly: true,
        access: { from: 'users', users: { a: { role: 'operator' } } },
      },
    ];
    expect(() => parseTrustedIssuers(demo, 'AUTH_TRUSTED_ISSUERS', { production: false })).to.not.throw();
    let error: TrustedIssuersError | undefined;
    try {
      parseTrustedIssuers(demo, 'AUTH_TRUSTED_ISSUERS', { production: true });
    } catch (caught) {
      error = caught as TrustedIssuersError;
    }
    expect(error?.issues.map((issue) => issue.expression?.[0])).to.deep.equal(['[0].demoOnly', '[0].jwksUrl']);
    const production = loadConfig({ NODE_ENV: 'production', AUTH_CLIENTS: 'clients.json', DATABASE_URL: 'postgres://db/x' });
    expect(production.auth.demoIdentityProviderFile).to.equal(undefined);
    expect(loadConfig({}).auth.demoIdentityProviderFile).to.match(/demo-identity-provider\.json$/);
  });
});

describe('the embedded demo identity provider (npm start, sandbox)', function () {
  let gateway: RunningGateway;

  before(async function () {
    gateway = await startGateway();
  });

  after(async function () {
    await gateway?.stop();
  });

  /** The browser's part of the authorization code flow: follow redirects, keep the provider's cookies, choose the user. */
  async function signInAs(user: string): Promise<{ accessToken: string; idTokenName: unknown }> {
    const issuer = new URL(`${gateway.baseUrl}/demo-idp`);
    const options = { [oauth.allowInsecureRequests]: true };
    const as = await oauth.processDiscoveryResponse(issuer, await oauth.discoveryRequest(issuer, { algorithm: 'oidc', ...options }));
    const config = (await (await fetch(`${gateway.baseUrl}/console/config.json`)).json()) as {
      signIn: { issuer: string; clientId: string; scope: string; demo: boolean };
    };
    expect(config.signIn).to.deep.include({ issuer: issuer.href, demo: true });
    const client: oauth.Client = { client_id: config.signIn.clientId };
    const redirectUri = `${gateway.baseUrl}/console/signed-in`;
    const verifier = oauth.generateRandomCodeVerifier();
    const state = oauth.generateRandomState();
    const authorize = new URL(as.authorization_endpoint!);
    for (const [name, value] of Object.entries({
      client_id: client.client_id,
      redirect_uri: redirectUri,
      response_type: 'code',
      scope: config.signIn.scope,
      state,
      code_challenge: await oauth.calculatePKCECodeChallenge(verifier),
      code_challenge_method: 'S256',
    })) {
      authorize.searchParams.set(name, value);
    }
    const cookies = new Map<string, string>();
    const go = async (url: string, init: RequestInit = {}): Promise<Response> => {
      const response = await fetch(url, {
        ...init,
        redirect: 'manual',
        headers: { ...(init.headers as Record<string, string>), cookie: [...cookies].map(([k, v]) => `${k}=${v}`).join('; ') },
      });
      for (const setCookie of response.headers.getSetCookie()) {
        const [pair] = setCookie.split(';');
        const [name, ...value] = pair!.split('=');
        cookies.set(name!, value.join('='));
      }
      return response;
    };
    let response = await go(authorize.href);
    let location = new URL(response.headers.get('location')!, gateway.baseUrl).href;
    const page = await go(location);
    const html = await page.text();
    expect(html).to.contain('Demo identity provider');
    const action = /action="([^"]+)"/.exec(html)![1]!;
    response = await go(new URL(action, gateway.baseUrl).href, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({ user }),
    });
    // Back to the authorization endpoint, which now answers with the code at the console's redirect URI.
    for (let hops = 0; hops < 5 && !location.startsWith(redirectUri); hops += 1) {
      location = new URL(response.headers.get('location')!, gateway.baseUrl).href;
      if (!location.startsWith(redirectUri)) response = await go(location);
    }
    expect(location.startsWith(redirectUri), location).to.equal(true);
    const params = oauth.validateAuthResponse(as, client, new URL(location), state);
    const tokens = await oauth.processAuthorizationCodeResponse(
      as,
      client,
      await oauth.authorizationCodeGrantRequest(as, client, oauth.None(), params, redirectUri, verifier, options),
    );
    return { accessToken: tokens.access_token, idTokenName: oauth.getValidatedIdTokenClaims(tokens)?.['name'] };
  }

  it('signs the demo coordinator in with PKCE; the gateway takes the role and tenant from its users map', async function () {
    const { accessToken, idTokenName } = await signInAs('dana.coordinator');
    expect(idTokenName).to.equal('Dana Coordinator');
    const queue = await fetch(`${gateway.baseUrl}/fhir/Task?business-status=misroute-suspected`, {
      headers: { authorization: `Bearer ${accessToken}` },
    });
    expect(queue.status).to.equal(200);
    const outbox = await fetch(`${gateway.baseUrl}/admin/outbox`, { headers: { authorization: `Bearer ${accessToken}` } });
    expect(outbox.status).to.equal(403);
  });

  it('signs the demo operator in; a user it does not know cannot sign in', async function () {
    const { accessToken } = await signInAs('omar.operator');
    const outbox = await fetch(`${gateway.baseUrl}/admin/outbox`, { headers: { authorization: `Bearer ${accessToken}` } });
    expect(outbox.status).to.equal(200);
    let error: unknown;
    try {
      await signInAs('mallory');
    } catch (caught) {
      error = caught;
    }
    expect(error).to.be.instanceOf(Error);
  });
});
