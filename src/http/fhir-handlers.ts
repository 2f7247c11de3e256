/**
 * The FHIR interactions as Express-free handlers: each turns a FhirRequest into a use-case call
 * and its result into a FhirResponse.
 */
import type { Appointment, CapabilityStatement, OperationDefinition, OperationOutcomeIssue, Parameters, Reference, Resource } from 'fhir/r4.js';
import { badRequest, errorIssue, informationIssue, methodNotAllowed, notFound, OperationOutcomeError, operationOutcome } from '../fhir/outcomes.js';
import { recordPhoneVerification, requestPriorAuthSubmission } from '../use-cases/verify-coverage.js';
import { readPhoneVerification } from '../domain/phone-verification.js';
import { bookAppointment, findAppointments, holdAppointment, updateAppointmentByClient, type FindSites } from '../use-cases/schedule-referral.js';
import { parseNear } from '../domain/multi-site-find.js';
import type { SlotFilters } from '../domain/slot-finder.js';
import { randomUUID } from 'node:crypto';
import type { GatewayDeps } from '../use-cases/deps.js';
import { processBundle } from '../use-cases/process-bundle.js';
import {
  createResource,
  readResource,
  readResourceVersion,
  resourceHistory,
  searchResources,
  updateResource,
  type InteractionResult,
} from '../use-cases/resource-interactions.js';
import { validateResource } from '../use-cases/validate-resource.js';
import { confirmReferralSite, updateReferralTaskByClient, type ConfirmSiteResult } from '../use-cases/confirm-referral-site.js';
import { versionFromETag } from '../fhir/http-headers.js';
import { readOperationParameters } from '../fhir/operation-parameters.js';
import { bodyShapeOutcome, withBodyShape } from './body-shape.js';
import { locationHeader, versionHeaders, type FhirHandler, type FhirRequest, type FhirResponse } from './fhir-exchange.js';

/** Published conformance resources (profiles/): StructureDefinition, CodeSystem, ValueSet, OperationDefinition. */
export type ConformanceResources = ReadonlyMap<string, Resource>;

export const CONFORMANCE_TYPES = ['StructureDefinition', 'CodeSystem', 'ValueSet', 'OperationDefinition'] as const;

function interactionResponse(request: FhirRequest, result: InteractionResult): FhirResponse {
  if (result.kind === 'refused') return { outcome: result.outcome };
  const headers = { ...versionHeaders(result.resource), ...(result.status === 201 ? locationHeader(request.baseUrl, result.resource) : {}) };
  return {
    status: result.status,
    resource: result.resource,
    outcome: operationOutcome(result.status === 201 ? 'created' : 'ok', result.issues),
    headers,
  };
}

function queryValue(request: FhirRequest, name: string): string | undefined {
  return request.query.find(([k]) => k === name)?.[1];
}

export interface FhirHandlers {
  metadata: FhirHandler;
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
  /** IHE ITI Scheduling: `Appointment/$find` (GET or POST), `$hold`, `$book`. */
  findAppointments: FhirHandler;
  holdAppointment: FhirHandler;
  bookAppointment: FhirHandler;
  unsupported: FhirHandler;
}

function confirmSiteResponse(result: ConfirmSiteResult): FhirResponse {
  if (result.kind === 'refused') return { outcome: result.outcome };
  return {
    status: 200,
    resource: result.task,
    outcome: operationOutcome('ok', []),
    headers: versionHeaders(result.task),
  };
}

/** A published OperationDefinition by id; the gateway does not start without the ones it implements. */
function operationDefinition(conformance: ConformanceResources, id: string): OperationDefinition {
  const definition = conformance.get(`OperationDefinition/${id}`);
  if (definition?.resourceType !== 'OperationDefinition') throw new Error(`profiles/ lacks OperationDefinition/${id}, which the gateway implements`);
  return definition as OperationDefinition;
}

function reservedResponse(request: FhirRequest, result: Awaited<ReturnType<typeof bookAppointment>>): FhirResponse {
  if (result.kind === 'refused') return { outcome: result.outcome };
  return { status: 201, resource: result.appointment, outcome: operationOutcome('created', []), headers: { ...versionHeaders(result.appointment), ...locationHeader(request.baseUrl, result.appointment) } };
}

