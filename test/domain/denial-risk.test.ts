import { expect } from 'chai';
import type { Coding, DocumentReference, ServiceRequest } from 'fhir/r4.js';
import { DOCUMENTATION_REQUIREMENT_SYSTEM, assessDenialRisk, documentationPresent } from '../../src/coverage/rules/denial-risk.js';
import type { DenialRisk } from '../../src/coverage/rules/denial-risk.js';
import { findDrugById, parseDrugCatalog } from '../../src/directory/rules/drug-catalog.js';
import type { CatalogDrug, DrugCatalog } from '../../src/directory/rules/drug-catalog.js';
import { ICD10CM_SYSTEM } from '../../src/referral/rules/referral.js';
import { readFixture, referralFixtureDrugs } from '../support/fixtures.js';

const catalog: DrugCatalog = (() => {
  const parsed = parseDrugCatalog(readFixture('drug-catalog.json'));
  if (!parsed.catalog) throw new Error('fixture catalog is invalid');
  return parsed.catalog;
})();

function drug(id: string): CatalogDrug {
  const found = findDrugById(catalog, id);
  if (!found) throw new Error(`no drug ${id}`);
  return found;
}

function referral(drugId: string): ServiceRequest {
  return readFixture<ServiceRequest>(`referrals/${drugId}/service-request.json`);
}

function diagnosesOf(serviceRequest: ServiceRequest): Coding[] {
  return (serviceRequest.reasonCode ?? []).flatMap((c) => (c.coding ?? []).filter((coding) => coding.system === ICD10CM_SYSTEM));
}

/** Every catalog requirement of the drug evidenced, so that a test sees only the risk it is about. */
function allDocumentation(drugId: string): string[] {
  return drug(drugId).documentationRequirements.map((r) => r.code);
}

function document(id: string, code: string, status: DocumentReference['status'] = 'current'): DocumentReference {
  return {
    resourceType: 'DocumentReference',
    id,
    status,
    type: { coding: [{ system: DOCUMENTATION_REQUIREMENT_SYSTEM, code }] },
    content: [{ attachment: { contentType: 'application/pdf', url: `Binary/${id}` } }],
  };
}

function codesOf(risks: readonly DenialRisk[]): string[] {
  return risks.map((r) => r.code);
}

