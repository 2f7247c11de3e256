/**
 * Story: between the site check and scheduling, verify the referral's coverage with the payer
 * (docs/domain.md "Coverage and denials"; field notes 001-003: no infusion without verified coverage and,
 * where required, prior authorization).
 *
 *   referral at verifying-coverage (a `verify-coverage` step in the outbox)
 *     -> Coverage valid, plan and payer known, site in the plan's network      (checkCoverage)
 *     -> denial risks: off-label, documentation, frequency                    (assessDenialRisk)
 *     -> eligibility with the payer: in force? authorization required? cost share
 *     -> authorization: the payer's answer, else the deployment's rules
 *        - not required                     -> ready-to-schedule
 *        - required, with denial risks      -> auth-required (a coordinator reviews, then $submit-prior-auth)
 *        - required                         -> Da Vinci PAS Claim/$submit: approved -> ready-to-schedule,
 *                                              pended -> auth-pending (followed up by $inquire), denied -> auth-denied + appeal Task
 *     -> in one transaction: the verified Coverage stored, the Task updated, both written back to the EHR
 *
 * A payer that is down fails the step retryably: the outbox tries again with backoff and the
 * referral waits in verifying-coverage; nothing is lost.
 */
import type {
  CodeableConcept,
  Coding,
  Coverage,
  FhirResource,
  Patient,
  Period,
  Reference,
  Resource,
  ServiceRequest,
  Task,
} from 'fhir/r4.js';
import { APPEAL_IDENTIFIER_SYSTEM, buildAppealTask } from '../rules/appeal.js';
import { phoneVerificationNote, phoneVerificationResult, type PhoneVerification } from '../rules/phone-verification.js';
import { checkCoverage, type CoverageCheckResult } from '../rules/coverage-check.js';
import {
  COVERAGE_VERIFICATION_EXTENSION_URL,
  coverageStatus,
  taskAfterCoverageStep,
  VERIFIED_COVERAGE_ID_PREFIX,
  VERIFIED_COVERAGE_IDENTIFIER_SYSTEM,
  type Authorization,
  type CoverageFinding,
  type CoverageOutcome,
} from '../rules/coverage-outcome.js';
import { assessDenialRisk, documentationPresent } from '../rules/denial-risk.js';
import type { CatalogDrug } from '../../directory/rules/drug-catalog.js';
import {
  buildEligibilityRequest,
  estimatePatientCost,
  interpretEligibilityResponse,
  type EligibilityInterpretation,
} from '../rules/eligibility.js';
import {
  buildInquiryBundle,
  buildPriorAuthorizationBundle,
  interpretClaimResponseBundle,
  type PriorAuthorizationDecision,
  type PriorAuthorizationInput,
} from '../rules/prior-authorization.js';
import { allowedAmountPerInfusion, priorAuthRequired, reconcileAuthRequirement } from '../rules/prior-auth-rules.js';
import { ICD10CM_SYSTEM, requestedPeriod, type EhrReferences } from '../../referral/rules/referral.js';
import {
  GATEWAY_CANONICAL_BASE,
  REFERRAL_IDENTIFIER_SYSTEM,
  TASK_PARAMETER_TYPE_SYSTEM,
  referralStatusOf,
} from '../../referral/rules/referral-status.js';
import { conflict, notFound, OperationOutcomeError } from '../../fhir/outcomes.js';
import { siteCheckInputs } from '../../referral/rules/referral-task.js';
import type { SiteSuggestion } from '../../site-check/rules/site-check-types.js';
import type { DirectorySite, SiteDirectory } from '../../directory/rules/site-directory.js';
import { appealTaskWriteBack, forEhr, taskWriteBack, EHR_UPSERT, type EhrUpsertPayload } from '../../delivery/rules/write-back.js';
import { ORDER_CHANGE_REASON_SYSTEM } from '../../order-changes/rules/order-change.js';
import { findContained, parseRelativeReference } from '../../fhir/references.js';
import { EhrCallError } from '../../ports/ehr-fhir.js';
import { PayerCallError, type PayerFhir } from '../../ports/payer-fhir.js';
import type { NewOutboxMessage, ResourceWriter, TenantId } from '../../ports/resource-store.js';
import { checkSiteOfReferral } from '../../site-check/stories/check-referral-site.js';
import { type GatewayDeps, writeBackTarget } from '../../ports/gateway-deps.js';
import { referralStep, SUBMIT_PRIOR_AUTH_STEP } from '../../referral/stories/referral-steps.js';
import { readStoredReferral, resolveAtGateway, type StoredReferral } from '../../referral/stories/stored-referral.js';
import type { Refusal } from '../../ports/refusal.js';

/** Field note 001: infusion centers are the setting these sites are. */
const SETTING = 'infusion-center';

/** Everything the coverage step reads about one referral. */
interface CoverageContext extends StoredReferral {
  tenant: TenantId;
  drug: CatalogDrug;
  directory: SiteDirectory;
  site?: DirectorySite;
  patient?: Patient;
  coverage?: Coverage;
  /** Where the referral's Coverage was found: contained in the order, stored at the gateway, or read from the EHR. */
  coverageFoundAt?: ResolvedAt;
  coverageExpression: string;
  ehr?: EhrReferences;
}

