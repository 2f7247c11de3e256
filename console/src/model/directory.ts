/**
 * The network's directory as the console needs it: sites with their position, time zone, status
 * and networks, read from the FHIR API (Location, OrganizationAffiliation, Organization; the
 * directory is readable by every tenant). Pure parts here; loading in components/directory.tsx.
 */
import type { Location, Organization, OrganizationAffiliation } from 'fhir/r4.js';
import { TIMEZONE_EXTENSION_URL } from '../../../src/directory/rules/site-directory.js';
import { idOf } from './referral.js';

export interface DirectorySiteView {
  id: string;
  name: string;
  status: Location['status'];
  position?: { latitude: number; longitude: number };
  timeZone?: string;
  city?: string;
  state?: string;
  /** The networks (Organization ids) whose affiliations name the site. */
  networkIds: string[];
  location: Location;
}

export interface DirectoryView {
  sites: ReadonlyMap<string, DirectorySiteView>;
  organizations: ReadonlyMap<string, Organization>;
}

/** Only buildings with a position are drawn and scheduled; jurisdictions (coverage areas) are not sites. */
export function isSiteLocation(location: Location): boolean {
  const kind = location.physicalType?.coding?.[0]?.code;
  return kind !== 'jdn' && kind !== 'area';
}

export function directoryView(input: {
  locations: Location[];
  affiliations: OrganizationAffiliation[];
  organizations: Organization[];
}): DirectoryView {
  const networksBySite = new Map<string, Set<string>>();
  for (const affiliation of input.affiliations) {
    if (affiliation.active === false) continue;
    for (const location of affiliation.location ?? []) {
      const siteId = idOf(location, 'Location');
      if (siteId === undefined) continue;
      for (const network of affiliation.network ?? []) {
        const networkId = idOf(network, 'Organization');
        if (networkId !== undefined) networksBySite.set(siteId, (networksBySite.get(siteId) ?? new Set()).add(networkId));
      }
    }
  }
  const sites = new Map<string, DirectorySiteView>();
  for (const location of input.locations) {
    if (!location.id || !isSiteLocation(location)) continue;
    const timeZone = location.extension?.find((e) => e.url === TIMEZONE_EXTENSION_URL)?.valueCode;
    const site: DirectorySiteView = {
      id: location.id,
      name: location.name ?? location.id,
      status: location.status,
      networkIds: [...(networksBySite.get(location.id) ?? [])].sort(),
      location,
    };
    if (location.position) site.position = { latitude: location.position.latitude, longitude: location.position.longitude };
    if (timeZone !== undefined) site.timeZone = timeZone;
    if (location.address?.city !== undefined) site.city = location.address.city;
    if (location.address?.state !== undefined) site.state = location.address.state;
    sites.set(location.id, site);
  }
  return { sites, organizations: new Map(input.organizations.filter((o) => o.id).map((o) => [o.id!, o])) };
}

export function networkNames(directory: DirectoryView, siteId: string): string[] {
  return (directory.sites.get(siteId)?.networkIds ?? []).map((id) => directory.organizations.get(id)?.name ?? id);
}
