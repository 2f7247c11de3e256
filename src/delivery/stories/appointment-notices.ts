/**
 * Telling the patient that a visit is cancelled or has moved (docs/order-changes.md,
 * docs/scheduling.md): a Communication (https://hl7.org/fhir/R4/communication.html) made in the
 * transaction that changes the Appointment, handed to the notifier after it commits (as the
 * reminder path does, send-reminders.ts), and written back to the EHR once, with how the hand-over
 * went: `completed` (sent), `in-progress` (worth retrying) or `not-done` (never will be), with
 * statusReason.
 */
import type { Appointment, CodeableConcept, Communication } from 'fhir/r4.js';
import { siteIdOf } from '../../scheduling/rules/appointment.js';
import { appointmentNotice, noticeKey, noticeText, type NoticeKind } from '../../order-changes/rules/order-change-effects.js';
import type { EhrReferences } from '../../referral/rules/referral.js';
import { communicationWriteBack } from '../rules/write-back.js';
import { outcomeFromError } from '../../fhir/outcomes.js';
import { NotifierError } from '../../ports/notifier.js';
import type { ResourceWriter, StoreTransactions, TenantId } from '../../ports/resource-store.js';
import { type GatewayDeps, writeBackTarget } from '../../ports/gateway-deps.js';
import { patientOf } from './send-reminders.js';

/** A notice stored in preparation, to hand to the notifier once its transaction commits. */
export type PendingNotice = Communication & { id: string };

/**
 * Stores the patient's notice of a cancelled (`appointment` as it was) or moved (`appointment` at
 * its new time, `previousStart` the old one) visit, in the caller's transaction. None when the
 * site or its time zone is unknown: the text must state the time absolutely.
 */
export async function storeNotice(
  deps: Pick<GatewayDeps, 'sites' | 'newId'>,
  tx: ResourceWriter,
  input: {
    tenant: TenantId;
    appointment: Appointment & { id: string };
    kind: NoticeKind;
    reason?: CodeableConcept;
    previousStart?: Date;
    now: Date;
  },
): Promise<PendingNotice | undefined> {
  const siteId = siteIdOf(input.appointment);
  const site = siteId !== undefined ? (await deps.sites.current()).site(siteId) : undefined;
  if (!site?.timeZone || !input.appointment.start) return undefined;
  const notice = appointmentNotice({
    id: deps.newId(),
    key: noticeKey(input.appointment.id, input.kind, input.previousStart),
    appointmentId: input.appointment.id,
    patient: patientOf(input.appointment),
    text: noticeText({
      kind: input.kind,
      siteName: site.name,
      timeZone: site.timeZone,
      start: new Date(input.appointment.start),
      ...(input.previousStart ? { previousStart: input.previousStart } : {}),
      ...(input.reason?.text ? { why: input.reason.text } : {}),
    }),
    ...(input.reason ? { reason: input.reason } : {}),
  });
  return (await tx.create(input.tenant, notice, input.now)) as PendingNotice;
}

/** Hands each notice to the notifier, records how it went, and writes that version back to the EHR. */
export async function deliverNotices(
  deps: Pick<GatewayDeps, 'writeBackTenants' | 'clock' | 'notifier' | 'logger' | 'newId'> & { store: StoreTransactions },
  input: { tenant: TenantId; referralId: string; ehr: EhrReferences | undefined; notices: readonly PendingNotice[] },
): Promise<void> {
  const writeBackTo = writeBackTarget(deps, input.tenant, input.ehr);
  for (const notice of input.notices) {
    const { meta: _meta, ...message } = notice;
    let settled: Communication & { id: string };
    const sentAt = deps.clock.now();
    try {
      await deps.notifier.send({ ...message, status: 'completed', sent: sentAt.toISOString() });
      settled = { ...message, status: 'completed', sent: sentAt.toISOString() };
    } catch (error) {
      const retryable = error instanceof NotifierError ? error.retryable : true;
      const why = outcomeFromError(error).issue[0]?.diagnostics ?? 'The notifier failed';
      settled = { ...message, status: retryable ? 'in-progress' : 'not-done', statusReason: { text: why } };
      deps.logger.warn('appointment notice not sent', { communicationId: notice.id, channel: deps.notifier.channel, retryable });
    }
    await deps.store.transaction(async (tx) => {
      const saved = (await tx.update(input.tenant, settled, deps.clock.now(), {
        ifMatchVersionId: notice.meta?.versionId ?? '1',
      })) as Communication & { id: string };
      if (writeBackTo)
        await tx.enqueue(
          communicationWriteBack({
            messageId: deps.newId(),
            tenant: input.tenant,
            referralId: input.referralId,
            communication: saved,
            ehr: writeBackTo,
          }),
          deps.clock.now(),
        );
    });
  }
}
