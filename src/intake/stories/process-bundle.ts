/**
 * Story: an EHR posts a transaction or batch Bundle to /fhir, typically a ServiceRequest with its
 * Patient, Practitioner, Coverage and Location (https://hl7.org/fhir/R4/http.html#transaction).
 *
 * transaction: every entry is checked first and every problem is reported at once; then all
 *   entries are stored in one database transaction, or none. `urn:uuid:` fullUrls become server
 *   ids and the references between entries are rewritten.
 * batch: each entry is its own interaction, answered on its own.
 */
import type { Bundle, BundleEntry, OperationOutcome, OperationOutcomeIssue, Resource, ServiceRequest } from 'fhir/r4.js';
import {
  badRequest,
  dedupeIssues,
  errorIssue,
  hasErrors,
  operationOutcome,
  prefixIssues,
  preconditionFailed,
  statusOf,
  unprocessable,
  OperationOutcomeError,
  outcomeFromError,
} from '../../fhir/outcomes.js';
import { rewriteReferences } from '../../fhir/references.js';
import { withServerId } from '../../fhir/resources.js';
import type { ResourceWriter } from '../../ports/resource-store.js';
import { findByConditionalQueryLocked } from './conditional.js';
import type { GatewayDeps } from '../../ports/gateway-deps.js';
import { prepareReferral, recordReferral, referralOutcomeIssues, referralProfileIssues, type PreparedReferral } from './intake-referral.js';
import {
  createResource,
  gatewayRecordIssues,
  updateResource,
  updateUnlessUnchanged,
  WRITABLE_TYPES,
  type InteractionResult,
} from './resource-interactions.js';
import { versionFromETag, type Preferences } from '../../fhir/http-headers.js';
import { refusal, transactionUnlessRefused, type Refusal } from '../../ports/refusal.js';

type ReturnPreference = Preferences['return'];

export type BundleResult = { kind: 'ok'; bundle: Bundle } | Refusal;

const STATUS_TEXT: Record<number, string> = { 200: '200 OK', 201: '201 Created' };

interface PlannedEntry {
  index: number;
  method: 'POST' | 'PUT';
  resourceType: string;
  id: string;
  /** The resource to store, references rewritten; absent when a conditional create matched. */
  resource?: Resource;
  /** The existing resource an `ifNoneExist` matched. */
  existing?: Resource;
  ifMatch?: string;
  referral?: PreparedReferral;
}

function entryPath(index: number): string {
  return `Bundle.entry[${index}]`;
}

function resourceIssues(index: number, resourceType: string, issues: readonly OperationOutcomeIssue[]): OperationOutcomeIssue[] {
  return prefixIssues(issues, { from: resourceType, to: `${entryPath(index)}.resource` });
}

export async function processBundle(
  deps: GatewayDeps,
  input: { tenant: string; body: unknown; prefer: ReturnPreference },
): Promise<BundleResult> {
  const { body } = input;
  if (typeof body !== 'object' || body === null || (body as Resource).resourceType !== 'Bundle') {
    return {
      kind: 'refused',
      outcome: badRequest([errorIssue('invalid', 'POST /fhir takes a Bundle of type transaction or batch', 'resourceType')]),
    };
  }
  const bundle = body as Bundle;
  const baseIssues = deps.validator.validateBase(bundle);
  if (bundle.type !== 'transaction' && bundle.type !== 'batch') {
    baseIssues.push(
      errorIssue('invalid', `Only transaction and batch Bundles can be processed here (got ${String(bundle.type)})`, 'Bundle.type'),
    );
  }
  if (bundle.type === 'batch') {
    // In a batch each entry stands alone: a broken entry is answered in its own response, so only
    // problems of the Bundle itself refuse the whole request.
    const ofTheBundle = baseIssues.filter((i) => !(i.expression ?? []).every((e) => /^Bundle\.entry\[\d+\]\.resource\b/.test(e)));
    if (!hasErrors(ofTheBundle)) return processBatch(deps, bundle, input);
  }
  return processTransaction(deps, bundle, baseIssues, input);
}

const isRecord = (value: unknown): value is Record<string, unknown> => typeof value === 'object' && value !== null && !Array.isArray(value);

/**
 * Whether the request and the resource type of an entry have the shape the checks below read.
 * When not, base R4 validation has already reported what is wrong, with its path.
 */
function entryIsReadable(entry: unknown): entry is BundleEntry {
  if (!isRecord(entry)) return false;
  const { request, resource } = entry;
  if (request !== undefined && !(isRecord(request) && typeof request.method === 'string' && typeof request.url === 'string')) return false;
  return (
    resource === undefined ||
    (isRecord(resource) && typeof resource.resourceType === 'string' && (resource.id === undefined || typeof resource.id === 'string'))
  );
}

