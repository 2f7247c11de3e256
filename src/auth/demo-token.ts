/**
 * Gets an access token from a running gateway for a client whose private key is in a key file (by
 * default the DEMO keys in fixtures/clients/, public in this repository, never for production):
 * signs the SMART Backend Services client assertion and posts the token request with the scopes
 * the client is registered with. Used by `npm run token`.
 */
import { randomUUID } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { importJWK, SignJWT, type JWK } from 'jose';
import { DEMO_CLIENTS_FILE } from '../config/config.js';
import { ASSERTION_TYPE } from './token-endpoint.js';

export const DEMO_CLIENT_KEYS_FILE = 'fixtures/clients/demo-client-keys.json';

export async function requestToken(options: { origin: string; clientId: string; scope?: string; keysFile?: string; clientsFile?: string }): Promise<string> {
  const keysFile = options.keysFile ?? DEMO_CLIENT_KEYS_FILE;
  const keys = (JSON.parse(await readFile(keysFile, 'utf8')) as { keys: Record<string, JWK> }).keys;
  const key = keys[options.clientId];
  if (!key) throw new Error(`no key for client '${options.clientId}' in ${keysFile}; clients there: ${Object.keys(keys).join(', ')}`);
  const registry = JSON.parse(await readFile(options.clientsFile ?? DEMO_CLIENTS_FILE, 'utf8')) as { clients: Array<{ clientId: string; scopes: string[] }> };
  const scope = options.scope ?? registry.clients.find((c) => c.clientId === options.clientId)?.scopes.join(' ') ?? '';
  const tokenUrl = `${options.origin.replace(/\/+$/, '')}/oauth/token`;
  const alg = key.alg ?? 'ES384';
  const assertion = await new SignJWT({})
    .setProtectedHeader({ alg, kid: key.kid! })
    .setIssuer(options.clientId)
    .setSubject(options.clientId)
    .setAudience(tokenUrl)
    .setIssuedAt()
    .setExpirationTime('4m')
    .setJti(randomUUID())
    .sign(await importJWK(key, alg));
  const response = await fetch(tokenUrl, {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams({ grant_type: 'client_credentials', client_assertion_type: ASSERTION_TYPE, client_assertion: assertion, scope }).toString(),
  });
  const body = (await response.json()) as { access_token?: string; error?: string; error_description?: string };
  if (!response.ok || body.access_token === undefined) throw new Error(`${tokenUrl} answered ${response.status}: ${body.error ?? ''} ${body.error_description ?? ''}`);
  return body.access_token;
}
