/**
 * Da Vinci PAS, pure: the request and inquiry Bundles, and what a response Bundle decides.
 */
import { expect } from 'chai';
import type { Bundle, Claim, ClaimResponse, Coverage, Extension, Patient } from 'fhir/r4.js';
import {
  ITEM_PRE_AUTH_PERIOD_URL,
  PAS_SUPPORTING_INFO_SYSTEM,
  PRIOR_AUTHORIZATION_CLAIM_SYSTEM,
  REVIEW_ACTION_CODE_URL,
  REVIEW_ACTION_URL,
  X12_REVIEW_ACTION_SYSTEM,
  X12_REVIEW_DECISION_REASON_SYSTEM,
  buildInquiryBundle,
  buildPriorAuthorizationBundle,
  interpretClaimResponseBundle,
} from '../../src/coverage/rules/prior-authorization.js';
import { HCPCS_SYSTEM } from '../../src/directory/rules/drug-catalog.js';
import { ICD10CM_SYSTEM } from '../../src/referral/rules/referral.js';

const NOW = new Date('2026-03-02T15:04:05.000Z');
const INFLIXIMAB = { system: HCPCS_SYSTEM, code: 'J1745' };
const CROHNS = { system: ICD10CM_SYSTEM, code: 'K50.90' };
const patient: Patient = { resourceType: 'Patient', id: 'pat-1', meta: { versionId: '4', lastUpdated: '2026-01-01T00:00:00Z' } };
const coverage: Coverage = {
  resourceType: 'Coverage',
  status: 'active',
  subscriberId: 'MBR-1',
  beneficiary: { reference: 'Patient/pat-1' },
  payor: [{ reference: 'Organization/payer-1' }],
};

const input = {
  bundleId: 'pas-bundle-1',
  claimId: 'pa-42',
  now: NOW,
  patient,
  coverage,
  insurer: { reference: 'Organization/payer-1' },
  provider: { reference: 'Organization/center' },
  site: { reference: 'Location/site-7' },
  drugCodings: [INFLIXIMAB],
  diagnoses: [CROHNS],
  servicedPeriod: { start: '2026-03-10', end: '2026-09-10' },
  quantity: { value: 8, unit: 'infusion' },
  supportingInfo: [{ reference: 'DocumentReference/lmn-1' }],
};

function reviewAction(code: string, parts: Extension[] = []): Extension {
  return {
    url: REVIEW_ACTION_URL,
    extension: [{ url: REVIEW_ACTION_CODE_URL, valueCodeableConcept: { coding: [{ system: X12_REVIEW_ACTION_SYSTEM, code }] } }, ...parts],
  };
}

function responseBundle(extra: Partial<ClaimResponse>, itemExtensions: { adjudication?: Extension[]; item?: Extension[] } = {}): Bundle {
  const response: ClaimResponse = {
    resourceType: 'ClaimResponse',
    status: 'active',
    type: { coding: [{ system: 'http://terminology.hl7.org/CodeSystem/claim-type', code: 'professional' }] },
    use: 'preauthorization',
    patient: { reference: 'Patient/pat-1' },
    created: '2026-03-02T15:05:00Z',
    insurer: { reference: 'Organization/payer-1' },
    outcome: 'complete',
    item: [
      {
        itemSequence: 1,
        ...(itemExtensions.item ? { extension: itemExtensions.item } : {}),
        adjudication: [
          {
            category: { coding: [{ code: 'submitted' }] },
            ...(itemExtensions.adjudication ? { extension: itemExtensions.adjudication } : {}),
          },
        ],
      },
    ],
    ...extra,
  };
  return {
    resourceType: 'Bundle',
    type: 'collection',
    entry: [{ fullUrl: 'urn:uuid:5d0a8a2a-2d3c-4d7e-9b5c-000000000001', resource: response }],
  };
}

