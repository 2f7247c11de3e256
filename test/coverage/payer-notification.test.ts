/**
 * A payer notifies the gateway of its decision on a pended prior authorization (R4 Subscriptions
 * Backport rest-hook, POST /payer-notifications/{payerOrganizationId}), over real HTTP: the
 * stand-in payer decides and sends the notification; the gateway takes the decision as it takes an
 * answer to $inquire. The inquiry job is set to run once a year here, so only notifications decide.
 */
import { expect } from 'chai';
import { payerConnections } from '../support/referral-flow.js';
import { randomUUID } from 'node:crypto';
import { readFixture, withOrderNumber } from '../support/fixtures.js';
import { fhirFetch, startGateway, waitUntil, type RunningGateway } from '../support/gateway.js';
import { capturedLogLines } from '../support/log-capture.js';
import { phiFoundIn } from '../support/phi.js';
import { startStandInEhr, type StandInEhr } from '../../src/sandbox/stand-in-ehr.js';
import { startStandInPayer, type StandInPayer } from '../../src/sandbox/stand-in-payer.js';
import { accessToken } from '../support/test-clients.js';

const TYPES = 'https://fhir.infusion-gateway.example/CodeSystem/task-parameter-type';
const DOCUMENTATION = 'https://fhir.infusion-gateway.example/CodeSystem/documentation-requirement';
const INFLIXIMAB_DOCUMENTS = ['prior-treatment-failure', 'tb-screening', 'hepatitis-b-screening', 'current-weight'];

/** An infliximab referral (Cumberland, prior authorization required) for its own member, documents attached. */
function referral(): { body: any; memberId: string } {
  const body = withOrderNumber(readFixture('referrals/infliximab/service-request.json'), `notify-${randomUUID()}`);
  const coverage = body.contained.find((r: any) => r.resourceType === 'Coverage');
  const memberId = `N${randomUUID().slice(0, 8).toUpperCase()}`;
  coverage.subscriberId = memberId;
  coverage.identifier[0].value = memberId;
  for (const code of INFLIXIMAB_DOCUMENTS) {
    body.contained.push({
      resourceType: 'DocumentReference',
      id: `doc-${code}`,
      status: 'current',
      type: { coding: [{ system: DOCUMENTATION, code }] },
      content: [{ attachment: { contentType: 'application/pdf', title: code } }],
    });
    body.supportingInfo = [...(body.supportingInfo ?? []), { reference: `#doc-${code}` }];
  }
  return { body, memberId };
}

const outputsOf = (task: any, code: string): any[] =>
  (task.output ?? []).filter((o: any) => o.type.coding.some((c: any) => c.system === TYPES && c.code === code));
const statusOf = (task: any): string => task.businessStatus.coding[0].code;
const expressionsOf = (outcome: any): string[] => outcome.issue.flatMap((i: any) => i.expression ?? []);

