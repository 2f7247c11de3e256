/**
 * Access tokens for a client whose private key is in a key file (by default the DEMO keys in
 * fixtures/clients/, public in this repository, never for production), through the gateway's own
 * SMART Backend Services client (smart-backend-client.ts: discovery, signed assertion, cached token,
 * renewal): the same code the gateway uses towards EHRs and payers.
 * Used by `infusion-gateway token` (and `npm run token`), `send`/`check --client`, the sandbox's
 * story and the benchmarks.
 */
import { createPrivateKey, randomUUID, type JsonWebKey } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { SignJWT, type JWK } from 'jose';
import { systemClock } from '../adapters/system-clock.js';
import { DEMO_CLIENTS_FILE } from '../config/config.js';
import { smartBackendTokenSource, type AccessTokenSource, type SmartBackendCredentials } from './smart-backend-client.js';

const PROJECT_ROOT = path.resolve(import.meta.dirname, '../..');
/** The demo clients' private keys (public: demo only), resolved from the package so any working directory works. */
export const DEMO_CLIENT_KEYS_FILE = path.join(PROJECT_ROOT, 'fixtures/clients/demo-client-keys.json');
const DEMO_CLIENT_REGISTRY_FILE = path.join(PROJECT_ROOT, DEMO_CLIENTS_FILE);

/** The client has no key in the key file, or the files cannot be read: a usage problem. */
export class ClientKeyError extends Error {}

export interface ClientKeyOptions {
  clientId: string;
  /** Scopes to ask for; default every scope the client is registered with. */
  scope?: string;
  /** `{"keys": {"<client id>": <private JWK>}}`; default the demo keys. */
  keysFile?: string;
  /** The client registry the default scopes come from; default the demo registry. */
  clientsFile?: string;
}

async function readJson(file: string, what: string): Promise<unknown> {
  try {
    return JSON.parse(await readFile(file, 'utf8'));
  } catch (cause) {
    throw new ClientKeyError(`cannot read the ${what} ${file}: ${(cause as Error).message}`, { cause });
  }
}

/** The SMART Backend Services credentials of a client of the key file. */
export async function clientCredentials(options: ClientKeyOptions): Promise<SmartBackendCredentials> {
  const keysFile = options.keysFile ?? DEMO_CLIENT_KEYS_FILE;
  const keys = ((await readJson(keysFile, 'key file')) as { keys?: Record<string, JWK> }).keys ?? {};
  const key = keys[options.clientId];
  if (!key)
    throw new ClientKeyError(`no key for client '${options.clientId}' in ${keysFile}; clients there: ${Object.keys(keys).join(', ')}`);
  let scope = options.scope;
  if (scope === undefined) {
    const registry = (await readJson(options.clientsFile ?? DEMO_CLIENT_REGISTRY_FILE, 'client registry')) as {
      clients?: Array<{ clientId: string; scopes: string[] }>;
    };
    scope = registry.clients?.find((c) => c.clientId === options.clientId)?.scopes.join(' ') ?? '';
  }
  return {
    clientId: options.clientId,
    privateKey: createPrivateKey({ key: key as JsonWebKey, format: 'jwk' }),
    kid: key.kid ?? options.clientId,
    alg: key.alg ?? 'ES384',
    scope,
  };
}

/** A cached, renewing token source for a client, towards a server whose SMART discovery is at `fhirBaseUrl`. */
export async function clientTokenSource(options: ClientKeyOptions & { fhirBaseUrl: string }): Promise<AccessTokenSource> {
  return smartBackendTokenSource({ fhirBaseUrl: options.fhirBaseUrl, credentials: await clientCredentials(options), clock: systemClock });
}

/** One access token from the gateway at `origin` (its SMART discovery at the origin). */
export async function requestToken(options: ClientKeyOptions & { origin: string }): Promise<string> {
  return (await clientTokenSource({ ...options, fhirBaseUrl: options.origin })).token();
}

/** The demo CDS Hooks client (fixtures/security/demo-cds-issuer.json, key public: demo only). */
export const DEMO_CDS_ISSUER_FILE = path.join(PROJECT_ROOT, 'fixtures/security/demo-cds-issuer.json');

/**
 * A CDS Hooks client JWT (https://cds-hooks.hl7.org/2.0/#trusting-cds-clients) signed by the demo
 * issuer, which a gateway outside production trusts when CDS_TRUSTED_ISSUERS is unset: `aud` is the
 * service's URL, good for one call (its jti is remembered) within five minutes.
 */
export async function demoCdsHookJwt(serviceUrl: string, issuerFile: string = DEMO_CDS_ISSUER_FILE): Promise<string> {
  const demo = (await readJson(issuerFile, 'CDS Hooks issuer file')) as { iss: string; privateJwk: JWK & { kid: string; alg: string } };
  const now = Math.floor(Date.now() / 1000);
  return new SignJWT({})
    .setProtectedHeader({ alg: demo.privateJwk.alg, kid: demo.privateJwk.kid, typ: 'JWT' })
    .setIssuer(demo.iss)
    .setAudience(serviceUrl)
    .setIssuedAt(now)
    .setExpirationTime(now + 300)
    .setJti(randomUUID())
    .sign(createPrivateKey({ key: demo.privateJwk as JsonWebKey, format: 'jwk' }));
}
