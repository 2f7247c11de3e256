/**
 * The fhir-kit-client EHR adapter over real HTTP, against the stand-in EHR (Medplum's FhirRouter)
 * that the tests break on purpose.
 */
import { expect } from 'chai';
import { randomUUID } from 'node:crypto';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Bundle, Patient, ServiceRequest, Task } from 'fhir/r4.js';
import { createFhirKitEhr } from '../../../src/adapters/fhir/fhir-kit-ehr.js';
import { EhrCallError, type EhrFhir } from '../../../src/ports/ehr-fhir.js';
import { startStandInEhr, type StandInEhr } from '../../../src/sandbox/stand-in-ehr.js';

const SYSTEM = 'https://fhir.infusion-gateway.example/test-task-id';

function newIdentifier(): { system: string; value: string } {
  return { system: SYSTEM, value: `task-${randomUUID()}` };
}

function task(identifier: { system: string; value: string }, status: Task['status'], extra: Partial<Task> = {}): Task {
  return { resourceType: 'Task', status, intent: 'order', identifier: [identifier], ...extra };
}

/** The EhrCallError a promise rejects with (fails the test if it resolves or throws something else). */
async function rejectionOf(promise: Promise<unknown>): Promise<EhrCallError> {
  try {
    await promise;
  } catch (err) {
    expect(err).to.be.instanceOf(EhrCallError);
    return err as EhrCallError;
  }
  expect.fail('expected the call to fail with an EhrCallError');
}

