/**
 * The coverage check: is the Coverage a referral carries usable for this patient, these dates and
 * this site? Field notes 001 and 002: without verified coverage an infusion is denied and the patient
 * owes the full cost, and in-network status decides benefits, so it is verified for the exact site.
 *
 * Pure: the Coverage, the patient it should be for, the requested dates, `now` and the directory
 * come in; every problem found goes out (none stops the others from being looked for). What the
 * payer itself says (CoverageEligibilityResponse) is the payer wire's concern, not this file's.
 *
 * The problem codes are published as profiles/CodeSystem-coverage-issue.json; the denial risks of
 * src/coverage/rules/denial-risk.ts and the rule/payer disagreement of src/coverage/rules/prior-auth-rules.ts use
 * the same CodeSystem, so a coordinator's tool reads one vocabulary for everything coverage.
 */
import type {
  CodeableConcept,
  Coverage,
  FhirResource,
  Identifier,
  OperationOutcomeIssue,
  OrganizationAffiliation,
  Patient,
  Period,
  Reference,
  Resource,
} from 'fhir/r4.js';
import { DateTime } from 'luxon';
import { issue } from '../../fhir/outcomes.js';
import { parseRelativeReference } from '../../fhir/references.js';
import { GATEWAY_CANONICAL_BASE } from '../../referral/rules/referral-status.js';

export const COVERAGE_ISSUE_SYSTEM = `${GATEWAY_CANONICAL_BASE}/CodeSystem/coverage-issue`;

/** https://hl7.org/fhir/R4/codesystem-coverage-class.html: the `plan` class carries the plan's identifier. */
export const COVERAGE_CLASS_SYSTEM = 'http://terminology.hl7.org/CodeSystem/coverage-class';

/** Every code of the coverage-issue CodeSystem, in its order; a test keeps the two in step. */
export const COVERAGE_ISSUE_CODES = [
  'coverage-missing',
  'coverage-inactive',
  'coverage-expired',
  'coverage-period-gap',
  'beneficiary-mismatch',
  'payer-unknown',
  'plan-unknown',
  'plan-inactive',
  'plan-payer-mismatch',
  'out-of-network',
  'off-label',
  'documentation-missing',
  'dose-interval-too-short',
  'doses-per-year-exceeded',
  'auth-requirement-disagreement',
  'payer-not-connected',
  'eligibility-not-in-force',
  'eligibility-error',
  'prior-auth-denied',
  'prior-auth-error',
] as const;

export type CoverageIssueCode = (typeof COVERAGE_ISSUE_CODES)[number];

export type CoverageProblemCode = Extract<
  CoverageIssueCode,
  | 'coverage-missing'
  | 'coverage-inactive'
  | 'coverage-expired'
  | 'coverage-period-gap'
  | 'beneficiary-mismatch'
  | 'payer-unknown'
  | 'plan-unknown'
  | 'plan-inactive'
  | 'plan-payer-mismatch'
  | 'out-of-network'
>;

export interface CoverageProblem {
  code: CoverageProblemCode;
  /**
   * `error`: the coverage cannot carry this referral as it stands (the referral waits in
   * `coverage-problem`). `warning`: it can for now, but someone must act before the series ends
   * (a coverage ending before the last requested infusion).
   */
  severity: 'error' | 'warning';
  /** A sentence for a coordinator; never carries patient data. */
  display: string;
  /** FHIRPath where the problem shows: into the Coverage, or the ServiceRequest for its site and insurance. */
  expression: string;
}

/** A plan as the coverage check needs it; src/directory/rules/site-directory.ts DirectoryPlan fits this shape. */
export interface CoveragePlan {
  planId: string;
  payerOrganizationId?: string;
  networkIds: ReadonlySet<string>;
  /** InsurancePlan.status is `active` (absent counts as active). */
  active?: boolean;
}

/**
 * The directory questions the coverage check asks. The lead's SiteDirectory implements it; for
 * tests and small deployments, coverageDirectoryFromResources below does too.
 */
