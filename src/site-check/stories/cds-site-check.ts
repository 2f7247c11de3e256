/**
 * Story: before an infusion order leaves the EHR, the EHR calls our CDS Hooks service
 * (https://cds-hooks.hl7.org/2.0/) on `order-select` or `order-sign`; we run the site check on each
 * draft infusion order and answer a warning card where the site looks like an auto-fill (field note 000),
 * with a suggestion that puts the best site on the order. A good order gets no card.
 *
 * Patient and Coverage come from the hook's prefetch; where the client sent none, we read them from
 * the hook's `fhirServer` with its `fhirAuthorization` token, but only from a server on our list
 * (the URL comes from the caller: contacting any URL would let a caller aim our requests, and the
 * token, anywhere). Data we need and cannot get is a 412, as the spec asks
 * (https://cds-hooks.hl7.org/2.0/#prefetch-template, "Prefetch tokens" / "FHIR resource access").
 *
 * `answerSiteCheckHook` is the whole story without Express: the router and the benchmark call it.
 */
import { randomUUID } from 'node:crypto';
import type {
  Bundle,
  Coding,
  Coverage,
  FhirResource,
  Location,
  OperationOutcome,
  OperationOutcomeIssue,
  Patient,
  Reference,
  Resource,
  ServiceRequest,
} from 'fhir/r4.js';
import { siteCheckCard, type CdsCard, type CdsServiceResponse } from '../rules/cds-cards.js';
import type { CatalogDrug } from '../../directory/rules/drug-catalog.js';
import { checkReferralSite, type SiteCheckInput, type SiteCheckPolicy } from '../rules/site-check.js';
import type { SiteCheckResult } from '../rules/site-check-types.js';
import type { SiteDirectory, SiteDirectorySource } from '../../directory/rules/site-directory.js';
import { badRequest, errorIssue, hasErrors, notFound, operationOutcome, prefixIssues } from '../../fhir/outcomes.js';
import { FHIR_ID_SOURCE, isFhirId } from '../../fhir/ids.js';
import { parseRelativeReference } from '../../fhir/references.js';
import type { Logger } from '../../logging/logger.js';
import { EhrCallError, type EhrFhir } from '../../ports/ehr-fhir.js';
import { cdsHooksRequestShapeIssues } from '../rules/cds-hooks-request-schema.js';
import type { ResourceValidator } from '../../ports/gateway-deps.js';
import type { Refusal } from '../../ports/refusal.js';

export interface CdsDeps {
  sites: SiteDirectorySource;
  sitePolicy: SiteCheckPolicy;
  drugs: { findCatalogDrug(codings: readonly Coding[]): CatalogDrug | undefined };
  logger: Logger;
  /** FHIR base URLs of EHRs we may read from when a hook names them as `fhirServer`. */
  trustedFhirServers: readonly string[];
  /** A client for one EHR's FHIR server (createFhirKitEhr with a short time-out: the hook's budget is ~500 ms). */
  openFhirServer(baseUrl: string, bearerToken?: string): EhrFhir;
  /** Directory Location ids the patient was treated at before, when the deployment knows. */
  previousSiteIds?(patientId: string): Promise<string[]>;
  /** Card and suggestion uuids; random by default. */
  newUuid?(): string;
  /** Base R4 checks of the resources a hook carries (draft orders, prefetch), before the site check reads them. */
  validator?: Pick<ResourceValidator, 'validateBase'>;
}

export type CdsHook = 'order-sign' | 'order-select';

/** https://cds-hooks.hl7.org/2.0/#response */
export interface CdsServiceDefinition {
  id: string;
  hook: CdsHook;
  title: string;
  description: string;
  prefetch: Record<string, string>;
  usageRequirements?: string;
}

export const SITE_CHECK_PREFETCH: Readonly<Record<string, string>> = {
  patient: 'Patient/{{context.patientId}}',
  coverage: 'Coverage?patient={{context.patientId}}&status=active',
};

/**
 * A service definition names exactly one hook (https://cds-hooks.hl7.org/2.0/#response), so each
 * hook gets its own service id. `infusion-site-check` also answers `order-select` requests, as the
 * issue names it for both; an EHR that follows discovery calls `infusion-site-check-select`.
 */
