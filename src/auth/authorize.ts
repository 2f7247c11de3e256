/**
 * Every request meets the route table (src/http/route-table.ts) before any handler: a route no
 * entry names is refused (404, or 405 when the path exists for another method); a public route
 * passes; every other route needs one of the gateway's access tokens, a role the entry allows and
 * the scope it needs. The caller and its tenant come from the token, never from a header:
 * X-Tenant-Id is refused unless the caller is an operator (who may choose a tenant with it) or a
 * payer (whose members are treated in several hospitals), and an operator's write of the
 * directory goes to the directory (request-tenant.ts). docs/security.md.
 */
import type { NextFunction, Request, Response } from 'express';
import type { OperationOutcome } from 'fhir/r4.js';
import { errorIssue, forbidden, methodNotAllowed, notFound, statusOf, unauthorized } from '../fhir/outcomes.js';
import type { Logger } from '../logging/logger.js';
import { apiSupports, findRoute, rolePermits, ROUTE_TABLE } from '../http/route-table.js';
import { match } from 'path-to-regexp';
import type { Caller } from './caller.js';
import { verifyAccessToken, type TokenCheck } from './access-tokens.js';
import { verifyPersonToken } from './trusted-issuers.js';
import { unverifiedIssuer } from './jwt-reading.js';
import { scopesPermit, type Interaction } from './scopes.js';
import { gatewayUrls, type AuthService } from './token-endpoint.js';
import { requestTenant, TENANT_HEADER } from './request-tenant.js';

const RESOURCE_TYPE = /^[A-Z][A-Za-z]{1,63}$/;

const pathMatchers = ROUTE_TABLE.map((entry) => ({ entry, test: match(entry.path, { decode: false }) }));

function send(res: Response, outcome: OperationOutcome, headers: Record<string, string> = {}): void {
  for (const [name, value] of Object.entries(headers)) res.setHeader(name, value);
  res.status(statusOf(outcome)).type('application/fhir+json').send(JSON.stringify(outcome));
}

function challenge(error?: string, description?: string): Record<string, string> {
  // RFC 6750 section 3: the scheme, and why the token was refused when one was sent.
  const parts = ['Bearer realm="infusion-gateway"'];
  if (error) parts.push(`error="${error}"`);
  if (description) parts.push(`error_description="${description.replace(/"/g, "'")}"`);
  return { 'WWW-Authenticate': parts.join(', ') };
}

export interface AuthorizeOptions {
  /** undefined: AUTH=off (local development only; refused in production). */
  service: AuthService | undefined;
  logger: Logger;
  defaultTenant: string;
  /** The network directory's tenant: an operator's writes of directory types go there (request-tenant.ts). */
  directoryTenant: string;
}

export function authorizeRequests(options: AuthorizeOptions) {
  return async (req: Request, res: Response, next: NextFunction): Promise<void> => {
    const found = findRoute(req.method, req.path);
    if (!found) {
      const otherMethod = pathMatchers.some(({ test }) => test(req.path) !== false);
      send(res, otherMethod ? methodNotAllowed(`${req.method} is not supported on this path`) : notFound(`Path ${req.path}`));
      return;
    }
    const { entry, params } = found;
    if (entry.access.kind === 'public' || options.service === undefined) {
      next();
      return;
    }
    const service = options.service;
    const authorization = req.get('authorization');
    const token = /^Bearer ([A-Za-z0-9\-._~+/]+=*)$/i.exec(authorization ?? '')?.[1];
    if (token === undefined && entry.orHeaderSecret !== undefined && req.get(entry.orHeaderSecret) !== undefined) {
      // The handler compares the secret in constant time and refuses a wrong one (401).
      next();
      return;
    }
    if (token === undefined) {
      send(
        res,
        unauthorized('This route needs an access token: get one at the token endpoint (see /.well-known/smart-configuration)'),
        challenge(),
      );
      return;
    }
    const urls = gatewayUrls(req, service.publicBaseUrl);
    const checked = await verifyBearerToken(service, token, urls);
    if (checked.kind === 'refused') {
      send(res, unauthorized(`The access token is refused: ${checked.reason}`), challenge('invalid_token', checked.reason));
      return;
    }
    const caller: Caller = checked.caller;
    res.locals['caller'] = caller;
    const refusal = decide(caller, entry.access, params);
    if (refusal) {
      send(res, refusal.outcome, refusal.scope ? challenge('insufficient_scope', refusal.outcome.issue[0]?.diagnostics) : {});
      return;
    }
    if (entry.ownedBy && params[entry.ownedBy.parameter] !== caller[entry.ownedBy.claim]) {
      // Another tenant's or payer's endpoint: answered as if it did not exist.
      send(res, notFound(`Path ${req.path}`));
      return;
    }
    const writes =
      entry.access.kind === 'fhir' && (entry.access.interaction === 'c' || entry.access.interaction === 'u') ? params['type'] : undefined;
    const tenant = requestTenant({
      caller,
      headerTenant: req.get(TENANT_HEADER),
      defaultTenant: options.defaultTenant,
      directoryTenant: options.directoryTenant,
      ...(writes !== undefined ? { writesType: writes } : {}),
    });
    if (tenant.kind === 'refused') {
      send(res, tenant.outcome);
      return;
    }
    res.locals['tenant'] = tenant.tenant;
    next();
  };
}

