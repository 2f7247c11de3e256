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
    expect(sameOriginPath('http://gw.internal:8080/fhir/Task?_cursor=abc&_count=50', '/fhir', 'https://console.example')).to.equal(
      '/fhir/Task?_cursor=abc&_count=50',
    );
  });

  it('maps a link behind a proxy prefix onto the base the browser uses', () => {
    expect(sameOriginPath('https://proxy.example/gateway/fhir/Task?_count=20', '/api/fhir', 'https://console.example')).to.equal(
      '/api/fhir/Task?_count=20',
    );
  });

  it('refuses a link that is not below any FHIR base', () => {
    expect(sameOriginPath('https://elsewhere.example/steal?token=1', '/fhir', 'https://console.example')).to.equal(undefined);
    expect(sameOriginPath('not a url at all', '/fhir', 'https://console.example')).to.equal(undefined);
  });
});

describe('console API: the session ends on a 401', () => {
  it('forgets the refused token and says why, so the sign-in page comes back', async () => {
    const { createApiClient, ApiError } = await import('../../console/src/api/client.js');
    const { currentSession, updateSession } = await import('../../console/src/api/session.js');
    const config = {
      fhirBase: '/fhir',
      adminBase: '/admin',
      defaultTenant: 'default',
      directoryTenant: 'network',
      siteTooFarKm: 40,
      refreshSeconds: 15,
    };
    const sent: Array<Record<string, string>> = [];
    const refusing = (async (_input: RequestInfo | URL, init?: RequestInit) => {
      sent.push(init?.headers as Record<string, string>);
      return new Response(
        JSON.stringify({
          resourceType: 'OperationOutcome',
          issue: [{ severity: 'error', code: 'login', diagnostics: 'The access token is refused: the access token has expired' }],
        }),
        { status: 401 },
      );
    }) as typeof fetch;
    updateSession({ accessToken: 'header.payload.signature', personName: 'Dana Coordinator' });
    const api = createApiClient(config, { fetch: refusing, origin: 'https://console.example' });
    const failure = await api.search('Task', []).catch((error: unknown) => error);
    expect(failure).to.be.instanceOf(ApiError);
    expect(sent[0]?.['authorization']).to.equal('Bearer header.payload.signature');
    expect(sent[0]?.['x-tenant-id']).to.equal(undefined);
    const session = currentSession();
    expect(session.accessToken).to.equal(undefined);
    expect(session.personName).to.equal(undefined);
    expect(session.notice).to.equal('Your session has ended: sign in again.');
  });
});