async function loadContext(deps: GatewayDeps, tenant: TenantId, referralId: string): Promise<CoverageContext | undefined> {
  const row = await deps.store.readReferral(tenant, referralId);
  const stored = row ? await readStoredReferral(deps.store, row) : undefined;
  const drug = stored ? deps.drugs.findDrug(stored.serviceRequest.code?.coding ?? []) : undefined;
  if (!stored || !drug) return undefined;
  const { serviceRequest } = stored;
  const directory = await deps.sites.current();
  const siteId = parseRelativeReference(serviceRequest.locationReference?.[0]?.reference);
  const site = siteId?.resourceType === 'Location' ? directory.site(siteId.id) : undefined;
  const resolve = (reference: Reference | undefined): Promise<Resolved | undefined> =>
    resolveReferenceAt(deps, tenant, serviceRequest, reference);
  const subject = (await resolve(serviceRequest.subject))?.resource as FhirResource | undefined;
  const insurance = serviceRequest.insurance?.[0];
  const resolvedCoverage = await resolve(insurance);
  const coverage = resolvedCoverage?.resource as FhirResource | undefined;
  const containedIndex = (serviceRequest.contained ?? []).findIndex((r) => `#${r.id}` === insurance?.reference);
  return {
    tenant,
    ...stored,
    drug,
    directory,
    ...(site ? { site } : {}),
    ...(subject?.resourceType === 'Patient' ? { patient: subject } : {}),
    ...(coverage?.resourceType === 'Coverage' && resolvedCoverage ? { coverage, coverageFoundAt: resolvedCoverage.at } : {}),
    coverageExpression: containedIndex >= 0 ? `ServiceRequest.contained[${containedIndex}]` : 'ServiceRequest.insurance[0]',
    ...((stored.row.referral as { ehr?: EhrReferences } | null)?.ehr ? { ehr: (stored.row.referral as { ehr: EhrReferences }).ehr } : {}),
  };
}

type ResolvedAt = 'contained' | 'gateway' | 'ehr';
interface Resolved {
  resource: Resource;
  at: ResolvedAt;
}

/**
 * A reference as the referral sees it: contained, stored at the gateway, else read from the
 * tenant's EHR (an order pulled from the EHR points at the EHR's own Patient and Coverage). An
 * EHR that is down fails the step retryably; one that refuses (404) leaves the resource missing.
 */
async function resolveReferenceAt(
  deps: Pick<GatewayDeps, 'ehrFor' | 'store' | 'tenancy'>,
  tenant: TenantId,
  serviceRequest: ServiceRequest,
  reference: Reference | undefined,
): Promise<Resolved | undefined> {
  const atGateway = await resolveAtGateway(deps.store, deps.tenancy, tenant, serviceRequest, reference);
  if (atGateway) return atGateway;
  const key = reference?.reference;
  const ehr = deps.ehrFor(tenant);
  if (key === undefined || !ehr) return undefined;
  try {
    return { resource: await ehr.readReference(key), at: 'ehr' };
  } catch (err) {
    if (err instanceof EhrCallError && !err.retryable) return undefined;
    throw err;
  }
}

async function resolveReference(
  deps: GatewayDeps,
  tenant: TenantId,
  serviceRequest: ServiceRequest,
  reference: Reference | undefined,
): Promise<Resource | undefined> {
  return (await resolveReferenceAt(deps, tenant, serviceRequest, reference))?.resource;
}

function diagnosesOf(serviceRequest: ServiceRequest): Coding[] {
  return (serviceRequest.reasonCode ?? []).flatMap((c) =>
    (c.coding ?? []).filter((coding) => coding.system === ICD10CM_SYSTEM && coding.code),
  );
}

function syncResolver(serviceRequest: ServiceRequest): (reference: Reference) => Resource | undefined {
  return (reference) => (reference.reference ? findContained(serviceRequest, reference.reference) : undefined);
}

/** The Patient sent to the payer: the referral's, or a stand-in carrying the EHR's identifier. */
/**
 * Who and what a PAS Claim names, the same in its submission and in every inquiry about it
 * (https://hl7.org/fhir/us/davinci-pas/): the request's ids and time, the patient, their coverage,
 * the payer, the requesting infusion center and the drug.
 */
function claimParties(
  context: CoverageContext,
  known: { bundleId: string; claimId: string; now: Date; coverage: Coverage; site: DirectorySite; payerId: string },
): Pick<PriorAuthorizationInput, 'bundleId' | 'claimId' | 'now' | 'patient' | 'coverage' | 'insurer' | 'provider' | 'drugCodings'> {
  return {
    bundleId: known.bundleId,
    claimId: known.claimId,
    now: known.now,
    patient: patientForPayer(context),
    coverage: known.coverage,
    insurer: { reference: `Organization/${known.payerId}` },
    provider: { reference: `Organization/${known.site.managingOrganizationId ?? 'infusion-network'}` },
    drugCodings: context.serviceRequest.code?.coding ?? [],
  };
}

function patientForPayer(context: CoverageContext): Patient {
  if (context.patient) return { ...context.patient, id: context.patient.id ?? 'patient' };
  const identifier = context.ehr?.patient?.identifier;
  return { resourceType: 'Patient', id: 'patient', ...(identifier ? { identifier: [identifier] } : {}) };
}

/** The verified Coverage as the gateway keeps it and writes it back: what was checked, and when. */
/** The verification extension's parts for a phone call: when, how, who, and the payer's reference. */
function phoneEvidence(verification: PhoneVerification): Array<{ url: string; [value: string]: unknown }> {
  return [
    { url: 'verified', valueDateTime: verification.verifiedAt.toISOString() },
    { url: 'method', valueCode: 'phone' },
    verification.verifiedBy.reference
      ? { url: 'verified-by', valueReference: verification.verifiedBy.reference }
      : { url: 'verified-by', valueString: verification.verifiedBy.name },
    { url: 'payer-reference', valueString: verification.payerReference },
  ];
}

