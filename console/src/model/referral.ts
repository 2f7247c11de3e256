/**
 * Reading a referral as the gateway publishes it: the Task (placer/filler,
 * https://hl7.org/fhir/R4/workflow-management.html) with its business status, typed inputs and
 * outputs, and the ServiceRequest it fulfils. The codes come from the gateway's own modules, so
 * the console and the server cannot drift apart. Pure: no DOM, tested in Node.
 */
import type {
  CodeableConcept,
  Extension,
  HumanName,
  Organization,
  Patient,
  Practitioner,
  PractitionerRole,
  Period,
  Reference,
  Resource,
  ServiceRequest,
  Task,
  TaskInput,
  TaskOutput,
} from 'fhir/r4.js';
import { CRD_COVERAGE_INFORMATION_URL } from '../../../src/coverage/rules/coverage-outcome.js';
import {
  REFERRAL_STATUSES,
  REFERRAL_STATUS_SYSTEM,
  TASK_PARAMETER_TYPE_SYSTEM,
  referralStatusDisplay,
  type ReferralStatus,
} from '../../../src/referral/rules/referral-status.js';
import { SITE_SUGGESTION_EXTENSION_URL } from '../../../src/referral/rules/referral-task.js';

export { REFERRAL_STATUS_SYSTEM, TASK_PARAMETER_TYPE_SYSTEM, referralStatusDisplay, type ReferralStatus };

/** The queues a coordinator works: every status but the closed ones, in the order a referral moves (issue 14). */
export type QueueStatus = Exclude<ReferralStatus, 'received' | 'rejected' | 'cancelled'>;
const CLOSED: ReadonlySet<ReferralStatus> = new Set(['received', 'rejected', 'cancelled']);
export const QUEUE_STATUSES: readonly QueueStatus[] = REFERRAL_STATUSES.filter((s): s is QueueStatus => !CLOSED.has(s));

export function isQueueStatus(value: string | undefined): value is QueueStatus {
  return (QUEUE_STATUSES as readonly string[]).includes(value ?? '');
}

/** Whose move it is in each queue: what a coordinator scans the list for. */
const WAITING_ON: Record<QueueStatus, { party: string; action: string }> = {
  'misroute-suspected': { party: 'Coordinator', action: 'confirm the site with the patient' },
  'verifying-coverage': { party: 'Payer', action: 'eligibility and network check' },
  'coverage-problem': { party: 'Coordinator', action: 'resolve the coverage problem' },
  'auth-required': { party: 'Coordinator', action: 'review the denial risks, then submit the authorization' },
  'auth-pending': { party: 'Payer', action: 'decide the prior authorization' },
  'auth-denied': { party: 'Coordinator and prescriber', action: 'work the appeal' },
  'ready-to-schedule': { party: 'Coordinator and patient', action: 'book a chair' },
  scheduled: { party: 'Patient', action: 'come to the infusion' },
};

export function waitingOn(status: QueueStatus): { party: string; action: string } {
  return WAITING_ON[status];
}

export function businessStatusOf(task: Task): ReferralStatus | undefined {
  return task.businessStatus?.coding?.find((c) => c.system === REFERRAL_STATUS_SYSTEM)?.code as ReferralStatus | undefined;
}

const hasType = (type: CodeableConcept | undefined, code: string): boolean =>
  type?.coding?.some((c) => c.system === TASK_PARAMETER_TYPE_SYSTEM && c.code === code) === true;

export function inputsOfType(task: Task, code: string): TaskInput[] {
  return (task.input ?? []).filter((i) => hasType(i.type, code));
}

export function outputsOfType(task: Task, code: string): TaskOutput[] {
  return (task.output ?? []).filter((o) => hasType(o.type, code));
}

/** The id in a relative reference of the given type (`Location/abc` -> `abc`). */
export function idOf(reference: Reference | string | undefined, type: string): string | undefined {
  const text = typeof reference === 'string' ? reference : reference?.reference;
  const match = /^(?:.*\/)?([A-Z][A-Za-z]+)\/([A-Za-z0-9\-.]{1,64})(?:\/_history\/.*)?$/.exec(text ?? '');
  return match && match[1] === type ? match[2] : undefined;
}

export function serviceRequestIdOf(task: Task): string | undefined {
  return idOf(task.focus, 'ServiceRequest') ?? idOf(task.basedOn?.[0], 'ServiceRequest');
}

/** A contained resource a `#id` reference points to. */
export function containedOf<T extends Resource>(
  resource: { contained?: Resource[] },
  reference: Reference | undefined,
  type: T['resourceType'],
): T | undefined {
  const id = reference?.reference?.startsWith('#') ? reference.reference.slice(1) : undefined;
  const found = id === undefined ? undefined : resource.contained?.find((r) => r.id === id);
  return found?.resourceType === type ? (found as T) : undefined;
}

/** The patient of an order: contained in it, else the one read separately (`patients`, by id). */
export function patientOf(serviceRequest: ServiceRequest, patients: ReadonlyMap<string, Patient> = new Map()): Patient | undefined {
  return (
    containedOf<Patient>(serviceRequest, serviceRequest.subject, 'Patient') ?? patients.get(idOf(serviceRequest.subject, 'Patient') ?? '')
  );
}

