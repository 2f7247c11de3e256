/**
 * The route table (src/http/route-table.ts) is the only place that lists routes: every route the
 * running application has registered, wherever in its stack, is a row of the table, in the
 * table's order; and a request the table does not list (another method on a listed path, a path
 * no row names) is answered 404 or 405 with an OperationOutcome, whoever asks.
 * docs/architecture.md, "Adding a route".
 */
import { expect } from 'chai';
import { findRoute, ROUTE_TABLE } from '../../src/http/route-table.js';
import { startGateway, type RunningGateway } from '../support/gateway.js';
import { accessToken } from '../support/test-clients.js';

interface StackLayer {
  name: string;
  route?: { path: string; methods: Record<string, boolean>; stack: StackLayer[] };
  handle: { stack?: StackLayer[] };
}

/** The name of every route's own handler (the last of its chain), wherever in the stack. */
function handlersIn(stack: readonly StackLayer[]): string[] {
  return stack.flatMap((layer) =>
    layer.route ? [layer.route.stack.at(-1)?.name ?? ''] : layer.handle.stack ? handlersIn(layer.handle.stack) : [],
  );
}

/** Every route registered anywhere in an Express stack, nested routers included, in order. */
function routesIn(stack: readonly StackLayer[]): string[] {
  return stack.flatMap((layer) => {
    if (layer.route) return Object.keys(layer.route.methods).map((method) => `${method.toUpperCase()} ${layer.route!.path}`);
    return layer.handle.stack ? routesIn(layer.handle.stack) : [];
  });
}

const METHODS = ['GET', 'POST', 'PUT', 'PATCH', 'DELETE', 'OPTIONS'] as const;

/** A concrete path for a row's pattern. */
function concrete(path: string): string {
  return path.replace(/\*[A-Za-z_]+/g, 'a/b').replace(/:([A-Za-z_]+)/g, 'probe-$1');
}

/** Paths no row names, some near ones that do. */
const UNLISTED_PATHS = [
  '/',
  '/admin',
  '/admin/outbox/1/delete',
  '/internal/debug',
  '/fhir/Task/probe-id/$unknown-operation',
  '/fhir/Appointment/probe-id/$book',
  '/fhir/Task/probe-id/_history/1/more',
  '/cds-services/probe/feedback/more',
  '/api-docs/a/b',
  '/payer-notifications',
  '/subscription-notifications/a/b',
  '/.well-known/openid-configuration',
];

describe('the route table is the only place that lists routes', function () {
  this.timeout(120_000);
  let gateway: RunningGateway;
  let operatorToken: string;

  before(async () => {
    gateway = await startGateway();
    operatorToken = await accessToken(gateway.baseUrl, { role: 'operator' });
  });
  after(() => gateway.stop());

  it('has registered exactly the rows of the table, in its order, and no other route', () => {
    const app = gateway.gateway.app as unknown as { router: { stack: StackLayer[] } };
    const registered = routesIn(app.router.stack);
    expect(registered).to.deep.equal(ROUTE_TABLE.map((entry) => `${entry.method} ${entry.path}`));
    // Each route ends in the function the row names (a named function, not an anonymous arrow),
    // so what answers a route is found by searching for its row's handler name.
    expect(handlersIn(app.router.stack)).to.deep.equal(ROUTE_TABLE.map((entry) => entry.handler));
  });

  it('answers 404 or 405 with an OperationOutcome to every method and path the table does not list', async () => {
    const probes: Array<{ method: string; path: string }> = [];
    const paths = [...new Set([...ROUTE_TABLE.map((entry) => concrete(entry.path)), ...UNLISTED_PATHS])];
    for (const path of paths) {
      for (const method of METHODS) if (findRoute(method, path) === undefined) probes.push({ method, path });
    }
    const wrong: string[] = [];
    for (const { method, path } of probes) {
      for (const authorization of [undefined, `Bearer ${operatorToken}`]) {
        const response = await fetch(`${gateway.baseUrl}${path}`, {
          method,
          headers: {
            accept: 'application/fhir+json',
            ...(authorization ? { authorization } : {}),
            ...(method === 'GET' || method === 'OPTIONS' ? {} : { 'content-type': 'application/fhir+json' }),
          },
          ...(method === 'GET' || method === 'OPTIONS' ? {} : { body: JSON.stringify({ resourceType: 'Parameters' }) }),
        });
        const text = await response.text();
        const body = text === '' ? undefined : (JSON.parse(text) as { resourceType?: string; issue?: unknown[] });
        const isOutcome = body?.resourceType === 'OperationOutcome' && (body.issue?.length ?? 0) > 0;
        if ((response.status !== 404 && response.status !== 405) || !isOutcome) {
          wrong.push(`${method} ${path}${authorization ? ' (operator)' : ''}: ${response.status} ${text.slice(0, 80)}`);
        }
      }
    }
    console.log(`      unlisted requests probed: ${probes.length} method × path pairs, each anonymous and as an operator`);
    expect(wrong).to.deep.equal([]);
    expect(probes.length).to.be.greaterThan(200);
  });

  it('answers 405 to an operation no row names, though the generic create row matches its path', async () => {
    for (const path of ['/fhir/$no-such-operation', '/fhir/$find']) {
      const response = await fetch(`${gateway.baseUrl}${path}`, {
        method: 'POST',
        headers: { accept: 'application/fhir+json', 'content-type': 'application/fhir+json', authorization: `Bearer ${operatorToken}` },
        body: JSON.stringify({ resourceType: 'Parameters' }),
      });
      const body = (await response.json()) as { resourceType?: string };
      expect(response.status, path).to.equal(405);
      expect(body.resourceType).to.equal('OperationOutcome');
    }
  });
});
