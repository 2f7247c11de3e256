/**
 * Prior authorization in the shape of Da Vinci PAS (https://hl7.org/fhir/us/davinci-pas/), pure:
 * the request Bundle for `Claim/$submit`, the inquiry Bundle for `Claim/$inquire`, and what the
 * payer's response Bundle decides.
 *
 * Field notes 001 and 003: high-cost infusions need the payer's authorization before the service;
 * without it the claim is denied and the patient owes the full cost.
 *
 * The request Bundle is a `collection` with the Claim first and the resources it references after
 * it (PAS Request Bundle, https://hl7.org/fhir/us/davinci-pas/StructureDefinition-profile-pas-request-bundle.html).
 * The decision is read per item from the reviewAction extension on `item.adjudication`, whose code
 * is X12 306 (https://hl7.org/fhir/us/davinci-pas/StructureDefinition-extension-reviewAction.html):
 * A1 certified in total, A2 certified in part, A3 not certified, A4 pended, A6 modified,
 * CT contact payer, NA no action required. `ClaimResponse.outcome`, `preAuthRef` and
 * `preAuthPeriod` fill in where a payer does not send the extension.
 */
import type {
  Bundle,
  BundleEntry,
  ClaimResponse,
  Coding,
  Coverage,
  Extension,
  OperationOutcomeIssue,
  Patient,
  Period,
  Quantity,
  Reference,
  Claim,
} from 'fhir/r4.js';
import { errorIssue } from '../../fhir/outcomes.js';
import { GATEWAY_CANONICAL_BASE } from '../../referral/rules/referral-status.js';

export const PRIOR_AUTHORIZATION_CLAIM_SYSTEM = `${GATEWAY_CANONICAL_BASE}/prior-authorization-id`;
export const PRIOR_AUTHORIZATION_BUNDLE_SYSTEM = `${GATEWAY_CANONICAL_BASE}/prior-authorization-bundle-id`;
/** Absolute fullUrls for the collection's entries, against which the Claim's relative references resolve. */
export const DEFAULT_FULL_URL_BASE = `${GATEWAY_CANONICAL_BASE}/fhir`;

const PAS = 'http://hl7.org/fhir/us/davinci-pas';
export const PAS_CLAIM_PROFILE = `${PAS}/StructureDefinition/profile-claim`;
export const PAS_CLAIM_INQUIRY_PROFILE = `${PAS}/StructureDefinition/profile-claim-inquiry`;
export const PAS_REQUEST_BUNDLE_PROFILE = `${PAS}/StructureDefinition/profile-pas-request-bundle`;
export const PAS_INQUIRY_REQUEST_BUNDLE_PROFILE = `${PAS}/StructureDefinition/profile-pas-inquiry-request-bundle`;
export const PAS_SUPPORTING_INFO_SYSTEM = `${PAS}/CodeSystem/PASSupportingInfoType`;
export const REVIEW_ACTION_URL = `${PAS}/StructureDefinition/extension-reviewAction`;
export const REVIEW_ACTION_CODE_URL = `${PAS}/StructureDefinition/extension-reviewActionCode`;
export const ITEM_PRE_AUTH_PERIOD_URL = `${PAS}/StructureDefinition/extension-itemPreAuthPeriod`;
/** X12 306, Action Code (HCR01). */
export const X12_REVIEW_ACTION_SYSTEM = 'https://codesystem.x12.org/005010/306';
/** X12 Health Care Services Review Decision Reason Code (HCR03). */
export const X12_REVIEW_DECISION_REASON_SYSTEM = 'https://codesystem.x12.org/external/886';
const CLAIM_TYPE_SYSTEM = 'http://terminology.hl7.org/CodeSystem/claim-type';
const PROCESS_PRIORITY_SYSTEM = 'http://terminology.hl7.org/CodeSystem/processpriority';

export interface PriorAuthorizationInput {
  /** Our id for this request Bundle, sent as its identifier (PAS: the submitter's transaction id). */
  bundleId: string;
  /** Our id for the Claim, also its business identifier: `$inquire` and the payer's answers name it. */
  claimId: string;
  now: Date;
  patient: Patient;
  coverage: Coverage;
  /** The payer's Organization. */
  insurer: Reference;
  /** Who requests the authorization: the infusion center's Organization, or a Practitioner. */
  provider: Reference;
  /** The site Location where the infusion would take place. */
  site: Reference;
  /** The drug as HCPCS (and any other codings the order used). */
  drugCodings: readonly Coding[];
  /** ICD-10-CM diagnoses, the primary first. */
  diagnoses: readonly Coding[];
  servicedPeriod: Period;
  /** How much is requested: number of infusions, or drug units. */
  quantity: Quantity;
  /** Documentation sent along (letter of medical necessity, prior-treatment records...). */
  supportingInfo?: readonly Reference[];
  /** 837P professional by default; `institutional` for a hospital outpatient department. */
  claimType?: 'professional' | 'institutional';
  /** Where fullUrls point: by default the gateway's canonical FHIR base. */
  fullUrlBase?: string;
}

