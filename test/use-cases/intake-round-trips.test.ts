/**
 * The round trips of one intake, counted by the store's statement observer on both engines: the
 * directory comes from memory, and the ServiceRequest and its Task are written with one statement
 * per table on SQLite, in one statement on PostgreSQL. Was 11 (two reads of the same directory
 * Location, six single-row writes). The audit trail adds its rows to the same transaction
 * (docs/audit.md).
 */
import { expect } from 'chai';
import { randomUUID } from 'node:crypto';
import { fhirFetch, startGateway, type Engine } from '../support/gateway.js';
import { accessToken } from '../support/test-clients.js';
import { readFixture, withOrderNumber } from '../support/fixtures.js';

for (const engine of ['sqlite', 'postgres'] as Engine[]) {
  describe(`intake round trips (${engine})`, function () {
    this.timeout(60_000);

    async function intakeStatements(env: Record<string, string>): Promise<string[][]> {
      const statements: string[] = [];
      const seen: string[][] = [];
      let counting = false;
      const gw = await startGateway({ engine, env, store: { observeStatements: (kind) => counting && statements.push(kind) } });
      // The EHR's token first: getting one records its assertion id, which is not intake's work.
      await accessToken(gw.baseUrl, { role: 'ehr' });
      try {
        for (const fixture of ['referrals/infliximab/service-request.json', 'referrals/vedolizumab/service-request.json']) {
          statements.length = 0;
          counting = true;
          const created = await fhirFetch(`${gw.baseUrl}/fhir/ServiceRequest`, {
            body: withOrderNumber(readFixture(fixture), `rt-${randomUUID()}`),
          });
          counting = false;
          expect(created.status, fixture).to.equal(201);
          seen.push([...statements]);
        }
      } finally {
        await gw.stop();
      }
      return seen;
    }

    // PostgreSQL writes the rows of resources, history and search index in one statement, and an
    // AuditEvent with its entities in one (data-modifying WITH); SQLite, in process, one per table.
    const writes = engine === 'postgres' ? ['query'] : ['query', 'query', 'query'];
    const audit = engine === 'postgres' ? ['query'] : ['query', 'query'];

    const withAudit = ['begin', 'query', ...writes, ...audit, 'commit'];
    const withoutAudit = ['begin', 'query', ...writes, 'commit'];

    it(`stores a referral with ${withAudit.length} statements: begin, the order-number claim, the resource rows, the audit rows, commit`, async () => {
      for (const statements of await intakeStatements({})) {
        expect(statements).to.deep.equal(withAudit);
      }
    });

    it(`stores a referral with ${withoutAudit.length} statements with the audit trail off (AUDIT=off, development and the bench only)`, async () => {
      for (const statements of await intakeStatements({ AUDIT: 'off' })) {
        expect(statements).to.deep.equal(withoutAudit);
      }
    });
  });
}
