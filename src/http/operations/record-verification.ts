/**
 * `POST /fhir/Task/{id}/$record-verification` (profiles/OperationDefinition-record-verification.json):
 * a coverage verification a coordinator did by phone. The generic reader checks names, types and
 * cardinality by the definition; the domain (src/coverage/rules/phone-verification.ts) what the values mean.
 */
import { badRequest, operationOutcome } from '../../fhir/outcomes.js';
import { readOperationParameters } from '../../fhir/operation-parameters.js';
import { readPhoneVerification } from '../../coverage/rules/phone-verification.js';
import { recordPhoneVerification } from '../../coverage/stories/verify-coverage.js';
import { withBodyShape } from '../body-shape.js';
import type { FhirHandler, FhirRequest, FhirResponse } from '../fhir-exchange.js';
import { versionHeaders } from '../fhir-exchange.js';
import { operationDefinition, type OperationContext } from './definitions.js';

export function recordVerificationOperation({ deps, conformance }: OperationContext): FhirHandler {
  const definition = operationDefinition(conformance, 'record-verification');
  async function recordVerification(request: FhirRequest): Promise<FhirResponse> {
    const { verification, issues } = readPhoneVerification(readOperationParameters(definition, request), deps.clock.now());
    if (!verification) return { outcome: badRequest(issues) };
    const result = await recordPhoneVerification(deps, { tenant: request.tenant, taskId: request.params['id'] ?? '', verification });
    if (result.kind === 'refused') return { outcome: result.outcome };
    return { status: 200, resource: result.task, outcome: operationOutcome('ok', []), headers: versionHeaders(result.task) };
  }
  return withBodyShape(deps.validator, ['Parameters'], recordVerification);
}
