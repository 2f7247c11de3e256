import { SITE_CODE_SYSTEM } from '../../directory/rules/site-directory.js';
/**
 * Infusion appointments as FHIR Appointments (https://hl7.org/fhir/R4/appointment.html), in the
 * shape of IHE ITI Scheduling: `$find` proposes (status proposed), `$hold` holds a chair for a
 * while (pending), `$book` books (booked). Participants: the patient, the site and the chair; start
 * and end carry the site's UTC offset, so a reader sees the wall-clock time at the site.
 */
import type { Appointment, Coding, Extension, Reference } from 'fhir/r4.js';
import { instantWithSiteOffset } from './site-hours.js';
import { GATEWAY_CANONICAL_BASE } from '../../referral/rules/referral-status.js';

export const APPOINTMENT_IDENTIFIER_SYSTEM = `${GATEWAY_CANONICAL_BASE}/appointment-id`;
/** A chair of a site: `<site code or Location id>/<chair id>`. */
export const CHAIR_IDENTIFIER_SYSTEM = `${GATEWAY_CANONICAL_BASE}/sid/chair`;
export const HOLD_EXPIRES_EXTENSION_URL = `${GATEWAY_CANONICAL_BASE}/StructureDefinition/hold-expires`;
export const NO_SHOW_FEE_EXTENSION_URL = `${GATEWAY_CANONICAL_BASE}/StructureDefinition/no-show-fee`;

/** The statuses of a visit the patient came to (FHIR's appointment life cycle): recording one needs a booking. */
export const ATTENDED_STATUSES: readonly Appointment['status'][] = ['arrived', 'checked-in', 'fulfilled'];

export interface AppointmentSlot {
  locationId: string;
  siteName: string;
  siteCode?: string;
  timeZone: string;
  chairId: string;
  start: Date;
  end: Date;
}

export interface AppointmentSubject {
  serviceRequestId: string;
  patient: Reference;
  drugName: string;
  drugCodings: readonly Coding[];
  dose: 'first-dose' | 'maintenance';
}

export function chairReference(slot: Pick<AppointmentSlot, 'locationId' | 'siteCode' | 'chairId'>): Reference {
  const number = /(\d+)$/.exec(slot.chairId)?.[1];
  return {
    type: 'Location',
    identifier: { system: CHAIR_IDENTIFIER_SYSTEM, value: `${slot.siteCode ?? slot.locationId}/${slot.chairId}` },
    display: number !== undefined ? `Chair ${number}` : slot.chairId,
  };
}

/** The chair id an Appointment names (its chair participant's identifier), if any. */
export function chairIdOf(appointment: Appointment): string | undefined {
  for (const participant of appointment.participant ?? []) {
    const identifier = participant.actor?.identifier;
    if (identifier?.system === CHAIR_IDENTIFIER_SYSTEM && identifier.value) return identifier.value.split('/').pop();
  }
  return undefined;
}

/** The site Location id an Appointment names (a literal Location reference among its participants). */
export function siteIdOf(appointment: Appointment): string | undefined {
  for (const participant of appointment.participant ?? []) {
    const match = /^Location\/([A-Za-z0-9\-.]{1,64})$/.exec(participant.actor?.reference ?? '');
    if (match) return match[1];
  }
  return undefined;
}

export function buildAppointment(input: {
  id?: string;
  status: Extract<Appointment['status'], 'proposed' | 'pending' | 'booked'>;
  slot: AppointmentSlot;
  subject: AppointmentSubject;
  holdExpiresAt?: Date;
  created?: Date;
}): Appointment {
  const { slot, subject } = input;
  const participantStatus = input.status === 'booked' ? 'accepted' : 'needs-action';
  const extension: Extension[] = input.holdExpiresAt
    ? [{ url: HOLD_EXPIRES_EXTENSION_URL, valueInstant: input.holdExpiresAt.toISOString() }]
    : [];
  return {
    resourceType: 'Appointment',
    ...(input.id !== undefined ? { id: input.id, identifier: [{ system: APPOINTMENT_IDENTIFIER_SYSTEM, value: input.id }] } : {}),
    ...(extension.length > 0 ? { extension } : {}),
    status: input.status,
    serviceType: [{ coding: [...subject.drugCodings], text: subject.drugName }],
    description: `${subject.drugName} infusion (${subject.dose === 'first-dose' ? 'first dose' : 'maintenance dose'})`,
    start: instantWithSiteOffset(slot.start, slot.timeZone),
    end: instantWithSiteOffset(slot.end, slot.timeZone),
    minutesDuration: Math.round((slot.end.getTime() - slot.start.getTime()) / 60_000),
    ...(input.created ? { created: input.created.toISOString() } : {}),
    basedOn: [{ reference: `ServiceRequest/${subject.serviceRequestId}` }],
    participant: [
      { actor: subject.patient, required: 'required', status: participantStatus },
      // The site code makes it a logical reference too, for receivers without the gateway's directory.
      {
        actor: {
          reference: `Location/${slot.locationId}`,
          ...(slot.siteCode !== undefined ? { type: 'Location', identifier: { system: SITE_CODE_SYSTEM, value: slot.siteCode } } : {}),
          display: slot.siteName,
        },
        required: 'required',
        status: 'accepted',
      },
      { actor: chairReference(slot), required: 'required', status: 'accepted' },
    ],
  };
}
