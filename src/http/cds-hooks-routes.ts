/**
 * The CDS Hooks edge (https://cds-hooks.hl7.org/2.0/), mounted at /cds-services:
 *
 *   GET  /cds-services                  discovery
 *   POST /cds-services/{id}             a hook call: { cards: [...] }
 *   POST /cds-services/{id}/feedback    what the clinician did with our cards (logged as counts)
 *
 * CDS Hooks speaks plain JSON, not FHIR+JSON; refusals are OperationOutcomes with the status
 * derived from them (400 with every problem, 412 when data we need cannot be had). CORS is open:
 * the spec asks services to allow browser-based CDS clients
 * (https://cds-hooks.hl7.org/2.0/#cross-origin-resource-sharing).
 */
import express, { type NextFunction, type Request, type Response, type Router } from 'express';
import type { OperationOutcome } from 'fhir/r4.js';
import { badRequest, errorIssue, notFound, outcomeFromError, payloadTooLarge, statusOf, unsupportedMediaType } from '../fhir/outcomes.js';
import { answerSiteCheckHook, cdsServiceDiscovery, isSiteCheckService, type CdsDeps } from '../site-check/stories/cds-site-check.js';
import { setRetryAfter } from './retry-after.js';
import type { CdsClientTrust } from '../auth/cds-client-trust.js';
import { routerFromTable, type RouteHandlers } from './table-router.js';

export interface CdsHooksHttpOptions {
  /** Largest hook request accepted; draft orders and prefetch together. Default 1 MiB. */
  bodyLimitBytes?: number;
  /**
   * Checks the EHR's signed JWT on every hook and feedback call
   * (https://cds-hooks.hl7.org/2.0/#trusting-cds-clients). Required: there is no unsigned mode.
   */
  clientTrust: CdsClientTrust;
  /**
   * The origin clients reach us at (https://gateway.example.org), for the JWT's `aud`; default:
   * the origin of the request as this process received it.
   */
  publicOrigin?: string;
}

const DEFAULT_BODY_LIMIT_BYTES = 1024 * 1024;

function sendOutcome(res: Response, outcome: OperationOutcome): void {
  setRetryAfter(res, statusOf(outcome));
  res.status(statusOf(outcome)).type('application/json').send(JSON.stringify(outcome));
}

function cors(req: Request, res: Response, next: NextFunction): void {
  res.setHeader('Access-Control-Allow-Origin', '*');
  res.setHeader('Access-Control-Allow-Methods', 'GET, POST, OPTIONS');
  // Authorization carries the CDS client's JWT (https://cds-hooks.hl7.org/2.0/#trusting-cds-clients).
  res.setHeader('Access-Control-Allow-Headers', 'Authorization, Content-Type');
  res.setHeader('Access-Control-Expose-Headers', 'X-Request-Id');
  res.setHeader('Access-Control-Max-Age', '600');
  if (req.method === 'OPTIONS') {
    res.status(204).end();
    return;
  }
  next();
}

/** 415 unless the body is declared JSON; CDS clients send application/json. */
function requireJson(req: Request, res: Response, next: NextFunction): void {
  if (!req.is(['application/json', 'application/fhir+json', 'application/*+json'])) {
    sendOutcome(res, unsupportedMediaType('A CDS Hooks request is JSON: send Content-Type application/json'));
    return;
  }
  next();
}

/** 401 with the WWW-Authenticate challenge of RFC 6750; the reason is logged, never the token. */
function unauthorized(res: Response, diagnostics: string): void {
  res.setHeader('WWW-Authenticate', 'Bearer error="invalid_token"');
  res
    .status(401)
    .type('application/json')
    .send(
      JSON.stringify({
        resourceType: 'OperationOutcome',
        id: 'unauthorized',
        issue: [{ severity: 'error', code: 'login', diagnostics, expression: ['Authorization'] }],
      } satisfies OperationOutcome),
    );
}

