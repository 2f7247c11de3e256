/**
 * What the gateway tells the EHR, as outbox messages: pure functions from the gateway's records
 * to the resources the EHR receives.
 *
 * Every message upserts one resource by a business identifier the gateway assigns, so a retried
 * or repeated delivery updates the same resource in the EHR instead of making a second one.
 * Messages about one referral share its ordering key and reach the EHR in the order they were made.
 */
import type { Appointment, Communication, Identifier, Reference, Resource, Task } from 'fhir/r4.js';
import { APPOINTMENT_IDENTIFIER_SYSTEM } from '../../scheduling/rules/appointment.js';
import type { NewOutboxMessage } from '../../ports/resource-store.js';
import type { EhrReferences } from '../../referral/rules/referral.js';
import { REFERRAL_IDENTIFIER_SYSTEM } from '../../referral/rules/referral-status.js';
import { referencesForReceiver, type ReceiverReferences } from './receiver-references.js';

export const EHR_UPSERT = 'ehr-upsert';

export interface EhrUpsertPayload {
  resource: Resource;
  identifier: { system: string; value: string };
}

export function isEhrUpsertPayload(value: unknown): value is EhrUpsertPayload {
  const payload = value as Partial<EhrUpsertPayload> | null;
  return (
    typeof payload === 'object' &&
    payload !== null &&
    typeof payload.resource?.resourceType === 'string' &&
    typeof payload.identifier?.system === 'string' &&
    typeof payload.identifier.value === 'string'
  );
}

/**
 * The EHR as a receiver of references: the gateway's copies of the order and patient become the
 * EHR's own (a literal id read from the EHR, else a logical reference by identifier), and the
 * EHR's own literal references stay as they are.
 */
export function ehrReceiver(ehr: EhrReferences, gatewayReferences: GatewayReferences): ReceiverReferences {
  const mapped = new Map<string, Reference>();
  for (const reference of gatewayReferences.serviceRequest ?? []) mapped.set(reference, ehr.serviceRequest);
  if (ehr.patient) for (const reference of gatewayReferences.patient ?? []) mapped.set(reference, ehr.patient);
  const own = new Set([ehr.serviceRequest.reference, ehr.patient?.reference].filter((r): r is string => r !== undefined));
  return {
    mapped,
    atReceiver: (reference) => own.has(reference),
    // The EHR received each Appointment by the gateway's identifier (appointmentWriteBack).
    logicalFor: (reference) => {
      const appointment = /^Appointment\/([A-Za-z0-9\-.]{1,64})$/.exec(reference);
      return appointment
        ? { type: 'Appointment', identifier: { system: APPOINTMENT_IDENTIFIER_SYSTEM, value: appointment[1] as string } }
        : undefined;
    },
  };
}

/** The gateway's own references to the referral's order and patient, as they appear in what it writes. */
export interface GatewayReferences {
  serviceRequest?: readonly string[];
  patient?: readonly string[];
}

/** `resource` with its references made to resolve at the EHR (see receiver-references.ts). */
export function forEhr<T extends Resource>(resource: T, ehr: EhrReferences, gatewayReferences: GatewayReferences): T {
  return referencesForReceiver(resource, ehrReceiver(ehr, gatewayReferences)).resource;
}

/**
 * The referral's Task as the EHR sees it: the same statuses, reasons and identifier, pointed at
 * the EHR's own ServiceRequest and patient rather than at the gateway's copies. A requester that
 * only the order's contained resources could name is left out (Task.requester is optional) rather
 * than sent dangling; a directory site goes as the network's site code (a logical reference).
 */
export function taskForEhr(task: Task, ehr: EhrReferences): Task {
  const { id: _id, meta: _meta, ...rest } = task;
  const gatewayOrder = [...(task.basedOn ?? []), ...(task.focus ? [task.focus] : [])]
    .map((r) => r.reference)
    .filter((r): r is string => r !== undefined);
  const patient = task.for?.reference !== undefined ? [task.for.reference] : [];
  const mapped = forEhr({ ...rest, resourceType: 'Task' } as Task, ehr, { serviceRequest: gatewayOrder, patient });
  // The EHR's Task is about the EHR's order even when the gateway's Task named it otherwise.
  return { ...mapped, basedOn: [ehr.serviceRequest], focus: ehr.serviceRequest, ...(ehr.patient ? { for: ehr.patient } : {}) };
}

