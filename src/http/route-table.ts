/**
 * Every route the gateway answers, what answers it and who may call it: the one place that lists
 * routes. The Express router is generated from this table (src/http/table-router.ts, each row's
 * named handler), the authorization middleware (src/auth/authorize.ts) matches each request here
 * first and refuses whatever no row names (deny by default), the API description
 * (src/http/plain-routes.ts) and the authorization matrix test derive from it, and
 * test/http/route-table.test.ts fails if a route answers that no row lists. To add a route: add a
 * row, name its handler in HandlerName, implement it where its area's handlers are built
 * (docs/architecture.md, "Adding a route"). docs/security.md explains the roles.
 *
 * Access kinds:
 *   public         anyone: health, metadata, discovery, published conformance resources, the console's files
 *   roles          a valid access token of one of these roles (and, for operations, the scope named)
 *   fhir           a valid token whose role may do this interaction on the resource type in the
 *                  path (ROLE_PERMISSIONS) and whose scopes allow it
 *   authenticated  any valid token: the FHIR router answers what it does not support (404/405)
 */
import { match } from 'path-to-regexp';
import type { Role } from '../auth/caller.js';
import type { Interaction } from '../auth/scopes.js';
import { DIRECTORY_TYPES } from '../ports/gateway-deps.js';
import { READABLE_TYPES, WRITABLE_TYPES } from '../intake/stories/resource-interactions.js';

export type Access =
  | { kind: 'public' }
  | { kind: 'roles'; roles: readonly Role[]; scope?: { resourceType: string; interaction: Interaction } }
  | { kind: 'fhir'; interaction: Interaction }
  | { kind: 'authenticated' };

/**
 * The handlers rows name; each is implemented once, in the area that owns it, and gathered by
 * createRouteHandlers (src/http/route-handlers.ts), which the compiler holds to this list.
 */
export type HandlerName =
  // health and the API description
  | 'liveness'
  | 'readiness'
  | 'openApiDocument'
  | 'apiDocsPage'
  | 'apiDocsFile'
  // the coordinator console (src/http/console-routes.ts)
  | 'consoleEntry'
  | 'consoleConfig'
  | 'consolePage'
  | 'connectionHealth'
  // SMART Backend Services (src/auth/token-endpoint.ts)
  | 'smartConfiguration'
  | 'publicKeys'
  | 'issueToken'
  // DEMO ONLY: the embedded OpenID provider people sign in with (src/auth/demo-identity-provider.ts)
  | 'demoIdentityProvider'
  // CDS Hooks (src/http/cds-hooks-routes.ts)
  | 'cdsDiscovery'
  | 'cdsHook'
  | 'cdsFeedback'
  // operators (src/http/operator-routes.ts) and notifications (src/http/notification-routes.ts)
  | 'listOutbox'
  | 'readOutboxMessage'
  | 'retryOutboxMessage'
  | 'receiveSubscriptionNotification'
  | 'receivePayerNotification'
  // the FHIR API (src/http/fhir-handlers.ts) and its operations (src/http/operations/)
  | 'capabilityStatement'
  | 'searchConformance'
  | 'readConformance'
  | 'transaction'
  | 'validate'
  | 'confirmSite'
  | 'recordVerification'
  | 'submitPriorAuth'
  | 'networkMetrics'
  | 'findAppointments'
  | 'holdAppointment'
  | 'bookAppointment'
  | 'requestAppointment'
  | 'updateAppointment'
  | 'updateReferralTask'
  // the audit trail, for operators (src/http/audit-event-handlers.ts, docs/audit.md)
  | 'searchAuditEvents'
  | 'readAuditEvent'
  | 'search'
  | 'create'
  | 'read'
  | 'update'
  | 'history'
  | 'vread';

export interface RouteEntry {
  method: 'GET' | 'POST' | 'PUT';
  /** Express (path-to-regexp 8) syntax; a literal resource type (`/fhir/Task/...`) is the row's resource type. */
  path: string;
  /** What answers: a name of HandlerName. */
  handler: HandlerName;
  access: Access;
  /** Whom the route serves, for the docs and the matrix test. */
  summary: string;
  /** A path parameter that must equal the caller's tenant (ehr) or payer (payer). */
  ownedBy?: { parameter: string; claim: 'tenant' | 'payer' };
  /**
   * A credential the route's own handler checks instead of an access token, when the request
   * carries it: a Subscription channel's header secret (src/http/notification-auth.ts).
   */
  orHeaderSecret?: string;
}