export interface CoverageDirectory {
  /** The InsurancePlan the Coverage's `class` of type `plan` names, the Coverage's payor breaking ties. */
  planForCoverage(coverage: Coverage): CoveragePlan | undefined;
  /** An active payer Organization of the directory. */
  isKnownPayer(organizationId: string): boolean;
  /** Network Organization ids the site belongs to; undefined when the site is not in the directory. */
  siteNetworkIds(locationId: string): ReadonlySet<string> | undefined;
}

/** Who the referral is for, to compare Coverage.beneficiary with. */
export interface ReferralPatient {
  /** The references the ServiceRequest uses for its patient (`#patient`, `Patient/123`, `urn:uuid:...`). */
  references: readonly string[];
  /** The patient's business identifiers (MRN and the like), from the resolved Patient. */
  identifiers: readonly Identifier[];
}

export interface CoverageCheckInput {
  /** The referral's Coverage (contained, from the Bundle or fetched from the EHR); undefined when none could be found. */
  coverage: Coverage | undefined;
  patient: ReferralPatient;
  /** The dates the order asks for (occurrencePeriod or occurrenceTiming.repeat.boundsPeriod). */
  requestedPeriod?: Period;
  now: Date;
  /** The directory Location the referral is (or will be) given at; without it the network is not checked. */
  siteLocationId?: string;
  /**
   * IANA time zone in which date-only periods are read (the site's, from the directory); `UTC` when
   * absent. A coverage ending `2026-12-31` ends at midnight where the care is given, not in Greenwich.
   */
  timeZone?: string;
  /** Resolves Coverage.beneficiary when it is not one of the patient's references (a Coverage read from the EHR). */
  resolve?: (reference: Reference) => Resource | undefined;
  /** FHIRPath of the Coverage in the message: `Coverage` (default) or e.g. `ServiceRequest.contained[2]`. */
  coverageExpression?: string;
  /** FHIRPath of the site reference; default `ServiceRequest.locationReference[0]`. */
  siteExpression?: string;
}

export interface CoverageCheckResult {
  /** The directory plan the Coverage names, when the directory knows it. */
  plan?: { planId: string; payerId: string | undefined };
  problems: CoverageProblem[];
}

/**
 * Checks a referral's Coverage: present, active, in force at `now` and over the requested dates,
 * for the referral's patient, from a payer and plan the directory knows, and with the site in the
 * plan's network (Da Vinci PDex Plan-Net: https://hl7.org/fhir/us/davinci-pdex-plan-net/). Every
 * problem is reported, each with a FHIRPath expression.
 */
