/**
 * Each base rule family (invariants from the R4 definitions, Bundle rules, narrative, core
 * extensions, calendar dates) has a failing and a passing resource in fixtures/validation/<case>/.
 * Both go to POST /fhir/$validate over HTTP: the failing one names the expected issue (the
 * constraint key first in its diagnostics), the passing one has no error at all.
 */
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { expect } from 'chai';
import { fhirFetch, startGateway, type RunningGateway } from '../support/gateway.js';
import { FIXTURES_DIR } from '../support/fixtures.js';

type Issue = { code: string; expression?: string[]; severity: string; diagnostics?: string };
interface Expected {
  description: string;
  issues: Array<{ expression: string; code: string; key?: string }>;
}

const dir = path.join(FIXTURES_DIR, 'validation');
const read = (name: string, file: string): unknown => JSON.parse(readFileSync(path.join(dir, name, file), 'utf8'));
const cases = readdirSync(dir).sort();

describe('base validation rules, each with a failing and a passing resource (fixtures/validation)', function () {
  let gw: RunningGateway;
  before(async () => {
    gw = await startGateway();
  });
  after(async () => {
    await gw.stop();
  });

  async function validate(body: unknown): Promise<Issue[]> {
    const response = await fhirFetch(`${gw.baseUrl}/fhir/$validate`, {
      body: JSON.stringify(body),
      headers: { 'content-type': 'application/fhir+json' },
    });
    expect(response.status).to.equal(200);
    expect(response.body.resourceType).to.equal('OperationOutcome');
    return response.body.issue as Issue[];
  }

  it('has a case for every family the brief names', async () => {
    expect(cases.length).to.be.at.least(15);
  });

  for (const name of cases) {
    const expected = read(name, 'expected.json') as Expected;
    it(`${name}: ${expected.description} The failing resource names the issue`, async () => {
      const errors = (await validate(read(name, 'invalid.json'))).filter((i) => i.severity === 'error');
      for (const wanted of expected.issues) {
        const found = errors.find(
          (i) =>
            i.code === wanted.code &&
            i.expression?.[0] === wanted.expression &&
            (wanted.key === undefined || i.diagnostics?.startsWith(`${wanted.key}:`)),
        );
        expect(found, `expected ${JSON.stringify(wanted)} in ${JSON.stringify(errors, null, 1)}`).to.not.equal(undefined);
      }
      // Nothing that is not there.
      for (const error of errors) expect(expected.issues.map((i) => i.expression)).to.include(error.expression?.[0]);
    });

    it(`${name}: the passing resource has no error`, async () => {
      const errors = (await validate(read(name, 'valid.json'))).filter((i) => i.severity === 'error');
      expect(errors, JSON.stringify(errors, null, 1)).to.deep.equal([]);
    });
  }
});
