/**
 * The sandbox (issue 13, docs/cli.md#sandbox): the gateway, the stand-in EHR and the stand-in payer
 * in one process, wired together on free ports, with the demo directory, drug catalog, payers and
 * clients (fixtures/), so an integration engineer sees a referral go from order to booked
 * Appointment without configuring anything.
 *
 * - the stand-in EHR (stand-in-ehr.ts) is the gateway's EHR (EHR_FHIR_BASE_URL): write-back of
 *   Tasks, Coverages and Appointments lands there, and its ServiceRequests are pulled;
 * - the stand-in payer (stand-in-payer.ts) answers for every demo payer (PAYER_CONNECTIONS):
 *   every member in force, prior authorizations approved;
 * - the gateway runs with authentication on and the demo client registry (fixtures/clients/), on
 *   an embedded SQLite database in a throwaway folder.
 */
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import type http from 'node:http';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import winston from 'winston';
import { systemClock } from '../adapters/system-clock.js';
import { requestToken } from '../auth/demo-token.js';
import { loadConfig } from '../config/config.js';
import { buildGateway } from '../gateway.js';
import { createLogger } from '../logging/logger.js';
import { startStandInEhr, type StandInEhr } from './stand-in-ehr.js';
import { startStandInPayer, type StandInPayer } from './stand-in-payer.js';

export const PROJECT_ROOT = path.resolve(import.meta.dirname, '../..');

/** The payers of the demo directory (fixtures/directory/demo-directory.bundle.json), all answered by the stand-in payer. */
export const DEMO_PAYERS: readonly string[] = ['payer-cumberland', 'payer-peachtree', 'payer-sonoran'];

/** The gateway's port when none is asked for: the README's, if it is free. */
const PREFERRED_PORT = 8080;

export interface SandboxOptions {
  /** The gateway's port; default 8080 when free, else any free port. 0: any free port. */
  port?: number;
  host?: string;
  /** The gateway's log level (its JSON lines go to a file in the sandbox folder). */
  logLevel?: string;
}

export interface Sandbox {
  /** http://host:port of the gateway (the token endpoint is at /oauth/token). */
  gatewayUrl: string;
  /** The gateway's FHIR base. */
  fhirBase: string;
  ehr: StandInEhr;
  payer: StandInPayer;
  /** The throwaway folder: the SQLite database and the gateway's log. */
  dataDir: string;
  logFile: string;
  stop(): Promise<void>;
}

export async function startSandbox(options: SandboxOptions = {}): Promise<Sandbox> {
  const host = options.host ?? '127.0.0.1';
  const dataDir = await mkdtemp(path.join(os.tmpdir(), 'infusion-sandbox-'));
  const stops: Array<() => Promise<void>> = [() => rm(dataDir, { recursive: true, force: true })];
  const stop = async (): Promise<void> => {
    for (const step of stops.splice(0)) await step().catch(() => undefined);
  };
  try {
    const ehr = await startStandInEhr();
    stops.unshift(() => ehr.stop());
    let gatewayUrl = '';
    const payer = await startStandInPayer({
      // Every member in force with a copay, prior authorization required and approved (so the story
      // shows both exchanges), unless told otherwise through its control API.
      defaultRule: { eligibility: { inForce: true, authRequired: true, costShare: { copay: { value: 25, currency: 'USD' } } } },
      // A pended authorization decided later is notified as the payer's own demo client, where one exists.
      notificationHeaders: async (endpoint): Promise<Record<string, string>> => {
        const payerId = /\/payer-notifications\/([^/?]+)/.exec(endpoint)?.[1];
        if (payerId !== 'payer-sonoran') return {};
        return { authorization: `Bearer ${await requestToken({ origin: gatewayUrl, clientId: 'demo-payer-sonoran' })}` };
      },
    });
    stops.unshift(() => payer.stop());

    const logFile = path.join(dataDir, 'gateway.log');
    const config = loadConfig(
      {
        ...process.env,
        DATA_DIR: dataDir,
        DATABASE_URL: '',
        EHR_FHIR_BASE_URL: ehr.baseUrl,
        EHR_CONNECTIONS: '',
        PAYER_CONNECTIONS: JSON.stringify(DEMO_PAYERS.map((p) => ({ payer: p, baseUrl: payer.baseUrl }))),
        AUTH: 'on',
        AUTH_CLIENTS: '',
        LOG_LEVEL: options.logLevel ?? 'info',
      },
      PROJECT_ROOT,
    );
    const logger = createLogger({ level: config.logLevel, transports: [new winston.transports.File({ filename: logFile })] });
    const pkg = JSON.parse(await readFile(path.join(PROJECT_ROOT, 'package.json'), 'utf8')) as { version?: string };
    const gateway = await buildGateway(config, { logger, clock: systemClock, softwareVersion: pkg.version ?? '0.0.0' });
    stops.unshift(() => gateway.close());
    const server = await listenPreferring(gateway.app, options.port, host);
    const background = gateway.startBackgroundWork();
    stops.unshift(async () => {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
      await background.stop();
    });
    const { port } = server.address() as AddressInfo;
    gatewayUrl = `http://${host.includes(':') ? `[${host}]` : host}:${port}`;
    return { gatewayUrl, fhirBase: `${gatewayUrl}/fhir`, ehr, payer, dataDir, logFile, stop };
  } catch (err) {
    await stop();
    throw err;
  }
}

