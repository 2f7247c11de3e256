/**
 * The authorization matrix, derived from the route table (src/http/route-table.ts): every route
 * that is not public × every caller: an EHR and a coordinator of two hospitals, a payer, an
 * operator, anonymous, an expired token and a token for another audience (both properly signed
 * with the gateway's key, from an AUTH_SIGNING_KEYS file the test holds). Each answer is what the
 * table says, and no body answered to anyone outside hospital A carries hospital A's PHI.
 */
import { expect } from 'chai';
import { mkdtemp, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { exportJWK, generateKeyPair, SignJWT, type CryptoKey } from 'jose';
import type { Role } from '../../src/auth/caller.js';
import { scopesPermit } from '../../src/auth/scopes.js';
import { apiSupports, resourceTypeOf, rolePermits, ROUTE_TABLE, type RouteEntry } from '../../src/http/route-table.js';
import { readFixture } from '../support/fixtures.js';
import { fhirFetch, startGateway, type RunningGateway } from '../support/gateway.js';
import { phiMarkers } from '../support/phi.js';
import { accessToken, ROLE_SCOPES } from '../support/test-clients.js';

interface MatrixCaller {
  name: string;
  role?: Role;
  tenant?: string;
  payer?: string;
  token?: string;
}

describe('authorization matrix (route table × callers × tenants)', function () {
  this.timeout(180_000);
  let gateway: RunningGateway;
  let ids: { serviceRequest: string; task: string };
  const callers: MatrixCaller[] = [
    { name: 'ehr of hospital A', role: 'ehr', tenant: 'tenant-a' },
    { name: 'ehr of hospital B', role: 'ehr', tenant: 'tenant-b' },
    { name: 'coordinator of hospital A', role: 'coordinator', tenant: 'tenant-a' },
    { name: 'coordinator of hospital B', role: 'coordinator', tenant: 'tenant-b' },
    { name: 'payer', role: 'payer', payer: 'payer-cumberland' },
    { name: 'operator', role: 'operator' },
    { name: 'anonymous' },
    { name: 'expired token' },
    { name: 'token for another audience' },
  ];

  before(async () => {
    const dir = await mkdtemp(path.join(os.tmpdir(), 'matrix-keys-'));
    const { privateKey } = await generateKeyPair('ES384', { extractable: true });
    const jwk = { ...(await exportJWK(privateKey)), kid: 'matrix-1', alg: 'ES384' };
    await writeFile(path.join(dir, 'keys.json'), JSON.stringify({ keys: [jwk] }));
    gateway = await startGateway({ env: { AUTH_SIGNING_KEYS: path.join(dir, 'keys.json') } });
    const origin = gateway.baseUrl;
    for (const caller of callers) {
      if (caller.role)
        caller.token = await accessToken(origin, {
          role: caller.role,
          ...(caller.tenant ? { tenant: caller.tenant } : {}),
          ...(caller.payer ? { payer: caller.payer } : {}),
        });
    }
    const signed = (claims: { exp: number; aud: string }): Promise<string> =>
      new SignJWT({ role: 'operator', scope: 'system/*.rs' })
        .setProtectedHeader({ alg: 'ES384', kid: 'matrix-1', typ: 'at+jwt' })
        .setIssuer(origin)
        .setSubject('test-operator')
        .setAudience(claims.aud)
        .setIssuedAt(claims.exp - 300)
        .setExpirationTime(claims.exp)
        .sign(privateKey as CryptoKey);
    const now = Math.floor(Date.now() / 1000);
    callers.find((c) => c.name === 'expired token')!.token = await signed({ exp: now - 60, aud: `${origin}/fhir` });
    callers.find((c) => c.name === 'token for another audience')!.token = await signed({
      exp: now + 300,
      aud: 'https://elsewhere.example/fhir',
    });

    const bundle = await fhirFetch(`${origin}/fhir`, {
      as: { role: 'ehr', tenant: 'tenant-a' },
      body: readFixture('referrals/infliximab/transaction-bundle.json'),
    });
    expect(bundle.status, JSON.stringify(bundle.body)).to.equal(200);
    const serviceRequest = String(
      bundle.body.entry.find((e: any) => e.response.location.startsWith('ServiceRequest/')).response.location.split('/')[1],
    );
    const tasks = await fhirFetch(`${origin}/fhir/Task?focus=ServiceRequest/${serviceRequest}`, {
      as: { role: 'ehr', tenant: 'tenant-a' },
    });
    ids = { serviceRequest, task: tasks.body.entry[0].resource.id };
  });
  after(() => gateway.stop());

  /** A concrete request for an entry, aimed at hospital A's referral where the path names a resource. */
  function requestOf(entry: RouteEntry): { path: string; type: string } {
    const type = resourceTypeOf(entry) ?? 'ServiceRequest';
    const id = type === 'Task' ? ids.task : ids.serviceRequest;
    const path = entry.path
      .replace(':type', type)
      .replace(':id', entry.path.startsWith('/admin') ? '1' : id)
      .replace(':versionId', '1')
      .replace(':tenant', 'tenant-a')
      .replace(':payer', 'payer-cumberland');
    return { path, type };
  }

  /** What the table says this caller gets: a status, or 'allowed' (any answer but 401/403/5xx). */
  function expected(entry: RouteEntry, caller: MatrixCaller, type: string): number | 'allowed' {
    if (!caller.role) return 401;
    const access = entry.access;
    if (access.kind === 'roles') {
      if (!access.roles.includes(caller.role)) return 403;
      if (access.scope && !scopesPermit(ROLE_SCOPES[caller.role], access.scope.resourceType, access.scope.interaction)) return 403;
    }
    if (access.kind === 'fhir' && apiSupports(type, access.interaction)) {
      if (!rolePermits(caller.role, type, access.interaction) || !scopesPermit(ROLE_SCOPES[caller.role], type, access.interaction))
        return 403;
    }
    if (entry.ownedBy) {
      const owner = entry.ownedBy.claim === 'tenant' ? caller.tenant : caller.payer;
      if (owner !== (entry.ownedBy.claim === 'tenant' ? 'tenant-a' : 'payer-cumberland')) return 404;
    }
    // A read of hospital A's resource: found by hospital A alone, 404 for every other caller.
    if (entry.method === 'GET' && entry.path.startsWith('/fhir/:type/:id') && !entry.path.includes('_history/'))
      return caller.tenant === 'tenant-a' ? 200 : 404;
    return 'allowed';
  }

  it('answers every cell as the table says, and never with hospital A PHI to anyone else', async () => {
    const markers = phiMarkers();
    const guarded = ROUTE_TABLE.filter((entry) => entry.access.kind !== 'public');
    const wrong: string[] = [];
    let cells = 0;
    for (const entry of guarded) {
      const { path, type } = requestOf(entry);
      for (const caller of callers) {
        const withBody = entry.method !== 'GET';
        const response = await fetch(`${gateway.baseUrl}${path}`, {
          method: entry.method,
          headers: {
            accept: 'application/fhir+json',
            ...(caller.token ? { authorization: `Bearer ${caller.token}` } : {}),
            ...(withBody ? { 'content-type': 'application/fhir+json' } : {}),
          },
          // A body without PHI: any PHI in an answer comes from the store.
          ...(withBody ? { body: JSON.stringify({ resourceType: 'Parameters' }) } : {}),
        });
        const body = await response.text();
        cells += 1;
        const want = expected(entry, caller, type);
        const ok =
          want === 'allowed' ? response.status !== 401 && response.status !== 403 && response.status < 500 : response.status === want;
        if (!ok) wrong.push(`${entry.method} ${entry.path} as ${caller.name}: ${response.status}, the table says ${want}`);
        if (caller.tenant !== 'tenant-a') {
          const leaked = markers.filter((marker) => body.includes(marker));
          if (leaked.length > 0) wrong.push(`${entry.method} ${entry.path} as ${caller.name}: ${leaked.length} PHI markers of hospital A`);
        }
      }
    }
    console.log(`      authorization matrix: ${guarded.length} routes × ${callers.length} callers = ${cells} cells`);
    expect(wrong).to.deep.equal([]);
    expect(cells).to.equal(guarded.length * callers.length);
  });

  it('lets a payer reach the referral Tasks of its own members only (payor = its Organization), 404 and left out of searches for others', async () => {
    // Hospital A's referral names a Coverage of Cumberland (the transaction fixture).
    const asPayer = async (payer: string, path: string): Promise<{ status: number; body: any }> => {
      const token = await accessToken(gateway.baseUrl, { role: 'payer', payer });
      return fhirFetch(`${gateway.baseUrl}${path}`, { headers: { authorization: `Bearer ${token}`, 'x-tenant-id': 'tenant-a' } });
    };
    const own = await asPayer('payer-cumberland', `/fhir/Task/${ids.task}`);
    expect(own.status, JSON.stringify(own.body)).to.equal(200);
    expect(own.body.id).to.equal(ids.task);
    const ownSearch = await asPayer('payer-cumberland', `/fhir/Task?focus=ServiceRequest/${ids.serviceRequest}`);
    expect(ownSearch.body.entry.map((e: any) => e.resource.id)).to.deep.equal([ids.task]);
    const other = await asPayer('payer-peachtree', `/fhir/Task/${ids.task}`);
    expect(other.status).to.equal(404);
    expect((await asPayer('payer-peachtree', `/fhir/Task/${ids.task}/_history`)).body.entry ?? []).to.deep.equal([]);
    const otherSearch = await asPayer('payer-peachtree', `/fhir/Task?focus=ServiceRequest/${ids.serviceRequest}`);
    expect(otherSearch.status).to.equal(200);
    expect(otherSearch.body.entry ?? []).to.deep.equal([]);
    // Still no ServiceRequest, Patient or Appointment for any payer.
    expect((await asPayer('payer-cumberland', `/fhir/ServiceRequest/${ids.serviceRequest}`)).status).to.equal(403);
  });
});
