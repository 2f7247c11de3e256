/**
 * Checks a resource against a constraining StructureDefinition's differential
 * (https://hl7.org/fhir/R4/profiling.html): min and max cardinality, fixed[x] and pattern[x]
 * values, required bindings to value sets published in profiles/, and `constraint` invariants
 * in FHIRPath (HL7 fhirpath.js with its R4 model). The rules live in the profile; this file only
 * knows how to read them. Everything is compiled once, when the profile is loaded.
 *
 * What it does not understand (slicing, type constraints, min/max values...) makes loading fail,
 * rather than being silently skipped: a rule in a profile that nothing enforces is a lie.
 */
import fhirpath from 'fhirpath';
import r4Model from 'fhirpath/fhir-context/r4';
import type { ElementDefinition, OperationOutcomeIssue, StructureDefinition } from 'fhir/r4.js';
import { errorIssue, issue } from '../outcomes.js';
import { fhirPathStep, isJsonObject } from './element-paths.js';
import type { CodeSet, LocalTerminology } from './local-terminology.js';

/**
 * Where an invariant's issue points. FHIR reports a failed constraint at the element that
 * declares it, but a rule like "a diagnosis: reasonCode or reasonReference" must be declared on
 * the resource (it has to fire when both are absent) while the integration engineer needs to be
 * pointed at `ServiceRequest.reasonCode`. This extension on ElementDefinition.constraint says so.
 */
export const CONSTRAINT_LOCATION_EXTENSION = 'https://fhir.infusion-gateway.example/StructureDefinition/constraint-location';

export class ProfileError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ProfileError';
  }
}

/** ElementDefinition keys that describe rather than constrain: nothing to check. */
const DESCRIPTIVE_KEYS = new Set([
  'id',
  'path',
  'extension',
  'short',
  'definition',
  'comment',
  'requirements',
  'alias',
  'label',
  'code',
  'mustSupport',
  'isSummary',
  'isModifier',
  'isModifierReason',
  'mapping',
  'example',
  'meaningWhenMissing',
  'orderMeaning',
  'base',
  'condition',
]);
// binding: only `required` strength is a rule; weaker strengths are guidance and pass.
const CHECKED_KEYS = new Set(['min', 'max', 'constraint', 'binding']);
const FIXED_OR_PATTERN = /^(fixed|pattern)[A-Z]/;

interface InstanceNode {
  value: unknown;
  /** FHIRPath of this instance: `ServiceRequest.reasonCode[0]`. */
  expression: string;
}

interface CompiledConstraint {
  key: string;
  severity: 'error' | 'warning';
  human: string;
  /** Element path to report at instead of the instance (CONSTRAINT_LOCATION_EXTENSION). */
  location: string | undefined;
  evaluate: (node: unknown, env: Record<string, unknown>) => unknown[];
}

interface CompiledElement {
  path: string;
  /** Steps below the resource to the parent: [] for children of the resource. */
  parentSteps: string[];
  name: string;
  label: string;
  min: number;
  max: number;
  fixed: unknown;
  pattern: unknown;
  binding: CodeSet | undefined;
  constraints: CompiledConstraint[];
}

export class CompiledProfile {
  readonly url: string;
  readonly type: string;
  readonly title: string;
  readonly #root: CompiledElement;
  readonly #elements: CompiledElement[];

  constructor(definition: StructureDefinition, terminology: LocalTerminology) {
    if (!definition.url || !definition.type)
      throw new ProfileError(`StructureDefinition ${definition.id ?? '(no id)'} needs a url and a type`);
    this.url = definition.url;
    this.type = definition.type;
    this.title = definition.title ?? definition.name ?? definition.id ?? definition.url;
    const where = `profile ${this.url}`;
    if (definition.derivation !== 'constraint' || definition.kind !== 'resource') {
      throw new ProfileError(`${where}: only constraints on resources can be checked (derivation 'constraint', kind 'resource')`);
    }
    if (definition.baseDefinition !== `http://hl7.org/fhir/StructureDefinition/${this.type}`) {
      throw new ProfileError(`${where}: baseDefinition must be the core ${this.type} (profiles on profiles are not supported)`);
    }
    const elements = definition.differential?.element ?? [];
    if (!elements.length) throw new ProfileError(`${where}: no differential elements`);
    const compiled = elements.map((e) => compileElement(e, this.type, terminology, where));
    this.#root = compiled.find((e) => e.path === this.type) ?? emptyRoot(this.type);
    this.#elements = compiled.filter((e) => e.path !== this.type);
  }

