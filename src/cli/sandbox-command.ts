/**
 * `infusion-gateway sandbox [--story] [--exit]` (also `npm run sandbox`): starts the gateway, the
 * stand-in EHR and the stand-in payer wired together (src/sandbox/sandbox.ts), prints what to call,
 * and with `--story` plays seed 000's story end to end (src/sandbox/story.ts). Runs until Ctrl-C,
 * or `--exit` stops after the story: exit code 0 when it ended with a booked Appointment in the
 * EHR, 1 when a step failed, 2 when the sandbox could not start.
 *
 * The sandbox is loaded only by this command: the stand-in EHR needs Medplum, a development
 * dependency present in a clone after `npm install`.
 */
import { EXIT, type ExitCode, type Terminal } from './output.js';

export interface SandboxCommandOptions {
  port?: number;
  host: string;
  story: boolean;
  exit: boolean;
  logLevel: string;
}

export async function sandboxCommand(
  options: SandboxCommandOptions,
  terminal: Terminal,
  waitForStop: () => Promise<void> = waitForSignal,
): Promise<ExitCode> {
  // From the start of the process (node and tsx loading included), as a person timing the command sees it.
  const elapsed = (): number => process.uptime() * 1000;
  let sandboxModule: typeof import('../sandbox/sandbox.js');
  let storyModule: typeof import('../sandbox/story.js');
  let sandbox: import('../sandbox/sandbox.js').Sandbox;
  try {
    sandboxModule = await import('../sandbox/sandbox.js');
    storyModule = await import('../sandbox/story.js');
    sandbox = await sandboxModule.startSandbox({
      ...(options.port !== undefined ? { port: options.port } : {}),
      host: options.host,
      logLevel: options.logLevel,
    });
  } catch (err) {
    terminal.err(`infusion-gateway sandbox: could not start: ${(err as Error).message}`);
    return EXIT.usage;
  }
  let code: ExitCode = EXIT.ok;
  try {
    for (const line of sandboxModule.sandboxGuide(sandbox)) terminal.out(line);
    terminal.out(`(up in ${(elapsed() / 1000).toFixed(1)} s)`);
    if (options.story) {
      terminal.out('');
      terminal.out("Seed 000's story (docs/domain.md, field note 000), over the gateway's HTTP API with the demo clients' tokens:");
      try {
        const result = await storyModule.playSeedStory({
          fhirBase: sandbox.fhirBase,
          ehrBase: sandbox.ehr.baseUrl,
          payerBase: sandbox.payer.baseUrl,
          projectRoot: sandboxModule.PROJECT_ROOT,
          print: (line) => terminal.out(line),
          elapsed,
        });
        terminal.out(
          `Story done: Appointment/${result.appointment.id} booked ${(result.bookedAtMs / 1000).toFixed(1)} s after the process started; everything in the EHR ${(elapsed() / 1000).toFixed(1)} s after.`,
        );
      } catch (err) {
        terminal.err(`The story stopped: ${(err as Error).message}`);
        code = EXIT.findings;
      }
    }
    if (!options.exit) await waitForStop();
  } finally {
    await sandbox.stop();
  }
  return code;
}

function waitForSignal(): Promise<void> {
  return new Promise((resolve) => {
    process.once('SIGINT', () => resolve());
    process.once('SIGTERM', () => resolve());
  });
}
