/**
 * Turning a FHIR search query string into a store SearchRequest, and the result into a searchset
 * Bundle with paging links (https://hl7.org/fhir/R4/search.html, https://hl7.org/fhir/R4/http.html#paging).
 */
import type { Bundle, BundleLink, OperationOutcomeIssue, Resource } from 'fhir/r4.js';
import { errorIssue, operationOutcome, warningIssue } from './outcomes.js';
import { splitUnescaped, type SearchCriterion } from './search-parameters.js';

export const DEFAULT_PAGE_SIZE = 20;
/** `_count` above this is served as this many (https://hl7.org/fhir/R4/search.html#count: the server may return fewer). */
export const MAX_PAGE_SIZE = 200;
/**
 * `_offset` above this is refused: skipping rows costs every row skipped. Deeper pages are
 * reached through the `next` link, which carries a keyset cursor (`_cursor`) instead.
 */
export const MAX_OFFSET = 1000;
/** Search parameters per search, and values per parameter (comma-separated ORs): each is an index scan. */
export const MAX_SEARCH_PARAMETERS = 20;
export const MAX_VALUES_PER_PARAMETER = 50;

/** Result and format parameters this server understands (everything else is a search parameter). */
const CONTROL_PARAMETERS = new Set(['_count', '_offset', '_cursor', '_sort', '_total', '_format', '_pretty']);
const TOTAL_MODES = new Set(['none', 'estimate', 'accurate']);
/** Result parameters a client may send that this server does not apply; reported, never silently. */
const UNSUPPORTED_RESULT_PARAMETERS = new Set(['_summary', '_elements', '_include', '_revinclude', '_contained', '_containedType']);
const SORTABLE = new Set(['_lastUpdated', '-_lastUpdated', '_id', '-_id']);

export interface ParsedSearch {
  criteria: SearchCriterion[];
  count: number;
  offset: number;
  sort?: string[];
  /** Keyset cursor of a `next` link, opaque here (the store reads it). */
  cursor?: string;
  /**
   * https://hl7.org/fhir/R4/search.html#total: `none` unless asked, so paging a worklist never
   * counts all its matches; `estimate` is answered with the accurate count.
   */
  total: 'none' | 'estimate' | 'accurate';
  /** Problems found; errors refuse the search, warnings are reported in the Bundle. */
  issues: OperationOutcomeIssue[];
}

export function parseSearchQuery(
  resourceType: string,
  query: ReadonlyArray<readonly [string, string]>,
  options: {
    strict: boolean;
    /** Whether the parameter (with its modifier) is one this server supports for the type. */
    isSupported: (resourceType: string, criterion: Pick<SearchCriterion, 'name' | 'modifier'>) => boolean;
  },
): ParsedSearch {
  const criteria: SearchCriterion[] = [];
  const issues: OperationOutcomeIssue[] = [];
  let count = DEFAULT_PAGE_SIZE;
  let offset = 0;
  let sort: string[] | undefined;
  let cursor: string | undefined;
  let total: ParsedSearch['total'] = 'none';

  for (const [key, value] of query) {
    if (CONTROL_PARAMETERS.has(key)) {
      if (key === '_count') {
        const n = Number(value);
        if (!Number.isInteger(n) || n < 0) issues.push(errorIssue('value', `_count must be a whole number (got '${value}')`, '_count'));
        else count = Math.min(n, MAX_PAGE_SIZE);
      } else if (key === '_offset') {
        const n = Number(value);
        if (!Number.isInteger(n) || n < 0) issues.push(errorIssue('value', `_offset must be a whole number (got '${value}')`, '_offset'));
        else if (n > MAX_OFFSET) {
          issues.push(
            errorIssue('too-costly', `_offset may be at most ${MAX_OFFSET}; follow the next link (a cursor) to page further`, '_offset'),
          );
        } else offset = n;
      } else if (key === '_cursor') {
        if (value === '' || value.length > 2048)
          issues.push(errorIssue('value', '_cursor is not a cursor of this search (follow the next link as given)', '_cursor'));
        else cursor = value;
      } else if (key === '_total') {
        if (TOTAL_MODES.has(value)) total = value as ParsedSearch['total'];
        else issues.push(errorIssue('value', `_total must be none, estimate or accurate (got '${value}')`, '_total'));
      } else if (key === '_sort') {
        const keys = splitUnescaped(value, ',');
        const unknown = keys.filter((k) => !SORTABLE.has(k));
        if (unknown.length > 0) {
          issues.push(
            errorIssue('not-supported', `_sort supports _lastUpdated and _id (with - for descending), not ${unknown.join(', ')}`, '_sort'),
          );
        } else {
          sort = keys;
        }
      }
      continue;
    }
    if (UNSUPPORTED_RESULT_PARAMETERS.has(key)) {
      const problem = `${key} is not supported by this server and was ignored`;
      issues.push(options.strict ? errorIssue('not-supported', problem, key) : warningIssue('not-supported', problem, key));
      continue;
    }
    const [name = '', modifier] = key.split(':', 2);
    if (!options.isSupported(resourceType, modifier === undefined ? { name } : { name, modifier })) {
      const what = modifier === undefined ? `'${name}'` : `'${name}:${modifier}'`;
      const problem = `Search parameter ${what} is not supported for ${resourceType}`;
      issues.push(
        options.strict ? errorIssue('not-supported', problem, key) : warningIssue('not-supported', `${problem}; it was ignored`, key),
      );
      continue;
    }
    const values = splitUnescaped(value, ',');
    if (values.length > MAX_VALUES_PER_PARAMETER) {
      issues.push(
        errorIssue(
          'too-costly',
          `A search parameter may have at most ${MAX_VALUES_PER_PARAMETER} values (${key} has ${values.length})`,
          key,
        ),
      );
      continue;
    }
    criteria.push({ name, ...(modifier !== undefined ? { modifier } : {}), values });
  }
  if (criteria.length > MAX_SEARCH_PARAMETERS) {
    issues.push(
      errorIssue(
        'too-costly',
        `A search may have at most ${MAX_SEARCH_PARAMETERS} search parameters (this one has ${criteria.length})`,
        resourceType,
      ),
    );
  }
  if (cursor !== undefined && offset > 0) issues.push(errorIssue('value', '_cursor and _offset cannot be combined', '_offset'));
  return { criteria, count, offset, ...(sort ? { sort } : {}), ...(cursor !== undefined ? { cursor } : {}), total, issues };
}

