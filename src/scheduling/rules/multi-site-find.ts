/**
 * `Appointment/$find` across several sites (issue 12; seed 001: patients choose between nearby
 * sites by time). Pure: which sites a referral may be scheduled at, and how proposals from several
 * sites are ranked.
 *
 * A site is a candidate when the referral allows it, the same rules as the site check's
 * (DOMAIN.md, Misroutes): an active infusion site of the directory that gives the ordered drug and
 * is in the network of the patient's plan. The confirmed site is always allowed (the coordinator
 * and the payer cleared it). Sites asked for by `location` that the referral does not allow are
 * reported, with why, not silently dropped.
 *
 * `near` follows the FHIR search parameter of the same name on Location
 * (https://hl7.org/fhir/R4/location.html#positional): `latitude|longitude|distance|units`, units
 * `km` (the default) or `mi` ([mi_i] accepted), distance from the point given; where latitude and
 * longitude are left empty (`||25|mi`) the point is the patient's home.
 */
import { distanceKm, givesDrug } from '../../directory/rules/site-directory.js';
import type { DirectoryPlan, DirectorySite, GeoPoint, SiteDirectory } from '../../directory/rules/site-directory.js';
import type { Coding } from 'fhir/r4.js';

export const KM_PER_MILE = 1.609344;

export interface NearFilter {
  /** The point to measure from; undefined: the patient's home. */
  center?: GeoPoint;
  distanceKm: number;
}

export type SiteExclusionReason =
  'unknown-site' | 'site-inactive' | 'drug-not-offered' | 'out-of-network' | 'network-unknown' | 'too-far' | 'no-position';

export interface SiteExclusion {
  locationId: string;
  reason: SiteExclusionReason;
  display: string;
}

export interface CandidateSite {
  site: DirectorySite;
  /** From the `near` point, else from the patient's home; undefined where either is unknown. */
  distanceKm?: number;
}

export interface CandidateSitesInput {
  drugCodings: readonly Coding[];
  /** The patient's plan, as the directory knows it; undefined: only the confirmed site is allowed. */
  plan?: DirectoryPlan;
  confirmedSiteId: string;
  /** `location`: the sites asked for, in the order asked. */
  locationIds?: readonly string[];
  near?: NearFilter;
  home?: GeoPoint;
}

/**
 * The sites `$find` searches and those it leaves out. Neither `location` nor `near`: the confirmed
 * site only (as before). `location` only: those sites. `near` only: every directory site within the
 * distance. Both: the sites asked for that are within the distance.
 */
export function candidateSites(
  directory: SiteDirectory,
  input: CandidateSitesInput,
): { sites: CandidateSite[]; excluded: SiteExclusion[] } {
  const offersDrug = givesDrug(input.drugCodings);
  const center = input.near ? (input.near.center ?? input.home) : input.home;
  const excluded: SiteExclusion[] = [];
  const sites: CandidateSite[] = [];

  const asked: Array<{ locationId: string; site?: DirectorySite }> =
    input.locationIds !== undefined
      ? [...new Set(input.locationIds)].map((locationId) => ({ locationId, site: directory.site(locationId) }))
      : input.near !== undefined
        ? [...directory.allSites()].filter((s) => s.isInfusionSite).map((site) => ({ locationId: site.locationId, site }))
        : [{ locationId: input.confirmedSiteId, site: directory.site(input.confirmedSiteId) }];
  const reportAll = input.locationIds !== undefined;

  for (const { locationId, site } of asked) {
    const exclude = (reason: SiteExclusionReason, display: string, report = reportAll): void => {
      if (report) excluded.push({ locationId, reason, display });
    };
    if (!site) {
      exclude('unknown-site', `Location/${locationId} is not a site of the network`);
      continue;
    }
    const confirmed = site.locationId === input.confirmedSiteId;
    if (!site.isInfusionSite || site.status !== 'active') {
      exclude('site-inactive', `${site.name} is not an active infusion site`);
      continue;
    }
    if (!confirmed && !offersDrug(site)) {
      exclude('drug-not-offered', `${site.name} does not give the ordered drug`);
      continue;
    }
    if (!confirmed && input.plan === undefined) {
      exclude('network-unknown', `${site.name}: the patient's plan is not known, so only the confirmed site can be scheduled`);
      continue;
    }
    if (!confirmed && input.plan !== undefined && !directory.isInNetwork(site, input.plan)) {
      exclude('out-of-network', `${site.name} is not in the network of ${input.plan.name}`);
      continue;
    }
    const distance = center !== undefined && site.position !== undefined ? distanceKm(center, site.position) : undefined;
    if (input.near !== undefined) {
      if (distance === undefined) {
        exclude(
          'no-position',
          center === undefined
            ? "The patient's home is not known, so no distance can be measured"
            : `${site.name} has no position in the directory`,
        );
        continue;
      }
      if (distance > input.near.distanceKm) {
        exclude('too-far', `${site.name} is ${Math.round(distance)} km away, beyond the ${Math.round(input.near.distanceKm)} km asked for`);
        continue;
      }
    }
    sites.push({ site, ...(distance !== undefined ? { distanceKm: distance } : {}) });
  }
  return { sites, excluded };
}

