import { expect } from 'chai';
import type { Organization, Patient, Practitioner, PractitionerRole, ServiceRequest, Task } from 'fhir/r4.js';
import { buildReferralTask } from '../../src/referral/rules/referral-task.js';
import { filterRows, queueRows, referencedPatientIds, serviceRequestIds } from '../../console/src/model/queue.js';
import { QUEUE_STATUSES, formatAge, requesterName, suggestedSites, waitingOn } from '../../console/src/model/referral.js';
import { timeline } from '../../console/src/model/history.js';
import { withResult, withStep, appealOutcome, appealStepStatuses } from '../../console/src/model/appeal.js';
import { buildAppealTask } from '../../src/coverage/rules/appeal.js';
import { REFERRAL_STATUS_SYSTEM } from '../../src/referral/rules/referral-status.js';

const order = (id: string, extra: Partial<ServiceRequest> = {}): ServiceRequest => ({
  resourceType: 'ServiceRequest',
  id,
  status: 'active',
  intent: 'order',
  subject: { reference: '#p' },
  contained: [{ resourceType: 'Patient', id: 'p', name: [{ use: 'official', family: 'Okafor', given: ['Ada'] }] } as Patient],
  code: { text: 'Vedolizumab 300 mg IV' },
  occurrencePeriod: { start: '2026-12-01', end: '2027-05-31' },
  locationReference: [{ reference: 'Location/site-1' }],
  ...extra,
});

const task = (id: string, serviceRequestId: string, lastUpdated: string): Task => ({
  resourceType: 'Task',
  id,
  status: 'in-progress',
  intent: 'order',
  focus: { reference: `ServiceRequest/${serviceRequestId}` },
  authoredOn: '2026-11-20T09:00:00Z',
  meta: { versionId: '2', lastUpdated },
});

describe('console model: queues', () => {
  it('makes a row per Task with its order: patient, drug, requested period, site, received and in-queue times', () => {
    const rows = queueRows([task('t1', 'sr1', '2026-11-22T09:00:00Z')], new Map([['sr1', order('sr1')]]), new Map());
    expect(rows).to.deep.equal([
      {
        taskId: 't1',
        serviceRequestId: 'sr1',
        patient: 'Ada Okafor',
        drug: 'Vedolizumab 300 mg IV',
        requestedPeriod: '2026-12-01 to 2027-05-31',
        priority: 'routine',
        siteId: 'site-1',
        receivedAt: '2026-11-20T09:00:00Z',
        inQueueSince: '2026-11-22T09:00:00Z',
      },
    ]);
  });

  it('reads a patient the order references (not contained) from the patients searched by _id', () => {
    const referencing = order('sr2', { subject: { reference: 'Patient/p-9' }, contained: [] });
    expect(referencedPatientIds([referencing, order('sr1')])).to.deep.equal(['p-9']);
    const rows = queueRows(
      [task('t2', 'sr2', '2026-11-22T09:00:00Z')],
      new Map([['sr2', referencing]]),
      new Map([['p-9', { resourceType: 'Patient', id: 'p-9', name: [{ text: 'Bo Lindqvist' }] }]]),
    );
    expect(rows[0]!.patient).to.equal('Bo Lindqvist');
  });

  it('asks for each order once, however many Tasks point at it', () => {
    expect(serviceRequestIds([task('a', 'sr1', 'x'), task('b', 'sr1', 'x'), task('c', 'sr2', 'x')])).to.deep.equal(['sr1', 'sr2']);
  });

  it('finds rows on the page by every word typed, ignoring case and accents', () => {
    const rows = queueRows(
      [task('t1', 'sr1', 'x'), task('t2', 'sr2', 'x')],
      new Map([
        ['sr1', order('sr1')],
        ['sr2', order('sr2', { code: { text: 'Ocrelizumab' } })],
      ]),
      new Map(),
    );
    const siteName = (): string => 'Nashville Midtówn';
    expect(filterRows(rows, 'ocre midtown', siteName).map((r) => r.taskId)).to.deep.equal(['t2']);
    expect(filterRows(rows, '', siteName)).to.have.length(2);
  });

  it('names whose move it is in every queue', () => {
    for (const status of QUEUE_STATUSES) expect(waitingOn(status).party).to.be.a('string').and.not.equal('');
    expect(waitingOn('auth-pending').party).to.equal('Payer');
    expect(waitingOn('misroute-suspected').party).to.equal('Coordinator');
  });

  it('states ages compactly: minutes, hours up to two days, then days', () => {
    const now = new Date('2026-12-04T12:00:00Z');
    expect(formatAge('2026-12-04T11:15:00Z', now)).to.equal('45 min');
    expect(formatAge('2026-12-03T00:00:00Z', now)).to.equal('36 h');
    expect(formatAge('2026-11-20T12:00:00Z', now)).to.equal('14 d');
  });
});

