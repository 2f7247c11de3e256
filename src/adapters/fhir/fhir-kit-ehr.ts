/**
 * EhrFhir over fhir-kit-client: the only module that talks to an EHR's FHIR server.
 *
 * fhir-kit-client's loose answers (`FhirResource`, a record with a resourceType) are checked at
 * run time and narrowed to @types/fhir here; whatever it throws becomes an EhrCallError
 * (ehr-call-errors.ts). Every request carries a time-out so a hanging EHR cannot hold a worker.
 *
 * Idempotent write-back (https://hl7.org/fhir/R4/http.html#ccreate): search by the business
 * identifier; update the match in place, or create with If-None-Exist on that identifier so that a
 * retried or concurrent create finds the first one instead of making a second.
 */
import type { Client, FhirResource, FhirResponse, RequestOptions } from 'fhir-kit-client';
import type { Bundle, Identifier, Resource } from 'fhir/r4.js';
import type { EhrConnection, EhrFhir } from '../../ports/ehr-fhir.js';
import { withAccessToken } from '../../auth/smart-backend-client.js';
import { lazyFhirKitClient, loadFhirKit } from './fhir-kit-loader.js';
import { describeInteraction, permanentEhrError, toEhrCallError, type EhrInteraction } from './ehr-call-errors.js';

export const DEFAULT_EHR_TIMEOUT_MS = 10_000;

/** https://hl7.org/fhir/R4/datatypes.html#id */
const FHIR_ID = /^[A-Za-z0-9\-.]{1,64}$/;
const RESOURCE_TYPE = /^[A-Z][A-Za-z]{1,63}$/;
const RELATIVE_REFERENCE = /^([A-Z][A-Za-z]{1,63})\/([A-Za-z0-9\-.]{1,64})(?:\/_history\/([A-Za-z0-9\-.]{1,64}))?$/;

type BusinessIdentifier = Required<Pick<Identifier, 'system' | 'value'>>;

/** One EHR's connection, as every request of the adapter needs it. */
interface EhrSession {
  tenant: string;
  base: URL;
  /** The FHIR base without a trailing slash, and its path (where our bearer token may go). */
  baseUrl: string;
  basePath: string;
  timeoutMs: number;
  fhirKitClient: () => Promise<Client>;
  /** SMART Backend Services tokens, when the EHR wants them (withAccessToken). */
  accessToken: EhrConnection['accessToken'];
}

export function createFhirKitEhr(connection: EhrConnection, options: { timeoutMs?: number } = {}): EhrFhir {
  const timeoutMs = options.timeoutMs ?? DEFAULT_EHR_TIMEOUT_MS;
  if (!Number.isFinite(timeoutMs) || timeoutMs <= 0)
    throw new Error(`EHR request time-out must be a positive number of milliseconds, not ${timeoutMs}`);
  const base = new URL(connection.baseUrl.replace(/\/+$/, ''));
  const baseUrl = base.href.replace(/\/+$/, '');
  const session: EhrSession = {
    tenant: connection.tenant,
    base,
    baseUrl,
    basePath: base.pathname.replace(/\/+$/, ''),
    timeoutMs,
    fhirKitClient: lazyFhirKitClient({ baseUrl, ...(connection.bearerToken ? { bearerToken: connection.bearerToken } : {}) }),
    accessToken: connection.accessToken,
  };
  return {
    upsertByIdentifier: (resource, identifier) => upsertByIdentifier(session, resource, identifier),
    read: (resourceType, id) => readOne(session, resourceType, id),
    readReference: (reference) => readReference(session, reference),
    searchAll: (resourceType, params, onPage, searchOptions) => searchAll(session, resourceType, params, onPage, searchOptions),
  };
}

/** One request through fhir-kit-client, with a time-out, its failures turned into EhrCallError. */
async function call(
  session: EhrSession,
  what: EhrInteraction,
  send: (client: Client, requestOptions: RequestOptions) => Promise<FhirResource>,
  headers: Record<string, string> = {},
): Promise<FhirResponse> {
  try {
    const client = await session.fhirKitClient();
    // fhir-kit-client attaches the fetch Response under RESPONSE_KEY to every answer.
    return (await withAccessToken(session.accessToken, async (auth) =>
      send(client, { signal: AbortSignal.timeout(session.timeoutMs), headers: { ...headers, ...auth } }),
    )) as FhirResponse;
  } catch (err) {
    throw toEhrCallError(err, what, session.timeoutMs);
  }
}

