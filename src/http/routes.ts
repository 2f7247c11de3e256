/**
 * The Express edge of the FHIR API: request id and tenant, content negotiation, body limits, and
 * the adapter from FhirHandler to Express. Nothing here decides anything about referrals.
 */
import { randomUUID } from 'node:crypto';
import express, { type NextFunction, type Request, type Response } from 'express';
import type { OperationOutcome } from 'fhir/r4.js';
import {
  allOk,
  badRequest,
  errorIssue,
  methodNotAllowed,
  OperationOutcomeError,
  outcomeFromError,
  notFound,
  payloadTooLarge,
  statusOf,
  unsupportedMediaType,
} from '../fhir/outcomes.js';
import { withLogContext, type Logger } from '../logging/logger.js';
import { checkRequestContentType, jsonDepthExceeds, negotiateResponseType } from './content-negotiation.js';
import { parsePrefer } from '../fhir/http-headers.js';
import type { FhirHandler, FhirRequest, FhirResponse } from './fhir-exchange.js';
import { setRetryAfter } from './retry-after.js';
import { StoreUnavailableError } from '../ports/store-unavailable.js';
import type { FhirHandlers } from './fhir-handlers.js';
import { resourceTypeOf, type HandlerName } from './route-table.js';
import type { RouteHandler, RouteHandlers } from './table-router.js';
import { authorizeBundleEntries, payerScopedRequest, withinPayerReach } from '../auth/authorize.js';
import type { Caller } from '../auth/caller.js';

export interface HttpOptions {
  bodyLimitBytes: number;
  jsonMaxDepth: number;
  defaultTenant: string;
  publicBaseUrl?: string;
  /** The payers of a referral Task (src/auth/payer-reach.ts): a payer reads its members' Tasks only. */
  taskPayers?: (tenant: string, task: { resourceType: 'Task' }) => Promise<readonly string[]>;
}

const TENANT_HEADER = 'x-tenant-id';
const TENANT_PATTERN = /^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/;
const REQUEST_ID_PATTERN = /^[A-Za-z0-9._-]{1,128}$/;

interface Locals {
  requestId: string;
  tenant: string;
  mediaType: string;
  /** The route pattern that served the request, for the access log. */
  route?: string;
  /** The resource type named in the URL, when it is a well-formed type name. */
  resourceType?: string;
}

function locals(res: Response): Locals {
  return res.locals as Locals;
}

function sendOutcome(res: Response, outcome: OperationOutcome, mediaType = 'application/fhir+json', error?: unknown): void {
  setRetryAfter(res, statusOf(outcome), error);
  res.status(statusOf(outcome)).type(mediaType).send(JSON.stringify(outcome));
}

/** Request id (echoed from X-Request-Id when sane, else new) on every log line and response. */
export function requestContext(logger: Logger, defaultTenant: string) {
  return (req: Request, res: Response, next: NextFunction): void => {
    const incoming = req.get('x-request-id');
    const requestId = incoming !== undefined && REQUEST_ID_PATTERN.test(incoming) ? incoming : randomUUID();
    res.setHeader('X-Request-Id', requestId);
    const tenantHeader = req.get(TENANT_HEADER);
    const tenant = tenantHeader ?? defaultTenant;
    Object.assign(res.locals, { requestId, tenant, mediaType: 'application/fhir+json' });
    const started = process.hrtime.bigint();
    withLogContext({ requestId, tenant }, () => {
      res.on('finish', () => {
        // Neither the path nor the query: both can carry PHI (Patient?name=..., a client-chosen id).
        // The matched route pattern and the resource type say enough to operate the service.
        const { route, resourceType } = res.locals as Partial<Locals>;
        logger.http('request', {
          method: req.method,
          route: route ?? 'unmatched',
          ...(resourceType ? { resourceType } : {}),
          status: res.statusCode,
          durationMs: Number(process.hrtime.bigint() - started) / 1e6,
        });
      });
      if (!TENANT_PATTERN.test(tenant)) {
        sendOutcome(
          res,
          badRequest([errorIssue('value', `${TENANT_HEADER} must be letters, digits, '.', '_' or '-' (at most 64)`, TENANT_HEADER)]),
        );
        return;
      }
      next();
    });
  };
}

/** 406 before any work when the client cannot read JSON; records the media type to answer with. */
export function negotiate(req: Request, res: Response, next: NextFunction): void {
  const format = typeof req.query['_format'] === 'string' ? req.query['_format'] : undefined;
  const negotiated = negotiateResponseType(format, req.get('accept'));
  if ('outcome' in negotiated) {
    sendOutcome(res, negotiated.outcome);
    return;
  }
  locals(res).mediaType = negotiated.mediaType;
  next();
}

/**
 * Reads a FHIR JSON body: 415 for other media types (XML included), 413 past the size limit,
 * 400 for malformed JSON or nesting deeper than the limit. The parse error's own message is not
 * echoed or logged: it quotes the body, which may hold PHI.
 */
