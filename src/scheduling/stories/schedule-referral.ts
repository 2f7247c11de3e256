/**
 * Story: turn a cleared referral into a booked chair (docs/domain.md 4-7; field note 001), in the manner of
 * IHE ITI Scheduling (https://profiles.ihe.net/ITI/Scheduling/):
 *
 *   $find  referral ready-to-schedule -> the site's chairs, hours and closures in its time zone,
 *          the drug's chair time (first or maintenance dose), the pharmacy lead time after now and
 *          after the authorization, within the order's and the authorization's periods
 *          -> the next proposed Appointments
 *   $hold  a proposal -> the chair held for a while (lapses by itself)
 *   $book  a proposal or a hold -> the chair booked (the database refuses a second booking of the
 *          same chair and time), the Task at scheduled, Appointment and Task written back
 *
 * No walk-ins: an Appointment for a referral that is not cleared, or with no referral at all, is
 * refused with an OperationOutcome that says why and names the next slots.
 */
import type { Appointment, OperationOutcome, OperationOutcomeIssue, Task } from 'fhir/r4.js';
import { ATTENDED_STATUSES, buildAppointment, chairIdOf, chairReference, siteIdOf, type AppointmentSlot } from '../rules/appointment.js';
import { requestedPeriod } from '../../referral/rules/referral.js';
import { TASK_PARAMETER_TYPE_SYSTEM, taskStatusFields } from '../../referral/rules/referral-status.js';
import { instantWithSiteOffset, openIntervals, openIntervalsMs, instantAtSite } from '../rules/site-hours.js';
import { planSeries } from '../rules/infusion-series.js';
import { BusyIndex, findSlots, type SlotFilters, type SlotProposal } from '../rules/slot-finder.js';
import { formatAppointmentTime } from '../../delivery/rules/reminder-text.js';
import { startsOnFindGrid, walkInRefusalOutcome, WALK_IN_OFFERS, type SlotOffer } from '../rules/walk-in.js';
import { conflict, errorIssue, unprocessable, warningIssue } from '../../fhir/outcomes.js';
import { parseRelativeReference } from '../../fhir/references.js';
import { rankProposals, type NearFilter } from '../rules/multi-site-find.js';
import type { ChairBooking, ResourceWriter, TenantId } from '../../ports/resource-store.js';
import { type GatewayDeps, writeBackTarget } from '../../ports/gateway-deps.js';
import type { Refusal } from '../../ports/refusal.js';
import {
  allowedSites,
  contextAtSite,
  contextForAppointmentSite,
  outputOf,
  schedulingContext,
  type SchedulingContext,
  writeBackMessages,
} from './scheduling-context.js';

function slotOf(context: SchedulingContext, proposal: SlotProposal): AppointmentSlot {
  return {
    locationId: context.site.locationId,
    siteName: context.site.name,
    ...(context.site.siteCode !== undefined ? { siteCode: context.site.siteCode } : {}),
    timeZone: context.calendar.timeZone,
    chairId: proposal.chairId,
    start: proposal.start,
    end: proposal.end,
  };
}

/** The next proposals for a context, avoiding every booking and live hold on the site's chairs. */
async function proposals(
  deps: GatewayDeps,
  context: SchedulingContext,
  options: { count: number; filters?: SlotFilters; busy?: BusyIndex },
): Promise<SlotProposal[]> {
  if (context.latest <= context.earliest) return [];
  const busy = options.busy ?? (await busyIndex(deps, [context.site.locationId], context.earliest, context.latest));
  return findSlots({
    sites: [context.calendar],
    durationMinutes: context.durationMinutes,
    earliest: context.earliest,
    latest: context.latest,
    busy,
    ...(options.filters ? { filters: options.filters } : {}),
    stepMinutes: deps.scheduling.stepMinutes,
    limit: options.count,
  });
}