/** Whether a URL is on this EHR's FHIR base: only there may our bearer token go. */
function onThisServer(session: EhrSession, url: URL): boolean {
  return (
    url.origin === session.base.origin &&
    (session.basePath === '' || url.pathname === session.basePath || url.pathname.startsWith(`${session.basePath}/`))
  );
}

async function readOne<T extends Resource>(session: EhrSession, resourceType: string, id: string, version?: string): Promise<T> {
  assertResourceType(resourceType);
  if (!FHIR_ID.test(id) || (version !== undefined && !FHIR_ID.test(version))) {
    throw permanentEhrError('invalid', `Not a FHIR id, so not read from the EHR: read ${resourceType}`);
  }
  const what = { tenant: session.tenant, interaction: 'read', resourceType };
  const answer = await call(session, what, (client, requestOptions) =>
    version === undefined
      ? client.read({ resourceType, id, options: requestOptions })
      : client.vread({ resourceType, id, version, options: requestOptions }),
  );
  return narrow<T>(answer, resourceType, what);
}

async function search(session: EhrSession, resourceType: string, params: Record<string, string>): Promise<Bundle> {
  const what = { tenant: session.tenant, interaction: 'search', resourceType };
  const answer = await call(session, what, (client, requestOptions) =>
    client.search({ resourceType, searchParams: params, options: requestOptions }),
  );
  return narrow<Bundle>(answer, 'Bundle', what);
}

async function update<T extends Resource>(session: EhrSession, resource: T, id: string): Promise<T> {
  const what = { tenant: session.tenant, interaction: 'update', resourceType: resource.resourceType };
  const body = { ...withoutServerFields(resource), id } as unknown as FhirResource;
  const answer = await call(
    session,
    what,
    (client, requestOptions) => client.update({ resourceType: resource.resourceType, id, body, options: requestOptions }),
    {
      prefer: 'return=representation',
    },
  );
  // A server that answers an update with no body (Prefer ignored): read what it stored.
  if (answer.resourceType === undefined || Object.keys(answer).length === 0) return readOne<T>(session, resource.resourceType, id);
  return narrow<T>(answer, resource.resourceType, what);
}

/** The EHR's resources of this type that really carry the identifier (a server may ignore a search parameter it does not support). */
async function findByIdentifier<T extends Resource>(
  session: EhrSession,
  resourceType: string,
  identifier: BusinessIdentifier,
): Promise<Array<T & { id: string }>> {
  const bundle = await search(session, resourceType, { identifier: `${identifier.system}|${identifier.value}`, _count: '2' });
  return (bundle.entry ?? [])
    .map((entry) => entry.resource)
    .filter(
      (found): found is T & { id: string } =>
        found?.resourceType === resourceType && typeof found.id === 'string' && carries(found, identifier),
    );
}

async function upsertByIdentifier<T extends Resource>(session: EhrSession, resource: T, identifier: BusinessIdentifier): Promise<T> {
  const resourceType = resource.resourceType;
  assertResourceType(resourceType);
  const matches = await findByIdentifier<T>(session, resourceType, identifier);
  if (matches.length > 1) {
    throw permanentEhrError(
      'multiple-matches',
      `The EHR holds more than one ${resourceType} with this business identifier; an operator must merge them before write-back can go on`,
    );
  }
  const existing = matches[0];
  if (existing) return update(session, resource, existing.id);

  const what = { tenant: session.tenant, interaction: 'conditional create', resourceType };
  const ifNoneExist = new URLSearchParams({ identifier: `${identifier.system}|${identifier.value}` }).toString();
  const answer = await call(
    session,
    what,
    (client, requestOptions) =>
      client.create({ resourceType, body: withoutServerFields(resource) as unknown as FhirResource, options: requestOptions }),
    {
      'if-none-exist': ifNoneExist,
      prefer: 'return=representation',
    },
  );
  const status = answer[(await loadFhirKit()).RESPONSE_KEY]?.status;
  let stored: (T & { id: string }) | undefined;
  if (answer.resourceType === resourceType && typeof answer['id'] === 'string') {
    stored = narrow<T>(answer, resourceType, what) as T & { id: string };
  } else {
    // No body (Prefer ignored): find what the server created or matched.
    [stored] = await findByIdentifier<T>(session, resourceType, identifier);
    if (!stored)
      throw permanentEhrError(
        'exception',
        `The EHR accepted ${describeInteraction(what)} but the resource cannot be found by its identifier`,
        status,
      );
  }
  // 200 instead of 201: someone created it between our search and our create (a concurrent or
  // earlier attempt), so the EHR kept that one. Bring it up to our content.
  return status === 201 ? stored : update(session, resource, stored.id);
}

