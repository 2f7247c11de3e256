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
import { changedElementsOutside } from '../../fhir/resources.js';
import type {
  Appointment,
  CodeableConcept,
  Coverage,
  HealthcareService,
  Location,
  OperationOutcome,
  OperationOutcomeIssue,
  Patient,
  Reference,
  Resource,
  ServiceRequest,
  Task,
} from 'fhir/r4.js';
import { DateTime } from 'luxon';
import {
  buildAppointment,
  chairIdOf,
  chairReference,
  siteIdOf,
  type AppointmentSlot,
  type AppointmentSubject,
} from '../rules/appointment.js';
import type { CatalogDrug } from '../../directory/rules/drug-catalog.js';
import { earliestStart, rescheduleNoticeIssues } from '../rules/lead-time.js';
import { placerIdentifier, requestedPeriod, type EhrReferences } from '../../referral/rules/referral.js';
import {
  TASK_PARAMETER_TYPE_SYSTEM,
  referralStatusDisplay,
  referralStatusOf,
  taskStatusFields,
} from '../../referral/rules/referral-status.js';
import {
  instantWithSiteOffset,
  openIntervals,
  openIntervalsMs,
  siteCalendarFromLocation,
  type SiteCalendar,
  instantAtSite,
} from '../rules/site-hours.js';
import { planSeries } from '../rules/infusion-series.js';
import type { DirectoryPlan, DirectorySite, GeoPoint, SiteDirectory } from '../../directory/rules/site-directory.js';
import { BusyIndex, findSlots, type SlotFilters, type SlotProposal } from '../rules/slot-finder.js';
import { formatAppointmentTime } from '../../delivery/rules/reminder-text.js';
import { startsOnFindGrid, walkInRefusalOutcome, WALK_IN_OFFERS, type SlotOffer } from '../rules/walk-in.js';
import { appointmentWriteBack, taskWriteBack } from '../../delivery/rules/write-back.js';
import { conflict, errorIssue, notFound, unprocessable, warningIssue } from '../../fhir/outcomes.js';
import { findContained, parseRelativeReference } from '../../fhir/references.js';
import { candidateSites, rankProposals, type CandidateSitesInput, type NearFilter } from '../rules/multi-site-find.js';
import { patientHomePosition } from '../../site-check/rules/patient-position.js';
import type { ChairBooking, ResourceWriter, TenantId } from '../../ports/resource-store.js';
import { type GatewayDeps, writeBackTarget } from '../../ports/gateway-deps.js';
import { markNoShow } from './mark-no-shows.js';
import { ORDER_CHANGE_REASON_SYSTEM } from '../../order-changes/rules/order-change.js';
import { deliverNotices, storeNotice, type PendingNotice } from '../../delivery/stories/appointment-notices.js';
import { withdrawRemindersOfTime } from '../../delivery/stories/send-reminders.js';
import type { StoredReferral } from '../../referral/stories/stored-referral.js';
import { refusal, type Refusal } from '../../ports/refusal.js';

/** What the scheduling rules need about one referral. */
export interface SchedulingContext extends StoredReferral {
  tenant: TenantId;
  drug: CatalogDrug;
  site: DirectorySite;
  calendar: SiteCalendar;
  subject: AppointmentSubject;
  durationMinutes: number;
  /** When the referral was cleared (its Task reached ready-to-schedule): the authorization's time. */
  clearedAt: Date;
  /** Starts no earlier than this and ends no later than `latest`. */
  earliest: Date;
  latest: Date;
  ehr?: EhrReferences;
}

const outputOf = (task: Task, code: string) =>
  task.output?.find((o) => o.type.coding?.some((c) => c.system === TASK_PARAMETER_TYPE_SYSTEM && c.code === code));