/** The CDS Hooks rows' named handlers (src/http/route-table.ts). */
export function cdsHooksHandlers(
  deps: CdsDeps,
  options: CdsHooksHttpOptions,
): Pick<RouteHandlers, 'cdsDiscovery' | 'cdsHook' | 'cdsFeedback'> {
  /** The JWT must name this service's endpoint as `aud` (feedback calls: that endpoint or the feedback URL). */
  const requireTrustedClient = async (req: Request, res: Response, next: NextFunction): Promise<void> => {
    const origin = options.publicOrigin ?? `${req.protocol}://${req.get('host') ?? ''}`;
    const servicePath = `${req.baseUrl}${req.path}`.replace(/\/feedback$/, '');
    const serviceUrl = `${origin}${servicePath}`;
    const audiences = req.path.endsWith('/feedback') ? [serviceUrl, `${serviceUrl}/feedback`] : [serviceUrl];
    const decision = await options.clientTrust.verify(req.get('authorization'), audiences);
    if (!decision.trusted) {
      deps.logger.warn('cds hook call refused', { reason: decision.reason });
      unauthorized(
        res,
        'A CDS Hooks call needs a Bearer JWT signed by a trusted CDS client, addressed to this service, unexpired and not replayed',
      );
      return;
    }
    res.locals['cdsClientIssuer'] = decision.iss;
    next();
  };
  const json = express.json({ limit: options.bodyLimitBytes ?? DEFAULT_BODY_LIMIT_BYTES, type: () => true, strict: false });

  function cdsDiscovery(_req: Request, res: Response): void {
    res.type('application/json').send(JSON.stringify(cdsServiceDiscovery()));
  }

  function cdsFeedback(req: Request, res: Response): void {
    const serviceId = String(req.params['id']);
    if (!isSiteCheckService(serviceId)) {
      sendOutcome(res, notFound('CDS service', serviceId));
      return;
    }
    const feedback = (req.body as { feedback?: unknown } | undefined)?.feedback;
    if (!Array.isArray(feedback)) {
      sendOutcome(res, badRequest([errorIssue('required', 'feedback (an array of card outcomes) is required', 'feedback')]));
      return;
    }
    // Counts and codes only: the card uuids and the clinician's free text stay out of the logs.
    const outcomes = feedback.map((f: unknown) => (typeof f === 'object' && f !== null ? (f as { outcome?: unknown }).outcome : undefined));
    const overrideCodes = feedback
      .map((f: unknown) =>
        typeof f === 'object' && f !== null
          ? (f as { overrideReason?: { reason?: { code?: unknown } } }).overrideReason?.reason?.code
          : undefined,
      )
      .filter((code): code is string => typeof code === 'string');
    deps.logger.info('cds feedback', {
      serviceId,
      accepted: outcomes.filter((o) => o === 'accepted').length,
      overridden: outcomes.filter((o) => o === 'overridden').length,
      overrideReasons: overrideCodes,
    });
    res.status(200).type('application/json').send('{}');
  }

  async function cdsHook(req: Request, res: Response): Promise<void> {
    const answer = await answerSiteCheckHook(deps, { serviceId: String(req.params['id']), body: req.body });
    if (answer.kind === 'refused') {
      sendOutcome(res, answer.outcome);
      return;
    }
    res.status(200).type('application/json').send(JSON.stringify(answer.response));
  }

  return {
    cdsDiscovery: [cors, cdsDiscovery],
    cdsHook: [cors, requireTrustedClient, requireJson, json, cdsHook],
    cdsFeedback: [cors, requireTrustedClient, requireJson, json, cdsFeedback],
  };
}

/**
 * Whatever the CDS Hooks paths cannot answer, in CDS Hooks' JSON: body-parser failures carry a
 * type; anything else is ours, a 500 without internals. Mounted at /cds-services.
 */
export function cdsHooksErrors(deps: Pick<CdsDeps, 'logger'>, options: Pick<CdsHooksHttpOptions, 'bodyLimitBytes'>) {
  return (err: unknown, _req: Request, res: Response, _next: NextFunction): void => {
    const type = (err as { type?: string } | undefined)?.type;
    if (type === 'entity.too.large') {
      sendOutcome(res, payloadTooLarge(`The hook request is larger than ${options.bodyLimitBytes ?? DEFAULT_BODY_LIMIT_BYTES} bytes`));
    } else if (type === 'entity.parse.failed') {
      // The parser's message quotes the body, which may hold PHI: not echoed.
      sendOutcome(res, badRequest([errorIssue('structure', 'The hook request is not valid JSON')]));
    } else if (type === 'encoding.unsupported' || type === 'charset.unsupported') {
      sendOutcome(res, unsupportedMediaType('Only UTF-8 JSON is supported'));
    } else {
      // The kind and where it arose, never the message: it can quote the hook's data.
      deps.logger.error('cds hook failed', {
        error: err instanceof Error ? err.name : 'unknown',
        stack: err instanceof Error ? err.stack?.split('\n').slice(1, 6).join(' | ') : undefined,
      });
      sendOutcome(res, outcomeFromError(err));
    }
  };
}

/**
 * The CDS Hooks service on its own (its tests mount it at /cds-services): the table's
 * /cds-services rows, CORS preflight, 404 for anything else, and the errors above.
 */
export function cdsHooksRouter(deps: CdsDeps, options: CdsHooksHttpOptions): Router {
  const router = express.Router();
  router.use(cors);
  router.use(routerFromTable(cdsHooksHandlers(deps, options), { mountedAt: '/cds-services' }));
  router.use((req: Request, res: Response) => {
    sendOutcome(res, notFound(`CDS Hooks path ${req.method} ${req.path}`));
  });
  router.use(cdsHooksErrors(deps, options));
  return router;
}
