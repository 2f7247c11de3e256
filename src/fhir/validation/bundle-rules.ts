/**
 * The Bundle rules that the bdl-* invariants do not state (https://hl7.org/fhir/R4/bundle.html),
 * as the reference validator applies them:
 *
 * - `fullUrl` is absolute (https://hl7.org/fhir/R4/bundle-definitions.html#Bundle.entry.fullUrl:
 *   "fullUrl SHALL NOT disagree with the id in the resource ... fullUrl is always an absolute
 *   URL"): a `urn:uuid:`, `urn:oid:` or an http(s) URL, never `Patient/1`;
 * - a RESTful `fullUrl` (`.../Patient/123`, optionally `/_history/n`) ends with the resource's own
 *   type and id;
 * - one resource per type and id: two entries that are both `Patient/1` (outside a history
 *   Bundle, where versions repeat; from two servers, as RESTful fullUrls say, they are two) make
 *   every reference to it ambiguous;
 * - a link relation that names one page (`self`, `first`, `previous`, `next`, `last`) occurs
 *   once (https://hl7.org/fhir/R4/http.html#paging);
 * - a search result has an id (https://hl7.org/fhir/R4/bundle.html#searchset: entries are
 *   resources on the server).
 */
import type { OperationOutcomeIssue } from 'fhir/r4.js';
import { errorIssue } from '../outcomes.js';
import { isJsonObject } from './element-paths.js';

const ABSOLUTE_URI = /^[A-Za-z][A-Za-z0-9+.-]*:\S+$/;
const RESTFUL_TAIL = /\/([A-Z][A-Za-z]+)\/([A-Za-z0-9\-.]{1,64})(\/_history\/[A-Za-z0-9\-.]{1,64})?$/;
const SINGLE_PAGE_RELATIONS = new Set(['self', 'first', 'previous', 'prev', 'next', 'last']);

export function bundleRuleIssues(bundle: Record<string, unknown>, at: string): OperationOutcomeIssue[] {
  const issues: OperationOutcomeIssue[] = [];
  const type = bundle.type;
  const entries = Array.isArray(bundle.entry) ? bundle.entry : [];
  const firstByTypeAndId = new Map<string, number>();
  entries.forEach((entry: unknown, index) => {
    if (!isJsonObject(entry)) return;
    const where = `${at}.entry[${index}]`;
    const resource = isJsonObject(entry.resource) ? entry.resource : undefined;
    const fullUrl = entry.fullUrl;
    if (typeof fullUrl === 'string') {
      if (!ABSOLUTE_URI.test(fullUrl)) {
        issues.push(
          errorIssue(
            'invalid',
            `The fullUrl must be an absolute URL (urn:uuid:, urn:oid: or http[s]://), not '${fullUrl.slice(0, 100)}'`,
            `${where}.fullUrl`,
          ),
        );
      } else if (resource && /^https?:/.test(fullUrl)) {
        const tail = RESTFUL_TAIL.exec(fullUrl);
        if (
          tail &&
          typeof resource.resourceType === 'string' &&
          typeof resource.id === 'string' &&
          (tail[1] !== resource.resourceType || tail[2] !== resource.id)
        ) {
          issues.push(
            errorIssue(
              'invalid',
              `The fullUrl '${fullUrl.slice(0, 100)}' names ${tail[1]}/${tail[2]}, but the resource is ${resource.resourceType}/${resource.id}`,
              `${where}.fullUrl`,
            ),
          );
        }
      }
    }
    if (resource && typeof resource.resourceType === 'string') {
      if (typeof resource.id === 'string' && type !== 'history') {
        const key = `${resource.resourceType}/${resource.id}`;
        // The same id on two servers is two resources: a RESTful fullUrl is the identity.
        const identity =
          typeof fullUrl === 'string' && /^https?:/.test(fullUrl) && RESTFUL_TAIL.test(fullUrl)
            ? fullUrl.replace(/\/_history\/.*$/, '')
            : key;
        const versioned = isJsonObject(resource.meta) && typeof resource.meta.versionId === 'string' ? `|${resource.meta.versionId}` : '';
        const first = firstByTypeAndId.get(identity + versioned);
        if (first !== undefined) {
          issues.push(errorIssue('invalid', `Duplicate resource ${key}: entry[${first}] is ${key} too`, `${where}.resource.id`));
        } else {
          firstByTypeAndId.set(identity + versioned, index);
        }
      }
      const mode = isJsonObject(entry.search) ? entry.search.mode : undefined;
      // An OperationOutcome about the search is not a result (search.mode outcome, whether or not it says so).
      if (type === 'searchset' && resource.id === undefined && mode !== 'outcome' && resource.resourceType !== 'OperationOutcome') {
        issues.push(errorIssue('required', 'A search result must have an id: it is a resource on the server', `${where}.resource.id`));
      }
    }
  });
  const seenRelations = new Set<string>();
  (Array.isArray(bundle.link) ? bundle.link : []).forEach((link: unknown, index) => {
    if (!isJsonObject(link) || typeof link.relation !== 'string' || !SINGLE_PAGE_RELATIONS.has(link.relation)) return;
    if (seenRelations.has(link.relation)) {
      issues.push(
        errorIssue(
          'invalid',
          `The link relation '${link.relation}' names one page, so it can occur only once`,
          `${at}.link[${index}].relation`,
        ),
      );
    }
    seenRelations.add(link.relation);
  });
  return issues;
}