  /** Every issue the resource has against this profile; expressions start at `root` (default: the type). */
  check(resource: Record<string, unknown>, root: string = this.type): OperationOutcomeIssue[] {
    const issues: OperationOutcomeIssue[] = [];
    if (resource.resourceType !== this.type) {
      return [errorIssue('invalid', `Profile ${this.url} applies to ${this.type}, not ${String(resource.resourceType)}`, root)];
    }
    const env = { resource, rootResource: resource, ucum: 'http://unitsofmeasure.org' };
    const cache = new Map<string, InstanceNode[]>([['', [{ value: resource, expression: root }]]]);
    const nodesAt = (steps: readonly string[]): InstanceNode[] => {
      const key = steps.join('.');
      let nodes = cache.get(key);
      if (!nodes) {
        nodes = nodesAt(steps.slice(0, -1)).flatMap((parent) => childNodes(parent, steps.at(-1) ?? ''));
        cache.set(key, nodes);
      }
      return nodes;
    };

    for (const element of this.#elements) {
      for (const parent of nodesAt(element.parentSteps)) {
        const count = presentCount(parent.value, element.name);
        const at = parent.expression + fhirPathStep(element.name.replace('[x]', ''));
        if (count < element.min) {
          const needs = element.min === 1 ? '' : ` (at least ${element.min}, found ${count})`;
          issues.push(
            errorIssue(
              'required',
              `Missing required element '${element.name}'${element.label}${needs}: required by the ${this.title} profile`,
              at,
            ),
          );
        }
        if (count > element.max) {
          issues.push(
            errorIssue(
              'structure',
              `Too many '${element.name}': the ${this.title} profile allows at most ${element.max}, found ${count}`,
              at,
            ),
          );
        }
        for (const child of childNodes(parent, element.name)) this.#checkValue(element, child, root, env, issues);
      }
    }
    for (const constraint of this.#root.constraints)
      checkConstraint(constraint, { value: resource, expression: root }, this.type, root, env, issues);

    // A missing element already explains a failing invariant about it: one clear issue, not two.
    const missing = new Set(issues.filter((i) => i.code === 'required').flatMap((i) => i.expression ?? []));
    return issues.filter((i) => i.code !== 'invariant' || !i.expression?.some((e) => missing.has(e)));
  }

  #checkValue(
    element: CompiledElement,
    node: InstanceNode,
    root: string,
    env: Record<string, unknown>,
    issues: OperationOutcomeIssue[],
  ): void {
    if (element.fixed !== undefined && !deepEqual(node.value, element.fixed)) {
      issues.push(
        errorIssue('value', `Must be exactly ${JSON.stringify(element.fixed)} (fixed by the ${this.title} profile)`, node.expression),
      );
    }
    if (element.pattern !== undefined && !containsPattern(node.value, element.pattern)) {
      issues.push(
        errorIssue('value', `Must match ${JSON.stringify(element.pattern)} (pattern of the ${this.title} profile)`, node.expression),
      );
    }
    if (element.binding && !inCodeSet(node.value, element.binding)) {
      issues.push(
        errorIssue(
          'code-invalid',
          `Not a code from the required value set ${element.binding.url} (e.g. ${element.binding.sample(6).join(', ')}) of the ${this.title} profile`,
          node.expression,
        ),
      );
    }
    for (const constraint of element.constraints) checkConstraint(constraint, node, element.path, root, env, issues);
  }
}

function emptyRoot(type: string): CompiledElement {
  return {
    path: type,
    parentSteps: [],
    name: type,
    label: '',
    min: 0,
    max: Infinity,
    fixed: undefined,
    pattern: undefined,
    binding: undefined,
    constraints: [],
  };
}