export const SITE_CHECK_SERVICES: readonly CdsServiceDefinition[] = [
  {
    id: 'infusion-site-check',
    hook: 'order-sign',
    title: 'Infusion site check',
    description:
      "Checks that the infusion site named by each draft infusion order gives the drug, is open, in the network of the patient's plan, near the patient and the one the patient chose; suggests a better site where it is not.",
    prefetch: { ...SITE_CHECK_PREFETCH },
    usageRequirements:
      'Send infusion orders as ServiceRequests whose code carries an RxNorm or HCPCS coding of the drug and whose locationReference names the site.',
  },
  {
    id: 'infusion-site-check-select',
    hook: 'order-select',
    title: 'Infusion site check (order selection)',
    description:
      'The infusion site check on the orders just selected (context.selections), so a wrong site shows while the order is being written.',
    prefetch: { ...SITE_CHECK_PREFETCH },
    usageRequirements:
      'Send infusion orders as ServiceRequests whose code carries an RxNorm or HCPCS coding of the drug and whose locationReference names the site.',
  },
];

const HOOKS_BY_SERVICE: Readonly<Record<string, readonly CdsHook[]>> = {
  'infusion-site-check': ['order-sign', 'order-select'],
  'infusion-site-check-select': ['order-select'],
};

export function cdsServiceDiscovery(): { services: CdsServiceDefinition[] } {
  return { services: SITE_CHECK_SERVICES.map((s) => ({ ...s, prefetch: { ...s.prefetch } })) };
}

export function isSiteCheckService(serviceId: string): boolean {
  return Object.hasOwn(HOOKS_BY_SERVICE, serviceId);
}

/** A hook request as we use it, after validation. */
export interface SiteCheckHookRequest {
  hook: CdsHook;
  hookInstance: string;
  fhirServer?: string;
  accessToken?: string;
  patientId: string;
  draftOrders: Bundle<FhirResource>;
  /** `Type/id` of the selected orders (order-select only). */
  selections?: string[];
  /** Prefetch values by key: a resource, or null when the client found nothing. Absent keys are missing. */
  prefetch: Record<string, FhirResource | null>;
}

export type SiteCheckHookAnswer = { kind: 'cards'; response: CdsServiceResponse } | Refusal;

const SELECTION = new RegExp(`^([A-Z][A-Za-z]+)/(${FHIR_ID_SOURCE})$`);

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function isResource(value: unknown): value is FhirResource {
  return isRecord(value) && typeof value['resourceType'] === 'string';
}

/**
 * Checks a hook request and lists every problem at once, each with a path into the request
 * (`context.draftOrders.entry[1].resource`), so an EHR integrator fixes it in one round trip.
 */
export function parseSiteCheckRequest(serviceId: string, body: unknown): { request: SiteCheckHookRequest } | { outcome: OperationOutcome } {
  const issues: OperationOutcomeIssue[] = [];
  if (!isRecord(body)) return { outcome: badRequest([errorIssue('structure', 'The hook request must be a JSON object', 'hook')]) };
  // The shape first (a JSON Schema of the CDS Hooks request): nothing below reads a malformed one.
  const shape = cdsHooksRequestShapeIssues(body);
  if (shape.length > 0) return { outcome: badRequest(shape) };
  const allowed = HOOKS_BY_SERVICE[serviceId] ?? [];

  const hook = body['hook'];
  if (typeof hook !== 'string' || hook === '') issues.push(errorIssue('required', 'hook is required', 'hook'));
  else if (!allowed.includes(hook as CdsHook))
    issues.push(errorIssue('not-supported', `Service ${serviceId} answers ${allowed.join(' and ')}, not ${hook}`, 'hook'));

  const hookInstance = body['hookInstance'];
  if (typeof hookInstance !== 'string' || hookInstance.trim() === '')
    issues.push(errorIssue('required', 'hookInstance (a UUID for this call) is required', 'hookInstance'));

  const fhirServer = body['fhirServer'];
  if (fhirServer !== undefined && (typeof fhirServer !== 'string' || !isHttpUrl(fhirServer))) {
    issues.push(errorIssue('value', 'fhirServer must be the absolute http(s) base URL of the FHIR server', 'fhirServer'));
  }
  const accessToken = parseAuthorization(body['fhirAuthorization'], fhirServer, issues);

  const context = body['context'];
  let patientId: string | undefined;
  let draftOrders: Bundle<FhirResource> | undefined;
  let selections: string[] | undefined;
  if (!isRecord(context)) {
    issues.push(errorIssue('required', 'context is required: an object with patientId and draftOrders', 'context'));
  } else {
    const rawPatientId = context['patientId'];
    if (typeof rawPatientId !== 'string' || rawPatientId === '')
      issues.push(errorIssue('required', 'context.patientId is required', 'context.patientId'));
    else if (!isFhirId(rawPatientId))
      issues.push(errorIssue('value', 'context.patientId must be a FHIR id (letters, digits, - and ., at most 64)', 'context.patientId'));
    else patientId = rawPatientId;
    draftOrders = parseDraftOrders(context['draftOrders'], issues);
    if (hook === 'order-select') selections = parseSelections(context['selections'], draftOrders, issues);
  }

  const prefetch = parsePrefetch(body['prefetch'], patientId, issues);

  if (issues.length > 0 || patientId === undefined || draftOrders === undefined) return { outcome: badRequest(issues) };
  const request: SiteCheckHookRequest = {
    hook: hook as CdsHook,
    hookInstance: hookInstance as string,
    patientId,
    draftOrders,
    prefetch,
  };
  if (typeof fhirServer === 'string') request.fhirServer = fhirServer;
  if (accessToken !== undefined) request.accessToken = accessToken;
  if (selections !== undefined) request.selections = selections;
  return { request };
}

