/**
 * Write-back through the outbox, over real HTTP to a real FHIR server (the stand-in EHR, Medplum's
 * FhirRouter) that the tests break on purpose.
 */
import { expect } from 'chai';
import { randomUUID } from 'node:crypto';
import { fhirFetch, startGateway, waitUntil, type Engine, type RunningGateway } from '../support/gateway.js';
import { readFixture, withOrderNumber } from '../support/fixtures.js';
import { startStandInEhr, type StandInEhr } from '../../src/sandbox/stand-in-ehr.js';
import { stopEhrCheckingWrittenReferences } from '../support/written-references.js';
import { outboxTotal, referralTasksInEhr } from './ehr-helpers.js';

const FAST_OUTBOX = {
  OUTBOX_POLL_MS: '25',
  OUTBOX_RETRY_BASE_MS: '20',
  OUTBOX_RETRY_MAX_MS: '300',
  OUTBOX_LEASE_MS: '5000',
  // Short delays for a fast test, so many attempts: only a permanent refusal may dead-letter here.
  OUTBOX_MAX_ATTEMPTS: '10000',
  EHR_REQUEST_TIMEOUT_MS: '2000',
  EHR_POLL: 'false',
};

for (const engine of ['sqlite', 'postgres'] as Engine[]) {
  describe(`write-back to the EHR through the outbox (${engine})`, function () {
    this.timeout(120_000);
    let ehr: StandInEhr;
    let gw: RunningGateway;

    beforeEach(async () => {
      ehr = await startStandInEhr();
      gw = await startGateway({ engine, background: true, env: { ...FAST_OUTBOX, EHR_FHIR_BASE_URL: ehr.baseUrl } });
    });
    afterEach(async () => {
      await gw.stop();
      // Everything written back resolves at the EHR, and the validating EHR refused none of it.
      await stopEhrCheckingWrittenReferences(ehr);
    });

    it("writes each referral's Task to the EHR once, pointed at the EHR's own order", async () => {
      const serviceRequest = withOrderNumber(readFixture('referrals/infliximab/service-request.json'), `wb-${randomUUID()}`);
      const created = await fhirFetch(`${gw.baseUrl}/fhir/ServiceRequest`, { body: serviceRequest });
      expect(created.status).to.equal(201);
      await waitUntil('the Task reached the EHR', async () => (await referralTasksInEhr(ehr.baseUrl)).size === 1);
      const [tasks] = [...(await referralTasksInEhr(ehr.baseUrl)).values()];
      expect(tasks).to.have.length(1);
      const task = tasks?.[0];
      expect(task.businessStatus.coding[0].code).to.equal('verifying-coverage');
      const order = serviceRequest.identifier.find((i: any) => i.type?.coding?.[0]?.code === 'PLAC');
      expect(task.focus).to.deep.equal({ type: 'ServiceRequest', identifier: { system: order.system, value: order.value } });
      expect(task.for.identifier.value).to.be.a('string');
    });

    it('delivers all 200 write-backs exactly once after the EHR was down while they were made', async () => {
      ehr.failWith('refuse');
      const template = readFixture('referrals/vedolizumab/service-request.json');
      for (let i = 0; i < 200; i += 1) {
        const response = await fhirFetch(`${gw.baseUrl}/fhir/ServiceRequest`, {
          body: withOrderNumber(template, `down-${i}-${randomUUID()}`),
          headers: { prefer: 'return=minimal' },
        });
        expect(response.status).to.equal(201);
      }
      await waitUntil(
        'deliveries have been failing',
        async () => (await fhirFetch(`${gw.baseUrl}/admin/outbox?status=pending&_count=1`)).body.messages[0]?.attempts >= 2,
      );
      const reached = ehr.requests().filter((r) => r.status !== 0);
      expect(
        await outboxTotal(gw.baseUrl, 'delivered'),
        `requests the EHR answered while down: ${JSON.stringify(reached.slice(0, 5))}`,
      ).to.equal(0);
      const dead = await fhirFetch(`${gw.baseUrl}/admin/outbox?status=dead&_count=2`);
      expect(dead.body.total, `dead while the EHR was down: ${JSON.stringify(dead.body.messages)}`).to.equal(0);

      ehr.failWith(undefined);
      await waitUntil('every message is delivered', async () => (await outboxTotal(gw.baseUrl, 'delivered')) === 200, 60_000, 100);
      const tasks = await referralTasksInEhr(ehr.baseUrl);
      expect(tasks.size).to.equal(200);
      expect([...tasks.values()].every((copies) => copies.length === 1)).to.equal(true);
    });

    it('retries through 500s and 429s without a duplicate', async () => {
      ehr.failNext(3, 'error-500');
      const first = await fhirFetch(`${gw.baseUrl}/fhir/ServiceRequest`, {
        body: withOrderNumber(readFixture('referrals/ocrelizumab/service-request.json'), `r500-${randomUUID()}`),
      });
      expect(first.status).to.equal(201);
      await waitUntil('the first is delivered', async () => (await outboxTotal(gw.baseUrl, 'delivered')) === 1);
      ehr.failNext(2, 'throttle-429');
      const second = await fhirFetch(`${gw.baseUrl}/fhir/ServiceRequest`, {
        body: withOrderNumber(readFixture('referrals/ocrelizumab/service-request.json'), `r429-${randomUUID()}`),
      });
      expect(second.status).to.equal(201);
      await waitUntil('the second is delivered', async () => (await outboxTotal(gw.baseUrl, 'delivered')) === 2, 30_000);
      const tasks = await referralTasksInEhr(ehr.baseUrl);
      expect(tasks.size).to.equal(2);
      expect([...tasks.values()].every((copies) => copies.length === 1)).to.equal(true);
    });

    it("dead-letters a 400 with the EHR's OperationOutcome, and an operator can send it again", async () => {
      ehr.failWith('reject-400');
      const created = await fhirFetch(`${gw.baseUrl}/fhir/ServiceRequest`, {
        body: withOrderNumber(readFixture('referrals/infliximab/service-request.json'), `dead-${randomUUID()}`),
      });
      expect(created.status).to.equal(201);
      await waitUntil('the message is dead', async () => (await outboxTotal(gw.baseUrl, 'dead')) === 1);
      const dead = await fhirFetch(`${gw.baseUrl}/admin/outbox?status=dead`);
      const message = dead.body.messages[0];
      expect(message.attempts).to.equal(1);
      expect(message.lastError.resourceType).to.equal('OperationOutcome');
      expect(message.target.resourceType).to.equal('Task');
      const notDead = await fhirFetch(`${gw.baseUrl}/admin/outbox/${randomUUID()}/retry`, { method: 'POST' });
      expect(notDead.status).to.equal(404);

      ehr.failWith(undefined);
      const retried = await fhirFetch(`${gw.baseUrl}/admin/outbox/${message.id}/retry`, { method: 'POST' });
      expect(retried.status).to.equal(200);
      expect(retried.body.status).to.equal('pending');
      await waitUntil('the retried message is delivered', async () => (await outboxTotal(gw.baseUrl, 'delivered')) === 1);
      expect((await referralTasksInEhr(ehr.baseUrl)).size).to.equal(1);
      const again = await fhirFetch(`${gw.baseUrl}/admin/outbox/${message.id}/retry`, { method: 'POST' });
      expect(again.status).to.equal(409);
    });
  });
}

describe('write-back switched off', () => {
  it('keeps referrals in the gateway and queues nothing when no EHR is configured', async () => {
    const gw = await startGateway({ background: true, env: { DIRECTORY_BUNDLE: 'none' } });
    try {
      const created = await fhirFetch(`${gw.baseUrl}/fhir/ServiceRequest`, {
        body: withOrderNumber(readFixture('referrals/infliximab/service-request.json'), `off-${randomUUID()}`),
      });
      expect(created.status).to.equal(201);
      const all = await fhirFetch(`${gw.baseUrl}/admin/outbox?_count=0`);
      expect(all.body.total).to.equal(0);
    } finally {
      await gw.stop();
    }
  });
});