/** Bookings and live holds on the chairs of these sites over [from, to), indexed once. */
async function busyIndex(
  deps: Pick<GatewayDeps, 'clock' | 'store'>,
  locationIds: readonly string[],
  from: Date,
  to: Date,
): Promise<BusyIndex> {
  const busy = await deps.store.listChairBookings(locationIds, from, to, deps.clock.now());
  return BusyIndex.from(
    busy.map((b) => ({ locationId: b.locationId, chairId: b.chairId, start: new Date(b.start), end: new Date(b.end) })),
    { from, to },
  );
}

/** Which sites `$find` searches: absent, the referral's confirmed site. */
export interface FindSites {
  locationIds?: readonly string[];
  near?: NearFilter;
}

/**
 * `Appointment/$find`: the next proposed Appointments for a cleared referral, at its confirmed
 * site or across the sites asked for (`location`, `near`) that the referral allows, ranked by
 * earliest start, then distance (scheduling/rules/multi-site-find.ts). Sites asked for but not allowed come
 * back as issues beside the proposals; none allowed at all is a refusal.
 */
export async function findAppointments(
  deps: GatewayDeps,
  input: {
    tenant: TenantId;
    serviceRequestId: string;
    count: number;
    filters?: SlotFilters;
    window?: { start?: Date; end?: Date };
    sites?: FindSites;
  },
): Promise<{ kind: 'found'; appointments: Appointment[]; issues: OperationOutcomeIssue[] } | Refusal> {
  const prepared = await schedulingContext(deps, input.tenant, input.serviceRequestId, {
    expression: "Parameters.parameter.where(name='referral')",
    ...(input.window ? { window: input.window } : {}),
  });
  if (!prepared.ok) return { kind: 'refused', outcome: unprocessable(prepared.issues) };
  const context = prepared.context;
  const filters = input.filters ? { filters: input.filters } : {};
  if (input.sites === undefined || (input.sites.locationIds === undefined && input.sites.near === undefined)) {
    const found = await proposals(deps, context, { count: input.count, ...filters });
    return {
      kind: 'found',
      appointments: found.map((p) => buildAppointment({ status: 'proposed', slot: slotOf(context, p), subject: context.subject })),
      issues: [],
    };
  }

  const { sites, excluded } = await allowedSites(deps, context, {
    ...(input.sites.locationIds !== undefined ? { locationIds: input.sites.locationIds } : {}),
    ...(input.sites.near !== undefined ? { near: input.sites.near } : {}),
  });
  const expression = input.sites.locationIds !== undefined ? 'location' : 'near';
  if (sites.length === 0) {
    const issues =
      excluded.length > 0
        ? excluded.map((e) => errorIssue('business-rule', `${e.display}: the referral cannot be scheduled there`, expression))
        : [
            errorIssue(
              'business-rule',
              "No site the referral allows (active, giving the drug, in the plan's network) is within the distance asked for",
              expression,
            ),
          ];
    return { kind: 'refused', outcome: unprocessable(issues) };
  }
  const bySite = new Map<string, SchedulingContext>();
  for (const atSite of await Promise.all(sites.map((candidate) => contextAtSite(deps, context, candidate.site, input.window)))) {
    if (atSite && atSite.latest > atSite.earliest) bySite.set(atSite.site.locationId, atSite);
  }
  // One read of the bookings of every site searched, over the union of their windows.
  const windows = [...bySite.values()];
  const busy =
    windows.length === 0
      ? undefined
      : await busyIndex(
          deps,
          [...bySite.keys()],
          new Date(Math.min(...windows.map((c) => c.earliest.getTime()))),
          new Date(Math.max(...windows.map((c) => c.latest.getTime()))),
        );
  const found: SlotProposal[] = [];
  for (const atSite of windows)
    found.push(...(await proposals(deps, atSite, { count: input.count, ...filters, ...(busy ? { busy } : {}) })));
  const ranked = rankProposals(found, new Map(sites.map((c) => [c.site.locationId, c.distanceKm])), input.count);
  return {
    kind: 'found',
    appointments: ranked.map((p) => {
      const atSite = bySite.get(p.locationId)!;
      return buildAppointment({ status: 'proposed', slot: slotOf(atSite, p), subject: atSite.subject });
    }),
    issues: excluded.map((e) => warningIssue('business-rule', `${e.display}: left out of the search`, expression)),
  };
}