/** The Appointment of $hold/$book: IHE's `appt-resource` parameter, or the Appointment itself. */
function appointmentParameter(body: unknown): { resource?: Appointment; issues: OperationOutcomeIssue[] } {
  const value = body as { resourceType?: string } | null;
  if (value?.resourceType === 'Appointment') return { resource: value as Appointment, issues: [] };
  if (value?.resourceType === 'Parameters') {
    const parameters = (value as Parameters).parameter ?? [];
    const index = parameters.findIndex((p) => p.name === 'appt-resource');
    const resource = index >= 0 ? parameters[index]!.resource : undefined;
    if (resource?.resourceType === 'Appointment') return { resource: resource as Appointment, issues: [] };
    return { issues: [errorIssue('required', 'Parameter appt-resource (an Appointment returned by $find, or held by $hold) is required', index >= 0 ? `Parameters.parameter[${index}].resource` : 'Parameters.parameter')] };
  }
  return { issues: [errorIssue('invalid', 'The body must be a Parameters resource with appt-resource, or an Appointment', 'resourceType')] };
}

/** $find's inputs, from the query (GET) or a Parameters body (POST), every problem reported. */
function findParameters(request: FhirRequest): { serviceRequestId?: string; count: number; filters: SlotFilters; window: { start?: Date; end?: Date }; sites?: FindSites; issues: OperationOutcomeIssue[] } {
  const values = new Map<string, string>();
  // `location` repeats (and each value may list several, comma-separated, as FHIR search's OR).
  const locations: string[] = [];
  for (const [key, value] of request.query) {
    if (key === 'location') locations.push(...value.split(','));
    else values.set(key, value);
  }
  const body = request.body as Partial<Parameters> | null;
  if (request.method === 'POST' && body?.resourceType === 'Parameters') {
    for (const p of body.parameter ?? []) {
      const value = p.valueReference?.reference ?? p.valueString ?? p.valueDate ?? p.valueDateTime ?? (p.valueBoolean !== undefined ? String(p.valueBoolean) : undefined) ?? (p.valueInteger !== undefined ? String(p.valueInteger) : undefined);
      if (value === undefined) continue;
      if (p.name === 'location') locations.push(...value.split(','));
      else values.set(p.name, value);
    }
  }
  const issues: OperationOutcomeIssue[] = [];
  const referral = values.get('referral');
  const match = /^ServiceRequest\/([A-Za-z0-9\-.]{1,64})$/.exec(referral ?? '');
  if (!match) issues.push(errorIssue('required', 'Parameter referral (ServiceRequest/<id> of a cleared referral) is required', 'referral'));
  const countText = values.get('_count') ?? '10';
  const count = Number(countText);
  if (!Number.isInteger(count) || count < 1 || count > 100) issues.push(errorIssue('value', `_count must be a whole number from 1 to 100 (got '${countText}')`, '_count'));
  const window: { start?: Date; end?: Date } = {};
  for (const name of ['start', 'end'] as const) {
    const text = values.get(name);
    if (text === undefined) continue;
    const date = new Date(text);
    if (Number.isNaN(date.getTime())) issues.push(errorIssue('value', `${name} must be a date or an instant (got '${text}')`, name));
    else window[name] = date;
  }
  const flag = (name: string): boolean | undefined => {
    const text = values.get(name);
    if (text === undefined) return undefined;
    if (text !== 'true' && text !== 'false') issues.push(errorIssue('value', `${name} must be true or false (got '${text}')`, name));
    return text === 'true';
  };
  const filters: SlotFilters = {};
  const evenings = flag('evenings-only');
  const weekends = flag('weekends-only');
  const either = flag('evenings-or-weekends');
  if (evenings) filters.eveningsOnly = true;
  if (weekends) filters.weekendsOnly = true;
  if (either) filters.eveningsOrWeekends = true;
  const sites: FindSites = {};
  if (locations.length > 0) {
    const ids: string[] = [];
    for (const location of locations) {
      const id = /^(?:Location\/)?([A-Za-z0-9\-.]{1,64})$/.exec(location.trim())?.[1];
      if (id === undefined) issues.push(errorIssue('value', `location must be Location/<id> or <id> of a site (got '${location}')`, 'location'));
      else ids.push(id);
    }
    sites.locationIds = ids;
  }
  const nearText = values.get('near');
  if (nearText !== undefined) {
    const parsed = parseNear(nearText);
    if ('error' in parsed) issues.push(errorIssue('value', parsed.error, 'near'));
    else sites.near = parsed.near;
  }
  return { ...(match ? { serviceRequestId: match[1]! } : {}), count, filters, window, ...(sites.locationIds || sites.near ? { sites } : {}), issues };
}

function ifMatchVersion(request: FhirRequest): { version?: string; outcome?: FhirResponse } {
  if (request.ifMatch === undefined) return {};
  const version = versionFromETag(request.ifMatch);
  if (version === undefined) {
    return { outcome: { outcome: badRequest([errorIssue('value', `If-Match must be an ETag such as W/"3" (got '${request.ifMatch}')`, 'If-Match')]) } };
  }
  return { version };
}

