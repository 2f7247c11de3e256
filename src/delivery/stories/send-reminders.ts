/**
 * Story: remind the patient of a booked infusion before the visit (docs/domain.md "The path of one
 * referral", 6; field note 001: SMS, e-mail or phone reminders), at each configured offset
 * (REMINDER_HOURS, default 72 and 24 hours before the start).
 *
 *   booked Appointment of a scheduled referral, start within an offset
 *     -> one Communication per (Appointment, offset), made once (a fixed id, created under a lock)
 *     -> handed to the notifier -> completed (sent), or kept for the next run after a failure
 *
 * A reminder is a FHIR Communication (https://hl7.org/fhir/R4/communication.html), category
 * `reminder`, about the Appointment, to the patient; its text states the date absolutely and names
 * neither the patient nor the drug (src/delivery/rules/reminder-text.ts). Its status (event-status,
 * https://hl7.org/fhir/R4/valueset-event-status.html) tells where it stands:
 *
 *   preparation  claimed by a run, being handed to the notifier (another run leaves it alone
 *                until the claim is older than CLAIM_LEASE_MS: its runner died)
 *   in-progress  the notifier failed in a way worth retrying (statusReason says how): the next
 *                run hands it over again
 *   completed    sent (`sent` is when)
 *   not-done     never sent, and it will not be (statusReason says why): no notifier, a
 *                permanent failure, a nearer reminder that supersedes it, or the visit began
 *
 * A patient booked within 24 hours of the visit gets the 24-hour reminder only: the farther ones
 * that are due at the same time are recorded as not-done (superseded), never sent together.
 */
import { createHash } from 'node:crypto';
import type { Appointment, CodeableConcept, Communication, Location, Reference, Task } from 'fhir/r4.js';
import { siteIdOf, CHAIR_IDENTIFIER_SYSTEM } from '../../scheduling/rules/appointment.js';
import { ORDER_CHANGE_REASON_SYSTEM } from '../../order-changes/rules/order-change.js';
import type { EhrReferences } from '../../referral/rules/referral.js';
import { GATEWAY_CANONICAL_BASE, TASK_PARAMETER_TYPE_SYSTEM } from '../../referral/rules/referral-status.js';
import { communicationWriteBack } from '../rules/write-back.js';
import { reminderMessage } from '../rules/reminder-text.js';
import { outcomeFromError } from '../../fhir/outcomes.js';
import { parseRelativeReference } from '../../fhir/references.js';
import { NotifierError } from '../../ports/notifier.js';
import type { ReferralRow, ResourceWriter, TenantId } from '../../ports/resource-store.js';
import type { GatewayDeps } from '../../ports/gateway-deps.js';

export const REMINDER_IDENTIFIER_SYSTEM = `${GATEWAY_CANONICAL_BASE}/reminder-id`;
export const COMMUNICATION_CATEGORY_SYSTEM = 'http://terminology.hl7.org/CodeSystem/communication-category';

/** How long a run's claim on a reminder stands before another run may take it over. */
export const CLAIM_LEASE_MS = 15 * 60_000;

/** The most referrals one run looks at, per status (the store lists least recently changed first). */
export const MAX_REFERRALS_PER_RUN = 10_000;

/** A booked Appointment of a scheduled referral: what reminders and no-shows work on. */
export interface ScheduledAppointment {
  row: ReferralRow;
  task: Task & { id: string };
  appointment: Appointment & { id: string };
}

const outputOf = (task: Task, code: string) =>
  task.output?.find((o) => o.type.coding?.some((c) => c.system === TASK_PARAMETER_TYPE_SYSTEM && c.code === code));

/**
 * The Appointments the scheduled referrals of every tenant point at (their Task's `appointment`
 * output), in any status: the caller decides which matter.
 */
