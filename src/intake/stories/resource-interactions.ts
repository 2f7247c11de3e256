/**
 * The plain RESTful interactions (https://hl7.org/fhir/R4/http.html) on the resource types the
 * gateway keeps: read, vread, history, search, create and update. The infusion-specific story
 * (ServiceRequest intake) lives in create-service-request.ts; this file routes to it.
 */
import type { Bundle, Coverage, OperationOutcomeIssue, Resource } from 'fhir/r4.js';
import {
  badRequest,
  errorIssue,
  hasErrors,
  informationIssue,
  methodNotAllowed,
  notFound,
  preconditionFailed,
  unprocessable,
} from '../../fhir/outcomes.js';
import { sameContent, withServerId } from '../../fhir/resources.js';
import { parseSearchQuery, searchsetBundle } from '../../fhir/search-query.js';
import { isSupportedSearchCriterion } from '../../fhir/search-parameters.js';
import type { ResourceWriter, TenantId } from '../../ports/resource-store.js';
import { findByConditionalQueryLocked } from './conditional.js';
import { createServiceRequest } from './create-service-request.js';
import { updateServiceRequest } from '../../order-changes/stories/update-service-request.js';
import { DIRECTORY_TYPES, visibleTenants, type GatewayDeps } from '../../ports/gateway-deps.js';
import { VERIFIED_COVERAGE_ID_PREFIX, VERIFIED_COVERAGE_IDENTIFIER_SYSTEM } from '../../coverage/rules/coverage-outcome.js';
import { refusal, transactionUnlessRefused, type Refusal } from '../../ports/refusal.js';

/**
 * Types a client can create and update directly: what an EHR sends along with a referral, and the
 * directory. Task and Appointment are the gateway's own records of its decisions, so clients cannot
 * write them; ServiceRequests go through intake.
 */
export const WRITABLE_TYPES: readonly string[] = ['Patient', 'Practitioner', 'PractitionerRole', 'Coverage', ...DIRECTORY_TYPES];

/** Types a client can read and search. */
export const READABLE_TYPES: readonly string[] = ['ServiceRequest', 'Task', 'Appointment', ...WRITABLE_TYPES];

export type InteractionResult = { kind: 'ok'; status: 200 | 201; resource: Resource; issues: OperationOutcomeIssue[] } | Refusal;

const refused = refusal;

/** A read, vread, history or search: what it found, or the refusal (docs/architecture.md, "One way to refuse"). */
export type ReadResult<T> = { kind: 'ok'; value: T } | Refusal;

/** The 404 for a type no client reads here, or undefined when the type is readable. */
function unreadableType(resourceType: string): Refusal | undefined {
  return READABLE_TYPES.includes(resourceType) ? undefined : { kind: 'refused', outcome: notFound(`Resource type ${resourceType}`) };
}

/**
 * A resource's current version (read), or the version asked for (vread):
 * https://hl7.org/fhir/R4/http.html#read and #vread.
 */
export async function readResource(
  deps: Pick<GatewayDeps, 'store' | 'tenancy'>,
  tenant: TenantId,
  target: { resourceType: string; id: string; versionId?: string },
): Promise<ReadResult<Resource>> {
  const { resourceType, id, versionId } = target;
  const unreadable = unreadableType(resourceType);
  if (unreadable) return unreadable;
  const tenants = visibleTenants(deps.tenancy, tenant, resourceType);
  if (versionId === undefined) {
    const resource = await deps.store.read(tenants, resourceType, id);
    return resource ? { kind: 'ok', value: resource } : { kind: 'refused', outcome: notFound(resourceType, id) };
  }
  const version = await deps.store.readVersion(tenants, resourceType, id, versionId);
  return version ? { kind: 'ok', value: version } : { kind: 'refused', outcome: notFound(`${resourceType}/${id}/_history`, versionId) };
}