function queryString(pairs: ReadonlyArray<readonly [string, string]>): string {
  return pairs.map(([k, v]) => `${encodeURIComponent(k)}=${encodeURIComponent(v)}`).join('&');
}

/** A searchset Bundle with self/first/previous/next links that keep the client's own parameters. */
export function searchsetBundle(input: {
  baseUrl: string;
  resourceType: string;
  query: ReadonlyArray<readonly [string, string]>;
  resources: readonly Resource[];
  total?: number;
  count: number;
  offset: number;
  /** The cursor this page started after (its self link repeats it). */
  cursor?: string;
  /** The cursor after the page's last resource, when there is a next page. */
  nextCursor?: string;
  warnings: readonly OperationOutcomeIssue[];
}): Bundle {
  const kept = input.query.filter(([k]) => k !== '_offset' && k !== '_count' && k !== '_cursor');
  const url = (pairs: ReadonlyArray<readonly [string, string]>): string =>
    `${input.baseUrl}/${input.resourceType}?${queryString([...kept, ['_count', String(input.count)], ...pairs])}`;
  const atOffset = (offset: number): string => url(offset > 0 ? [['_offset', String(offset)]] : []);
  const link: BundleLink[] = [
    { relation: 'self', url: input.cursor !== undefined ? url([['_cursor', input.cursor]]) : atOffset(input.offset) },
    { relation: 'first', url: atOffset(0) },
  ];
  // Offsets only go back from an offset page; a cursor page has no previous link (the spec
  // makes it optional, https://hl7.org/fhir/R4/http.html#paging).
  if (input.cursor === undefined && input.offset > 0)
    link.push({ relation: 'previous', url: atOffset(Math.max(0, input.offset - input.count)) });
  // Next pages go by keyset, whatever the first page was: cost grows with the page, not the depth.
  if (input.nextCursor !== undefined) link.push({ relation: 'next', url: url([['_cursor', input.nextCursor]]) });

  const bundle: Bundle = {
    resourceType: 'Bundle',
    type: 'searchset',
    ...(input.total !== undefined ? { total: input.total } : {}),
    link,
    entry: input.resources.map((resource) => ({
      fullUrl: `${input.baseUrl}/${resource.resourceType}/${resource.id}`,
      resource,
      search: { mode: 'match' as const },
    })),
  };
  if (input.warnings.length > 0) {
    bundle.entry?.push({ resource: operationOutcome('search-warnings', input.warnings), search: { mode: 'outcome' } });
  }
  return bundle;
}
