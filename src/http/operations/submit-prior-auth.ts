/**
 * `POST /fhir/Task/{id}/$submit-prior-auth` (profiles/OperationDefinition-submit-prior-auth.json):
 * a coordinator sends the prior authorization of a referral held in auth-required after
 * reviewing its denial risks (docs/domain.md). It takes no parameters; any given is refused.
 */
import { badRequest, informationIssue, operationOutcome } from '../../fhir/outcomes.js';
import { readOperationParameters } from '../../fhir/operation-parameters.js';
import { requestPriorAuthSubmission } from '../../coverage/stories/verify-coverage.js';
import { withBodyShape } from '../body-shape.js';
import type { FhirHandler, FhirRequest, FhirResponse } from '../fhir-exchange.js';
import { operationDefinition, type OperationContext } from './definitions.js';

export function submitPriorAuthOperation({ deps, conformance }: OperationContext): FhirHandler {
  const definition = operationDefinition(conformance, 'submit-prior-auth');
  async function submitPriorAuth(request: FhirRequest): Promise<FhirResponse> {
    const { issues } = readOperationParameters(definition, request);
    if (issues.length > 0) return { outcome: badRequest(issues) };
    const result = await requestPriorAuthSubmission(deps, { tenant: request.tenant, taskId: request.params['id'] ?? '' });
    if (result.kind === 'refused') return { outcome: result.outcome };
    // Accepted: the payer is called by the queued step; the Task tells how it ended.
    return {
      status: 202,
      outcome: operationOutcome('accepted', [
        informationIssue('informational', `The prior authorization will be sent; follow Task/${result.task.id}`),
      ]),
    };
  }
  return withBodyShape(deps.validator, ['Parameters'], submitPriorAuth);
}
