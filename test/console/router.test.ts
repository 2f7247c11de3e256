import { expect } from 'chai';
import { pathOf, routeOf, type Route } from '../../console/src/router.js';

describe('console routes', () => {
  it('routes every page by ids only, and back to the same path', () => {
    const routes: Route[] = [
      { page: 'queue', status: 'auth-pending' },
      { page: 'referral', taskId: 'a1b2-c3.d4' },
      { page: 'schedule', taskId: 'a1b2' },
      { page: 'dead-letters' },
      { page: 'connections' },
      { page: 'sites' },
      { page: 'audit' },
      { page: 'network' },
    ];
    for (const route of routes) expect(routeOf(pathOf(route))).to.deep.equal(route);
  });

  it('opens the misroute queue at the console root, with or without the trailing slash', () => {
    expect(routeOf('/console/')).to.deep.equal({ page: 'queue', status: 'misroute-suspected' });
    expect(routeOf('/console')).to.deep.equal({ page: 'queue', status: 'misroute-suspected' });
  });

  it('does not route unknown queues or ids that are not FHIR ids (a name in a URL is never a page)', () => {
    expect(routeOf('/console/queues/everything')).to.deep.equal({ page: 'not-found' });
    expect(routeOf('/console/referrals/Marisol%20Quillfeather')).to.deep.equal({ page: 'not-found' });
  });
});
