/**
 * Hostile requests for every route that takes a body or parameters, as fast-check arbitraries:
 * realistic documents from fixtures/ with a few mutations each (wrong JSON types, arrays for
 * objects and back, deleted elements, control characters, lone surrogates, huge numbers), search
 * and operation parameters with odd names and values, and raw bytes that are not JSON or UTF-8.
 *
 * Every request goes out through sendFuzzRequest, and its headers through fuzzHeaders: the one
 * place to add credentials (a bearer token) when the gateway requires them.
 */
import { demoHookAuthorization } from '../support/cds-client.js';
import fc from 'fast-check';
import { randomUUID } from 'node:crypto';
import { readFixture } from '../support/fixtures.js';
import { attachTestToken } from '../support/test-clients.js';

export interface FuzzRequest {
  /** Which route the request exercises, for the tallies. */
  route: string;
  method: 'GET' | 'POST' | 'PUT';
  /** Path and query, already percent-encoded (possibly wrongly, on purpose). */
  url: string;
  /** A JSON value (sent as JSON text) or raw bytes. */
  body?: { json: unknown } | { raw: Uint8Array<ArrayBuffer> };
  headers?: Record<string, string>;
}

export interface FuzzAnswer {
  status: number;
  /** What came back as the body's resourceType (OperationOutcome for refusals), when JSON. */
  resourceType?: string;
  /** The request did not answer within the time limit. */
  hung: boolean;
}

/** Ids the arbitraries can aim at: real ones from the set-up and garbage. */
export interface FuzzTargets {
  taskIds: string[];
  serviceRequestIds: string[];
  heldTaskIds: string[];
}

/** The headers of every fuzzed request, with a test client's token of a role the route may serve. */
export async function fuzzHeaders(url: string, method: string, extra: Record<string, string> = {}): Promise<Record<string, string>> {
  const headers = { accept: 'application/fhir+json', ...extra };
  await attachTestToken(url, method, headers);
  return headers;
}

/** Sends one fuzzed request; a request that outlives `timeoutMs` counts as a hang, not an error. */
export async function sendFuzzRequest(baseUrl: string, request: FuzzRequest, options: { timeoutMs: number }): Promise<FuzzAnswer> {
  const headers = await fuzzHeaders(`${baseUrl}${request.url}`, request.method, request.headers);
  // Hook calls carry the CDS client's signed JWT (demo issuer), so that fuzzing reaches the service behind it.
  const hookCall = /^\/cds-services\/([^/?]+)/.exec(request.url);
  if (request.method === 'POST' && hookCall) Object.assign(headers, await demoHookAuthorization(`${baseUrl}/cds-services/${hookCall[1]}`));
  let body: string | Uint8Array<ArrayBuffer> | undefined;
  if (request.body !== undefined) {
    body = 'json' in request.body ? JSON.stringify(request.body.json) : request.body.raw;
    headers['content-type'] ??= 'application/fhir+json';
  }
  try {
    const response = await fetch(`${baseUrl}${request.url}`, {
      method: request.method,
      headers,
      ...(body !== undefined ? { body } : {}),
      signal: AbortSignal.timeout(options.timeoutMs),
    });
    const text = await response.text();
    let resourceType: string | undefined;
    try {
      resourceType = (JSON.parse(text) as { resourceType?: string } | null)?.resourceType;
    } catch {
      resourceType = undefined;
    }
    return { status: response.status, ...(resourceType !== undefined ? { resourceType } : {}), hung: false };
  } catch (error) {
    if ((error as Error).name === 'TimeoutError') return { status: 0, hung: true };
    throw error;
  }
}

// ---------------------------------------------------------------------------------------------
// Values

const NASTY_STRINGS = [
  '\u0000',
  'a\u0000b',
  '\u0001\u001f',
  '\ud800',
  'x\udfff',
  '\ud83d\ude00',
  '',
  ' ',
  '\t\r\n',
  '1e20',
  '-1',
  '0',
  'NaN',
  'null',
  'true',
  '%00',
  '%',
  '../../etc/passwd',
  "'; drop table resources; --",
  'Patient/',
  'ServiceRequest/' + 'x'.repeat(80),
  'urn:uuid:not-a-uuid',
  'http://',
  '2026-02-30',
  '9999-12-31T23:59:60Z',
  '2026-13',
  'x'.repeat(5_000),
  '\u202e\u200b',
];

