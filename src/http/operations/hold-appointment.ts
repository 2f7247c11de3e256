/**
 * `POST /fhir/Appointment/$hold` (profiles/OperationDefinition-appointment-hold.json), in the
 * manner of IHE ITI Scheduling Hold Appointment: the chair of a proposal from $find is held for a
 * while (docs/scheduling.md).
 */
import { holdAppointment } from '../../scheduling/stories/schedule-referral.js';
import type { FhirHandler } from '../fhir-exchange.js';
import { reserveOperation } from './appointment-to-reserve.js';
import type { OperationContext } from './definitions.js';

export function holdAppointmentOperation(context: OperationContext): FhirHandler {
  return reserveOperation(context, 'appointment-hold', holdAppointment);
}
