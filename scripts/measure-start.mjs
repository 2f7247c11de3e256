#!/usr/bin/env node
/**
 * Start-up of `npm start` as a newcomer meets it (issue 15; docs/architecture.md, "Decisions"):
 * `node dist/main.js` with the start script's flags (package.json), on a fresh data directory (migrations, demo directory,
 * demo clients), timed from spawn to the first 200 from /healthz, and its resident memory then and
 * two seconds later. Beside it, in the same run, a bare `node` HTTP server timed the same way: the
 * machine is shared, so read the gateway's figure against that floor.
 *
 * Also `npm start` itself, as the README tells a newcomer to run it: npm and its prestart check
 * (build-server.mjs --if-stale) come first, and its memory is the whole tree (npm, sh, node).
 *
 *   npm run measure:start [-- runs]     (default 7; builds dist/ first)
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';

const ROOT = path.resolve(import.meta.dirname, '..');
const RUNS = Number(process.argv[2] ?? 7);
const BARE_SERVER = `require('node:http').createServer((q, s) => s.end('ok')).listen(Number(process.env.PORT), '127.0.0.1')`;

function rssKilobytes(pid) {
  try {
    return Number(/VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1] ?? 0);
  } catch {
    return 0; // gone meanwhile
  }
}

function childrenOf(pid) {
  try {
    return readFileSync(`/proc/${pid}/task/${pid}/children`, 'utf8').trim().split(/\s+/).filter(Boolean).map(Number);
  } catch {
    return [];
  }
}

/** The resident memory of a process and all its descendants (npm start runs sh, which runs node). */
function rssMegabytes(pid) {
  const tree = [pid];
  for (let i = 0; i < tree.length; i++) tree.push(...childrenOf(tree[i]));
  return Math.round(tree.reduce((sum, p) => sum + rssKilobytes(p), 0) / 1024);
}

async function firstAnswer(args, env, port, command = process.execPath) {
  const started = performance.now();
  // detached: its own process group, so that npm's children stop with it.
  const child = spawn(command, args, { cwd: ROOT, env: { ...process.env, ...env, PORT: String(port) }, stdio: 'ignore', detached: true });
  try {
    for (;;) {
      if (child.exitCode !== null) throw new Error(`${args.join(' ')} exited with ${child.exitCode}`);
      try {
        const res = await fetch(`http://127.0.0.1:${port}/healthz`);
        if (res.status === 200) break;
      } catch {
        // not listening yet
      }
      await sleep(10);
    }
    const ms = performance.now() - started;
    const rssAtFirstAnswer = rssMegabytes(child.pid);
    await sleep(2000);
    return { ms, rssAtFirstAnswer, rssTwoSecondsLater: rssMegabytes(child.pid) };
  } finally {
    const exited = new Promise((resolve) => (child.exitCode !== null ? resolve() : child.once('exit', resolve)));
    if (child.pid !== undefined) process.kill(-child.pid, 'SIGTERM');
    await exited;
    await sleep(200); // the group's last members stop after its leader
  }
}

const median = (values) => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)];
const summary = (runs, key) => {
  const values = runs.map((r) => r[key]);
  return `median ${Math.round(median(values))}, min ${Math.round(Math.min(...values))}, max ${Math.round(Math.max(...values))}`;
};

async function onFreshData(measure) {
  const dataDir = mkdtempSync(path.join(os.tmpdir(), 'gateway-start-'));
  try {
    return await measure({ DATA_DIR: dataDir, HOST: '127.0.0.1', LOG_LEVEL: 'warn' });
  } finally {
    rmSync(dataDir, { recursive: true, force: true });
  }
}

/** The gateway as `npm start` runs it: the start script's node arguments (package.json), without npm. */
const START_ARGUMENTS = JSON.parse(readFileSync(path.join(ROOT, 'package.json'), 'utf8'))
  .scripts.start.split(/\s+/)
  .slice(1);

const gateway = [];
const npmStart = [];
const bare = [];
for (let i = 0; i < RUNS; i++) {
  gateway.push(await onFreshData((env) => firstAnswer(START_ARGUMENTS, env, 18400 + i)));
  npmStart.push(await onFreshData((env) => firstAnswer(['start', '--silent'], env, 18450 + i, 'npm')));
  bare.push(await firstAnswer(['-e', BARE_SERVER], {}, 18500 + i));
}
const load = os
  .loadavg()
  .map((l) => l.toFixed(1))
  .join(' ');
const report = (name, runs) => [
  `${name}: first /healthz 200 ${summary(runs, 'ms')} ms;`,
  `  RSS then ${summary(runs, 'rssAtFirstAnswer')} MB, 2 s later ${summary(runs, 'rssTwoSecondsLater')} MB`,
];
console.log(
  [
    `${RUNS} runs each, fresh data directory each time (load average ${load}):`,
    ...report(`node ${START_ARGUMENTS.join(' ')}`, gateway),
    ...report('npm start (npm, sh and node)', npmStart),
    `bare node HTTP server: first answer ${summary(bare, 'ms')} ms, RSS ${summary(bare, 'rssAtFirstAnswer')} MB`,
  ].join('\n'),
);
