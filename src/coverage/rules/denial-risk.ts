/**
 * Denial risk, before anything is sent to the payer: the reasons field note 003 lists for denied
 * infusions that the gateway can see in the order itself. The coordinator gets them as warnings
 * (coded from profiles/CodeSystem-coverage-issue.json) and decides; nothing here refuses a referral.
 *
 * - off-label: no diagnosis of the referral is among the drug's approved indications (IVIG for
 *   multiple sclerosis G35 or lupus M32: docs/domain.md, "Coverage and denials").
 * - documentation-missing: a documentation requirement of the drug catalog is not evidenced.
 * - dose-interval-too-short, doses-per-year-exceeded: the order's timing or quantity goes beyond
 *   the catalog's limits.
 *
 * Dose beyond label is not checked: the catalog carries no labelled dose, and the order's dose is
 * free text (ServiceRequest.orderDetail.text) in the referrals the gateway receives.
 *
 * How a referral evidences documentation (one FHIR-native way, chosen so that an EHR can send it
 * with the order and a payer can receive it in a Da Vinci PAS bundle unchanged): each document is
 * a DocumentReference (contained in the ServiceRequest, or anywhere the caller's `resolve` reaches),
 * referenced from `ServiceRequest.supportingInfo`, with `status` = current and a `type` coding
 * whose system is DOCUMENTATION_REQUIREMENT_SYSTEM and whose code is the catalog's requirement code
 * (`prior-treatment-failure`, `tb-screening`...). https://hl7.org/fhir/R4/servicerequest-definitions.html#ServiceRequest.supportingInfo
 * and https://hl7.org/fhir/R4/documentreference.html. A free-text note does not count: a payer's
 * reviewer needs the document, not a mention of it.
 */
import type { Coding, DocumentReference, Reference, Resource, ServiceRequest, TimingRepeat } from 'fhir/r4.js';
import type { CatalogDrug } from '../../directory/rules/drug-catalog.js';
import { isOnLabel } from '../../directory/rules/drug-catalog.js';
import { findContained } from '../../fhir/references.js';
import type { CoverageIssueCode } from './coverage-check.js';
import { fhirDateInterval } from './coverage-check.js';
import { GATEWAY_CANONICAL_BASE } from '../../referral/rules/referral-status.js';

/** The codes of the drug catalog's documentationRequirements, as a CodeSystem URL for DocumentReference.type. */
export const DOCUMENTATION_REQUIREMENT_SYSTEM = `${GATEWAY_CANONICAL_BASE}/CodeSystem/documentation-requirement`;

export type DenialRiskCode = Extract<
  CoverageIssueCode,
  'off-label' | 'documentation-missing' | 'dose-interval-too-short' | 'doses-per-year-exceeded'
>;

export interface DenialRisk {
  code: DenialRiskCode;
  /** A sentence for a coordinator; names the drug and the catalog's rule, never the patient or the diagnosis. */
  display: string;
  /** FHIRPath into the ServiceRequest. */
  expression: string;
  /** For documentation-missing: the catalog's requirement code. */
  requirement?: string;
}

export interface DenialRiskInput {
  serviceRequest: ServiceRequest;
  drug: CatalogDrug;
  /** The referral's ICD-10-CM diagnoses (Referral.diagnoses). */
  diagnoses: readonly Coding[];
  /** Requirement codes the referral evidences: documentationPresent(serviceRequest, resolve). */
  supportingDocumentation: Iterable<string>;
}

const MS_PER_DAY = 86_400_000;

/** Every denial risk the order shows for this drug, in a stable order: label, documentation, frequency. */
export function assessDenialRisk(input: DenialRiskInput): DenialRisk[] {
  const { serviceRequest, drug } = input;
  const risks: DenialRisk[] = [];

  if (!input.diagnoses.some((d) => d.code !== undefined && isOnLabel(drug, d.code))) {
    risks.push({
      code: 'off-label',
      display:
        input.diagnoses.length === 0
          ? `The referral gives no ICD-10-CM diagnosis to compare with the indications of ${drug.name}; payers deny unlabelled use`
          : `None of the referral's diagnoses is an approved indication of ${drug.name} in the drug catalog; payers often deny off-label use`,
      expression: diagnosisExpression(serviceRequest, input.diagnoses),
    });
  }

  const present = new Set(input.supportingDocumentation);
  for (const requirement of drug.documentationRequirements) {
    if (present.has(requirement.code)) continue;
    risks.push({
      code: 'documentation-missing',
      display: `${drug.name}: no document evidences "${requirement.code}" (${requirement.description})`,
      expression: 'ServiceRequest.supportingInfo',
      requirement: requirement.code,
    });
  }

  risks.push(...frequencyRisks(serviceRequest, drug));
  return risks;
}

