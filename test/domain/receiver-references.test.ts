import { expect } from 'chai';
import type { Coverage, Patient, Reference, ServiceRequest, Task } from 'fhir/r4.js';
import { containedAsLogical, gatewayReceiver, referencesForReceiver } from '../../src/delivery/rules/receiver-references.js';
import { forEhr, taskForEhr } from '../../src/delivery/rules/write-back.js';

const mrn = { system: 'urn:oid:2.16.840.1.113883.19.5', value: 'MRN-7781' };
const ehrPatient = { type: 'Patient', identifier: mrn };
const ehrOrder = { reference: 'ServiceRequest/ehr-order-9' };

/** Every literal reference left in `value`. */
function literals(value: unknown): string[] {
  const found: string[] = [];
  JSON.stringify(value, (key, inner) => {
    if (key === 'reference' && typeof inner === 'string') found.push(inner);
    return inner;
  });
  return found;
}

describe('references for a receiver', () => {
  it("keeps local references into the same resource and maps the gateway's own ids to the receiver's", () => {
    const task: Task = {
      resourceType: 'Task',
      status: 'requested',
      intent: 'order',
      contained: [{ resourceType: 'Patient', id: 'p' }],
      for: { reference: 'Patient/gateway-patient-1' },
      owner: { reference: '#p' },
      focus: { reference: 'ServiceRequest/gateway-sr-1' },
    };
    const { resource, dropped } = referencesForReceiver(task, {
      mapped: new Map<string, Reference>([
        ['Patient/gateway-patient-1', ehrPatient],
        ['ServiceRequest/gateway-sr-1', ehrOrder],
      ]),
    });
    expect(resource.for).to.deep.equal(ehrPatient);
    expect(resource.focus).to.deep.equal(ehrOrder);
    expect(resource.owner).to.deep.equal({ reference: '#p' });
    expect(dropped).to.deep.equal([]);
    expect(task.for).to.deep.equal({ reference: 'Patient/gateway-patient-1' }, 'the input is not changed');
  });

  it("turns a reference into another resource's contained into a logical one, and drops what nothing can name", () => {
    const task: Task = {
      resourceType: 'Task',
      status: 'requested',
      intent: 'order',
      for: { reference: '#patient' },
      requester: { reference: '#role' },
      input: [{ type: { text: 'site' }, valueReference: { reference: 'Location/loc-3', display: 'Riverside Infusion' } }],
      basedOn: [{ reference: 'ServiceRequest/unknown' }, ehrOrder],
    };
    const { resource, dropped } = referencesForReceiver(task, {
      mapped: new Map([['#patient', ehrPatient]]),
      atReceiver: (r) => r === ehrOrder.reference,
    });
    expect(resource.for).to.deep.equal(ehrPatient);
    expect(resource).not.to.have.property('requester');
    expect(resource.input?.[0]?.valueReference).to.deep.equal({ display: 'Riverside Infusion' });
    expect(resource.basedOn).to.deep.equal([ehrOrder]);
    expect(dropped).to.have.members(['Task.requester', 'Task.input[0].valueReference', 'Task.basedOn[0]']);
  });

  it("names an order's contained resources by their identifiers from outside the order", () => {
    const order: ServiceRequest = {
      resourceType: 'ServiceRequest',
      status: 'active',
      intent: 'order',
      contained: [{ resourceType: 'Patient', id: 'pat', identifier: [mrn] } as Patient, { resourceType: 'PractitionerRole', id: 'role' }],
      subject: { reference: '#pat' },
    };
    const mapped = containedAsLogical(order);
    expect(mapped.get('#pat')).to.deep.equal(ehrPatient);
    expect(mapped.has('#role')).to.equal(false);
    const served = referencesForReceiver(
      {
        resourceType: 'Task',
        status: 'requested',
        intent: 'order',
        for: { reference: '#pat' },
        focus: { reference: 'ServiceRequest/gw-1' },
      } as Task,
      gatewayReceiver(mapped),
    ).resource;
    expect(served.for).to.deep.equal(ehrPatient);
    expect(served.focus).to.deep.equal({ reference: 'ServiceRequest/gw-1' });
  });

  it("writes a Coverage back with the EHR's patient as beneficiary, not the gateway's Patient id", () => {
    const coverage: Coverage = {
      resourceType: 'Coverage',
      status: 'active',
      beneficiary: { reference: 'Patient/gw-patient-22' },
      payor: [{ reference: 'Organization/gw-org-1', identifier: { system: 'http://hl7.org/fhir/sid/us-npi', value: '1234567893' } }],
    };
    const written = forEhr(
      coverage,
      { serviceRequest: ehrOrder, patient: { reference: 'Patient/ehr-p-5' } },
      { patient: ['Patient/gw-patient-22'] },
    );
    expect(written.beneficiary).to.deep.equal({ reference: 'Patient/ehr-p-5' });
    expect(written.payor).to.deep.equal([{ identifier: { system: 'http://hl7.org/fhir/sid/us-npi', value: '1234567893' } }]);
    expect(literals(written)).to.deep.equal(['Patient/ehr-p-5']);
  });

  it("leaves no reference into the order's contained resources in the EHR's Task", () => {
    const task: Task = {
      resourceType: 'Task',
      id: 'gw-task',
      status: 'requested',
      intent: 'order',
      for: { reference: '#patient' },
      requester: { reference: '#role' },
      focus: { reference: 'ServiceRequest/gw-sr' },
      basedOn: [{ reference: 'ServiceRequest/gw-sr' }],
    };
    const written = taskForEhr(task, { serviceRequest: ehrOrder, patient: ehrPatient });
    expect(literals(written)).to.deep.equal(['ServiceRequest/ehr-order-9', 'ServiceRequest/ehr-order-9']);
    expect(written.for).to.deep.equal(ehrPatient);
  });
});