export function checkCoverage(input: CoverageCheckInput, directory: CoverageDirectory): CoverageCheckResult {
  const { coverage } = input;
  if (!coverage) {
    return {
      problems: [
        {
          code: 'coverage-missing',
          severity: 'error',
          display: 'The referral carries no Coverage the gateway can read; insurance cannot be verified',
          expression: 'ServiceRequest.insurance',
        },
      ],
    };
  }
  const at = input.coverageExpression ?? 'Coverage';
  const zone = input.timeZone ?? 'UTC';
  const problems: CoverageProblem[] = [];

  if (coverage.status !== 'active') {
    problems.push({
      code: 'coverage-inactive',
      severity: 'error',
      display: `The Coverage is ${coverage.status ?? 'without a status'}, not active`,
      expression: `${at}.status`,
    });
  }
  problems.push(...periodProblems(coverage.period, input.requestedPeriod, input.now, zone, at));

  if (!beneficiaryIsPatient(coverage.beneficiary, input.patient, input.resolve)) {
    problems.push({
      code: 'beneficiary-mismatch',
      severity: 'error',
      display: "The Coverage's beneficiary is not the referral's patient",
      expression: `${at}.beneficiary`,
    });
  }

  const payerIds = (coverage.payor ?? []).map((r) => organizationId(r)).filter((id): id is string => id !== undefined);
  const knownPayers = payerIds.filter((id) => directory.isKnownPayer(id));
  if (knownPayers.length === 0) {
    problems.push({
      code: 'payer-unknown',
      severity: 'error',
      display:
        payerIds.length === 0
          ? 'The Coverage names no payer Organization the directory can look up'
          : `The payer ${payerIds.join(', ')} is not in the directory`,
      expression: `${at}.payor`,
    });
  }

  const plan = directory.planForCoverage(coverage);
  const planIndex = (coverage.class ?? []).findIndex((c) => isPlanClass(c.type));
  const planExpression = planIndex >= 0 ? `${at}.class[${planIndex}].value` : `${at}.class`;
  if (!plan) {
    problems.push({
      code: 'plan-unknown',
      severity: 'error',
      display:
        planIndex >= 0
          ? 'The plan the Coverage names is not in the directory'
          : 'The Coverage has no class of type plan, so its plan and network cannot be found',
      expression: planExpression,
    });
  } else {
    if (plan.active === false) {
      problems.push({
        code: 'plan-inactive',
        severity: 'error',
        display: `The plan ${plan.planId} is no longer active`,
        expression: planExpression,
      });
    }
    if (plan.payerOrganizationId !== undefined && payerIds.length > 0 && !payerIds.includes(plan.payerOrganizationId)) {
      problems.push({
        code: 'plan-payer-mismatch',
        severity: 'error',
        display: `The plan ${plan.planId} belongs to ${plan.payerOrganizationId}, not to the Coverage's payer`,
        expression: planExpression,
      });
    }
    if (input.siteLocationId !== undefined) {
      const siteNetworks = directory.siteNetworkIds(input.siteLocationId);
      // A site unknown to the directory is the site check's finding (field note 000), not a network one.
      if (siteNetworks !== undefined && !intersects(siteNetworks, plan.networkIds)) {
        problems.push({
          code: 'out-of-network',
          severity: 'error',
          display: `The site ${input.siteLocationId} is not in the network of the plan ${plan.planId}`,
          expression: input.siteExpression ?? 'ServiceRequest.locationReference[0]',
        });
      }
    }
  }

  const result: CoverageCheckResult = { problems };
  if (plan) result.plan = { planId: plan.planId, payerId: plan.payerOrganizationId };
  return result;
}

/** Whether any problem keeps the referral in `coverage-problem`. */
export function hasBlockingCoverageProblem(problems: readonly CoverageProblem[]): boolean {
  return problems.some((p) => p.severity === 'error');
}

/** A coverage-issue coding, for Task inputs and OperationOutcome issue details. */
export function coverageIssueConcept(code: CoverageIssueCode, text: string): CodeableConcept {
  return { coding: [{ system: COVERAGE_ISSUE_SYSTEM, code }], text };
}

/**
 * OperationOutcome issues for coverage problems or denial risks: `business-rule` issues whose
 * `details` carry the coverage-issue code, so a client can act on the code and show the text.
 */
export function coverageIssues(
  findings: ReadonlyArray<{ code: CoverageIssueCode; display: string; expression: string; severity?: 'error' | 'warning' }>,
): OperationOutcomeIssue[] {
  return findings.map((f) => ({
    ...issue(f.severity ?? 'warning', 'business-rule', f.display, f.expression),
    details: coverageIssueConcept(f.code, f.display),
  }));
}

// ---------------------------------------------------------------------------------------------
// Periods

/**
 * A FHIR date or dateTime as the half-open interval of instants it names: `2026` is the whole
 * year, `2026-12-31` the whole day (in `zone`), a dateTime with an offset the instant itself.
 * https://hl7.org/fhir/R4/datatypes.html#date
 */
export function fhirDateInterval(value: string, zone: string): { start: number; end: number } | undefined {
  const precision = /^\d{4}$/.test(value)
    ? 'year'
    : /^\d{4}-\d{2}$/.test(value)
      ? 'month'
      : /^\d{4}-\d{2}-\d{2}$/.test(value)
        ? 'day'
        : 'instant';
  const parsed = precision === 'instant' ? DateTime.fromISO(value, { setZone: true }) : DateTime.fromISO(value, { zone });
  if (!parsed.isValid) return undefined;
  const start = parsed.toMillis();
  const end =
    precision === 'instant'
      ? start + 1
      : parsed.plus(precision === 'year' ? { years: 1 } : precision === 'month' ? { months: 1 } : { days: 1 }).toMillis();
  return { start, end };
}