/**
 * The Coverage this verification is of, linked from the verified Coverage's `source-coverage`
 * part rather than by sharing its business identifier (Coverage.identifier identifies one record,
 * https://hl7.org/fhir/R4/coverage-definitions.html#Coverage.identifier): by that identifier, a
 * logical reference the gateway and the EHR both resolve (https://hl7.org/fhir/R4/references.html#logical),
 * plus its literal reference when the gateway stores it. A contained Coverage cannot be named
 * from outside its ServiceRequest; one read from the EHR is the EHR's literal, not the gateway's.
 */
function sourceCoverage(context: CoverageContext): Reference[] {
  const identifier = context.coverage?.identifier?.find((i) => i.system && i.value);
  const literal = context.coverageFoundAt === 'gateway' ? context.serviceRequest.insurance?.[0]?.reference : undefined;
  if (!identifier && literal === undefined) return [];
  return [{ ...(literal !== undefined ? { reference: literal } : {}), type: 'Coverage', ...(identifier ? { identifier } : {}) }];
}

/** How the coverage was verified: the payer's eligibility answer, or a coordinator's phone call. */
type VerificationEvidence = { kind: 'eligibility'; requestId: string } | { kind: 'phone'; verification: PhoneVerification };

function verifiedCoverage(
  context: CoverageContext,
  input: { now: Date; evidence: VerificationEvidence; authorization: Authorization },
): Coverage & { id: string } {
  const { contained: _contained, id: _id, meta: _meta, ...coverage } = context.coverage as Coverage;
  const beneficiary = context.serviceRequest.subject?.reference?.startsWith('#')
    ? (context.ehr?.patient ?? coverage.beneficiary)
    : (context.serviceRequest.subject ?? coverage.beneficiary);
  const checks: Array<{ url: string; [value: string]: unknown }> = [
    ...(input.evidence.kind === 'eligibility'
      ? [
          { url: 'verified', valueDateTime: input.now.toISOString() },
          {
            url: 'eligibility-request',
            valueIdentifier: { system: `${GATEWAY_CANONICAL_BASE}/eligibility-request-id`, value: input.evidence.requestId },
          },
        ]
      : phoneEvidence(input.evidence.verification)),
    { url: 'in-force', valueBoolean: true },
    ...(context.site
      ? [{ url: 'in-network-site', valueReference: { reference: `Location/${context.site.locationId}`, display: context.site.name } }]
      : []),
    { url: 'prior-authorization', valueCode: input.authorization.kind },
    ...sourceCoverage(context).map((valueReference) => ({ url: 'source-coverage', valueReference })),
  ];
  return {
    ...coverage,
    resourceType: 'Coverage',
    id: `${VERIFIED_COVERAGE_ID_PREFIX}${context.row.id}`,
    // Only the gateway's own identifier: the EHR's member Coverage identifies the EHR's record, and a
    // second resource under it would make the EHR's next conditional create of that Coverage match
    // two (412), here and at the EHR the record is written back to (docs/write-back.md#the-verified-coverage).
    identifier: [{ system: VERIFIED_COVERAGE_IDENTIFIER_SYSTEM, value: context.row.id }],
    beneficiary,
    extension: [
      ...(coverage.extension ?? []).filter((e) => e.url !== COVERAGE_VERIFICATION_EXTENSION_URL),
      { url: COVERAGE_VERIFICATION_EXTENSION_URL, extension: checks as never },
    ],
  };
}

/**
 * The verified Coverage as the EHR receives it: its beneficiary is the patient as the EHR knows
 * them (the EHR's id from the pulled order, else by record number), never the gateway's
 * `Patient/<id>`, which the EHR does not hold; every other reference follows the same rule
 * (receiver-references.ts).
 */
function coverageWriteBack(deps: Pick<GatewayDeps, 'newId'>, context: CoverageContext, coverage: Coverage): NewOutboxMessage {
  const { id: _id, meta: _meta, ...rest } = coverage;
  const patient = [coverage.beneficiary?.reference, context.serviceRequest.subject?.reference].filter((r): r is string => r !== undefined);
  const resource = context.ehr ? forEhr(rest as Coverage, context.ehr, { patient }) : rest;
  const payload: EhrUpsertPayload = { resource, identifier: { system: VERIFIED_COVERAGE_IDENTIFIER_SYSTEM, value: context.row.id } };
  return { id: deps.newId(), tenant: context.tenant, orderingKey: `referral:${context.row.id}`, kind: EHR_UPSERT, payload };
}

function authorizationOf(
  decision: PriorAuthorizationDecision,
  claimIdentifier: string,
): { authorization?: Authorization; problems: CoverageFinding[]; denialReasons: CodeableConcept[] } {
  switch (decision.kind) {
    case 'approved':
      return {
        authorization: {
          kind: 'approved',
          authorizationNumber: decision.authorizationNumber,
          ...(decision.period ? { period: decision.period } : {}),
        },
        problems: [],
        denialReasons: [],
      };
    case 'not-required':
      return { authorization: { kind: 'not-required' }, problems: [], denialReasons: [] };
    case 'pended':
      return { authorization: { kind: 'pending', claimIdentifier }, problems: [], denialReasons: [] };
    case 'denied':
      return {
        authorization: { kind: 'denied', claimIdentifier },
        problems: [],
        denialReasons: decision.reasons.map((r) => ({ ...(r.code ? { coding: [r.code] } : {}), text: r.display })),
      };
    case 'error':
      return {
        problems: decision.issues.map((i) => ({
          code: 'prior-auth-error' as const,
          display: `The payer refused the prior-authorization request: ${i.diagnostics ?? i.code}`,
          expression: 'ServiceRequest',
        })),
        denialReasons: [],
      };
  }
}

