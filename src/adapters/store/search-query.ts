/**
 * Turns parsed search criteria (src/fhir/search-parameters.ts) into Kysely conditions on
 * `resources as r`, written once for both engines.
 *
 * Each positive criterion is an uncorrelated `(tenant, id) IN (SELECT tenant, resource_id FROM
 * search_index WHERE param = … AND value …)`, its values ORed inside; criteria are ANDed
 * (https://hl7.org/fhir/R4/search.html#combining). The subquery is a range scan of a value index
 * that ends in resource_id (migration 0007), so it costs the matches of that criterion and never
 * a probe per resource row: the planner starts from the rarest criterion (or walks the sort
 * index and checks membership), see docs/search.md. Negated and `:missing` criteria stay a
 * correlated NOT EXISTS on `search_index_by_resource`, the only shape that can say "no row".
 * `_id` and `_lastUpdated` are answered from the resource row itself.
 */
import { sql, type Expression, type ExpressionBuilder, type RawBuilder, type SqlBool } from 'kysely';
import type { DateCondition, ParsedCriterion, ReferenceMatch, TokenMatch } from '../../fhir/search-parameters.js';
import type { ResourcesTable, StoreDatabase } from './schema.js';

export type SearchScope = StoreDatabase & { r: ResourcesTable };
type ResourceExpressions = ExpressionBuilder<SearchScope, 'r'>;
type IndexScope = SearchScope & { si: StoreDatabase['search_index'] };
type IndexExpressions = ExpressionBuilder<IndexScope, 'r' | 'si'>;

/**
 * Range comparisons of https://hl7.org/fhir/R4/search.html#prefix, target range [low, high]
 * against the search value's range [sl, sh], all inclusive instants as fixed-width ISO strings.
 */
function dateMatches(low: RawBuilder<unknown>, high: RawBuilder<unknown>, condition: DateCondition): RawBuilder<SqlBool> {
  const { low: sl, high: sh } = condition.range;
  const contained = sql<SqlBool>`(${low} >= ${sl} and ${high} <= ${sh})`;
  switch (condition.prefix) {
    case 'eq':
      // The search range fully contains the target range.
      return contained;
    case 'ne':
      return sql<SqlBool>`(${low} < ${sl} or ${high} > ${sh})`;
    case 'gt':
      // The range above the search value overlaps the target.
      return sql<SqlBool>`(${high} > ${sh})`;
    case 'lt':
      // The range below the search value overlaps the target.
      return sql<SqlBool>`(${low} < ${sl})`;
    case 'ge':
      return sql<SqlBool>`(${high} > ${sh} or ${contained})`;
    case 'le':
      return sql<SqlBool>`(${low} < ${sl} or ${contained})`;
    case 'sa':
      // Starts after: the target lies wholly above the search range.
      return sql<SqlBool>`(${low} > ${sh})`;
    case 'eb':
      // Ends before: the target lies wholly below the search range.
      return sql<SqlBool>`(${high} < ${sl})`;
  }
}

/** LIKE pattern with `!` as the escape character (SQLite has no default escape; this reads the same on both). */
function likeEscape(value: string): string {
  return value.replace(/[!%_]/g, (ch) => `!${ch}`);
}

function tokenMatches(eb: IndexExpressions, match: TokenMatch): Expression<SqlBool> {
  const parts: Expression<SqlBool>[] = [];
  if (match.system === null) parts.push(eb('si.token_system', 'is', null));
  else if (match.system !== undefined) parts.push(eb('si.token_system', '=', match.system));
  if (match.code !== undefined) parts.push(eb('si.token_code', '=', match.code));
  return eb.and(parts);
}

function referenceMatches(eb: IndexExpressions, match: ReferenceMatch): Expression<SqlBool> {
  const parts: Expression<SqlBool>[] = [eb('si.ref_id', '=', match.id)];
  if (match.type !== undefined) parts.push(eb('si.ref_type', '=', match.type));
  return eb.and(parts);
}

