/**
 * Bodies of the wrong shape are refused with a 400 OperationOutcome naming where, on every route
 * that takes one, before any business rule reads them. Each case here was a 500 found by the fuzz
 * suite (test/fuzz).
 */
import { expect } from 'chai';
import { fhirFetch, startGateway, type RunningGateway } from '../support/gateway.js';
import { readFixture } from '../support/fixtures.js';
import { demoHookAuthorization } from '../support/cds-client.js';

function expressionsOf(outcome: any): string[] {
  return (outcome.issue ?? []).flatMap((i: any) => i.expression ?? []);
}

describe('malformed bodies are refused, never a 500', function () {
  this.timeout(60_000);
  let gw: RunningGateway;
  let fhir: string;
  let heldTaskId: string;
  before(async () => {
    gw = await startGateway();
    fhir = `${gw.baseUrl}/fhir`;
    const created = await fhirFetch(`${fhir}/ServiceRequest`, {
      body: readFixture('referrals/misc/misroute-site-lacks-drug.service-request.json'),
    });
    const tasks = await fhirFetch(`${fhir}/Task?focus=ServiceRequest/${created.body.id}`);
    heldTaskId = tasks.body.entry.find((e: any) => e.search.mode === 'match').resource.id;
  });
  after(async () => {
    await gw.stop();
  });

  async function expectRefused(url: string, body: unknown, expression: string, method = 'POST'): Promise<void> {
    const response = await fhirFetch(url, { method, body });
    expect(response.status, JSON.stringify(response.body)).to.equal(400);
    expect(response.body.resourceType).to.equal('OperationOutcome');
    expect(expressionsOf(response.body)).to.include(expression);
  }

  it('a transaction whose Coverage has identifier as an object', async () => {
    const bundle = readFixture('referrals/infliximab/transaction-bundle.json');
    const index = bundle.entry.findIndex((e: any) => e.resource.resourceType === 'Coverage');
    bundle.entry[index].resource.identifier = bundle.entry[index].resource.identifier[0];
    await expectRefused(fhir, bundle, `Bundle.entry[${index}].resource.identifier`);
  });

  it('a transaction with entry as an object, and one with a request url that is not a string', async () => {
    const bundle = readFixture('referrals/infliximab/transaction-bundle.json');
    await expectRefused(fhir, { ...bundle, entry: bundle.entry[0] }, 'Bundle.entry');
    bundle.entry[0].request.url = true;
    await expectRefused(fhir, bundle, 'Bundle.entry[0].request.url');
  });

  it('a Coverage with identifier as an object, posted alone', async () => {
    const bundle = readFixture('referrals/infliximab/transaction-bundle.json');
    const coverage = bundle.entry.find((e: any) => e.resource.resourceType === 'Coverage').resource;
    await expectRefused(`${fhir}/Coverage`, { ...coverage, identifier: coverage.identifier[0] }, 'Coverage.identifier');
  });

  it('operation Parameters with parameter as an object ($confirm-site, $book, $hold, $find)', async () => {
    const parameter = { name: 'location', valueReference: { reference: 'Location/hin-nashville-green-hills' } };
    await expectRefused(`${fhir}/Task/${heldTaskId}/$confirm-site`, { resourceType: 'Parameters', parameter }, 'Parameters.parameter');
    for (const operation of ['$book', '$hold', '$find']) {
      await expectRefused(
        `${fhir}/Appointment/${operation}`,
        { resourceType: 'Parameters', parameter: { name: 'referral', valueReference: { reference: 'ServiceRequest/x' } } },
        'Parameters.parameter',
      );
    }
  });

  it("a coordinator's Task update with an output that is not an object", async () => {
    const task = (await fhirFetch(`${fhir}/Task/${heldTaskId}`)).body;
    await expectRefused(`${fhir}/Task/${heldTaskId}`, { ...task, output: [''] }, 'Task.output[0]', 'PUT');
  });

  it('a CDS Hooks request with objects where arrays belong, and a draft order of the wrong shape', async () => {
    const request = readFixture('cds-hooks/order-select-two-orders.json');
    const serviceUrl = `${gw.baseUrl}/cds-services/infusion-site-check-select`;
    const selections = await fhirFetch(serviceUrl, {
      body: { ...request, context: { ...request.context, selections: request.context.selections[0] } },
      headers: { 'content-type': 'application/json', ...(await demoHookAuthorization(serviceUrl)) },
    });
    expect(selections.status).to.equal(400);
    expect(expressionsOf(selections.body)).to.include('context.selections');
    const entries = await fhirFetch(`${gw.baseUrl}/cds-services/infusion-site-check-select`, {
      body: {
        ...request,
        context: { ...request.context, draftOrders: { ...request.context.draftOrders, entry: request.context.draftOrders.entry[0] } },
      },
      headers: { 'content-type': 'application/json', ...(await demoHookAuthorization(serviceUrl)) },
    });
    expect(entries.status).to.equal(400);
    expect(expressionsOf(entries.body)).to.include('context.draftOrders.entry');
    const order = structuredClone(request);
    order.context.draftOrders.entry[0].resource.code = [order.context.draftOrders.entry[0].resource.code];
    const wrongShape = await fhirFetch(`${gw.baseUrl}/cds-services/infusion-site-check-select`, {
      body: order,
      headers: { 'content-type': 'application/json', ...(await demoHookAuthorization(serviceUrl)) },
    });
    expect(wrongShape.status).to.equal(400);
    expect(expressionsOf(wrongShape.body)).to.include('context.draftOrders.entry[0].resource.code');
  });

  it('an EHR notification whose entry is an object', async () => {
    const response = await fhirFetch(`${gw.baseUrl}/payer-notifications/payer-cumberland`, {
      as: { role: 'payer', payer: 'payer-cumberland' },
      body: { resourceType: 'Bundle', type: 'history', entry: { resource: { resourceType: 'Parameters' } } },
    });
    expect(response.status).to.be.within(400, 499);
    expect(response.body.resourceType).to.equal('OperationOutcome');
  });
});
