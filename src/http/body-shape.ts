/**
 * The shape of a request body is checked before any business rule reads it: an operation's
 * Parameters, a coordinator's Task, a booking Appointment. Base R4 (the generated JSON Schema
 * validators) finds every structural problem at once, each with its FHIRPath, so the use case
 * that follows can trust that `parameter` is an array and `output[0].type` an object, instead of
 * failing with a TypeError (a 500) on what a client got wrong (a 400).
 */
import type { OperationOutcome } from 'fhir/r4.js';
import { badRequest, errorIssue, hasErrors } from '../fhir/outcomes.js';
import type { ResourceValidator } from '../ports/gateway-deps.js';
import type { FhirHandler } from './fhir-exchange.js';

/** A 400 listing every structural problem, or undefined when the body is a sound resource of one of `types`. */
export function bodyShapeOutcome(
  validator: Pick<ResourceValidator, 'validateBase'>,
  body: unknown,
  types: readonly string[],
): OperationOutcome | undefined {
  const issues = validator.validateBase(body);
  const type = (body as { resourceType?: unknown } | null)?.resourceType;
  if (typeof type === 'string' && !hasErrors(issues) && !types.includes(type)) {
    issues.push(
      errorIssue('invalid', `Expected ${types.join(' or ')} here but got ${type.slice(0, 64)}`, `${type.slice(0, 64)}.resourceType`),
    );
  }
  return hasErrors(issues) ? badRequest(issues) : undefined;
}

/** The handler, behind the shape check of its body (when it has one: operations may take none). */
export function withBodyShape(
  validator: Pick<ResourceValidator, 'validateBase'>,
  types: readonly string[],
  handler: FhirHandler,
): FhirHandler {
  const shaped: FhirHandler = async (request) => {
    if (request.body !== undefined) {
      const outcome = bodyShapeOutcome(validator, request.body, types);
      if (outcome) return { outcome };
    }
    return handler(request);
  };
  // Named after the handler it guards: the route table's test checks every route ends in a named handler.
  Object.defineProperty(shaped, 'name', { value: handler.name });
  return shaped;
}
