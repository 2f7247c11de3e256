/**
 * The deployment's prior-authorization rules: for a drug, a payer and a setting, whether prior
 * authorization is required, and what the payer allows per infusion (for the patient-cost
 * estimate). Field note 001: high-cost infusions need the payer's authorization before the service, or
 * the claim is denied and the patient owes the full cost; field note 002: plans differ by drug and
 * setting (infusion center, hospital outpatient, home).
 *
 * The payer's own answer (CoverageEligibilityResponse.insurance.item.authorizationRequired,
 * https://hl7.org/fhir/R4/coverageeligibilityresponse-definitions.html#CoverageEligibilityResponse.insurance.item.authorizationRequired)
 * wins when it gives one; these rules fill in when it does not, and a disagreement is reported so
 * that the deployment fixes its rules.
 *
 * Like src/directory/rules/drug-catalog.ts, this module does no I/O: it validates a parsed JSON value
 * against profiles/prior-auth-rules.schema.json (compiled at install: src/fhir/validation/document-schemas.ts),
 * then the rules across entries, and reports every
 * problem at once with a path such as `rules[3].setting`.
 */
import type { Money, OperationOutcomeIssue } from 'fhir/r4.js';
import { errorIssue, warningIssue } from '../../fhir/outcomes.js';
import { coverageIssueConcept } from './coverage-check.js';
import { schemaIssues } from '../../directory/rules/json-document-issues.js';
import { documentSchemaValidators } from '../../fhir/validation/document-schemas.js';

export const CARE_SETTINGS = ['infusion-center', 'hospital-outpatient', 'home'] as const;
export type CareSetting = (typeof CARE_SETTINGS)[number];

export interface PriorAuthRule {
  drugId: string;
  /** Absent: any payer. */
  payerOrganizationId?: string;
  /** Absent: any setting. */
  setting?: CareSetting;
  priorAuthRequired?: boolean;
  allowedAmountPerInfusion?: { value: number; currency: string };
  note?: string;
}

export interface PriorAuthRules {
  version: string;
  publisher?: string;
  defaults: { priorAuthRequired: boolean };
  rules: PriorAuthRule[];
}

export interface ParsedPriorAuthRules {
  /** Present only when there is no issue of severity error. */
  rules?: PriorAuthRules;
  issues: OperationOutcomeIssue[];
}

/** What the rules are checked against: the catalog's drug ids and the directory's payer ids. */
export interface KnownIds {
  drugIds?: Iterable<string>;
  payerOrganizationIds?: Iterable<string>;
}

export interface PriorAuthQuery {
  drugId: string;
  payerOrganizationId: string;
  setting: CareSetting;
}

export interface PriorAuthDecision {
  required: boolean;
  /** `rule`: a rule of the deployment matched; `default`: none did, defaults.priorAuthRequired. */
  source: 'rule' | 'default';
}

export interface ReconciledAuthRequirement {
  required: boolean;
  /** Who decided: the payer when it said, else the rules (or their default). */
  source: 'payer' | 'rule' | 'default';
  /** Set when the payer and the rules disagree; the payer's answer is the one followed. */
  disagreement?: string;
  /** The disagreement as a warning for the Task, coded auth-requirement-disagreement. */
  warning?: OperationOutcomeIssue;
}

/**
 * Validates a parsed JSON value as prior-authorization rules: the JSON Schema, then the rules
 * across entries (one rule per drug, payer and setting; drugs and payers that exist, when `known`
 * lists them). Returns every issue found.
 */
export function parsePriorAuthRules(json: unknown, known: KnownIds = {}): ParsedPriorAuthRules {
  const validate = documentSchemaValidators.priorAuthRules;
  const schemaValid = validate(json);
  const issues = [
    ...schemaIssues(validate.errors ?? [], 'prior-authorization rules', {
      anyOfMessage: 'must say priorAuthRequired, allowedAmountPerInfusion or both',
    }),
    ...semanticIssues(json, known),
  ];
  if (!schemaValid || issues.some((i) => i.severity === 'error' || i.severity === 'fatal')) return { issues };
  const raw = json as PriorAuthRules & { $schema?: string };
  const rules: PriorAuthRules = { version: raw.version, defaults: { ...raw.defaults }, rules: raw.rules.map((r) => ({ ...r })) };
  if (raw.publisher !== undefined) rules.publisher = raw.publisher;
  return { rules, issues };
}

/**
 * Whether the deployment's rules require prior authorization for this drug, payer and setting:
 * the most specific matching rule that says (payer and setting named, then payer only, then
 * setting only, then the drug alone), else the default.
 */
