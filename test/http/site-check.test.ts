/**
 * The site check through the HTTP API: every fixture in fixtures/site-check/ is posted as a
 * referral and its Task must carry the expected decision, reasons and ranked suggestions; then a
 * coordinator confirms a site ($confirm-site or a Task update) and the referral moves on.
 */
import { expect } from 'chai';
import { randomUUID } from 'node:crypto';
import { readdirSync } from 'node:fs';
import path from 'node:path';
import { FIXTURES_DIR, readFixture, withOrderNumber } from '../support/fixtures.js';
import { fhirFetch, startGateway, type RunningGateway } from '../support/gateway.js';
import { demoHookAuthorization } from '../support/cds-client.js';

const TYPES = 'https://fhir.infusion-gateway.example/CodeSystem/task-parameter-type';
const MISROUTE = 'https://fhir.infusion-gateway.example/CodeSystem/misroute-reason';
const REJECTION = 'https://fhir.infusion-gateway.example/CodeSystem/referral-rejection-reason';

interface ExpectedSiteCheck {
  description: string;
  decision: 'ok' | 'misroute-suspected' | 'no-suitable-site';
  taskStatus: string;
  reasons: string[];
  suggestions: string[];
  firstSuggestion?: string;
}

const siteCheckCases = (): string[] => readdirSync(path.join(FIXTURES_DIR, 'site-check')).sort();

const inputsOfType = (task: any, code: string): any[] =>
  (task.input ?? []).filter((i: any) => i.type.coding.some((c: any) => c.system === TYPES && c.code === code));

const confirmation = (locationId: string): object => ({
  resourceType: 'Parameters',
  parameter: [{ name: 'location', valueReference: { reference: `Location/${locationId}` } }],
});

