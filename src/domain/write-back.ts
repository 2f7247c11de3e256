/**
 * What the gateway tells the EHR, as outbox messages: pure functions from the gateway's records
 * to the resources the EHR receives.
 *
 * Every message upserts one resource by a business identifier the gateway assigns, so a retried
 * or repeated delivery updates the same resource in the EHR instead of making a second one.
 * Messages about one referral share its ordering key and reach the EHR in the order they were made.
 */
import type { Appointment, Identifier, Resource, Task, TaskInput, TaskOutput } from 'fhir/r4.js';
import { APPOINTMENT_IDENTIFIER_SYSTEM } from './appointment.js';
import type { NewOutboxMessage } from '../ports/resource-store.js';
import type { EhrReferences } from './referral.js';
import { REFERRAL_IDENTIFIER_SYSTEM } from './referral-status.js';

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
 * The referral's Task as the EHR sees it: the same statuses, reasons and identifier, pointed at
 * the EHR's own ServiceRequest and patient rather than at the gateway's copies.
 */
export function taskForEhr(task: Task, ehr: EhrReferences): Task {
  const { id: _id, meta: _meta, focus: _focus, basedOn: _basedOn, for: _for, requester: _requester, input, output, ...rest } = task;
  return {
    ...rest,
    resourceType: 'Task',
    ...(input ? { input: input.map(withoutGatewayLiteral) } : {}),
    ...(output ? { output: output.map(withoutGatewayLiteral) } : {}),
    basedOn: [ehr.serviceRequest],
    focus: ehr.serviceRequest,
    ...(ehr.patient ? { for: ehr.patient } : {}),
  };
}

/**
 * A site named by the gateway's `Location/<id>` means nothing on the EHR's server: there it goes as
 * a logical reference (the network's site code) with its display.
 */
function withoutGatewayLiteral<T extends TaskInput | TaskOutput>(parameter: T): T {
  const reference = parameter.valueReference;
  if (!reference?.identifier || !reference.reference?.startsWith('Location/')) return parameter;
  const { reference: _literal, ...logical } = reference;
  return { ...parameter, valueReference: logical };
}

function referralIdentifier(task: Task): { system: string; value: string } {
  const identifier = task.identifier?.find((i: Identifier) => i.system === REFERRAL_IDENTIFIER_SYSTEM && i.value);
  if (!identifier?.value) throw new Error('A referral Task carries the referral identifier');
  return { system: REFERRAL_IDENTIFIER_SYSTEM, value: identifier.value };
}

/** The outbox message that writes the referral's Task back to the EHR. */
export function taskWriteBack(input: { messageId: string; tenant: string; referralId: string; task: Task; ehr: EhrReferences }): NewOutboxMessage {
  const payload: EhrUpsertPayload = { resource: taskForEhr(input.task, input.ehr), identifier: referralIdentifier(input.task) };
  return { id: input.messageId, tenant: input.tenant, orderingKey: `referral:${input.referralId}`, kind: EHR_UPSERT, payload };
}

/** The Appointment as the EHR receives it: by the gateway's identifier, based on the EHR's own order. */
export function appointmentWriteBack(input: { messageId: string; tenant: string; referralId: string; appointment: Appointment & { id: string }; ehr: EhrReferences }): NewOutboxMessage {
  const { id, meta: _meta, basedOn: _basedOn, ...rest } = input.appointment;
  const payload: EhrUpsertPayload = {
    resource: { ...rest, basedOn: [input.ehr.serviceRequest] } as Appointment,
    identifier: { system: APPOINTMENT_IDENTIFIER_SYSTEM, value: id },
  };
  return { id: input.messageId, tenant: input.tenant, orderingKey: `referral:${input.referralId}`, kind: EHR_UPSERT, payload };
}
