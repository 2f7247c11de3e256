/**
 * The site check (field note 000, docs/domain.md "Misroutes"): does the requested site make sense for this
 * patient, this drug and this plan? An EHR that auto-fills the practice's default address, or the
 * last site it used, sends referrals to the wrong place; every signal of that is a coded reason,
 * and the decision comes with ranked suggestions for a coordinator to confirm with the patient.
 *
 * Pure: the directory, the order and what it points at, and the policy come in; a decision goes out.
 */
import type {
  Address,
  Coding,
  Coverage,
  Extension,
  FhirResource,
  Location,
  Patient,
  Reference,
  Resource,
  ServiceRequest,
} from 'fhir/r4.js';
import type { CatalogDrug } from '../../directory/rules/drug-catalog.js';
import { patientHomePosition } from './patient-position.js';
import { GATEWAY_CANONICAL_BASE } from '../../referral/rules/referral-status.js';
import type { MisrouteReason, SiteCheckResult, SiteSuggestion } from './site-check-types.js';
import {
  SITE_CODE_SYSTEM,
  distanceKm,
  givesDrug,
  type DirectoryPlan,
  type DirectorySite,
  type GeoPoint,
  type SiteDirectory,
} from '../../directory/rules/site-directory.js';
import { parseRelativeReference } from '../../fhir/references.js';

export * from './site-check-types.js';

/**
 * The site the patient chose, on the ServiceRequest (this order) or the Patient (standing
 * preference): a Reference to the directory Location. Published in
 * profiles/StructureDefinition-preferred-infusion-site.json.
 */
export const PREFERRED_SITE_EXTENSION_URL = `${GATEWAY_CANONICAL_BASE}/StructureDefinition/preferred-infusion-site`;

export interface SiteCheckPolicy {
  /** A site farther than this from the patient's home is `too-far` when a suitable site is nearer than this. */
  tooFarKm: number;
  /** Suggestions returned, best first. */
  maxSuggestions: number;
  /** Sites beyond this distance from the patient are never suggested (no-suitable-site if none is nearer). */
  maxTravelKm: number;
}

export const DEFAULT_SITE_CHECK_POLICY: SiteCheckPolicy = { tooFarKm: 40, maxSuggestions: 3, maxTravelKm: 250 };

export interface SiteCheckInput {
  serviceRequest: ServiceRequest;
  drug: Pick<CatalogDrug, 'codings'>;
  patient?: Patient;
  coverages: readonly Coverage[];
  /** The requester and what it leads to (PractitionerRole -> Organization, Location), resolved. */
  requesterResources: readonly Resource[];
  /** The requested Location when it is not a directory site but could be resolved (contained, the EHR's). */
  requestedLocation?: Location;
  /** Directory Location ids the patient was treated at before. */
  previousSiteIds: readonly string[];
}

interface RequestedSite {
  expression: string;
  site?: DirectorySite;
  /** A resolved Location outside the directory. */
  external?: Location;
}

function siteOfReference(directory: SiteDirectory, reference: Reference | undefined): DirectorySite | undefined {
  if (!reference) return undefined;
  const parsed = parseRelativeReference(reference.reference);
  if (parsed?.resourceType === 'Location') return directory.site(parsed.id);
  if (reference.identifier?.system === SITE_CODE_SYSTEM && reference.identifier.value)
    return directory.siteByCode(reference.identifier.value);
  return undefined;
}

function siteOfCodings(directory: SiteDirectory, codings: readonly Coding[] | undefined): DirectorySite | undefined {
  const code = codings?.find((c) => c.system === SITE_CODE_SYSTEM && c.code)?.code;
  return code === undefined ? undefined : directory.siteByCode(code);
}

