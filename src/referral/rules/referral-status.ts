/**
 * The referral's lifecycle as the gateway publishes it: a FHIR Task (placer/filler pattern,
 * https://hl7.org/fhir/R4/workflow-management.html) whose `status` is FHIR's and whose
 * `businessStatus` comes from our own CodeSystem (profiles/CodeSystem-referral-status.json).
 */
import type { Task } from 'fhir/r4.js';

export const GATEWAY_CANONICAL_BASE = 'https://fhir.infusion-gateway.example';
export const REFERRAL_PROFILE_URL = `${GATEWAY_CANONICAL_BASE}/StructureDefinition/infusion-referral`;
export const REFERRAL_STATUS_SYSTEM = `${GATEWAY_CANONICAL_BASE}/CodeSystem/referral-status`;
export const REJECTION_REASON_SYSTEM = `${GATEWAY_CANONICAL_BASE}/CodeSystem/referral-rejection-reason`;
export const TASK_PARAMETER_TYPE_SYSTEM = `${GATEWAY_CANONICAL_BASE}/CodeSystem/task-parameter-type`;
export const REFERRAL_IDENTIFIER_SYSTEM = `${GATEWAY_CANONICAL_BASE}/referral-id`;
export const TASK_CODE_SYSTEM = 'http://hl7.org/fhir/CodeSystem/task-code';

export const REFERRAL_STATUSES = [
  'received',
  'rejected',
  'misroute-suspected',
  'verifying-coverage',
  'coverage-problem',
  'auth-required',
  'auth-pending',
  'auth-denied',
  'ready-to-schedule',
  'scheduled',
  'cancelled',
] as const;

export type ReferralStatus = (typeof REFERRAL_STATUSES)[number];

const DISPLAY: Record<ReferralStatus, string> = {
  received: 'Received',
  rejected: 'Rejected',
  'misroute-suspected': 'Misroute suspected',
  'verifying-coverage': 'Verifying coverage',
  'coverage-problem': 'Coverage problem',
  'auth-required': 'Prior authorization required',
  'auth-pending': 'Prior authorization pending',
  'auth-denied': 'Prior authorization denied',
  'ready-to-schedule': 'Ready to schedule',
  scheduled: 'Scheduled',
  cancelled: 'Cancelled',
};

/**
 * FHIR Task.status for each business status (https://hl7.org/fhir/R4/valueset-task-status.html):
 * `received` = the filler has the referral and is evaluating it; holds are `on-hold`.
 */
const TASK_STATUS: Record<ReferralStatus, Task['status']> = {
  received: 'received',
  rejected: 'rejected',
  'misroute-suspected': 'on-hold',
  'verifying-coverage': 'in-progress',
  'coverage-problem': 'on-hold',
  'auth-required': 'in-progress',
  'auth-pending': 'in-progress',
  'auth-denied': 'on-hold',
  'ready-to-schedule': 'accepted',
  scheduled: 'in-progress',
  cancelled: 'cancelled',
};

export function referralStatusDisplay(status: ReferralStatus): string {
  return DISPLAY[status];
}

export function taskStatusFor(status: ReferralStatus): Task['status'] {
  return TASK_STATUS[status];
}

/** The referral status a referral Task carries in its businessStatus (docs/domain.md), if any. */
export function referralStatusOf(task: Pick<Task, 'businessStatus'>): ReferralStatus | undefined {
  return task.businessStatus?.coding?.find((c) => c.system === REFERRAL_STATUS_SYSTEM)?.code as ReferralStatus | undefined;
}

/**
 * A referral Task's status and businessStatus for a referral status, kept in step: the business
 * status says which step, Task.status what FHIR's workflow makes of it
 * (https://hl7.org/fhir/R4/task.html#statemachine).
 */
export function taskStatusFields(status: ReferralStatus): Required<Pick<Task, 'status' | 'businessStatus'>> {
  return {
    status: taskStatusFor(status),
    businessStatus: { coding: [{ system: REFERRAL_STATUS_SYSTEM, code: status, display: referralStatusDisplay(status) }] },
  };
}