const stringValue: fc.Arbitrary<string> = fc.oneof(
  { weight: 3, arbitrary: fc.constantFrom(...NASTY_STRINGS) },
  { weight: 2, arbitrary: fc.string({ unit: 'binary', maxLength: 24 }) },
  { weight: 1, arbitrary: fc.string({ maxLength: 12 }) },
);

const numberValue: fc.Arbitrary<number> = fc.oneof(
  fc.constantFrom(0, -1, 1e20, -1e20, 2 ** 53, 0.5, 1e308, -0),
  fc.integer(),
  fc.double({ noNaN: true, noDefaultInfinity: true }),
);

/** A JSON value where another belongs. */
const hostileValue: fc.Arbitrary<unknown> = fc.oneof(
  { weight: 4, arbitrary: stringValue },
  { weight: 2, arbitrary: numberValue },
  { weight: 1, arbitrary: fc.boolean() },
  { weight: 1, arbitrary: fc.constant(null) },
  { weight: 1, arbitrary: fc.constantFrom({}, [], [null], [{}], [[]], { resourceType: 'Patient' }, { reference: 'Patient/x' }) },
  { weight: 1, arbitrary: fc.jsonValue({ maxDepth: 2 }) },
);

// ---------------------------------------------------------------------------------------------
// Mutations of a document

type Segment = string | number;

function pathsOf(node: unknown, prefix: Segment[] = [], out: Segment[][] = []): Segment[][] {
  out.push(prefix);
  if (Array.isArray(node)) node.forEach((item, index) => pathsOf(item, [...prefix, index], out));
  else if (typeof node === 'object' && node !== null)
    for (const [key, value] of Object.entries(node)) pathsOf(value, [...prefix, key], out);
  return out;
}

type Mutation =
  | { kind: 'replace'; at: number; value: unknown }
  | { kind: 'delete'; at: number }
  | { kind: 'wrap-in-array'; at: number }
  | { kind: 'array-to-object'; at: number }
  | { kind: 'add-element'; at: number; name: string; value: unknown }
  | { kind: 'duplicate-entries'; at: number };

const mutation: fc.Arbitrary<Mutation> = fc.oneof(
  { weight: 5, arbitrary: fc.record({ kind: fc.constant('replace' as const), at: fc.nat(), value: hostileValue }) },
  { weight: 2, arbitrary: fc.record({ kind: fc.constant('delete' as const), at: fc.nat() }) },
  { weight: 2, arbitrary: fc.record({ kind: fc.constant('wrap-in-array' as const), at: fc.nat() }) },
  { weight: 2, arbitrary: fc.record({ kind: fc.constant('array-to-object' as const), at: fc.nat() }) },
  {
    weight: 1,
    arbitrary: fc.record({
      kind: fc.constant('add-element' as const),
      at: fc.nat(),
      name: fc.oneof(
        fc.constantFrom('id', 'resourceType', 'extension', 'contained', 'meta', '_family', 'modifierExtension', 'a\u0000b'),
        fc.string({ maxLength: 8 }),
      ),
      value: hostileValue,
    }),
  },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('duplicate-entries' as const), at: fc.nat() }) },
);

function applyMutation(document: unknown, change: Mutation): unknown {
  const paths = pathsOf(document);
  const path = paths[change.at % paths.length]!;
  if (path.length === 0) {
    // The document itself.
    if (change.kind === 'replace') return change.value;
    if (change.kind === 'wrap-in-array') return [document];
    return document;
  }
  const parentPath = path.slice(0, -1);
  const key = path[path.length - 1]!;
  const parent = parentPath.reduce<any>((node, segment) => node[segment], document);
  const current = parent[key];
  switch (change.kind) {
    case 'replace':
      parent[key] = change.value;
      break;
    case 'delete':
      if (Array.isArray(parent)) parent.splice(Number(key), 1);
      else delete parent[key];
      break;
    case 'wrap-in-array':
      parent[key] = [current];
      break;
    case 'array-to-object':
      if (Array.isArray(current)) parent[key] = current[0] ?? {};
      else if (typeof current === 'object' && current !== null) parent[key] = { ...current, 0: current };
      break;
    case 'add-element':
      if (typeof current === 'object' && current !== null && !Array.isArray(current))
        (current as Record<string, unknown>)[change.name] = change.value;
      break;
    case 'duplicate-entries':
      if (Array.isArray(current)) parent[key] = [...current, ...current];
      break;
  }
  return document;
}

