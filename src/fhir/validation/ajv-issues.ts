/**
 * ajv errors from the generated validators -> OperationOutcome issues an integration engineer can
 * act on in one round trip: one issue per problem, each with a FHIRPath expression and a sentence,
 * codes from https://hl7.org/fhir/R4/valueset-issue-type.html as this gateway uses them (docs/validation.md):
 * `structure` (wrong JSON shape, unknown element), `value` (bad primitive format), `code-invalid`
 * (code outside a required binding), `required` (missing element).
 *
 * Diagnostics never echo free-text values (they may be PHI); only codes are quoted.
 */
import type { ErrorObject } from 'ajv';
import type { OperationOutcomeIssue } from 'fhir/r4.js';
import { errorIssue } from '../outcomes.js';
import { describeJson, fhirPathOf, fhirPathStep, isJsonObject, pointerSegments, valueAt, valueAtSegments } from './element-paths.js';

/** Codes of each required value set, for diagnostics (src/fhir/validation/required-bindings.json). */
export type ValueSetCodes = Readonly<Record<string, readonly string[]>>;

const FORMAT_HINTS: Readonly<Record<string, string>> = {
  base64Binary: 'expected base64 (A-Z, a-z, 0-9, + and /, in groups of 4, padded with =)',
  canonical: 'a canonical URL has no whitespace',
  code: 'a code has no leading or trailing whitespace and no runs of whitespace',
  date: 'expected YYYY, YYYY-MM or YYYY-MM-DD with a real month and day',
  dateTime: 'expected YYYY, YYYY-MM, YYYY-MM-DD or YYYY-MM-DDThh:mm:ss with a time zone (Z or +hh:mm)',
  id: "expected 1 to 64 characters: letters, digits, '-' and '.'",
  instant: 'expected YYYY-MM-DDThh:mm:ss with optional fraction and a time zone (Z or +hh:mm)',
  integer: 'expected a whole number from -2147483648 to 2147483647',
  markdown: 'expected some non-whitespace text, no control characters, at most 1 MB',
  oid: 'expected urn:oid: and a dotted number, e.g. urn:oid:1.2.3',
  positiveInt: 'expected a whole number of at least 1',
  string: 'expected some non-whitespace text, no control characters, at most 1 MB',
  time: 'expected hh:mm:ss',
  unsignedInt: 'expected a whole number of at least 0',
  uri: 'a URI has no whitespace',
  url: 'a URL has no whitespace',
  uuid: 'expected urn:uuid: and a lowercase UUID',
  xhtml: 'expected an XHTML <div> element',
};

const JSON_ARTICLE: Readonly<Record<string, string>> = { string: 'a string', number: 'a number', boolean: 'a boolean' };

/** When one element has several problems, the most basic one explains the rest. */
const RANK: Partial<Record<OperationOutcomeIssue['code'], number>> = { structure: 0, required: 1, value: 2, 'code-invalid': 3 };

export interface AjvIssueContext {
  /** The resource the validator ran on, to read offending values. */
  resource: unknown;
  /** FHIRPath of that resource: `ServiceRequest`, or `Bundle.entry[2].resource` for a nested one. */
  root: string;
  valueSets: ValueSetCodes;
}

export function issuesFromAjvErrors(errors: readonly ErrorObject[], context: AjvIssueContext): OperationOutcomeIssue[] {
  const issues: OperationOutcomeIssue[] = [];
  for (const error of errors) {
    const issue = issueFromAjvError(error, context);
    if (issue) issues.push(issue);
  }
  return dedupeByElement(issues);
}

