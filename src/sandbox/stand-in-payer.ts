/**
 * A payer to talk to in tests and the sandbox: a few lines of Express on 127.0.0.1 speaking FHIR
 * JSON, with decisions driven by rules per member.
 *
 *   POST /fhir/CoverageEligibilityRequest/$submit   -> CoverageEligibilityResponse
 *        (https://hl7.org/fhir/R4/operation-coverageeligibilityrequest-submit.html)
 *   POST /fhir/Claim/$submit                        -> PAS response Bundle (ClaimResponse first)
 *   POST /fhir/Claim/$inquire                       -> PAS inquiry response Bundle
 *        (https://hl7.org/fhir/us/davinci-pas/)
 *   GET  /fhir/metadata                             -> its CapabilityStatement (public, as FHIR has it)
 *
 * The member is the Coverage's `subscriberId`, else its member-number identifier (v2-0203 `MB`),
 * else its first identifier, found in the request: a contained Coverage or the Coverage's logical
 * reference (eligibility), or the Coverage entry of the Bundle (PAS). Rules per member say what
 * eligibility answers and how prior authorization ends: approve, deny with a reason, pend and
 * decide after N inquiries, fail with 500 (always, or the first N times), or hang until stop(). A
 * request with no member gets 400. Submitted claims are remembered by their identifier, so
 * `$inquire` answers for them.
 *
 * Like a payer subscribed to by the gateway (Da Vinci PAS pended requests, R4 Subscriptions
 * Backport rest-hook), it decides a pended request on demand and sends the notification:
 * `decideAndNotify` builds it (full-resource or id-only), `sendNotification` POSTs it.
 *
 * Requests are recorded (method, path, status, whether an Authorization header came, the body's
 * resourceType), never their content: nothing here logs PHI.
 *
 * As its own process: `npx tsx src/sandbox/stand-in-payer.ts` (PORT) prints one JSON line
 * `{"message":"stand-in payer listening","port":N,"baseUrl":"…"}` and takes rules over HTTP:
 *   PUT  /_control/members/:memberId   a MemberRule as JSON
 *   PUT  /_control/default             a MemberRule as JSON; DELETE clears it
 *   GET  /_control/requests            the request log
 */
import { smartAuthorizationServer, type SmartAuthorizationOptions, type SmartAuthorizationServer } from './smart-authorization-server.js';
import express, { type Request, type Response } from 'express';
import { standInFailureHandler } from './stand-in-failures.js';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type {
  Bundle,
  CapabilityStatement,
  CapabilityStatementRestSecurity,
  Claim,
  ClaimResponse,
  Coverage,
  CoverageEligibilityRequest,
  CoverageEligibilityResponse,
  CoverageEligibilityResponseInsuranceItemBenefit,
  Extension,
  Money,
  OperationOutcome,
  Parameters,
  Period,
  Resource,
} from 'fhir/r4.js';

const HOST = '127.0.0.1';
const PAS = 'http://hl7.org/fhir/us/davinci-pas';
/** PAS: the topic of pended-authorization updates (https://hl7.org/fhir/us/davinci-pas/). */
const TOPIC = `${PAS}/SubscriptionTopic/PASSubscriptionTopic`;
/**
 * The code systems a payer answers in, spelled here rather than imported from the gateway's rules:
 * the stand-in plays another party, so a misspelt system on either side fails a test instead of
 * agreeing with itself.
 */
const SYSTEM = {
  x12ReviewAction: 'https://codesystem.x12.org/005010/306',
  x12ReviewDecisionReason: 'https://codesystem.x12.org/external/886',
  /** X12 901 AAA reject reasons, the code system of PAS `ClaimResponse.error.code`. */
  x12RejectReason: 'https://codesystem.x12.org/005010/901',
  x12BenefitInformation: 'https://codesystem.x12.org/005010/1390',
  benefitType: 'http://terminology.hl7.org/CodeSystem/benefit-type',
} as const;

export interface StandInCostShare {
  copay?: Money;
  coinsurancePercent?: number;
  deductibleRemaining?: Money;
  outOfPocketRemaining?: Money;
}

export interface EligibilityRule {
  inForce: boolean;
  /** Absent: the answer leaves `authorizationRequired` out, and the gateway's own rules decide. */
  authRequired?: boolean;
  costShare?: StandInCostShare;
  benefitPeriod?: Period;
}

export type PayerFailure = { kind: 'fail-500' } | { kind: 'hang' };

/** A `ClaimResponse.error` entry: an X12 AAA reject reason (PAS `ClaimResponse.error.code`). */
export interface PayerError {
  code: string;
  display: string;
}