/** Indexes of the entries whose resource base R4 refused: profiles assume a structurally sound resource. */
function entriesWithBrokenResources(baseIssues: readonly OperationOutcomeIssue[]): Set<number> {
  const broken = new Set<number>();
  for (const issue of baseIssues) {
    if (issue.severity !== 'error' && issue.severity !== 'fatal') continue;
    for (const expression of issue.expression ?? []) {
      const index = /^Bundle\.entry\[(\d+)\]/.exec(expression)?.[1];
      if (index !== undefined) broken.add(Number(index));
    }
  }
  return broken;
}

function checkEntryRequest(entry: BundleEntry, index: number): OperationOutcomeIssue[] {
  if (!entryIsReadable(entry)) return [];
  const path = entryPath(index);
  const issues: OperationOutcomeIssue[] = [];
  const request = entry.request;
  if (!request) return [errorIssue('required', 'Every entry of a transaction or batch needs a request', `${path}.request`)];
  if (!entry.resource)
    return [errorIssue('not-supported', `${request.method} entries without a resource are not supported`, `${path}.request.method`)];
  const type = entry.resource.resourceType;
  if (request.method === 'POST') {
    if (request.url.split('?')[0] !== type)
      issues.push(errorIssue('invalid', `POST url must be '${type}' for a ${type} (got '${request.url}')`, `${path}.request.url`));
  } else if (request.method === 'PUT') {
    if (type === 'ServiceRequest') {
      issues.push(
        errorIssue(
          'not-supported',
          'ServiceRequests are taken by POST (create); updates of referrals are not supported',
          `${path}.request.method`,
        ),
      );
    } else if (!new RegExp(`^${type}/[A-Za-z0-9\\-.]{1,64}$`).test(request.url)) {
      issues.push(
        errorIssue(
          'not-supported',
          `PUT url must be '${type}/[id]' (conditional update is not supported; got '${request.url}')`,
          `${path}.request.url`,
        ),
      );
    } else if (entry.resource.id !== request.url.split('/')[1]) {
      issues.push(errorIssue('invalid', `The resource id must equal the id in the PUT url (${request.url})`, `${path}.resource.id`));
    }
  } else {
    issues.push(errorIssue('not-supported', `${request.method} entries are not supported; use POST or PUT`, `${path}.request.method`));
  }
  if (type !== 'ServiceRequest' && !WRITABLE_TYPES.includes(type)) {
    issues.push(
      errorIssue('not-supported', `${type} resources cannot be written by clients of this server`, `${path}.resource.resourceType`),
    );
  }
  const urlId = request.method === 'PUT' ? request.url.split('/')[1] : undefined;
  for (const reserved of gatewayRecordIssues(entry.resource, urlId)) {
    issues.push({ ...reserved, expression: (reserved.expression ?? []).map((e) => `${path}.resource${e.slice(e.indexOf('.'))}`) });
  }
  return issues;
}

