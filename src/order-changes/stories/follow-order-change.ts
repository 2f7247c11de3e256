/**
 * Story: the EHR changes an order it already sent (docs/order-changes.md) — revokes it, marks it
 * in error, puts it on hold, takes it off hold, or edits its drug, dose, period or site — and the
 * referral follows. The change arrives by pull (poll-ehr.ts), by push (a Subscription
 * notification) or by `PUT /fhir/ServiceRequest/{id}`; all three end here.
 *
 *   the order as the gateway last took it  +  the order now
 *     -> decideOrderChange (src/order-changes/rules/order-change.ts)
 *     -> [one transaction, under the referral's lock]
 *        the gateway's ServiceRequest gets a new version (history kept);
 *        stop | hold: Task cancelled | on-hold with the reason, chairs released, Appointments
 *                     cancelled with the reason, a notice to the patient per booked visit
 *        recheck | resume from a step: visits cancelled, the referral back to the site check or
 *                     the coverage step (the earlier findings dropped), the step queued
 *        resume:      the Task carries on at its step
 *        each changed Task and Appointment queued for write-back to the EHR (the outbox)
 *     -> the notices handed to the notifier, then written back with how that went
 *
 * Written back once: the decision compares with the order as last taken (kept on the referral
 * row), so the same change read again — pulled twice, or pulled and pushed — is `unchanged` and
 * writes nothing; the lock makes two deliveries of the same change at the same instant take turns.
 */
import type { Appointment, CodeableConcept, OperationOutcomeIssue, Reference, ServiceRequest, Task } from 'fhir/r4.js';
import { withoutCoverageFindings } from '../../coverage/rules/coverage-outcome.js';
import { changedParts, decideOrderChange, type OrderChangeDecision, type ResumeStep } from '../rules/order-change.js';
import {
  appointmentCancelledByOrder,
  orderChangedReason,
  taskForCoverageRecheck,
  taskHeldByOrder,
  taskResumed,
  taskStoppedByOrder,
} from '../rules/order-change-effects.js';
import type { EhrReferences, Referral } from '../../referral/rules/referral.js';
import { type ReferralStatus, referralStatusOf } from '../../referral/rules/referral-status.js';
import { buildReferralTask } from '../../referral/rules/referral-task.js';
import type { SiteCheckResult } from '../../site-check/rules/site-check.js';
import { APPOINTMENT_IDENTIFIER_SYSTEM } from '../../scheduling/rules/appointment.js';
import { appealTaskWriteBack, appointmentWriteBack, taskWriteBack } from '../../delivery/rules/write-back.js';
import { parseRelativeReference } from '../../fhir/references.js';
import type { NewOutboxMessage, ReferralRow, ResourceWriter, TenantId } from '../../ports/resource-store.js';
import { type GatewayDeps, writeBackTarget } from '../../ports/gateway-deps.js';
import {
  intakeDecision,
  prepareReferral,
  servedReferralTask,
  validateReferralRequest,
  type PreparedReferral,
} from '../../intake/stories/intake-referral.js';
import { deliverNotices, storeNotice, type PendingNotice } from '../../delivery/stories/appointment-notices.js';
import { withdrawRemindersOfTime } from '../../delivery/stories/send-reminders.js';
import { subTaskWriteBack } from '../../scheduling/stories/mark-no-shows.js';
import { APPEAL_IDENTIFIER_SYSTEM } from '../../coverage/rules/appeal.js';
import { referralStep, VERIFY_COVERAGE_STEP } from '../../referral/stories/referral-steps.js';

/** The order as the referral last acted on it: its status, and the version whose parts the steps checked (before any hold). */
export interface OrderTaken {
  status: ServiceRequest['status'];
  baseline: ServiceRequest;
  /** The Task's statusReason when the hold came, given back when the order resumes. */
  statusReasonBeforeHold?: CodeableConcept;
}

/** The translated referral as kept on its row, with what the order changes need. */
type KeptReferral = Partial<Referral> & { ehr?: EhrReferences; siteCheck?: SiteCheckResult; orderTaken?: OrderTaken };

export type OrderChangeResult =
  | { kind: 'unchanged' }
  | { kind: 'ignored'; why: string }
  | { kind: 'refused'; issues: OperationOutcomeIssue[] }
  | {
      kind: 'applied';
      decision: Exclude<OrderChangeDecision['kind'], 'unchanged' | 'ignore'>;
      serviceRequest: ServiceRequest & { id: string };
      appointmentsCancelled: number;
      chairsReleased: number;
    };

