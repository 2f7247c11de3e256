/**
 * The EHR's FHIR server, as the gateway needs it. The adapter (src/adapters/fhir/fhir-kit-ehr.ts)
 * speaks through fhir-kit-client; tests run it against the stand-in EHR in test/support.
 *
 * Every failure is an EhrCallError: an OperationOutcome (the server's, or one describing the
 * network failure) plus whether trying again can help. Permanent: 4xx other than 408 and 429.
 * Retryable: network errors, timeouts, 408, 429 and 5xx.
 */
import type { AccessTokenSource } from '../auth/smart-backend-client.js';
import type { Bundle, Identifier, Resource } from 'fhir/r4.js';
import { FhirCallError } from './fhir-call-error.js';

/** A failed call to the EHR (see FhirCallError for when it is retryable). */
export class EhrCallError extends FhirCallError {
  override readonly name = 'EhrCallError';
}

export interface EhrFhir {
  /**
   * Creates the resource unless one with this business identifier exists (conditional create,
   * If-None-Exist: identifier=system|value), else updates that one: a retried delivery never makes
   * a second resource. Returns the EHR's version.
   */
  upsertByIdentifier<T extends Resource>(resource: T, identifier: Required<Pick<Identifier, 'system' | 'value'>>): Promise<T>;
  read<T extends Resource>(resourceType: T['resourceType'], id: string): Promise<T>;
  /** Reads a resource by a literal reference (relative `Type/id` or an absolute URL on this server). */
  readReference<T extends Resource>(reference: string): Promise<T>;
  /**
   * Searches and follows `next` links, handing each page to `onPage` in order; stops after
   * `maxPages`. Returns the number of pages read.
   */
  searchAll(
    resourceType: string,
    params: Record<string, string>,
    onPage: (page: Bundle) => Promise<void>,
    options?: { maxPages?: number },
  ): Promise<number>;
}

/** The EHR connection of one sending tenant. */
export interface EhrConnection {
  tenant: string;
  baseUrl: string;
  /** A bearer token, when the EHR needs one. */
  bearerToken?: string;
  /** SMART Backend Services: tokens obtained (and renewed on a 401) from the EHR's token endpoint. */
  accessToken?: AccessTokenSource;
}
