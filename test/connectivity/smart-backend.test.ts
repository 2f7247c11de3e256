/**
 * The gateway as a SMART Backend Services client
 * (https://hl7.org/fhir/smart-app-launch/STU2/backend-services.html), over real HTTP on 127.0.0.1:
 * the stand-in EHR and payer require access tokens from their own token endpoints, which verify
 * the gateway's signed client assertion against the JWKS the test registers for it.
 */
import { expect } from 'chai';
import { createPrivateKey, generateKeyPairSync, randomUUID } from 'node:crypto';
import { decodeJwt, exportJWK, type JWK } from 'jose';
import { smartBackendTokenSource, type SmartBackendCredentials } from '../../src/auth/smart-backend-client.js';
import { readFixture, withOrderNumber } from '../support/fixtures.js';
import { fhirFetch, startGateway, waitUntil, type RunningGateway } from '../support/gateway.js';
import { capturedLogLines } from '../support/log-capture.js';
import { payerConnections } from '../support/referral-flow.js';
import { startStandInEhr, type StandInEhr } from '../../src/sandbox/stand-in-ehr.js';
import { startStandInPayer, type StandInPayer } from '../../src/sandbox/stand-in-payer.js';
import type { SmartAuthorizationServer } from '../../src/sandbox/smart-authorization-server.js';

const CLIENT_ID = 'infusion-gateway-test';
const SCOPE = 'system/Task.cru system/ServiceRequest.rs system/Coverage.cru';

interface TestKey {
  kid: string;
  pem: string;
  publicJwk: JWK;
}

