/**
 * Turning a FHIR search query string into a store SearchRequest, and the result into a searchset
 * Bundle with paging links (https://hl7.org/fhir/R4/search.html, https://hl7.org/fhir/R4/http.html#paging).
 */
import type { Bundle, BundleLink, OperationOutcomeIssue, Resource } from 'fhir/r4.js';
import { errorIssue, operationOutcome, warningIssue } from './outcomes.js';
import type { SearchCriterion } from '../ports/resource-store.js';
import { splitUnescaped } from './search-parameters.js';

export const DEFAULT_PAGE_SIZE = 20;
export const MAX_PAGE_SIZE = 200;

/** Result and format parameters this server understands (everything else is a search parameter). */
const CONTROL_PARAMETERS = new Set(['_count', '_offset', '_sort', '_total', '_format', '_pretty']);
/** Result parameters a client may send that this server does not apply; reported, never silently. */
const UNSUPPORTED_RESULT_PARAMETERS = new Set(['_summary', '_elements', '_include', '_revinclude', '_contained', '_containedType']);
const SORTABLE = new Set(['_lastUpdated', '-_lastUpdated', '_id', '-_id']);

export interface ParsedSearch {
  criteria: SearchCriterion[];
  count: number;
  offset: number;
  sort?: string[];
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

  for (const [key, value] of query) {
    if (CONTROL_PARAMETERS.has(key)) {
      if (key === '_count') {
        const n = Number(value);
        if (!Number.isInteger(n) || n < 0) issues.push(errorIssue('value', `_count must be a whole number (got '${value}')`, '_count'));
        else count = Math.min(n, MAX_PAGE_SIZE);
      } else if (key === '_offset') {
        const n = Number(value);
        if (!Number.isInteger(n) || n < 0) issues.push(errorIssue('value', `_offset must be a whole number (got '${value}')`, '_offset'));
        else offset = n;
      } else if (key === '_sort') {
        const keys = splitUnescaped(value, ',');
        const unknown = keys.filter((k) => !SORTABLE.has(k));
        if (unknown.length > 0) {
          issues.push(errorIssue('not-supported', `_sort supports _lastUpdated and _id (with - for descending), not ${unknown.join(', ')}`, '_sort'));
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
      issues.push(options.strict ? errorIssue('not-supported', problem, key) : warningIssue('not-supported', `${problem}; it was ignored`, key));
      continue;
    }
    criteria.push({ name, ...(modifier !== undefined ? { modifier } : {}), values: splitUnescaped(value, ',') });
  }
  return { criteria, count, offset, ...(sort ? { sort } : {}), issues };
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
  /** True when the store returned one row more than the page: there is a next page. */
  hasMore: boolean;
  warnings: readonly OperationOutcomeIssue[];
}): Bundle {
  const kept = input.query.filter(([k]) => k !== '_offset' && k !== '_count');
  const page = (offset: number): string =>
    `${input.baseUrl}/${input.resourceType}?${queryString([...kept, ['_count', String(input.count)], ['_offset', String(offset)]])}`;
  const link: BundleLink[] = [
    { relation: 'self', url: page(input.offset) },
    { relation: 'first', url: page(0) },
  ];
  if (input.offset > 0) link.push({ relation: 'previous', url: page(Math.max(0, input.offset - input.count)) });
  if (input.hasMore) link.push({ relation: 'next', url: page(input.offset + input.count) });

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
