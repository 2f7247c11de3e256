/**
 * A queue of 10,000 referrals opened in Chromium (issue 14: "opens in under a second"). The
 * referrals go straight into a PostgreSQL store (test/support/referral-volume.ts), the gateway
 * serves them, and the console's own mark (`console:queue-rendered`, set when the first page of
 * rows is on screen) is read after each load. The time is measured and reported, never asserted:
 * the machine is shared. Beside it, in the same run, the two API calls the page needs, timed from
 * Node, as the baseline.
 */
import { expect } from 'chai';
import { fhirFetch, startGateway, type RunningGateway } from '../support/gateway.js';
import { analyzePostgresSchema, storeReferralVolume } from '../support/referral-volume.js';
import { axeViolations, launchConsoleBrowser, recordResult, screenshot, signIn, type ConsoleBrowser } from './browser.js';

export const VOLUME = Number(process.env['CONSOLE_QUEUE_VOLUME'] ?? 10_000);
const LOADS = 7;
const QUEUE = 'verifying-coverage';
const STATUS_SYSTEM = 'https://fhir.infusion-gateway.example/CodeSystem/referral-status';

const median = (values: number[]): number => {
  const sorted = [...values].sort((a, b) => a - b);
  const middle = Math.floor(sorted.length / 2);
  return sorted.length % 2 === 1 ? sorted[middle]! : (sorted[middle - 1]! + sorted[middle]!) / 2;
};

describe(`a queue of ${VOLUME.toLocaleString('en-US')} referrals in Chromium`, function () {
  let gateway: RunningGateway;
  let browser: ConsoleBrowser;
  let stored: Record<string, number>;

  before(async function () {
    this.timeout(900_000);
    gateway = await startGateway({ engine: 'postgres' });
    stored = await storeReferralVolume(gateway.gateway.deps.store, { count: VOLUME, tenant: 'default', now: new Date(), concurrency: 4 });
    // Statistics, as autovacuum would have gathered them on a store that grew to this size.
    await analyzePostgresSchema(gateway.postgresSchema!);
    browser = await launchConsoleBrowser();
  });

  after(async function () {
    await browser?.close();
    await gateway?.stop();
  });

  it('opens with the first page of rows and the right counts, and is timed', async function () {
    const page = await browser.newPage({ width: 1366, height: 900 });
    await signIn(page, gateway.baseUrl, 'coordinator');
    const opened: number[] = [];
    for (let load = 0; load < LOADS; load += 1) {
      if (load === 0) await page.goto(`${gateway.baseUrl}/console/queues/${QUEUE}`);
      else await page.reload();
      await page.waitForFunction(() => performance.getEntriesByName('console:queue-rendered').length > 0, undefined, { timeout: 120_000 });
      opened.push(await page.evaluate(() => performance.getEntriesByName('console:queue-rendered')[0]!.startTime));
    }
    expect(await page.locator('table.queue tbody tr').count()).to.equal(50);
    const tab = page.locator(`a[href="/console/queues/${QUEUE}"] .count`);
    await page.waitForFunction(
      (selector) => /\d/.test(document.querySelector(selector)?.textContent ?? ''),
      `a[href="/console/queues/${QUEUE}"] .count`,
    );
    expect(Number(await tab.textContent())).to.equal(stored[QUEUE]);
    await screenshot(page, `queue-${VOLUME}`);
    const violations = await axeViolations(page);
    expect(violations.filter((v) => v.impact === 'serious' || v.impact === 'critical')).to.deep.equal([]);

    // The baseline: the page's two API calls alone (the Task page, then its orders by _id).
    const api: number[] = [];
    for (let i = 0; i < LOADS; i += 1) {
      const started = performance.now();
      const tasks = await fhirFetch(
        `${gateway.baseUrl}/fhir/Task?business-status=${encodeURIComponent(`${STATUS_SYSTEM}|${QUEUE}`)}&_sort=_lastUpdated&_count=50`,
      );
      const ids = tasks.body.entry.map((e: any) => e.resource.focus.reference.split('/')[1]).join(',');
      await fhirFetch(`${gateway.baseUrl}/fhir/ServiceRequest?_id=${ids}&_count=50`);
      api.push(performance.now() - started);
    }
    const result = {
      referrals: VOLUME,
      queue: QUEUE,
      inQueue: stored[QUEUE],
      engine: 'postgresql',
      loads: LOADS,
      openMs: { first: Math.round(opened[0]!), median: Math.round(median(opened.slice(1))), max: Math.round(Math.max(...opened)) },
      apiOnlyMs: { median: Math.round(median(api)) },
    };
    await recordResult('queueVolume', result);
    process.stdout.write(
      `      queue of ${VOLUME} referrals (${stored[QUEUE]} ${QUEUE}): first open ${result.openMs.first} ms, then median ${result.openMs.median} ms (max ${result.openMs.max}); its API calls alone median ${result.apiOnlyMs.median} ms\n`,
    );

    await page.goto(`${gateway.baseUrl}/console/network`);
    await page.locator('.chart svg').first().waitFor({ timeout: 60_000 });
    await screenshot(page, `network-chart-${VOLUME}`);
    await page.close();
    expect(browser.problems, browser.problems.join('\n')).to.deep.equal([]);
  });
});