export interface RankableProposal {
  locationId: string;
  chairId: string;
  start: Date;
}

/**
 * Proposals from several sites, ranked as patients choose (seed 001): earliest start first, then
 * the nearer site (a site of unknown distance after the known ones), then site and chair ids so
 * that the order never depends on the order the sites were searched. At most `limit`.
 */
export function rankProposals<T extends RankableProposal>(
  proposals: readonly T[],
  distanceBySite: ReadonlyMap<string, number | undefined>,
  limit: number,
): T[] {
  const distance = (p: T): number => distanceBySite.get(p.locationId) ?? Number.POSITIVE_INFINITY;
  return [...proposals]
    .sort(
      (a, b) =>
        a.start.getTime() - b.start.getTime() ||
        distance(a) - distance(b) ||
        (a.locationId < b.locationId ? -1 : a.locationId > b.locationId ? 1 : 0) ||
        (a.chairId < b.chairId ? -1 : a.chairId > b.chairId ? 1 : 0),
    )
    .slice(0, limit);
}

/**
 * Reads `near` (FHIR's `latitude|longitude|distance|units`; latitude and longitude empty: from
 * the patient's home). Returns an error message for a malformed value.
 */
export function parseNear(text: string): { near: NearFilter } | { error: string } {
  const parts = text.split('|');
  if (parts.length < 3 || parts.length > 4)
    return { error: `near must be latitude|longitude|distance|units, latitude and longitude empty for the patient's home (got '${text}')` };
  const [latText = '', longText = '', distanceText = '', unitsText = 'km'] = parts;
  const distance = Number(distanceText);
  if (distanceText.trim() === '' || !Number.isFinite(distance) || distance <= 0)
    return { error: `near needs a distance greater than 0 (got '${distanceText}')` };
  const units = unitsText === '' ? 'km' : unitsText;
  const factor = units === 'km' ? 1 : units === 'mi' || units === '[mi_i]' ? KM_PER_MILE : undefined;
  if (factor === undefined) return { error: `near units must be km or mi (got '${units}')` };
  if (latText === '' && longText === '') return { near: { distanceKm: distance * factor } };
  const latitude = Number(latText);
  const longitude = Number(longText);
  if (
    latText === '' ||
    longText === '' ||
    !Number.isFinite(latitude) ||
    !Number.isFinite(longitude) ||
    Math.abs(latitude) > 90 ||
    Math.abs(longitude) > 180
  ) {
    return { error: `near latitude and longitude must be decimal degrees, or both empty for the patient's home (got '${text}')` };
  }
  return { near: { center: { latitude, longitude }, distanceKm: distance * factor } };
}