describe('buildPriorAuthorizationBundle', () => {
  it('puts the preauthorization Claim first in a collection, with the resources it references after it', () => {
    const bundle = buildPriorAuthorizationBundle(input);

    expect(bundle.type).to.equal('collection');
    expect(bundle.timestamp).to.equal('2026-03-02T15:04:05.000Z');
    expect(bundle.identifier?.value).to.equal('pas-bundle-1');
    expect(bundle.entry?.map((entry) => entry.resource?.resourceType)).to.deep.equal(['Claim', 'Patient', 'Coverage']);
    const claim = bundle.entry?.[0]?.resource as Claim;
    expect(claim.use).to.equal('preauthorization');
    expect(claim.status).to.equal('active');
    expect(claim.created).to.equal('2026-03-02T15:04:05.000Z');
    expect(claim.identifier).to.deep.equal([{ system: PRIOR_AUTHORIZATION_CLAIM_SYSTEM, value: 'pa-42' }]);
    expect(claim.insurer).to.deep.equal({ reference: 'Organization/payer-1' });
    expect(claim.provider).to.deep.equal({ reference: 'Organization/center' });
    expect(claim.facility).to.deep.equal({ reference: 'Location/site-7' });
    expect(claim.diagnosis).to.deep.equal([{ sequence: 1, diagnosisCodeableConcept: { coding: [CROHNS] } }]);
    expect(claim.supportingInfo).to.deep.equal([
      {
        sequence: 1,
        category: { coding: [{ system: PAS_SUPPORTING_INFO_SYSTEM, code: 'additionalInformation' }] },
        valueReference: { reference: 'DocumentReference/lmn-1' },
      },
    ]);
    expect(claim.item).to.deep.equal([
      {
        sequence: 1,
        diagnosisSequence: [1],
        informationSequence: [1],
        productOrService: { coding: [INFLIXIMAB] },
        servicedPeriod: { start: '2026-03-10', end: '2026-09-10' },
        quantity: { value: 8, unit: 'infusion' },
      },
    ]);
  });

  it("points the Claim's references at the entries' fullUrls", () => {
    const bundle = buildPriorAuthorizationBundle(input);
    const claim = bundle.entry?.[0]?.resource as Claim;
    const fullUrls = bundle.entry?.map((entry) => entry.fullUrl) ?? [];

    expect(fullUrls.every((url) => url?.startsWith('https://'))).to.equal(true);
    expect(fullUrls).to.include(`https://fhir.infusion-gateway.example/fhir/${claim.patient.reference}`);
    expect(fullUrls).to.include(`https://fhir.infusion-gateway.example/fhir/${claim.insurance[0]?.coverage.reference}`);
    expect(claim.insurance[0]?.focal).to.equal(true);
  });

  it('gives a Coverage without an id one made from the claim id, and drops the server version of the Patient', () => {
    const bundle = buildPriorAuthorizationBundle(input);

    expect(bundle.entry?.[2]?.resource?.id).to.equal('pa-42-coverage');
    expect(bundle.entry?.[1]?.resource?.id).to.equal('pat-1');
    expect(bundle.entry?.[1]?.resource?.meta).to.equal(undefined);
    expect(patient.meta?.versionId).to.equal('4');
  });
});

describe('buildInquiryBundle', () => {
  it('names the earlier submission by the same Claim identifier', () => {
    const bundle = buildInquiryBundle({
      bundleId: 'pas-inquiry-1',
      claimId: 'pa-42',
      now: NOW,
      patient,
      coverage,
      insurer: input.insurer,
      provider: input.provider,
    });
    const claim = bundle.entry?.[0]?.resource as Claim;

    expect(bundle.type).to.equal('collection');
    expect(claim.resourceType).to.equal('Claim');
    expect(claim.identifier).to.deep.equal([{ system: PRIOR_AUTHORIZATION_CLAIM_SYSTEM, value: 'pa-42' }]);
    expect(claim.use).to.equal('preauthorization');
    expect(bundle.entry?.map((entry) => entry.resource?.resourceType)).to.deep.equal(['Claim', 'Patient', 'Coverage']);
  });
});

