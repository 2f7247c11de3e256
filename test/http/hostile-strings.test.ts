/**
 * FHIR's string rules at the edge (https://hl7.org/fhir/R4/datatypes.html#string), on both
 * engines: control characters, lone surrogates and invalid UTF-8 are refused with a 400 naming
 * where they are, before anything is stored, so that PostgreSQL and SQLite see the same input.
 */
import { expect } from 'chai';
import { randomUUID } from 'node:crypto';
import { stringRuleIssues } from '../../src/fhir/validation/string-rules.js';
import { urlStringIssues } from '../../src/http/url-rules.js';
import { fhirFetch, gatewayFetch, startGateway, type Engine, type RunningGateway } from '../support/gateway.js';
import { readFixture, withOrderNumber } from '../support/fixtures.js';

describe('FHIR string rules', () => {
  it('names every string with a forbidden control character or a lone surrogate by its FHIRPath, keys included', () => {
    const issues = stringRuleIssues(
      {
        resourceType: 'Patient',
        name: [{ family: 'A\u0000B', given: ['ok', 'x\ud800'] }],
        telecom: [{ value: 'tab\tcr\rlf\n fine' }],
        ['bad\u0001key']: 1,
      },
      'Patient',
    );
    expect(issues.map((i) => i.expression?.[0])).to.deep.equal(['Patient.name[0].family', 'Patient.name[0].given[1]', 'Patient']);
    expect(issues.every((i) => i.severity === 'error')).to.equal(true);
    expect(issues[0]?.diagnostics).to.contain('U+0000');
  });

  it('accepts surrogate pairs (emoji, rare CJK) and every character from U+0020 up', () => {
    expect(stringRuleIssues({ resourceType: 'Patient', name: [{ family: '😀 𠀀 \u007f \u00a0 \uffff' }] }, 'Patient')).to.deep.equal([]);
  });

  it('checks the decoded query values and path segments of a URL', () => {
    const issues = urlStringIssues('/fhir/Patient/a%00b?name=ok&identifier=x%01y&family=%ED%A0%80');
    expect(issues.map((i) => i.expression?.[0])).to.deep.equal(['url', 'identifier']);
  });
});

for (const engine of ['sqlite', 'postgres'] as Engine[]) {
  describe(`hostile strings at the edge (${engine})`, function () {
    this.timeout(60_000);
    let gw: RunningGateway;
    let fhir: string;
    before(async () => {
      gw = await startGateway({ engine });
      fhir = `${gw.baseUrl}/fhir`;
    });
    after(async () => {
      await gw.stop();
    });

    it("refuses a NUL in the order number's system with a 400 naming it, and stores no referral, however often it is sent", async () => {
      const serviceRequest = withOrderNumber(readFixture('referrals/infliximab/service-request.json'), `nul-${randomUUID()}`);
      const order = serviceRequest.identifier.findIndex((i: any) => i.type?.coding?.[0]?.code === 'PLAC');
      serviceRequest.identifier[order].system += '\u0000';
      for (let attempt = 0; attempt < 2; attempt++) {
        const response = await fhirFetch(`${fhir}/ServiceRequest`, { body: serviceRequest });
        expect(response.status).to.equal(400);
        expect(response.body.resourceType).to.equal('OperationOutcome');
        expect(response.body.issue.map((i: any) => i.expression?.[0])).to.include(`ServiceRequest.identifier[${order}].system`);
      }
      const value = serviceRequest.identifier[order].value;
      const search = await fhirFetch(`${fhir}/ServiceRequest?identifier=${encodeURIComponent(value)}`);
      expect(search.status).to.equal(200);
      expect((search.body.entry ?? []).filter((e: any) => e.search?.mode === 'match')).to.have.length(0);
    });

    it("refuses a lone surrogate inside a transaction Bundle with the entry's path", async () => {
      const bundle = readFixture('referrals/vedolizumab/transaction-bundle.json');
      const patientEntry = bundle.entry.findIndex((e: any) => e.resource.resourceType === 'Patient');
      bundle.entry[patientEntry].resource.name[0].family = 'Doe\ud83d';
      const response = await fhirFetch(fhir, { body: bundle });
      expect(response.status).to.equal(400);
      expect(JSON.stringify(response.body.issue.map((i: any) => i.expression))).to.contain(
        `Bundle.entry[${patientEntry}].resource.name[0].family`,
      );
    });

    it('refuses a body that is not valid UTF-8', async () => {
      const text = JSON.stringify({ resourceType: 'Patient', name: [{ family: 'PLACEHOLDER' }] });
      const bytes = Buffer.concat([
        Buffer.from(text.slice(0, text.indexOf('PLACEHOLDER'))),
        Buffer.from([0xc3, 0x28]),
        Buffer.from(text.slice(text.indexOf('PLACEHOLDER') + 11)),
      ]);
      const response = await gatewayFetch(`${fhir}/Patient`, {
        method: 'POST',
        headers: { 'content-type': 'application/fhir+json' },
        body: bytes,
      });
      expect(response.status).to.equal(400);
      const outcome = (await response.json()) as any;
      expect(outcome.issue[0].diagnostics).to.contain('UTF-8');
    });

    it('refuses control characters in search values and ids with a 400, not a database error', async () => {
      const search = await fhirFetch(`${fhir}/ServiceRequest?identifier=abc%00def`);
      expect(search.status).to.equal(400);
      expect(search.body.issue[0].expression).to.deep.equal(['identifier']);
      const read = await fhirFetch(`${fhir}/Patient/abc%00def`);
      expect(read.status).to.equal(400);
      const admin = await fhirFetch(`${gw.baseUrl}/admin/outbox/abc%1Fdef`);
      expect(admin.status).to.equal(400);
    });
  });
}

describe('FHIR string rules in conditional queries (postgres)', function () {
  this.timeout(60_000);
  let gw: RunningGateway;
  before(async () => {
    gw = await startGateway({ engine: 'postgres' });
  });
  after(async () => {
    await gw.stop();
  });

  it("refuses an If-None-Exist whose percent-escapes decode to a control character, and a transaction entry's ifNoneExist alike", async () => {
    const serviceRequest = withOrderNumber(readFixture('referrals/natalizumab/service-request.json'), `ine-${randomUUID()}`);
    const single = await fhirFetch(`${gw.baseUrl}/fhir/ServiceRequest`, {
      body: serviceRequest,
      headers: { 'if-none-exist': 'code=gea%00b' },
    });
    expect(single.status).to.equal(400);
    expect(single.body.issue[0].expression).to.deep.equal(['If-None-Exist']);
    const bundle = readFixture('referrals/vedolizumab/transaction-bundle.json');
    bundle.entry[0].request.ifNoneExist = 'identifier=a%01b';
    const transaction = await fhirFetch(`${gw.baseUrl}/fhir`, { body: bundle });
    expect(transaction.status).to.equal(400);
    expect(transaction.body.resourceType).to.equal('OperationOutcome');
  });
});
