/**
 * The commonest shape of an R4 invariant, answered without fhirpath.js: element paths tested with
 * `exists()` or `empty()`, joined by `and` / `or`, grouped, negated with `.not()`; cpt-2
 * (`value.empty() or system.exists()`), dom-4, prr-1, the tim-* of every Timing, 55 of the 229
 * base invariants (https://hl7.org/fhir/R4/conformance-rules.html#constraints). They run on every
 * element of every resource received, and through fhirpath.js each one builds its evaluation
 * context and resource nodes, most of what the invariant walk costs intake (docs/validation.md,
 * "Invariants answered natively").
 *
 * The answer is fhirpath.js's to the letter, not a reading of the specification: a path step
 * yields the nodes fhirpath.js's makeChildResNodes yields (a primitive present through its `_name`
 * extension alone counts, so does a null inside an array, an empty array does not), and
 * test/fhir/validation/existence-rules.test.ts holds the two answers equal over every R4 example
 * and every combination of the elements each rule names. Whatever falls outside this grammar, or
 * names an element the model cannot place, is left to fhirpath.js (compileExistenceRule answers
 * undefined).
 *
 *   rule    := all ('or' all)*
 *   all     := negated ('and' negated)*
 *   negated := primary ('.not()')*
 *   primary := '(' rule ')' | name ('.' name)* '.' ('exists' | 'empty') '()'
 */

/** What the rules need of fhirpath.js's R4 model (fhirpath/fhir-context/r4). */
export interface ElementModel {
  path2Type: Record<string, string>;
  path2TypeWithoutElements: Record<string, string>;
  choiceTypePaths: Record<string, string[]>;
  pathsDefinedElsewhere: Record<string, string>;
}

/** One step of a path: an element name, and for a choice element (`value[x]`) its type suffixes. */
interface Step {
  name: string;
  choices?: readonly string[];
}

type Rule =
  | { kind: 'test'; steps: readonly Step[]; exists: boolean }
  | { kind: 'or' | 'and'; operands: readonly Rule[] }
  | { kind: 'not'; operand: Rule };

/** A node as fhirpath.js holds one: the element's JSON, and the `_name` JSON of a primitive. */
interface ElementNode {
  data: unknown;
  extension: unknown;
}

const TOKEN = /\s*([A-Za-z][A-Za-z0-9]*|\(|\)|\.|\S+)/gy;

/**
 * The rule as a function of an element's JSON, or undefined when fhirpath.js must answer it.
 * `base` is the element path the invariant is declared on (`ContactPoint`, `Timing.repeat`).
 */
export function compileExistenceRule(base: string, expression: string, model: ElementModel): ((element: unknown) => boolean) | undefined {
  const tokens: string[] = [];
  let end = 0;
  TOKEN.lastIndex = 0;
  for (let match = TOKEN.exec(expression); match; match = TOKEN.exec(expression)) {
    tokens.push(match[1]!);
    end = TOKEN.lastIndex;
  }
  if (expression.slice(end).trim() !== '') return undefined;
  let at = 0;
  const peek = (): string | undefined => tokens[at];
  const take = (expected: string): boolean => {
    if (tokens[at] !== expected) return false;
    at++;
    return true;
  };

  const primary = (): Rule | undefined => {
    if (take('(')) {
      const inner = rule();
      return inner && take(')') ? inner : undefined;
    }
    const names: string[] = [];
    for (;;) {
      const name = peek();
      if (name === undefined || !/^[a-z][A-Za-z0-9]*$/.test(name)) return undefined;
      at++;
      if (take('(')) {
        if (!take(')') || (name !== 'exists' && name !== 'empty') || names.length === 0) return undefined;
        const steps = placeSteps(base, names, model);
        return steps && { kind: 'test', steps, exists: name === 'exists' };
      }
      names.push(name);
      if (!take('.')) return undefined;
    }
  };
  const negated = (): Rule | undefined => {
    let operand = primary();
    while (operand && peek() === '.' && tokens[at + 1] === 'not') {
      at += 2;
      if (!take('(') || !take(')')) return undefined;
      operand = { kind: 'not', operand };
    }
    return operand;
  };
  const joined = (kind: 'or' | 'and', operand: () => Rule | undefined): Rule | undefined => {
    const operands = [operand()];
    while (take(kind)) operands.push(operand());
    if (operands.some((o) => o === undefined)) return undefined;
    return operands.length === 1 ? operands[0] : { kind, operands: operands as Rule[] };
  };
  const all = (): Rule | undefined => joined('and', negated);
  const rule = (): Rule | undefined => joined('or', all);

  const compiled = rule();
  if (!compiled || at !== tokens.length) return undefined;
  return (element) => holds(compiled, { data: element, extension: undefined });
}

