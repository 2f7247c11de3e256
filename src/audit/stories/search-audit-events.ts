/**
 * The operator's search of the audit trail (docs/audit.md): `GET /fhir/AuditEvent?agent=&entity=&date=`
 * with `_count` and a keyset `_cursor` in the next link, newest first; and a read by id.
 * Parameters follow FHIR R4 search (https://hl7.org/fhir/R4/search.html#date for the prefixes);
 * any other parameter is refused, every problem named with its expression.
 */
import type { AuditEvent, Bundle, OperationOutcomeIssue } from 'fhir/r4.js';
import { toAuditEvent } from '../rules/audit-event.js';
import { errorIssue } from '../../fhir/outcomes.js';
import type { AuditSearch, AuditTrail } from '../../ports/audit-trail.js';

export const AUDIT_SEARCH_PARAMETERS = ['agent', 'entity', 'date'] as const;
const CONTROL = new Set(['_count', '_cursor', '_format', '_pretty']);
const DEFAULT_COUNT = 50;
const MAX_COUNT = 500;
const REFERENCE = /^[A-Z][A-Za-z]{1,63}\/[A-Za-z0-9\-.]{1,64}$/;
const DATE = /^(\d{4})(?:-(\d{2})(?:-(\d{2})(?:T(\d{2}):(\d{2})(?::(\d{2})(?:\.(\d{1,9}))?)?(Z|[+-]\d{2}:\d{2}))?)?)?$/;

/** The instants [low, high) a FHIR date value covers at its precision (a date without a zone is UTC). */
export function dateRange(value: string): { low: Date; high: Date } | undefined {
  const m = DATE.exec(value);
  if (!m) return undefined;
  const [, y, mo, d, h, mi, s, fraction, zone] = m;
  const year = Number(y);
  if (mo === undefined) return { low: new Date(Date.UTC(year, 0, 1)), high: new Date(Date.UTC(year + 1, 0, 1)) };
  const month = Number(mo) - 1;
  if (month > 11) return undefined;
  if (d === undefined) return { low: new Date(Date.UTC(year, month, 1)), high: new Date(Date.UTC(year, month + 1, 1)) };
  const day = Number(d);
  if (day < 1 || day > 31) return undefined;
  if (h === undefined) return { low: new Date(Date.UTC(year, month, day)), high: new Date(Date.UTC(year, month, day + 1)) };
  const low = new Date(
    `${y}-${mo}-${d}T${h}:${mi}:${s ?? '00'}${fraction !== undefined ? `.${fraction.slice(0, 3).padEnd(3, '0')}` : ''}${zone}`,
  );
  if (Number.isNaN(low.getTime())) return undefined;
  const step = s === undefined ? 60_000 : fraction === undefined ? 1000 : 1;
  return { low, high: new Date(low.getTime() + step) };
}

function encodeCursor(recorded: string, id: string): string {
  return Buffer.from(JSON.stringify([recorded, id]), 'utf8').toString('base64url');
}

function decodeCursor(value: string): { recorded: string; id: string } | undefined {
  try {
    const decoded = JSON.parse(Buffer.from(value, 'base64url').toString('utf8')) as unknown;
    if (Array.isArray(decoded) && decoded.length === 2 && typeof decoded[0] === 'string' && typeof decoded[1] === 'string')
      return { recorded: decoded[0], id: decoded[1] };
  } catch {
    // Falls through to the refusal.
  }
  return undefined;
}

type DatePrefix = 'eq' | 'ge' | 'le' | 'gt' | 'lt';

/**
 * Which end of the date's range (its first instant, and the instant after its last) bounds the
 * search from below and from above, by prefix (https://hl7.org/fhir/R4/search.html#prefix): the
 * lower bound inclusive, the upper exclusive.
 */
const DATE_PREFIX_BOUNDS: Record<DatePrefix, { from?: 'low' | 'high'; to?: 'low' | 'high' }> = {
  eq: { from: 'low', to: 'high' },
  ge: { from: 'low' },
  gt: { from: 'high' },
  le: { to: 'high' },
  lt: { to: 'low' },
};

