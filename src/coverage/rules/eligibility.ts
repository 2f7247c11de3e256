/**
 * Eligibility and benefits, pure: the CoverageEligibilityRequest the gateway sends a payer, what
 * its CoverageEligibilityResponse says, and what the patient is likely to owe per infusion.
 *
 * https://hl7.org/fhir/R4/coverageeligibilityrequest.html and
 * https://hl7.org/fhir/R4/coverageeligibilityresponse.html. Field notes 002 and 003: plans differ in
 * cost sharing (copay, coinsurance, deductible, out-of-pocket maximum) and patients want to know
 * what they will owe before the visit.
 */
import type {
  Coding,
  Coverage,
  CoverageEligibilityRequest,
  CoverageEligibilityResponse,
  CoverageEligibilityResponseInsuranceItem,
  CoverageEligibilityResponseInsuranceItemBenefit,
  Money,
  OperationOutcomeIssue,
  Period,
  Reference,
} from 'fhir/r4.js';
import { errorIssue } from '../../fhir/outcomes.js';
import { GATEWAY_CANONICAL_BASE } from '../../referral/rules/referral-status.js';

export const ELIGIBILITY_REQUEST_IDENTIFIER_SYSTEM = `${GATEWAY_CANONICAL_BASE}/eligibility-request-id`;
/** https://terminology.hl7.org/CodeSystem-benefit-type.html (example binding on benefit.type). */
export const BENEFIT_TYPE_SYSTEM = 'http://terminology.hl7.org/CodeSystem/benefit-type';
/**
 * X12 Eligibility or Benefit Information Code (EB01, element 1390), as Da Vinci PAS names X12
 * code systems. benefit-type has no code for the out-of-pocket maximum; EB01 `G` (Out of Pocket,
 * Stop Loss) is what a 271 answer carries, so payers that map 271s to FHIR use it.
 */
export const X12_BENEFIT_INFORMATION_SYSTEM = 'https://codesystem.x12.org/005010/1390';
export const BENEFIT_NETWORK_SYSTEM = 'http://terminology.hl7.org/CodeSystem/benefit-network';
/** Where a contained Coverage sits in the request (https://hl7.org/fhir/R4/references.html#contained). */
const CONTAINED_COVERAGE_ID = 'coverage';

export interface EligibilityRequestInput {
  /** Our id for the request, also sent as its business identifier (the payer echoes it). */
  id: string;
  /**
   * The Coverage: a reference the payer can resolve (e.g. a logical reference by member id), or
   * the resource itself, which is then contained so the payer reads the member id from it.
   */
  coverage: Reference | Coverage;
  patient: Reference;
  insurer: Reference;
  /** The requesting provider (Organization, Practitioner or PractitionerRole). */
  provider?: Reference;
  /** The site Location where the infusion would take place. */
  facility: Reference;
  /** The drug as HCPCS (and any other codings the order used). */
  drugCodings: readonly Coding[];
  /** ICD-10-CM diagnoses. */
  diagnoses: readonly Coding[];
  servicedPeriod?: Period;
  now: Date;
}

/**
 * The request for one drug at one site: purposes `validation` (is the coverage in force),
 * `benefits` (cost share) and `auth-requirements` (does this service need prior authorization).
 */
export function buildEligibilityRequest(input: EligibilityRequestInput): CoverageEligibilityRequest {
  const { coverage } = input;
  const contained = isCoverage(coverage) ? [containable(coverage)] : undefined;
  const coverageReference: Reference = isCoverage(coverage) ? { reference: `#${CONTAINED_COVERAGE_ID}` } : coverage;
  const request: CoverageEligibilityRequest = {
    resourceType: 'CoverageEligibilityRequest',
    id: input.id,
    ...(contained ? { contained } : {}),
    identifier: [{ system: ELIGIBILITY_REQUEST_IDENTIFIER_SYSTEM, value: input.id }],
    status: 'active',
    purpose: ['validation', 'benefits', 'auth-requirements'],
    patient: input.patient,
    ...(input.servicedPeriod ? { servicedPeriod: input.servicedPeriod } : {}),
    created: input.now.toISOString(),
    ...(input.provider ? { provider: input.provider } : {}),
    insurer: input.insurer,
    facility: input.facility,
    insurance: [{ focal: true, coverage: coverageReference }],
    item: [
      {
        productOrService: { coding: input.drugCodings.map((coding) => ({ ...coding })) },
        ...(input.provider ? { provider: input.provider } : {}),
        facility: input.facility,
        ...(input.diagnoses.length > 0
          ? { diagnosis: input.diagnoses.map((coding) => ({ diagnosisCodeableConcept: { coding: [{ ...coding }] } })) }
          : {}),
      },
    ],
  };
  return request;
}