/**
 * A walk-in refused (seed 001: offered a new slot): the issues that say why, and the next
 * WALK_IN_OFFERS slots exactly as `$find` (no filters) would propose them for the referral, chairs
 * checked against every booking and live hold, contained in the outcome (scheduling/rules/walk-in.ts).
 */
async function walkInRefusal(
  deps: GatewayDeps,
  issues: OperationOutcomeIssue[],
  context: Partial<SchedulingContext> | undefined,
  options: { cleared: boolean; expression: string },
): Promise<Refusal> {
  const offers: SlotOffer[] = [];
  if (context?.site && context.calendar && context.subject && context.earliest && context.latest && context.durationMinutes) {
    const full = context as SchedulingContext;
    const next = await proposals(deps, full, { count: WALK_IN_OFFERS });
    for (const proposal of next) {
      const slot = slotOf(full, proposal);
      const chair = chairReference(slot).display ?? slot.chairId;
      const when = `${formatAppointmentTime(proposal.start, full.calendar.timeZone)} (${full.durationMinutes} minutes, ${chair})`;
      offers.push({
        appointment: buildAppointment({ status: 'proposed', slot, subject: full.subject }),
        diagnostics: options.cleared
          ? `Next slot at ${full.site.name}: ${when}; book it with Appointment/$book`
          : `Next slot at ${full.site.name}: ${when}, bookable once the referral is cleared`,
      });
    }
  }
  return { kind: 'refused', outcome: walkInRefusalOutcome(issues, offers, options.expression) };
}

/** A walk-in for a referral named by its ServiceRequest id: why, with the referral's next slots. */
export async function walkInRefusalFor(
  deps: GatewayDeps,
  tenant: TenantId,
  serviceRequestId: string | undefined,
  issues: OperationOutcomeIssue[],
  expression: string,
): Promise<Refusal> {
  if (serviceRequestId === undefined) return walkInRefusal(deps, issues, undefined, { cleared: false, expression });
  const prepared = await schedulingContext(deps, tenant, serviceRequestId, { expression: 'Appointment.basedOn' });
  if (prepared.ok) return walkInRefusal(deps, issues, prepared.context, { cleared: true, expression });
  return walkInRefusal(
    deps,
    [...issues, ...prepared.issues.filter((i) => !issues.some((j) => j.diagnostics === i.diagnostics))],
    prepared.context,
    { cleared: false, expression },
  );
}

