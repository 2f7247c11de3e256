/**
 * The routes outside the FHIR interactions, as the API description lists them. The FHIR API
 * itself is described from the CapabilityStatement.
 */
import type { PlainRoute } from './openapi.js';

export const PLAIN_ROUTES: readonly PlainRoute[] = [
  { method: 'get', path: '/healthz', summary: 'Liveness: the process answers', tag: 'Operations', roles: [] },
  { method: 'get', path: '/readyz', summary: 'Readiness: the database answers and its pool is not saturated (503 with Retry-After otherwise)', tag: 'Operations', roles: [] },
  { method: 'get', path: '/openapi.json', summary: 'This document', tag: 'Operations', roles: [] },
  { method: 'get', path: '/api-docs', summary: 'This document, rendered', tag: 'Operations', roles: [], responseType: 'text/html' },
  { method: 'get', path: '/.well-known/smart-configuration', summary: 'SMART Backend Services discovery', tag: 'Authentication', roles: [] },
  { method: 'get', path: '/fhir/.well-known/smart-configuration', summary: 'SMART Backend Services discovery', tag: 'Authentication', roles: [] },
  { method: 'get', path: '/oauth/jwks', summary: "The gateway's public signing keys", tag: 'Authentication', roles: [] },
  { method: 'post', path: '/oauth/token', summary: 'Access tokens: client_credentials with a private_key_jwt assertion', tag: 'Authentication', roles: [], requestBody: 'application/x-www-form-urlencoded' },
  { method: 'get', path: '/api-docs/:file', summary: "The reference page's files", tag: 'Operations', roles: [], responseType: 'application/octet-stream' },
  { method: 'get', path: '/console/*rest', summary: "The console's pages and files", tag: 'Console', roles: [], responseType: 'text/html' },
  { method: 'get', path: '/admin/outbox', summary: 'Messages to EHRs and payers by status (dead letters among them)', tag: 'Operators', roles: ['operator'] },
  { method: 'get', path: '/admin/outbox/:id', summary: 'One outbox message with the receiver\'s last OperationOutcome', tag: 'Operators', roles: ['operator'] },
  { method: 'post', path: '/admin/outbox/:id/retry', summary: 'Send a dead letter again', tag: 'Operators', roles: ['operator'] },
  { method: 'get', path: '/admin/connections', summary: 'Health of each EHR and payer connection', tag: 'Operators', roles: ['operator'] },
  { method: 'get', path: '/fhir/Task/$network-metrics', summary: "The network's picture as a MeasureReport", tag: 'FHIR: Task', roles: ['coordinator', 'operator'], responseType: 'application/fhir+json' },
  { method: 'post', path: '/subscription-notifications/:tenant', summary: "An EHR's Subscription notification (id-only or full resource) of a new or changed order", tag: 'Notifications', roles: ['ehr'], requestBody: 'application/fhir+json', responseType: 'application/fhir+json' },
  { method: 'post', path: '/payer-notifications/:payer', summary: "A payer's notification of a decided prior authorization (Da Vinci PAS)", tag: 'Notifications', roles: ['payer'], requestBody: 'application/fhir+json', responseType: 'application/fhir+json' },
  { method: 'get', path: '/cds-services', summary: 'CDS Hooks discovery', tag: 'CDS Hooks', roles: [] },
  { method: 'post', path: '/cds-services/:id', summary: 'The site check at order time (order-select, order-sign)', tag: 'CDS Hooks', roles: ['ehr'], requestBody: 'application/json' },
  { method: 'post', path: '/cds-services/:id/feedback', summary: 'Feedback on a card', tag: 'CDS Hooks', roles: ['ehr'], requestBody: 'application/json' },
  { method: 'get', path: '/console', summary: 'The coordinator console', tag: 'Console', roles: [], responseType: 'text/html' },
  { method: 'get', path: '/console/config.json', summary: "The console's settings", tag: 'Console', roles: [] },
];