export function parseAuditSearch(query: ReadonlyArray<readonly [string, string]>): {
  search: AuditSearch;
  issues: OperationOutcomeIssue[];
} {
  const issues: OperationOutcomeIssue[] = [];
  const search: AuditSearch = { count: DEFAULT_COUNT };
  const seen = new Set<string>();
  for (const [name, value] of query) {
    if (name === 'agent' || name === 'entity' || name === '_count' || name === '_cursor') {
      if (seen.has(name)) issues.push(errorIssue('not-supported', `${name} may be given once`, name));
      seen.add(name);
    }
    if (name === 'agent') {
      if (value === '') issues.push(errorIssue('value', 'agent must name a client id', 'agent'));
      else search.agent = value;
    } else if (name === 'entity') {
      if (!REFERENCE.test(value))
        issues.push(errorIssue('value', 'entity must be a relative reference such as ServiceRequest/123', 'entity'));
      else search.entity = value;
    } else if (name === 'date') {
      const prefix = (/^(eq|ge|le|gt|lt)/.exec(value)?.[1] ?? 'eq') as DatePrefix;
      const range = dateRange(value.startsWith(prefix) ? value.slice(prefix.length) : value);
      if (range === undefined) {
        issues.push(
          errorIssue(
            'value',
            'date must be a FHIR date or dateTime with an optional prefix eq, ge, le, gt or lt (e.g. ge2026-12-01)',
            'date',
          ),
        );
        continue;
      }
      const bound = DATE_PREFIX_BOUNDS[prefix];
      const from = bound.from && { at: range[bound.from], inclusive: true };
      const to = bound.to && { at: range[bound.to], inclusive: false };
      // Several date parameters all apply (AND): the narrowest bounds win.
      if (from && (!search.recordedFrom || from.at > search.recordedFrom.at)) search.recordedFrom = from;
      if (to && (!search.recordedTo || to.at < search.recordedTo.at)) search.recordedTo = to;
    } else if (name === '_count') {
      const count = Number(value);
      if (!Number.isInteger(count) || count < 1) issues.push(errorIssue('value', '_count must be a whole number of at least 1', '_count'));
      else search.count = Math.min(count, MAX_COUNT);
    } else if (name === '_cursor') {
      const after = decodeCursor(value);
      if (after === undefined) issues.push(errorIssue('value', '_cursor is not one this server gave in a next link', '_cursor'));
      else search.after = after;
    } else if (name === '_sort') {
      // The trail is read newest first from its (recorded, id) index; -date names that order.
      if (value !== '-date')
        issues.push(errorIssue('not-supported', 'The audit trail is returned newest first: _sort may only be -date', '_sort'));
    } else if (!CONTROL.has(name)) {
      issues.push(
        errorIssue(
          'not-supported',
          `AuditEvent search supports ${AUDIT_SEARCH_PARAMETERS.join(', ')}, _count, _sort=-date (and the next link's _cursor), not ${name}`,
          name,
        ),
      );
    }
  }
  return { search, issues };
}

/** One page of the trail as a searchset Bundle, with a next link when more may follow. */
export async function searchAuditTrail(
  trail: AuditTrail,
  search: AuditSearch,
  urls: { baseUrl: string; query: ReadonlyArray<readonly [string, string]> },
): Promise<Bundle> {
  const rows = await trail.searchAuditEvents({ ...search, count: search.count + 1 });
  const page = rows.slice(0, search.count);
  const kept = urls.query.filter(([name]) => name !== '_cursor');
  const self = `${urls.baseUrl}/AuditEvent${kept.length > 0 || search.after ? `?${new URLSearchParams(urls.query.map(([k, v]): [string, string] => [k, v]))}` : ''}`;
  const link: Bundle['link'] = [{ relation: 'self', url: self }];
  const last = page[page.length - 1];
  if (rows.length > search.count && last !== undefined) {
    const next = new URLSearchParams([
      ...kept.map(([k, v]): [string, string] => [k, v]),
      ['_cursor', encodeCursor(last.recorded.toISOString(), last.id)],
    ]);
    link.push({ relation: 'next', url: `${urls.baseUrl}/AuditEvent?${next}` });
  }
  return {
    resourceType: 'Bundle',
    type: 'searchset',
    link,
    entry: page.map((record) => ({
      fullUrl: `${urls.baseUrl}/AuditEvent/${record.id}`,
      resource: toAuditEvent(record),
      search: { mode: 'match' },
    })),
  };
}

export async function readAuditTrailEvent(trail: AuditTrail, id: string): Promise<AuditEvent | undefined> {
  const record = await trail.readAuditEvent(id);
  return record === undefined ? undefined : toAuditEvent(record);
}
