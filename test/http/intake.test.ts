/**
 * The FHIR API end to end over real HTTP on 127.0.0.1: a gateway with the embedded store, the demo
 * directory and catalog, and the fixtures an EHR would send.
 */
import { expect } from 'chai';
import { randomUUID } from 'node:crypto';
import { fhirFetch, gatewayFetch, startGateway, type RunningGateway } from '../support/gateway.js';
import { readFixture, referralFixtureDrugs, withOrderNumber } from '../support/fixtures.js';

const REFERRAL_PROFILE = 'https://fhir.infusion-gateway.example/StructureDefinition/infusion-referral';

describe('FHIR API: referral intake', function () {
  let gw: RunningGateway;
  let fhir: string;

  before(async () => {
    gw = await startGateway();
    fhir = `${gw.baseUrl}/fhir`;
  });
  after(async () => {
    await gw.stop();
  });

  async function taskFor(serviceRequestId: string, tenant?: string): Promise<any[]> {
    const search = await fhirFetch(
      `${fhir}/Task?focus=ServiceRequest/${serviceRequestId}`,
      tenant ? { headers: { 'x-tenant-id': tenant } } : {},
    );
    expect(search.status).to.equal(200);
    return (search.body.entry ?? []).filter((e: any) => e.search?.mode === 'match').map((e: any) => e.resource);
  }

  describe('health', () => {
    it('answers /healthz and /readyz while the database is reachable', async () => {
      expect((await fhirFetch(`${gw.baseUrl}/healthz`)).status).to.equal(200);
      const ready = await fhirFetch(`${gw.baseUrl}/readyz`);
      expect(ready.status).to.equal(200);
      expect(ready.body.status).to.equal('ready');
    });
  });

  describe('GET /fhir/metadata', () => {
    it('describes what the server really serves: referral create with its profile, search parameters, transactions and $validate', async () => {
      const { status, body } = await fhirFetch(`${fhir}/metadata`);
      expect(status).to.equal(200);
      expect(body.resourceType).to.equal('CapabilityStatement');
      expect(body.fhirVersion).to.equal('4.0.1');
      const rest = body.rest[0];
      expect(rest.interaction.map((i: any) => i.code)).to.have.members(['transaction', 'batch']);
      expect(rest.operation.map((o: any) => o.name)).to.include('validate');
      const serviceRequest = rest.resource.find((r: any) => r.type === 'ServiceRequest');
      expect(serviceRequest.supportedProfile).to.include(REFERRAL_PROFILE);
      expect(serviceRequest.interaction.map((i: any) => i.code)).to.include.members(['create', 'read', 'search-type']);
      expect(serviceRequest.interaction.map((i: any) => i.code)).not.to.include('update');
      const task = rest.resource.find((r: any) => r.type === 'Task');
      expect(task.searchParam.map((p: any) => p.name)).to.include.members(['focus', 'business-status', '_id']);
      expect(task.interaction.map((i: any) => i.code)).not.to.include('create');
      for (const type of ['Appointment', 'Coverage', 'Patient', 'Location', 'HealthcareService', 'Organization', 'InsurancePlan']) {
        expect(
          rest.resource.map((r: any) => r.type),
          type,
        ).to.include(type);
      }
    });

    it('serves the infusion-referral profile it names', async () => {
      const { status, body } = await fhirFetch(`${fhir}/StructureDefinition/infusion-referral`);
      expect(status).to.equal(200);
      expect(body.url).to.equal(REFERRAL_PROFILE);
      expect(body.type).to.equal('ServiceRequest');
      const codeSystem = await fhirFetch(`${fhir}/CodeSystem/referral-status`);
      expect(codeSystem.status).to.equal(200);
      expect(codeSystem.body.concept.map((c: any) => c.code)).to.include.members([
        'received',
        'rejected',
        'misroute-suspected',
        'scheduled',
      ]);
    });
  });

  describe('POST /fhir/ServiceRequest', () => {
    for (const drug of referralFixtureDrugs()) {
      it(`takes the ${drug} referral: 201 with Location and ETag, and, its site checked, a Task at verifying-coverage`, async () => {
        const serviceRequest = withOrderNumber(readFixture(`referrals/${drug}/service-request.json`), `single-${drug}-${randomUUID()}`);
        const created = await fhirFetch(`${fhir}/ServiceRequest`, { body: serviceRequest });
        expect(created.status, JSON.stringify(created.body?.issue)).to.equal(201);
        expect(created.body.resourceType).to.equal('ServiceRequest');
        expect(created.headers.get('location')).to.equal(`${fhir}/ServiceRequest/${created.body.id}/_history/1`);
        expect(created.headers.get('etag')).to.equal('W/"1"');
        expect(created.headers.get('content-type')).to.match(/^application\/fhir\+json/);
        const tasks = await taskFor(created.body.id);
        expect(tasks).to.have.length(1);
        expect(tasks[0].status).to.equal('in-progress');
        expect(tasks[0].businessStatus.coding[0].code).to.equal('verifying-coverage');
        expect(tasks[0].code.coding[0].code).to.equal('fulfill');
        // The order's patient is contained in the ServiceRequest, which the Task cannot point into:
        // the Task names them by their identifier (a logical reference), and no reference dangles.
        const contained = serviceRequest.contained.find((c: any) => `#${c.id}` === serviceRequest.subject.reference);
        expect(tasks[0].for.type).to.equal('Patient');
        expect(contained.identifier.map((i: any) => ({ system: i.system, value: i.value }))).to.deep.include(tasks[0].for.identifier);
        expect(JSON.stringify(tasks[0])).not.to.match(/"reference":"#/);
      });
    }

    it('answers the same order number again with the original and keeps one referral', async () => {
      const serviceRequest = withOrderNumber(readFixture('referrals/vedolizumab/service-request.json'), `dup-${randomUUID()}`);
      const first = await fhirFetch(`${fhir}/ServiceRequest`, { body: serviceRequest });
      const second = await fhirFetch(`${fhir}/ServiceRequest`, { body: serviceRequest });
      expect(first.status).to.equal(201);
      expect(second.status).to.equal(200);
      expect(second.body.id).to.equal(first.body.id);
      expect(await taskFor(first.body.id)).to.have.length(1);
    });

    it('honours If-None-Exist: a match is returned with 200 and nothing is created', async () => {
      const serviceRequest = withOrderNumber(readFixture('referrals/infliximab/service-request.json'), `ine-${randomUUID()}`);
      const first = await fhirFetch(`${fhir}/ServiceRequest`, { body: serviceRequest });
      const identifier = first.body.identifier.find((i: any) => i.type?.coding?.[0]?.code === 'PLAC');
      const second = await fhirFetch(`${fhir}/ServiceRequest`, {
        body: withOrderNumber(serviceRequest, `other-${randomUUID()}`),
        headers: { 'if-none-exist': `identifier=${identifier.system}|${identifier.value}` },
      });
      expect(second.status).to.equal(200);
      expect(second.body.id).to.equal(first.body.id);
    });

    it('refuses an If-None-Exist with an unknown search parameter instead of creating a duplicate', async () => {
      const serviceRequest = withOrderNumber(readFixture('referrals/infliximab/service-request.json'), `ine-bad-${randomUUID()}`);
      const response = await fhirFetch(`${fhir}/ServiceRequest`, { body: serviceRequest, headers: { 'if-none-exist': 'identifer=x|y' } });
      expect(response.status).to.equal(400);
      expect(response.body.issue[0].expression).to.deep.equal(['If-None-Exist']);
    });

    it('rejects a valid order for a drug outside the catalog: stored, and its Task says why', async () => {
      const serviceRequest = readFixture('referrals/misc/not-in-catalog-rituximab.service-request.json');
      const created = await fhirFetch(`${fhir}/ServiceRequest`, {
        body: withOrderNumber(serviceRequest, `rej-${randomUUID()}`),
        headers: { prefer: 'return=OperationOutcome' },
      });
      expect(created.status).to.equal(201);
      expect(created.body.resourceType).to.equal('OperationOutcome');
      expect(created.body.issue.some((i: any) => i.code === 'business-rule' && i.expression?.[0] === 'ServiceRequest.code')).to.equal(true);
      const taskId = /Task\/([A-Za-z0-9-]+)/.exec(created.body.issue.map((i: any) => i.diagnostics).join(' '))?.[1];
      const task = await fhirFetch(`${fhir}/Task/${taskId}`);
      expect(task.body.status).to.equal('rejected');
      expect(task.body.businessStatus.coding[0].code).to.equal('rejected');
      expect(task.body.statusReason.coding[0].code).to.equal('drug-not-in-catalog');
    });

    it('takes a referral that also claims a profile this server does not know, with a warning', async () => {
      const serviceRequest = withOrderNumber(readFixture('referrals/infliximab/service-request.json'), `claims-${randomUUID()}`);
      serviceRequest.meta = { profile: ['http://hl7.org/fhir/us/core/StructureDefinition/us-core-servicerequest'] };
      const created = await fhirFetch(`${fhir}/ServiceRequest`, { body: serviceRequest, headers: { prefer: 'return=OperationOutcome' } });
      expect(created.status).to.equal(201);
      const warnings = created.body.issue.filter((i: any) => i.severity === 'warning');
      expect(warnings.map((i: any) => i.diagnostics).join(' ')).to.contain('us-core-servicerequest');
    });

    it('answers Prefer: return=minimal with an empty body and the headers', async () => {
      const serviceRequest = withOrderNumber(readFixture('referrals/ocrelizumab/service-request.json'), `min-${randomUUID()}`);
      const created = await fhirFetch(`${fhir}/ServiceRequest`, { body: serviceRequest, headers: { prefer: 'return=minimal' } });
      expect(created.status).to.equal(201);
      expect(created.body).to.equal(undefined);
      expect(created.headers.get('location')).to.match(/\/fhir\/ServiceRequest\/[^/]+\/_history\/1$/);
    });

    it('answers application/json to a client that asks for it', async () => {
      const serviceRequest = withOrderNumber(readFixture('referrals/ocrelizumab/service-request.json'), `json-${randomUUID()}`);
      const created = await fhirFetch(`${fhir}/ServiceRequest?_format=application/json`, {
        body: serviceRequest,
        headers: { 'content-type': 'application/json' },
      });
      expect(created.status).to.equal(201);
      expect(created.headers.get('content-type')).to.match(/^application\/json/);
    });
  });

  describe('POST /fhir with a transaction Bundle', () => {
    for (const drug of referralFixtureDrugs()) {
      it(`stores the ${drug} bundle atomically, links the entries, and tracks the referral`, async () => {
        const bundle = readFixture(`referrals/${drug}/transaction-bundle.json`);
        const srEntry = bundle.entry.find((e: any) => e.resource.resourceType === 'ServiceRequest');
        const orderNumber = `tx-${drug}-${randomUUID()}`;
        srEntry.resource = withOrderNumber(srEntry.resource, orderNumber);
        const identifier = srEntry.resource.identifier.find((i: any) => i.value === orderNumber);
        srEntry.request.ifNoneExist = `identifier=${identifier.system}|${orderNumber}`;
        const response = await fhirFetch(fhir, { body: bundle });
        expect(response.status, JSON.stringify(response.body?.issue)).to.equal(200);
        expect(response.body.type).to.equal('transaction-response');
        expect(response.body.entry).to.have.length(bundle.entry.length);
        const index = bundle.entry.indexOf(srEntry);
        const srResponse = response.body.entry[index];
        expect(srResponse.response.status).to.equal('201 Created');
        const serviceRequest = srResponse.resource;
        // urn:uuid references now point at the stored resources
        expect(serviceRequest.subject.reference).to.match(/^Patient\/[A-Za-z0-9-]+$/);
        const patient = await fhirFetch(`${fhir}/${serviceRequest.subject.reference}`);
        expect(patient.status).to.equal(200);
        const tasks = await taskFor(serviceRequest.id);
        expect(tasks).to.have.length(1);
        expect(tasks[0].businessStatus.coding[0].code).to.equal('verifying-coverage');
        expect(srResponse.response.outcome.issue[0].diagnostics).to.contain(`Task/${tasks[0].id}`);

        const again = await fhirFetch(fhir, { body: bundle });
        expect(again.status).to.equal(200);
        expect(again.body.entry[index].response.status).to.equal('200 OK');
        expect(again.body.entry[index].resource.id).to.equal(serviceRequest.id);
        expect(await taskFor(serviceRequest.id)).to.have.length(1);
      });
    }

    it('rolls a transaction back when a later entry is refused: a stale If-Match answers 412 and nothing of the Bundle is stored', async () => {
      const family = `Rollback-${randomUUID()}`;
      const existing = await fhirFetch(`${fhir}/Patient`, { body: { resourceType: 'Patient', name: [{ family: `${family}-kept` }] } });
      expect(existing.status).to.equal(201);
      const response = await fhirFetch(fhir, {
        body: {
          resourceType: 'Bundle',
          type: 'transaction',
          entry: [
            { resource: { resourceType: 'Patient', name: [{ family }] }, request: { method: 'POST', url: 'Patient' } },
            // The same content as stored, under a version that is not current: refused (https://hl7.org/fhir/R4/http.html#concurrency).
            { resource: existing.body, request: { method: 'PUT', url: `Patient/${existing.body.id}`, ifMatch: 'W/"9"' } },
          ],
        },
      });
      expect(response.status).to.equal(412);
      expect(response.body.resourceType).to.equal('OperationOutcome');
      expect(response.body.issue[0].expression).to.deep.equal(['If-Match']);
      const search = await fhirFetch(`${fhir}/Patient?family=${family}&_total=accurate`);
      expect(search.status).to.equal(200);
      expect(search.body.total).to.equal(1); // the Patient stored before, not the Bundle's
      expect(search.body.entry.map((e: any) => e.resource.id)).to.deep.equal([existing.body.id]);
    });

    it('answers a broken batch entry in its own response and still takes the others', async () => {
      const good = withOrderNumber(readFixture('referrals/infliximab/service-request.json'), `batch-good-${randomUUID()}`);
      const broken = withOrderNumber(readFixture('referrals/infliximab/service-request.json'), `batch-bad-${randomUUID()}`);
      broken.subject = 'Patient/123';
      const response = await fhirFetch(fhir, {
        body: {
          resourceType: 'Bundle',
          type: 'batch',
          entry: [
            { resource: broken, request: { method: 'POST', url: 'ServiceRequest' } },
            { resource: good, request: { method: 'POST', url: 'ServiceRequest' } },
          ],
        },
      });
      expect(response.status).to.equal(200);
      expect(response.body.type).to.equal('batch-response');
      const [first, second] = response.body.entry;
      expect(first.response.status).to.equal('400');
      expect(first.response.outcome.issue[0].expression).to.deep.equal(['Bundle.entry[0].resource.subject']);
      expect(second.response.status).to.equal('201 Created');
    });

    it('answers a batch entry by entry: two referrals, two 201s', async () => {
      const batch = readFixture('referrals/misc/batch-two-referrals.bundle.json');
      for (const entry of batch.entry) {
        if (entry.resource.resourceType === 'ServiceRequest') entry.resource = withOrderNumber(entry.resource, `batch-${randomUUID()}`);
      }
      const response = await fhirFetch(fhir, { body: batch });
      expect(response.status).to.equal(200);
      expect(response.body.type).to.equal('batch-response');
      const statuses = response.body.entry.map((e: any) => e.response.status);
      expect(statuses.filter((s: string) => s === '201 Created').length).to.be.at.least(2);
    });
  });

  describe('read, versions and updates', () => {
    it('reads with ETag and Last-Modified, answers 304 to a matching If-None-Match, and reads old versions', async () => {
      const patient = { resourceType: 'Patient', active: true, gender: 'female' };
      const created = await fhirFetch(`${fhir}/Patient`, { body: patient });
      expect(created.status).to.equal(201);
      const read = await fhirFetch(`${fhir}/Patient/${created.body.id}`);
      expect(read.status).to.equal(200);
      expect(read.headers.get('etag')).to.equal('W/"1"');
      expect(new Date(read.headers.get('last-modified') as string).getTime()).to.be.greaterThan(0);
      const notModified = await gatewayFetch(`${fhir}/Patient/${created.body.id}`, { headers: { 'if-none-match': 'W/"1"' } });
      expect(notModified.status).to.equal(304);

      const updated = await fhirFetch(`${fhir}/Patient/${created.body.id}`, {
        method: 'PUT',
        body: { ...read.body, gender: 'male' },
        headers: { 'if-match': 'W/"1"' },
      });
      expect(updated.status).to.equal(200);
      expect(updated.headers.get('etag')).to.equal('W/"2"');
      const stale = await fhirFetch(`${fhir}/Patient/${created.body.id}`, {
        method: 'PUT',
        body: { ...read.body, gender: 'other' },
        headers: { 'if-match': 'W/"1"' },
      });
      expect(stale.status).to.equal(412);
      expect(stale.body.resourceType).to.equal('OperationOutcome');
      const version1 = await fhirFetch(`${fhir}/Patient/${created.body.id}/_history/1`);
      expect(version1.body.gender).to.equal('female');
      const history = await fhirFetch(`${fhir}/Patient/${created.body.id}/_history`);
      expect(history.body.total).to.equal(2);
    });

    it('refuses an update whose body id differs from the URL', async () => {
      const response = await fhirFetch(`${fhir}/Patient/abc`, { method: 'PUT', body: { resourceType: 'Patient', id: 'xyz' } });
      expect(response.status).to.equal(400);
      expect(response.body.issue[0].expression).to.deep.equal(['Patient.id']);
    });

    it('does not let clients write the Tasks that track referrals', async () => {
      const response = await fhirFetch(`${fhir}/Task`, { body: { resourceType: 'Task', status: 'requested', intent: 'order' } });
      expect(response.status).to.equal(405);
      expect(response.body.resourceType).to.equal('OperationOutcome');
    });

    it('answers 404 with an OperationOutcome for unknown ids and resource types', async () => {
      const unknownId = await fhirFetch(`${fhir}/ServiceRequest/does-not-exist`);
      expect(unknownId.status).to.equal(404);
      expect(unknownId.body.resourceType).to.equal('OperationOutcome');
      const unknownType = await fhirFetch(`${fhir}/Spaceship/1`);
      expect(unknownType.status).to.equal(404);
    });
  });

  describe('search', () => {
    it('pages with _count and Bundle links that walk every match exactly once', async () => {
      const family = `Pager${randomUUID().slice(0, 8)}`;
      for (let i = 0; i < 23; i += 1) {
        const created = await fhirFetch(`${fhir}/Patient`, { body: { resourceType: 'Patient', name: [{ family }] } });
        expect(created.status).to.equal(201);
      }
      const seen: string[] = [];
      let url: string | undefined = `${fhir}/Patient?family=${family}&_count=10&_total=accurate`;
      let pages = 0;
      while (url) {
        const page = await fhirFetch(url);
        expect(page.status).to.equal(200);
        // _total=accurate is kept in the next links, so every page counts.
        expect(page.body.total).to.equal(23);
        if (pages > 0)
          expect(new URL(page.body.link.find((l: any) => l.relation === 'self').url).searchParams.get('_cursor')).to.be.a('string');
        seen.push(...page.body.entry.map((e: any) => e.resource.id));
        url = page.body.link.find((l: any) => l.relation === 'next')?.url;
        pages += 1;
      }
      expect(pages).to.equal(3);
      expect(seen).to.have.length(23);
      expect(new Set(seen).size).to.equal(23);
    });

    it('reports an unknown search parameter as a warning, or refuses it under Prefer: handling=strict', async () => {
      const lenient = await fhirFetch(`${fhir}/Patient?colour=blue`);
      expect(lenient.status).to.equal(200);
      const outcome = lenient.body.entry.find((e: any) => e.search?.mode === 'outcome');
      expect(outcome.resource.issue[0].severity).to.equal('warning');
      const strict = await fhirFetch(`${fhir}/Patient?colour=blue`, { headers: { prefer: 'handling=strict' } });
      expect(strict.status).to.equal(400);
      expect(strict.body.issue[0].expression).to.deep.equal(['colour']);
    });

    it('gives no total on a page that is not the last unless asked (_total=none by default)', async () => {
      const paged = await fhirFetch(`${fhir}/Location?_count=1`);
      expect(paged.status).to.equal(200);
      expect(paged.body.total).to.equal(undefined);
      expect(paged.body.link.find((l: any) => l.relation === 'next').url).to.contain('_cursor=');
      const counted = await fhirFetch(`${fhir}/Location?_count=1&_total=estimate`);
      expect(counted.body.total).to.be.greaterThan(1);
      const refused = await fhirFetch(`${fhir}/Location?_total=some`);
      expect(refused.status).to.equal(400);
      expect(refused.body.issue[0].expression).to.deep.equal(['_total']);
    });

    it('refuses a search repeated 200 times, and a deep _offset, with 400 naming the limit', async () => {
      const repeated = Array.from({ length: 200 }, (_, i) => `name=${i}`).join('&');
      const many = await fhirFetch(`${fhir}/Patient?${repeated}`);
      expect(many.status).to.equal(400);
      expect(many.body.resourceType).to.equal('OperationOutcome');
      expect(many.body.issue.map((i: any) => i.code)).to.deep.equal(['too-costly']);
      expect(many.body.issue[0].diagnostics).to.contain('at most 20 search parameters');
      const deep = await fhirFetch(`${fhir}/Patient?_offset=1e20`);
      expect(deep.status).to.equal(400);
      expect(deep.body.issue[0].expression).to.deep.equal(['_offset']);
      expect(deep.body.issue[0].diagnostics).to.contain('at most 1000');
      const badCursor = await fhirFetch(`${fhir}/Patient?_cursor=bm90LWEtY3Vyc29y`);
      expect(badCursor.status).to.equal(400);
      expect(badCursor.body.issue[0].expression).to.deep.equal(['_cursor']);
    });

    it('finds the demo directory: sites, services, payers and plans', async () => {
      for (const type of ['Location', 'HealthcareService', 'Organization', 'InsurancePlan']) {
        const search = await fhirFetch(`${fhir}/${type}?_count=1&_total=accurate`);
        expect(search.status).to.equal(200);
        expect(search.body.total, type).to.be.greaterThan(0);
      }
      const sites = await fhirFetch(`${fhir}/Location?_count=100`);
      expect(sites.body.total).to.be.at.least(12);
    });
  });

  describe('tenants', () => {
    it("keeps each sender's referrals to itself while the directory is shared", async () => {
      const serviceRequest = withOrderNumber(readFixture('referrals/infliximab/service-request.json'), `tenant-${randomUUID()}`);
      const created = await fhirFetch(`${fhir}/ServiceRequest`, { body: serviceRequest, headers: { 'x-tenant-id': 'ehr-a' } });
      expect(created.status).to.equal(201);
      const asOther = await fhirFetch(`${fhir}/ServiceRequest/${created.body.id}`, { headers: { 'x-tenant-id': 'ehr-b' } });
      expect(asOther.status).to.equal(404);
      expect(await taskFor(created.body.id, 'ehr-b')).to.have.length(0);
      expect(await taskFor(created.body.id, 'ehr-a')).to.have.length(1);
      const location = serviceRequest.locationReference[0].reference;
      const siteForB = await fhirFetch(`${fhir}/${location}`, { headers: { 'x-tenant-id': 'ehr-b' } });
      expect(siteForB.status).to.equal(200);
      // The same order number from another sender is another referral.
      const otherSender = await fhirFetch(`${fhir}/ServiceRequest`, { body: serviceRequest, headers: { 'x-tenant-id': 'ehr-b' } });
      expect(otherSender.status).to.equal(201);
      expect(otherSender.body.id).not.to.equal(created.body.id);
    });
  });

  describe('$validate', () => {
    it('validates a good referral without storing it', async () => {
      const serviceRequest = withOrderNumber(readFixture('referrals/infliximab/service-request.json'), `val-${randomUUID()}`);
      const response = await fhirFetch(`${fhir}/ServiceRequest/$validate`, { body: serviceRequest });
      expect(response.status).to.equal(200);
      expect(response.body.resourceType).to.equal('OperationOutcome');
      expect(response.body.issue.filter((i: any) => i.severity === 'error')).to.deep.equal([]);
      const search = await fhirFetch(
        `${fhir}/ServiceRequest?identifier=${encodeURIComponent(serviceRequest.identifier.find((i: any) => i.value.startsWith('val-')).value)}`,
      );
      expect(search.body.total).to.equal(0);
    });

    it('lists every problem of a bad referral, each with its FHIRPath, from both $validate endpoints', async () => {
      const serviceRequest = readFixture('referrals/infliximab/service-request.json');
      delete serviceRequest.requester;
      delete serviceRequest.insurance;
      const typed = await fhirFetch(`${fhir}/ServiceRequest/$validate`, { body: serviceRequest });
      expect(typed.status).to.equal(200);
      const expressions = typed.body.issue.filter((i: any) => i.severity === 'error').map((i: any) => i.expression?.[0]);
      expect(expressions).to.include.members(['ServiceRequest.requester', 'ServiceRequest.insurance']);
      const generic = await fhirFetch(`${fhir}/$validate?profile=${encodeURIComponent(REFERRAL_PROFILE)}`, {
        body: { resourceType: 'Parameters', parameter: [{ name: 'resource', resource: serviceRequest }] },
      });
      expect(generic.status).to.equal(200);
      expect(generic.body.issue.filter((i: any) => i.severity === 'error').map((i: any) => i.expression?.[0])).to.include.members([
        'ServiceRequest.requester',
        'ServiceRequest.insurance',
      ]);
    });

    it('validates any resource against base R4 at /fhir/$validate', async () => {
      const response = await fhirFetch(`${fhir}/$validate`, {
        body: { resourceType: 'Patient', gender: 'FEMALE', birthDate: '1980-02-30x' },
      });
      expect(response.status).to.equal(200);
      const expressions = response.body.issue.map((i: any) => i.expression?.[0]);
      expect(expressions).to.include.members(['Patient.gender', 'Patient.birthDate']);
    });
  });

  describe('the edge: media types, sizes, malformed bodies', () => {
    it('answers 415 to XML and says XML is not supported', async () => {
      const response = await fhirFetch(`${fhir}/ServiceRequest`, {
        body: '<ServiceRequest xmlns="http://hl7.org/fhir"/>',
        headers: { 'content-type': 'application/fhir+xml' },
      });
      expect(response.status).to.equal(415);
      expect(response.body.issue[0].diagnostics).to.match(/XML is not supported/);
    });

    it('answers 406 when the client accepts only XML, or asks _format=xml', async () => {
      const accept = await fhirFetch(`${fhir}/metadata`, { headers: { accept: 'application/fhir+xml' } });
      expect(accept.status).to.equal(406);
      expect(accept.body.resourceType).to.equal('OperationOutcome');
      const format = await fhirFetch(`${fhir}/metadata?_format=xml`);
      expect(format.status).to.equal(406);
    });

    it('answers 400 to malformed JSON without echoing the body', async () => {
      const response = await fhirFetch(`${fhir}/ServiceRequest`, {
        body: '{"resourceType": "ServiceRequest", "subject": {"reference": "Patient/Quill',
      });
      expect(response.status).to.equal(400);
      expect(response.body.issue[0].code).to.equal('structure');
      expect(JSON.stringify(response.body)).not.to.contain('Quill');
    });

    it('answers 400 to JSON nested deeper than the limit', async () => {
      let deep: any = { resourceType: 'Basic' };
      for (let i = 0; i < 200; i += 1) deep = { extension: [deep] };
      const response = await fhirFetch(`${fhir}/$validate`, { body: deep });
      expect(response.status).to.equal(400);
      expect(response.body.issue[0].diagnostics).to.match(/deeper than/);
    });

    it('answers 405 to DELETE with an OperationOutcome', async () => {
      const response = await fhirFetch(`${fhir}/Patient/abc`, { method: 'DELETE' });
      expect(response.status).to.equal(405);
      expect(response.body.resourceType).to.equal('OperationOutcome');
    });
  });
});

describe('FHIR API: body size limit', () => {
  let gw: RunningGateway;
  before(async () => {
    gw = await startGateway({ env: { BODY_LIMIT: '2kb', DIRECTORY_BUNDLE: 'none' } });
  });
  after(async () => {
    await gw.stop();
  });

  it('answers 413 with an OperationOutcome past BODY_LIMIT', async () => {
    const response = await fhirFetch(`${gw.baseUrl}/fhir/Patient`, {
      body: {
        resourceType: 'Patient',
        text: { status: 'generated', div: `<div xmlns="http://www.w3.org/1999/xhtml">${'x'.repeat(4096)}</div>` },
      },
    });
    expect(response.status).to.equal(413);
    expect(response.body.issue[0].code).to.equal('too-long');
  });
});

describe('readiness', () => {
  it('answers /readyz with 503 and an OperationOutcome once the database is gone', async () => {
    const gw = await startGateway({ env: { DIRECTORY_BUNDLE: 'none' } });
    try {
      await gw.gateway.close();
      const response = await fhirFetch(`${gw.baseUrl}/readyz`);
      expect(response.status).to.equal(503);
      expect(response.body.resourceType).to.equal('OperationOutcome');
      expect((await fhirFetch(`${gw.baseUrl}/healthz`)).status).to.equal(200);
    } finally {
      await gw.stop();
    }
  });
});
