/**
 * A coverage verification a coordinator did by phone (seed 001: "the center confirms the
 * patient's insurance"; most payers still answer by phone): who called, when, the payer's
 * reference number for the call, the authorization number if one was given, and what the payer
 * said. Read from the Parameters of `Task/{id}/$record-verification`
 * (profiles/OperationDefinition-record-verification.json), every problem reported at once, and
 * turned into the same Authorization the electronic path produces, so both end the same way.
 */
import type { Annotation, OperationOutcomeIssue, Parameters, ParametersParameter, Period, Reference } from 'fhir/r4.js';
import { errorIssue } from '../fhir/outcomes.js';
import type { Authorization, CoverageFinding } from './coverage-outcome.js';

/** What the payer said on the phone. */
export const PHONE_VERIFICATION_OUTCOMES = ['covered', 'authorized', 'auth-pending', 'denied', 'not-covered'] as const;
export type PhoneVerificationOutcome = (typeof PHONE_VERIFICATION_OUTCOMES)[number];

export interface PhoneVerification {
  /** The coordinator who called: a reference to a Practitioner(Role), or a name. */
  verifiedBy: { reference?: Reference; name?: string };
  verifiedAt: Date;
  /** The payer's reference number for the call. */
  payerReference: string;
  outcome: PhoneVerificationOutcome;
  authorizationNumber?: string;
  authorizationPeriod?: Period;
  note?: string;
}

const DATE_TIME = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(:\d{2}(\.\d{1,9})?)?(Z|[+-]\d{2}:\d{2})$/;

/**
 * The verification in a `$record-verification` Parameters body, or every problem with it, each
 * at its FHIRPath. `now` refuses a call recorded in the future.
 */
export function readPhoneVerification(body: unknown, now: Date): { verification?: PhoneVerification; issues: OperationOutcomeIssue[] } {
  const parameters = body as Partial<Parameters> | null;
  if (typeof parameters !== 'object' || parameters === null || parameters.resourceType !== 'Parameters') {
    return { issues: [errorIssue('invalid', 'The body of $record-verification must be a Parameters resource', 'resourceType')] };
  }
  const list: ParametersParameter[] = parameters.parameter ?? [];
  const issues: OperationOutcomeIssue[] = [];
  const find = (name: string): { index: number; parameter?: ParametersParameter } => {
    const index = list.findIndex((p) => p.name === name);
    return index >= 0 ? { index, parameter: list[index]! } : { index };
  };
  const required = (name: string, what: string): void => {
    issues.push(errorIssue('required', `Parameter ${name} (${what}) is required`, 'Parameters.parameter'));
  };

  const who = find('verified-by');
  let verifiedBy: PhoneVerification['verifiedBy'] | undefined;
  if (!who.parameter) required('verified-by', 'the coordinator who called: valueReference or valueString');
  else if (who.parameter.valueReference?.reference || who.parameter.valueReference?.display) verifiedBy = { reference: who.parameter.valueReference };
  else if (who.parameter.valueString?.trim()) verifiedBy = { name: who.parameter.valueString.trim() };
  else issues.push(errorIssue('value', 'verified-by must be a valueReference or a non-empty valueString', `Parameters.parameter[${who.index}]`));

  const when = find('verified-at');
  let verifiedAt: Date | undefined;
  if (!when.parameter) required('verified-at', 'when the call took place: valueDateTime with a time zone');
  else {
    const text = when.parameter.valueDateTime ?? '';
    const date = new Date(text);
    if (!DATE_TIME.test(text) || Number.isNaN(date.getTime())) {
      issues.push(errorIssue('value', 'verified-at must be a valueDateTime with a time and a time zone', `Parameters.parameter[${when.index}].valueDateTime`));
    } else if (date.getTime() > now.getTime() + 60_000) {
      issues.push(errorIssue('value', 'verified-at is in the future', `Parameters.parameter[${when.index}].valueDateTime`));
    } else verifiedAt = date;
  }

  const reference = find('payer-reference');
  const payerReference = reference.parameter?.valueString?.trim();
  if (!reference.parameter) required('payer-reference', "the payer's reference number for the call: valueString");
  else if (!payerReference) issues.push(errorIssue('value', 'payer-reference must be a non-empty valueString', `Parameters.parameter[${reference.index}].valueString`));

  const said = find('outcome');
  const outcomeCode = said.parameter?.valueCode;
  let outcome: PhoneVerificationOutcome | undefined;
  if (!said.parameter) required('outcome', `what the payer said: valueCode, one of ${PHONE_VERIFICATION_OUTCOMES.join(', ')}`);
  else if (!(PHONE_VERIFICATION_OUTCOMES as readonly string[]).includes(outcomeCode ?? '')) {
    issues.push(errorIssue('code-invalid', `outcome must be one of ${PHONE_VERIFICATION_OUTCOMES.join(', ')} (got '${outcomeCode ?? ''}')`, `Parameters.parameter[${said.index}].valueCode`));
  } else outcome = outcomeCode as PhoneVerificationOutcome;

  const number = find('authorization-number');
  const authorizationNumber = number.parameter?.valueString?.trim();
  if (number.parameter && !authorizationNumber) issues.push(errorIssue('value', 'authorization-number must be a non-empty valueString', `Parameters.parameter[${number.index}].valueString`));
  if (outcome === 'authorized' && !number.parameter) {
    issues.push(errorIssue('required', 'An authorized outcome needs the authorization-number the payer gave', 'Parameters.parameter'));
  }
  const period = find('authorization-period');
  const authorizationPeriod = period.parameter?.valuePeriod;
  if (period.parameter && !authorizationPeriod?.start && !authorizationPeriod?.end) {
    issues.push(errorIssue('value', 'authorization-period must be a valuePeriod with a start or an end', `Parameters.parameter[${period.index}].valuePeriod`));
  }
  const note = find('note').parameter?.valueString?.trim();

  if (issues.length > 0 || !verifiedBy || !verifiedAt || !payerReference || !outcome) return { issues };
  return {
    verification: {
      verifiedBy,
      verifiedAt,
      payerReference,
      outcome,
      ...(authorizationNumber ? { authorizationNumber } : {}),
      ...(authorizationPeriod ? { authorizationPeriod } : {}),
      ...(note ? { note } : {}),
    },
    issues: [],
  };
}

