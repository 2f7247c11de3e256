/**
 * Eligibility, pure: the request the gateway sends, what the payer's response says, and the
 * patient's likely share per infusion (field note 003: USD 7,500 per IVIG infusion, USD 250 copay).
 */
import { expect } from 'chai';
import type { Coverage, CoverageEligibilityResponse, CoverageEligibilityResponseInsuranceItemBenefit } from 'fhir/r4.js';
import {
  BENEFIT_TYPE_SYSTEM,
  ELIGIBILITY_REQUEST_IDENTIFIER_SYSTEM,
  X12_BENEFIT_INFORMATION_SYSTEM,
  buildEligibilityRequest,
  estimatePatientCost,
  interpretEligibilityResponse,
} from '../../src/coverage/rules/eligibility.js';
import { HCPCS_SYSTEM } from '../../src/directory/rules/drug-catalog.js';
import { ICD10CM_SYSTEM } from '../../src/referral/rules/referral.js';

const NOW = new Date('2026-03-02T15:04:05.000Z');
const IVIG = { system: HCPCS_SYSTEM, code: 'J1459' };
const CIDP = { system: ICD10CM_SYSTEM, code: 'G61.81' };
const OCRELIZUMAB = { system: HCPCS_SYSTEM, code: 'J2350' };

const base = {
  id: 'elig-1',
  patient: { reference: 'Patient/p1' },
  insurer: { reference: 'Organization/payer-1' },
  provider: { reference: 'Organization/center' },
  facility: { reference: 'Location/site-7' },
  drugCodings: [IVIG],
  diagnoses: [CIDP],
  now: NOW,
};

function response(extra: Partial<CoverageEligibilityResponse>): CoverageEligibilityResponse {
  return {
    resourceType: 'CoverageEligibilityResponse',
    status: 'active',
    purpose: ['validation', 'benefits', 'auth-requirements'],
    patient: { reference: 'Patient/p1' },
    created: '2026-03-02T15:04:06Z',
    request: { reference: 'CoverageEligibilityRequest/elig-1' },
    outcome: 'complete',
    insurer: { reference: 'Organization/payer-1' },
    ...extra,
  };
}

function benefit(
  system: string,
  code: string,
  values: Partial<CoverageEligibilityResponseInsuranceItemBenefit>,
): CoverageEligibilityResponseInsuranceItemBenefit[] {
  return [{ type: { coding: [{ system, code }] }, ...values }];
}

describe('buildEligibilityRequest', () => {
  it('asks for validation, benefits and auth requirements of the drug at the site, created at the given time', () => {
    const request = buildEligibilityRequest({
      ...base,
      coverage: { reference: 'Coverage/c1' },
      servicedPeriod: { start: '2026-03-10', end: '2026-09-10' },
    });

    expect(request.resourceType).to.equal('CoverageEligibilityRequest');
    expect(request.status).to.equal('active');
    expect(request.purpose).to.deep.equal(['validation', 'benefits', 'auth-requirements']);
    expect(request.created).to.equal('2026-03-02T15:04:05.000Z');
    expect(request.identifier).to.deep.equal([{ system: ELIGIBILITY_REQUEST_IDENTIFIER_SYSTEM, value: 'elig-1' }]);
    expect(request.insurance).to.deep.equal([{ focal: true, coverage: { reference: 'Coverage/c1' } }]);
    expect(request.facility).to.deep.equal({ reference: 'Location/site-7' });
    expect(request.servicedPeriod).to.deep.equal({ start: '2026-03-10', end: '2026-09-10' });
    expect(request.item?.[0]?.productOrService).to.deep.equal({ coding: [IVIG] });
    expect(request.item?.[0]?.diagnosis).to.deep.equal([{ diagnosisCodeableConcept: { coding: [CIDP] } }]);
    expect(request.item?.[0]?.facility).to.deep.equal({ reference: 'Location/site-7' });
  });

  it('contains a Coverage given as a resource, without its server version, so the payer can read the member id', () => {
    const coverage: Coverage = {
      resourceType: 'Coverage',
      id: 'ehr-cov-9',
      meta: { versionId: '3', lastUpdated: '2026-01-01T00:00:00Z' },
      status: 'active',
      subscriberId: 'MBR-100',
      beneficiary: { reference: 'Patient/p1' },
      payor: [{ reference: 'Organization/payer-1' }],
    };
    const request = buildEligibilityRequest({ ...base, coverage });

    expect(request.insurance?.[0]?.coverage).to.deep.equal({ reference: '#coverage' });
    expect(request.contained).to.have.length(1);
    const contained = request.contained?.[0] as Coverage;
    expect(contained.id).to.equal('coverage');
    expect(contained.subscriberId).to.equal('MBR-100');
    expect(contained.meta).to.equal(undefined);
    expect(coverage.id).to.equal('ehr-cov-9');
  });
});

