/**
 * The Appointment that `$hold` and `$book` reserve: IHE's `appt-resource` parameter, read by the
 * operation's definition, or the Appointment itself as the body.
 */
import type { Appointment, OperationDefinition, OperationOutcome } from 'fhir/r4.js';
import { badRequest } from '../../fhir/outcomes.js';
import { readOperationParameters } from '../../fhir/operation-parameters.js';
import type { bookAppointment } from '../../scheduling/stories/schedule-referral.js';
import { withBodyShape } from '../body-shape.js';
import type { FhirHandler, FhirRequest, FhirResponse } from '../fhir-exchange.js';
import { locationHeader, versionHeaders } from '../fhir-exchange.js';
import { operationOutcome } from '../../fhir/outcomes.js';
import { operationDefinition, type OperationContext } from './definitions.js';

/**
 * `$hold` or `$book`: the Appointment to reserve, read by the operation's definition, handed to
 * the scheduling story, answered 201 or with its refusal. The handler is named after the story
 * (`holdAppointment`, `bookAppointment`), as the route table names it.
 */
export function reserveOperation(
  { deps, conformance }: OperationContext,
  operationId: 'appointment-hold' | 'appointment-book',
  reserve: typeof bookAppointment,
): FhirHandler {
  const definition = operationDefinition(conformance, operationId);
  const reserveAppointment: FhirHandler = async (request) => {
    const read = appointmentToReserve(definition, request);
    if ('outcome' in read) return { outcome: read.outcome };
    return reservedResponse(request, await reserve(deps, { tenant: request.tenant, appointment: read.appointment }));
  };
  Object.defineProperty(reserveAppointment, 'name', { value: reserve.name });
  return withBodyShape(deps.validator, ['Parameters', 'Appointment'], reserveAppointment);
}

function appointmentToReserve(
  definition: OperationDefinition,
  request: FhirRequest,
): { appointment: Appointment } | { outcome: OperationOutcome } {
  const body = request.body as { resourceType?: string } | undefined;
  if (body?.resourceType === 'Appointment') return { appointment: body as Appointment };
  const { values, issues } = readOperationParameters(definition, request);
  if (issues.length > 0) return { outcome: badRequest(issues) };
  return { appointment: values['appt-resource'] as Appointment };
}

/** 201 with the held or booked Appointment, or the refusal. */
export function reservedResponse(request: FhirRequest, result: Awaited<ReturnType<typeof bookAppointment>>): FhirResponse {
  if (result.kind === 'refused') return { outcome: result.outcome };
  return {
    status: 201,
    resource: result.appointment,
    outcome: operationOutcome('created', []),
    headers: { ...versionHeaders(result.appointment), ...locationHeader(request.baseUrl, result.appointment) },
  };
}
