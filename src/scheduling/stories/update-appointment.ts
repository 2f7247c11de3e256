/**
 * Story: a client changes a booked Appointment (docs/domain.md 4-7): cancels it (the chair is
 * freed, the referral is ready to schedule again), moves it (checked as `$book` checks a new
 * time, with the pharmacy's notice per policy), or records the visit (arrived, checked-in,
 * fulfilled, noshow). No walk-ins: an arrival for what was not booked is refused with the next
 * slots (schedule-referral.ts).
 */
import type { Appointment, CodeableConcept, OperationOutcomeIssue, Task } from 'fhir/r4.js';
import { DateTime } from 'luxon';
import { changedElementsOutside } from '../../fhir/resources.js';
import { errorIssue, notFound, unprocessable } from '../../fhir/outcomes.js';
import { ATTENDED_STATUSES, chairIdOf, siteIdOf, type AppointmentSlot } from '../rules/appointment.js';
import { rescheduleNoticeIssues } from '../rules/lead-time.js';
import type { EhrReferences } from '../../referral/rules/referral.js';
import { TASK_PARAMETER_TYPE_SYSTEM, referralStatusOf, taskStatusFields } from '../../referral/rules/referral-status.js';
import type { ChairBooking, ResourceWriter, TenantId } from '../../ports/resource-store.js';
import { type GatewayDeps, writeBackTarget } from '../../ports/gateway-deps.js';
import { refusal, type Refusal } from '../../ports/refusal.js';
import { ORDER_CHANGE_REASON_SYSTEM } from '../../order-changes/rules/order-change.js';
import { deliverNotices, storeNotice, type PendingNotice } from '../../delivery/stories/appointment-notices.js';
import { withdrawRemindersOfTime } from '../../delivery/stories/send-reminders.js';
import { markNoShow } from './mark-no-shows.js';
import { chairTaken, serviceRequestIdOf, slotOfAppointment, walkInRefusalFor } from './schedule-referral.js';
import { contextAtSite, schedulingContext, writeBackMessages, type SchedulingContext } from './scheduling-context.js';

/** Why a reminder of a visit a client cancelled, not yet sent, is withdrawn (profiles/CodeSystem-order-change-reason.json). */
const APPOINTMENT_CANCELLED_REASON: CodeableConcept = {
  coding: [{ system: ORDER_CHANGE_REASON_SYSTEM, code: 'appointment-cancelled', display: 'The appointment was cancelled' }],
  text: 'Withdrawn: the appointment was cancelled',
};

/** What a client may move an Appointment's status to, from each status (FHIR's appointment life cycle). */
const NEXT_STATUSES: Partial<Record<Appointment['status'], readonly Appointment['status'][]>> = {
  pending: ['pending', 'cancelled'],
  booked: ['booked', 'arrived', 'checked-in', 'fulfilled', 'cancelled', 'noshow', 'entered-in-error'],
  arrived: ['arrived', 'checked-in', 'fulfilled', 'entered-in-error'],
  'checked-in': ['checked-in', 'fulfilled', 'entered-in-error'],
};

/** Whether the Task plans a dose after this one (planned-dose outputs, written at booking). */
function hasLaterPlannedDose(task: Task, start: string | undefined): boolean {
  if (start === undefined) return false;
  const at = new Date(start).getTime();
  return (task.output ?? []).some(
    (o) =>
      o.type.coding?.some((c) => c.system === TASK_PARAMETER_TYPE_SYSTEM && c.code === 'planned-dose') &&
      o.valueDateTime !== undefined &&
      new Date(o.valueDateTime).getTime() > at,
  );
}

/** Elements of a booked Appointment a client may change: the status and the time (a reschedule). */
const CLIENT_APPOINTMENT_ELEMENTS = new Set([
  'meta',
  'text',
  'status',
  'start',
  'end',
  'minutesDuration',
  'participant',
  'cancelationReason',
  'comment',
  'patientInstruction',
]);

/** The elements a client may not change on a stored Appointment (the gateway keeps them). */
function keptElementIssues(current: Appointment, body: Appointment): OperationOutcomeIssue[] {
  return changedElementsOutside(current, body, CLIENT_APPOINTMENT_ELEMENTS).map((key) =>
    errorIssue(
      'business-rule',
      `Appointment.${key} is kept by the gateway; a client may change the status or the time`,
      `Appointment.${key}`,
    ),
  );
}