describe('payer notifications of decided prior authorizations', function () {
  this.timeout(120_000);
  let payer: StandInPayer;
  let ehr: StandInEhr;
  let gw: RunningGateway;
  let fhir: string;
  let endpoint: string;
  let logsBefore: number;

  before(async () => {
    // Each notification carries the access token of the payer its endpoint names.
    payer = await startStandInPayer({});
    ehr = await startStandInEhr();
    gw = await startGateway({
      background: true,
      env: {
        PAYER_CONNECTIONS: payerConnections(payer.baseUrl),
        EHR_FHIR_BASE_URL: ehr.baseUrl,
        EHR_POLL: 'false',
        OUTBOX_POLL_MS: '25',
        // Once a year: in these tests a pended request is decided by a notification, never by the job.
        PRIOR_AUTH_INQUIRY_CRON: '0 0 1 1 *',
      },
    });
    fhir = `${gw.baseUrl}/fhir`;
    endpoint = `${gw.baseUrl}/payer-notifications/payer-cumberland`;
    logsBefore = capturedLogLines().length;
  });
  after(async () => {
    await gw.stop();
    await payer.stop();
    await ehr.stop();
  });

  async function taskWhen(taskId: string, status: string): Promise<any> {
    let task: any;
    await waitUntil(`the Task reached ${status}`, async () => {
      task = (await fhirFetch(`${fhir}/Task/${taskId}`)).body;
      return statusOf(task) === status;
    });
    return task;
  }

  /** Posts a referral the payer pends; returns its Task, waiting in auth-pending, and the claim the gateway sent. */
  async function pendedReferral(): Promise<{ taskId: string; claimId: string; task: any }> {
    const { body, memberId } = referral();
    // Pended until decided: only the notification (or 1,000 inquiries) ends it.
    payer.setMemberRule(memberId, {
      eligibility: { inForce: true, authRequired: true },
      priorAuth: { kind: 'pend-then', inquiries: 1000, then: { kind: 'approve', authorizationNumber: 'NEVER' } },
    });
    const created = await fhirFetch(`${fhir}/ServiceRequest`, { body });
    expect(created.status, JSON.stringify(created.body?.issue)).to.equal(201);
    const taskId = (await fhirFetch(`${fhir}/Task?focus=ServiceRequest/${created.body.id}`)).body.entry[0].resource.id;
    const task = await taskWhen(taskId, 'auth-pending');
    return { taskId, claimId: outputsOf(task, 'prior-authorization-claim')[0].valueString, task };
  }

  async function versionsOf(taskId: string): Promise<number> {
    return (await fhirFetch(`${fhir}/Task/${taskId}/_history`)).body.total;
  }

  it('moves a pended referral to ready-to-schedule when the payer notifies its approval, with the authorization it granted', async () => {
    const { taskId, claimId } = await pendedReferral();
    expect(claimId).to.match(/^pa-/);
    payer.clearRequests();
    const notification = payer.decideAndNotify(claimId, {
      kind: 'approve',
      authorizationNumber: 'AUTH-NOTIFIED-1',
      period: { start: '2026-12-01', end: '2027-05-31' },
    });
    const answer = await payer.sendNotification(endpoint, notification);
    expect(answer.status, JSON.stringify(answer.body)).to.equal(200);
    expect(answer.body.resourceType).to.equal('OperationOutcome');

    const task = (await fhirFetch(`${fhir}/Task/${taskId}`)).body;
    expect(statusOf(task)).to.equal('ready-to-schedule');
    expect(outputsOf(task, 'authorization-number')[0].valueString).to.equal('AUTH-NOTIFIED-1');
    expect(outputsOf(task, 'authorization-period')[0].valuePeriod).to.deep.equal({ start: '2026-12-01', end: '2027-05-31' });
    expect(outputsOf(task, 'prior-authorization-claim')).to.have.length(0);
    const verified = await fhirFetch(`${fhir}/${outputsOf(task, 'verified-coverage')[0].valueReference.reference}`);
    expect(verified.status).to.equal(200);
    // The decision came in the notification: the gateway did not have to ask.
    expect(payer.requests().filter((r) => r.path === '/fhir/Claim/$inquire')).to.have.length(0);
  });

  it('opens an appeal when the payer notifies a denial (SubscriptionStatus form), and a duplicate notification changes nothing', async () => {
    const { taskId, claimId } = await pendedReferral();
    const notification = payer.decideAndNotify(
      claimId,
      { kind: 'deny', reason: { code: '79', display: 'Medical necessity not established' } },
      { statusForm: 'subscription-status' },
    );
    const answer = await payer.sendNotification(endpoint, notification);
    expect(answer.status, JSON.stringify(answer.body)).to.equal(200);

    const denied = (await fhirFetch(`${fhir}/Task/${taskId}`)).body;
    expect(statusOf(denied)).to.equal('auth-denied');
    expect(outputsOf(denied, 'authorization-number')).to.have.length(0);
    const appealReference = outputsOf(denied, 'appeal')[0].valueReference.reference;
    const appeal = (await fhirFetch(`${fhir}/${appealReference}`)).body;
    expect(appeal.partOf[0].reference).to.equal(`Task/${taskId}`);
    expect(appeal.input.find((i: any) => i.type.coding[0].code === 'denial-reason').valueCodeableConcept.text).to.equal(
      'Medical necessity not established',
    );

    // The same notification again: acknowledged, ignored; no second appeal, no new Task version.
    const versions = await versionsOf(taskId);
    const appeals = (await fhirFetch(`${fhir}/Task?part-of=Task/${taskId}`)).body.total;
    const again = await payer.sendNotification(endpoint, notification);
    expect(again.status).to.equal(200);
    expect(again.body.issue.map((i: any) => i.diagnostics).join(' ')).to.contain('ignored');
    expect(await versionsOf(taskId)).to.equal(versions);
    expect((await fhirFetch(`${fhir}/Task?part-of=Task/${taskId}`)).body.total).to.equal(appeals);
    expect(appeals).to.equal(1);
  });

  it('opens an appeal when the notified ClaimResponse denies (A3) and also carries ClaimResponse.error', async () => {
    const { taskId, claimId } = await pendedReferral();
    const notification = payer.decideAndNotify(claimId, {
      kind: 'deny',
      reason: { display: 'Frequency exceeds the label' },
      errors: [{ code: '15', display: 'Required application data missing' }],
    });
    const answer = await payer.sendNotification(endpoint, notification);
    expect(answer.status, JSON.stringify(answer.body)).to.equal(200);
    const denied = (await fhirFetch(`${fhir}/Task/${taskId}`)).body;
    expect(statusOf(denied)).to.equal('auth-denied');
    const appeal = (await fhirFetch(`${fhir}/${outputsOf(denied, 'appeal')[0].valueReference.reference}`)).body;
    expect(appeal.input.find((i: any) => i.type.coding[0].code === 'denial-reason').valueCodeableConcept.text).to.equal(
      'Frequency exceeds the label',
    );
  });

  it('ignores a later, contradicting notification for a referral already decided', async () => {
    const { taskId, claimId } = await pendedReferral();
    expect(
      (await payer.sendNotification(endpoint, payer.decideAndNotify(claimId, { kind: 'approve', authorizationNumber: 'AUTH-FIRST' })))
        .status,
    ).to.equal(200);
    const versions = await versionsOf(taskId);
    const late = await payer.sendNotification(
      endpoint,
      payer.decideAndNotify(claimId, { kind: 'deny', reason: { display: 'Changed its mind' } }),
    );
    expect(late.status).to.equal(200);
    const task = (await fhirFetch(`${fhir}/Task/${taskId}`)).body;
    expect(statusOf(task)).to.equal('ready-to-schedule');
    expect(outputsOf(task, 'authorization-number')[0].valueString).to.equal('AUTH-FIRST');
    expect(await versionsOf(taskId)).to.equal(versions);
  });

  it('keeps a referral pended when the notification says it is still pended', async () => {
    const { taskId, claimId } = await pendedReferral();
    const versions = await versionsOf(taskId);
    const answer = await payer.sendNotification(endpoint, payer.decideAndNotify(claimId, 'pended'));
    expect(answer.status).to.equal(200);
    expect(statusOf((await fhirFetch(`${fhir}/Task/${taskId}`)).body)).to.equal('auth-pending');
    expect(await versionsOf(taskId)).to.equal(versions);
  });

  it('asks the payer ($inquire) after an id-only notification, and takes the decision it then gives', async () => {
    const { taskId, claimId } = await pendedReferral();
    payer.clearRequests();
    const notification = payer.decideAndNotify(claimId, { kind: 'approve', authorizationNumber: 'AUTH-ID-ONLY' }, { payload: 'id-only' });
    expect(notification.entry).to.have.length(1);
    const answer = await payer.sendNotification(endpoint, notification);
    expect(answer.status, JSON.stringify(answer.body)).to.equal(200);
    const task = (await fhirFetch(`${fhir}/Task/${taskId}`)).body;
    expect(statusOf(task)).to.equal('ready-to-schedule');
    expect(outputsOf(task, 'authorization-number')[0].valueString).to.equal('AUTH-ID-ONLY');
    expect(payer.requests().filter((r) => r.path === '/fhir/Claim/$inquire').length).to.be.at.least(1);
  });

  it('asks the payer at most once a minute per pended request, however many id-only notifications arrive', async () => {
    const { taskId, claimId } = await pendedReferral();
    // Both notifications inside one clock minute.
    while (new Date().getUTCSeconds() > 45) await new Promise((resolve) => setTimeout(resolve, 500));
    payer.clearRequests();
    const inquiries = (): number => payer.requests().filter((r) => r.path === '/fhir/Claim/$inquire').length;
    const first = await payer.sendNotification(endpoint, payer.decideAndNotify(claimId, 'pended', { payload: 'id-only' }));
    expect(first.status, JSON.stringify(first.body)).to.equal(200);
    const afterFirst = inquiries();
    expect(afterFirst).to.be.at.least(1);
    for (let i = 0; i < 3; i += 1) {
      const again = await payer.sendNotification(endpoint, payer.decideAndNotify(claimId, 'pended', { payload: 'id-only' }));
      expect(again.status).to.equal(200);
      expect(JSON.stringify(again.body)).to.include('already asked about this minute');
    }
    expect(inquiries()).to.equal(afterFirst);
    expect(statusOf((await fhirFetch(`${fhir}/Task/${taskId}`)).body)).to.equal('auth-pending');
  });

  // The forged-A1 attack: a payer approving another payer's pended request.
  it('lets only the payer named in the path notify, by its own token; the referral stays where its payer put it', async () => {
    const { taskId, claimId } = await pendedReferral();
    const versions = await versionsOf(taskId);
    const forged = payer.decideAndNotify(claimId, { kind: 'approve', authorizationNumber: 'FORGED-A1' });

    const anonymous = await payer.sendNotification(endpoint, forged, {});
    expect(anonymous.status).to.equal(401);
    expect(anonymous.body.issue[0]).to.include({ code: 'login' });
    expect(anonymous.body.issue[0].expression).to.deep.equal(['Authorization']);

    const asAnotherPayer = await payer.sendNotification(endpoint, forged, {
      authorization: `Bearer ${await accessToken(gw.baseUrl, { role: 'payer', payer: 'payer-peachtree' })}`,
    });
    // Another payer's endpoint is outside its reach: answered as if it did not exist.
    expect(asAnotherPayer.status).to.equal(404);
    expect(asAnotherPayer.body.issue[0]).to.include({ code: 'not-found' });

    // Its own endpoint, its own token, but Cumberland's claim: unknown to Peachtree.
    const ownEndpoint = await payer.sendNotification(`${gw.baseUrl}/payer-notifications/payer-peachtree`, forged, {
      authorization: `Bearer ${await accessToken(gw.baseUrl, { role: 'payer', payer: 'payer-peachtree' })}`,
    });
    expect(ownEndpoint.status).to.equal(404);

    expect(statusOf((await fhirFetch(`${fhir}/Task/${taskId}`)).body)).to.equal('auth-pending');
    expect(await versionsOf(taskId)).to.equal(versions);
  });

  it('refuses malformed notifications with 400 and an expression for each, changing nothing', async () => {
    const { taskId, claimId } = await pendedReferral();
    const versions = await versionsOf(taskId);
    const good = payer.decideAndNotify(claimId, { kind: 'approve', authorizationNumber: 'AUTH-MALFORMED' });

    const noBundle = await payer.sendNotification(endpoint, { resourceType: 'Parameters' });
    expect(noBundle.status).to.equal(400);
    expect(expressionsOf(noBundle.body)).to.deep.equal(['Bundle']);

    const notHistory = await payer.sendNotification(endpoint, { ...good, type: 'collection' });
    expect(notHistory.status).to.equal(400);
    expect(expressionsOf(notHistory.body)).to.deep.equal(['Bundle.type']);

    const noStatus = await payer.sendNotification(endpoint, { ...good, entry: good.entry!.slice(1) });
    expect(noStatus.status).to.equal(400);
    expect(expressionsOf(noStatus.body)).to.deep.equal(['Bundle.entry[0].resource']);

    const anonymous = structuredClone(good) as any;
    delete anonymous.entry[1].resource.request;
    delete anonymous.entry[1].resource.identifier;
    const noClaim = await payer.sendNotification(endpoint, anonymous);
    expect(noClaim.status).to.equal(400);
    expect(expressionsOf(noClaim.body)).to.deep.equal(['Bundle.entry[1].resource.request']);

    const notJson = await payer.sendNotification(endpoint, '{"resourceType": "Bundle", ');
    expect(notJson.status).to.equal(400);
    expect(notJson.body.resourceType).to.equal('OperationOutcome');

    // Readable, but no decision can be told from it: 422.
    const unreadable = structuredClone(good) as any;
    unreadable.entry[1].resource.item = [
      {
        itemSequence: 1,
        adjudication: [{ category: { coding: [{ system: 'http://terminology.hl7.org/CodeSystem/adjudication', code: 'submitted' }] } }],
      },
    ];
    unreadable.entry[1].resource.outcome = 'complete';
    delete unreadable.entry[1].resource.preAuthRef;
    const undecidable = await payer.sendNotification(endpoint, unreadable);
    expect(undecidable.status).to.equal(422);
    expect(expressionsOf(undecidable.body)).to.deep.equal(['Bundle.entry[1].resource.item']);

    const task = (await fhirFetch(`${fhir}/Task/${taskId}`)).body;
    expect(statusOf(task)).to.equal('auth-pending');
    expect(await versionsOf(taskId)).to.equal(versions);
  });

  it('answers 404 for a claim the gateway did not send to this payer, or a payer it has no connection with', async () => {
    const { taskId, claimId } = await pendedReferral();
    const versions = await versionsOf(taskId);
    const good = payer.decideAndNotify(claimId, { kind: 'approve', authorizationNumber: 'AUTH-404' });

    const stranger = structuredClone(good) as any;
    stranger.entry[1].resource.request.identifier.value = `pa-${randomUUID()}`;
    const unknown = await payer.sendNotification(endpoint, stranger);
    expect(unknown.status).to.equal(404);
    expect(expressionsOf(unknown.body)).to.deep.equal(['Bundle.entry[1].resource.request']);

    // The claim is Cumberland's: Peachtree cannot decide it.
    const otherPayer = await payer.sendNotification(`${gw.baseUrl}/payer-notifications/payer-peachtree`, good);
    expect(otherPayer.status).to.equal(404);

    const notConnected = await payer.sendNotification(`${gw.baseUrl}/payer-notifications/payer-unheard-of`, good);
    expect(notConnected.status).to.equal(404);
    expect(notConnected.body.resourceType).to.equal('OperationOutcome');

    expect(statusOf((await fhirFetch(`${fhir}/Task/${taskId}`)).body)).to.equal('auth-pending');
    expect(await versionsOf(taskId)).to.equal(versions);
  });

  it('acknowledges a handshake without doing anything', async () => {
    const handshake = {
      resourceType: 'Bundle',
      type: 'history',
      entry: [
        {
          fullUrl: 'urn:uuid:5d0e8f0a-6f43-4c36-9d3e-1a1b2c3d4e5f',
          resource: {
            resourceType: 'Parameters',
            parameter: [
              { name: 'type', valueCode: 'handshake' },
              { name: 'status', valueCode: 'requested' },
            ],
          },
          request: { method: 'GET', url: 'Subscription/pas-pended-authorizations/$status' },
          response: { status: '200' },
        },
      ],
    };
    const answer = await payer.sendNotification(endpoint, handshake);
    expect(answer.status).to.equal(200);
    expect(answer.body.issue[0].diagnostics).to.contain('handshake');
  });

  it('logs no patient data while taking notifications', async () => {
    const lines = capturedLogLines().slice(logsBefore);
    expect(lines.some((line) => line.includes('payer notification processed'))).to.equal(true);
    expect(phiFoundIn(lines)).to.deep.equal([]);
  });
});
