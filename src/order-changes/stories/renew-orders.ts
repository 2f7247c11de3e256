/**
 * Story: ask the referring side to renew an order before it runs out in the middle of a series
 * (docs/domain.md "The path of one referral", 8; field note 001: a patient came in while the renewal of the
 * script was delayed, and had no appointment on record).
 *
 *   scheduled or ready-to-schedule referral
 *     -> the series the order asks for (planSeries: from the first planned dose, every
 *        typicalIntervalWeeks, ServiceRequest.quantity doses), against the order's end
 *        (occurrencePeriod or occurrenceTiming.repeat.boundsPeriod) and the authorization's
 *     -> the order ends before the series would, and its end is RENEWAL_NOTICE_DAYS away or less
 *     -> one renewal Task per order end (code renew-order, owner the order's requester, focus the
 *        ServiceRequest, partOf the referral's Task, status requested), written back to the EHR
 *
 * "Once" is kept by the Task's identifier (`<referralId>:<order end>`), checked and created in one
 * transaction under the referral's renewal lock. A renewed order (a later end) may need a renewal
 * again later, under its own identifier.
 */
import type { Appointment, Identifier, Reference, Resource, ServiceRequest, Task } from 'fhir/r4.js';
import { isRenewalDue, planSeries, type SeriesPlan } from '../../scheduling/rules/infusion-series.js';
import { requestedPeriod, type EhrReferences } from '../../referral/rules/referral.js';
import { GATEWAY_CANONICAL_BASE, TASK_PARAMETER_TYPE_SYSTEM } from '../../referral/rules/referral-status.js';
import { instantWithSiteOffset, instantAtSite } from '../../scheduling/rules/site-hours.js';
import { parseRelativeReference } from '../../fhir/references.js';
import type { ReferralRow, ResourceWriter } from '../../ports/resource-store.js';
import { type GatewayDeps, writeBackTarget } from '../../ports/gateway-deps.js';
import { REFERRAL_TASK_TYPE_SYSTEM, subTaskWriteBack } from '../../scheduling/stories/mark-no-shows.js';
import { MAX_REFERRALS_PER_RUN } from '../../delivery/stories/send-reminders.js';
import { readStoredReferral, type StoredReferral } from '../../referral/stories/stored-referral.js';

export const RENEWAL_IDENTIFIER_SYSTEM = `${GATEWAY_CANONICAL_BASE}/renewal-id`;

/** The referral statuses whose order is still being worked: a series is planned or under way. */
const RENEWABLE_STATUSES = ['scheduled', 'ready-to-schedule'] as const;

export interface RenewalRunResult {
  referrals: number;
  opened: number;
}

const outputsOf = (task: Task, code: string) =>
  (task.output ?? []).filter((o) => o.type.coding?.some((c) => c.system === TASK_PARAMETER_TYPE_SYSTEM && c.code === code));

/**
 * Who the renewal goes to: the order's requester. A contained requester means nothing outside the
 * ServiceRequest, so it is named by its business identifier (e.g. the NPI), with its type.
 */
export function requesterReference(serviceRequest: ServiceRequest): Reference | undefined {
  const requester = serviceRequest.requester;
  if (!requester?.reference?.startsWith('#')) return requester;
  const contained = serviceRequest.contained?.find((r) => `#${r.id}` === requester.reference) as
    (Resource & { identifier?: Identifier[] }) | undefined;
  const identifier = contained?.identifier?.find((i) => i.system && i.value);
  if (!contained || !identifier) return requester.display !== undefined ? { display: requester.display } : undefined;
  return {
    type: contained.resourceType,
    identifier: { system: identifier.system, value: identifier.value },
    ...(requester.display !== undefined ? { display: requester.display } : {}),
  };
}

interface RenewalCase extends StoredReferral {
  orderEnd: string;
  timeZone: string;
  plan: SeriesPlan;
}

/**
 * Where the series starts: its first planned dose (written on the Task at booking), else the
 * booked Appointment, else the earliest it could start (now, or the order's start if later).
 */
async function seriesStart(
  deps: Pick<GatewayDeps, 'store'>,
  row: ReferralRow,
  task: Task,
  orderStart: Date | undefined,
  now: Date,
): Promise<Date> {
  const planned = outputsOf(task, 'planned-dose')
    .map((o) => (o.valueDateTime ? new Date(o.valueDateTime) : undefined))
    .filter((d): d is Date => d !== undefined && !Number.isNaN(d.getTime()))
    .sort((a, b) => a.getTime() - b.getTime());
  if (planned[0]) return planned[0];
  const reference = parseRelativeReference(outputsOf(task, 'appointment')[0]?.valueReference?.reference);
  if (reference?.resourceType === 'Appointment') {
    const appointment = await deps.store.read<Appointment>([row.tenant], 'Appointment', reference.id);
    if (appointment?.start) return new Date(appointment.start);
  }
  return new Date(Math.max(now.getTime(), orderStart?.getTime() ?? Number.NEGATIVE_INFINITY));
}