function periodProblems(
  coveragePeriod: Period | undefined,
  requested: Period | undefined,
  now: Date,
  zone: string,
  at: string,
): CoverageProblem[] {
  const problems: CoverageProblem[] = [];
  const covStart = coveragePeriod?.start !== undefined ? fhirDateInterval(coveragePeriod.start, zone)?.start : undefined;
  const covEnd = coveragePeriod?.end !== undefined ? fhirDateInterval(coveragePeriod.end, zone)?.end : undefined;
  const nowMs = now.getTime();

  if (covEnd !== undefined && covEnd <= nowMs) {
    problems.push({
      code: 'coverage-expired',
      severity: 'error',
      display: `The Coverage ended on ${coveragePeriod?.end}`,
      expression: `${at}.period.end`,
    });
    return problems;
  }

  const reqStart = requested?.start !== undefined ? fhirDateInterval(requested.start, zone)?.start : undefined;
  const reqEnd = requested?.end !== undefined ? fhirDateInterval(requested.end, zone)?.end : undefined;
  // Without requested dates the referral is for as soon as possible: the coverage must be in force now.
  const firstDose = reqStart ?? nowMs;
  if (covStart !== undefined && covStart > firstDose) {
    problems.push({
      code: 'coverage-period-gap',
      severity: 'error',
      display:
        reqStart !== undefined
          ? `The Coverage starts on ${coveragePeriod?.start}, after the first requested date ${requested?.start}`
          : `The Coverage is not in force yet: it starts on ${coveragePeriod?.start}`,
      expression: `${at}.period.start`,
    });
  }
  if (covEnd !== undefined && reqStart !== undefined && covEnd <= reqStart) {
    problems.push({
      code: 'coverage-period-gap',
      severity: 'error',
      display: `The Coverage ends on ${coveragePeriod?.end}, before the first requested date ${requested?.start}`,
      expression: `${at}.period.end`,
    });
  } else if (covEnd !== undefined && reqEnd !== undefined && covEnd < reqEnd) {
    // The first infusions are covered; the later ones need this coverage renewed (or a new one).
    problems.push({
      code: 'coverage-period-gap',
      severity: 'warning',
      display: `The Coverage ends on ${coveragePeriod?.end}, before the last requested date ${requested?.end}`,
      expression: `${at}.period.end`,
    });
  }
  return problems;
}

// ---------------------------------------------------------------------------------------------
// Beneficiary, payer, plan, network

function beneficiaryIsPatient(
  beneficiary: Reference | undefined,
  patient: ReferralPatient,
  resolve: ((reference: Reference) => Resource | undefined) | undefined,
): boolean {
  if (!beneficiary) return false;
  if (beneficiary.reference !== undefined && patient.references.includes(beneficiary.reference)) return true;
  if (beneficiary.identifier && identifierIn(beneficiary.identifier, patient.identifiers)) return true;
  const resolved = beneficiary.reference !== undefined ? resolve?.(beneficiary) : undefined;
  if (resolved?.resourceType === 'Patient') {
    return ((resolved as Patient).identifier ?? []).some((i) => identifierIn(i, patient.identifiers));
  }
  return false;
}

function identifierIn(identifier: Identifier, identifiers: readonly Identifier[]): boolean {
  if (!identifier.system || !identifier.value) return false;
  return identifiers.some((i) => i.system === identifier.system && i.value === identifier.value);
}

function organizationId(reference: Reference): string | undefined {
  const parsed = parseRelativeReference(reference.reference);
  return parsed?.resourceType === 'Organization' ? parsed.id : undefined;
}

function isPlanClass(type: CodeableConcept | undefined): boolean {
  return (type?.coding ?? []).some((c) => c.code === 'plan' && (c.system === undefined || c.system === COVERAGE_CLASS_SYSTEM));
}