const SITE_ELEMENTS = ['locationReference', 'locationCode', 'performer'] as const;
/** Steps before coverage: a referral still there re-runs the site check whatever changed (nothing is skipped). */
const BEFORE_COVERAGE: ReadonlySet<string> = new Set(['received', 'rejected', 'misroute-suspected']);

/** The order as last taken: kept on the row after the first change; before it, the version intake stored (the oldest in history). */
async function orderTaken(reader: Pick<ResourceWriter, 'history'>, row: ReferralRow): Promise<OrderTaken | undefined> {
  const kept = (row.referral as KeptReferral | null)?.orderTaken;
  if (kept) return kept;
  const versions = await reader.history<ServiceRequest>([row.tenant], 'ServiceRequest', row.serviceRequestId);
  const first = versions.at(-1);
  return first ? { status: first.status, baseline: first } : undefined;
}

function decide(taken: OrderTaken, order: ServiceRequest): OrderChangeDecision {
  return decideOrderChange({ ...taken.baseline, status: taken.status }, order);
}

/**
 * The gateway's next version of its ServiceRequest: the EHR's order as it is now, under the
 * gateway's id; a site the coordinator confirmed ($confirm-site) is kept unless the EHR changed the site.
 */
function nextGatewayOrder(
  order: ServiceRequest,
  current: ServiceRequest & { id: string },
  siteChanged: boolean,
): ServiceRequest & { id: string } {
  const { id: _ehrId, meta: _meta, ...content } = order;
  const next: ServiceRequest & { id: string } = { ...content, id: current.id };
  if (!siteChanged) {
    for (const element of SITE_ELEMENTS) {
      if (current[element] !== undefined) (next as unknown as Record<string, unknown>)[element] = current[element];
      else delete next[element];
    }
  }
  return next;
}

/** The step a changed order is checked again from: its earliest affected one, or the site check for a referral not past it. */
function recheckFrom(from: ResumeStep, status: ReferralStatus | undefined): ResumeStep {
  return status === undefined || BEFORE_COVERAGE.has(status) ? 'site-check' : from;
}

/** Where the referral goes after a followed decision: its next Task, status and record, and the work to queue. */
interface StateAfterDecision {
  task: Task & { id: string };
  status: ReferralStatus;
  referral: KeptReferral;
  /** Whether the coverage step runs again (the referral is back in verifying-coverage). */
  runCoverage: boolean;
  messages: NewOutboxMessage[];
}

/**
 * The referral's next state for a decision (docs/order-changes.md): a stopped order cancels the
 * Task and closes its sub-Tasks, a held one holds it, a resumed one carries on where it was, and a
 * changed one is checked again from the step the change affects: the site check (the Task
 * rebuilt as intake builds it) or the coverage step (its findings cleared).
 */
async function stateAfterDecision(
  deps: GatewayDeps,
  tx: ResourceWriter,
  step: {
    tenant: TenantId;
    decision: Exclude<OrderChangeDecision, { kind: 'unchanged' } | { kind: 'ignore' }>;
    task: Task & { id: string };
    row: ReferralRow;
    stored: KeptReferral;
    /** Whether the tenant's EHR is written back to. */
    writeBack: boolean;
    prepared: PreparedReferral | undefined;
    takenNow: OrderTaken;
    next: ServiceRequest & { id: string };
    now: Date;
  },
): Promise<StateAfterDecision> {
  const { decision, task, row, stored, prepared, takenNow, next, now } = step;
  const ehr = stored.ehr;
  const status = referralStatusOf(task);
  const messages: NewOutboxMessage[] = [];
  let nextTask: Task & { id: string };
  let nextStatus: ReferralStatus;
  let referral: KeptReferral = stored;
  let runCoverage = false;
  switch (decision.kind) {
    case 'stop':
      nextTask = taskStoppedByOrder(task as Task & { id: string }, decision.reason, now);
      nextStatus = 'cancelled';
      messages.push(
        ...(await closeSubTasks(deps, tx, {
          tenant: step.tenant,
          row,
          referralTask: task as Task & { id: string },
          reason: decision.reason,
          now,
          ehr: step.writeBack ? ehr : undefined,
        })),
      );
      break;
    case 'hold':
      nextTask = taskHeldByOrder(task as Task & { id: string }, decision.reason, now);
      nextStatus = referralStatusOf(nextTask) ?? 'received';
      break;
    case 'resume':
    case 'recheck': {
      const { from } = decision;
      if (from === undefined || !prepared) {
        nextTask = taskResumed(task as Task & { id: string }, now, takenNow.statusReasonBeforeHold);
        nextStatus = referralStatusOf(nextTask) ?? 'received';
        runCoverage = nextStatus === 'verifying-coverage';
        break;
      }
      const translated = { ...prepared.translation.referral, ...(ehr ? { ehr } : {}) };
      if (recheckFrom(from, status) === 'site-check') {
        const { status: intakeStatus, rejectionReasons } = intakeDecision(prepared);
        const rebuilt = servedReferralTask(
          buildReferralTask({
            taskId: task.id,
            referralId: row.id,
            serviceRequestId: next.id,
            patient: translated.patient,
            requester: translated.requester,
            status: intakeStatus,
            rejectionReasons,
            ...(prepared.siteCheck ? { siteCheck: prepared.siteCheck } : {}),
            now,
          }),
          next,
          translated.ehr,
        );
        nextTask = {
          ...rebuilt,
          ...(task.authoredOn ? { authoredOn: task.authoredOn } : {}),
          ...(rebuilt.statusReason ? {} : { statusReason: orderChangedReason(decision.changed, 'the site check') }),
        };
        nextStatus = intakeStatus;
        referral = { ...translated, ...(prepared.siteCheck ? { siteCheck: prepared.siteCheck } : {}) };
      } else {
        nextTask = taskForCoverageRecheck(task as Task & { id: string }, {
          changed: decision.changed,
          now,
          withoutCoverage: withoutCoverageFindings,
        });
        nextStatus = 'verifying-coverage';
        referral = { ...translated, ...(stored.siteCheck ? { siteCheck: stored.siteCheck } : {}) };
      }
      runCoverage = nextStatus === 'verifying-coverage';
      break;
    }
  }
  return { task: nextTask, status: nextStatus, referral, runCoverage, messages };
}

