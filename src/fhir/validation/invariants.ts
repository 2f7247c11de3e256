/**
 * The base R4 invariants (https://hl7.org/fhir/R4/conformance-rules.html#constraints): every
 * `constraint` of every base resource and datatype StructureDefinition, evaluated with HL7
 * fhirpath.js on every element it is declared on, wherever that element occurs (a Period's per-1
 * in Observation.effectivePeriod as in an extension's valuePeriod).
 *
 * scripts/generate-invariants.mjs extracts them from the official definitions and, at install
 * (`npm run prepare`), vets each with the installed fhirpath.js into generated/r4-invariants.json;
 * here each is compiled once, the first time its element is checked. The walk also refuses calendar-impossible
 * dates (2027-02-30) in every date, dateTime and instant: the R4 regular expressions accept them
 * (https://hl7.org/fhir/R4/datatypes.html#date: "a date, or partial date ... as used in human
 * communication" — a day that does not exist is not one).
 */
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import fhirpath from 'fhirpath';
import r4Model from 'fhirpath/fhir-context/r4';
import type { OperationOutcomeIssue } from 'fhir/r4.js';
import { errorIssue, issue } from '../outcomes.js';
import { fhirPathStep, isJsonObject } from './element-paths.js';
import { compileExistenceRule, type ElementModel } from './existence-rules.js';
import { GeneratedValidatorsMissingError } from './generated-validators.js';
import { xhtmlIssues } from './xhtml-rules.js';

/** The R4 core extensions' value types (scripts/generate-invariants.mjs --extract). */
const CORE_EXTENSIONS = (
  JSON.parse(readFileSync(fileURLToPath(new URL('./core-extensions.json', import.meta.url)), 'utf8')) as {
    extensions: Record<string, string[]>;
  }
).extensions;

export const DEFAULT_INVARIANTS_FILE = fileURLToPath(new URL('../../../generated/r4-invariants.json', import.meta.url));

interface InvariantDefinition {
  key: string;
  /** Element path (`Questionnaire.item`) or datatype (`Period`) that declares it. */
  path: string;
  severity: 'error' | 'warning';
  human: string;
  expression: string;
}

interface GeneratedInvariants {
  counts: { defined: number; evaluatedByFhirPath: number; checkedNatively: number; notRun: number };
  run: InvariantDefinition[];
  notRun: Array<InvariantDefinition & { reason: string; checkedNatively?: boolean }>;
}

interface CompiledInvariant {
  key: string;
  severity: 'error' | 'warning';
  human: string;
  evaluate: (node: unknown, env: Record<string, unknown>) => unknown[];
}

export type InvariantCounts = GeneratedInvariants['counts'];

const DATE_TYPES = new Set(['date', 'dateTime', 'instant']);
/** Types whose children are described under the element's own path, not under a datatype. */
const INLINE_TYPES = new Set(['BackboneElement', 'Element']);

const model = r4Model as unknown as ElementModel & { type2Parent: Record<string, string> };

export interface InvariantCheckerOptions {
  /**
   * Answer the invariants of existence-rules.ts's shape natively (default true). Off only where
   * test/fhir/validation/existence-rules.test.ts compares both answers.
   */
  existenceRules?: boolean;
}

export class InvariantChecker {
  readonly counts: InvariantCounts;
  /** The definitions by element path, compiled on first use (see #invariantsAt). */
  readonly #definitionsByPath = new Map<string, InvariantDefinition[]>();
  readonly #compiledByPath = new Map<string, readonly CompiledInvariant[]>();
  /** Human text of the invariants checked natively here, by key (dom-3, ref-1). */
  readonly #nativeHuman = new Map<string, string>();
  readonly #existenceRules: boolean;

  private constructor(generated: GeneratedInvariants, options: InvariantCheckerOptions) {
    this.counts = generated.counts;
    this.#existenceRules = options.existenceRules ?? true;
    for (const native of generated.notRun) if (native.checkedNatively) this.#nativeHuman.set(native.key, native.human);
    for (const definition of generated.run) {
      const path = definition.path.replace(/\[x\]$/, '');
      const list = this.#definitionsByPath.get(path) ?? [];
      list.push(definition);
      this.#definitionsByPath.set(path, list);
    }
  }