/** The PAS request Bundle for `Claim/$submit`: the Claim, then the Patient and Coverage it references. */
export function buildPriorAuthorizationBundle(input: PriorAuthorizationInput): Bundle {
  const supportingInfo = input.supportingInfo ?? [];
  return pasBundle(input, {
    claimResourceId: input.claimId,
    claimProfile: PAS_CLAIM_PROFILE,
    bundleProfile: PAS_REQUEST_BUNDLE_PROFILE,
    claimType: input.claimType ?? 'professional',
    details: {
      facility: input.site,
      ...(supportingInfo.length > 0
        ? {
            supportingInfo: supportingInfo.map((valueReference, index) => ({
              sequence: index + 1,
              category: { coding: [{ system: PAS_SUPPORTING_INFO_SYSTEM, code: 'additionalInformation' }] },
              valueReference: { ...valueReference },
            })),
          }
        : {}),
      ...(input.diagnoses.length > 0
        ? {
            diagnosis: input.diagnoses.map((coding, index) => ({
              sequence: index + 1,
              diagnosisCodeableConcept: { coding: [{ ...coding }] },
            })),
          }
        : {}),
      item: [
        {
          sequence: 1,
          ...(input.diagnoses.length > 0 ? { diagnosisSequence: input.diagnoses.map((_, index) => index + 1) } : {}),
          ...(supportingInfo.length > 0 ? { informationSequence: supportingInfo.map((_, index) => index + 1) } : {}),
          productOrService: { coding: input.drugCodings.map((coding) => ({ ...coding })) },
          servicedPeriod: { ...input.servicedPeriod },
          quantity: { ...input.quantity },
        },
      ],
    },
  });
}

/**
 * What an inquiry names: the parties of the submission it asks about (`claimId` is the Claim
 * submitted earlier: the inquiry carries the same business identifier), the drug and period if known.
 */
export interface InquiryInput
  extends
    Pick<PriorAuthorizationInput, 'bundleId' | 'claimId' | 'now' | 'patient' | 'coverage' | 'insurer' | 'provider' | 'fullUrlBase'>,
    Partial<Pick<PriorAuthorizationInput, 'drugCodings' | 'servicedPeriod'>> {}

/**
 * The PAS inquiry Bundle for `Claim/$inquire`: a Claim that names the earlier submission by its
 * identifier, with the patient, coverage, insurer and provider the payer matches on
 * (https://hl7.org/fhir/us/davinci-pas/OperationDefinition-Claim-inquiry.html).
 */
export function buildInquiryBundle(input: InquiryInput): Bundle {
  const item =
    input.drugCodings || input.servicedPeriod
      ? [
          {
            sequence: 1,
            productOrService: { coding: (input.drugCodings ?? []).map((coding) => ({ ...coding })) },
            ...(input.servicedPeriod ? { servicedPeriod: { ...input.servicedPeriod } } : {}),
          },
        ]
      : undefined;
  return pasBundle(input, {
    claimResourceId: `${input.claimId}-inquiry`,
    claimProfile: PAS_CLAIM_INQUIRY_PROFILE,
    bundleProfile: PAS_INQUIRY_REQUEST_BUNDLE_PROFILE,
    claimType: 'professional',
    details: item ? { item } : {},
  });
}