async function siteCalendar(deps: Pick<GatewayDeps, 'store' | 'tenancy'>, site: DirectorySite): Promise<SiteCalendar | undefined> {
  const tenants = [deps.tenancy.directoryTenant];
  const location = await deps.store.read<Location>(tenants, 'Location', site.locationId);
  const services = await deps.store.search<HealthcareService>({
    resourceType: 'HealthcareService',
    tenants,
    criteria: [{ name: 'location', values: [`Location/${site.locationId}`] }],
    count: 10,
    offset: 0,
  });
  const service = services.resources.find((s) => s.active !== false) ?? services.resources[0];
  if (!location || !service) return undefined;
  return siteCalendarFromLocation(location, service);
}

/**
 * When a referral can be seen at one site: no sooner than the pharmacy lead time after now and
 * after clearance (in the site's zone, its closures skipped), within the order's and the
 * authorization's periods and the window asked for, at most FIND_DAYS ahead.
 */
function windowAtSite(
  deps: Pick<GatewayDeps, 'clock' | 'scheduling'>,
  input: {
    drug: CatalogDrug;
    clearedAt: Date;
    serviceRequest: ServiceRequest;
    task: Task;
    calendar: SiteCalendar;
    window?: { start?: Date; end?: Date };
  },
): { earliest: Date; latest: Date } {
  const { calendar } = input;
  const authorizationPeriod = outputOf(input.task, 'authorization-period')?.valuePeriod;
  const afterLeadTime = earliestStart({
    now: deps.clock.now(),
    authorizedAt: input.clearedAt,
    leadTimeBusinessDays: input.drug.pharmacyLeadTimeBusinessDays,
    timeZone: calendar.timeZone,
    closures: calendar.closures,
  });
  const ordered = requestedPeriod(input.serviceRequest);
  const starts = [
    afterLeadTime,
    instantAtSite(ordered?.start, calendar.timeZone, 'start'),
    instantAtSite(authorizationPeriod?.start, calendar.timeZone, 'start'),
    input.window?.start,
  ];
  const ends = [
    instantAtSite(ordered?.end, calendar.timeZone, 'end'),
    instantAtSite(authorizationPeriod?.end, calendar.timeZone, 'end'),
    input.window?.end,
  ];
  const earliest = new Date(Math.max(...starts.filter((d): d is Date => d !== undefined).map((d) => d.getTime())));
  const horizon = earliest.getTime() + deps.scheduling.findDays * 86_400_000;
  const latest = new Date(Math.min(horizon, ...ends.filter((d): d is Date => d !== undefined).map((d) => d.getTime())));
  return { earliest, latest };
}

/** The referral's patient and plan, for choosing among sites: contained, else stored at the gateway. */
async function patientAndPlan(
  deps: Pick<GatewayDeps, 'store'>,
  context: SchedulingContext,
  directory: SiteDirectory,
): Promise<{ home?: GeoPoint; plan?: DirectoryPlan }> {
  const resolve = async (reference: string | undefined, type: 'Patient' | 'Coverage'): Promise<Resource | undefined> => {
    if (reference === undefined) return undefined;
    const contained = findContained(context.serviceRequest, reference);
    if (contained) return contained;
    const parsed = parseRelativeReference(reference);
    return parsed?.resourceType === type ? ((await deps.store.read([context.tenant], type, parsed.id)) ?? undefined) : undefined;
  };
  const patient = await resolve(context.serviceRequest.subject?.reference, 'Patient');
  // The Coverage the payer verified, else the order's own.
  const verified = outputOf(context.task, 'verified-coverage')?.valueReference?.reference;
  const coverage = (await resolve(verified, 'Coverage')) ?? (await resolve(context.serviceRequest.insurance?.[0]?.reference, 'Coverage'));
  const home = patient?.resourceType === 'Patient' ? patientHomePosition(patient as Patient)?.position : undefined;
  const plan = coverage?.resourceType === 'Coverage' ? directory.planForCoverage(coverage as Coverage) : undefined;
  return { ...(home ? { home } : {}), ...(plan ? { plan } : {}) };
}

/**
 * The referral's Appointment and Task as write-back messages to its EHR (docs/write-back.md), each
 * with a new message id; `ehr` is where the tenant writes back (writeBackTarget).
 */