/** The document with one to three mutations; sometimes (1 in 12) untouched, so valid requests go through too. */
function mutated(document: unknown): fc.Arbitrary<unknown> {
  return fc
    .oneof({ weight: 1, arbitrary: fc.constant(undefined) }, { weight: 11, arbitrary: fc.array(mutation, { minLength: 1, maxLength: 3 }) })
    .map((changes) => {
      let copy: unknown = structuredClone(document);
      for (const change of changes ?? []) copy = applyMutation(copy, change);
      // A fresh order number for each intake keeps deduplication from hiding the write path.
      return freshOrderNumbers(copy);
    });
}

function freshOrderNumbers(document: unknown): unknown {
  const visit = (node: unknown): void => {
    if (Array.isArray(node)) node.forEach(visit);
    else if (typeof node === 'object' && node !== null) {
      const record = node as Record<string, unknown>;
      if (record.resourceType === 'ServiceRequest' && Array.isArray(record.identifier)) {
        for (const identifier of record.identifier) {
          if (typeof identifier === 'object' && identifier !== null && typeof (identifier as { value?: unknown }).value === 'string') {
            (identifier as { value: string }).value = `fz-${randomUUID()}`;
          }
        }
      }
      Object.values(record).forEach(visit);
    }
  };
  visit(document);
  return document;
}

// ---------------------------------------------------------------------------------------------
// URLs

/** Percent-encodes UTF-8 bytes (a lone surrogate becomes U+FFFD's bytes, as any client would send). */
function encode(text: string): string {
  return [...Buffer.from(text, 'utf8')]
    .map((b) =>
      /[A-Za-z0-9\-._~]/.test(String.fromCharCode(b)) ? String.fromCharCode(b) : `%${b.toString(16).toUpperCase().padStart(2, '0')}`,
    )
    .join('');
}

/** A URL part: well encoded, or raw fragments no encoder would produce (bad escapes, raw NUL escapes). */
const urlPart: fc.Arbitrary<string> = fc.oneof(
  { weight: 4, arbitrary: stringValue.map(encode) },
  { weight: 1, arbitrary: fc.constantFrom('%', '%ZZ', '%E0', '%ED%A0%80', '%C0%AF', '%00', '%0A', '%25', '%2F', '..', '+') },
);

const SEARCH_PARAMETERS = [
  'identifier',
  'status',
  'business-status',
  'focus',
  'owner',
  'patient',
  'subject',
  'beneficiary',
  'payor',
  'name',
  'family',
  'given',
  'birthdate',
  'address-postalcode',
  'code',
  'authored',
  '_id',
  '_lastUpdated',
  '_count',
  '_offset',
  '_sort',
  '_total',
  '_summary',
  '_elements',
  '_include',
  '_revinclude',
  '_format',
  '_pretty',
  'unknown-param',
  'location',
  'organization',
  'type',
  'intent',
  'requester',
  'performer',
  'service-type',
  'specialty',
  'address-city',
  'near',
  'partof',
  'period',
  'date',
];
const MODIFIERS = [
  '',
  '',
  '',
  ':exact',
  ':contains',
  ':missing',
  ':not',
  ':text',
  ':below',
  ':above',
  ':of-type',
  ':identifier',
  ':Patient',
  ':',
];
const PREFIXES = ['', '', 'eq', 'ne', 'gt', 'lt', 'ge', 'le', 'sa', 'eb', 'ap'];
const SEARCH_VALUES = [
  'verifying-coverage',
  'misroute-suspected',
  'active',
  'ServiceRequest/x',
  'Patient/p1',
  'http://sys|val',
  '|val',
  'sys|',
  '|',
  '2026-01-01',
  '2026',
  '2026-01-01T00:00:00Z',
  '1e20',
  '-5',
  '0',
  '1000000',
  'a,b,c',
  'true',
  'Ab',
  '_lastUpdated',
  '-_id',
];

