/**
 * A CDS client's side of https://cds-hooks.hl7.org/2.0/#trusting-cds-clients for tests: key pairs,
 * a JWKS server over real HTTP on 127.0.0.1 (keys can be rotated), and signed hook JWTs.
 */
import { randomUUID } from 'node:crypto';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { exportJWK, generateKeyPair, importJWK, SignJWT, type JWK, type CryptoKey } from 'jose';
import { readFixture } from './fixtures.js';

export interface SigningKey {
  readonly kid: string;
  readonly alg: string;
  readonly privateKey: CryptoKey | Uint8Array;
  readonly publicJwk: JWK;
}

export async function newSigningKey(kid: string = randomUUID(), alg = 'ES384'): Promise<SigningKey> {
  const { publicKey, privateKey } = await generateKeyPair(alg, { extractable: true });
  return { kid, alg, privateKey, publicJwk: { ...(await exportJWK(publicKey)), kid, alg, use: 'sig' } };
}

/** The demo issuer of fixtures/security/ (what a test gateway trusts when CDS_TRUSTED_ISSUERS is unset). */
export async function demoIssuer(): Promise<{ iss: string; key: SigningKey }> {
  const demo = readFixture<{ iss: string; jwks: { keys: JWK[] }; privateJwk: JWK & { kid: string; alg: string } }>(
    'security/demo-cds-issuer.json',
  );
  return {
    iss: demo.iss,
    key: {
      kid: demo.privateJwk.kid,
      alg: demo.privateJwk.alg,
      privateKey: await importJWK(demo.privateJwk, demo.privateJwk.alg),
      publicJwk: demo.jwks.keys[0]!,
    },
  };
}

export interface HookJwtClaims {
  iss: string;
  aud: string;
  /** Seconds from now; default 60. Negative = already expired. */
  expiresIn?: number;
  jti?: string;
  /** Seconds since the epoch; default now. */
  now?: number;
}

export async function signHookJwt(key: SigningKey, claims: HookJwtClaims): Promise<string> {
  const now = claims.now ?? Math.floor(Date.now() / 1000);
  return new SignJWT({})
    .setProtectedHeader({ alg: key.alg, kid: key.kid, typ: 'JWT' })
    .setIssuer(claims.iss)
    .setAudience(claims.aud)
    .setIssuedAt(now)
    .setExpirationTime(now + (claims.expiresIn ?? 60))
    .setJti(claims.jti ?? randomUUID())
    .sign(key.privateKey);
}

/** `Authorization: Bearer ...` for a call to `serviceUrl`, signed by the demo issuer. */
export async function demoHookAuthorization(serviceUrl: string): Promise<Record<string, string>> {
  const { iss, key } = await demoIssuer();
  return { authorization: `Bearer ${await signHookJwt(key, { iss, aud: serviceUrl })}` };
}

export interface JwksServer {
  readonly url: string;
  /** How many times the set was fetched. */
  fetches(): number;
  publish(keys: readonly SigningKey[]): void;
  close(): Promise<void>;
}

export async function startJwksServer(keys: readonly SigningKey[]): Promise<JwksServer> {
  let published = keys.map((k) => k.publicJwk);
  let fetches = 0;
  const server = http.createServer((_req, res) => {
    fetches += 1;
    res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ keys: published }));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', () => resolve()));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}/.well-known/jwks.json`,
    fetches: () => fetches,
    publish: (next) => {
      published = next.map((k) => k.publicJwk);
    },
    close: async () => {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