function intersects(a: ReadonlySet<string>, b: ReadonlySet<string>): boolean {
  for (const value of a) if (b.has(value)) return true;
  return false;
}

/**
 * A CoverageDirectory over Plan-Net-shaped directory resources (fixtures/README.md, "Directory"):
 * payers are Organizations typed `pay`/`payer`; an InsurancePlan's `identifier` values are what a
 * Coverage's plan class carries, its `network` its networks; a site's networks are those of the
 * active OrganizationAffiliations naming its Location (or a HealthcareService given there).
 */
export function coverageDirectoryFromResources(resources: Iterable<Resource>): CoverageDirectory {
  const payerIds = new Set<string>();
  const plans: Array<CoveragePlan & { identifierValues: string[] }> = [];
  const networksBySite = new Map<string, Set<string>>();
  const locationsOfService = new Map<string, string[]>();
  const affiliations: OrganizationAffiliation[] = [];

  for (const resource of resources as Iterable<FhirResource>) {
    if (!resource.id) continue;
    switch (resource.resourceType) {
      case 'Organization': {
        const isPayer = (resource.type ?? []).some((t) => (t.coding ?? []).some((c) => c.code === 'pay' || c.code === 'payer'));
        if (isPayer && resource.active !== false) payerIds.add(resource.id);
        break;
      }
      case 'Location':
        networksBySite.set(resource.id, new Set());
        break;
      case 'HealthcareService':
        locationsOfService.set(
          resource.id,
          (resource.location ?? []).map((r) => relativeId(r, 'Location')).filter((id): id is string => id !== undefined),
        );
        break;
      case 'OrganizationAffiliation':
        affiliations.push(resource);
        break;
      case 'InsurancePlan': {
        const payer = relativeId(resource.ownedBy, 'Organization') ?? relativeId(resource.administeredBy, 'Organization');
        plans.push({
          planId: resource.id,
          identifierValues: (resource.identifier ?? []).map((i) => i.value).filter((v): v is string => v !== undefined),
          networkIds: new Set(
            (resource.network ?? []).map((r) => relativeId(r, 'Organization')).filter((id): id is string => id !== undefined),
          ),
          active: resource.status === undefined || resource.status === 'active',
          ...(payer !== undefined ? { payerOrganizationId: payer } : {}),
        });
        break;
      }
      default:
        break;
    }
  }
  for (const affiliation of affiliations) {
    if (affiliation.active === false) continue;
    const networks = (affiliation.network ?? []).map((r) => relativeId(r, 'Organization')).filter((id): id is string => id !== undefined);
    const sites = new Set(
      (affiliation.location ?? []).map((r) => relativeId(r, 'Location')).filter((id): id is string => id !== undefined),
    );
    for (const r of affiliation.healthcareService ?? []) {
      for (const id of locationsOfService.get(relativeId(r, 'HealthcareService') ?? '') ?? []) sites.add(id);
    }
    for (const site of sites) for (const network of networks) networksBySite.get(site)?.add(network);
  }

  return {
    planForCoverage(coverage: Coverage): CoveragePlan | undefined {
      const values = (coverage.class ?? []).filter((c) => isPlanClass(c.type)).map((c) => c.value);
      const payers = new Set((coverage.payor ?? []).map(organizationId).filter((id): id is string => id !== undefined));
      const matches = plans.filter((p) => p.identifierValues.some((v) => values.includes(v)));
      return matches.find((p) => p.payerOrganizationId !== undefined && payers.has(p.payerOrganizationId)) ?? matches[0];
    },
    isKnownPayer: (organizationId: string): boolean => payerIds.has(organizationId),
    siteNetworkIds: (locationId: string): ReadonlySet<string> | undefined => networksBySite.get(locationId),
  };
}

function relativeId(reference: Reference | undefined, resourceType: string): string | undefined {
  const parsed = parseRelativeReference(reference?.reference);
  return parsed?.resourceType === resourceType ? parsed.id : undefined;
}