async function rsaKey(): Promise<TestKey> {
  const { privateKey, publicKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
  const kid = `gw-${randomUUID().slice(0, 8)}`;
  return {
    kid,
    pem: privateKey.export({ type: 'pkcs8', format: 'pem' }).toString(),
    publicJwk: { ...(await exportJWK(publicKey)), kid, alg: 'RS384', use: 'sig' },
  };
}

/** The `auth` member of a connection entry, the key in the named variable. */
function smartAuth(key: TestKey, keyEnv: string): Record<string, string> {
  return { type: 'smart-backend', clientId: CLIENT_ID, privateKeyEnv: keyEnv, kid: key.kid, alg: 'RS384', scope: SCOPE };
}

const FAST = {
  OUTBOX_POLL_MS: '25',
  OUTBOX_RETRY_BASE_MS: '20',
  OUTBOX_RETRY_MAX_MS: '200',
  OUTBOX_MAX_ATTEMPTS: '10000',
  EHR_REQUEST_TIMEOUT_MS: '3000',
};

async function postReferral(gw: RunningGateway, drug = 'infliximab'): Promise<void> {
  const created = await fhirFetch(`${gw.baseUrl}/fhir/ServiceRequest`, {
    body: withOrderNumber(readFixture(`referrals/${drug}/service-request.json`), `smart-${randomUUID()}`),
  });
  expect(created.status, JSON.stringify(created.body?.issue)).to.equal(201);
}

describe('SMART Backend Services: the gateway gets access tokens and delivers with them', function () {
  this.timeout(60_000);

  describe('write-back to an EHR that requires tokens', () => {
    let key: TestKey;
    let ehr: StandInEhr & { smart?: SmartAuthorizationServer };
    let smart: SmartAuthorizationServer;
    let gw: RunningGateway;

    before(async () => {
      key = await rsaKey();
      ehr = await startStandInEhr({ requireSmartBackend: { clientId: CLIENT_ID, jwks: { keys: [key.publicJwk] } } });
      smart = ehr.smart!;
      gw = await startGateway({
        background: true,
        env: {
          ...FAST,
          EHR_CONNECTIONS: JSON.stringify([
            { tenant: 'default', baseUrl: ehr.baseUrl, poll: false, auth: smartAuth(key, 'TEST_EHR_PRIVATE_KEY') },
          ]),
          TEST_EHR_PRIVATE_KEY: key.pem,
        },
      });
    });
    after(async () => {
      await gw?.stop();
      await ehr?.stop();
    });

    it('refuses FHIR requests without a token (the stand-in really requires one)', async () => {
      const anonymous = await fhirFetch(`${ehr.baseUrl}/Task`);
      expect(anonymous.status).to.equal(401);
    });

    it('obtains one token and writes back every referral with it', async () => {
      ehr.clearRequests();
      const before = await ehr.count('Task');
      await postReferral(gw);
      await postReferral(gw, 'vedolizumab');
      await waitUntil('both Tasks reached the EHR', async () => (await ehr.count('Task')) === before + 2);
      expect(smart.tokensIssued()).to.equal(1);
      expect(smart.assertionsRefused()).to.equal(0);
      const fhirRequests = ehr.requests();
      expect(fhirRequests.length).to.be.at.least(4);
      expect(fhirRequests.every((r) => r.authorization?.startsWith('Bearer ') === true)).to.equal(true);
      expect(new Set(fhirRequests.map((r) => r.authorization)).size).to.equal(1);
    });

    it('on a 401 (its token expired early) gets a new token once and delivers', async () => {
      const before = await ehr.count('Task');
      const issuedBefore = smart.tokensIssued();
      const refusedBefore = smart.unauthorizedRequests();
      smart.expireAll();
      await postReferral(gw, 'ocrelizumab');
      await waitUntil('the Task reached the EHR', async () => (await ehr.count('Task')) === before + 1);
      expect(smart.tokensIssued()).to.equal(issuedBefore + 1);
      expect(smart.unauthorizedRequests()).to.equal(refusedBefore + 1);
    });

    it('never logs the access token nor the private key', async () => {
      const tokens = new Set(ehr.requests().flatMap((r) => (r.authorization ? [r.authorization.slice('Bearer '.length)] : [])));
      expect(tokens.size).to.be.at.least(2);
      const keyBody = key.pem.split('\n')[1]!;
      const lines = capturedLogLines();
      expect(lines.some((l) => [...tokens].some((t) => l.includes(t)))).to.equal(false);
      expect(lines.some((l) => l.includes(keyBody))).to.equal(false);
    });
  });

  describe('payer calls to a payer that requires tokens', () => {
    let key: TestKey;
    let payer: StandInPayer & { smart?: SmartAuthorizationServer };
    let gw: RunningGateway;

    before(async () => {
      key = await rsaKey();
      payer = await startStandInPayer({
        defaultRule: { eligibility: { inForce: true, authRequired: false } },
        requireSmartBackend: { clientId: CLIENT_ID, jwks: { keys: [key.publicJwk] } },
      });
      const connections = (JSON.parse(payerConnections(payer.baseUrl)) as Array<Record<string, unknown>>).map((c) => ({
        ...c,
        auth: smartAuth(key, 'TEST_PAYER_PRIVATE_KEY'),
      }));
      gw = await startGateway({
        background: true,
        env: { ...FAST, PAYER_CONNECTIONS: JSON.stringify(connections), TEST_PAYER_PRIVATE_KEY: key.pem, PAYER_REQUEST_TIMEOUT_MS: '3000' },
      });
    });
    after(async () => {
      await gw?.stop();
      await payer?.stop();
    });

    it('checks eligibility with a token, and after a 401 renews it once and checks again', async () => {
      const eligibility = (): number =>
        payer.requests().filter((r) => r.path === '/fhir/CoverageEligibilityRequest/$submit' && r.status === 200).length;
      await postReferral(gw);
      await waitUntil('eligibility reached the payer', async () => eligibility() === 1);
      expect(payer.smart!.tokensIssued()).to.equal(1);
      expect(
        payer
          .requests()
          .filter((r) => r.status === 200)
          .every((r) => r.authorization),
      ).to.equal(true);

      payer.smart!.expireAll();
      // The same drug's fixture: the same payer, so the same connection and its cached token.
      await postReferral(gw);
      await waitUntil('the second eligibility check reached the payer', async () => eligibility() === 2);
      expect(payer.smart!.tokensIssued()).to.equal(2);
      expect(payer.smart!.unauthorizedRequests()).to.equal(1);
      expect(payer.smart!.assertionsRefused()).to.equal(0);
    });
  });

  describe('the token source itself', () => {
    let key: TestKey;
    let ehr: StandInEhr & { smart?: SmartAuthorizationServer };
    /** Shared by the token source and the stand-in's authorization server. */
    let now = Date.now();

    before(async () => {
      key = await rsaKey();
      ehr = await startStandInEhr({
        requireSmartBackend: { clientId: CLIENT_ID, jwks: { keys: [key.publicJwk] }, tokenLifetimeSeconds: 300, now: () => new Date(now) },
      });
    });
    after(async () => {
      await ehr?.stop();
    });

    const credentials = (): SmartBackendCredentials => ({
      clientId: CLIENT_ID,
      privateKey: createPrivateKey(key.pem),
      kid: key.kid,
      alg: 'RS384',
      scope: SCOPE,
    });

    it('keeps the token until a minute before it expires, then obtains another (time from the clock)', async () => {
      now = Date.now();
      const source = smartBackendTokenSource({ fhirBaseUrl: ehr.baseUrl, credentials: credentials(), clock: { now: () => new Date(now) } });
      const issued = ehr.smart!.tokensIssued();
      const first = await source.token();
      expect(await source.token()).to.equal(first);
      now += 230_000;
      expect(await source.token()).to.equal(first);
      now += 15_000;
      const second = await source.token();
      expect(second).not.to.equal(first);
      expect(ehr.smart!.tokensIssued()).to.equal(issued + 2);
    });

    it('signs a client assertion per the spec: iss = sub = client id, aud = token endpoint, exp within 5 minutes, fresh jti', async () => {
      const assertions: string[] = [];
      const realFetch = globalThis.fetch;
      // Only observes what goes over the wire; the request still reaches the real token endpoint.
      globalThis.fetch = async (input, init) => {
        if (typeof init?.body === 'string' && init.body.includes('client_assertion='))
          assertions.push(new URLSearchParams(init.body).get('client_assertion')!);
        return realFetch(input, init);
      };
      try {
        now = Date.now();
        const source = smartBackendTokenSource({
          fhirBaseUrl: ehr.baseUrl,
          credentials: credentials(),
          clock: { now: () => new Date(now) },
        });
        await source.token();
        await source.renew(await source.token());
      } finally {
        globalThis.fetch = realFetch;
      }
      expect(assertions).to.have.length(2);
      const claims = assertions.map((a) => decodeJwt(a));
      const tokenEndpoint = (await fhirFetch(`${ehr.baseUrl}/.well-known/smart-configuration`)).body.token_endpoint;
      for (const c of claims) {
        expect(c).to.include({ iss: CLIENT_ID, sub: CLIENT_ID, aud: tokenEndpoint });
        expect(c.exp! - c.iat!)
          .to.be.at.most(300)
          .and.above(0);
      }
      expect(claims[0]!.jti).to.be.a('string').and.not.equal(claims[1]!.jti);
    });

    it('fails with a SmartTokenError naming the refusal, not the key, when the server does not know the key', async () => {
      const stranger = await rsaKey();
      const source = smartBackendTokenSource({
        fhirBaseUrl: ehr.baseUrl,
        credentials: { clientId: CLIENT_ID, privateKey: createPrivateKey(stranger.pem), kid: stranger.kid, alg: 'RS384', scope: SCOPE },
        clock: { now: () => new Date() },
      });
      const error = await source.token().then(
        () => undefined,
        (err: unknown) => err as Error,
      );
      expect(error?.name).to.equal('SmartTokenError');
      expect(error?.message).to.equal('The token endpoint refused the client credentials grant: HTTP 401 (invalid_client)');
    });
  });
});