function requestedSiteOf(directory: SiteDirectory, input: SiteCheckInput): RequestedSite | undefined {
  const { serviceRequest } = input;
  const reference = serviceRequest.locationReference?.[0];
  if (reference) {
    const site = siteOfReference(directory, reference);
    return {
      expression: 'ServiceRequest.locationReference[0]',
      ...(site ? { site } : input.requestedLocation ? { external: input.requestedLocation } : {}),
    };
  }
  const code = serviceRequest.locationCode?.[0];
  if (code) {
    const site = siteOfCodings(directory, code.coding);
    return { expression: 'ServiceRequest.locationCode[0]', ...(site ? { site } : {}) };
  }
  return undefined;
}

function patientChoice(directory: SiteDirectory, input: SiteCheckInput): DirectorySite | undefined {
  const fromExtensions = (extensions: readonly Extension[] | undefined): DirectorySite | undefined =>
    siteOfReference(directory, extensions?.find((e) => e.url === PREFERRED_SITE_EXTENSION_URL)?.valueReference);
  return fromExtensions(input.serviceRequest.extension) ?? fromExtensions(input.patient?.extension);
}

/** The plan of the first active Coverage the directory knows. */
function patientPlan(directory: SiteDirectory, coverages: readonly Coverage[]): DirectoryPlan | undefined {
  const ordered = [...coverages].sort((a, b) => Number(b.status === 'active') - Number(a.status === 'active'));
  for (const coverage of ordered) {
    const plan = directory.planForCoverage(coverage);
    if (plan) return plan;
  }
  return undefined;
}

