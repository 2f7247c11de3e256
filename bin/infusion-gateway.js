#!/usr/bin/env node
// The installed command: runs the TypeScript CLI through tsx (a runtime dependency), so the
// package needs no build step. `npx infusion-gateway --help` lists the commands.
import { register } from 'tsx/esm/api';

register();
const { runCli } = await import('../src/cli/main.ts');
process.exitCode = await runCli(process.argv);