export async function resourceHistory(
  deps: Pick<GatewayDeps, 'store' | 'tenancy'>,
  tenant: TenantId,
  resourceType: string,
  id: string,
  baseUrl: string,
): Promise<ReadResult<Bundle>> {
  const unreadable = unreadableType(resourceType);
  if (unreadable) return unreadable;
  const versions = await deps.store.history(visibleTenants(deps.tenancy, tenant, resourceType), resourceType, id);
  if (versions.length === 0) return { kind: 'refused', outcome: notFound(resourceType, id) };
  const bundle: Bundle = {
    resourceType: 'Bundle',
    type: 'history',
    total: versions.length,
    entry: versions.map((resource) => ({
      fullUrl: `${baseUrl}/${resourceType}/${id}`,
      resource,
      request: {
        method: resource.meta?.versionId === '1' ? 'POST' : 'PUT',
        url: resource.meta?.versionId === '1' ? resourceType : `${resourceType}/${id}`,
      },
      response: {
        status: resource.meta?.versionId === '1' ? '201 Created' : '200 OK',
        ...(resource.meta?.lastUpdated ? { lastModified: resource.meta.lastUpdated } : {}),
      },
    })),
  };
  return { kind: 'ok', value: bundle };
}

export async function searchResources(
  deps: Pick<GatewayDeps, 'store' | 'tenancy'>,
  input: {
    tenant: TenantId;
    resourceType: string;
    query: ReadonlyArray<readonly [string, string]>;
    strict: boolean;
    baseUrl: string;
    /** Aborted when the client went away: the store cancels the query (docs/resilience.md). */
    signal?: AbortSignal;
  },
): Promise<ReadResult<Bundle>> {
  const unreadable = unreadableType(input.resourceType);
  if (unreadable) return unreadable;
  const parsed = parseSearchQuery(input.resourceType, input.query, { strict: input.strict, isSupported: isSupportedSearchCriterion });
  if (hasErrors(parsed.issues)) return { kind: 'refused', outcome: badRequest(parsed.issues) };
  const result = await deps.store.search({
    resourceType: input.resourceType,
    tenants: visibleTenants(deps.tenancy, input.tenant, input.resourceType),
    criteria: parsed.criteria,
    // One row more than the page tells whether there is a next page without a second query.
    count: parsed.count + 1,
    offset: parsed.offset,
    // Counted only on request (`_total=accurate|estimate`, or `_count=0`, which asks for nothing
    // else): a count costs every match, a page only its rows (https://hl7.org/fhir/R4/search.html#total).
    withTotal: parsed.total !== 'none' || parsed.count === 0,
    ...(parsed.sort ? { sort: parsed.sort } : {}),
    ...(parsed.cursor !== undefined ? { after: parsed.cursor } : {}),
    ...(input.signal !== undefined ? { signal: input.signal } : {}),
  });
  const hasMore = result.resources.length > parsed.count && parsed.count > 0;
  const nextCursor = hasMore ? result.cursors?.[parsed.count - 1] : undefined;
  // Without a count, the total is still known for free when this offset page is the last one.
  const total =
    result.total ?? (!hasMore && parsed.cursor === undefined && parsed.count > 0 ? parsed.offset + result.resources.length : undefined);
  const bundle = searchsetBundle({
    baseUrl: input.baseUrl,
    resourceType: input.resourceType,
    query: input.query,
    resources: result.resources.slice(0, parsed.count),
    ...(total !== undefined ? { total } : {}),
    count: parsed.count,
    offset: parsed.offset,
    ...(parsed.cursor !== undefined ? { cursor: parsed.cursor } : {}),
    ...(nextCursor !== undefined ? { nextCursor } : {}),
    warnings: parsed.issues,
  });
  return { kind: 'ok', value: bundle };
}