async function processTransaction(
  deps: GatewayDeps,
  bundle: Bundle,
  baseIssues: OperationOutcomeIssue[],
  input: { tenant: string; prefer: ReturnPreference },
): Promise<BundleResult> {
  // An `entry` that is not an array has been reported by base R4; nothing below could read it.
  const entries = Array.isArray(bundle.entry) ? bundle.entry : [];
  const requestIssues = entries.flatMap((entry, index) => checkEntryRequest(entry, index));
  const broken = entriesWithBrokenResources(baseIssues);
  const profileIssues = entries.flatMap((entry, index) =>
    !broken.has(index) && entryIsReadable(entry) && entry.resource?.resourceType === 'ServiceRequest'
      ? resourceIssues(index, 'ServiceRequest', referralProfileIssues(deps.validator, entry.resource))
      : [],
  );
  if (hasErrors(baseIssues) || hasErrors(requestIssues)) {
    return { kind: 'refused', outcome: badRequest(dedupeIssues([...baseIssues, ...requestIssues, ...profileIssues])) };
  }
  if (hasErrors(profileIssues)) return { kind: 'refused', outcome: unprocessable(profileIssues) };

  // Everything from here runs in one database transaction: conditional creates are resolved
  // under their locks, so two concurrent copies of one Bundle cannot both create.
  const now = deps.clock.now();
  const responses = await transactionUnlessRefused(deps.store, async (tx): Promise<BundleEntry[] | Refusal> => {
    const planned = await planEntries(deps, tx, input.tenant, entries);
    if ('refusal' in planned) return refusal(planned.refusal);
    const bundleResources = rewriteEntries(planned.plans, entries);
    const refusalIssues: OperationOutcomeIssue[] = [];
    for (const plan of planned.plans) {
      if (plan.resourceType !== 'ServiceRequest' || !plan.resource) continue;
      const prepared = await prepareReferral(deps, tx, input.tenant, plan.resource as ServiceRequest & { id: string }, bundleResources);
      if (prepared.ok) plan.referral = prepared.prepared;
      else refusalIssues.push(...resourceIssues(plan.index, 'ServiceRequest', prepared.issues));
    }
    if (refusalIssues.length > 0) return refusal(unprocessable(refusalIssues));

    const results = new Map<number, BundleEntry>();
    const writing: EntryWriting = { tx, tenant: input.tenant, now, prefer: input.prefer };
    // Plain resources first (POST, then PUT, as https://hl7.org/fhir/R4/http.html#trules orders
    // them), so that referrals are stored after what they point at.
    for (const method of ['POST', 'PUT'] as const) {
      for (const plan of planned.plans.filter((p) => p.method === method && p.resourceType !== 'ServiceRequest')) {
        const written = await writePlainEntry(writing, plan);
        if ('kind' in written) return written; // a refused entry refuses the whole Bundle, rolled back
        results.set(plan.index, written);
      }
    }
    for (const plan of planned.plans.filter((p) => p.resourceType === 'ServiceRequest')) {
      const written = await writeReferralEntry(writing, plan);
      if ('kind' in written) return written;
      results.set(plan.index, written);
      if (plan.referral)
        deps.logger.info('referral in transaction', {
          referralId: plan.referral.referralId,
          serviceRequestId: plan.id,
          outcome: results.get(plan.index)?.response?.status,
        });
    }
    return planned.plans.map((plan) => results.get(plan.index) as BundleEntry);
  });
  if ('kind' in responses) return responses;
  return { kind: 'ok', bundle: { resourceType: 'Bundle', type: 'transaction-response', entry: responses } };
}

/** Ids for every entry; a conditional create that matches maps its entry to the existing resource. */
async function planEntries(
  deps: Pick<GatewayDeps, 'newId' | 'tenancy'>,
  tx: ResourceWriter,
  tenant: string,
  entries: readonly BundleEntry[],
): Promise<{ plans: PlannedEntry[] } | { refusal: OperationOutcome }> {
  const plans: PlannedEntry[] = [];
  const conditionIssues: OperationOutcomeIssue[] = [];
  let multipleMatches = false;
  for (const [index, entry] of entries.entries()) {
    const resource = entry.resource as Resource;
    const request = entry.request as NonNullable<BundleEntry['request']>;
    const method = request.method as 'POST' | 'PUT';
    if (method === 'POST' && request.ifNoneExist) {
      const where = `${entryPath(index)}.request.ifNoneExist`;
      const matches = await findByConditionalQueryLocked(tx, deps.tenancy, tenant, resource.resourceType, request.ifNoneExist, where);
      if (matches.kind === 'invalid') {
        conditionIssues.push(...matches.issues);
        continue;
      }
      if (matches.resources.length > 1) {
        multipleMatches = true;
        conditionIssues.push(
          errorIssue('multiple-matches', `ifNoneExist matched ${matches.resources.length} resources; it must match at most one`, where),
        );
        continue;
      }
      const [match] = matches.resources;
      if (match) {
        plans.push({ index, method, resourceType: resource.resourceType, id: match.id as string, existing: match });
        continue;
      }
    }
    const id = method === 'PUT' ? (resource.id as string) : deps.newId();
    plans.push({ index, method, resourceType: resource.resourceType, id, ...(request.ifMatch ? { ifMatch: request.ifMatch } : {}) });
  }
  if (conditionIssues.length === 0) return { plans };
  return {
    refusal: multipleMatches
      ? { ...preconditionFailed('Conditional create matched more than one resource'), issue: conditionIssues }
      : badRequest(conditionIssues),
  };
}

/**
 * fullUrl -> Type/id, then every reference between entries is rewritten to the server's ids.
 * Returns the Bundle's resources by their new `Type/id`, for resolving the referrals' references.
 */
function rewriteEntries(plans: PlannedEntry[], entries: readonly BundleEntry[]): Map<string, Resource> {
  const mapping = new Map<string, string>();
  for (const plan of plans) {
    const fullUrl = entries[plan.index]?.fullUrl;
    if (fullUrl) mapping.set(fullUrl, `${plan.resourceType}/${plan.id}`);
  }
  const bundleResources = new Map<string, Resource>();
  for (const plan of plans) {
    if (!plan.existing) plan.resource = rewriteReferences(withServerId(entries[plan.index]?.resource as Resource, plan.id), mapping);
    bundleResources.set(`${plan.resourceType}/${plan.id}`, (plan.existing ?? plan.resource) as Resource);
  }
  return bundleResources;
}

