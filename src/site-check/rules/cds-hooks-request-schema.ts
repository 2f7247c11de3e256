/**
 * The shape of a CDS Hooks 2.0 service request (https://cds-hooks.hl7.org/2.0/#http-request) for
 * the hooks the site check answers (order-sign, order-select: https://cds-hooks.org/hooks/), as a
 * JSON Schema, profiles/cds-hooks-request.schema.json, compiled at install
 * (src/fhir/validation/document-schemas.ts). It runs before anything reads the request, so that an object
 * where an array belongs is a 400 naming it, never a TypeError. What the schema cannot say (URLs,
 * ids, selections that name a draft order, the resources themselves) is checked after it.
 *
 * Lenient where the service does not depend on a field: of fhirAuthorization only access_token and
 * token_type are required (the spec also lists expires_in, scope and subject), and userId is not.
 */
import type { ErrorObject } from 'ajv';
import type { OperationOutcomeIssue } from 'fhir/r4.js';
import { schemaIssues } from '../../directory/rules/json-document-issues.js';
import { documentSchemaValidators } from '../../fhir/validation/document-schemas.js';

/** ajv's `const` on a resourceType says "must be a Bundle" of the element holding it. */
function atHolder(error: ErrorObject): ErrorObject {
  if (error.keyword !== 'const' || !error.instancePath.endsWith('/resourceType')) return error;
  return { ...error, instancePath: error.instancePath.slice(0, -'/resourceType'.length), message: 'must be a FHIR Bundle' };
}

/** Every way the request's shape departs from the schema, each with its path (`context.draftOrders`). */
export function cdsHooksRequestShapeIssues(body: unknown): OperationOutcomeIssue[] {
  const validate = documentSchemaValidators.cdsHooksRequest;
  if (validate(body)) return [];
  return schemaIssues((validate.errors ?? []).map(atHolder), 'hook request', { anyOfMessage: 'must be a FHIR resource or null' });
}