const searchParameter: fc.Arbitrary<string> = fc
  .record({
    name: fc.oneof({ weight: 5, arbitrary: fc.constantFrom(...SEARCH_PARAMETERS) }, { weight: 1, arbitrary: urlPart }),
    modifier: fc.constantFrom(...MODIFIERS),
    prefix: fc.constantFrom(...PREFIXES),
    value: fc.oneof({ weight: 3, arbitrary: fc.constantFrom(...SEARCH_VALUES).map(encode) }, { weight: 2, arbitrary: urlPart }),
  })
  .map(({ name, modifier, prefix, value }) => `${name}${modifier}=${prefix}${value}`);

const query: fc.Arbitrary<string> = fc
  .array(searchParameter, { maxLength: 5 })
  .map((parts) => (parts.length === 0 ? '' : `?${parts.join('&')}`));

const READABLE_TYPES = [
  'ServiceRequest',
  'Task',
  'Appointment',
  'Patient',
  'Practitioner',
  'PractitionerRole',
  'Coverage',
  'Location',
  'HealthcareService',
  'Organization',
  'OrganizationAffiliation',
  'InsurancePlan',
  'Endpoint',
];
const WRITABLE_TYPES = ['Patient', 'Practitioner', 'PractitionerRole', 'Coverage', 'Location', 'Organization', 'HealthcareService'];
const resourceTypeInUrl: fc.Arbitrary<string> = fc.oneof(
  { weight: 6, arbitrary: fc.constantFrom(...READABLE_TYPES) },
  { weight: 1, arbitrary: fc.constantFrom('Claim', 'Bundle', 'patient', 'X', '$validate') },
);

function idInUrl(known: readonly string[]): fc.Arbitrary<string> {
  return fc.oneof(
    { weight: known.length > 0 ? 2 : 0, arbitrary: fc.constantFrom(...(known.length > 0 ? known : ['none'])) },
    { weight: 1, arbitrary: fc.constantFrom('x', 'a-b.c', 'x'.repeat(65), '1', '%00', '..', 'verified-coverage-x') },
    { weight: 1, arbitrary: urlPart.filter((p) => p.length > 0 && !p.includes('%2F')) },
  );
}

// ---------------------------------------------------------------------------------------------
// Documents from the fixtures

const DRUGS = ['infliximab', 'immune-globulin-iv', 'natalizumab', 'ocrelizumab', 'tocilizumab', 'vedolizumab'];

function fixtureDocuments(): {
  serviceRequests: unknown[];
  bundles: unknown[];
  resources: Array<{ resourceType: string; resource: unknown }>;
  cdsRequests: unknown[];
} {
  const serviceRequests: unknown[] = DRUGS.map((drug) => readFixture(`referrals/${drug}/service-request.json`));
  for (const name of ['misroute-site-lacks-drug.service-request.json', 'not-in-catalog-rituximab.service-request.json'])
    serviceRequests.push(readFixture(`referrals/misc/${name}`));
  for (const scenario of ['ok', 'too-far', 'out-of-network', 'practice-address'])
    serviceRequests.push(readFixture(`site-check/${scenario}/service-request.json`));
  const bundles: unknown[] = DRUGS.map((drug) => readFixture(`referrals/${drug}/transaction-bundle.json`));
  bundles.push(readFixture('referrals/misc/batch-two-referrals.bundle.json'));
  const resources: Array<{ resourceType: string; resource: unknown }> = [];
  for (const bundle of bundles as Array<{ entry?: Array<{ resource?: { resourceType?: string } }> }>) {
    for (const entry of bundle.entry ?? []) {
      const type = entry.resource?.resourceType;
      if (type !== undefined && WRITABLE_TYPES.includes(type)) resources.push({ resourceType: type, resource: entry.resource });
    }
  }
  const cdsRequests = [
    'order-sign-good.json',
    'order-sign-misroute.json',
    'order-select-two-orders.json',
    'order-sign-misroute.no-prefetch.json',
  ].map((f) => readFixture(`cds-hooks/${f}`));
  return { serviceRequests, bundles, resources, cdsRequests };
}

