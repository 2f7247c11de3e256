/**
 * "No referral reaches ready-to-schedule without verified coverage and, where required, an
 * approved authorization (a test tries every path)" (issue 5).
 *
 * Over real HTTP, with the stand-in payer and EHR, the outbox worker and the inquiry job running
 * as in production: every combination the coverage step can meet is posted as its own referral
 * (eligibility in force / not in force / payer down then back; the payer saying authorization is
 * required, not required, or nothing; the deployment's rule requiring it or not; the payer
 * approving, denying, pending then approving, pending then denying; the documents attached or
 * not), plus the cases stopped before the payer is asked (expired coverage, unknown payer,
 * out-of-network site). Each referral is driven to where it settles, and on through what a
 * coordinator does next ($submit-prior-auth after a review, a won appeal after a denial). Then
 * every version of every referral's Task (`_history`) is checked: a version in ready-to-schedule
 * has a verified-coverage output pointing at a stored Coverage and, where authorization was
 * required, an authorization number; no other referral ever passed through ready-to-schedule.
 *
 * "Required" follows the issue: the payer's answer when it gives one, else the deployment's rule
 * (fixtures/prior-auth-rules.json: infliximab needs it; vedolizumab for payer-cumberland at an
 * infusion center does not). Where the two disagree the payer is followed and the disagreement is
 * a warning on the Task, which is checked too.
 *
 * Then every shortcut a client has is tried, and each must be refused with an OperationOutcome
 * and change nothing.
 */
import { expect } from 'chai';
import { payerConnections } from '../support/referral-flow.js';
import { randomUUID } from 'node:crypto';
import { readFixture, withOrderNumber } from '../support/fixtures.js';
import { fhirFetch, startGateway, waitUntil, type RunningGateway } from '../support/gateway.js';
import { startStandInEhr, type StandInEhr } from '../../src/sandbox/stand-in-ehr.js';
import { startStandInPayer, type MemberRule, type PriorAuthRule, type StandInPayer } from '../../src/sandbox/stand-in-payer.js';

const BASE = 'https://fhir.infusion-gateway.example';
const TYPES = `${BASE}/CodeSystem/task-parameter-type`;
const DOCUMENTATION = `${BASE}/CodeSystem/documentation-requirement`;
const VERIFIED_COVERAGE_ID = `${BASE}/verified-coverage-id`;
const REFERRAL_ID = `${BASE}/referral-id`;
const APPEAL_STEP = `${BASE}/CodeSystem/appeal-step`;
const CRD_COVERAGE_INFORMATION = 'http://hl7.org/fhir/us/davinci-crd/StructureDefinition/ext-coverage-information';
const PLAN_CLASS = 'http://terminology.hl7.org/CodeSystem/coverage-class';

type Drug = 'infliximab' | 'vedolizumab';
type Eligibility = 'in-force' | 'not-in-force' | 'down-then-in-force';
type PayerSays = 'required' | 'not-required' | 'silent';
type PriorAuth = 'approve' | 'deny' | 'pend-then-approve' | 'pend-then-deny';
type Special = 'expired' | 'unknown-payer' | 'out-of-network';

/** The deployment's rule for each drug at payer-cumberland, infusion center (fixtures/prior-auth-rules.json). */
const RULE_REQUIRES: Record<Drug, boolean> = { infliximab: true, vedolizumab: false };
const DOCUMENTS: Record<Drug, string[]> = {
  infliximab: ['prior-treatment-failure', 'tb-screening', 'hepatitis-b-screening', 'current-weight'],
  vedolizumab: ['prior-treatment-failure', 'tb-screening'],
};
/** Where the coverage step leaves a referral until someone acts. */
const SETTLED = new Set(['ready-to-schedule', 'coverage-problem', 'auth-required', 'auth-denied', 'misroute-suspected']);

interface Case {
  name: string;
  drug: Drug;
  eligibility?: Eligibility;
  payerSays?: PayerSays;
  priorAuth?: PriorAuth;
  documents: boolean;
  special?: Special;
  memberId: string;
  taskId?: string;
  referralId?: string;
}