function responseEntry(
  resource: Resource,
  status: 200 | 201,
  prefer: ReturnPreference,
  issues: readonly OperationOutcomeIssue[] = [],
): BundleEntry {
  const entry: BundleEntry = {
    response: {
      status: STATUS_TEXT[status] as string,
      location: `${resource.resourceType}/${resource.id}/_history/${resource.meta?.versionId ?? '1'}`,
      ...(resource.meta?.versionId ? { etag: `W/"${resource.meta.versionId}"` } : {}),
      ...(resource.meta?.lastUpdated ? { lastModified: resource.meta.lastUpdated } : {}),
      ...(issues.length > 0 || prefer === 'OperationOutcome'
        ? { outcome: operationOutcome(status === 201 ? 'created' : 'ok', issues) }
        : {}),
    },
  };
  if (prefer !== 'minimal' && prefer !== 'OperationOutcome') entry.resource = resource;
  return entry;
}

/** What every entry of one transaction Bundle is written with. */
interface EntryWriting {
  tx: ResourceWriter;
  tenant: string;
  now: Date;
  prefer: ReturnPreference;
}

async function writePlainEntry({ tx, tenant, now, prefer }: EntryWriting, plan: PlannedEntry): Promise<BundleEntry | Refusal> {
  if (plan.existing) return responseEntry(plan.existing, 200, prefer);
  const resource = plan.resource as Resource & { id: string };
  if (plan.method === 'POST') return responseEntry(await tx.create(tenant, resource, now), 201, prefer);
  const updated = await updateUnlessUnchanged(
    tx,
    tenant,
    resource,
    now,
    plan.ifMatch ? (versionFromETag(plan.ifMatch) ?? plan.ifMatch) : undefined,
  );
  return updated.kind === 'refused' ? updated : responseEntry(updated.resource, updated.status, prefer);
}

async function writeReferralEntry({ tx, tenant, now, prefer }: EntryWriting, plan: PlannedEntry): Promise<BundleEntry | Refusal> {
  if (plan.existing || !plan.referral) return responseEntry(plan.existing as Resource, 200, prefer);
  const recorded = await recordReferral(tx, plan.referral, now);
  if (recorded.kind === 'duplicate') {
    const original = await tx.read([tenant], 'ServiceRequest', recorded.existing.serviceRequestId);
    if (!original)
      return refusal(unprocessable([errorIssue('exception', 'The original referral for this order number could not be read')]));
    return responseEntry(original, 200, prefer, [
      {
        severity: 'information',
        code: 'duplicate',
        diagnostics: `This order number was already received; tracked by Task/${recorded.existing.taskId}`,
      },
    ]);
  }
  return responseEntry(recorded.serviceRequest, 201, prefer, referralOutcomeIssues(plan.referral, recorded.task.id, recorded.status));
}

async function processBatch(deps: GatewayDeps, bundle: Bundle, input: { tenant: string; prefer: ReturnPreference }): Promise<BundleResult> {
  const entries: BundleEntry[] = [];
  for (const [index, entry] of (bundle.entry ?? []).entries()) {
    const requestIssues = checkEntryRequest(entry, index);
    if (hasErrors(requestIssues)) {
      entries.push(errorEntry(badRequest(requestIssues)));
      continue;
    }
    const resource = entry.resource as Resource;
    const request = entry.request as NonNullable<BundleEntry['request']>;
    let result: InteractionResult;
    try {
      result =
        request.method === 'POST'
          ? await createResource(deps, {
              tenant: input.tenant,
              resourceType: resource.resourceType,
              body: resource,
              ...(request.ifNoneExist ? { ifNoneExist: request.ifNoneExist } : {}),
            })
          : await updateResource(deps, {
              tenant: input.tenant,
              resourceType: resource.resourceType,
              id: resource.id as string,
              body: resource,
              ...(request.ifMatch ? { ifMatch: versionFromETag(request.ifMatch) ?? request.ifMatch } : {}),
            });
    } catch (err) {
      if (!(err instanceof OperationOutcomeError)) deps.logger.error('batch entry failed', { index, error: (err as Error).message });
      entries.push(errorEntry(outcomeFromError(err)));
      continue;
    }
    if (result.kind === 'refused') {
      entries.push(errorEntry({ ...result.outcome, issue: resourceIssues(index, resource.resourceType, result.outcome.issue) }));
    } else {
      entries.push(responseEntry(result.resource, result.status, input.prefer, result.issues));
    }
  }
  return { kind: 'ok', bundle: { resourceType: 'Bundle', type: 'batch-response', entry: entries } };
}

function errorEntry(outcome: OperationOutcome): BundleEntry {
  const status = statusOf(outcome);
  return { response: { status: String(status), outcome } };
}