function isHttpUrl(value: string): boolean {
  try {
    const url = new URL(value);
    return (url.protocol === 'http:' || url.protocol === 'https:') && url.username === '' && url.password === '';
  } catch {
    return false;
  }
}

/** https://cds-hooks.hl7.org/2.0/#passing-the-access-token-to-the-cds-service */
function parseAuthorization(value: unknown, fhirServer: unknown, issues: OperationOutcomeIssue[]): string | undefined {
  if (value === undefined || value === null) return undefined;
  if (!isRecord(value)) {
    issues.push(errorIssue('structure', 'fhirAuthorization must be an object', 'fhirAuthorization'));
    return undefined;
  }
  const token = value['access_token'];
  const tokenType = value['token_type'];
  let ok = true;
  if (typeof token !== 'string' || token === '') {
    issues.push(errorIssue('required', 'fhirAuthorization.access_token is required', 'fhirAuthorization.access_token'));
    ok = false;
  }
  if (typeof tokenType !== 'string' || tokenType.toLowerCase() !== 'bearer') {
    issues.push(errorIssue('value', "fhirAuthorization.token_type must be 'Bearer'", 'fhirAuthorization.token_type'));
    ok = false;
  }
  if (fhirServer === undefined) {
    issues.push(errorIssue('required', 'fhirServer is required with fhirAuthorization', 'fhirServer'));
    ok = false;
  }
  return ok ? (token as string) : undefined;
}

function parseDraftOrders(value: unknown, issues: OperationOutcomeIssue[]): Bundle<FhirResource> | undefined {
  const at = 'context.draftOrders';
  if (value === undefined) {
    issues.push(errorIssue('required', 'context.draftOrders (a Bundle of the draft orders) is required', at));
    return undefined;
  }
  if (!isRecord(value) || value['resourceType'] !== 'Bundle') {
    issues.push(errorIssue('structure', 'context.draftOrders must be a FHIR Bundle', at));
    return undefined;
  }
  const entries = value['entry'];
  if (entries === undefined) return value as unknown as Bundle<FhirResource>;
  if (!Array.isArray(entries)) {
    issues.push(errorIssue('structure', 'context.draftOrders.entry must be an array', `${at}.entry`));
    return undefined;
  }
  let ok = true;
  entries.forEach((entry: unknown, index) => {
    if (!isRecord(entry) || !isResource(entry['resource'])) {
      issues.push(errorIssue('structure', 'Each draft order entry needs a resource with a resourceType', `${at}.entry[${index}].resource`));
      ok = false;
    }
  });
  return ok ? (value as unknown as Bundle<FhirResource>) : undefined;
}

