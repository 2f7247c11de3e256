/**
 * What the coverage step concluded, and how that is written on the referral's Task: the next
 * business status, coded issues and risks as outputs, the verified Coverage, the authorization,
 * the patient's estimate, and the decision in the manner of the Da Vinci CRD coverage-information
 * extension (https://hl7.org/fhir/us/davinci-crd/StructureDefinition-ext-coverage-information.html).
 *
 * The rule this module keeps: `ready-to-schedule` only with coverage verified (eligibility in force,
 * no blocking problem) and, where authorization is required, an approved one.
 */
import type { Extension, Money, Period, Reference, Task, TaskOutput } from 'fhir/r4.js';
import { COVERAGE_ISSUE_SYSTEM, type CoverageIssueCode } from './coverage-check.js';
import {
  GATEWAY_CANONICAL_BASE,
  TASK_PARAMETER_TYPE_SYSTEM,
  type ReferralStatus,
  taskStatusFields,
} from '../../referral/rules/referral-status.js';

/** The identifier and extension the coverage step writes on what it stores (docs/domain.md). */
export const VERIFIED_COVERAGE_IDENTIFIER_SYSTEM = `${GATEWAY_CANONICAL_BASE}/verified-coverage-id`;
/** The id of the Coverage the gateway stores for a referral it verified: `verified-<referralId>`. */
export const VERIFIED_COVERAGE_ID_PREFIX = 'verified-';
export const COVERAGE_VERIFICATION_EXTENSION_URL = `${GATEWAY_CANONICAL_BASE}/StructureDefinition/coverage-verification`;

export const CRD_COVERAGE_INFORMATION_URL = 'http://hl7.org/fhir/us/davinci-crd/StructureDefinition/ext-coverage-information';

export interface CoverageFinding {
  code: CoverageIssueCode;
  display: string;
  expression: string;
}

export type Authorization =
  | { kind: 'not-required' }
  | { kind: 'required-not-sent' }
  | { kind: 'pending'; claimIdentifier: string }
  | { kind: 'approved'; authorizationNumber: string; period?: Period }
  | { kind: 'denied'; claimIdentifier?: string };

export interface CoverageOutcome {
  /** Problems that keep the referral from going on (empty when coverage is verified). */
  problems: readonly CoverageFinding[];
  /** Warnings: denial risks and notes (never block by themselves). */
  risks: readonly CoverageFinding[];
  /** The verified Coverage stored by the gateway; absent while coverage is not verified. */
  verifiedCoverage?: Reference;
  authorization?: Authorization;
  patientCostPerInfusion?: Money;
  /** The appeal Task opened after a denial. */
  appealTask?: Reference;
}

/** The business status that follows from the outcome; the only way into ready-to-schedule. */
export function coverageStatus(
  outcome: CoverageOutcome,
): Extract<ReferralStatus, 'coverage-problem' | 'auth-required' | 'auth-pending' | 'auth-denied' | 'ready-to-schedule'> {
  if (outcome.problems.length > 0 || outcome.verifiedCoverage === undefined || outcome.authorization === undefined)
    return 'coverage-problem';
  switch (outcome.authorization.kind) {
    case 'not-required':
    case 'approved':
      return 'ready-to-schedule';
    case 'pending':
      return 'auth-pending';
    case 'denied':
      return 'auth-denied';
    case 'required-not-sent':
      return 'auth-required';
  }
}

const parameterType = (code: string, display: string): TaskOutput['type'] => ({
  coding: [{ system: TASK_PARAMETER_TYPE_SYSTEM, code, display }],
});

/** Outputs this module writes; replaced as a whole on each step so a Task never shows stale findings. */
const COVERAGE_OUTPUT_TYPES = new Set([
  'coverage-issue',
  'denial-risk',
  'verified-coverage',
  'authorization-number',
  'authorization-period',
  'patient-cost-estimate',
  'prior-authorization-claim',
  'appeal',
]);

function isCoverageOutput(output: TaskOutput): boolean {
  return output.type.coding?.some((c) => c.system === TASK_PARAMETER_TYPE_SYSTEM && COVERAGE_OUTPUT_TYPES.has(c.code ?? '')) === true;
}

/**
 * The Task without what the coverage step found (outputs and the CRD coverage-information
 * extension): for an order whose drug, dose, period, insurance or diagnosis changed, whose earlier
 * coverage findings and authorization no longer apply (docs/order-changes.md).
 */
export function withoutCoverageFindings<T extends Task>(task: T): T {
  const { output, extension, ...rest } = task;
  const outputs = (output ?? []).filter((o) => !isCoverageOutput(o));
  const extensions = (extension ?? []).filter((e) => e.url !== CRD_COVERAGE_INFORMATION_URL);
  return { ...rest, ...(outputs.length > 0 ? { output: outputs } : {}), ...(extensions.length > 0 ? { extension: extensions } : {}) } as T;
}

