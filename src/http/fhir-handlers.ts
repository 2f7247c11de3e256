/**
 * The FHIR API's handlers, Express-free: each turns a FhirRequest into a use-case call and its
 * result into a FhirResponse. The interactions are here; each operation is a file of
 * src/http/operations/. Which handler answers which request is the route table's to say
 * (src/http/route-table.ts): nothing here branches on the path.
 */
import type { Bundle, CapabilityStatement, Resource } from 'fhir/r4.js';
import { notFound, OperationOutcomeError, operationOutcome } from '../fhir/outcomes.js';
import { updateAppointmentByClient } from '../scheduling/stories/update-appointment.js';
import type { GatewayDeps } from '../ports/gateway-deps.js';
import { processBundle } from '../intake/stories/process-bundle.js';
import { createResource, readResource, resourceHistory, searchResources, updateResource } from '../intake/stories/resource-interactions.js';
import { updateReferralTaskByClient } from '../site-check/stories/confirm-referral-site.js';
import { versionFromETag } from '../fhir/http-headers.js';
import { bodyShapeOutcome } from './body-shape.js';
import { versionHeaders, type FhirHandler, type FhirRequest, type FhirResponse } from './fhir-exchange.js';
import { ifMatchVersion, interactionResponse, taskResponse } from './fhir-responses.js';
import type { ConformanceResources } from './operations/definitions.js';
import { bookAppointmentOperation, requestAppointmentInteraction } from './operations/book-appointment.js';
import { confirmSiteOperation } from './operations/confirm-site.js';
import { findAppointmentsOperation } from './operations/find-appointments.js';
import { holdAppointmentOperation } from './operations/hold-appointment.js';
import { networkMetricsOperation } from './operations/network-metrics.js';
import { recordVerificationOperation } from './operations/record-verification.js';
import { submitPriorAuthOperation } from './operations/submit-prior-auth.js';
import { validateOperation } from './operations/validate.js';
import { auditEventHandlers } from './audit-event-handlers.js';

export type { ConformanceResources } from './operations/definitions.js';

export const CONFORMANCE_TYPES = ['StructureDefinition', 'CodeSystem', 'ValueSet', 'OperationDefinition'] as const;

function queryValue(request: FhirRequest, name: string): string | undefined {
  return request.query.find(([k]) => k === name)?.[1];
}

export interface FhirHandlers {
  /** The audit trail, for operators (docs/audit.md). */
  searchAuditEvents: FhirHandler;
  readAuditEvent: FhirHandler;
  capabilityStatement: FhirHandler;
  readConformance: FhirHandler;
  searchConformance: FhirHandler;
  transaction: FhirHandler;
  validate: FhirHandler;
  read: FhirHandler;
  vread: FhirHandler;
  history: FhirHandler;
  search: FhirHandler;
  create: FhirHandler;
  update: FhirHandler;
  /** `POST /Task/{id}/$confirm-site`: the coordinator's confirmation of a held referral's site. */
  confirmSite: FhirHandler;
  /** `POST /Task/{id}/$submit-prior-auth`: send the prior authorization of a referral held in auth-required. */
  submitPriorAuth: FhirHandler;
  /** `POST /Task/{id}/$record-verification`: a coverage verification a coordinator did by phone. */
  recordVerification: FhirHandler;
  /** `GET|POST /Task/$network-metrics`: the network's picture as a MeasureReport. */
  networkMetrics: FhirHandler;
  /** IHE ITI Scheduling: `Appointment/$find` (GET or POST), `$hold`, `$book`. */
  findAppointments: FhirHandler;
  holdAppointment: FhirHandler;
  bookAppointment: FhirHandler;
  /** `POST /Appointment`: a client's Appointment is a booking request (no walk-ins). */
  requestAppointment: FhirHandler;
  /** `PUT /Appointment/{id}`: cancel, reschedule, record the visit. */
  updateAppointment: FhirHandler;
  /** `PUT /Task/{id}`: a coordinator's decision on the referral, not a plain write. */
  updateReferralTask: FhirHandler;
}