/** What a request and an inquiry share: the Claim's header, and a collection of Claim, Patient and Coverage. */
function pasBundle(
  input: Pick<PriorAuthorizationInput, 'bundleId' | 'claimId' | 'now' | 'patient' | 'coverage' | 'insurer' | 'provider' | 'fullUrlBase'>,
  shape: {
    claimResourceId: string;
    claimProfile: string;
    bundleProfile: string;
    claimType: 'professional' | 'institutional';
    details: Partial<Claim>;
  },
): Bundle {
  const base = (input.fullUrlBase ?? DEFAULT_FULL_URL_BASE).replace(/\/+$/, '');
  const patient = withId(input.patient, `${input.claimId}-patient`);
  const coverage = withId(input.coverage, `${input.claimId}-coverage`);
  const claim: Claim = {
    resourceType: 'Claim',
    id: shape.claimResourceId,
    meta: { profile: [shape.claimProfile] },
    identifier: [{ system: PRIOR_AUTHORIZATION_CLAIM_SYSTEM, value: input.claimId }],
    status: 'active',
    type: { coding: [{ system: CLAIM_TYPE_SYSTEM, code: shape.claimType }] },
    use: 'preauthorization',
    patient: { reference: `Patient/${patient.id}` },
    created: input.now.toISOString(),
    insurer: input.insurer,
    provider: input.provider,
    priority: { coding: [{ system: PROCESS_PRIORITY_SYSTEM, code: 'normal' }] },
    insurance: [{ sequence: 1, focal: true, coverage: { reference: `Coverage/${coverage.id}` } }],
    ...shape.details,
  };
  return {
    resourceType: 'Bundle',
    meta: { profile: [shape.bundleProfile] },
    identifier: { system: PRIOR_AUTHORIZATION_BUNDLE_SYSTEM, value: input.bundleId },
    type: 'collection',
    timestamp: input.now.toISOString(),
    entry: [
      { fullUrl: `${base}/Claim/${claim.id}`, resource: claim },
      { fullUrl: `${base}/Patient/${patient.id}`, resource: patient },
      { fullUrl: `${base}/Coverage/${coverage.id}`, resource: coverage },
    ],
  };
}

/** A copy with an id (the one it has, else the fallback) and without server version fields. */
function withId<T extends Patient | Coverage>(resource: T, fallbackId: string): T & { id: string } {
  const copy = structuredClone(resource) as T & { id: string };
  copy.id = resource.id ?? fallbackId;
  if (copy.meta) {
    delete copy.meta.versionId;
    delete copy.meta.lastUpdated;
    if (Object.keys(copy.meta).length === 0) delete copy.meta;
  }
  return copy;
}

export interface DenialReason {
  code?: Coding;
  display: string;
}

export type PriorAuthorizationDecision =
  | { kind: 'approved'; authorizationNumber: string; period?: Period; partial: boolean }
  | { kind: 'denied'; reasons: DenialReason[] }
  | { kind: 'pended' }
  /** X12 306 `NA`: the payer says no authorization is needed for this service. */
  | { kind: 'not-required' }
  | { kind: 'error'; issues: OperationOutcomeIssue[] };

type ReviewCode = 'A1' | 'A2' | 'A3' | 'A4' | 'A6' | 'CT' | 'NA';
const REVIEW_CODES: readonly string[] = ['A1', 'A2', 'A3', 'A4', 'A6', 'CT', 'NA'];

interface ItemReview {
  code: ReviewCode;
  number?: string;
  reasons: DenialReason[];
  period?: Period;
}

/**
 * What the payer decided, from a PAS response Bundle (or an inquiry response Bundle). One denied
 * item denies the request; otherwise one pended item keeps it pending; approval needs an
 * authorization number (the reviewAction's `number`, else `ClaimResponse.preAuthRef`).
 */