/**
 * The documentation requirement codes a ServiceRequest evidences: those of the current
 * DocumentReferences its supportingInfo points to (contained, or through `resolve`).
 */
export function documentationPresent(serviceRequest: ServiceRequest, resolve?: (reference: Reference) => Resource | undefined): string[] {
  const codes = new Set<string>();
  for (const reference of serviceRequest.supportingInfo ?? []) {
    const target = reference.reference?.startsWith('#') ? findContained(serviceRequest, reference.reference) : resolve?.(reference);
    if (target?.resourceType !== 'DocumentReference') continue;
    const document = target as DocumentReference;
    if (document.status !== 'current' || document.docStatus === 'entered-in-error') continue;
    for (const coding of document.type?.coding ?? []) {
      if (coding.system === DOCUMENTATION_REQUIREMENT_SYSTEM && coding.code) codes.add(coding.code);
    }
  }
  return [...codes];
}

function diagnosisExpression(serviceRequest: ServiceRequest, diagnoses: readonly Coding[]): string {
  const index = (serviceRequest.reasonCode ?? []).findIndex((concept) =>
    (concept.coding ?? []).some((c) => diagnoses.some((d) => d.system === c.system && d.code === c.code)),
  );
  if (index >= 0) return `ServiceRequest.reasonCode[${index}]`;
  if ((serviceRequest.reasonReference ?? []).length > 0 && (serviceRequest.reasonCode ?? []).length === 0)
    return 'ServiceRequest.reasonReference';
  return 'ServiceRequest.reasonCode';
}

// ---------------------------------------------------------------------------------------------
// Frequency

/** Days per Timing.repeat.periodUnit (UCUM: a month is 1/12 of a Julian year). https://hl7.org/fhir/R4/valueset-units-of-time.html */
const DAYS_PER_UNIT: Record<NonNullable<TimingRepeat['periodUnit']>, number> = {
  s: 1 / 86_400,
  min: 1 / 1_440,
  h: 1 / 24,
  d: 1,
  wk: 7,
  mo: 365.25 / 12,
  a: 365.25,
};

interface Estimate {
  doses: number;
  expression: string;
}

/**
 * The order's shortest interval between doses and its doses in any 365 days, each from what the
 * order states: Timing.repeat (frequency per period; the most frequent its ranges allow), explicit
 * Timing.event dates, the total (repeat.count, or quantityQuantity counted in infusions or doses)
 * spread over the requested dates. Where several say how many doses a year, the smallest is
 * taken: the order asks for no more than any of them allows (9 infusions every 8 weeks within a
 * year is 6 a year, not 9).
 */