/**
 * `errors` are sent as `ClaimResponse.error` beside the review action (payers do send both);
 * `reject` sends errors and no review action at all: a request the payer could not process.
 */
export type PriorAuthDecision =
  | { kind: 'approve'; authorizationNumber: string; period?: Period; errors?: PayerError[] }
  | { kind: 'deny'; reason: { code?: string; display: string }; errors?: PayerError[] }
  | { kind: 'reject'; errors: PayerError[] };

export type PriorAuthRule = PriorAuthDecision | { kind: 'pend-then'; inquiries: number; then: PriorAuthDecision } | PayerFailure;

export interface MemberRule {
  /** What eligibility answers; absent: in force, no authorization required, no cost share. */
  eligibility?: EligibilityRule | PayerFailure;
  /** How prior authorization ends; absent: approved with a made-up number. */
  priorAuth?: PriorAuthRule;
  /**
   * A payer that is down for a while: this member's first N eligibility requests and first N
   * `Claim/$submit`s are answered 500; after that the rules above apply.
   */
  failFirst?: { eligibility?: number; submit?: number };
}

export type EligibilityAnswerShape = 'resource' | 'bundle' | 'parameters';

export interface StandInPayerRequest {
  method: string;
  path: string;
  /** The HTTP status answered; 0 when the connection was dropped or left unanswered. */
  status: number;
  /** Whether the request carried an Authorization header. */
  authorization: boolean;
  /** The body's resourceType, when it had one. */
  resourceType?: string;
}

export interface StandInPayer {
  /** The FHIR base: http://127.0.0.1:<port>/fhir */
  baseUrl: string;
  port: number;
  setMemberRule(memberId: string, rule: MemberRule | undefined): void;
  /** The rule for members without one of their own; `undefined`: such members are unknown (404). */
  setDefaultRule(rule: MemberRule | undefined): void;
  /**
   * How eligibility answers are wrapped: the response itself (default), a Bundle holding it, or
   * Parameters with `return`, all three allowed by the operation.
   */
  setEligibilityAnswerShape(shape: EligibilityAnswerShape): void;
  requests(): StandInPayerRequest[];
  clearRequests(): void;
  /**
   * Decides a submitted prior authorization now (later `$inquire`s answer the same) and returns
   * the Subscription notification announcing it, without sending it.
   */
  decideAndNotify(claimIdentifierValue: string, decision: PriorAuthDecision | 'pended', options?: NotificationOptions): Bundle;
  /**
   * Sends a notification Bundle to the gateway's endpoint (rest-hook) and returns the answer, with
   * the payer's credentials (StandInPayerOptions.notificationHeaders) unless `headers` replaces them.
   */
  sendNotification(endpoint: string, notification: unknown, headers?: Record<string, string>): Promise<{ status: number; body: any }>;
  stop(): Promise<void>;
}

/**
 * How a notification is shaped (R4 Subscriptions Backport,
 * https://hl7.org/fhir/uv/subscriptions-backport/STU1.1/payloads.html): the ClaimResponse in the
 * Bundle (`full-resource`, the default) or only named (`id-only`); the status as the R4
 * backport's Parameters (default) or an R4B SubscriptionStatus.
 */
export interface NotificationOptions {
  payload?: 'full-resource' | 'id-only';
  statusForm?: 'parameters' | 'subscription-status';
}

export interface StandInPayerOptions {
  port?: number;
  defaultRule?: MemberRule;
  /** When set, requests without `Authorization: Bearer <this>` are answered 401. */
  bearerToken?: string;
  /** When set, the payer is a SMART Backend Services server: FHIR requests need a token from its /auth/token. */
  requireSmartBackend?: SmartAuthorizationOptions;
  /** The clock of `created` and `timestamp` in answers. */
  now?: () => Date;
  /** Headers of every notification sent to the gateway (its access token), by endpoint. */
  notificationHeaders?: (endpoint: string) => Record<string, string> | Promise<Record<string, string>>;
}

/** Adds the payer's credentials to a notification's headers (leaves them alone when it has none). */
export type NotificationAuthorizer = (endpoint: string, method: string, headers: Record<string, string>) => Promise<void>;

// On globalThis: mocha's root hook (--require) and the test files (imported) load this module as two instances.
const DEFAULT_AUTHORIZER = Symbol.for('infusion-gateway.stand-in-payer.notification-authorizer');
const holder = globalThis as unknown as Record<symbol, NotificationAuthorizer | undefined>;

/**
 * How notifications authenticate when neither the call nor the options give headers: the test
 * suite registers its test clients here once (test/support/root-hooks.ts), so the product never
 * imports test code; the sandbox passes `notificationHeaders` instead.
 */