/** A payer refusal that trying again cannot fix becomes a finding; one worth retrying fails the step. */
function permanentPayerFinding(err: unknown, code: 'eligibility-error' | 'prior-auth-error', what: string): CoverageFinding {
  if (err instanceof PayerCallError && !err.retryable) {
    const said = err.outcome.issue.map((i) => i.diagnostics ?? i.code).join('; ');
    return { code, display: `The payer refused the ${what}: ${said}`, expression: 'ServiceRequest.insurance[0]' };
  }
  throw err;
}

/**
 * What the gateway can tell about a referral's coverage without asking the payer: the Coverage
 * against the directory (active, dates, plan, in-network site) and the denial risks.
 */
function localCoverageFindings(
  context: CoverageContext,
  now: Date,
): { check: CoverageCheckResult; problems: CoverageFinding[]; risks: CoverageFinding[] } {
  const { serviceRequest, drug, directory, site } = context;
  const check: CoverageCheckResult = checkCoverage(
    {
      coverage: context.coverage,
      patient: {
        references: serviceRequest.subject?.reference ? [serviceRequest.subject.reference] : [],
        identifiers: context.patient?.identifier ?? [],
      },
      ...(requestedPeriod(serviceRequest) ? { requestedPeriod: requestedPeriod(serviceRequest)! } : {}),
      now,
      ...(site ? { siteLocationId: site.locationId } : {}),
      ...(site?.timeZone ? { timeZone: site.timeZone } : {}),
      resolve: syncResolver(serviceRequest),
      coverageExpression: context.coverageExpression,
    },
    directory,
  );
  const problems: CoverageFinding[] = check.problems.filter((p) => p.severity === 'error');
  const risks: CoverageFinding[] = [
    ...check.problems.filter((p) => p.severity === 'warning'),
    ...assessDenialRisk({
      serviceRequest,
      drug,
      diagnoses: diagnosesOf(serviceRequest),
      supportingDocumentation: documentationPresent(serviceRequest, syncResolver(serviceRequest)),
    }),
  ];
  return { check, problems, risks };
}

/** Whether the EHR holds the referral's order (its Task on-hold for `order-on-hold`). */
function heldByOrder(task: Task): boolean {
  return (
    task.status === 'on-hold' &&
    task.statusReason?.coding?.some((c) => c.system === ORDER_CHANGE_REASON_SYSTEM && c.code === 'order-on-hold') === true
  );
}

/**
 * Eligibility and benefits (https://hl7.org/fhir/R4/coverageeligibilityrequest.html): the payer's
 * answer when it can be used and says the coverage is in force for the drug; otherwise the
 * finding that says why not (the payer refused or failed, answered with errors, or said no).
 */
async function askEligibility(
  deps: Pick<GatewayDeps, 'newId'>,
  payer: PayerFhir,
  context: CoverageContext,
  ask: { payerId: string; site: DirectorySite; coverage: Coverage; now: Date },
): Promise<
  { kind: 'answered'; eligibility: EligibilityInterpretation; requestId: string } | { kind: 'unusable'; problem: CoverageFinding }
> {
  const { serviceRequest } = context;
  const { payerId, site, now } = ask;
  const requestId = deps.newId();
  let eligibility: EligibilityInterpretation;
  try {
    const response = await payer.checkEligibility(
      buildEligibilityRequest({
        id: requestId,
        coverage: ask.coverage,
        patient: serviceRequest.subject ?? { display: 'patient' },
        insurer: { reference: `Organization/${payerId}` },
        ...(site.managingOrganizationId ? { provider: { reference: `Organization/${site.managingOrganizationId}` } } : {}),
        facility: { reference: `Location/${site.locationId}` },
        drugCodings: serviceRequest.code?.coding ?? [],
        diagnoses: diagnosesOf(serviceRequest),
        ...(requestedPeriod(serviceRequest) ? { servicedPeriod: requestedPeriod(serviceRequest)! } : {}),
        now,
      }),
    );
    eligibility = interpretEligibilityResponse(response, { drugCodings: serviceRequest.code?.coding ?? [] });
  } catch (err) {
    return { kind: 'unusable', problem: permanentPayerFinding(err, 'eligibility-error', 'eligibility request') };
  }
  if (eligibility.errors.length > 0 || eligibility.inForce === undefined) {
    const said = eligibility.errors.map((i) => i.diagnostics ?? i.code).join('; ') || 'it did not say whether the coverage is in force';
    return {
      kind: 'unusable',
      problem: {
        code: 'eligibility-error',
        display: `The payer's eligibility answer cannot be used: ${said}`,
        expression: 'ServiceRequest.insurance[0]',
      },
    };
  }
  if (!eligibility.inForce || eligibility.excluded === true) {
    const display =
      eligibility.excluded === true ? 'The payer says this drug is excluded from the plan' : 'The payer says the coverage is not in force';
    return { kind: 'unusable', problem: { code: 'eligibility-not-in-force', display, expression: 'ServiceRequest.insurance[0]' } };
  }
  return { kind: 'answered', eligibility, requestId };
}

