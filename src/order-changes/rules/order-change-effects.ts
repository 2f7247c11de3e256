/**
 * What an order change does to the referral's records (docs/order-changes.md), as pure functions
 * from the current records to the next: the Task stopped, held, resumed or sent back to a step;
 * Appointments cancelled; the patient's notice. The use case (follow-order-change.ts) stores them
 * and writes them back.
 *
 * - Task: `status` and `statusReason` per https://hl7.org/fhir/R4/task.html#statemachine
 *   (`cancelled` ends it, `on-hold` suspends it, statusReason says why).
 * - Appointment: `cancelled` with `cancelationReason` (https://hl7.org/fhir/R4/appointment.html).
 * - Notice: a Communication (https://hl7.org/fhir/R4/communication.html), category `notification`,
 *   about the Appointment, to the patient; like reminders, its text states the date absolutely and
 *   names neither the patient nor the drug.
 */
import type { Appointment, CodeableConcept, Communication, Reference, Task } from 'fhir/r4.js';
import type { OrderPart } from './order-change.js';
import { ORDER_CHANGE_REASON_SYSTEM } from './order-change.js';
import { formatAppointmentTime } from '../../delivery/rules/reminder-text.js';
import {
  GATEWAY_CANONICAL_BASE,
  TASK_PARAMETER_TYPE_SYSTEM,
  taskStatusFor,
  type ReferralStatus,
  referralStatusOf,
  taskStatusFields,
} from '../../referral/rules/referral-status.js';

export const APPOINTMENT_NOTICE_IDENTIFIER_SYSTEM = `${GATEWAY_CANONICAL_BASE}/appointment-notice-id`;
const COMMUNICATION_CATEGORY_SYSTEM = 'http://terminology.hl7.org/CodeSystem/communication-category';

/** Task outputs about booked visits: gone once the visits are cancelled. */
const VISIT_OUTPUTS = new Set(['appointment', 'planned-dose']);

function withBusinessStatus(task: Task & { id: string }, status: ReferralStatus): Task & { id: string } {
  return {
    ...task,
    businessStatus: taskStatusFields(status).businessStatus,
  };
}

function withoutVisitOutputs(task: Task & { id: string }): Task & { id: string } {
  const { output, ...rest } = task;
  const kept = (output ?? []).filter(
    (o) => !o.type.coding?.some((c) => c.system === TASK_PARAMETER_TYPE_SYSTEM && VISIT_OUTPUTS.has(c.code ?? '')),
  );
  return kept.length > 0 ? { ...rest, output: kept } : rest;
}

/** The order was revoked or entered in error: the referral ends (Task cancelled, business status cancelled), with the reason. */
export function taskStoppedByOrder(task: Task & { id: string }, reason: CodeableConcept, now: Date): Task & { id: string } {
  return {
    ...withBusinessStatus(withoutVisitOutputs(task), 'cancelled'),
    status: 'cancelled',
    statusReason: reason,
    lastModified: now.toISOString(),
  };
}

/**
 * Where a held referral stands while on hold, and resumes from: its visits are cancelled, so a
 * scheduled referral is ready to schedule again; any other step is kept.
 */
export function stepWhileHeld(status: ReferralStatus): ReferralStatus {
  return status === 'scheduled' ? 'ready-to-schedule' : status;
}

/** The order is on hold: the Task is `on-hold` with the reason, at the step it resumes from. */
export function taskHeldByOrder(task: Task & { id: string }, reason: CodeableConcept, now: Date): Task & { id: string } {
  const step = stepWhileHeld(referralStatusOf(task) ?? 'received');
  return {
    ...withBusinessStatus(withoutVisitOutputs(task), step),
    status: 'on-hold',
    statusReason: reason,
    lastModified: now.toISOString(),
  };
}

/**
 * The order is active again with nothing the referral's steps read changed: the Task carries on
 * at its step, with the reason it had before the hold (a misroute to confirm, a denial), if any.
 */
