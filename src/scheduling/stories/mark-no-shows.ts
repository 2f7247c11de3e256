/**
 * Story: a booked infusion the patient did not come to (docs/domain.md "The path of one referral", 7;
 * field note 001: a late arrival or no-show is rescheduled, and may carry a fee; one case, USD 50).
 *
 *   booked Appointment, its end + NO_SHOW_GRACE_MINUTES passed, no arrival recorded
 *     -> Appointment `noshow` with the fee policy (NO_SHOW_FEE; 0 = none), the chair freed
 *     -> a reschedule Task (partOf the referral's Task, focus the Appointment, ready)
 *     -> the referral back to ready-to-schedule; all three written back to the EHR
 *
 * Arrival is recorded by the client's update of the Appointment (arrived, checked-in, fulfilled:
 * updateAppointmentByClient); whatever is no longer `booked` is left alone here. The Appointment's
 * update is conditional on the version read, so a client's arrival recorded at the same moment
 * wins or loses cleanly: never both.
 *
 * Appointment statuses: https://hl7.org/fhir/R4/valueset-appointmentstatus.html; a sub-task of the
 * referral: https://hl7.org/fhir/R4/task-definitions.html#Task.partOf.
 */
import type { Appointment, Extension, Identifier, Reference, Resource, Task } from 'fhir/r4.js';
import { APPOINTMENT_IDENTIFIER_SYSTEM, NO_SHOW_FEE_EXTENSION_URL, siteIdOf } from '../rules/appointment.js';
import type { EhrReferences } from '../../referral/rules/referral.js';
import {
  GATEWAY_CANONICAL_BASE,
  REFERRAL_IDENTIFIER_SYSTEM,
  TASK_PARAMETER_TYPE_SYSTEM,
  referralStatusOf,
  taskStatusFields,
} from '../../referral/rules/referral-status.js';
import { formatAppointmentTime } from '../../delivery/rules/reminder-text.js';
import { appointmentWriteBack, EHR_UPSERT, forEhr, taskWriteBack, type EhrUpsertPayload } from '../../delivery/rules/write-back.js';
import type { NewOutboxMessage, ResourceWriter } from '../../ports/resource-store.js';
import { type GatewayDeps, writeBackTarget } from '../../ports/gateway-deps.js';
import { scheduledAppointments, type ScheduledAppointment } from '../../delivery/stories/send-reminders.js';

/** Task.code of the gateway's own sub-tasks of a referral (profiles/CodeSystem-referral-task-type.json). */
export const REFERRAL_TASK_TYPE_SYSTEM = `${GATEWAY_CANONICAL_BASE}/CodeSystem/referral-task-type`;
/** One reschedule Task per missed Appointment: its identifier's value is the Appointment's id. */
export const RESCHEDULE_IDENTIFIER_SYSTEM = `${GATEWAY_CANONICAL_BASE}/reschedule-id`;

export interface NoShowRunResult {
  /** Booked Appointments looked at. */
  appointments: number;
  markedNoShow: number;
}

/** Whether the appointment counts as missed at `now`: still booked, its end plus the grace passed. */
export function isNoShow(appointment: Appointment, now: Date, graceMinutes: number): boolean {
  if (appointment.status !== 'booked' || !appointment.end) return false;
  const end = new Date(appointment.end).getTime();
  return !Number.isNaN(end) && now.getTime() >= end + graceMinutes * 60_000;
}

/** The referral Task's business identifier, as a logical reference the EHR can resolve. */
export function referralTaskLogicalReference(task: Task): Reference | undefined {
  const identifier = task.identifier?.find((i: Identifier) => i.system === REFERRAL_IDENTIFIER_SYSTEM && i.value);
  return identifier ? { type: 'Task', identifier: { system: REFERRAL_IDENTIFIER_SYSTEM, value: identifier.value } } : undefined;
}

/**
 * A sub-task of the referral as the EHR receives it: the gateway's literal references (partOf,
 * focus, for) become the EHR's own or logical ones (https://hl7.org/fhir/R4/references.html#logical).
 */
