/**
 * The coordinator console in a real Chromium against a real gateway, stand-in payer and stand-in
 * EHR on 127.0.0.1 (issue 14). Each flow is worked through the pages, then the FHIR API is asked
 * what it now holds: the page saying so is not enough. axe-core checks every main page; the
 * screenshots land in test-results/console/.
 *
 * `npm run test:browser` (and .ci/run) runs this; `npm test` does not (it needs Chromium).
 */
import { expect } from 'chai';
import type { Page } from 'playwright-core';
import { readFixture, withOrderNumber } from '../support/fixtures.js';
import { businessStatusOf, fhirFetch, startGateway, waitUntil, type RunningGateway } from '../support/gateway.js';
import { payerConnections } from '../support/referral-flow.js';
import { startStandInEhr, type StandInEhr } from '../../src/sandbox/stand-in-ehr.js';
import { startStandInPayer, type StandInPayer } from '../../src/sandbox/stand-in-payer.js';
import {
  axeViolations,
  launchConsoleBrowser,
  recordResult,
  screenshot,
  type AxeViolation,
  type ConsoleBrowser,
  CONSOLE_TOKEN_KEY,
  roleForConsolePath,
  signIn,
} from './browser.js';

const TASK_PARAMETER_TYPE = 'https://fhir.infusion-gateway.example/CodeSystem/task-parameter-type';
const LAPTOP = { width: 1366, height: 900 };
const TABLET = { width: 768, height: 1024 };

const accessibility = new Map<string, AxeViolation[]>();
const flowsPassed: string[] = [];

function outputs(task: any, code: string): any[] {
  return (task.output ?? []).filter((o: any) => o.type.coding.some((c: any) => c.system === TASK_PARAMETER_TYPE && c.code === code));
}

async function checkAccessibility(page: Page, name: string): Promise<void> {
  accessibility.set(name, await axeViolations(page));
}

