/**
 * Base R4 validation: the official JSON schema (as patched and compiled ahead of time by
 * scripts/generate-validators.mjs) plus required bindings on codes, for a resource and every
 * resource nested in it. One generated validator call per resource; nothing is compiled here.
 */
import type { OperationOutcomeIssue } from 'fhir/r4.js';
import { errorIssue } from '../outcomes.js';
import { issuesFromAjvErrors, type ValueSetCodes } from './ajv-issues.js';
import { describeJson, isJsonObject } from './element-paths.js';
import type { GeneratedValidators } from './generated-validators.js';
import type { InvariantChecker } from './invariants.js';
import { bundleRuleIssues } from './bundle-rules.js';
import { nestedResources } from './nested-resources.js';
import { stringCharacterProblem, stringRuleIssues } from './string-rules.js';

/** Bundles of bundles are legal; a hundred levels of them are an attack, not a referral. */
const MAX_NESTING = 16;

export class BaseValidator {
  readonly #generated: GeneratedValidators;
  readonly #valueSets: ValueSetCodes;
  readonly #invariants: InvariantChecker | undefined;

  constructor(generated: GeneratedValidators, valueSets: ValueSetCodes, invariants?: InvariantChecker) {
    this.#generated = generated;
    this.#valueSets = valueSets;
    this.#invariants = invariants;
  }

  validate(resource: unknown): OperationOutcomeIssue[] {
    if (!isJsonObject(resource)) {
      return [
        errorIssue(
          'structure',
          `Expected a FHIR resource (a JSON object with a resourceType) but found ${describeJson(resource)}`,
          'Resource',
        ),
      ];
    }
    const type = resource.resourceType;
    if (typeof type !== 'string') {
      return [errorIssue('structure', 'Missing resourceType: every resource names its type', 'Resource.resourceType')];
    }
    const strings = stringRuleIssues(resource, stringCharacterProblem(type) === undefined ? type : 'Resource');
    return [...this.#validateAt(resource, type, undefined, 0, resource), ...strings];
  }

  #validateAt(
    resource: Record<string, unknown>,
    type: string,
    path: string | undefined,
    depth: number,
    rootResource: unknown,
  ): OperationOutcomeIssue[] {
    const validator = this.#generated.validatorFor(type);
    if (!validator) {
      return [
        errorIssue(
          'structure',
          `Unknown resource type '${type.slice(0, 64)}': not a FHIR R4 resource`,
          `${path ?? 'Resource'}.resourceType`,
        ),
      ];
    }
    const root = path ?? type;
    let valid: boolean;
    try {
      valid = validator(resource);
    } catch (err) {
      // Only absurd nesting (extensions in extensions, thousands deep) overflows the stack; the
      // HTTP layer's JSON depth limit should have stopped it first.
      if (err instanceof RangeError) return [errorIssue('too-costly', 'The resource is nested too deeply to validate', root)];
      throw err;
    }
    const issues = valid ? [] : issuesFromAjvErrors(validator.errors ?? [], { resource, root, valueSets: this.#valueSets });
    if (this.#invariants) issues.push(...this.#invariants.check(resource, type, root, { evaluateFhirPath: valid, rootResource }));
    if (this.#invariants && type === 'Bundle') issues.push(...bundleRuleIssues(resource, root));
    for (const nested of nestedResources(resource)) {
      const nestedType = nested.resource.resourceType;
      // Without a string resourceType the holder's own check has already said so.
      if (typeof nestedType !== 'string') continue;
      if (depth >= MAX_NESTING) {
        issues.push(errorIssue('structure', `Resources are nested more than ${MAX_NESTING} levels deep`, root + nested.path));
        break;
      }
      if (nested.path.startsWith('.contained[') && nested.resource.contained !== undefined) {
        // dom-2 (https://hl7.org/fhir/R4/domainresource.html#invs): contained resources are flat.
        issues.push(
          errorIssue(
            'invariant',
            'dom-2: A contained resource cannot contain resources itself; contain them all in the outer resource',
            `${root}${nested.path}.contained`,
          ),
        );
      }
      // %rootResource is the container for contained resources only; a Bundle entry is its own root.
      const nestedRoot = nested.path.startsWith('.contained[') ? rootResource : nested.resource;
      issues.push(...this.#validateAt(nested.resource, nestedType, root + nested.path, depth + 1, nestedRoot));
    }
    return issues;
  }
}
