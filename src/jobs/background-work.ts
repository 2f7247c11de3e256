/**
 * The gateway's work outside requests: the outbox worker (every process), which also runs the
 * referrals' queued steps (coverage), and the node-cron jobs (one process per tick across the
 * cluster): the EHR pulls, the follow-up of pended prior authorizations, appointment reminders
 * (REMINDER_CRON), no-shows with order renewals (NO_SHOW_CRON), and the audit trail's retention
 * purge (AUDIT_PURGE_CRON).
 */
import type { Config } from '../config/config.js';
import { DEFAULT_RETRY_POLICY } from '../delivery/rules/retry-policy.js';
import type { EhrFhir } from '../ports/ehr-fhir.js';
import type { GatewayDeps } from '../ports/gateway-deps.js';
import { pollEhrServiceRequests } from '../intake/stories/poll-ehr.js';
import { scheduleClusterJob } from '../adapters/cron/cluster-job.js';
import { startOutboxWorker } from './outbox-worker.js';
import { sendReminders } from '../delivery/stories/send-reminders.js';
import { markNoShows } from '../scheduling/stories/mark-no-shows.js';
import { renewOrders } from '../order-changes/stories/renew-orders.js';
import { badRequest, errorIssue, OperationOutcomeError } from '../fhir/outcomes.js';
import type { OutboxMessage } from '../ports/resource-store.js';
import { runAsGateway } from '../ports/audit-trail.js';
import { purgeExpiredAuditEvents } from '../audit/stories/purge-audit-trail.js';
import { followUpPendingAuthorizations, verifyReferralCoverage } from '../coverage/stories/verify-coverage.js';
import { isReferralStepPayload, SUBMIT_PRIOR_AUTH_STEP, VERIFY_COVERAGE_STEP } from '../referral/stories/referral-steps.js';

async function verifyStep(deps: GatewayDeps, message: OutboxMessage, options: { submit: boolean; audit: boolean }): Promise<void> {
  if (!isReferralStepPayload(message.payload))
    throw new OperationOutcomeError(badRequest([errorIssue('invalid', `Outbox step ${message.kind} has no referral id`)]));
  const referralId = message.payload.referralId;
  const verify = (): Promise<unknown> => verifyReferralCoverage(deps, { tenant: message.tenant, referralId, submit: options.submit });
  await (options.audit ? runAsGateway(message.kind, deps.clock, verify) : verify());
}

export interface BackgroundWork {
  stop(): Promise<void>;
}

export function startBackgroundWork(config: Config, deps: GatewayDeps, ehrClients: ReadonlyMap<string, EhrFhir>): BackgroundWork {
  // Jobs act as the gateway itself: the changes they commit are audited with it as agent (docs/audit.md).
  const asGateway = (job: string, run: (tick: Date) => Promise<void>) => (tick: Date) =>
    config.audit.enabled ? runAsGateway(job, deps.clock, () => run(tick)) : run(tick);
  const worker = !config.outbox.workerEnabled
    ? undefined
    : startOutboxWorker(
        {
          outbox: deps.store,
          ...(config.audit.enabled ? { audit: deps.store } : {}),
          ehrFor: (tenant) => ehrClients.get(tenant),
          clock: deps.clock,
          logger: deps.logger,
          retryPolicy: {
            ...DEFAULT_RETRY_POLICY,
            baseDelayMs: config.outbox.baseDelayMs,
            maxDelayMs: config.outbox.maxDelayMs,
            maxAttempts: config.outbox.maxAttempts,
          },
          random: Math.random,
          steps: new Map([
            [VERIFY_COVERAGE_STEP, (message) => verifyStep(deps, message, { submit: false, audit: config.audit.enabled })],
            [SUBMIT_PRIOR_AUTH_STEP, (message) => verifyStep(deps, message, { submit: true, audit: config.audit.enabled })],
          ]),
        },
        config.outbox,
      );
  /** A cluster job run as the gateway, its sweep's result logged in one line per tick run. */
  const sweepJob = (job: string, cron: Parameters<typeof scheduleClusterJob>[1], sweep: () => Promise<object>) =>
    scheduleClusterJob(
      job,
      cron,
      asGateway(job, async (tick) => {
        const result = await sweep();
        deps.logger.info('cluster job ran', { job, tick: tick.toISOString(), ...result });
      }),
      { coordinator: deps.store, logger: deps.logger },
    );
  const inquiryJob = sweepJob('prior-auth-inquiry', config.priorAuthInquiryCron, () => followUpPendingAuthorizations(deps));
  const reminderJob = sweepJob('appointment-reminders', config.scheduling.reminderCron, () => sendReminders(deps));
  // Renewals ride with no-shows: both are slow-moving upkeep of a referral's state, and a referral
  // a no-show sends back to ready-to-schedule is checked for renewal in the same tick.
  const noShowJob = scheduleClusterJob(
    'no-shows-and-renewals',
    config.scheduling.noShowCron,
    asGateway('no-shows-and-renewals', async (tick) => {
      let noShows: Awaited<ReturnType<typeof markNoShows>> | undefined;
      try {
        noShows = await markNoShows(deps);
      } finally {
        // A failed no-show sweep must not keep renewals from going out.
        const renewals = await renewOrders(deps);
        deps.logger.info('cluster job ran', {
          job: 'no-shows-and-renewals',
          tick: tick.toISOString(),
          ...noShows,
          renewalReferrals: renewals.referrals,
          renewalsOpened: renewals.opened,
        });
      }
    }),
    { coordinator: deps.store, logger: deps.logger },
  );
  // The audit trail's retention (docs/audit.md): one process per tick purges what is past it.
  const auditRetentionJob = scheduleClusterJob(
    'audit-retention',
    config.audit.purgeCron,
    async (tick) => {
      const result = await purgeExpiredAuditEvents(deps.store, { now: deps.clock.now(), retentionDays: config.audit.retentionDays });
      deps.logger.info('cluster job ran', { job: 'audit-retention', tick: tick.toISOString(), ...result });
    },
    { coordinator: deps.store, logger: deps.logger },
  );
  const pollJobs = config.ehrConnections
    .filter((connection) => connection.poll)
    .map((connection) => {
      const ehr = ehrClients.get(connection.tenant) as EhrFhir;
      return scheduleClusterJob(
        `ehr-poll:${connection.tenant}`,
        config.ehrPollCron,
        asGateway(`ehr-poll:${connection.tenant}`, async (tick) => {
          // One line per tick run, so that operators (and the cluster test) can see who ran it.
          deps.logger.info('cluster job ran', { job: `ehr-poll:${connection.tenant}`, tick: tick.toISOString() });
          await pollEhrServiceRequests(deps, {
            tenant: connection.tenant,
            ehr,
            ...(connection.pollQuery ? { query: connection.pollQuery } : {}),
          });
        }),
        { coordinator: deps.store, logger: deps.logger },
      );
    });
  return {
    stop: async () => {
      await Promise.all([
        worker?.stop(),
        inquiryJob.stop(),
        reminderJob.stop(),
        noShowJob.stop(),
        auditRetentionJob.stop(),
        ...pollJobs.map((job) => job.stop()),
      ]);
    },
  };
}