async function listenPreferring(app: http.RequestListener, port: number | undefined, host: string): Promise<http.Server> {
  const { createServer } = await import('node:http');
  const attempt = (p: number): Promise<http.Server> =>
    new Promise((resolve, reject) => {
      const server = createServer(app);
      server.once('error', reject);
      server.listen(p, host, () => {
        server.off('error', reject);
        resolve(server);
      });
    });
  if (port !== undefined) return attempt(port);
  try {
    return await attempt(PREFERRED_PORT);
  } catch (err) {
    if ((err as { code?: string }).code !== 'EADDRINUSE') throw err;
    return attempt(0);
  }
}

/** What to call, for a person: printed when the sandbox is up. */
export function sandboxGuide(sandbox: Sandbox): string[] {
  const b = sandbox.fhirBase;
  return [
    'Sandbox up: the gateway, a stand-in EHR and a stand-in payer (demo data, demo clients: never for real patients).',
    '',
    `  gateway FHIR base   ${b}`,
    `  API reference       ${sandbox.gatewayUrl}/api-docs   (OpenAPI: ${sandbox.gatewayUrl}/openapi.json)`,
    `  console             ${sandbox.gatewayUrl}/console/`,
    ...consoleSignInHelp(sandbox),
    `  stand-in EHR        ${sandbox.ehr.baseUrl}   (what the gateway writes back; no token needed)`,
    `  stand-in payer      ${sandbox.payer.baseUrl}   (answers for ${DEMO_PAYERS.join(', ')}: in force, authorization required and approved)`,
    `  gateway log         ${sandbox.logFile}`,
    '',
    'Tokens (SMART Backend Services, the demo clients of fixtures/clients/, five minutes each):',
    `  EHR="Authorization: Bearer $(npx infusion-gateway token demo-ehr --gateway ${sandbox.gatewayUrl})"`,
    `  COORD="Authorization: Bearer $(npx infusion-gateway token demo-coordinator --gateway ${sandbox.gatewayUrl})"`,
    '',
    'Try:',
    `  curl -s ${b}/metadata | head`,
    `  curl -s -X POST ${b}/ServiceRequest -H "$EHR" -H 'content-type: application/fhir+json' --data @fixtures/site-check/seed-000-practice-address-patient-choice/service-request.json`,
    `  curl -s -H "$COORD" '${b}/Task?business-status=misroute-suspected'`,
    `  curl -s '${sandbox.ehr.baseUrl}/Task'                      # what reached the EHR`,
    `  npx infusion-gateway send fixtures/referrals/infliximab/transaction-bundle.json --to ${b} --client demo-ehr`,
    `  npx infusion-gateway check fixtures/ --to ${b} --client demo-ehr`,
    `  requests/*.http with VS Code REST Client or httpyac: set @gateway = ${sandbox.gatewayUrl} (requests/README.md)`,
    '',
    'Ctrl-C stops everything and deletes the sandbox data.',
  ];
}

/**
 * How a person signs in to the console. Hook for the OIDC sign-in with demo users (console work):
 * return the lines that name the sign-in page and the demo users once it exists.
 */
function consoleSignInHelp(_sandbox: Sandbox): string[] {
  return [];
}
