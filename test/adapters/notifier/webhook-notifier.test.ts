/**
 * The webhook notifier against a receiver on 127.0.0.1: what it POSTs, and how each kind of
 * failure is classified (retryable or not), with nothing of the URL or the message in the error.
 */
import { expect } from 'chai';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Communication } from 'fhir/r4.js';
import { createWebhookNotifier } from '../../../src/adapters/notifier/webhook-notifier.js';
import { NotifierError, RECORD_ONLY_NOTIFIER } from '../../../src/ports/notifier.js';

interface Received {
  method: string;
  path: string;
  contentType: string | undefined;
  idempotencyKey: string | undefined;
  authorization: string | undefined;
  body: any;
}

type Mode = { kind: 'answer'; status: number } | { kind: 'hang' };

async function startReceiver(): Promise<{ url: string; received: Received[]; setMode(mode: Mode): void; stop(): Promise<void> }> {
  const received: Received[] = [];
  let mode: Mode = { kind: 'answer', status: 202 };
  const server = http.createServer((request, response) => {
    const chunks: Buffer[] = [];
    request.on('data', (chunk: Buffer) => chunks.push(chunk));
    request.on('end', () => {
      received.push({
        method: request.method ?? '',
        path: request.url ?? '',
        contentType: request.headers['content-type'],
        idempotencyKey: request.headers['idempotency-key'] as string | undefined,
        authorization: request.headers.authorization,
        body: JSON.parse(Buffer.concat(chunks).toString('utf8')),
      });
      if (mode.kind === 'hang') return;
      response.writeHead(mode.status, { 'content-type': 'application/json' }).end(JSON.stringify({ echoed: 'Pellimore' }));
    });
  });
  server.listen(0, '127.0.0.1');
  await new Promise<void>((resolve) => server.once('listening', () => resolve()));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}/hooks/reminders?token=s3cret`,
    received,
    setMode: (next) => (mode = next),
    stop: async () => {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

const REMINDER: Communication = {
  resourceType: 'Communication',
  id: 'reminder-appt-1-24h',
  identifier: [{ system: 'https://fhir.infusion-gateway.example/reminder-id', value: 'appt-1:24h' }],
  status: 'completed',
  category: [{ coding: [{ system: 'http://terminology.hl7.org/CodeSystem/communication-category', code: 'reminder' }] }],
  subject: { type: 'Patient', identifier: { system: 'urn:oid:2.16.840.1.113883.3.9106.2.2', value: 'FRR-30091-7' } },
  about: [{ reference: 'Appointment/appt-1' }],
  payload: [
    {
      contentString:
        'Reminder: you have an infusion appointment at Harbor Infusion Center - Denver Cherry Creek on Wednesday, December 2, 2026 at 7:00 AM MST.',
    },
  ],
};

async function failureOf(promise: Promise<unknown>): Promise<NotifierError> {
  try {
    await promise;
  } catch (error) {
    expect(error).to.be.instanceOf(NotifierError);
    return error as NotifierError;
  }
  throw new Error('expected the send to fail');
}

describe('webhook notifier', function () {
  let receiver: Awaited<ReturnType<typeof startReceiver>>;

  beforeEach(async () => {
    receiver = await startReceiver();
  });
  afterEach(async () => {
    await receiver.stop();
  });

  it('POSTs the Communication as FHIR JSON, with its id as the idempotency key and the bearer token when given', async () => {
    await createWebhookNotifier({ url: receiver.url, bearerToken: 'tok-1' }).send(REMINDER);
    expect(receiver.received).to.have.length(1);
    const [request] = receiver.received;
    expect(request!.method).to.equal('POST');
    expect(request!.path).to.equal('/hooks/reminders?token=s3cret');
    expect(request!.contentType).to.equal('application/fhir+json');
    expect(request!.idempotencyKey).to.equal('reminder-appt-1-24h');
    expect(request!.authorization).to.equal('Bearer tok-1');
    expect(request!.body).to.deep.equal(REMINDER);
  });

  it('counts a 503 as worth retrying, and names neither the URL nor the message', async () => {
    receiver.setMode({ kind: 'answer', status: 503 });
    const error = await failureOf(createWebhookNotifier({ url: receiver.url }).send(REMINDER));
    expect(error.retryable).to.equal(true);
    expect(error.httpStatus).to.equal(503);
    const text = JSON.stringify(error.outcome) + error.message;
    expect(text).to.not.include('s3cret');
    expect(text).to.not.include('FRR-30091-7');
    expect(text).to.not.include('Pellimore');
  });

  it('counts 408 and 429 as worth retrying, and other 4xx answers as permanent', async () => {
    const notifier = createWebhookNotifier({ url: receiver.url });
    for (const [status, retryable] of [
      [408, true],
      [429, true],
      [400, false],
      [401, false],
      [422, false],
    ] as const) {
      receiver.setMode({ kind: 'answer', status });
      const error = await failureOf(notifier.send(REMINDER));
      expect({ status: error.httpStatus, retryable: error.retryable }).to.deep.equal({ status, retryable });
    }
  });

  it('gives up on a receiver that does not answer within the timeout, as worth retrying', async () => {
    receiver.setMode({ kind: 'hang' });
    const error = await failureOf(createWebhookNotifier({ url: receiver.url, timeoutMs: 200 }).send(REMINDER));
    expect(error.retryable).to.equal(true);
    expect(error.httpStatus).to.equal(undefined);
    expect(error.outcome.issue[0]!.code).to.equal('timeout');
  });

  it('counts a refused connection as worth retrying', async () => {
    const url = receiver.url;
    await receiver.stop();
    const error = await failureOf(createWebhookNotifier({ url }).send(REMINDER));
    expect(error.retryable).to.equal(true);
    expect(error.outcome.issue[0]!.code).to.equal('transient');
    receiver = await startReceiver();
  });

  it('without a webhook, refuses every message permanently, saying what to configure', async () => {
    const error = await failureOf(RECORD_ONLY_NOTIFIER.send(REMINDER));
    expect(error.retryable).to.equal(false);
    expect(error.message).to.include('NOTIFIER_WEBHOOK_URL');
  });
});