function isCoverage(value: Reference | Coverage): value is Coverage {
  return (value as { resourceType?: unknown }).resourceType === 'Coverage';
}

/** A contained resource has no version or lastUpdated of its own (dom-4). */
function containable(coverage: Coverage): Coverage {
  const { meta, ...rest } = coverage;
  const copy: Coverage = { ...structuredClone(rest), id: CONTAINED_COVERAGE_ID };
  if (meta) {
    const { versionId: _versionId, lastUpdated: _lastUpdated, ...keptMeta } = meta;
    if (Object.keys(keptMeta).length > 0) copy.meta = structuredClone(keptMeta);
  }
  return copy;
}

export interface CostShare {
  /** Per service (benefit-type `copay`, X12 `B`). */
  copay?: Money;
  /** Per cent of the allowed amount (benefit-type `copay-percent`, X12 `A`). */
  coinsurancePercent?: number;
  /** Deductible still to meet: allowed minus used (benefit-type `deductible`, X12 `C`). */
  deductibleRemaining?: Money;
  /** Out-of-pocket maximum still to reach: allowed minus used (X12 `G`). */
  outOfPocketRemaining?: Money;
}

export interface EligibilityInterpretation {
  /** Whether the payer says the coverage is in force; undefined when it does not say. */
  inForce: boolean | undefined;
  /** Whether the payer says this service needs prior authorization; undefined when it does not say. */
  authRequired: boolean | undefined;
  /** Whether the payer says the service is excluded from the plan; undefined when it does not say. */
  excluded: boolean | undefined;
  costShare: CostShare;
  /** The payer's errors, and an `error` outcome, as issues pointing into the response. */
  errors: OperationOutcomeIssue[];
  benefitPeriod?: Period;
}

/**
 * What a CoverageEligibilityResponse says about coverage, authorization and cost share.
 *
 * Benefits are read from in-network items (network `in`, or no network stated): the site check
 * has already required an in-network site. Where several items give a remaining deductible or
 * out-of-pocket amount (individual and family, say), the smallest applies, since the patient
 * reaches whichever limit comes first. When `drugCodings` is given, items about another service
 * are ignored; items that name no service count as plan-wide.
 */
export function interpretEligibilityResponse(
  response: CoverageEligibilityResponse,
  options: { drugCodings?: readonly Coding[] } = {},
): EligibilityInterpretation {
  const errors: OperationOutcomeIssue[] = [];
  (response.error ?? []).forEach((error, index) => {
    const coding = error?.code?.coding?.[0];
    const label = coding?.display ?? error?.code?.text ?? coding?.code ?? 'unspecified';
    const issue = errorIssue(
      'processing',
      `The payer reported an eligibility error: ${label}`,
      `CoverageEligibilityResponse.error[${index}].code`,
    );
    if (error?.code) issue.details = structuredClone(error.code);
    errors.push(issue);
  });
  if (response.outcome === 'error' && errors.length === 0) {
    errors.push(
      errorIssue(
        'processing',
        `The payer could not process the eligibility request${response.disposition ? `: ${response.disposition}` : ''}`,
        'CoverageEligibilityResponse.outcome',
      ),
    );
  }

  const insurances = Array.isArray(response.insurance) ? response.insurance : [];
  const stated = insurances.filter((insurance) => typeof insurance?.inforce === 'boolean');
  const inForce = stated.length === 0 ? undefined : stated.some((insurance) => insurance.inforce === true);
  const periodSource =
    stated.find((insurance) => insurance.inforce === true && insurance.benefitPeriod) ??
    insurances.find((insurance) => insurance?.benefitPeriod);

  const items = insurances
    .flatMap((insurance) => (Array.isArray(insurance?.item) ? insurance.item : []))
    .filter((item) => isInNetwork(item) && isAbout(item, options.drugCodings));

  const result: EligibilityInterpretation = {
    inForce,
    authRequired: tristate(items.map((item) => item.authorizationRequired)),
    excluded: tristate(items.map((item) => item.excluded)),
    costShare: costShareOf(items),
    errors,
  };
  if (periodSource?.benefitPeriod) result.benefitPeriod = { ...periodSource.benefitPeriod };
  return result;
}

