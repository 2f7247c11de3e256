/**
 * Orders that change after they are sent: given the order as the gateway last took it and the
 * order as the EHR now has it (re-read by poll, pushed by a Subscription notification, or PUT),
 * what the referral must do. Pure: the use case applies the decision (Task status and reason,
 * chairs released, Appointments cancelled, write-back once).
 *
 * ServiceRequest statuses (https://hl7.org/fhir/R4/valueset-request-status.html):
 * `revoked` and `entered-in-error` end the request; `on-hold` suspends it; `active` again after
 * `on-hold` resumes it. `revoked`, `entered-in-error` and `completed` are terminal in the request
 * state machine (https://hl7.org/fhir/R4/request.html#statemachine), so an order that "comes back"
 * from them is not resumed: the EHR sends a new order instead.
 */
import type { CodeableConcept, ServiceRequest } from 'fhir/r4.js';
import { GATEWAY_CANONICAL_BASE } from '../../referral/rules/referral-status.js';

export const ORDER_CHANGE_REASON_SYSTEM = `${GATEWAY_CANONICAL_BASE}/CodeSystem/order-change-reason`;

/** The parts of an order the gateway's steps depend on. */
export type OrderPart = 'drug' | 'dose' | 'period' | 'site' | 'insurance' | 'diagnosis';

/** The steps a changed order is re-checked from, in the order the referral passes them. */
export type ResumeStep = 'site-check' | 'coverage';
const STEP_ORDER: readonly ResumeStep[] = ['site-check', 'coverage'];

/** Which step each part of the order feeds: the site check reads the site; coverage and prior authorization read the rest. */
const STEP_OF_PART: Readonly<Record<OrderPart, ResumeStep>> = {
  site: 'site-check',
  drug: 'coverage',
  dose: 'coverage',
  period: 'coverage',
  insurance: 'coverage',
  diagnosis: 'coverage',
};

/** The elements of a ServiceRequest that make up each part (R4 element names). */
const ELEMENTS_OF_PART: Readonly<Record<OrderPart, readonly (keyof ServiceRequest)[]>> = {
  drug: ['code'],
  dose: ['quantityQuantity', 'quantityRatio', 'quantityRange', 'orderDetail'],
  period: ['occurrencePeriod', 'occurrenceDateTime', 'occurrenceTiming'],
  site: ['locationReference', 'locationCode', 'performer'],
  insurance: ['insurance'],
  diagnosis: ['reasonCode', 'reasonReference'],
};

export type OrderChangeDecision =
  /** The same order again (a re-delivery): nothing to do, nothing to write back. */
  | { kind: 'unchanged' }
  /** Revoked or entered in error: the Task is cancelled, chairs released, Appointments cancelled. */
  | { kind: 'stop'; reason: CodeableConcept }
  /** On hold: the Task is put on hold, chairs released, Appointments cancelled. */
  | { kind: 'hold'; reason: CodeableConcept }
  /** Active again after a hold: carry on, from the earliest step a change in the same update affects, if any. */
  | { kind: 'resume'; from?: ResumeStep; changed: OrderPart[] }
  /** Still active, but parts changed: re-check from the earliest step they affect. */
  | { kind: 'recheck'; from: ResumeStep; changed: OrderPart[] }
  /** A change the referral does not follow (out of a terminal status, or to one the gateway does not act on), with why. */
  | { kind: 'ignore'; why: string };

const TERMINAL: ReadonlySet<ServiceRequest['status']> = new Set(['revoked', 'entered-in-error', 'completed']);

export function decideOrderChange(previous: ServiceRequest, current: ServiceRequest): OrderChangeDecision {
  const changed = changedParts(previous, current);
  if (previous.status === current.status && changed.length === 0) return { kind: 'unchanged' };
  if (TERMINAL.has(previous.status)) {
    return previous.status === current.status
      ? { kind: 'unchanged' }
      : { kind: 'ignore', why: `The order was ${previous.status}, which ends it; a new order starts a new referral` };
  }
  switch (current.status) {
    case 'revoked':
      return { kind: 'stop', reason: reason('order-revoked', 'The order was revoked in the EHR') };
    case 'entered-in-error':
      return { kind: 'stop', reason: reason('order-entered-in-error', 'The order was marked as entered in error in the EHR') };
    case 'on-hold':
      return previous.status === 'on-hold'
        ? { kind: 'unchanged' }
        : { kind: 'hold', reason: reason('order-on-hold', 'The order was put on hold in the EHR') };
    case 'active': {
      const from = earliestStep(changed);
      if (previous.status === 'on-hold') return { kind: 'resume', ...(from ? { from } : {}), changed };
      return from ? { kind: 'recheck', from, changed } : { kind: 'unchanged' };
    }
    default:
      return { kind: 'ignore', why: `The order's status ${current.status} is not one the referral follows` };
  }
}

/** The parts whose elements differ between the two versions (compared as JSON, key order aside). */
export function changedParts(previous: ServiceRequest, current: ServiceRequest): OrderPart[] {
  return (Object.keys(ELEMENTS_OF_PART) as OrderPart[]).filter((part) =>
    ELEMENTS_OF_PART[part].some((element) => canonicalJson(previous[element]) !== canonicalJson(current[element])),
  );
}

function earliestStep(changed: readonly OrderPart[]): ResumeStep | undefined {
  const steps = new Set(changed.map((part) => STEP_OF_PART[part]));
  return STEP_ORDER.find((step) => steps.has(step));
}

function reason(code: string, display: string): CodeableConcept {
  return { coding: [{ system: ORDER_CHANGE_REASON_SYSTEM, code, display }], text: display };
}

function canonicalJson(value: unknown): string {
  return (
    JSON.stringify(value, (_key, inner) =>
      inner && typeof inner === 'object' && !Array.isArray(inner)
        ? Object.fromEntries(Object.entries(inner).sort(([a], [b]) => a.localeCompare(b)))
        : inner,
    ) ?? 'undefined'
  );
}
