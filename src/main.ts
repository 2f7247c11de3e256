/**
 * Composition root: configuration, logger, gateway, HTTP listener, graceful shutdown.
 * `npm start` runs this file.
 */
import { mkdir, readFile } from 'node:fs/promises';
import type { Server } from 'node:http';
import { ConfigError, loadConfig, type Config } from './config/config.js';
import { buildGateway, StartupError } from './gateway.js';
import { createLogger, type Logger } from './logging/logger.js';
import { systemClock } from './adapters/system-clock.js';

async function softwareVersion(): Promise<string> {
  const pkg = JSON.parse(await readFile(new URL('../package.json', import.meta.url), 'utf8')) as { version?: string };
  return pkg.version ?? '0.0.0';
}

/** Stops accepting connections, lets in-flight requests finish, then stops background work and closes the store. */
function shutdownOnSignals(server: Server, close: () => Promise<void>, logger: Logger, config: Config): void {
  let stopping = false;
  const stop = (signal: string): void => {
    if (stopping) return;
    stopping = true;
    logger.info('shutting down', { signal, timeoutMs: config.shutdownTimeoutMs });
    const force = setTimeout(() => {
      logger.warn('shutdown timeout reached; closing remaining connections');
      server.closeAllConnections();
    }, config.shutdownTimeoutMs);
    force.unref();
    server.close(() => {
      close()
        .then(() => {
          logger.info('stopped');
          process.exitCode = 0;
        })
        .catch((err: unknown) => {
          logger.error('error while closing the store', { errorName: (err as Error).name });
          process.exitCode = 1;
        });
    });
    // Idle keep-alive connections would hold server.close() open; requests in flight finish first.
    server.closeIdleConnections();
  };
  process.on('SIGTERM', () => stop('SIGTERM'));
  process.on('SIGINT', () => stop('SIGINT'));
}

async function main(): Promise<void> {
  let config: Config;
  try {
    config = loadConfig(process.env);
  } catch (err) {
    if (err instanceof ConfigError) {
      process.stderr.write(`${err.message}\n`);
      process.exit(78); // EX_CONFIG
    }
    throw err;
  }
  const logger = createLogger({ level: config.logLevel });
  if (config.databaseUrl === undefined) await mkdir(config.dataDir, { recursive: true });

  let gateway;
  try {
    gateway = await buildGateway(config, { logger, clock: systemClock, softwareVersion: await softwareVersion() });
  } catch (err) {
    if (err instanceof StartupError) {
      logger.error(err.message);
      process.exit(78);
    }
    throw err;
  }
  const server = gateway.app.listen(config.port, config.host, () => {
    const address = server.address();
    logger.info('gateway listening', {
      port: typeof address === 'object' && address !== null ? address.port : config.port,
      storage: config.databaseUrl === undefined ? `embedded SQLite (${config.sqliteFile})` : 'PostgreSQL',
      directoryLoaded: config.directoryBundle !== undefined,
    });
  });
  const background = gateway.startBackgroundWork();
  shutdownOnSignals(
    server,
    async () => {
      // Deliveries and polls in flight finish before the database closes.
      await background.stop();
      await gateway.close();
    },
    logger,
    config,
  );
}

await main();
