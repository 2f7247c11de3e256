/**
 * Root hook: after the whole suite, no log line written by any test gateway may contain PHI from
 * the fixtures. Every test that starts a gateway logs into the shared capture (log-capture.ts).
 */
import { authorizeNotificationsWith } from '../../src/sandbox/stand-in-payer.js';
import { capturedLogLines } from './log-capture.js';
import { phiFoundIn } from './phi.js';
import { attachTestToken } from './test-clients.js';
import { writtenReferenceTally } from './written-references.js';

export const mochaHooks = {
  beforeAll(): void {
    // The stand-in payer's notifications to a test gateway carry a token of the payer's test client.
    authorizeNotificationsWith((endpoint, method, headers) => attachTestToken(endpoint, method, headers));
  },
  afterAll(): void {
    const tally = writtenReferenceTally;
    if (tally.resources > 0) {
      console.log(
        `  written back to the stand-in EHR: ${tally.resources} resources, ${tally.literal} literal references resolved, ${tally.logical} logical; ${tally.dangling} dangling, ${tally.refused} refused as invalid`,
      );
    }
    const lines = capturedLogLines();
    const found = phiFoundIn(lines);
    if (found.length > 0) {
      const sample = found
        .slice(0, 5)
        .map((f) => `  ${f.marker}: ${f.line.slice(0, 300)}`)
        .join('\n');
      throw new Error(`PHI from the fixtures reached ${found.length} log line(s) during the suite:\n${sample}`);
    }
  },
};
