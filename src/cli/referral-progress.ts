/**
 * Follows a referral's Task on a gateway until its businessStatus settles: the statuses it went
 * through, in order. Settled = a status that waits on someone (not `received`, nor
 * `verifying-coverage` while a payer is being asked) unchanged for `settleMs`, the status `until`
 * names, or the timeout.
 */
import type { FhirClient } from './fhir-client.js';

export interface TaskTrail {
  taskId?: string;
  statuses: string[];
  timedOut: boolean;
  task?: any;
}

export const businessStatusOf = (task: any): string | undefined => task?.businessStatus?.coding?.[0]?.code;

export async function followReferralTask(
  client: FhirClient,
  serviceRequestId: string,
  options: { timeoutMs: number; settleMs: number; intervalMs?: number; onChange?: (status: string) => void; until?: string },
): Promise<TaskTrail> {
  const interval = options.intervalMs ?? 200;
  const deadline = Date.now() + options.timeoutMs;
  const statuses: string[] = [];
  let task: any;
  let changedAt = Date.now();
  for (;;) {
    const found = await client.get(`Task?focus=ServiceRequest/${encodeURIComponent(serviceRequestId)}&_count=1`);
    task = found.body?.entry?.[0]?.resource;
    const status = businessStatusOf(task);
    if (status !== undefined && status !== statuses.at(-1)) {
      statuses.push(status);
      changedAt = Date.now();
      options.onChange?.(status);
    }
    if (status !== undefined && status === options.until) return { taskId: task.id, statuses, timedOut: false, task };
    if (status !== undefined && status !== 'received' && Date.now() - changedAt >= options.settleMs)
      return { taskId: task.id, statuses, timedOut: false, task };
    if (Date.now() > deadline) return { ...(task?.id ? { taskId: task.id } : {}), statuses, timedOut: true, task };
    await new Promise((resolve) => setTimeout(resolve, interval));
  }
}

/** The ServiceRequest ids a create or a transaction/batch answer names. */
export function createdServiceRequestIds(reply: { headers: Headers; body: any }): string[] {
  if (reply.body?.resourceType === 'ServiceRequest' && typeof reply.body.id === 'string') return [reply.body.id];
  const location = reply.headers.get('location') ?? reply.headers.get('content-location');
  const fromLocation = /ServiceRequest\/([A-Za-z0-9\-.]{1,64})/.exec(location ?? '');
  if (fromLocation) return [fromLocation[1]!];
  if (reply.body?.resourceType === 'Bundle') {
    return (reply.body.entry ?? []).flatMap((e: any) => {
      const match = /ServiceRequest\/([A-Za-z0-9\-.]{1,64})/.exec(e.response?.location ?? '');
      return match && /^2\d\d/.test(e.response?.status ?? '') ? [match[1]!] : [];
    });
  }
  return [];
}