async function readReference<T extends Resource>(session: EhrSession, reference: string): Promise<T> {
  let relative = reference;
  if (/^https?:\/\//i.test(reference)) {
    let url: URL;
    try {
      url = new URL(reference);
    } catch {
      throw permanentEhrError('invalid', 'Not a literal reference that can be read from the EHR');
    }
    if (!onThisServer(session, url) || url.search !== '' || url.hash !== '') {
      throw permanentEhrError(
        'not-supported',
        "The reference points outside this EHR's FHIR base URL; only references on the EHR itself are read",
      );
    }
    relative = url.pathname.slice(session.basePath.length).replace(/^\/+/, '');
  }
  const match = RELATIVE_REFERENCE.exec(relative);
  if (!match) throw permanentEhrError('invalid', 'Not a literal reference (Type/id) that can be read from the EHR');
  const [, resourceType, id, version] = match as unknown as [string, string, string, string | undefined];
  return readOne<T>(session, resourceType, id, version);
}

async function searchAll(
  session: EhrSession,
  resourceType: string,
  params: Record<string, string>,
  onPage: (page: Bundle) => Promise<void>,
  searchOptions: { maxPages?: number } = {},
): Promise<number> {
  assertResourceType(resourceType);
  const maxPages = searchOptions.maxPages ?? Number.POSITIVE_INFINITY;
  if (maxPages < 1) return 0;
  let page = await search(session, resourceType, params);
  const seen = new Set<string>();
  for (let pages = 1; ; pages += 1) {
    await onPage(page);
    if (pages >= maxPages) return pages;
    const next = page.link?.find((link) => link.relation === 'next')?.url;
    if (next === undefined || next === '') return pages;
    const url = nextPageUrl(session, next, resourceType);
    if (seen.has(url))
      throw permanentEhrError('exception', `The EHR's next link leads back to a page already read, during search ${resourceType}`);
    seen.add(url);
    const what = { tenant: session.tenant, interaction: `search (page ${pages + 1})`, resourceType };
    page = narrow<Bundle>(
      await call(session, what, (client, requestOptions) => client.request(url, { method: 'GET', options: requestOptions })),
      'Bundle',
      what,
    );
  }
}

/** The next page's URL: the server's, resolved against the base, and only if on the same server. */
function nextPageUrl(session: EhrSession, link: string, resourceType: string): string {
  let url: URL;
  try {
    url = new URL(link, `${session.baseUrl}/`);
  } catch {
    throw permanentEhrError('exception', `The EHR's next link is not a URL, during search ${resourceType}`);
  }
  if (!onThisServer(session, url)) {
    throw permanentEhrError(
      'not-supported',
      `The EHR's next link points outside its FHIR base URL, during search ${resourceType}; it is not followed`,
    );
  }
  return url.href;
}

function assertResourceType(resourceType: string): void {
  if (!RESOURCE_TYPE.test(resourceType)) throw permanentEhrError('invalid', 'Not a FHIR resource type, so not sent to the EHR');
}

/** Checks what the client handed back and copies it without fhir-kit-client's hidden request/response. */
function narrow<T extends Resource>(answer: FhirResource, resourceType: string, what: EhrInteraction): T {
  if (answer.resourceType !== resourceType) {
    const got =
      typeof answer.resourceType === 'string' && RESOURCE_TYPE.test(answer.resourceType)
        ? `a ${answer.resourceType}`
        : 'something that is not a FHIR resource';
    throw permanentEhrError('exception', `The EHR answered ${describeInteraction(what)} with ${got} instead of a ${resourceType}`);
  }
  return { ...answer } as unknown as T;
}

/** Our resource as the EHR should receive it: the EHR assigns the id, version and lastUpdated. */
function withoutServerFields<T extends Resource>(resource: T): T {
  const { id: _id, meta, ...rest } = resource;
  if (!meta) return rest as T;
  const { versionId: _versionId, lastUpdated: _lastUpdated, ...keptMeta } = meta;
  return (Object.keys(keptMeta).length > 0 ? { ...rest, meta: keptMeta } : rest) as T;
}

function carries(resource: Resource, identifier: BusinessIdentifier): boolean {
  const identifiers = (resource as { identifier?: unknown }).identifier;
  const list = Array.isArray(identifiers) ? identifiers : identifiers === undefined ? [] : [identifiers];
  return list.some((i: Identifier) => i?.system === identifier.system && i?.value === identifier.value);
}