/** Whether authorization is required for the case, as the issue has it: the payer's answer, else the rule. */
function authRequired(c: Case): boolean {
  if (c.payerSays === 'required') return true;
  if (c.payerSays === 'not-required') return false;
  return RULE_REQUIRES[c.drug];
}

/** Where the case ends once the coordinator has done what there is to do (submitted after review, won the appeal). */
function expectedFinal(c: Case): 'ready-to-schedule' | 'coverage-problem' {
  if (c.special !== undefined || c.eligibility === 'not-in-force') return 'coverage-problem';
  return 'ready-to-schedule';
}

/** Where the coverage step first settles the case, before anyone acts. */
function expectedFirst(c: Case): string {
  if (c.special === 'out-of-network') return 'misroute-suspected';
  if (c.special !== undefined || c.eligibility === 'not-in-force') return 'coverage-problem';
  if (!authRequired(c)) return 'ready-to-schedule';
  if (!c.documents) return 'auth-required';
  return c.priorAuth === 'approve' || c.priorAuth === 'pend-then-approve' ? 'ready-to-schedule' : 'auth-denied';
}

function priorAuthRule(c: Case): PriorAuthRule {
  const number = `AUTH-${c.memberId}`;
  switch (c.priorAuth ?? 'approve') {
    case 'approve':
      return { kind: 'approve', authorizationNumber: number };
    case 'deny':
      return { kind: 'deny', reason: { display: 'Step therapy not documented' } };
    case 'pend-then-approve':
      return { kind: 'pend-then', inquiries: 1, then: { kind: 'approve', authorizationNumber: number } };
    case 'pend-then-deny':
      return { kind: 'pend-then', inquiries: 1, then: { kind: 'deny', reason: { display: 'Not medically necessary' } } };
  }
}

function memberRule(c: Case): MemberRule {
  const inForce = c.eligibility !== 'not-in-force';
  const authRequiredAnswer = c.payerSays === 'required' ? true : c.payerSays === 'not-required' ? false : undefined;
  return {
    eligibility: {
      inForce,
      ...(authRequiredAnswer !== undefined ? { authRequired: authRequiredAnswer } : {}),
      costShare: { copay: { value: 50, currency: 'USD' } },
    },
    priorAuth: priorAuthRule(c),
    // Down for a while: eligibility fails twice; once it answers, the first Claim/$submit fails too.
    ...(c.eligibility === 'down-then-in-force' ? { failFirst: { eligibility: 2, submit: 1 } } : {}),
  };
}