const ALL_ROLES: readonly Role[] = ['ehr', 'payer', 'coordinator', 'operator'];
const CONFORMANCE = ['StructureDefinition', 'CodeSystem', 'ValueSet', 'OperationDefinition'];

/** What the FHIR API stores for clients (resource-interactions.ts); everything else it refuses itself. */
const READABLE = new Set([...READABLE_TYPES, 'AuditEvent', 'Communication']);
const CREATABLE = new Set([...WRITABLE_TYPES, 'ServiceRequest', 'Appointment']);
const UPDATABLE = new Set([...WRITABLE_TYPES, 'ServiceRequest', 'Appointment', 'Task']);

/** Whether the FHIR API does this interaction on this type for anyone; if not, it answers (404/405) itself. */
export function apiSupports(resourceType: string, interaction: Interaction): boolean {
  if (interaction === 'r' || interaction === 's') return READABLE.has(resourceType);
  if (interaction === 'c') return CREATABLE.has(resourceType);
  if (interaction === 'u') return UPDATABLE.has(resourceType);
  return false;
}

/**
 * What each role may do per resource type ('*' = any type), before scopes narrow it further.
 * Reach within a type (own tenant; a payer's own members) is applied by the handlers.
 */
export const ROLE_PERMISSIONS: Record<Role, Record<string, readonly Interaction[]>> = {
  ehr: {
    ServiceRequest: ['c', 'r', 's', 'u'],
    Task: ['r', 's'],
    Appointment: ['r', 's'],
    Coverage: ['c', 'r', 's', 'u'],
    Communication: ['r', 's'],
    Patient: ['c', 'r', 's', 'u'],
    Practitioner: ['c', 'r', 's', 'u'],
    PractitionerRole: ['c', 'r', 's', 'u'],
    ...Object.fromEntries(DIRECTORY_TYPES.map((type) => [type, ['r', 's'] as const])),
    // A referral Bundle carries the referring practice; it is stored in the hospital's own tenant,
    // never in the network's directory, which only operators reach (X-Tenant-Id).
    Organization: ['c', 'r', 's', 'u'],
  },
  // Its own members' only: withinPayerReach (src/auth/authorize.ts) answers anything else 404.
  payer: {
    Coverage: ['r', 's'],
    Task: ['r', 's'],
  },
  coordinator: {
    '*': ['r', 's'],
    Task: ['r', 's', 'u'],
    Appointment: ['c', 'r', 's', 'u'],
  },
  operator: {
    '*': ['r', 's'],
    ...Object.fromEntries(DIRECTORY_TYPES.map((type) => [type, ['c', 'r', 's', 'u'] as const])),
  },
};

export function rolePermits(role: Role, resourceType: string, interaction: Interaction): boolean {
  const permissions = ROLE_PERMISSIONS[role];
  if (resourceType === 'AuditEvent') return role === 'operator' && (interaction === 'r' || interaction === 's');
  return (permissions[resourceType] ?? permissions['*'] ?? []).includes(interaction);
}

const isPublic: Access = { kind: 'public' };
const operator: Access = { kind: 'roles', roles: ['operator'] };
/** Callers of these roles; with a scope, their token must also grant that interaction on that type. */
const roles = (allowed: readonly Role[], scope?: { resourceType: string; interaction: Interaction }): Access => ({
  kind: 'roles',
  roles: allowed,
  ...(scope ? { scope } : {}),
});
const coordinator = (resourceType: string, interaction: Interaction): Access => roles(['coordinator'], { resourceType, interaction });
/** Who reads the network's picture; who sends referrals; who reads the audit trail (docs/audit.md). */
const networkReader = roles(['coordinator', 'operator'], { resourceType: 'Task', interaction: 's' });
const referringEhr = roles(['ehr'], { resourceType: 'ServiceRequest', interaction: 'c' });
const auditor = (interaction: Interaction): Access => roles(['operator'], { resourceType: 'AuditEvent', interaction });
/** A caller whose role may do this interaction on the path's resource type (ROLE_PERMISSIONS). */
const fhir = (interaction: Interaction): Access => ({ kind: 'fhir', interaction });

/**
 * Routes an EHR calls for its own tenant only (a Subscription channel may instead carry its header
 * secret: src/http/notification-auth.ts), and a payer for its own requests only.
 */
const ownTenant = { ownedBy: { parameter: 'tenant', claim: 'tenant' }, orHeaderSecret: 'x-subscription-secret' } as const;
const ownPayer = { ownedBy: { parameter: 'payer', claim: 'payer' } } as const;