function writeBackMessages(deps: Pick<GatewayDeps, 'newId'>, tenant: TenantId, context: SchedulingContext, ehr: EhrReferences) {
  const referral = { tenant, referralId: context.row.id, ehr };
  return {
    appointment: (appointment: Appointment & { id: string }) => appointmentWriteBack({ messageId: deps.newId(), ...referral, appointment }),
    task: (task: Task) => taskWriteBack({ messageId: deps.newId(), ...referral, task }),
  };
}

/** The scheduling context moved to another site of the network: its calendar and window. */
async function contextAtSite(
  deps: GatewayDeps,
  context: SchedulingContext,
  site: DirectorySite,
  window?: { start?: Date; end?: Date },
): Promise<SchedulingContext | undefined> {
  if (site.locationId === context.site.locationId && window === undefined) return context;
  const calendar = await siteCalendar(deps, site);
  if (!calendar) return undefined;
  const { earliest, latest } = windowAtSite(deps, {
    drug: context.drug,
    clearedAt: context.clearedAt,
    serviceRequest: context.serviceRequest,
    task: context.task,
    calendar,
    ...(window ? { window } : {}),
  });
  return { ...context, site, calendar, earliest, latest };
}

/** The sites the referral allows among those asked for (multi-site-find.ts), from the patient's home and plan. */
async function allowedSites(
  deps: GatewayDeps,
  context: SchedulingContext,
  asked: Pick<CandidateSitesInput, 'locationIds' | 'near'>,
): Promise<ReturnType<typeof candidateSites>> {
  const directory = await deps.sites.current();
  const { home, plan } = await patientAndPlan(deps, context, directory);
  return candidateSites(directory, {
    drugCodings: context.subject.drugCodings,
    ...(plan ? { plan } : {}),
    ...(home ? { home } : {}),
    confirmedSiteId: context.site.locationId,
    ...asked,
  });
}

/**
 * The context at the site an Appointment names, when it is not the confirmed one: allowed only at
 * a site the referral allows (active, gives the drug, in the plan's network), as multi-site $find
 * proposes.
 */
async function contextForAppointmentSite(
  deps: GatewayDeps,
  context: SchedulingContext,
  appointment: Appointment,
): Promise<{ context: SchedulingContext; issues: OperationOutcomeIssue[] }> {
  const siteId = siteIdOf(appointment);
  if (siteId === undefined || siteId === context.site.locationId) return { context, issues: [] };
  const { sites, excluded } = await allowedSites(deps, context, { locationIds: [siteId] });
  const moved = sites[0] ? await contextAtSite(deps, context, sites[0].site) : undefined;
  if (!moved) {
    const why = excluded[0]?.display ?? `Location/${siteId} has no hours the network can schedule`;
    return {
      context,
      issues: [errorIssue('business-rule', `The appointment must be at a site the referral allows: ${why}`, 'Appointment.participant')],
    };
  }
  return { context: moved, issues: [] };
}

/** The referral behind a ServiceRequest id, with every scheduling input, or why it cannot be scheduled. */
export async function schedulingContext(
  deps: GatewayDeps,
  tenant: TenantId,
  serviceRequestId: string,
  options: { expression: string; window?: { start?: Date; end?: Date }; rescheduling?: string },
): Promise<
  { ok: true; context: SchedulingContext } | { ok: false; issues: OperationOutcomeIssue[]; context?: Partial<SchedulingContext> }