export function subTaskWriteBack(input: {
  messageId: string;
  tenant: string;
  referralId: string;
  task: Task;
  referralTask: Task;
  ehr: EhrReferences;
  identifier: { system: string; value: string };
  focus?: Reference;
}): NewOutboxMessage {
  const { id: _id, meta: _meta, partOf: _partOf, for: _for, focus: _focus, ...rest } = input.task;
  const partOf = referralTaskLogicalReference(input.referralTask);
  const payload: EhrUpsertPayload = {
    resource: {
      // Any other reference (requester, owner, inputs) follows the references rule too.
      ...forEhr(rest as Task, input.ehr, { patient: input.task.for?.reference !== undefined ? [input.task.for.reference] : [] }),
      ...(partOf ? { partOf: [partOf] } : {}),
      ...(input.focus ? { focus: input.focus } : {}),
      ...(input.ehr.patient ? { for: input.ehr.patient } : {}),
    } as Resource,
    identifier: input.identifier,
  };
  return { id: input.messageId, tenant: input.tenant, orderingKey: `referral:${input.referralId}`, kind: EHR_UPSERT, payload };
}

function noShowAppointment(
  appointment: Appointment & { id: string },
  fee: { value: number; currency: string },
): Appointment & { id: string } {
  const extension: Extension[] = (appointment.extension ?? []).filter((e) => e.url !== NO_SHOW_FEE_EXTENSION_URL);
  if (fee.value > 0) extension.push({ url: NO_SHOW_FEE_EXTENSION_URL, valueMoney: { value: fee.value, currency: fee.currency } });
  const { extension: _old, ...rest } = appointment;
  return { ...rest, ...(extension.length > 0 ? { extension } : {}), status: 'noshow' };
}

function rescheduleTask(input: {
  id: string;
  referralTask: Task & { id: string };
  appointment: Appointment & { id: string };
  when: string;
  now: Date;
}): Task & { id: string } {
  const at = input.now.toISOString();
  return {
    resourceType: 'Task',
    id: input.id,
    identifier: [{ system: RESCHEDULE_IDENTIFIER_SYSTEM, value: input.appointment.id }],
    status: 'ready',
    intent: 'order',
    priority: 'routine',
    code: { coding: [{ system: REFERRAL_TASK_TYPE_SYSTEM, code: 'reschedule', display: 'Reschedule a missed appointment' }] },
    description:
      `The patient did not come to the infusion booked for ${input.when}. Call the patient and book a new time ($find, then $book); ` +
      'the dose is compounded again for the new appointment, so the pharmacy lead time applies.',
    partOf: [{ reference: `Task/${input.referralTask.id}` }],
    focus: { reference: `Appointment/${input.appointment.id}` },
    ...(input.referralTask.for ? { for: input.referralTask.for } : {}),
    authoredOn: at,
    lastModified: at,
  };
}

/** The referral's Task back at ready-to-schedule, without the missed Appointment. */
function readyAgain(task: Task & { id: string }, now: Date): Task & { id: string } {
  const { output, statusReason: _reason, ...rest } = task;
  const kept = (output ?? []).filter(
    (o) => !o.type.coding?.some((c) => c.system === TASK_PARAMETER_TYPE_SYSTEM && c.code === 'appointment'),
  );
  return {
    ...rest,
    ...taskStatusFields('ready-to-schedule'),
    statusReason: { text: 'The patient did not come to the booked appointment; a reschedule Task is open' },
    // Kept as it was: scheduling reads lastModified as when the referral was cleared (its
    // authorization), and a no-show does not change that (scheduling-context.ts, clearedAt).
    lastModified: task.lastModified ?? now.toISOString(),
    ...(kept.length > 0 ? { output: kept } : {}),
  };
}

/**
 * Records one no-show in one transaction; false when it is no longer booked (or, with
 * `requireOverdue`, not yet past its end and the grace).
 */
