import { expect } from 'chai';
import {
  MAX_OFFSET,
  MAX_SEARCH_PARAMETERS,
  MAX_VALUES_PER_PARAMETER,
  parseSearchQuery,
  searchsetBundle,
} from '../../src/fhir/search-query.js';
import { isSupportedSearchCriterion } from '../../src/fhir/search-parameters.js';

describe('parseSearchQuery', () => {
  const parse = (query: Array<[string, string]>, strict = false) =>
    parseSearchQuery('Task', query, { strict, isSupported: isSupportedSearchCriterion });

  it('turns parameters into criteria, keeping modifiers and OR values', () => {
    const parsed = parse([
      ['focus', 'ServiceRequest/1'],
      ['status:not', 'cancelled'],
      ['business-status', 'received,rejected'],
    ]);
    expect(parsed.issues).to.deep.equal([]);
    expect(parsed.criteria).to.deep.equal([
      { name: 'focus', values: ['ServiceRequest/1'] },
      { name: 'status', modifier: 'not', values: ['cancelled'] },
      { name: 'business-status', values: ['received', 'rejected'] },
    ]);
  });

  it('reads _count (capped), _offset and _sort, and refuses bad values with their parameter named', () => {
    expect(
      parse([
        ['_count', '5000'],
        ['_offset', '40'],
        ['_sort', '-_lastUpdated'],
      ]),
    ).to.deep.include({ count: 200, offset: 40, sort: ['-_lastUpdated'] });
    const bad = parse([
      ['_count', '-1'],
      ['_sort', 'name'],
    ]);
    expect(bad.issues.map((i) => [i.severity, i.expression?.[0]])).to.deep.equal([
      ['error', '_count'],
      ['error', '_sort'],
    ]);
  });

  it('warns about unknown parameters, or refuses them when strict', () => {
    expect(parse([['colour', 'red']]).issues[0]).to.include({ severity: 'warning' });
    expect(parse([['colour', 'red']], true).issues[0]).to.include({ severity: 'error' });
    expect(parse([['_include', 'Task:focus']]).issues[0]?.diagnostics).to.match(/not supported/);
  });
});

describe('OR values', () => {
  it('splits on commas but not on escaped ones, leaving the escape for the value parser', () => {
    expect(
      parseSearchQuery('Patient', [['family', 'a,b\\,c']], { strict: true, isSupported: isSupportedSearchCriterion }).criteria[0]?.values,
    ).to.deep.equal(['a', 'b\\,c']);
  });
});

describe('searchsetBundle', () => {
  it("links first, previous and a keyset next page with the client's own parameters", async () => {
    const bundle = searchsetBundle({
      baseUrl: 'http://gw/fhir',
      resourceType: 'Task',
      query: [
        ['status', 'received'],
        ['_count', '10'],
        ['_offset', '10'],
      ],
      resources: [],
      total: 25,
      count: 10,
      offset: 10,
      nextCursor: 'abc',
      warnings: [],
    });
    const links = Object.fromEntries((bundle.link ?? []).map((l) => [l.relation, l.url]));
    expect(links['self']).to.equal('http://gw/fhir/Task?status=received&_count=10&_offset=10');
    expect(links['first']).to.equal('http://gw/fhir/Task?status=received&_count=10');
    expect(links['previous']).to.equal('http://gw/fhir/Task?status=received&_count=10');
    expect(links['next']).to.equal('http://gw/fhir/Task?status=received&_count=10&_cursor=abc');
    expect(bundle.total).to.equal(25);
  });

  it('repeats the cursor in self, has no previous link and no next on the last page', async () => {
    const bundle = searchsetBundle({
      baseUrl: 'http://gw/fhir',
      resourceType: 'Task',
      query: [
        ['status', 'received'],
        ['_cursor', 'xyz'],
      ],
      resources: [],
      count: 20,
      offset: 0,
      cursor: 'xyz',
      warnings: [],
    });
    const relations = (bundle.link ?? []).map((l) => l.relation);
    expect(relations).to.deep.equal(['self', 'first']);
    expect(bundle.link?.[0]?.url).to.equal('http://gw/fhir/Task?status=received&_count=20&_cursor=xyz');
    expect(bundle.total).to.equal(undefined);
  });
});

describe('limits and _total', () => {
  const parse = (query: Array<[string, string]>) =>
    parseSearchQuery('Patient', query, { strict: true, isSupported: isSupportedSearchCriterion });

  it('refuses _offset above the cap, naming the limit', async () => {
    const parsed = parse([['_offset', String(MAX_OFFSET + 1)]]);
    expect(parsed.issues).to.have.length(1);
    expect(parsed.issues[0]?.code).to.equal('too-costly');
    expect(parsed.issues[0]?.diagnostics).to.contain(String(MAX_OFFSET));
    expect(parsed.issues[0]?.expression).to.deep.equal(['_offset']);
    expect(parse([['_offset', String(MAX_OFFSET)]]).issues).to.deep.equal([]);
    expect(parse([['_offset', '1e20']]).issues[0]?.code).to.equal('too-costly');
  });

  it('refuses a search repeated beyond the parameter cap, and too many ORed values', async () => {
    const repeated = parse(Array.from({ length: 200 }, (_, i): [string, string] => ['name', String(i)]));
    expect(repeated.issues.map((i) => i.diagnostics)).to.deep.equal([
      `A search may have at most ${MAX_SEARCH_PARAMETERS} search parameters (this one has 200)`,
    ]);
    const ored = parse([['name', Array.from({ length: MAX_VALUES_PER_PARAMETER + 1 }, (_, i) => String(i)).join(',')]]);
    expect(ored.issues[0]?.expression).to.deep.equal(['name']);
    expect(parse(Array.from({ length: MAX_SEARCH_PARAMETERS }, (_, i): [string, string] => ['name', String(i)])).issues).to.deep.equal([]);
  });

  it('reads _total, none by default, and refuses other values', async () => {
    expect(parse([]).total).to.equal('none');
    expect(parse([['_total', 'accurate']]).total).to.equal('accurate');
    expect(parse([['_total', 'estimate']]).total).to.equal('estimate');
    expect(parse([['_total', 'all']]).issues[0]?.expression).to.deep.equal(['_total']);
  });

  it('keeps the cursor, and refuses it beside an _offset', async () => {
    expect(parse([['_cursor', 'abc']]).cursor).to.equal('abc');
    expect(
      parse([
        ['_cursor', 'abc'],
        ['_offset', '20'],
      ]).issues,
    ).to.have.length(1);
  });
});