export function authorizeNotificationsWith(authorizer: NotificationAuthorizer | undefined): void {
  holder[DEFAULT_AUTHORIZER] = authorizer;
}

interface StoredClaim {
  key: string;
  memberId: string;
  rule: PriorAuthRule;
  inquiries: number;
  claim: Claim;
}

interface Answer {
  status: number;
  body: Resource;
}

export async function startStandInPayer(options: StandInPayerOptions = {}): Promise<StandInPayer & { smart?: SmartAuthorizationServer }> {
  const rules = new Map<string, MemberRule>();
  let defaultRule = options.defaultRule;
  let eligibilityShape: EligibilityAnswerShape = 'resource';
  const claims = new Map<string, StoredClaim>();
  /** Requests answered 500 so far under a member's failFirst, per member and endpoint. */
  const failures = new Map<string, number>();
  const failsNow = (memberId: string, endpoint: 'eligibility' | 'submit'): boolean => {
    const limit = ruleFor(memberId)?.failFirst?.[endpoint] ?? 0;
    const key = `${endpoint}|${memberId}`;
    const count = failures.get(key) ?? 0;
    if (count >= limit) return false;
    failures.set(key, count + 1);
    return true;
  };
  const log: StandInPayerRequest[] = [];
  const hung = new Set<Response>();
  const now = options.now ?? ((): Date => new Date());
  let sequence = 0;
  /** The next answer's number (every answer takes the next) and time. */
  const nextStamp = (): AnswerStamp => ({ sequence: ++sequence, created: now().toISOString() });
  let baseUrl = '';

  const app = express();
  const server = http.createServer(app);
  server.keepAliveTimeout = 30_000;

  const smart = options.requireSmartBackend
    ? smartAuthorizationServer({ ...options.requireSmartBackend, fhirPath: '/fhir', origin: () => new URL(baseUrl).origin })
    : undefined;
  if (smart) app.use(smart.router);
  app.use(
    '/_control',
    controlRouter({ setMemberRule, setDefaultRule: (rule) => (defaultRule = rule), requests: () => log.map((entry) => ({ ...entry })) }),
  );

  app.use('/fhir', express.json({ type: ['application/json', 'application/fhir+json'], limit: '10mb' }), (req: Request, res: Response) => {
    const body = req.body as Record<string, unknown> | undefined;
    res.on('close', () => {
      const entry: StandInPayerRequest = {
        method: req.method,
        path: new URL(req.originalUrl, 'http://stand-in.invalid').pathname,
        status: res.writableFinished ? res.statusCode : 0,
        authorization: req.headers.authorization !== undefined,
      };
      if (typeof body?.['resourceType'] === 'string') entry.resourceType = body['resourceType'];
      log.push(entry);
    });
    // The capabilities interaction is public (https://hl7.org/fhir/R4/http.html#capabilities): what
    // a connection probe reads to tell a FHIR server from anything else answering at this URL.
    if (req.method === 'GET' && req.path === '/metadata') {
      send(res, {
        status: 200,
        body: capabilityStatement({ baseUrl, security: smart ? 'smart' : options.bearerToken !== undefined ? 'bearer' : 'none' }),
      });
      return;
    }
    if (options.bearerToken !== undefined && req.headers.authorization !== `Bearer ${options.bearerToken}`) {
      send(res, outcome(401, 'login', 'The stand-in payer needs a valid bearer token'));
      return;
    }
    if (smart) {
      let passed = false;
      smart.requireToken(req, res, () => (passed = true));
      if (!passed) return;
    }
    if (req.method !== 'POST') {
      send(res, outcome(405, 'not-supported', 'The stand-in payer only takes POSTed operations (and GET /metadata)'));
      return;
    }
    const answer = handle(req.path, body);
    if (answer === 'hang') {
      hung.add(res);
      res.on('close', () => hung.delete(res));
      return;
    }
    send(res, answer);
  });
  app.use((_req: Request, res: Response) => send(res, outcome(404, 'not-found', 'Not a path of the stand-in payer')));
  app.use(
    standInFailureHandler('The stand-in payer failed', (res, status, code, diagnostics) => send(res, outcome(status, code, diagnostics))),
  );

  function setMemberRule(memberId: string, rule: MemberRule | undefined): void {
    if (rule === undefined) rules.delete(memberId);
    else rules.set(memberId, structuredClone(rule));
  }

  function ruleFor(memberId: string): MemberRule | undefined {
    return rules.get(memberId) ?? defaultRule;
  }

  function handle(pathname: string, body: Record<string, unknown> | undefined): Answer | 'hang' {
    switch (pathname) {
      case '/CoverageEligibilityRequest/$submit':
        return eligibility(body);
      case '/Claim/$submit':
        return submit(body);
      case '/Claim/$inquire':
        return inquire(body);
      default:
        return outcome(404, 'not-found', 'The stand-in payer offers CoverageEligibilityRequest/$submit, Claim/$submit and Claim/$inquire');
    }
  }

  function eligibility(body: Record<string, unknown> | undefined): Answer | 'hang' {
    if (body?.['resourceType'] !== 'CoverageEligibilityRequest') return outcome(400, 'invalid', 'Expected a CoverageEligibilityRequest');
    const request = body as unknown as CoverageEligibilityRequest;
    const memberId = memberOfEligibility(request);
    if (memberId === undefined)
      return outcome(
        400,
        'required',
        'No member id: the Coverage needs a subscriberId or a member identifier',
        'CoverageEligibilityRequest.insurance[0].coverage',
      );
    const rule = ruleFor(memberId);
    if (!rule) return outcome(404, 'not-found', 'No such member at the stand-in payer');
    if (failsNow(memberId, 'eligibility')) return failure({ kind: 'fail-500' });
    const answer = rule.eligibility ?? { inForce: true, authRequired: false };
    if ('kind' in answer) return failure(answer);
    const stamp = nextStamp();
    const response = eligibilityAnswer(request, memberId, answer, stamp);
    switch (eligibilityShape) {
      case 'resource':
        return { status: 200, body: response };
      case 'bundle':
        return {
          status: 200,
          body: {
            resourceType: 'Bundle',
            type: 'collection',
            entry: [{ fullUrl: `urn:uuid:00000000-0000-4000-9000-${String(stamp.sequence).padStart(12, '0')}`, resource: response }],
          } as Bundle,
        };
      case 'parameters':
        return { status: 200, body: { resourceType: 'Parameters', parameter: [{ name: 'return', resource: response }] } as Parameters };
    }
  }

  function submit(body: Record<string, unknown> | undefined): Answer | 'hang' {
    const parsed = parsePasBundle(body);
    if ('status' in parsed) return parsed;
    const { claim, memberId, key } = parsed;
    const rule = ruleFor(memberId);
    if (!rule) return outcome(404, 'not-found', 'No such member at the stand-in payer');
    if (failsNow(memberId, 'submit')) return failure({ kind: 'fail-500' });
    const priorAuth: PriorAuthRule = rule.priorAuth ?? { kind: 'approve', authorizationNumber: `AUTH-${key.slice(-8)}` };
    if (priorAuth.kind === 'fail-500' || priorAuth.kind === 'hang') return failure(priorAuth);
    claims.set(key, { key, memberId, rule: priorAuth, inquiries: 0, claim });
    if (priorAuth.kind === 'pend-then') return { status: 200, body: pasResponseBundle(claim, 'pended', nextStamp()) };
    return { status: 200, body: pasResponseBundle(claim, priorAuth, nextStamp()) };
  }

  function inquire(body: Record<string, unknown> | undefined): Answer | 'hang' {
    const parsed = parsePasBundle(body);
    if ('status' in parsed) return parsed;
    const stored = claims.get(parsed.key);
    if (!stored) return outcome(404, 'not-found', 'The stand-in payer holds no prior authorization request with this identifier');
    stored.inquiries += 1;
    const { rule } = stored;
    if (rule.kind === 'fail-500' || rule.kind === 'hang') return failure(rule);
    if (rule.kind === 'pend-then') {
      return { status: 200, body: pasResponseBundle(stored.claim, stored.inquiries >= rule.inquiries ? rule.then : 'pended', nextStamp()) };
    }
    return { status: 200, body: pasResponseBundle(stored.claim, rule, nextStamp()) };
  }

  function failure(rule: PayerFailure): Answer | 'hang' {
    return rule.kind === 'hang' ? 'hang' : outcome(500, 'exception', 'The stand-in payer was told to fail with 500');
  }

  let eventNumber = 0;

  function decideAndNotify(
    claimIdentifierValue: string,
    decision: PriorAuthDecision | 'pended',
    notification: NotificationOptions = {},
  ): Bundle {
    const stored = [...claims.values()].find((c) => c.key.endsWith(`|${claimIdentifierValue}`));
    if (!stored) throw new Error('The stand-in payer holds no prior authorization request with this identifier');
    if (decision !== 'pended') stored.rule = structuredClone(decision);
    const answer = pasResponseBundle(stored.claim, decision, nextStamp());
    const response = answer.entry![0]!.resource as ClaimResponse;
    const focus = `${baseUrl}/ClaimResponse/${response.id}`;
    eventNumber += 1;
    return subscriptionNotification({
      subscription: `${baseUrl}/Subscription/pas-pended-authorizations`,
      eventNumber,
      claimResponse: response,
      focus,
      timestamp: now().toISOString(),
      notification,
    });
  }

  async function sendNotification(
    endpoint: string,
    notification: unknown,
    headers?: Record<string, string>,
  ): Promise<{ status: number; body: any }> {
    // As the payer authenticates to the gateway: the headers given, else the options', else the registered default (the tests' test clients).
    const sent: Record<string, string> = {
      'content-type': 'application/fhir+json',
      accept: 'application/fhir+json',
      ...(headers ?? (await options.notificationHeaders?.(endpoint))),
    };
    if (headers === undefined && options.notificationHeaders === undefined) await holder[DEFAULT_AUTHORIZER]?.(endpoint, 'POST', sent);
    const response = await fetch(endpoint, {
      method: 'POST',
      headers: sent,
      body: typeof notification === 'string' ? notification : JSON.stringify(notification),
    });
    const text = await response.text();
    return { status: response.status, body: text === '' ? undefined : JSON.parse(text) };
  }

  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port ?? 0, HOST, () => {
      server.off('error', reject);
      resolve();
    });
  });
  const port = (server.address() as AddressInfo).port;
  baseUrl = `http://${HOST}:${port}/fhir`;
  let stopped: Promise<void> | undefined;

  return {
    ...(smart ? { smart } : {}),
    baseUrl,
    port,
    decideAndNotify,
    sendNotification,
    setMemberRule,
    setDefaultRule: (rule) => {
      defaultRule = rule === undefined ? undefined : structuredClone(rule);
    },
    setEligibilityAnswerShape: (shape) => {
      eligibilityShape = shape;
    },
    requests: () => log.map((entry) => ({ ...entry })),
    clearRequests: () => void log.splice(0),
    stop: () => {
      stopped ??= (async () => {
        for (const res of hung) res.socket?.destroy();
        hung.clear();
        const closed = new Promise<void>((resolve) => server.close(() => resolve()));
        server.closeAllConnections();
        await closed;
      })();
      return stopped;
    },
  };
}

