import { expect } from 'chai';
import type { Coding, Reference, Resource, ServiceRequest } from 'fhir/r4.js';
import { placerIdentifier, translateServiceRequest, type TranslationContext } from '../../src/referral/rules/referral.js';

const INFLIXIMAB: Coding = { system: 'http://www.cms.gov/Medicare/Coding/HCPCSReleaseCodeSets', code: 'J1745' };

function serviceRequest(overrides: Partial<ServiceRequest> = {}): ServiceRequest & { id: string } {
  return {
    resourceType: 'ServiceRequest',
    id: 'sr-1',
    identifier: [
      { system: 'urn:other', value: 'x-1' },
      {
        type: { coding: [{ system: 'http://terminology.hl7.org/CodeSystem/v2-0203', code: 'PLAC' }] },
        system: 'urn:oid:1.2.3.order',
        value: 'ORD-77',
      },
    ],
    status: 'active',
    intent: 'order',
    code: { coding: [INFLIXIMAB] },
    subject: { reference: '#patient' },
    requester: { reference: 'Practitioner/dr-1' },
    reasonCode: [
      {
        coding: [
          { system: 'http://hl7.org/fhir/sid/icd-10-cm', code: 'K50.90' },
          { system: 'http://snomed.info/sct', code: '34000006' },
        ],
      },
    ],
    locationReference: [{ reference: 'Location/nashville-west' }],
    insurance: [{ reference: 'Coverage/cov-1' }],
    occurrencePeriod: { start: '2026-12-01', end: '2027-06-01' },
    contained: [{ resourceType: 'Patient', id: 'patient' }],
    ...overrides,
  };
}

function context(overrides: Partial<TranslationContext> = {}): TranslationContext {
  const resources = new Map<string, Resource>([
    ['#patient', { resourceType: 'Patient', id: 'patient' }],
    ['Practitioner/dr-1', { resourceType: 'Practitioner', id: 'dr-1' }],
  ]);
  return {
    findDrug: (codings) => (codings.some((c) => c.code === 'J1745') ? { id: 'infliximab', name: 'Infliximab' } : undefined),
    isDirectoryLocation: (id) => id === 'nashville-west',
    resolve: (reference: Reference) => resources.get(reference.reference ?? ''),
    ...overrides,
  };
}

describe('translateServiceRequest', () => {
  it('turns a valid infusion order into a referral that keeps the source references', () => {
    const result = translateServiceRequest(serviceRequest(), context());
    expect(result.kind).to.equal('accepted');
    if (result.kind !== 'accepted') return;
    expect(result.referral).to.deep.include({
      sourceIdentifier: { system: 'urn:oid:1.2.3.order', value: 'ORD-77' },
      serviceRequest: { reference: 'ServiceRequest/sr-1' },
      patient: { reference: '#patient' },
      requester: { reference: 'Practitioner/dr-1' },
      coverage: [{ reference: 'Coverage/cov-1' }],
      priority: 'routine',
      requestedPeriod: { start: '2026-12-01', end: '2027-06-01' },
    });
    expect(result.referral.drug).to.deep.equal({ catalogId: 'infliximab', name: 'Infliximab', orderedCodings: [INFLIXIMAB] });
    expect(result.referral.diagnoses).to.deep.equal([{ system: 'http://hl7.org/fhir/sid/icd-10-cm', code: 'K50.90' }]);
    expect(result.referral.requestedSite).to.deep.equal({
      reference: { reference: 'Location/nashville-west' },
      directoryLocationId: 'nashville-west',
    });
  });

  it('keeps a requested site outside the directory without claiming it is one', () => {
    const result = translateServiceRequest(serviceRequest({ locationReference: [{ reference: 'Location/practice-office' }] }), context());
    expect(result.kind).to.equal('accepted');
    if (result.kind === 'accepted')
      expect(result.referral.requestedSite).to.deep.equal({ reference: { reference: 'Location/practice-office' } });
  });

  it('rejects an order for a drug the catalog does not hold, naming ServiceRequest.code', () => {
    const result = translateServiceRequest(
      serviceRequest({ code: { coding: [{ system: 'http://www.cms.gov/Medicare/Coding/HCPCSReleaseCodeSets', code: 'J9312' }] } }),
      context(),
    );
    expect(result.kind).to.equal('rejected');
    if (result.kind !== 'rejected') return;
    expect(result.reasons).to.have.length(1);
    expect(result.reasons[0]).to.include({ code: 'drug-not-in-catalog', expression: 'ServiceRequest.code' });
    expect(result.reasons[0]?.display).to.contain('J9312');
  });

  it('refuses references to missing contained resources and to the wrong resource types, all at once', () => {
    const result = translateServiceRequest(
      serviceRequest({
        subject: { reference: '#nobody' },
        requester: { reference: 'Patient/p-2' },
        insurance: [{ reference: 'Location/x' }],
      }),
      context(),
    );
    expect(result.kind).to.equal('refused');
    if (result.kind !== 'refused') return;
    expect(result.issues.map((i) => i.expression?.[0])).to.deep.equal([
      'ServiceRequest.subject',
      'ServiceRequest.requester',
      'ServiceRequest.insurance[0]',
    ]);
  });

  it('refuses an order without a usable order number (identifier with system and value)', () => {
    const result = translateServiceRequest(serviceRequest({ identifier: [{ value: 'no-system' }] }), context());
    expect(result.kind).to.equal('refused');
    if (result.kind === 'refused') expect(result.issues[0]?.expression).to.deep.equal(['ServiceRequest.identifier']);
  });
});

describe('placerIdentifier', () => {
  it('prefers the PLAC-typed identifier over the first one', () => {
    expect(placerIdentifier(serviceRequest())?.value).to.equal('ORD-77');
  });

  it('falls back to the first identifier that has both system and value', () => {
    expect(placerIdentifier(serviceRequest({ identifier: [{ value: 'v' }, { system: 's', value: 'v2' }] }))?.value).to.equal('v2');
  });
});
