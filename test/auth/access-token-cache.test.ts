/**
 * The verified-token cache of the gateway's own access tokens (src/auth/access-tokens.ts): a token
 * verified once is not verified again until it expires; an expired token is refused even when
 * remembered; a refusal is never remembered; a new key set (a key rotated out or revoked) does
 * not accept what the old one verified; another issuer or audience is checked anew.
 */
import { expect } from 'chai';
import type { JWTVerifyGetKey } from 'jose';
import { issueAccessToken, verifyAccessToken } from '../../src/auth/access-tokens.js';
import type { RegisteredClient } from '../../src/auth/client-registry.js';
import { loadSigningKeys, type SigningKeys } from '../../src/auth/signing-keys.js';
import type { AuthStateStore, StoredSigningKey } from '../../src/ports/auth-state.js';

const CONTEXT = { issuer: 'https://gateway.example', audience: 'https://gateway.example/fhir' };
const CLIENT = { clientId: 'hospital-a-ehr', role: 'ehr', tenant: 'hospital-a' } as RegisteredClient;
const ISSUED = new Date('2026-03-02T10:00:00Z');
const LIFETIME_SECONDS = 300;

function memoryAuthState(): AuthStateStore {
  const keys: StoredSigningKey[] = [];
  return {
    signingKeys: async () => [...keys],
    addSigningKey: async (key) => {
      if (!keys.some((k) => k.kid === key.kid)) keys.push(key);
    },
    claimAssertionId: async () => true,
  };
}

/** The key set with a verification key that counts how often a signature is checked. */
function counting(keys: SigningKeys): { keys: SigningKeys; checks: () => number } {
  let count = 0;
  const verificationKey: JWTVerifyGetKey = (header, token) => {
    count += 1;
    return keys.verificationKey(header, token);
  };
  return { keys: { ...keys, verificationKey }, checks: () => count };
}

const at = (secondsAfterIssue: number): Date => new Date(ISSUED.getTime() + secondsAfterIssue * 1000);

describe('the verified-token cache of the gateway access tokens', () => {
  let original: SigningKeys;

  beforeEach(async () => {
    original = await loadSigningKeys({ store: memoryAuthState(), now: ISSUED });
  });

  const issue = (keys: SigningKeys): Promise<string> =>
    issueAccessToken(keys, CLIENT, ['system/ServiceRequest.c'], { ...CONTEXT, now: ISSUED, lifetimeSeconds: LIFETIME_SECONDS });

  it('verifies a token once: later requests with the same token skip the signature check and get the same caller', async () => {
    const { keys, checks } = counting(original);
    const token = await issue(keys);
    const first = await verifyAccessToken(keys, token, { ...CONTEXT, now: at(1) });
    const second = await verifyAccessToken(keys, token, { ...CONTEXT, now: at(2) });
    const third = await verifyAccessToken(keys, token, { ...CONTEXT, now: at(LIFETIME_SECONDS - 1) });
    expect(first).to.deep.equal({
      kind: 'caller',
      caller: { clientId: 'hospital-a-ehr', role: 'ehr', tenant: 'hospital-a', scopes: ['system/ServiceRequest.c'] },
    });
    expect(second).to.deep.equal(first);
    expect(third).to.deep.equal(first);
    expect(checks()).to.equal(1);
  });

  it('refuses an expired token even when it is cached', async () => {
    const { keys } = counting(original);
    const token = await issue(keys);
    expect((await verifyAccessToken(keys, token, { ...CONTEXT, now: at(1) })).kind).to.equal('caller');
    expect(await verifyAccessToken(keys, token, { ...CONTEXT, now: at(LIFETIME_SECONDS) })).to.deep.equal({
      kind: 'refused',
      reason: 'the access token has expired',
    });
    expect(await verifyAccessToken(keys, token, { ...CONTEXT, now: at(LIFETIME_SECONDS + 60) })).to.deep.equal({
      kind: 'refused',
      reason: 'the access token has expired',
    });
  });

  it('never caches a refusal: a token refused for its audience is checked again, and accepted where it belongs', async () => {
    const { keys, checks } = counting(original);
    const token = await issue(keys);
    const elsewhere = { issuer: CONTEXT.issuer, audience: 'https://other.example/fhir', now: at(1) };
    expect((await verifyAccessToken(keys, token, elsewhere)).kind).to.equal('refused');
    expect((await verifyAccessToken(keys, token, elsewhere)).kind).to.equal('refused');
    expect(checks()).to.equal(2);
    expect((await verifyAccessToken(keys, token, { ...CONTEXT, now: at(1) })).kind).to.equal('caller');
  });

  it('checks a cached token anew for another audience and refuses it there', async () => {
    const { keys, checks } = counting(original);
    const token = await issue(keys);
    expect((await verifyAccessToken(keys, token, { ...CONTEXT, now: at(1) })).kind).to.equal('caller');
    const other = await verifyAccessToken(keys, token, { issuer: CONTEXT.issuer, audience: 'https://other.example/fhir', now: at(2) });
    expect(other.kind).to.equal('refused');
    expect(checks()).to.equal(2);
  });

  it('refuses a cached token once its signing key is rotated out of the key set (revoked)', async () => {
    const token = await issue(original);
    expect((await verifyAccessToken(original, token, { ...CONTEXT, now: at(1) })).kind).to.equal('caller');
    // A new key set without the old key: a fresh store generates a key of another kid.
    const rotated = await loadSigningKeys({ store: memoryAuthState(), now: at(2) });
    expect(rotated.signing.kid).to.not.equal(original.signing.kid);
    const check = await verifyAccessToken(rotated, token, { ...CONTEXT, now: at(3) });
    expect(check).to.deep.equal({ kind: 'refused', reason: 'the access token is not one this gateway issued' });
  });

  it('does not let a token the cache has never seen through: a tampered token is refused', async () => {
    const token = await issue(original);
    expect((await verifyAccessToken(original, token, { ...CONTEXT, now: at(1) })).kind).to.equal('caller');
    const [header, payload, signature] = token.split('.');
    const tampered = `${header}.${payload}.${signature!.slice(0, -4)}AAAA`;
    expect((await verifyAccessToken(original, tampered, { ...CONTEXT, now: at(2) })).kind).to.equal('refused');
  });
});
