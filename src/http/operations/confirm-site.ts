/**
 * `POST /fhir/Task/{id}/$confirm-site` (profiles/OperationDefinition-confirm-site.json): a
 * coordinator confirms the site of a referral the site check held as misroute-suspected
 * (docs/domain.md); the referral is re-routed and moves on to coverage.
 */
import type { Reference } from 'fhir/r4.js';
import { badRequest } from '../../fhir/outcomes.js';
import { readOperationParameters } from '../../fhir/operation-parameters.js';
import { confirmReferralSite } from '../../site-check/stories/confirm-referral-site.js';
import { withBodyShape } from '../body-shape.js';
import type { FhirHandler, FhirRequest, FhirResponse } from '../fhir-exchange.js';
import { ifMatchVersion, taskResponse } from '../fhir-responses.js';
import { operationDefinition, type OperationContext } from './definitions.js';

export function confirmSiteOperation({ deps, conformance }: OperationContext): FhirHandler {
  const definition = operationDefinition(conformance, 'confirm-site');
  async function confirmSite(request: FhirRequest): Promise<FhirResponse> {
    const { version: ifMatch, outcome } = ifMatchVersion(request);
    if (outcome) return outcome;
    const { values, at, issues } = readOperationParameters(definition, request);
    if (issues.length > 0) return { outcome: badRequest(issues) };
    return taskResponse(
      await confirmReferralSite(deps, {
        tenant: request.tenant,
        taskId: request.params['id'] ?? '',
        location: values['location'] as Reference,
        expression: `${at['location'] ?? 'Parameters.parameter'}.valueReference`,
        ...(ifMatch !== undefined ? { ifMatchVersionId: ifMatch } : {}),
      }),
    );
  }
  return withBodyShape(deps.validator, ['Parameters'], confirmSite);
}
