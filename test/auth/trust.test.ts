/**
 * Trust, over real HTTP on both engines (docs/security.md): SMART Backend Services end to end with
 * an ES384 client, the token endpoint's refusals, and the attacks the trust issue replays: token
 * replay, alg none, HS256 signed with the public key, expired and other-audience tokens, tenant
 * spoofing, a directory rewrite (directly and inside a transaction), anonymous dead letters.
 */
import { expect } from 'chai';
import { randomUUID } from 'node:crypto';
import { base64url, SignJWT, UnsecuredJWT } from 'jose';
import { readFixture, withOrderNumber } from '../support/fixtures.js';
import { fhirFetch, startGateway, type RunningGateway } from '../support/gateway.js';
import { phiMarkers } from '../support/phi.js';
import { accessToken, clientAssertion, clientIdOf, requestToken } from '../support/test-clients.js';

const EHR_A = { role: 'ehr' as const, tenant: 'tenant-a' };
const EHR_B = { role: 'ehr' as const, tenant: 'tenant-b' };

for (const engine of ['sqlite', 'postgres'] as const) {
  describe(`trust: SMART Backend Services and the attacks refused (${engine})`, function () {
    this.timeout(60_000);
    let gateway: RunningGateway;
    let fhir: string;
    before(async () => {
      gateway = await startGateway({ engine });
      fhir = `${gateway.baseUrl}/fhir`;
    });
    after(() => gateway.stop());

    it('publishes the SMART configuration at both well-known places, and only public keys', async () => {
      for (const url of [`${gateway.baseUrl}/.well-known/smart-configuration`, `${fhir}/.well-known/smart-configuration`]) {
        const config = (await (await fetch(url)).json()) as Record<string, any>;
        expect(config['token_endpoint']).to.equal(`${gateway.baseUrl}/oauth/token`);
        expect(config['grant_types_supported']).to.deep.equal(['client_credentials']);
        expect(config['token_endpoint_auth_methods_supported']).to.deep.equal(['private_key_jwt']);
        expect(config['token_endpoint_auth_signing_alg_values_supported']).to.include.members(['RS384', 'ES384']);
        expect(config['capabilities']).to.include('client-confidential-asymmetric');
        expect(config['scopes_supported'].length).to.be.greaterThan(0);
      }
      const jwks = (await (await fetch(`${gateway.baseUrl}/oauth/jwks`)).json()) as { keys: Array<Record<string, unknown>> };
      expect(jwks.keys.length).to.be.greaterThan(0);
      for (const key of jwks.keys) expect(key).to.not.have.property('d');
    });

    it('an ES384 client gets a token with the intersection of asked and allowed scopes, and posts a referral', async () => {
      const answer = await requestToken(
        gateway.baseUrl,
        clientIdOf('ehr', 'tenant-a'),
        'system/ServiceRequest.c system/Task.rs system/Location.cu',
      );
      expect(answer.status).to.equal(200);
      expect(answer.body).to.include({ token_type: 'Bearer' });
      expect(answer.body.scope.split(' ').sort()).to.deep.equal(['system/ServiceRequest.c', 'system/Task.rs']);
      const created = await fhirFetch(`${fhir}/ServiceRequest`, {
        headers: { authorization: `Bearer ${answer.body.access_token}` },
        body: withOrderNumber(readFixture('referrals/infliximab/service-request.json'), `TRUST-${randomUUID()}`),
      });
      expect(created.status).to.equal(201);
      const tasks = await fhirFetch(`${fhir}/Task?focus=ServiceRequest/${created.body.id}`, {
        headers: { authorization: `Bearer ${answer.body.access_token}` },
      });
      expect(tasks.body.entry).to.have.length(1);
      // The same token may not write what its scopes leave out.
      const patient = await fhirFetch(`${fhir}/Patient`, {
        headers: { authorization: `Bearer ${answer.body.access_token}` },
        body: { resourceType: 'Patient', active: true },
      });
      expect(patient.status).to.equal(403);
      expect(patient.headers.get('www-authenticate')).to.contain('insufficient_scope');
    });

    it('answers the OAuth errors: unknown client, wrong audience, too long an assertion, no allowed scope, another grant', async () => {
      const tokenUrl = `${gateway.baseUrl}/oauth/token`;
      const unknown = await requestToken(
        gateway.baseUrl,
        'nobody-registered',
        'system/Task.rs',
        await clientAssertion('nobody-registered', tokenUrl),
      );
      expect(unknown.status).to.equal(401);
      expect(unknown.body.error).to.equal('invalid_client');
      const elsewhere = await requestToken(
        gateway.baseUrl,
        clientIdOf('ehr', 'tenant-a'),
        'system/Task.rs',
        await clientAssertion(clientIdOf('ehr', 'tenant-a'), 'https://elsewhere.example/token'),
      );
      expect(elsewhere.body.error).to.equal('invalid_client');
      const tooLong = await requestToken(
        gateway.baseUrl,
        clientIdOf('ehr', 'tenant-a'),
        'system/Task.rs',
        await clientAssertion(clientIdOf('ehr', 'tenant-a'), tokenUrl, { lifetimeSeconds: 3600 }),
      );
      expect(tooLong.body.error).to.equal('invalid_client');
      const noScope = await requestToken(gateway.baseUrl, clientIdOf('payer', 'payer-cumberland'), 'system/Location.cu');
      expect(noScope.status).to.equal(400);
      expect(noScope.body.error).to.equal('invalid_scope');
      const grant = await fetch(tokenUrl, {
        method: 'POST',
        headers: { 'content-type': 'application/x-www-form-urlencoded' },
        body: 'grant_type=password&username=a&password=b',
      });
      expect(grant.status).to.equal(400);
      expect(((await grant.json()) as any).error).to.equal('unsupported_grant_type');
    });

    it('refuses a replayed assertion (its jti was used)', async () => {
      const clientId = clientIdOf('ehr', 'tenant-a');
      const assertion = await clientAssertion(clientId, `${gateway.baseUrl}/oauth/token`, { jti: randomUUID() });
      expect((await requestToken(gateway.baseUrl, clientId, 'system/Task.rs', assertion)).status).to.equal(200);
      const replay = await requestToken(gateway.baseUrl, clientId, 'system/Task.rs', assertion);
      expect(replay.status).to.equal(401);
      expect(replay.body.error_description).to.contain('used before');
    });

    it('refuses alg none, HS256 keyed with the public key, an expired token and another audience', async () => {
      const good = await accessToken(gateway.baseUrl, EHR_A);
      const [header, payload] = good.split('.') as [string, string];
      const claims = JSON.parse(new TextDecoder().decode(base64url.decode(payload)));
      const none = new UnsecuredJWT(claims).encode();
      const publicJwk = (await (await fetch(`${gateway.baseUrl}/oauth/jwks`)).json()) as { keys: unknown[] };
      const hs256 = await new SignJWT(claims)
        .setProtectedHeader({ alg: 'HS256', typ: 'at+jwt' })
        .sign(new TextEncoder().encode(JSON.stringify(publicJwk.keys[0])));
      const forge = (changes: Record<string, unknown>): string =>
        `${header}.${base64url.encode(JSON.stringify({ ...claims, ...changes }))}.${good.split('.')[2]}`;
      for (const [name, token] of [
        ['alg none', none],
        ['HS256 with the public key', hs256],
        ['expired', forge({ exp: claims.exp - 3600 })],
        ['another audience', forge({ aud: 'https://elsewhere.example/fhir' })],
        ['another tenant written in', forge({ tenant: 'tenant-b' })],
      ] as const) {
        const response = await fhirFetch(`${fhir}/Task`, { headers: { authorization: `Bearer ${token}` } });
        expect(response.status, name).to.equal(401);
        expect(response.headers.get('www-authenticate'), name).to.contain('invalid_token');
      }
    });

    it("keeps tenants apart: X-Tenant-Id names no other tenant, another tenant's referral is 404", async () => {
      const created = await fhirFetch(`${fhir}/ServiceRequest`, {
        as: EHR_A,
        body: withOrderNumber(readFixture('referrals/infliximab/service-request.json'), `TRUST-${randomUUID()}`),
      });
      expect(created.status).to.equal(201);
      const spoofed = await fhirFetch(`${fhir}/ServiceRequest/${created.body.id}`, { as: EHR_B, headers: { 'x-tenant-id': 'tenant-a' } });
      expect(spoofed.status).to.equal(400);
      expect(spoofed.body.issue[0].expression).to.deep.equal(['x-tenant-id']);
      const other = await fhirFetch(`${fhir}/ServiceRequest/${created.body.id}`, { as: EHR_B });
      expect(other.status).to.equal(404);
      expect(phiMarkers().filter((marker) => JSON.stringify(other.body).includes(marker))).to.deep.equal([]);
      const search = await fhirFetch(`${fhir}/ServiceRequest?_id=${created.body.id}`, { as: EHR_B });
      expect(search.body.entry ?? []).to.have.length(0);
      expect((await fhirFetch(`${fhir}/ServiceRequest/${created.body.id}`, { as: EHR_A })).status).to.equal(200);
    });

    it("refuses a directory rewrite by a hospital, directly and inside a transaction; the operator's goes through", async () => {
      const site = await fhirFetch(`${fhir}/Location?_count=1`, { as: { role: 'operator' }, headers: { 'x-tenant-id': 'network' } });
      const location = site.body.entry[0].resource;
      const closed = { ...location, status: 'inactive' };
      const direct = await fhirFetch(`${fhir}/Location/${location.id}`, { method: 'PUT', as: EHR_A, body: closed });
      expect(direct.status).to.equal(403);
      const asNetwork = await fhirFetch(`${fhir}/Location/${location.id}`, {
        method: 'PUT',
        as: EHR_A,
        headers: { 'x-tenant-id': 'network' },
        body: closed,
      });
      expect(asNetwork.status).to.equal(403);
      const inBundle = await fhirFetch(`${fhir}`, {
        as: EHR_A,
        body: {
          resourceType: 'Bundle',
          type: 'transaction',
          entry: [{ fullUrl: `urn:uuid:${randomUUID()}`, resource: closed, request: { method: 'PUT', url: `Location/${location.id}` } }],
        },
      });
      expect(inBundle.status).to.equal(403);
      expect(inBundle.body.issue[0].expression).to.deep.equal(['Bundle.entry[0].request']);
      const still = await fhirFetch(`${fhir}/Location/${location.id}`, { as: { role: 'operator' }, headers: { 'x-tenant-id': 'network' } });
      expect(still.body.status).to.equal(location.status);
      const byOperator = await fhirFetch(`${fhir}/Location/${location.id}`, {
        method: 'PUT',
        as: { role: 'operator' },
        headers: { 'x-tenant-id': 'network' },
        body: { ...still.body, description: 'checked by the operator' },
      });
      expect(byOperator.status).to.equal(200);
    });

    it("writes an operator's directory edit to the network's directory whatever tenant it would otherwise work in, and refuses one naming a hospital", async () => {
      const operator = { role: 'operator' as const };
      const HOSPITAL_A = { role: 'coordinator' as const, tenant: 'tenant-a' };
      const inDirectory = { 'x-tenant-id': 'network' };
      const location = (await fhirFetch(`${fhir}/Location?_count=1&_sort=_id`, { as: operator, headers: inDirectory })).body.entry[0]
        .resource;
      const copies = async (): Promise<number> =>
        (await fhirFetch(`${fhir}/Location?_id=${location.id}`, { as: { role: 'coordinator', tenant: 'default' } })).body.total;
      expect(await copies()).to.equal(1);

      // No X-Tenant-Id: the site is updated where it lives (200), not copied into the operator's default tenant (201).
      const updated = await fhirFetch(`${fhir}/Location/${location.id}`, {
        method: 'PUT',
        as: operator,
        body: { ...location, description: 'reviewed without naming a tenant' },
      });
      expect(updated.status, JSON.stringify(updated.body?.issue)).to.equal(200);
      expect(Number(updated.body.meta.versionId)).to.equal(Number(location.meta.versionId) + 1);
      const read = await fhirFetch(`${fhir}/Location/${location.id}`, { as: operator, headers: inDirectory });
      expect(read.body.description).to.equal('reviewed without naming a tenant');
      expect(await copies()).to.equal(1);

      // A create goes to the directory too: the directory's tenant reads it, and so does every hospital.
      const name = `Site FHIR endpoint ${randomUUID()}`;
      const endpoint = {
        resourceType: 'Endpoint',
        name,
        status: 'active',
        connectionType: { system: 'http://terminology.hl7.org/CodeSystem/endpoint-connection-type', code: 'hl7-fhir-rest' },
        payloadType: [{ text: 'FHIR R4' }],
        address: 'https://site.example/fhir',
      };
      const created = await fhirFetch(`${fhir}/Endpoint`, { as: operator, body: endpoint });
      expect(created.status, JSON.stringify(created.body?.issue)).to.equal(201);
      expect((await fhirFetch(`${fhir}/Endpoint/${created.body.id}`, { as: operator, headers: inDirectory })).status).to.equal(200);
      expect((await fhirFetch(`${fhir}/Endpoint/${created.body.id}`, { as: HOSPITAL_A })).status).to.equal(200);

      // Naming a hospital for a directory write is a contradiction: refused, with where the resource belongs, nothing stored.
      for (const [method, url, body] of [
        ['PUT', `${fhir}/Location/${location.id}`, { ...read.body, description: 'meant for a hospital' }],
        ['POST', `${fhir}/Endpoint`, endpoint],
      ] as const) {
        const refused = await fhirFetch(url, { method, as: operator, headers: { 'x-tenant-id': 'tenant-a' }, body });
        expect(refused.status, `${method} ${url}`).to.equal(400);
        expect(refused.body.resourceType).to.equal('OperationOutcome');
        expect(refused.body.issue[0].expression).to.deep.equal(['x-tenant-id']);
        expect(refused.body.issue[0].diagnostics).to.contain("network's directory (tenant 'network')");
      }
      const after = await fhirFetch(`${fhir}/Location/${location.id}`, { as: operator, headers: inDirectory });
      expect(after.body.meta.versionId).to.equal(read.body.meta.versionId);
      expect(await copies()).to.equal(1);
      expect((await fhirFetch(`${fhir}/Endpoint?name=${encodeURIComponent(name)}`, { as: HOSPITAL_A })).body.total).to.equal(1);
      // Reads still work in any tenant an operator names: only writes of the directory are its.
      expect(
        (await fhirFetch(`${fhir}/Location/${location.id}`, { as: operator, headers: { 'x-tenant-id': 'tenant-a' } })).status,
      ).to.equal(200);
    });

    it("shows a payer its own members' Coverage only: another payer's is not found, and left out of searches", async () => {
      const coverageOf = async (drug: string): Promise<string> => {
        const bundle = await fhirFetch(`${fhir}`, { as: EHR_A, body: readFixture(`referrals/${drug}/transaction-bundle.json`) });
        expect(bundle.status).to.equal(200);
        return String(bundle.body.entry.find((e: any) => e.response.location.startsWith('Coverage/')).response.location.split('/')[1]);
      };
      const cumberland = await coverageOf('infliximab');
      const sonoran = await coverageOf('vedolizumab');
      const payer = { role: 'payer' as const, payer: 'payer-cumberland' };
      const hospital = { 'x-tenant-id': 'tenant-a' };
      expect((await fhirFetch(`${fhir}/Coverage/${cumberland}`, { as: payer, headers: hospital })).status).to.equal(200);
      const other = await fhirFetch(`${fhir}/Coverage/${sonoran}`, { as: payer, headers: hospital });
      expect(other.status).to.equal(404);
      expect((await fhirFetch(`${fhir}/Coverage/${sonoran}/_history`, { as: payer, headers: hospital })).body.entry).to.deep.equal([]);
      const search = await fhirFetch(`${fhir}/Coverage`, { as: payer, headers: hospital });
      const ids = (search.body.entry ?? []).map((e: any) => e.resource.id);
      expect(ids).to.include(cumberland);
      expect(ids).to.not.include(sonoran);
      expect((await fhirFetch(`${fhir}/ServiceRequest`, { as: payer, headers: hospital })).status).to.equal(403);
    });

    it('lists dead letters to operators only, and to nobody anonymous', async () => {
      expect((await fhirFetch(`${gateway.baseUrl}/admin/outbox?status=dead`, { as: 'anonymous' })).status).to.equal(401);
      expect((await fhirFetch(`${gateway.baseUrl}/admin/outbox?status=dead`, { as: EHR_A })).status).to.equal(403);
      expect(
        (await fhirFetch(`${gateway.baseUrl}/admin/outbox?status=dead`, { as: { role: 'coordinator', tenant: 'tenant-a' } })).status,
      ).to.equal(403);
      expect((await fhirFetch(`${gateway.baseUrl}/admin/outbox?status=dead`, { as: { role: 'operator' } })).status).to.equal(200);
    });

    it('leaves health, metadata and discovery public, and tells nothing there', async () => {
      for (const path of ['/healthz', '/fhir/metadata', '/.well-known/smart-configuration', '/cds-services']) {
        expect((await fetch(`${gateway.baseUrl}${path}`)).status, path).to.equal(200);
      }
      expect(await (await fetch(`${gateway.baseUrl}/healthz`)).json()).to.deep.equal({ status: 'ok' });
    });
  });
}