  /**
   * The invariants declared on an element path, compiled the first time that path is checked:
   * compiling all of them when the validator loads cost about 300 ms of every start-up
   * (docs/architecture.md, "Start-up"), most of it for types a referral never carries.
   * generated/r4-invariants.json holds only expressions the installed fhirpath.js compiled.
   */
  #invariantsAt(path: string): readonly CompiledInvariant[] {
    const compiled = this.#compiledByPath.get(path);
    if (compiled) return compiled;
    const invariants = (this.#definitionsByPath.get(path) ?? []).map((definition): CompiledInvariant => {
      const native = this.#existenceRules ? compileExistenceRule(path, definition.expression, model) : undefined;
      return {
        key: definition.key,
        severity: definition.severity,
        human: definition.human,
        evaluate: native
          ? (node) => [native(node)]
          : (fhirpath.compile({ base: path, expression: definition.expression }, r4Model, {
              traceFn: () => undefined,
            }) as CompiledInvariant['evaluate']),
      };
    });
    this.#compiledByPath.set(path, invariants);
    return invariants;
  }

  static load(file: string = DEFAULT_INVARIANTS_FILE, options: InvariantCheckerOptions = {}): InvariantChecker {
    let text: string;
    try {
      text = readFileSync(file, 'utf8');
    } catch {
      throw new GeneratedValidatorsMissingError(`${file} is missing: run \`npm install\` or \`node scripts/generate-invariants.mjs\`.`);
    }
    return new InvariantChecker(JSON.parse(text) as GeneratedInvariants, options);
  }

  /**
   * Issues for one resource (not the resources nested in it: the caller visits each).
   * `evaluateFhirPath` is false when the structure is already refused: invariants over a
   * malformed resource only repeat the structural issue, while impossible dates are still news.
   */
  check(
    resource: Record<string, unknown>,
    type: string,
    at: string,
    options: { evaluateFhirPath: boolean; rootResource: unknown },
  ): OperationOutcomeIssue[] {
    const issues: OperationOutcomeIssue[] = [];
    const env = { resource, rootResource: options.rootResource };
    const elementIds = new Set<string>();
    const visit = (value: unknown, elementPath: string, expression: string, constraintPaths: readonly string[]): void => {
      if (options.evaluateFhirPath) {
        for (const path of constraintPaths) {
          for (const invariant of this.#invariantsAt(path)) this.#evaluate(invariant, value, env, expression, issues);
        }
      }
      if (!isJsonObject(value)) return;
      // https://hl7.org/fhir/R4/element-definitions.html#Element.id: unique within the resource.
      // ElementDefinition ids are element paths, which a snapshot and a differential share.
      if (value !== resource && typeof value.id === 'string' && elementPath !== 'ElementDefinition') {
        if (elementIds.has(value.id))
          issues.push(
            errorIssue(
              'invalid',
              `Duplicate element id '${value.id.slice(0, 64)}': an element id is unique within its resource`,
              `${expression}.id`,
            ),
          );
        elementIds.add(value.id);
      }
      if (elementPath === 'Extension') issues.push(...coreExtensionIssues(value, expression));
      if (elementPath === 'Attachment') issues.push(...attachmentSizeIssues(value, expression));
      for (const [name, child] of Object.entries(value)) {
        if (name === 'resourceType' || name === 'contained') continue;
        const primitiveExtension = name.startsWith('_');
        const target = primitiveExtension ? PRIMITIVE_EXTENSION : placedChild(elementPath, name);
        if (!target || target.kind === 'resource' || target.kind === 'primitive') continue; // nested resources are checked on their own; other primitives are the schema's job
        const repeated = Array.isArray(child);
        const items: unknown[] = repeated ? child : [child];
        const step = fhirPathStep(primitiveExtension ? name.slice(1) : name);
        // Built only for an issue or a nested element: most children are primitives with nothing to say.
        const itemExpression = (index: number): string => `${expression}${step}${repeated ? `[${index}]` : ''}`;
        for (const [index, item] of items.entries()) {
          if (target.kind === 'date') {
            const problem = typeof item === 'string' && R4_FORMAT[target.type]?.test(item) ? impossibleDate(item) : undefined;
            if (problem) issues.push(errorIssue('value', `${problem}: not a real ${target.type}`, itemExpression(index)));
          } else if (target.kind === 'xhtml') {
            if (typeof item === 'string') issues.push(...xhtmlIssues(item, itemExpression(index)));
          } else {
            visit(item, target.visitAs, itemExpression(index), target.constraintPaths);
          }
        }
      }
    };
    visit(resource, type, at, resourceConstraintPaths(type));
    if (options.evaluateFhirPath) issues.push(...this.#containedReferenceIssues(resource, at, options.rootResource));
    return issues;
  }

  /**
   * dom-3 and ref-1 (https://hl7.org/fhir/R4/domainresource.html#invs,
   * https://hl7.org/fhir/R4/references.html#invs) in one walk: every contained resource is
   * referred to by `#id` from somewhere in the resource (or refers to its container with `#`),
   * and every `#id` Reference names a contained resource of the root resource.
   */
  #containedReferenceIssues(resource: Record<string, unknown>, at: string, rootResource: unknown): OperationOutcomeIssue[] {
    const issues: OperationOutcomeIssue[] = [];
    const containedIds = (holder: unknown): Set<string> =>
      new Set(
        (isJsonObject(holder) && Array.isArray(holder.contained) ? holder.contained : [])
          .map((c: unknown) => (isJsonObject(c) && typeof c.id === 'string' ? c.id : undefined))
          .filter((id): id is string => id !== undefined),
      );
    // The container of a reference is the resource itself (a Bundle entry's resource, say), or the
    // resource that contains it (a contained resource has none of its own).
    const rootIds = new Set([...containedIds(rootResource), ...containedIds(resource)]);
    const localRefs = new Set<string>();
    /** The contained resources (by index) with a `"#"` in them, a reference to their container. */
    const referringToContainer = new Set<number>();
    // The steps from `at` to the value walked (names, and indexes as numbers), joined only for an issue.
    const steps: Array<string | number> = [];
    const expressionHere = (): string => steps.reduce<string>((e, s) => e + (typeof s === 'number' ? `[${s}]` : fhirPathStep(s)), at);
    const walkStep = (step: string | number, value: unknown, contained: number | undefined): void => {
      steps.push(step);
      walk(value, contained);
      steps.pop();
    };
    const walk = (value: unknown, contained: number | undefined): void => {
      if (Array.isArray(value)) {
        value.forEach((item, i) => walkStep(i, item, contained));
        return;
      }
      if (typeof value === 'string') {
        if (value.startsWith('#')) localRefs.add(value);
        if (value === '#' && contained !== undefined) referringToContainer.add(contained);
        return;
      }
      if (!isJsonObject(value)) return;
      // A resource inside this one that is not its contained (a Bundle entry's, a Parameters
      // part's) is a container of its own, checked on its own.
      if (value !== resource && contained === undefined && typeof value.resourceType === 'string') return;
      if (
        contained === undefined &&
        typeof value.reference === 'string' &&
        value.reference.startsWith('#') &&
        value.reference !== '#' &&
        !rootIds.has(value.reference.slice(1))
      ) {
        issues.push(
          issue(
            'error',
            'invariant',
            `ref-1: ${this.#nativeHuman.get('ref-1') ?? 'a local reference names a contained resource'}`,
            expressionHere(),
          ),
        );
      }
      for (const [name, child] of Object.entries(value)) {
        if (name === '#' && contained !== undefined) referringToContainer.add(contained);
        if (name === 'contained' && value === resource) {
          steps.push(name);
          if (Array.isArray(child)) child.forEach((item, i) => walkStep(i, item, i));
          else walk(child, -1);
          steps.pop();
        } else walkStep(name, child, contained);
      }
    };
    walk(resource, undefined);
    const contained = Array.isArray(resource.contained) ? resource.contained : [];
    contained.forEach((item: unknown, index) => {
      if (!isJsonObject(item) || typeof item.id !== 'string') return;
      if (!localRefs.has(`#${item.id}`) && !referringToContainer.has(index)) {
        issues.push(
          issue(
            'error',
            'invariant',
            `dom-3: ${this.#nativeHuman.get('dom-3') ?? 'a contained resource is referred to from elsewhere in the resource'}`,
            at,
          ),
        );
      }
    });
    return issues;
  }

  #evaluate(
    invariant: CompiledInvariant,
    value: unknown,
    env: Record<string, unknown>,
    expression: string,
    issues: OperationOutcomeIssue[],
  ): void {
    let ok: boolean;
    try {
      // An invariant holds only when it evaluates to exactly `true`
      // (https://hl7.org/fhir/R4/conformance-rules.html#constraints): per-1 between a date and a
      // dateTime of another precision is empty, which the reference validator refuses too.
      const result = invariant.evaluate(value, env);
      ok = result.length === 1 && result[0] === true;
    } catch {
      // fhirpath.js throws on inputs the schema refuses (a string where an object belongs): that
      // issue is already reported; an invariant that cannot be evaluated is not a finding.
      return;
    }
    if (!ok) issues.push(issue(invariant.severity, 'invariant', `${invariant.key}: ${invariant.human}`, expression));
  }
}

