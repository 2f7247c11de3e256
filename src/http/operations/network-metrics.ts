/**
 * `GET|POST /fhir/Task/$network-metrics` (profiles/OperationDefinition-network-metrics.json):
 * the network's picture for a period as a MeasureReport (docs/coordinator-console.md). Read-only,
 * so it takes the query (GET) or a Parameters body (POST)
 * (https://hl7.org/fhir/R4/operations.html#request), both read by the definition.
 */
import { badRequest } from '../../fhir/outcomes.js';
import { readOperationParameters } from '../../fhir/operation-parameters.js';
import { reportNetworkMetrics } from '../../directory/stories/network-metrics.js';
import { bodyShapeOutcome } from '../body-shape.js';
import type { FhirHandler, FhirRequest, FhirResponse } from '../fhir-exchange.js';
import { operationDefinition, type OperationContext } from './definitions.js';

export function networkMetricsOperation({ deps, conformance }: OperationContext): FhirHandler {
  const definition = operationDefinition(conformance, 'network-metrics');
  async function networkMetrics(request: FhirRequest): Promise<FhirResponse> {
    // A Parameters body is checked for its shape first; any other body the reader refuses itself.
    const parameters = (request.body as { resourceType?: unknown } | undefined)?.resourceType === 'Parameters';
    const shape = parameters ? bodyShapeOutcome(deps.validator, request.body, ['Parameters']) : undefined;
    if (shape) return { outcome: shape };
    const { values, issues } = readOperationParameters(definition, request);
    if (issues.length > 0) return { outcome: badRequest(issues) };
    const periodStart = values['period-start'] as string | undefined;
    const periodEnd = values['period-end'] as string | undefined;
    const result = await reportNetworkMetrics(deps, {
      tenant: request.tenant,
      ...(periodStart !== undefined ? { periodStart } : {}),
      ...(periodEnd !== undefined ? { periodEnd } : {}),
    });
    if (result.kind === 'refused') return { outcome: result.outcome };
    return { status: 200, resource: result.report };
  }
  return networkMetrics;
}