function parseSelections(
  value: unknown,
  draftOrders: Bundle<FhirResource> | undefined,
  issues: OperationOutcomeIssue[],
): string[] | undefined {
  const at = 'context.selections';
  if (!Array.isArray(value) || value.length === 0) {
    issues.push(errorIssue('required', 'context.selections (the selected orders, as Type/id) is required for order-select', at));
    return undefined;
  }
  const ids = new Set((draftOrders?.entry ?? []).map((e) => (e.resource?.id ? `${e.resource.resourceType}/${e.resource.id}` : '')));
  let ok = true;
  value.forEach((selection: unknown, index) => {
    if (typeof selection !== 'string' || !SELECTION.test(selection)) {
      issues.push(errorIssue('value', 'A selection is a relative reference Type/id', `${at}[${index}]`));
      ok = false;
    } else if (draftOrders && !ids.has(selection)) {
      issues.push(errorIssue('not-found', 'A selection must name an order in context.draftOrders', `${at}[${index}]`));
      ok = false;
    }
  });
  return ok ? (value as string[]) : undefined;
}

/**
 * Prefetch values: a resource, null (the client looked and found nothing), or an
 * OperationOutcome (the client's query failed: then we fetch ourselves).
 */
function parsePrefetch(
  value: unknown,
  patientId: string | undefined,
  issues: OperationOutcomeIssue[],
): Record<string, FhirResource | null> {
  const prefetch: Record<string, FhirResource | null> = {};
  if (value === undefined || value === null) return prefetch;
  if (!isRecord(value)) {
    issues.push(errorIssue('structure', 'prefetch must be an object of prefetch keys', 'prefetch'));
    return prefetch;
  }
  for (const [key, item] of Object.entries(value)) {
    if (item === null) {
      prefetch[key] = null;
      continue;
    }
    if (!isResource(item)) {
      issues.push(errorIssue('structure', `prefetch.${key} must be a FHIR resource or null`, `prefetch.${key}`));
      continue;
    }
    if (item.resourceType === 'OperationOutcome') continue;
    prefetch[key] = item;
  }
  const patient = prefetch['patient'];
  if (patient) {
    if (patient.resourceType !== 'Patient') issues.push(errorIssue('structure', 'prefetch.patient must be a Patient', 'prefetch.patient'));
    else if (patientId !== undefined && patient.id !== undefined && patient.id !== patientId) {
      issues.push(errorIssue('invariant', 'prefetch.patient is not the patient of context.patientId', 'prefetch.patient'));
    }
  }
  const coverage = prefetch['coverage'];
  if (coverage && coverage.resourceType !== 'Bundle')
    issues.push(errorIssue('structure', 'prefetch.coverage must be a search Bundle of Coverage', 'prefetch.coverage'));
  return prefetch;
}

/** A FHIR base URL compared by scheme, host, port and path, without trailing slashes. */
export function normalizeFhirBase(url: string): string | undefined {
  try {
    const parsed = new URL(url);
    if (parsed.search !== '' || parsed.hash !== '') return undefined;
    return `${parsed.origin}${parsed.pathname.replace(/\/+$/, '')}`;
  } catch {
    return undefined;
  }
}

export function isTrustedFhirServer(fhirServer: string, trusted: readonly string[]): boolean {
  const wanted = normalizeFhirBase(fhirServer);
  return wanted !== undefined && trusted.some((t) => normalizeFhirBase(t) === wanted);
}

interface OrderToCheck {
  serviceRequest: ServiceRequest;
  drug: CatalogDrug;
}

/** The draft infusion orders to check: ServiceRequests for catalog drugs, the selected ones on order-select. */
function ordersToCheck(deps: CdsDeps, request: SiteCheckHookRequest): OrderToCheck[] {
  const selected = request.selections ? new Set(request.selections) : undefined;
  const orders: OrderToCheck[] = [];
  for (const entry of request.draftOrders.entry ?? []) {
    const resource = entry.resource;
    if (resource?.resourceType !== 'ServiceRequest') continue;
    if (selected && !(resource.id !== undefined && selected.has(`ServiceRequest/${resource.id}`))) continue;
    const drug = deps.drugs.findCatalogDrug(resource.code?.coding ?? []);
    if (drug) orders.push({ serviceRequest: resource, drug });
  }
  return orders;
}