describe('fhir-kit-client EHR adapter against the stand-in EHR', function () {
  let ehr: StandInEhr;
  let client: EhrFhir;

  before(async () => {
    ehr = await startStandInEhr();
    client = createFhirKitEhr({ tenant: 'test', baseUrl: ehr.baseUrl }, { timeoutMs: 5_000 });
  });
  afterEach(async () => {
    ehr.onRequest(undefined);
    ehr.failWith(undefined);
    await ehr.settled();
  });
  after(async () => {
    await ehr.stop();
  });

  describe('upsertByIdentifier', () => {
    it('creates once and updates afterwards: two upserts and a retry leave one resource with the latest content', async () => {
      const identifier = newIdentifier();
      const created = await client.upsertByIdentifier(task(identifier, 'requested'), identifier);
      const updated = await client.upsertByIdentifier(task(identifier, 'in-progress'), identifier);
      const retried = await client.upsertByIdentifier(task(identifier, 'in-progress'), identifier);

      expect(created.id).to.be.a('string');
      expect(updated.id).to.equal(created.id);
      expect(retried.id).to.equal(created.id);
      expect(await ehr.count('Task', { identifier: `${identifier.system}|${identifier.value}` })).to.equal(1);
      const stored = await client.read<Task>('Task', created.id!);
      expect(stored.status).to.equal('in-progress');
      const writes = ehr.requests().filter((r) => r.method !== 'GET' && r.path.startsWith('/fhir/Task'));
      expect(writes.map((r) => `${r.method} ${r.status}`)).to.deep.equal(['POST 201', 'PUT 200', 'PUT 200']);
    });

    it("keeps our content but the EHR's id, version and lastUpdated", async () => {
      const identifier = newIdentifier();
      const ours = task(identifier, 'requested', {
        id: 'gateway-local-id',
        meta: { versionId: '7', lastUpdated: '2020-01-01T00:00:00Z', tag: [{ system: 'urn:test', code: 'kept' }] },
        description: 'first',
      });
      const created = await client.upsertByIdentifier(ours, identifier);
      const updated = await client.upsertByIdentifier({ ...ours, description: 'second' }, identifier);

      expect(created.id).to.not.equal('gateway-local-id');
      expect(updated.id).to.equal(created.id);
      expect(updated.description).to.equal('second');
      expect(updated.meta?.tag).to.deep.equal([{ system: 'urn:test', code: 'kept' }]);
      expect(updated.meta?.versionId).to.not.equal('7');
      expect(updated.meta?.versionId).to.not.equal(created.meta?.versionId);
    });

    it('makes one resource when several deliveries of the same one race', async () => {
      const identifier = newIdentifier();
      const results = await Promise.all(
        [1, 2, 3, 4, 5].map((n) => client.upsertByIdentifier(task(identifier, 'requested', { description: `attempt ${n}` }), identifier)),
      );

      expect(new Set(results.map((r) => r.id)).size).to.equal(1);
      expect(await ehr.count('Task', { identifier: `${identifier.system}|${identifier.value}` })).to.equal(1);
    });

    it('creates with If-None-Exist, so a Task someone else created meanwhile is updated, not doubled', async () => {
      const identifier = newIdentifier();
      // Another writer creates the Task between our search and our create.
      ehr.onRequest(async (request) => {
        if (request.method !== 'POST') return;
        ehr.onRequest(undefined);
        await ehr.seed({
          resourceType: 'Task',
          status: 'requested',
          intent: 'order',
          identifier: [identifier],
          description: 'the other writer',
        });
      });
      ehr.clearRequests();
      const upserted = await client.upsertByIdentifier(task(identifier, 'in-progress', { description: 'ours' }), identifier);

      expect(ehr.requests().map((r) => `${r.method} ${r.status}`)).to.deep.equal(['GET 200', 'POST 200', 'PUT 200']);
      expect(ehr.requests()[1]?.ifNoneExist).to.equal(
        new URLSearchParams({ identifier: `${identifier.system}|${identifier.value}` }).toString(),
      );
      expect(upserted).to.deep.include({ status: 'in-progress', description: 'ours' });
      expect(await ehr.count('Task', { identifier: `${identifier.system}|${identifier.value}` })).to.equal(1);
    });

    it('refuses to choose when the EHR already holds two resources with the identifier', async () => {
      const identifier = newIdentifier();
      await ehr.seed(task(identifier, 'requested'));
      await ehr.seed(task(identifier, 'requested'));

      const error = await rejectionOf(client.upsertByIdentifier(task(identifier, 'in-progress'), identifier));
      expect(error.retryable).to.equal(false);
      expect(error.outcome.issue[0]?.code).to.equal('multiple-matches');
      expect(await ehr.count('Task', { identifier: `${identifier.system}|${identifier.value}` })).to.equal(2);
    });

    it('sends the bearer token when the connection has one, and no Authorization header otherwise', async () => {
      const identifier = newIdentifier();
      const withToken = createFhirKitEhr({ tenant: 'test', baseUrl: ehr.baseUrl, bearerToken: 'stand-in-token' });
      ehr.clearRequests();
      await withToken.upsertByIdentifier(task(identifier, 'requested'), identifier);
      await client.upsertByIdentifier(task(identifier, 'completed'), identifier);

      const [search, create, searchWithout, update] = ehr.requests();
      expect([search?.authorization, create?.authorization]).to.deep.equal(['Bearer stand-in-token', 'Bearer stand-in-token']);
      expect([searchWithout?.authorization, update?.authorization]).to.deep.equal([undefined, undefined]);
    });
  });

  describe('read and readReference', () => {
    let patient: Patient & { id: string };

    before(async () => {
      const identifier = { system: 'https://ehr.example/mrn', value: `mrn-${randomUUID()}` };
      patient = (await client.upsertByIdentifier<Patient>(
        { resourceType: 'Patient', identifier: [identifier], gender: 'female' },
        identifier,
      )) as Patient & { id: string };
    });

    it('reads a resource by type and id', async () => {
      const read = await client.read<Patient>('Patient', patient.id);
      expect(read).to.deep.include({ resourceType: 'Patient', id: patient.id, gender: 'female' });
    });

    it('reads relative, versioned and absolute references on the EHR', async () => {
      const relative = await client.readReference<Patient>(`Patient/${patient.id}`);
      const versioned = await client.readReference<Patient>(`Patient/${patient.id}/_history/${patient.meta!.versionId!}`);
      const absolute = await client.readReference<Patient>(`${ehr.baseUrl}/Patient/${patient.id}`);
      expect([relative.id, versioned.id, absolute.id]).to.deep.equal([patient.id, patient.id, patient.id]);
    });

    it("answers 404 with the EHR's OperationOutcome, not retryable, for a resource it does not hold", async () => {
      const error = await rejectionOf(client.read('Patient', 'not-there'));
      expect(error.httpStatus).to.equal(404);
      expect(error.retryable).to.equal(false);
      expect(error.outcome.resourceType).to.equal('OperationOutcome');
      expect(error.outcome.issue[0]?.code).to.equal('not-found');
    });

    it('does not follow a reference to another server, so the bearer token never leaves the EHR', async () => {
      ehr.clearRequests();
      const elsewhere = await rejectionOf(client.readReference(`http://127.0.0.1:9/fhir/Patient/${patient.id}`));
      const notLiteral = await rejectionOf(client.readReference('#contained-1'));

      expect(elsewhere.retryable).to.equal(false);
      expect(elsewhere.outcome.issue[0]?.code).to.equal('not-supported');
      expect(notLiteral.outcome.issue[0]?.code).to.equal('invalid');
      expect(ehr.requests()).to.deep.equal([]);
    });
  });

  describe('when the EHR fails', () => {
    it('maps a 500 to a retryable error carrying the EHR’s OperationOutcome', async () => {
      ehr.failWith('error-500');
      const identifier = newIdentifier();
      const error = await rejectionOf(client.upsertByIdentifier(task(identifier, 'requested'), identifier));

      expect(error.retryable).to.equal(true);
      expect(error.httpStatus).to.equal(500);
      expect(error.outcome.issue[0]).to.deep.include({ code: 'exception', diagnostics: 'The stand-in EHR was told to fail with 500' });
    });

    it('maps a 429 to a retryable error with the Retry-After seconds', async () => {
      ehr.failWith('throttle-429');
      const error = await rejectionOf(client.read('Task', 'any'));

      expect(error.retryable).to.equal(true);
      expect(error.httpStatus).to.equal(429);
      expect(error.retryAfterSeconds).to.equal(1);
      expect(error.outcome.issue[0]?.code).to.equal('throttled');
    });

    it("maps a 400 to a permanent error with the EHR's OperationOutcome", async () => {
      ehr.failWith('reject-400');
      const identifier = newIdentifier();
      const error = await rejectionOf(client.upsertByIdentifier(task(identifier, 'requested'), identifier));

      expect(error.retryable).to.equal(false);
      expect(error.httpStatus).to.equal(400);
      expect(error.outcome).to.deep.equal({
        resourceType: 'OperationOutcome',
        issue: [
          { severity: 'error', code: 'invalid', diagnostics: 'The stand-in EHR was told to reject this request', expression: ['Task'] },
        ],
      });
    });

    it('gives up on a hanging EHR after the configured time-out, as a retryable timeout', async () => {
      const quick = createFhirKitEhr({ tenant: 'test', baseUrl: ehr.baseUrl }, { timeoutMs: 300 });
      ehr.failWith('hang');
      const error = await rejectionOf(quick.read('Task', 'any'));

      expect(error.retryable).to.equal(true);
      expect(error.httpStatus).to.equal(undefined);
      expect(error.outcome.issue[0]?.code).to.equal('timeout');
      expect(error.outcome.issue[0]?.diagnostics).to.contain('300 ms');
    });

    it('maps refused connections to a retryable network error, and works again once the EHR is back', async () => {
      const identifier = newIdentifier();
      ehr.failWith('refuse');
      await ehr.settled();
      const error = await rejectionOf(client.upsertByIdentifier(task(identifier, 'requested'), identifier));

      expect(error.retryable).to.equal(true);
      expect(error.httpStatus).to.equal(undefined);
      expect(error.outcome.issue[0]?.code).to.equal('transient');
      expect(error.outcome.issue[0]?.diagnostics).to.match(/could not be reached \((ECONNREFUSED|ECONNRESET|UND_ERR_SOCKET)\)/);

      ehr.failWith(undefined);
      await ehr.settled();
      const created = await client.upsertByIdentifier(task(identifier, 'requested'), identifier);
      expect(created.id).to.be.a('string');
    });

    it('serves again after a run of failures that a retry loop gets through', async () => {
      const identifier = newIdentifier();
      ehr.failNext(2, 'error-500');
      const attempts: string[] = [];
      let result: Task | undefined;
      while (!result) {
        try {
          result = await client.upsertByIdentifier(task(identifier, 'requested'), identifier);
          attempts.push('ok');
        } catch (err) {
          expect(err).to.be.instanceOf(EhrCallError);
          expect((err as EhrCallError).retryable).to.equal(true);
          attempts.push(String((err as EhrCallError).httpStatus));
        }
      }
      expect(attempts).to.deep.equal(['500', '500', 'ok']);
      expect(await ehr.count('Task', { identifier: `${identifier.system}|${identifier.value}` })).to.equal(1);
    });

    it('writes no resource content into the errors it builds', async () => {
      const identifier = { system: 'https://ehr.example/mrn', value: `MRN-SECRET-${randomUUID()}` };
      const patient: Patient = {
        resourceType: 'Patient',
        identifier: [identifier],
        name: [{ family: 'Zyxwvutson', given: ['Quinella'] }],
        birthDate: '1961-02-03',
      };
      const quick = createFhirKitEhr({ tenant: 'test', baseUrl: ehr.baseUrl }, { timeoutMs: 300 });
      const errors: EhrCallError[] = [];
      ehr.failWith('hang');
      errors.push(await rejectionOf(quick.upsertByIdentifier(patient, identifier)));
      ehr.failWith('refuse');
      await ehr.settled();
      errors.push(await rejectionOf(quick.upsertByIdentifier(patient, identifier)));

      for (const error of errors) {
        const text = `${error.message} ${JSON.stringify(error.outcome)} ${String(error.cause ? JSON.stringify(error.cause) : '')}`;
        for (const phi of [identifier.value, 'Zyxwvutson', 'Quinella', '1961-02-03']) expect(text).to.not.contain(phi);
      }
    });

    it('refuses a malformed resource type or id before sending anything', async () => {
      ehr.clearRequests();
      const badType = await rejectionOf(client.read('Task/../Patient' as Task['resourceType'], '1'));
      const badId = await rejectionOf(client.read('Task', 'a/b'));
      expect([badType.retryable, badId.retryable]).to.deep.equal([false, false]);
      expect(ehr.requests()).to.deep.equal([]);
    });
  });
});