/**
 * One row, written on one line as a router's table reads (method, path, handler, who may call it,
 * whom it serves); `more` carries a row's rarer fields.
 */
const route = (
  method: RouteEntry['method'],
  path: string,
  handler: HandlerName,
  access: Access,
  summary: string,
  more: Pick<RouteEntry, 'ownedBy' | 'orHeaderSecret'> = {},
): RouteEntry => ({ method, path, handler, access, summary, ...more });

/** One row per method for a path answered by GET and by POST alike (an operation: https://hl7.org/fhir/R4/operations.html#executing). */
const getAndPost = (path: string, handler: HandlerName, access: Access, summary: string): RouteEntry[] =>
  (['GET', 'POST'] as const).map((method) => route(method, path, handler, access, summary));

/**
 * Order matters: the first row that matches answers (Express and findRoute agree), so a literal
 * path comes before the generic `/fhir/:type...` row it would otherwise fall into.
 */
export const ROUTE_TABLE: readonly RouteEntry[] = [
  route('GET', '/healthz', 'liveness', isPublic, 'liveness'),
  route('GET', '/readyz', 'readiness', isPublic, 'readiness'),
  route('GET', '/openapi.json', 'openApiDocument', isPublic, 'the API description'),
  route('GET', '/api-docs', 'apiDocsPage', isPublic, 'the API reference page'),
  route('GET', '/api-docs/:file', 'apiDocsFile', isPublic, "the reference page's files"),
  route('GET', '/console', 'consoleEntry', isPublic, "the console's page (its data comes from the API, with the person's token)"),
  route('GET', '/console/config.json', 'consoleConfig', isPublic, "the console's settings: the API's paths, and where people sign in"),
  route('GET', '/console/*rest', 'consolePage', isPublic, "the console's files and pages"),
  route('GET', '/.well-known/smart-configuration', 'smartConfiguration', isPublic, 'SMART discovery'),
  route('GET', '/fhir/.well-known/smart-configuration', 'smartConfiguration', isPublic, 'SMART discovery'),
  route('GET', '/oauth/jwks', 'publicKeys', isPublic, "the gateway's public keys"),
  route('POST', '/oauth/token', 'issueToken', isPublic, 'the token endpoint (client credentials, private_key_jwt)'),
  // DEMO ONLY, absent in production: the embedded OpenID provider's pages and endpoints (src/auth/demo-identity-provider.ts).
  ...getAndPost('/demo-idp/*rest', 'demoIdentityProvider', isPublic, 'DEMO ONLY: the demo identity provider and its sign-in page'),
  route('GET', '/fhir/metadata', 'capabilityStatement', isPublic, 'the CapabilityStatement'),
  ...CONFORMANCE.flatMap((type) => [
    route('GET', `/fhir/${type}`, 'searchConformance', isPublic, `published ${type} resources`),
    route('GET', `/fhir/${type}/:id`, 'readConformance', isPublic, `a published ${type}`),
  ]),
  route('GET', '/cds-services', 'cdsDiscovery', isPublic, 'CDS Hooks discovery'),
  // A CDS Hooks call carries its own JWT, which the CDS Hooks routes check (docs/security.md).
  route('POST', '/cds-services/:id', 'cdsHook', isPublic, 'a CDS Hooks call from an EHR (its own JWT checked by the service)'),
  route('POST', '/cds-services/:id/feedback', 'cdsFeedback', isPublic, 'CDS Hooks feedback (its own JWT checked by the service)'),

  route('GET', '/admin/outbox', 'listOutbox', operator, 'the outbox and dead letters'),
  route('GET', '/admin/outbox/:id', 'readOutboxMessage', operator, 'one outbox message'),
  route('POST', '/admin/outbox/:id/retry', 'retryOutboxMessage', operator, 'retry a dead letter'),
  route('GET', '/admin/connections', 'connectionHealth', operator, 'connection health'),

  route('POST', '/subscription-notifications/:tenant', 'receiveSubscriptionNotification', roles(['ehr']), 'EHR notifications', ownTenant),
  route('POST', '/payer-notifications/:payer', 'receivePayerNotification', roles(['payer']), "a payer's decision notification", ownPayer),

  ...getAndPost('/fhir/Task/$network-metrics', 'networkMetrics', networkReader, "the network's picture"),
  route('POST', '/fhir/Task/:id/$confirm-site', 'confirmSite', coordinator('Task', 'u'), "a coordinator confirms a held referral's site"),
  route('POST', '/fhir/Task/:id/$record-verification', 'recordVerification', coordinator('Task', 'u'), 'a verification done by phone'),
  route('POST', '/fhir/Task/:id/$submit-prior-auth', 'submitPriorAuth', coordinator('Task', 'u'), 'submit the prior authorization'),
  ...getAndPost('/fhir/Appointment/$find', 'findAppointments', coordinator('Appointment', 's'), 'slots for a cleared referral'),
  route('POST', '/fhir/Appointment/$hold', 'holdAppointment', coordinator('Appointment', 'c'), 'hold a chair'),
  route('POST', '/fhir/Appointment/$book', 'bookAppointment', coordinator('Appointment', 'c'), 'book a chair'),
  route('POST', '/fhir/$validate', 'validate', roles(ALL_ROLES), 'validate any resource (nothing stored)'),
  route('POST', '/fhir/:type/$validate', 'validate', roles(ALL_ROLES), 'validate a resource of this type (nothing stored)'),
  route('POST', '/fhir', 'transaction', referringEhr, "an EHR's transaction Bundle (a referral, its Patient, Coverage ...)"),

  // The gateway's own records: a client's write is a request to a use case, not a plain write.
  route('POST', '/fhir/Appointment', 'requestAppointment', fhir('c'), 'a booking request (no walk-ins: refused with the next slots)'),
  route('PUT', '/fhir/Appointment/:id', 'updateAppointment', fhir('u'), 'cancel, reschedule or record the visit'),
  route('PUT', '/fhir/Task/:id', 'updateReferralTask', fhir('u'), "a coordinator's decision on a referral or appeal Task"),

  route('GET', '/fhir/AuditEvent', 'searchAuditEvents', auditor('s'), 'the audit trail (docs/audit.md)'),
  route('GET', '/fhir/AuditEvent/:id', 'readAuditEvent', auditor('r'), 'one AuditEvent'),

  route('GET', '/fhir/:type', 'search', fhir('s'), 'search'),
  route('POST', '/fhir/:type', 'create', fhir('c'), 'create'),
  route('GET', '/fhir/:type/:id', 'read', fhir('r'), 'read'),
  route('PUT', '/fhir/:type/:id', 'update', fhir('u'), 'update'),
  route('GET', '/fhir/:type/:id/_history', 'history', fhir('r'), 'history'),
  route('GET', '/fhir/:type/:id/_history/:versionId', 'vread', fhir('r'), 'one version'),
];