export async function scheduledAppointments(deps: Pick<GatewayDeps, 'logger' | 'store'>): Promise<ScheduledAppointment[]> {
  const rows = await deps.store.listReferralsByStatus('scheduled', { limit: MAX_REFERRALS_PER_RUN });
  if (rows.length === MAX_REFERRALS_PER_RUN)
    deps.logger.warn('more scheduled referrals than one run looks at', { limit: MAX_REFERRALS_PER_RUN });
  const found: ScheduledAppointment[] = [];
  for (const row of rows) {
    const task = await deps.store.read<Task>([row.tenant], 'Task', row.taskId);
    const reference = task ? parseRelativeReference(outputOf(task, 'appointment')?.valueReference?.reference) : undefined;
    if (!task?.id || reference?.resourceType !== 'Appointment') continue;
    const appointment = await deps.store.read<Appointment>([row.tenant], 'Appointment', reference.id);
    if (appointment?.id) found.push({ row, task: task as Task & { id: string }, appointment: appointment as Appointment & { id: string } });
  }
  return found;
}

/** The patient of an Appointment: the participant that is neither the site nor the chair. */
export function patientOf(appointment: Appointment): Reference | undefined {
  const participant = (appointment.participant ?? []).find((p) => {
    const actor = p.actor;
    if (!actor) return false;
    if (actor.reference?.startsWith('Location/') || actor.type === 'Location' || actor.identifier?.system === CHAIR_IDENTIFIER_SYSTEM)
      return false;
    return true;
  });
  return participant?.actor;
}

/**
 * `<appointmentId>@<start>:<hours>h`: the reminder's business identifier, one per Appointment, time
 * and offset. The time is part of it because a reminder is about a visit at that time: a
 * rescheduled Appointment gets reminders of its own, and those of its earlier time are withdrawn
 * (withdrawRemindersOfTime).
 */
export function reminderKey(appointmentId: string, hours: number, start: Date): string {
  return `${appointmentId}@${start.toISOString()}:${hours}h`;
}

/** The reminder's id: readable when it fits in a FHIR id (64 characters), else a digest of its key. */
export function reminderId(appointmentId: string, hours: number, start: Date): string {
  const readable = `reminder-${appointmentId}-${Math.floor(start.getTime() / 60_000)}-${hours}h`;
  if (readable.length <= 64 && /^[A-Za-z0-9\-.]+$/.test(readable)) return readable;
  return `reminder-${createHash('sha256')
    .update(reminderKey(appointmentId, hours, start))
    .digest('hex')
    .slice(0, 48)}`;
}

export interface ReminderRunResult {
  /** Booked Appointments looked at. */
  appointments: number;
  sent: number;
  /** Handed over and failed; retried on a later run when the failure is worth retrying. */
  failed: number;
  /** Recorded as not-done without being handed over (superseded, too late). */
  notDone: number;
}

type Due = { hours: number; action: 'send' | 'supersede' | 'expire' };

/**
 * Which offsets of one appointment need work now: the nearest offset whose time has come is
 * sent; farther ones due at the same time are superseded; once the visit has begun, reminders
 * still waiting for a retry are given up.
 */
export function dueReminders(input: { start: Date; now: Date; hours: readonly number[] }): Due[] {
  const untilStart = input.start.getTime() - input.now.getTime();
  if (untilStart <= 0) return input.hours.map((hours) => ({ hours, action: 'expire' }));
  const due = input.hours.filter((h) => untilStart <= h * 3_600_000).sort((a, b) => a - b);
  return due.map((hours, index) => ({ hours, action: index === 0 ? 'send' : 'supersede' }));
}

interface ReminderContent {
  tenant: TenantId;
  /** The referral, and how its EHR knows the patient: each recorded status is written back (docs/write-back.md). */
  referralId: string;
  ehr: EhrReferences | undefined;
  appointment: Appointment & { id: string; start: string };
  hours: number;
  patient: Reference | undefined;
  text: string;
}