/** Street line and five-digit ZIP, lower-cased, punctuation and unit designators dropped. */
function addressKey(address: Address | undefined): string | undefined {
  const line = address?.line?.[0];
  const zip = address?.postalCode?.trim().slice(0, 5);
  if (!line || !zip) return undefined;
  const street = line
    .toLowerCase()
    .replace(/[.,#]/g, ' ')
    .replace(/\b(suite|ste|unit|floor|fl|room|rm)\b.*$/, '')
    .replace(/\s+/g, ' ')
    .trim();
  return `${street}|${zip}`;
}

/** The addresses the ordering practice sends from: the requester's own, its organization's and locations'. */
function practiceAddressKeys(resources: readonly Resource[]): Set<string> {
  const keys = new Set<string>();
  const add = (address: Address | undefined): void => {
    const key = addressKey(address);
    if (key !== undefined) keys.add(key);
  };
  for (const resource of resources as readonly FhirResource[]) {
    if (resource.resourceType === 'Practitioner' || resource.resourceType === 'Organization') {
      for (const address of resource.address ?? []) if (address.use !== 'home') add(address);
    } else if (resource.resourceType === 'Location') {
      add(resource.address);
    }
  }
  return keys;
}

/**
 * Checks the requested site of an infusion order against the directory and the patient.
 * Reasons are raised only where they point at something better: `too-far` needs a suitable site
 * near, `out-of-network` an in-network one, `not-patient-choice` a suitable chosen site. A site the
 * patient chose is not second-guessed for distance or for sharing the practice's address.
 */
export function checkReferralSite(directory: SiteDirectory, input: SiteCheckInput, policy: SiteCheckPolicy): SiteCheckResult {
  const offersDrug = givesDrug(input.drug.codings);
  const isSuitable = (site: DirectorySite): boolean => site.isInfusionSite && site.status === 'active' && offersDrug(site);
  const plan = patientPlan(directory, input.coverages);
  const inNetwork = (site: DirectorySite): boolean | undefined => (plan ? directory.isInNetwork(site, plan) : undefined);
  const home = patientHomePosition(input.patient)?.position;
  const requested = requestedSiteOf(directory, input);
  const site = requested?.site;
  const choice = patientChoice(directory, input);
  const previous = input.previousSiteIds.map((id) => directory.site(id)).filter((s): s is DirectorySite => s !== undefined);
  const isChosen = site !== undefined && choice?.locationId === site.locationId;
  const anchor: GeoPoint | undefined = home ?? site?.position;
  const nearestSuitable = (maxKm: number, needInNetwork: boolean): Array<{ site: DirectorySite; distanceKm: number }> =>
    anchor === undefined
      ? []
      : directory.nearestSites(anchor, {
          limit: policy.maxSuggestions + 1,
          maxKm,
          accept: (s) => s.locationId !== site?.locationId && isSuitable(s) && (!needInNetwork || inNetwork(s) === true),
        });

  const reasons: MisrouteReason[] = [];
  const expression = requested?.expression ?? 'ServiceRequest.locationReference';
  const reason = (code: MisrouteReason['code'], display: string): void => {
    reasons.push({ code, display, expression });
  };

  if (!requested) {
    reason('no-site-requested', 'The order names no infusion site');
  } else if (!site) {
    if (!requested.external) {
      reason('site-inactive', 'The requested site is not a site of this infusion network');
    } else if (practiceAddressKeys(input.requesterResources).has(addressKey(requested.external.address) ?? '')) {
      reason('practice-address', "The requested location is the ordering practice's own address, not an infusion site");
    } else {
      reason('practice-address', 'The requested location is not an infusion site of this network');
    }
  } else if (!site.isInfusionSite) {
    reason('practice-address', `${site.name} is not an infusion site`);
  } else {
    if (site.status !== 'active') reason('site-inactive', `${site.name} is ${site.status === 'suspended' ? 'suspended' : 'closed'}`);
    else if (!offersDrug(site)) reason('drug-not-offered', `${site.name} does not give the ordered drug`);
    if (!isChosen && practiceAddressKeys(input.requesterResources).has(addressKey(site.address) ?? '')) {
      reason('practice-address', `${site.name} is at the ordering practice's own address, the usual sign of an auto-filled site`);
    }
    // A closed site's affiliations have ended with it: its network status says nothing more.
    if (
      site.status === 'active' &&
      plan &&
      inNetwork(site) === false &&
      nearestSuitableExists(directory, plan, anchor, policy, isSuitable, inNetwork, site)
    ) {
      reason('out-of-network', `${site.name} is outside the networks of ${plan.name} while an in-network site gives the drug`);
    }
    if (!isChosen && home && site.position) {
      const away = distanceKm(home, site.position);
      const preferInNetwork = plan !== undefined && nearestSuitable(policy.maxTravelKm, true).length > 0;
      if (away > policy.maxTravelKm) {
        reason(
          'too-far',
          `${site.name} is ${Math.round(away)} km from the patient's home, beyond the ${policy.maxTravelKm} km anyone is asked to travel`,
        );
      } else if (away > policy.tooFarKm && nearestSuitable(policy.tooFarKm, preferInNetwork).length > 0) {
        reason(
          'too-far',
          `${site.name} is ${Math.round(away)} km from the patient's home while a suitable site is within ${policy.tooFarKm} km`,
        );
      }
    }
  }
  // Whatever was asked for, a site other than the one the patient chose (or was treated at) is suspect.
  if (choice && !isChosen && isSuitable(choice)) {
    reason('not-patient-choice', `The patient chose ${choice.name}`);
  } else if (!choice && !previous.some((p) => p.locationId === site?.locationId)) {
    const treatedAt = previous.find(isSuitable);
    if (treatedAt) reason('not-patient-choice', `The patient was treated at ${treatedAt.name} before`);
  }

  const suggestions = rankSuggestions({
    directory,
    policy,
    site,
    choice,
    previous,
    home,
    anchor,
    plan,
    isSuitable,
    inNetwork,
    nearestSuitable,
  });
  const requestedLocationId = site !== undefined ? { requestedLocationId: site.locationId } : {};
  if (reasons.length === 0) return { decision: 'ok', ...requestedLocationId, reasons, suggestions: [] };
  if (suggestions.length > 0) return { decision: 'misroute-suspected', ...requestedLocationId, reasons, suggestions };
  // Nothing better exists: a usable site within reach stands (a soft signal is no reason to refuse the only option).
  const beyondReach = home !== undefined && site?.position !== undefined && distanceKm(home, site.position) > policy.maxTravelKm;
  if (site && isSuitable(site) && !beyondReach && !reasons.some((r) => r.code === 'site-inactive' || r.code === 'drug-not-offered')) {
    return { decision: 'ok', ...requestedLocationId, reasons, suggestions: [] };
  }
  return { decision: 'no-suitable-site', ...requestedLocationId, reasons, suggestions: [] };
}

function nearestSuitableExists(
  directory: SiteDirectory,
  plan: DirectoryPlan,
  anchor: GeoPoint | undefined,
  policy: SiteCheckPolicy,
  isSuitable: (s: DirectorySite) => boolean,
  inNetwork: (s: DirectorySite) => boolean | undefined,
  requested: DirectorySite,
): boolean {
  const accept = (s: DirectorySite): boolean => s.locationId !== requested.locationId && isSuitable(s) && inNetwork(s) === true;
  if (anchor) return directory.nearestSites(anchor, { limit: 1, maxKm: policy.maxTravelKm, accept }).length > 0;
  for (const s of directory.allSites()) if (accept(s) && directory.isInNetwork(s, plan)) return true;
  return false;
}

interface RankingContext {
  directory: SiteDirectory;
  policy: SiteCheckPolicy;
  site: DirectorySite | undefined;
  choice: DirectorySite | undefined;
  previous: readonly DirectorySite[];
  home: GeoPoint | undefined;
  anchor: GeoPoint | undefined;
  plan: DirectoryPlan | undefined;
  isSuitable(site: DirectorySite): boolean;
  inNetwork(site: DirectorySite): boolean | undefined;
  nearestSuitable(maxKm: number, needInNetwork: boolean): Array<{ site: DirectorySite; distanceKm: number }>;
}

/**
 * Suitable sites other than the requested one, best first: the patient's own choice, sites the
 * patient was treated at, then in-network sites (all suitable sites when none is) by distance.
 */
function rankSuggestions(context: RankingContext): SiteSuggestion[] {
  const { policy, site, choice, previous, home, isSuitable, inNetwork } = context;
  const ranked: DirectorySite[] = [];
  const add = (candidate: DirectorySite | undefined): void => {
    if (!candidate || candidate.locationId === site?.locationId || !isSuitable(candidate)) return;
    if (home && candidate.position && distanceKm(home, candidate.position) > policy.maxTravelKm) return;
    if (!ranked.some((r) => r.locationId === candidate.locationId)) ranked.push(candidate);
  };
  add(choice);
  previous.forEach(add);
  if (context.anchor === undefined) {
    sitesWithoutPosition(context).forEach(add);
  } else {
    let near = context.nearestSuitable(policy.maxTravelKm, context.plan !== undefined);
    if (near.length === 0 && context.plan !== undefined) near = context.nearestSuitable(policy.maxTravelKm, false);
    near.forEach((n) => add(n.site));
  }
  const previousIds = new Set(previous.map((p) => p.locationId));
  return ranked.slice(0, policy.maxSuggestions).map((candidate) => {
    const network = inNetwork(candidate);
    return {
      locationId: candidate.locationId,
      name: candidate.name,
      ...(candidate.siteCode !== undefined ? { siteCode: candidate.siteCode } : {}),
      ...(home && candidate.position ? { distanceKm: Math.round(distanceKm(home, candidate.position) * 10) / 10 } : {}),
      ...(network !== undefined ? { inNetwork: network } : {}),
      patientChoice: candidate.locationId === choice?.locationId,
      previouslyTreated: previousIds.has(candidate.locationId),
    };
  });
}

/** Without any position to search from, suitable sites in-network first, by name (a scan: rare, small). */
function sitesWithoutPosition(context: RankingContext): DirectorySite[] {
  const suitable = [...context.directory.allSites()].filter((s) => s.locationId !== context.site?.locationId && context.isSuitable(s));
  const score = (s: DirectorySite): number => (context.inNetwork(s) === false ? 1 : 0);
  return suitable.sort((a, b) => score(a) - score(b) || a.name.localeCompare(b.name)).slice(0, context.policy.maxSuggestions);
}
