/**
 * The network's directory, indexed for the site check: infusion sites with what they give, where
 * they are and which payer networks they belong to, and the payers' plans.
 *
 * Built from the Plan-Net-shaped directory resources (fixtures/README.md, "Directory";
 * https://hl7.org/fhir/us/davinci-pdex-plan-net/): a site is a Location that an infusion
 * HealthcareService is given at; the drugs it gives are that service's `type` codings; network
 * membership is an OrganizationAffiliation naming the network and the Location (or its
 * HealthcareService). Pure: built once from resources, queried many times.
 *
 * Nearest-site queries use a static k-d tree (kdbush) with great-circle search (geokdbush), so the
 * check stays well under a millisecond on a directory of 100,000 sites (bench/site-check.ts).
 */
import type {
  Address,
  Coverage,
  FhirResource,
  HealthcareService,
  InsurancePlan,
  Location,
  Organization,
  OrganizationAffiliation,
  Reference,
  Resource,
} from 'fhir/r4.js';
import KDBush from 'kdbush';
import { around, distance } from 'geokdbush';
import { parseRelativeReference } from '../../fhir/references.js';
import type { CoverageDirectory } from '../../coverage/rules/coverage-check.js';
import { GATEWAY_CANONICAL_BASE } from '../../referral/rules/referral-status.js';

export const TIMEZONE_EXTENSION_URL = 'http://hl7.org/fhir/StructureDefinition/timezone';
export const SITE_CODE_SYSTEM = `${GATEWAY_CANONICAL_BASE}/sid/site-code`;
export const HEALTHCARE_SERVICE_CATEGORY_SYSTEM = `${GATEWAY_CANONICAL_BASE}/CodeSystem/healthcare-service-category`;
const PLAN_NET_ORG_TYPE_SYSTEM = 'http://hl7.org/fhir/us/davinci-pdex-plan-net/CodeSystem/OrgTypeCS';
const ORGANIZATION_TYPE_SYSTEM = 'http://terminology.hl7.org/CodeSystem/organization-type';

export interface GeoPoint {
  latitude: number;
  longitude: number;
}

export interface DirectorySite {
  locationId: string;
  name: string;
  /** The network's own site code (Location.identifier of system SITE_CODE_SYSTEM), for logical references. */
  siteCode?: string;
  /** Location.status; a site whose every infusion service is inactive counts as `inactive`. */
  status: 'active' | 'suspended' | 'inactive';
  /** Whether an infusion HealthcareService is given here (an office or a coverage area is not a site). */
  isInfusionSite: boolean;
  position?: GeoPoint;
  address?: Address;
  timeZone?: string;
  /** `system|code` of every drug or service the site's active services give. */
  offeredCodes: ReadonlySet<string>;
  /** Network Organization ids of the active affiliations that name this site. */
  networkIds: ReadonlySet<string>;
  /** The provider Organization that runs the site (Location.managingOrganization). */
  managingOrganizationId?: string;
}

export interface DirectoryPlan {
  planId: string;
  name: string;
  /** InsurancePlan.identifier values: what a Coverage's `class` of type `plan` carries. */
  identifierValues: readonly string[];
  payerOrganizationId?: string;
  networkIds: ReadonlySet<string>;
  active: boolean;
}

export interface SiteDirectorySource {
  /** The current directory; rebuilt when the stored directory changes. */
  current(): Promise<SiteDirectory>;
}

const codingKey = (system: string | undefined, code: string | undefined): string => `${system ?? ''}|${code ?? ''}`;

/**
 * Whether a site gives the drug these codings name: one of them among the codes of the site's
 * HealthcareServices (docs/domain.md, the directory). Built once per drug, asked per site.
 */
export function givesDrug(drugCodings: ReadonlyArray<{ system?: string; code?: string }>): (site: DirectorySite) => boolean {
  const keys = drugCodings.map((c) => codingKey(c.system, c.code));
  return (site) => keys.some((key) => site.offeredCodes.has(key));
}

function hasCoding(
  concepts: ReadonlyArray<{ coding?: Array<{ system?: string; code?: string }> }> | undefined,
  system: string,
  code: string,
): boolean {
  return (concepts ?? []).some((concept) => (concept.coding ?? []).some((c) => c.system === system && c.code === code));
}

function referencedId(reference: Reference | undefined, resourceType: string): string | undefined {
  const parsed = parseRelativeReference(reference?.reference);
  return parsed?.resourceType === resourceType ? parsed.id : undefined;
}

function isInfusionService(service: HealthcareService): boolean {
  return hasCoding(service.category, HEALTHCARE_SERVICE_CATEGORY_SYSTEM, 'infusion');
}

