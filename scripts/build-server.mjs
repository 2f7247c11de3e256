/**
 * Compiles the gateway (src/) to JavaScript in dist/, which `npm start` runs with plain node: no
 * tsx and no esbuild service in production, and no TypeScript compiled on the first request.
 * Run by `npm install` (the prepare script) after the validators, and before `npm start` when a
 * file under src/ changed since the last build (`--if-stale`), so a developer never runs old code.
 *
 * dist/ mirrors src/ at the same depth, so paths the code resolves from import.meta.url
 * (generated/, package.json) hold in both. JSON data files under src/ are copied beside the code.
 *
 * TypeScript is a development dependency: an install without them (`npm ci --omit=dev`) keeps the
 * dist/ it was given (build it in the CI stage that has them) and says so.
 */
import { spawnSync } from 'node:child_process';
import { copyFileSync, existsSync, mkdirSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';

const root = path.resolve(import.meta.dirname, '..');
const src = path.join(root, 'src');
const dist = path.join(root, 'dist');
const stamp = path.join(dist, '.built');

function* filesUnder(dir) {
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const full = path.join(dir, entry.name);
    if (entry.isDirectory()) yield* filesUnder(full);
    else yield full;
  }
}

function isStale() {
  if (!existsSync(stamp)) return true;
  const builtAt = statSync(stamp).mtimeMs;
  for (const file of [...filesUnder(src), path.join(root, 'tsconfig.json'), path.join(root, 'tsconfig.build.json')]) {
    if (statSync(file).mtimeMs > builtAt) return true;
  }
  return false;
}

if (process.argv.includes('--if-stale') && !isStale()) process.exit(0);

let tsc;
try {
  // The package's exports map hides bin/; its package.json is exported.
  tsc = path.join(path.dirname(createRequire(import.meta.url).resolve('typescript/package.json')), 'bin', 'tsc');
} catch {
  if (existsSync(stamp)) {
    console.log('build-server: TypeScript is not installed (no devDependencies); keeping the existing dist/');
    process.exit(0);
  }
  console.error('build-server: TypeScript is not installed and there is no dist/: run npm install with devDependencies');
  process.exit(1);
}

const started = Date.now();
rmSync(dist, { recursive: true, force: true });
const result = spawnSync(process.execPath, [tsc, '-p', path.join(root, 'tsconfig.build.json')], { stdio: 'inherit' });
if (result.status !== 0) process.exit(result.status ?? 1);
let copied = 0;
for (const file of filesUnder(src)) {
  if (!file.endsWith('.json')) continue;
  const target = path.join(dist, path.relative(src, file));
  mkdirSync(path.dirname(target), { recursive: true });
  copyFileSync(file, target);
  copied += 1;
}
writeFileSync(stamp, `${new Date().toISOString()}\n`);
console.log(`build-server: src/ compiled to dist/ (${copied} data files copied) in ${((Date.now() - started) / 1000).toFixed(1)} s`);