/**
 * A Subscriptions Backport notification of a prior authorization decided later (PAS pended
 * requests: https://hl7.org/fhir/us/davinci-pas/; https://hl7.org/fhir/uv/subscriptions-backport/):
 * the status first (R4 Parameters, or an R4B-style SubscriptionStatus), then the ClaimResponse
 * unless the payload is id-only.
 */
function subscriptionNotification(event: {
  subscription: string;
  eventNumber: number;
  claimResponse: ClaimResponse;
  focus: string;
  timestamp: string;
  notification: NotificationOptions;
}): Bundle {
  const { subscription, eventNumber, claimResponse, focus, timestamp, notification } = event;
  const status: Resource =
    notification.statusForm === 'subscription-status'
      ? ({
          resourceType: 'SubscriptionStatus',
          status: 'active',
          type: 'event-notification',
          eventsSinceSubscriptionStart: String(eventNumber),
          notificationEvent: [{ eventNumber: String(eventNumber), focus: { reference: focus } }],
          subscription: { reference: subscription },
          topic: TOPIC,
        } as unknown as Resource)
      : ({
          resourceType: 'Parameters',
          meta: { profile: ['http://hl7.org/fhir/uv/subscriptions-backport/StructureDefinition/backport-subscription-status-r4'] },
          parameter: [
            { name: 'subscription', valueReference: { reference: subscription } },
            { name: 'topic', valueCanonical: TOPIC },
            { name: 'status', valueCode: 'active' },
            { name: 'type', valueCode: 'event-notification' },
            { name: 'events-since-subscription-start', valueString: String(eventNumber) },
            {
              name: 'notification-event',
              part: [
                { name: 'event-number', valueString: String(eventNumber) },
                { name: 'focus', valueReference: { reference: focus } },
              ],
            },
          ],
        } as Parameters);
  return {
    resourceType: 'Bundle',
    type: 'history',
    timestamp,
    entry: [
      {
        fullUrl: `urn:uuid:00000000-0000-4000-a000-${String(eventNumber).padStart(12, '0')}`,
        resource: status,
        request: { method: 'GET', url: `${subscription}/$status` },
        response: { status: '200' },
      },
      ...(notification.payload === 'id-only'
        ? []
        : [
            {
              fullUrl: focus,
              resource: claimResponse,
              request: { method: 'PUT' as const, url: `ClaimResponse/${claimResponse.id}` },
              response: { status: '200' },
            },
          ]),
    ],
  };
}