describe('site check through the FHIR API', function () {
  this.timeout(60_000);
  let gw: RunningGateway;
  let fhir: string;

  before(async () => {
    gw = await startGateway();
    fhir = `${gw.baseUrl}/fhir`;
  });
  after(async () => {
    await gw.stop();
  });

  async function submit(fixture: string): Promise<{ serviceRequest: any; task: any }> {
    const body = withOrderNumber(readFixture(fixture), `sc-${randomUUID()}`);
    const created = await fhirFetch(`${fhir}/ServiceRequest`, { body });
    expect(created.status, JSON.stringify(created.body?.issue)).to.equal(201);
    const tasks = await fhirFetch(`${fhir}/Task?focus=ServiceRequest/${created.body.id}`);
    expect(tasks.body.entry).to.have.length(1);
    return { serviceRequest: created.body, task: tasks.body.entry[0].resource };
  }

  for (const name of siteCheckCases()) {
    const expected = readFixture<ExpectedSiteCheck>(`site-check/${name}/expected.json`);
    it(`decides ${expected.decision} for the ${name} case, with its reasons and suggestions on the Task`, async () => {
      const { task } = await submit(`site-check/${name}/service-request.json`);
      expect(task.businessStatus.coding[0].code).to.equal(expected.taskStatus);
      const reasons = inputsOfType(task, 'misroute-reason').map((i: any) => {
        expect(i.valueCodeableConcept.coding[0].system).to.equal(MISROUTE);
        expect(i.valueCodeableConcept.text).to.be.a('string').and.not.equal('');
        return i.valueCodeableConcept.coding[0].code;
      });
      expect(reasons).to.deep.equal(expected.decision === 'ok' ? [] : expected.reasons);
      const suggestions = inputsOfType(task, 'suggested-location').map((i: any) => i.valueReference.reference);
      expect(suggestions).to.deep.equal(expected.suggestions.map((id) => `Location/${id}`));
      if (expected.firstSuggestion) expect(suggestions[0]).to.equal(`Location/${expected.firstSuggestion}`);
      if (expected.decision === 'misroute-suspected') {
        expect(task.status).to.equal('on-hold');
        expect(task.statusReason.coding[0]).to.include({ system: MISROUTE, code: expected.reasons[0] });
      }
      if (expected.decision === 'no-suitable-site') {
        expect(task.status).to.equal('rejected');
        expect(task.statusReason.coding[0]).to.include({ system: REJECTION, code: 'no-suitable-site' });
      }
    });
  }

  it('tells the sender of a misrouted order why, as warnings naming the site element', async () => {
    const body = withOrderNumber(readFixture('site-check/drug-not-offered/service-request.json'), `sc-${randomUUID()}`);
    const created = await fhirFetch(`${fhir}/ServiceRequest`, { body, headers: { prefer: 'return=OperationOutcome' } });
    expect(created.status).to.equal(201);
    const warning = created.body.issue.find((i: any) => i.severity === 'warning');
    expect(warning.diagnostics).to.contain('drug-not-offered');
    expect(warning.expression).to.deep.equal(['ServiceRequest.locationReference[0]']);
  });

  it("re-routes the seed's referral to the site the patient confirmed, keeping the original site in the history", async () => {
    const { serviceRequest, task } = await submit('site-check/seed-000-practice-address-patient-choice/service-request.json');
    const confirmed = await fhirFetch(`${fhir}/Task/${task.id}/$confirm-site`, { body: confirmation('hin-nashville-green-hills') });
    expect(confirmed.status, JSON.stringify(confirmed.body?.issue)).to.equal(200);
    expect(confirmed.body.businessStatus.coding[0].code).to.equal('verifying-coverage');
    expect(confirmed.body.status).to.equal('in-progress');
    expect(confirmed.body.statusReason).to.equal(undefined);
    const output = confirmed.body.output.find((o: any) => o.type.coding[0].code === 'confirmed-location');
    expect(output.valueReference).to.include({
      reference: 'Location/hin-nashville-green-hills',
      display: 'Harbor Infusion Center - Green Hills',
    });
    expect(output.valueReference.identifier).to.deep.equal({
      system: 'https://fhir.infusion-gateway.example/sid/site-code',
      value: 'NSH-GRH',
    });
    expect(confirmed.headers.get('etag')).to.equal('W/"2"');

    const current = await fhirFetch(`${fhir}/ServiceRequest/${serviceRequest.id}`);
    expect(current.body.locationReference).to.deep.equal([
      { reference: 'Location/hin-nashville-green-hills', display: 'Harbor Infusion Center - Green Hills' },
    ]);
    const original = await fhirFetch(`${fhir}/ServiceRequest/${serviceRequest.id}/_history/1`);
    expect(original.body.locationReference[0].reference).to.equal('#practice-office');

    // The same confirmation again is answered with the Task as it is; another site is a conflict.
    const again = await fhirFetch(`${fhir}/Task/${task.id}/$confirm-site`, { body: confirmation('hin-nashville-green-hills') });
    expect(again.status).to.equal(200);
    expect(again.body.meta.versionId).to.equal('2');
    const other = await fhirFetch(`${fhir}/Task/${task.id}/$confirm-site`, { body: confirmation('hin-nashville-midtown') });
    expect(other.status).to.equal(409);
    expect(other.body.issue[0].expression).to.deep.equal(['Task.businessStatus']);
  });

  it('takes the confirmation as a Task update that adds a confirmed-location output, under If-Match', async () => {
    const { task } = await submit('site-check/not-patient-choice/service-request.json');
    const updated = {
      ...task,
      output: [
        {
          type: { coding: [{ system: TYPES, code: 'confirmed-location' }] },
          valueReference: { reference: 'Location/hin-nashville-midtown' },
        },
      ],
    };
    const stale = await fhirFetch(`${fhir}/Task/${task.id}`, { method: 'PUT', body: updated, headers: { 'if-match': 'W/"7"' } });
    expect(stale.status).to.equal(412);
    const response = await fhirFetch(`${fhir}/Task/${task.id}`, { method: 'PUT', body: updated, headers: { 'if-match': 'W/"1"' } });
    expect(response.status, JSON.stringify(response.body?.issue)).to.equal(200);
    expect(response.body.businessStatus.coding[0].code).to.equal('verifying-coverage');
    expect(response.body.output[0].valueReference.reference).to.equal('Location/hin-nashville-midtown');
  });

  it('refuses a Task update that changes what the gateway keeps, naming every changed element', async () => {
    const { task } = await submit('site-check/not-patient-choice/service-request.json');
    const tampered = { ...task, for: { reference: 'Patient/someone-else' }, priority: 'stat' };
    const response = await fhirFetch(`${fhir}/Task/${task.id}`, { method: 'PUT', body: tampered });
    expect(response.status).to.equal(422);
    const expressions = response.body.issue.map((i: any) => i.expression[0]);
    expect(expressions).to.have.members(['Task.for', 'Task.priority', 'Task.output']);
    const unchanged = await fhirFetch(`${fhir}/Task/${task.id}`);
    expect(unchanged.body.meta.versionId).to.equal('1');
  });

  it('refuses a confirmed site that cannot give the infusion, and one outside the directory', async () => {
    const { task } = await submit('site-check/drug-not-offered/service-request.json');
    const noDrug = await fhirFetch(`${fhir}/Task/${task.id}/$confirm-site`, { body: confirmation('hin-nashville-donelson') });
    expect(noDrug.status).to.equal(422);
    expect(noDrug.body.issue[0].diagnostics).to.contain('drug-not-offered');
    expect(noDrug.body.issue[0].expression).to.deep.equal(['Parameters.parameter[0].valueReference']);
    const closed = await fhirFetch(`${fhir}/Task/${task.id}/$confirm-site`, { body: confirmation('hin-charlotte-elizabeth') });
    expect(closed.status).to.equal(422);
    expect(closed.body.issue[0].diagnostics).to.contain('site-inactive');
    const unknown = await fhirFetch(`${fhir}/Task/${task.id}/$confirm-site`, { body: confirmation('hin-nowhere') });
    expect(unknown.status).to.equal(422);
    const missing = await fhirFetch(`${fhir}/Task/${task.id}/$confirm-site`, { body: { resourceType: 'Parameters', parameter: [] } });
    expect(missing.status).to.equal(400);
    expect(missing.body.issue[0].expression).to.deep.equal(['Parameters.parameter']);
    const still = await fhirFetch(`${fhir}/Task/${task.id}`);
    expect(still.body.businessStatus.coding[0].code).to.equal('misroute-suspected');
  });

  it('serves the CDS Hooks site check beside the FHIR API: discovery, and a warning card for a misrouted draft order', async () => {
    const discovery = await fhirFetch(`${gw.baseUrl}/cds-services`);
    expect(discovery.status).to.equal(200);
    expect(discovery.body.services.map((s: any) => s.hook)).to.have.members(['order-sign', 'order-select']);
    const answer = await fhirFetch(`${gw.baseUrl}/cds-services/infusion-site-check`, {
      body: readFixture('cds-hooks/order-sign-misroute.json'),
      // Signed by the demo issuer, which a gateway outside production trusts when CDS_TRUSTED_ISSUERS is unset.
      headers: await demoHookAuthorization(`${gw.baseUrl}/cds-services/infusion-site-check`),
    });
    expect(answer.status).to.equal(200);
    expect(answer.body.cards).to.have.length(1);
    expect(answer.body.cards[0].indicator).to.equal('warning');
    const action = answer.body.cards[0].suggestions[0].actions[0];
    expect(action.resource.locationReference[0].reference).to.equal('Location/hin-nashville-green-hills');
  });

  it('publishes the misroute reasons, the confirm-site operation and the preferred-site extension', async () => {
    const codeSystem = await fhirFetch(`${fhir}/CodeSystem/misroute-reason`);
    expect(codeSystem.body.concept.map((c: any) => c.code)).to.include.members([
      'drug-not-offered',
      'out-of-network',
      'too-far',
      'practice-address',
      'not-patient-choice',
      'site-inactive',
    ]);
    const operation = await fhirFetch(`${fhir}/OperationDefinition/confirm-site`);
    expect(operation.body.code).to.equal('confirm-site');
    const extension = await fhirFetch(`${fhir}/StructureDefinition/preferred-infusion-site`);
    expect(extension.status).to.equal(200);
    const metadata = await fhirFetch(`${fhir}/metadata`);
    const task = metadata.body.rest[0].resource.find((r: any) => r.type === 'Task');
    expect(task.operation.map((o: any) => o.name)).to.include('confirm-site');
  });
});