/**
 * The authorization and findings the phone call stands for, in the terms of the electronic path
 * (coverage-outcome.ts): covered -> not required, authorized -> approved, auth-pending -> pending
 * (the coordinator calls again and records the answer), denied -> denied (an appeal Task opens),
 * not-covered -> a blocking `eligibility-not-in-force` problem.
 */
export function phoneVerificationResult(verification: PhoneVerification): { authorization?: Authorization; problems: CoverageFinding[] } {
  switch (verification.outcome) {
    case 'covered':
      return { authorization: { kind: 'not-required' }, problems: [] };
    case 'authorized':
      return {
        authorization: { kind: 'approved', authorizationNumber: verification.authorizationNumber ?? '', ...(verification.authorizationPeriod ? { period: verification.authorizationPeriod } : {}) },
        problems: [],
      };
    case 'auth-pending':
      return { authorization: { kind: 'pending', claimIdentifier: `phone:${verification.payerReference}` }, problems: [] };
    case 'denied':
      return { authorization: { kind: 'denied', claimIdentifier: `phone:${verification.payerReference}` }, problems: [] };
    case 'not-covered':
      return {
        problems: [{ code: 'eligibility-not-in-force', display: `The payer said by phone that the coverage is not in force (reference ${verification.payerReference})`, expression: 'ServiceRequest.insurance[0]' }],
      };
  }
}

/** The Task note that keeps who verified, when, how and the payer's reference: the provenance. */
export function phoneVerificationNote(verification: PhoneVerification): Annotation {
  const who = verification.verifiedBy.name ?? verification.verifiedBy.reference?.display ?? verification.verifiedBy.reference?.reference ?? 'coordinator';
  const authorization = verification.authorizationNumber ? `, authorization ${verification.authorizationNumber}` : '';
  return {
    ...(verification.verifiedBy.reference ? { authorReference: verification.verifiedBy.reference } : { authorString: who }),
    time: verification.verifiedAt.toISOString(),
    text: `Coverage verified by phone by ${who}: ${verification.outcome} (payer reference ${verification.payerReference}${authorization})${verification.note ? `. ${verification.note}` : ''}`,
  };
}