/**
 * The steps of `names` from `base`, each placed in the model as fhirpath.js places it; undefined
 * if one is not an element there, or if the path goes on past a primitive or a choice element
 * (where fhirpath.js's answer would depend on more than presence).
 */
function placeSteps(base: string, names: readonly string[], model: ElementModel): Step[] | undefined {
  const steps: Step[] = [];
  let parent = base;
  for (const [index, name] of names.entries()) {
    const last = index === names.length - 1;
    let path = `${parent}.${name}`;
    path = model.pathsDefinedElsewhere[path] ?? path;
    const choices = model.choiceTypePaths[path];
    if (choices) {
      if (!last) return undefined;
      steps.push({ name, choices });
      continue;
    }
    const type = model.path2Type[path];
    if (type === undefined) return undefined;
    if (!last && (/^[a-z]/.test(type) || type.startsWith('System.'))) return undefined;
    steps.push({ name });
    parent = model.path2TypeWithoutElements[path] ?? path;
  }
  return steps;
}

function holds(rule: Rule, element: ElementNode): boolean {
  switch (rule.kind) {
    case 'test':
      return reaches(element, rule.steps, 0) === rule.exists;
    case 'or':
      return rule.operands.some((operand) => holds(operand, element));
    case 'and':
      return rule.operands.every((operand) => holds(operand, element));
    case 'not':
      return !holds(rule.operand, element);
  }
}

/** Whether the path from `node` reaches at least one node (`exists()`). */
function reaches(node: ElementNode, steps: readonly Step[], from: number): boolean {
  if (from === steps.length) return true;
  return childNodes(node, steps[from]!).some((child) => reaches(child, steps, from + 1));
}

const isNothing = (value: unknown): boolean => value === null || value === undefined || (Array.isArray(value) && value.length === 0);

/** The nodes of `step` under `node`, as fhirpath.js's makeChildResNodes makes them. */
function childNodes(node: ElementNode, step: Step): ElementNode[] {
  const data = node.data as Record<string, unknown> | null | undefined;
  let value: unknown;
  let extension: unknown;
  if (step.choices) {
    for (const suffix of step.choices) {
      value = data?.[step.name + suffix];
      extension = data?.[`_${step.name}${suffix}`];
      if (value !== undefined || extension !== undefined) break;
    }
  } else {
    value = data?.[step.name];
    extension = data?.[`_${step.name}`];
    if (value === undefined && extension === undefined) value = (node.extension as Record<string, unknown> | null | undefined)?.[step.name];
  }
  if (isNothing(value) && isNothing(extension)) return [];
  if (Array.isArray(value)) {
    // As fhirpath.js indexes `_name`, whatever it holds (`_toAdd && _toAdd[i]`, `_toAdd?.length || 0`).
    const extensionAt = (i: number): unknown => (extension ? (extension as Record<number, unknown>)[i] : extension);
    const extensionCount = Number((extension as { length?: unknown } | null | undefined)?.length) || 0;
    const nodes = value.map((item, i) => ({ data: item, extension: extensionAt(i) }));
    for (let i = value.length; i < extensionCount; i++) nodes.push({ data: null, extension: extensionAt(i) });
    return nodes;
  }
  if (value === null || value === undefined) {
    if (Array.isArray(extension)) return extension.map((item) => ({ data: null, extension: item }));
  }
  return [{ data: value, extension }];
}
