/**
 * Every gateway a test starts logs into one in-memory sink, so the whole suite's logs can be
 * searched for PHI at the end (root-hooks.ts) and single tests can look at what they caused.
 */
import Transport from 'winston-transport';
import { createLogger, type Logger } from '../../src/logging/logger.js';

const MESSAGE = Symbol.for('message');

class MemoryTransport extends Transport {
  readonly lines: string[] = [];

  override log(info: Record<string | symbol, unknown>, next: () => void): void {
    const line = info[MESSAGE];
    this.lines.push(typeof line === 'string' ? line : JSON.stringify(info));
    next();
  }
}

const sink = new MemoryTransport();

/** All log lines written by test gateways so far, as the JSON text that would reach stdout. */
export function capturedLogLines(): readonly string[] {
  return sink.lines;
}

let logger: Logger | undefined;

/** The one logger, at debug level (the most talkative), that every test gateway writes into the sink with. */
export function capturingLogger(): Logger {
  logger ??= createLogger({ level: 'debug', transports: [sink] });
  return logger;
}
