/**
 * Cluster jobs for real: node-cron tasks on an every-second schedule, each "process" (a task with
 * its own store and connection pool) electing the runner of each tick through the database.
 */
import { expect } from 'chai';
import { scheduleClusterJob, type ClusterJob, type JobLogger } from '../../../src/adapters/cron/cluster-job.js';
import { openStore, type OpenedResourceStore } from '../../../src/adapters/store/index.js';
import type { JobRunCoordinator } from '../../../src/ports/resource-store.js';
import { createPostgresSchema, type PostgresTestSchema } from '../../support/postgres.js';

const EVERY_SECOND = '* * * * * *';
const TICKS_WANTED = 5;

interface Run {
  process: number;
  tick: string;
}

interface Claim {
  process: number;
  key: string;
  won: boolean;
}

/** Polls until `condition` holds; the deadline only guards against a hang, it asserts nothing about speed. */
async function waitUntil(condition: () => boolean, what: string): Promise<void> {
  const deadline = Date.now() + 20_000;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`Gave up waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

/** The coordinator as one process sees it, recording every claim and its answer. */
function recording(coordinator: JobRunCoordinator, process: number, claims: Claim[]): JobRunCoordinator {
  return {
    async claimJobRun(key: string, now: Date): Promise<boolean> {
      const won = await coordinator.claimJobRun(key, now);
      claims.push({ process, key, won });
      return won;
    },
  };
}

interface LogLine {
  level: string;
  message: string;
  meta: Record<string, unknown> | undefined;
}

function recordingLogger(): JobLogger & { lines: LogLine[] } {
  const lines: LogLine[] = [];
  const at =
    (level: string) =>
    (message: string, meta?: Record<string, unknown>): void => {
      lines.push({ level, message, meta });
    };
  return { lines, info: at('info'), warn: at('warn'), error: at('error'), debug: at('debug') };
}

/** The same job in several "processes", one coordinator each, until TICKS_WANTED ticks have run. */
async function runHeartbeat(coordinators: readonly JobRunCoordinator[]): Promise<{ runs: Run[]; claims: Claim[] }> {
  const runs: Run[] = [];
  const claims: Claim[] = [];
  const jobs = coordinators.map((coordinator, process) =>
    scheduleClusterJob(
      'heartbeat',
      EVERY_SECOND,
      async (tick) => {
        runs.push({ process, tick: tick.toISOString() });
      },
      { coordinator: recording(coordinator, process, claims) },
    ),
  );
  try {
    await waitUntil(() => runs.length >= TICKS_WANTED, `${TICKS_WANTED} heartbeat ticks`);
  } finally {
    await Promise.all(jobs.map((job) => job.stop()));
  }
  return { runs, claims };
}

function expectEachTickRanOnce({ runs, claims }: { runs: Run[]; claims: Claim[] }, processes: number): void {
  const ticks = runs.map((r) => r.tick);
  expect(new Set(ticks).size, 'a tick ran twice').to.equal(ticks.length);
  // No tick was skipped by every process either: the ticks that ran are consecutive seconds.
  const times = ticks.map((t) => Date.parse(t)).sort((a, b) => a - b);
  expect(times.slice(1).map((t, i) => t - times[i]!)).to.deep.equal(Array(times.length - 1).fill(1_000));
  expect(times.every((t) => t % 1_000 === 0)).to.equal(true);

  // node-cron's key is the task name and the scheduled tick; one claim of each key won, and the
  // process that won it is the one that ran it.
  const winners = claims.filter((c) => c.won);
  expect(winners.map((c) => c.key).sort()).to.deep.equal(runs.map((r) => `heartbeat:${r.tick}`).sort());
  for (const run of runs) {
    expect(winners.find((c) => c.key === `heartbeat:${run.tick}`)?.process).to.equal(run.process);
  }
  // Every process competed for the ticks (all but perhaps the first and last, at start and stop).
  const askedByAll = runs.filter(
    (r) => new Set(claims.filter((c) => c.key === `heartbeat:${r.tick}`).map((c) => c.process)).size === processes,
  );
  expect(askedByAll.length).to.be.at.least(runs.length - 2);
}

describe('cluster jobs (node-cron, one run per tick across processes)', function () {
  this.timeout(30_000);

  describe('on PostgreSQL, two processes with their own pools over one schema', function () {
    let schema: PostgresTestSchema | undefined;
    const stores: OpenedResourceStore[] = [];

    before(async function () {
      schema = await createPostgresSchema();
      for (let i = 0; i < 2; i++) {
        stores.push(await openStore({ databaseUrl: schema.databaseUrl, postgresSchema: schema.name, poolSize: 2 }));
      }
    });

    after(async function () {
      for (const store of stores) await store.close();
      await schema?.drop();
    });

    it('runs each tick of an every-second job exactly once in total', async function () {
      expectEachTickRanOnce(await runHeartbeat(stores), 2);
    });
  });

  describe('on the embedded SQLite store', function () {
    let store: OpenedResourceStore | undefined;

    beforeEach(async function () {
      store = await openStore({ sqliteFile: ':memory:' });
    });

    afterEach(async function () {
      await store?.close();
    });

    it('runs each tick once when two tasks of the same job share the store', async function () {
      expectEachTickRanOnce(await runHeartbeat([store!, store!]), 2);
    });

    it('logs a run that throws, with the job and its tick, and runs the next tick as usual', async function () {
      const logger = recordingLogger();
      const ticks: string[] = [];
      const job = scheduleClusterJob(
        'flaky',
        EVERY_SECOND,
        async (tick) => {
          ticks.push(tick.toISOString());
          if (ticks.length === 1) throw new Error('EHR unreachable');
        },
        { coordinator: store!, logger },
      );
      try {
        await waitUntil(() => ticks.length >= 2, 'two ticks of the flaky job');
      } finally {
        await job.stop();
      }
      const failures = logger.lines.filter((l) => l.level === 'error');
      expect(failures).to.deep.equal([
        {
          level: 'error',
          message: 'scheduled job failed',
          meta: { job: 'flaky', tick: ticks[0], errorName: 'Error', errorMessage: 'EHR unreachable' },
        },
      ]);
    });

    it('skips a tick whose claim fails (fail closed), logging why, and runs the next one', async function () {
      const logger = recordingLogger();
      const asked: string[] = [];
      const failingOnce: JobRunCoordinator = {
        claimJobRun: async (key, now) => {
          asked.push(key);
          if (asked.length === 1) throw new Error('connection refused');
          return store!.claimJobRun(key, now);
        },
      };
      const ticks: string[] = [];
      const job = scheduleClusterJob('sweep', EVERY_SECOND, async (tick) => void ticks.push(tick.toISOString()), {
        coordinator: failingOnce,
        logger,
      });
      try {
        await waitUntil(() => ticks.length >= 1, 'a tick after the failed claim');
      } finally {
        await job.stop();
      }
      expect(ticks.map((t) => `sweep:${t}`)).to.not.include(asked[0]);
      expect(asked.slice(1, 1 + ticks.length)).to.deep.equal(ticks.map((t) => `sweep:${t}`));
      const failure = logger.lines.find((l) => l.level === 'error');
      expect(failure?.meta).to.include({ job: 'sweep', errorMessage: 'connection refused' });
    });

    it('waits on stop for the tick being run, and runs no tick after', async function () {
      let signalStarted!: () => void;
      const started = new Promise<void>((resolve) => (signalStarted = resolve));
      let release!: () => void;
      const gate = new Promise<void>((resolve) => (release = resolve));
      let runs = 0;
      let finished = false;
      const job: ClusterJob = scheduleClusterJob(
        'slow',
        EVERY_SECOND,
        async () => {
          runs += 1;
          signalStarted();
          await gate;
          finished = true;
        },
        { coordinator: store! },
      );
      await started;
      let stopped = false;
      const stopping = job.stop().then(() => {
        stopped = true;
      });
      await new Promise((resolve) => setTimeout(resolve, 50));
      expect(stopped).to.equal(false);
      release();
      await stopping;
      expect(finished).to.equal(true);
      const runsAtStop = runs;
      await new Promise((resolve) => setTimeout(resolve, 1_500));
      expect(runs).to.equal(runsAtStop);
    });
  });
});