export function fhirJsonBody(options: Pick<HttpOptions, 'bodyLimitBytes' | 'jsonMaxDepth'>) {
  // Raw bytes, decoded below with a fatal decoder: express.text would turn invalid UTF-8 into
  // U+FFFD silently, and FHIR JSON is UTF-8 (https://hl7.org/fhir/R4/json.html).
  const readText = express.raw({ type: () => true, limit: options.bodyLimitBytes });
  return (req: Request, res: Response, next: NextFunction): void => {
    if (req.method !== 'POST' && req.method !== 'PUT') {
      next();
      return;
    }
    const contentTypeProblem = checkRequestContentType(req.get('content-type'));
    if (contentTypeProblem) {
      sendOutcome(res, contentTypeProblem, locals(res).mediaType);
      return;
    }
    readText(req, res, (err?: unknown) => {
      if (err) {
        const type = (err as { type?: string }).type;
        if (type === 'entity.too.large') {
          sendOutcome(res, payloadTooLarge(`The body is larger than the limit of ${options.bodyLimitBytes} bytes`), locals(res).mediaType);
        } else if (type === 'encoding.unsupported' || type === 'charset.unsupported') {
          sendOutcome(res, unsupportedMediaType('Only UTF-8 FHIR JSON is supported'), locals(res).mediaType);
        } else {
          sendOutcome(res, badRequest([errorIssue('invalid', 'The request body could not be read')]), locals(res).mediaType);
        }
        return;
      }
      const charset = /;\s*charset\s*=\s*"?([^";\s]+)/i.exec(req.get('content-type') ?? '')?.[1]?.toLowerCase();
      if (charset !== undefined && charset !== 'utf-8' && charset !== 'utf8') {
        sendOutcome(res, unsupportedMediaType('Only UTF-8 FHIR JSON is supported'), locals(res).mediaType);
        return;
      }
      const text = decodeUtf8(req.body);
      if (text === undefined) {
        sendOutcome(
          res,
          badRequest([errorIssue('invalid', 'The body is not valid UTF-8: FHIR JSON must be encoded in UTF-8')]),
          locals(res).mediaType,
        );
        return;
      }
      if (text.trim() === '') {
        sendOutcome(
          res,
          badRequest([errorIssue('required', 'The request body is empty: send a FHIR resource as JSON')]),
          locals(res).mediaType,
        );
        return;
      }
      let parsed: unknown;
      try {
        parsed = JSON.parse(text);
      } catch (parseError) {
        const position = /position (\d+)/.exec((parseError as Error).message)?.[1];
        sendOutcome(
          res,
          badRequest([
            errorIssue('structure', `The body is not valid JSON${position === undefined ? '' : ` (near character ${position})`}`),
          ]),
          locals(res).mediaType,
        );
        return;
      }
      if (jsonDepthExceeds(parsed, options.jsonMaxDepth)) {
        sendOutcome(
          res,
          badRequest([errorIssue('structure', `The JSON nests deeper than ${options.jsonMaxDepth} levels`)]),
          locals(res).mediaType,
        );
        return;
      }
      req.body = parsed;
      next();
    });
  };
}

const UTF8 = new TextDecoder('utf-8', { fatal: true });

/** The body's text, or undefined when its bytes are not UTF-8 (a leading BOM is dropped). */
function decodeUtf8(body: unknown): string | undefined {
  if (!Buffer.isBuffer(body)) return '';
  try {
    return UTF8.decode(body);
  } catch {
    return undefined;
  }
}

function baseUrlOf(req: Request, options: HttpOptions): string {
  return options.publicBaseUrl ?? `${req.protocol}://${req.get('host') ?? 'localhost'}/fhir`;
}

function toFhirRequest(req: Request, res: Response, options: HttpOptions): FhirRequest {
  const url = new URL(req.originalUrl, 'http://placeholder');
  const request: FhirRequest = {
    method: req.method,
    params: Object.fromEntries(Object.entries(req.params).map(([k, v]) => [k, String(v)])),
    query: [...url.searchParams.entries()].map(([k, v]) => [k, v] as const),
    body: req.body,
    tenant: locals(res).tenant,
    baseUrl: baseUrlOf(req, options),
    prefer: parsePrefer(req.get('prefer')),
  };
  // The client went away before its answer: its search's statement is cancelled (docs/resilience.md).
  const gone = new AbortController();
  res.on('close', () => {
    if (!res.writableFinished) gone.abort();
  });
  request.signal = gone.signal;
  const ifNoneExist = req.get('if-none-exist');
  const ifMatch = req.get('if-match');
  const ifNoneMatch = req.get('if-none-match');
  if (ifNoneExist !== undefined) request.ifNoneExist = ifNoneExist;
  if (ifMatch !== undefined) request.ifMatch = ifMatch;
  if (ifNoneMatch !== undefined) request.ifNoneMatch = ifNoneMatch;
  return request;
}