function compileElement(element: ElementDefinition, type: string, terminology: LocalTerminology, where: string): CompiledElement {
  const path = element.path;
  if (path !== type && !path.startsWith(`${type}.`)) throw new ProfileError(`${where}: element ${path} is not inside ${type}`);
  const at = `${where}, element ${element.id ?? path}`;
  for (const key of Object.keys(element)) {
    if (!DESCRIPTIVE_KEYS.has(key) && !CHECKED_KEYS.has(key) && !FIXED_OR_PATTERN.test(key) && !key.startsWith('_')) {
      throw new ProfileError(`${at}: '${key}' is not checked by src/fhir/validation/profile-engine.ts; remove it or teach the engine`);
    }
  }
  const elementType = resolveElementType(path);
  if (elementType === undefined) throw new ProfileError(`${at}: ${path} is not an element of the R4 ${type}`);

  const steps = path.split('.').slice(1);
  const fixedKey = Object.keys(element).find((k) => k.startsWith('fixed') && FIXED_OR_PATTERN.test(k));
  const patternKey = Object.keys(element).find((k) => k.startsWith('pattern') && FIXED_OR_PATTERN.test(k));
  const record = element as unknown as Record<string, unknown>;

  let binding: CodeSet | undefined;
  if (element.binding?.strength === 'required') {
    if (!element.binding.valueSet) throw new ProfileError(`${at}: a required binding needs a valueSet`);
    binding = terminology.resolve(element.binding.valueSet);
    if (!binding)
      throw new ProfileError(`${at}: value set ${element.binding.valueSet} is not published in profiles/, so it cannot be checked`);
  }

  return {
    path,
    parentSteps: steps.slice(0, -1),
    name: steps.at(-1) ?? type,
    label: element.short ? ` (${element.short})` : '',
    min: element.min ?? 0,
    max: element.max === undefined || element.max === '*' ? Infinity : Number(element.max),
    fixed: fixedKey ? record[fixedKey] : undefined,
    pattern: patternKey ? record[patternKey] : undefined,
    binding,
    constraints: (element.constraint ?? []).map((c) => compileConstraint(c, path, at)),
  };
}

function compileConstraint(constraint: NonNullable<ElementDefinition['constraint']>[number], path: string, at: string): CompiledConstraint {
  if (!constraint.expression) throw new ProfileError(`${at}: constraint ${constraint.key} has no FHIRPath expression`);
  if (constraint.severity !== 'error' && constraint.severity !== 'warning') {
    throw new ProfileError(`${at}: constraint ${constraint.key} needs severity error or warning`);
  }
  const location = constraint.extension?.find((e) => e.url === CONSTRAINT_LOCATION_EXTENSION)?.valueString;
  let evaluate: CompiledConstraint['evaluate'];
  try {
    evaluate = fhirpath.compile(
      { base: path.replace(/\[x\]$/, ''), expression: constraint.expression },
      r4Model,
    ) as CompiledConstraint['evaluate'];
  } catch (err) {
    throw new ProfileError(
      `${at}: constraint ${constraint.key} is not valid FHIRPath: ${err instanceof Error ? err.message : String(err)}`,
    );
  }
  return { key: constraint.key, severity: constraint.severity, human: constraint.human, location, evaluate };
}

function checkConstraint(
  constraint: CompiledConstraint,
  node: InstanceNode,
  elementPath: string,
  root: string,
  env: Record<string, unknown>,
  issues: OperationOutcomeIssue[],
): void {
  let ok: boolean;
  try {
    // An invariant holds only when it evaluates to exactly `true` (https://hl7.org/fhir/R4/conformance-rules.html#constraints).
    const result = constraint.evaluate(node.value, env);
    ok = result.length === 1 && result[0] === true;
  } catch (err) {
    issues.push(
      errorIssue(
        'exception',
        `${constraint.key}: could not be evaluated (${err instanceof Error ? err.message : String(err)})`,
        node.expression,
      ),
    );
    return;
  }
  if (ok) return;
  issues.push(
    issue(
      constraint.severity,
      'invariant',
      `${constraint.key}: ${constraint.human}`,
      locate(constraint.location, elementPath, node.expression, root),
    ),
  );
}

/** `ServiceRequest.reasonCode` declared on `ServiceRequest`, instance `Bundle.entry[1].resource` -> `Bundle.entry[1].resource.reasonCode`. */
function locate(location: string | undefined, elementPath: string, instance: string, root: string): string {
  if (!location) return instance;
  if (location === elementPath) return instance;
  if (location.startsWith(`${elementPath}.`)) return instance + location.slice(elementPath.length);
  const type = elementPath.split('.')[0] ?? '';
  return location.startsWith(`${type}.`) ? root + location.slice(type.length) : location;
}

/** The R4 type of an element path (following datatypes and content references), or undefined if there is no such element. */
function resolveElementType(path: string): string | undefined {
  const [type, ...steps] = path.split('.');
  if (!type || !(type in r4Model.type2Parent)) return undefined;
  let context = type;
  let current: string = type;
  for (const step of steps) {
    const name = step.replace(/\[x\]$/, '');
    if (step.endsWith('[x]')) {
      if (!lookup(r4Model.choiceTypePaths, context, name)) return undefined;
      current = 'choice';
      context = `${context}.${name}`;
      continue;
    }
    if (current === 'choice') return undefined;
    const found = lookupType(context, name);
    if (!found) return undefined;
    current = found.type;
    context =
      found.type === 'BackboneElement' || found.type === 'Element' ? (r4Model.pathsDefinedElsewhere[found.path] ?? found.path) : found.type;
  }
  return current;
}