describe('fhir-kit-client EHR adapter: searchAll', function () {
  let ehr: StandInEhr;
  let client: EhrFhir;
  const ids: string[] = [];

  before(async () => {
    ehr = await startStandInEhr();
    client = createFhirKitEhr({ tenant: 'test', baseUrl: ehr.baseUrl });
    for (let i = 0; i < 8; i += 1) {
      const order: ServiceRequest = {
        resourceType: 'ServiceRequest',
        status: 'active',
        intent: 'order',
        subject: { reference: 'Patient/p1' },
        identifier: [{ system: 'urn:orders', value: `o-${i}` }],
      };
      const created = await ehr.seed(order);
      ids.push(created.id);
      // Distinct lastUpdated instants, so the order by _lastUpdated is the order of creation.
      await new Promise((resolve) => setTimeout(resolve, 3));
    }
  });
  after(async () => {
    await ehr.stop();
  });

  it('follows next links across pages, in order, handing each page over', async () => {
    ehr.clearRequests();
    const seen: string[] = [];
    const pageSizes: number[] = [];
    const pages = await client.searchAll('ServiceRequest', { _sort: '_lastUpdated', _count: '3' }, async (page: Bundle) => {
      pageSizes.push(page.entry?.length ?? 0);
      for (const entry of page.entry ?? []) seen.push(entry.resource!.id!);
    });

    expect(pages).to.equal(3);
    expect(pageSizes).to.deep.equal([3, 3, 2]);
    expect(seen).to.deep.equal(ids);
    expect(ehr.requests().map((r) => new URLSearchParams(r.query).get('_offset'))).to.deep.equal([null, '3', '6']);
  });

  it('stops after maxPages', async () => {
    const seen: string[] = [];
    const pages = await client.searchAll(
      'ServiceRequest',
      { _sort: '_lastUpdated', _count: '3' },
      async (page) => {
        for (const entry of page.entry ?? []) seen.push(entry.resource!.id!);
      },
      { maxPages: 2 },
    );

    expect(pages).to.equal(2);
    expect(seen).to.deep.equal(ids.slice(0, 6));
  });

  it('searches with _lastUpdated prefixes', async () => {
    const fourth = await client.read<ServiceRequest>('ServiceRequest', ids[3]!);
    const seen: string[] = [];
    await client.searchAll(
      'ServiceRequest',
      { _lastUpdated: `gt${fourth.meta!.lastUpdated!}`, _sort: '_lastUpdated', _count: '2' },
      async (page) => {
        for (const entry of page.entry ?? []) seen.push(entry.resource!.id!);
      },
    );
    expect(seen).to.deep.equal(ids.slice(4));
  });

  it('passes on an error thrown by the page handler as it is, and reads no further', async () => {
    ehr.clearRequests();
    const failure = new Error('the handler failed');
    let thrown: unknown;
    try {
      await client.searchAll('ServiceRequest', { _count: '3' }, async () => {
        throw failure;
      });
    } catch (err) {
      thrown = err;
    }
    expect(thrown).to.equal(failure);
    expect(ehr.requests()).to.have.length(1);
  });

  it('fails a page that the EHR fails, as an EhrCallError', async () => {
    ehr.clearRequests();
    let pagesSeen = 0;
    const promise = client.searchAll('ServiceRequest', { _count: '3' }, async () => {
      pagesSeen += 1;
      if (pagesSeen === 1) ehr.failNext(1, 'error-500');
    });
    const error = await rejectionOf(promise);
    expect(error.httpStatus).to.equal(500);
    expect(pagesSeen).to.equal(1);
  });
});

