import { expect } from 'chai';
import { buildReferralTask } from '../../src/referral/rules/referral-task.js';
import { REFERRAL_STATUS_SYSTEM, REJECTION_REASON_SYSTEM } from '../../src/referral/rules/referral-status.js';

const base = {
  taskId: 't-1',
  referralId: 'r-1',
  serviceRequestId: 'sr-1',
  patient: { reference: 'Patient/p-1' },
  requester: { reference: 'Practitioner/dr-1' },
  now: new Date('2026-11-23T10:00:00Z'),
};

describe('buildReferralTask', () => {
  it('tracks a received referral as a fulfil Task focused on the ServiceRequest', () => {
    const task = buildReferralTask({ ...base, status: 'received', rejectionReasons: [] });
    expect(task).to.deep.include({
      resourceType: 'Task',
      id: 't-1',
      status: 'received',
      intent: 'order',
      focus: { reference: 'ServiceRequest/sr-1' },
      basedOn: [{ reference: 'ServiceRequest/sr-1' }],
      for: { reference: 'Patient/p-1' },
      authoredOn: '2026-11-23T10:00:00.000Z',
    });
    expect(task.code?.coding?.[0]).to.include({ system: 'http://hl7.org/fhir/CodeSystem/task-code', code: 'fulfill' });
    expect(task.businessStatus?.coding?.[0]).to.include({ system: REFERRAL_STATUS_SYSTEM, code: 'received' });
    expect(task.statusReason).to.equal(undefined);
  });

  it('records every rejection reason as an output and the first as statusReason', () => {
    const task = buildReferralTask({
      ...base,
      status: 'rejected',
      rejectionReasons: [{ code: 'drug-not-in-catalog', display: 'Not in catalog', expression: 'ServiceRequest.code' }],
    });
    expect(task.status).to.equal('rejected');
    expect(task.businessStatus?.coding?.[0]?.code).to.equal('rejected');
    expect(task.statusReason?.coding?.[0]).to.include({ system: REJECTION_REASON_SYSTEM, code: 'drug-not-in-catalog' });
    expect(task.output).to.have.length(1);
    expect(task.output?.[0]?.valueCodeableConcept?.coding?.[0]?.code).to.equal('drug-not-in-catalog');
  });
});
