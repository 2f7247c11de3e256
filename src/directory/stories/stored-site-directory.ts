/**
 * The site check's directory, built from the stored directory tenant and kept in memory.
 *
 * Building it reads every directory resource; checking a referral must not. So the index is
 * cached and rebuilt only when the stored directory changed: at most every `recheckMs` the source
 * asks the store, in the background, for each directory type's row count and newest
 * `_lastUpdated` (a handful of one-row queries), which catches writes made by any process on the
 * same database; callers get the cached index meanwhile and never wait (only the first call, which
 * gateway.ts makes at start-up, does). A write made through this process can call `invalidate()`.
 */
import type { Resource } from 'fhir/r4.js';
import { SiteDirectory, type SiteDirectorySource } from '../rules/site-directory.js';
import type { ResourceReader, TenantId } from '../../ports/resource-store.js';

/** The types the site check reads (Endpoints are the payer connectivity's). */
const SITE_DIRECTORY_TYPES = ['Location', 'HealthcareService', 'Organization', 'OrganizationAffiliation', 'InsurancePlan'] as const;
const PAGE_SIZE = 1000;

export interface StoredSiteDirectory extends SiteDirectorySource {
  /** Forget the cached index: the next `current()` rebuilds it. */
  invalidate(): void;
}

export function storedSiteDirectory(
  reader: ResourceReader,
  directoryTenant: TenantId,
  options: { recheckMs?: number } = {},
): StoredSiteDirectory {
  const recheckMs = options.recheckMs ?? 2000;
  let cached: { directory: SiteDirectory; fingerprint: string; checkedAt: number } | undefined;
  let building: Promise<SiteDirectory> | undefined;

  const fingerprint = async (): Promise<string> => {
    const parts = await Promise.all(
      SITE_DIRECTORY_TYPES.map(async (resourceType) => {
        const newest = await reader.search({
          resourceType,
          tenants: [directoryTenant],
          criteria: [],
          count: 1,
          offset: 0,
          sort: ['-_lastUpdated'],
          withTotal: true,
        });
        const top = newest.resources[0];
        return `${resourceType}:${newest.total ?? 0}:${top?.meta?.lastUpdated ?? ''}:${top?.id ?? ''}:${top?.meta?.versionId ?? ''}`;
      }),
    );
    return parts.join('|');
  };

  const readAll = async (): Promise<Resource[]> => {
    const all: Resource[] = [];
    for (const resourceType of SITE_DIRECTORY_TYPES) {
      for (let offset = 0; ; offset += PAGE_SIZE) {
        const page = await reader.search({
          resourceType,
          tenants: [directoryTenant],
          criteria: [],
          count: PAGE_SIZE,
          offset,
          sort: ['_id'],
        });
        all.push(...page.resources);
        if (page.resources.length < PAGE_SIZE) break;
      }
    }
    return all;
  };

  const rebuild = async (): Promise<SiteDirectory> => {
    const before = await fingerprint();
    const directory = SiteDirectory.fromResources(await readAll());
    cached = { directory, fingerprint: before, checkedAt: performance.now() };
    return directory;
  };

  const refresh = (): Promise<SiteDirectory> => {
    building ??= (async () => {
      try {
        if (cached && (await fingerprint()) === cached.fingerprint) {
          cached.checkedAt = performance.now();
          return cached.directory;
        }
        return await rebuild();
      } finally {
        building = undefined;
      }
    })();
    return building;
  };

  return {
    async current(): Promise<SiteDirectory> {
      if (!cached) return refresh();
      // Cache freshness is an operational timer, not the business clock (which tests may fix).
      if (performance.now() - cached.checkedAt >= recheckMs && !building) {
        // Stale while revalidating: the caller may hold a database transaction (a Bundle's intake)
        // and must not wait for another connection, which a full pool would never give it.
        refresh().catch(() => {
          // The next call tries again; the cached directory stays in use meanwhile.
        });
      }
      return cached.directory;
    },
    invalidate(): void {
      cached = undefined;
    },
  };
}
