/**
 * Test clients for the gateway's authentication (docs/security.md): one ES384 key pair per test
 * run, a client registry with an ehr and a coordinator client per tenant the tests use, an operator
 * and a client per payer, and access tokens got from the gateway's real token endpoint with a
 * signed client assertion. `fhirFetch` attaches a token by itself, of a role the route table
 * allows for the request (tests of authorization itself pass `as` or their own header).
 */
import { randomUUID } from 'node:crypto';
import { writeFile } from 'node:fs/promises';
import path from 'node:path';
import { exportJWK, generateKeyPair, SignJWT, type CryptoKey, type JWK } from 'jose';
import type { Role } from '../../src/auth/caller.js';
import { findRoute, rolePermits } from '../../src/http/route-table.js';
import type { Interaction } from '../../src/auth/scopes.js';

export const TEST_TENANTS = ['default', 'another-hospital', 'other-hospital', 'ehr-a', 'ehr-b', 'nobody', 'tenant-a', 'tenant-b'];
export const TEST_PAYERS = ['payer-sonoran', 'payer-cumberland', 'payer-peachtree', 'payer-unheard-of'];

/** The scopes each test client is registered with (and asks for). */
export const ROLE_SCOPES: Record<Role, string[]> = {
  ehr: [
    'system/ServiceRequest.crus',
    'system/Task.rs',
    'system/Appointment.rs',
    'system/Coverage.crus',
    'system/Communication.rs',
    'system/Patient.crus',
    'system/Practitioner.crus',
    'system/PractitionerRole.crus',
    'system/Location.rs',
    'system/Organization.crus',
    'system/HealthcareService.rs',
  ],
  coordinator: ['system/*.rs', 'system/Task.u', 'system/Appointment.cu'],
  operator: ['system/*.crus'],
  payer: ['system/Coverage.rs', 'system/Task.rs'],
};

export interface TestClient {
  clientId: string;
  role: Role;
  tenant?: string;
  payer?: string;
}

export const clientIdOf = (role: Role, owner?: string): string => (owner === undefined ? `test-${role}` : `test-${role}-${owner}`);

const keyPair = (async () => {
  const { publicKey, privateKey } = await generateKeyPair('ES384', { extractable: true });
  return {
    publicJwk: { ...(await exportJWK(publicKey)), kid: 'test-key-1', alg: 'ES384', use: 'sig' } as JWK,
    privateKey: privateKey as CryptoKey,
  };
})();

export function testClients(): TestClient[] {
  return [
    ...TEST_TENANTS.flatMap((tenant): TestClient[] => [
      { clientId: clientIdOf('ehr', tenant), role: 'ehr', tenant },
      { clientId: clientIdOf('coordinator', tenant), role: 'coordinator', tenant },
    ]),
    { clientId: clientIdOf('operator'), role: 'operator' },
    ...TEST_PAYERS.map((payer): TestClient => ({ clientId: clientIdOf('payer', payer), role: 'payer', payer })),
  ];
}

/** Writes the test registry into `dir` and returns its path (for AUTH_CLIENTS). */
export async function writeTestRegistry(dir: string): Promise<string> {
  const { publicJwk } = await keyPair;
  const file = path.join(dir, 'test-clients.json');
  const clients = testClients().map((client) => ({
    ...client,
    name: client.clientId,
    scopes: ROLE_SCOPES[client.role],
    jwks: { keys: [publicJwk] },
  }));
  await writeFile(file, JSON.stringify({ clients }));
  return file;
}

/** A client assertion (RFC 7523) for the token endpoint at `tokenUrl`, signed with the test key. */
export async function clientAssertion(
  clientId: string,
  tokenUrl: string,
  options: { lifetimeSeconds?: number; jti?: string; key?: CryptoKey; alg?: string } = {},
): Promise<string> {
  const { privateKey } = await keyPair;
  const now = Math.floor(Date.now() / 1000);
  return new SignJWT({})
    .setProtectedHeader({ alg: options.alg ?? 'ES384', kid: 'test-key-1', typ: 'JWT' })
    .setIssuer(clientId)
    .setSubject(clientId)
    .setAudience(tokenUrl)
    .setIssuedAt(now)
    .setExpirationTime(now + (options.lifetimeSeconds ?? 240))
    .setJti(options.jti ?? randomUUID())
    .sign(options.key ?? privateKey);
}

/** The token endpoint's answer for a client, as the gateway sends it. */
export async function requestToken(
  origin: string,
  clientId: string,
  scope: string,
  assertion?: string,
): Promise<{ status: number; body: any }> {
  const tokenUrl = `${origin}/oauth/token`;
  const form = new URLSearchParams({
    grant_type: 'client_credentials',
    scope,
    client_assertion_type: 'urn:ietf:params:oauth:client-assertion-type:jwt-bearer',
    client_assertion: assertion ?? (await clientAssertion(clientId, tokenUrl)),
  });
  const response = await fetch(tokenUrl, { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: form });
  return { status: response.status, body: await response.json() };
}

