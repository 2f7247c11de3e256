/**
 * The statements of one intake, seen by the store's statement observer on both engines and named
 * by the tables they write: the directory comes from memory; on PostgreSQL the whole referral is
 * one statement (claim, resources, history, search index, audit rows), on SQLite one statement per
 * table but the search index, one prepared statement per row (in process, no round trip;
 * docs/resilience.md#sqlite-index-rows). Was 11 (two reads of the same directory Location, six
 * single-row writes). The audit trail adds its rows to the same statement or transaction (docs/audit.md).
 */
import { expect } from 'chai';
import { randomUUID } from 'node:crypto';
import { fhirFetch, startGateway, type Engine } from '../support/gateway.js';
import { accessToken } from '../support/test-clients.js';
import { readFixture, withOrderNumber } from '../support/fixtures.js';

for (const engine of ['sqlite', 'postgres'] as Engine[]) {
  describe(`intake round trips (${engine})`, function () {
    this.timeout(60_000);

    /** The tables a statement writes, `+`-joined (a data-modifying WITH writes several), or its kind. */
    const named = (kind: string, sql = ''): string => {
      const tables = [...sql.matchAll(/insert into "(\w+)"/g)].map((m) => m[1]);
      return kind === 'query' && tables.length > 0 ? tables.join('+') : kind;
    };

    /** A run of statements writing the same tables (SQLite's search index rows), with its distinct SQL texts. */
    interface Run {
      name: string;
      count: number;
      texts: Set<string>;
    }

    /** Consecutive statements of the same name become one run; the names read `table ×n` for a run of several. */
    function collapsed(statements: Array<{ name: string; sql: string }>): { names: string[]; runs: Run[] } {
      const runs: Run[] = [];
      for (const { name, sql } of statements) {
        const last = runs.at(-1);
        if (last?.name === name) {
          last.count++;
          last.texts.add(sql);
        } else runs.push({ name, count: 1, texts: new Set([sql]) });
      }
      return { names: runs.map((r) => (r.count > 1 ? `${r.name} ×${r.count}` : r.name)), runs: runs.filter((r) => r.count > 1) };
    }

    async function intakeStatements(env: Record<string, string>): Promise<Array<ReturnType<typeof collapsed>>> {
      const statements: Array<{ name: string; sql: string }> = [];
      const seen: Array<ReturnType<typeof collapsed>> = [];
      let counting = false;
      const gw = await startGateway({
        engine,
        env,
        store: { observeStatements: (kind, sql) => counting && statements.push({ name: named(kind, sql), sql: sql ?? '' }) },
      });
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
          seen.push(collapsed(statements));
        }
      } finally {
        await gw.stop();
      }
      return seen;
    }

    // PostgreSQL stores a new referral in one statement, a data-modifying WITH without BEGIN and
    // COMMIT (docs/resilience.md#intake-in-one-statement); SQLite, in process, one statement per
    // table in one transaction, and the index rows one by one through one prepared statement.
    const resourceTables = ['resources', 'resource_history'];
    const auditTables = ['audit_events', 'audit_event_entities'];
    const withAudit =
      engine === 'postgres'
        ? [['referrals', ...resourceTables, 'search_index', ...auditTables].join('+')]
        : ['begin', 'referrals', ...resourceTables, /^search_index ×\d+$/, ...auditTables, 'commit'];
    const withoutAudit =
      engine === 'postgres'
        ? [['referrals', ...resourceTables, 'search_index'].join('+')]
        : ['begin', 'referrals', ...resourceTables, /^search_index ×\d+$/, 'commit'];

    function expectStatements(seen: ReturnType<typeof collapsed>, expected: Array<string | RegExp>): void {
      expect(seen.names).to.have.length(expected.length, seen.names.join(', '));
      expected.forEach((want, i) => {
        if (typeof want === 'string') expect(seen.names[i], seen.names.join(', ')).to.equal(want);
        else expect(seen.names[i], seen.names.join(', ')).to.match(want);
      });
      // A ServiceRequest and its Task have at least a dozen index rows between them, all written by one statement text.
      for (const run of seen.runs) {
        expect(run.count, run.name).to.be.at.least(12);
        expect(run.texts.size, `${run.name}: one prepared statement`).to.equal(1);
      }
    }

    const counted = (expected: unknown[]): string =>
      engine === 'postgres' ? `${expected.length} statement` : `${expected.length - 1} statements and one per search index row`;

    it(`stores a referral with ${counted(withAudit)}: ${engine === 'postgres' ? '' : 'begin, '}the order-number claim, the resource rows, the audit rows${engine === 'postgres' ? '' : ', commit'}`, async () => {
      for (const seen of await intakeStatements({})) expectStatements(seen, withAudit);
    });

    it(`stores a referral with ${counted(withoutAudit)} with the audit trail off (AUDIT=off, development and the bench only)`, async () => {
      for (const seen of await intakeStatements({ AUDIT: 'off' })) expectStatements(seen, withoutAudit);
    });
  });
}