/**
 * A core extension carries a value of a type its definition allows
 * (https://hl7.org/fhir/R4/extensibility.html#Extension: "the value[x] SHALL be one of the types
 * the extension definition allows"); a complex one has no value.
 */
function coreExtensionIssues(extension: Record<string, unknown>, at: string): OperationOutcomeIssue[] {
  const url = typeof extension.url === 'string' ? extension.url.split('|')[0] : undefined;
  const allowed = url ? CORE_EXTENSIONS[url] : undefined;
  if (!allowed) return [];
  const valueKey = Object.keys(extension).find((k) => k.startsWith('value') && k.length > 5);
  if (!valueKey) return [];
  const suffix = valueKey.slice(5);
  const type = allowed.find((t) => t.toLowerCase() === suffix.toLowerCase());
  if (type) return [];
  const expected =
    allowed.length === 0
      ? 'no value (it is a complex extension)'
      : allowed.map((t) => `value${t.charAt(0).toUpperCase()}${t.slice(1)}`).join(' or ');
  return [errorIssue('structure', `The extension ${url} takes ${expected}, not ${valueKey}`, `${at}${fhirPathStep(valueKey)}`)];
}

/**
 * Attachment.size is "the number of bytes of data that make up this attachment (before base64
 * encoding, if that is done)" (https://hl7.org/fhir/R4/datatypes-definitions.html#Attachment.size):
 * with the data inline, the two must agree.
 */