/**
 * Runs the coverage step for a referral waiting in verifying-coverage (or, with `submit`, sends
 * the prior authorization of one held in auth-required). Does nothing for a referral in any other
 * state: a step delivered twice changes nothing the second time.
 */
export async function verifyReferralCoverage(
  deps: GatewayDeps,
  input: { tenant: TenantId; referralId: string; submit?: boolean },
): Promise<void> {
  const context = await loadContext(deps, input.tenant, input.referralId);
  const expected = input.submit ? 'auth-required' : 'verifying-coverage';
  // An order on hold (or ended) in the EHR waits: the step runs again when it resumes (follow-order-change.ts).
  if (!context || referralStatusOf(context.task) !== expected || heldByOrder(context.task) || context.task.status === 'cancelled') return;
  const now = deps.clock.now();
  const { serviceRequest, drug, site } = context;

  const { check, problems, risks } = localCoverageFindings(context, now);
  const payerId = check.plan?.payerId;
  const payer: PayerFhir | undefined = payerId !== undefined ? deps.payerFor(payerId) : undefined;
  if (problems.length === 0 && payerId !== undefined && !payer) {
    problems.push({
      code: 'payer-not-connected',
      display: `The gateway has no connection to the payer's FHIR API (${payerId}); eligibility cannot be verified`,
      expression: 'ServiceRequest.insurance[0]',
    });
  }
  if (problems.length > 0 || !payer || !payerId || !context.coverage || !site) {
    const outOfNetwork = problems.some((p) => p.code === 'out-of-network');
    const suggestions = outOfNetwork
      ? (
          await checkSiteOfReferral(deps, deps.store, input.tenant, {
            serviceRequest,
            drug,
            resolve: (r) => resolveReference(deps, input.tenant, serviceRequest, r),
          })
        ).suggestions
      : [];
    await record(deps, context, { problems, risks }, { now, suggestions });
    return;
  }

  const asked = await askEligibility(deps, payer, context, { payerId, site, coverage: context.coverage, now });
  if (asked.kind === 'unusable') {
    await record(deps, context, { problems: [asked.problem], risks }, { now });
    return;
  }
  const { eligibility, requestId: eligibilityRequestId } = asked;

  const requirement = reconcileAuthRequirement(
    priorAuthRequired(deps.priorAuthRules, { drugId: drug.id, payerOrganizationId: payerId, setting: SETTING }),
    eligibility.authRequired,
  );
  if (requirement.disagreement !== undefined)
    risks.push({ code: 'auth-requirement-disagreement', display: requirement.disagreement, expression: 'ServiceRequest.code' });
  const allowed = allowedAmountPerInfusion(deps.priorAuthRules, { drugId: drug.id, payerOrganizationId: payerId, setting: SETTING });
  const cost = allowed ? estimatePatientCost({ allowedAmount: allowed, costShare: eligibility.costShare }).perInfusion : undefined;
  const base = { risks, ...(cost ? { patientCostPerInfusion: cost } : {}) };
  // Nothing goes to the payer's PAS endpoint: the outcome rests on the eligibility answer alone.
  const recordWithoutSubmission = (authorization: { kind: 'not-required' | 'required-not-sent' }): Promise<void> =>
    record(
      deps,
      context,
      { ...base, problems: [], authorization },
      { now, evidence: { kind: 'eligibility', requestId: eligibilityRequestId } },
    );

  if (!requirement.required) {
    await recordWithoutSubmission({ kind: 'not-required' });
    return;
  }
  const denialRisks = risks.filter(
    (r) =>
      r.code === 'off-label' ||
      r.code === 'documentation-missing' ||
      r.code === 'dose-interval-too-short' ||
      r.code === 'doses-per-year-exceeded',
  );
  if (denialRisks.length > 0 && !input.submit) {
    // Warn before anything is sent: a coordinator reviews the risks, adds what is missing, then submits.
    await recordWithoutSubmission({ kind: 'required-not-sent' });
    return;
  }

  // Da Vinci PAS (https://hl7.org/fhir/us/davinci-pas/): the Claim first, to Claim/$submit.
  const claimId = `pa-${context.row.id}`;
  let decision: PriorAuthorizationDecision;
  try {
    decision = interpretClaimResponseBundle(
      await payer.submitPriorAuthorization(
        buildPriorAuthorizationBundle({
          ...claimParties(context, { bundleId: deps.newId(), claimId, now, coverage: context.coverage, site, payerId }),
          site: { reference: `Location/${site.locationId}` },
          diagnoses: diagnosesOf(serviceRequest),
          servicedPeriod: requestedPeriod(serviceRequest) ?? { start: now.toISOString().slice(0, 10) },
          quantity: serviceRequest.quantityQuantity ?? { value: 1, unit: 'infusion' },
          ...(serviceRequest.supportingInfo ? { supportingInfo: serviceRequest.supportingInfo } : {}),
        }),
      ),
    );
  } catch (err) {
    await record(
      deps,
      context,
      { ...base, problems: [permanentPayerFinding(err, 'prior-auth-error', 'prior-authorization request')] },
      { now, evidence: { kind: 'eligibility', requestId: eligibilityRequestId } },
    );
    return;
  }
  const { authorization, problems: paProblems, denialReasons } = authorizationOf(decision, claimId);
  await record(
    deps,
    context,
    { ...base, problems: paProblems, ...(authorization ? { authorization } : {}) },
    { now, evidence: { kind: 'eligibility', requestId: eligibilityRequestId }, denialReasons },
  );
}

