/**
 * Multi-site $find, the pure part: which sites a referral allows (active, gives the drug, in the
 * plan's network, within `near`), and the ranking (earliest start, then distance).
 */
import { expect } from 'chai';
import type { Resource } from 'fhir/r4.js';
import { candidateSites, KM_PER_MILE, parseNear, rankProposals } from '../../src/scheduling/rules/multi-site-find.js';
import { distanceKm, SiteDirectory } from '../../src/directory/rules/site-directory.js';

const HCPCS = 'http://www.cms.gov/Medicare/Coding/HCPCSReleaseCodeSets';
const CATEGORY = 'https://fhir.infusion-gateway.example/CodeSystem/healthcare-service-category';
const DRUG = [{ system: HCPCS, code: 'J3380' }]; // vedolizumab
const HOME = { latitude: 45.5, longitude: -122.6 };

/** A small directory of its own: sites around HOME, some without the drug, one closed, one out of network. */
function directory(): SiteDirectory {
  const resources: Resource[] = [];
  const site = (
    id: string,
    latitude: number,
    longitude: number,
    options: { drugs?: string[]; status?: 'active' | 'inactive'; networks?: string[] } = {},
  ): void => {
    resources.push({
      resourceType: 'Location',
      id,
      name: `Site ${id}`,
      status: options.status ?? 'active',
      position: { latitude, longitude },
    } as Resource);
    resources.push({
      resourceType: 'HealthcareService',
      id: `hs-${id}`,
      active: true,
      category: [{ coding: [{ system: CATEGORY, code: 'infusion' }] }],
      type: (options.drugs ?? ['J3380']).map((code) => ({ coding: [{ system: HCPCS, code }] })),
      location: [{ reference: `Location/${id}` }],
    } as Resource);
    for (const network of options.networks ?? ['net-a']) {
      resources.push({
        resourceType: 'OrganizationAffiliation',
        id: `aff-${id}-${network}`,
        active: true,
        network: [{ reference: `Organization/${network}` }],
        location: [{ reference: `Location/${id}` }],
      } as Resource);
    }
  };
  site('near-1', 45.52, -122.62); // ~2.7 km
  site('near-2', 45.45, -122.55); // ~6.8 km
  site('far', 47.6, -122.3); // Seattle, ~230 km
  site('no-drug', 45.51, -122.61, { drugs: ['J1745'] });
  site('closed', 45.5, -122.61, { status: 'inactive' });
  site('other-network', 45.49, -122.6, { networks: ['net-b'] });
  site('confirmed', 45.6, -122.7); // ~13.6 km
  resources.push({
    resourceType: 'Organization',
    id: 'net-a',
    type: [{ coding: [{ system: 'http://hl7.org/fhir/us/davinci-pdex-plan-net/CodeSystem/OrgTypeCS', code: 'ntwk' }] }],
  } as Resource);
  resources.push({
    resourceType: 'InsurancePlan',
    id: 'plan-a',
    status: 'active',
    name: 'Plan A',
    identifier: [{ value: 'PLAN-A' }],
    network: [{ reference: 'Organization/net-a' }],
  } as Resource);
  return SiteDirectory.fromResources(resources);
}

