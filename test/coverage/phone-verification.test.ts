/**
 * A coverage verification done by phone ($record-verification) on a gateway with no payer
 * connection: the referral waits in verifying-coverage, the coordinator
 * records the call, and the referral moves on exactly as after an electronic verification, to a
 * booked Appointment. On both engines.
 */
import { expect } from 'chai';
import { randomUUID } from 'node:crypto';
import { withFreshOrderNumbers } from '../../src/cli/fixture-cases.js';
import { readFixture, withOrderNumber } from '../support/fixtures.js';
import { businessStatusOf, fhirFetch, startGateway, waitUntil, type Engine, type RunningGateway } from '../support/gateway.js';

const TYPES = 'https://fhir.infusion-gateway.example/CodeSystem/task-parameter-type';
const VERIFICATION = 'https://fhir.infusion-gateway.example/StructureDefinition/coverage-verification';
const VERIFIED_COVERAGE_ID = 'https://fhir.infusion-gateway.example/verified-coverage-id';
const MEMBER_ID = 'https://cumberland-health.example/member-id';

/** The infliximab referral as a transaction of conditional creates, for a member of its own (Coverage identifier and ifNoneExist). */
function transactionForMember(memberId: string, orderSuffix: string): any {
  const bundle = withFreshOrderNumbers(readFixture('referrals/infliximab/transaction-bundle.json'), orderSuffix) as any;
  const entry = bundle.entry.find((e: any) => e.resource.resourceType === 'Coverage');
  entry.resource.identifier[0].value = memberId;
  entry.resource.subscriberId = memberId;
  entry.request.ifNoneExist = `identifier=${MEMBER_ID}|${memberId}`;
  return bundle;
}

const locationOf = (response: any, type: string): string => {
  const entry = response.entry.find((e: any) => e.response.location.startsWith(`${type}/`));
  return entry.response.location.split('/_history')[0];
};

const outputOf = (task: any, code: string): any =>
  (task.output ?? []).find((o: any) => o.type.coding.some((c: any) => c.system === TYPES && c.code === code));

function verification(parameters: Record<string, unknown>): object {
  return {
    resourceType: 'Parameters',
    parameter: Object.entries(parameters).map(([name, value]) => ({ name, ...(value as object) })),
  };
}

const CALL = {
  'verified-by': { valueString: 'Dana Coordinator' },
  'verified-at': { valueDateTime: '2026-12-01T15:04:00-06:00' },
  'payer-reference': { valueString: 'CALL-77812' },
};

