/**
 * What scheduling needs about one referral, gathered once for $find, $hold, $book and a client's
 * change of a booked Appointment (docs/domain.md 4-7): the stored referral, its drug, the site and
 * its calendar in the site's time zone, the patient and the plan, and the window a dose may start
 * in (the pharmacy's lead time after now and after the authorization, within the order's and the
 * authorization's periods).
 */
import type {
  Appointment,
  Coverage,
  HealthcareService,
  Location,
  OperationOutcomeIssue,
  Patient,
  Reference,
  Resource,
  ServiceRequest,
  Task,
} from 'fhir/r4.js';
import { siteIdOf, type AppointmentSubject } from '../rules/appointment.js';
import type { CatalogDrug } from '../../directory/rules/drug-catalog.js';
import { earliestStart } from '../rules/lead-time.js';
import { placerIdentifier, requestedPeriod, type EhrReferences } from '../../referral/rules/referral.js';
import { TASK_PARAMETER_TYPE_SYSTEM, referralStatusDisplay, referralStatusOf } from '../../referral/rules/referral-status.js';
import { siteCalendarFromLocation, type SiteCalendar, instantAtSite } from '../rules/site-hours.js';
import type { DirectoryPlan, DirectorySite, GeoPoint, SiteDirectory } from '../../directory/rules/site-directory.js';
import { appointmentWriteBack, taskWriteBack } from '../../delivery/rules/write-back.js';
import { errorIssue } from '../../fhir/outcomes.js';
import { findContained, parseRelativeReference } from '../../fhir/references.js';
import { candidateSites, type CandidateSitesInput } from '../rules/multi-site-find.js';
import { patientHomePosition } from '../../site-check/rules/patient-position.js';
import type { TenantId } from '../../ports/resource-store.js';
import type { GatewayDeps } from '../../ports/gateway-deps.js';
import type { StoredReferral } from '../../referral/stories/stored-referral.js';

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

export const outputOf = (task: Task, code: string) =>
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
export function writeBackMessages(deps: Pick<GatewayDeps, 'newId'>, tenant: TenantId, context: SchedulingContext, ehr: EhrReferences) {
  const referral = { tenant, referralId: context.row.id, ehr };
  return {
    appointment: (appointment: Appointment & { id: string }) => appointmentWriteBack({ messageId: deps.newId(), ...referral, appointment }),
    task: (task: Task) => taskWriteBack({ messageId: deps.newId(), ...referral, task }),
  };
}

/** The scheduling context moved to another site of the network: its calendar and window. */
export async function contextAtSite(
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
export async function allowedSites(
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
export async function contextForAppointmentSite(
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
