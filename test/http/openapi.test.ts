/**
 * The API description, over real HTTP: /openapi.json is a valid OpenAPI 3.1 document generated
 * from the CapabilityStatement and the OperationDefinitions, it lists everything the
 * CapabilityStatement and the routes outside FHIR declare, and every path it lists is served
 * (none falls through to the server's "unknown path" or "not supported" answers).
 */
import { expect } from 'chai';
import { Validator } from '@seriousme/openapi-schema-validator';
import type { CapabilityStatement } from 'fhir/r4.js';
import { PLAIN_ROUTES } from '../../src/http/plain-routes.js';
import { ROUTE_TABLE } from '../../src/http/route-table.js';
import { startGateway, type RunningGateway } from '../support/gateway.js';

describe('the API description (OpenAPI 3.1)', function () {
  this.timeout(60_000);
  let gateway: RunningGateway;
  let document: any;
  let capabilities: CapabilityStatement;

  before(async () => {
    gateway = await startGateway();
    document = await (await fetch(`${gateway.baseUrl}/openapi.json`)).json();
    capabilities = (await (await fetch(`${gateway.baseUrl}/fhir/metadata`)).json()) as CapabilityStatement;
  });
  after(async () => {
    await gateway.stop();
  });

  it('is a valid OpenAPI 3.1 document', async () => {
    const result = await new Validator().validate(document);
    expect(result.errors ?? [], JSON.stringify(result.errors, null, 1)?.slice(0, 2000)).to.deep.equal([]);
    expect(result.valid).to.equal(true);
    expect(document.openapi).to.equal('3.1.0');
    expect(document.info.version).to.equal(capabilities.software?.version);
  });

  it('lists every interaction and operation the CapabilityStatement declares, and every route outside FHIR', () => {
    const expected: Array<[string, string]> = [['/fhir/metadata', 'get']];
    for (const resource of capabilities.rest?.[0]?.resource ?? []) {
      const codes = new Set((resource.interaction ?? []).map((i) => i.code));
      if (codes.has('search-type')) expected.push([`/fhir/${resource.type}`, 'get']);
      if (codes.has('create')) expected.push([`/fhir/${resource.type}`, 'post']);
      if (codes.has('read')) expected.push([`/fhir/${resource.type}/{id}`, 'get']);
      if (codes.has('update')) expected.push([`/fhir/${resource.type}/{id}`, 'put']);
      for (const operation of resource.operation ?? []) {
        const declared = Object.keys(document.paths).filter(
          (p) => p.startsWith(`/fhir/${resource.type}/`) && p.endsWith(`/$${operation.name}`),
        );
        expect(declared.length, `${resource.type} $${operation.name}`).to.be.greaterThan(0);
      }
    }
    for (const route of PLAIN_ROUTES) expected.push([route.path.replace(/[:*]([A-Za-z_]+)/g, '{$1}'), route.method]);
    const missing = expected.filter(([path, method]) => document.paths[path]?.[method] === undefined);
    expect(missing).to.deep.equal([]);
    expect(expected.length).to.be.greaterThan(40);
  });

  it('lists every route of the route table', () => {
    const toOpenApi = (path: string): string => path.replace(/\*([A-Za-z_]+)/g, '{$1}').replace(/:([A-Za-z_]+)/g, '{$1}');
    const generic = /\{type\}/;
    const missing = ROUTE_TABLE.filter((entry) => !generic.test(toOpenApi(entry.path)))
      .filter((entry) => document.paths[toOpenApi(entry.path)]?.[entry.method.toLowerCase()] === undefined)
      .map((entry) => `${entry.method} ${entry.path}`);
    expect(missing).to.deep.equal([]);
    // The generic FHIR routes (/fhir/:type: search, create, read, update, history, version, and
    // $validate) stand for each type of the CapabilityStatement, checked by the test above.
    expect(ROUTE_TABLE.filter((entry) => generic.test(toOpenApi(entry.path))).length).to.equal(7);
  });

  it('lists only paths the server serves', async () => {
    const unserved: string[] = [];
    let checked = 0;
    for (const [path, item] of Object.entries<any>(document.paths)) {
      for (const method of Object.keys(item)) {
        const concrete = path.replace('{file}', 'swagger-ui.css').replace('{rest}', 'queues/scheduled');
        const url = `${gateway.baseUrl}${concrete.replace(/\{[A-Za-z_]+\}/g, 'no-such-id')}`;
        const withBody = method === 'post' || method === 'put';
        const init: RequestInit = {
          method: method.toUpperCase(),
          headers: { accept: 'application/fhir+json', ...(withBody ? { 'content-type': 'application/fhir+json' } : {}) },
          ...(withBody ? { body: JSON.stringify({ resourceType: 'Parameters' }) } : {}),
        };
        const response = await fetch(url, init);
        const text = await response.text();
        checked += 1;
        if (response.status === 405 || (response.status === 404 && text.includes(`Path ${new URL(url).pathname}`)))
          unserved.push(`${method.toUpperCase()} ${path}: ${response.status}`);
      }
    }
    expect(unserved).to.deep.equal([]);
    expect(checked).to.be.greaterThan(40);
  });

  it('renders the reference page from the installed package, same-origin only', async () => {
    const page = await fetch(`${gateway.baseUrl}/api-docs`);
    expect(page.status).to.equal(200);
    expect(page.headers.get('content-security-policy')).to.contain("script-src 'self'");
    const html = await page.text();
    for (const asset of [...html.matchAll(/(?:src|href)="(\/api-docs\/[^"]+)"/g)].map((m) => m[1]!)) {
      const response = await fetch(`${gateway.baseUrl}${asset}`);
      expect(response.status, asset).to.equal(200);
      await response.arrayBuffer();
    }
    expect((await fetch(`${gateway.baseUrl}/api-docs/package.json`)).status).to.equal(404);
  });
});
