/**
 * The `auth` member of an EHR_CONNECTIONS or PAYER_CONNECTIONS entry: how the gateway
 * authenticates to that server as a SMART Backend Services client
 * (https://hl7.org/fhir/smart-app-launch/STU2/backend-services.html):
 *
 *   {"type":"smart-backend","clientId":"...","privateKeyEnv":"EHR_A_KEY" | "privateKeyFile":"/run/secrets/ehr-a.pem",
 *    "kid":"...","alg":"RS384","scope":"system/Task.cru system/ServiceRequest.rs"}
 *
 * The key (PKCS#8 PEM or a private JWK as JSON) is never written in the JSON itself: it comes from
 * the named variable or file, and is checked here, at start-up, to be a private key fit for `alg`.
 */
import { createPrivateKey, type KeyObject } from 'node:crypto';
import { readFileSync } from 'node:fs';
import type { SmartBackendCredentials } from '../auth/smart-backend-client.js';

/** Asymmetric JWS algorithms and the key type (and curve) each needs. */
const KEY_FOR_ALG: Record<string, { type: string; curve?: string }> = {
  RS256: { type: 'rsa' },
  RS384: { type: 'rsa' },
  RS512: { type: 'rsa' },
  PS256: { type: 'rsa' },
  PS384: { type: 'rsa' },
  PS512: { type: 'rsa' },
  ES256: { type: 'ec', curve: 'prime256v1' },
  ES384: { type: 'ec', curve: 'secp384r1' },
  ES512: { type: 'ec', curve: 'secp521r1' },
  EdDSA: { type: 'ed25519' },
};

function parsePrivateKey(material: string): KeyObject | undefined {
  try {
    const trimmed = material.trim();
    return trimmed.startsWith('{')
      ? createPrivateKey({ key: JSON.parse(trimmed) as import('node:crypto').JsonWebKey, format: 'jwk' })
      : createPrivateKey(trimmed);
  } catch {
    return undefined;
  }
}

/**
 * Reads and checks `auth` of one connection entry; pushes one problem per thing to fix (never the
 * key's content). Undefined when absent or unusable.
 */
export function readSmartBackendAuth(
  auth: unknown,
  where: string,
  text: (name: string) => string | undefined,
  problems: string[],
  readText: (file: string) => string = (file) => readFileSync(file, 'utf8'),
): SmartBackendCredentials | undefined {
  if (auth === undefined) return undefined;
  const at = `${where}.auth`;
  if (typeof auth !== 'object' || auth === null || Array.isArray(auth)) {
    problems.push(`Set ${at} to {"type":"smart-backend","clientId","privateKeyEnv" or "privateKeyFile","kid","alg","scope"}`);
    return undefined;
  }
  const a = auth as Record<string, unknown>;
  const before = problems.length;
  if (a['type'] !== 'smart-backend') problems.push(`Set ${at}.type to smart-backend (the only kind; a static token is bearerTokenEnv)`);
  const nonEmpty = (name: string, what: string): string | undefined => {
    const value = a[name];
    if (typeof value === 'string' && value.trim() !== '') return value.trim();
    problems.push(`Set ${at}.${name} to ${what}`);
    return undefined;
  };
  const clientId = nonEmpty('clientId', 'the client id the server registered for the gateway');
  const kid = nonEmpty('kid', "the key id of the gateway's key in the JWKS the server holds");
  const scope = nonEmpty('scope', 'the system scopes to ask for, such as system/Task.cru');
  const alg = nonEmpty('alg', `a JWS algorithm: ${Object.keys(KEY_FOR_ALG).join(', ')}`);
  if (alg !== undefined && KEY_FOR_ALG[alg] === undefined)
    problems.push(`Set ${at}.alg to one of ${Object.keys(KEY_FOR_ALG).join(', ')} (got '${alg}')`);

  const keyEnv = a['privateKeyEnv'];
  const keyFile = a['privateKeyFile'];
  let material: string | undefined;
  let source = '';
  if ((keyEnv === undefined) === (keyFile === undefined)) {
    problems.push(`Set exactly one of ${at}.privateKeyEnv (a variable holding the key) and ${at}.privateKeyFile (a file holding it)`);
  } else if (keyEnv !== undefined) {
    source = `${typeof keyEnv === 'string' ? keyEnv : JSON.stringify(keyEnv)} (named by ${at}.privateKeyEnv)`;
    material = typeof keyEnv === 'string' ? text(keyEnv) : undefined;
    if (material === undefined) problems.push(`Set ${source} to the gateway's private key (PKCS#8 PEM or a private JWK)`);
  } else {
    source = `the file ${String(keyFile)} (${at}.privateKeyFile)`;
    try {
      material = typeof keyFile === 'string' ? readText(keyFile) : undefined;
    } catch {
      material = undefined;
    }
    if (material === undefined) problems.push(`Set ${at}.privateKeyFile to a readable file holding the gateway's private key`);
  }
  let privateKey: KeyObject | undefined;
  if (material !== undefined) {
    privateKey = parsePrivateKey(material);
    if (privateKey === undefined) problems.push(`Put a private key (PKCS#8 PEM or a private JWK) in ${source}: it does not parse as one`);
    const needed = alg === undefined ? undefined : KEY_FOR_ALG[alg];
    if (privateKey !== undefined && needed !== undefined) {
      const curve = privateKey.asymmetricKeyDetails?.namedCurve;
      if (privateKey.asymmetricKeyType !== needed.type || (needed.curve !== undefined && curve !== needed.curve)) {
        problems.push(
          `Set ${at}.alg to an algorithm for the key in ${source} (a ${privateKey.asymmetricKeyType ?? 'unknown'}${curve ? ` ${curve}` : ''} key cannot sign ${alg})`,
        );
      }
    }
  }
  if (
    problems.length > before ||
    clientId === undefined ||
    kid === undefined ||
    scope === undefined ||
    alg === undefined ||
    privateKey === undefined
  )
    return undefined;
  return { clientId, privateKey, kid, alg, scope };
}
