/**
 * `POST /fhir/$validate` and `POST /fhir/{type}/$validate`
 * (https://hl7.org/fhir/R4/resource-operation-validate.html): whether a resource would be
 * accepted, nothing stored. The body is the resource itself or a Parameters carrying it, which the
 * use case unwraps (src/use-cases/validate-resource.ts); `profile` may also come in the query.
 */
import { validateResource } from '../../use-cases/validate-resource.js';
import type { FhirHandler, FhirRequest, FhirResponse } from '../fhir-exchange.js';
import type { OperationContext } from './definitions.js';

export function validateOperation({ deps }: Pick<OperationContext, 'deps'>): FhirHandler {
  return async function validate(request: FhirRequest): Promise<FhirResponse> {
    const profile = request.query.find(([name]) => name === 'profile')?.[1];
    const result = await validateResource(deps, {
      tenant: request.tenant,
      body: request.body,
      ...(request.params['type'] ? { resourceTypeFromUrl: request.params['type'] } : {}),
      ...(profile ? { profiles: [profile] } : {}),
    });
    if (result.kind === 'refused') return { outcome: result.outcome };
    // $validate answers 200 when it could validate; the verdict is in the OperationOutcome.
    return { status: 200, resource: result.outcome };
  };
}
