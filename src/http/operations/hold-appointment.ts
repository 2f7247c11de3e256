/**
 * `POST /fhir/Appointment/$hold` (profiles/OperationDefinition-appointment-hold.json), in the
 * manner of IHE ITI Scheduling Hold Appointment: the chair of a proposal from $find is held for a
 * while (docs/scheduling.md).
 */
import { holdAppointment as holdAppointmentUseCase } from '../../scheduling/stories/schedule-referral.js';
import { withBodyShape } from '../body-shape.js';
import type { FhirHandler, FhirRequest, FhirResponse } from '../fhir-exchange.js';
import { appointmentToReserve, reservedResponse } from './appointment-to-reserve.js';
import { operationDefinition, type OperationContext } from './definitions.js';

export function holdAppointmentOperation({ deps, conformance }: OperationContext): FhirHandler {
  const definition = operationDefinition(conformance, 'appointment-hold');
  async function holdAppointment(request: FhirRequest): Promise<FhirResponse> {
    const read = appointmentToReserve(definition, request);
    if ('outcome' in read) return { outcome: read.outcome };
    return reservedResponse(request, await holdAppointmentUseCase(deps, { tenant: request.tenant, appointment: read.appointment }));
  }
  return withBodyShape(deps.validator, ['Parameters', 'Appointment'], holdAppointment);
}