const tokenCache = new Map<string, { token: string; until: number }>();

/** The origins of the gateways the tests started: fhirFetch attaches tokens only for these. */
const gatewayOrigins = new Set<string>();

export function registerGatewayOrigin(origin: string): void {
  gatewayOrigins.add(origin);
  // The OS hands a freed port out again: a gateway started on the origin of one stopped earlier has
  // its own signing keys, and the tokens the earlier one issued are not its own (401).
  for (const key of tokenCache.keys()) if (key.startsWith(`${origin} `)) tokenCache.delete(key);
}

export function isGatewayOrigin(origin: string): boolean {
  return gatewayOrigins.has(origin);
}

let sharedRegistry: Promise<string> | undefined;

/** One test registry file for the whole run, for gateways run as child processes. */
export function sharedTestRegistry(): Promise<string> {
  sharedRegistry ??= (async () => {
    const { mkdtemp } = await import('node:fs/promises');
    const os = await import('node:os');
    return writeTestRegistry(await mkdtemp(path.join(os.tmpdir(), 'gateway-test-clients-')));
  })();
  return sharedRegistry;
}

/** An access token of a test client at the gateway at `origin`, with the client's whole scope. */
export async function accessToken(origin: string, client: { role: Role; tenant?: string; payer?: string }): Promise<string> {
  const clientId = clientIdOf(
    client.role,
    client.role === 'payer' ? client.payer : client.role === 'operator' ? undefined : (client.tenant ?? 'default'),
  );
  const key = `${origin} ${clientId}`;
  const cached = tokenCache.get(key);
  if (cached && cached.until > Date.now()) return cached.token;
  const answer = await requestToken(origin, clientId, ROLE_SCOPES[client.role].join(' '));
  if (answer.status !== 200) throw new Error(`no test token for ${clientId}: ${answer.status} ${JSON.stringify(answer.body)}`);
  tokenCache.set(key, { token: answer.body.access_token, until: Date.now() + (answer.body.expires_in - 30) * 1000 });
  return answer.body.access_token;
}

const ROLE_PREFERENCE: Role[] = ['coordinator', 'ehr', 'operator', 'payer'];

/**
 * Who a test calls as when it does not say: a role the route table allows for this request (the
 * coordinator where several may), of the tenant the request names (X-Tenant-Id, or the tenant or
 * payer in a notification path). Undefined for public routes and paths the table does not know.
 */
export function defaultCaller(
  method: string,
  url: string,
  headers: Record<string, string>,
): { role: Role; tenant?: string; payer?: string } | undefined {
  const { pathname } = new URL(url);
  const found = findRoute(method, pathname);
  if (!found || found.entry.access.kind === 'public') return undefined;
  const tenantHeader = Object.entries(headers).find(([name]) => name.toLowerCase() === 'x-tenant-id')?.[1];
  const { access, ownedBy } = found.entry;
  let role: Role | undefined;
  if (access.kind === 'roles') role = ROLE_PREFERENCE.find((r) => access.roles.includes(r));
  else if (access.kind === 'fhir') {
    const type = found.params['type'] ?? '';
    role = ROLE_PREFERENCE.find((r) => rolePermits(r, type, access.interaction as Interaction)) ?? 'coordinator';
  } else role = 'coordinator';
  if (role === undefined) return undefined;
  if (ownedBy) {
    const owner = found.params[ownedBy.parameter];
    return ownedBy.claim === 'payer'
      ? { role, ...(owner !== undefined ? { payer: owner } : {}) }
      : { role, ...(owner !== undefined ? { tenant: owner } : {}) };
  }
  // Only operators write the network's directory.
  if (tenantHeader === 'network' && method !== 'GET') role = 'operator';
  return { role, ...(tenantHeader !== undefined ? { tenant: tenantHeader } : {}) };
}

/**
 * Adds a test client's bearer token to `headers` for a request to a test gateway, unless the request
 * carries its own Authorization: `as` when given, else a role the route table allows (defaultCaller).
 */
export async function attachTestToken(
  url: string,
  method: string,
  headers: Record<string, string>,
  as?: { role: Role; tenant?: string; payer?: string } | 'anonymous',
): Promise<void> {
  const origin = new URL(url).origin;
  if (as === 'anonymous' || !isGatewayOrigin(origin) || Object.keys(headers).some((name) => name.toLowerCase() === 'authorization')) return;
  const caller = as ?? defaultCaller(method, url, headers);
  if (!caller) return;
  // A tenant or payer no test client stands for (a fuzzed header, say): call as the default tenant's.
  const known =
    caller.role === 'payer'
      ? TEST_PAYERS.includes(caller.payer ?? '')
      : caller.role === 'operator' || TEST_TENANTS.includes(caller.tenant ?? 'default');
  const effective = known
    ? caller
    : caller.role === 'payer'
      ? { role: caller.role, payer: TEST_PAYERS[0]! }
      : { role: caller.role, tenant: 'default' };
  headers['authorization'] = `Bearer ${await accessToken(origin, effective)}`;
}
