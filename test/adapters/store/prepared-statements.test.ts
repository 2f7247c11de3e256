/**
 * Statements prepared once per connection (src/adapters/store/prepared-statements.ts), on a real
 * PostgreSQL server: what PostgreSQL itself lists as prepared on the connection is the proof.
 */
import { expect } from 'chai';
import { Kysely, PostgresDialect } from 'kysely';
import pg from 'pg';
import { newReferralQuery, type NewReferralRows } from '../../../src/adapters/store/new-referral-statement.js';
import { prepareOnEveryConnection, preparedStatementName, preparingPool } from '../../../src/adapters/store/prepared-statements.js';
import { TEST_DATABASE_URL } from '../../support/postgres.js';

interface PreparedRow {
  name: string;
  statement: string;
  runs: number;
}

describe('PostgreSQL statements prepared once per connection', function () {
  let pool: pg.Pool;

  beforeEach(function () {
    pool = new pg.Pool({ connectionString: TEST_DATABASE_URL, max: 1 });
  });

  afterEach(async function () {
    await pool.end();
  });

  /** What PostgreSQL lists as prepared on the pool's one connection, and how often each ran. */
  async function preparedOnTheConnection(): Promise<PreparedRow[]> {
    const { rows } = await pool.query<PreparedRow>(
      'select name, statement, (generic_plans + custom_plans)::int as runs from pg_prepared_statements order by name',
    );
    return rows;
  }

  it('sends a registered text as one named statement, parsed once and run as often as asked', async function () {
    const text = `select $1::int + 1 as next /* ${this.test?.title} */`;
    prepareOnEveryConnection(text);
    const name = preparedStatementName(text);
    expect(name).to.be.a('string');
    const client = await preparingPool(pool).connect();
    try {
      const answers = [];
      for (let i = 0; i < 3; i++) answers.push(((await client.query<{ next: number }>(text, [i])).rows[0] as { next: number }).next);
      expect(answers).to.deep.equal([1, 2, 3]);
    } finally {
      client.release();
    }
    expect(await preparedOnTheConnection()).to.deep.include({ name, statement: text, runs: 3 });
  });

  it('runs any other text unnamed, preparing nothing', async function () {
    const client = await preparingPool(pool).connect();
    try {
      const { rows } = await client.query<{ two: number }>('select $1::int * 2 as two', [1]);
      expect(rows).to.deep.equal([{ two: 2 }]);
    } finally {
      client.release();
    }
    expect(await preparedOnTheConnection()).to.deep.equal([]);
  });

  describe('the new-referral statement', function () {
    const compiler = new Kysely<unknown>({ dialect: new PostgresDialect({ pool: () => Promise.reject(new Error('compiling only')) }) });

    /** The rows of a referral with `order` as its number, with or without audit rows. */
    function rowsOf(order: string, audited: boolean): NewReferralRows {
      return {
        claim: { rows: [{ id: `r-${order}`, identifier_value: order }], columns: ['id', 'identifier_value'] },
        resources: { rows: [{ id: `sr-${order}`, content: `{"id":"sr-${order}"}` }], columns: ['id', 'content'], jsonColumns: ['content'] },
        searchIndex: { rows: [], columns: ['resource_id'] },
        outboxMessages: { rows: [], columns: ['id'] },
        auditEvents: { rows: audited ? [{ id: `a-${order}` }] : [], columns: ['id'] },
        auditEventEntities: { rows: [], columns: ['event_id'] },
      } as unknown as NewReferralRows;
    }

    it('has one text for every referral of a shape, registered to be prepared, and its rows as parameters', function () {
      const first = newReferralQuery(rowsOf('A-1', true), compiler);
      const second = newReferralQuery(rowsOf('B-2', true), compiler);
      expect(second.sql).to.equal(first.sql);
      expect(preparedStatementName(first.sql)).to.be.a('string');
      expect(first.parameters).to.deep.equal([
        '[{"id":"r-A-1","identifier_value":"A-1"}]',
        '[{"id":"sr-A-1","content":{"id":"sr-A-1"}}]',
        '[{"id":"a-A-1"}]',
      ]);
      expect(second.parameters[0]).to.equal('[{"id":"r-B-2","identifier_value":"B-2"}]');
    });

    it('has another text for a shape with other tables, each text naming its own tables only', function () {
      const audited = newReferralQuery(rowsOf('A-1', true), compiler);
      const unaudited = newReferralQuery(rowsOf('A-1', false), compiler);
      expect(unaudited.sql).not.to.equal(audited.sql);
      expect(audited.sql).to.contain('"audit_events"');
      expect(unaudited.sql).not.to.contain('"audit_events"');
      expect(unaudited.parameters).to.have.length(2);
      expect(preparedStatementName(unaudited.sql)).not.to.equal(preparedStatementName(audited.sql));
    });
  });
});
