/**
 * A coverage verification a coordinator did by phone (seed 001: "the center confirms the
 * patient's insurance"; most payers still answer by phone): who called, when, the payer's
 * reference number for the call, the authorization number if one was given, and what the payer
 * said. Read from the Parameters of `Task/{id}/$record-verification`
 * (profiles/OperationDefinition-record-verification.json, src/http/operations/record-verification.ts),
 * every problem reported at once, and
 * turned into the same Authorization the electronic path produces, so both end the same way.
 */
import type { Annotation, OperationOutcomeIssue, Period, Reference } from 'fhir/r4.js';
import type { ReadParameters } from '../../fhir/operation-parameters.js';
import { errorIssue } from '../../fhir/outcomes.js';
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
 * The verification in the Parameters of a `$record-verification`, as the generic reader read them
 * by the operation's definition (src/fhir/operation-parameters.ts: names, types, cardinality,
 * what is required), or every problem with it, each at its FHIRPath: the reader's, then what the
 * values mean here. `now` refuses a call recorded in the future.
 */
export function readPhoneVerification(
  read: ReadParameters,
  now: Date,
): { verification?: PhoneVerification; issues: OperationOutcomeIssue[] } {
  const { values, at } = read;
  const issues: OperationOutcomeIssue[] = [...read.issues];
  const text = (name: string): string | undefined => (typeof values[name] === 'string' ? (values[name] as string) : undefined);

  const who = values['verified-by'];
  let verifiedBy: PhoneVerification['verifiedBy'] | undefined;
  if (typeof who === 'object' && !Array.isArray(who) && ((who as Reference).reference || (who as Reference).display))
    verifiedBy = { reference: who as Reference };
  else if (typeof who === 'string' && who.trim()) verifiedBy = { name: who.trim() };
  else if (who !== undefined)
    issues.push(
      errorIssue('value', 'verified-by must be a valueReference or a non-empty valueString', at['verified-by'] ?? 'Parameters.parameter'),
    );

  const when = text('verified-at');
  let verifiedAt: Date | undefined;
  if (when !== undefined) {
    const date = new Date(when);
    if (!DATE_TIME.test(when) || Number.isNaN(date.getTime())) {
      issues.push(
        errorIssue('value', 'verified-at must be a valueDateTime with a time and a time zone', `${at['verified-at']}.valueDateTime`),
      );
    } else if (date.getTime() > now.getTime() + 60_000) {
      issues.push(errorIssue('value', 'verified-at is in the future', `${at['verified-at']}.valueDateTime`));
    } else verifiedAt = date;
  }

  const payerReference = text('payer-reference')?.trim();
  if (text('payer-reference') !== undefined && !payerReference)
    issues.push(errorIssue('value', 'payer-reference must be a non-empty valueString', `${at['payer-reference']}.valueString`));

  const outcomeCode = text('outcome');
  let outcome: PhoneVerificationOutcome | undefined;
  if (outcomeCode !== undefined && !(PHONE_VERIFICATION_OUTCOMES as readonly string[]).includes(outcomeCode)) {
    issues.push(
      errorIssue(
        'code-invalid',
        `outcome must be one of ${PHONE_VERIFICATION_OUTCOMES.join(', ')} (got '${outcomeCode}')`,
        `${at['outcome']}.valueCode`,
      ),
    );
  } else if (outcomeCode !== undefined) outcome = outcomeCode as PhoneVerificationOutcome;

  const authorizationNumber = text('authorization-number')?.trim();
  if (text('authorization-number') !== undefined && !authorizationNumber) {
    issues.push(errorIssue('value', 'authorization-number must be a non-empty valueString', `${at['authorization-number']}.valueString`));
  }
  if (outcome === 'authorized' && text('authorization-number') === undefined) {
    issues.push(errorIssue('required', 'An authorized outcome needs the authorization-number the payer gave', 'Parameters.parameter'));
  }
  const authorizationPeriod = values['authorization-period'] as Period | undefined;
  if (authorizationPeriod !== undefined && !authorizationPeriod.start && !authorizationPeriod.end) {
    issues.push(
      errorIssue('value', 'authorization-period must be a valuePeriod with a start or an end', `${at['authorization-period']}.valuePeriod`),
    );
  }
  const note = text('note')?.trim();

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
        authorization: {
          kind: 'approved',
          authorizationNumber: verification.authorizationNumber ?? '',
          ...(verification.authorizationPeriod ? { period: verification.authorizationPeriod } : {}),
        },
        problems: [],
      };
    case 'auth-pending':
      return { authorization: { kind: 'pending', claimIdentifier: `phone:${verification.payerReference}` }, problems: [] };
    case 'denied':
      return { authorization: { kind: 'denied', claimIdentifier: `phone:${verification.payerReference}` }, problems: [] };
    case 'not-covered':
      return {
        problems: [
          {
            code: 'eligibility-not-in-force',
            display: `The payer said by phone that the coverage is not in force (reference ${verification.payerReference})`,
            expression: 'ServiceRequest.insurance[0]',
          },
        ],
      };
  }
}

/** The Task note that keeps who verified, when, how and the payer's reference: the provenance. */
export function phoneVerificationNote(verification: PhoneVerification): Annotation {
  const who =
    verification.verifiedBy.name ??
    verification.verifiedBy.reference?.display ??
    verification.verifiedBy.reference?.reference ??
    'coordinator';
  const authorization = verification.authorizationNumber ? `, authorization ${verification.authorizationNumber}` : '';
  return {
    ...(verification.verifiedBy.reference ? { authorReference: verification.verifiedBy.reference } : { authorString: who }),
    time: verification.verifiedAt.toISOString(),
    text: `Coverage verified by phone by ${who}: ${verification.outcome} (payer reference ${verification.payerReference}${authorization})${verification.note ? `. ${verification.note}` : ''}`,
  };
}
