import { expect } from 'chai';
import type { ServiceRequest } from 'fhir/r4.js';
import type { FhirValidator } from '../../../src/fhir/validation/index.js';
import { validReferral } from './referral-fixture.js';
import { loadValidator, REFERRAL_PROFILE, summarize } from './validator.js';

describe('the infusion referral profile (profiles/StructureDefinition-infusion-referral.json)', () => {
  let validator: FhirValidator;
  before(async () => {
    validator = await loadValidator();
  });

  const check = (resource: ServiceRequest): string[] => summarize(validator.validateProfiles(resource, [REFERRAL_PROFILE]));
  const without = (...elements: Array<keyof ServiceRequest>): ServiceRequest => {
    const resource = validReferral();
    for (const e of elements) delete resource[e];
    return resource;
  };
  const changed = (changes: Partial<ServiceRequest>): ServiceRequest => ({ ...validReferral(), ...changes });

  it('passes a complete, active infusion order', async () => {
    expect(validator.validateProfiles(validReferral(), [REFERRAL_PROFILE])).to.deep.equal([]);
  });

  it('is itself a valid R4 StructureDefinition that is served with the profiles', async () => {
    const profile = validator.profiles().find((p) => p.url === REFERRAL_PROFILE);
    expect(profile?.id).to.equal('infusion-referral');
    expect(profile?.fhirVersion).to.equal('4.0.1');
    expect(validator.validateBase(profile)).to.deep.equal([]);
  });

  describe('reports each missing requirement at its element', () => {
    const cases: Array<[keyof ServiceRequest, string]> = [
      ['status', 'required ServiceRequest.status'],
      ['intent', 'required ServiceRequest.intent'],
      ['subject', 'required ServiceRequest.subject'],
      ['requester', 'required ServiceRequest.requester'],
      ['code', 'required ServiceRequest.code'],
      ['insurance', 'required ServiceRequest.insurance'],
      ['identifier', 'required ServiceRequest.identifier'],
    ];
    for (const [element, expected] of cases) {
      it(`missing ${element}: one issue, ${expected}`, async () => {
        expect(check(without(element))).to.deep.equal([expected]);
      });
    }

    it('names the requirement in plain words', async () => {
      const [issue] = validator.validateProfiles(without('requester'), [REFERRAL_PROFILE]);
      expect(issue?.diagnostics).to.equal(
        "Missing required element 'requester' (The ordering practitioner): required by the Infusion referral profile",
      );
    });

    it('a diagnosis: neither reasonCode nor reasonReference is ifr-2 at ServiceRequest.reasonCode', async () => {
      const issues = validator.validateProfiles(without('reasonCode'), [REFERRAL_PROFILE]);
      expect(summarize(issues)).to.deep.equal(['invariant ServiceRequest.reasonCode']);
      expect(issues[0]?.diagnostics).to.match(/^ifr-2: /);
    });

    it('the requested site: neither locationReference nor performer is ifr-3 at ServiceRequest.locationReference', async () => {
      const issues = validator.validateProfiles(without('locationReference'), [REFERRAL_PROFILE]);
      expect(summarize(issues)).to.deep.equal(['invariant ServiceRequest.locationReference']);
      expect(issues[0]?.diagnostics).to.match(/^ifr-3: /);
    });
  });

  describe('checks the content of what is there', () => {
    it('ifr-1: a drug coded in NDC only is refused at ServiceRequest.code; HCPCS alone will do', async () => {
      const ndcOnly = changed({ code: { coding: [{ system: 'http://hl7.org/fhir/sid/ndc', code: '57894-030-01' }] } });
      const issues = validator.validateProfiles(ndcOnly, [REFERRAL_PROFILE]);
      expect(summarize(issues)).to.deep.equal(['invariant ServiceRequest.code']);
      expect(issues[0]?.diagnostics).to.equal('ifr-1: The drug or service (code) needs at least one RxNorm or HCPCS coding');
      const hcpcs = changed({ code: { coding: [{ system: 'http://www.cms.gov/Medicare/Coding/HCPCSReleaseCodeSets', code: 'J1745' }] } });
      expect(check(hcpcs)).to.deep.equal([]);
    });

    it('ifr-2: a SNOMED-only diagnosis is refused; a reasonReference will do', async () => {
      const snomed = changed({ reasonCode: [{ coding: [{ system: 'http://snomed.info/sct', code: '34000006' }] }] });
      expect(check(snomed)).to.deep.equal(['invariant ServiceRequest.reasonCode']);
      const referenced = { ...without('reasonCode'), reasonReference: [{ reference: 'Condition/crohn-1' }] };
      expect(check(referenced)).to.deep.equal([]);
    });

    it('ifr-3: a performer will do for the requested site', async () => {
      expect(check({ ...without('locationReference'), performer: [{ reference: 'Organization/infusion-center-1' }] })).to.deep.equal([]);
    });

    it('ifr-4: intent must be order or original-order', async () => {
      expect(check(changed({ intent: 'plan' }))).to.deep.equal(['invariant ServiceRequest.intent']);
      expect(check(changed({ intent: 'original-order' }))).to.deep.equal([]);
    });

    it('ifr-5: a draft is refused at ServiceRequest.status', async () => {
      const issues = validator.validateProfiles(changed({ status: 'draft' }), [REFERRAL_PROFILE]);
      expect(summarize(issues)).to.deep.equal(['invariant ServiceRequest.status']);
      expect(issues[0]?.diagnostics).to.match(/^ifr-5: /);
    });
  });

  it('reports every missing requirement together, once each', async () => {
    const empty: ServiceRequest = { resourceType: 'ServiceRequest' } as ServiceRequest;
    expect(check(empty)).to.have.members([
      'required ServiceRequest.identifier',
      'required ServiceRequest.status',
      'required ServiceRequest.intent',
      'required ServiceRequest.code',
      'required ServiceRequest.subject',
      'required ServiceRequest.requester',
      'required ServiceRequest.insurance',
      'invariant ServiceRequest.reasonCode',
      'invariant ServiceRequest.locationReference',
    ]);
    expect(check(empty)).to.have.length(9);
  });

  it('reports an unknown profile: an error when asked for, a warning when only claimed', async () => {
    const unknown = 'http://hl7.org/fhir/us/core/StructureDefinition/us-core-servicerequest';
    const asked = validator.validateProfiles(validReferral(), [unknown]);
    expect(asked.map((i) => `${i.severity} ${i.code} ${i.expression?.join()}`)).to.deep.equal(['error not-supported ServiceRequest']);
    expect(asked[0]?.diagnostics).to.include(unknown);
    const claimed = changed({ meta: { profile: [unknown] } });
    expect(
      validator.validateProfiles(claimed, [unknown], { unknownProfile: 'warning' }).map((i) => `${i.severity} ${i.expression?.join()}`),
    ).to.deep.equal(['warning ServiceRequest.meta.profile[0]']);
  });

  it('ignores a |version on the profile URL', async () => {
    expect(validator.validateProfiles(without('requester'), [`${REFERRAL_PROFILE}|0.1.0`]).map((i) => i.expression?.join())).to.deep.equal([
      'ServiceRequest.requester',
    ]);
  });

  describe('validate(): base R4, the profiles asked for and those claimed in meta.profile', () => {
    it('applies a profile the resource claims in meta.profile', async () => {
      const claimed = { ...without('requester'), meta: { profile: [REFERRAL_PROFILE] } };
      expect(summarize(validator.validate(claimed))).to.deep.equal(['required ServiceRequest.requester']);
    });

    it('does not repeat a base problem that the profile also sees', async () => {
      // subject is 1..1 in base R4 already: one issue, the base one.
      const issues = validator.validate(without('subject'), { profiles: [REFERRAL_PROFILE] });
      expect(summarize(issues)).to.deep.equal(['required ServiceRequest.subject']);
      expect(issues[0]?.diagnostics).to.equal("Missing required element 'subject'");
    });

    it('reports base and profile problems together, without an invariant about a value base R4 refuses', async () => {
      const resource = { ...without('insurance'), status: 'ACTIVE', intent: 'plan' } as unknown;
      expect(summarize(validator.validate(resource, { profiles: [REFERRAL_PROFILE] }))).to.have.members([
        'code-invalid ServiceRequest.status',
        'required ServiceRequest.insurance',
        'invariant ServiceRequest.intent',
      ]);
    });

    it('warns about claimed profiles it does not know, without failing the resource', async () => {
      const claimed = changed({ meta: { profile: ['http://example.org/StructureDefinition/other'] } });
      expect(validator.validate(claimed).map((i) => `${i.severity} ${i.code} ${i.expression?.join()}`)).to.deep.equal([
        'warning not-supported ServiceRequest.meta.profile[0]',
      ]);
    });
  });
});