/** true if any says true, false if some say false and none true, undefined if none say. */
function tristate(values: ReadonlyArray<boolean | undefined>): boolean | undefined {
  if (values.some((value) => value === true)) return true;
  if (values.some((value) => value === false)) return false;
  return undefined;
}

function isInNetwork(item: CoverageEligibilityResponseInsuranceItem): boolean {
  const codes =
    item?.network?.coding
      ?.filter((coding) => coding.system === BENEFIT_NETWORK_SYSTEM || coding.system === undefined)
      .map((coding) => coding.code) ?? [];
  return codes.length === 0 || codes.includes('in');
}

function isAbout(item: CoverageEligibilityResponseInsuranceItem, drugCodings: readonly Coding[] | undefined): boolean {
  const codings = item?.productOrService?.coding ?? [];
  if (drugCodings === undefined || codings.length === 0) return true;
  return codings.some((coding) => drugCodings.some((drug) => drug.system === coding.system && drug.code === coding.code));
}

type BenefitKind = 'copay' | 'coinsurance' | 'deductible' | 'out-of-pocket';

const KIND_BY_CODE: Record<string, Record<string, BenefitKind>> = {
  [BENEFIT_TYPE_SYSTEM]: { copay: 'copay', 'copay-percent': 'coinsurance', deductible: 'deductible' },
  [X12_BENEFIT_INFORMATION_SYSTEM]: { B: 'copay', A: 'coinsurance', C: 'deductible', G: 'out-of-pocket' },
};

function kindOf(benefit: CoverageEligibilityResponseInsuranceItemBenefit): BenefitKind | undefined {
  for (const coding of benefit?.type?.coding ?? []) {
    const kind = coding.system === undefined ? undefined : KIND_BY_CODE[coding.system]?.[coding.code ?? ''];
    if (kind) return kind;
  }
  return undefined;
}

function costShareOf(items: readonly CoverageEligibilityResponseInsuranceItem[]): CostShare {
  const costShare: CostShare = {};
  for (const item of items) {
    for (const benefit of Array.isArray(item.benefit) ? item.benefit : []) {
      switch (kindOf(benefit)) {
        case 'copay':
          if (costShare.copay === undefined && isMoney(benefit.allowedMoney)) costShare.copay = { ...benefit.allowedMoney };
          break;
        case 'coinsurance': {
          const percent = percentOf(benefit);
          if (costShare.coinsurancePercent === undefined && percent !== undefined) costShare.coinsurancePercent = percent;
          break;
        }
        case 'deductible':
          costShare.deductibleRemaining = smaller(costShare.deductibleRemaining, remainingOf(benefit));
          break;
        case 'out-of-pocket':
          costShare.outOfPocketRemaining = smaller(costShare.outOfPocketRemaining, remainingOf(benefit));
          break;
        case undefined:
          break;
      }
    }
  }
  return costShare;
}

function isMoney(value: Money | undefined): value is Money & { value: number } {
  return typeof value?.value === 'number' && Number.isFinite(value.value);
}

function percentOf(benefit: CoverageEligibilityResponseInsuranceItemBenefit): number | undefined {
  const raw =
    benefit.allowedUnsignedInt ?? (benefit.allowedString !== undefined ? Number(benefit.allowedString.replace(/%\s*$/, '')) : undefined);
  return typeof raw === 'number' && Number.isFinite(raw) && raw >= 0 && raw <= 100 ? raw : undefined;
}