describe('multi-site $find: candidate sites', () => {
  const dir = directory();
  const plan = dir.plan('plan-a');

  it('knows the test plan (the fixture of this test is sound)', () => {
    expect(plan?.name).to.equal('Plan A');
  });

  it('searches the confirmed site only when neither location nor near is given', () => {
    const { sites, excluded } = candidateSites(dir, { drugCodings: DRUG, plan: plan!, confirmedSiteId: 'confirmed', home: HOME });
    expect(sites.map((s) => s.site.locationId)).to.deep.equal(['confirmed']);
    expect(excluded).to.deep.equal([]);
  });

  it('keeps the sites asked for that the referral allows, and says why each other one is left out', () => {
    const { sites, excluded } = candidateSites(dir, {
      drugCodings: DRUG,
      plan: plan!,
      confirmedSiteId: 'confirmed',
      home: HOME,
      locationIds: ['near-2', 'no-drug', 'closed', 'other-network', 'missing', 'near-1', 'near-2'],
    });
    expect(sites.map((s) => s.site.locationId)).to.deep.equal(['near-2', 'near-1']);
    expect(sites[1]!.distanceKm).to.be.closeTo(distanceKm(HOME, { latitude: 45.52, longitude: -122.62 }), 1e-9);
    expect(excluded.map((e) => [e.locationId, e.reason])).to.deep.equal([
      ['no-drug', 'drug-not-offered'],
      ['closed', 'site-inactive'],
      ['other-network', 'out-of-network'],
      ['missing', 'unknown-site'],
    ]);
  });

  it('with near alone, takes every allowed site within the distance of the home, silently leaving the rest', () => {
    const { sites, excluded } = candidateSites(dir, {
      drugCodings: DRUG,
      plan: plan!,
      confirmedSiteId: 'confirmed',
      home: HOME,
      near: { distanceKm: 10 },
    });
    expect(sites.map((s) => s.site.locationId).sort()).to.deep.equal(['near-1', 'near-2']);
    expect(excluded).to.deep.equal([]);
  });

  it('with near from a point given, measures from that point, not the home', () => {
    const seattle = { latitude: 47.61, longitude: -122.33 };
    const { sites } = candidateSites(dir, {
      drugCodings: DRUG,
      plan: plan!,
      confirmedSiteId: 'confirmed',
      home: HOME,
      near: { center: seattle, distanceKm: 20 },
    });
    expect(sites.map((s) => s.site.locationId)).to.deep.equal(['far']);
  });

  it('with location and near, keeps the sites asked for within the distance and reports the far one', () => {
    const { sites, excluded } = candidateSites(dir, {
      drugCodings: DRUG,
      plan: plan!,
      confirmedSiteId: 'confirmed',
      home: HOME,
      locationIds: ['far', 'near-1'],
      near: { distanceKm: 50 },
    });
    expect(sites.map((s) => s.site.locationId)).to.deep.equal(['near-1']);
    expect(excluded.map((e) => e.reason)).to.deep.equal(['too-far']);
  });

  it('without a known plan, allows only the confirmed site', () => {
    const { sites, excluded } = candidateSites(dir, {
      drugCodings: DRUG,
      confirmedSiteId: 'confirmed',
      home: HOME,
      locationIds: ['near-1', 'confirmed'],
    });
    expect(sites.map((s) => s.site.locationId)).to.deep.equal(['confirmed']);
    expect(excluded.map((e) => e.reason)).to.deep.equal(['network-unknown']);
  });

  it('without a home, cannot honour a near from the home', () => {
    const { sites } = candidateSites(dir, { drugCodings: DRUG, plan: plan!, confirmedSiteId: 'confirmed', near: { distanceKm: 1000 } });
    expect(sites).to.deep.equal([]);
  });
});

describe('multi-site $find: ranking', () => {
  const at = (iso: string): Date => new Date(iso);
  const distances = new Map<string, number | undefined>([
    ['a', 12],
    ['b', 3],
    ['c', undefined],
  ]);

  it('ranks by earliest start, then the nearer site, a site of unknown distance last', () => {
    const ranked = rankProposals(
      [
        { locationId: 'a', chairId: 'chair-1', start: at('2027-01-05T15:00:00Z') },
        { locationId: 'c', chairId: 'chair-1', start: at('2027-01-05T14:00:00Z') },
        { locationId: 'a', chairId: 'chair-1', start: at('2027-01-05T14:00:00Z') },
        { locationId: 'b', chairId: 'chair-2', start: at('2027-01-05T14:00:00Z') },
        { locationId: 'b', chairId: 'chair-1', start: at('2027-01-05T16:00:00Z') },
      ],
      distances,
      4,
    );
    expect(ranked.map((p) => `${p.start.toISOString().slice(11, 16)} ${p.locationId}`)).to.deep.equal([
      '14:00 b',
      '14:00 a',
      '14:00 c',
      '15:00 a',
    ]);
  });

  it('does not depend on the order the sites were searched in', () => {
    const proposals = [
      { locationId: 'a', chairId: 'chair-1', start: at('2027-01-05T14:00:00Z') },
      { locationId: 'b', chairId: 'chair-1', start: at('2027-01-05T14:00:00Z') },
      { locationId: 'b', chairId: 'chair-1', start: at('2027-01-05T13:00:00Z') },
    ];
    expect(rankProposals(proposals, distances, 3)).to.deep.equal(rankProposals([...proposals].reverse(), distances, 3));
  });
});

describe('multi-site $find: near', () => {
  it("reads FHIR's latitude|longitude|distance|units, km by default, miles converted", () => {
    expect(parseNear('45.5|-122.6|10|km')).to.deep.equal({ near: { center: { latitude: 45.5, longitude: -122.6 }, distanceKm: 10 } });
    expect(parseNear('45.5|-122.6|10')).to.deep.equal({ near: { center: { latitude: 45.5, longitude: -122.6 }, distanceKm: 10 } });
    expect(parseNear('||25|mi')).to.deep.equal({ near: { distanceKm: 25 * KM_PER_MILE } });
  });

  it('refuses a value it cannot read, saying what it expects', () => {
    for (const bad of ['25', '||0|km', '||10|furlong', '91|0|10|km', '45.5||10|km', 'a|b|c|d|e']) {
      const parsed = parseNear(bad);
      expect('error' in parsed, bad).to.equal(true);
    }
  });
});