/** Checks that a proposed Appointment is one of the referral's valid slots; returns the slot. */
export function slotOfAppointment(
  context: SchedulingContext,
  appointment: Appointment,
): { slot?: AppointmentSlot; issues: OperationOutcomeIssue[] } {
  const issues: OperationOutcomeIssue[] = [];
  const start = appointment.start ? new Date(appointment.start) : undefined;
  const end = appointment.end ? new Date(appointment.end) : undefined;
  const chairId = chairIdOf(appointment);
  if (!start || Number.isNaN(start.getTime()))
    issues.push(errorIssue('required', 'Appointment.start is required (an instant with its offset)', 'Appointment.start'));
  if (!end || Number.isNaN(end.getTime()))
    issues.push(errorIssue('required', 'Appointment.end is required (an instant with its offset)', 'Appointment.end'));
  if (siteIdOf(appointment) !== context.site.locationId)
    issues.push(
      errorIssue(
        'business-rule',
        `The appointment must be at ${context.site.name} (Location/${context.site.locationId}): the referral's confirmed site or one multi-site $find proposed; a booked appointment keeps its site`,
        'Appointment.participant',
      ),
    );
  if (!chairId || !context.calendar.chairs.includes(chairId))
    issues.push(
      errorIssue('business-rule', "The appointment must name one of the site's chairs (as returned by $find)", 'Appointment.participant'),
    );
  if (issues.length > 0 || !start || !end || !chairId) return { issues };
  if (end.getTime() - start.getTime() !== context.durationMinutes * 60_000) {
    issues.push(
      errorIssue(
        'business-rule',
        `A ${context.subject.dose === 'first-dose' ? 'first' : 'maintenance'} dose of ${context.drug.name} takes ${context.durationMinutes} minutes of chair time`,
        'Appointment.end',
      ),
    );
  }
  if (start < context.earliest)
    issues.push(
      errorIssue(
        'business-rule',
        `${formatAppointmentTime(start, context.calendar.timeZone)} is before the referral can be seen (the pharmacy lead time after clearance, the order's and the authorization's periods)`,
        'Appointment.start',
      ),
    );
  if (end > context.latest)
    issues.push(
      errorIssue(
        'business-rule',
        `The appointment must end by ${formatAppointmentTime(context.latest, context.calendar.timeZone)} (the order's and the authorization's periods)`,
        'Appointment.end',
      ),
    );
  const open = openIntervals(context.calendar, start, end).some(
    (i) => i.start.getTime() <= start.getTime() && i.end.getTime() >= end.getTime(),
  );
  if (!open) issues.push(errorIssue('business-rule', `${context.site.name} is not open for the whole appointment`, 'Appointment.start'));
  return issues.length > 0
    ? { issues }
    : {
        slot: {
          locationId: context.site.locationId,
          siteName: context.site.name,
          ...(context.site.siteCode !== undefined ? { siteCode: context.site.siteCode } : {}),
          timeZone: context.calendar.timeZone,
          chairId,
          start,
          end,
        },
        issues,
      };
}

export function chairTaken(conflictWith: ChairBooking, context: SchedulingContext): OperationOutcome {
  const tz = context.calendar.timeZone;
  return conflict(
    `Chair ${conflictWith.chairId} at ${context.site.name} is taken from ${formatAppointmentTime(new Date(conflictWith.start), tz)} to ${formatAppointmentTime(new Date(conflictWith.end), tz)}; ask $find for free slots`,
    'Appointment.start',
  );
}

/**
 * The series the booked dose starts, within the order's validity and the authorization's period
 * (field note 001, docs/domain.md 8): target dates, written on the Task as planned-dose outputs.
 */
function plannedDoses(context: SchedulingContext, firstStart: Date): Date[] {
  const orderEnd = instantAtSite(requestedPeriod(context.serviceRequest)?.end, context.calendar.timeZone, 'end');
  if (!orderEnd) return [firstStart];
  const authorizationEnd = instantAtSite(
    outputOf(context.task, 'authorization-period')?.valuePeriod?.end,
    context.calendar.timeZone,
    'end',
  );
  const quantity = context.serviceRequest.quantityQuantity?.value;
  return planSeries({
    firstStart,
    drug: context.drug,
    orderValidUntil: orderEnd,
    ...(authorizationEnd ? { authorizationEnd } : {}),
    ...(quantity !== undefined && Number.isInteger(quantity) ? { maxDoses: quantity } : {}),
    phase: context.subject.dose === 'first-dose' ? 'induction' : 'maintenance',
    timeZone: context.calendar.timeZone,
  }).doses;
}