function attachmentSizeIssues(attachment: Record<string, unknown>, at: string): OperationOutcomeIssue[] {
  const { data, size } = attachment;
  if (typeof data !== 'string' || typeof size !== 'number' || !/^[A-Za-z0-9+/\s]*={0,2}\s*$/.test(data)) return [];
  const actual = Buffer.from(data, 'base64').length;
  if (actual === size) return [];
  return [errorIssue('value', `Attachment.size says ${size} bytes but the data holds ${actual}`, `${at}.size`)];
}

/** Resource, DomainResource (when it is one) and the type itself declare invariants on the root. */
function resourceConstraintPaths(type: string): string[] {
  const paths = [type];
  for (let parent = model.type2Parent[type]; parent; parent = model.type2Parent[parent]) paths.push(parent);
  return paths;
}

/** The element definition path and type of child `name` of an element at `parentPath`. */
function childElement(parentPath: string, name: string): { path: string; type: string } | undefined {
  const path = `${parentPath}.${name}`;
  const type = model.path2Type[path];
  if (type)
    return {
      path: model.pathsDefinedElsewhere[path] ?? path,
      type: type === 'BackboneElement' && model.pathsDefinedElsewhere[path] ? 'BackboneElement' : type,
    };
  const elsewhere = model.pathsDefinedElsewhere[path];
  if (elsewhere) return { path: elsewhere, type: model.path2Type[elsewhere] ?? 'BackboneElement' };
  // A choice element: valuePeriod is value[x] of type Period.
  for (let i = name.length - 1; i > 0; i--) {
    const first = name[i];
    if (!first || first < 'A' || first > 'Z') continue;
    const choices = model.choiceTypePaths[`${parentPath}.${name.slice(0, i)}`];
    const suffix = name.slice(i);
    if (choices?.includes(suffix)) {
      const primitive = suffix.charAt(0).toLowerCase() + suffix.slice(1);
      return {
        path: `${parentPath}.${name.slice(0, i)}`,
        type: primitive in model.type2Parent && !(suffix in model.type2Parent) ? primitive : suffix,
      };
    }
  }
  return undefined;
}