describe('the coordinator console in Chromium', function () {
  let browser: ConsoleBrowser;
  let payer: StandInPayer;
  let gateway: RunningGateway;
  let fhir: string;

  async function postReferral(fixture: string, orderNumber: string): Promise<{ serviceRequestId: string; taskId: string }> {
    const created = await fhirFetch(`${fhir}/ServiceRequest`, { body: withOrderNumber(readFixture(fixture), orderNumber) });
    expect(created.status, JSON.stringify(created.body?.issue)).to.equal(201);
    const task = (await fhirFetch(`${fhir}/Task?focus=ServiceRequest/${created.body.id}`)).body.entry[0].resource;
    return { serviceRequestId: created.body.id, taskId: task.id };
  }

  async function task(id: string): Promise<any> {
    return (await fhirFetch(`${fhir}/Task/${id}`)).body;
  }

  async function waitForStatus(taskId: string, status: string): Promise<any> {
    await waitUntil(`Task/${taskId} is ${status}`, async () => businessStatusOf(await task(taskId)) === status, 30_000);
    return task(taskId);
  }

  async function open(page: Page, path: string): Promise<void> {
    await signIn(page, gateway.baseUrl, roleForConsolePath(path));
    await page.goto(`${gateway.baseUrl}${path}`);
    await page.locator('main h1').first().waitFor();
  }

  before(async function () {
    browser = await launchConsoleBrowser();
    payer = await startStandInPayer({ defaultRule: {} });
    gateway = await startGateway({ background: true, env: { PAYER_CONNECTIONS: payerConnections(payer.baseUrl), OUTBOX_POLL_MS: '50' } });
    fhir = `${gateway.baseUrl}/fhir`;
  });

  after(async function () {
    await browser?.close();
    await gateway?.stop();
    await payer?.stop();
  });

  it('works a misrouted referral to a confirmed site from the map and the ranked suggestions', async function () {
    const { taskId, serviceRequestId } = await postReferral(
      'site-check/seed-000-practice-address-patient-choice/service-request.json',
      'BROWSER-MISROUTE',
    );
    const held = await task(taskId);
    expect(businessStatusOf(held)).to.equal('misroute-suspected');
    const best = held.input.find((i: any) => i.type.coding[0].code === 'suggested-location').valueReference;

    const page = await browser.newPage(LAPTOP);
    await open(page, '/console/queues/misroute-suspected');
    await page.locator('table.queue tbody tr').first().waitFor();
    await screenshot(page, 'queue');
    await checkAccessibility(page, 'queue');
    await page.locator(`a[href="/console/referrals/${taskId}"]`).click();
    await page.locator('.site-map svg').waitFor();
    await page
      .getByRole('cell', { name: /\d+\.\d km/ })
      .first()
      .waitFor();
    await screenshot(page, 'misrouted-referral-with-map');
    await checkAccessibility(page, 'referral');
    expect(page.url()).to.equal(`${gateway.baseUrl}/console/referrals/${taskId}`);

    await page.getByRole('button', { name: `Confirm ${best.display}` }).click();
    await page.getByText(`Confirmed site: ${best.display}`).waitFor();

    const after = await task(taskId);
    expect(businessStatusOf(after)).to.not.equal('misroute-suspected');
    expect(outputs(after, 'confirmed-location').map((o) => o.valueReference.reference)).to.deep.equal([best.reference]);
    const order = (await fhirFetch(`${fhir}/ServiceRequest/${serviceRequestId}`)).body;
    expect(order.locationReference[0].reference).to.equal(best.reference);
    await page.close();
    flowsPassed.push('misroute confirmed');
  });

  it('submits a prior authorization held for review against the stand-in payer', async function () {
    payer.setMemberRule('CHP7730118402', {
      eligibility: { inForce: true, authRequired: true, costShare: { copay: { value: 250, currency: 'USD' } } },
      priorAuth: { kind: 'approve', authorizationNumber: 'PA-BROWSER-1' },
    });
    const { taskId } = await postReferral('referrals/infliximab/service-request.json', 'BROWSER-PA');
    await waitForStatus(taskId, 'auth-required');
    payer.clearRequests();

    const page = await browser.newPage(LAPTOP);
    await open(page, `/console/referrals/${taskId}`);
    await page.getByRole('heading', { name: 'Denial risks and the documents to gather' }).waitFor();
    expect(await page.locator('#coverage .reasons li').count()).to.be.greaterThan(0);
    await page.getByRole('button', { name: 'Submit the prior authorization' }).click();

    const approved = await waitForStatus(taskId, 'ready-to-schedule');
    expect(outputs(approved, 'authorization-number').map((o) => o.valueString)).to.deep.equal(['PA-BROWSER-1']);
    expect(payer.requests().some((r) => r.path.endsWith('/Claim/$submit') && r.status === 200)).to.equal(true);
    await page.reload();
    await page.getByText('PA-BROWSER-1').waitFor();
    await page.close();
    flowsPassed.push('prior authorization submitted');
  });

  let booked: { taskId: string; serviceRequestId: string } | undefined;

  it('books a chair from the week calendar in the site time zone: hold, then book', async function () {
    booked = await postReferral('referrals/vedolizumab/service-request.json', 'BROWSER-BOOK');
    await waitForStatus(booked.taskId, 'ready-to-schedule');

    const page = await browser.newPage(LAPTOP);
    await open(page, `/console/referrals/${booked.taskId}`);
    await page.getByRole('link', { name: 'Book a chair' }).click();
    await page.locator('button.slot').first().waitFor();
    expect(await page.locator('.status-line').textContent()).to.match(/times in America\/\w+/);
    await screenshot(page, 'scheduling-calendar');
    await checkAccessibility(page, 'scheduling');
    await page.locator('button.slot').first().click();
    await page.getByRole('button', { name: 'Hold this chair' }).click();
    await page.getByText(/Held until/).waitFor();
    const pending = (await fhirFetch(`${fhir}/Appointment?based-on=ServiceRequest/${booked.serviceRequestId}`)).body.entry.map(
      (e: any) => e.resource,
    );
    expect(pending.map((a: any) => a.status)).to.deep.equal(['pending']);
    await page.getByRole('button', { name: 'Book', exact: true }).click();
    await page.getByRole('cell', { name: 'booked' }).waitFor();

    const appointments = (await fhirFetch(`${fhir}/Appointment?based-on=ServiceRequest/${booked.serviceRequestId}`)).body.entry.map(
      (e: any) => e.resource,
    );
    expect(appointments.map((a: any) => [a.id, a.status])).to.deep.equal([[pending[0].id, 'booked']]);
    const scheduled = await task(booked.taskId);
    expect(businessStatusOf(scheduled)).to.equal('scheduled');
    expect(outputs(scheduled, 'planned-dose').length).to.be.greaterThan(0);
    await page.getByRole('heading', { name: 'The series' }).waitFor();
    expect(await page.locator('.doses li').count()).to.equal(outputs(scheduled, 'planned-dose').length);
    await page.close();
    flowsPassed.push('chair booked');
  });

  it('marks a no-show: the chair is freed, a reschedule task opens, the referral is ready again', async function () {
    expect(booked, 'the booking flow ran first').to.not.equal(undefined);
    const page = await browser.newPage(LAPTOP);
    await open(page, `/console/referrals/${booked!.taskId}/schedule`);
    await page.getByRole('button', { name: 'No-show' }).click();
    await page.getByRole('cell', { name: 'noshow' }).waitFor();

    const appointments = (await fhirFetch(`${fhir}/Appointment?based-on=ServiceRequest/${booked!.serviceRequestId}`)).body.entry.map(
      (e: any) => e.resource,
    );
    expect(appointments.map((a: any) => a.status)).to.deep.equal(['noshow']);
    expect(businessStatusOf(await task(booked!.taskId))).to.equal('ready-to-schedule');
    const subTasks = (await fhirFetch(`${fhir}/Task?part-of=Task/${booked!.taskId}`)).body.entry.map((e: any) => e.resource);
    expect(subTasks.map((t: any) => t.code.coding[0].code)).to.deep.equal(['reschedule']);
    await page.getByText(/Reschedule a missed appointment/).waitFor();
    await page.close();
    flowsPassed.push('no-show marked');
  });

  it('works a denial through the appeal checklist to a won appeal that moves the referral on', async function () {
    payer.setMemberRule('SNC40655-1187', {
      eligibility: { inForce: true, authRequired: true },
      priorAuth: { kind: 'deny', reason: { display: 'Off-label use: diagnosis not among the approved indications' } },
    });
    const { taskId } = await postReferral('referrals/immune-globulin-iv/service-request.json', 'BROWSER-APPEAL');
    await waitUntil(
      'the referral is held or denied',
      async () => ['auth-required', 'auth-denied'].includes(businessStatusOf(await task(taskId))),
      30_000,
    );
    const page = await browser.newPage(LAPTOP);
    await open(page, `/console/referrals/${taskId}`);
    if (businessStatusOf(await task(taskId)) === 'auth-required')
      await page.getByRole('button', { name: 'Submit the prior authorization' }).click();
    const denied = await waitForStatus(taskId, 'auth-denied');
    const appealId = outputs(denied, 'appeal')[0].valueReference.reference.split('/')[1];
    await page.reload();
    await page.getByRole('heading', { name: 'Appeal of the denial' }).waitFor();
    await checkAccessibility(page, 'appeal');

    // Two steps ticked back to back, as a quick coordinator does, with each save slowed down as on
    // a busy network: the second waits for the first's save (each PUT carries If-Match on the
    // version shown, so one sent meanwhile would be refused 412), and neither is lost.
    await page.route(`**/fhir/Task/${appealId}`, async (route) => {
      if (route.request().method() === 'PUT') await new Promise((resolve) => setTimeout(resolve, 300));
      await route.continue();
    });
    await page.getByLabel('Letter of medical necessity').selectOption('done');
    await page.getByLabel('Peer-to-peer review').selectOption('done');
    await waitUntil('both steps are saved', async () => {
      const inputs = (await fhirFetch(`${fhir}/Task/${appealId}`)).body.input;
      const done = (code: string): boolean => inputs.some((i: any) => i.type.coding[0].code === code && i.valueCode === 'done');
      return done('letter-of-medical-necessity') && done('peer-to-peer-review');
    });
    expect(await page.getByText('The appeal was not saved').count()).to.equal(0);
    await page.unroute(`**/fhir/Task/${appealId}`);
    await page.getByLabel('Authorization number granted on appeal').fill('PA-APPEAL-9');
    await page.getByRole('button', { name: 'Record the appeal as won' }).click();

    const movedOn = await waitForStatus(taskId, 'ready-to-schedule');
    expect(outputs(movedOn, 'authorization-number').map((o) => o.valueString)).to.deep.equal(['PA-APPEAL-9']);
    const appeal = (await fhirFetch(`${fhir}/Task/${appealId}`)).body;
    expect(appeal.status).to.equal('completed');
    await page.getByText(/Appeal is won/).waitFor();
    await page.getByRole('heading', { name: 'History' }).waitFor();
    const versions = (await fhirFetch(`${fhir}/Task/${taskId}/_history`)).body.entry.length;
    await page.waitForFunction((n) => document.querySelectorAll('.timeline li').length === n, versions);
    expect(await page.locator('.timeline li').first().textContent()).to.include('Ready to schedule');
    await page.close();
    flowsPassed.push('appeal won');
  });

  it('suspends a directory site and activates it again', async function () {
    const page = await browser.newPage(LAPTOP);
    await open(page, '/console/operators/sites');
    await page.getByRole('button', { name: 'Suspend Harbor Infusion Center - Donelson' }).click();
    await page.getByRole('button', { name: 'Activate Harbor Infusion Center - Donelson' }).waitFor();
    expect((await fhirFetch(`${fhir}/Location/hin-nashville-donelson`)).body.status).to.equal('suspended');
    await checkAccessibility(page, 'sites');
    await page.getByRole('button', { name: 'Activate Harbor Infusion Center - Donelson' }).click();
    await page.getByRole('button', { name: 'Suspend Harbor Infusion Center - Donelson' }).waitFor();
    expect((await fhirFetch(`${fhir}/Location/hin-nashville-donelson`)).body.status).to.equal('active');
    await page.close();
    flowsPassed.push('site suspended and activated');
  });

  it("draws the network's picture from the flows above", async function () {
    const page = await browser.newPage(LAPTOP);
    await open(page, '/console/network');
    await page.locator('.kpis').waitFor();
    const report = (await fhirFetch(`${fhir}/Task/$network-metrics`)).body;
    const received = report.group.find((g: any) => g.code.coding[0].code === 'referrals').population[0].count;
    expect(await page.locator('.kpis li').first().textContent()).to.include(`${received} referrals received`);
    await screenshot(page, 'network-chart');
    await checkAccessibility(page, 'network');
    await page.close();
  });

  it('fits a tablet: the queue and a referral without horizontal scrolling of the page', async function () {
    const page = await browser.newPage(TABLET);
    await open(page, '/console/queues/ready-to-schedule');
    await page.locator('table.queue tbody tr').first().waitFor();
    await screenshot(page, 'queue-tablet');
    await checkAccessibility(page, 'queue (tablet)');
    expect(await page.evaluate(() => document.documentElement.scrollWidth <= window.innerWidth)).to.equal(true);
    await page.locator('table.queue tbody a').first().click();
    await page.locator('#order').waitFor();
    await screenshot(page, 'referral-tablet');
    expect(await page.evaluate(() => document.documentElement.scrollWidth <= window.innerWidth)).to.equal(true);
    await page.close();
  });

  it('is worked from the keyboard: skip link, then the queue tabs and a referral link', async function () {
    const page = await browser.newPage(LAPTOP);
    await open(page, '/console/queues/scheduled');
    await page.keyboard.press('Tab');
    expect(await page.evaluate(() => document.activeElement?.textContent)).to.equal('Skip to the page');
    await page.keyboard.press('Enter');
    const tabs: string[] = [];
    for (let i = 0; i < 30 && !tabs.some((t) => t.startsWith('Ready to schedule')); i += 1) {
      await page.keyboard.press('Tab');
      tabs.push((await page.evaluate(() => document.activeElement?.textContent ?? '')).trim());
    }
    expect(tabs.some((t) => t.startsWith('Ready to schedule'))).to.equal(true);
    await page.keyboard.press('Enter');
    await page.waitForURL(`${gateway.baseUrl}/console/queues/ready-to-schedule`);
    await page.close();
  });

  it('keeps no patient data in the URL, localStorage or sessionStorage, and breaks no CSP rule', async function () {
    const page = await browser.newPage(LAPTOP);
    const visited: string[] = [];
    page.on('framenavigated', (frame) => visited.push(frame.url()));
    await open(page, '/console/queues/ready-to-schedule');
    await page.locator('table.queue tbody a').first().click();
    await page.locator('#order').waitFor();
    const storage = await page.evaluate(() => ({
      local: localStorage.length,
      session: Object.keys(sessionStorage),
      url: location.href,
      history: history.length,
    }));
    expect(storage.local).to.equal(0);
    // The access token alone, for this tab: no patient data.
    expect(storage.session).to.deep.equal([CONSOLE_TOKEN_KEY]);
    for (const url of [...visited, storage.url])
      expect(url).to.match(/^http:\/\/127\.0\.0\.1:\d+\/console\/(queues\/[a-z-]+|referrals\/[A-Za-z0-9.-]+)$/);
    const names = ['Quillfeather', 'Marisol', 'Hollowmere', '37220'];
    for (const url of visited) for (const name of names) expect(url).to.not.include(name);
    expect(browser.problems, browser.problems.join('\n')).to.deep.equal([]);
    await page.close();
  });
});

