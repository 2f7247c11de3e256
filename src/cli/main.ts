/**
 * `infusion-gateway`: the integration kit's command line (docs/cli.md). Each command is a thin
 * adapter over the gateway's own validators, rules and FHIR API. Exit codes: 0 all good, 1 the
 * command ran and found problems, 2 it was used wrongly or could not run.
 */
import { Command, CommanderError, InvalidArgumentError, Option } from 'commander';
import path from 'node:path';
import { checkCommand } from './check-command.js';
import { EXIT, processTerminal, type ExitCode, type Terminal } from './output.js';
import { replayCommand } from './replay-command.js';
import { sendCommand } from './send-command.js';
import { validateCommand } from './validate-command.js';

const PROJECT_ROOT = path.resolve(import.meta.dirname, '../..');
const fromProject = (relative: string): string => path.join(PROJECT_ROOT, relative);

function milliseconds(value: string): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n < 0) throw new InvalidArgumentError('a whole number of milliseconds');
  return n;
}

function positiveInteger(value: string): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n < 1) throw new InvalidArgumentError('a whole number from 1');
  return n;
}

function fhirBase(value: string): string {
  try {
    const url = new URL(value);
    if (url.protocol !== 'http:' && url.protocol !== 'https:') throw new Error();
  } catch {
    throw new InvalidArgumentError('an http(s) URL of a FHIR base, e.g. http://localhost:8080/fhir');
  }
  return value;
}

/** Options every command that talks to a gateway takes; --client-id/--key-file join them with SMART Backend Services. */
function gatewayOptions(command: Command): Command {
  return command
    .option('--token <bearer>', 'bearer token for the gateway (default: $GATEWAY_TOKEN)')
    .option('--tenant <id>', 'tenant to act for (sent as X-Tenant-Id until client authentication names it)')
    .addOption(new Option('--timeout <ms>', 'how long to follow a referral Task').argParser(milliseconds).default(30_000))
    .addOption(new Option('--settle <ms>', 'a Task status unchanged this long is settled').argParser(milliseconds).default(1_500));
}

