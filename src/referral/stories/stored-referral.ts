/**
 * A referral as the gateway stores it: its row, its Task and its ServiceRequest
 * (docs/domain.md, the referral path). The coverage step, scheduling and renewals each start from
 * these three, read the same way.
 */
import type { Reference, Resource, ServiceRequest, Task } from 'fhir/r4.js';
import { findContained, parseRelativeReference } from '../../fhir/references.js';
import { visibleTenants, type Tenancy } from '../../ports/gateway-deps.js';
import type { ReferralRow, ResourceReader, TenantId } from '../../ports/resource-store.js';

export interface StoredReferral {
  row: ReferralRow;
  task: Task & { id: string };
  serviceRequest: ServiceRequest & { id: string };
}

/** The row's Task and ServiceRequest beside it, or undefined when either is gone. */
export async function readStoredReferral(store: ResourceReader, row: ReferralRow): Promise<StoredReferral | undefined> {
  const task = await store.read<Task>([row.tenant], 'Task', row.taskId);
  const serviceRequest = await store.read<ServiceRequest>([row.tenant], 'ServiceRequest', row.serviceRequestId);
  if (!hasId(task) || !hasId(serviceRequest)) return undefined;
  return { row, task, serviceRequest };
}

const hasId = <T extends { id?: string }>(resource: T | undefined): resource is T & { id: string } => typeof resource?.id === 'string';

/**
 * What a reference of the referral's order points at, when the gateway holds it: a resource
 * contained in the order, else one stored in the tenant's records (docs/write-back.md). A reference
 * to the EHR's own records is left to the caller, which may read it from the EHR.
 */
export async function resolveAtGateway(
  reader: ResourceReader,
  tenancy: Tenancy,
  tenant: TenantId,
  serviceRequest: ServiceRequest,
  reference: Reference | undefined,
): Promise<{ resource: Resource; at: 'contained' | 'gateway' } | undefined> {
  const key = reference?.reference;
  if (key === undefined) return undefined;
  const contained = findContained(serviceRequest, key);
  if (contained) return { resource: contained, at: 'contained' };
  const parsed = parseRelativeReference(key);
  const stored = parsed
    ? await reader.read(visibleTenants(tenancy, tenant, parsed.resourceType), parsed.resourceType, parsed.id)
    : undefined;
  return stored ? { resource: stored, at: 'gateway' } : undefined;
}
