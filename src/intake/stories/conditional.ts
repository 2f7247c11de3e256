/**
 * Conditional interactions (If-None-Exist, conditional create in Bundles): the condition is a
 * search query string, run strictly so that a misspelt parameter never matches "nothing" and
 * creates a duplicate (https://hl7.org/fhir/R4/http.html#ccreate).
 */
import type { OperationOutcomeIssue, Resource } from 'fhir/r4.js';
import { errorIssue, hasErrors } from '../../fhir/outcomes.js';
import { parseSearchQuery } from '../../fhir/search-query.js';
import { isSupportedSearchCriterion } from '../../fhir/search-parameters.js';
import { stringCharacterProblem } from '../../fhir/validation/string-rules.js';
import type { ResourceWriter } from '../../ports/resource-store.js';
import { visibleTenants, type Tenancy } from '../../ports/gateway-deps.js';

export type ConditionalMatch = { kind: 'matches'; resources: Resource[] } | { kind: 'invalid'; issues: OperationOutcomeIssue[] };

/**
 * Conditional create without a race: inside the caller's transaction, the condition's lock is
 * taken before the search, so two concurrent creates with the same condition run one after the
 * other and the second finds the first's resource.
 */
export async function findByConditionalQueryLocked(
  tx: ResourceWriter,
  tenancy: Tenancy,
  tenant: string,
  resourceType: string,
  condition: string,
  expression: string,
): Promise<ConditionalMatch> {
  await tx.lock(`conditional-create|${tenant}|${resourceType}|${condition}`);
  const query = [...new URLSearchParams(condition.startsWith('?') ? condition.slice(1) : condition)].map(([k, v]) => [k, v] as const);
  if (query.length === 0) {
    return { kind: 'invalid', issues: [errorIssue('invalid', 'A conditional query needs at least one search parameter', expression)] };
  }
  // Percent-escapes decode here, past the edge's URL check: FHIR's string rules apply all the same.
  const characterIssues = query.flatMap(([name, value]) => {
    const problem = stringCharacterProblem(name) ?? stringCharacterProblem(value);
    return problem === undefined ? [] : [errorIssue('invalid', `A parameter of the conditional query ${problem}`, expression)];
  });
  if (characterIssues.length > 0) return { kind: 'invalid', issues: characterIssues };
  const parsed = parseSearchQuery(resourceType, query, { strict: true, isSupported: isSupportedSearchCriterion });
  if (hasErrors(parsed.issues)) {
    return { kind: 'invalid', issues: parsed.issues.map((i) => ({ ...i, expression: [expression] })) };
  }
  // Only the requesting tenant's own rows count: a match in the shared directory is not "theirs".
  const tenants = visibleTenants(tenancy, tenant, resourceType).slice(0, 1);
  const result = await tx.search({ resourceType, tenants, criteria: parsed.criteria, count: 2, offset: 0 });
  return { kind: 'matches', resources: result.resources };
}