function isPayer(organization: Organization): boolean {
  return hasCoding(organization.type, ORGANIZATION_TYPE_SYSTEM, 'pay') || hasCoding(organization.type, PLAN_NET_ORG_TYPE_SYSTEM, 'payer');
}

interface MutableSite {
  location: Location;
  services: HealthcareService[];
  networkIds: Set<string>;
}

export class SiteDirectory implements CoverageDirectory {
  private readonly sitesById: ReadonlyMap<string, DirectorySite>;
  private readonly siteIdsByCode: ReadonlyMap<string, string>;
  private readonly plans: readonly DirectoryPlan[];
  private readonly payerIds: ReadonlySet<string>;
  /** Infusion sites with a position, in index order. */
  private readonly indexedSites: readonly DirectorySite[];
  private readonly index: KDBush | undefined;

  private constructor(sites: DirectorySite[], plans: DirectoryPlan[], payerIds: Set<string>, siteIdsByCode: Map<string, string>) {
    this.sitesById = new Map(sites.map((s) => [s.locationId, s]));
    this.siteIdsByCode = siteIdsByCode;
    this.plans = plans;
    this.payerIds = payerIds;
    this.indexedSites = sites.filter((s) => s.isInfusionSite && s.position !== undefined);
    if (this.indexedSites.length > 0) {
      const index = new KDBush(this.indexedSites.length);
      for (const site of this.indexedSites) index.add(site.position!.longitude, site.position!.latitude);
      index.finish();
      this.index = index;
    }
  }

  static fromResources(resources: Iterable<Resource>): SiteDirectory {
    const locations = new Map<string, MutableSite>();
    const services: HealthcareService[] = [];
    const affiliations: OrganizationAffiliation[] = [];
    const insurancePlans: InsurancePlan[] = [];
    const payerIds = new Set<string>();
    for (const resource of resources as Iterable<FhirResource>) {
      if (!resource.id) continue;
      switch (resource.resourceType) {
        case 'Location':
          locations.set(resource.id, { location: resource, services: [], networkIds: new Set() });
          break;
        case 'HealthcareService':
          services.push(resource);
          break;
        case 'OrganizationAffiliation':
          affiliations.push(resource);
          break;
        case 'InsurancePlan':
          insurancePlans.push(resource);
          break;
        case 'Organization':
          if (isPayer(resource) && resource.active !== false) payerIds.add(resource.id);
          break;
        default:
          break;
      }
    }

    const locationIdsOfService = new Map<string, string[]>();
    for (const service of services) {
      const ids = (service.location ?? []).map((r) => referencedId(r, 'Location')).filter((id): id is string => id !== undefined);
      locationIdsOfService.set(service.id!, ids);
      for (const id of ids) locations.get(id)?.services.push(service);
    }
    for (const affiliation of affiliations) {
      if (affiliation.active === false) continue;
      const networkIds = (affiliation.network ?? [])
        .map((r) => referencedId(r, 'Organization'))
        .filter((id): id is string => id !== undefined);
      const siteIds = new Set<string>();
      for (const r of affiliation.location ?? []) {
        const id = referencedId(r, 'Location');
        if (id !== undefined) siteIds.add(id);
      }
      for (const r of affiliation.healthcareService ?? []) {
        for (const id of locationIdsOfService.get(referencedId(r, 'HealthcareService') ?? '') ?? []) siteIds.add(id);
      }
      for (const id of siteIds) for (const network of networkIds) locations.get(id)?.networkIds.add(network);
    }

    const siteIdsByCode = new Map<string, string>();
    const sites = [...locations.values()].map((entry) => {
      const site = toDirectorySite(entry);
      for (const identifier of entry.location.identifier ?? []) {
        if (identifier.system === SITE_CODE_SYSTEM && identifier.value) siteIdsByCode.set(identifier.value, site.locationId);
      }
      return site;
    });
    const plans = insurancePlans.map((plan): DirectoryPlan => {
      const payer = referencedId(plan.ownedBy, 'Organization') ?? referencedId(plan.administeredBy, 'Organization');
      return {
        planId: plan.id!,
        name: plan.name ?? plan.id!,
        identifierValues: (plan.identifier ?? []).map((i) => i.value).filter((v): v is string => v !== undefined),
        ...(payer !== undefined ? { payerOrganizationId: payer } : {}),
        networkIds: new Set(
          (plan.network ?? []).map((r) => referencedId(r, 'Organization')).filter((id): id is string => id !== undefined),
        ),
        active: plan.status === undefined || plan.status === 'active',
      };
    });
    return new SiteDirectory(sites, plans, payerIds, siteIdsByCode);
  }

