/**
 * One reader for every operation's input parameters, driven by the operation's own
 * OperationDefinition (profiles/OperationDefinition-*.json), so no operation parses its
 * Parameters by hand and what the gateway publishes is what it enforces.
 *
 * Inputs arrive as a Parameters resource in a POST body (https://hl7.org/fhir/R4/parameters.html)
 * or, for operations without side effects and with primitive inputs only, as query parameters
 * (https://hl7.org/fhir/R4/operations.html#request). Every problem is collected, each with a
 * FHIRPath expression: an unknown parameter, a missing required one, one repeated beyond its
 * `max`, a value of the wrong type, a query value that does not parse. The shape follows Medplum's
 * parseInputParameters (packages/server/src/fhir/operations/utils/parameters.ts).
 */
import type {
  OperationDefinition,
  OperationDefinitionParameter,
  OperationOutcomeIssue,
  Parameters,
  ParametersParameter,
  Reference,
  Resource,
} from 'fhir/r4.js';
import { errorIssue } from './outcomes.js';

/** A parameter's value as the operation receives it: a primitive, a complex datatype, or a resource. */
export type OperationValue = string | number | boolean | Reference | Resource | Record<string, unknown>;

export interface OperationInput {
  method: string;
  /** Query parameters in order, as sent. */
  query: ReadonlyArray<readonly [string, string]>;
  body: unknown;
}

export interface ReadParameters {
  /** Values by parameter name: one value where the definition's max is 1, else an array. */
  values: Record<string, OperationValue | OperationValue[]>;
  /**
   * Where each parameter given was first found, as a FHIRPath (`Parameters.parameter[2]`, or the
   * query parameter's name), for the operation's own checks of what the values mean.
   */
  at: Record<string, string>;
  issues: OperationOutcomeIssue[];
}

/**
 * The types a parameter takes beside its `type`: R4's OperationDefinition has one type per
 * parameter, and R5's `allowedType` travels in R4 as this cross-version extension
 * (https://hl7.org/fhir/R4/versions.html#extensions). Used where an operation takes, say, a
 * Reference or a plain string.
 */
const ALLOWED_TYPE_EXTENSION = 'http://hl7.org/fhir/5.0/StructureDefinition/extension-OperationDefinition.parameter.allowedType';

function typesOf(parameter: OperationDefinitionParameter): string[] {
  const allowed = (parameter.extension ?? []).filter((e) => e.url === ALLOWED_TYPE_EXTENSION).map((e) => e.valueCode ?? e.valueUri);
  return [parameter.type ?? 'string', ...allowed.filter((type): type is string => type !== undefined && type !== parameter.type)];
}

/** Query parameters that are about the response, not inputs of the operation. */
const RESULT_PARAMETERS = new Set(['_format', '_pretty', '_summary', '_elements']);

/** FHIR's own regular expressions for primitives (https://hl7.org/fhir/R4/datatypes.html#primitive), unanchored. */
const PRIMITIVE_PATTERNS: Record<string, string> = {
  boolean: 'true|false',
  integer: '0|[-+]?[1-9][0-9]*',
  unsignedInt: '0|[1-9][0-9]*',
  positiveInt: '\\+?[1-9][0-9]*',
  decimal: '-?(0|[1-9][0-9]*)(\\.[0-9]+)?([eE][+-]?[0-9]+)?',
  date: '([0-9]([0-9]([0-9][1-9]|[1-9]0)|[1-9]00)|[1-9]000)(-(0[1-9]|1[0-2])(-(0[1-9]|[1-2][0-9]|3[0-1]))?)?',
  dateTime:
    '([0-9]([0-9]([0-9][1-9]|[1-9]0)|[1-9]00)|[1-9]000)(-(0[1-9]|1[0-2])(-(0[1-9]|[1-2][0-9]|3[0-1])(T([01][0-9]|2[0-3]):[0-5][0-9]:([0-5][0-9]|60)(\\.[0-9]+)?(Z|(\\+|-)((0[0-9]|1[0-3]):[0-5][0-9]|14:00)))?)?)?',
  instant:
    '([0-9]([0-9]([0-9][1-9]|[1-9]0)|[1-9]00)|[1-9]000)-(0[1-9]|1[0-2])-(0[1-9]|[1-2][0-9]|3[0-1])T([01][0-9]|2[0-3]):[0-5][0-9]:([0-5][0-9]|60)(\\.[0-9]+)?(Z|(\\+|-)((0[0-9]|1[0-3]):[0-5][0-9]|14:00))',
  code: '[^\\s]+( [^\\s]+)*',
  id: '[A-Za-z0-9\\-.]{1,64}',
};