/** A response's number and time, given by the stand-in in the order it answers. */
interface AnswerStamp {
  sequence: number;
  created: string;
}

/** The eligibility answer for one member under its rule (https://hl7.org/fhir/R4/coverageeligibilityresponse.html). */
function eligibilityAnswer(
  request: CoverageEligibilityRequest,
  memberId: string,
  rule: EligibilityRule,
  { sequence, created }: AnswerStamp,
): CoverageEligibilityResponse {
  const benefits: CoverageEligibilityResponseInsuranceItemBenefit[] = [];
  const cost = rule.costShare ?? {};
  if (cost.copay) benefits.push({ type: { coding: [{ system: SYSTEM.benefitType, code: 'copay' }] }, allowedMoney: { ...cost.copay } });
  if (cost.coinsurancePercent !== undefined)
    benefits.push({
      type: { coding: [{ system: SYSTEM.benefitType, code: 'copay-percent' }] },
      allowedUnsignedInt: cost.coinsurancePercent,
    });
  if (cost.deductibleRemaining)
    benefits.push({
      type: { coding: [{ system: SYSTEM.benefitType, code: 'deductible' }] },
      allowedMoney: { ...cost.deductibleRemaining },
      usedMoney: { value: 0, currency: cost.deductibleRemaining.currency ?? 'USD' },
    });
  if (cost.outOfPocketRemaining)
    benefits.push({
      type: { coding: [{ system: SYSTEM.x12BenefitInformation, code: 'G', display: 'Out of Pocket (Stop Loss)' }] },
      allowedMoney: { ...cost.outOfPocketRemaining },
    });
  const requestItem = request.item?.[0];
  return {
    resourceType: 'CoverageEligibilityResponse',
    id: `eligibility-${sequence}`,
    ...(request.identifier ? { identifier: structuredClone(request.identifier) } : {}),
    status: 'active',
    purpose: [...request.purpose],
    patient: { ...request.patient },
    ...(request.servicedPeriod ? { servicedPeriod: { ...request.servicedPeriod } } : {}),
    created,
    request: request.identifier?.[0] ? { identifier: { ...request.identifier[0] } } : { display: 'the eligibility request' },
    outcome: 'complete',
    disposition: rule.inForce ? 'Coverage in force' : 'Coverage not in force',
    insurer: { ...request.insurer },
    insurance: [
      {
        coverage: {
          identifier: { type: { coding: [{ system: 'http://terminology.hl7.org/CodeSystem/v2-0203', code: 'MB' }] }, value: memberId },
        },
        inforce: rule.inForce,
        ...(rule.benefitPeriod ? { benefitPeriod: { ...rule.benefitPeriod } } : {}),
        ...(rule.inForce
          ? {
              item: [
                {
                  ...(requestItem?.productOrService ? { productOrService: structuredClone(requestItem.productOrService) } : {}),
                  network: { coding: [{ system: 'http://terminology.hl7.org/CodeSystem/benefit-network', code: 'in' }] },
                  unit: { coding: [{ system: 'http://terminology.hl7.org/CodeSystem/benefit-unit', code: 'individual' }] },
                  term: { coding: [{ system: 'http://terminology.hl7.org/CodeSystem/benefit-term', code: 'annual' }] },
                  ...(rule.authRequired !== undefined ? { authorizationRequired: rule.authRequired } : {}),
                  ...(benefits.length > 0 ? { benefit: benefits } : {}),
                },
              ],
            }
          : {}),
      },
    ],
  };
}

