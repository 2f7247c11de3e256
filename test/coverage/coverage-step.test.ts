/**
 * The coverage step end to end: referrals posted over HTTP, the stand-in payer answering
 * eligibility and prior authorization by per-member rules over real HTTP, the stand-in EHR
 * receiving the write-back, the outbox worker and the inquiry job running as in production.
 */
import { expect } from 'chai';
import { payerConnections } from '../support/referral-flow.js';
import { randomUUID } from 'node:crypto';
import { readFixture, withOrderNumber } from '../support/fixtures.js';
import { fhirFetch, startGateway, waitUntil, type RunningGateway } from '../support/gateway.js';
import { startStandInEhr, type StandInEhr } from '../../src/sandbox/stand-in-ehr.js';
import { stopEhrCheckingWrittenReferences } from '../support/written-references.js';
import { startStandInPayer, type MemberRule, type StandInPayer } from '../../src/sandbox/stand-in-payer.js';
import { allInEhr } from '../connectivity/ehr-helpers.js';

const BASE = 'https://fhir.infusion-gateway.example';
const APPEAL_ID = `${BASE}/appeal-id`;
const TYPES = 'https://fhir.infusion-gateway.example/CodeSystem/task-parameter-type';
const COVERAGE_ISSUE = 'https://fhir.infusion-gateway.example/CodeSystem/coverage-issue';
const DOCUMENTATION = 'https://fhir.infusion-gateway.example/CodeSystem/documentation-requirement';
const CRD_COVERAGE_INFORMATION = 'http://hl7.org/fhir/us/davinci-crd/StructureDefinition/ext-coverage-information';
const VERIFIED_COVERAGE_ID = 'https://fhir.infusion-gateway.example/verified-coverage-id';
const VERIFICATION = 'https://fhir.infusion-gateway.example/StructureDefinition/coverage-verification';
const DOCUMENTS: Record<string, string[]> = {
  infliximab: ['prior-treatment-failure', 'tb-screening', 'hepatitis-b-screening', 'current-weight'],
  'immune-globulin-iv': ['diagnosis-confirmation', 'current-weight', 'igg-trough-level'],
};
const IN_FORCE_AUTH_REQUIRED: MemberRule['eligibility'] = {
  inForce: true,
  authRequired: true,
  costShare: { copay: { value: 250, currency: 'USD' }, deductibleRemaining: { value: 0, currency: 'USD' } },
};

/** A referral for its own member, with (by default) every document the drug's payers ask for attached. */
function referral(
  drug: 'infliximab' | 'immune-globulin-iv',
  options: { documents?: boolean; change?: (sr: any, coverage: any) => void } = {},
): { body: any; memberId: string } {
  const body = withOrderNumber(readFixture(`referrals/${drug}/service-request.json`), `cov-${randomUUID()}`);
  const coverage = body.contained.find((r: any) => r.resourceType === 'Coverage');
  const memberId = `M${randomUUID().slice(0, 8).toUpperCase()}`;
  coverage.subscriberId = memberId;
  coverage.identifier[0].value = memberId;
  if (options.documents !== false) {
    for (const code of DOCUMENTS[drug]!) {
      body.contained.push({
        resourceType: 'DocumentReference',
        id: `doc-${code}`,
        status: 'current',
        type: { coding: [{ system: DOCUMENTATION, code }] },
        content: [{ attachment: { contentType: 'application/pdf', title: code } }],
      });
      body.supportingInfo = [...(body.supportingInfo ?? []), { reference: `#doc-${code}` }];
    }
  }
  options.change?.(body, coverage);
  return { body, memberId };
}

const outputsOf = (task: any, code: string): any[] =>
  (task.output ?? []).filter((o: any) => o.type.coding.some((c: any) => c.system === TYPES && c.code === code));
const codesOf = (task: any, code: string): string[] => outputsOf(task, code).map((o: any) => o.valueCodeableConcept.coding[0].code);
const statusOf = (task: any): string => task.businessStatus.coding[0].code;