/**
 * What is wrong with a client's change of a stored Appointment, walk-ins aside: elements the
 * gateway keeps, a status the current one cannot become, another patient, a visit recorded
 * before its (site-local) day.
 */
function clientChangeIssues(current: Appointment, body: Appointment, now: Date): OperationOutcomeIssue[] {
  const issues = keptElementIssues(current, body);
  const allowed = NEXT_STATUSES[current.status] ?? [current.status];
  if (!allowed.includes(body.status)) {
    issues.push(
      errorIssue(
        'business-rule',
        `An appointment that is ${current.status} cannot become ${body.status}; book again with $find and $book`,
        'Appointment.status',
      ),
    );
  }
  if (JSON.stringify(body.participant?.[0]?.actor) !== JSON.stringify(current.participant?.[0]?.actor)) {
    issues.push(errorIssue('business-rule', 'The patient of an appointment cannot change', 'Appointment.participant[0].actor'));
  }
  if (ATTENDED_STATUSES.includes(body.status) && !ATTENDED_STATUSES.includes(current.status) && current.start !== undefined) {
    const visitDay = DateTime.fromISO(current.start, { setZone: true }).startOf('day');
    if (now.getTime() < visitDay.toMillis())
      issues.push(
        errorIssue(
          'business-rule',
          `The visit is on ${visitDay.toISODate()}; it cannot be recorded as ${body.status} before then`,
          'Appointment.status',
        ),
      );
  }
  return issues;
}

/**
 * The new time of a booked appointment the client moved, checked as `$book` would check it (the
 * pharmacy's notice per policy, the order and authorization windows, a free chair's hours), with
 * the notice's warnings; or the refusal.
 */
function rescheduledSlot(
  deps: Pick<GatewayDeps, 'scheduling'>,
  context: SchedulingContext,
  change: { current: Appointment; body: Appointment; now: Date },
): { slot: AppointmentSlot; warnings: OperationOutcomeIssue[] } | Refusal {
  const { current, body, now } = change;
  if (current.status !== 'booked' || body.status !== 'booked') {
    return refusal(
      unprocessable([errorIssue('business-rule', 'Only a booked appointment is rescheduled, and it stays booked', 'Appointment.status')]),
    );
  }
  const notice = rescheduleNoticeIssues({
    now,
    leadTimeBusinessDays: context.drug.pharmacyLeadTimeBusinessDays,
    timeZone: context.calendar.timeZone,
    closures: context.calendar.closures,
    start: new Date(body.start ?? ''),
    policy: deps.scheduling.lateReschedule,
  });
  if (notice.some((i) => i.severity === 'error')) return refusal(unprocessable(notice));
  // The lead time was checked against now (above); the order and authorization windows still hold.
  const checked = slotOfAppointment({ ...context, earliest: new Date(Math.min(context.earliest.getTime(), now.getTime())) }, body);
  return checked.slot ? { slot: checked.slot, warnings: notice } : refusal(unprocessable(checked.issues));
}

/**
 * The client's change, stored in one transaction: the chair moved or freed, the Appointment
 * saved (If-Match), the referral ready to schedule again after a cancellation or a dose given,
 * the EHR's copies queued, and the reminders of an earlier time withdrawn (a patient already
 * reminded of it gets a notice that it moved).
 */
async function saveClientChange(
  deps: GatewayDeps,
  tx: ResourceWriter,
  change: {
    tenant: TenantId;
    ifMatchVersionId: string | undefined;
    context: SchedulingContext;
    current: Appointment & { id: string };
    next: Appointment & { id: string };
    booking: ChairBooking | undefined;
    slot: AppointmentSlot | undefined;
    cancelled: boolean;
    nextDose: boolean;
    /** Where the tenant writes back (writeBackTarget), or undefined. */
    writeBackTo: EhrReferences | undefined;
    warnings: OperationOutcomeIssue[];
    now: Date;
  },
): Promise<
  { kind: 'updated'; appointment: Appointment & { id: string }; issues: OperationOutcomeIssue[]; notices: PendingNotice[] } | Refusal
