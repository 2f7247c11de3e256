import { expect } from 'chai';
import type { FhirValidator } from '../../../src/fhir/validation/index.js';
import { ACCEPTED_TYPES, type Example, acceptedExamples } from './examples.js';
import { loadValidator, summarize } from './validator.js';

/**
 * Official examples that are themselves invalid, with the exact issues they must produce. Keep
 * this list short and justified: an entry here is a defect in the example, not in the validator.
 */
const range = (from: number, to: number): number[] => Array.from({ length: to - from + 1 }, (_, i) => from + i);

const INVALID_EXAMPLES: Readonly<Record<string, string[]>> = {
  // bdl-7 (https://hl7.org/fhir/R4/bundle.html#invs): the data elements Bundle lists the de-Quantity.*
  // elements three times under the same fullUrl (entries 144, 6769 and 6776, ...) with no
  // meta.versionId to tell them apart. A collection Bundle may not repeat a fullUrl.
  // The twelve repeated entries are also duplicate resources (same type, id and fullUrl).
  'Bundle-dataelements.json': ['invariant Bundle', ...range(6769, 6780).map((i) => `invalid Bundle.entry[${i}].resource.id`)],
  // A RESTful fullUrl ends with the resource's type and id (https://hl7.org/fhir/R4/bundle.html#bundle-unique):
  // these examples name Patient/pat12 for Patient/pat2, and lri-* for the resources without the prefix.
  'Bundle-10bb101f-a121-4264-a920-67be9cb82c74.json': ['invalid Bundle.entry[2].fullUrl'],
  'Bundle-3a0707d3-549e-4467-b8b8-5a2ab3800efe.json': ['invalid Bundle.entry[3].fullUrl'],
  'Bundle-lri-example.json': range(1, 16).map((i) => `invalid Bundle.entry[${i}].fullUrl`),
  // Entry 814 is the v2-0550 "Body Parts" CodeSystem. Four of its codes are damaged in the
  // published example: "CHEST\u00C2\u00A0", "KIDN\u00C2\u00A0", "\u00A0" and "\u00C2\u00A0" (a
  // trailing non-breaking space, mostly with the "Â" of a double UTF-8 encoding before it).
  // A code has no leading or trailing whitespace (https://hl7.org/fhir/R4/datatypes.html#code:
  // [^\s]+(\s[^\s]+)*), so these four are invalid; the other 442 codes pass.
  'Bundle-v2-valuesets.json': [
    'value Bundle.entry[814].resource.concept[74].code',
    'value Bundle.entry[814].resource.concept[208].code',
    'value Bundle.entry[814].resource.concept[444].code',
    'value Bundle.entry[814].resource.concept[445].code',
  ],
};

describe('the official R4 examples (hl7.fhir.r4.examples) of the accepted resource types', function () {
  // 148 files, 191 MB of JSON among them; the invariant walk over the definition Bundles (35 MB of
  // data elements alone) takes about 100 s on the shared two-core machine under load.
  this.timeout(600_000);

  let validator: FhirValidator;
  let examples: Example[] = [];
  before(async () => {
    validator = await loadValidator();
    examples = acceptedExamples();
  });

  it('covers every accepted type', async () => {
    const types = new Set(examples.map((e) => e.resource.resourceType));
    const byName = (a: string, b: string): number => a.localeCompare(b);
    expect([...types].map(String).sort(byName)).to.deep.equal([...ACCEPTED_TYPES].map(String).sort(byName));
    expect(examples.length).to.be.at.least(140);
  });

  it('passes base validation without a single error, apart from the listed defective examples', async () => {
    const failures: string[] = [];
    for (const example of examples) {
      const errors = validator.validateBase(example.resource).filter((i) => i.severity === 'error' || i.severity === 'fatal');
      const expected = INVALID_EXAMPLES[example.file] ?? [];
      const actual = summarize(errors);
      if (JSON.stringify([...actual].sort()) !== JSON.stringify([...expected].sort())) {
        failures.push(
          `${example.file}: ${errors
            .map((i) => `${i.expression?.join()} ${i.diagnostics}`)
            .slice(0, 5)
            .join('; ')}`,
        );
      }
    }
    expect(failures).to.deep.equal([]);
  });

  it('lists only defective examples that exist in the corpus', async () => {
    const files = new Set(examples.map((e) => e.file));
    expect(Object.keys(INVALID_EXAMPLES).filter((f) => !files.has(f))).to.deep.equal([]);
  });
});
