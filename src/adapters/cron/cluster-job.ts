/**
 * node-cron jobs that run once per tick across every gateway process on one database.
 *
 * node-cron 4 has the hook for it: a task with `distributed: true` asks its `runCoordinator`
 * `shouldRun(key, ttlMs)` before each tick and runs only on `true`. The key it passes is
 * `${task name}:${scheduled tick as UTC ISO}` (node-cron's Runner.runCoordinated: the tick is the
 * scheduled slot, whole seconds, not the moment the timer fired), so every process computes the
 * same key for the same tick. We answer with JobRunCoordinator.claimJobRun(key): a primary-key
 * insert that exactly one process wins. The key is never released (no onComplete release, no TTL):
 * a process that reaches the tick late, after the winner finished, must still lose it.
 *
 * A tick whose runner dies mid-run is not taken over: the jobs built on this (pull with a
 * persisted cursor, outbox sweeps) catch up on their next tick.
 */
import cron, { type Logger as CronLogger, type RunCoordinator } from 'node-cron';
import { systemClock } from '../system-clock.js';
import type { Clock } from '../../ports/clock.js';
import type { JobRunCoordinator } from '../../ports/resource-store.js';

/** The part of the gateway's logger a job uses (a winston Logger fits). */
export interface JobLogger {
  info(message: string, meta?: Record<string, unknown>): unknown;
  warn(message: string, meta?: Record<string, unknown>): unknown;
  error(message: string, meta?: Record<string, unknown>): unknown;
  debug(message: string, meta?: Record<string, unknown>): unknown;
}

export interface ClusterJobOptions {
  /** The database that elects one runner per tick (the store). */
  coordinator: JobRunCoordinator;
  logger?: JobLogger;
  /** Stamps the claims (for pruning old ones); the wall clock by default. */
  clock?: Clock;
  /** IANA time zone the cron expression is read in; the process's by default. */
  timezone?: string;
}

export interface ClusterJob {
  /** Stops scheduling, then waits for the tick being claimed or run in this process, if any. */
  stop(): Promise<void>;
}

/** `(tick)`: the scheduled time of the tick being run (the same in every process). */
export type ClusterJobRun = (tick: Date) => Promise<void>;

function errorMeta(error: unknown): Record<string, unknown> {
  return error instanceof Error ? { errorName: error.name, errorMessage: error.message } : { errorMessage: String(error) };
}

/**
 * node-cron's RunCoordinator over JobRunCoordinator, which also keeps track of the ticks it let
 * through until node-cron reports them complete, so that stop() can wait for them.
 */
export class DatabaseRunCoordinator implements RunCoordinator {
  readonly #coordinator: JobRunCoordinator;
  readonly #clock: Clock;
  readonly #inFlight = new Map<string, { done: Promise<void>; settle: () => void }>();

  constructor(coordinator: JobRunCoordinator, clock: Clock = systemClock) {
    this.#coordinator = coordinator;
    this.#clock = clock;
  }

  /** `ttlMs` is ignored: a claim is for one tick, and ticks are never claimed twice. */
  async shouldRun(key: string): Promise<boolean> {
    let settle!: () => void;
    const done = new Promise<void>((resolve) => (settle = resolve));
    this.#inFlight.set(key, { done, settle });
    try {
      const won = await this.#coordinator.claimJobRun(key, this.#clock.now());
      if (!won) this.#complete(key);
      return won;
    } catch (error) {
      // node-cron fails closed: it logs, skips the tick and never calls onComplete.
      this.#complete(key);
      throw error;
    }
  }

  /** Called by node-cron once the run it allowed has finished (the claim itself stays). */
  onComplete(key: string): void {
    this.#complete(key);
  }

  /** Resolves once every tick this coordinator is claiming or let run has finished. */
  async drain(): Promise<void> {
    while (this.#inFlight.size > 0) {
      await Promise.all([...this.#inFlight.values()].map((t) => t.done));
    }
  }

  #complete(key: string): void {
    this.#inFlight.get(key)?.settle();
    this.#inFlight.delete(key);
  }
}

function cronLoggerFor(name: string, logger: JobLogger | undefined): CronLogger {
  const meta = { job: name };
  const describe = (message: string | Error, error?: Error): [string, Record<string, unknown>] =>
    typeof message === 'string'
      ? [message, error === undefined ? meta : { ...meta, ...errorMeta(error) }]
      : ['node-cron error', { ...meta, ...errorMeta(message) }];
  return {
    info: (message) => logger?.info(message, meta),
    warn: (message) => logger?.warn(message, meta),
    error: (message, error) => logger?.error(...describe(message, error)),
    debug: (message, error) => logger?.debug(...describe(message, error)),
  };
}

/**
 * Schedules `run` on `cronExpression` (node-cron syntax, seconds field optional) so that each tick
 * runs in exactly one process of the cluster: the one whose claim of `name` + tick lands first.
 * `name` must be the same in every process and unique among the jobs. A run that throws is
 * logged; the next tick runs as usual. Ticks do not overlap within a process (a tick that comes
 * while the previous one still runs here is left to the other processes).
 */
export function scheduleClusterJob(name: string, cronExpression: string, run: ClusterJobRun, options: ClusterJobOptions): ClusterJob {
  const { logger } = options;
  const coordinator = new DatabaseRunCoordinator(options.coordinator, options.clock);
  const task = cron.schedule(
    cronExpression,
    async (context) => {
      const tick = context.date;
      try {
        await run(tick);
      } catch (error) {
        logger?.error('scheduled job failed', { job: name, tick: tick.toISOString(), ...errorMeta(error) });
      }
    },
    {
      name,
      distributed: true,
      runCoordinator: coordinator,
      noOverlap: true,
      logger: cronLoggerFor(name, logger),
      ...(options.timezone === undefined ? {} : { timezone: options.timezone }),
    },
  );
  let stopping: Promise<void> | undefined;
  return {
    stop(): Promise<void> {
      stopping ??= (async () => {
        await task.stop();
        await task.destroy();
        await coordinator.drain();
      })();
      return stopping;
    },
  };
}
