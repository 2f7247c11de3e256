/**
 * Handlers do not know Express: they take a FhirRequest and return a FhirResponse (habit 2 of
 * docs/architecture.md, after medplum's fhir-router). The Express adapter in routes.ts is the only
 * place that reads `req` and writes `res`.
 */
import type { OperationOutcome, Resource } from 'fhir/r4.js';
import type { Preferences } from '../fhir/http-headers.js';

export interface FhirRequest {
  method: string;
  params: Record<string, string>;
  /** Query parameters in order, repeated keys kept. */
  query: ReadonlyArray<readonly [string, string]>;
  body: unknown;
  tenant: string;
  /** The FHIR base as the client sees it, e.g. http://127.0.0.1:8080/fhir */
  baseUrl: string;
  ifNoneExist?: string;
  ifMatch?: string;
  ifNoneMatch?: string;
  prefer: Preferences;
  /** Aborted when the client closes the connection before the answer is sent. */
  signal?: AbortSignal;
}

export interface FhirResponse {
  /** Omitted for refusals: the status is then derived from the outcome (statusOf). */
  status?: number;
  /** The resource the interaction is about (read, created, updated, a search Bundle). */
  resource?: Resource;
  /** The outcome: the body of errors, and of successes when `Prefer: return=OperationOutcome`. */
  outcome?: OperationOutcome;
  headers?: Record<string, string>;
}

export type FhirHandler = (request: FhirRequest) => Promise<FhirResponse>;

/** ETag and Last-Modified for a stored resource (https://hl7.org/fhir/R4/http.html#versioning). */
export function versionHeaders(resource: Resource): Record<string, string> {
  const headers: Record<string, string> = {};
  if (resource.meta?.versionId) headers['ETag'] = `W/"${resource.meta.versionId}"`;
  if (resource.meta?.lastUpdated) headers['Last-Modified'] = new Date(resource.meta.lastUpdated).toUTCString();
  return headers;
}

export function locationHeader(baseUrl: string, resource: Resource): Record<string, string> {
  const version = resource.meta?.versionId ? `/_history/${resource.meta.versionId}` : '';
  return { Location: `${baseUrl}/${resource.resourceType}/${resource.id}${version}` };
}
