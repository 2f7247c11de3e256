/**
 * The gateway's work outside requests: the outbox worker (every process) and the EHR pull jobs
 * (node-cron, one process per tick across the cluster).
 */
import type { Config } from '../config/config.js';
import { DEFAULT_RETRY_POLICY } from '../domain/retry-policy.js';
import type { EhrFhir } from '../ports/ehr-fhir.js';
import type { GatewayDeps } from '../use-cases/deps.js';
import { pollEhrServiceRequests } from '../use-cases/poll-ehr.js';
import { scheduleClusterJob } from '../adapters/cron/cluster-job.js';
import { startOutboxWorker } from './outbox-worker.js';

export interface BackgroundWork {
  stop(): Promise<void>;
}

export function startBackgroundWork(config: Config, deps: GatewayDeps, ehrClients: ReadonlyMap<string, EhrFhir>): BackgroundWork {
  const worker = !config.outbox.workerEnabled
    ? undefined
    : startOutboxWorker(
    {
      outbox: deps.store,
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
    },
    config.outbox,
  );
  const pollJobs = config.ehrConnections
    .filter((connection) => connection.poll)
    .map((connection) => {
      const ehr = ehrClients.get(connection.tenant) as EhrFhir;
      return scheduleClusterJob(
        `ehr-poll:${connection.tenant}`,
        config.ehrPollCron,
        async (tick) => {
          // One line per tick run, so that operators (and the cluster test) can see who ran it.
          deps.logger.info('cluster job ran', { job: `ehr-poll:${connection.tenant}`, tick: tick.toISOString() });
          await pollEhrServiceRequests(deps, { tenant: connection.tenant, ehr, ...(connection.pollQuery ? { query: connection.pollQuery } : {}) });
        },
        { coordinator: deps.store, logger: deps.logger },
      );
    });
  return {
    stop: async () => {
      await Promise.all([worker?.stop(), ...pollJobs.map((job) => job.stop())]);
    },
  };
}
