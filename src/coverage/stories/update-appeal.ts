/**
 * A coordinator works the appeal Task (field note 003: review the denial letter, gather documentation,
 * a letter of medical necessity, a peer-to-peer review, a formal appeal, assistance programs):
 * each step's value, the Task's status and its result are theirs to set, nothing else. A won
 * appeal carries the authorization the payer granted and moves the referral on, in the same
 * transaction as the appeal's completion.
 */
import { changedElementsOutside } from '../../fhir/resources.js';
import type { OperationOutcomeIssue, Task } from 'fhir/r4.js';
import { APPEAL_IDENTIFIER_SYSTEM, appealOutcome } from '../rules/appeal.js';
import type { EhrReferences } from '../../referral/rules/referral.js';
import { appealTaskWriteBack } from '../../delivery/rules/write-back.js';
import { TASK_PARAMETER_TYPE_SYSTEM } from '../../referral/rules/referral-status.js';
import { errorIssue, unprocessable } from '../../fhir/outcomes.js';
import { parseRelativeReference } from '../../fhir/references.js';
import type { ResourceWriter, TenantId } from '../../ports/resource-store.js';
import type { GatewayDeps } from '../../ports/gateway-deps.js';
import { approveAfterAppeal } from './verify-coverage.js';
import type { Refusal } from '../../ports/refusal.js';

/** The answer to a client's update of a Task the gateway keeps: the stored Task, or why not. */
export type TaskUpdateResult = { kind: 'updated'; task: Task & { id: string }; changed: boolean } | Refusal;

/** What a coordinator may change on an appeal Task. */
const COORDINATOR_ELEMENTS = new Set([
  'meta',
  'text',
  'status',
  'input',
  'output',
  'note',
  'lastModified',
  'businessStatus',
  'statusReason',
]);

const typeKey = (type: { coding?: Array<{ system?: string; code?: string }> }): string =>
  (type.coding ?? []).map((c) => `${c.system}|${c.code}`).join(',');

export async function updateAppealTaskByClient(
  deps: GatewayDeps,
  input: { tenant: TenantId; body: Task & { id: string }; current: Task & { id: string }; ifMatchVersionId?: string },
): Promise<TaskUpdateResult> {
  const { body, current } = input;
  const issues: OperationOutcomeIssue[] = [];
  for (const key of changedElementsOutside(current, body, COORDINATOR_ELEMENTS)) {
    issues.push(
      errorIssue(
        'business-rule',
        `Task.${key} of an appeal is kept by the gateway; a coordinator sets the steps, the status and the result`,
        `Task.${key}`,
      ),
    );
  }
  // The steps stay the steps: values change, the list does not.
  if ((body.input ?? []).map((i) => typeKey(i.type)).join(';') !== (current.input ?? []).map((i) => typeKey(i.type)).join(';')) {
    issues.push(
      errorIssue('business-rule', "The appeal steps (Task.input types and order) cannot change; set each step's value", 'Task.input'),
    );
  }
  const now = deps.clock.now();
  const next: Task & { id: string } = { ...body, lastModified: now.toISOString() };
  const writeBack = await appealWriteBack(deps, input.tenant, current);
  const ifMatchVersionId = input.ifMatchVersionId ?? current.meta?.versionId ?? '1';

  if (appealOutcome(body) === 'won') {
    const granted = (body.output ?? []).findIndex(
      (o) => o.type.coding?.some((c) => c.system === TASK_PARAMETER_TYPE_SYSTEM && c.code === 'authorization-number') && o.valueString,
    );
    if (granted < 0) {
      issues.push(
        errorIssue(
          'required',
          'A won appeal carries the authorization the payer granted: a Task.output of type authorization-number',
          'Task.output',
        ),
      );
    }
    const referralTaskId = parseRelativeReference(current.partOf?.[0]?.reference);
    if (issues.length > 0 || !referralTaskId) return { kind: 'refused', outcome: unprocessable(issues) };
    const period = body.output?.find((o) =>
      o.type.coding?.some((c) => c.system === TASK_PARAMETER_TYPE_SYSTEM && c.code === 'authorization-period'),
    )?.valuePeriod;
    let saved: Task & { id: string } = next;
    const moved = await approveAfterAppeal(deps, {
      tenant: input.tenant,
      referralTaskId: referralTaskId.id,
      authorizationNumber: body.output![granted]!.valueString!,
      ...(period ? { period } : {}),
      alsoWrite: async (tx) => {
        saved = (await tx.update(input.tenant, next, now, { ifMatchVersionId })) as Task & { id: string };
        await writeBack(tx, saved, now);
      },
    });
    if (moved.kind === 'refused') return moved;
    return { kind: 'updated', task: saved, changed: true };
  }
  if (issues.length > 0) return { kind: 'refused', outcome: unprocessable(issues) };
  const saved = await deps.store.transaction(async (tx) => {
    const updated = (await tx.update(input.tenant, next, now, { ifMatchVersionId })) as Task & { id: string };
    await writeBack(tx, updated, now);
    return updated;
  });
  return { kind: 'updated', task: saved, changed: true };
}

/**
 * How each saved version of an appeal Task reaches the EHR (docs/write-back.md): upserted by the
 * appeal identifier its creation was written back with, in the same transaction as the change.
 * A no-op where the tenant's EHR takes no write-back or the referral's EHR references are unknown.
 */
async function appealWriteBack(
  deps: Pick<GatewayDeps, 'newId' | 'store' | 'writeBackTenants'>,
  tenant: TenantId,
  appeal: Task,
): Promise<(tx: ResourceWriter, saved: Task, now: Date) => Promise<void>> {
  const identifier = appeal.identifier?.find((i) => i.system === APPEAL_IDENTIFIER_SYSTEM && i.value);
  const row =
    identifier?.value !== undefined && deps.writeBackTenants.has(tenant)
      ? await deps.store.readReferral(tenant, identifier.value)
      : undefined;
  const ehr = (row?.referral as { ehr?: EhrReferences } | null | undefined)?.ehr;
  if (!row || !ehr || identifier?.value === undefined) return async () => undefined;
  const key = { system: APPEAL_IDENTIFIER_SYSTEM, value: identifier.value };
  return async (tx, saved, now) =>
    tx.enqueue(appealTaskWriteBack({ messageId: deps.newId(), tenant, referralId: row.id, appeal: saved, identifier: key, ehr }), now);
}
