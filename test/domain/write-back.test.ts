import { expect } from 'chai';
import type { Task } from 'fhir/r4.js';
import { EHR_UPSERT, taskForEhr, taskWriteBack } from '../../src/delivery/rules/write-back.js';
import { buildReferralTask } from '../../src/referral/rules/referral-task.js';

const task: Task = buildReferralTask({
  taskId: 't-1',
  referralId: 'r-1',
  serviceRequestId: 'gateway-sr',
  patient: { reference: '#patient' },
  requester: { reference: '#requester' },
  status: 'received',
  rejectionReasons: [],
  now: new Date('2026-11-23T10:00:00Z'),
});
const ehr = {
  serviceRequest: { type: 'ServiceRequest', identifier: { system: 'urn:oid:1.2', value: 'ORD-1' } },
  patient: { type: 'Patient', identifier: { system: 'urn:oid:1.3', value: 'MRN-1' } },
};

describe('write-back', () => {
  it("points the EHR's Task at the EHR's order and patient, never at the gateway's copies", () => {
    const forEhr = taskForEhr(task, ehr);
    expect(forEhr.focus).to.deep.equal(ehr.serviceRequest);
    expect(forEhr.basedOn).to.deep.equal([ehr.serviceRequest]);
    expect(forEhr.for).to.deep.equal(ehr.patient);
    expect(forEhr).not.to.have.property('id');
    expect(forEhr).not.to.have.property('requester');
    expect(JSON.stringify(forEhr)).not.to.contain('gateway-sr');
    expect(forEhr.businessStatus).to.deep.equal(task.businessStatus);
  });

  it('makes an upsert message keyed by the referral, identified by the referral id', () => {
    const message = taskWriteBack({ messageId: 'm-1', tenant: 'ehr-a', referralId: 'r-1', task, ehr });
    expect(message).to.deep.include({ id: 'm-1', tenant: 'ehr-a', orderingKey: 'referral:r-1', kind: EHR_UPSERT });
    expect((message.payload as any).identifier).to.deep.equal({
      system: 'https://fhir.infusion-gateway.example/referral-id',
      value: 'r-1',
    });
  });
});
