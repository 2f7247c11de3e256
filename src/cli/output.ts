/**
 * How the CLI speaks: exit codes scripts rely on, `--json` for machines, aligned tables for
 * people, and a progress bar (cli-progress) on stderr for work that takes more than a second.
 */
import cliProgress from 'cli-progress';

/** 0: all good; 1: the command ran and found problems; 2: the command was used wrongly (or could not run). */
export const EXIT = { ok: 0, findings: 1, usage: 2 } as const;
export type ExitCode = (typeof EXIT)[keyof typeof EXIT];

/** Where a command writes: stdout for results, stderr for progress and notes; injectable for tests. */
export interface Terminal {
  out(text: string): void;
  err(text: string): void;
  /** Whether stderr is a terminal a person watches (progress bars only then). */
  interactive: boolean;
}

export const processTerminal: Terminal = {
  out: (text) => process.stdout.write(`${text}\n`),
  err: (text) => process.stderr.write(`${text}\n`),
  interactive: process.stderr.isTTY === true,
};

/** An aligned plain-text table: header, a rule, the rows. */
export function table(headers: readonly string[], rows: ReadonlyArray<readonly string[]>): string {
  const widths = headers.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const line = (cells: readonly string[]): string =>
    cells
      .map((c, i) => (i === cells.length - 1 ? c : c.padEnd(widths[i]!)))
      .join('  ')
      .trimEnd();
  return [line(headers), line(widths.map((w) => '-'.repeat(w))), ...rows.map(line)].join('\n');
}

export interface Progress {
  tick(by?: number): void;
  stop(): void;
}

/**
 * A progress bar shown only to a person (interactive stderr, not --json) and only once the work
 * has taken more than a second, so quick runs and pipes stay clean.
 */
export function startProgress(terminal: Terminal, options: { total: number; label: string; json: boolean }): Progress {
  let done = 0;
  let bar: cliProgress.SingleBar | undefined;
  const startedAt = Date.now();
  const enabled = terminal.interactive && !options.json;
  return {
    tick(by = 1) {
      done += by;
      if (!enabled) return;
      if (!bar && Date.now() - startedAt > 1000) {
        bar = new cliProgress.SingleBar(
          {
            format: `${options.label} [{bar}] {percentage}% | {value}/{total} | {eta_formatted} left`,
            stream: process.stderr,
            hideCursor: true,
            clearOnComplete: true,
          },
          cliProgress.Presets.shades_classic,
        );
        bar.start(options.total, done);
      }
      bar?.update(done);
    },
    stop() {
      bar?.stop();
    },
  };
}

export function printJson(terminal: Terminal, value: unknown): void {
  terminal.out(JSON.stringify(value, null, 2));
}