> {
  const { context, current, next, booking, slot, cancelled, nextDose, writeBackTo, warnings, now } = change;
  if (slot && booking) {
    const reservation = await tx.reserveChair(
      { ...booking, chairId: slot.chairId, start: slot.start.toISOString(), end: slot.end.toISOString() },
      now,
    );
    if (!reservation.reserved) return refusal(chairTaken(reservation.conflict, context));
  }
  if (cancelled) await tx.releaseChair(current.id);
  const stored = (await tx.update(change.tenant, next, now, {
    ifMatchVersionId: change.ifMatchVersionId ?? current.meta?.versionId ?? '1',
  })) as Appointment & { id: string };
  if ((cancelled || nextDose) && referralStatusOf(context.task) === 'scheduled') {
    // The referral is cleared still: it goes back to be scheduled again (this dose, or the next).
    const { output, ...task } = context.task;
    const ready: Task & { id: string } = {
      ...task,
      ...taskStatusFields('ready-to-schedule'),
      lastModified: context.task.lastModified ?? now.toISOString(),
      ...(output ? { output: output.filter((o) => !o.type.coding?.some((c) => c.code === 'appointment')) } : {}),
    };
    const saved = await tx.update(change.tenant, ready, now);
    await tx.updateReferralStatus(change.tenant, context.row.id, 'ready-to-schedule', now);
    if (writeBackTo) await tx.enqueue(writeBackMessages(deps, change.tenant, context, writeBackTo).task(saved), now);
  }
  if (writeBackTo) await tx.enqueue(writeBackMessages(deps, change.tenant, context, writeBackTo).appointment(stored), now);
  // Rescheduled: the reminders of the earlier time are withdrawn; a patient already reminded of it is told it moved.
  const notices: PendingNotice[] = [];
  if (cancelled && current.status === 'booked' && current.start !== undefined) {
    await withdrawRemindersOfTime(deps, tx, {
      tenant: change.tenant,
      referralId: context.row.id,
      ehr: context.ehr,
      appointmentId: current.id,
      previousStart: new Date(current.start),
      now,
      reason: APPOINTMENT_CANCELLED_REASON,
    });
  }
  if (slot && current.start !== undefined) {
    const previousStart = new Date(current.start);
    const reminders = await withdrawRemindersOfTime(deps, tx, {
      tenant: change.tenant,
      referralId: context.row.id,
      ehr: context.ehr,
      appointmentId: current.id,
      previousStart,
      now,
    });
    const notice =
      reminders.alreadySent > 0
        ? await storeNotice(deps, tx, { tenant: change.tenant, appointment: stored, kind: 'rescheduled', previousStart, now })
        : undefined;
    if (notice) notices.push(notice);
  }
  return { kind: 'updated' as const, appointment: stored, issues: warnings, notices };
}

/**
 * A client's update of a stored Appointment: cancel (the chair is freed, the referral is ready to
 * schedule again), reschedule (a new time on the same site, with the pharmacy's notice: refused or
 * flagged per policy), or record the visit (arrived, checked-in, fulfilled, noshow).
 */
