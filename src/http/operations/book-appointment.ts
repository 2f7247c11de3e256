/**
 * `POST /fhir/Appointment/$book` (profiles/OperationDefinition-appointment-book.json), in the
 * manner of IHE ITI Scheduling Book Appointment: books a held Appointment or a proposal
 * (docs/scheduling.md). `POST /fhir/Appointment` is the same booking request.
 */
import type { Appointment } from 'fhir/r4.js';
import { bookAppointment as bookAppointmentUseCase } from '../../scheduling/stories/schedule-referral.js';
import { withBodyShape } from '../body-shape.js';
import type { FhirHandler, FhirRequest, FhirResponse } from '../fhir-exchange.js';
import { reservedResponse, reserveOperation } from './appointment-to-reserve.js';
import type { OperationContext } from './definitions.js';

export function bookAppointmentOperation(context: OperationContext): FhirHandler {
  return reserveOperation(context, 'appointment-book', bookAppointmentUseCase);
}

/** `POST /fhir/Appointment`: a client's Appointment is a booking request, no walk-ins (schedule-referral.ts). */
export function requestAppointmentInteraction({ deps }: Pick<OperationContext, 'deps'>): FhirHandler {
  async function requestAppointment(request: FhirRequest): Promise<FhirResponse> {
    return reservedResponse(
      request,
      await bookAppointmentUseCase(deps, { tenant: request.tenant, appointment: request.body as Appointment }),
    );
  }
  return withBodyShape(deps.validator, ['Appointment'], requestAppointment);
}