/** The referral's Task at scheduled, naming the booked Appointment and the series it starts. */
function scheduledTask(
  task: Task & { id: string },
  appointmentId: string,
  now: Date,
  doses: readonly Date[],
  timeZone: string,
): Task & { id: string } {
  const { statusReason: _reason, ...rest } = task;
  return {
    ...rest,
    ...taskStatusFields('scheduled'),
    lastModified: now.toISOString(),
    output: [
      ...(task.output ?? []).filter(
        (o) =>
          !o.type.coding?.some((c) => c.system === TASK_PARAMETER_TYPE_SYSTEM && (c.code === 'appointment' || c.code === 'planned-dose')),
      ),
      {
        type: { coding: [{ system: TASK_PARAMETER_TYPE_SYSTEM, code: 'appointment', display: 'Appointment' }] },
        valueReference: { reference: `Appointment/${appointmentId}` },
      },
      ...doses.map((dose) => ({
        type: { coding: [{ system: TASK_PARAMETER_TYPE_SYSTEM, code: 'planned-dose', display: 'Planned dose' }] },
        valueDateTime: instantWithSiteOffset(dose, timeZone),
      })),
    ],
  };
}

/** The ServiceRequest an Appointment is for (`basedOn`), when it names one of ours. */
export function serviceRequestIdOf(appointment: Appointment): string | undefined {
  const parsed = parseRelativeReference(appointment.basedOn?.[0]?.reference);
  return parsed?.resourceType === 'ServiceRequest' ? parsed.id : undefined;
}

/** `Appointment/$hold`: the chair held for `holdMinutes`; the hold lapses by itself. */
export async function holdAppointment(
  deps: GatewayDeps,
  input: { tenant: TenantId; appointment: Appointment },
): Promise<Reserved | Refusal> {
  return reserve(deps, { ...input, book: false });
}

type Reserved = { kind: 'reserved'; appointment: Appointment & { id: string } };

/**
 * `Appointment/$book` (and a client's create): books a held Appointment (by id) or a proposal.
 * Of concurrent bookings of one chair and time, the database lets exactly one through.
 */
export async function bookAppointment(
  deps: GatewayDeps,
  input: { tenant: TenantId; appointment: Appointment },
): Promise<Reserved | Refusal> {
  return reserve(deps, { ...input, book: true });
}