/**
 * Follows up the pended prior authorizations (Claim/$inquire), oldest first; with
 * `payerOrganizationId`, only that payer's (after it notified the gateway without saying which
 * claim, an id-only notification). A payer that is down is tried again at the next run; the
 * referral stays auth-pending.
 */
/**
 * The minute an id-only notification may make us ask the payer about one pended request: a
 * notification flood (or a hostile payer) then costs the payer at most one `$inquire` per request
 * per clock minute, across every gateway process (the claim is a unique row in the store).
 */
export function inquiryThrottleKey(tenant: string, referralId: string, now: Date): string {
  return `payer-inquiry|${tenant}|${referralId}|${now.toISOString().slice(0, 16)}`;
}

export async function followUpPendingAuthorizations(
  deps: GatewayDeps,
  options: { limit?: number; payerOrganizationId?: string; oncePerMinute?: boolean } = {},
): Promise<{ inquired: number; decided: number; throttled: number }> {
  const rows = await deps.store.listReferralsByStatus('auth-pending', { limit: options.limit ?? 50 });
  let inquired = 0;
  let decided = 0;
  let throttled = 0;
  for (const row of rows) {
    const context = await loadContext(deps, row.tenant, row.id);
    if (!context || referralStatusOf(context.task) !== 'auth-pending' || !context.coverage || !context.site) continue;
    const claimId = pendingClaimId(context.task);
    const payerId = payerOfContext(context);
    if (options.payerOrganizationId !== undefined && payerId !== options.payerOrganizationId) continue;
    const payer = payerId !== undefined ? deps.payerFor(payerId) : undefined;
    if (!claimId || !payer || !payerId) continue;
    if (
      options.oncePerMinute &&
      !(await deps.store.claimJobRun(inquiryThrottleKey(row.tenant, row.id, deps.clock.now()), deps.clock.now()))
    ) {
      throttled += 1;
      continue;
    }
    inquired += 1;
    let decision: PriorAuthorizationDecision;
    try {
      decision = interpretClaimResponseBundle(
        await payer.inquirePriorAuthorization(
          buildInquiryBundle({
            ...claimParties(context, {
              bundleId: deps.newId(),
              claimId,
              now: deps.clock.now(),
              coverage: context.coverage,
              site: context.site,
              payerId,
            }),
            ...(requestedPeriod(context.serviceRequest) ? { servicedPeriod: requestedPeriod(context.serviceRequest)! } : {}),
          }),
        ),
      );
    } catch (err) {
      deps.logger.warn('prior-authorization inquiry failed; will ask again', {
        referralId: row.id,
        retryable: err instanceof PayerCallError ? err.retryable : undefined,
      });
      continue;
    }
    if ((await settlePendedAuthorization(deps, { tenant: row.tenant, referralId: row.id, decision })) === 'decided') decided += 1;
  }
  return { inquired, decided, throttled };
}

const pendingClaimId = (task: Task): string | undefined =>
  task.output?.find((o) => o.type.coding?.some((c) => c.system === TASK_PARAMETER_TYPE_SYSTEM && c.code === 'prior-authorization-claim'))
    ?.valueString;

const payerOfContext = (context: CoverageContext): string | undefined =>
  context.coverage ? context.directory.planForCoverage(context.coverage)?.payerOrganizationId : undefined;

/** How a payer's decision on a pended authorization ended: taken, still pended, or not for a pended referral (any more). */
export type SettleResult = 'decided' | 'pended' | 'not-pending';

/**
 * Takes the payer's decision on a referral's pended prior authorization, however it arrived: an
 * answer to `Claim/$inquire` (the follow-up job) or a ClaimResponse the payer sent in a
 * Subscription notification (receive-payer-notification.ts). One function, so both end the same
 * way: approved -> ready-to-schedule, denied -> auth-denied with an appeal Task, a payer error ->
 * coverage-problem. A referral no longer auth-pending is left alone, so a decision that arrives
 * twice (a notification and an inquiry, a notification sent again) changes nothing the second
 * time; two arriving at once are kept apart by the Task's version (If-Match), the loser changing nothing.
 */
export async function settlePendedAuthorization(
  deps: GatewayDeps,
  input: { tenant: TenantId; referralId: string; decision: PriorAuthorizationDecision },
): Promise<SettleResult> {
  const context = await loadContext(deps, input.tenant, input.referralId);
  const claimId = context ? pendingClaimId(context.task) : undefined;
  if (!context || referralStatusOf(context.task) !== 'auth-pending' || claimId === undefined) return 'not-pending';
  if (input.decision.kind === 'pended') return 'pended';
  const { authorization, problems, denialReasons } = authorizationOf(input.decision, claimId);
  try {
    await record(
      deps,
      context,
      { ...previousOutcome(context.task), problems, ...(authorization ? { authorization } : {}) },
      { now: deps.clock.now(), denialReasons },
    );
  } catch (err) {
    // Another arrival of the decision updated the Task first (412): it settled the referral.
    if (err instanceof OperationOutcomeError && err.status === 412) return 'not-pending';
    throw err;
  }
  return 'decided';
}

/**
 * Where a referral stands with its payer, for a payer that names the referral's claim: its status
 * and the payer of its Coverage, or undefined for a referral the gateway does not know.
 */