function checkBodyType(body: unknown, resourceType: string): OperationOutcomeIssue[] {
  if (typeof body !== 'object' || body === null || Array.isArray(body)) {
    return [errorIssue('structure', `The body must be a FHIR ${resourceType} resource (a JSON object)`)];
  }
  const actual = (body as { resourceType?: unknown }).resourceType;
  if (actual !== resourceType) {
    return [
      errorIssue(
        'invalid',
        `Expected a ${resourceType} at this endpoint but got ${typeof actual === 'string' ? actual : 'no resourceType'}`,
        'resourceType',
      ),
    ];
  }
  return [];
}

export async function createResource(
  deps: GatewayDeps,
  input: { tenant: TenantId; resourceType: string; body: unknown; ifNoneExist?: string },
): Promise<InteractionResult> {
  if (input.resourceType === 'ServiceRequest') {
    const result = await createServiceRequest(deps, input);
    if (result.kind === 'refused') return result;
    return { kind: 'ok', status: result.kind === 'created' ? 201 : 200, resource: result.serviceRequest, issues: result.issues };
  }
  if (!WRITABLE_TYPES.includes(input.resourceType)) {
    return refused(methodNotAllowed(`${input.resourceType} resources cannot be created by clients of this server`));
  }
  const typeIssues = checkBodyType(input.body, input.resourceType);
  if (typeIssues.length > 0) return refused(badRequest(typeIssues));
  const reserved = gatewayRecordIssues(input.body as Resource);
  if (reserved.length > 0) return refused(unprocessable(reserved));
  const issues = deps.validator.validateBase(input.body);
  if (hasErrors(issues)) return refused(badRequest(issues));
  const claimed = (input.body as Resource).meta?.profile ?? [];
  const profileIssues =
    claimed.length > 0 ? deps.validator.validateProfiles(input.body as Resource, claimed, { unknownProfile: 'warning' }) : [];
  if (hasErrors(profileIssues)) return refused(unprocessable(profileIssues));

  const resource = withServerId(input.body as Resource, deps.newId());
  const now = deps.clock.now();
  const result = await transactionUnlessRefused(deps.store, async (tx): Promise<{ created: boolean; resource: Resource } | Refusal> => {
    if (input.ifNoneExist !== undefined) {
      const matches = await findByConditionalQueryLocked(
        tx,
        deps.tenancy,
        input.tenant,
        input.resourceType,
        input.ifNoneExist,
        'If-None-Exist',
      );
      if (matches.kind === 'invalid') return refused(badRequest(matches.issues));
      if (matches.resources.length > 1) {
        return refused(
          preconditionFailed(
            `If-None-Exist matched ${matches.resources.length} ${input.resourceType} resources; it must match at most one`,
            'If-None-Exist',
          ),
        );
      }
      const [match] = matches.resources;
      if (match) return { created: false, resource: match };
    }
    return { created: true, resource: await tx.create(input.tenant, resource, now) };
  });
  if ('kind' in result) return result;
  if (!result.created) {
    return {
      kind: 'ok',
      status: 200,
      resource: result.resource,
      issues: [informationIssue('duplicate', 'If-None-Exist matched an existing resource; nothing was created')],
    };
  }
  const created = result.resource;
  deps.logger.info('resource created', { resourceType: input.resourceType, id: created.id });
  return { kind: 'ok', status: 201, resource: created, issues: [...issues, ...profileIssues] };
}

/**
 * A verified Coverage is the gateway's record of its own check (verify-coverage.ts): payers and
 * EHRs read it, nobody but the coverage step writes it.
 */
export function gatewayRecordIssues(resource: Resource, urlId?: string): OperationOutcomeIssue[] {
  if (resource.resourceType !== 'Coverage') return [];
  const coverage = resource as Coverage;
  // Read before or beside base validation (a transaction collects every issue): tolerate any shape.
  const identifiers: unknown[] = Array.isArray(coverage.identifier) ? coverage.identifier : [];
  const claimed = identifiers.findIndex((i) => (i as { system?: unknown } | null)?.system === VERIFIED_COVERAGE_IDENTIFIER_SYSTEM);
  if (claimed >= 0) {
    return [
      errorIssue(
        'business-rule',
        "A verified Coverage is the gateway's own record of its check; clients cannot write one",
        `Coverage.identifier[${claimed}]`,
      ),
    ];
  }
  const id: unknown = urlId ?? coverage.id;
  if (typeof id === 'string' && id.startsWith(VERIFIED_COVERAGE_ID_PREFIX)) {
    return [
      errorIssue(
        'business-rule',
        `Coverage ids starting with ${VERIFIED_COVERAGE_ID_PREFIX} are the gateway's verified coverages; clients cannot write them`,
        'Coverage.id',
      ),
    ];
  }
  return [];
}

