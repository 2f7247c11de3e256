/**
 * The console's build: Vite bundles the Preact app into static files that the gateway serves
 * under /console (src/http/console-routes.ts). Everything is bundled: no CDN, nothing fetched
 * from the internet at run time. `npm install` runs it (scripts/build-console.mjs).
 */
import path from 'node:path';
import { defineConfig } from 'vite';

const root = import.meta.dirname;

export default defineConfig({
  root,
  base: '/console/',
  publicDir: false,
  logLevel: 'warn',
  oxc: { jsx: { runtime: 'automatic', importSource: 'preact' } },
  build: {
    outDir: path.resolve(root, '../generated/console'),
    emptyOutDir: true,
    target: 'es2022',
    sourcemap: false,
    // Hashed names: the gateway serves /console/assets/* as immutable.
    assetsDir: 'assets',
    chunkSizeWarningLimit: 400,
  },
});
