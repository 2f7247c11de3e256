/**
 * Planning an infusion series: the target date of each dose, only while the order and the prior
 * authorization cover it, and whether the order must be renewed before the series is done.
 *
 * docs/domain.md "The path of one referral", 8 (field note 001): orders expire and a series continues only
 * while the order is valid; a patient came in while the renewal was delayed and had no appointment
 * on record. So the plan says when to ask the referring side for a renewal (a Task, issue 6),
 * ahead of the order's end. Targets keep the first dose's local time of day across
 * daylight-saving changes when a time zone is given. Pure.
 */
import { MINUTE_MS, localDayAndMinute, utcOfWallTime } from './site-hours.js';

/** The catalog fields a plan needs (src/directory/rules/drug-catalog.ts, CatalogDrug). */
export interface SeriesDrug {
  typicalIntervalWeeks: number;
  /** Weeks of the induction doses from week 0 (e.g. infliximab 0, 2, 6). */
  inductionDoseWeeks?: readonly number[];
}

/**
 * Default notice for a renewal: 30 days before the order ends, time for the referring practice to
 * see the patient and sign a new order, and for a new authorization if the payer wants one.
 */
export const DEFAULT_RENEWAL_NOTICE_DAYS = 30;

/** A guard for a series without maxDoses: no plan looks further than this many doses. */
const MAX_PLANNED_DOSES = 520;

export interface PlanSeriesInput {
  /** The first dose of this plan (the booked or proposed start). */
  firstStart: Date;
  drug: SeriesDrug;
  /** The end of the order's validity (ServiceRequest.occurrencePeriod.end or equivalent). */
  orderValidUntil: Date;
  /** The end of the prior authorization's period, when it has one. */
  authorizationEnd?: Date;
  /** Doses the order asks for in all; without it maintenance goes on as long as it is covered. */
  maxDoses?: number;
  /**
   * `induction` (default when the drug has induction weeks): the first dose is week 0 of the
   * induction. `maintenance`: a patient already on therapy, every typicalIntervalWeeks.
   */
  phase?: 'induction' | 'maintenance';
  renewalNoticeDays?: number;
  /** The site's IANA zone: targets keep the first dose's local time of day. Default UTC. */
  timeZone?: string;
}

export interface SeriesPlan {
  /** Target starts of the doses the order and the authorization cover, in order. */
  doses: Date[];
  /** The order ends before the series would. */
  renewalNeeded: boolean;
  /** When to ask for the renewal: renewalNoticeDays before the order ends. */
  renewalDueBy?: Date;
  /** The authorization ends before the series would. */
  reauthorizationNeeded: boolean;
  /** The first target that neither the order nor the authorization covers, if any. */
  firstUncoveredDose?: Date;
}

/**
 * The doses of a series within the order's validity and the authorization's period.
 * Maintenance follows the last induction dose: infliximab 0, 2, 6 then every 8 weeks -> weeks
 * 0, 2, 6, 14, 22, ... A dose counts as covered when its target start is at or before the end
 * of the order and of the authorization.
 */
export function planSeries(input: PlanSeriesInput): SeriesPlan {
  const { drug, maxDoses } = input;
  if (!(drug.typicalIntervalWeeks > 0)) throw new RangeError(`typicalIntervalWeeks must be > 0, got ${drug.typicalIntervalWeeks}`);
  if (maxDoses !== undefined && (!Number.isInteger(maxDoses) || maxDoses < 1))
    throw new RangeError(`maxDoses must be a whole number >= 1, got ${maxDoses}`);
  const noticeDays = input.renewalNoticeDays ?? DEFAULT_RENEWAL_NOTICE_DAYS;
  if (!(noticeDays >= 0)) throw new RangeError(`renewalNoticeDays must be >= 0, got ${noticeDays}`);

  const timeZone = input.timeZone ?? 'UTC';
  const first = localDayAndMinute(timeZone, input.firstStart.getTime());
  const induction = input.phase === 'maintenance' ? [] : [...(drug.inductionDoseWeeks ?? [])].sort((a, b) => a - b);
  const weekOf = (k: number): number => {
    if (induction.length === 0) return k * drug.typicalIntervalWeeks;
    if (k < induction.length) return induction[k]! - induction[0]!;
    return induction[induction.length - 1]! - induction[0]! + (k - induction.length + 1) * drug.typicalIntervalWeeks;
  };
  const targetOf = (k: number): number => utcOfWallTime(timeZone, first.day + Math.round(weekOf(k) * 7), first.minute);

  const orderEnd = input.orderValidUntil.getTime();
  const authEnd = input.authorizationEnd?.getTime() ?? Number.POSITIVE_INFINITY;
  const coveredUntil = Math.min(orderEnd, authEnd);
  const planned = Math.min(maxDoses ?? MAX_PLANNED_DOSES, MAX_PLANNED_DOSES);

  const doses: Date[] = [];
  let firstUncovered: number | undefined;
  for (let k = 0; k < planned; k++) {
    const target = targetOf(k);
    if (target > coveredUntil) {
      firstUncovered = target;
      break;
    }
    doses.push(new Date(target));
  }

  // Without maxDoses, maintenance has no end of its own: any end of cover cuts it short.
  const seriesEnd = maxDoses === undefined ? Number.POSITIVE_INFINITY : targetOf(maxDoses - 1);
  const renewalNeeded = seriesEnd > orderEnd;
  const plan: SeriesPlan = {
    doses,
    renewalNeeded,
    reauthorizationNeeded: seriesEnd > authEnd,
  };
  if (renewalNeeded) plan.renewalDueBy = new Date(orderEnd - noticeDays * 24 * 60 * MINUTE_MS);
  if (firstUncovered !== undefined) plan.firstUncoveredDose = new Date(firstUncovered);
  return plan;
}

/** Whether the renewal Task should go to the referring side now. */
export function isRenewalDue(plan: SeriesPlan, now: Date): boolean {
  return plan.renewalNeeded && plan.renewalDueBy !== undefined && now.getTime() >= plan.renewalDueBy.getTime();
}