const PRIMITIVE_REGEXES: Record<string, RegExp> = Object.fromEntries(
  Object.entries(PRIMITIVE_PATTERNS).map(([type, source]) => [type, new RegExp(`^(?:${source})$`)]),
);

/** The value[x] element a Parameters.parameter of this FHIR type carries (valueDateTime, valueReference ...). */
function valueElementOf(type: string): string {
  return `value${type.charAt(0).toUpperCase()}${type.slice(1)}`;
}

const isResourceType = (type: string): boolean => /^[A-Z]/.test(type) && !COMPLEX_DATATYPES.has(type);

/** Complex datatypes an operation parameter may have (https://hl7.org/fhir/R4/datatypes.html). */
const COMPLEX_DATATYPES = new Set([
  'Reference',
  'Coding',
  'CodeableConcept',
  'Identifier',
  'Period',
  'Quantity',
  'Money',
  'Range',
  'Ratio',
  'Attachment',
  'HumanName',
  'Address',
  'ContactPoint',
  'Timing',
  'Duration',
  'Age',
  'Count',
  'Distance',
  'Annotation',
  'Signature',
]);

function inputsOf(definition: OperationDefinition): OperationDefinitionParameter[] {
  return (definition.parameter ?? []).filter((p) => p.use === 'in');
}

const isRepeatable = (parameter: OperationDefinitionParameter): boolean => parameter.max !== '1';

function primitiveFromQuery(type: string, text: string): string | number | boolean | undefined {
  const pattern = PRIMITIVE_REGEXES[type];
  if (pattern && !pattern.test(text)) return undefined;
  if (type === 'boolean') return text === 'true';
  if (type === 'integer' || type === 'unsignedInt' || type === 'positiveInt' || type === 'decimal') return Number(text);
  return text;
}

function fromQuery(definition: OperationDefinition, input: OperationInput): ReadParameters {
  const byName = new Map(inputsOf(definition).map((p) => [p.name, p]));
  const values: Record<string, OperationValue[]> = {};
  const issues: OperationOutcomeIssue[] = [];
  for (const [name, text] of input.query) {
    if (RESULT_PARAMETERS.has(name)) continue;
    const parameter = byName.get(name);
    if (!parameter) {
      issues.push(errorIssue('not-supported', `$${definition.code} has no parameter '${name}'`, name));
      continue;
    }
    const type = parameter.type ?? 'string';
    if (type === 'Reference') {
      (values[name] ??= []).push({ reference: text });
      continue;
    }
    if (isResourceType(type) || COMPLEX_DATATYPES.has(type)) {
      issues.push(errorIssue('not-supported', `Parameter '${name}' is a ${type}: send it in a Parameters body with POST`, name));
      continue;
    }
    const value = primitiveFromQuery(type, text);
    if (value === undefined) issues.push(errorIssue('value', `Parameter '${name}' must be a FHIR ${type}`, name));
    else (values[name] ??= []).push(value);
  }
  const at = Object.fromEntries(Object.keys(values).map((name) => [name, name]));
  return { values: shaped(definition, values, issues, (name) => name), at, issues };
}

/** The value of one Parameters.parameter for a definition's type, or an issue naming what is wrong. */
function valueOfEntry(
  entry: ParametersParameter,
  type: string,
  expression: string,
): { value: OperationValue } | { issue: OperationOutcomeIssue } {
  if (isResourceType(type) || type === 'Any' || type === 'Resource') {
    const resource = entry.resource;
    if (resource === undefined || (type !== 'Any' && type !== 'Resource' && resource.resourceType !== type)) {
      return { issue: errorIssue('invalid', `Parameter '${entry.name}' must carry a ${type} in resource`, `${expression}.resource`) };
    }
    return { value: resource };
  }
  const element = valueElementOf(type);
  const value = (entry as unknown as Record<string, unknown>)[element];
  const carried = Object.keys(entry).filter((key) => key.startsWith('value') || key === 'resource' || key === 'part');
  if (value === undefined || carried.length !== 1) {
    return { issue: errorIssue('invalid', `Parameter '${entry.name}' must carry ${element} (a FHIR ${type})`, `${expression}.value`) };
  }
  const pattern = PRIMITIVE_REGEXES[type];
  const primitive = typeof value === 'string' || typeof value === 'number' || typeof value === 'boolean';
  if (pattern && (!primitive || !pattern.test(String(value)))) {
    return { issue: errorIssue('value', `Parameter '${entry.name}' must be a FHIR ${type}`, `${expression}.${element}`) };
  }
  return { value: value as OperationValue };
}

