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
import { sandboxCommand } from './sandbox-command.js';
import { sendCommand } from './send-command.js';
import { cdsTokenCommand, tokenCommand } from './token-command.js';
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

function port(value: string): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n < 0 || n > 65535) throw new InvalidArgumentError('a port number from 0 (any free port) to 65535');
  return n;
}

/** The gateway's origin for `token`: --gateway, else GATEWAY_URL, else localhost on PORT or 8080. */
const defaultGatewayOrigin = (): string => process.env['GATEWAY_URL'] ?? `http://localhost:${process.env['PORT'] ?? '8080'}`;

/** Options every command that talks to a gateway takes: a bearer token, or act as a SMART Backend Services client. */
function gatewayOptions(command: Command): Command {
  return command
    .option('--token <bearer>', 'bearer token for the gateway (default: $GATEWAY_TOKEN)')
    .option(
      '--client <id>',
      'act as this SMART Backend Services client (e.g. demo-ehr): its key from --key-file, a token from the gateway, renewed as needed',
    )
    .option(
      '--key-file <file>',
      'private keys by client id, {"keys": {"<id>": <JWK>}} (default: $CLIENT_KEYS or the demo keys in fixtures/clients/)',
    )
    .option('--tenant <id>', 'tenant to act for (sent as X-Tenant-Id until client authentication names it)')
    .addOption(new Option('--timeout <ms>', 'how long to follow a referral Task').argParser(milliseconds).default(30_000))
    .addOption(new Option('--settle <ms>', 'a Task status unchanged this long is settled').argParser(milliseconds).default(1_500));
}

/** `send` and `check`: files in, posted to the gateway at --to, each referral's Task followed. */
function followingCommand(
  program: Command,
  name: string,
  description: string,
  [argument, argumentHelp]: [string, string],
  toHelp: string,
): Command {
  return gatewayOptions(
    program
      .command(name)
      .description(description)
      .argument(argument, argumentHelp)
      .requiredOption('--to <fhir base>', toHelp, fhirBase)
      .option('--json', 'machine-readable output'),
  );
}

