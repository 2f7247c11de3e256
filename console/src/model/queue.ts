/**
 * A queue page: the referral Tasks of one business status, each beside its order, as rows a
 * coordinator scans. Pure: the resources come in (one Task search page and one ServiceRequest
 * search by `_id`), the rows go out.
 */
import type { Patient, ServiceRequest, Task } from 'fhir/r4.js';
import {
  drugOf,
  formatPeriod,
  idOf,
  patientName,
  patientOf,
  requestedPeriodOf,
  requestedSiteIdOf,
  serviceRequestIdOf,
} from './referral.js';

export interface QueueRow {
  taskId: string;
  serviceRequestId?: string;
  patient: string;
  drug: string;
  requestedPeriod: string;
  siteId?: string;
  priority: string;
  /** When the gateway received the referral (Task.authoredOn). */
  receivedAt?: string;
  /** When the referral entered its current state (the Task's last version). */
  inQueueSince?: string;
}

/** The ids of the orders (and of patients not contained in them) a page of Tasks needs. */
export function serviceRequestIds(tasks: readonly Task[]): string[] {
  return [...new Set(tasks.map(serviceRequestIdOf).filter((id): id is string => id !== undefined))];
}

export function referencedPatientIds(serviceRequests: readonly ServiceRequest[]): string[] {
  return [...new Set(serviceRequests.map((sr) => idOf(sr.subject, 'Patient')).filter((id): id is string => id !== undefined))];
}

export function queueRows(
  tasks: readonly Task[],
  orders: ReadonlyMap<string, ServiceRequest>,
  patients: ReadonlyMap<string, Patient>,
): QueueRow[] {
  return tasks
    .filter((t): t is Task & { id: string } => t.id !== undefined)
    .map((task) => {
      const serviceRequestId = serviceRequestIdOf(task);
      const order = serviceRequestId !== undefined ? orders.get(serviceRequestId) : undefined;
      const row: QueueRow = {
        taskId: task.id,
        patient: order ? patientName(patientOf(order, patients)) : 'Order not found',
        drug: order ? drugOf(order) : '',
        requestedPeriod: formatPeriod(requestedPeriodOf(order)),
        priority: order?.priority ?? 'routine',
      };
      if (serviceRequestId !== undefined) row.serviceRequestId = serviceRequestId;
      const siteId = requestedSiteIdOf(order);
      if (siteId !== undefined) row.siteId = siteId;
      if (task.authoredOn !== undefined) row.receivedAt = task.authoredOn;
      const since = task.meta?.lastUpdated ?? task.lastModified;
      if (since !== undefined) row.inQueueSince = since;
      return row;
    });
}

/** Rows whose patient, drug or site name contains every word typed (case and accents ignored). */
export function filterRows(rows: readonly QueueRow[], text: string, siteName: (id: string | undefined) => string): QueueRow[] {
  const fold = (value: string): string => value.normalize('NFD').replace(/\p{M}/gu, '').toLowerCase();
  const words = fold(text).split(/\s+/).filter(Boolean);
  if (words.length === 0) return [...rows];
  return rows.filter((row) => {
    const haystack = fold(`${row.patient} ${row.drug} ${siteName(row.siteId)} ${row.priority}`);
    return words.every((w) => haystack.includes(w));
  });
}
