/**
 * The shape of a CDS Hooks 2.0 service request (https://cds-hooks.hl7.org/2.0/#http-request) for
 * the hooks the site check answers (order-sign, order-select: https://cds-hooks.org/hooks/), as a
 * JSON Schema compiled once by ajv. It runs before anything reads the request, so that an object
 * where an array belongs is a 400 naming it, never a TypeError. What the schema cannot say (URLs,
 * ids, selections that name a draft order, the resources themselves) is checked after it.
 *
 * Lenient where the service does not depend on a field: of fhirAuthorization only access_token and
 * token_type are required (the spec also lists expires_in, scope and subject), and userId is not.
 */
import { Ajv, type ErrorObject, type ValidateFunction } from 'ajv';
import type { OperationOutcomeIssue } from 'fhir/r4.js';
import { schemaIssues } from '../../directory/rules/json-document-issues.js';

const resource = { type: 'object', required: ['resourceType'], properties: { resourceType: { type: 'string', minLength: 1 } } };

export const CDS_HOOKS_REQUEST_SCHEMA = {
  $id: 'https://fhir.infusion-gateway.example/schema/cds-hooks-2.0-order-request',
  type: 'object',
  required: ['hook', 'hookInstance', 'context'],
  properties: {
    hook: { type: 'string', minLength: 1 },
    hookInstance: { type: 'string', minLength: 1 },
    fhirServer: { type: 'string' },
    fhirAuthorization: {
      type: ['object', 'null'],
      required: ['access_token', 'token_type'],
      properties: {
        access_token: { type: 'string', minLength: 1 },
        token_type: { type: 'string' },
        expires_in: { type: 'number' },
        scope: { type: 'string' },
        subject: { type: 'string' },
        patient: { type: 'string' },
      },
    },
    context: {
      type: 'object',
      required: ['patientId', 'draftOrders'],
      properties: {
        userId: { type: 'string' },
        patientId: { type: 'string', minLength: 1 },
        encounterId: { type: 'string' },
        draftOrders: {
          type: 'object',
          required: ['resourceType'],
          properties: {
            resourceType: { const: 'Bundle' },
            entry: { type: 'array', items: { type: 'object', required: ['resource'], properties: { resource } } },
          },
        },
        selections: { type: 'array', minItems: 1, items: { type: 'string' } },
      },
    },
    prefetch: { type: ['object', 'null'], additionalProperties: { anyOf: [{ type: 'null' }, resource] } },
  },
  // order-select names the orders the clinician selected (https://cds-hooks.org/hooks/order-select/).
  if: { properties: { hook: { const: 'order-select' } }, required: ['hook'] },
  then: { properties: { context: { required: ['selections'] } } },
} as const;

let compiled: ValidateFunction | undefined;

/** ajv's `const` on a resourceType says "must be a Bundle" of the element holding it. */
function atHolder(error: ErrorObject): ErrorObject {
  if (error.keyword !== 'const' || !error.instancePath.endsWith('/resourceType')) return error;
  return { ...error, instancePath: error.instancePath.slice(0, -'/resourceType'.length), message: 'must be a FHIR Bundle' };
}

/** Every way the request's shape departs from the schema, each with its path (`context.draftOrders`). */
export function cdsHooksRequestShapeIssues(body: unknown): OperationOutcomeIssue[] {
  compiled ??= new Ajv({ allErrors: true, strict: false, logger: false }).compile(CDS_HOOKS_REQUEST_SCHEMA);
  if (compiled(body)) return [];
  return schemaIssues((compiled.errors ?? []).map(atHolder), 'hook request', { anyOfMessage: 'must be a FHIR resource or null' });
}