function findingOutput(type: 'coverage-issue' | 'denial-risk', finding: CoverageFinding): TaskOutput {
  return {
    type: parameterType(type, type === 'coverage-issue' ? 'Coverage issue' : 'Denial risk'),
    valueCodeableConcept: { coding: [{ system: COVERAGE_ISSUE_SYSTEM, code: finding.code }], text: finding.display },
  };
}

/** The CRD coverage-information extension: covered, pa-needed, doc-needed and the authorization number. */
export function coverageInformation(
  outcome: CoverageOutcome,
  input: { coverage: Reference; assertionId: string; date: string },
): Extension {
  const status = coverageStatus(outcome);
  const covered =
    status === 'coverage-problem'
      ? 'not-covered'
      : status === 'auth-denied'
        ? 'not-covered'
        : status === 'ready-to-schedule'
          ? 'covered'
          : 'conditional';
  const authorization = outcome.authorization;
  const paNeeded =
    authorization?.kind === 'not-required'
      ? 'no-auth'
      : authorization?.kind === 'approved'
        ? 'satisfied'
        : authorization === undefined
          ? 'conditional'
          : 'auth-needed';
  const parts: Extension[] = [
    { url: 'coverage', valueReference: input.coverage },
    { url: 'covered', valueCode: covered },
    { url: 'pa-needed', valueCode: paNeeded },
  ];
  if (outcome.risks.some((r) => r.code === 'documentation-missing')) parts.push({ url: 'doc-needed', valueCode: 'clinical' });
  if (authorization?.kind === 'approved') parts.push({ url: 'satisfied-pa-id', valueString: authorization.authorizationNumber });
  for (const finding of [...outcome.problems, ...outcome.risks]) {
    parts.push({
      url: 'reason',
      valueCodeableConcept: { coding: [{ system: COVERAGE_ISSUE_SYSTEM, code: finding.code }], text: finding.display },
    });
  }
  parts.push({ url: 'date', valueDate: input.date.slice(0, 10) }, { url: 'coverage-assertion-id', valueString: input.assertionId });
  return { url: CRD_COVERAGE_INFORMATION_URL, extension: parts };
}

/** The referral's Task after the coverage step (or a follow-up: inquiry, appeal). */
export function taskAfterCoverageStep(
  task: Task & { id: string },
  outcome: CoverageOutcome,
  input: { now: Date; coverage?: Reference; assertionId: string },
): Task & { id: string } {
  const status = coverageStatus(outcome);
  const at = input.now.toISOString();
  const outputs: TaskOutput[] = [
    ...(task.output ?? []).filter((o) => !isCoverageOutput(o)),
    ...outcome.problems.map((p) => findingOutput('coverage-issue', p)),
    ...outcome.risks.map((r) => findingOutput('denial-risk', r)),
  ];
  if (outcome.verifiedCoverage)
    outputs.push({ type: parameterType('verified-coverage', 'Verified coverage'), valueReference: outcome.verifiedCoverage });
  const authorization = outcome.authorization;
  if (authorization?.kind === 'approved') {
    outputs.push({ type: parameterType('authorization-number', 'Authorization number'), valueString: authorization.authorizationNumber });
    if (authorization.period)
      outputs.push({ type: parameterType('authorization-period', 'Authorization period'), valuePeriod: authorization.period });
  }
  if ((authorization?.kind === 'pending' || authorization?.kind === 'denied') && authorization.claimIdentifier !== undefined) {
    outputs.push({
      type: parameterType('prior-authorization-claim', 'Prior-authorization request'),
      valueString: authorization.claimIdentifier,
    });
  }
  if (outcome.patientCostPerInfusion)
    outputs.push({ type: parameterType('patient-cost-estimate', 'Patient cost estimate'), valueMoney: outcome.patientCostPerInfusion });
  if (outcome.appealTask) outputs.push({ type: parameterType('appeal', 'Appeal'), valueReference: outcome.appealTask });

  const { statusReason: _previous, ...rest } = task;
  const next: Task & { id: string } = {
    ...rest,
    ...taskStatusFields(status),
    lastModified: at,
    extension: [
      ...(task.extension ?? []).filter((e) => e.url !== CRD_COVERAGE_INFORMATION_URL),
      ...(input.coverage ? [coverageInformation(outcome, { coverage: input.coverage, assertionId: input.assertionId, date: at })] : []),
    ],
    ...(outputs.length > 0 ? { output: outputs } : {}),
  };
  if (next.extension?.length === 0) delete next.extension;
  if (status !== 'ready-to-schedule') {
    const first = outcome.problems[0] ?? (status === 'auth-required' ? outcome.risks[0] : undefined);
    if (first)
      next.statusReason = {
        coding: [{ system: COVERAGE_ISSUE_SYSTEM, code: first.code }],
        text: [...outcome.problems, ...(status === 'auth-required' ? outcome.risks : [])].map((f) => f.display).join('; '),
      };
  }
  return next;
}
