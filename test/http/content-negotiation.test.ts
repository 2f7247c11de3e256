import { expect } from 'chai';
import { checkRequestContentType, jsonDepthExceeds, negotiateResponseType } from '../../src/http/content-negotiation.js';
import { statusOf } from '../../src/fhir/outcomes.js';

describe('content negotiation', () => {
  it('accepts FHIR JSON and plain JSON bodies, with parameters', () => {
    expect(checkRequestContentType('application/fhir+json; charset=utf-8')).to.equal(undefined);
    expect(checkRequestContentType('application/json')).to.equal(undefined);
  });

  it('refuses XML bodies with 415 and says XML is not supported', () => {
    const outcome = checkRequestContentType('application/fhir+xml');
    expect(outcome && statusOf(outcome)).to.equal(415);
    expect(outcome?.issue[0]?.diagnostics).to.match(/XML is not supported/);
  });

  it('refuses a body without Content-Type with 415', () => {
    const outcome = checkRequestContentType(undefined);
    expect(outcome && statusOf(outcome)).to.equal(415);
  });

  it('lets _format win over Accept, and answers 406 for XML', () => {
    expect(negotiateResponseType('json', 'application/fhir+xml')).to.deep.equal({ mediaType: 'application/fhir+json' });
    const xml = negotiateResponseType('xml', undefined);
    expect('outcome' in xml && statusOf(xml.outcome)).to.equal(406);
  });

  it('answers plain JSON to a client that prefers it, FHIR JSON to */*', () => {
    expect(negotiateResponseType(undefined, 'application/json')).to.deep.equal({ mediaType: 'application/json' });
    expect(negotiateResponseType(undefined, '*/*')).to.deep.equal({ mediaType: 'application/fhir+json' });
    expect(negotiateResponseType(undefined, 'application/fhir+xml;q=0.9, application/fhir+json;q=0.5')).to.deep.equal({
      mediaType: 'application/fhir+json',
    });
  });

  it('answers 406 to an Accept that only allows XML', () => {
    const result = negotiateResponseType(undefined, 'application/fhir+xml');
    expect('outcome' in result && statusOf(result.outcome)).to.equal(406);
  });

  it('measures JSON depth without recursion', () => {
    let deep: unknown = {};
    for (let i = 0; i < 100; i += 1) deep = { a: deep };
    expect(jsonDepthExceeds(deep, 64)).to.equal(true);
    expect(jsonDepthExceeds({ a: [{ b: 1 }] }, 64)).to.equal(false);
  });
});
