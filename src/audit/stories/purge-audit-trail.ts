/**
 * The audit trail's retention (docs/audit.md): AuditEvents older than AUDIT_RETENTION_DAYS are
 * deleted, by one process per cron tick. The purge is itself recorded (action D, the gateway as
 * agent), so the trail says when it was shortened and up to when.
 */
import { randomUUID } from 'node:crypto';
import { GATEWAY_AGENT, type AuditTrail } from '../../ports/audit-trail.js';

const DAY_MS = 24 * 60 * 60_000;

/** The instant before which AuditEvents are past retention. */
export function auditRetentionCutoff(now: Date, retentionDays: number): Date {
  return new Date(now.getTime() - retentionDays * DAY_MS);
}

export async function purgeExpiredAuditEvents(
  trail: AuditTrail,
  options: { now: Date; retentionDays: number },
): Promise<{ purged: number; before: string }> {
  const before = auditRetentionCutoff(options.now, options.retentionDays);
  const purged = await trail.purgeAuditEvents(before);
  await trail.recordAuditEvents([
    {
      id: randomUUID(),
      recorded: options.now,
      action: 'D',
      subtype: 'job',
      operation: 'audit-retention',
      outcome: 0,
      agent: GATEWAY_AGENT,
      entities: [],
    },
  ]);
  return { purged, before: before.toISOString() };
}
