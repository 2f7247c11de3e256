/**
 * `GET /fhir/AuditEvent` and `GET /fhir/AuditEvent/{id}`: the audit trail, for operators only
 * (the route table says so; docs/audit.md). Answered from the audit tables, not the resources tables.
 */
import { badRequest, notFound } from '../fhir/outcomes.js';
import type { AuditTrail } from '../ports/audit-trail.js';
import { parseAuditSearch, readAuditTrailEvent, searchAuditTrail } from '../audit/stories/search-audit-events.js';
import type { FhirHandler } from './fhir-exchange.js';

export function auditEventHandlers(trail: AuditTrail): { searchAuditEvents: FhirHandler; readAuditEvent: FhirHandler } {
  return {
    searchAuditEvents: async (request) => {
      const { search, issues } = parseAuditSearch(request.query);
      if (issues.length > 0) return { outcome: badRequest(issues) };
      return { status: 200, resource: await searchAuditTrail(trail, search, { baseUrl: request.baseUrl, query: request.query }) };
    },
    readAuditEvent: async (request) => {
      const id = request.params['id'] ?? '';
      const event = await readAuditTrailEvent(trail, id);
      return event === undefined ? { outcome: notFound('AuditEvent', id) } : { status: 200, resource: event };
    },
  };
}
