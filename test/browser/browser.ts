/**
 * A real Chromium for the console's tests: Debian's /usr/bin/chromium (CHROMIUM_PATH to use
 * another) driven by playwright-core, which downloads no browser. Headless, without a sandbox
 * (CI containers), without background networking, component updates, sync or first-run pages,
 * and with a fresh profile each time, so no test sees another's storage.
 *
 * Also here: axe-core run in the page (accessibility), screenshots and the run's report, written
 * under test-results/console/ (git-ignored) for a reviewer to look at.
 */
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import os from 'node:os';
import path from 'node:path';
import { chromium, type BrowserContext, type Page } from 'playwright-core';
import { accessToken } from '../support/test-clients.js';

export const RESULTS_DIR = path.resolve(import.meta.dirname, '../../test-results/console');
const CHROMIUM = process.env['CHROMIUM_PATH'] ?? '/usr/bin/chromium';

export const CHROMIUM_FLAGS = [
  '--no-sandbox',
  '--disable-gpu',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
  '--no-first-run',
];

export interface ConsoleBrowser {
  context: BrowserContext;
  /** A new page that records the page's errors and CSP violations (the tests assert there are none). */
  newPage(viewport?: { width: number; height: number }): Promise<Page>;
  problems: string[];
  close(): Promise<void>;
}

export async function launchConsoleBrowser(): Promise<ConsoleBrowser> {
  if (!existsSync(CHROMIUM))
    throw new Error(`No Chromium at ${CHROMIUM}: install it (apt-get install chromium; .ci/run does) or set CHROMIUM_PATH`);
  const profile = await mkdtemp(path.join(os.tmpdir(), 'console-chromium-'));
  const context = await chromium.launchPersistentContext(profile, {
    executablePath: CHROMIUM,
    headless: true,
    args: CHROMIUM_FLAGS,
    viewport: { width: 1366, height: 900 },
    locale: 'en-US',
    timezoneId: 'America/New_York',
  });
  const problems: string[] = [];
  return {
    context,
    problems,
    newPage: async (viewport) => {
      const page = await context.newPage();
      if (viewport) await page.setViewportSize(viewport);
      page.on('pageerror', (error) => problems.push(`page error: ${error.message}`));
      page.on('console', (message) => {
        if (message.type() === 'error' && !/Failed to load resource/.test(message.text()))
          problems.push(`console error: ${message.text()}`);
      });
      return page;
    },
    close: async () => {
      await context.close();
      await rm(profile, { recursive: true, force: true });
    },
  };
}

export async function screenshot(page: Page, name: string): Promise<string> {
  await mkdir(RESULTS_DIR, { recursive: true });
  const file = path.join(RESULTS_DIR, `${name}.png`);
  await page.screenshot({ path: file, fullPage: true });
  return file;
}

export interface AxeViolation {
  id: string;
  impact: string | null;
  help: string;
  nodes: number;
}

let axeSource: string | undefined;

/**
 * axe-core's WCAG 2.x A/AA rules on the page as it is. The script is evaluated through the
 * DevTools protocol, so the console's CSP (scripts from its own origin only) stays on.
 */
export async function axeViolations(page: Page): Promise<AxeViolation[]> {
  axeSource ??= await readFile(createRequire(import.meta.url).resolve('axe-core/axe.min.js'), 'utf8');
  await page.evaluate(axeSource);
  return page.evaluate(async () => {
    const axe = (
      globalThis as unknown as {
        axe: {
          run(
            context: unknown,
            options: unknown,
          ): Promise<{ violations: Array<{ id: string; impact: string | null; help: string; nodes: unknown[] }> }>;
        };
      }
    ).axe;
    const result = await axe.run(document, { runOnly: { type: 'tag', values: ['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa'] } });
    return result.violations.map((v) => ({ id: v.id, impact: v.impact, help: v.help, nodes: v.nodes.length }));
  });
}

/** The run's report, merged across the browser test files. */
export async function recordResult(key: string, value: unknown): Promise<void> {
  await mkdir(RESULTS_DIR, { recursive: true });
  const file = path.join(RESULTS_DIR, 'report.json');
  const current = existsSync(file) ? (JSON.parse(await readFile(file, 'utf8')) as Record<string, unknown>) : {};
  current[key] = value;
  await writeFile(file, `${JSON.stringify(current, null, 2)}\n`);
}

/** Where the console keeps a pasted access token (console/src/api/session.ts). */
export const CONSOLE_TOKEN_KEY = 'console.accessToken';

/**
 * Signs the page in as a test client before its next navigation: the token comes from the
 * gateway's token endpoint and is put where the console's sign-in field keeps a pasted one.
 * Operators' pages need the operator; the queues, a referral and scheduling the coordinator.
 */
export async function signIn(page: Page, gatewayBaseUrl: string, role: 'coordinator' | 'operator'): Promise<void> {
  const token = await accessToken(new URL(gatewayBaseUrl).origin, { role, tenant: 'default' });
  await page.addInitScript(([key, value]) => sessionStorage.setItem(key, value), [CONSOLE_TOKEN_KEY, token] as const);
}

/** The role a console page needs. */
export const roleForConsolePath = (path: string): 'coordinator' | 'operator' =>
  path.startsWith('/console/operators') ? 'operator' : 'coordinator';