/** The PAS response Bundle, its ClaimResponse first, for a decision or a pended request (https://hl7.org/fhir/us/davinci-pas/). */
function pasResponseBundle(claim: Claim, decision: PriorAuthDecision | 'pended', { sequence, created }: AnswerStamp): Bundle {
  const reviewAction: Extension[] = [];
  let code: { code: string; display: string } | undefined;
  if (decision === 'pended') code = { code: 'A4', display: 'Pended' };
  else if (decision.kind === 'approve') {
    code = { code: 'A1', display: 'Certified in total' };
    reviewAction.push({ url: 'number', valueString: decision.authorizationNumber });
  } else if (decision.kind === 'reject') code = undefined;
  else {
    code = { code: 'A3', display: 'Not Certified' };
    reviewAction.push({
      url: 'reasonCode',
      valueCodeableConcept: {
        coding: [
          {
            system: SYSTEM.x12ReviewDecisionReason,
            ...(decision.reason.code ? { code: decision.reason.code } : {}),
            display: decision.reason.display,
          },
        ],
      },
    });
  }
  if (code)
    reviewAction.unshift({
      url: `${PAS}/StructureDefinition/extension-reviewActionCode`,
      valueCodeableConcept: { coding: [{ system: SYSTEM.x12ReviewAction, ...code }] },
    });
  const errors = decision !== 'pended' ? (decision.errors ?? []) : [];
  const approved = decision !== 'pended' && decision.kind === 'approve' ? decision : undefined;
  const response: ClaimResponse = {
    resourceType: 'ClaimResponse',
    id: `claim-response-${sequence}`,
    meta: { profile: [`${PAS}/StructureDefinition/profile-claimresponse`] },
    ...(claim.identifier ? { identifier: structuredClone(claim.identifier) } : {}),
    status: 'active',
    type: structuredClone(claim.type),
    use: 'preauthorization',
    patient: { ...claim.patient },
    created,
    ...(claim.insurer ? { insurer: { ...claim.insurer } } : { insurer: { display: 'Stand-in payer' } }),
    requestor: { ...claim.provider },
    request: claim.identifier?.[0] ? { identifier: { ...claim.identifier[0] } } : { display: 'the prior authorization request' },
    outcome: decision === 'pended' ? 'queued' : decision.kind === 'reject' ? 'error' : 'complete',
    ...(approved
      ? { preAuthRef: approved.authorizationNumber, ...(approved.period ? { preAuthPeriod: { ...approved.period } } : {}) }
      : {}),
    ...(decision !== 'pended' && decision.kind === 'deny' ? { disposition: decision.reason.display } : {}),
    ...(errors.length > 0
      ? {
          error: errors.map((error) => ({
            code: { coding: [{ system: SYSTEM.x12RejectReason, code: error.code, display: error.display }] },
          })),
        }
      : {}),
    item: (claim.item?.length ? claim.item : [{ sequence: 1 }]).map((item) => ({
      itemSequence: item.sequence,
      adjudication:
        reviewAction.length === 0
          ? []
          : [
              {
                category: { coding: [{ system: 'http://terminology.hl7.org/CodeSystem/adjudication', code: 'submitted' }] },
                extension: [{ url: `${PAS}/StructureDefinition/extension-reviewAction`, extension: reviewAction }],
              },
            ],
    })),
  };
  return {
    resourceType: 'Bundle',
    id: `pas-response-${sequence}`,
    type: 'collection',
    timestamp: created,
    entry: [{ fullUrl: `urn:uuid:00000000-0000-4000-8000-${String(sequence).padStart(12, '0')}`, resource: response }],
  };
}

