/**
 * People sign in to the console through OpenID Connect (authorization code with PKCE) at the
 * gateway's embedded demo identity provider, in a real Chromium against a real gateway (issue 14):
 * the demo coordinator works a misrouted referral, the demo operator searches the audit trail.
 * Each flow is then checked through the API, the address bar and the browser's storage (no code,
 * state or PHI left in either), axe-core checks the new pages, and screenshots land in
 * test-results/console/.
 */
import { expect } from 'chai';
import type { Page } from 'playwright-core';
import { readFixture, withOrderNumber } from '../support/fixtures.js';
import { businessStatusOf, fhirFetch, startGateway, type RunningGateway } from '../support/gateway.js';
import { axeViolations, launchConsoleBrowser, recordResult, screenshot, type AxeViolation, type ConsoleBrowser } from './browser.js';

const TASK_PARAMETER_TYPE = 'https://fhir.infusion-gateway.example/CodeSystem/task-parameter-type';
const LAPTOP = { width: 1366, height: 900 };

const accessibility = new Map<string, AxeViolation[]>();
const flowsPassed: string[] = [];

describe('signing in to the console with OpenID Connect (demo identity provider)', function () {
  let browser: ConsoleBrowser;
  let gateway: RunningGateway;
  let fhir: string;
  let referral: { serviceRequestId: string; taskId: string } | undefined;

  async function checkAccessibility(page: Page, name: string): Promise<void> {
    accessibility.set(name, await axeViolations(page));
  }

  /** What the tab keeps: storage of both kinds, by key (values only where they are not tokens). */
  async function storage(page: Page): Promise<{ local: string[]; session: string[] }> {
    return page.evaluate(() => ({ local: Object.keys(localStorage), session: Object.keys(sessionStorage).sort() }));
  }

  /** From the console's sign-in page through the demo provider's page and back, as the person clicks. */
  async function signInThroughProvider(page: Page, user: string, screenshots?: { signIn: string; provider: string }): Promise<void> {
    await page.getByRole('heading', { name: 'Sign in' }).waitFor();
    if (screenshots) {
      await screenshot(page, screenshots.signIn);
      await checkAccessibility(page, screenshots.signIn);
    }
    await page.getByRole('button', { name: 'Sign in with the demo identity provider' }).click();
    await page.getByRole('heading', { name: 'Demo sign-in' }).waitFor();
    expect(new URL(page.url()).pathname).to.match(/^\/demo-idp\/interaction\//);
    if (screenshots) {
      await screenshot(page, screenshots.provider);
      await checkAccessibility(page, screenshots.provider);
    }
    await page.getByRole('button', { name: `Sign in as ${user}` }).click();
    await page.getByText(`Signed in as ${user}`).waitFor();
  }

  before(async function () {
    browser = await launchConsoleBrowser();
    gateway = await startGateway({ background: true, env: { OUTBOX_POLL_MS: '50' } });
    fhir = `${gateway.baseUrl}/fhir`;
  });

  after(async function () {
    await browser?.close();
    await gateway?.stop();
    await recordResult('signIn', {
      flowsPassed,
      accessibility: Object.fromEntries([...accessibility].map(([page, violations]) => [page, violations])),
      seriousOrCritical: [...accessibility.values()].flat().filter((v) => v.impact === 'serious' || v.impact === 'critical').length,
    });
  });

  it('signs the demo coordinator in and works a misrouted referral to a confirmed site', async function () {
    const created = await fhirFetch(`${fhir}/ServiceRequest`, {
      body: withOrderNumber(readFixture('site-check/seed-000-practice-address-patient-choice/service-request.json'), 'OIDC-MISROUTE'),
      as: { role: 'ehr', tenant: 'default' },
    });
    expect(created.status).to.equal(201);
    const held = (
      await fhirFetch(`${fhir}/Task?focus=ServiceRequest/${created.body.id}`, { as: { role: 'coordinator', tenant: 'default' } })
    ).body.entry[0].resource;
    expect(businessStatusOf(held)).to.equal('misroute-suspected');
    referral = { serviceRequestId: created.body.id, taskId: held.id };
    const best = held.input.find((i: any) => i.type.coding[0].code === 'suggested-location').valueReference;

    const page = await browser.newPage(LAPTOP);
    await page.goto(`${gateway.baseUrl}/console/referrals/${held.id}`);
    await signInThroughProvider(page, 'Dana Coordinator', { signIn: 'sign-in', provider: 'demo-identity-provider' });

    // Back on the page asked for, with the code and state gone from the address bar and the history entry.
    expect(page.url()).to.equal(`${gateway.baseUrl}/console/referrals/${held.id}`);
    const kept = await storage(page);
    expect(kept.local).to.deep.equal([]);
    expect(kept.session).to.deep.equal(['console.accessToken', 'console.personName']);
    const token = await page.evaluate(() => sessionStorage.getItem('console.accessToken'));
    const claims = JSON.parse(Buffer.from(token!.split('.')[1]!, 'base64url').toString('utf8'));
    expect(claims).to.include({ iss: `${gateway.baseUrl}/demo-idp`, aud: fhir, sub: 'dana.coordinator' });

    await page.getByRole('button', { name: `Confirm ${best.display}` }).click();
    await page.getByText(`Confirmed site: ${best.display}`).waitFor();
    const after = (await fhirFetch(`${fhir}/Task/${held.id}`, { as: { role: 'coordinator', tenant: 'default' } })).body;
    expect(businessStatusOf(after)).to.not.equal('misroute-suspected');
    const confirmed = (after.output ?? []).filter((o: any) =>
      o.type.coding.some((c: any) => c.system === TASK_PARAMETER_TYPE && c.code === 'confirmed-location'),
    );
    expect(confirmed.map((o: any) => o.valueReference.reference)).to.deep.equal([best.reference]);
    const order = (await fhirFetch(`${fhir}/ServiceRequest/${created.body.id}`, { as: { role: 'coordinator', tenant: 'default' } })).body;
    expect(order.locationReference[0].reference).to.equal(best.reference);

    // The coordinator's token opens no operator's page: the API refuses it, the page says so.
    await page.getByRole('link', { name: 'Audit' }).click();
    await page.getByRole('heading', { name: 'Audit trail' }).waitFor();
    await page.getByRole('button', { name: 'Search' }).click();
    await page.getByText('The audit trail could not be searched').waitFor();

    await page.getByRole('button', { name: 'Sign out' }).click();
    await page.getByRole('heading', { name: 'Sign in' }).waitFor();
    expect((await storage(page)).session).to.deep.equal([]);
    await page.close();
    flowsPassed.push('coordinator signed in with OpenID Connect, misroute confirmed');
  });

  it('signs the demo operator in and searches the audit trail by entity and days', async function () {
    expect(referral, 'the coordinator flow ran first').to.not.equal(undefined);
    const page = await browser.newPage(LAPTOP);
    await page.goto(`${gateway.baseUrl}/console/operators/audit`);
    await signInThroughProvider(page, 'Omar Operator');
    expect(page.url()).to.equal(`${gateway.baseUrl}/console/operators/audit`);

    const today = new Date().toISOString().slice(0, 10);
    const entity = `ServiceRequest/${referral!.serviceRequestId}`;
    await page.getByLabel('What was touched').fill(entity);
    await page.getByLabel('From day').fill(today);
    await page.getByLabel('To day').fill(today);
    await page.getByRole('button', { name: 'Search' }).click();
    await page.locator('table.audit tbody tr').first().waitFor();
    await screenshot(page, 'audit-trail');
    await checkAccessibility(page, 'audit-trail');

    const expected = (
      await fhirFetch(`${fhir}/AuditEvent?entity=${entity}&date=ge${today}&date=le${today}&_sort=-date&_count=25`, {
        as: { role: 'operator' },
      })
    ).body;
    const expectedEvents = (expected.entry ?? []).filter((e: any) => e.resource.resourceType === 'AuditEvent');
    expect(expectedEvents.length).to.be.greaterThan(0);
    expect(await page.locator('table.audit tbody tr').count()).to.equal(expectedEvents.length);
    const shown = await page.locator('table.audit tbody').textContent();
    expect(shown).to.contain(entity);
    // Searched by a reference: the console's own address stays the page's, with nothing of the filter.
    expect(page.url()).to.equal(`${gateway.baseUrl}/console/operators/audit`);
    await page.close();
    flowsPassed.push('operator signed in with OpenID Connect, audit trail searched');
  });

  it('has no serious or critical accessibility violation on the sign-in pages and the audit trail', function () {
    expect(accessibility.size).to.be.greaterThan(0);
    const serious = [...accessibility].flatMap(([page, violations]) =>
      violations.filter((v) => v.impact === 'serious' || v.impact === 'critical').map((v) => `${page}: ${v.id} (${v.help})`),
    );
    expect(serious).to.deep.equal([]);
  });

  it('raised no page error and no CSP violation', function () {
    expect(browser.problems).to.deep.equal([]);
  });
});