function buildReminder(
  content: ReminderContent,
  status: Communication['status'],
  extra: Partial<Communication> = {},
): Communication & { id: string } {
  return {
    resourceType: 'Communication',
    id: reminderId(content.appointment.id, content.hours, new Date(content.appointment.start)),
    identifier: [
      {
        system: REMINDER_IDENTIFIER_SYSTEM,
        value: reminderKey(content.appointment.id, content.hours, new Date(content.appointment.start)),
      },
    ],
    status,
    category: [{ coding: [{ system: COMMUNICATION_CATEGORY_SYSTEM, code: 'reminder', display: 'Reminder' }] }],
    priority: 'routine',
    ...(content.patient ? { subject: content.patient, recipient: [content.patient] } : {}),
    about: [{ reference: `Appointment/${content.appointment.id}` }],
    payload: [{ contentString: content.text }],
    ...extra,
  };
}

/** The reminder text, in the site's zone; undefined when the site or its zone is unknown. */
async function reminderText(
  deps: Pick<GatewayDeps, 'drugs' | 'sites' | 'store' | 'tenancy'>,
  appointment: Appointment,
): Promise<string | undefined> {
  const siteId = siteIdOf(appointment);
  const site = siteId !== undefined ? (await deps.sites.current()).site(siteId) : undefined;
  if (!site?.timeZone || !appointment.start) return undefined;
  const location = await deps.store.read<Location>([deps.tenancy.directoryTenant], 'Location', site.locationId);
  const phone = location?.telecom?.find((t) => t.system === 'phone' && t.value)?.value;
  const drug = deps.drugs.findDrug(appointment.serviceType?.flatMap((s) => s.coding ?? []) ?? []);
  return reminderMessage({
    siteName: site.name,
    start: new Date(appointment.start),
    timeZone: site.timeZone,
    ...(phone !== undefined ? { sitePhone: phone } : {}),
    ...(drug ? { rescheduleNoticeBusinessDays: drug.pharmacyLeadTimeBusinessDays } : {}),
  });
}

type Claim = { claimed: true; reminder: Communication & { id: string } } | { claimed: false; recordedNotDone: boolean };

/**
 * Takes the reminder for this run, in one transaction under the reminder's lock: creates it, or
 * takes it back after a retryable failure or an expired claim. A sent or given-up reminder, or one
 * another run holds, is left alone. Superseded or expired ones are recorded as not-done instead.
 */
async function claim(deps: GatewayDeps, content: ReminderContent, action: Due['action'], now: Date): Promise<Claim> {
  const id = reminderId(content.appointment.id, content.hours, new Date(content.appointment.start));
  return deps.store.transaction(async (tx: ResourceWriter): Promise<Claim> => {
    await tx.lock(`reminder:${id}`);
    const existing = await tx.read<Communication>([content.tenant], 'Communication', id);
    const claimedAt = existing?.meta?.lastUpdated ? new Date(existing.meta.lastUpdated).getTime() : Number.NEGATIVE_INFINITY;
    // Waiting for a retry, or claimed by a run that died before it could say how the hand-over went.
    const waiting =
      existing?.status === 'in-progress' || (existing?.status === 'preparation' && now.getTime() - claimedAt >= CLAIM_LEASE_MS);
    if (action !== 'send') {
      if (existing && !waiting) return { claimed: false, recordedNotDone: false };
      // A reminder that is still to come goes only when it is the nearest one and the visit is ahead.
      if (!existing && action === 'expire') return { claimed: false, recordedNotDone: false };
      const reason =
        action === 'supersede'
          ? `Superseded: a nearer reminder is due at the same time`
          : 'The visit began before the reminder could be sent';
      const notDone = buildReminder(content, 'not-done', { statusReason: { text: reason } });
      const saved = existing
        ? await tx.update(content.tenant, notDone, now, { ifMatchVersionId: existing.meta?.versionId ?? '1' })
        : await tx.create(content.tenant, notDone, now);
      await writeBackReminder(deps, tx, content, saved, now);
      return { claimed: false, recordedNotDone: true };
    }
    if (existing) {
      if (!waiting) return { claimed: false, recordedNotDone: false };
      // The text is made again: the appointment may have moved since the last attempt.
      const reminder = (await tx.update(
        content.tenant,
        buildReminder(content, 'preparation', existing.statusReason ? { statusReason: existing.statusReason } : {}),
        now,
        {
          ifMatchVersionId: existing.meta?.versionId ?? '1',
        },
      )) as Communication & { id: string };
      return { claimed: true, reminder };
    }
    const reminder = (await tx.create(content.tenant, buildReminder(content, 'preparation'), now)) as Communication & { id: string };
    return { claimed: true, reminder };
  });
}

