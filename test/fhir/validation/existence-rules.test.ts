import { readdirSync, readFileSync, statSync } from 'node:fs';
import path from 'node:path';
import { expect } from 'chai';
import fc from 'fast-check';
import fhirpath from 'fhirpath';
import r4Model from 'fhirpath/fhir-context/r4';
import { compileExistenceRule, type ElementModel } from '../../../src/fhir/validation/existence-rules.js';
import { DEFAULT_INVARIANTS_FILE, InvariantChecker } from '../../../src/fhir/validation/invariants.js';
import { EXAMPLES_DIR } from './examples.js';

const model = r4Model as unknown as ElementModel;

interface Definition {
  key: string;
  path: string;
  expression: string;
}

const definitions = (JSON.parse(readFileSync(DEFAULT_INVARIANTS_FILE, 'utf8')) as { run: Definition[] }).run.map((d) => ({
  ...d,
  path: d.path.replace(/\[x\]$/, ''),
}));

/** fhirpath.js's answer, as the invariant walk reads it: holds only when exactly `true`. */
function fhirPathHolds(definition: Definition, element: unknown): boolean {
  const result = fhirpath.evaluate(element, { base: definition.path, expression: definition.expression }, {}, r4Model) as unknown[];
  return result.length === 1 && result[0] === true;
}

/**
 * JSON trees built from the names a rule uses, at any depth, as a value, a primitive's `_name`
 * extension, a choice type's `nameQuantity`/`nameString` ..., with the shapes fhirpath.js treats
 * apart: absent, null, an empty array, an array holding null, an object, an array of objects.
 */
function elementsFor(expression: string): fc.Arbitrary<Record<string, unknown>> {
  const names = [...new Set(expression.match(/\b[a-z][A-Za-z0-9]*\b(?!\()/g) ?? [])].filter((n) => n !== 'or' && n !== 'and');
  const keys = names.flatMap((n) => [n, `_${n}`, `${n}String`, `${n}Quantity`, `${n}Reference`, `${n}Boolean`]);
  const { tree } = fc.letrec<{ tree: Record<string, unknown>; value: unknown }>((tie) => ({
    tree: fc.dictionary(fc.constantFrom(...keys), tie('value'), { maxKeys: 4, depthIdentifier: 'tree' }),
    value: fc.oneof(
      { depthSize: 'small', withCrossShrink: true },
      fc.constantFrom('x', '#', 0, false, null, [], [null], ['x'], [null, 'y']),
      tie('tree'),
      fc.array(fc.oneof(tie('tree'), fc.constant(null)), { maxLength: 2 }),
    ),
  }));
  return tree;
}

describe('invariants answered natively (src/fhir/validation/existence-rules.ts) agree with fhirpath.js', function () {
  this.timeout(120_000);
  const native = definitions.flatMap((d) => {
    const rule = compileExistenceRule(d.path, d.expression, model);
    return rule ? [{ ...d, rule }] : [];
  });

  it('takes the existence rules of R4 and leaves the rest to fhirpath.js', async () => {
    const keys = native.map((d) => d.key);
    expect(keys).to.include.members(['cpt-2', 'qty-3', 'prr-1', 'dom-4', 'dom-5', 'tim-1', 'tim-10', 'obs-6']);
    // Comparisons, `implies`, functions and type tests stay fhirpath.js's.
    for (const key of ['per-1', 'tim-4', 'tim-9', 'ele-1', 'bdl-3']) expect(keys).to.not.include(key);
    expect(native.length).to.be.at.least(50);
  });

  it('gives fhirpath.js’s answer on every shape of the elements each rule names (fixed seed)', async () => {
    for (const definition of native) {
      fc.assert(
        fc.property(elementsFor(definition.expression), (element) => {
          expect(definition.rule(element), `${definition.key} on ${JSON.stringify(element)}`).to.equal(fhirPathHolds(definition, element));
        }),
        { seed: 20261205, numRuns: 150 },
      );
    }
  });

  it('gives the same issues as fhirpath.js alone on every official R4 example under 100 kB', async () => {
    const withRules = InvariantChecker.load(DEFAULT_INVARIANTS_FILE);
    const fhirPathOnly = InvariantChecker.load(DEFAULT_INVARIANTS_FILE, { existenceRules: false });
    let checked = 0;
    let invariantIssues = 0;
    for (const file of readdirSync(EXAMPLES_DIR).sort()) {
      const full = path.join(EXAMPLES_DIR, file);
      if (!file.endsWith('.json') || file === 'package.json' || statSync(full).size > 100_000) continue;
      const resource = JSON.parse(readFileSync(full, 'utf8')) as Record<string, unknown>;
      if (typeof resource.resourceType !== 'string') continue;
      const options = { evaluateFhirPath: true, rootResource: resource };
      const expected = fhirPathOnly.check(resource, resource.resourceType, resource.resourceType, options);
      expect(withRules.check(resource, resource.resourceType, resource.resourceType, options), file).to.deep.equal(expected);
      checked++;
      invariantIssues += expected.filter((i) => i.code === 'invariant').length;
    }
    expect(checked).to.be.greaterThan(4000);
    // The corpus is not all clean: some of its invariant findings are among those compared.
    expect(invariantIssues).to.be.greaterThan(0);
  });
});