  get size(): number {
    return this.sitesById.size;
  }

  site(locationId: string): DirectorySite | undefined {
    return this.sitesById.get(locationId);
  }

  /** The directory Location carrying this site code (`Location.identifier` of system SITE_CODE_SYSTEM). */
  siteByCode(code: string): DirectorySite | undefined {
    const id = this.siteIdsByCode.get(code);
    return id === undefined ? undefined : this.sitesById.get(id);
  }

  isKnownPayer(organizationId: string): boolean {
    return this.payerIds.has(organizationId);
  }

  plan(planId: string): DirectoryPlan | undefined {
    return this.plans.find((p) => p.planId === planId);
  }

  /**
   * The plan a Coverage is for: its `class` of type `plan` carries the InsurancePlan's identifier
   * (https://hl7.org/fhir/R4/coverage-definitions.html#Coverage.class). Where two payers use the
   * same plan identifier, the Coverage's payor decides.
   */
  planForCoverage(coverage: Coverage): DirectoryPlan | undefined {
    const planValues = (coverage.class ?? []).filter((c) => c.type.coding?.some((coding) => coding.code === 'plan')).map((c) => c.value);
    const payers = new Set(
      (coverage.payor ?? []).map((r) => referencedId(r, 'Organization')).filter((id): id is string => id !== undefined),
    );
    const matches = this.plans.filter((plan) => plan.identifierValues.some((v) => planValues.includes(v)));
    return matches.find((plan) => plan.payerOrganizationId !== undefined && payers.has(plan.payerOrganizationId)) ?? matches[0];
  }

  /** Network Organization ids the site belongs to; undefined when the site is not in the directory (CoverageDirectory). */
  siteNetworkIds(locationId: string): ReadonlySet<string> | undefined {
    return this.sitesById.get(locationId)?.networkIds;
  }

  isInNetwork(site: DirectorySite, plan: DirectoryPlan): boolean {
    for (const network of site.networkIds) if (plan.networkIds.has(network)) return true;
    return false;
  }

  /**
   * Infusion sites with a position, nearest first, within `maxKm` of `from`, that pass `accept`;
   * at most `limit`. Great-circle distances in kilometres.
   */
  nearestSites(
    from: GeoPoint,
    options: { limit: number; maxKm: number; accept: (site: DirectorySite) => boolean },
  ): Array<{ site: DirectorySite; distanceKm: number }> {
    if (!this.index) return [];
    const ids = around(this.index, from.longitude, from.latitude, options.limit, options.maxKm, (i) =>
      options.accept(this.indexedSites[i]!),
    );
    return ids.map((i) => {
      const site = this.indexedSites[i]!;
      return { site, distanceKm: distanceKm(from, site.position!) };
    });
  }

  /** Every site, for callers without a position to search from (small directories, tests). */
  allSites(): Iterable<DirectorySite> {
    return this.sitesById.values();
  }
}

export function distanceKm(a: GeoPoint, b: GeoPoint): number {
  return distance(a.longitude, a.latitude, b.longitude, b.latitude);
}

function toDirectorySite({ location, services, networkIds }: MutableSite): DirectorySite {
  const infusionServices = services.filter(isInfusionService);
  const activeServices = infusionServices.filter((s) => s.active !== false);
  const offeredCodes = new Set<string>();
  for (const service of activeServices) {
    for (const type of service.type ?? []) for (const coding of type.coding ?? []) offeredCodes.add(codingKey(coding.system, coding.code));
  }
  const status: DirectorySite['status'] =
    location.status === 'inactive' || location.status === 'suspended'
      ? location.status
      : infusionServices.length > 0 && activeServices.length === 0
        ? 'inactive'
        : 'active';
  const timeZone = location.extension?.find((e) => e.url === TIMEZONE_EXTENSION_URL)?.valueCode;
  const { latitude, longitude } = location.position ?? {};
  const siteCode = location.identifier?.find((i) => i.system === SITE_CODE_SYSTEM && i.value)?.value;
  const managingOrganizationId = referencedId(location.managingOrganization, 'Organization');
  return {
    ...(managingOrganizationId !== undefined ? { managingOrganizationId } : {}),
    locationId: location.id!,
    name: location.name ?? location.id!,
    ...(siteCode !== undefined ? { siteCode } : {}),
    status,
    isInfusionSite: infusionServices.length > 0,
    ...(typeof latitude === 'number' && typeof longitude === 'number' ? { position: { latitude, longitude } } : {}),
    ...(location.address ? { address: location.address } : {}),
    ...(timeZone !== undefined ? { timeZone } : {}),
    offeredCodes,
    networkIds,
  };
}