/**
 * A child element as the walk treats it: a date to check, narrative, another primitive (the
 * schema's job), a nested resource (checked on its own), or an element to visit, as `visitAs`
 * with the invariants of `constraintPaths`.
 */
type PlacedChild =
  | { kind: 'date'; type: string }
  | { kind: 'xhtml'; type: string }
  | { kind: 'primitive'; type: string }
  | { kind: 'resource'; type: string }
  | { kind: 'element'; type: string; visitAs: string; constraintPaths: readonly string[] };

/** A primitive's `_name`: its id and extensions, an Element. */
const PRIMITIVE_EXTENSION: PlacedChild = { kind: 'element', type: 'Element', visitAs: 'Element', constraintPaths: ['Element'] };

/** childElement's answers, by parent path and name: the model does not change, and the walk asks for the same ones on every resource. */
const placedChildren = new Map<string, Map<string, PlacedChild | null>>();

function placedChild(parentPath: string, name: string): PlacedChild | undefined {
  let byName = placedChildren.get(parentPath);
  if (!byName) placedChildren.set(parentPath, (byName = new Map()));
  let placed = byName.get(name);
  if (placed === undefined) {
    placed = placeChild(parentPath, name) ?? null;
    // Names a client sent that no element has would grow the cache without bound: only real elements are kept.
    if (placed !== null) byName.set(name, placed);
  }
  return placed ?? undefined;
}

function placeChild(parentPath: string, name: string): PlacedChild | undefined {
  const target = childElement(parentPath, name);
  if (!target) return undefined;
  const { type } = target;
  if (type === 'Resource') return { kind: 'resource', type };
  if (DATE_TYPES.has(type)) return { kind: 'date', type };
  if (type === 'xhtml') return { kind: 'xhtml', type };
  if (type.startsWith('System.') || /^[a-z]/.test(type)) return { kind: 'primitive', type };
  const inline = INLINE_TYPES.has(type);
  return { kind: 'element', type, visitAs: inline ? target.path : type, constraintPaths: inline ? [target.path] : [type] };
}

/**
 * The R4 regular expressions (https://hl7.org/fhir/R4/datatypes.html#primitive): a value they
 * refuse is already reported by the schema, so only their calendar blind spot is checked here.
 */
const R4_FORMAT: Record<string, RegExp> = {
  date: /^([0-9]([0-9]([0-9][1-9]|[1-9]0)|[1-9]00)|[1-9]000)(-(0[1-9]|1[0-2])(-(0[1-9]|[1-2][0-9]|3[0-1]))?)?$/,
  dateTime:
    /^([0-9]([0-9]([0-9][1-9]|[1-9]0)|[1-9]00)|[1-9]000)(-(0[1-9]|1[0-2])(-(0[1-9]|[1-2][0-9]|3[0-1])(T([01][0-9]|2[0-3]):[0-5][0-9]:([0-5][0-9]|60)(\.[0-9]+)?(Z|(\+|-)((0[0-9]|1[0-3]):[0-5][0-9]|14:00)))?)?)?$/,
  instant:
    /^([0-9]([0-9]([0-9][1-9]|[1-9]0)|[1-9]00)|[1-9]000)-(0[1-9]|1[0-2])-(0[1-9]|[1-2][0-9]|3[0-1])T([01][0-9]|2[0-3]):[0-5][0-9]:([0-5][0-9]|60)(\.[0-9]+)?(Z|(\+|-)((0[0-9]|1[0-3]):[0-5][0-9]|14:00))$/,
};

const DAYS_IN_MONTH = [31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31];

/** `2027-02-30` -> a description; a real day (or a partial date) -> undefined. */
export function impossibleDate(value: string): string | undefined {
  const match = /^(\d{4})-(\d{2})-(\d{2})/.exec(value);
  if (!match) return undefined;
  const year = Number(match[1]);
  const month = Number(match[2]);
  const day = Number(match[3]);
  if (month < 1 || month > 12) return `${value.slice(0, 10)} has no month ${match[2]}`;
  const leap = (year % 4 === 0 && year % 100 !== 0) || year % 400 === 0;
  const days = month === 2 && !leap ? 28 : (DAYS_IN_MONTH[month - 1] ?? 31);
  if (day < 1 || day > days) return `${value.slice(0, 10)} is not a day of the calendar (${match[1]}-${match[2]} has ${days} days)`;
  return undefined;
}