/** What the server publishes (public): the CapabilityStatement and the conformance resources of profiles/. */
function conformanceHandlers(
  statement: CapabilityStatement,
  conformance: ConformanceResources,
): Pick<FhirHandlers, 'capabilityStatement' | 'readConformance' | 'searchConformance'> {
  async function capabilityStatement(): Promise<FhirResponse> {
    return { status: 200, resource: statement };
  }

  async function readConformance(request: FhirRequest): Promise<FhirResponse> {
    const { type = '', id = '' } = request.params;
    const resource = conformance.get(`${type}/${id}`);
    if (!resource) throw new OperationOutcomeError(notFound(type, id));
    return { status: 200, resource };
  }

  async function searchConformance(request: FhirRequest): Promise<FhirResponse> {
    const { type = '' } = request.params;
    const url = queryValue(request, 'url');
    const resources = [...conformance.values()].filter(
      (r: Resource) => r.resourceType === type && (url === undefined || (r as { url?: string }).url === url.split('|')[0]),
    );
    const bundle: Bundle = {
      resourceType: 'Bundle',
      type: 'searchset',
      total: resources.length,
      link: [{ relation: 'self', url: `${request.baseUrl}/${type}${url === undefined ? '' : `?url=${encodeURIComponent(url)}`}` }],
      entry: resources.map((resource) => ({ fullUrl: `${request.baseUrl}/${type}/${resource.id}`, resource, search: { mode: 'match' } })),
    };
    return { status: 200, resource: bundle };
  }

  return { capabilityStatement, readConformance, searchConformance };
}

/** The RESTful interactions (https://hl7.org/fhir/R4/http.html), and the writes of the gateway's own records. */
function interactionHandlers(
  deps: GatewayDeps,
): Omit<
  FhirHandlers,
  OperationName | 'capabilityStatement' | 'readConformance' | 'searchConformance' | 'searchAuditEvents' | 'readAuditEvent'