/**
 * The gateway's own SMART tokens, or a person's token from a trusted identity provider
 * (src/auth/trusted-issuers.ts), chosen by the token's unverified `iss`; either is then verified
 * in full. A token of any other issuer is refused as not the gateway's.
 */
function verifyBearerToken(service: AuthService, token: string, urls: { origin: string; fhirBase: string }): Promise<TokenCheck> {
  const now = service.clock.now();
  const iss = unverifiedIssuer(token);
  const personIssuer =
    iss === undefined || iss === urls.origin ? undefined : service.trustedIssuers.find((issuer) => issuer.issuerAt(urls.origin) === iss);
  if (personIssuer !== undefined)
    return verifyPersonToken(personIssuer, token, { gatewayOrigin: urls.origin, fhirBase: urls.fhirBase, now });
  return verifyAccessToken(service.keys, token, { issuer: urls.origin, audience: urls.fhirBase, now });
}

function decide(
  caller: Caller,
  access: (typeof ROUTE_TABLE)[number]['access'],
  params: Record<string, string>,
): { outcome: OperationOutcome; scope?: boolean } | undefined {
  if (access.kind === 'roles') {
    if (!access.roles.includes(caller.role)) return { outcome: forbidden(`The ${caller.role} role may not call this route`) };
    if (access.scope && !scopesPermit(caller.scopes, access.scope.resourceType, access.scope.interaction)) {
      return {
        outcome: forbidden(`The token's scopes do not allow this (needs system/${access.scope.resourceType}.${access.scope.interaction})`),
        scope: true,
      };
    }
    return undefined;
  }
  if (access.kind === 'fhir') {
    const type = params['type'] ?? '';
    // Not a resource type ($operation, a typo): the FHIR router answers it (404/405).
    if (!RESOURCE_TYPE.test(type)) return undefined;
    // What the API does for nobody (create a Task) is the API's to refuse, with its own answer (404/405).
    if (!apiSupports(type, access.interaction)) return undefined;
    if (!rolePermits(caller.role, type, access.interaction))
      return { outcome: forbidden(`The ${caller.role} role may not do this on ${type}`) };
    if (!scopesPermit(caller.scopes, type, access.interaction)) {
      return { outcome: forbidden(`The token's scopes do not allow this (needs system/${type}.${access.interaction})`), scope: true };
    }
  }
  return undefined;
}

const ENTRY_INTERACTION: Record<string, Interaction> = { POST: 'c', PUT: 'u', PATCH: 'u', DELETE: 'd' };

/**
 * A transaction or batch Bundle is authorized entry by entry, as if each entry were its own
 * request (https://hl7.org/fhir/R4/http.html#transaction): an EHR may send its referral with the
 * Patient and Coverage, but not rewrite the network's directory inside a Bundle. Every entry the
 * caller may not write is named at once; nothing is stored (403).
 */