describe('interpretClaimResponseBundle', () => {
  it('reads an approval with the authorization number from the review action and the period from the response', () => {
    const decision = interpretClaimResponseBundle(
      responseBundle(
        { preAuthPeriod: { start: '2026-03-10', end: '2026-09-10' } },
        { adjudication: [reviewAction('A1', [{ url: 'number', valueString: 'AUTH0001' }])] },
      ),
    );

    expect(decision).to.deep.equal({
      kind: 'approved',
      authorizationNumber: 'AUTH0001',
      period: { start: '2026-03-10', end: '2026-09-10' },
      partial: false,
    });
  });

  it("falls back to preAuthRef and the item's preAuthPeriod extension", () => {
    const decision = interpretClaimResponseBundle(
      responseBundle(
        { preAuthRef: 'REF-9' },
        {
          adjudication: [reviewAction('A2')],
          item: [{ url: ITEM_PRE_AUTH_PERIOD_URL, valuePeriod: { start: '2026-04-01', end: '2026-06-30' } }],
        },
      ),
    );

    expect(decision).to.deep.equal({
      kind: 'approved',
      authorizationNumber: 'REF-9',
      period: { start: '2026-04-01', end: '2026-06-30' },
      partial: true,
    });
  });

  it('reads a denial with its X12 reason', () => {
    // A made-up code: the X12 reason list is licensed, and only the shape matters here.
    const reason = {
      system: X12_REVIEW_DECISION_REASON_SYSTEM,
      code: 'TEST-1',
      display: 'Documentation of prior treatment failure missing',
    };
    const decision = interpretClaimResponseBundle(
      responseBundle(
        { disposition: 'Denied' },
        { adjudication: [reviewAction('A3', [{ url: 'reasonCode', valueCodeableConcept: { coding: [reason] } }])] },
      ),
    );

    expect(decision).to.deep.equal({
      kind: 'denied',
      reasons: [{ code: reason, display: 'Documentation of prior treatment failure missing' }],
    });
  });

  it('gives the disposition as the reason of a denial that codes none', () => {
    const decision = interpretClaimResponseBundle(
      responseBundle({ disposition: 'Off-label use for this diagnosis' }, { adjudication: [reviewAction('A3')] }),
    );

    expect(decision).to.deep.equal({ kind: 'denied', reasons: [{ display: 'Off-label use for this diagnosis' }] });
  });

  it('lets one denied item deny the request even when another is certified', () => {
    const bundle = responseBundle({}, { adjudication: [reviewAction('A1', [{ url: 'number', valueString: 'X' }]), reviewAction('A3')] });

    expect(interpretClaimResponseBundle(bundle).kind).to.equal('denied');
  });

  it('reads a pended request from A4, and from a queued outcome without a review action', () => {
    expect(interpretClaimResponseBundle(responseBundle({ outcome: 'queued' }, { adjudication: [reviewAction('A4')] }))).to.deep.equal({
      kind: 'pended',
    });
    expect(interpretClaimResponseBundle(responseBundle({ outcome: 'queued' }))).to.deep.equal({ kind: 'pended' });
  });

  it('reads the review action where PAS 1.x put it, on the item', () => {
    const decision = interpretClaimResponseBundle(
      responseBundle({}, { item: [reviewAction('A1', [{ url: 'number', valueString: 'OLD-1' }])] }),
    );

    expect(decision).to.deep.equal({ kind: 'approved', authorizationNumber: 'OLD-1', partial: false });
  });

  it('says no authorization is needed when every item says NA', () => {
    expect(interpretClaimResponseBundle(responseBundle({}, { adjudication: [reviewAction('NA')] }))).to.deep.equal({
      kind: 'not-required',
    });
  });

  it("turns the payer's errors into issues pointing at them", () => {
    const decision = interpretClaimResponseBundle(
      responseBundle({
        outcome: 'error',
        error: [
          {
            code: {
              coding: [{ system: 'https://codesystem.x12.org/005010/901', code: '72', display: 'Invalid/Missing Subscriber/Insured ID' }],
            },
          },
        ],
      }),
    );

    expect(decision.kind).to.equal('error');
    if (decision.kind !== 'error') return;
    expect(decision.issues).to.have.length(1);
    expect(decision.issues[0]?.expression).to.deep.equal(['Bundle.entry[0].resource.error[0].code']);
    expect(decision.issues[0]?.diagnostics).to.contain('Invalid/Missing Subscriber/Insured ID');
  });

  describe('a review action beside ClaimResponse.error: the review action is the decision', () => {
    const error = {
      code: { coding: [{ system: 'https://codesystem.x12.org/005010/901', code: '15', display: 'Required application data missing' }] },
    };

    it('reads A3 with an error as a denial, the error giving the reason when the review gives none', () => {
      const decision = interpretClaimResponseBundle(
        responseBundle({ outcome: 'error', error: [error] }, { adjudication: [reviewAction('A3')] }),
      );

      expect(decision).to.deep.equal({
        kind: 'denied',
        reasons: [{ code: error.code.coding[0], display: 'Required application data missing' }],
      });
    });

    it("keeps the review's own reason of an A3 over the error", () => {
      const reason = { system: X12_REVIEW_DECISION_REASON_SYSTEM, code: 'TEST-2', display: 'Not medically necessary' };
      const decision = interpretClaimResponseBundle(
        responseBundle(
          { error: [error] },
          { adjudication: [reviewAction('A3', [{ url: 'reasonCode', valueCodeableConcept: { coding: [reason] } }])] },
        ),
      );

      expect(decision).to.deep.equal({ kind: 'denied', reasons: [{ code: reason, display: 'Not medically necessary' }] });
    });

    it('reads A1 and A2 with an error as approvals, A4 as pended and NA as not required', () => {
      const number = [{ url: 'number', valueString: 'AUTH-E1' }];
      expect(
        interpretClaimResponseBundle(responseBundle({ error: [error] }, { adjudication: [reviewAction('A1', number)] })),
      ).to.deep.equal({ kind: 'approved', authorizationNumber: 'AUTH-E1', partial: false });
      expect(
        interpretClaimResponseBundle(responseBundle({ error: [error] }, { adjudication: [reviewAction('A2', number)] })),
      ).to.deep.equal({ kind: 'approved', authorizationNumber: 'AUTH-E1', partial: true });
      expect(
        interpretClaimResponseBundle(responseBundle({ outcome: 'error', error: [error] }, { adjudication: [reviewAction('A4')] })),
      ).to.deep.equal({ kind: 'pended' });
      expect(interpretClaimResponseBundle(responseBundle({ error: [error] }, { adjudication: [reviewAction('CT')] }))).to.deep.equal({
        kind: 'pended',
      });
      expect(interpretClaimResponseBundle(responseBundle({ error: [error] }, { adjudication: [reviewAction('NA')] }))).to.deep.equal({
        kind: 'not-required',
      });
    });

    it('keeps an error without any review action a failed request, even with outcome complete', () => {
      const decision = interpretClaimResponseBundle(responseBundle({ outcome: 'complete', error: [error] }));

      expect(decision.kind).to.equal('error');
      if (decision.kind !== 'error') return;
      expect(decision.issues.map((i) => i.expression)).to.deep.equal([['Bundle.entry[0].resource.error[0].code']]);
    });
  });

  it('refuses a certification without an authorization number', () => {
    const decision = interpretClaimResponseBundle(responseBundle({}, { adjudication: [reviewAction('A1')] }));

    expect(decision.kind).to.equal('error');
    if (decision.kind !== 'error') return;
    expect(decision.issues[0]?.expression).to.deep.equal(['Bundle.entry[0].resource.preAuthRef']);
  });

  it('reports a Bundle without a ClaimResponse as an error', () => {
    const decision = interpretClaimResponseBundle({ resourceType: 'Bundle', type: 'collection', entry: [] });

    expect(decision.kind).to.equal('error');
    if (decision.kind !== 'error') return;
    expect(decision.issues[0]?.expression).to.deep.equal(['Bundle.entry']);
  });
});