/** Records how the hand-over went: sent, to be retried, or given up. */
async function settle(
  deps: GatewayDeps,
  content: ReminderContent,
  reminder: Communication & { id: string },
  result: { sentAt: Date } | { error: unknown },
  now: Date,
): Promise<void> {
  const { meta: _meta, statusReason: _reason, ...rest } = reminder;
  let next: Communication & { id: string };
  if ('sentAt' in result) {
    next = { ...rest, status: 'completed', sent: result.sentAt.toISOString() };
  } else {
    const retryable = result.error instanceof NotifierError ? result.error.retryable : true;
    const why = outcomeFromError(result.error).issue[0]?.diagnostics ?? 'The notifier failed';
    next = {
      ...rest,
      status: retryable ? 'in-progress' : 'not-done',
      statusReason: { text: retryable ? `${why}; it is tried again on the next run` : why },
    };
  }
  await deps.store.transaction(async (tx: ResourceWriter) => {
    await tx.lock(`reminder:${reminder.id}`);
    const saved = await tx.update(content.tenant, next, now, { ifMatchVersionId: reminder.meta?.versionId ?? '1' });
    await writeBackReminder(deps, tx, content, saved, now);
  });
}

/**
 * Each recorded status of a reminder (sent, to be retried, not done, withdrawn) is written back to
 * the EHR, upserted by the reminder's identifier; the run's own claim (`preparation`) is not.
 */
async function writeBackReminder(
  deps: Pick<GatewayDeps, 'newId' | 'writeBackTenants'>,
  tx: ResourceWriter,
  content: Pick<ReminderContent, 'tenant' | 'referralId' | 'ehr'>,
  reminder: Communication,
  now: Date,
): Promise<void> {
  if (!deps.writeBackTenants.has(content.tenant) || content.ehr === undefined) return;
  await tx.enqueue(
    communicationWriteBack({
      messageId: deps.newId(),
      tenant: content.tenant,
      referralId: content.referralId,
      communication: reminder,
      ehr: content.ehr,
    }),
    now,
  );
}

const WITHDRAWN_REASON: CodeableConcept = {
  coding: [{ system: ORDER_CHANGE_REASON_SYSTEM, code: 'appointment-rescheduled', display: 'The appointment was rescheduled' }],
  text: 'Withdrawn: the appointment was rescheduled; the new time gets its own reminders',
};

/**
 * An Appointment moved from `previousStart` (or cancelled: `reason` says why): its reminders for
 * that time are withdrawn, in the caller's transaction. Reminders are made when due, so those that exist were sent or are being
 * sent. One not yet sent (`preparation`, `in-progress`) becomes `not-done` with statusReason
 * `appointment-rescheduled` — event-status says it "was terminated prior to any activity beyond
 * preparation" (https://hl7.org/fhir/R4/valueset-event-status.html); one already sent stays
 * `completed` (it was sent: a Communication records what happened,
 * https://hl7.org/fhir/R4/communication.html#statemachine) and the caller tells the patient the
 * time moved instead. The reminders of the new time (their key names it) are made by the next runs.
 */