/** The referral's renewal question, or undefined when it has no order end or no known drug. */
async function renewalCase(deps: GatewayDeps, row: ReferralRow, now: Date): Promise<RenewalCase | undefined> {
  const stored = await readStoredReferral(deps.store, row);
  if (!stored) return undefined;
  const { task, serviceRequest } = stored;
  const period = requestedPeriod(serviceRequest);
  const drug = deps.drugs.findDrug(serviceRequest.code?.coding ?? []);
  if (!period?.end || !drug) return undefined;
  const siteId = parseRelativeReference(serviceRequest.locationReference?.[0]?.reference);
  const timeZone = (siteId?.resourceType === 'Location' ? (await deps.sites.current()).site(siteId.id)?.timeZone : undefined) ?? 'UTC';
  const orderValidUntil = instantAtSite(period.end, timeZone, 'end');
  if (!orderValidUntil) return undefined;
  const authorizationEnd = instantAtSite(outputsOf(task, 'authorization-period')[0]?.valuePeriod?.end, timeZone, 'end');
  const quantity = serviceRequest.quantityQuantity?.value;
  const plan = planSeries({
    firstStart: await seriesStart(deps, row, task, instantAtSite(period.start, timeZone, 'start'), now),
    drug,
    orderValidUntil,
    ...(authorizationEnd ? { authorizationEnd } : {}),
    ...(quantity !== undefined && Number.isInteger(quantity) && quantity >= 1 ? { maxDoses: quantity } : {}),
    renewalNoticeDays: deps.scheduling.renewalNoticeDays,
    timeZone,
  });
  return {
    ...stored,
    orderEnd: period.end,
    timeZone,
    plan,
  };
}

function renewalTask(input: RenewalCase & { id: string; now: Date }): Task & { id: string } {
  const at = input.now.toISOString();
  const owner = requesterReference(input.serviceRequest);
  const covered = input.plan.doses.length;
  const asked = input.serviceRequest.quantityQuantity?.value;
  const extent =
    asked !== undefined
      ? `${covered} of the ${asked} doses ordered fall within it`
      : `the series goes on after it (${covered} doses fall within it)`;
  const parameter = (code: string, display: string) => ({ type: { coding: [{ system: TASK_PARAMETER_TYPE_SYSTEM, code, display }] } });
  return {
    resourceType: 'Task',
    id: input.id,
    identifier: [{ system: RENEWAL_IDENTIFIER_SYSTEM, value: `${input.row.id}:${input.orderEnd}` }],
    status: 'requested',
    intent: 'order',
    priority: 'routine',
    code: { coding: [{ system: REFERRAL_TASK_TYPE_SYSTEM, code: 'renew-order', display: 'Renew the order' }] },
    description: `The infusion order ends on ${input.orderEnd}, before its series is complete: ${extent}. Please send a renewed order so that the infusions can go on without a gap.`,
    partOf: [{ reference: `Task/${input.task.id}` }],
    focus: { reference: `ServiceRequest/${input.serviceRequest.id}` },
    ...(input.task.for ? { for: input.task.for } : {}),
    ...(owner ? { owner } : {}),
    authoredOn: at,
    lastModified: at,
    // Wanted before the order runs out.
    restriction: { period: { end: input.orderEnd } },
    input: [
      { ...parameter('order-end', 'Order end'), valueDate: input.orderEnd.slice(0, 10) },
      ...(input.plan.firstUncoveredDose
        ? [
            {
              ...parameter('first-uncovered-dose', 'First dose the order does not cover'),
              valueDateTime: instantWithSiteOffset(input.plan.firstUncoveredDose, input.timeZone),
            },
          ]
        : []),
    ],
  };
}

/** Opens the renewal Task unless this order end already has one. True when it opened one. */
async function openRenewal(
  deps: Pick<GatewayDeps, 'newId' | 'store' | 'writeBackTenants'>,
  found: RenewalCase,
  now: Date,
): Promise<boolean> {
  const { row } = found;
  const ehr = (row.referral as { ehr?: EhrReferences } | null)?.ehr;
  const writeBackTo = writeBackTarget(deps, row.tenant, ehr);
  const key = `${row.id}:${found.orderEnd}`;
  return deps.store.transaction(async (tx: ResourceWriter) => {
    await tx.lock(`renewal:${row.id}`);
    const existing = await tx.search<Task>({
      resourceType: 'Task',
      tenants: [row.tenant],
      criteria: [{ name: 'identifier', values: [`${RENEWAL_IDENTIFIER_SYSTEM}|${key}`] }],
      count: 1,
      offset: 0,
    });
    if (existing.resources.length > 0) return false;
    const task = await tx.create(row.tenant, renewalTask({ ...found, id: deps.newId(), now }), now);
    if (writeBackTo) {
      const referral = { tenant: row.tenant, referralId: row.id, ehr: writeBackTo };
      await tx.enqueue(
        subTaskWriteBack({
          messageId: deps.newId(),
          ...referral,
          task,
          referralTask: found.task,
          identifier: { system: RENEWAL_IDENTIFIER_SYSTEM, value: key },
          focus: writeBackTo.serviceRequest,
        }),
        now,
      );
    }
    return true;
  });
}

/** One run of the renewal check over every tenant's scheduled and ready-to-schedule referrals. */
export async function renewOrders(deps: GatewayDeps): Promise<RenewalRunResult> {
  const result: RenewalRunResult = { referrals: 0, opened: 0 };
  const now = deps.clock.now();
  for (const status of RENEWABLE_STATUSES) {
    const rows = await deps.store.listReferralsByStatus(status, { limit: MAX_REFERRALS_PER_RUN });
    if (rows.length === MAX_REFERRALS_PER_RUN)
      deps.logger.warn('more referrals than one renewal run looks at', { status, limit: MAX_REFERRALS_PER_RUN });
    for (const row of rows) {
      result.referrals += 1;
      try {
        const found = await renewalCase(deps, row, now);
        if (!found || !isRenewalDue(found.plan, now)) continue;
        if (await openRenewal(deps, found, now)) {
          result.opened += 1;
          deps.logger.info('order renewal requested', { referralId: row.id });
        }
      } catch (error) {
        deps.logger.warn('renewal check failed', { referralId: row.id, errorName: error instanceof Error ? error.name : 'unknown' });
      }
    }
  }
  return result;
}