/** Resources the hook handed us, by `Type/id` and by fullUrl: draft orders and prefetch. */
function resourcePool(request: SiteCheckHookRequest): Map<string, FhirResource> {
  const pool = new Map<string, FhirResource>();
  const add = (resource: FhirResource | null | undefined, fullUrl?: string): void => {
    if (!resource) return;
    if (resource.id !== undefined) pool.set(`${resource.resourceType}/${resource.id}`, resource);
    if (fullUrl) pool.set(fullUrl, resource);
  };
  for (const entry of request.draftOrders.entry ?? []) add(entry.resource, entry.fullUrl);
  for (const value of Object.values(request.prefetch)) {
    if (value?.resourceType === 'Bundle')
      for (const entry of (value as Bundle<FhirResource>).entry ?? []) add(entry.resource, entry.fullUrl);
    else add(value);
  }
  return pool;
}

type Resolver = (reference: Reference | undefined) => FhirResource | undefined;

/** Resolves a reference of this order: contained (`#id`), else among the hook's resources. */
function resolverFor(serviceRequest: ServiceRequest, pool: ReadonlyMap<string, FhirResource>): Resolver {
  return (reference) => {
    const ref = reference?.reference;
    if (ref === undefined) return undefined;
    if (ref.startsWith('#')) return serviceRequest.contained?.find((c) => c.id === ref.slice(1)) as FhirResource | undefined;
    const parsed = parseRelativeReference(ref);
    return parsed ? pool.get(`${parsed.resourceType}/${parsed.id}`) : pool.get(ref);
  };
}

/** The requester and what a PractitionerRole leads to (practitioner, organization, locations). */
function requesterResources(serviceRequest: ServiceRequest, resolve: Resolver): Resource[] {
  const requester = resolve(serviceRequest.requester);
  if (!requester) return [];
  const found: Resource[] = [requester];
  if (requester.resourceType === 'PractitionerRole') {
    for (const reference of [requester.practitioner, requester.organization, ...(requester.location ?? [])]) {
      const resolved = resolve(reference);
      if (resolved) found.push(resolved);
    }
  }
  return found;
}

interface PatientData {
  patient?: Patient;
  /** Whether the patient is known: given, or known not to exist (prefetch null, 404). */
  patientSettled: boolean;
  coverages: Coverage[];
  coveragesSettled: boolean;
}

function bundleResources<T extends FhirResource>(bundle: FhirResource | null | undefined, resourceType: T['resourceType']): T[] {
  if (bundle?.resourceType !== 'Bundle') return [];
  return ((bundle as Bundle<FhirResource>).entry ?? []).map((e) => e.resource).filter((r): r is T => r?.resourceType === resourceType);
}

/** What the prefetch and the orders themselves give about the patient and the coverage. */
function patientDataAtHand(
  request: SiteCheckHookRequest,
  orders: readonly OrderToCheck[],
  pool: ReadonlyMap<string, FhirResource>,
): PatientData {
  const prefetchedPatient = request.prefetch['patient'];
  let patient = prefetchedPatient?.resourceType === 'Patient' ? prefetchedPatient : undefined;
  const coverages = new Map<string, Coverage>();
  let coverageFromOrders = false;
  for (const { serviceRequest } of orders) {
    const resolve = resolverFor(serviceRequest, pool);
    const subject = resolve(serviceRequest.subject);
    if (!patient && subject?.resourceType === 'Patient') patient = subject;
    for (const insurance of serviceRequest.insurance ?? []) {
      const coverage = resolve(insurance);
      if (coverage?.resourceType === 'Coverage') {
        coverages.set(coverage.id ?? `${coverages.size}`, coverage);
        coverageFromOrders = true;
      }
    }
  }
  for (const coverage of bundleResources<Coverage>(request.prefetch['coverage'], 'Coverage'))
    coverages.set(coverage.id ?? `prefetch-${coverages.size}`, coverage);
  return {
    ...(patient ? { patient } : {}),
    patientSettled: patient !== undefined || Object.hasOwn(request.prefetch, 'patient'),
    coverages: [...coverages.values()],
    coveragesSettled: coverageFromOrders || Object.hasOwn(request.prefetch, 'coverage'),
  };
}

function preconditionFailedOutcome(diagnostics: string, expression: string | readonly string[]): OperationOutcome {
  return operationOutcome('precondition-failed', [errorIssue('incomplete', diagnostics, expression)]);
}