function subscriptionNotification(focus: string): unknown {
  return {
    resourceType: 'Bundle',
    type: 'history',
    timestamp: '2026-11-23T10:00:00Z',
    entry: [
      {
        fullUrl: 'urn:uuid:8c6b4f5e-51a2-4f55-a1c4-1d9c8f0d2a11',
        resource: {
          resourceType: 'Parameters',
          parameter: [
            { name: 'subscription', valueReference: { reference: 'Subscription/infusion-orders' } },
            { name: 'status', valueCode: 'active' },
            { name: 'type', valueCode: 'event-notification' },
            {
              name: 'notification-event',
              part: [
                { name: 'event-number', valueString: '1' },
                { name: 'focus', valueReference: { reference: focus } },
              ],
            },
          ],
        },
        request: { method: 'GET', url: 'Subscription/infusion-orders/$status' },
        response: { status: '200' },
      },
    ],
  };
}

function parameters(...parameter: unknown[]): unknown {
  return { resourceType: 'Parameters', parameter };
}

/** Bytes that are not a JSON document, or not UTF-8. */
const rawBody: fc.Arbitrary<{ raw: Uint8Array<ArrayBuffer> }> = fc
  .oneof(
    fc.uint8Array({ maxLength: 64 }),
    fc
      .constantFrom('{', '[]', 'null', '"x"', '{"resourceType":', '{"resourceType":"ServiceRequest"}}', '\ufeff{}')
      .map((t) => new Uint8Array(Buffer.from(t))),
    fc.constant(new Uint8Array([0x7b, 0x22, 0xc3, 0x28, 0x22, 0x3a, 0x31, 0x7d])),
  )
  .map((raw) => ({ raw: new Uint8Array(raw) }));

function jsonOrRaw(document: fc.Arbitrary<unknown>): fc.Arbitrary<FuzzRequest['body']> {
  return fc.oneof({ weight: 12, arbitrary: document.map((json) => ({ json })) }, { weight: 1, arbitrary: rawBody });
}

