/**
 * Every route the gateway answers, and who may call it: the one place that decides. The
 * authorization middleware (src/auth/authorize.ts) matches each request here first and refuses
 * whatever no entry names (deny by default); the authorization matrix test walks this table;
 * docs/security.md explains the roles.
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
import { DIRECTORY_TYPES } from '../use-cases/deps.js';
import { READABLE_TYPES, WRITABLE_TYPES } from '../use-cases/resource-interactions.js';

export type Access =
  | { kind: 'public' }
  | { kind: 'roles'; roles: readonly Role[]; scope?: { resourceType: string; interaction: Interaction } }
  | { kind: 'fhir'; interaction: Interaction }
  | { kind: 'authenticated' };

export interface RouteEntry {
  method: 'GET' | 'POST' | 'PUT';
  /** Express (path-to-regexp 8) syntax. */
  path: string;
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
  payer: {
    Coverage: ['r', 's'],
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

export const ROUTE_TABLE: readonly RouteEntry[] = [
  { method: 'GET', path: '/healthz', access: isPublic, summary: 'liveness' },
  { method: 'GET', path: '/readyz', access: isPublic, summary: 'readiness' },
  { method: 'GET', path: '/openapi.json', access: isPublic, summary: 'the API description' },
  { method: 'GET', path: '/api-docs', access: isPublic, summary: 'the API reference page' },
  { method: 'GET', path: '/api-docs/:file', access: isPublic, summary: "the reference page's files" },
  { method: 'GET', path: '/console', access: isPublic, summary: "the console's page (its data comes from the API, with the person's token)" },
  { method: 'GET', path: '/console/config.json', access: isPublic, summary: "the console's settings: the API's paths, and where people sign in (the identity provider's issuer and the console's client id)" },
  { method: 'GET', path: '/console/*rest', access: isPublic, summary: "the console's files and pages" },
  { method: 'GET', path: '/.well-known/smart-configuration', access: isPublic, summary: 'SMART discovery' },
  { method: 'GET', path: '/fhir/.well-known/smart-configuration', access: isPublic, summary: 'SMART discovery' },
  { method: 'GET', path: '/oauth/jwks', access: isPublic, summary: "the gateway's public keys" },
  { method: 'POST', path: '/oauth/token', access: isPublic, summary: 'the token endpoint (client credentials, private_key_jwt)' },
  // DEMO ONLY, absent in production: the embedded OpenID provider's pages and endpoints (src/auth/demo-identity-provider.ts).
  { method: 'GET', path: '/demo-idp/*rest', access: isPublic, summary: 'DEMO ONLY: the demo identity provider (discovery, authorization, keys, its sign-in page)' },
  { method: 'POST', path: '/demo-idp/*rest', access: isPublic, summary: 'DEMO ONLY: the demo identity provider (token endpoint, the sign-in form)' },
  { method: 'GET', path: '/fhir/metadata', access: isPublic, summary: 'the CapabilityStatement' },
  ...CONFORMANCE.flatMap((type): RouteEntry[] => [
    { method: 'GET', path: `/fhir/${type}`, access: isPublic, summary: `published ${type} resources` },
    { method: 'GET', path: `/fhir/${type}/:id`, access: isPublic, summary: `a published ${type}` },
  ]),
  { method: 'GET', path: '/cds-services', access: isPublic, summary: 'CDS Hooks discovery' },
  { method: 'POST', path: '/cds-services/:id', access: isPublic, summary: 'a CDS Hooks call from an EHR; its own JWT is checked by the CDS Hooks routes (docs/security.md)' },
  { method: 'POST', path: '/cds-services/:id/feedback', access: isPublic, summary: 'CDS Hooks feedback; its own JWT is checked by the CDS Hooks routes' },

  { method: 'GET', path: '/admin/outbox', access: { kind: 'roles', roles: ['operator'] }, summary: 'the outbox and dead letters' },
  { method: 'GET', path: '/admin/outbox/:id', access: { kind: 'roles', roles: ['operator'] }, summary: 'one outbox message' },
  { method: 'POST', path: '/admin/outbox/:id/retry', access: { kind: 'roles', roles: ['operator'] }, summary: 'retry a dead letter' },
  { method: 'GET', path: '/admin/connections', access: { kind: 'roles', roles: ['operator'] }, summary: 'connection health' },

  {
    method: 'POST',
    path: '/subscription-notifications/:tenant',
    access: { kind: 'roles', roles: ['ehr'] },
    ownedBy: { parameter: 'tenant', claim: 'tenant' },
    orHeaderSecret: 'x-subscription-secret',
    summary: "an EHR's Subscription notification, for its own tenant only",
  },
  {
    method: 'POST',
    path: '/payer-notifications/:payer',
    access: { kind: 'roles', roles: ['payer'] },
    ownedBy: { parameter: 'payer', claim: 'payer' },
    summary: "a payer's decision notification, for its own requests only",
  },

  { method: 'GET', path: '/fhir/Task/$network-metrics', access: { kind: 'roles', roles: ['coordinator', 'operator'], scope: { resourceType: 'Task', interaction: 's' } }, summary: "the network's picture" },
  { method: 'POST', path: '/fhir/Task/$network-metrics', access: { kind: 'roles', roles: ['coordinator', 'operator'], scope: { resourceType: 'Task', interaction: 's' } }, summary: "the network's picture" },
  { method: 'POST', path: '/fhir/Task/:id/$confirm-site', access: { kind: 'roles', roles: ['coordinator'], scope: { resourceType: 'Task', interaction: 'u' } }, summary: "a coordinator confirms a held referral's site" },
  { method: 'POST', path: '/fhir/Task/:id/$record-verification', access: { kind: 'roles', roles: ['coordinator'], scope: { resourceType: 'Task', interaction: 'u' } }, summary: 'a coordinator records a coverage verification done by phone' },
  { method: 'POST', path: '/fhir/Task/:id/$submit-prior-auth', access: { kind: 'roles', roles: ['coordinator'], scope: { resourceType: 'Task', interaction: 'u' } }, summary: 'a coordinator submits the prior authorization' },
  { method: 'GET', path: '/fhir/Appointment/$find', access: { kind: 'roles', roles: ['coordinator'], scope: { resourceType: 'Appointment', interaction: 's' } }, summary: 'slots for a cleared referral' },
  { method: 'POST', path: '/fhir/Appointment/$find', access: { kind: 'roles', roles: ['coordinator'], scope: { resourceType: 'Appointment', interaction: 's' } }, summary: 'slots for a cleared referral' },
  { method: 'POST', path: '/fhir/Appointment/$hold', access: { kind: 'roles', roles: ['coordinator'], scope: { resourceType: 'Appointment', interaction: 'c' } }, summary: 'hold a chair' },
  { method: 'POST', path: '/fhir/Appointment/$book', access: { kind: 'roles', roles: ['coordinator'], scope: { resourceType: 'Appointment', interaction: 'c' } }, summary: 'book a chair' },
  { method: 'POST', path: '/fhir/$validate', access: { kind: 'roles', roles: ALL_ROLES }, summary: 'validate any resource (nothing stored)' },
  { method: 'POST', path: '/fhir/:type/$validate', access: { kind: 'roles', roles: ALL_ROLES }, summary: 'validate a resource of this type (nothing stored)' },
  { method: 'POST', path: '/fhir', access: { kind: 'roles', roles: ['ehr'], scope: { resourceType: 'ServiceRequest', interaction: 'c' } }, summary: "an EHR's transaction Bundle (a referral with its Patient, Coverage ...)" },

  { method: 'GET', path: '/fhir/:type', access: { kind: 'fhir', interaction: 's' }, summary: 'search' },
  { method: 'POST', path: '/fhir/:type', access: { kind: 'fhir', interaction: 'c' }, summary: 'create' },
  { method: 'GET', path: '/fhir/:type/:id', access: { kind: 'fhir', interaction: 'r' }, summary: 'read' },
  { method: 'PUT', path: '/fhir/:type/:id', access: { kind: 'fhir', interaction: 'u' }, summary: 'update' },
  { method: 'GET', path: '/fhir/:type/:id/_history', access: { kind: 'fhir', interaction: 'r' }, summary: 'history' },
  { method: 'GET', path: '/fhir/:type/:id/_history/:versionId', access: { kind: 'fhir', interaction: 'r' }, summary: 'one version' },
];

const matchers = ROUTE_TABLE.map((entry) => ({ entry, test: match<Record<string, string | string[]>>(entry.path, { decode: false }) }));

/** The first entry for this method and path, with its path parameters. */
export function findRoute(method: string, path: string): { entry: RouteEntry; params: Record<string, string> } | undefined {
  const normalized = method === 'HEAD' ? 'GET' : method;
  for (const { entry, test } of matchers) {
    if (entry.method !== normalized) continue;
    const found = test(path);
    if (found) {
      const params = Object.fromEntries(Object.entries(found.params).map(([k, v]) => [k, Array.isArray(v) ? v.join('/') : v]));
      return { entry, params };
    }
  }
  return undefined;
}