/**
 * Applies the change of an order the referral `row` was made from. `order` is the order as the EHR
 * has it now (its own id when read from the EHR). Idempotent: the same order again is `unchanged`.
 */
export async function followOrderChange(
  deps: GatewayDeps,
  input: { tenant: TenantId; row: ReferralRow; order: ServiceRequest; ehrServiceRequestId?: string },
): Promise<OrderChangeResult> {
  const taken = await orderTaken(deps.store, input.row);
  if (!taken) return { kind: 'ignored', why: 'The referral has no stored order to compare with' };
  const first = decide(taken, input.order);
  if (first.kind === 'unchanged') return { kind: 'unchanged' };
  if (first.kind === 'ignore') {
    deps.logger.info('order change not followed', { referralId: input.row.id, why: first.why });
    return { kind: 'ignored', why: first.why };
  }

  const current = await deps.store.read<ServiceRequest>([input.tenant], 'ServiceRequest', input.row.serviceRequestId);
  if (!current?.id) return { kind: 'ignored', why: "The referral's ServiceRequest is missing" };
  const siteChanged = changedParts(taken.baseline, input.order).includes('site');
  const next = nextGatewayOrder(input.order, current as ServiceRequest & { id: string }, siteChanged);

  // A changed order must still be a valid referral before any step runs again on it.
  let prepared: PreparedReferral | undefined;
  if (first.kind === 'recheck' || (first.kind === 'resume' && first.from !== undefined)) {
    const { base, profile } = validateReferralRequest(deps, next);
    const errors = [...base, ...profile].filter((i) => i.severity === 'error' || i.severity === 'fatal');
    if (errors.length > 0) return { kind: 'refused', issues: errors };
    const made = await prepareReferral(
      deps,
      deps.store,
      input.tenant,
      next,
      new Map(),
      input.ehrServiceRequestId !== undefined ? { ehrServiceRequestId: input.ehrServiceRequestId } : {},
    );
    if (!made.ok) return { kind: 'refused', issues: made.issues };
    prepared = made.prepared;
  }

  const now = deps.clock.now();
  const applied = await deps.store.transaction(
    async (tx): Promise<OrderChangeResult & { notices?: PendingNotice[]; ehr?: EhrReferences }> => {
      await tx.lock(`referral:${input.row.id}`);
      // Read again under the lock: a delivery of the same change that got here first makes this one `unchanged`.
      const row = await tx.readReferral(input.tenant, input.row.id);
      const takenNow = row ? await orderTaken(tx, row) : undefined;
      if (!row || !takenNow) return { kind: 'ignored', why: 'The referral is gone' };
      const decision = decide(takenNow, input.order);
      if (decision.kind === 'unchanged') return { kind: 'unchanged' };
      if (decision.kind === 'ignore') return { kind: 'ignored', why: decision.why };
      const needsPrepared = decision.kind === 'recheck' || (decision.kind === 'resume' && decision.from !== undefined);
      if (needsPrepared && !prepared) return { kind: 'ignored', why: 'The order changed again meanwhile; the next delivery takes it' };

      const task = await tx.read<Task>([input.tenant], 'Task', row.taskId);
      if (!task?.id) return { kind: 'ignored', why: "The referral's Task is missing" };
      const stored = row.referral as KeptReferral;
      const ehr = stored.ehr;
      const writeBackTo = writeBackTarget(deps, input.tenant, ehr);
      const messages: NewOutboxMessage[] = [];

      await tx.update(input.tenant, next, now);
      const releases = decision.kind !== 'resume' || decision.from !== undefined;
      const reason: CodeableConcept =
        decision.kind === 'stop' || decision.kind === 'hold'
          ? decision.reason
          : orderChangedReason(decision.kind === 'recheck' || decision.kind === 'resume' ? decision.changed : [], 'the step it affects');
      const released = releases
        ? await releaseVisits(deps, tx, { tenant: input.tenant, row, serviceRequestId: next.id, reason, now })
        : { appointments: [], chairs: 0, notices: [] };
      if (writeBackTo)
        for (const appointment of released.appointments)
          messages.push(
            appointmentWriteBack({ messageId: deps.newId(), tenant: input.tenant, referralId: row.id, appointment, ehr: writeBackTo }),
          );

      const after = await stateAfterDecision(deps, tx, {
        tenant: input.tenant,
        decision,
        task: task as Task & { id: string },
        row,
        stored,
        writeBack: writeBackTo !== undefined,
        prepared,
        takenNow,
        next,
        now,
      });
      messages.push(...after.messages);
      const { task: nextTask, status: nextStatus, runCoverage } = after;
      let { referral } = after;
      // A hold keeps the version taken before it: the resume compares with what the steps checked.
      const keepBaseline = decision.kind === 'stop' || decision.kind === 'hold';
      const heldReason = decision.kind === 'hold' ? task.statusReason : undefined;
      referral = {
        ...referral,
        orderTaken: {
          status: input.order.status,
          baseline: keepBaseline ? takenNow.baseline : stripForBaseline(input.order),
          ...(heldReason ? { statusReasonBeforeHold: heldReason } : {}),
        },
      };
      const savedTask = (await tx.update(input.tenant, nextTask, now, { ifMatchVersionId: task.meta?.versionId ?? '1' })) as Task & {
        id: string;
      };
      await tx.updateReferral(input.tenant, row.id, { status: nextStatus, referral }, now);
      if (writeBackTo)
        messages.push(
          taskWriteBack({ messageId: deps.newId(), tenant: input.tenant, referralId: row.id, task: savedTask, ehr: writeBackTo }),
        );
      if (runCoverage && deps.automaticCoverage)
        messages.push(referralStep(VERIFY_COVERAGE_STEP, { messageId: deps.newId(), tenant: input.tenant, referralId: row.id }));
      for (const message of messages) await tx.enqueue(message, now);
      return {
        kind: 'applied',
        decision: decision.kind,
        serviceRequest: next,
        appointmentsCancelled: released.appointments.filter((a) => a.status === 'cancelled').length,
        chairsReleased: released.chairs,
        notices: released.notices,
        ...(ehr ? { ehr } : {}),
      };
    },
  );
  if (applied.kind !== 'applied') return applied;
  const { notices, ehr, ...result } = applied;
  deps.logger.info('order change followed', {
    referralId: input.row.id,
    decision: result.decision,
    appointmentsCancelled: result.appointmentsCancelled,
    chairsReleased: result.chairsReleased,
  });
  await deliverNotices(deps, { tenant: input.tenant, referralId: input.row.id, ehr, notices: notices ?? [] });
  return result;
}