/** A person's name as one reads it: the official name first (Patient, Practitioner). */
export function patientName(person: { name?: HumanName[] } | undefined): string {
  const name = person?.name?.find((n) => n.use === 'official') ?? person?.name?.[0];
  if (!name) return 'Unnamed patient';
  if (name.text) return name.text;
  return [...(name.given ?? []), name.family].filter(Boolean).join(' ') || 'Unnamed patient';
}

/**
 * Who ordered: a contained (or Bundle-resolved) Practitioner's name, a PractitionerRole's
 * practitioner, an Organization's name, else what the reference itself says.
 */
export function requesterName(order: ServiceRequest): string {
  const reference = order.requester;
  const practitioner = containedOf<Practitioner>(order, reference, 'Practitioner');
  if (practitioner) return patientName(practitioner);
  const role = containedOf<PractitionerRole>(order, reference, 'PractitionerRole');
  if (role) {
    const person = containedOf<Practitioner>(order, role.practitioner, 'Practitioner');
    const organization = containedOf<Organization>(order, role.organization, 'Organization');
    return (
      [person ? patientName(person) : role.practitioner?.display, organization?.name ?? role.organization?.display]
        .filter(Boolean)
        .join(', ') || 'a practitioner role'
    );
  }
  const organization = containedOf<Organization>(order, reference, 'Organization');
  if (organization?.name) return organization.name;
  return reference?.display ?? reference?.reference ?? 'unknown';
}

export function conceptText(concept: CodeableConcept | undefined): string {
  return concept?.text ?? concept?.coding?.find((c) => c.display)?.display ?? concept?.coding?.[0]?.code ?? '';
}

/** The drug as the order names it. */
export function drugOf(serviceRequest: ServiceRequest | undefined): string {
  return conceptText(serviceRequest?.code) || 'Unknown drug';
}

/** The dates the order asks for: occurrencePeriod, or the bounds of an occurrenceTiming. */
export function requestedPeriodOf(serviceRequest: ServiceRequest | undefined): Period | undefined {
  return serviceRequest?.occurrencePeriod ?? serviceRequest?.occurrenceTiming?.repeat?.boundsPeriod;
}

export function requestedSiteIdOf(serviceRequest: ServiceRequest | undefined): string | undefined {
  return idOf(serviceRequest?.locationReference?.[0], 'Location');
}

/** The Da Vinci CRD coverage-information extension on the Task, as name/value parts. */
export function coverageInformation(task: Task): Extension[] {
  return task.extension?.find((e) => e.url === CRD_COVERAGE_INFORMATION_URL)?.extension ?? [];
}

/** A suggested site of the site check, with what the check knew about it (issue 14). */
export interface SuggestedSite {
  locationId: string;
  name: string;
  rank: number;
  distanceKm?: number;
  inNetwork?: boolean;
  patientChoice?: boolean;
  previouslyTreated?: boolean;
}

export function suggestedSites(task: Task): SuggestedSite[] {
  return inputsOfType(task, 'suggested-location').flatMap((input, index): SuggestedSite[] => {
    const locationId = idOf(input.valueReference, 'Location');
    if (locationId === undefined) return [];
    const detail = input.extension?.find((e) => e.url === SITE_SUGGESTION_EXTENSION_URL)?.extension ?? [];
    const part = (url: string): Extension | undefined => detail.find((e) => e.url === url);
    const site: SuggestedSite = { locationId, name: input.valueReference?.display ?? locationId, rank: index + 1 };
    const distance = part('distance')?.valueQuantity?.value;
    if (distance !== undefined) site.distanceKm = distance;
    const inNetwork = part('in-network')?.valueBoolean;
    if (inNetwork !== undefined) site.inNetwork = inNetwork;
    const choice = part('patient-choice')?.valueBoolean;
    if (choice !== undefined) site.patientChoice = choice;
    const treated = part('previously-treated')?.valueBoolean;
    if (treated !== undefined) site.previouslyTreated = treated;
    return [site];
  });
}

export function misrouteReasons(task: Task): Array<{ code: string; text: string }> {
  return inputsOfType(task, 'misroute-reason').map((i) => ({
    code: i.valueCodeableConcept?.coding?.[0]?.code ?? '',
    text: conceptText(i.valueCodeableConcept),
  }));
}

/** "3 d", "5 h", "12 min": how long something has waited, compact for a table. */
export function formatAge(from: string | undefined, now: Date): string {
  if (from === undefined) return '';
  const ms = now.getTime() - Date.parse(from);
  if (Number.isNaN(ms)) return '';
  const minutes = Math.max(0, Math.floor(ms / 60_000));
  if (minutes < 60) return `${minutes} min`;
  const hours = Math.floor(minutes / 60);
  if (hours < 48) return `${hours} h`;
  return `${Math.floor(hours / 24)} d`;
}

export function formatDate(value: string | undefined): string {
  if (value === undefined) return '';
  if (/^\d{4}-\d{2}-\d{2}$/.test(value)) return value;
  const date = new Date(value);
  return Number.isNaN(date.getTime()) ? value : date.toISOString().slice(0, 10);
}

export function formatPeriod(period: Period | undefined): string {
  if (!period) return '';
  return `${formatDate(period.start) || '…'} to ${formatDate(period.end) || '…'}`;
}