export function buildProgram(terminal: Terminal, done: (code: ExitCode) => void): Command {
  const program = new Command('infusion-gateway')
    .description("Integration kit for the infusion referral gateway: validate, send, check fixtures, replay an EHR's orders.")
    .showHelpAfterError('(run with --help for usage)')
    .configureOutput({ writeOut: (s) => terminal.out(s.trimEnd()), writeErr: (s) => terminal.err(s.trimEnd()) })
    .exitOverride();

  program
    .command('validate')
    .description(
      'validate FHIR JSON files, Bundles and NDJSON offline, with the validators the server runs (base R4 + the infusion-referral profile)',
    )
    .argument('<paths...>', 'files or folders (.json: one resource each; .ndjson: one per line)')
    .option('--json', 'machine-readable output')
    .option('--all', 'list warnings and information too, not only errors')
    .option('--profiles <dir>', 'StructureDefinitions to validate against', fromProject('profiles'))
    .action(async (paths: string[], opts: { json?: boolean; all?: boolean; profiles: string }) => {
      done(await validateCommand(paths, { json: opts.json === true, all: opts.all === true, profilesDir: opts.profiles }, terminal));
    });

  followingCommand(
    program,
    'send',
    "post referrals (ServiceRequest) or transaction/batch Bundles to a gateway and follow each referral's Task businessStatus",
    ['<files...>', 'JSON or NDJSON files or folders'],
    'the gateway FHIR base, e.g. http://localhost:8080/fhir',
  ).action(async (files: string[], opts: GatewayOptions & { to: string; json?: boolean }) => {
    done(await sendCommand(files, { to: opts.to, json: opts.json === true, ...gatewayRunOptions(opts) }, terminal));
  });

  followingCommand(
    program,
    'check',
    'run fixture cases (folders with expected.json, see fixtures/README.md) against a running gateway: pass/fail per case with the difference',
    ['<folder>', 'fixtures folder, e.g. fixtures/'],
    'the gateway FHIR base',
  ).action(async (folder: string, opts: GatewayOptions & { to: string; json?: boolean }) => {
    done(await checkCommand(folder, { to: opts.to, json: opts.json === true, ...gatewayRunOptions(opts) }, terminal));
  });

  gatewayOptions(
    program
      .command('replay')
      .description(
        "read an EHR's historical orders and show what the gateway would decide for each (misroutes, coverage problems, denial risks)",
      )
      .requiredOption('--from <ehr fhir base>', 'the EHR FHIR base to read ServiceRequests from', fhirBase)
      .requiredOption('--since <date>', 'orders last updated on or after this FHIR date or dateTime')
      .option('--dry-run', "run the gateway's rules here, against the directory and catalog files; write nothing anywhere")
      .option('--to <fhir base>', 'without --dry-run: the gateway to send each order to', fhirBase)
      .option('--ehr-token <bearer>', 'bearer token for the EHR (default: $EHR_BEARER_TOKEN)')
      .option('--directory <file>', 'directory Bundle for --dry-run', fromProject('fixtures/directory/demo-directory.bundle.json'))
      .option('--drug-catalog <file>', 'drug catalog for --dry-run', fromProject('fixtures/drug-catalog.json'))
      .option('--profiles <dir>', 'StructureDefinitions for --dry-run', fromProject('profiles'))
      .addOption(new Option('--limit <n>', 'stop after this many orders').argParser(positiveInteger).default(10_000))
      .addOption(new Option('--page-size <n>', 'orders per page asked of the EHR (_count)').argParser(positiveInteger).default(100))
      .option('--json', 'machine-readable output'),
  ).action(
    async (
      opts: GatewayOptions & {
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
      },
    ) => {
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
            ...gatewayRunOptions(opts),
          },
          terminal,
        ),
      );
    },
  );

  program
    .command('token')
    .description(
      'print a bearer token for a client (default: the demo clients of fixtures/clients/), got from a running gateway as a SMART Backend Services client',
    )
    .argument('[client]', 'client id: demo-ehr | demo-coordinator | demo-operator | demo-payer-sonoran, or one of --key-file')
    .option(
      '--cds-service <url>',
      'instead: a CDS Hooks client JWT of the demo issuer (fixtures/security/) for one call to this service URL, e.g. http://localhost:8080/cds-services/infusion-site-check',
    )
    .option('--gateway <url>', "the gateway's origin (default: $GATEWAY_URL, else http://localhost:$PORT or 8080)")
    .option('--scope <scopes>', 'scopes to ask for (default: all the client is registered with)')
    .option('--key-file <file>', 'private keys by client id (default: $CLIENT_KEYS or the demo keys)')
    .option('--clients-file <file>', 'the client registry the default scopes come from (default: $AUTH_CLIENTS or the demo registry)')
    .option('--json', 'machine-readable output')
    .action(
      async (
        client: string | undefined,
        opts: { gateway?: string; scope?: string; keyFile?: string; clientsFile?: string; json?: boolean; cdsService?: string },
      ) => {
        if (opts.cdsService !== undefined) {
          done(await cdsTokenCommand(fhirBase(opts.cdsService), { json: opts.json === true }, terminal));
          return;
        }
        if (client === undefined) {
          terminal.err('infusion-gateway token: name a client, e.g. infusion-gateway token demo-ehr (or give --cds-service)');
          done(EXIT.usage);
          return;
        }
        const keyFile = opts.keyFile ?? process.env['CLIENT_KEYS'];
        const clientsFile = opts.clientsFile ?? process.env['AUTH_CLIENTS'];
        done(
          await tokenCommand(
            client,
            {
              gateway: fhirBase(opts.gateway ?? defaultGatewayOrigin()),
              json: opts.json === true,
              ...(opts.scope !== undefined ? { scope: opts.scope } : {}),
              ...(keyFile !== undefined ? { keyFile } : {}),
              ...(clientsFile !== undefined ? { clientsFile } : {}),
            },
            terminal,
          ),
        );
      },
    );

  program
    .command('sandbox')
    .description(
      'start the gateway, a stand-in EHR and a stand-in payer wired together (demo directory, payers, clients) and print what to call; --story plays seed 000 from order to booked Appointment',
    )
    .option('--story', "play seed 000's story end to end and print each step as it happens")
    .option('--exit', 'stop after the story instead of running until Ctrl-C (exit code 1 if the story failed)')
    .addOption(new Option('--port <n>', "the gateway's port (default 8080 when free, else any free port; 0: any)").argParser(port))
    .option('--host <address>', 'where to listen', '127.0.0.1')
    .option('--log-level <level>', "the gateway's log level (its log goes to a file in the sandbox folder)", 'info')
    .action(async (opts: { story?: boolean; exit?: boolean; port?: number; host: string; logLevel: string }) => {
      done(
        await sandboxCommand(
          {
            story: opts.story === true,
            exit: opts.exit === true,
            host: opts.host,
            logLevel: opts.logLevel,
            ...(opts.port !== undefined ? { port: opts.port } : {}),
          },
          terminal,
        ),
      );
    });
  return program;
}

/** What gatewayOptions parses. */
interface GatewayOptions {
  token?: string;
  tenant?: string;
  client?: string;
  keyFile?: string;
  timeout: number;
  settle: number;
}

/** The gateway options as the commands take them: how long to follow a Task, and the credentials. */
function gatewayRunOptions(opts: GatewayOptions) {
  return { timeoutMs: opts.timeout, settleMs: opts.settle, ...credentialOptions(opts) };
}

function credentialOptions(opts: { token?: string; tenant?: string; client?: string; keyFile?: string }): {
  token?: string;
  tenant?: string;
  client?: string;
  keyFile?: string;
} {
  const keyFile = opts.keyFile ?? process.env['CLIENT_KEYS'];
  return {
    ...(opts.token ? { token: opts.token } : {}),
    ...(opts.tenant ? { tenant: opts.tenant } : {}),
    ...(opts.client ? { client: opts.client } : {}),
    ...(opts.client && keyFile ? { keyFile } : {}),
  };
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
