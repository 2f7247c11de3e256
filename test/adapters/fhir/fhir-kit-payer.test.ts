/**
 * The fhir-kit-client payer adapter over real HTTP, against the stand-in payer and its rules per
 * member; the builders and interpreters of src/coverage/rules make and read the messages, as the
 * pipeline will.
 */
import { expect } from 'chai';
import type { Coverage, Patient } from 'fhir/r4.js';
import { createFhirKitPayer } from '../../../src/adapters/fhir/fhir-kit-payer.js';
import { HCPCS_SYSTEM } from '../../../src/directory/rules/drug-catalog.js';
import { buildEligibilityRequest, interpretEligibilityResponse } from '../../../src/coverage/rules/eligibility.js';
import {
  buildInquiryBundle,
  buildPriorAuthorizationBundle,
  interpretClaimResponseBundle,
} from '../../../src/coverage/rules/prior-authorization.js';
import { ICD10CM_SYSTEM } from '../../../src/referral/rules/referral.js';
import { PayerCallError, type PayerFhir } from '../../../src/ports/payer-fhir.js';
import { startStandInPayer, type StandInPayer } from '../../../src/sandbox/stand-in-payer.js';

const NOW = new Date('2026-03-02T15:04:05.000Z');
const IVIG = { system: HCPCS_SYSTEM, code: 'J1459' };
const CIDP = { system: ICD10CM_SYSTEM, code: 'G61.81' };
const TOKEN = 'payer-test-token';
const patient: Patient = { resourceType: 'Patient', id: 'pat-1' };
const refs = {
  insurer: { reference: 'Organization/payer-1' },
  provider: { reference: 'Organization/center' },
};

function coverageOf(memberId: string): Coverage {
  return {
    resourceType: 'Coverage',
    id: `cov-${memberId}`,
    status: 'active',
    subscriberId: memberId,
    beneficiary: { reference: 'Patient/pat-1' },
    payor: [refs.insurer],
  };
}

function eligibilityRequest(memberId: string): ReturnType<typeof buildEligibilityRequest> {
  return buildEligibilityRequest({
    id: `elig-${memberId}`,
    coverage: coverageOf(memberId),
    patient: { reference: 'Patient/pat-1' },
    ...refs,
    facility: { reference: 'Location/site-7' },
    drugCodings: [IVIG],
    diagnoses: [CIDP],
    now: NOW,
  });
}

function paBundle(memberId: string, claimId: string): ReturnType<typeof buildPriorAuthorizationBundle> {
  return buildPriorAuthorizationBundle({
    bundleId: `bundle-${claimId}`,
    claimId,
    now: NOW,
    patient,
    coverage: coverageOf(memberId),
    ...refs,
    site: { reference: 'Location/site-7' },
    drugCodings: [IVIG],
    diagnoses: [CIDP],
    servicedPeriod: { start: '2026-03-10', end: '2026-09-10' },
    quantity: { value: 4 },
  });
}

function inquiry(memberId: string, claimId: string): ReturnType<typeof buildInquiryBundle> {
  return buildInquiryBundle({ bundleId: `inquiry-${claimId}`, claimId, now: NOW, patient, coverage: coverageOf(memberId), ...refs });
}

/** The PayerCallError a promise rejects with (fails the test if it resolves or throws something else). */
async function rejectionOf(promise: Promise<unknown>): Promise<PayerCallError> {
  try {
    await promise;
  } catch (err) {
    expect(err).to.be.instanceOf(PayerCallError);
    return err as PayerCallError;
  }
  expect.fail('expected the call to fail with a PayerCallError');
}