export async function withdrawRemindersOfTime(
  deps: GatewayDeps,
  tx: ResourceWriter,
  input: {
    tenant: TenantId;
    referralId: string;
    ehr: EhrReferences | undefined;
    appointmentId: string;
    previousStart: Date;
    now: Date;
    reason?: CodeableConcept;
  },
): Promise<{ withdrawn: number; alreadySent: number }> {
  const result = { withdrawn: 0, alreadySent: 0 };
  for (const hours of deps.scheduling.reminderHours) {
    const id = reminderId(input.appointmentId, hours, input.previousStart);
    await tx.lock(`reminder:${id}`);
    const existing = await tx.read<Communication>([input.tenant], 'Communication', id);
    if (!existing?.id) continue;
    if (existing.status === 'completed') {
      result.alreadySent += 1;
      continue;
    }
    if (existing.status !== 'preparation' && existing.status !== 'in-progress') continue;
    const { meta: _meta, ...rest } = existing;
    const next: Communication & { id: string } = {
      ...rest,
      id: existing.id,
      status: 'not-done',
      statusReason: input.reason ?? WITHDRAWN_REASON,
    };
    const withdrawn = await tx.update(input.tenant, next, input.now, { ifMatchVersionId: existing.meta?.versionId ?? '1' });
    await writeBackReminder(deps, tx, input, withdrawn, input.now);
    result.withdrawn += 1;
  }
  return result;
}

/**
 * One run of the reminder job: every booked Appointment of a scheduled referral, every offset
 * that is due. Returns counts (no PHI) for the job's log line.
 */
export async function sendReminders(deps: GatewayDeps): Promise<ReminderRunResult> {
  const result: ReminderRunResult = { appointments: 0, sent: 0, failed: 0, notDone: 0 };
  const now = deps.clock.now();
  for (const { row, appointment } of await scheduledAppointments(deps)) {
    if (appointment.status !== 'booked' || !appointment.start) continue;
    result.appointments += 1;
    const due = dueReminders({ start: new Date(appointment.start), now, hours: deps.scheduling.reminderHours });
    if (due.length === 0) continue;
    const text = await reminderText(deps, appointment);
    if (text === undefined) {
      deps.logger.warn("no reminder: the appointment's site or its time zone is unknown", {
        appointmentId: appointment.id,
        referralId: row.id,
      });
      continue;
    }
    for (const { hours, action } of due) {
      const ehr = (row.referral as { ehr?: EhrReferences } | null)?.ehr;
      const content: ReminderContent = {
        tenant: row.tenant,
        referralId: row.id,
        ehr,
        appointment: { ...appointment, start: appointment.start },
        hours,
        patient: patientOf(appointment),
        text,
      };
      try {
        const claimed = await claim(deps, content, action, now);
        if (!claimed.claimed) {
          if (claimed.recordedNotDone) result.notDone += 1;
          continue;
        }
        const sentAt = deps.clock.now();
        const { meta: _meta, statusReason: _reason, ...message } = claimed.reminder;
        try {
          await deps.notifier.send({ ...message, status: 'completed', sent: sentAt.toISOString() });
        } catch (error) {
          result.failed += 1;
          const retryable = error instanceof NotifierError ? error.retryable : true;
          deps.logger.warn('reminder not sent', {
            appointmentId: appointment.id,
            hours,
            channel: deps.notifier.channel,
            retryable,
            ...(error instanceof NotifierError && error.httpStatus !== undefined ? { httpStatus: error.httpStatus } : {}),
          });
          await settle(deps, content, claimed.reminder, { error }, deps.clock.now());
          continue;
        }
        await settle(deps, content, claimed.reminder, { sentAt }, deps.clock.now());
        result.sent += 1;
        deps.logger.info('reminder sent', { appointmentId: appointment.id, hours, channel: deps.notifier.channel });
      } catch (error) {
        // One reminder's trouble (a concurrent change, the database) does not stop the others.
        deps.logger.error('reminder failed', {
          appointmentId: appointment.id,
          hours,
          errorName: error instanceof Error ? error.name : 'unknown',
        });
      }
    }
  }
  return result;
}