export function createFhirHandlers(deps: GatewayDeps, capabilityStatement: CapabilityStatement, conformance: ConformanceResources): FhirHandlers {
  const confirmSiteDefinition = operationDefinition(conformance, 'confirm-site');
  return {
    metadata: async () => ({ status: 200, resource: capabilityStatement }),

    readConformance: async (request) => {
      const { type = '', id = '' } = request.params;
      const resource = conformance.get(`${type}/${id}`);
      if (!resource) throw new OperationOutcomeError(notFound(type, id));
      return { status: 200, resource };
    },

    searchConformance: async (request) => {
      const { type = '' } = request.params;
      const url = queryValue(request, 'url');
      const resources = [...conformance.values()].filter(
        (r) => r.resourceType === type && (url === undefined || (r as { url?: string }).url === url.split('|')[0]),
      );
      return {
        status: 200,
        resource: {
          resourceType: 'Bundle',
          type: 'searchset',
          total: resources.length,
          link: [{ relation: 'self', url: `${request.baseUrl}/${type}${url === undefined ? '' : `?url=${encodeURIComponent(url)}`}` }],
          entry: resources.map((resource) => ({ fullUrl: `${request.baseUrl}/${type}/${resource.id}`, resource, search: { mode: 'match' } })),
        },
      };
    },

    transaction: async (request) => {
      const result = await processBundle(deps, { tenant: request.tenant, body: request.body, prefer: request.prefer.return });
      if (result.kind === 'refused') return { outcome: result.outcome };
      // The Bundle answers for every entry; Prefer applies to the entries, not to the Bundle itself.
      return { status: 200, resource: result.bundle };
    },

    validate: async (request) => {
      const profile = queryValue(request, 'profile');
      const result = await validateResource(deps, {
        tenant: request.tenant,
        body: request.body,
        ...(request.params['type'] ? { resourceTypeFromUrl: request.params['type'] } : {}),
        ...(profile ? { profiles: [profile] } : {}),
      });
      if (result.kind === 'refused') return { outcome: result.outcome };
      // $validate answers 200 when it could validate; the verdict is in the OperationOutcome.
      return { status: 200, resource: result.outcome };
    },

    read: async (request) => {
      const resource = await readResource(deps, request.tenant, request.params['type'] ?? '', request.params['id'] ?? '');
      const etag = versionHeaders(resource)['ETag'];
      if (request.ifNoneMatch !== undefined && etag !== undefined && versionFromETag(request.ifNoneMatch) === resource.meta?.versionId) {
        return { status: 304, headers: versionHeaders(resource) };
      }
      return { status: 200, resource, headers: versionHeaders(resource) };
    },

    vread: async (request) => {
      const { type = '', id = '', versionId = '' } = request.params;
      const resource = await readResourceVersion(deps, request.tenant, type, id, versionId);
      return { status: 200, resource, headers: versionHeaders(resource) };
    },

    history: async (request) => {
      const { type = '', id = '' } = request.params;
      return { status: 200, resource: await resourceHistory(deps, request.tenant, type, id, request.baseUrl) };
    },

    search: async (request) => ({
      status: 200,
      resource: await searchResources(deps, {
        tenant: request.tenant,
        resourceType: request.params['type'] ?? '',
        query: request.query,
        strict: request.prefer.handling === 'strict',
        baseUrl: request.baseUrl,
        ...(request.signal !== undefined ? { signal: request.signal } : {}),
      }),
    }),

    create: async (request) =>
      request.params['type'] === 'Appointment'
        ? // A client's Appointment is a booking request: no walk-ins (schedule-referral.ts).
          await withBodyShape(deps.validator, ['Appointment'], async () =>
            reservedResponse(request, await bookAppointment(deps, { tenant: request.tenant, appointment: request.body as Appointment })),
          )(request)
        : interactionResponse(
        request,
        await createResource(deps, {
          tenant: request.tenant,
          resourceType: request.params['type'] ?? '',
          body: request.body,
          ...(request.ifNoneExist !== undefined ? { ifNoneExist: request.ifNoneExist } : {}),
        }),
      ),

    update: async (request) => {
      const { version: ifMatch, outcome } = ifMatchVersion(request);
      if (outcome) return outcome;
      // The gateway's own records are worked by use cases that read their elements: shape first.
      const ownRecord = request.params['type'] === 'Appointment' || request.params['type'] === 'Task';
      const shape = ownRecord ? bodyShapeOutcome(deps.validator, request.body, [request.params['type']!]) : undefined;
      if (shape) return { outcome: shape };
      if (request.params['type'] === 'Appointment') {
        const result = await updateAppointmentByClient(deps, {
          tenant: request.tenant,
          id: request.params['id'] ?? '',
          body: request.body,
          ...(ifMatch !== undefined ? { ifMatchVersionId: ifMatch } : {}),
        });
        if (result.kind === 'refused') return { outcome: result.outcome };
        return { status: 200, resource: result.appointment, outcome: operationOutcome('ok', result.issues), headers: versionHeaders(result.appointment) };
      }
      if (request.params['type'] === 'Task') {
        // A client's Task update is a coordinator's decision on the referral, not a plain write.
        return confirmSiteResponse(
          await updateReferralTaskByClient(deps, {
            tenant: request.tenant,
            id: request.params['id'] ?? '',
            body: request.body,
            ...(ifMatch !== undefined ? { ifMatchVersionId: ifMatch } : {}),
          }),
        );
      }
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
    },

    confirmSite: withBodyShape(deps.validator, ['Parameters'], async (request) => {
      const { version: ifMatch, outcome } = ifMatchVersion(request);
      if (outcome) return outcome;
      const { values, issues } = readOperationParameters(confirmSiteDefinition, request);
      if (issues.length > 0) return { outcome: badRequest(issues) };
      const location = values['location'] as Reference;
      const index = ((request.body as Parameters).parameter ?? []).findIndex((p) => p.name === 'location');
      return confirmSiteResponse(
        await confirmReferralSite(deps, {
          tenant: request.tenant,
          taskId: request.params['id'] ?? '',
          location,
          expression: `Parameters.parameter[${index}].valueReference`,
          ...(ifMatch !== undefined ? { ifMatchVersionId: ifMatch } : {}),
        }),
      );
    }),

    recordVerification: withBodyShape(deps.validator, ['Parameters'], async (request) => {
      const { verification, issues } = readPhoneVerification(request.body, deps.clock.now());
      if (!verification) return { outcome: badRequest(issues) };
      const result = await recordPhoneVerification(deps, { tenant: request.tenant, taskId: request.params['id'] ?? '', verification });
      if (result.kind === 'refused') return { outcome: result.outcome };
      return { status: 200, resource: result.task, outcome: operationOutcome('ok', []), headers: versionHeaders(result.task) };
    }),

    submitPriorAuth: withBodyShape(deps.validator, ['Parameters'], async (request) => {
      const result = await requestPriorAuthSubmission(deps, { tenant: request.tenant, taskId: request.params['id'] ?? '' });
      if (result.kind === 'refused') return { outcome: result.outcome };
      // Accepted: the payer is called by the queued step; the Task tells how it ended.
      return {
        status: 202,
        outcome: operationOutcome('accepted', [informationIssue('informational', `The prior authorization will be sent; follow Task/${result.task.id}`)]),
      };
    }),

    findAppointments: withBodyShape(deps.validator, ['Parameters'], async (request) => {
      const parsed = findParameters(request);
      if (parsed.issues.length > 0 || parsed.serviceRequestId === undefined) return { outcome: badRequest(parsed.issues) };
      const result = await findAppointments(deps, {
        tenant: request.tenant,
        serviceRequestId: parsed.serviceRequestId,
        count: parsed.count,
        filters: parsed.filters,
        window: parsed.window,
        ...(parsed.sites ? { sites: parsed.sites } : {}),
      });
      if (result.kind === 'refused') return { outcome: result.outcome };
      // Sites asked for but left out travel as a searchset's OperationOutcome entry (search.mode
      // outcome, https://hl7.org/fhir/R4/bundle-definitions.html#Bundle.entry.search.mode).
      const outcomeEntry = result.issues.length > 0 ? [{ fullUrl: `urn:uuid:${randomUUID()}`, resource: operationOutcome('find-sites', result.issues), search: { mode: 'outcome' as const } }] : [];
      return {
        status: 200,
        resource: {
          resourceType: 'Bundle',
          type: 'searchset',
          total: result.appointments.length,
          entry: [...result.appointments.map((resource) => ({ fullUrl: `urn:uuid:${randomUUID()}`, resource, search: { mode: 'match' as const } })), ...outcomeEntry],
        },
      };
    }),

    holdAppointment: withBodyShape(deps.validator, ['Parameters', 'Appointment'], async (request) => {
      const appointment = appointmentParameter(request.body);
      if (!appointment.resource) return { outcome: badRequest(appointment.issues) };
      return reservedResponse(request, await holdAppointment(deps, { tenant: request.tenant, appointment: appointment.resource }));
    }),

    bookAppointment: withBodyShape(deps.validator, ['Parameters', 'Appointment'], async (request) => {
      const appointment = appointmentParameter(request.body);
      if (!appointment.resource) return { outcome: badRequest(appointment.issues) };
      return reservedResponse(request, await bookAppointment(deps, { tenant: request.tenant, appointment: appointment.resource }));
    }),

    unsupported: async (request) => ({
      outcome: methodNotAllowed(`${request.method} is not supported on this path; see /fhir/metadata for what this server does`),
    }),
  };
}
