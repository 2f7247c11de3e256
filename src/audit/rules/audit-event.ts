/**
 * An audit record as a FHIR R4 AuditEvent, in the shape of IHE Basic Audit Log Patterns
 * (https://profiles.ihe.net/ITI/BALP/ ; https://hl7.org/fhir/R4/auditevent.html). Pure: the
 * record holds references and parameter names only, so nothing here can carry PHI.
 * docs/audit.md maps every element.
 */
import type { AuditEvent, AuditEventEntity } from 'fhir/r4.js';
import type { AuditRecord } from '../../ports/audit-trail.js';

const GATEWAY = 'infusion-gateway';
const GATEWAY_SYSTEM = 'https://fhir.infusion-gateway.example';
/** Where client ids live: the gateway's client registry (docs/security.md). */
export const CLIENT_ID_SYSTEM = `${GATEWAY_SYSTEM}/client-id`;
const OPERATION_SYSTEM = `${GATEWAY_SYSTEM}/CodeSystem/audit-operation`;
const TENANT_EXTENSION = `${GATEWAY_SYSTEM}/StructureDefinition/audit-tenant`;
const DCM = 'http://dicom.nema.org/resources/ontology/DCM';
const ENTITY_TYPE = 'http://terminology.hl7.org/CodeSystem/audit-entity-type';
const OBJECT_ROLE = 'http://terminology.hl7.org/CodeSystem/object-role';

/** The query as BALP records it (entity.query), with parameter names and no values. */
export function queryText(query: NonNullable<AuditRecord['query']>): string {
  return query.parameterNames.length === 0 ? query.resourceType : `${query.resourceType}?${query.parameterNames.join('&')}`;
}

function entityOf(reference: string): AuditEventEntity {
  const patient = reference.startsWith('Patient/');
  return {
    what: { reference },
    // BALP: the Patient as a Person in the role Patient; everything else a System Object.
    type: patient ? { system: ENTITY_TYPE, code: '1', display: 'Person' } : { system: ENTITY_TYPE, code: '2', display: 'System Object' },
    ...(patient ? { role: { system: OBJECT_ROLE, code: '1', display: 'Patient' } } : {}),
  };
}

export function toAuditEvent(record: AuditRecord): AuditEvent {
  const restful = record.subtype !== 'job';
  const entity: AuditEventEntity[] = record.entities.map(entityOf);
  if (record.query) {
    entity.push({
      type: { system: ENTITY_TYPE, code: '2', display: 'System Object' },
      role: { system: OBJECT_ROLE, code: '24', display: 'Query' },
      // BALP Query: the query as sent, base64. Here its resource type and parameter names only.
      query: Buffer.from(queryText(record.query), 'utf8').toString('base64'),
      description: queryText(record.query),
    });
  }
  return {
    resourceType: 'AuditEvent',
    id: record.id,
    meta: { lastUpdated: record.recorded.toISOString() },
    type: restful
      ? { system: 'http://terminology.hl7.org/CodeSystem/audit-event-type', code: 'rest', display: 'RESTful Operation' }
      : { system: DCM, code: '110100', display: 'Application Activity' },
    subtype: [
      ...(restful ? [{ system: 'http://hl7.org/fhir/restful-interaction', code: record.subtype }] : []),
      ...(record.operation !== undefined ? [{ system: OPERATION_SYSTEM, code: record.operation }] : []),
    ],
    action: record.action,
    recorded: record.recorded.toISOString(),
    outcome: String(record.outcome) as AuditEvent['outcome'],
    ...(record.outcomeDescription !== undefined ? { outcomeDesc: record.outcomeDescription } : {}),
    agent: [
      {
        type: { coding: [{ system: DCM, code: '110153', display: 'Source Role ID' }] },
        who: { identifier: { system: CLIENT_ID_SYSTEM, value: record.agent.who } },
        role: [{ coding: [{ system: `${GATEWAY_SYSTEM}/CodeSystem/client-role`, code: record.agent.role }] }],
        requestor: true,
        ...(record.agent.tenant !== undefined ? { extension: [{ url: TENANT_EXTENSION, valueString: record.agent.tenant }] } : {}),
      },
      {
        type: { coding: [{ system: DCM, code: '110152', display: 'Destination Role ID' }] },
        who: { display: GATEWAY },
        requestor: false,
      },
    ],
    source: {
      site: GATEWAY,
      observer: { display: GATEWAY },
      type: [{ system: 'http://terminology.hl7.org/CodeSystem/security-source-type', code: '4', display: 'Application Server' }],
    },
    ...(entity.length > 0 ? { entity } : {}),
  };
}