export async function updateResource(
  deps: GatewayDeps,
  input: { tenant: TenantId; resourceType: string; id: string; body: unknown; ifMatch?: string },
): Promise<InteractionResult> {
  // An updated order is a change the referral follows (docs/order-changes.md), not a plain write.
  if (input.resourceType === 'ServiceRequest') return updateServiceRequest(deps, input);
  if (!WRITABLE_TYPES.includes(input.resourceType)) {
    return refused(methodNotAllowed(`${input.resourceType} resources cannot be updated by clients of this server`));
  }
  const typeIssues = checkBodyType(input.body, input.resourceType);
  if (typeIssues.length > 0) return refused(badRequest(typeIssues));
  const body = input.body as Resource;
  const reserved = gatewayRecordIssues(body, input.id);
  if (reserved.length > 0) return refused(unprocessable(reserved));
  // https://hl7.org/fhir/R4/http.html#update: the body's id must be present and equal the URL's.
  if (body.id !== input.id) {
    return refused(
      badRequest([
        errorIssue(
          'invalid',
          `The resource id (${body.id ?? 'missing'}) must equal the id in the URL (${input.id})`,
          `${input.resourceType}.id`,
        ),
      ]),
    );
  }
  const issues = deps.validator.validateBase(body);
  if (hasErrors(issues)) return refused(badRequest(issues));
  const claimed = body.meta?.profile ?? [];
  const profileIssues = claimed.length > 0 ? deps.validator.validateProfiles(body, claimed, { unknownProfile: 'warning' }) : [];
  if (hasErrors(profileIssues)) return refused(unprocessable(profileIssues));

  const now = deps.clock.now();
  const resource = withServerId(body, input.id);
  const updated = await transactionUnlessRefused(deps.store, (tx) => updateUnlessUnchanged(tx, input.tenant, resource, now, input.ifMatch));
  if (updated.kind === 'refused') return updated;
  deps.logger.info('resource updated', {
    resourceType: input.resourceType,
    id: updated.resource.id,
    versionId: updated.resource.meta?.versionId,
  });
  return { kind: 'ok', status: updated.status, resource: updated.resource, issues: [...issues, ...profileIssues] };
}

/**
 * Update, except when the new content equals the current version: then the current version is
 * kept, so re-sending a resource (or reloading the directory) does not churn versions. The
 * If-Match check still applies.
 */
export async function updateUnlessUnchanged<T extends Resource>(
  tx: ResourceWriter,
  tenant: TenantId,
  resource: T & { id: string },
  now: Date,
  ifMatchVersionId: string | undefined,
): Promise<{ kind: 'updated'; resource: Resource; status: 200 | 201 } | Refusal> {
  const current = await tx.read([tenant], resource.resourceType, resource.id);
  if (current && sameContent(current, resource)) {
    if (ifMatchVersionId !== undefined && current.meta?.versionId !== ifMatchVersionId) {
      return refusal(
        preconditionFailed(
          `If-Match names version ${ifMatchVersionId} but the current version is ${current.meta?.versionId ?? 'unknown'}`,
          'If-Match',
        ),
      );
    }
    return { kind: 'updated', resource: current, status: 200 };
  }
  const stored = await tx.update(tenant, resource, now, ifMatchVersionId !== undefined ? { ifMatchVersionId } : {});
  return { kind: 'updated', resource: stored, status: current ? 200 : 201 };
}