describe('fhir-kit-client EHR adapter: an EHR that answers oddly', function () {
  // A bare HTTP server for answers no real FHIR server gives on demand: a proxy's HTML error page,
  // the wrong resource type, a next link to another host.
  let server: http.Server;
  let baseUrl: string;
  const paths: string[] = [];

  before(async () => {
    server = http.createServer((req, res) => {
      paths.push(req.url ?? '');
      const fhirJson = (status: number, body: unknown, headers: Record<string, string> = {}): void => {
        res.writeHead(status, { 'content-type': 'application/fhir+json', ...headers }).end(JSON.stringify(body));
      };
      if (req.url === '/fhir/Task/proxy') {
        res.writeHead(502, { 'content-type': 'text/html' }).end('<html><body>Bad gateway</body></html>');
      } else if (req.url === '/fhir/Task/maintenance') {
        fhirJson(503, {}, { 'retry-after': new Date(Date.now() + 120_000).toUTCString() });
      } else if (req.url === '/fhir/Task/wrong-type') {
        fhirJson(200, { resourceType: 'Patient', id: 'wrong-type' });
      } else if (req.url?.startsWith('/fhir/Task?')) {
        fhirJson(200, {
          resourceType: 'Bundle',
          type: 'searchset',
          entry: [],
          link: [{ relation: 'next', url: 'http://other-host.invalid/fhir/Task?page=2' }],
        });
      } else {
        fhirJson(404, { resourceType: 'OperationOutcome', issue: [{ severity: 'error', code: 'not-found' }] });
      }
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', () => resolve()));
    baseUrl = `http://127.0.0.1:${(server.address() as AddressInfo).port}/fhir`;
  });
  after(async () => {
    server.closeAllConnections();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  });

  it("builds a retryable outcome for a 502 that is a proxy's HTML page, without its content", async () => {
    const client = createFhirKitEhr({ tenant: 'test', baseUrl });
    const error = await rejectionOf(client.read('Task', 'proxy'));

    expect(error.retryable).to.equal(true);
    expect(error.httpStatus).to.equal(502);
    expect(error.outcome.issue[0]?.code).to.equal('transient');
    expect(JSON.stringify(error.outcome)).to.not.contain('Bad gateway');
  });

  it('reads Retry-After given as an HTTP date', async () => {
    const client = createFhirKitEhr({ tenant: 'test', baseUrl });
    const error = await rejectionOf(client.read('Task', 'maintenance'));

    expect(error.retryable).to.equal(true);
    expect(error.retryAfterSeconds).to.be.within(100, 121);
  });

  it('refuses an answer of the wrong resource type, permanently', async () => {
    const client = createFhirKitEhr({ tenant: 'test', baseUrl });
    const error = await rejectionOf(client.read('Task', 'wrong-type'));

    expect(error.retryable).to.equal(false);
    expect(error.outcome.issue[0]?.diagnostics).to.contain('with a Patient instead of a Task');
  });

  it('does not follow a next link to another host', async () => {
    const client = createFhirKitEhr({ tenant: 'test', baseUrl, bearerToken: 'not-for-other-hosts' });
    paths.splice(0);
    let pages = 0;
    const error = await rejectionOf(
      client.searchAll('Task', { status: 'requested' }, async () => {
        pages += 1;
      }),
    );

    expect(pages).to.equal(1);
    expect(error.outcome.issue[0]?.code).to.equal('not-supported');
    expect(paths).to.deep.equal(['/fhir/Task?status=requested']);
  });
});
