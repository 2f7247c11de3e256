/**
 * The drug catalog: which infused drugs a deployment takes referrals for, and the numbers that
 * scheduling (chair minutes, pharmacy lead time, intervals) and coverage checks (on-label
 * diagnoses, documentation, frequency limits) need.
 *
 * The catalog is data the deployment owns (docs/domain.md, "Codes worth knowing"): this module only
 * parses, validates and queries it. It does no I/O: reading fixtures/drug-catalog.json (or the
 * file a deployment names) is the caller's job, so the same rules run in tests and at start-up.
 * Its JSON Schema is profiles/drug-catalog.schema.json; the rules a schema cannot express are
 * checked here, and every problem is reported at once, each with a path such as
 * `drugs[2].chairMinutes.firstDose`.
 */
import type { Coding, OperationOutcomeIssue } from 'fhir/r4.js';
import { errorIssue } from '../../fhir/outcomes.js';
import { schemaIssues } from './json-document-issues.js';
import { documentSchemaValidators } from '../../fhir/validation/document-schemas.js';

export const RXNORM_SYSTEM = 'http://www.nlm.nih.gov/research/umls/rxnorm';
export const HCPCS_SYSTEM = 'http://www.cms.gov/Medicare/Coding/HCPCSReleaseCodeSets';

/** Field note 001: every dose is compounded for its appointment the day before. */
export const DEFAULT_PHARMACY_LEAD_TIME_BUSINESS_DAYS = 1;

export type CatalogCodingSystem = typeof RXNORM_SYSTEM | typeof HCPCS_SYSTEM;

export interface CatalogCoding {
  system: CatalogCodingSystem;
  code: string;
  display: string;
}

/** Minutes for the first dose of a series and for each maintenance dose. */
export interface DoseMinutes {
  firstDose: number;
  maintenance: number;
}

/** An ICD-10-CM code or prefix ("K50", "G61.81"); a diagnosis matches when it starts with it. */
export interface CatalogDiagnosis {
  code: string;
  display: string;
}

export interface DocumentationRequirement {
  code: string;
  description: string;
}

export interface DoseLimits {
  minDaysBetweenDoses: number;
  maxDosesPer365Days: number;
}

export interface CatalogDrug {
  id: string;
  name: string;
  brandNames: string[];
  codings: CatalogCoding[];
  /** Total chair time to book: preparation, infusion and observation. */
  chairMinutes: DoseMinutes;
  /** The post-infusion observation part of chairMinutes. */
  observationMinutes: DoseMinutes;
  /** Always set after parsing: the drug's own value, else the catalog default, else 1. */
  pharmacyLeadTimeBusinessDays: number;
  typicalIntervalWeeks: number;
  /** Weeks of the induction doses from week 0, when the drug has an induction schedule. */
  inductionDoseWeeks?: number[];
  onLabelDiagnoses: CatalogDiagnosis[];
  documentationRequirements: DocumentationRequirement[];
  limits: DoseLimits;
  notes?: string;
}

export interface DrugCatalog {
  version: string;
  publisher?: string;
  drugs: CatalogDrug[];
}

export interface ParsedDrugCatalog {
  /** Present only when there is no issue of severity error. */
  catalog?: DrugCatalog;
  issues: OperationOutcomeIssue[];
}

/** The catalog file as the schema describes it, before defaults are applied. */
interface RawDrugCatalog {
  version: string;
  publisher?: string;
  defaults?: { pharmacyLeadTimeBusinessDays?: number };
  drugs: Array<Omit<CatalogDrug, 'pharmacyLeadTimeBusinessDays'> & { pharmacyLeadTimeBusinessDays?: number }>;
}

/**
 * Validates a parsed JSON value as a drug catalog: the JSON Schema first, then the rules across
 * entries (unique ids, each code on one drug only, a first dose at least as long as maintenance,
 * observation within chair time, induction weeks from 0 upwards). Returns every issue found.
 */
export function parseDrugCatalog(json: unknown): ParsedDrugCatalog {
  const validate = documentSchemaValidators.drugCatalog;
  const schemaValid = validate(json);
  const issues: OperationOutcomeIssue[] = [...schemaIssues(validate.errors ?? [], 'drug catalog'), ...semanticIssues(json)];
  if (!schemaValid || issues.some((i) => i.severity === 'error' || i.severity === 'fatal')) {
    return { issues };
  }
  return { catalog: withDefaults(json as RawDrugCatalog), issues };
}

/**
 * The catalog drug that any of the given codings names (exact system and code, RxNorm or HCPCS).
 * Codings are tried in order, so the sender's first recognised coding decides.
 */
export function findDrugByCodings(catalog: DrugCatalog, codings: readonly Coding[]): CatalogDrug | undefined {
  for (const coding of codings) {
    if (coding.system !== RXNORM_SYSTEM && coding.system !== HCPCS_SYSTEM) continue;
    if (coding.code === undefined) continue;
    const drug = catalog.drugs.find((d) => d.codings.some((c) => c.system === coding.system && c.code === coding.code));
    if (drug) return drug;
  }
  return undefined;
}