export function buildProgram(terminal: Terminal, done: (code: ExitCode) => void): Command {
  const program = new Command('infusion-gateway')
    .description('Integration kit for the infusion referral gateway: validate, send, check fixtures, replay an EHR\'s orders.')
    .showHelpAfterError('(run with --help for usage)')
    .configureOutput({ writeOut: (s) => terminal.out(s.trimEnd()), writeErr: (s) => terminal.err(s.trimEnd()) })
    .exitOverride();

  program
    .command('validate')
    .description('validate FHIR JSON files, Bundles and NDJSON offline, with the validators the server runs (base R4 + the infusion-referral profile)')
    .argument('<paths...>', 'files or folders (.json: one resource each; .ndjson: one per line)')
    .option('--json', 'machine-readable output')
    .option('--all', 'list warnings and information too, not only errors')
    .option('--profiles <dir>', 'StructureDefinitions to validate against', fromProject('profiles'))
    .action(async (paths: string[], opts: { json?: boolean; all?: boolean; profiles: string }) => {
      done(await validateCommand(paths, { json: opts.json === true, all: opts.all === true, profilesDir: opts.profiles }, terminal));
    });

  gatewayOptions(
    program
      .command('send')
      .description("post referrals (ServiceRequest) or transaction/batch Bundles to a gateway and follow each referral's Task businessStatus")
      .argument('<files...>', 'JSON or NDJSON files or folders')
      .requiredOption('--to <fhir base>', 'the gateway FHIR base, e.g. http://localhost:8080/fhir', fhirBase)
      .option('--json', 'machine-readable output'),
  ).action(async (files: string[], opts: { to: string; json?: boolean; token?: string; tenant?: string; timeout: number; settle: number }) => {
    done(await sendCommand(files, { to: opts.to, json: opts.json === true, timeoutMs: opts.timeout, settleMs: opts.settle, ...credentialOptions(opts) }, terminal));
  });

  gatewayOptions(
    program
      .command('check')
      .description('run fixture cases (folders with expected.json, see fixtures/README.md) against a running gateway: pass/fail per case with the difference')
      .argument('<folder>', 'fixtures folder, e.g. fixtures/')
      .requiredOption('--to <fhir base>', 'the gateway FHIR base', fhirBase)
      .option('--json', 'machine-readable output'),
  ).action(async (folder: string, opts: { to: string; json?: boolean; token?: string; tenant?: string; timeout: number; settle: number }) => {
    done(await checkCommand(folder, { to: opts.to, json: opts.json === true, timeoutMs: opts.timeout, settleMs: opts.settle, ...credentialOptions(opts) }, terminal));
  });

  gatewayOptions(
    program
      .command('replay')
      .description("read an EHR's historical orders and show what the gateway would decide for each (misroutes, coverage problems, denial risks)")
      .requiredOption('--from <ehr fhir base>', 'the EHR FHIR base to read ServiceRequests from', fhirBase)
      .requiredOption('--since <date>', 'orders last updated on or after this FHIR date or dateTime')
      .option('--dry-run', 'run the gateway\'s rules here, against the directory and catalog files; write nothing anywhere')
      .option('--to <fhir base>', 'without --dry-run: the gateway to send each order to', fhirBase)
      .option('--ehr-token <bearer>', 'bearer token for the EHR (default: $EHR_BEARER_TOKEN)')
      .option('--directory <file>', 'directory Bundle for --dry-run', fromProject('fixtures/directory/demo-directory.bundle.json'))
      .option('--drug-catalog <file>', 'drug catalog for --dry-run', fromProject('fixtures/drug-catalog.json'))
      .option('--profiles <dir>', 'StructureDefinitions for --dry-run', fromProject('profiles'))
      .addOption(new Option('--limit <n>', 'stop after this many orders').argParser(positiveInteger).default(10_000))
      .addOption(new Option('--page-size <n>', 'orders per page asked of the EHR (_count)').argParser(positiveInteger).default(100))
      .option('--json', 'machine-readable output'),
  ).action(
    async (opts: {
      from: string;
      since: string;
      dryRun?: boolean;
      to?: string;
      ehrToken?: string;
      directory: string;
      drugCatalog: string;
      profiles: string;
      limit: number;
      pageSize: number;
      json?: boolean;
      token?: string;
      tenant?: string;
      timeout: number;
      settle: number;
    }) => {
      const ehrToken = opts.ehrToken ?? process.env['EHR_BEARER_TOKEN'];
      done(
        await replayCommand(
          {
            from: opts.from,
            since: opts.since,
            dryRun: opts.dryRun === true,
            ...(opts.to ? { to: opts.to } : {}),
            ...(ehrToken ? { ehrToken } : {}),
            json: opts.json === true,
            directory: opts.directory,
            drugCatalog: opts.drugCatalog,
            profilesDir: opts.profiles,
            limit: opts.limit,
            pageSize: opts.pageSize,
            timeoutMs: opts.timeout,
            settleMs: opts.settle,
            ...credentialOptions(opts),
          },
          terminal,
        ),
      );
    },
  );
  return program;
}

function credentialOptions(opts: { token?: string; tenant?: string }): { token?: string; tenant?: string } {
  return { ...(opts.token ? { token: opts.token } : {}), ...(opts.tenant ? { tenant: opts.tenant } : {}) };
}

/** Runs the CLI on `argv` (process.argv shape) and answers its exit code. */
export async function runCli(argv: readonly string[], terminal: Terminal = processTerminal): Promise<ExitCode> {
  let code: ExitCode = EXIT.ok;
  const program = buildProgram(terminal, (c) => (code = c));
  try {
    await program.parseAsync([...argv]);
  } catch (err) {
    if (err instanceof CommanderError) {
      // --help and --version end here too, with exit code 0.
      return err.exitCode === 0 ? EXIT.ok : EXIT.usage;
    }
    terminal.err(`infusion-gateway: ${(err as Error).message}`);
    return EXIT.usage;
  }
  return code;
}