> {
  const serviceRequest = await deps.store.read<ServiceRequest>([tenant], 'ServiceRequest', serviceRequestId);
  const order = serviceRequest ? placerIdentifier(serviceRequest) : undefined;
  const row = order?.system && order.value ? await deps.store.findReferralByIdentifier(tenant, order.system, order.value) : undefined;
  if (!serviceRequest?.id || !row) {
    return {
      ok: false,
      issues: [
        errorIssue(
          'business-rule',
          'No walk-ins: there is no referral for this appointment; an infusion is booked only for a referral that has been received and cleared',
          options.expression,
        ),
      ],
    };
  }
  const task = await deps.store.read<Task>([tenant], 'Task', row.taskId);
  const drug = deps.drugs.findDrug(serviceRequest.code?.coding ?? []);
  const directory = await deps.sites.current();
  const siteId = parseRelativeReference(serviceRequest.locationReference?.[0]?.reference);
  const site = siteId?.resourceType === 'Location' ? directory.site(siteId.id) : undefined;
  const calendar = site ? await siteCalendar(deps, site) : undefined;
  if (!task?.id || !drug || !site || !calendar) {
    return {
      ok: false,
      issues: [errorIssue('business-rule', 'The referral has no confirmed site or drug the network can schedule', options.expression)],
    };
  }
  const patient: Reference = serviceRequest.subject?.reference?.startsWith('#')
    ? ((row.referral as { ehr?: EhrReferences } | null)?.ehr?.patient ?? { display: 'patient of the referral' })
    : (serviceRequest.subject ?? { display: 'patient of the referral' });
  const earlierDoses = await deps.store.search<Appointment>({
    resourceType: 'Appointment',
    tenants: [tenant],
    criteria: [
      { name: 'based-on', values: [`ServiceRequest/${serviceRequest.id}`] },
      { name: 'status', values: ['booked', 'arrived', 'fulfilled', 'checked-in'] },
    ],
    count: 2,
    offset: 0,
  });
  // The appointment being rescheduled keeps its own dose: it does not count as an earlier one.
  const dose = earlierDoses.resources.some((a) => a.id !== options.rescheduling) ? 'maintenance' : 'first-dose';
  const durationMinutes = dose === 'first-dose' ? drug.chairMinutes.firstDose : drug.chairMinutes.maintenance;
  const clearedAt = new Date(task.lastModified ?? row.updatedAt);
  const { earliest, latest } = windowAtSite(deps, {
    drug,
    clearedAt,
    serviceRequest,
    task,
    calendar,
    ...(options.window ? { window: options.window } : {}),
  });
  const ehr = (row.referral as { ehr?: EhrReferences } | null)?.ehr;
  const context: SchedulingContext = {
    tenant,
    row,
    task: task as Task & { id: string },
    serviceRequest: serviceRequest as ServiceRequest & { id: string },
    drug,
    site,
    calendar,
    subject: {
      serviceRequestId: serviceRequest.id,
      patient,
      drugName: drug.name,
      drugCodings: serviceRequest.code?.coding ?? drug.codings,
      dose,
    },
    durationMinutes,
    clearedAt,
    earliest,
    latest,
    ...(ehr ? { ehr } : {}),
  };
  const status = referralStatusOf(task);
  if (task.status === 'on-hold' && status === 'ready-to-schedule') {
    // Held because the order is on hold in the EHR (docs/order-changes.md): nothing is booked until it resumes.
    return {
      ok: false,
      issues: [
        errorIssue(
          'business-rule',
          `No booking: the order is on hold in the EHR (${task.statusReason?.text ?? 'on hold'})`,
          options.expression,
        ),
      ],
      context,
    };
  }
  if (status !== 'ready-to-schedule') {
    const why =
      status === 'scheduled'
        ? 'the referral is already scheduled; change the booked Appointment instead'
        : `the referral is not cleared (${status ? referralStatusDisplay(status as never) : 'unknown'}): coverage and, where required, prior authorization come first`;
    return { ok: false, issues: [errorIssue('business-rule', `No walk-ins: ${why}`, options.expression)], context };
  }
  return { ok: true, context };
}

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
async function walkInRefusalFor(
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
function slotOfAppointment(
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

function chairTaken(conflictWith: ChairBooking, context: SchedulingContext): OperationOutcome {
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
function serviceRequestIdOf(appointment: Appointment): string | undefined {
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
  if (ATTENDED.includes(input.appointment.status)) {
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
const ATTENDED: readonly Appointment['status'][] = ['arrived', 'checked-in', 'fulfilled'];

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
  if (ATTENDED.includes(body.status) && !ATTENDED.includes(current.status) && current.start !== undefined) {
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
    if (ATTENDED.includes(body.status)) {
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
  if (ATTENDED.includes(body.status) && !allowed.includes(body.status)) {
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