describe('retrying a dead letter from the console', function () {
  let browser: ConsoleBrowser;
  let ehr: StandInEhr;
  let gateway: RunningGateway;

  before(async function () {
    browser = await launchConsoleBrowser();
    ehr = await startStandInEhr();
    gateway = await startGateway({
      background: true,
      env: { EHR_CONNECTIONS: JSON.stringify([{ tenant: 'default', baseUrl: ehr.baseUrl, poll: false }]), OUTBOX_POLL_MS: '50' },
    });
  });

  after(async function () {
    await browser?.close();
    await gateway?.stop();
    await ehr?.stop();
  });

  it('shows the EHR refusal and sends the message again once the EHR accepts', async function () {
    ehr.failWith('reject-400');
    const created = await fhirFetch(`${gateway.baseUrl}/fhir/ServiceRequest`, {
      body: withOrderNumber(readFixture('referrals/ocrelizumab/service-request.json'), 'BROWSER-DEAD'),
    });
    expect(created.status).to.equal(201);
    const task = (await fhirFetch(`${gateway.baseUrl}/fhir/Task?focus=ServiceRequest/${created.body.id}`)).body.entry[0].resource;
    const referralId = task.identifier[0].value;
    let dead: any;
    await waitUntil('the write-back is a dead letter', async () => {
      const list = await fhirFetch(`${gateway.baseUrl}/admin/outbox?status=dead`);
      dead = list.body.messages.find((m: any) => m.orderingKey === `referral:${referralId}`);
      return dead !== undefined;
    });
    ehr.failWith(undefined);

    const page = await browser.newPage(LAPTOP);
    await signIn(page, gateway.baseUrl, 'operator');
    await page.goto(`${gateway.baseUrl}/console/operators/dead-letters`);
    await page.getByRole('button', { name: `Retry message ${dead.id}` }).waitFor();
    expect(await page.locator('table').textContent()).to.include(dead.lastError.issue[0].diagnostics);
    await screenshot(page, 'dead-letters');
    await checkAccessibility(page, 'dead letters');
    await page.getByRole('button', { name: `Retry message ${dead.id}` }).click();
    await page
      .locator('td')
      .getByText(/sent again/)
      .waitFor();

    await waitUntil(
      'the retried message is delivered',
      async () => (await fhirFetch(`${gateway.baseUrl}/admin/outbox/${dead.id}`)).body.status === 'delivered',
    );
    expect(await ehr.count('Task', { identifier: `https://fhir.infusion-gateway.example/referral-id|${referralId}` })).to.equal(1);

    await page.goto(`${gateway.baseUrl}/console/operators/connections`);
    await page.locator('.connection').first().waitFor();
    await checkAccessibility(page, 'connections');
    expect(browser.problems, browser.problems.join('\n')).to.deep.equal([]);
    await page.close();
    flowsPassed.push('dead letter retried');
  });
});

describe('accessibility of the console (axe-core, WCAG 2.1 A and AA)', function () {
  it('has no serious or critical violation on any page checked', async function () {
    const summary = Object.fromEntries([...accessibility.entries()].map(([page, violations]) => [page, violations]));
    const serious = [...accessibility.entries()].flatMap(([page, violations]) =>
      violations
        .filter((v) => v.impact === 'serious' || v.impact === 'critical')
        .map((v) => `${page}: ${v.id} (${v.impact}, ${v.nodes} nodes): ${v.help}`),
    );
    const all = [...accessibility.values()].reduce((n, v) => n + v.length, 0);
    await recordResult('flows', { passed: flowsPassed, count: flowsPassed.length });
    await recordResult('accessibility', {
      pagesChecked: accessibility.size,
      violations: all,
      seriousOrCritical: serious.length,
      byPage: summary,
    });
    process.stdout.write(
      `      console flows passed: ${flowsPassed.length} (${flowsPassed.join(', ')}); axe: ${accessibility.size} pages, ${all} violations, ${serious.length} serious or critical\n`,
    );
    expect(accessibility.size, 'pages checked').to.be.greaterThan(6);
    expect(serious, serious.join('\n')).to.deep.equal([]);
  });
});
