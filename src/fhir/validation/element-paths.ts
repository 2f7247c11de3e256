/**
 * Turning JSON locations into the FHIRPath expressions that OperationOutcome.issue.expression
 * carries (https://hl7.org/fhir/R4/operationoutcome-definitions.html#OperationOutcome.issue.expression):
 * `/reasonCode/0/coding/1/system` inside a ServiceRequest becomes
 * `ServiceRequest.reasonCode[0].coding[1].system`.
 */

const SIMPLE_NAME = /^[A-Za-z_][A-Za-z0-9_]*$/;

/** One step of a FHIRPath expression: a name, backtick-quoted when it is not an identifier. */
export function fhirPathStep(name: string): string {
  // A primitive's id and extensions live in `_name` in JSON but belong to `name` in FHIRPath
  // (https://hl7.org/fhir/R4/json.html#primitive).
  const element = name.length > 1 && name.startsWith('_') ? name.slice(1) : name;
  return SIMPLE_NAME.test(element) ? `.${element}` : `.\`${element.replace(/[`\\]/g, (c) => `\\${c}`)}\``;
}

/** JSON pointer segments (RFC 6901) of an ajv `instancePath`. */
export function pointerSegments(instancePath: string): string[] {
  if (instancePath === '') return [];
  return instancePath
    .slice(1)
    .split('/')
    .map((s) => s.replace(/~1/g, '/').replace(/~0/g, '~'));
}

/** `/entry/0/resource` under `Bundle` -> `Bundle.entry[0].resource`. FHIR names are never numeric, so digits are indexes. */
export function fhirPathOf(root: string, instancePath: string): string {
  let path = root;
  for (const segment of pointerSegments(instancePath)) {
    path += /^\d+$/.test(segment) ? `[${segment}]` : fhirPathStep(segment);
  }
  return path;
}

/** The value at an ajv `instancePath`, or undefined. */
export function valueAt(root: unknown, instancePath: string): unknown {
  return valueAtSegments(root, pointerSegments(instancePath));
}

export function valueAtSegments(root: unknown, segments: readonly string[]): unknown {
  let node = root;
  for (const segment of segments) {
    if (node === null || typeof node !== 'object') return undefined;
    node = (node as Record<string, unknown>)[segment];
  }
  return node;
}

export function isJsonObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** "a string", "an array", "null": what an integration engineer actually sent. */
export function describeJson(value: unknown): string {
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'an array';
  switch (typeof value) {
    case 'object':
      return 'an object';
    case 'string':
      return value === '' ? 'an empty string' : 'a string';
    case 'number':
      return 'a number';
    case 'boolean':
      return 'a boolean';
    default:
      return typeof value;
  }
}
