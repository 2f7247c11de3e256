/**
 * The references rule, checked where it matters: after a test, every resource the gateway wrote to
 * the stand-in EHR is walked there and each literal reference resolved (docs/write-back.md). The
 * counts add up across the suites that use it; the root hook prints the total.
 */
import { expect } from 'chai';
import type { StandInEhr } from '../../src/sandbox/stand-in-ehr.js';

type Tally = { resources: number; literal: number; logical: number; dangling: number; refused: number };
// On globalThis: mocha's root hook (--require) and the test files (imported) load this module as two instances.
const TALLY = Symbol.for('infusion-gateway.test.written-references');
const holder = globalThis as unknown as Record<symbol, Tally | undefined>;
export const writtenReferenceTally: Tally = (holder[TALLY] ??= { resources: 0, literal: 0, logical: 0, dangling: 0, refused: 0 });

/** Resolves what was written to `ehr`, stops it, then asserts nothing dangles and nothing was refused as invalid. */
export async function stopEhrCheckingWrittenReferences(ehr: StandInEhr): Promise<void> {
  let written;
  try {
    // Orders are the EHR's own, written by tests playing the ordering clinician (with references
    // to the EHR's directory they do not seed); the gateway never writes a ServiceRequest back.
    written = await ehr.resolveWrittenReferences({ exceptTypes: ['ServiceRequest'] });
  } finally {
    await ehr.stop();
  }
  writtenReferenceTally.resources += written.resources;
  writtenReferenceTally.literal += written.checked;
  writtenReferenceTally.logical += written.logical;
  writtenReferenceTally.dangling += written.dangling.length;
  writtenReferenceTally.refused += written.refused.length;
  expect(written.dangling, 'references dangling at the EHR').to.deep.equal([]);
  expect(written.refused, 'writes the validating EHR refused').to.deep.equal([]);
}