function send(req: Request, res: Response, request: FhirRequest, response: FhirResponse): void {
  for (const [name, value] of Object.entries(response.headers ?? {})) res.setHeader(name, value);
  const status = response.status ?? (response.outcome ? statusOf(response.outcome) : 500);
  setRetryAfter(res, status);
  res.status(status);
  if (status === 304) {
    res.end();
    return;
  }
  let body: unknown;
  if (status >= 400) {
    body = response.outcome;
  } else if ((req.method === 'POST' || req.method === 'PUT') && request.prefer.return === 'minimal') {
    body = undefined;
  } else if ((req.method === 'POST' || req.method === 'PUT') && request.prefer.return === 'OperationOutcome') {
    body = response.outcome ?? allOk();
  } else {
    body = response.resource ?? response.outcome;
  }
  if (body === undefined) {
    res.end();
    return;
  }
  const pretty = req.query['_pretty'] === 'true';
  res.type(locals(res).mediaType).send(JSON.stringify(body, null, pretty ? 2 : undefined));
}

/** The Express side of a FhirHandler, named after it (stack traces, the route table's test). */
function adapt(handler: FhirHandler, options: HttpOptions) {
  const adapted = async (req: Request, res: Response): Promise<void> => {
    const routePath = `${req.baseUrl}${(req.route as { path?: string } | undefined)?.path ?? ''}`;
    const fhirRequest = toFhirRequest(req, res, options);
    // A row that names its resource type literally (`/fhir/Task/:id`) still tells the handler the type.
    const literalType = resourceTypeOf({ path: routePath });
    if (literalType !== undefined) fhirRequest.params['type'] ??= literalType;
    const request = payerScopedRequest(res.locals['caller'] as Caller | undefined, fhirRequest);
    locals(res).route = routePath;
    const type = request.params['type'];
    if (req.method === 'POST' && type?.startsWith('$')) {
      // `POST /fhir/$name` of an operation no row names: the generic create row caught it.
      send(req, res, request, {
        outcome: methodNotAllowed(`${request.method} is not supported on this path; see /fhir/metadata for what this server does`),
      });
      return;
    }
    if (type !== undefined && /^[A-Z][A-Za-z]{1,63}$/.test(type)) locals(res).resourceType = type;
    const response = await withinPayerReach(
      res.locals['caller'] as Caller | undefined,
      await handler(request),
      () => ({ outcome: notFound(type ?? 'Resource', request.params['id']) }),
      options.taskPayers && ((task) => options.taskPayers!(request.tenant, task)),
    );
    send(req, res, request, response);
  };
  Object.defineProperty(adapted, 'name', { value: handler.name });
  return adapted;
}

/** The FHIR API's rows' handler names (src/http/route-table.ts) that FhirHandlers answer. */
type FhirHandlerName = Extract<HandlerName, keyof FhirHandlers>;

/**
 * The FHIR API's named handlers as the router runs them: content negotiation, the FHIR JSON body,
 * then the handler through the adapter. A transaction's entries are authorized one by one first.
 */
export function fhirRouteHandlers(handlers: FhirHandlers, options: HttpOptions): Pick<RouteHandlers, FhirHandlerName> {
  const body = fhirJsonBody(options);
  const chain = (handler: FhirHandler): RouteHandler => [negotiate, body, adapt(handler, options)];
  return {
    capabilityStatement: chain(handlers.capabilityStatement),
    searchConformance: chain(handlers.searchConformance),
    readConformance: chain(handlers.readConformance),
    transaction: [negotiate, body, authorizeBundleEntries, adapt(handlers.transaction, options)],
    validate: chain(handlers.validate),
    confirmSite: chain(handlers.confirmSite),
    recordVerification: chain(handlers.recordVerification),
    submitPriorAuth: chain(handlers.submitPriorAuth),
    networkMetrics: chain(handlers.networkMetrics),
    findAppointments: chain(handlers.findAppointments),
    holdAppointment: chain(handlers.holdAppointment),
    bookAppointment: chain(handlers.bookAppointment),
    requestAppointment: chain(handlers.requestAppointment),
    updateAppointment: chain(handlers.updateAppointment),
    updateReferralTask: chain(handlers.updateReferralTask),
    search: chain(handlers.search),
    create: chain(handlers.create),
    read: chain(handlers.read),
    update: chain(handlers.update),
    history: chain(handlers.history),
    vread: chain(handlers.vread),
    searchAuditEvents: chain(handlers.searchAuditEvents),
    readAuditEvent: chain(handlers.readAuditEvent),
  };
}

/** The last word: any error becomes an OperationOutcome; unexpected ones are logged without PHI. */
export function fhirErrorHandler(logger: Logger) {
  return (err: unknown, _req: Request, res: Response, _next: NextFunction): void => {
    if (err instanceof StoreUnavailableError) {
      logger.warn('database unavailable; answered 503', { reason: err.reason });
    } else if (!(err instanceof OperationOutcomeError)) {
      const error = err as { name?: string; code?: string; message?: string; stack?: string };
      // Messages of parse and database errors can quote data; log the kind of error and where it arose.
      logger.error('unhandled error', {
        errorName: error.name,
        errorCode: error.code,
        stack: error.stack?.split('\n').slice(1, 6).join(' | '),
      });
    }
    if (res.headersSent) return;
    sendOutcome(res, outcomeFromError(err), locals(res).mediaType ?? 'application/fhir+json', err);
  };
}