async function recordNoShow(
  deps: Pick<GatewayDeps, 'newId' | 'scheduling' | 'sites' | 'store' | 'writeBackTenants'>,
  found: ScheduledAppointment,
  now: Date,
  options: { requireOverdue: boolean },
): Promise<boolean> {
  const { row } = found;
  const ehr = (row.referral as { ehr?: EhrReferences } | null)?.ehr;
  const writeBackTo = writeBackTarget(deps, row.tenant, ehr);
  const siteId = siteIdOf(found.appointment);
  const timeZone = siteId !== undefined ? (await deps.sites.current()).site(siteId)?.timeZone : undefined;
  const when = found.appointment.start ? formatAppointmentTime(new Date(found.appointment.start), timeZone ?? 'UTC') : 'its time';
  return deps.store.transaction(async (tx: ResourceWriter) => {
    // Read again inside the transaction: an arrival or a cancel may have come since the listing.
    const appointment = await tx.read<Appointment>([row.tenant], 'Appointment', found.appointment.id);
    const task = await tx.read<Task>([row.tenant], 'Task', found.task.id);
    if (!appointment?.id || !task?.id || appointment.status !== 'booked') return false;
    if (options.requireOverdue && !isNoShow(appointment, now, deps.scheduling.noShowGraceMinutes)) return false;
    const missed = await tx.update(
      row.tenant,
      noShowAppointment(appointment as Appointment & { id: string }, deps.scheduling.noShowFee),
      now,
      {
        ifMatchVersionId: appointment.meta?.versionId ?? '1',
      },
    );
    await tx.releaseChair(appointment.id);
    const referralTask = task as Task & { id: string };
    const reschedule = await tx.create(
      row.tenant,
      rescheduleTask({ id: deps.newId(), referralTask, appointment: appointment as Appointment & { id: string }, when, now }),
      now,
    );
    let savedTask: Task = referralTask;
    if (referralStatusOf(task) === 'scheduled') {
      savedTask = await tx.update(row.tenant, readyAgain(referralTask, now), now, { ifMatchVersionId: task.meta?.versionId ?? '1' });
      await tx.updateReferralStatus(row.tenant, row.id, 'ready-to-schedule', now);
    }
    if (writeBackTo) {
      // What every message about this referral names: the tenant, the referral, the EHR's references.
      const referral = { tenant: row.tenant, referralId: row.id, ehr: writeBackTo };
      await tx.enqueue(
        appointmentWriteBack({ messageId: deps.newId(), ...referral, appointment: missed as Appointment & { id: string } }),
        now,
      );
      await tx.enqueue(taskWriteBack({ messageId: deps.newId(), ...referral, task: savedTask }), now);
      await tx.enqueue(
        subTaskWriteBack({
          messageId: deps.newId(),
          ...referral,
          task: reschedule,
          referralTask: savedTask,
          identifier: { system: RESCHEDULE_IDENTIFIER_SYSTEM, value: appointment.id },
          focus: { type: 'Appointment', identifier: { system: APPOINTMENT_IDENTIFIER_SYSTEM, value: appointment.id } },
        }),
        now,
      );
    }
    return true;
  });
}

/** One run of the no-show job over every tenant's booked Appointments. Counts only, no PHI. */
export async function markNoShows(deps: GatewayDeps): Promise<NoShowRunResult> {
  const result: NoShowRunResult = { appointments: 0, markedNoShow: 0 };
  const now = deps.clock.now();
  for (const found of await scheduledAppointments(deps)) {
    if (found.appointment.status !== 'booked') continue;
    result.appointments += 1;
    if (!isNoShow(found.appointment, now, deps.scheduling.noShowGraceMinutes)) continue;
    try {
      if (await recordNoShow(deps, found, now, { requireOverdue: true })) {
        result.markedNoShow += 1;
        deps.logger.info('appointment marked no-show', { appointmentId: found.appointment.id, referralId: found.row.id });
      }
    } catch (error) {
      // A concurrent change (412 on the Appointment) rolls this one back; the next run looks again.
      deps.logger.warn('no-show not recorded', {
        appointmentId: found.appointment.id,
        referralId: found.row.id,
        errorName: error instanceof Error ? error.name : 'unknown',
      });
    }
  }
  return result;
}

/**
 * A no-show a client records itself (an update to `noshow`): the same fee, freed chair, reschedule
 * Task and write-back as the job's, without waiting for the grace. For updateAppointmentByClient.
 */
export async function markNoShow(deps: GatewayDeps, input: { tenant: string; appointmentId: string }): Promise<'marked' | 'not-booked'> {
  const booking = await deps.store.readChairBooking(input.appointmentId);
  const row = booking && booking.tenant === input.tenant ? await deps.store.readReferral(input.tenant, booking.referralId) : undefined;
  const task = row ? await deps.store.read<Task>([row.tenant], 'Task', row.taskId) : undefined;
  const appointment = await deps.store.read<Appointment>([input.tenant], 'Appointment', input.appointmentId);
  if (!row || !task?.id || !appointment?.id) return 'not-booked';
  const found: ScheduledAppointment = {
    row,
    task: task as Task & { id: string },
    appointment: appointment as Appointment & { id: string },
  };
  return (await recordNoShow(deps, found, deps.clock.now(), { requireOverdue: false })) ? 'marked' : 'not-booked';
}
