/**
 * A held referral's Task reaches the EHR as misroute-suspected, and the coordinator's confirmation
 * reaches it as an update of that same Task: over real HTTP to the stand-in EHR.
 */
import { expect } from 'chai';
import { randomUUID } from 'node:crypto';
import { readFixture, withOrderNumber } from '../support/fixtures.js';
import { fhirFetch, startGateway, waitUntil, type Engine, type RunningGateway } from '../support/gateway.js';
import { startStandInEhr, type StandInEhr } from '../../src/sandbox/stand-in-ehr.js';
import { stopEhrCheckingWrittenReferences } from '../support/written-references.js';
import { referralTasksInEhr } from './ehr-helpers.js';

const FAST_OUTBOX = { OUTBOX_POLL_MS: '25', OUTBOX_RETRY_BASE_MS: '20', OUTBOX_RETRY_MAX_MS: '300', EHR_POLL: 'false' };
const SITE_CODE = 'https://fhir.infusion-gateway.example/sid/site-code';

for (const engine of ['sqlite', 'postgres'] as Engine[]) {
  describe(`confirmed re-route written back to the EHR (${engine})`, function () {
    this.timeout(60_000);
    let ehr: StandInEhr;
    let gw: RunningGateway;

    beforeEach(async () => {
      ehr = await startStandInEhr();
      gw = await startGateway({ engine, background: true, env: { ...FAST_OUTBOX, EHR_FHIR_BASE_URL: ehr.baseUrl } });
    });
    afterEach(async () => {
      await gw.stop();
      await stopEhrCheckingWrittenReferences(ehr);
    });

    it('updates the one Task in the EHR from misroute-suspected to verifying-coverage with the confirmed site', async () => {
      const body = withOrderNumber(
        readFixture('site-check/seed-000-practice-address-patient-choice/service-request.json'),
        `conf-${randomUUID()}`,
      );
      const created = await fhirFetch(`${gw.baseUrl}/fhir/ServiceRequest`, { body });
      expect(created.status).to.equal(201);
      await waitUntil('the held Task reached the EHR', async () => (await referralTasksInEhr(ehr.baseUrl)).size === 1);
      const [held] = [...(await referralTasksInEhr(ehr.baseUrl)).values()][0]!;
      expect(held.businessStatus.coding[0].code).to.equal('misroute-suspected');
      expect(held.status).to.equal('on-hold');
      const suggestion = held.input.find((i: any) => i.type.coding[0].code === 'suggested-location');
      // The EHR has no copy of the network's directory: the site goes as a logical reference.
      expect(suggestion.valueReference).to.deep.equal({
        type: 'Location',
        identifier: { system: SITE_CODE, value: 'NSH-GRH' },
        display: 'Harbor Infusion Center - Green Hills',
      });

      const tasks = await fhirFetch(`${gw.baseUrl}/fhir/Task?focus=ServiceRequest/${created.body.id}`);
      const taskId = tasks.body.entry[0].resource.id;
      const confirmed = await fhirFetch(`${gw.baseUrl}/fhir/Task/${taskId}/$confirm-site`, {
        body: {
          resourceType: 'Parameters',
          parameter: [{ name: 'location', valueReference: { reference: 'Location/hin-nashville-green-hills' } }],
        },
      });
      expect(confirmed.status).to.equal(200);

      await waitUntil('the confirmation reached the EHR', async () => {
        const [tasksInEhr] = [...(await referralTasksInEhr(ehr.baseUrl)).values()];
        return tasksInEhr?.[0]?.businessStatus.coding[0].code === 'verifying-coverage';
      });
      const [after] = [...(await referralTasksInEhr(ehr.baseUrl)).values()];
      expect(after).to.have.length(1);
      expect(after![0].id).to.equal(held.id);
      const output = after![0].output.find((o: any) => o.type.coding[0].code === 'confirmed-location');
      expect(output.valueReference.identifier).to.deep.equal({ system: SITE_CODE, value: 'NSH-GRH' });
      const updates = ehr.requests().filter((r) => r.method === 'PUT' && r.path === `/fhir/Task/${held.id}` && r.status === 200);
      expect(updates).to.have.length(1);
    });
  });
}