/** The Claim of a PAS request Bundle, its member, and the key claims are remembered by. */
function parsePasBundle(body: Record<string, unknown> | undefined): { claim: Claim; memberId: string; key: string } | Answer {
  if (body?.['resourceType'] !== 'Bundle') return outcome(400, 'invalid', 'Expected a PAS request Bundle');
  const entries = Array.isArray(body['entry']) ? (body['entry'] as Array<{ resource?: Resource }>) : [];
  const claim = entries[0]?.resource;
  if (claim?.resourceType !== 'Claim')
    return outcome(400, 'invalid', 'The PAS request Bundle must hold the Claim first', 'Bundle.entry[0].resource');
  const identifier = (claim as Claim).identifier?.[0];
  if (!identifier?.value) return outcome(400, 'required', 'The Claim needs an identifier', 'Bundle.entry[0].resource.identifier');
  const coverage = entries.map((entry) => entry?.resource).find((resource): resource is Coverage => resource?.resourceType === 'Coverage');
  const memberId = coverage ? memberOf(coverage) : undefined;
  if (memberId === undefined)
    return outcome(400, 'required', 'No member id: the Bundle needs a Coverage with a subscriberId or a member identifier', 'Bundle.entry');
  return { claim: claim as Claim, memberId, key: `${identifier.system ?? ''}|${identifier.value}` };
}

function memberOfEligibility(request: CoverageEligibilityRequest): string | undefined {
  const reference = request.insurance?.find((insurance) => insurance.focal !== false)?.coverage ?? request.insurance?.[0]?.coverage;
  if (!reference) return undefined;
  if (reference.reference?.startsWith('#')) {
    const contained = request.contained?.find(
      (resource) => resource.resourceType === 'Coverage' && `#${resource.id}` === reference.reference,
    );
    return contained ? memberOf(contained as Coverage) : undefined;
  }
  return reference.identifier?.value;
}

function memberOf(coverage: Coverage): string | undefined {
  if (coverage.subscriberId) return coverage.subscriberId;
  const identifiers = coverage.identifier ?? [];
  const member = identifiers.find((identifier) => identifier.type?.coding?.some((coding) => coding.code === 'MB'));
  return (member ?? identifiers[0])?.value;
}