/** Every route that takes a body or parameters, weighted towards intake and search. */
export function fuzzRequest(targets: FuzzTargets): fc.Arbitrary<FuzzRequest> {
  const docs = fixtureDocuments();
  const serviceRequest = fc.constantFrom(...docs.serviceRequests).chain(mutated);
  const bundle = fc.constantFrom(...docs.bundles).chain(mutated);
  const writable = fc.constantFrom(...docs.resources);
  const taskId = idInUrl(targets.taskIds);
  const heldTaskId = idInUrl(targets.heldTaskIds.length > 0 ? targets.heldTaskIds : targets.taskIds);
  const srReference = fc.oneof(
    idInUrl(targets.serviceRequestIds).map((id) => `ServiceRequest/${id}`),
    stringValue,
  );

  const routes: Array<{ weight: number; arbitrary: fc.Arbitrary<FuzzRequest> }> = [
    {
      weight: 6,
      arbitrary: fc
        .record({ body: jsonOrRaw(serviceRequest), ifNoneExist: fc.option(searchParameter, { nil: undefined }) })
        .map(({ body, ifNoneExist }) => ({
          route: 'POST /fhir/ServiceRequest',
          method: 'POST',
          url: '/fhir/ServiceRequest',
          ...(body !== undefined ? { body } : {}),
          ...(ifNoneExist !== undefined ? { headers: { 'if-none-exist': ifNoneExist } } : {}),
        })),
    },
    {
      weight: 4,
      arbitrary: jsonOrRaw(bundle).map((body) => ({
        route: 'POST /fhir (Bundle)',
        method: 'POST',
        url: '/fhir',
        ...(body ? { body } : {}),
      })),
    },
    {
      // An order the EHR changes after sending it (docs/order-changes.md), at a stored order's id or any.
      weight: 2,
      arbitrary: fc.tuple(serviceRequest, idInUrl(targets.serviceRequestIds)).chain(([order, id]) =>
        jsonOrRaw(fc.constant({ ...(order as object), id })).map((body): FuzzRequest => ({
          route: 'PUT /fhir/ServiceRequest/{id}',
          method: 'PUT',
          url: `/fhir/ServiceRequest/${id}`,
          ...(body ? { body } : {}),
        })),
      ),
    },
    {
      weight: 3,
      arbitrary: writable.chain(({ resourceType, resource }) =>
        jsonOrRaw(mutated(resource)).map((body): FuzzRequest => ({
          route: 'POST /fhir/{type}',
          method: 'POST',
          url: `/fhir/${resourceType}`,
          ...(body ? { body } : {}),
        })),
      ),
    },
    {
      weight: 2,
      arbitrary: fc.tuple(writable, idInUrl([])).chain(([{ resourceType, resource }, id]) =>
        jsonOrRaw(mutated({ ...(resource as object), id })).map((body): FuzzRequest => ({
          route: 'PUT /fhir/{type}/{id}',
          method: 'PUT',
          url: `/fhir/${resourceType}/${id}`,
          ...(body ? { body } : {}),
        })),
      ),
    },
    {
      weight: 2,
      arbitrary: fc
        .tuple(
          fc.constantFrom('/fhir/$validate', '/fhir/ServiceRequest/$validate', '/fhir/Patient/$validate'),
          fc.oneof(
            serviceRequest,
            bundle,
            writable.map((w) => w.resource).chain(mutated),
            serviceRequest.map((r) => parameters({ name: 'resource', resource: r })),
          ),
        )
        .map(([url, json]) => ({ route: 'POST $validate', method: 'POST', url, body: { json } })),
    },
    {
      weight: 6,
      arbitrary: fc
        .tuple(resourceTypeInUrl, query)
        .map(([type, q]) => ({ route: 'GET /fhir/{type}?', method: 'GET', url: `/fhir/${type}${q}` })),
    },
    {
      weight: 2,
      arbitrary: fc
        .tuple(
          resourceTypeInUrl,
          fc.oneof(taskId, idInUrl(targets.serviceRequestIds)),
          fc.constantFrom('', '/_history', '/_history/1', '/_history/0', '/_history/W%2F%221%22', '/_history/x'),
          query,
        )
        .map(([type, id, tail, q]) => ({ route: 'GET /fhir/{type}/{id}', method: 'GET', url: `/fhir/${type}/${id}${tail}${q}` })),
    },
    {
      weight: 2,
      arbitrary: fc
        .tuple(
          heldTaskId,
          jsonOrRaw(mutated(parameters({ name: 'location', valueReference: { reference: 'Location/hin-nashville-green-hills' } }))),
        )
        .map(([id, body]) => ({
          route: 'POST Task/$confirm-site',
          method: 'POST',
          url: `/fhir/Task/${id}/$confirm-site`,
          ...(body ? { body } : {}),
        })),
    },
    {
      weight: 1,
      arbitrary: fc.tuple(taskId, jsonOrRaw(mutated(parameters({ name: 'note', valueString: 'peer-to-peer done' })))).map(([id, body]) => ({
        route: 'POST Task/$submit-prior-auth',
        method: 'POST',
        url: `/fhir/Task/${id}/$submit-prior-auth`,
        ...(body ? { body } : {}),
      })),
    },
    {
      weight: 2,
      arbitrary: fc.tuple(srReference, query).map(([reference, q]) => ({
        route: 'GET Appointment/$find',
        method: 'GET',
        url: `/fhir/Appointment/$find?referral=${encode(reference)}${q.replace('?', '&')}`,
      })),
    },
    {
      weight: 2,
      arbitrary: fc
        .tuple(
          fc.constantFrom('$find', '$hold', '$book'),
          srReference.chain((reference) =>
            mutated(
              parameters(
                { name: 'referral', valueReference: { reference } },
                { name: 'start', valueDateTime: '2026-12-01T00:00:00Z' },
                { name: 'end', valueDateTime: '2026-12-31T00:00:00Z' },
                {
                  name: 'appt-resource',
                  resource: {
                    resourceType: 'Appointment',
                    status: 'proposed',
                    start: '2026-12-02T15:00:00Z',
                    end: '2026-12-02T17:00:00Z',
                    basedOn: [{ reference }],
                    participant: [{ actor: { reference: 'Location/hin-nashville-green-hills' }, status: 'needs-action' }],
                  },
                },
              ),
            ),
          ),
        )
        .map(([operation, json]) => ({
          route: `POST Appointment/${operation}`,
          method: 'POST',
          url: `/fhir/Appointment/${operation}`,
          body: { json },
        })),
    },
    {
      weight: 1,
      arbitrary: fc
        .tuple(fc.constantFrom('POST', 'PUT') as fc.Arbitrary<'POST' | 'PUT'>, idInUrl([]), srReference)
        .chain(([method, id, reference]) =>
          mutated({
            resourceType: 'Appointment',
            ...(method === 'PUT' ? { id } : {}),
            status: 'booked',
            start: '2026-12-02T15:00:00Z',
            end: '2026-12-02T17:00:00Z',
            basedOn: [{ reference }],
            participant: [{ actor: { reference: 'Location/hin-nashville-green-hills' }, status: 'accepted' }],
          }).map((json): FuzzRequest => ({
            route: `${method} /fhir/Appointment`,
            method,
            url: method === 'PUT' ? `/fhir/Appointment/${id}` : '/fhir/Appointment',
            body: { json },
          })),
        ),
    },
    {
      weight: 1,
      arbitrary: fc
        .tuple(
          taskId,
          mutated({
            resourceType: 'Task',
            status: 'in-progress',
            intent: 'order',
            output: [{ type: { text: 'confirmed-location' }, valueReference: { reference: 'Location/hin-nashville-green-hills' } }],
          }),
        )
        .map(([id, json]) => ({
          route: 'PUT /fhir/Task/{id}',
          method: 'PUT',
          url: `/fhir/Task/${id}`,
          body: { json: typeof json === 'object' && json !== null && !Array.isArray(json) ? { ...json, id } : json },
        })),
    },
    {
      weight: 3,
      arbitrary: fc
        .tuple(
          fc.constantFrom('infusion-site-check', 'infusion-site-check-select', 'nope'),
          jsonOrRaw(fc.constantFrom(...docs.cdsRequests).chain(mutated)),
        )
        .map(([service, body]) => ({
          route: 'POST /cds-services/{id}',
          method: 'POST',
          url: `/cds-services/${service}`,
          headers: { 'content-type': 'application/json' },
          ...(body ? { body } : {}),
        })),
    },
    {
      weight: 1,
      arbitrary: jsonOrRaw(
        mutated({
          feedback: [
            { card: 'c1', outcome: 'overridden', overrideReason: { reason: { code: 'x' } }, outcomeTimestamp: '2026-01-01T00:00:00Z' },
          ],
        }),
      ).map((body) => ({
        route: 'POST /cds-services/{id}/feedback',
        method: 'POST',
        url: '/cds-services/infusion-site-check/feedback',
        headers: { 'content-type': 'application/json' },
        ...(body ? { body } : {}),
      })),
    },
    {
      weight: 2,
      arbitrary: fc
        .tuple(
          fc.constantFrom('default', 'nobody'),
          jsonOrRaw(srReference.chain((reference) => mutated(subscriptionNotification(reference)))),
        )
        .map(([tenant, body]) => ({
          route: 'POST /subscription-notifications/{tenant}',
          method: 'POST',
          url: `/subscription-notifications/${tenant}`,
          ...(body ? { body } : {}),
        })),
    },
    {
      weight: 2,
      arbitrary: fc
        .tuple(
          fc.constantFrom('payer-cumberland', 'payer-unheard-of'),
          jsonOrRaw(fc.constant(subscriptionNotification('ClaimResponse/x')).chain(mutated)),
        )
        .map(([payer, body]) => ({
          route: 'POST /payer-notifications/{payer}',
          method: 'POST',
          url: `/payer-notifications/${payer}`,
          ...(body ? { body } : {}),
        })),
    },
    {
      weight: 1,
      arbitrary: fc
        .tuple(fc.constantFrom('GET', 'POST') as fc.Arbitrary<'GET' | 'POST'>, idInUrl([]), query)
        .map(([method, id, q]): FuzzRequest =>
          method === 'GET'
            ? { route: 'GET /admin/outbox', method, url: q === '' ? `/admin/outbox/${id}` : `/admin/outbox${q}` }
            : { route: 'POST /admin/outbox/{id}/retry', method, url: `/admin/outbox/${id}/retry` },
        ),
    },
  ];
  return fc.oneof(...routes);
}
