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

const isPublic = { kind: 'public' } as const;
const operator = { kind: 'roles', roles: ['operator'] } as const;
const coordinator = (resourceType: string, interaction: Interaction): Access => ({
  kind: 'roles',
  roles: ['coordinator'],
  scope: { resourceType, interaction },
});

/** One row per method for a path answered by GET and by POST alike (an operation: https://hl7.org/fhir/R4/operations.html#executing). */
const byGetAndPost = (entry: Omit<RouteEntry, 'method'>): RouteEntry[] =>
  (['GET', 'POST'] as const).map((method) => ({ method, ...entry }));

/**
 * Order matters: the first row that matches answers (Express and findRoute agree), so a literal
 * path comes before the generic `/fhir/:type...` row it would otherwise fall into.
 */
export const ROUTE_TABLE: readonly RouteEntry[] = [
  { method: 'GET', path: '/healthz', handler: 'liveness', access: isPublic, summary: 'liveness' },
  { method: 'GET', path: '/readyz', handler: 'readiness', access: isPublic, summary: 'readiness' },
  { method: 'GET', path: '/openapi.json', handler: 'openApiDocument', access: isPublic, summary: 'the API description' },
  { method: 'GET', path: '/api-docs', handler: 'apiDocsPage', access: isPublic, summary: 'the API reference page' },
  { method: 'GET', path: '/api-docs/:file', handler: 'apiDocsFile', access: isPublic, summary: "the reference page's files" },
  {
    method: 'GET',
    path: '/console',
    handler: 'consoleEntry',
    access: isPublic,
    summary: "the console's page (its data comes from the API, with the person's token)",
  },
  {
    method: 'GET',
    path: '/console/config.json',
    handler: 'consoleConfig',
    access: isPublic,
    summary:
      "the console's settings: the API's paths, and where people sign in (the identity provider's issuer and the console's client id)",
  },
  { method: 'GET', path: '/console/*rest', handler: 'consolePage', access: isPublic, summary: "the console's files and pages" },
  { method: 'GET', path: '/.well-known/smart-configuration', handler: 'smartConfiguration', access: isPublic, summary: 'SMART discovery' },
  {
    method: 'GET',
    path: '/fhir/.well-known/smart-configuration',
    handler: 'smartConfiguration',
    access: isPublic,
    summary: 'SMART discovery',
  },
  { method: 'GET', path: '/oauth/jwks', handler: 'publicKeys', access: isPublic, summary: "the gateway's public keys" },
  {
    method: 'POST',
    path: '/oauth/token',
    handler: 'issueToken',
    access: isPublic,
    summary: 'the token endpoint (client credentials, private_key_jwt)',
  },
  // DEMO ONLY, absent in production: the embedded OpenID provider's pages and endpoints (src/auth/demo-identity-provider.ts).
  ...byGetAndPost({
    path: '/demo-idp/*rest',
    handler: 'demoIdentityProvider',
    access: isPublic,
    summary: 'DEMO ONLY: the demo identity provider (discovery, authorization, keys, token endpoint, its sign-in page and form)',
  }),
  { method: 'GET', path: '/fhir/metadata', handler: 'capabilityStatement', access: isPublic, summary: 'the CapabilityStatement' },
  ...CONFORMANCE.flatMap((type): RouteEntry[] => [
    { method: 'GET', path: `/fhir/${type}`, handler: 'searchConformance', access: isPublic, summary: `published ${type} resources` },
    { method: 'GET', path: `/fhir/${type}/:id`, handler: 'readConformance', access: isPublic, summary: `a published ${type}` },
  ]),
  { method: 'GET', path: '/cds-services', handler: 'cdsDiscovery', access: isPublic, summary: 'CDS Hooks discovery' },
  {
    method: 'POST',
    path: '/cds-services/:id',
    handler: 'cdsHook',
    access: isPublic,
    summary: 'a CDS Hooks call from an EHR; its own JWT is checked by the CDS Hooks routes (docs/security.md)',
  },
  {
    method: 'POST',
    path: '/cds-services/:id/feedback',
    handler: 'cdsFeedback',
    access: isPublic,
    summary: 'CDS Hooks feedback; its own JWT is checked by the CDS Hooks routes',
  },

  { method: 'GET', path: '/admin/outbox', handler: 'listOutbox', access: operator, summary: 'the outbox and dead letters' },
  { method: 'GET', path: '/admin/outbox/:id', handler: 'readOutboxMessage', access: operator, summary: 'one outbox message' },
  { method: 'POST', path: '/admin/outbox/:id/retry', handler: 'retryOutboxMessage', access: operator, summary: 'retry a dead letter' },
  { method: 'GET', path: '/admin/connections', handler: 'connectionHealth', access: operator, summary: 'connection health' },

  {
    method: 'POST',
    path: '/subscription-notifications/:tenant',
    handler: 'receiveSubscriptionNotification',
    access: { kind: 'roles', roles: ['ehr'] },
    ownedBy: { parameter: 'tenant', claim: 'tenant' },
    orHeaderSecret: 'x-subscription-secret',
    summary: "an EHR's Subscription notification, for its own tenant only",
  },
  {
    method: 'POST',
    path: '/payer-notifications/:payer',
    handler: 'receivePayerNotification',
    access: { kind: 'roles', roles: ['payer'] },
    ownedBy: { parameter: 'payer', claim: 'payer' },
    summary: "a payer's decision notification, for its own requests only",
  },

  ...byGetAndPost({
    path: '/fhir/Task/$network-metrics',
    handler: 'networkMetrics',
    access: { kind: 'roles', roles: ['coordinator', 'operator'], scope: { resourceType: 'Task', interaction: 's' } },
    summary: "the network's picture",
  }),
  {
    method: 'POST',
    path: '/fhir/Task/:id/$confirm-site',
    handler: 'confirmSite',
    access: coordinator('Task', 'u'),
    summary: "a coordinator confirms a held referral's site",
  },
  {
    method: 'POST',
    path: '/fhir/Task/:id/$record-verification',
    handler: 'recordVerification',
    access: coordinator('Task', 'u'),
    summary: 'a coordinator records a coverage verification done by phone',
  },
  {
    method: 'POST',
    path: '/fhir/Task/:id/$submit-prior-auth',
    handler: 'submitPriorAuth',
    access: coordinator('Task', 'u'),
    summary: 'a coordinator submits the prior authorization',
  },
  {
    method: 'GET',
    path: '/fhir/Appointment/$find',
    handler: 'findAppointments',
    access: coordinator('Appointment', 's'),
    summary: 'slots for a cleared referral',
  },
  {
    method: 'POST',
    path: '/fhir/Appointment/$find',
    handler: 'findAppointments',
    access: coordinator('Appointment', 's'),
    summary: 'slots for a cleared referral',
  },
  {
    method: 'POST',
    path: '/fhir/Appointment/$hold',
    handler: 'holdAppointment',
    access: coordinator('Appointment', 'c'),
    summary: 'hold a chair',
  },
  {
    method: 'POST',
    path: '/fhir/Appointment/$book',
    handler: 'bookAppointment',
    access: coordinator('Appointment', 'c'),
    summary: 'book a chair',
  },
  {
    method: 'POST',
    path: '/fhir/$validate',
    handler: 'validate',
    access: { kind: 'roles', roles: ALL_ROLES },
    summary: 'validate any resource (nothing stored)',
  },
  {
    method: 'POST',
    path: '/fhir/:type/$validate',
    handler: 'validate',
    access: { kind: 'roles', roles: ALL_ROLES },
    summary: 'validate a resource of this type (nothing stored)',
  },
  {
    method: 'POST',
    path: '/fhir',
    handler: 'transaction',
    access: { kind: 'roles', roles: ['ehr'], scope: { resourceType: 'ServiceRequest', interaction: 'c' } },
    summary: "an EHR's transaction Bundle (a referral with its Patient, Coverage ...)",
  },

  // The gateway's own records: a client's write is a request to a use case, not a plain write.
  {
    method: 'POST',
    path: '/fhir/Appointment',
    handler: 'requestAppointment',
    access: { kind: 'fhir', interaction: 'c' },
    summary: 'a booking request (no walk-ins: refused with why and the next slots)',
  },
  {
    method: 'PUT',
    path: '/fhir/Appointment/:id',
    handler: 'updateAppointment',
    access: { kind: 'fhir', interaction: 'u' },
    summary: 'cancel, reschedule or record the visit',
  },
  {
    method: 'PUT',
    path: '/fhir/Task/:id',
    handler: 'updateReferralTask',
    access: { kind: 'fhir', interaction: 'u' },
    summary: "a coordinator's decision on a referral or appeal Task",
  },

  {
    method: 'GET',
    path: '/fhir/AuditEvent',
    handler: 'searchAuditEvents',
    access: { kind: 'roles', roles: ['operator'], scope: { resourceType: 'AuditEvent', interaction: 's' } },
    summary: 'the audit trail (agent, entity, date): docs/audit.md',
  },
  {
    method: 'GET',
    path: '/fhir/AuditEvent/:id',
    handler: 'readAuditEvent',
    access: { kind: 'roles', roles: ['operator'], scope: { resourceType: 'AuditEvent', interaction: 'r' } },
    summary: 'one AuditEvent',
  },

  { method: 'GET', path: '/fhir/:type', handler: 'search', access: { kind: 'fhir', interaction: 's' }, summary: 'search' },
  { method: 'POST', path: '/fhir/:type', handler: 'create', access: { kind: 'fhir', interaction: 'c' }, summary: 'create' },
  { method: 'GET', path: '/fhir/:type/:id', handler: 'read', access: { kind: 'fhir', interaction: 'r' }, summary: 'read' },
  { method: 'PUT', path: '/fhir/:type/:id', handler: 'update', access: { kind: 'fhir', interaction: 'u' }, summary: 'update' },
  { method: 'GET', path: '/fhir/:type/:id/_history', handler: 'history', access: { kind: 'fhir', interaction: 'r' }, summary: 'history' },
  {
    method: 'GET',
    path: '/fhir/:type/:id/_history/:versionId',
    handler: 'vread',
    access: { kind: 'fhir', interaction: 'r' },
    summary: 'one version',
  },
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