export function taskResumed(task: Task & { id: string }, now: Date, reasonBeforeHold?: CodeableConcept): Task & { id: string } {
  const { statusReason: _held, ...rest } = task;
  const step = referralStatusOf(task) ?? 'received';
  return {
    ...rest,
    status: taskStatusFor(step),
    ...(reasonBeforeHold ? { statusReason: reasonBeforeHold } : {}),
    lastModified: now.toISOString(),
  };
}

export function orderChangedReason(changed: readonly OrderPart[], step: string): CodeableConcept {
  const display = `The order changed in the EHR (${changed.join(', ')}): the referral is checked again from ${step}`;
  return {
    coding: [{ system: ORDER_CHANGE_REASON_SYSTEM, code: 'order-changed', display: 'The order changed in the EHR' }],
    text: display,
  };
}

/**
 * A changed drug, dose, period, insurance or diagnosis: back to the coverage step, visits
 * cancelled, the earlier coverage findings and authorization dropped (`withoutCoverage`: they were
 * for the order as it was), the reason on the Task until the step decides.
 */
export function taskForCoverageRecheck(
  task: Task & { id: string },
  input: { changed: readonly OrderPart[]; now: Date; withoutCoverage: (task: Task & { id: string }) => Task & { id: string } },
): Task & { id: string } {
  const next = withBusinessStatus(input.withoutCoverage(withoutVisitOutputs(task)), 'verifying-coverage');
  return {
    ...next,
    status: taskStatusFor('verifying-coverage'),
    statusReason: orderChangedReason(input.changed, 'the coverage step'),
    lastModified: input.now.toISOString(),
  };
}

/** A booked or held Appointment cancelled because its order changed, with the reason. */
export function appointmentCancelledByOrder(
  appointment: Appointment & { id: string },
  reason: CodeableConcept,
): Appointment & { id: string } {
  const { meta: _meta, ...rest } = appointment;
  return {
    ...rest,
    status: 'cancelled',
    cancelationReason: reason,
    participant: (rest.participant ?? []).map((p) => ({ ...p, status: 'declined' as const })),
  };
}

export type NoticeKind = 'cancelled' | 'rescheduled';

/** The notice's business identifier: one per Appointment and event (a reschedule names the time it moved from). */
export function noticeKey(appointmentId: string, kind: NoticeKind, from?: Date): string {
  return kind === 'cancelled' ? `${appointmentId}:cancelled` : `${appointmentId}:moved-from:${from?.toISOString() ?? 'unknown'}`;
}

/** What the patient is told, dates stated absolutely in the site's zone. */
export function noticeText(input: {
  kind: NoticeKind;
  siteName: string;
  timeZone: string;
  start: Date;
  previousStart?: Date;
  why?: string;
}): string {
  if (input.kind === 'cancelled') {
    const why = input.why ? ` ${input.why}.` : '';
    return `Your infusion appointment at ${input.siteName} on ${formatAppointmentTime(input.start, input.timeZone)} is cancelled.${why} The infusion center will contact you.`;
  }
  const from = input.previousStart ? ` from ${formatAppointmentTime(input.previousStart, input.timeZone)}` : '';
  return `Your infusion appointment at ${input.siteName} has moved${from} to ${formatAppointmentTime(input.start, input.timeZone)}. Earlier reminders for the old time no longer apply.`;
}

/** The patient's notice of a cancelled or moved appointment, in preparation until the notifier takes it. */
export function appointmentNotice(input: {
  id: string;
  key: string;
  appointmentId: string;
  patient: Reference | undefined;
  text: string;
  reason?: CodeableConcept;
}): Communication & { id: string } {
  return {
    resourceType: 'Communication',
    id: input.id,
    identifier: [{ system: APPOINTMENT_NOTICE_IDENTIFIER_SYSTEM, value: input.key }],
    status: 'preparation',
    category: [{ coding: [{ system: COMMUNICATION_CATEGORY_SYSTEM, code: 'notification', display: 'Notification' }] }],
    priority: 'routine',
    ...(input.patient ? { subject: input.patient, recipient: [input.patient] } : {}),
    about: [{ reference: `Appointment/${input.appointmentId}` }],
    ...(input.reason ? { reasonCode: [input.reason] } : {}),
    payload: [{ contentString: input.text }],
  };
}