/**
 * What the stand-in payer supports, as its CapabilityStatement (https://hl7.org/fhir/R4/capabilitystatement.html):
 * FHIR R4, JSON, the eligibility operation of the core specification and Da Vinci PAS's submit and
 * inquire, and how it authenticates (SMART Backend Services, a fixed bearer token, or none).
 */
function capabilityStatement(input: { baseUrl: string; security: 'smart' | 'bearer' | 'none' }): CapabilityStatement {
  const security: CapabilityStatementRestSecurity | undefined =
    input.security === 'smart'
      ? {
          service: [{ coding: [{ system: 'http://terminology.hl7.org/CodeSystem/restful-security-service', code: 'SMART-on-FHIR' }] }],
          // The token endpoint, as SMART names it (https://hl7.org/fhir/smart-app-launch/conformance.html).
          extension: [
            {
              url: 'http://fhir-registry.smarthealthit.org/StructureDefinition/oauth-uris',
              extension: [{ url: 'token', valueUri: `${new URL(input.baseUrl).origin}/auth/token` }],
            },
          ],
          description:
            'SMART Backend Services: every operation needs an access token from the token endpoint; see .well-known/smart-configuration.',
        }
      : input.security === 'bearer'
        ? { description: 'Every operation needs the bearer token configured for the gateway.' }
        : undefined;
  return {
    resourceType: 'CapabilityStatement',
    status: 'active',
    date: '2026-12-04',
    kind: 'instance',
    software: { name: 'infusion-gateway stand-in payer' },
    implementation: {
      description: 'A payer to talk to in tests and the sandbox: eligibility and prior authorization decided by rules per member',
      url: input.baseUrl,
    },
    fhirVersion: '4.0.1',
    format: ['application/fhir+json', 'json'],
    implementationGuide: [`${PAS}/ImplementationGuide/hl7.fhir.us.davinci-pas`],
    rest: [
      {
        mode: 'server',
        ...(security ? { security } : {}),
        resource: [
          {
            type: 'CoverageEligibilityRequest',
            operation: [{ name: 'submit', definition: 'http://hl7.org/fhir/OperationDefinition/CoverageEligibilityRequest-submit' }],
          },
          {
            type: 'Claim',
            operation: [
              { name: 'submit', definition: `${PAS}/OperationDefinition/Claim-submit` },
              { name: 'inquire', definition: `${PAS}/OperationDefinition/Claim-inquiry` },
            ],
          },
        ],
      },
    ],
  };
}

function outcome(status: number, code: string, diagnostics: string, expression?: string): Answer {
  const body: OperationOutcome = {
    resourceType: 'OperationOutcome',
    issue: [
      {
        severity: 'error',
        code: code as OperationOutcome['issue'][number]['code'],
        diagnostics,
        ...(expression ? { expression: [expression] } : {}),
      },
    ],
  };
  return { status, body };
}

function send(res: Response, answer: Answer): void {
  res.status(answer.status);
  res.setHeader('content-type', 'application/fhir+json; charset=utf-8');
  res.end(JSON.stringify(answer.body));
}

interface Controls {
  setMemberRule(memberId: string, rule: MemberRule | undefined): void;
  setDefaultRule(rule: MemberRule | undefined): void;
  requests(): StandInPayerRequest[];
}

function controlRouter(payer: Controls): express.Router {
  const router = express.Router();
  router.use(express.json({ type: ['application/json', 'application/fhir+json'] }));
  router.put('/members/:memberId', (req: Request, res: Response) => {
    payer.setMemberRule(String(req.params['memberId']), (req.body ?? undefined) as MemberRule | undefined);
    res.status(204).end();
  });
  router.put('/default', (req: Request, res: Response) => {
    payer.setDefaultRule((req.body ?? undefined) as MemberRule | undefined);
    res.status(204).end();
  });
  router.delete('/default', (_req: Request, res: Response) => {
    payer.setDefaultRule(undefined);
    res.status(204).end();
  });
  router.get('/requests', (_req: Request, res: Response) => {
    res.json(payer.requests());
  });
  return router;
}

const isMain = process.argv[1] !== undefined && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url);
if (isMain) {
  // In the sandbox every member is in force and approved unless told otherwise.
  const payer = await startStandInPayer({ port: Number(process.env['PORT'] ?? 0), defaultRule: {} });
  process.stdout.write(`${JSON.stringify({ message: 'stand-in payer listening', port: payer.port, baseUrl: payer.baseUrl })}\n`);
  const shutdown = (): void => {
    void payer.stop().then(() => process.exit(0));
  };
  process.once('SIGTERM', shutdown);
  process.once('SIGINT', shutdown);
}