describe('denial risk', () => {
  for (const drugId of referralFixtureDrugs()) {
    it(`sees no label or frequency risk in the ${drugId} referral fixture`, () => {
      const serviceRequest = referral(drugId);
      const risks = assessDenialRisk({
        serviceRequest,
        drug: drug(drugId),
        diagnoses: diagnosesOf(serviceRequest),
        supportingDocumentation: allDocumentation(drugId),
      });
      expect(risks).to.deep.equal([]);
    });
  }

  it('warns that IVIG for multiple sclerosis is off-label, at the diagnosis', () => {
    const serviceRequest = referral('immune-globulin-iv');
    serviceRequest.reasonCode = [
      { text: 'Headache' },
      { coding: [{ system: ICD10CM_SYSTEM, code: 'G35.A', display: 'Relapsing-remitting multiple sclerosis' }] },
    ];
    const risks = assessDenialRisk({
      serviceRequest,
      drug: drug('immune-globulin-iv'),
      diagnoses: diagnosesOf(serviceRequest),
      supportingDocumentation: allDocumentation('immune-globulin-iv'),
    });
    expect(risks).to.deep.equal([
      {
        code: 'off-label',
        display:
          "None of the referral's diagnoses is an approved indication of immune globulin intravenous (human) in the drug catalog; payers often deny off-label use",
        expression: 'ServiceRequest.reasonCode[1]',
      },
    ]);
  });

  it('warns that IVIG for lupus is off-label, and is silent when one diagnosis is on the label', () => {
    const lupus: Coding = { system: ICD10CM_SYSTEM, code: 'M32.14', display: 'Glomerular disease in systemic lupus erythematosus' };
    const itp: Coding = { system: ICD10CM_SYSTEM, code: 'D69.3', display: 'Immune thrombocytopenic purpura' };
    const input = {
      serviceRequest: referral('immune-globulin-iv'),
      drug: drug('immune-globulin-iv'),
      supportingDocumentation: allDocumentation('immune-globulin-iv'),
    };
    expect(codesOf(assessDenialRisk({ ...input, diagnoses: [lupus] }))).to.deep.equal(['off-label']);
    expect(codesOf(assessDenialRisk({ ...input, diagnoses: [lupus, itp] }))).to.deep.equal([]);
  });

  it('warns of a referral without any diagnosis as off-label', () => {
    const risks = assessDenialRisk({
      serviceRequest: referral('infliximab'),
      drug: drug('infliximab'),
      diagnoses: [],
      supportingDocumentation: allDocumentation('infliximab'),
    });
    expect(risks.map((r) => [r.code, r.expression])).to.deep.equal([['off-label', 'ServiceRequest.reasonCode']]);
  });

  it('warns of each documentation requirement of the drug that the referral does not evidence', () => {
    const serviceRequest = referral('infliximab');
    const risks = assessDenialRisk({
      serviceRequest,
      drug: drug('infliximab'),
      diagnoses: diagnosesOf(serviceRequest),
      supportingDocumentation: ['tb-screening', 'current-weight'],
    });
    expect(risks.map((r) => [r.code, r.requirement, r.expression])).to.deep.equal([
      ['documentation-missing', 'prior-treatment-failure', 'ServiceRequest.supportingInfo'],
      ['documentation-missing', 'hepatitis-b-screening', 'ServiceRequest.supportingInfo'],
    ]);
    expect(risks[0]?.display).to.equal(
      'infliximab: no document evidences "prior-treatment-failure" (Inadequate response to or intolerance of conventional therapy (corticosteroids, immunomodulators, or methotrexate for rheumatoid arthritis), with drugs and dates.)',
    );
  });

  it('reads documentation from current DocumentReferences in supportingInfo, contained or resolved', () => {
    const serviceRequest = referral('vedolizumab');
    serviceRequest.contained = [
      ...(serviceRequest.contained ?? []),
      document('doc-ptf', 'prior-treatment-failure'),
      document('doc-old', 'tb-screening', 'superseded'),
    ];
    serviceRequest.supportingInfo = [
      { reference: '#doc-ptf' },
      { reference: '#doc-old' },
      { reference: 'DocumentReference/tb-2026' },
      { reference: 'Observation/weight' },
      { reference: '#not-contained' },
    ];
    const stored = document('tb-2026', 'tb-screening');
    const resolve = (r: { reference?: string }): DocumentReference | undefined =>
      r.reference === 'DocumentReference/tb-2026' ? stored : undefined;
    expect(documentationPresent(serviceRequest, resolve)).to.have.members(['prior-treatment-failure', 'tb-screening']);
    expect(documentationPresent(serviceRequest)).to.deep.equal(['prior-treatment-failure']);
  });

  it('does not count a document typed in another code system or entered in error', () => {
    const serviceRequest = referral('vedolizumab');
    const loinc: DocumentReference = {
      ...document('doc-1', 'prior-treatment-failure'),
      type: { coding: [{ system: 'http://loinc.org', code: '11506-3' }] },
    };
    const mistaken: DocumentReference = { ...document('doc-2', 'tb-screening'), docStatus: 'entered-in-error' };
    serviceRequest.contained = [...(serviceRequest.contained ?? []), loinc, mistaken];
    serviceRequest.supportingInfo = [{ reference: '#doc-1' }, { reference: '#doc-2' }];
    expect(documentationPresent(serviceRequest)).to.deep.equal([]);
  });

  it('warns, for the vedolizumab fixture as sent, that both of its documentation requirements are missing', () => {
    const serviceRequest = referral('vedolizumab');
    const risks = assessDenialRisk({
      serviceRequest,
      drug: drug('vedolizumab'),
      diagnoses: diagnosesOf(serviceRequest),
      supportingDocumentation: documentationPresent(serviceRequest),
    });
    expect(risks.map((r) => r.requirement)).to.deep.equal(['prior-treatment-failure', 'tb-screening']);
  });

  it('warns of doses closer together than the catalog allows (infliximab weekly)', () => {
    const serviceRequest = referral('infliximab');
    serviceRequest.occurrenceTiming = {
      repeat: { boundsPeriod: { start: '2026-12-01', end: '2027-01-31' }, frequency: 1, period: 1, periodUnit: 'wk' },
    };
    serviceRequest.quantityQuantity = { value: 8, unit: 'infusions' };
    const risks = assessDenialRisk({
      serviceRequest,
      drug: drug('infliximab'),
      diagnoses: diagnosesOf(serviceRequest),
      supportingDocumentation: allDocumentation('infliximab'),
    });
    expect(risks).to.deep.equal([
      {
        code: 'dose-interval-too-short',
        display: 'Doses 7 days apart are closer than the 14 days the catalog allows for infliximab',
        expression: 'ServiceRequest.occurrenceTiming.repeat',
      },
    ]);
  });

  it('takes the most frequent rate a repeat range allows (one to two doses a month)', () => {
    const serviceRequest = referral('natalizumab');
    serviceRequest.occurrenceTiming = { repeat: { frequency: 1, frequencyMax: 2, period: 1, periodUnit: 'mo' } };
    delete serviceRequest.quantityQuantity;
    const risks = assessDenialRisk({
      serviceRequest,
      drug: drug('natalizumab'),
      diagnoses: diagnosesOf(serviceRequest),
      supportingDocumentation: allDocumentation('natalizumab'),
    });
    expect(risks.map((r) => [r.code, r.display])).to.deep.equal([
      ['dose-interval-too-short', 'Doses 15.2 days apart are closer than the 28 days the catalog allows for natalizumab'],
      ['doses-per-year-exceeded', 'The order asks for 24 doses in 365 days; the catalog allows 13 for natalizumab'],
    ]);
  });

  it('warns of more doses in a year than the catalog allows (ocrelizumab, 4 in a year)', () => {
    const serviceRequest = referral('ocrelizumab');
    serviceRequest.quantityQuantity = { value: 4, unit: 'infusions' };
    const risks = assessDenialRisk({
      serviceRequest,
      drug: drug('ocrelizumab'),
      diagnoses: diagnosesOf(serviceRequest),
      supportingDocumentation: allDocumentation('ocrelizumab'),
    });
    expect(risks).to.deep.equal([
      {
        code: 'doses-per-year-exceeded',
        display: 'The order asks for 4 doses in 365 days; the catalog allows 3 for ocrelizumab',
        expression: 'ServiceRequest.quantityQuantity',
      },
    ]);
  });

  it('spreads a total over requested dates longer than a year', () => {
    const serviceRequest = referral('ocrelizumab');
    serviceRequest.quantityQuantity = { value: 4, system: 'http://unitsofmeasure.org', code: '{infusion}', unit: 'infusion' };
    serviceRequest.occurrencePeriod = { start: '2026-12-07', end: '2028-12-06' };
    const input = {
      serviceRequest,
      drug: drug('ocrelizumab'),
      diagnoses: diagnosesOf(serviceRequest),
      supportingDocumentation: allDocumentation('ocrelizumab'),
    };
    expect(assessDenialRisk(input)).to.deep.equal([]);
    serviceRequest.quantityQuantity.value = 8;
    expect(assessDenialRisk(input).map((r) => r.display)).to.deep.equal([
      'The order asks for 4 doses in 365 days; the catalog allows 3 for ocrelizumab',
    ]);
  });

  it('ignores a quantity that does not count doses (grams of IVIG)', () => {
    const serviceRequest = referral('immune-globulin-iv');
    serviceRequest.quantityQuantity = { value: 82, system: 'http://unitsofmeasure.org', code: 'g', unit: 'g' };
    const risks = assessDenialRisk({
      serviceRequest,
      drug: drug('immune-globulin-iv'),
      diagnoses: diagnosesOf(serviceRequest),
      supportingDocumentation: allDocumentation('immune-globulin-iv'),
    });
    expect(risks).to.deep.equal([]);
  });

  it('takes the repeat count over a larger quantity, and warns when both exceed the limit', () => {
    const serviceRequest = referral('tocilizumab');
    serviceRequest.occurrenceTiming = { repeat: { count: 12, period: 2, periodUnit: 'wk' } };
    serviceRequest.quantityQuantity = { value: 20, unit: 'doses' };
    const input = {
      serviceRequest,
      drug: drug('tocilizumab'),
      diagnoses: diagnosesOf(serviceRequest),
      supportingDocumentation: allDocumentation('tocilizumab'),
    };
    expect(assessDenialRisk(input).map((r) => [r.code, r.expression])).to.deep.equal([
      ['dose-interval-too-short', 'ServiceRequest.occurrenceTiming.repeat'],
    ]);
    serviceRequest.occurrenceTiming.repeat!.count = 14;
    expect(assessDenialRisk(input).map((r) => [r.code, r.expression])).to.deep.equal([
      ['dose-interval-too-short', 'ServiceRequest.occurrenceTiming.repeat'],
      ['doses-per-year-exceeded', 'ServiceRequest.occurrenceTiming.repeat.count'],
    ]);
  });

  it('checks explicit Timing.event dates: the shortest gap and the most doses in any 365 days', () => {
    const serviceRequest = referral('ocrelizumab');
    delete serviceRequest.occurrencePeriod;
    delete serviceRequest.quantityQuantity;
    serviceRequest.occurrenceTiming = { event: ['2026-12-07', '2026-12-21', '2027-06-07', '2027-12-06', '2028-06-05'] };
    const input = {
      serviceRequest,
      drug: drug('ocrelizumab'),
      diagnoses: diagnosesOf(serviceRequest),
      supportingDocumentation: allDocumentation('ocrelizumab'),
    };
    // 2026-12-07 to 2027-12-06 is 364 days: four doses in one year.
    expect(assessDenialRisk(input).map((r) => [r.code, r.display, r.expression])).to.deep.equal([
      [
        'doses-per-year-exceeded',
        'The order asks for 4 doses in 365 days; the catalog allows 3 for ocrelizumab',
        'ServiceRequest.occurrenceTiming.event',
      ],
    ]);
    serviceRequest.occurrenceTiming.event = ['2026-12-07', '2026-12-14'];
    expect(assessDenialRisk(input).map((r) => [r.code, r.display])).to.deep.equal([
      ['dose-interval-too-short', 'Doses 7 days apart are closer than the 14 days the catalog allows for ocrelizumab'],
    ]);
  });
});
