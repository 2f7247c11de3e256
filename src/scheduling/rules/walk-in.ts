/**
 * No walk-ins (DOMAIN.md 7; seed 001: "a person who arrives without a booked, authorized
 * appointment is offered a new slot"). A walk-in is refused with the next real slots: the
 * Appointments `$find` would propose, each both readable and bookable.
 *
 * The slots travel in the refusal itself, in the most standard place FHIR R4 leaves for them:
 * `OperationOutcome.contained` holds each offered Appointment exactly as `$find` answers it
 * (status `proposed`, site, chair, start and end with the site's offset), and one `information`
 * issue per slot says it in words and points at its Appointment with the
 * `offered-appointment` extension (valueReference `#offer-N`), which also makes every contained
 * resource referenced from its container as dom-3 asks
 * (https://hl7.org/fhir/R4/domainresource.html#invs). A client books an offer by sending that
 * Appointment to `Appointment/$book` (a `proposed` Appointment's id is not a hold's id, so the
 * local `offer-N` id is ignored there).
 */
import type { Appointment, OperationOutcome, OperationOutcomeIssue } from 'fhir/r4.js';
import { informationIssue, unprocessable } from '../../fhir/outcomes.js';
import { GATEWAY_CANONICAL_BASE } from '../../referral/rules/referral-status.js';

export const OFFERED_APPOINTMENT_EXTENSION_URL = `${GATEWAY_CANONICAL_BASE}/StructureDefinition/offered-appointment`;

/** How many slots a walk-in is offered (the issue's "next three real slots"). */
export const WALK_IN_OFFERS = 3;

export interface SlotOffer {
  /** A proposed Appointment, as `$find` answers it. */
  appointment: Appointment;
  /** The slot in words, dates stated absolutely (DOMAIN.md 6). */
  diagnostics: string;
}

/**
 * A 422 refusal: the issues that say why, then one information issue per offered slot, each
 * pointing at its Appointment contained in the outcome.
 */
export function walkInRefusalOutcome(
  issues: readonly OperationOutcomeIssue[],
  offers: readonly SlotOffer[],
  expression: string,
): OperationOutcome {
  const outcome = unprocessable(issues);
  if (offers.length === 0) return outcome;
  const contained: Appointment[] = [];
  offers.forEach((offer, index) => {
    const id = `offer-${index + 1}`;
    const { id: _ignored, meta: _meta, ...appointment } = offer.appointment;
    contained.push({ ...appointment, id });
    const issue = informationIssue('informational', offer.diagnostics, expression);
    outcome.issue.push({ ...issue, extension: [{ url: OFFERED_APPOINTMENT_EXTENSION_URL, valueReference: { reference: `#${id}` } }] });
  });
  return { ...outcome, contained };
}

/**
 * Whether a start lies on the grid `$find` walks: every `stepMinutes` from the opening of the
 * site's open run that holds the appointment. A start off that grid was never proposed.
 */
export function startsOnFindGrid(input: { start: Date; openRunStart: Date; stepMinutes: number }): boolean {
  const offset = input.start.getTime() - input.openRunStart.getTime();
  return offset >= 0 && offset % (input.stepMinutes * 60_000) === 0;
}