describe('console model: a referral', () => {
  it('reads the ranked suggestions with what the site check knew about each', () => {
    const built = buildReferralTask({
      taskId: 't',
      referralId: 'r',
      serviceRequestId: 'sr',
      patient: { reference: '#p' },
      requester: { reference: '#dr' },
      status: 'misroute-suspected',
      rejectionReasons: [],
      now: new Date('2026-12-01T10:00:00Z'),
      siteCheck: {
        decision: 'misroute-suspected',
        reasons: [{ code: 'too-far', display: 'far', expression: 'ServiceRequest.locationReference' }],
        suggestions: [
          { locationId: 'near', name: 'Near site', distanceKm: 4.66, inNetwork: true, patientChoice: true, previouslyTreated: false },
          { locationId: 'other', name: 'Other site', patientChoice: false, previouslyTreated: true },
        ],
      },
    });
    expect(suggestedSites(built)).to.deep.equal([
      { locationId: 'near', name: 'Near site', rank: 1, distanceKm: 4.7, inNetwork: true, patientChoice: true, previouslyTreated: false },
      { locationId: 'other', name: 'Other site', rank: 2, patientChoice: false, previouslyTreated: true },
    ]);
  });

  it('names who ordered through a contained PractitionerRole: the practitioner and the practice', () => {
    const withRole = order('sr', {
      requester: { reference: '#role' },
      contained: [
        {
          resourceType: 'PractitionerRole',
          id: 'role',
          practitioner: { reference: '#dr' },
          organization: { reference: '#org' },
        } as PractitionerRole,
        { resourceType: 'Practitioner', id: 'dr', name: [{ given: ['Amara'], family: 'Thorne' }] } as Practitioner,
        { resourceType: 'Organization', id: 'org', name: 'Belle Meade Digestive Health' } as Organization,
      ],
    });
    expect(requesterName(withRole)).to.equal('Amara Thorne, Belle Meade Digestive Health');
  });

  it('tells the history as changes between Task versions, oldest first', () => {
    const status = (code: string) => ({ coding: [{ system: REFERRAL_STATUS_SYSTEM, code }] });
    const entries = timeline([
      {
        resourceType: 'Task',
        status: 'in-progress',
        intent: 'order',
        meta: { versionId: '2', lastUpdated: '2026-12-02T00:00:00Z' },
        businessStatus: status('ready-to-schedule'),
      },
      {
        resourceType: 'Task',
        status: 'in-progress',
        intent: 'order',
        meta: { versionId: '1', lastUpdated: '2026-12-01T00:00:00Z' },
        businessStatus: status('verifying-coverage'),
      },
    ]);
    expect(entries.map((e) => [e.versionId, e.changes])).to.deep.equal([
      ['1', ['referral received']],
      ['2', ['moved from verifying-coverage to ready-to-schedule']],
    ]);
  });
});

describe('console model: the appeal checklist', () => {
  const appeal = buildAppealTask({
    taskId: 'appeal-1',
    referralTaskId: 'task-1',
    patient: { reference: '#p' },
    denial: { reasons: [{ text: 'Off-label' }] },
    now: new Date('2026-12-01T00:00:00Z'),
  });

  it('ticks one step and starts the appeal, changing nothing else', () => {
    const next = withStep(appeal, 'peer-to-peer-review', 'done');
    expect(next.status).to.equal('in-progress');
    expect(appealStepStatuses(next).find((s) => s.step === 'peer-to-peer-review')?.status).to.equal('done');
    expect(appealStepStatuses(next).filter((s) => s.status === 'pending')).to.have.length(5);
    expect(next.input?.map((i) => i.type)).to.deep.equal(appeal.input?.map((i) => i.type));
  });

  it('records a won appeal with the granted authorization, in the form the gateway reads as won', () => {
    const won = withResult(appeal, { won: true, authorizationNumber: 'PA-77' });
    expect(appealOutcome(won)).to.equal('won');
    expect(won.output?.some((o) => o.valueString === 'PA-77')).to.equal(true);
    expect(appealOutcome(withResult(appeal, { won: false }))).to.equal('lost');
  });
});