export async function referralWithPayer(
  deps: GatewayDeps,
  input: { tenant: TenantId; referralId: string },
): Promise<{ status: string | undefined; payerOrganizationId: string | undefined } | undefined> {
  const context = await loadContext(deps, input.tenant, input.referralId);
  if (!context) return undefined;
  return { status: referralStatusOf(context.task), payerOrganizationId: payerOfContext(context) };
}

/** What an earlier coverage step recorded and a follow-up keeps: the verified Coverage, risks, the estimate. */
function previousOutcome(task: Task): Pick<CoverageOutcome, 'risks' | 'verifiedCoverage' | 'patientCostPerInfusion'> {
  const ofType = (code: string) =>
    (task.output ?? []).filter((o) => o.type.coding?.some((c) => c.system === TASK_PARAMETER_TYPE_SYSTEM && c.code === code));
  const verified = ofType('verified-coverage')[0]?.valueReference;
  const cost = ofType('patient-cost-estimate')[0]?.valueMoney;
  return {
    risks: ofType('denial-risk').map((o) => ({
      code: o.valueCodeableConcept?.coding?.[0]?.code as CoverageFinding['code'],
      display: o.valueCodeableConcept?.text ?? '',
      expression: 'ServiceRequest',
    })),
    ...(verified ? { verifiedCoverage: verified } : {}),
    ...(cost ? { patientCostPerInfusion: cost } : {}),
  };
}

/**
 * Writes the step's outcome in one transaction: the verified Coverage (when eligibility confirmed
 * it), the Task, the referral's status, an appeal Task after a denial, and their write-back.
 */
async function record(
  deps: GatewayDeps,
  context: CoverageContext,
  outcome: CoverageOutcome,
  options: {
    now: Date;
    /** Present when the payer confirmed the coverage (electronically or by phone): the verified Coverage is stored. */
    evidence?: VerificationEvidence;
    suggestions?: readonly SiteSuggestion[];
    denialReasons?: CodeableConcept[];
    /** More writes that must commit with this outcome (the appeal Task that won it, say). */
    alsoWrite?: (tx: ResourceWriter) => Promise<void>;
  },
): Promise<void> {
  const { now } = options;
  const tenant = context.tenant;
  const writeBackTo = writeBackTarget(deps, tenant, context.ehr);
  const status = await deps.store.transaction(async (tx: ResourceWriter) => {
    let full: CoverageOutcome = outcome;
    let coverageReference: Reference | undefined = outcome.verifiedCoverage;
    if (options.evidence !== undefined && context.coverage && outcome.authorization) {
      const coverage = verifiedCoverage(context, { now, evidence: options.evidence, authorization: outcome.authorization });
      await tx.update(tenant, coverage, now);
      coverageReference = { reference: `Coverage/${coverage.id}` };
      full = { ...full, verifiedCoverage: coverageReference };
      if (writeBackTo) await tx.enqueue(coverageWriteBack(deps, context, coverage), now);
    }
    if (outcome.authorization?.kind === 'denied') {
      const appeal = buildAppealTask({
        taskId: deps.newId(),
        referralTaskId: context.task.id,
        patient: context.task.for ?? context.serviceRequest.subject ?? { display: 'patient' },
        denial: { reasons: options.denialReasons ?? [] },
        now,
      });
      appeal.identifier = [{ system: APPEAL_IDENTIFIER_SYSTEM, value: context.row.id }];
      const stored = await tx.create(tenant, appeal, now);
      full = { ...full, appealTask: { reference: `Task/${stored.id}` } };
      if (writeBackTo) {
        await tx.enqueue(
          appealTaskWriteBack({
            messageId: deps.newId(),
            tenant,
            referralId: context.row.id,
            appeal: stored,
            identifier: { system: APPEAL_IDENTIFIER_SYSTEM, value: context.row.id },
            ehr: writeBackTo,
          }),
          now,
        );
      }
    }
    let task = taskAfterCoverageStep(context.task, full, {
      now,
      ...(coverageReference ? { coverage: coverageReference } : {}),
      assertionId: `${context.row.id}-${now.getTime()}`,
    });
    // A payer's decision that lands while the EHR holds the order (an inquiry, a notification) is
    // recorded, and the hold stays until the order is active again (docs/order-changes.md).
    if (heldByOrder(context.task)) task = { ...task, status: 'on-hold', statusReason: context.task.statusReason! };
    if (options.suggestions && options.suggestions.length > 0) {
      // Out of network: the site check's in-network sites, for the coordinator to re-route to ($confirm-site).
      const inputs = siteCheckInputs({ decision: 'misroute-suspected', reasons: [], suggestions: [...options.suggestions] });
      task = {
        ...task,
        input: [...(task.input ?? []).filter((i) => !i.type.coding?.some((c) => c.code === 'suggested-location')), ...inputs],
      };
    }
    const saved = await tx.update(tenant, task, now, { ifMatchVersionId: context.task.meta?.versionId ?? '1' });
    await options.alsoWrite?.(tx);
    const next = coverageStatus(full);
    await tx.updateReferralStatus(tenant, context.row.id, next, now);
    if (writeBackTo)
      await tx.enqueue(taskWriteBack({ messageId: deps.newId(), tenant, referralId: context.row.id, task: saved, ehr: writeBackTo }), now);
    return next;
  });
  deps.logger.info('referral coverage step', {
    referralId: context.row.id,
    status,
    problems: outcome.problems.map((p) => p.code).join(','),
    risks: outcome.risks.map((r) => r.code).join(','),
  });
}

