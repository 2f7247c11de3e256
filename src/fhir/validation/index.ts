/**
 * FHIR R4 validation for the gateway: base R4 structure and required bindings (ajv standalone
 * validators generated from the official JSON schema) and the profiles published in profiles/
 * (differential rules and FHIRPath invariants). Issues follow one convention (docs/architecture.md, habit 5): every
 * issue has a FHIRPath expression, all issues are collected, none repeats another.
 *
 *   const validator = await FhirValidator.load({ profilesDir: 'profiles' });
 *   const base = validator.validateBase(body);                       // 400 if it has errors
 *   const profile = validator.validateProfiles(serviceRequest, [REFERRAL_PROFILE_URL]); // 422
 *   const all = validator.validate(body, { profiles: requested });    // $validate
 *
 * https://hl7.org/fhir/R4/validation.html
 */
import { readFile } from 'node:fs/promises';
import type { CodeSystem, OperationOutcomeIssue, Resource, StructureDefinition, ValueSet } from 'fhir/r4.js';
import { errorIssue, issue } from '../outcomes.js';
import type { ValueSetCodes } from './ajv-issues.js';
import { BaseValidator } from './base-validator.js';
import { isJsonObject } from './element-paths.js';
import { DEFAULT_GENERATED_FILE, loadGeneratedValidators, REQUIRED_BINDINGS_FILE } from './generated-validators.js';
import { InvariantChecker, type InvariantCounts } from './invariants.js';
import { loadProfileSet, type ProfileSet } from './profile-set.js';

export interface FhirValidatorOptions {
  /** Directory of StructureDefinition, CodeSystem and ValueSet JSON files (profiles/). */
  profilesDir: string;
  /** The generated validator module; defaults to generated/fhir-validators.mjs in the project. */
  generatedFile?: string;
  /** The vetted base R4 invariants; defaults to generated/r4-invariants.json. */
  invariantsFile?: string;
  /**
   * Evaluate the base R4 invariants, Bundle-independent rules and calendar dates (default true).
   * Off only for bench/validation.ts, which measures what they cost.
   */
  baseInvariants?: boolean;
}

export interface ValidateProfilesOptions {
  /**
   * Severity of the issue for a profile this server does not know. `error` (the default) for
   * profiles a client asks for; `warning` suits profiles a resource merely claims in meta.profile
   * (e.g. US Core), which the server is free not to check.
   */
  unknownProfile?: 'error' | 'warning';
}

export class FhirValidator {
  readonly #base: BaseValidator;
  readonly #profiles: ProfileSet;
  readonly #resourceTypes: readonly string[];
  readonly #invariantCounts: InvariantCounts;

  private constructor(base: BaseValidator, profiles: ProfileSet, resourceTypes: readonly string[], invariantCounts: InvariantCounts) {
    this.#invariantCounts = invariantCounts;
    this.#base = base;
    this.#profiles = profiles;
    this.#resourceTypes = resourceTypes;
  }

  /**
   * Loads the generated validators and the profiles. Fails with a message that says what to do
   * when generated/ is missing (run `npm install`) or a profile is malformed.
   */
  static async load(options: FhirValidatorOptions): Promise<FhirValidator> {
    const generated = await loadGeneratedValidators(options.generatedFile ?? DEFAULT_GENERATED_FILE, REQUIRED_BINDINGS_FILE);
    const bindings = JSON.parse(await readFile(REQUIRED_BINDINGS_FILE, 'utf8')) as { valueSets: ValueSetCodes };
    const invariants = InvariantChecker.load(options.invariantsFile);
    const base = new BaseValidator(generated, bindings.valueSets, options.baseInvariants === false ? undefined : invariants);
    const profiles = await loadProfileSet(options.profilesDir, base);
    return new FhirValidator(base, profiles, generated.resourceTypes, invariants.counts);
  }

  /** Base R4: structure, primitive formats, required bindings on codes; nested resources too. */
  validateBase(resource: unknown): OperationOutcomeIssue[] {
    return this.#base.validate(resource);
  }

