/**
 * The outbox worker loop: deliver a batch, and when the batch came back full go again at once,
 * else wait `pollIntervalMs`. Every process runs one; the store's claim keeps them apart.
 * stop() lets the round in flight finish (SIGTERM).
 */
import type { Logger } from '../logging/logger.js';
import { deliverDueMessages, type DeliveryDeps, type DeliveryRound } from '../delivery/stories/deliver-outbox.js';

export interface OutboxWorker {
  stop(): Promise<void>;
}

export function startOutboxWorker(
  deps: DeliveryDeps & { logger: Logger },
  options: { pollIntervalMs: number; batchSize: number; leaseMs: number },
): OutboxWorker {
  let stopping = false;
  let wakeUp: (() => void) | undefined;
  const sleep = (ms: number): Promise<void> =>
    new Promise((resolve) => {
      const timer = setTimeout(resolve, ms);
      wakeUp = () => {
        clearTimeout(timer);
        resolve();
      };
    });

  const loop = async (): Promise<void> => {
    while (!stopping) {
      let round: DeliveryRound | undefined;
      try {
        round = await deliverDueMessages(deps, { limit: options.batchSize, leaseMs: options.leaseMs });
      } catch (err) {
        // The database may be briefly unreachable: say so and try again after a pause.
        deps.logger.error('outbox worker round failed', { errorName: (err as Error).name });
      }
      if (stopping) break;
      if (!round || round.claimed < options.batchSize) await sleep(options.pollIntervalMs);
    }
  };
  const running = loop();
  return {
    stop: async () => {
      stopping = true;
      wakeUp?.();
      await running;
    },
  };
}