describe('fhir-kit-client payer adapter against the stand-in payer', function () {
  let payer: StandInPayer;
  let client: PayerFhir;

  before(async () => {
    payer = await startStandInPayer({ bearerToken: TOKEN, now: () => NOW });
    client = createFhirKitPayer({ payerOrganizationId: 'payer-1', baseUrl: payer.baseUrl, bearerToken: TOKEN }, { timeoutMs: 5_000 });
  });
  afterEach(() => {
    payer.setDefaultRule(undefined);
    payer.setEligibilityAnswerShape('resource');
    payer.clearRequests();
  });
  after(async () => {
    await payer.stop();
  });

  describe('checkEligibility', () => {
    it('posts the request to CoverageEligibilityRequest/$submit with the bearer token and reads coverage in force with its cost share', async () => {
      payer.setMemberRule('MBR-IN-FORCE', {
        eligibility: {
          inForce: true,
          authRequired: true,
          costShare: {
            copay: { value: 250, currency: 'USD' },
            coinsurancePercent: 20,
            deductibleRemaining: { value: 500, currency: 'USD' },
            outOfPocketRemaining: { value: 3000, currency: 'USD' },
          },
          benefitPeriod: { start: '2026-01-01', end: '2026-12-31' },
        },
      });

      const response = await client.checkEligibility(eligibilityRequest('MBR-IN-FORCE'));
      const interpreted = interpretEligibilityResponse(response, { drugCodings: [IVIG] });

      expect(response.resourceType).to.equal('CoverageEligibilityResponse');
      expect(interpreted).to.deep.equal({
        inForce: true,
        authRequired: true,
        excluded: undefined,
        costShare: {
          copay: { value: 250, currency: 'USD' },
          coinsurancePercent: 20,
          deductibleRemaining: { value: 500, currency: 'USD' },
          outOfPocketRemaining: { value: 3000, currency: 'USD' },
        },
        errors: [],
        benefitPeriod: { start: '2026-01-01', end: '2026-12-31' },
      });
      expect(payer.requests()).to.deep.equal([
        {
          method: 'POST',
          path: '/fhir/CoverageEligibilityRequest/$submit',
          status: 200,
          authorization: true,
          resourceType: 'CoverageEligibilityRequest',
        },
      ]);
    });

    it('reads coverage that is not in force', async () => {
      payer.setMemberRule('MBR-LAPSED', { eligibility: { inForce: false, authRequired: false } });

      const interpreted = interpretEligibilityResponse(await client.checkEligibility(eligibilityRequest('MBR-LAPSED')));

      expect(interpreted.inForce).to.equal(false);
      expect(interpreted.authRequired).to.equal(undefined);
    });

    it("fails permanently with the payer's OperationOutcome when the payer refuses the request with 400", async () => {
      const request = eligibilityRequest('ignored');
      request.contained = [];

      const error = await rejectionOf(client.checkEligibility(request));

      expect(error.retryable).to.equal(false);
      expect(error.httpStatus).to.equal(400);
      expect(error.outcome.issue[0]?.code).to.equal('required');
    });

    it('fails permanently without retry when the bearer token is wrong', async () => {
      const stranger = createFhirKitPayer(
        { payerOrganizationId: 'payer-1', baseUrl: payer.baseUrl, bearerToken: 'not-the-token' },
        { timeoutMs: 5_000 },
      );
      payer.setMemberRule('MBR-TOKEN', {});

      const error = await rejectionOf(stranger.checkEligibility(eligibilityRequest('MBR-TOKEN')));

      expect(error.httpStatus).to.equal(401);
      expect(error.retryable).to.equal(false);
    });

    it('fails retryably when the payer answers 500', async () => {
      payer.setMemberRule('MBR-DOWN', { eligibility: { kind: 'fail-500' } });

      const error = await rejectionOf(client.checkEligibility(eligibilityRequest('MBR-DOWN')));

      expect(error.retryable).to.equal(true);
      expect(error.httpStatus).to.equal(500);
    });

    for (const shape of ['bundle', 'parameters'] as const) {
      it(`finds the response when the payer wraps it in ${shape === 'bundle' ? 'a Bundle' : 'Parameters'}`, async () => {
        payer.setMemberRule('MBR-WRAPPED', { eligibility: { inForce: true, authRequired: false } });
        payer.setEligibilityAnswerShape(shape);

        const response = await client.checkEligibility(eligibilityRequest('MBR-WRAPPED'));

        expect(response.resourceType).to.equal('CoverageEligibilityResponse');
        expect(interpretEligibilityResponse(response).inForce).to.equal(true);
      });
    }
  });

  describe('prior authorization', () => {
    it('submits to Claim/$submit and reads an immediate approval with its number and period', async () => {
      payer.setMemberRule('MBR-APPROVE', {
        priorAuth: { kind: 'approve', authorizationNumber: 'AUTH-777', period: { start: '2026-03-10', end: '2026-09-10' } },
      });

      const decision = interpretClaimResponseBundle(await client.submitPriorAuthorization(paBundle('MBR-APPROVE', 'pa-approve')));

      expect(decision).to.deep.equal({
        kind: 'approved',
        authorizationNumber: 'AUTH-777',
        period: { start: '2026-03-10', end: '2026-09-10' },
        partial: false,
      });
      expect(payer.requests().map((r) => `${r.method} ${r.path} ${r.status} ${r.resourceType}`)).to.deep.equal([
        'POST /fhir/Claim/$submit 200 Bundle',
      ]);
    });

    it('reads a denial with its reason', async () => {
      payer.setMemberRule('MBR-DENY', {
        priorAuth: { kind: 'deny', reason: { display: 'Off-label use: diagnosis not among the approved indications' } },
      });

      const decision = interpretClaimResponseBundle(await client.submitPriorAuthorization(paBundle('MBR-DENY', 'pa-deny')));

      expect(decision.kind).to.equal('denied');
      if (decision.kind !== 'denied') return;
      expect(decision.reasons.map((reason) => reason.display)).to.deep.equal([
        'Off-label use: diagnosis not among the approved indications',
      ]);
    });

    it('reads a pended request, then approval on the second inquiry by the claim identifier', async () => {
      payer.setMemberRule('MBR-PEND', {
        priorAuth: { kind: 'pend-then', inquiries: 2, then: { kind: 'approve', authorizationNumber: 'AUTH-LATER' } },
      });

      const submitted = interpretClaimResponseBundle(await client.submitPriorAuthorization(paBundle('MBR-PEND', 'pa-pend')));
      const first = interpretClaimResponseBundle(await client.inquirePriorAuthorization(inquiry('MBR-PEND', 'pa-pend')));
      const second = interpretClaimResponseBundle(await client.inquirePriorAuthorization(inquiry('MBR-PEND', 'pa-pend')));

      expect([submitted.kind, first.kind, second.kind]).to.deep.equal(['pended', 'pended', 'approved']);
      expect(second).to.deep.include({ authorizationNumber: 'AUTH-LATER' });
      expect(payer.requests().map((r) => r.path)).to.deep.equal(['/fhir/Claim/$submit', '/fhir/Claim/$inquire', '/fhir/Claim/$inquire']);
    });

    it('answers an inquiry about a claim the payer never received with a permanent 404', async () => {
      payer.setMemberRule('MBR-NEVER', {});

      const error = await rejectionOf(client.inquirePriorAuthorization(inquiry('MBR-NEVER', 'pa-never-sent')));

      expect(error.httpStatus).to.equal(404);
      expect(error.retryable).to.equal(false);
    });

    it("fails retryably on 500, passing on the payer's OperationOutcome", async () => {
      payer.setMemberRule('MBR-500', { priorAuth: { kind: 'fail-500' } });

      const error = await rejectionOf(client.submitPriorAuthorization(paBundle('MBR-500', 'pa-500')));

      expect(error.retryable).to.equal(true);
      expect(error.httpStatus).to.equal(500);
      expect(error.outcome.issue[0]?.diagnostics).to.equal('The stand-in payer was told to fail with 500');
    });

    it('gives up on a payer that hangs after the time-out, retryably, without naming the URL', async () => {
      payer.setMemberRule('MBR-HANG', { priorAuth: { kind: 'hang' } });
      const impatient = createFhirKitPayer(
        { payerOrganizationId: 'payer-1', baseUrl: payer.baseUrl, bearerToken: TOKEN },
        { timeoutMs: 300 },
      );

      const error = await rejectionOf(impatient.submitPriorAuthorization(paBundle('MBR-HANG', 'pa-hang')));

      expect(error.retryable).to.equal(true);
      expect(error.httpStatus).to.equal(undefined);
      expect(error.outcome.issue[0]?.code).to.equal('timeout');
      expect(error.message).to.contain('prior authorization $submit (payer "payer-1")');
      expect(error.message).to.not.contain('127.0.0.1');
    });

    it('fails retryably when the payer cannot be reached', async () => {
      const gone = await startStandInPayer();
      const baseUrl = gone.baseUrl;
      await gone.stop();
      const unreachable = createFhirKitPayer({ payerOrganizationId: 'payer-1', baseUrl }, { timeoutMs: 5_000 });

      const error = await rejectionOf(unreachable.submitPriorAuthorization(paBundle('MBR-ANY', 'pa-unreachable')));

      expect(error.retryable).to.equal(true);
      expect(error.outcome.issue[0]?.code).to.equal('transient');
    });

    it('uses the default rule for members without one of their own', async () => {
      payer.setDefaultRule({ priorAuth: { kind: 'deny', reason: { display: 'Not a covered benefit' } } });

      const decision = interpretClaimResponseBundle(await client.submitPriorAuthorization(paBundle('MBR-NO-RULE', 'pa-default')));

      expect(decision.kind).to.equal('denied');
    });
  });
});
