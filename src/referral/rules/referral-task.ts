/**
 * The FHIR Task that tracks one referral, in the placer/filler workflow pattern
 * (https://hl7.org/fhir/R4/workflow-management.html#optiond): `focus` and `basedOn` are the
 * ServiceRequest, `for` the patient, `code` = fulfill; `businessStatus` is the gateway's own.
 */
import type { Extension, Reference, Task, TaskInput, TaskOutput } from 'fhir/r4.js';
import type { RejectionReason } from './referral.js';
import { MISROUTE_REASON_SYSTEM, type SiteCheckResult, type SiteSuggestion } from '../../site-check/rules/site-check-types.js';
import { SITE_CODE_SYSTEM } from '../../directory/rules/site-directory.js';
import {
  GATEWAY_CANONICAL_BASE,
  REFERRAL_IDENTIFIER_SYSTEM,
  REJECTION_REASON_SYSTEM,
  TASK_CODE_SYSTEM,
  TASK_PARAMETER_TYPE_SYSTEM,
  type ReferralStatus,
  taskStatusFields,
} from './referral-status.js';

export interface NewReferralTask {
  taskId: string;
  referralId: string;
  serviceRequestId: string;
  patient: Reference;
  requester: Reference;
  status: Extract<ReferralStatus, 'received' | 'rejected' | 'misroute-suspected' | 'verifying-coverage'>;
  rejectionReasons: readonly RejectionReason[];
  /** The site check's finding; its reasons and suggestions become inputs when it found a problem. */
  siteCheck?: SiteCheckResult;
  now: Date;
}

function parameterType(code: string, display: string): TaskInput['type'] {
  return { coding: [{ system: TASK_PARAMETER_TYPE_SYSTEM, code, display }] };
}

/**
 * A directory site: the literal reference for the gateway's API, and the site code as a logical
 * reference (https://hl7.org/fhir/R4/references.html#logical) for receivers without the directory.
 */
export function siteReference(site: { locationId: string; name: string; siteCode?: string }): Reference {
  return {
    reference: `Location/${site.locationId}`,
    type: 'Location',
    ...(site.siteCode !== undefined ? { identifier: { system: SITE_CODE_SYSTEM, value: site.siteCode } } : {}),
    display: site.name,
  };
}

/**
 * What the site check knew about a suggested site, on its suggested-location input, so that a
 * coordinator sees why it is proposed without re-running the check
 * (profiles/StructureDefinition-site-suggestion.json): the distance from the patient's home (km,
 * when the home is known), whether it is in the network of the patient's plan (when the plan is
 * known), and whether the patient chose it or was treated there before.
 */
export const SITE_SUGGESTION_EXTENSION_URL = `${GATEWAY_CANONICAL_BASE}/StructureDefinition/site-suggestion`;

function suggestionDetail(suggestion: SiteSuggestion): Extension {
  const parts: Extension[] = [];
  if (suggestion.distanceKm !== undefined) {
    parts.push({
      url: 'distance',
      valueQuantity: { value: Math.round(suggestion.distanceKm * 10) / 10, unit: 'km', system: 'http://unitsofmeasure.org', code: 'km' },
    });
  }
  if (suggestion.inNetwork !== undefined) parts.push({ url: 'in-network', valueBoolean: suggestion.inNetwork });
  parts.push(
    { url: 'patient-choice', valueBoolean: suggestion.patientChoice },
    { url: 'previously-treated', valueBoolean: suggestion.previouslyTreated },
  );
  return { url: SITE_SUGGESTION_EXTENSION_URL, extension: parts };
}

/**
 * The site check's reasons (type misroute-reason, a coded value) and suggested sites (type
 * suggested-location, a Location reference with the site-suggestion extension), in rank order,
 * best first.
 */
export function siteCheckInputs(siteCheck: SiteCheckResult): TaskInput[] {
  if (siteCheck.decision === 'ok') return [];
  return [
    ...siteCheck.reasons.map((reason): TaskInput => ({
      type: parameterType('misroute-reason', 'Misroute reason'),
      valueCodeableConcept: { coding: [{ system: MISROUTE_REASON_SYSTEM, code: reason.code }], text: reason.display },
    })),
    ...siteCheck.suggestions.map((suggestion): TaskInput => ({
      extension: [suggestionDetail(suggestion)],
      type: parameterType('suggested-location', 'Suggested location'),
      valueReference: siteReference(suggestion),
    })),
  ];
}

function rejectionOutput(reason: RejectionReason): TaskOutput {
  return {
    type: parameterType('rejection-reason', 'Rejection reason'),
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
    ...taskStatusFields(input.status),
    intent: 'order',
    code: { coding: [{ system: TASK_CODE_SYSTEM, code: 'fulfill', display: 'Fulfill the focal request' }] },
    focus: { reference: `ServiceRequest/${input.serviceRequestId}` },
    for: input.patient,
    authoredOn: at,
    lastModified: at,
    requester: input.requester,
  };
  if (input.status === 'misroute-suspected' && input.siteCheck) {
    task.statusReason = {
      coding: [{ system: MISROUTE_REASON_SYSTEM, code: input.siteCheck.reasons[0]!.code }],
      text: `Site to be confirmed with the patient: ${input.siteCheck.reasons.map((r) => r.display).join('; ')}`,
    };
  }
  const inputs = input.siteCheck ? siteCheckInputs(input.siteCheck) : [];
  if (inputs.length > 0) task.input = inputs;
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