/** The value of an entry of a parameter that takes several types: the one the entry carries. */
function valueOfAllowedType(
  entry: ParametersParameter,
  types: readonly string[],
  expression: string,
): { value: OperationValue } | { issue: OperationOutcomeIssue } {
  if (types.length === 1) return valueOfEntry(entry, types[0]!, expression);
  const carried = types.find((type) =>
    isResourceType(type) ? entry.resource !== undefined : (entry as unknown as Record<string, unknown>)[valueElementOf(type)] !== undefined,
  );
  if (carried === undefined) {
    return {
      issue: errorIssue(
        'invalid',
        `Parameter '${entry.name}' must carry one of ${types.map(valueElementOf).join(', ')}`,
        `${expression}.value`,
      ),
    };
  }
  return valueOfEntry(entry, carried, expression);
}

function fromBody(definition: OperationDefinition, body: Parameters): ReadParameters {
  const byName = new Map(inputsOf(definition).map((p) => [p.name, p]));
  const values: Record<string, OperationValue[]> = {};
  const firstIndex: Record<string, number> = {};
  const issues: OperationOutcomeIssue[] = [];
  (body.parameter ?? []).forEach((entry, index) => {
    const expression = `Parameters.parameter[${index}]`;
    const parameter = byName.get(entry.name);
    if (!parameter) {
      issues.push(errorIssue('not-supported', `$${definition.code} has no parameter '${entry.name}'`, `${expression}.name`));
      return;
    }
    firstIndex[entry.name] ??= index;
    const read = valueOfAllowedType(entry, typesOf(parameter), expression);
    if ('issue' in read) issues.push(read.issue);
    else (values[entry.name] ??= []).push(read.value);
  });
  const at = Object.fromEntries(Object.entries(firstIndex).map(([name, index]) => [name, `Parameters.parameter[${index}]`]));
  return { values: shaped(definition, values, issues, (name) => at[name] ?? 'Parameters.parameter'), at, issues };
}

/** Applies min and max, and turns single-valued parameters into their value. */
function shaped(
  definition: OperationDefinition,
  values: Record<string, OperationValue[]>,
  issues: OperationOutcomeIssue[],
  whereIs: (name: string) => string,
): Record<string, OperationValue | OperationValue[]> {
  const result: Record<string, OperationValue | OperationValue[]> = {};
  for (const parameter of inputsOf(definition)) {
    const found = values[parameter.name] ?? [];
    if (found.length < parameter.min) {
      issues.push(
        errorIssue(
          'required',
          `Parameter ${parameter.name} is required by $${definition.code}: add a parameter named '${parameter.name}' (${typesOf(parameter).join(' or ')})`,
          whereIs(parameter.name),
        ),
      );
    }
    const max = parameter.max === '*' ? Infinity : Number(parameter.max);
    if (found.length > max) {
      issues.push(
        errorIssue(
          'structure',
          `Parameter '${parameter.name}' may appear at most ${parameter.max} time(s); it appears ${found.length} times`,
          whereIs(parameter.name),
        ),
      );
    }
    if (found.length > 0) result[parameter.name] = isRepeatable(parameter) ? found : found[0]!;
  }
  return result;
}

/**
 * Reads an operation's inputs by its definition: from a Parameters body (POST), else from the
 * query. A POST body that is not a Parameters resource is refused, since every input of the
 * gateway's operations travels in Parameters.
 */
export function readOperationParameters(definition: OperationDefinition, input: OperationInput): ReadParameters {
  if (input.method === 'POST') {
    const body = input.body as Partial<Parameters> | null | undefined;
    if (body === undefined || body === null || (typeof body === 'object' && Object.keys(body).length === 0)) {
      return fromQuery(definition, input);
    }
    if (typeof body !== 'object' || body.resourceType !== 'Parameters') {
      return {
        values: {},
        at: {},
        issues: [errorIssue('invalid', `The body of $${definition.code} must be a Parameters resource`, 'resourceType')],
      };
    }
    return fromBody(definition, body as Parameters);
  }
  return fromQuery(definition, input);
}