function issueFromAjvError(error: ErrorObject, { resource, root, valueSets }: AjvIssueContext): OperationOutcomeIssue | undefined {
  const at = fhirPathOf(root, error.instancePath);
  const value = valueAt(resource, error.instancePath);
  const params = error.params as Record<string, unknown>;
  const name = lastName(error.instancePath);

  switch (error.keyword) {
    case 'fhirObject':
      if (value === null && isAllowedNull(resource, error.instancePath)) return undefined;
      return errorIssue('structure', `Expected an object (${String(params.fhirType)}) but found ${describeJson(value)}`, at);
    case 'type':
      if (params.type === 'array') {
        return errorIssue('structure', `Expected an array but found ${describeJson(value)}: '${name}' repeats, so wrap it in [ ]`, at);
      }
      return errorIssue(
        'structure',
        `Expected ${JSON_ARTICLE[String(params.type)] ?? String(params.type)} but found ${describeJson(value)}`,
        at,
      );
    case 'fhirPrimitive': {
      const fhirType = String(params.fhirType);
      if (params.problem === 'type') {
        if (value === null && isAllowedNull(resource, error.instancePath)) return undefined;
        return errorIssue(
          'structure',
          `Expected ${JSON_ARTICLE[String(params.json)] ?? String(params.json)} (${fhirType}) but found ${describeJson(value)}`,
          at,
        );
      }
      return errorIssue('value', `Invalid ${fhirType}: ${FORMAT_HINTS[fhirType] ?? 'wrong format'}`, at);
    }
    case 'fhirBinding': {
      const valueSet = String(params.valueSet);
      return errorIssue(
        'code-invalid',
        `Code ${quoteCode(value)} is not in the required value set ${valueSet}${allowedCodes(valueSets[valueSet])}`,
        at,
      );
    }
    case 'enum':
      return errorIssue(
        'code-invalid',
        `Code ${quoteCode(value)} is not allowed here${allowedCodes(params.allowedValues as readonly string[] | undefined)}`,
        at,
      );
    case 'const':
      return errorIssue('structure', `Expected ${JSON.stringify(params.allowedValue)} here`, at);
    case 'required': {
      const missing = String(params.missingProperty);
      if (missing === 'resourceType')
        return errorIssue('structure', 'Missing resourceType: every resource names its type', `${at}.resourceType`);
      return errorIssue('required', `Missing required element '${missing}'`, at + fhirPathStep(missing));
    }
    case 'fhirRequired': {
      const element = String(params.element);
      return errorIssue('required', `Missing required element '${element}'`, at + fhirPathStep(element.replace('[x]', '')));
    }
    case 'fhirChoice': {
      const element = String(params.element);
      const base = element.replace('[x]', '');
      const present = isJsonObject(value)
        ? Object.keys(value).filter((k) => k.startsWith(base) && /[A-Z]/.test(k.charAt(base.length)))
        : [];
      return errorIssue('structure', `'${element}' holds one value, but found ${present.join(' and ')}: keep one`, at + fhirPathStep(base));
    }
    case 'fhirExt1':
      return errorIssue('invariant', 'ext-1: An extension has either a value[x] or nested extensions, not both and not neither', at);
    case 'additionalProperties': {
      const property = String(params.additionalProperty);
      return errorIssue('structure', `Unknown element '${property}'`, at + fhirPathStep(property));
    }
    case 'minItems':
      return errorIssue('structure', `Empty array: leave '${name}' out instead (https://hl7.org/fhir/R4/json.html)`, at);
    case 'minProperties':
      return errorIssue('structure', `Empty object: leave '${name}' out instead (https://hl7.org/fhir/R4/json.html)`, at);
    default:
      return errorIssue('structure', `Failed the schema's '${error.keyword}' check`, at);
  }
}

/**
 * `null` is allowed in exactly one place: in an array of primitives whose partner array carries
 * an id or extensions at that index, or the reverse (https://hl7.org/fhir/R4/json.html#primitive):
 * `"given": ["Jo", null], "_given": [null, {"extension": [...]}]`.
 */
function isAllowedNull(resource: unknown, instancePath: string): boolean {
  const segments = pointerSegments(instancePath);
  const index = segments.at(-1);
  const name = segments.at(-2);
  if (index === undefined || name === undefined || !/^\d+$/.test(index)) return false;
  const parent = valueAtSegments(resource, segments.slice(0, -2));
  if (!isJsonObject(parent)) return false;
  const partner = parent[name.startsWith('_') ? name.slice(1) : `_${name}`];
  return Array.isArray(partner) && partner[Number(index)] !== null && partner[Number(index)] !== undefined;
}

function lastName(instancePath: string): string {
  const named = pointerSegments(instancePath).filter((s) => !/^\d+$/.test(s));
  const last = named.at(-1) ?? '';
  return last.startsWith('_') ? last.slice(1) : last;
}

function quoteCode(value: unknown): string {
  if (typeof value !== 'string') return describeJson(value);
  return `'${value.length > 40 ? `${value.slice(0, 40)}...` : value}'`;
}

function allowedCodes(codes: readonly string[] | undefined): string {
  if (!codes?.length) return '';
  const shown = codes.slice(0, 12).join(', ');
  return ` (allowed: ${shown}${codes.length > 12 ? `, ... ${codes.length - 12} more` : ''})`;
}

/** One issue per element: exact repeats go, and a basic problem hides the ones it causes. */
export function dedupeByElement(issues: readonly OperationOutcomeIssue[]): OperationOutcomeIssue[] {
  const bestRank = new Map<string, number>();
  for (const i of issues) {
    const key = i.expression?.join('|') ?? '';
    const rank = RANK[i.code] ?? 0;
    bestRank.set(key, Math.min(bestRank.get(key) ?? rank, rank));
  }
  const seen = new Set<string>();
  return issues.filter((i) => {
    const key = i.expression?.join('|') ?? '';
    if ((RANK[i.code] ?? 0) > (bestRank.get(key) ?? 0)) return false;
    const identity = `${i.severity}|${i.code}|${key}|${i.diagnostics ?? ''}`;
    if (seen.has(identity)) return false;
    seen.add(identity);
    return true;
  });
}