  /**
   * Conformance to the given profiles (canonical URLs, `|version` ignored). Assumes the resource
   * passed validateBase; expressions start at its type (`ServiceRequest.requester`), so inside a
   * Bundle use prefixIssues from ../outcomes.js.
   */
  validateProfiles(resource: Resource, profileUrls: readonly string[], options: ValidateProfilesOptions = {}): OperationOutcomeIssue[] {
    const record = resource as unknown as Record<string, unknown>;
    if (!isJsonObject(record) || typeof record.resourceType !== 'string') return [];
    const type = record.resourceType;
    // meta.profile of the wrong shape (a string) is a base issue already; it names no profile here.
    const claimed = claimedProfiles(resource);
    const issues: OperationOutcomeIssue[] = [];
    for (const url of new Set(profileUrls.filter((u) => typeof u === 'string').map((u) => u.split('|')[0] ?? u))) {
      const profile = this.#profiles.compiled.get(url);
      if (profile) {
        issues.push(...profile.check(record, type));
        continue;
      }
      const baseType = url.startsWith(BASE_DEFINITION_PREFIX) ? url.slice(BASE_DEFINITION_PREFIX.length) : undefined;
      if (baseType !== undefined && this.#resourceTypes.includes(baseType)) {
        // The base definition of a resource type (https://hl7.org/fhir/R4/resource-operation-validate.html):
        // validateBase checks it; here only the type can disagree.
        if (baseType !== type)
          issues.push(errorIssue('invalid', `The resource is a ${type}, so it cannot conform to ${url}`, `${type}.resourceType`));
        continue;
      }
      const index = claimed.findIndex((c) => c.split('|')[0] === url);
      const at = index >= 0 ? `${type}.meta.profile[${index}]` : type;
      const known = this.#profiles.structureDefinitions.some((sd) => sd.url === url);
      issues.push(
        issue(
          options.unknownProfile ?? 'error',
          'not-supported',
          known
            ? `${url} is not a resource profile, so resources cannot be validated against it`
            : `Unknown profile ${url}: this server cannot validate against it`,
          at,
        ),
      );
    }
    return dedupe(issues);
  }

  /**
   * What $validate does (https://hl7.org/fhir/R4/resource-operation-validate.html): base R4, then
   * the profiles asked for (unknown ones are errors) and those the resource claims in meta.profile
   * (unknown ones are warnings). A profile issue that only repeats a base issue is dropped.
   */
  validate(resource: unknown, options: { profiles?: readonly string[] } = {}): OperationOutcomeIssue[] {
    const base = this.#base.validate(resource);
    if (!isJsonObject(resource) || typeof resource.resourceType !== 'string' || !this.#resourceTypes.includes(resource.resourceType))
      return base;
    const typed = resource as unknown as Resource;
    const requested = options.profiles ?? [];
    const claimed = claimedProfiles(typed).filter((p) => !requested.includes(p));
    const profile = [
      ...this.validateProfiles(typed, requested, { unknownProfile: 'error' }),
      ...this.validateProfiles(typed, claimed, { unknownProfile: 'warning' }),
    ];
    return mergeBaseAndProfile(base, profile);
  }

  /** Every StructureDefinition in profiles/, for GET /fhir/StructureDefinition/{id} and the CapabilityStatement. */
  profiles(): StructureDefinition[] {
    return [...this.#profiles.structureDefinitions];
  }

  /** The CodeSystems and ValueSets published beside the profiles. */
  terminology(): Array<CodeSystem | ValueSet> {
    return [...this.#profiles.codeSystems, ...this.#profiles.valueSets];
  }

  /** How many base R4 invariants the definitions hold and how many run (docs/validation.md). */
  invariantCounts(): InvariantCounts {
    return this.#invariantCounts;
  }

  /** The R4 resource types validateBase knows (all 146). */
  supportedResourceTypes(): string[] {
    return [...this.#resourceTypes];
  }
}

/** Canonical URLs of the base R4 definitions: http://hl7.org/fhir/StructureDefinition/ServiceRequest. */
export const BASE_DEFINITION_PREFIX = 'http://hl7.org/fhir/StructureDefinition/';

/** The profiles a resource claims, whatever shape its meta.profile has (only strings in an array count). */
export function claimedProfiles(resource: Resource): string[] {
  const meta: unknown = resource.meta;
  const profile = typeof meta === 'object' && meta !== null ? (meta as { profile?: unknown }).profile : undefined;
  return Array.isArray(profile) ? profile.filter((p): p is string => typeof p === 'string') : [];
}

const issueKey = (i: OperationOutcomeIssue): string => `${i.code}|${i.expression?.join('|') ?? ''}`;

function dedupe(issues: readonly OperationOutcomeIssue[]): OperationOutcomeIssue[] {
  const seen = new Set<string>();
  return issues.filter((i) => {
    const key = `${i.severity}|${issueKey(i)}|${i.diagnostics ?? ''}`;
    if (seen.has(key)) return false;
    seen.add(key);
    return true;
  });
}

/**
 * Base R4 and a profile often notice the same thing (ServiceRequest.subject is 1..1 in both):
 * keep the base issue. An invariant about an element base R4 already refuses says nothing new
 * (status "ACTIVE" is not a code; that it is not "active" either is noise).
 */
function mergeBaseAndProfile(base: readonly OperationOutcomeIssue[], profile: readonly OperationOutcomeIssue[]): OperationOutcomeIssue[] {
  const baseKeys = new Set(base.map(issueKey));
  const explained = new Set(base.filter((i) => i.severity === 'error' || i.severity === 'fatal').flatMap((i) => i.expression ?? []));
  const extra = profile.filter(
    (i) => !baseKeys.has(issueKey(i)) && !(i.code === 'invariant' && i.expression?.some((e) => explained.has(e))),
  );
  return [...base, ...extra];
}