function referralIdentifier(task: Task): { system: string; value: string } {
  const identifier = task.identifier?.find((i: Identifier) => i.system === REFERRAL_IDENTIFIER_SYSTEM && i.value);
  if (!identifier?.value) throw new Error('A referral Task carries the referral identifier');
  return { system: REFERRAL_IDENTIFIER_SYSTEM, value: identifier.value };
}

/** The outbox message that writes the referral's Task back to the EHR. */
export function taskWriteBack(input: {
  messageId: string;
  tenant: string;
  referralId: string;
  task: Task;
  ehr: EhrReferences;
}): NewOutboxMessage {
  const payload: EhrUpsertPayload = { resource: taskForEhr(input.task, input.ehr), identifier: referralIdentifier(input.task) };
  return { id: input.messageId, tenant: input.tenant, orderingKey: `referral:${input.referralId}`, kind: EHR_UPSERT, payload };
}

/** The Appointment as the EHR receives it: by the gateway's identifier, based on the EHR's own order. */
export function appointmentWriteBack(input: {
  messageId: string;
  tenant: string;
  referralId: string;
  appointment: Appointment & { id: string };
  ehr: EhrReferences;
}): NewOutboxMessage {
  const { id, meta: _meta, basedOn, ...rest } = input.appointment;
  const gatewayOrder = (basedOn ?? []).map((r) => r.reference).filter((r): r is string => r !== undefined);
  const patient = (rest.participant ?? [])
    .map((p) => p.actor?.reference)
    .filter((r): r is string => r?.startsWith('Patient/') === true || r?.startsWith('#') === true);
  const payload: EhrUpsertPayload = {
    resource: {
      ...forEhr({ ...rest, resourceType: 'Appointment' } as Appointment, input.ehr, { serviceRequest: gatewayOrder, patient }),
      basedOn: [input.ehr.serviceRequest],
    } as Appointment,
    identifier: { system: APPOINTMENT_IDENTIFIER_SYSTEM, value: id },
  };
  return { id: input.messageId, tenant: input.tenant, orderingKey: `referral:${input.referralId}`, kind: EHR_UPSERT, payload };
}

/**
 * A Communication (a reminder, a notice of a cancelled or moved visit) as the EHR receives it, by
 * its business identifier: to the patient as the EHR knows them, about the Appointment the EHR
 * received by the gateway's identifier (receiver-references.ts).
 */
export function communicationWriteBack(input: {
  messageId: string;
  tenant: string;
  referralId: string;
  communication: Communication;
  ehr: EhrReferences;
}): NewOutboxMessage {
  const { id: _id, meta: _meta, ...rest } = input.communication;
  const identifier = rest.identifier?.find((i) => i.system && i.value);
  if (!identifier?.system || !identifier.value) throw new Error('A Communication written back carries its business identifier');
  const patient = [rest.subject?.reference, ...(rest.recipient ?? []).map((r) => r.reference)].filter(
    (r): r is string => r !== undefined && (r.startsWith('Patient/') || r.startsWith('#')),
  );
  const payload: EhrUpsertPayload = {
    resource: forEhr({ ...rest, resourceType: 'Communication' } as Communication, input.ehr, { patient }),
    identifier: { system: identifier.system, value: identifier.value },
  };
  return { id: input.messageId, tenant: input.tenant, orderingKey: `referral:${input.referralId}`, kind: EHR_UPSERT, payload };
}

/**
 * An appeal Task (verify-coverage.ts opens it, a coordinator works it) as the EHR receives it, by
 * the appeal identifier: `partOf` names the gateway's referral Task, which the EHR knows only by
 * the referral identifier, so it goes as that logical reference; `for` is the EHR's patient.
 */
export function appealTaskWriteBack(input: {
  messageId: string;
  tenant: string;
  referralId: string;
  appeal: Task;
  identifier: { system: string; value: string };
  ehr: EhrReferences;
}): NewOutboxMessage {
  const { id: _id, meta: _meta, partOf: _partOf, for: _for, ...rest } = input.appeal;
  const resource: Task = {
    ...rest,
    resourceType: 'Task',
    partOf: [{ type: 'Task', identifier: { system: REFERRAL_IDENTIFIER_SYSTEM, value: input.referralId } }],
    ...(input.ehr.patient ? { for: input.ehr.patient } : {}),
  };
  const payload: EhrUpsertPayload = { resource: forEhr(resource, input.ehr, {}), identifier: input.identifier };
  return { id: input.messageId, tenant: input.tenant, orderingKey: `referral:${input.referralId}`, kind: EHR_UPSERT, payload };
}
