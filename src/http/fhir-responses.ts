/**
 * What the FHIR handlers and operations share: turning a use case's result into a FhirResponse,
 * and reading If-Match (https://hl7.org/fhir/R4/http.html#concurrency).
 */
import { badRequest, errorIssue, operationOutcome } from '../fhir/outcomes.js';
import { versionFromETag } from '../fhir/http-headers.js';
import type { InteractionResult } from '../intake/stories/resource-interactions.js';
import type { ConfirmSiteResult } from '../site-check/stories/confirm-referral-site.js';
import { locationHeader, versionHeaders, type FhirRequest, type FhirResponse } from './fhir-exchange.js';

export function interactionResponse(request: FhirRequest, result: InteractionResult): FhirResponse {
  if (result.kind === 'refused') return { outcome: result.outcome };
  const headers = {
    ...versionHeaders(result.resource),
    ...(result.status === 201 ? locationHeader(request.baseUrl, result.resource) : {}),
  };
  return {
    status: result.status,
    resource: result.resource,
    outcome: operationOutcome(result.status === 201 ? 'created' : 'ok', result.issues),
    headers,
  };
}

/** A referral or appeal Task a coordinator's decision changed, or the refusal. */
export function taskResponse(result: ConfirmSiteResult): FhirResponse {
  if (result.kind === 'refused') return { outcome: result.outcome };
  return {
    status: 200,
    resource: result.task,
    outcome: operationOutcome('ok', []),
    headers: versionHeaders(result.task),
  };
}

/** The version If-Match names, or the 400 when it is not an ETag. */
export function ifMatchVersion(request: FhirRequest): { version?: string; outcome?: FhirResponse } {
  if (request.ifMatch === undefined) return {};
  const version = versionFromETag(request.ifMatch);
  if (version === undefined) {
    return {
      outcome: {
        outcome: badRequest([errorIssue('value', `If-Match must be an ETag such as W/"3" (got '${request.ifMatch}')`, 'If-Match')]),
      },
    };
  }
  return { version };
}
