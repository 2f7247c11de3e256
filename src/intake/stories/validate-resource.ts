/**
 * Story: an integration engineer asks whether a resource would be accepted, without storing it
 * ($validate, https://hl7.org/fhir/R4/resource-operation-validate.html).
 *
 * The resource comes as the body or in a Parameters (read by src/http/operations/validate.ts).
 * Validation covers base R4, the profiles the resource claims in meta.profile and the `profile`
 * parameter (base canonical URLs such as http://hl7.org/fhir/StructureDefinition/Patient
 * included). On ServiceRequest/$validate (and for ServiceRequests inside a Bundle, as a
 * transaction is taken in) it is exactly what intake does: the infusion-referral profile is always
 * applied and the referral is translated, so catalog and reference problems show up too. A
 * ServiceRequest sent to POST /fhir/$validate gets base R4 and its profiles only. Nothing is stored.
 */
import type { Bundle, BundleEntry, OperationOutcome, OperationOutcomeIssue, Resource, ServiceRequest } from 'fhir/r4.js';
import { REFERRAL_PROFILE_URL } from '../../referral/rules/referral-status.js';
import {
  badRequest,
  dedupeIssues,
  errorIssue,
  informationIssue,
  operationOutcome,
  prefixIssues,
  warningIssue,
} from '../../fhir/outcomes.js';
import { withServerId } from '../../fhir/resources.js';
import { claimedProfiles } from '../../fhir/validation/index.js';
import type { GatewayDeps } from '../../ports/gateway-deps.js';
import { prepareReferral, referralProfileIssues } from './intake-referral.js';
import type { Refusal } from '../../ports/refusal.js';

export type ValidateResult = { kind: 'validated'; outcome: OperationOutcome } | Refusal;

async function referralIssues(
  deps: GatewayDeps,
  tenant: string,
  serviceRequest: ServiceRequest,
  extraProfiles: readonly string[],
  options: { translate: boolean },
): Promise<OperationOutcomeIssue[]> {
  const named = extraProfiles.filter((p) => p !== REFERRAL_PROFILE_URL);
  const issues = [
    ...referralProfileIssues(deps.validator, serviceRequest),
    ...(named.length > 0 ? deps.validator.validateProfiles(serviceRequest, named) : []),
  ];
  if (!options.translate || issues.some((i) => i.severity === 'error')) return issues;
  const prepared = await prepareReferral(deps, deps.store, tenant, withServerId(serviceRequest, 'validation-only'));
  if (!prepared.ok) return [...issues, ...prepared.issues];
  if (prepared.prepared.translation.kind === 'rejected') {
    issues.push(
      ...prepared.prepared.translation.reasons.map((r) =>
        warningIssue('business-rule', `The referral would be rejected: ${r.display}`, r.expression),
      ),
    );
  }
  return issues;
}

export async function validateResource(
  deps: GatewayDeps,
  /** The resource to validate (taken out of a Parameters body by the operation, src/http/operations/validate.ts). */
  input: { tenant: string; resource: unknown; resourceTypeFromUrl?: string; profiles?: readonly string[] },
): Promise<ValidateResult> {
  const resource = input.resource;
  if (typeof resource !== 'object' || resource === null || Array.isArray(resource)) {
    return { kind: 'refused', outcome: badRequest([errorIssue('structure', 'The body must be a FHIR resource or a Parameters resource')]) };
  }
  const extraProfiles = [...(input.profiles ?? [])];
  const resourceType = (resource as { resourceType?: unknown }).resourceType;
  if (input.resourceTypeFromUrl !== undefined && resourceType !== input.resourceTypeFromUrl) {
    return {
      kind: 'refused',
      outcome: badRequest([
        errorIssue(
          'invalid',
          `Expected a ${input.resourceTypeFromUrl} but got ${typeof resourceType === 'string' ? resourceType : 'no resourceType'}`,
          'resourceType',
        ),
      ]),
    };
  }

  const issues = deps.validator.validateBase(resource);
  // Profiles are checked even when base validation failed, as intake does, so that one round
  // trip shows every problem; the referral's translation needs a structurally valid resource.
  if (typeof resource === 'object' && resource !== null && typeof resourceType === 'string') {
    const typed = resource as Resource;
    const baseFailed = issues.some((i) => i.severity === 'error');
    // ServiceRequest/$validate is intake's validation; POST /fhir/$validate is base R4 plus the
    // profiles asked for and claimed (docs/validation.md).
    if (typed.resourceType === 'ServiceRequest' && input.resourceTypeFromUrl === 'ServiceRequest') {
      issues.push(...(await referralIssues(deps, input.tenant, typed as ServiceRequest, extraProfiles, { translate: !baseFailed })));
    } else {
      const claimed = claimedProfiles(typed);
      if (claimed.length > 0) issues.push(...deps.validator.validateProfiles(typed, claimed, { unknownProfile: 'warning' }));
      if (extraProfiles.length > 0) issues.push(...deps.validator.validateProfiles(typed, extraProfiles));
      if (typed.resourceType === 'Bundle') {
        // `entry` of the wrong shape has been reported by base R4: read only what is an array of objects.
        const entries: unknown = (typed as Bundle).entry;
        const readable = (Array.isArray(entries) ? entries : []) as Array<BundleEntry | null>;
        for (const [index, entry] of readable.entries()) {
          if (entry?.resource?.resourceType !== 'ServiceRequest') continue;
          const entryIssues = referralProfileIssues(deps.validator, entry.resource);
          issues.push(...prefixIssues(entryIssues, { from: 'ServiceRequest', to: `Bundle.entry[${index}].resource` }));
        }
      }
    }
  }
  if (issues.length === 0) issues.push(informationIssue('informational', 'No issues detected'));
  return { kind: 'validated', outcome: operationOutcome('validation', dedupeIssues(issues)) };
}

/**
 * What can be told about a resource without a store or a network: base R4 and, for a
 * ServiceRequest (alone or in a Bundle), the infusion-referral profile, as intake applies them;
 * profiles a resource claims are checked (unknown ones are warnings). Used by the CLI's
 * `validate`, the same validator objects the server runs, minus the referral's translation (which
 * needs the directory and the store).
 */
export function validateOffline(validator: GatewayDeps['validator'], resource: unknown): OperationOutcomeIssue[] {
  const issues = validator.validateBase(resource);
  if (typeof resource !== 'object' || resource === null || typeof (resource as Resource).resourceType !== 'string') return issues;
  const typed = resource as Resource;
  if (typed.resourceType === 'ServiceRequest') {
    issues.push(...referralProfileIssues(validator, typed));
  } else {
    const claimed = Array.isArray(typed.meta?.profile) ? typed.meta.profile.filter((p): p is string => typeof p === 'string') : [];
    if (claimed.length > 0 && !issues.some((i) => i.severity === 'error'))
      issues.push(...validator.validateProfiles(typed, claimed, { unknownProfile: 'warning' }));
    if (typed.resourceType === 'Bundle') {
      const entries: unknown = (typed as Bundle).entry;
      const readable = (Array.isArray(entries) ? entries : []) as Array<BundleEntry | null>;
      for (const [index, entry] of readable.entries()) {
        if (entry?.resource?.resourceType !== 'ServiceRequest') continue;
        issues.push(
          ...prefixIssues(referralProfileIssues(validator, entry.resource), {
            from: 'ServiceRequest',
            to: `Bundle.entry[${index}].resource`,
          }),
        );
      }
    }
  }
  return dedupeIssues(issues);
}
