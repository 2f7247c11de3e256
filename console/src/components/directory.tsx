/** The directory, loaded once per page load through the API client and shared by every page. */
import type { Bundle, Location, Organization, OrganizationAffiliation, Resource } from 'fhir/r4.js';
import type { ApiClient } from '../api/client.js';
import { directoryView, type DirectoryView } from '../model/directory.js';
import { useApi, useLoad, type Loaded } from './common.js';

/** Most pages of a big directory: beyond this, the rest is not loaded (and the page says so). */
const MAX_PAGES = 20;

/** Every resource of a search, page after page, by the server's `next` links. */
export async function searchAll<T extends Resource>(
  api: ApiClient,
  type: T['resourceType'],
  params: ReadonlyArray<readonly [string, string]>,
  signal?: AbortSignal,
): Promise<T[]> {
  const found: T[] = [];
  let page: Bundle | undefined = await api.search(type, [...params, ['_count', '200']], signal ? { signal } : {});
  for (let pages = 1; page && pages <= MAX_PAGES; pages += 1) {
    for (const entry of page.entry ?? []) if (entry.resource?.resourceType === type) found.push(entry.resource as T);
    page = await api.page(page, 'next', signal ? { signal } : {});
  }
  return found;
}

let cached: Promise<DirectoryView> | undefined;

export function loadDirectory(api: ApiClient, options: { refresh?: boolean } = {}): Promise<DirectoryView> {
  if (!cached || options.refresh) {
    cached = Promise.all([
      searchAll<Location>(api, 'Location', []),
      searchAll<OrganizationAffiliation>(api, 'OrganizationAffiliation', []),
      searchAll<Organization>(api, 'Organization', []),
    ]).then(([locations, affiliations, organizations]) => directoryView({ locations, affiliations, organizations }));
    cached.catch(() => (cached = undefined));
  }
  return cached;
}

export function useDirectory(): Loaded<DirectoryView> {
  const api = useApi();
  const [loaded] = useLoad(() => loadDirectory(api), [api]);
  return loaded;
}