/** Task statuses of work still to be done (https://hl7.org/fhir/R4/valueset-task-status.html). */
const OPEN_TASK_STATUSES: ReadonlySet<string> = new Set(['draft', 'requested', 'received', 'accepted', 'ready', 'in-progress', 'on-hold']);

/**
 * An ended order ends the work about it: the referral's open sub-Tasks (an appeal, a reschedule
 * after a no-show, a renewal) are cancelled with the same reason, each written back by the
 * identifier it was written back with.
 */
async function closeSubTasks(
  deps: Pick<GatewayDeps, 'newId'>,
  tx: ResourceWriter,
  input: {
    tenant: TenantId;
    row: ReferralRow;
    referralTask: Task & { id: string };
    reason: CodeableConcept;
    now: Date;
    ehr: EhrReferences | undefined;
  },
): Promise<NewOutboxMessage[]> {
  const found = await tx.search<Task>({
    resourceType: 'Task',
    tenants: [input.tenant],
    criteria: [{ name: 'part-of', values: [`Task/${input.referralTask.id}`] }],
    count: 500,
    offset: 0,
  });
  const messages: NewOutboxMessage[] = [];
  for (const sub of found.resources) {
    if (!sub.id || !OPEN_TASK_STATUSES.has(sub.status)) continue;
    const { meta: _meta, ...rest } = sub;
    const closed = (await tx.update(
      input.tenant,
      { ...rest, id: sub.id, status: 'cancelled', statusReason: input.reason, lastModified: input.now.toISOString() },
      input.now,
      {
        ifMatchVersionId: sub.meta?.versionId ?? '1',
      },
    )) as Task & { id: string };
    const identifier = closed.identifier?.find((i) => i.system && i.value);
    if (!input.ehr || !identifier?.system || !identifier.value) continue;
    const key = { system: identifier.system, value: identifier.value };
    if (key.system === APPEAL_IDENTIFIER_SYSTEM) {
      messages.push(
        appealTaskWriteBack({
          messageId: deps.newId(),
          tenant: input.tenant,
          referralId: input.row.id,
          appeal: closed,
          identifier: key,
          ehr: input.ehr,
        }),
      );
      continue;
    }
    const focus = parseRelativeReference(closed.focus?.reference);
    const ehrFocus: Reference | undefined =
      focus?.resourceType === 'Appointment'
        ? { type: 'Appointment', identifier: { system: APPOINTMENT_IDENTIFIER_SYSTEM, value: focus.id } }
        : focus?.resourceType === 'ServiceRequest'
          ? input.ehr.serviceRequest
          : undefined;
    messages.push(
      subTaskWriteBack({
        messageId: deps.newId(),
        tenant: input.tenant,
        referralId: input.row.id,
        task: closed,
        referralTask: input.referralTask,
        ehr: input.ehr,
        identifier: key,
        ...(ehrFocus ? { focus: ehrFocus } : {}),
      }),
    );
  }
  return messages;
}