export function authorizeBundleEntries(req: Request, res: Response, next: NextFunction): void {
  const caller = res.locals['caller'] as Caller | undefined;
  const entries = (req.body as { entry?: unknown } | undefined)?.entry;
  if (caller === undefined || !Array.isArray(entries)) {
    next();
    return;
  }
  const issues = entries.flatMap((entry: unknown, index) => {
    const request = (entry as { request?: { method?: unknown; url?: unknown } } | null)?.request;
    const method = typeof request?.method === 'string' ? request.method : 'GET';
    const url = typeof request?.url === 'string' ? request.url : '';
    const type = url.split(/[/?]/)[0] ?? '';
    const interaction: Interaction = ENTRY_INTERACTION[method] ?? (url.includes('?') || !url.includes('/') ? 's' : 'r');
    if (!RESOURCE_TYPE.test(type) || !apiSupports(type, interaction)) return [];
    if (rolePermits(caller.role, type, interaction) && scopesPermit(caller.scopes, type, interaction)) return [];
    return [
      errorIssue(
        'forbidden',
        `The ${caller.role} role (or the token's scopes) may not ${method} ${type} resources`,
        `Bundle.entry[${index}].request`,
      ),
    ];
  });
  if (issues.length > 0) {
    send(res, { resourceType: 'OperationOutcome', id: 'forbidden', issue: issues });
    return;
  }
  next();
}

/** Whether a Coverage names this payer's Organization as its payor. */
function coveredBy(resource: { resourceType?: string; payor?: Array<{ reference?: string }> }, payer: string): boolean {
  return (
    resource.resourceType === 'Coverage' &&
    (resource.payor ?? []).some((p) => p.reference === `Organization/${payer}` || p.reference?.endsWith(`/Organization/${payer}`) === true)
  );
}

/** The payer Organization ids of a referral Task's Coverages (src/auth/payer-reach.ts). */
export type TaskPayers = (task: { resourceType: 'Task' }) => Promise<readonly string[]>;

async function inPayerReach(
  resource: { resourceType?: string } | undefined,
  payer: string,
  taskPayers: TaskPayers | undefined,
): Promise<boolean> {
  if (resource?.resourceType === 'Coverage') return coveredBy(resource, payer);
  if (resource?.resourceType === 'Task' && taskPayers !== undefined)
    return (await taskPayers(resource as { resourceType: 'Task' })).includes(payer);
  return false;
}

/**
 * A payer's reach: the Coverage of its own members (payor = its Organization), and the referral
 * Tasks whose referral names such a Coverage; nothing else. A read outside it is answered 404, as
 * if it did not exist; search results keep only what is in reach (their paging counts may then
 * overstate: a known limit, docs/security.md).
 */
export async function withinPayerReach<T extends { status?: number; resource?: unknown }>(
  caller: Caller | undefined,
  response: T,
  notFoundResponse: () => T,
  taskPayers?: TaskPayers,
): Promise<T> {
  if (caller?.role !== 'payer' || caller.payer === undefined || response.resource === undefined) return response;
  const payer = caller.payer;
  const resource = response.resource as { resourceType?: string; type?: string; entry?: Array<{ resource?: { resourceType?: string } }> };
  if (resource.resourceType === 'Bundle' && (resource.type === 'searchset' || resource.type === 'history')) {
    const entries = resource.entry ?? [];
    const kept = await Promise.all(
      entries.map(async (e) => e.resource?.resourceType === 'OperationOutcome' || (await inPayerReach(e.resource, payer, taskPayers))),
    );
    const entry = entries.filter((_, index) => kept[index]);
    const { total: _total, ...rest } = resource as { total?: number };
    return { ...response, resource: { ...rest, entry } };
  }
  if (resource.resourceType === 'Bundle' || resource.resourceType === 'OperationOutcome') return response;
  return (await inPayerReach(resource, payer, taskPayers)) ? response : notFoundResponse();
}

/**
 * A payer's Coverage search is narrowed to its own members in the query itself (payor = its
 * Organization), so pages and counts are right; withinPayerReach stays the guard on every answer.
 */
export function payerScopedRequest<
  T extends { method: string; params: Record<string, string>; query: ReadonlyArray<readonly [string, string]> },
>(caller: Caller | undefined, request: T): T {
  if (caller?.role !== 'payer' || caller.payer === undefined || request.method !== 'GET') return request;
  if (request.params['type'] !== 'Coverage' || request.params['id'] !== undefined) return request;
  return { ...request, query: [...request.query, ['payor', `Organization/${caller.payer}`] as const] };
}