/**
 * The string, date and reference indexes are partial, holding only rows with a value of their kind
 * (migration 0012, docs/search.md#partial-value-indexes). A planner uses one only when the query
 * implies its condition; several values ORed (or a date prefix that reads `date_high` alone) do not
 * imply it term by term, so the condition is stated beside them.
 */
function withValuePresent(eb: IndexExpressions, column: 'si.string_norm' | 'si.date_low' | 'si.ref_id', values: Expression<SqlBool>) {
  return eb.and([eb(column, 'is not', null), values]);
}

function valueMatches(eb: IndexExpressions, criterion: ParsedCriterion): Expression<SqlBool> {
  switch (criterion.kind) {
    case 'token':
      return eb.or(criterion.matches.map((m) => tokenMatches(eb, m)));
    case 'reference':
      return withValuePresent(eb, 'si.ref_id', eb.or(criterion.matches.map((m) => referenceMatches(eb, m))));
    case 'string': {
      if (criterion.mode === 'exact') return eb('si.string_exact', 'in', criterion.values);
      const column = sql.ref('si.string_norm');
      return withValuePresent(
        eb,
        'si.string_norm',
        eb.or(
          criterion.values.map((v) => {
            const pattern = criterion.mode === 'contains' ? `%${likeEscape(v)}%` : `${likeEscape(v)}%`;
            return sql<SqlBool>`${column} like ${pattern} escape '!'`;
          }),
        ),
      );
    }
    case 'date':
      return withValuePresent(
        eb,
        'si.date_low',
        eb.or(criterion.conditions.map((c) => dateMatches(sql.ref('si.date_low'), sql.ref('si.date_high'), c))),
      );
    case 'uri':
      return eb('si.uri', 'in', criterion.values);
    case 'id':
    case 'lastUpdated':
    case 'missing':
      throw new Error(`criterion ${criterion.kind} is not answered from the search index`);
  }
}

function indexProbe(eb: ResourceExpressions, param: string, values?: (eb: IndexExpressions) => Expression<SqlBool>) {
  let probe = eb
    .selectFrom('search_index as si')
    .select(sql.lit(1).as('one'))
    .whereRef('si.tenant', '=', 'r.tenant')
    .whereRef('si.resource_type', '=', 'r.resource_type')
    .whereRef('si.resource_id', '=', 'r.id')
    .where('si.param', '=', param);
  if (values) probe = probe.where(values);
  return probe;
}

/** Which rows a search looks at: the criteria's subqueries are bounded by the same. */
export interface SearchTarget {
  tenants: readonly string[];
  resourceType: string;
}

/** The ids (with their tenant) of the resources with a value for `param` matching `values`. */
function matchingIds(eb: ResourceExpressions, target: SearchTarget, param: string, values: (eb: IndexExpressions) => Expression<SqlBool>) {
  const ids = eb
    .selectFrom('search_index as si')
    .select(['si.tenant', 'si.resource_id'])
    .where('si.tenant', 'in', target.tenants)
    .where('si.resource_type', '=', target.resourceType)
    .where('si.param', '=', param)
    .where((ieb) => values(ieb as unknown as IndexExpressions));
  return sql<SqlBool>`(${sql.ref('r.tenant')}, ${sql.ref('r.id')}) in (${ids})`;
}

/** The condition one criterion puts on `r`. */
export function criterionCondition(eb: ResourceExpressions, criterion: ParsedCriterion, target: SearchTarget): Expression<SqlBool> {
  switch (criterion.kind) {
    case 'id':
      return eb('r.id', 'in', criterion.ids);
    case 'lastUpdated': {
      const column = sql.ref('r.last_updated');
      return eb.or(criterion.conditions.map((c) => dateMatches(column, column, c)));
    }
    case 'missing': {
      // https://hl7.org/fhir/R4/search.html#missing: true = no value at all for the parameter.
      const probe = eb.exists(indexProbe(eb, criterion.param));
      return criterion.missing ? eb.not(probe) : probe;
    }
    case 'token': {
      // `:not` also matches resources with no value for the parameter
      // (https://hl7.org/fhir/R4/search.html#modifiers).
      if (criterion.negate) return eb.not(eb.exists(indexProbe(eb, criterion.param, (ieb) => valueMatches(ieb, criterion))));
      return matchingIds(eb, target, criterion.param, (ieb) => valueMatches(ieb, criterion));
    }
    case 'reference':
    case 'string':
    case 'date':
    case 'uri':
      return matchingIds(eb, target, criterion.param, (ieb) => valueMatches(ieb, criterion));
  }
}