export function interpretClaimResponseBundle(bundle: Bundle): PriorAuthorizationDecision {
  const entries: BundleEntry[] = Array.isArray(bundle?.entry) ? bundle.entry : [];
  const index = entries.findIndex((entry) => entry?.resource?.resourceType === 'ClaimResponse');
  if (index < 0) {
    return { kind: 'error', issues: [errorIssue('not-found', 'The payer answered without a ClaimResponse', 'Bundle.entry')] };
  }
  const response = entries[index]!.resource as ClaimResponse;
  const at = `Bundle.entry[${index}].resource`;

  const reviews = (Array.isArray(response.item) ? response.item : []).flatMap((item) => {
    const fromAdjudication = (Array.isArray(item?.adjudication) ? item.adjudication : []).flatMap((adjudication) =>
      reviewActionsIn(adjudication?.extension),
    );
    // PAS 1.x put the reviewAction on the item itself.
    const reviews = fromAdjudication.length > 0 ? fromAdjudication : reviewActionsIn(item?.extension);
    const period = (item?.extension ?? []).find((extension) => extension.url === ITEM_PRE_AUTH_PERIOD_URL)?.valuePeriod;
    return reviews.map((review) => (period && !review.period ? { ...review, period: { ...period } } : review));
  });

  const payerErrors = Array.isArray(response.error) ? response.error : [];
  // A review action code is the payer's decision on the request (PAS: the reviewAction on
  // item.adjudication, https://hl7.org/fhir/us/davinci-pas/StructureDefinition-extension-reviewAction.html);
  // `error` reports problems found in the request. Where the payer decided (A1, A2, A3, A4, A6,
  // CT, NA), its decision is acted on and the errors only explain it; `error` or outcome `error`
  // without any review action is a request the payer could not process.
  if (reviews.length === 0 && (response.outcome === 'error' || payerErrors.length > 0)) {
    const issues = payerErrors.map((error, errorIndex) => {
      const coding = error?.code?.coding?.[0];
      const issue = errorIssue(
        'processing',
        `The payer rejected the request: ${coding?.display ?? error?.code?.text ?? coding?.code ?? 'unspecified'}`,
        `${at}.error[${errorIndex}].code`,
      );
      if (error?.code) issue.details = structuredClone(error.code);
      return issue;
    });
    if (issues.length === 0) {
      issues.push(
        errorIssue(
          'processing',
          `The payer could not process the request${response.disposition ? `: ${response.disposition}` : ''}`,
          `${at}.outcome`,
        ),
      );
    }
    return { kind: 'error', issues };
  }

  const denied = reviews.filter((review) => review.code === 'A3');
  if (denied.length > 0) {
    const reasons = denied.flatMap((review) => review.reasons);
    // The errors the payer found in the request are its reasons when the review gives none.
    if (reasons.length === 0) reasons.push(...payerErrors.flatMap((error) => denialReasonOfError(error)));
    if (reasons.length === 0) reasons.push({ display: response.disposition ?? 'The payer did not certify the request and gave no reason' });
    return { kind: 'denied', reasons };
  }
  if (reviews.some((review) => review.code === 'A4' || review.code === 'CT')) return { kind: 'pended' };

  const approved = reviews.filter((review) => review.code === 'A1' || review.code === 'A2' || review.code === 'A6');
  if (approved.length > 0 || (reviews.length === 0 && response.outcome === 'complete' && response.preAuthRef)) {
    const authorizationNumber = approved.find((review) => review.number)?.number ?? response.preAuthRef;
    if (!authorizationNumber) {
      return {
        kind: 'error',
        issues: [errorIssue('required', 'The payer certified the request without an authorization number', `${at}.preAuthRef`)],
      };
    }
    const period = response.preAuthPeriod ?? approved.find((review) => review.period)?.period;
    return {
      kind: 'approved',
      authorizationNumber,
      ...(period ? { period: { ...period } } : {}),
      partial: approved.some((review) => review.code !== 'A1'),
    };
  }
  if (reviews.length > 0 && reviews.every((review) => review.code === 'NA')) return { kind: 'not-required' };
  if (response.outcome === 'queued' || response.outcome === 'partial') return { kind: 'pended' };
  return {
    kind: 'error',
    issues: [
      errorIssue(
        'incomplete',
        'The payer answered with no review action and no authorization, so its decision cannot be told',
        `${at}.item`,
      ),
    ],
  };
}

function denialReasonOfError(error: { code?: { coding?: Coding[]; text?: string } } | undefined): DenialReason[] {
  const coding = error?.code?.coding?.[0];
  const display = coding?.display ?? error?.code?.text ?? coding?.code;
  if (display === undefined) return [];
  return [{ display, ...(coding ? { code: { ...coding } } : {}) }];
}

function reviewActionsIn(extensions: Extension[] | undefined): ItemReview[] {
  return (Array.isArray(extensions) ? extensions : [])
    .filter((extension) => extension?.url === REVIEW_ACTION_URL)
    .flatMap((extension) => {
      const parts = Array.isArray(extension.extension) ? extension.extension : [];
      // The sub-extension is sliced as `code` with the reviewActionCode extension's URL; some
      // payers send the slice name as the URL.
      const codeCoding = parts
        .filter((part) => part.url === REVIEW_ACTION_CODE_URL || part.url === 'code')
        .flatMap((part) => part.valueCodeableConcept?.coding ?? [])
        .find(
          (coding) =>
            (coding.system === undefined || coding.system === X12_REVIEW_ACTION_SYSTEM || coding.system.includes('/306')) &&
            REVIEW_CODES.includes(coding.code ?? ''),
        );
      if (!codeCoding) return [];
      const number = parts.find((part) => part.url === 'number')?.valueString;
      const reasons = parts
        .filter((part) => part.url === 'reasonCode' && part.valueCodeableConcept)
        .map((part) => {
          const concept = part.valueCodeableConcept!;
          const coding = concept.coding?.[0];
          const reason: DenialReason = { display: coding?.display ?? concept.text ?? coding?.code ?? 'unspecified' };
          if (coding) reason.code = { ...coding };
          return reason;
        });
      const review: ItemReview = { code: codeCoding.code as ReviewCode, reasons };
      if (number) review.number = number;
      return [review];
    });
}