for (const engine of ['sqlite', 'postgres'] as Engine[]) {
  describe(`coverage verified by phone ($record-verification), ${engine}`, function () {
    this.timeout(90_000);
    let gw: RunningGateway;
    let fhir: string;

    before(async () => {
      gw = await startGateway({ engine, background: true, env: { EHR_POLL: 'false', OUTBOX_POLL_MS: '25' } });
      fhir = `${gw.baseUrl}/fhir`;
    });
    after(async () => {
      await gw.stop();
    });

    async function referralWaitingOnCoverage(drug = 'vedolizumab'): Promise<{ taskId: string; serviceRequestId: string }> {
      const created = await fhirFetch(`${fhir}/ServiceRequest`, {
        body: withOrderNumber(readFixture(`referrals/${drug}/service-request.json`), `phone-${randomUUID()}`),
      });
      expect(created.status, JSON.stringify(created.body?.issue)).to.equal(201);
      const taskId = (await fhirFetch(`${fhir}/Task?focus=ServiceRequest/${created.body.id}`)).body.entry[0].resource.id;
      // Without a payer connection the referral waits in verifying-coverage for a coordinator.
      expect(businessStatusOf((await fhirFetch(`${fhir}/Task/${taskId}`)).body)).to.equal('verifying-coverage');
      return { taskId, serviceRequestId: created.body.id };
    }

    it('refuses parameters with every problem listed at its FHIRPath, changing nothing', async () => {
      const { taskId } = await referralWaitingOnCoverage();
      const response = await fhirFetch(`${fhir}/Task/${taskId}/$record-verification`, {
        body: verification({ 'verified-at': { valueDateTime: '2126-01-01T00:00:00Z' }, outcome: { valueCode: 'maybe' } }),
      });
      expect(response.status).to.equal(400);
      const issues = response.body.issue.map((i: any) => `${i.code} ${i.expression[0]}`);
      expect(issues).to.have.members([
        'required Parameters.parameter', // verified-by
        'value Parameters.parameter[0].valueDateTime', // in the future
        'required Parameters.parameter', // payer-reference
        'code-invalid Parameters.parameter[1].valueCode',
      ]);
      const task = (await fhirFetch(`${fhir}/Task/${taskId}`)).body;
      expect(businessStatusOf(task)).to.equal('verifying-coverage');
      expect(task.meta.versionId).to.equal('1');
    });

    it('clears a referral the payer authorized by phone, keeps the call on the verified Coverage, and books it', async () => {
      const { taskId, serviceRequestId } = await referralWaitingOnCoverage();
      const recorded = await fhirFetch(`${fhir}/Task/${taskId}/$record-verification`, {
        body: verification({
          ...CALL,
          outcome: { valueCode: 'authorized' },
          'authorization-number': { valueString: 'PA-PHONE-1234' },
          'authorization-period': { valuePeriod: { start: '2026-12-01', end: '2027-05-31' } },
        }),
      });
      expect(recorded.status, JSON.stringify(recorded.body?.issue)).to.equal(200);
      expect(businessStatusOf(recorded.body)).to.equal('ready-to-schedule');
      expect(outputOf(recorded.body, 'authorization-number').valueString).to.equal('PA-PHONE-1234');
      expect(outputOf(recorded.body, 'coverage-issue')).to.equal(undefined);
      expect(recorded.body.note.at(-1).text).to.contain('by phone by Dana Coordinator').and.contain('CALL-77812');

      const coverage = await fhirFetch(`${fhir}/${outputOf(recorded.body, 'verified-coverage').valueReference.reference}`);
      const parts = coverage.body.extension.find((e: any) => e.url === VERIFICATION).extension;
      expect(parts).to.deep.include({ url: 'method', valueCode: 'phone' });
      expect(parts).to.deep.include({ url: 'payer-reference', valueString: 'CALL-77812' });
      expect(parts).to.deep.include({ url: 'verified', valueDateTime: '2026-12-01T21:04:00.000Z' });
      expect(parts).to.deep.include({ url: 'prior-authorization', valueCode: 'approved' });

      const found = await fhirFetch(`${fhir}/Appointment/$find?referral=ServiceRequest/${serviceRequestId}&_count=1`);
      expect(found.status, JSON.stringify(found.body?.issue)).to.equal(200);
      const booked = await fhirFetch(`${fhir}/Appointment/$book`, {
        body: { resourceType: 'Parameters', parameter: [{ name: 'appt-resource', resource: found.body.entry[0].resource }] },
      });
      expect(booked.status, JSON.stringify(booked.body?.issue)).to.equal(201);
      expect(booked.body.status).to.equal('booked');
      await waitUntil(
        'the Task is scheduled',
        async () => businessStatusOf((await fhirFetch(`${fhir}/Task/${taskId}`)).body) === 'scheduled',
      );
    });

    it('takes not-covered and denied the way the electronic path does, and refuses a referral no longer waiting on coverage', async () => {
      const notCovered = await referralWaitingOnCoverage();
      const refused = await fhirFetch(`${fhir}/Task/${notCovered.taskId}/$record-verification`, {
        body: verification({ ...CALL, outcome: { valueCode: 'not-covered' } }),
      });
      expect(refused.status).to.equal(200);
      expect(businessStatusOf(refused.body)).to.equal('coverage-problem');
      expect(outputOf(refused.body, 'coverage-issue').valueCodeableConcept.coding[0].code).to.equal('eligibility-not-in-force');

      const denied = await referralWaitingOnCoverage();
      const answer = await fhirFetch(`${fhir}/Task/${denied.taskId}/$record-verification`, {
        body: verification({ ...CALL, outcome: { valueCode: 'denied' } }),
      });
      expect(businessStatusOf(answer.body)).to.equal('auth-denied');
      const appeal = await fhirFetch(`${fhir}/${outputOf(answer.body, 'appeal').valueReference.reference}`);
      expect(appeal.body.partOf[0].reference).to.equal(`Task/${denied.taskId}`);

      const covered = await fhirFetch(`${fhir}/Task/${notCovered.taskId}/$record-verification`, {
        body: verification({ ...CALL, outcome: { valueCode: 'covered' } }),
      });
      expect(businessStatusOf(covered.body)).to.equal('ready-to-schedule');
      const again = await fhirFetch(`${fhir}/Task/${notCovered.taskId}/$record-verification`, {
        body: verification({ ...CALL, outcome: { valueCode: 'covered' } }),
      });
      expect(again.status).to.equal(409);
      expect(again.body.issue[0].expression).to.deep.equal(['Task.businessStatus']);
      const unknown = await fhirFetch(`${fhir}/Task/no-such-task/$record-verification`, {
        body: verification({ ...CALL, outcome: { valueCode: 'covered' } }),
      });
      expect(unknown.status).to.equal(404);
    });

    it("accepts the EHR's re-sent referral and a new order for a member whose Coverage was verified: the verified Coverage is the gateway's own record, linked to the one it verified", async () => {
      const memberId = `CHP${randomUUID().slice(0, 8).toUpperCase()}`;
      const orderSuffix = `resend-${randomUUID()}`;
      const first = await fhirFetch(fhir, { body: transactionForMember(memberId, orderSuffix) });
      expect(first.status, JSON.stringify(first.body?.issue)).to.equal(200);
      const memberCoverage = locationOf(first.body, 'Coverage');
      const serviceRequest = locationOf(first.body, 'ServiceRequest');
      const taskId = (await fhirFetch(`${fhir}/Task?focus=${serviceRequest}`)).body.entry[0].resource.id;
      const recorded = await fhirFetch(`${fhir}/Task/${taskId}/$record-verification`, {
        body: verification({ ...CALL, outcome: { valueCode: 'covered' } }),
      });
      expect(recorded.status, JSON.stringify(recorded.body?.issue)).to.equal(200);

      // The verified Coverage carries the gateway's identifier only, and names the member's Coverage in its verification.
      const verified = (await fhirFetch(`${fhir}/${outputOf(recorded.body, 'verified-coverage').valueReference.reference}`)).body;
      expect(verified.identifier.map((i: any) => i.system)).to.deep.equal([VERIFIED_COVERAGE_ID]);
      expect(verified.subscriberId).to.equal(memberId);
      const source = verified.extension.find((e: any) => e.url === VERIFICATION).extension.find((e: any) => e.url === 'source-coverage');
      expect(source.valueReference.reference).to.equal(memberCoverage);
      expect(source.valueReference.type).to.equal('Coverage');
      expect(source.valueReference.identifier).to.deep.include({ system: MEMBER_ID, value: memberId });
      expect((await fhirFetch(`${fhir}/${memberCoverage}`)).status).to.equal(200);
      const byMemberId = await fhirFetch(`${fhir}/Coverage?identifier=${encodeURIComponent(`${MEMBER_ID}|${memberId}`)}`);
      expect(byMemberId.body.entry.map((e: any) => `Coverage/${e.resource.id}`)).to.deep.equal([memberCoverage]);

      // The same transaction again (an EHR's retry): every conditional create finds what the first made.
      const resent = await fhirFetch(fhir, { body: transactionForMember(memberId, orderSuffix) });
      expect(resent.status, JSON.stringify(resent.body?.issue)).to.equal(200);
      expect(resent.body.entry.map((e: any) => e.response.status)).to.deep.equal(first.body.entry.map(() => '200 OK'));
      expect(locationOf(resent.body, 'Coverage')).to.equal(memberCoverage);
      expect(locationOf(resent.body, 'ServiceRequest')).to.equal(serviceRequest);

      // A new order for the same member: a new referral on the Coverage the EHR sent before.
      const next = await fhirFetch(fhir, { body: transactionForMember(memberId, `next-${randomUUID()}`) });
      expect(next.status, JSON.stringify(next.body?.issue)).to.equal(200);
      expect(locationOf(next.body, 'Coverage')).to.equal(memberCoverage);
      expect(locationOf(next.body, 'ServiceRequest')).to.not.equal(serviceRequest);
    });

    it('publishes the operation in the CapabilityStatement and as an OperationDefinition', async () => {
      const definition = await fhirFetch(`${fhir}/OperationDefinition/record-verification`);
      expect(definition.body.parameter.map((p: any) => p.name)).to.include.members([
        'verified-by',
        'verified-at',
        'payer-reference',
        'outcome',
        'authorization-number',
      ]);
      const metadata = await fhirFetch(`${fhir}/metadata`);
      const task = metadata.body.rest[0].resource.find((r: any) => r.type === 'Task');
      expect(task.operation.map((o: any) => o.name)).to.include('record-verification');
    });
  });
}
