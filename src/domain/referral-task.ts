/**
 * The FHIR Task that tracks one referral, in the placer/filler workflow pattern
 * (https://hl7.org/fhir/R4/workflow-management.html#optiond): `focus` and `basedOn` are the
 * ServiceRequest, `for` the patient, `code` = fulfill; `businessStatus` is the gateway's own.
 */
import type { Reference, Task, TaskOutput } from 'fhir/r4.js';
import type { RejectionReason } from './referral.js';
import {
  REFERRAL_IDENTIFIER_SYSTEM,
  REFERRAL_STATUS_SYSTEM,
  REJECTION_REASON_SYSTEM,
  TASK_CODE_SYSTEM,
  TASK_PARAMETER_TYPE_SYSTEM,
  referralStatusDisplay,
  taskStatusFor,
  type ReferralStatus,
} from './referral-status.js';

export interface NewReferralTask {
  taskId: string;
  referralId: string;
  serviceRequestId: string;
  patient: Reference;
  requester: Reference;
  status: Extract<ReferralStatus, 'received' | 'rejected'>;
  rejectionReasons: readonly RejectionReason[];
  now: Date;
}

function rejectionOutput(reason: RejectionReason): TaskOutput {
  return {
    type: { coding: [{ system: TASK_PARAMETER_TYPE_SYSTEM, code: 'rejection-reason', display: 'Rejection reason' }] },
    valueCodeableConcept: {
      coding: [{ system: REJECTION_REASON_SYSTEM, code: reason.code }],
      text: reason.display,
    },
  };
}

export function buildReferralTask(input: NewReferralTask): Task & { id: string } {
  const at = input.now.toISOString();
  const task: Task & { id: string } = {
    resourceType: 'Task',
    id: input.taskId,
    identifier: [{ system: REFERRAL_IDENTIFIER_SYSTEM, value: input.referralId }],
    basedOn: [{ reference: `ServiceRequest/${input.serviceRequestId}` }],
    status: taskStatusFor(input.status),
    businessStatus: {
      coding: [{ system: REFERRAL_STATUS_SYSTEM, code: input.status, display: referralStatusDisplay(input.status) }],
    },
    intent: 'order',
    code: { coding: [{ system: TASK_CODE_SYSTEM, code: 'fulfill', display: 'Fulfill the focal request' }] },
    focus: { reference: `ServiceRequest/${input.serviceRequestId}` },
    for: input.patient,
    authoredOn: at,
    lastModified: at,
    requester: input.requester,
  };
  const [first] = input.rejectionReasons;
  if (first) {
    task.statusReason = {
      coding: [{ system: REJECTION_REASON_SYSTEM, code: first.code }],
      text: input.rejectionReasons.map((r) => r.display).join('; '),
    };
    task.output = input.rejectionReasons.map(rejectionOutput);
  }
  return task;
}