describe('interpretEligibilityResponse', () => {
  it('reads in force, authorization required and the cost share from in-network benefits', () => {
    const interpreted = interpretEligibilityResponse(
      response({
        insurance: [
          {
            coverage: { reference: 'Coverage/c1' },
            inforce: true,
            benefitPeriod: { start: '2026-01-01', end: '2026-12-31' },
            item: [
              {
                productOrService: { coding: [IVIG] },
                network: { coding: [{ system: 'http://terminology.hl7.org/CodeSystem/benefit-network', code: 'in' }] },
                authorizationRequired: true,
                benefit: [
                  ...benefit(BENEFIT_TYPE_SYSTEM, 'copay', { allowedMoney: { value: 250, currency: 'USD' } }),
                  ...benefit(BENEFIT_TYPE_SYSTEM, 'copay-percent', { allowedUnsignedInt: 20 }),
                  ...benefit(BENEFIT_TYPE_SYSTEM, 'deductible', {
                    allowedMoney: { value: 2000, currency: 'USD' },
                    usedMoney: { value: 1500.1, currency: 'USD' },
                  }),
                  ...benefit(X12_BENEFIT_INFORMATION_SYSTEM, 'G', {
                    allowedMoney: { value: 6000, currency: 'USD' },
                    usedMoney: { value: 4000, currency: 'USD' },
                  }),
                ],
              },
              {
                productOrService: { coding: [IVIG] },
                network: { coding: [{ system: 'http://terminology.hl7.org/CodeSystem/benefit-network', code: 'out' }] },
                benefit: benefit(BENEFIT_TYPE_SYSTEM, 'copay', { allowedMoney: { value: 900, currency: 'USD' } }),
              },
            ],
          },
        ],
      }),
      { drugCodings: [IVIG] },
    );

    expect(interpreted.inForce).to.equal(true);
    expect(interpreted.authRequired).to.equal(true);
    expect(interpreted.excluded).to.equal(undefined);
    expect(interpreted.errors).to.deep.equal([]);
    expect(interpreted.benefitPeriod).to.deep.equal({ start: '2026-01-01', end: '2026-12-31' });
    expect(interpreted.costShare).to.deep.equal({
      copay: { value: 250, currency: 'USD' },
      coinsurancePercent: 20,
      deductibleRemaining: { value: 499.9, currency: 'USD' },
      outOfPocketRemaining: { value: 2000, currency: 'USD' },
    });
  });

  it('takes the smaller of the individual and family deductible still to meet', () => {
    const interpreted = interpretEligibilityResponse(
      response({
        insurance: [
          {
            coverage: { reference: 'Coverage/c1' },
            inforce: true,
            item: [
              {
                benefit: benefit(BENEFIT_TYPE_SYSTEM, 'deductible', {
                  allowedMoney: { value: 1000, currency: 'USD' },
                  usedMoney: { value: 200, currency: 'USD' },
                }),
              },
              {
                benefit: benefit(X12_BENEFIT_INFORMATION_SYSTEM, 'C', {
                  allowedMoney: { value: 3000, currency: 'USD' },
                  usedMoney: { value: 2700, currency: 'USD' },
                }),
              },
            ],
          },
        ],
      }),
    );

    expect(interpreted.costShare.deductibleRemaining).to.deep.equal({ value: 300, currency: 'USD' });
  });

  it('says not in force when the payer says so, and leaves authorization unknown when no item speaks of it', () => {
    const interpreted = interpretEligibilityResponse(response({ insurance: [{ coverage: { reference: 'Coverage/c1' }, inforce: false }] }));

    expect(interpreted.inForce).to.equal(false);
    expect(interpreted.authRequired).to.equal(undefined);
    expect(interpreted.costShare).to.deep.equal({});
  });

  it('ignores benefits of another drug when the drug is given', () => {
    const interpreted = interpretEligibilityResponse(
      response({
        insurance: [
          {
            coverage: { reference: 'Coverage/c1' },
            inforce: true,
            item: [{ productOrService: { coding: [OCRELIZUMAB] }, authorizationRequired: true, excluded: true }],
          },
        ],
      }),
      { drugCodings: [IVIG] },
    );

    expect(interpreted.authRequired).to.equal(undefined);
    expect(interpreted.excluded).to.equal(undefined);
  });

  it("turns the payer's errors into coded issues that point at them", () => {
    const interpreted = interpretEligibilityResponse(
      response({
        outcome: 'error',
        error: [
          {
            code: {
              coding: [{ system: 'http://terminology.hl7.org/CodeSystem/adjudication-error', code: 'a001', display: 'Missing Identifier' }],
            },
          },
        ],
      }),
    );

    expect(interpreted.inForce).to.equal(undefined);
    expect(interpreted.errors).to.have.length(1);
    expect(interpreted.errors[0]?.severity).to.equal('error');
    expect(interpreted.errors[0]?.expression).to.deep.equal(['CoverageEligibilityResponse.error[0].code']);
    expect(interpreted.errors[0]?.details?.coding?.[0]?.code).to.equal('a001');
  });

  it('reports an error outcome without listed errors as one issue on the outcome', () => {
    const interpreted = interpretEligibilityResponse(response({ outcome: 'error', disposition: 'Subscriber not found' }));

    expect(interpreted.errors.map((issue) => issue.expression)).to.deep.equal([['CoverageEligibilityResponse.outcome']]);
    expect(interpreted.errors[0]?.diagnostics).to.contain('Subscriber not found');
  });
});