/**
 * A criterion that can drive an ordered page (docs/search.md#ordered-pages): one value, seekable
 * on (param, value) of a migration 0009 index, so its range is already in `last_updated` order.
 */
export type OrderedCriterion =
  | { kind: 'token'; param: string; negate: false; matches: [TokenMatch & { code: string }] }
  | { kind: 'reference'; param: string; matches: [ReferenceMatch] };

function isOrderedCriterion(criterion: ParsedCriterion): criterion is ParsedCriterion & OrderedCriterion {
  if (criterion.kind === 'token') return !criterion.negate && criterion.matches.length === 1 && criterion.matches[0]!.code !== undefined;
  return criterion.kind === 'reference' && criterion.matches.length === 1;
}

/**
 * Parameters whose value names (nearly) one resource: driving from them reads a handful of rows
 * whatever the other criteria. Without statistics of our own this is the rarest-first guess;
 * otherwise the first eligible criterion of the request drives (a coordinator's queue names its
 * business-status first).
 */
const NEAR_UNIQUE_PARAMS = new Set(['identifier', 'beneficiary', 'focus', 'subject', 'patient', 'based-on', 'part-of']);

/** The criterion a page sorted by `_lastUpdated` is driven from, if any. */
export function orderedDriver(parsed: readonly ParsedCriterion[]): OrderedCriterion | undefined {
  const eligible = parsed.filter(isOrderedCriterion);
  return eligible.find((c) => NEAR_UNIQUE_PARAMS.has(c.param)) ?? eligible[0];
}

type DrivenScope = SearchScope & { d: StoreDatabase['search_index'] };
type DrivenExpressions = ExpressionBuilder<DrivenScope, 'r' | 'd'>;

/** The driver's own value condition, on its index row `d`. */
export function driverCondition(eb: DrivenExpressions, driver: OrderedCriterion): Expression<SqlBool> {
  const parts: Expression<SqlBool>[] = [eb('d.param', '=', driver.param)];
  if (driver.kind === 'token') {
    const match = driver.matches[0];
    parts.push(eb('d.token_code', '=', match.code));
    if (match.system === null) parts.push(eb('d.token_system', 'is', null));
    else if (match.system !== undefined) parts.push(eb('d.token_system', '=', match.system));
  } else {
    const match = driver.matches[0];
    parts.push(eb('d.ref_id', '=', match.id));
    if (match.type !== undefined) parts.push(eb('d.ref_type', '=', match.type));
  }
  return eb.and(parts);
}

/**
 * Another criterion of a driven page. A one-value token or reference is a point probe on its
 * 0009 index at the driver row's (last_updated, resource_id): every row of a resource carries the
 * same last_updated. Anything else keeps its usual shape on `r`.
 */
export function drivenCondition(eb: DrivenExpressions, criterion: ParsedCriterion, target: SearchTarget): Expression<SqlBool> {
  if (!isOrderedCriterion(criterion)) return criterionCondition(eb as unknown as ResourceExpressions, criterion, target);
  const probe = eb
    .selectFrom('search_index as si')
    .select(sql.lit(1).as('one'))
    .whereRef('si.tenant', '=', 'd.tenant')
    .whereRef('si.resource_type', '=', 'd.resource_type')
    .where('si.param', '=', criterion.param)
    .where((ieb) => {
      const values = ieb as unknown as IndexExpressions;
      return criterion.kind === 'token' ? tokenMatches(values, criterion.matches[0]!) : referenceMatches(values, criterion.matches[0]!);
    })
    .whereRef('si.last_updated', '=', 'd.last_updated')
    .whereRef('si.resource_id', '=', 'd.resource_id');
  return eb.exists(probe);
}