function remainingOf(benefit: CoverageEligibilityResponseInsuranceItemBenefit): Money | undefined {
  if (!isMoney(benefit.allowedMoney)) return undefined;
  const used = isMoney(benefit.usedMoney) && sameCurrency(benefit.usedMoney, benefit.allowedMoney) ? benefit.usedMoney.value : 0;
  return withCents(benefit.allowedMoney, Math.max(0, toCents(benefit.allowedMoney.value) - toCents(used)));
}

function smaller(current: Money | undefined, next: Money | undefined): Money | undefined {
  if (next === undefined) return current;
  if (current === undefined || !sameCurrency(current, next)) return current ?? next;
  return (next.value ?? 0) < (current.value ?? 0) ? next : current;
}

function sameCurrency(a: Money, b: Money): boolean {
  return (a.currency ?? 'USD') === (b.currency ?? 'USD');
}

/** Money sums in whole cents, so that 0.1 + 0.2 stays 0.30. */
function toCents(value: number): number {
  return Math.round(value * 100);
}

function withCents(like: Money, cents: number): Money {
  return { value: cents / 100, ...(like.currency ? { currency: like.currency } : {}) };
}

export interface PatientCostEstimate {
  /** What the patient is likely to owe for the next infusion. */
  perInfusion: Money;
  /** How the figure was reached, in words a coordinator can read to the patient. */
  explanation: string;
}

/**
 * What the patient is likely to owe for the next infusion: the deductible still to meet first,
 * then coinsurance on the rest (or, without coinsurance, the copay), capped by the out-of-pocket
 * amount still to reach. Cost-share amounts in another currency than the allowed amount are left
 * out, and the explanation says so. An estimate: the payer's claim adjudication decides.
 */
export function estimatePatientCost(input: { allowedAmount: Money; costShare: CostShare }): PatientCostEstimate {
  const { allowedAmount, costShare } = input;
  const currency = allowedAmount.currency ?? 'USD';
  const allowed = Math.max(0, toCents(allowedAmount.value ?? 0));
  const notes: string[] = [];
  const usable = (money: Money | undefined, name: string): number | undefined => {
    if (!isMoney(money)) return undefined;
    if ((money.currency ?? 'USD') !== currency) {
      notes.push(`the ${name} is in ${money.currency ?? 'USD'}, not ${currency}, and was left out`);
      return undefined;
    }
    return Math.max(0, toCents(money.value));
  };

  const deductibleRemaining = usable(costShare.deductibleRemaining, 'deductible');
  const copay = usable(costShare.copay, 'copay');
  const outOfPocketRemaining = usable(costShare.outOfPocketRemaining, 'out-of-pocket amount');
  const steps: string[] = [`Allowed amount ${format(allowed, currency)}.`];

  const deductiblePart = Math.min(allowed, deductibleRemaining ?? 0);
  if (deductibleRemaining === undefined) steps.push('The payer did not state a remaining deductible; none was assumed.');
  else steps.push(`Deductible: ${format(deductiblePart, currency)} of the ${format(deductibleRemaining, currency)} still to meet.`);
  const afterDeductible = allowed - deductiblePart;

  let sharePart = 0;
  if (costShare.coinsurancePercent !== undefined) {
    sharePart = Math.round((afterDeductible * costShare.coinsurancePercent) / 100);
    steps.push(
      `Coinsurance: ${costShare.coinsurancePercent}% of the remaining ${format(afterDeductible, currency)} is ${format(sharePart, currency)}.`,
    );
  } else if (copay !== undefined) {
    sharePart = Math.min(copay, afterDeductible);
    steps.push(`Copay: ${format(sharePart, currency)}.`);
  } else {
    steps.push('The payer stated neither coinsurance nor a copay; none was assumed.');
  }

  let total = deductiblePart + sharePart;
  if (outOfPocketRemaining !== undefined && total > outOfPocketRemaining) {
    steps.push(`Capped at the ${format(outOfPocketRemaining, currency)} left before the out-of-pocket maximum.`);
    total = outOfPocketRemaining;
  }
  steps.push(`Estimated patient share for this infusion: ${format(total, currency)}.`);
  if (notes.length > 0) steps.push(`Note: ${notes.join('; ')}.`);
  return { perInfusion: { value: total / 100, currency }, explanation: steps.join(' ') };
}

function format(cents: number, currency: string): string {
  return `${currency} ${(cents / 100).toFixed(2)}`;
}