> {
  async function transaction(request: FhirRequest): Promise<FhirResponse> {
    const result = await processBundle(deps, { tenant: request.tenant, body: request.body, prefer: request.prefer.return });
    if (result.kind === 'refused') return { outcome: result.outcome };
    // The Bundle answers for every entry; Prefer applies to the entries, not to the Bundle itself.
    return { status: 200, resource: result.bundle };
  }

  async function read(request: FhirRequest): Promise<FhirResponse> {
    const found = await readResource(deps, request.tenant, { resourceType: request.params['type'] ?? '', id: request.params['id'] ?? '' });
    if (found.kind === 'refused') return { outcome: found.outcome };
    const resource = found.value;
    const etag = versionHeaders(resource)['ETag'];
    if (request.ifNoneMatch !== undefined && etag !== undefined && versionFromETag(request.ifNoneMatch) === resource.meta?.versionId) {
      return { status: 304, headers: versionHeaders(resource) };
    }
    return { status: 200, resource, headers: versionHeaders(resource) };
  }

  async function vread(request: FhirRequest): Promise<FhirResponse> {
    const { type = '', id = '', versionId = '' } = request.params;
    const found = await readResource(deps, request.tenant, { resourceType: type, id, versionId });
    if (found.kind === 'refused') return { outcome: found.outcome };
    return { status: 200, resource: found.value, headers: versionHeaders(found.value) };
  }

  async function history(request: FhirRequest): Promise<FhirResponse> {
    const { type = '', id = '' } = request.params;
    const found = await resourceHistory(deps, request.tenant, type, id, request.baseUrl);
    if (found.kind === 'refused') return { outcome: found.outcome };
    return { status: 200, resource: found.value };
  }

  async function search(request: FhirRequest): Promise<FhirResponse> {
    const found = await searchResources(deps, {
      tenant: request.tenant,
      resourceType: request.params['type'] ?? '',
      query: request.query,
      strict: request.prefer.handling === 'strict',
      baseUrl: request.baseUrl,
      ...(request.signal !== undefined ? { signal: request.signal } : {}),
    });
    if (found.kind === 'refused') return { outcome: found.outcome };
    return { status: 200, resource: found.value };
  }

  async function create(request: FhirRequest): Promise<FhirResponse> {
    return interactionResponse(
      request,
      await createResource(deps, {
        tenant: request.tenant,
        resourceType: request.params['type'] ?? '',
        body: request.body,
        ...(request.ifNoneExist !== undefined ? { ifNoneExist: request.ifNoneExist } : {}),
      }),
    );
  }

  async function update(request: FhirRequest): Promise<FhirResponse> {
    const { version: ifMatch, outcome } = ifMatchVersion(request);
    if (outcome) return outcome;
    return interactionResponse(
      request,
      await updateResource(deps, {
        tenant: request.tenant,
        resourceType: request.params['type'] ?? '',
        id: request.params['id'] ?? '',
        body: request.body,
        ...(ifMatch !== undefined ? { ifMatch } : {}),
      }),
    );
  }

  async function updateAppointment(request: FhirRequest): Promise<FhirResponse> {
    const { version: ifMatch, outcome } = ifMatchVersion(request);
    if (outcome) return outcome;
    // The gateway's own records are worked by use cases that read their elements: shape first.
    const shape = bodyShapeOutcome(deps.validator, request.body, ['Appointment']);
    if (shape) return { outcome: shape };
    const result = await updateAppointmentByClient(deps, {
      tenant: request.tenant,
      id: request.params['id'] ?? '',
      body: request.body,
      ...(ifMatch !== undefined ? { ifMatchVersionId: ifMatch } : {}),
    });
    if (result.kind === 'refused') return { outcome: result.outcome };
    return {
      status: 200,
      resource: result.appointment,
      outcome: operationOutcome('ok', result.issues),
      headers: versionHeaders(result.appointment),
    };
  }

  async function updateReferralTask(request: FhirRequest): Promise<FhirResponse> {
    const { version: ifMatch, outcome } = ifMatchVersion(request);
    if (outcome) return outcome;
    const shape = bodyShapeOutcome(deps.validator, request.body, ['Task']);
    if (shape) return { outcome: shape };
    return taskResponse(
      await updateReferralTaskByClient(deps, {
        tenant: request.tenant,
        id: request.params['id'] ?? '',
        body: request.body,
        ...(ifMatch !== undefined ? { ifMatchVersionId: ifMatch } : {}),
      }),
    );
  }

  return {
    transaction,
    read,
    vread,
    history,
    search,
    create,
    update,
    updateAppointment,
    updateReferralTask,
    requestAppointment: requestAppointmentInteraction({ deps }),
  };
}

type OperationName =
  | 'validate'
  | 'confirmSite'
  | 'submitPriorAuth'
  | 'recordVerification'
  | 'networkMetrics'
  | 'findAppointments'
  | 'holdAppointment'
  | 'bookAppointment';

export function createFhirHandlers(deps: GatewayDeps, statement: CapabilityStatement, conformance: ConformanceResources): FhirHandlers {
  const operations = { deps, conformance };
  return {
    ...auditEventHandlers(deps.store),
    ...conformanceHandlers(statement, conformance),
    ...interactionHandlers(deps),
    // One file each under src/http/operations/.
    validate: validateOperation(operations),
    confirmSite: confirmSiteOperation(operations),
    submitPriorAuth: submitPriorAuthOperation(operations),
    recordVerification: recordVerificationOperation(operations),
    networkMetrics: networkMetricsOperation(operations),
    findAppointments: findAppointmentsOperation(operations),
    holdAppointment: holdAppointmentOperation(operations),
    bookAppointment: bookAppointmentOperation(operations),
  };
}
