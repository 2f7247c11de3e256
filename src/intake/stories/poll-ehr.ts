/**
 * Story: the gateway pulls new and changed infusion ServiceRequests from an EHR that does not push.
 *
 * It searches `_lastUpdated=ge{cursor}&_sort=_lastUpdated` and follows `next` links. The cursor
 * is the newest `_lastUpdated` read plus the ids read at exactly that instant: `ge` rather than
 * `gt` so that a resource updated in the same millisecond as the cursor is not skipped, and the
 * ids so that the ones already taken are not taken again. The cursor is saved after every page,
 * so a restart goes on where the last page ended.
 */
import type { Bundle, ServiceRequest } from 'fhir/r4.js';
import type { EhrFhir } from '../../ports/ehr-fhir.js';
import type { GatewayDeps } from '../../ports/gateway-deps.js';
import { intakeFetchedServiceRequest, type FetchedIntakeResult } from './intake-fetched-referral.js';

export interface PollCursor {
  lastUpdated: string;
  idsAtLastUpdated: string[];
}

export interface PollResult {
  pages: number;
  read: number;
  skipped: number;
  outcomes: Record<FetchedIntakeResult, number>;
}

export function pollCursorName(tenant: string): string {
  return `ehr-poll:${tenant}:ServiceRequest`;
}

function isPollCursor(value: unknown): value is PollCursor {
  const cursor = value as Partial<PollCursor> | undefined;
  return typeof cursor?.lastUpdated === 'string' && Array.isArray(cursor.idsAtLastUpdated);
}

/** Advances the cursor over one resource read in `_lastUpdated` order. Pure. */
export function advanceCursor(cursor: PollCursor | undefined, resource: { id: string; lastUpdated: string }): PollCursor {
  if (!cursor || resource.lastUpdated > cursor.lastUpdated) return { lastUpdated: resource.lastUpdated, idsAtLastUpdated: [resource.id] };
  if (resource.lastUpdated === cursor.lastUpdated && !cursor.idsAtLastUpdated.includes(resource.id)) {
    return { lastUpdated: cursor.lastUpdated, idsAtLastUpdated: [...cursor.idsAtLastUpdated, resource.id] };
  }
  return cursor;
}

/** Whether the cursor already covers this resource (read before, at or before the cursor's instant). */
export function alreadyRead(cursor: PollCursor | undefined, resource: { id: string; lastUpdated: string }): boolean {
  if (!cursor) return false;
  if (resource.lastUpdated < cursor.lastUpdated) return true;
  return resource.lastUpdated === cursor.lastUpdated && cursor.idsAtLastUpdated.includes(resource.id);
}

export async function pollEhrServiceRequests(
  deps: GatewayDeps,
  input: { tenant: string; ehr: EhrFhir; query?: Record<string, string>; pageSize?: number; maxPages?: number },
): Promise<PollResult> {
  const name = pollCursorName(input.tenant);
  const saved = await deps.store.readCursor(name);
  let cursor = isPollCursor(saved) ? saved : undefined;
  const result: PollResult = {
    pages: 0,
    read: 0,
    skipped: 0,
    outcomes: { accepted: 0, rejected: 0, duplicate: 0, changed: 0, refused: 0 },
  };
  const params: Record<string, string> = {
    ...input.query,
    _sort: '_lastUpdated',
    _count: String(input.pageSize ?? 50),
    ...(cursor ? { _lastUpdated: `ge${cursor.lastUpdated}` } : {}),
  };

  result.pages = await input.ehr.searchAll(
    'ServiceRequest',
    params,
    async (page: Bundle) => {
      for (const entry of page.entry ?? []) {
        const resource = entry.resource;
        if (resource?.resourceType !== 'ServiceRequest' || !resource.id || !resource.meta?.lastUpdated) continue;
        const position = { id: resource.id, lastUpdated: new Date(resource.meta.lastUpdated).toISOString() };
        if (alreadyRead(cursor, position)) {
          result.skipped += 1;
          continue;
        }
        result.read += 1;
        const outcome = await intakeFetchedServiceRequest(deps, input.tenant, resource as ServiceRequest & { id: string });
        result.outcomes[outcome] += 1;
        cursor = advanceCursor(cursor, position);
      }
      if (cursor) await deps.store.writeCursor(name, cursor, deps.clock.now());
    },
    input.maxPages !== undefined ? { maxPages: input.maxPages } : {},
  );
  deps.logger.info('EHR poll finished', { pages: result.pages, read: result.read, skipped: result.skipped, ...result.outcomes });
  return result;
}