function frequencyRisks(serviceRequest: ServiceRequest, drug: CatalogDrug): DenialRisk[] {
  const risks: DenialRisk[] = [];
  const { minDaysBetweenDoses, maxDosesPer365Days } = drug.limits;
  const timing = serviceRequest.occurrenceTiming;
  const repeat = timing?.repeat;

  const intervals: Array<{ days: number; expression: string }> = [];
  const perYear: Estimate[] = [];

  const repeatInterval = intervalDays(repeat);
  if (repeatInterval !== undefined) {
    intervals.push({ days: repeatInterval, expression: 'ServiceRequest.occurrenceTiming.repeat' });
    // Doses a year at that rate, over a mean year (every 4 weeks is 13, twice a month 24).
    perYear.push({ doses: Math.floor(365.25 / repeatInterval + 1e-9), expression: 'ServiceRequest.occurrenceTiming.repeat' });
  }

  const events = (timing?.event ?? [])
    .map((e) => fhirDateInterval(e, 'UTC')?.start)
    .filter((t): t is number => t !== undefined)
    .sort((a, b) => a - b);
  if (events.length >= 2) {
    let shortest = Infinity;
    for (let i = 1; i < events.length; i++) shortest = Math.min(shortest, ((events[i] as number) - (events[i - 1] as number)) / MS_PER_DAY);
    intervals.push({ days: shortest, expression: 'ServiceRequest.occurrenceTiming.event' });
  }
  if (events.length > 0) perYear.push({ doses: maxInAnyYear(events), expression: 'ServiceRequest.occurrenceTiming.event' });

  const total = totalDoses(serviceRequest);
  if (total) {
    const span = requestedSpanDays(serviceRequest);
    const doses = span !== undefined && span > 365 ? Math.ceil((total.doses * 365) / span) : total.doses;
    perYear.push({ doses, expression: total.expression });
  }

  const tightest = intervals.sort((a, b) => a.days - b.days)[0];
  if (tightest && tightest.days < minDaysBetweenDoses) {
    risks.push({
      code: 'dose-interval-too-short',
      display: `Doses ${formatDays(tightest.days)} apart are closer than the ${minDaysBetweenDoses} days the catalog allows for ${drug.name}`,
      expression: tightest.expression,
    });
  }
  const fewest = perYear.sort((a, b) => a.doses - b.doses)[0];
  if (fewest && fewest.doses > maxDosesPer365Days) {
    risks.push({
      code: 'doses-per-year-exceeded',
      display: `The order asks for ${fewest.doses} doses in 365 days; the catalog allows ${maxDosesPer365Days} for ${drug.name}`,
      expression: fewest.expression,
    });
  }
  return risks;
}

/** Days between doses at the most frequent rate the repeat allows (frequencyMax per period). */
function intervalDays(repeat: TimingRepeat | undefined): number | undefined {
  if (!repeat || repeat.period === undefined || repeat.periodUnit === undefined) return undefined;
  const perPeriod = repeat.frequencyMax ?? repeat.frequency ?? 1;
  if (perPeriod <= 0 || repeat.period <= 0) return undefined;
  return (repeat.period * DAYS_PER_UNIT[repeat.periodUnit]) / perPeriod;
}

/** How many doses the order asks for in all: the smaller of repeat.count(Max) and a count quantity. */
function totalDoses(serviceRequest: ServiceRequest): Estimate | undefined {
  const candidates: Estimate[] = [];
  const repeat = serviceRequest.occurrenceTiming?.repeat;
  const count = repeat?.countMax ?? repeat?.count;
  if (count !== undefined) {
    candidates.push({
      doses: count,
      expression: `ServiceRequest.occurrenceTiming.repeat.${repeat?.countMax !== undefined ? 'countMax' : 'count'}`,
    });
  }
  const quantity = serviceRequest.quantityQuantity;
  if (quantity?.value !== undefined && isDoseCount(quantity)) {
    candidates.push({ doses: quantity.value, expression: 'ServiceRequest.quantityQuantity' });
  }
  return candidates.sort((a, b) => a.doses - b.doses)[0];
}

/** A quantity that counts administrations: UCUM `1` or `{...}` annotations, or a unit naming infusions, doses or administrations. */
function isDoseCount(quantity: NonNullable<ServiceRequest['quantityQuantity']>): boolean {
  if (quantity.system === 'http://unitsofmeasure.org' && quantity.code !== undefined && /^(1|\{[^}]*\})$/.test(quantity.code)) return true;
  return /infusion|dose|administration/i.test(quantity.unit ?? '');
}

/** Days from the start of the requested dates to the end of the last one. */
function requestedSpanDays(serviceRequest: ServiceRequest): number | undefined {
  const period = serviceRequest.occurrencePeriod ?? serviceRequest.occurrenceTiming?.repeat?.boundsPeriod;
  if (period?.start === undefined || period.end === undefined) return undefined;
  const start = fhirDateInterval(period.start, 'UTC')?.start;
  const end = fhirDateInterval(period.end, 'UTC')?.end;
  if (start === undefined || end === undefined || end <= start) return undefined;
  return (end - start) / MS_PER_DAY;
}

/** The most events in any window of 365 days starting at an event. */
function maxInAnyYear(sorted: readonly number[]): number {
  let best = 0;
  let first = 0;
  for (let last = 0; last < sorted.length; last++) {
    while ((sorted[last] as number) - (sorted[first] as number) >= 365 * MS_PER_DAY) first++;
    best = Math.max(best, last - first + 1);
  }
  return best;
}

function formatDays(days: number): string {
  return Number.isInteger(days) ? `${days} days` : `${days.toFixed(1)} days`;
}
