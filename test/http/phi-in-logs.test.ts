/**
 * No PHI in logs: drive every path that touches patient data (intake single and bundled, duplicates,
 * refusals, searches with PHI in the query, reads) with logging at debug, then look for every
 * name, birth date, identifier, phone and address of the fixtures in what was logged.
 */
import { expect } from 'chai';
import { randomUUID } from 'node:crypto';
import { capturedLogLines } from '../support/log-capture.js';
import { fhirFetch, startGateway, type RunningGateway } from '../support/gateway.js';
import { invalidCases, readFixture, referralFixtureDrugs, withOrderNumber } from '../support/fixtures.js';
import { phiFoundIn, phiMarkers } from '../support/phi.js';

describe('PHI never reaches the logs', function () {
  let gw: RunningGateway;
  before(async () => {
    gw = await startGateway();
  });
  after(async () => {
    await gw.stop();
  });

  it('has markers to look for, so the check below can fail', () => {
    expect(phiMarkers().length).to.be.at.least(10);
    expect(phiFoundIn([`{"message":"x","oops":"${phiMarkers()[0]}"}`])).to.have.length(1);
  });

  it("logs none of the fixtures' names, birth dates, identifiers, phones or addresses while serving them", async () => {
    const firstLine = capturedLogLines().length;
    const fhir = `${gw.baseUrl}/fhir`;
    for (const drug of referralFixtureDrugs()) {
      const single = withOrderNumber(readFixture(`referrals/${drug}/service-request.json`), `phi-${randomUUID()}`);
      expect((await fhirFetch(`${fhir}/ServiceRequest`, { body: single })).status).to.equal(201);
      expect((await fhirFetch(`${fhir}/ServiceRequest`, { body: single })).status).to.equal(200);
      const bundle = readFixture(`referrals/${drug}/transaction-bundle.json`);
      expect((await fhirFetch(fhir, { body: bundle })).status).to.equal(200);
    }
    for (const fixture of invalidCases()) {
      await fhirFetch(`${gw.baseUrl}${fixture.meta.path}`, {
        method: fixture.meta.method,
        body: fixture.body,
        headers: { 'content-type': fixture.meta.contentType },
      });
    }
    for (const marker of phiMarkers().slice(0, 10)) {
      await fhirFetch(`${fhir}/Patient?name=${encodeURIComponent(marker)}`);
      await fhirFetch(`${fhir}/Patient?identifier=${encodeURIComponent(marker)}`);
      await fhirFetch(`${fhir}/Patient/${encodeURIComponent(marker)}`);
    }
    const lines = capturedLogLines().slice(firstLine);
    expect(lines.length, 'the requests above were logged').to.be.greaterThan(20);
    expect(phiFoundIn(lines)).to.deep.equal([]);
  });
});