/** The parts a later change is compared with; the rest (narrative, meta) is not kept. */
function stripForBaseline(order: ServiceRequest): ServiceRequest {
  const { meta: _meta, text: _text, contained: _contained, ...rest } = order;
  return rest;
}

/**
 * Frees the referral's chairs (holds and bookings) and cancels its held and booked Appointments
 * with the reason; a booked visit's patient gets a notice (made here, sent after the commit).
 */
async function releaseVisits(
  deps: GatewayDeps,
  tx: ResourceWriter,
  input: { tenant: TenantId; row: ReferralRow; serviceRequestId: string; reason: CodeableConcept; now: Date },
): Promise<{ appointments: Array<Appointment & { id: string }>; chairs: number; notices: PendingNotice[] }> {
  const bookings = await tx.listReferralChairBookings(input.row.id);
  for (const booking of bookings) await tx.releaseChair(booking.appointmentId);
  const found = await tx.search<Appointment>({
    resourceType: 'Appointment',
    tenants: [input.tenant],
    criteria: [
      { name: 'based-on', values: [`ServiceRequest/${input.serviceRequestId}`] },
      { name: 'status', values: ['booked', 'pending'] },
    ],
    count: 500,
    offset: 0,
  });
  const appointments: Array<Appointment & { id: string }> = [];
  const notices: PendingNotice[] = [];
  for (const appointment of found.resources) {
    if (!appointment.id) continue;
    const cancelled = (await tx.update(
      input.tenant,
      appointmentCancelledByOrder(appointment as Appointment & { id: string }, input.reason),
      input.now,
      {
        ifMatchVersionId: appointment.meta?.versionId ?? '1',
      },
    )) as Appointment & { id: string };
    appointments.push(cancelled);
    // Only a booked visit was promised to the patient (and reminded of); a hold was not.
    if (appointment.status !== 'booked') continue;
    if (appointment.start) {
      const ehr = (input.row.referral as KeptReferral | null)?.ehr;
      await withdrawRemindersOfTime(deps, tx, {
        tenant: input.tenant,
        referralId: input.row.id,
        ehr: deps.writeBackTenants.has(input.tenant) ? ehr : undefined,
        appointmentId: appointment.id,
        previousStart: new Date(appointment.start),
        now: input.now,
        reason: input.reason,
      });
    }
    const notice = await storeNotice(deps, tx, {
      tenant: input.tenant,
      appointment: appointment as Appointment & { id: string },
      kind: 'cancelled',
      reason: input.reason,
      now: input.now,
    });
    if (notice) notices.push(notice);
  }
  return { appointments, chairs: bookings.length, notices };
}
