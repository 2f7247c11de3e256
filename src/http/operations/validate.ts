/**
 * `POST /fhir/$validate` and `POST /fhir/{type}/$validate`
 * (https://hl7.org/fhir/R4/resource-operation-validate.html): whether a resource would be
 * accepted, nothing stored (src/intake/stories/validate-resource.ts, docs/validation.md). The body is
 * the resource itself, or a Parameters read by FHIR's own definition below; `profile` may also
 * come in the query.
 */
import type { OperationDefinition, OperationOutcomeIssue } from 'fhir/r4.js';
import { badRequest, errorIssue } from '../../fhir/outcomes.js';
import { readOperationParameters } from '../../fhir/operation-parameters.js';
import { validateResource } from '../../intake/stories/validate-resource.js';
import type { FhirHandler, FhirRequest, FhirResponse } from '../fhir-exchange.js';
import type { OperationContext } from './definitions.js';

const ALLOWED_TYPE = 'http://hl7.org/fhir/5.0/StructureDefinition/extension-OperationDefinition.parameter.allowedType';

/**
 * FHIR's own $validate, which the gateway implements but, being core, does not publish in
 * profiles/: its inputs as the gateway reads them (a profile may come as a uri, a canonical or a
 * string), and the API description's source for the operation.
 */
export const RESOURCE_VALIDATE: OperationDefinition = {
  resourceType: 'OperationDefinition',
  id: 'Resource-validate',
  url: 'http://hl7.org/fhir/OperationDefinition/Resource-validate',
  name: 'Validate',
  title: 'Validate a resource',
  status: 'active',
  kind: 'operation',
  code: 'validate',
  affectsState: false,
  system: true,
  type: true,
  instance: false,
  resource: ['Resource'],
  description: 'Validates a resource against base R4 and the profiles it claims or names; nothing is stored.',
  parameter: [
    {
      name: 'resource',
      use: 'in',
      min: 0,
      max: '1',
      type: 'Resource',
      documentation: 'The resource to validate (or send the resource itself as the body)',
    },
    { name: 'mode', use: 'in', min: 0, max: '1', type: 'code', documentation: 'create | update | delete | profile' },
    {
      extension: ['uri', 'canonical', 'string'].map((valueCode) => ({ url: ALLOWED_TYPE, valueCode })),
      name: 'profile',
      use: 'in',
      min: 0,
      max: '1',
      type: 'uri',
      documentation: 'A profile to validate against',
    },
    { name: 'return', use: 'out', min: 1, max: '1', type: 'OperationOutcome' },
  ],
};

/** The resource and the profiles a Parameters body carries, or every problem with it. */
function fromParameters(request: FhirRequest): { resource?: unknown; profiles: string[]; issues: OperationOutcomeIssue[] } {
  const { values, at, issues } = readOperationParameters(RESOURCE_VALIDATE, request);
  const mode = values['mode'] as string | undefined;
  if (mode !== undefined && mode !== 'create' && mode !== 'update') {
    issues.push(errorIssue('not-supported', `mode '${mode}' is not supported; use create or update (or omit it)`, 'Parameters.parameter'));
  }
  const resource = values['resource'];
  if (at['resource'] === undefined)
    issues.push(errorIssue('required', "Parameters must carry the resource to validate in a 'resource' parameter", 'Parameters.parameter'));
  const profile = values['profile'] as string | undefined;
  return { ...(resource !== undefined ? { resource } : {}), profiles: profile !== undefined ? [profile] : [], issues };
}

export function validateOperation({ deps }: Pick<OperationContext, 'deps'>): FhirHandler {
  return async function validate(request: FhirRequest): Promise<FhirResponse> {
    const isParameters = (request.body as { resourceType?: unknown } | null | undefined)?.resourceType === 'Parameters';
    const read = isParameters ? fromParameters(request) : { resource: request.body, profiles: [], issues: [] };
    if (read.issues.length > 0) return { outcome: badRequest(read.issues) };
    const queryProfile = request.query.find(([name]) => name === 'profile')?.[1];
    const profiles = [...read.profiles, ...(queryProfile ? [queryProfile] : [])];
    const result = await validateResource(deps, {
      tenant: request.tenant,
      resource: read.resource,
      ...(request.params['type'] ? { resourceTypeFromUrl: request.params['type'] } : {}),
      ...(profiles.length > 0 ? { profiles } : {}),
    });
    if (result.kind === 'refused') return { outcome: result.outcome };
    // $validate answers 200 when it could validate; the verdict is in the OperationOutcome.
    return { status: 200, resource: result.outcome };
  };
}
