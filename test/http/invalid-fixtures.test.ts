/**
 * Every invalid fixture gets a 4xx OperationOutcome naming each of its problems by FHIRPath,
 * and nothing is stored.
 */
import { expect } from 'chai';
import { fhirFetch, startGateway, type RunningGateway } from '../support/gateway.js';
import { invalidCases } from '../support/fixtures.js';

type Issue = { code: string; expression?: string[]; severity: string };

/** Whether an error issue matches an expected one: same expression and code where the fixture gives them. */
function matchesExpected(issues: readonly Issue[], wanted: { expression?: string; code?: string }): boolean {
  return issues.some(
    (i) =>
      i.severity === 'error' &&
      (wanted.expression === undefined || i.expression?.includes(wanted.expression)) &&
      (wanted.code === undefined || i.code === wanted.code),
  );
}

const STORED_TYPES = ['ServiceRequest', 'Task', 'Patient', 'Practitioner', 'PractitionerRole', 'Organization', 'Coverage'];

describe('invalid fixtures', function () {
  let gw: RunningGateway;

  before(async () => {
    gw = await startGateway();
  });
  after(async () => {
    await gw.stop();
  });

  async function storedCounts(): Promise<Record<string, number>> {
    const counts: Record<string, number> = {};
    for (const type of STORED_TYPES) {
      const search = await fhirFetch(`${gw.baseUrl}/fhir/${type}?_count=0`);
      counts[type] = search.body.total;
    }
    return counts;
  }

  for (const fixture of invalidCases()) {
    it(`${fixture.name}: ${fixture.meta.description}`, async () => {
      const before = await storedCounts();
      const response = await fhirFetch(`${gw.baseUrl}${fixture.meta.path}`, {
        method: fixture.meta.method,
        body: fixture.body,
        headers: { 'content-type': fixture.meta.contentType, ...fixture.meta.headers },
      });
      expect(response.status, JSON.stringify(response.body?.issue, null, 1)).to.equal(fixture.expected.status);
      expect(response.body.resourceType).to.equal('OperationOutcome');
      const issues: Issue[] = response.body.issue;
      for (const issue of issues.filter((i) => i.severity === 'error')) expect(issue.code, 'every error has a code').to.be.a('string');
      for (const wanted of fixture.expected.issues) {
        expect(
          matchesExpected(issues, wanted),
          `expected an error ${JSON.stringify(wanted)} in ${JSON.stringify(issues, null, 1)}`,
        ).to.equal(true);
      }
      // No problem that is not there: every error that names a place names an expected one.
      const expectedExpressions = fixture.expected.issues.map((i) => i.expression).filter((e) => e !== undefined);
      if (expectedExpressions.length === fixture.expected.issues.length) {
        for (const issue of issues.filter((i) => i.severity === 'error' && i.expression)) {
          expect(expectedExpressions, `unexpected error ${JSON.stringify(issue)}`).to.include(issue.expression?.[0]);
        }
      }
      expect(await storedCounts()).to.deep.equal(before);
    });
  }

  // $validate is the same validation as intake: the same problems, answered 200, nothing stored.
  for (const fixture of invalidCases().filter(
    (c) => c.expected.status === 422 || (c.expected.status === 400 && c.name !== 'malformed-json'),
  )) {
    it(`${fixture.name}: $validate reports the same problems`, async () => {
      const endpoint = fixture.meta.path === '/fhir/ServiceRequest' ? '/fhir/ServiceRequest/$validate' : '/fhir/$validate';
      const response = await fhirFetch(`${gw.baseUrl}${endpoint}`, {
        body: fixture.body,
        headers: { 'content-type': fixture.meta.contentType },
      });
      if (fixture.name === 'patient-posted-to-service-request') {
        expect(response.status).to.equal(400);
        return;
      }
      expect(response.status).to.equal(200);
      const issues: Issue[] = response.body.issue;
      for (const wanted of fixture.expected.issues) {
        expect(matchesExpected(issues, wanted), `expected ${JSON.stringify(wanted)} in ${JSON.stringify(issues)}`).to.equal(true);
      }
    });
  }
});