async function reserve(
  deps: GatewayDeps,
  input: { tenant: TenantId; appointment: Appointment; book: boolean },
): Promise<Reserved | Refusal> {
  const serviceRequestId = serviceRequestIdOf(input.appointment);
  if (serviceRequestId === undefined) {
    return walkInRefusal(
      deps,
      [
        errorIssue(
          'business-rule',
          'No walk-ins: an infusion appointment is booked for a referral (Appointment.basedOn its ServiceRequest)',
          'Appointment.basedOn',
        ),
      ],
      undefined,
      { cleared: false, expression: 'Appointment.basedOn' },
    );
  }
  if (ATTENDED_STATUSES.includes(input.appointment.status)) {
    // A patient who turns up without a booking (seed 001): refused, and offered the next slots.
    return walkInRefusalFor(
      deps,
      input.tenant,
      serviceRequestId,
      [
        errorIssue(
          'business-rule',
          `No walk-ins: there is no booked appointment to record as ${input.appointment.status}; book one of the slots offered`,
          'Appointment.status',
        ),
      ],
      'Appointment.start',
    );
  }
  const prepared = await schedulingContext(deps, input.tenant, serviceRequestId, { expression: 'Appointment.basedOn' });
  const now = deps.clock.now();
  // Booking a hold: the referral is still cleared and the hold must still stand. A proposal
  // (status proposed, from $find or a walk-in refusal) names no hold, whatever its id.
  const heldId =
    input.book && input.appointment.id !== undefined && input.appointment.status !== 'proposed' ? input.appointment.id : undefined;
  const held = heldId !== undefined ? await deps.store.readChairBooking(heldId) : undefined;
  if (!prepared.ok) return walkInRefusal(deps, prepared.issues, prepared.context, { cleared: false, expression: 'Appointment.start' });
  const atSite = await contextForAppointmentSite(deps, prepared.context, input.appointment);
  if (atSite.issues.length > 0)
    return walkInRefusal(deps, atSite.issues, prepared.context, { cleared: true, expression: 'Appointment.start' });
  const context = atSite.context;
  if (
    heldId !== undefined &&
    (!held ||
      held.tenant !== input.tenant ||
      held.status !== 'held' ||
      (held.holdExpiresAt !== undefined && held.holdExpiresAt <= now.toISOString()))
  ) {
    return {
      kind: 'refused',
      outcome: conflict(
        'The hold on this appointment has lapsed or does not exist; ask $find for free slots and book again',
        'Appointment.id',
      ),
    };
  }
  const { slot, issues } = slotOfAppointment(context, input.appointment);
  if (slot && heldId === undefined) {
    const openRun = openIntervalsMs(context.calendar, slot.start.getTime() - 86_400_000, slot.end.getTime()).find(
      ([s, e]) => s <= slot.start.getTime() && e >= slot.end.getTime(),
    );
    if (openRun && !startsOnFindGrid({ start: slot.start, openRunStart: new Date(openRun[0]), stepMinutes: deps.scheduling.stepMinutes })) {
      issues.push(
        errorIssue(
          'business-rule',
          `No walk-ins: ${formatAppointmentTime(slot.start, context.calendar.timeZone)} is not a slot $find proposes (every ${deps.scheduling.stepMinutes} minutes from opening)`,
          'Appointment.start',
        ),
      );
    }
  }
  // A time never proposed (outside the lead time, the periods, the hours or the grid) is a
  // walk-in too: refused with the slots that are real.
  if (!slot || issues.length > 0) {
    const why = errorIssue(
      'business-rule',
      'No walk-ins: the time asked for is not a slot this referral can be booked in; the next real slots follow',
      'Appointment.start',
    );
    return walkInRefusal(deps, [why, ...issues], context, { cleared: true, expression: 'Appointment.start' });
  }

  const appointmentId = heldId ?? deps.newId();
  const holdExpiresAt = input.book ? undefined : new Date(now.getTime() + deps.scheduling.holdMinutes * 60_000);
  const appointment = buildAppointment({
    id: appointmentId,
    status: input.book ? 'booked' : 'pending',
    slot,
    subject: context.subject,
    ...(holdExpiresAt ? { holdExpiresAt } : {}),
    created: now,
  }) as Appointment & { id: string };
  const writeBackTo = writeBackTarget(deps, input.tenant, context.ehr);
  const outcome = await deps.store.transaction(async (tx: ResourceWriter) => {
    const reservation = await tx.reserveChair(
      {
        appointmentId,
        tenant: input.tenant,
        referralId: context.row.id,
        locationId: slot.locationId,
        chairId: slot.chairId,
        start: slot.start.toISOString(),
        end: slot.end.toISOString(),
        status: input.book ? 'booked' : 'held',
        ...(holdExpiresAt ? { holdExpiresAt: holdExpiresAt.toISOString() } : {}),
      },
      now,
    );
    if (!reservation.reserved) return { kind: 'refused' as const, outcome: chairTaken(reservation.conflict, context) };
    const stored = (
      heldId !== undefined ? await tx.update(input.tenant, appointment, now) : await tx.create(input.tenant, appointment, now)
    ) as Appointment & { id: string };
    if (input.book) {
      const doses = plannedDoses(context, slot.start);
      const task = await tx.update(input.tenant, scheduledTask(context.task, appointmentId, now, doses, slot.timeZone), now, {
        ifMatchVersionId: context.task.meta?.versionId ?? '1',
      });
      await tx.updateReferralStatus(input.tenant, context.row.id, 'scheduled', now);
      if (writeBackTo) {
        const messages = writeBackMessages(deps, input.tenant, context, writeBackTo);
        await tx.enqueue(messages.appointment(stored), now);
        await tx.enqueue(messages.task(task), now);
      }
    }
    return { kind: 'reserved' as const, appointment: stored };
  });
  if (outcome.kind === 'reserved') {
    deps.logger.info(input.book ? 'appointment booked' : 'appointment held', {
      appointmentId,
      referralId: context.row.id,
      locationId: slot.locationId,
      chairId: slot.chairId,
    });
  }
  return outcome;
}