describe('estimatePatientCost', () => {
  const allowedAmount = { value: 7500, currency: 'USD' };

  it('charges the copay alone once the deductible is met (field note 003: USD 250 per infusion)', () => {
    const estimate = estimatePatientCost({
      allowedAmount,
      costShare: { copay: { value: 250, currency: 'USD' }, deductibleRemaining: { value: 0, currency: 'USD' } },
    });

    expect(estimate.perInfusion).to.deep.equal({ value: 250, currency: 'USD' });
    expect(estimate.explanation).to.contain('Copay: USD 250.00');
  });

  it('takes the deductible first, then coinsurance on the rest', () => {
    const estimate = estimatePatientCost({
      allowedAmount,
      costShare: { deductibleRemaining: { value: 1500, currency: 'USD' }, coinsurancePercent: 20, copay: { value: 250, currency: 'USD' } },
    });

    // 1,500 deductible + 20% of 6,000
    expect(estimate.perInfusion).to.deep.equal({ value: 2700, currency: 'USD' });
    expect(estimate.explanation).to.contain('Coinsurance: 20%');
  });

  it('caps the share at what is left before the out-of-pocket maximum', () => {
    const estimate = estimatePatientCost({
      allowedAmount,
      costShare: {
        deductibleRemaining: { value: 1500, currency: 'USD' },
        coinsurancePercent: 20,
        outOfPocketRemaining: { value: 1800, currency: 'USD' },
      },
    });

    expect(estimate.perInfusion).to.deep.equal({ value: 1800, currency: 'USD' });
    expect(estimate.explanation).to.contain('out-of-pocket maximum');
  });

  it('never charges more than the allowed amount when the deductible exceeds it', () => {
    const estimate = estimatePatientCost({
      allowedAmount: { value: 900, currency: 'USD' },
      costShare: { deductibleRemaining: { value: 3000, currency: 'USD' }, copay: { value: 250, currency: 'USD' } },
    });

    expect(estimate.perInfusion).to.deep.equal({ value: 900, currency: 'USD' });
  });

  it('leaves out a cost share in another currency and says so', () => {
    const estimate = estimatePatientCost({ allowedAmount, costShare: { copay: { value: 40, currency: 'EUR' } } });

    expect(estimate.perInfusion).to.deep.equal({ value: 0, currency: 'USD' });
    expect(estimate.explanation).to.contain('in EUR, not USD');
  });

  it('keeps cents exact', () => {
    const estimate = estimatePatientCost({
      allowedAmount: { value: 100.1, currency: 'USD' },
      costShare: { deductibleRemaining: { value: 0.2, currency: 'USD' }, coinsurancePercent: 10 },
    });

    // 0.20 + 10% of 99.90 = 0.20 + 9.99
    expect(estimate.perInfusion).to.deep.equal({ value: 10.19, currency: 'USD' });
  });
});