/** The referral the case posts: infliximab's fixture (Cumberland, Nashville), with the case's drug, member and changes. */
function referralBody(c: Case): any {
  const body = withOrderNumber(readFixture('referrals/infliximab/service-request.json'), `path-${randomUUID()}`);
  if (c.drug === 'vedolizumab') {
    const vedolizumab = readFixture('referrals/vedolizumab/service-request.json');
    body.code = vedolizumab.code;
    delete body.orderDetail;
  }
  const coverage = body.contained.find((r: any) => r.resourceType === 'Coverage');
  coverage.subscriberId = c.memberId;
  coverage.identifier[0].value = c.memberId;
  if (c.documents) {
    for (const code of DOCUMENTS[c.drug]) {
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
  switch (c.special) {
    case 'expired':
      coverage.period = { start: '2024-01-01', end: '2025-12-31' };
      break;
    case 'unknown-payer':
      coverage.payor = [{ reference: 'Organization/payer-unheard-of' }];
      coverage.class = [{ type: { coding: [{ system: PLAN_CLASS, code: 'plan' }] }, value: 'NOPE-PLAN' }];
      break;
    case 'out-of-network':
      // Peachtree's plan does not have the requested Green Hills site in its network.
      coverage.payor = [{ reference: 'Organization/payer-peachtree' }];
      coverage.class = [{ type: { coding: [{ system: PLAN_CLASS, code: 'plan' }] }, value: 'SELECT-HMO' }];
      break;
    case undefined:
      break;
  }
  return body;
}

function allCases(): Case[] {
  const cases: Case[] = [];
  const member = (): string => `P${randomUUID().slice(0, 8).toUpperCase()}`;
  for (const drug of ['infliximab', 'vedolizumab'] as const) {
    for (const eligibility of ['in-force', 'not-in-force', 'down-then-in-force'] as const) {
      for (const payerSays of ['required', 'not-required', 'silent'] as const) {
        for (const priorAuth of ['approve', 'deny', 'pend-then-approve', 'pend-then-deny'] as const) {
          for (const documents of [true, false]) {
            cases.push({
              name: `${drug}, ${eligibility}, payer says ${payerSays}, rule ${RULE_REQUIRES[drug] ? 'requires' : 'does not require'}, PA ${priorAuth}, documents ${documents ? 'attached' : 'missing'}`,
              drug,
              eligibility,
              payerSays,
              priorAuth,
              documents,
              memberId: member(),
            });
          }
        }
      }
    }
    for (const special of ['expired', 'unknown-payer', 'out-of-network'] as const) {
      cases.push({
        name: `${drug}, ${special}`,
        drug,
        special,
        documents: true,
        eligibility: 'in-force',
        payerSays: 'required',
        priorAuth: 'approve',
        memberId: member(),
      });
    }
  }
  return cases;
}

const outputsOf = (task: any, code: string): any[] =>
  (task.output ?? []).filter((o: any) => o.type.coding?.some((c: any) => c.system === TYPES && c.code === code));
const statusOf = (task: any): string => task.businessStatus.coding[0].code;

describe('no referral reaches ready-to-schedule without verified coverage and, where required, an approved authorization', function () {
  this.timeout(600_000);
  let payer: StandInPayer;
  let ehr: StandInEhr;
  let gw: RunningGateway;
  let fhir: string;
  const cases = allCases();

  before(async () => {
    payer = await startStandInPayer();
    ehr = await startStandInEhr();
    gw = await startGateway({
      background: true,
      env: {
        PAYER_CONNECTIONS: payerConnections(payer.baseUrl),
        PAYER_REQUEST_TIMEOUT_MS: '3000',
        EHR_FHIR_BASE_URL: ehr.baseUrl,
        EHR_POLL: 'false',
        OUTBOX_POLL_MS: '25',
        OUTBOX_RETRY_BASE_MS: '50',
        OUTBOX_RETRY_MAX_MS: '200',
        OUTBOX_MAX_ATTEMPTS: '10000',
        PRIOR_AUTH_INQUIRY_CRON: '* * * * * *',
      },
    });
    fhir = `${gw.baseUrl}/fhir`;
  });
  after(async () => {
    await gw.stop();
    await payer.stop();
    await ehr.stop();
  });

  async function task(taskId: string): Promise<any> {
    return (await fhirFetch(`${fhir}/Task/${taskId}`)).body;
  }

  /** Waits until every listed Task is in one of the settled states; returns them by id. */
  async function settled(taskIds: readonly string[], what: string): Promise<Map<string, any>> {
    const tasks = new Map<string, any>();
    await waitUntil(
      what,
      async () => {
        for (const id of taskIds) {
          if (tasks.has(id) && SETTLED.has(statusOf(tasks.get(id)))) continue;
          tasks.set(id, await task(id));
        }
        return taskIds.every((id) => SETTLED.has(statusOf(tasks.get(id))));
      },
      120_000,
      100,
    );
    return tasks;
  }

  /** Every version of the Task, oldest first. */
  async function versions(taskId: string): Promise<any[]> {
    const history = await fhirFetch(`${fhir}/Task/${taskId}/_history?_count=1000`);
    expect(history.status).to.equal(200);
    expect(history.body.entry).to.have.length(history.body.total);
    return history.body.entry.map((e: any) => e.resource).sort((a: any, b: any) => Number(a.meta.versionId) - Number(b.meta.versionId));
  }

  /** The invariant, on every version of the referral's Task. */
  async function assertNeverReadyWithoutCoverage(c: Case): Promise<void> {
    const all = await versions(c.taskId!);
    const ready = all.filter((v) => statusOf(v) === 'ready-to-schedule');
    if (expectedFinal(c) !== 'ready-to-schedule') {
      expect(
        ready.map((v) => v.meta.versionId),
        `${c.name}: never ready-to-schedule`,
      ).to.deep.equal([]);
    }
    for (const version of ready) {
      const where = `${c.name}, Task version ${version.meta.versionId}`;
      const verified = outputsOf(version, 'verified-coverage');
      expect(verified, `${where}: a verified-coverage output`).to.have.length(1);
      const coverage = await fhirFetch(`${fhir}/${verified[0].valueReference.reference}`);
      expect(coverage.status, `${where}: the verified Coverage is stored`).to.equal(200);
      expect(coverage.body.resourceType).to.equal('Coverage');
      expect(
        coverage.body.identifier.some((i: any) => i.system === VERIFIED_COVERAGE_ID && i.value === c.referralId),
        `${where}: the Coverage is the one verified for this referral`,
      ).to.equal(true);
      expect(outputsOf(version, 'coverage-issue'), `${where}: no coverage problem`).to.deep.equal([]);
      const information = version.extension?.find((e: any) => e.url === CRD_COVERAGE_INFORMATION);
      expect(information?.extension.find((e: any) => e.url === 'covered')?.valueCode, `${where}: covered`).to.equal('covered');
      if (authRequired(c)) {
        const numbers = outputsOf(version, 'authorization-number').map((o: any) => o.valueString);
        expect(numbers, `${where}: the authorization number`).to.have.length(1);
        expect(numbers[0]).to.be.a('string').and.not.equal('');
      } else {
        expect(outputsOf(version, 'authorization-number'), `${where}: no authorization where none was needed`).to.deep.equal([]);
      }
      if (c.payerSays !== 'silent' && authRequired(c) !== RULE_REQUIRES[c.drug]) {
        // The payer is followed where it disagrees with the deployment's rule, and the disagreement is shown.
        expect(
          outputsOf(version, 'denial-risk').map((o: any) => o.valueCodeableConcept.coding[0].code),
          `${where}: the disagreement is warned`,
        ).to.include('auth-requirement-disagreement');
      }
    }
  }

  it(`drives ${cases.length} referrals, one per combination, to where they settle, and on through review and appeal`, async () => {
    for (const c of cases) payer.setMemberRule(c.memberId, memberRule(c));
    // Posted ten at a time: enough for the worker to see referrals at every step at once.
    for (let i = 0; i < cases.length; i += 10) {
      await Promise.all(
        cases.slice(i, i + 10).map(async (c) => {
          const created = await fhirFetch(`${fhir}/ServiceRequest`, { body: referralBody(c) });
          expect(created.status, `${c.name}: ${JSON.stringify(created.body?.issue)}`).to.equal(201);
          const found = await fhirFetch(`${fhir}/Task?focus=ServiceRequest/${created.body.id}`);
          const t = found.body.entry[0].resource;
          c.taskId = t.id;
          c.referralId = t.identifier.find((id: any) => id.system === REFERRAL_ID).value;
        }),
      );
    }
    let tasks = await settled(
      cases.map((c) => c.taskId!),
      'every referral settled',
    );
    // The invariant first, whatever the state: then that each case took the path it was built for.
    for (const c of cases) await assertNeverReadyWithoutCoverage(c);
    for (const c of cases) expect(statusOf(tasks.get(c.taskId!)), c.name).to.equal(expectedFirst(c));

    // The out-of-network referrals: the site check holds them; the patient insists on the site.
    for (const c of cases.filter((x) => x.special === 'out-of-network')) {
      const confirm = await fhirFetch(`${fhir}/Task/${c.taskId}/$confirm-site`, {
        body: {
          resourceType: 'Parameters',
          parameter: [{ name: 'location', valueReference: { reference: 'Location/hin-nashville-green-hills' } }],
        },
      });
      expect(confirm.status, c.name).to.equal(200);
    }
    // Held for review (documentation missing): the coordinator sends the authorization anyway.
    const held = cases.filter((c) => statusOf(tasks.get(c.taskId!)) === 'auth-required');
    expect(held.length).to.be.greaterThan(0);
    for (const c of held) {
      await assertNeverReadyWithoutCoverage(c);
      const sent = await fhirFetch(`${fhir}/Task/${c.taskId}/$submit-prior-auth`, { body: { resourceType: 'Parameters' } });
      expect(sent.status, c.name).to.equal(202);
    }
    await waitUntil(
      'the reviewed and re-routed referrals left auth-required and misroute-suspected',
      async () => {
        for (const c of [...held, ...cases.filter((x) => x.special === 'out-of-network')]) {
          const status = statusOf(await task(c.taskId!));
          if (status === 'auth-required' || status === 'misroute-suspected' || !SETTLED.has(status)) return false;
        }
        return true;
      },
      120_000,
      100,
    );
    tasks = await settled(
      cases.map((c) => c.taskId!),
      'every referral settled after review',
    );
    for (const c of held) {
      const status = statusOf(tasks.get(c.taskId!));
      expect(status, c.name).to.equal(
        c.priorAuth === 'approve' || c.priorAuth === 'pend-then-approve' ? 'ready-to-schedule' : 'auth-denied',
      );
    }

    // Denied: the shortcut (won without the authorization) is refused; the real win moves the referral on.
    const denied = cases.filter((c) => statusOf(tasks.get(c.taskId!)) === 'auth-denied');
    expect(denied.length).to.be.greaterThan(0);
    for (const c of denied) {
      await assertNeverReadyWithoutCoverage(c);
      const referralTask = tasks.get(c.taskId!);
      const appealId = outputsOf(referralTask, 'appeal')[0].valueReference.reference.split('/')[1];
      const appeal = await task(appealId);
      const won = {
        ...appeal,
        status: 'completed',
        output: [{ type: { coding: [{ system: APPEAL_STEP, code: 'appeal-result' }] }, valueCode: 'approved' }],
      };
      const shortcut = await fhirFetch(`${fhir}/Task/${appealId}`, { method: 'PUT', body: won });
      expect(shortcut.status, c.name).to.equal(422);
      expect(shortcut.body.resourceType).to.equal('OperationOutcome');
      expect(shortcut.body.issue.flatMap((i: any) => i.expression ?? [])).to.include('Task.output');
      expect((await task(appealId)).meta.versionId, `${c.name}: the appeal is unchanged`).to.equal(appeal.meta.versionId);
      expect((await task(c.taskId!)).meta.versionId, `${c.name}: the referral is unchanged`).to.equal(referralTask.meta.versionId);
      won.output.push({
        type: { coding: [{ system: TYPES, code: 'authorization-number' }] },
        valueString: `AUTH-APPEAL-${c.memberId}`,
      } as any);
      const accepted = await fhirFetch(`${fhir}/Task/${appealId}`, { method: 'PUT', body: won });
      expect(accepted.status, `${c.name}: ${JSON.stringify(accepted.body?.issue)}`).to.equal(200);
    }

    tasks = await settled(
      cases.map((c) => c.taskId!),
      'every referral settled after the appeals',
    );
    for (const c of cases) {
      expect(statusOf(tasks.get(c.taskId!)), c.name).to.equal(expectedFinal(c));
      await assertNeverReadyWithoutCoverage(c);
    }
    // Each kind of path was really taken.
    const readyVersions = await Promise.all(cases.map(async (c) => (await versions(c.taskId!)).map((v) => statusOf(v))));
    const passedThrough = (status: string): number => readyVersions.filter((statuses) => statuses.includes(status)).length;
    expect(passedThrough('auth-pending'), 'some passed through auth-pending').to.be.greaterThan(0);
    expect(passedThrough('auth-denied'), 'some passed through auth-denied').to.be.greaterThan(0);
    expect(passedThrough('auth-required'), 'some passed through auth-required').to.be.greaterThan(0);
    expect(payer.requests().filter((r) => r.status === 500).length, 'the payer was down for some').to.be.greaterThan(0);
  });

  describe('every shortcut a client has is refused and changes nothing', () => {
    /** A referral's Task in a given state, taken from the cases above. */
    function taskIn(status: string, filter: (c: Case) => boolean = () => true): Promise<any> {
      return (async () => {
        for (const c of cases.filter(filter)) {
          const t = await task(c.taskId!);
          if (statusOf(t) === status) return t;
        }
        throw new Error(`no case ended in ${status}`);
      })();
    }

    async function unchanged(taskId: string, versionId: string): Promise<void> {
      const now = await task(taskId);
      expect(now.meta.versionId, `Task/${taskId} unchanged`).to.equal(versionId);
    }

    it('refuses a PUT of the referral Task that sets ready-to-schedule (422), with or without an authorization number', async () => {
      const stuck = await taskIn('coverage-problem', (c) => c.eligibility === 'not-in-force');
      const claimReady = {
        ...stuck,
        status: 'accepted',
        businessStatus: { coding: [{ system: `${BASE}/CodeSystem/referral-status`, code: 'ready-to-schedule' }] },
      };
      const plain = await fhirFetch(`${fhir}/Task/${stuck.id}`, { method: 'PUT', body: claimReady });
      expect(plain.status).to.equal(422);
      expect(plain.body.resourceType).to.equal('OperationOutcome');
      expect(plain.body.issue.every((i: any) => (i.expression ?? []).length > 0)).to.equal(true);

      const withAuthorization = {
        ...claimReady,
        output: [
          ...(stuck.output ?? []),
          { type: { coding: [{ system: TYPES, code: 'authorization-number' }] }, valueString: 'FORGED-1' },
          { type: { coding: [{ system: TYPES, code: 'verified-coverage' }] }, valueReference: { reference: 'Coverage/forged' } },
        ],
      };
      const forged = await fhirFetch(`${fhir}/Task/${stuck.id}`, { method: 'PUT', body: withAuthorization });
      expect(forged.status).to.equal(422);
      expect(forged.body.resourceType).to.equal('OperationOutcome');
      await unchanged(stuck.id, stuck.meta.versionId);
      expect(statusOf(await task(stuck.id))).to.equal('coverage-problem');
    });

    it('refuses $confirm-site on a referral that is not held for its site (409)', async () => {
      const denied = await taskIn('coverage-problem', (c) => c.special === 'expired');
      const answer = await fhirFetch(`${fhir}/Task/${denied.id}/$confirm-site`, {
        body: {
          resourceType: 'Parameters',
          parameter: [{ name: 'location', valueReference: { reference: 'Location/hin-nashville-midtown' } }],
        },
      });
      expect(answer.status).to.equal(409);
      expect(answer.body.resourceType).to.equal('OperationOutcome');
      expect(answer.body.issue[0].expression).to.deep.equal(['Task.businessStatus']);
      await unchanged(denied.id, denied.meta.versionId);
    });

    it('refuses $submit-prior-auth for a referral not held in auth-required (409), ready or stuck', async () => {
      for (const status of ['coverage-problem', 'ready-to-schedule']) {
        const t = await taskIn(status);
        const before = payer.requests().length;
        const answer = await fhirFetch(`${fhir}/Task/${t.id}/$submit-prior-auth`, { body: { resourceType: 'Parameters' } });
        expect(answer.status, status).to.equal(409);
        expect(answer.body.resourceType).to.equal('OperationOutcome');
        expect(answer.body.issue[0].expression).to.deep.equal(['Task.businessStatus']);
        await new Promise((resolve) => setTimeout(resolve, 300));
        await unchanged(t.id, t.meta.versionId);
        expect(payer.requests().length, 'nothing sent to the payer').to.equal(before);
      }
    });

    it('refuses to create a Task (405), even one that claims to be a ready referral', async () => {
      const ready = await taskIn('ready-to-schedule');
      const { id: _id, meta: _meta, ...copy } = ready;
      const created = await fhirFetch(`${fhir}/Task`, { body: copy });
      expect(created.status).to.equal(405);
      expect(created.body.resourceType).to.equal('OperationOutcome');
      const same = await fhirFetch(`${fhir}/Task?focus=${encodeURIComponent(ready.focus.reference)}`);
      expect(same.body.total).to.equal(1);
    });

    it('refuses a client Coverage that claims to be verified, alone or in a transaction, and no referral moves', async () => {
      const stuck = await taskIn('coverage-problem', (c) => c.eligibility === 'not-in-force');
      const referralId = stuck.identifier.find((i: any) => i.system === REFERRAL_ID).value;
      const claim = {
        resourceType: 'Coverage',
        status: 'active',
        identifier: [{ system: VERIFIED_COVERAGE_ID, value: referralId }],
        extension: [
          {
            url: `${BASE}/StructureDefinition/coverage-verification`,
            extension: [
              { url: 'verified', valueDateTime: '2026-11-23T10:00:00Z' },
              { url: 'in-force', valueBoolean: true },
              { url: 'prior-authorization', valueCode: 'approved' },
            ],
          },
        ],
        beneficiary: { reference: 'Patient/anyone' },
        payor: [{ reference: 'Organization/payer-cumberland' }],
      };
      const created = await fhirFetch(`${fhir}/Coverage`, { body: claim });
      expect(created.status, JSON.stringify(created.body?.issue)).to.equal(422);
      expect(created.body.issue[0].expression).to.deep.equal(['Coverage.identifier[0]']);
      const { identifier: _identifier, ...plain } = claim;
      const overwrite = await fhirFetch(`${fhir}/Coverage/verified-${referralId}`, {
        method: 'PUT',
        body: { ...plain, id: `verified-${referralId}` },
      });
      expect(overwrite.status).to.equal(422);
      expect(overwrite.body.issue[0].expression).to.deep.equal(['Coverage.id']);
      const inTransaction = await fhirFetch(fhir, {
        body: { resourceType: 'Bundle', type: 'transaction', entry: [{ resource: claim, request: { method: 'POST', url: 'Coverage' } }] },
      });
      expect(inTransaction.status).to.equal(400);
      expect(inTransaction.body.issue.map((i: any) => i.expression[0])).to.include('Bundle.entry[0].resource.identifier[0]');
      const stored = await fhirFetch(`${fhir}/Coverage?identifier=${encodeURIComponent(`${VERIFIED_COVERAGE_ID}|${referralId}`)}`);
      expect(stored.body.total).to.equal(0);
      await unchanged(stuck.id, stuck.meta.versionId);
      expect(statusOf(await task(stuck.id))).to.equal('coverage-problem');
      expect(outputsOf(await task(stuck.id), 'verified-coverage')).to.deep.equal([]);
    });

    it('refuses a transaction that writes a referral Task', async () => {
      const stuck = await taskIn('coverage-problem', (c) => c.special === 'unknown-payer');
      const ready = { ...stuck, businessStatus: { coding: [{ system: `${BASE}/CodeSystem/referral-status`, code: 'ready-to-schedule' }] } };
      const answer = await fhirFetch(fhir, {
        body: {
          resourceType: 'Bundle',
          type: 'transaction',
          entry: [{ resource: ready, request: { method: 'PUT', url: `Task/${stuck.id}` } }],
        },
      });
      // The EHR, the one role that sends transactions, may not write Tasks: refused entry by entry.
      expect(answer.status).to.equal(403);
      expect(answer.body.resourceType).to.equal('OperationOutcome');
      expect(answer.body.issue[0].expression).to.deep.equal(['Bundle.entry[0].request']);
      await unchanged(stuck.id, stuck.meta.versionId);
    });
  });
});
