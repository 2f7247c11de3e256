/**
 * A referral as the gateway stores it: its row, its Task and its ServiceRequest
 * (docs/domain.md, the referral path). The coverage step, scheduling and renewals each start from
 * these three, read the same way.
 */
import type { ServiceRequest, Task } from 'fhir/r4.js';
import type { ReferralRow, ResourceReader } from '../../ports/resource-store.js';

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