/** Reads what prefetch did not give from the hook's FHIR server, or says why it cannot (412). */
async function fetchMissing(deps: CdsDeps, request: SiteCheckHookRequest, data: PatientData): Promise<PatientData | OperationOutcome> {
  const missing = [...(data.patientSettled ? [] : ['patient']), ...(data.coveragesSettled ? [] : ['coverage'])];
  if (missing.length === 0) return data;
  const expressions = missing.map((key) => `prefetch.${key}`);
  if (request.fhirServer === undefined) {
    return preconditionFailedOutcome(
      `The request has no prefetch of ${missing.join(' and ')} and no fhirServer to read them from`,
      expressions,
    );
  }
  if (!isTrustedFhirServer(request.fhirServer, deps.trustedFhirServers)) {
    deps.logger.warn('cds hook names an untrusted fhirServer; not contacted', { hookInstance: request.hookInstance, missing });
    return preconditionFailedOutcome(
      `The request has no prefetch of ${missing.join(' and ')}, and its fhirServer is not one this service is allowed to read from`,
      [...expressions, 'fhirServer'],
    );
  }
  const ehr = deps.openFhirServer(request.fhirServer, request.accessToken);
  try {
    const [patient, coverages] = await Promise.all([
      data.patientSettled ? Promise.resolve(data.patient) : readPatient(ehr, request.patientId),
      data.coveragesSettled ? Promise.resolve(data.coverages) : searchCoverages(ehr, request.patientId),
    ]);
    deps.logger.info('cds hook data read from fhirServer', { hookInstance: request.hookInstance, read: missing });
    return { ...(patient ? { patient } : {}), patientSettled: true, coverages, coveragesSettled: true };
  } catch (err) {
    const status = err instanceof EhrCallError ? err.httpStatus : undefined;
    deps.logger.warn('cds hook could not read from fhirServer', { hookInstance: request.hookInstance, missing, ehrStatus: status ?? null });
    return preconditionFailedOutcome(
      `The request has no prefetch of ${missing.join(' and ')}, and reading them from its fhirServer failed${status === undefined ? '' : ` (HTTP ${status})`}`,
      [...expressions, 'fhirServer'],
    );
  }
}

async function readPatient(ehr: EhrFhir, patientId: string): Promise<Patient | undefined> {
  try {
    return await ehr.read<Patient>('Patient', patientId);
  } catch (err) {
    // No such patient on the EHR: check without one (no home, no stated choice) rather than fail.
    if (err instanceof EhrCallError && (err.httpStatus === 404 || err.httpStatus === 410)) return undefined;
    throw err;
  }
}

/**
 * The prefetch query, run by us. The reference is given as `Patient/<id>`: a bare id is allowed
 * too (https://hl7.org/fhir/R4/search.html#reference), but some servers match only the typed form.
 */
async function searchCoverages(ehr: EhrFhir, patientId: string): Promise<Coverage[]> {
  const coverages: Coverage[] = [];
  await ehr.searchAll(
    'Coverage',
    { patient: `Patient/${patientId}`, status: 'active' },
    async (page) => {
      coverages.push(...bundleResources<Coverage>(page, 'Coverage'));
    },
    { maxPages: 2 },
  );
  return coverages;
}

function requestedLocationOf(serviceRequest: ServiceRequest, directory: SiteDirectory, resolve: Resolver): Location | undefined {
  const reference = serviceRequest.locationReference?.[0];
  const parsed = parseRelativeReference(reference?.reference);
  if (parsed?.resourceType === 'Location' && directory.site(parsed.id)) return undefined;
  const resolved = resolve(reference);
  return resolved?.resourceType === 'Location' ? resolved : undefined;
}

export interface CheckedOrder {
  serviceRequestId?: string;
  drugId: string;
  result: SiteCheckResult;
  card?: CdsCard;
}

/**
 * Answers one hook call: validate, pick the infusion orders, gather Patient and Coverage (prefetch,
 * else the trusted fhirServer), check each order's site, and turn each suspect one into a card.
 */
/**
 * Base R4 issues of the draft orders and prefetched resources, placed inside the hook request
 * (`context.draftOrders.entry[0].resource.code`): the site check reads them as FHIR resources.
 */
