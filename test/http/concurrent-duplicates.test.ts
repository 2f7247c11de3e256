/**
 * Idempotency under load: 50 concurrent posts of one ServiceRequest make exactly one referral,
 * on both storage engines; the database's unique constraint decides, not a read-then-write.
 */
import { expect } from 'chai';
import { randomUUID } from 'node:crypto';
import { fhirFetch, startGateway, type Engine, type RunningGateway } from '../support/gateway.js';
import { readFixture, withOrderNumber } from '../support/fixtures.js';

for (const engine of ['sqlite', 'postgres'] as Engine[]) {
  describe(`concurrent duplicate referrals (${engine})`, function () {
    let gw: RunningGateway;
    before(async () => {
      gw = await startGateway({ engine });
    });
    after(async () => {
      await gw.stop();
    });

    it('turns 50 concurrent posts of one ServiceRequest into exactly one referral and one Task', async () => {
      const orderNumber = `concurrent-${randomUUID()}`;
      const serviceRequest = withOrderNumber(readFixture('referrals/infliximab/service-request.json'), orderNumber);
      const responses = await Promise.all(
        Array.from({ length: 50 }, () => fhirFetch(`${gw.baseUrl}/fhir/ServiceRequest`, { body: serviceRequest })),
      );
      const statuses = responses.map((r) => r.status);
      expect(statuses.filter((s) => s === 201)).to.have.length(1);
      expect(statuses.filter((s) => s === 200)).to.have.length(49);
      expect(new Set(responses.map((r) => r.body.id)).size).to.equal(1);

      const identifier = serviceRequest.identifier.find((i: any) => i.value === orderNumber);
      const stored = await fhirFetch(
        `${gw.baseUrl}/fhir/ServiceRequest?identifier=${encodeURIComponent(`${identifier.system}|${orderNumber}`)}`,
      );
      expect(stored.body.total).to.equal(1);
      const tasks = await fhirFetch(`${gw.baseUrl}/fhir/Task?focus=ServiceRequest/${responses[0]?.body.id}`);
      expect(tasks.body.total).to.equal(1);
    });

    it('turns 50 concurrent transaction Bundles of one order into one referral', async () => {
      const bundle = readFixture('referrals/ocrelizumab/transaction-bundle.json');
      const entry = bundle.entry.find((e: any) => e.resource.resourceType === 'ServiceRequest');
      const orderNumber = `concurrent-tx-${randomUUID()}`;
      entry.resource = withOrderNumber(entry.resource, orderNumber);
      delete entry.request.ifNoneExist;
      const responses = await Promise.all(Array.from({ length: 50 }, () => fhirFetch(`${gw.baseUrl}/fhir`, { body: bundle })));
      expect(responses.map((r) => r.status).filter((s) => s !== 200)).to.deep.equal([]);
      const index = bundle.entry.indexOf(entry);
      const statuses = responses.map((r) => r.body.entry[index].response.status);
      expect(statuses.filter((s) => s === '201 Created')).to.have.length(1);
      expect(new Set(responses.map((r) => r.body.entry[index].resource.id)).size).to.equal(1);
      // The other entries are conditional creates: their locks make one Patient, not fifty.
      const patientEntry = bundle.entry.find((e: any) => e.resource.resourceType === 'Patient');
      const patients = await fhirFetch(`${gw.baseUrl}/fhir/Patient?${patientEntry.request.ifNoneExist}`);
      expect(patients.body.total).to.equal(1);
    });

    it('creates one resource from 50 concurrent conditional creates with the same If-None-Exist', async () => {
      const identifier = `urn:oid:2.16.840.1.113883.3.9999|MRN-${randomUUID()}`;
      const [system, value] = identifier.split('|');
      const responses = await Promise.all(
        Array.from({ length: 50 }, () =>
          fhirFetch(`${gw.baseUrl}/fhir/Patient`, {
            body: { resourceType: 'Patient', identifier: [{ system, value }] },
            headers: { 'if-none-exist': `identifier=${identifier}` },
          }),
        ),
      );
      expect(responses.filter((r) => r.status === 201)).to.have.length(1);
      expect(responses.filter((r) => r.status === 200)).to.have.length(49);
      expect(new Set(responses.map((r) => r.body.id)).size).to.equal(1);
    });
  });
}