/** The states in which a coordinator may record what the payer said on the phone. */
const PHONE_VERIFIABLE = new Set(['verifying-coverage', 'coverage-problem', 'auth-required', 'auth-pending']);

/**
 * A coordinator verified the coverage by phone (`POST /fhir/Task/{id}/$record-verification`): a
 * deployment without a connection to this payer clears its referrals this way. The same path as
 * the electronic step: the gateway's own checks of the Coverage (plan, dates, in-network site)
 * still block, the denial risks are kept, and the outcome is recorded by the same function
 * (verified Coverage, Task, status, appeal Task, write-back), with the call's provenance on the
 * verified Coverage and as a Task note.
 */
export async function recordPhoneVerification(
  deps: GatewayDeps,
  input: { tenant: TenantId; taskId: string; verification: PhoneVerification },
): Promise<{ kind: 'recorded'; task: Task & { id: string } } | Refusal> {
  const found = await deps.store.read<Task>([input.tenant], 'Task', input.taskId);
  if (!found?.id) return { kind: 'refused', outcome: notFound('Task', input.taskId) };
  const referralId = referralIdOf(found);
  const context = referralId !== undefined ? await loadContext(deps, input.tenant, referralId) : undefined;
  const status = context ? referralStatusOf(context.task) : undefined;
  if (!context || !PHONE_VERIFIABLE.has(status ?? '')) {
    return {
      kind: 'refused',
      outcome: conflict(
        `The referral is ${status ?? 'not a referral'}; a verification is recorded only while coverage is open (${[...PHONE_VERIFIABLE].join(', ')})`,
        'Task.businessStatus',
      ),
    };
  }
  const now = deps.clock.now();
  const { problems, risks } = localCoverageFindings(context, now);
  const said = phoneVerificationResult(input.verification);
  const withNote: CoverageContext = {
    ...context,
    task: { ...context.task, note: [...(context.task.note ?? []), phoneVerificationNote(input.verification)] },
  };
  await record(
    deps,
    withNote,
    { problems: [...problems, ...said.problems], risks, ...(said.authorization ? { authorization: said.authorization } : {}) },
    {
      now,
      ...(problems.length === 0 && said.authorization ? { evidence: { kind: 'phone' as const, verification: input.verification } } : {}),
    },
  );
  const task = await deps.store.read<Task>([input.tenant], 'Task', found.id);
  return { kind: 'recorded', task: task as Task & { id: string } };
}

const referralIdOf = (task: Task): string | undefined => task.identifier?.find((i) => i.system === REFERRAL_IDENTIFIER_SYSTEM)?.value;

/**
 * A coordinator asks to send the prior authorization of a referral held in auth-required (after
 * reviewing the denial risks, adding documentation): the submission is queued as a step.
 */
export async function requestPriorAuthSubmission(
  deps: Pick<GatewayDeps, 'clock' | 'newId' | 'store'>,
  input: { tenant: TenantId; taskId: string },
): Promise<{ kind: 'queued'; task: Task & { id: string } } | Refusal> {
  const task = await deps.store.read<Task>([input.tenant], 'Task', input.taskId);
  if (!task?.id) return { kind: 'refused', outcome: notFound('Task', input.taskId) };
  const referralId = referralIdOf(task);
  if (referralStatusOf(task) !== 'auth-required' || referralId === undefined) {
    return {
      kind: 'refused',
      outcome: conflict(
        `The referral is ${referralStatusOf(task) ?? 'not a referral'}; only one held in auth-required waits for its prior authorization to be sent`,
        'Task.businessStatus',
      ),
    };
  }
  await deps.store.transaction(async (tx) => {
    await tx.enqueue(referralStep(SUBMIT_PRIOR_AUTH_STEP, { messageId: deps.newId(), tenant: input.tenant, referralId }), deps.clock.now());
  });
  return { kind: 'queued', task: task as Task & { id: string } };
}

/**
 * An appeal was won (field note 003: "USD 250 copay after an approved appeal"): the referral denied
 * authorization moves on with the authorization the appeal obtained, in the same transaction as
 * the appeal Task's completion (`alsoWrite`).
 */
export async function approveAfterAppeal(
  deps: GatewayDeps,
  input: {
    tenant: TenantId;
    referralTaskId: string;
    authorizationNumber: string;
    period?: Period;
    alsoWrite: (tx: ResourceWriter) => Promise<void>;
  },
): Promise<{ kind: 'moved-on' } | Refusal> {
  const referralTask = await deps.store.read<Task>([input.tenant], 'Task', input.referralTaskId);
  const referralId = referralTask ? referralIdOf(referralTask) : undefined;
  const context = referralId !== undefined ? await loadContext(deps, input.tenant, referralId) : undefined;
  if (!context || referralStatusOf(context.task) !== 'auth-denied') {
    return {
      kind: 'refused',
      outcome: conflict('The appeal is part of a referral that is not waiting on a denied authorization', 'Task.partOf'),
    };
  }
  await record(
    deps,
    context,
    {
      ...previousOutcome(context.task),
      problems: [],
      authorization: {
        kind: 'approved',
        authorizationNumber: input.authorizationNumber,
        ...(input.period ? { period: input.period } : {}),
      },
    },
    { now: deps.clock.now(), alsoWrite: input.alsoWrite },
  );
  return { kind: 'moved-on' };
}