export function priorAuthRequired(rules: PriorAuthRules, query: PriorAuthQuery): PriorAuthDecision {
  const rule = mostSpecific(rules, query, (r) => r.priorAuthRequired !== undefined);
  return rule
    ? { required: rule.priorAuthRequired as boolean, source: 'rule' }
    : { required: rules.defaults.priorAuthRequired, source: 'default' };
}

/** What the payer allows per infusion in this setting, from the most specific rule that gives it. */
export function allowedAmountPerInfusion(rules: PriorAuthRules, query: PriorAuthQuery): Money | undefined {
  const amount = mostSpecific(rules, query, (r) => r.allowedAmountPerInfusion !== undefined)?.allowedAmountPerInfusion;
  return amount ? { value: amount.value, currency: amount.currency } : undefined;
}

/**
 * The requirement to act on: the payer's when it says (it decides the claim), else the rules'.
 * When both say and differ, the disagreement is reported as a warning so the rules get fixed.
 */
export function reconcileAuthRequirement(ruleSays: PriorAuthDecision, payerSays: boolean | undefined): ReconciledAuthRequirement {
  if (payerSays === undefined) return { required: ruleSays.required, source: ruleSays.source };
  if (payerSays === ruleSays.required) return { required: payerSays, source: 'payer' };
  const ours =
    ruleSays.source === 'rule'
      ? "the deployment's prior-authorization rule"
      : 'the default of the prior-authorization rules (no rule matched)';
  const said = (required: boolean): string => (required ? 'required' : 'not required');
  const disagreement = `The payer says prior authorization is ${said(payerSays)}; ${ours} says ${said(ruleSays.required)}. The payer's answer is followed.`;
  return {
    required: payerSays,
    source: 'payer',
    disagreement,
    warning: {
      ...warningIssue('business-rule', disagreement, 'CoverageEligibilityResponse.insurance.item.authorizationRequired'),
      details: coverageIssueConcept('auth-requirement-disagreement', 'Prior-authorization rule disagrees with the payer'),
    },
  };
}

function mostSpecific(rules: PriorAuthRules, query: PriorAuthQuery, carries: (rule: PriorAuthRule) => boolean): PriorAuthRule | undefined {
  let best: PriorAuthRule | undefined;
  let bestScore = -1;
  for (const rule of rules.rules) {
    if (rule.drugId !== query.drugId || !carries(rule)) continue;
    if (rule.payerOrganizationId !== undefined && rule.payerOrganizationId !== query.payerOrganizationId) continue;
    if (rule.setting !== undefined && rule.setting !== query.setting) continue;
    // A payer's own policy is more specific than a setting-wide one (field note 003: insurer-specific protocols).
    const score = (rule.payerOrganizationId !== undefined ? 2 : 0) + (rule.setting !== undefined ? 1 : 0);
    if (score > bestScore) {
      best = rule;
      bestScore = score;
    }
  }
  return best;
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function semanticIssues(json: unknown, known: KnownIds): OperationOutcomeIssue[] {
  if (!isRecord(json) || !Array.isArray(json['rules'])) return [];
  const drugIds = known.drugIds ? new Set(known.drugIds) : undefined;
  const payerIds = known.payerOrganizationIds ? new Set(known.payerOrganizationIds) : undefined;
  const issues: OperationOutcomeIssue[] = [];
  const firstAt = new Map<string, number>();
  json['rules'].forEach((rule: unknown, i) => {
    if (!isRecord(rule)) return;
    const at = `rules[${i}]`;
    const { drugId, payerOrganizationId, setting } = rule;
    if (typeof drugId === 'string' && drugIds && !drugIds.has(drugId)) {
      issues.push(errorIssue('value', `${at}.drugId '${drugId}' is not a drug of the catalog`, `${at}.drugId`));
    }
    if (typeof payerOrganizationId === 'string' && payerIds && !payerIds.has(payerOrganizationId)) {
      issues.push(
        errorIssue(
          'value',
          `${at}.payerOrganizationId '${payerOrganizationId}' is not a payer of the directory`,
          `${at}.payerOrganizationId`,
        ),
      );
    }
    // Two rules for the same key would make the answer depend on their order in the file.
    const key = `${String(drugId)}|${typeof payerOrganizationId === 'string' ? payerOrganizationId : '*'}|${typeof setting === 'string' ? setting : '*'}`;
    const first = firstAt.get(key);
    if (first === undefined) firstAt.set(key, i);
    else issues.push(errorIssue('duplicate', `${at} has the same drug, payer and setting as rules[${first}]; merge them`, at));
  });
  return issues;
}