describe('coverage step: eligibility, prior authorization and appeals with the payer', function () {
  this.timeout(120_000);
  let payer: StandInPayer;
  let ehr: StandInEhr;
  let gw: RunningGateway;
  let fhir: string;

  before(async () => {
    payer = await startStandInPayer();
    ehr = await startStandInEhr();
    gw = await startGateway({
      background: true,
      env: {
        PAYER_CONNECTIONS: payerConnections(payer.baseUrl),
        PAYER_REQUEST_TIMEOUT_MS: '1500',
        EHR_FHIR_BASE_URL: ehr.baseUrl,
        EHR_POLL: 'false',
        OUTBOX_POLL_MS: '25',
        OUTBOX_RETRY_BASE_MS: '50',
        OUTBOX_RETRY_MAX_MS: '400',
        OUTBOX_MAX_ATTEMPTS: '10000',
        PRIOR_AUTH_INQUIRY_CRON: '* * * * * *',
      },
    });
    fhir = `${gw.baseUrl}/fhir`;
  });
  after(async () => {
    await gw.stop();
    await payer.stop();
    // What the coverage step writes back (Coverage, Tasks, appeals) resolves at the EHR, which refused none of it.
    await stopEhrCheckingWrittenReferences(ehr);
  });

  async function submit(body: any): Promise<string> {
    const created = await fhirFetch(`${fhir}/ServiceRequest`, { body });
    expect(created.status, JSON.stringify(created.body?.issue)).to.equal(201);
    const tasks = await fhirFetch(`${fhir}/Task?focus=ServiceRequest/${created.body.id}`);
    return tasks.body.entry[0].resource.id;
  }

  async function taskWhen(taskId: string, status: string): Promise<any> {
    let task: any;
    await waitUntil(`the Task reached ${status}`, async () => {
      task = (await fhirFetch(`${fhir}/Task/${taskId}`)).body;
      return statusOf(task) === status;
    });
    return task;
  }

  it('makes an active, in-network, approved referral ready to schedule, with the authorization, the estimate and the verified Coverage', async () => {
    const { body, memberId } = referral('infliximab');
    payer.setMemberRule(memberId, {
      eligibility: IN_FORCE_AUTH_REQUIRED,
      priorAuth: { kind: 'approve', authorizationNumber: 'AUTH-4471', period: { start: '2026-12-01', end: '2027-05-31' } },
    });
    const task = await taskWhen(await submit(body), 'ready-to-schedule');
    expect(task.status).to.equal('accepted');
    expect(outputsOf(task, 'authorization-number')[0].valueString).to.equal('AUTH-4471');
    expect(outputsOf(task, 'authorization-period')[0].valuePeriod).to.deep.equal({ start: '2026-12-01', end: '2027-05-31' });
    expect(outputsOf(task, 'patient-cost-estimate')[0].valueMoney).to.deep.equal({ value: 250, currency: 'USD' });
    expect(codesOf(task, 'denial-risk')).to.deep.equal([]);
    const information = task.extension.find((e: any) => e.url === CRD_COVERAGE_INFORMATION);
    const part = (url: string): any => information.extension.find((e: any) => e.url === url);
    expect(part('covered').valueCode).to.equal('covered');
    expect(part('pa-needed').valueCode).to.equal('satisfied');
    expect(part('satisfied-pa-id').valueString).to.equal('AUTH-4471');

    const verified = await fhirFetch(`${fhir}/${outputsOf(task, 'verified-coverage')[0].valueReference.reference}`);
    expect(verified.status).to.equal(200);
    expect(verified.body.identifier.some((i: any) => i.system === VERIFIED_COVERAGE_ID)).to.equal(true);
    const paths = payer.requests().map((r) => r.path);
    expect(paths).to.include.members(['/fhir/CoverageEligibilityRequest/$submit', '/fhir/Claim/$submit']);

    // Payer systems query the gateway for Coverage, with paging.
    const found = await fhirFetch(`${fhir}/Coverage?payor=Organization/payer-cumberland&status=active&_count=1`);
    expect(found.status).to.equal(200);
    expect(found.body.total).to.be.at.least(1);
    expect(found.body.entry).to.have.length(1);

    // The verified Coverage reaches the EHR once.
    await waitUntil('the verified Coverage reached the EHR', async () =>
      (await allInEhr(ehr.baseUrl, 'Coverage')).some((c) =>
        c.identifier?.some(
          (i: any) =>
            i.system === VERIFIED_COVERAGE_ID &&
            i.value === verified.body.identifier.find((x: any) => x.system === VERIFIED_COVERAGE_ID).value,
        ),
      ),
    );
    const value = verified.body.identifier.find((x: any) => x.system === VERIFIED_COVERAGE_ID).value;
    const inEhr = (await allInEhr(ehr.baseUrl, 'Coverage')).filter((c) =>
      c.identifier?.some((i: any) => i.system === VERIFIED_COVERAGE_ID && i.value === value),
    );
    expect(inEhr).to.have.length(1);
    // At the EHR too it is the gateway's record, not a second Coverage under the member's identifier: the
    // Coverage it verified (contained in the order here) is named by that identifier, a logical reference.
    expect(inEhr[0].identifier.map((i: any) => i.system)).to.deep.equal([VERIFIED_COVERAGE_ID]);
    const source = inEhr[0].extension.find((e: any) => e.url === VERIFICATION).extension.find((e: any) => e.url === 'source-coverage');
    expect(source.valueReference).to.deep.equal({
      type: 'Coverage',
      identifier: body.contained.find((r: any) => r.resourceType === 'Coverage').identifier[0],
    });
  });

  it('stops an expired coverage before asking the payer', async () => {
    const { body, memberId } = referral('infliximab', {
      change: (_sr, coverage) => (coverage.period = { start: '2024-01-01', end: '2025-12-31' }),
    });
    payer.setMemberRule(memberId, { eligibility: IN_FORCE_AUTH_REQUIRED });
    payer.clearRequests();
    const task = await taskWhen(await submit(body), 'coverage-problem');
    expect(codesOf(task, 'coverage-issue')).to.include('coverage-expired');
    expect(task.statusReason.coding[0]).to.include({ system: COVERAGE_ISSUE, code: 'coverage-expired' });
    expect(payer.requests()).to.have.length(0);
  });

  it('flags a payer the directory does not know', async () => {
    const { body } = referral('infliximab', {
      change: (_sr, coverage) => {
        coverage.payor = [{ reference: 'Organization/payer-unheard-of' }];
        coverage.class = [
          { type: { coding: [{ system: 'http://terminology.hl7.org/CodeSystem/coverage-class', code: 'plan' }] }, value: 'NOPE-PLAN' },
        ];
      },
    });
    const task = await taskWhen(await submit(body), 'coverage-problem');
    expect(codesOf(task, 'coverage-issue')).to.include.members(['payer-unknown', 'plan-unknown']);
  });

  it('holds a referral whose payer says the coverage is not in force', async () => {
    const { body, memberId } = referral('infliximab');
    payer.setMemberRule(memberId, { eligibility: { inForce: false, authRequired: false } });
    const task = await taskWhen(await submit(body), 'coverage-problem');
    expect(codesOf(task, 'coverage-issue')).to.deep.equal(['eligibility-not-in-force']);
    expect(outputsOf(task, 'verified-coverage')).to.have.length(0);
  });

  it('flags an out-of-network site the patient insisted on, with the in-network sites to re-route to', async () => {
    const { body, memberId } = referral('infliximab', {
      change: (_sr, coverage) => {
        coverage.payor = [{ reference: 'Organization/payer-peachtree' }];
        coverage.class = [
          { type: { coding: [{ system: 'http://terminology.hl7.org/CodeSystem/coverage-class', code: 'plan' }] }, value: 'SELECT-HMO' },
        ];
      },
    });
    payer.setMemberRule(memberId, { eligibility: IN_FORCE_AUTH_REQUIRED });
    const taskId = await submit(body);
    await taskWhen(taskId, 'misroute-suspected');
    const confirm = await fhirFetch(`${fhir}/Task/${taskId}/$confirm-site`, {
      body: {
        resourceType: 'Parameters',
        parameter: [{ name: 'location', valueReference: { reference: 'Location/hin-nashville-green-hills' } }],
      },
    });
    expect(confirm.status).to.equal(200);
    const task = await taskWhen(taskId, 'coverage-problem');
    expect(codesOf(task, 'coverage-issue')).to.deep.equal(['out-of-network']);
    const suggested = task.input
      .filter((i: any) => i.type.coding[0].code === 'suggested-location')
      .map((i: any) => i.valueReference.reference);
    expect(suggested).to.deep.equal(['Location/hin-nashville-midtown']);
  });

  it('pends a prior authorization and takes the approval from a later $inquire', async () => {
    const { body, memberId } = referral('infliximab');
    payer.setMemberRule(memberId, {
      eligibility: IN_FORCE_AUTH_REQUIRED,
      priorAuth: { kind: 'pend-then', inquiries: 2, then: { kind: 'approve', authorizationNumber: 'AUTH-PEND-9' } },
    });
    const taskId = await submit(body);
    const pending = await taskWhen(taskId, 'auth-pending');
    expect(outputsOf(pending, 'prior-authorization-claim')[0].valueString).to.be.a('string');
    const ready = await taskWhen(taskId, 'ready-to-schedule');
    expect(outputsOf(ready, 'authorization-number')[0].valueString).to.equal('AUTH-PEND-9');
    expect(outputsOf(ready, 'verified-coverage')).to.have.length(1);
    expect(payer.requests().filter((r) => r.path === '/fhir/Claim/$inquire').length).to.be.at.least(2);
  });

  it('keeps an order the EHR put on hold on hold when the payer approves meanwhile, and resumes it ready to schedule', async () => {
    const { body, memberId } = referral('infliximab');
    payer.setMemberRule(memberId, {
      eligibility: IN_FORCE_AUTH_REQUIRED,
      priorAuth: { kind: 'pend-then', inquiries: 3, then: { kind: 'approve', authorizationNumber: 'AUTH-HELD-1' } },
    });
    const taskId = await submit(body);
    await taskWhen(taskId, 'auth-pending');
    const serviceRequestId = (await fhirFetch(`${fhir}/Task/${taskId}`)).body.focus.reference.split('/')[1];
    const order = (await fhirFetch(`${fhir}/ServiceRequest/${serviceRequestId}`)).body;
    const held = await fhirFetch(`${fhir}/ServiceRequest/${serviceRequestId}`, { method: 'PUT', body: { ...order, status: 'on-hold' } });
    expect(held.status, JSON.stringify(held.body)).to.equal(200);
    // The $inquire follow-up goes on and the payer approves: recorded, still on hold.
    const approved = await taskWhen(taskId, 'ready-to-schedule');
    expect([approved.status, approved.statusReason.coding[0].code]).to.deep.equal(['on-hold', 'order-on-hold']);
    expect(outputsOf(approved, 'authorization-number')[0].valueString).to.equal('AUTH-HELD-1');
    const active = await fhirFetch(`${fhir}/ServiceRequest/${serviceRequestId}`, {
      method: 'PUT',
      body: { ...held.body, status: 'active' },
    });
    expect(active.status, JSON.stringify(active.body)).to.equal(200);
    const resumed = (await fhirFetch(`${fhir}/Task/${taskId}`)).body;
    expect([resumed.status, statusOf(resumed), resumed.statusReason]).to.deep.equal(['accepted', 'ready-to-schedule', undefined]);
  });

  it('opens an appeal after a denial, and a won appeal moves the referral on', async () => {
    const { body, memberId } = referral('infliximab');
    payer.setMemberRule(memberId, {
      eligibility: IN_FORCE_AUTH_REQUIRED,
      priorAuth: { kind: 'deny', reason: { display: 'Step therapy not documented' } },
    });
    const taskId = await submit(body);
    const denied = await taskWhen(taskId, 'auth-denied');
    const appealId = outputsOf(denied, 'appeal')[0].valueReference.reference.split('/')[1];
    const appeal = (await fhirFetch(`${fhir}/Task/${appealId}`)).body;
    expect(appeal.partOf[0].reference).to.equal(`Task/${taskId}`);
    const steps = appeal.input.map((i: any) => i.type.coding[0].code);
    expect(steps).to.include.members([
      'denial-reason',
      'review-denial-letter',
      'gather-documentation',
      'letter-of-medical-necessity',
      'peer-to-peer-review',
      'formal-appeal',
      'assistance-programs',
    ]);
    expect(appeal.input.find((i: any) => i.type.coding[0].code === 'denial-reason').valueCodeableConcept.text).to.equal(
      'Step therapy not documented',
    );

    // The appeal reached the EHR when it was opened; each change a coordinator makes follows it there, to the same Task.
    const appealsInEhr = async (): Promise<any[]> =>
      (await allInEhr(ehr.baseUrl, 'Task')).filter((t) =>
        t.identifier?.some((i: any) => i.system === APPEAL_ID && i.value === appeal.identifier[0].value),
      );
    await waitUntil('the appeal reached the EHR', async () => (await appealsInEhr()).length === 1);
    expect((await appealsInEhr())[0].partOf[0].identifier).to.deep.equal({
      system: `${BASE}/referral-id`,
      value: appeal.identifier[0].value,
    });
    const working = await fhirFetch(`${fhir}/Task/${appealId}`, { method: 'PUT', body: { ...appeal, status: 'in-progress' } });
    expect(working.status, JSON.stringify(working.body?.issue)).to.equal(200);
    await waitUntil('the EHR sees the appeal in progress', async () => (await appealsInEhr())[0]?.status === 'in-progress');

    // Won without the granted authorization: refused, nothing changes.
    const won = {
      ...working.body,
      status: 'completed',
      output: [
        {
          type: { coding: [{ system: 'https://fhir.infusion-gateway.example/CodeSystem/appeal-step', code: 'appeal-result' }] },
          valueCode: 'approved',
        },
      ],
    };
    const incomplete = await fhirFetch(`${fhir}/Task/${appealId}`, { method: 'PUT', body: won });
    expect(incomplete.status).to.equal(422);
    expect(incomplete.body.issue[0].expression).to.deep.equal(['Task.output']);
    won.output.push({ type: { coding: [{ system: TYPES, code: 'authorization-number' }] }, valueString: 'AUTH-APPEAL-1' } as any);
    const accepted = await fhirFetch(`${fhir}/Task/${appealId}`, { method: 'PUT', body: won });
    expect(accepted.status, JSON.stringify(accepted.body?.issue)).to.equal(200);
    const ready = await taskWhen(taskId, 'ready-to-schedule');
    expect(outputsOf(ready, 'authorization-number')[0].valueString).to.equal('AUTH-APPEAL-1');
    await waitUntil('the EHR sees the appeal won', async () => (await appealsInEhr())[0]?.status === 'completed');
    expect(await appealsInEhr()).to.have.length(1);
  });

  it('reads a PAS denial (A3) that also carries ClaimResponse.error as a denial and opens an appeal', async () => {
    const { body, memberId } = referral('infliximab');
    payer.setMemberRule(memberId, {
      eligibility: IN_FORCE_AUTH_REQUIRED,
      priorAuth: {
        kind: 'deny',
        reason: { display: 'Not medically necessary' },
        errors: [{ code: '15', display: 'Required application data missing' }],
      },
    });
    const taskId = await submit(body);
    const denied = await taskWhen(taskId, 'auth-denied');
    expect(codesOf(denied, 'coverage-issue')).to.not.include('prior-auth-error');
    const appeals = outputsOf(denied, 'appeal');
    expect(appeals).to.have.length(1);
    const appeal = (await fhirFetch(`${fhir}/${appeals[0].valueReference.reference}`)).body;
    expect(appeal.partOf[0].reference).to.equal(`Task/${taskId}`);
    expect(appeal.input.find((i: any) => i.type.coding[0].code === 'denial-reason').valueCodeableConcept.text).to.equal(
      'Not medically necessary',
    );
  });

  it('keeps a PAS answer with ClaimResponse.error and no review action a failed request: no appeal', async () => {
    const { body, memberId } = referral('infliximab');
    payer.setMemberRule(memberId, {
      eligibility: IN_FORCE_AUTH_REQUIRED,
      priorAuth: { kind: 'reject', errors: [{ code: '72', display: 'Invalid/Missing Subscriber/Insured ID' }] },
    });
    const taskId = await submit(body);
    const failed = await taskWhen(taskId, 'coverage-problem');
    expect(codesOf(failed, 'coverage-issue')).to.include('prior-auth-error');
    expect(outputsOf(failed, 'appeal')).to.deep.equal([]);
  });

  it('warns of off-label IVIG (multiple sclerosis) before sending anything, and holds it in auth-required', async () => {
    const { body, memberId } = referral('immune-globulin-iv', {
      change: (sr) =>
        (sr.reasonCode = [{ coding: [{ system: 'http://hl7.org/fhir/sid/icd-10-cm', code: 'G35', display: 'Multiple sclerosis' }] }]),
    });
    payer.setMemberRule(memberId, { eligibility: IN_FORCE_AUTH_REQUIRED });
    payer.clearRequests();
    const task = await taskWhen(await submit(body), 'auth-required');
    expect(codesOf(task, 'denial-risk')).to.deep.equal(['off-label']);
    expect(payer.requests().map((r) => r.path)).to.deep.equal(['/fhir/CoverageEligibilityRequest/$submit']);
  });

  it('warns of missing documentation, and sends the authorization once the coordinator asks', async () => {
    const { body, memberId } = referral('infliximab', { documents: false });
    payer.setMemberRule(memberId, {
      eligibility: IN_FORCE_AUTH_REQUIRED,
      priorAuth: { kind: 'approve', authorizationNumber: 'AUTH-AFTER-REVIEW' },
    });
    const taskId = await submit(body);
    const held = await taskWhen(taskId, 'auth-required');
    expect(codesOf(held, 'denial-risk')).to.deep.equal([
      'documentation-missing',
      'documentation-missing',
      'documentation-missing',
      'documentation-missing',
    ]);
    const information = held.extension.find((e: any) => e.url === CRD_COVERAGE_INFORMATION);
    expect(information.extension.find((e: any) => e.url === 'doc-needed').valueCode).to.equal('clinical');
    const sent = await fhirFetch(`${fhir}/Task/${taskId}/$submit-prior-auth`, { body: { resourceType: 'Parameters' } });
    expect(sent.status).to.equal(202);
    const ready = await taskWhen(taskId, 'ready-to-schedule');
    expect(outputsOf(ready, 'authorization-number')[0].valueString).to.equal('AUTH-AFTER-REVIEW');
    const again = await fhirFetch(`${fhir}/Task/${taskId}/$submit-prior-auth`, { body: { resourceType: 'Parameters' } });
    expect(again.status).to.equal(409);
  });

  it('waits through a payer that is down, retrying, and goes on when it is back', async () => {
    const { body, memberId } = referral('infliximab');
    payer.setMemberRule(memberId, { eligibility: { kind: 'fail-500' } });
    const taskId = await submit(body);
    await waitUntil('the coverage step failed twice', async () => {
      const pending = (await fhirFetch(`${gw.baseUrl}/admin/outbox?status=pending&_count=100`)).body.messages;
      return pending.some((m: any) => m.kind === 'verify-coverage' && m.attempts >= 2);
    });
    expect(statusOf((await fhirFetch(`${fhir}/Task/${taskId}`)).body)).to.equal('verifying-coverage');
    payer.setMemberRule(memberId, {
      eligibility: IN_FORCE_AUTH_REQUIRED,
      priorAuth: { kind: 'approve', authorizationNumber: 'AUTH-LATE' },
    });
    const ready = await taskWhen(taskId, 'ready-to-schedule');
    expect(outputsOf(ready, 'authorization-number')[0].valueString).to.equal('AUTH-LATE');
  });
});
