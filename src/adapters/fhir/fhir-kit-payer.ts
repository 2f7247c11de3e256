/**
 * PayerFhir over fhir-kit-client: the only module that talks to a payer's FHIR server.
 *
 * Eligibility goes as `POST [base]/CoverageEligibilityRequest/$submit` with the request itself as
 * the body. Base R4 defines that operation for exactly this exchange
 * (https://hl7.org/fhir/R4/operation-coverageeligibilityrequest-submit.html: "the only input
 * parameter is the single EligibilityRequest ... the only output is a single EligibilityResponse,
 * Bundle of EligibilityResponses or an OperationOutcome"), and Da Vinci PAS uses the same shape for
 * `Claim/$submit` (https://hl7.org/fhir/us/davinci-pas/OperationDefinition-Claim-submit.html).
 * A plain `POST [base]/CoverageEligibilityRequest` would be a create: a conformant server stores
 * the request and answers with it (or nothing), not with the adjudicated response.
 *
 * Answers are narrowed here: the response itself, a Bundle holding it, or Parameters carrying it
 * as `return` (https://hl7.org/fhir/R4/operations.html#response). Whatever fhir-kit-client throws
 * becomes a PayerCallError; diagnostics name the interaction and the payer's directory id, never
 * a URL nor any content. Every request carries a time-out so a hanging payer cannot hold a worker.
 */
import type { FhirResource, RequestOptions } from 'fhir-kit-client';
import type { Bundle, CoverageEligibilityRequest, CoverageEligibilityResponse, OperationOutcome, Resource } from 'fhir/r4.js';
import { errorIssue, operationOutcome, type IssueCode } from '../../fhir/outcomes.js';
import { PayerCallError, type PayerConnection, type PayerFhir } from '../../ports/payer-fhir.js';
import { withAccessToken } from '../../auth/smart-backend-client.js';
import { lazyFhirKitClient } from './fhir-kit-loader.js';
import { isOperationOutcome, toCallError } from './ehr-call-errors.js';

export const DEFAULT_PAYER_TIMEOUT_MS = 15_000;

const RESOURCE_TYPE = /^[A-Z][A-Za-z]{1,63}$/;

/** What was being done, for diagnostics: `eligibility $submit`, `prior authorization $inquire`. */
export interface PayerInteraction {
  payerOrganizationId: string;
  interaction: string;
}

export function createFhirKitPayer(connection: PayerConnection, options: { timeoutMs?: number } = {}): PayerFhir {
  const timeoutMs = options.timeoutMs ?? DEFAULT_PAYER_TIMEOUT_MS;
  if (!Number.isFinite(timeoutMs) || timeoutMs <= 0)
    throw new Error(`Payer request time-out must be a positive number of milliseconds, not ${timeoutMs}`);
  const baseUrl = new URL(connection.baseUrl.replace(/\/+$/, '')).href.replace(/\/+$/, '');
  const fhirKitClient = lazyFhirKitClient({ baseUrl, ...(connection.bearerToken ? { bearerToken: connection.bearerToken } : {}) });
  const payerOrganizationId = connection.payerOrganizationId;

  /** One operation through fhir-kit-client, with a time-out, its failures turned into PayerCallError. */
  async function operation(
    what: PayerInteraction,
    resourceType: string,
    name: '$submit' | '$inquire',
    body: Resource,
  ): Promise<FhirResource> {
    try {
      const client = await fhirKitClient();
      return await withAccessToken(connection.accessToken, async (auth) => {
        const requestOptions: RequestOptions = { signal: AbortSignal.timeout(timeoutMs), headers: auth };
        return client.operation({ name, resourceType, method: 'POST', input: body as unknown as FhirResource, options: requestOptions });
      });
    } catch (err) {
      throw toPayerCallError(err, what, timeoutMs);
    }
  }

  async function checkEligibility(request: CoverageEligibilityRequest): Promise<CoverageEligibilityResponse> {
    const what = { payerOrganizationId, interaction: 'eligibility $submit' };
    const answer = await operation(what, 'CoverageEligibilityRequest', '$submit', request);
    return unwrap<CoverageEligibilityResponse>(answer, 'CoverageEligibilityResponse', what);
  }

  async function submitPriorAuthorization(bundle: Bundle): Promise<Bundle> {
    const what = { payerOrganizationId, interaction: 'prior authorization $submit' };
    return unwrap<Bundle>(await operation(what, 'Claim', '$submit', bundle), 'Bundle', what);
  }

  async function inquirePriorAuthorization(bundle: Bundle): Promise<Bundle> {
    const what = { payerOrganizationId, interaction: 'prior authorization $inquire' };
    return unwrap<Bundle>(await operation(what, 'Claim', '$inquire', bundle), 'Bundle', what);
  }

  return { checkEligibility, submitPriorAuthorization, inquirePriorAuthorization };
}

export function describePayerInteraction(what: PayerInteraction): string {
  return `${what.interaction} (payer ${JSON.stringify(what.payerOrganizationId)})`;
}

/**
 * The resource the payer answered with, checked and copied without fhir-kit-client's hidden
 * request/response. An OperationOutcome in a 2xx answer is the payer refusing the request
 * (the operations above allow it as their output): permanent, with the payer's own issues.
 */
function unwrap<T extends Resource>(answer: FhirResource, resourceType: T['resourceType'], what: PayerInteraction): T {
  const doing = describePayerInteraction(what);
  const found = findAnswer(answer as unknown as Record<string, unknown>, resourceType);
  if (found) return { ...found } as unknown as T;
  if (isOperationOutcome(answer)) {
    throw new PayerCallError({ ...(answer as unknown as OperationOutcome) }, { retryable: false, httpStatus: 200 });
  }
  const got =
    typeof answer.resourceType === 'string' && RESOURCE_TYPE.test(answer.resourceType)
      ? `a ${answer.resourceType}`
      : 'something that is not a FHIR resource';
  throw permanentPayerError('exception', `The payer answered ${doing} with ${got} instead of a ${resourceType}`);
}

function findAnswer(answer: Record<string, unknown>, resourceType: string): Record<string, unknown> | undefined {
  if (answer['resourceType'] === resourceType) return answer;
  // A Bundle of responses (eligibility only: for PAS the Bundle is itself the answer).
  if (answer['resourceType'] === 'Bundle' && Array.isArray(answer['entry'])) {
    for (const entry of answer['entry'] as Array<{ resource?: Record<string, unknown> }>) {
      if (entry?.resource?.['resourceType'] === resourceType) return entry.resource;
    }
  }
  // Parameters with the output named `return`.
  if (answer['resourceType'] === 'Parameters' && Array.isArray(answer['parameter'])) {
    for (const parameter of answer['parameter'] as Array<{ name?: string; resource?: Record<string, unknown> }>) {
      if (parameter?.name === 'return' && parameter.resource) return findAnswer(parameter.resource, resourceType);
    }
  }
  return undefined;
}

/** Turns anything a fhir-kit-client call threw into a PayerCallError (ehr-call-errors.ts knows the shapes). */
export function toPayerCallError(err: unknown, what: PayerInteraction, timeoutMs: number): PayerCallError {
  return toCallError(err, PayerCallError, { party: 'payer', idPrefix: 'payer', doing: describePayerInteraction(what), timeoutMs });
}

function permanentPayerError(code: IssueCode, diagnostics: string): PayerCallError {
  return new PayerCallError(operationOutcome(`payer-${code}`, [errorIssue(code, diagnostics)]), { retryable: false });
}