export async function updateAppointmentByClient(
  deps: GatewayDeps,
  input: { tenant: TenantId; id: string; body: unknown; ifMatchVersionId?: string },
): Promise<{ kind: 'updated'; appointment: Appointment & { id: string }; issues: OperationOutcomeIssue[] } | Refusal> {
  const body = input.body as Appointment | null;
  if (typeof body !== 'object' || body === null || body.resourceType !== 'Appointment' || body.id !== input.id) {
    return {
      kind: 'refused',
      outcome: unprocessable([errorIssue('invalid', `The body must be the Appointment ${input.id}`, 'Appointment.id')]),
    };
  }
  const stored = await deps.store.read<Appointment>([input.tenant], 'Appointment', input.id);
  if (!stored?.id) {
    if (ATTENDED_STATUSES.includes(body.status)) {
      // An arrival recorded on an appointment that was never booked: a walk-in (seed 001).
      return walkInRefusalFor(
        deps,
        input.tenant,
        serviceRequestIdOf(body),
        [
          errorIssue(
            'business-rule',
            `No walk-ins: there is no booked appointment ${input.id} to record as ${body.status}; book one of the slots offered`,
            'Appointment.status',
          ),
        ],
        'Appointment.start',
      );
    }
    return { kind: 'refused', outcome: notFound('Appointment', input.id) };
  }
  const current = stored as Appointment & { id: string };
  const serviceRequestId = serviceRequestIdOf(current);
  const allowed = NEXT_STATUSES[current.status] ?? [current.status];
  if (ATTENDED_STATUSES.includes(body.status) && !allowed.includes(body.status)) {
    // The patient turned up for something not booked (a hold, a cancelled or missed visit): a
    // walk-in, refused with the next slots.
    return walkInRefusalFor(
      deps,
      input.tenant,
      serviceRequestId,
      [
        ...keptElementIssues(current, body),
        errorIssue(
          'business-rule',
          `No walk-ins: an appointment that is ${current.status} is not booked, so it cannot become ${body.status}; book one of the slots offered`,
          'Appointment.status',
        ),
      ],
      'Appointment.start',
    );
  }
  const now = deps.clock.now();
  const issues = clientChangeIssues(current, body, now);
  if (issues.length > 0 || serviceRequestId === undefined) return refusal(unprocessable(issues));
  if (body.status === 'noshow' && current.status === 'booked') {
    // The same as the no-show job: fee policy, chair freed, a reschedule Task, the referral ready again.
    await markNoShow(deps, { tenant: input.tenant, appointmentId: current.id });
    const marked = (await deps.store.read<Appointment>([input.tenant], 'Appointment', current.id)) as Appointment & { id: string };
    return { kind: 'updated', appointment: marked, issues: [] };
  }

  const booking = await deps.store.readChairBooking(current.id);
  const moved =
    body.start !== current.start ||
    body.end !== current.end ||
    chairIdOf(body) !== chairIdOf(current) ||
    siteIdOf(body) !== siteIdOf(current);
  const prepared = await schedulingContext(deps, input.tenant, serviceRequestId, {
    expression: 'Appointment.basedOn',
    rescheduling: current.id,
  });
  const confirmedContext = prepared.ok ? prepared.context : (prepared.context as SchedulingContext | undefined);
  if (!confirmedContext?.site) return { kind: 'refused', outcome: unprocessable(prepared.ok ? [] : prepared.issues) };
  // An appointment booked at another site (multi-site $find) is worked at that site, even if the
  // site has since left the plan's network or closed: a booked visit can always be cancelled.
  const bookedSiteId = siteIdOf(current);
  const bookedSite =
    bookedSiteId !== undefined && bookedSiteId !== confirmedContext.site.locationId
      ? (await deps.sites.current()).site(bookedSiteId)
      : undefined;
  const context = (bookedSite ? await contextAtSite(deps, confirmedContext, bookedSite) : undefined) ?? confirmedContext;
  let slot: AppointmentSlot | undefined;
  const warnings: OperationOutcomeIssue[] = [];
  if (moved) {
    const rescheduled = rescheduledSlot(deps, context, { current, body, now });
    if ('kind' in rescheduled) return rescheduled;
    ({ slot } = rescheduled);
    warnings.push(...rescheduled.warnings);
  }
  const cancelled = body.status === 'cancelled' || body.status === 'entered-in-error';
  // A dose given: the chair is kept (it was used); the referral goes on to its next planned dose, if any.
  const nextDose = body.status === 'fulfilled' && current.status !== 'fulfilled' && hasLaterPlannedDose(context.task, current.start);
  const next: Appointment & { id: string } = { ...body, id: current.id };
  const writeBackTo = writeBackTarget(deps, input.tenant, context.ehr);
  const outcome = await deps.store.transaction((tx) =>
    saveClientChange(deps, tx, {
      tenant: input.tenant,
      ifMatchVersionId: input.ifMatchVersionId,
      context,
      current,
      next,
      booking,
      slot,
      cancelled,
      nextDose,
      writeBackTo,
      warnings,
      now,
    }),
  );
  if (outcome.kind !== 'updated') return outcome;
  const { notices, ...updated } = outcome;
  await deliverNotices(deps, { tenant: input.tenant, referralId: context.row.id, ehr: context.ehr, notices });
  return updated;
}
