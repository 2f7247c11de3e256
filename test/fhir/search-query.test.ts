import { expect } from 'chai';
import { parseSearchQuery, searchsetBundle } from '../../src/fhir/search-query.js';
import { isSupportedSearchCriterion } from '../../src/fhir/search-parameters.js';

describe('parseSearchQuery', () => {
  const parse = (query: Array<[string, string]>, strict = false) =>
    parseSearchQuery('Task', query, { strict, isSupported: isSupportedSearchCriterion });

  it('turns parameters into criteria, keeping modifiers and OR values', () => {
    const parsed = parse([['focus', 'ServiceRequest/1'], ['status:not', 'cancelled'], ['business-status', 'received,rejected']]);
    expect(parsed.issues).to.deep.equal([]);
    expect(parsed.criteria).to.deep.equal([
      { name: 'focus', values: ['ServiceRequest/1'] },
      { name: 'status', modifier: 'not', values: ['cancelled'] },
      { name: 'business-status', values: ['received', 'rejected'] },
    ]);
  });

  it('reads _count (capped), _offset and _sort, and refuses bad values with their parameter named', () => {
    expect(parse([['_count', '5000'], ['_offset', '40'], ['_sort', '-_lastUpdated']])).to.deep.include({ count: 200, offset: 40, sort: ['-_lastUpdated'] });
    const bad = parse([['_count', '-1'], ['_sort', 'name']]);
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
    expect(parseSearchQuery('Patient', [['family', 'a,b\\,c']], { strict: true, isSupported: isSupportedSearchCriterion }).criteria[0]?.values).to.deep.equal(['a', 'b\\,c']);
  });
});

describe('searchsetBundle', () => {
  it('links first, previous and next pages with the client\'s own parameters', () => {
    const bundle = searchsetBundle({
      baseUrl: 'http://gw/fhir',
      resourceType: 'Task',
      query: [['status', 'received'], ['_count', '10'], ['_offset', '10']],
      resources: [],
      total: 25,
      count: 10,
      offset: 10,
      hasMore: true,
      warnings: [],
    });
    const links = Object.fromEntries((bundle.link ?? []).map((l) => [l.relation, l.url]));
    expect(links['self']).to.equal('http://gw/fhir/Task?status=received&_count=10&_offset=10');
    expect(links['previous']).to.equal('http://gw/fhir/Task?status=received&_count=10&_offset=0');
    expect(links['next']).to.equal('http://gw/fhir/Task?status=received&_count=10&_offset=20');
    expect(bundle.total).to.equal(25);
  });
});
