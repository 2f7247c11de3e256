import { expect } from 'chai';
import { linkOf, sameOriginPath } from '../../console/src/api/links.js';
import { issueMessages, statusMessage } from '../../console/src/api/outcome.js';

describe('console API: OperationOutcome messages', () => {
  it('lists every issue most severe first, each with the FHIRPath it names', () => {
    const messages = issueMessages({
      resourceType: 'OperationOutcome',
      issue: [
        { severity: 'warning', code: 'business-rule', diagnostics: 'Late reschedule', expression: ['Appointment.start'] },
        { severity: 'error', code: 'required', details: { text: 'Parameter location is required' }, expression: ['Parameters.parameter'] },
        { severity: 'information', code: 'informational' },
      ],
    });
    expect(messages).to.deep.equal([
      { severity: 'error', text: 'Parameter location is required', where: ['Parameters.parameter'] },
      { severity: 'warning', text: 'Late reschedule', where: ['Appointment.start'] },
      { severity: 'information', text: 'The server reported informational', where: [] },
    ]);
  });

  it('says what to do for a failure without an OperationOutcome, by status', () => {
    expect(statusMessage(0)).to.match(/could not be reached/);
    expect(statusMessage(401)).to.match(/sign in again/);
    expect(statusMessage(412)).to.match(/changed this in the meantime/);
    expect(statusMessage(503)).to.match(/HTTP 503/);
  });
});

describe('console API: paging links', () => {
  const bundle = {
    resourceType: 'Bundle' as const,
    type: 'searchset' as const,
    link: [
      { relation: 'self', url: 'http://gw.internal:8080/fhir/Task?business-status=x&_count=50' },
      { relation: 'prev', url: 'http://gw.internal:8080/fhir/Task?_cursor=abc' },
    ],
  };

  it('finds a link by relation, taking prev for previous', () => {
    expect(linkOf(bundle, 'self')).to.equal('http://gw.internal:8080/fhir/Task?business-status=x&_count=50');
    expect(linkOf(bundle, 'previous')).to.equal('http://gw.internal:8080/fhir/Task?_cursor=abc');
    expect(linkOf(bundle, 'next')).to.equal(undefined);
  });

  it('turns a link written with the host the gateway saw into a path on the console origin, query kept', () => {
    expect(sameOriginPath('http://gw.internal:8080/fhir/Task?_cursor=abc&_count=50', '/fhir', 'https://console.example')).to.equal('/fhir/Task?_cursor=abc&_count=50');
  });

  it('maps a link behind a proxy prefix onto the base the browser uses', () => {
    expect(sameOriginPath('https://proxy.example/gateway/fhir/Task?_count=20', '/api/fhir', 'https://console.example')).to.equal('/api/fhir/Task?_count=20');
  });

  it('refuses a link that is not below any FHIR base', () => {
    expect(sameOriginPath('https://elsewhere.example/steal?token=1', '/fhir', 'https://console.example')).to.equal(undefined);
    expect(sameOriginPath('not a url at all', '/fhir', 'https://console.example')).to.equal(undefined);
  });
});
