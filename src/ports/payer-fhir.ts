/**
 * A payer's FHIR endpoints, as the gateway needs them: eligibility and benefits, and Da Vinci
 * Prior Authorization Support (https://hl7.org/fhir/us/davinci-pas/). The adapter
 * (src/adapters/fhir/fhir-kit-payer.ts) speaks through fhir-kit-client; tests run it against the
 * stand-in payer in test/support.
 *
 * Every failure is a PayerCallError: an OperationOutcome (the payer's, or one describing the
 * network failure) plus whether trying again can help, with the same rule as the EHR port
 * (ports/fhir-call-error.ts, their shared base): permanent for 4xx other than 408 and 429;
 * retryable for network errors, timeouts, 408, 429 and 5xx.
 */
import type { AccessTokenSource } from '../auth/smart-backend-client.js';
import type { Bundle, CoverageEligibilityRequest, CoverageEligibilityResponse } from 'fhir/r4.js';
import { FhirCallError } from './fhir-call-error.js';

/** A failed call to the payer (see FhirCallError for when it is retryable). */
export class PayerCallError extends FhirCallError {
  override readonly name = 'PayerCallError';
}

export interface PayerFhir {
  /**
   * Eligibility, benefits and authorization requirements for one coverage and service:
   * `POST [base]/CoverageEligibilityRequest/$submit` with the request as the body
   * (https://hl7.org/fhir/R4/operation-coverageeligibilityrequest-submit.html). The payer's
   * answer may be the response itself, a Bundle holding it, or Parameters with `return`.
   */
  checkEligibility(request: CoverageEligibilityRequest): Promise<CoverageEligibilityResponse>;
  /** Da Vinci PAS `POST [base]/Claim/$submit`: a request Bundle in, a response Bundle out. */
  submitPriorAuthorization(bundle: Bundle): Promise<Bundle>;
  /** Da Vinci PAS `POST [base]/Claim/$inquire`: the status of an earlier submission. */
  inquirePriorAuthorization(bundle: Bundle): Promise<Bundle>;
}

/** How the gateway reaches one payer. */
export interface PayerConnection {
  /** The payer's Organization id in the gateway's directory: names the payer in diagnostics. */
  payerOrganizationId: string;
  baseUrl: string;
  /** A bearer token, when the payer needs one. */
  bearerToken?: string;
  /** SMART Backend Services: tokens obtained (and renewed on a 401) from the payer's token endpoint. */
  accessToken?: AccessTokenSource;
}