/** The resource type a row's path names literally (`/fhir/Task/:id/$confirm-site`: Task), if any. */
export function resourceTypeOf(entry: Pick<RouteEntry, 'path'>): string | undefined {
  const segment = /^\/fhir\/([^/]+)/.exec(entry.path)?.[1];
  return segment !== undefined && /^[A-Z][A-Za-z]{1,63}$/.test(segment) ? segment : undefined;
}

const matchers = ROUTE_TABLE.map((entry) => ({ entry, test: match<Record<string, string | string[]>>(entry.path, { decode: false }) }));

/**
 * The first entry for this method and path, with its path parameters; `type` is the resource
 * type, whether the path names it with `:type` or literally.
 */
export function findRoute(method: string, path: string): { entry: RouteEntry; params: Record<string, string> } | undefined {
  const normalized = method === 'HEAD' ? 'GET' : method;
  for (const { entry, test } of matchers) {
    if (entry.method !== normalized) continue;
    const found = test(path);
    if (found) {
      const params = Object.fromEntries(Object.entries(found.params).map(([k, v]) => [k, Array.isArray(v) ? v.join('/') : v]));
      const literalType = resourceTypeOf(entry);
      return { entry, params: literalType !== undefined && params['type'] === undefined ? { ...params, type: literalType } : params };
    }
  }
  return undefined;
}

/**
 * The FHIR operations the table routes on a named resource type (`/fhir/Task/:id/$confirm-site`),
 * once each whatever the methods: what the CapabilityStatement declares.
 */
export function routedOperations(): Array<{ resourceType: string; name: string }> {
  const seen = new Map<string, { resourceType: string; name: string }>();
  for (const entry of ROUTE_TABLE) {
    const name = /\/\$([a-z][a-z-]*)$/.exec(entry.path)?.[1];
    const resourceType = resourceTypeOf(entry);
    if (name !== undefined && resourceType !== undefined) seen.set(`${resourceType}/${name}`, { resourceType, name });
  }
  return [...seen.values()];
}
