/**
 * The gateway's own signing keys, for the access tokens it issues. From the private JWKS file
 * named by AUTH_SIGNING_KEYS (the first key signs, all verify, so keys rotate by prepending a new
 * one), or, when none is named, one ES384 key pair generated once and kept in the database, so
 * every process of a cluster signs and verifies alike. The public half is served at jwks_uri.
 */
import { readFile } from 'node:fs/promises';
import { randomUUID } from 'node:crypto';
import {
  createLocalJWKSet,
  exportJWK,
  generateKeyPair,
  importJWK,
  type CryptoKey,
  type JSONWebKeySet,
  type JWK,
  type JWTVerifyGetKey,
} from 'jose';
import type { AuthStateStore } from '../ports/auth-state.js';

export const SIGNING_ALGORITHMS = ['ES384', 'RS384'] as const;
export type SigningAlgorithm = (typeof SIGNING_ALGORITHMS)[number];

export interface SigningKeys {
  /** The key that signs new tokens. */
  signing: { kid: string; alg: SigningAlgorithm; key: CryptoKey };
  /** Every public key, as served at jwks_uri. */
  publicJwks: JSONWebKeySet;
  /** Resolves a token's verification key by its header's kid. */
  verificationKey: JWTVerifyGetKey;
  /** Where the keys came from, for the start-up log (never the keys). */
  source: 'file' | 'database-existing' | 'database-generated';
}

export class SigningKeyError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'SigningKeyError';
  }
}

const PRIVATE_MEMBERS = ['d', 'p', 'q', 'dp', 'dq', 'qi', 'oth', 'k'] as const;

function publicHalf(jwk: JWK): JWK {
  const copy: Record<string, unknown> = { ...jwk };
  for (const member of PRIVATE_MEMBERS) delete copy[member];
  return copy as JWK;
}

function algorithmOf(jwk: JWK, where: string): SigningAlgorithm {
  const alg: string | undefined = jwk.alg ?? (jwk.kty === 'EC' && jwk.crv === 'P-384' ? 'ES384' : jwk.kty === 'RSA' ? 'RS384' : undefined);
  if (alg === 'ES384' || alg === 'RS384') return alg;
  throw new SigningKeyError(`${where}: each key must be an ES384 (EC P-384) or RS384 (RSA) private key`);
}

async function fromPrivateJwks(jwks: JWK[], where: string, source: SigningKeys['source']): Promise<SigningKeys> {
  if (jwks.length === 0) throw new SigningKeyError(`${where}: no keys`);
  const keys = jwks.map((jwk, index) => {
    if (jwk.kid === undefined || jwk.d === undefined) throw new SigningKeyError(`${where}: key ${index} needs a kid and its private part`);
    return { jwk, alg: algorithmOf(jwk, `${where}: key ${jwk.kid}`) };
  });
  const first = keys[0]!;
  const key = (await importJWK(first.jwk, first.alg)) as CryptoKey;
  const publicJwks: JSONWebKeySet = { keys: keys.map(({ jwk, alg }) => ({ ...publicHalf(jwk), alg, use: 'sig' })) };
  return { signing: { kid: first.jwk.kid!, alg: first.alg, key }, publicJwks, verificationKey: createLocalJWKSet(publicJwks), source };
}

/** Loads the signing keys: the file when named, else the database's (generated on first start). */
export async function loadSigningKeys(options: { file?: string; store: AuthStateStore; now: Date }): Promise<SigningKeys> {
  if (options.file !== undefined) {
    let parsed: unknown;
    try {
      parsed = JSON.parse(await readFile(options.file, 'utf8'));
    } catch {
      throw new SigningKeyError(`AUTH_SIGNING_KEYS: cannot read a JSON Web Key Set from ${options.file}`);
    }
    const keys = (parsed as { keys?: unknown }).keys;
    if (!Array.isArray(keys)) throw new SigningKeyError(`AUTH_SIGNING_KEYS: ${options.file} is not a JWKS ({"keys": [...]})`);
    return fromPrivateJwks(keys as JWK[], 'AUTH_SIGNING_KEYS', 'file');
  }
  let stored = await options.store.signingKeys();
  let source: SigningKeys['source'] = 'database-existing';
  if (stored.length === 0) {
    const { privateKey } = await generateKeyPair('ES384', { extractable: true });
    const jwk = { ...(await exportJWK(privateKey)), kid: randomUUID(), alg: 'ES384' };
    await options.store.addSigningKey({ kid: jwk.kid, privateJwk: JSON.stringify(jwk), createdAt: options.now.toISOString() });
    // Another process may have stored its own at the same moment: the oldest wins everywhere.
    stored = await options.store.signingKeys();
    source = 'database-generated';
  }
  return fromPrivateJwks(
    stored.map((row) => JSON.parse(row.privateJwk) as JWK),
    'the stored signing keys',
    source,
  );
}