function hookResourceIssues(validator: Pick<ResourceValidator, 'validateBase'>, request: SiteCheckHookRequest): OperationOutcomeIssue[] {
  const issues: OperationOutcomeIssue[] = [];
  (request.draftOrders.entry ?? []).forEach((entry, index) => {
    const resource = entry.resource as FhirResource;
    issues.push(
      ...prefixIssues(validator.validateBase(resource), {
        from: resource.resourceType,
        to: `context.draftOrders.entry[${index}].resource`,
      }),
    );
  });
  for (const [key, resource] of Object.entries(request.prefetch)) {
    if (resource) issues.push(...prefixIssues(validator.validateBase(resource), { from: resource.resourceType, to: `prefetch.${key}` }));
  }
  return issues.filter((i) => i.severity === 'error' || i.severity === 'fatal');
}

export async function answerSiteCheckHook(deps: CdsDeps, call: { serviceId: string; body: unknown }): Promise<SiteCheckHookAnswer> {
  if (!isSiteCheckService(call.serviceId)) return { kind: 'refused', outcome: notFound('CDS service', call.serviceId) };
  const parsed = parseSiteCheckRequest(call.serviceId, call.body);
  if ('outcome' in parsed) return { kind: 'refused', outcome: parsed.outcome };
  const { request } = parsed;
  const resourceIssues = deps.validator ? hookResourceIssues(deps.validator, request) : [];
  if (hasErrors(resourceIssues)) return { kind: 'refused', outcome: badRequest(resourceIssues) };

  const orders = ordersToCheck(deps, request);
  if (orders.length === 0) {
    deps.logger.info('cds site check', {
      serviceId: call.serviceId,
      hook: request.hook,
      hookInstance: request.hookInstance,
      orders: 0,
      cards: 0,
    });
    return { kind: 'cards', response: { cards: [] } };
  }

  const pool = resourcePool(request);
  const gathered = await fetchMissing(deps, request, patientDataAtHand(request, orders, pool));
  if ('resourceType' in gathered) return { kind: 'refused', outcome: gathered };

  const [directory, previousSiteIds] = await Promise.all([
    deps.sites.current(),
    deps.previousSiteIds?.(request.patientId) ?? Promise.resolve([]),
  ]);
  const checked = orders.map((order) => checkOrder(deps, { directory, order, pool, gathered, previousSiteIds }));
  const cards = checked.map((c) => c.card).filter((c): c is CdsCard => c !== undefined);
  deps.logger.info('cds site check', {
    serviceId: call.serviceId,
    hook: request.hook,
    hookInstance: request.hookInstance,
    orders: checked.length,
    cards: cards.length,
    decisions: checked.map((c) => c.result.decision),
    reasons: [...new Set(checked.flatMap((c) => c.result.reasons.map((r) => r.code)))],
  });
  return { kind: 'cards', response: { cards } };
}

function checkOrder(
  deps: CdsDeps,
  context: {
    directory: SiteDirectory;
    order: OrderToCheck;
    pool: ReadonlyMap<string, FhirResource>;
    gathered: PatientData;
    previousSiteIds: readonly string[];
  },
): CheckedOrder {
  const { directory, order, pool, gathered } = context;
  const { serviceRequest, drug } = order;
  const resolve = resolverFor(serviceRequest, pool);
  const subject = resolve(serviceRequest.subject);
  const patient = subject?.resourceType === 'Patient' ? subject : gathered.patient;
  const requestedLocation = requestedLocationOf(serviceRequest, directory, resolve);
  const input: SiteCheckInput = {
    serviceRequest,
    drug,
    coverages: gathered.coverages,
    requesterResources: requesterResources(serviceRequest, resolve),
    previousSiteIds: context.previousSiteIds,
    ...(patient ? { patient } : {}),
    ...(requestedLocation ? { requestedLocation } : {}),
  };
  const result = checkReferralSite(directory, input, deps.sitePolicy);
  const requestedSiteName = result.requestedLocationId === undefined ? undefined : directory.site(result.requestedLocationId)?.name;
  const card = siteCheckCard({
    serviceRequest,
    drug,
    result,
    ...(requestedSiteName !== undefined ? { requestedSiteName } : {}),
    source: { label: 'Infusion network site check' },
    newUuid: deps.newUuid ?? randomUUID,
  });
  return {
    ...(serviceRequest.id !== undefined ? { serviceRequestId: serviceRequest.id } : {}),
    drugId: drug.id,
    result,
    ...(card ? { card } : {}),
  };
}
