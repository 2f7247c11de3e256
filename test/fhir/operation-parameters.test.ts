import { readFileSync } from 'node:fs';
import { expect } from 'chai';
import type { OperationDefinition, Parameters } from 'fhir/r4.js';
import { readOperationParameters } from '../../src/fhir/operation-parameters.js';

const definition = (name: string): OperationDefinition =>
  JSON.parse(readFileSync(new URL(`../../profiles/OperationDefinition-${name}.json`, import.meta.url), 'utf8')) as OperationDefinition;

const FIND = definition('appointment-find');
const CONFIRM_SITE = definition('confirm-site');
const BOOK = definition('appointment-book');

const post = (body: unknown) => ({ method: 'POST', query: [], body });
const get = (...query: Array<[string, string]>) => ({ method: 'GET', query, body: undefined });

describe('reading operation parameters by their OperationDefinition', () => {
  it('reads typed values from a Parameters body, one value where max is 1', () => {
    const body: Parameters = {
      resourceType: 'Parameters',
      parameter: [
        { name: 'referral', valueReference: { reference: 'ServiceRequest/sr-1' } },
        { name: 'start', valueDateTime: '2026-12-07T08:00:00-07:00' },
        { name: 'evenings-only', valueBoolean: false },
        { name: '_count', valueInteger: 3 },
      ],
    };
    const read = readOperationParameters(FIND, post(body));
    expect(read.issues).to.deep.equal([]);
    expect(read.values).to.deep.equal({
      referral: { reference: 'ServiceRequest/sr-1' },
      start: '2026-12-07T08:00:00-07:00',
      'evenings-only': false,
      _count: 3,
    });
  });

  it('reads primitives and references from the query, ignoring result parameters', () => {
    const read = readOperationParameters(
      FIND,
      get(['referral', 'ServiceRequest/sr-1'], ['weekends-only', 'true'], ['_count', '5'], ['_format', 'json']),
    );
    expect(read.issues).to.deep.equal([]);
    expect(read.values).to.deep.equal({ referral: { reference: 'ServiceRequest/sr-1' }, 'weekends-only': true, _count: 5 });
  });

  it('names every problem at once, each where it is', () => {
    const body = {
      resourceType: 'Parameters',
      parameter: [
        { name: 'start', valueString: 'next Tuesday' },
        { name: 'end', valueDateTime: '2026-13-01' },
        { name: 'chair', valueString: 'C1' },
        { name: '_count', valueInteger: 3 },
        { name: '_count', valueInteger: 4 },
      ],
    };
    const read = readOperationParameters(FIND, post(body));
    expect(read.issues.map((i) => [i.code, i.expression?.[0]])).to.deep.equal([
      ['invalid', 'Parameters.parameter[0].value'],
      ['value', 'Parameters.parameter[1].valueDateTime'],
      ['not-supported', 'Parameters.parameter[2].name'],
      ['required', 'Parameters.parameter'],
      ['structure', 'Parameters.parameter[3]'],
    ]);
    expect(read.issues.every((i) => i.severity === 'error' && typeof i.diagnostics === 'string')).to.equal(true);
  });

  it('refuses a query value that is not of the parameter type, and a resource parameter in the query', () => {
    const read = readOperationParameters(FIND, get(['referral', 'ServiceRequest/sr-1'], ['_count', 'ten'], ['evenings-only', 'yes']));
    expect(read.issues.map((i) => [i.code, i.expression?.[0]])).to.deep.equal([
      ['value', '_count'],
      ['value', 'evenings-only'],
    ]);
    const book = readOperationParameters(BOOK, get(['appt-resource', '{}']));
    expect(book.issues.map((i) => i.code)).to.deep.equal(['not-supported', 'required']);
  });

  it('takes a resource parameter only as the resource type the definition names', () => {
    const appointment = { resourceType: 'Appointment', status: 'proposed', participant: [] };
    expect(
      readOperationParameters(BOOK, post({ resourceType: 'Parameters', parameter: [{ name: 'appt-resource', resource: appointment }] }))
        .values,
    ).to.deep.equal({
      'appt-resource': appointment,
    });
    const wrong = readOperationParameters(
      BOOK,
      post({ resourceType: 'Parameters', parameter: [{ name: 'appt-resource', resource: { resourceType: 'Patient' } }] }),
    );
    expect(wrong.issues.map((i) => i.expression?.[0])).to.deep.equal(['Parameters.parameter[0].resource', 'Parameters.parameter[0]']);
  });

  it('refuses a POST body that is not a Parameters resource', () => {
    const read = readOperationParameters(CONFIRM_SITE, post({ resourceType: 'Location', id: 'x' }));
    expect(read.issues).to.have.length(1);
    expect(read.issues[0]).to.include({ code: 'invalid' });
    expect(read.issues[0]?.expression).to.deep.equal(['resourceType']);
  });

  it('requires what the definition requires', () => {
    const read = readOperationParameters(CONFIRM_SITE, post({ resourceType: 'Parameters', parameter: [] }));
    expect(read.issues.map((i) => [i.code, i.expression?.[0]])).to.deep.equal([['required', 'Parameters.parameter']]);
    expect(read.issues[0]?.diagnostics).to.contain("'location'");
  });

  it('takes any type the definition allows (the R5 allowedType extension), and says where each parameter was', () => {
    const RECORD_VERIFICATION = definition('record-verification');
    const byName = readOperationParameters(
      RECORD_VERIFICATION,
      post({
        resourceType: 'Parameters',
        parameter: [
          { name: 'outcome', valueCode: 'covered' },
          { name: 'verified-by', valueString: 'Dana' },
        ],
      }),
    );
    expect(byName.values['verified-by']).to.equal('Dana');
    expect(byName.at).to.deep.equal({ outcome: 'Parameters.parameter[0]', 'verified-by': 'Parameters.parameter[1]' });
    const byReference = readOperationParameters(
      RECORD_VERIFICATION,
      post({ resourceType: 'Parameters', parameter: [{ name: 'verified-by', valueReference: { reference: 'PractitionerRole/p-1' } }] }),
    );
    expect(byReference.values['verified-by']).to.deep.equal({ reference: 'PractitionerRole/p-1' });
    const neither = readOperationParameters(
      RECORD_VERIFICATION,
      post({ resourceType: 'Parameters', parameter: [{ name: 'verified-by', valueInteger: 7 }] }),
    );
    expect(neither.issues[0]).to.include({ code: 'invalid' });
    expect(neither.issues[0]?.expression).to.deep.equal(['Parameters.parameter[0].value']);
    expect(neither.issues[0]?.diagnostics).to.contain('valueReference, valueString');
    const locations = readOperationParameters(
      FIND,
      get(['referral', 'ServiceRequest/sr-1'], ['location', 'hin-a,hin-b'], ['location', 'Location/hin-c']),
    );
    expect(locations.values['location']).to.deep.equal(['hin-a,hin-b', 'Location/hin-c']);
    expect(locations.at['location']).to.equal('location');
  });
});