function lookupType(context: string, name: string): { type: string; path: string } | undefined {
  // Walk up the type hierarchy: CodeableConcept.id is Element.id; a backbone element's id is BackboneElement's.
  let owner: string | undefined = context;
  while (owner) {
    const path = `${owner}.${name}`;
    const elsewhere = r4Model.pathsDefinedElsewhere[path];
    if (elsewhere) return { type: 'BackboneElement', path: elsewhere };
    const raw = (r4Model.path2Type as Record<string, unknown>)[path];
    const type = typeof raw === 'string' ? raw : isJsonObject(raw) && typeof raw.code === 'string' ? raw.code : undefined;
    if (type) return { type, path };
    owner = r4Model.type2Parent[owner] ?? (owner.includes('.') ? 'BackboneElement' : undefined);
  }
  return undefined;
}

function lookup(table: Record<string, unknown>, context: string, name: string): unknown {
  return table[`${context}.${name}`];
}

/** The values of a child element; choice elements (`occurrence[x]`) match `occurrenceDateTime` etc. */
function childNodes(parent: InstanceNode, name: string): InstanceNode[] {
  if (!isJsonObject(parent.value)) return [];
  const nodes: InstanceNode[] = [];
  for (const key of jsonKeys(parent.value, name)) {
    const value = parent.value[key];
    if (Array.isArray(value)) {
      value.forEach((item, i) => {
        if (item !== null && item !== undefined) nodes.push({ value: item, expression: `${parent.expression}${fhirPathStep(key)}[${i}]` });
      });
    } else if (value !== undefined && value !== null) {
      nodes.push({ value, expression: parent.expression + fhirPathStep(key) });
    }
  }
  return nodes;
}

/** How many values an element has; a primitive carried only by its `_element` (extensions) counts. */
function presentCount(parent: unknown, name: string): number {
  if (!isJsonObject(parent)) return 0;
  let count = 0;
  for (const key of jsonKeys(parent, name)) {
    const count0 = (v: unknown): number => (Array.isArray(v) ? v.length : v === undefined || v === null ? 0 : 1);
    count += Math.max(count0(parent[key]), count0(parent[`_${key}`]));
  }
  return count;
}

function jsonKeys(object: Record<string, unknown>, name: string): string[] {
  if (!name.endsWith('[x]')) return object[name] !== undefined || object[`_${name}`] !== undefined ? [name] : [];
  const base = name.slice(0, -3);
  return Object.keys(object).filter((k) => k.length > base.length && k.startsWith(base) && /[A-Z]/.test(k.charAt(base.length)));
}

function inCodeSet(value: unknown, codes: CodeSet): boolean {
  if (typeof value === 'string') return codes.hasCode(value);
  if (!isJsonObject(value)) return false;
  if (Array.isArray(value.coding)) {
    return value.coding.some((c) => isJsonObject(c) && codes.hasCoding(asString(c.system), asString(c.code)));
  }
  return codes.hasCoding(asString(value.system), asString(value.code));
}

const asString = (v: unknown): string | undefined => (typeof v === 'string' ? v : undefined);

export function deepEqual(a: unknown, b: unknown): boolean {
  if (a === b) return true;
  if (Array.isArray(a) || Array.isArray(b)) {
    return Array.isArray(a) && Array.isArray(b) && a.length === b.length && a.every((x, i) => deepEqual(x, b[i]));
  }
  if (!isJsonObject(a) || !isJsonObject(b)) return false;
  const keys = Object.keys(a);
  return keys.length === Object.keys(b).length && keys.every((k) => deepEqual(a[k], b[k]));
}

/** pattern[x] semantics (https://hl7.org/fhir/R4/elementdefinition-definitions.html#ElementDefinition.pattern_x_): the value has at least what the pattern has. */
export function containsPattern(value: unknown, pattern: unknown): boolean {
  if (Array.isArray(pattern)) return Array.isArray(value) && pattern.every((p) => value.some((v) => containsPattern(v, p)));
  if (isJsonObject(pattern)) return isJsonObject(value) && Object.entries(pattern).every(([k, p]) => containsPattern(value[k], p));
  return value === pattern;
}