export function findDrugById(catalog: DrugCatalog, id: string): CatalogDrug | undefined {
  return catalog.drugs.find((d) => d.id === id);
}

/**
 * Whether an ICD-10-CM diagnosis is among the drug's approved indications: the code, without its
 * dot and in upper case, starts with one of the drug's on-label prefixes ("G61.81" matches
 * "G61.81" and "G6181", but "G61.8" does not). Field note 003: off-label use is a common denial reason.
 */
export function isOnLabel(drug: CatalogDrug, icd10Code: string): boolean {
  const code = normalizeIcd10(icd10Code);
  if (code === '') return false;
  return drug.onLabelDiagnoses.some((d) => {
    const prefix = normalizeIcd10(d.code);
    return prefix !== '' && code.startsWith(prefix);
  });
}

function normalizeIcd10(code: string): string {
  return code.trim().toUpperCase().replace(/\./g, '');
}

function withDefaults(raw: RawDrugCatalog): DrugCatalog {
  const leadTime = raw.defaults?.pharmacyLeadTimeBusinessDays ?? DEFAULT_PHARMACY_LEAD_TIME_BUSINESS_DAYS;
  const catalog: DrugCatalog = {
    version: raw.version,
    drugs: raw.drugs.map((d) => ({ ...d, pharmacyLeadTimeBusinessDays: d.pharmacyLeadTimeBusinessDays ?? leadTime })),
  };
  if (raw.publisher !== undefined) catalog.publisher = raw.publisher;
  return catalog;
}

// ---------------------------------------------------------------------------------------------
// Rules across entries. They read the raw value defensively, so that a catalog with schema errors
// still gets every other problem reported in the same pass.

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function semanticIssues(json: unknown): OperationOutcomeIssue[] {
  if (!isRecord(json) || !Array.isArray(json['drugs'])) return [];
  const drugs: unknown[] = json['drugs'];
  const issues: OperationOutcomeIssue[] = [];
  const firstIdAt = new Map<string, number>();
  const firstCodingAt = new Map<string, string>();

  drugs.forEach((drug, i) => {
    if (!isRecord(drug)) return;
    const at = `drugs[${i}]`;

    const id = drug['id'];
    if (typeof id === 'string') {
      const first = firstIdAt.get(id);
      if (first === undefined) firstIdAt.set(id, i);
      else issues.push(errorIssue('duplicate', `${at}.id '${id}' is already used by drugs[${first}]`, `${at}.id`));
    }

    const codings = drug['codings'];
    if (Array.isArray(codings)) {
      codings.forEach((coding: unknown, k) => {
        if (!isRecord(coding) || typeof coding['system'] !== 'string' || typeof coding['code'] !== 'string') return;
        const key = `${coding['system']}|${coding['code']}`;
        const here = `${at}.codings[${k}]`;
        const first = firstCodingAt.get(key);
        if (first === undefined) firstCodingAt.set(key, here);
        else issues.push(errorIssue('duplicate', `${here} ${key} is already listed at ${first}; a code may name one drug only`, here));
      });
    }

    const chair = doseMinutesOf(drug['chairMinutes']);
    if (chair && chair.firstDose < chair.maintenance) {
      issues.push(
        errorIssue(
          'invariant',
          `${at}.chairMinutes.firstDose (${chair.firstDose}) is shorter than maintenance (${chair.maintenance}); a first dose is never booked shorter`,
          `${at}.chairMinutes.firstDose`,
        ),
      );
    }
    const observation = doseMinutesOf(drug['observationMinutes']);
    if (chair && observation) {
      for (const dose of ['firstDose', 'maintenance'] as const) {
        if (observation[dose] > chair[dose]) {
          issues.push(
            errorIssue(
              'invariant',
              `${at}.observationMinutes.${dose} (${observation[dose]}) exceeds chairMinutes.${dose} (${chair[dose]}), which includes it`,
              `${at}.observationMinutes.${dose}`,
            ),
          );
        }
      }
    }

    const weeks = drug['inductionDoseWeeks'];
    if (Array.isArray(weeks) && weeks.every((w): w is number => typeof w === 'number')) {
      const ordered = weeks.every((w, n) => (n === 0 ? w === 0 : w > (weeks[n - 1] as number)));
      if (!ordered) {
        issues.push(errorIssue('invariant', `${at}.inductionDoseWeeks must start at week 0 and increase`, `${at}.inductionDoseWeeks`));
      }
    }
  });
  return issues;
}

function doseMinutesOf(value: unknown): DoseMinutes | undefined {
  if (!isRecord(value)) return undefined;
  const { firstDose, maintenance } = value;
  if (typeof firstDose !== 'number' || typeof maintenance !== 'number') return undefined;
  return { firstDose, maintenance };
}
