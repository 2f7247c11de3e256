/**
 * WAL checkpoints off the request path (docs/resilience.md#sqlite-checkpoints). In WAL mode a
 * commit appends pages to the WAL, and by default the committing connection copies the WAL back
 * into the database file every 1,000 pages (a checkpoint, with its fsyncs), on the event loop, in
 * the middle of whichever request's commit crossed the mark. Here a worker thread with a
 * connection of its own runs a PASSIVE checkpoint every CHECKPOINT_INTERVAL_MS: it never blocks
 * the writer or a reader (https://www.sqlite.org/c3ref/wal_checkpoint_v2.html), and its copying
 * and syncing run on another core. The gateway's own connection keeps an automatic checkpoint at
 * FALLBACK_AUTOCHECKPOINT_PAGES, so the WAL stays bounded if the worker falls behind or stops.
 *
 * Durability does not change: a commit is durable once in the WAL (synchronous=FULL syncs it),
 * whoever checkpoints it later.
 */
import { createRequire } from 'node:module';
import { Worker } from 'node:worker_threads';

/** How often the worker checkpoints. A checkpoint with nothing to copy costs a few system calls. */
export const CHECKPOINT_INTERVAL_MS = 100;

/**
 * The gateway connection's own wal_autocheckpoint while the worker runs (SQLite's default is
 * 1,000): about 40 MB of WAL at 4 kB pages. Under sustained writes the worker's PASSIVE
 * checkpoints copy almost everything, but the WAL restarts from its beginning only once a
 * checkpoint has caught up with its end; past this many pages the writer's own checkpoint, with
 * little left to copy, lets it restart.
 */
export const FALLBACK_AUTOCHECKPOINT_PAGES = 10_000;

/** A PASSIVE checkpoint's answer: WAL frames in all, and frames now copied into the database file. */
export interface CheckpointResult {
  walFrames: number;
  checkpointedFrames: number;
}

export interface SqliteCheckpointer {
  /** Stops the worker; its connection closes with it. */
  stop(): Promise<void>;
  /** Resolves after the worker's next checkpoint (tests). */
  nextCheckpoint(): Promise<CheckpointResult>;
}

// The worker's code, CommonJS as `eval` workers are: it opens the database file and checkpoints it.
const WORKER_SOURCE = `
const { parentPort, workerData } = require('node:worker_threads');
const Database = require(workerData.driver);
const database = new Database(workerData.file, { fileMustExist: true });
database.pragma('synchronous = ' + workerData.synchronous);
const timer = setInterval(() => {
  try {
    const [result] = database.pragma('wal_checkpoint(PASSIVE)');
    parentPort.postMessage({ walFrames: result.log, checkpointedFrames: result.checkpointed });
  } catch (error) {
    parentPort.postMessage({ error: String(error && error.message) });
  }
}, workerData.intervalMs);
parentPort.on('message', () => {
  clearInterval(timer);
  database.close();
  parentPort.close();
});
`;

/**
 * Starts checkpointing `file` (a SQLite database in WAL mode, already open and migrated) from a
 * worker thread. The worker never keeps the process alive; `onError` hears a failed checkpoint
 * (the fallback checkpoint still bounds the WAL).
 */
export function startSqliteCheckpointer(
  file: string,
  options: { synchronous: 'FULL' | 'NORMAL'; onError?: (message: string) => void },
): SqliteCheckpointer {
  const driver = createRequire(import.meta.url).resolve('better-sqlite3');
  const worker = new Worker(WORKER_SOURCE, {
    eval: true,
    workerData: { driver, file, synchronous: options.synchronous, intervalMs: CHECKPOINT_INTERVAL_MS },
  });
  worker.unref();
  let waiting: Array<(result: CheckpointResult) => void> = [];
  worker.on('message', (message: CheckpointResult | { error: string }) => {
    if ('error' in message) {
      options.onError?.(message.error);
      return;
    }
    const resolved = waiting;
    waiting = [];
    for (const resolve of resolved) resolve(message);
  });
  // A worker that fails to start (a file it cannot open) is reported, never fatal to the gateway.
  worker.on('error', (error) => options.onError?.(error.message));
  const exited = new Promise<void>((resolve) => worker.once('exit', () => resolve()));
  return {
    async stop() {
      worker.postMessage('stop');
      await exited;
    },
    nextCheckpoint: () => new Promise((resolve) => waiting.push(resolve)),
  };
}
