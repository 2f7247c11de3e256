/**
 * The CapabilityStatement (https://hl7.org/fhir/R4/capabilitystatement.html), generated from the
 * same tables the server runs on (the readable and writable types, the search-parameter table,
 * the loaded profiles, the route table's operations), so it cannot claim what the server does not do.
 */
import type { CapabilityStatement, CapabilityStatementRestResource } from 'fhir/r4.js';
import { searchParametersFor } from './search-parameters.js';

export interface CapabilityInput {
  softwareVersion: string;
  date: Date;
  readableTypes: readonly string[];
  writableTypes: readonly string[];
  /** Types served read-only from profiles/ (StructureDefinition, CodeSystem, ValueSet). */
  conformanceTypes: readonly string[];
  /**
   * The operations the server routes (src/http/route-table.ts), each with its OperationDefinition's
   * canonical URL: an operation is declared where the route table has a row for it, nowhere else.
   */
  operations: ReadonlyArray<{ resourceType?: string; name: string; definition: string }>;
  /** The profiles the server validates against, by the resource type they constrain. */
  profiles: ReadonlyArray<{ url: string; type: string }>;
  implementationUrl?: string;
  /**
   * SMART Backend Services (docs/security.md): the token endpoint's URL (absolute when
   * PUBLIC_BASE_URL is set); absent = AUTH=off.
   */
  smartTokenUrl?: string;
}

/**
 * rest.security per SMART App Launch 2 (https://hl7.org/fhir/smart-app-launch/conformance.html):
 * the SMART-on-FHIR service coding and the OAuth URIs extension naming the token endpoint.
 */
function smartSecurity(tokenUrl: string): NonNullable<CapabilityStatement['rest']>[number]['security'] {
  return {
    cors: false,
    service: [
      {
        coding: [{ system: 'http://terminology.hl7.org/CodeSystem/restful-security-service', code: 'SMART-on-FHIR' }],
        text: 'OAuth2 using SMART Backend Services (client_credentials, private_key_jwt)',
      },
    ],
    extension: [
      { url: 'http://fhir-registry.smarthealthit.org/StructureDefinition/oauth-uris', extension: [{ url: 'token', valueUri: tokenUrl }] },
    ],
    description:
      'Every request but metadata, conformance reads and .well-known needs a Bearer access token from the token endpoint; see .well-known/smart-configuration.',
  };
}

type RestResourceType = CapabilityStatementRestResource['type'];

const VALIDATE = { name: 'validate', definition: 'http://hl7.org/fhir/OperationDefinition/Resource-validate' };

/** What the CapabilityStatement says of an operation beside its definition, by name. */
const OPERATION_DOCUMENTATION: Record<string, string> = {
  'confirm-site':
    'A coordinator confirms the site of a referral held as misroute-suspected; the referral is re-routed and moves on to coverage.',
  'submit-prior-auth': 'A coordinator sends the prior authorization of a referral held in auth-required after reviewing its denial risks.',
  'record-verification':
    "A coordinator records a coverage verification done by phone (who, when, the payer's reference, the authorization if any, the outcome); the referral moves on exactly as after an electronic verification.",
  'network-metrics':
    "Read-only: the network's picture for a period (referrals, misroutes caught, days from order to first infusion, appeals won, no-shows) as a MeasureReport.",
};

/** The route table's operations on this type, in its order. */
function operationsOf(type: string, input: CapabilityInput): NonNullable<CapabilityStatementRestResource['operation']> {
  return input.operations
    .filter((operation) => operation.resourceType === type)
    .map(({ name, definition }) => ({
      name,
      definition,
      ...(OPERATION_DOCUMENTATION[name] !== undefined ? { documentation: OPERATION_DOCUMENTATION[name] } : {}),
    }));
}

function storedResource(type: string, input: CapabilityInput): CapabilityStatementRestResource {
  const writable = input.writableTypes.includes(type);
  const isReferral = type === 'ServiceRequest';
  const interaction: CapabilityStatementRestResource['interaction'] = [
    { code: 'read' },
    { code: 'vread' },
    { code: 'history-instance' },
    { code: 'search-type' },
  ];
  if (writable || isReferral) interaction.push({ code: 'create' });
  if (writable) interaction.push({ code: 'update' });
  const resource: CapabilityStatementRestResource = {
    type: type as RestResourceType,
    interaction,
    versioning: 'versioned-update',
    readHistory: true,
    updateCreate: writable,
    conditionalCreate: writable || isReferral,
    conditionalRead: 'not-supported',
    conditionalUpdate: false,
    conditionalDelete: 'not-supported',
    searchParam: searchParametersFor(type).map((p) => ({
      name: p.code,
      definition: p.definition,
      type: p.type,
      documentation: p.description,
    })),
  };
  const supportedProfile = input.profiles.filter((p) => p.type === type).map((p) => p.url);
  if (supportedProfile.length > 0) resource.supportedProfile = supportedProfile;
  if (isReferral) {
    resource.documentation =
      'Infusion referrals. Every created ServiceRequest is validated against the infusion-referral profile and tracked by a Task (GET Task?focus=ServiceRequest/{id}). Re-sending the same sender order number returns the original.';
    resource.operation = [
      {
        ...VALIDATE,
        documentation:
          'Validates exactly as intake does: base R4, the infusion-referral profile, the drug catalog and references. Nothing is stored.',
      },
    ];
  }
  if (type === 'Appointment') {
    interaction.push({ code: 'create' }, { code: 'update' });
    resource.operation = operationsOf('Appointment', input);
    resource.documentation =
      'Infusion appointments, booked only for cleared referrals (IHE ITI Scheduling style $find, $hold, $book). A create is a booking request (no walk-ins: refused with why and the next slots); an update cancels, reschedules (with the pharmacy lead time as notice) or records the visit.';
    return resource;
  }
  if (type === 'Task') {
    interaction.push({ code: 'update' });
    resource.operation = operationsOf('Task', input);
    resource.documentation =
      "Each referral's Task (placer/filler workflow) and its appeal Tasks. Written by the gateway; a client's update of a referral Task may only add a confirmed-location output (the same as $confirm-site); an appeal Task's steps, status and result are the coordinator's to set.";
    return resource;
  }
  if (!writable && !isReferral)
    resource.documentation = `${type} resources are written by the gateway itself; clients read and search them.`;
  return resource;
}

/** The audit trail (docs/audit.md): operators only, newest first, a keyset next link. */
const AUDIT_EVENT_RESOURCE: CapabilityStatementRestResource = {
  type: 'AuditEvent',
  profile: 'http://hl7.org/fhir/StructureDefinition/AuditEvent',
  interaction: [{ code: 'read' }, { code: 'search-type' }],
  searchParam: [
    {
      name: 'agent',
      type: 'reference',
      documentation: "The client id of the agent (the caller's token's sub), or infusion-gateway for background work",
    },
    { name: 'entity', type: 'reference', documentation: 'A resource acted on, as a relative reference (ServiceRequest/123)' },
    { name: 'date', type: 'date', documentation: 'When it was recorded; prefixes eq, ge, le, gt, lt; repeat for a range' },
  ],
  documentation:
    'The audit trail, in the shape of IHE Basic Audit Log Patterns: one AuditEvent per read, search, write and operation on PHI-bearing resources, with references and parameter names only (never values). Operators only; written by the gateway, never by clients. Results newest first; _count (at most 500) and a next link.',
};

export function buildCapabilityStatement(input: CapabilityInput): CapabilityStatement {
  const resources: CapabilityStatementRestResource[] = [
    ...input.readableTypes.map((type) => storedResource(type, input)),
    ...input.conformanceTypes.map((type) => ({
      type: type as RestResourceType,
      interaction: [{ code: 'read' as const }, { code: 'search-type' as const }],
      searchParam: [{ name: 'url', type: 'uri' as const, documentation: 'The canonical URL' }],
      documentation: `The ${type} resources this server publishes (read-only).`,
    })),
    AUDIT_EVENT_RESOURCE,
  ];
  return {
    resourceType: 'CapabilityStatement',
    status: 'active',
    date: input.date.toISOString(),
    kind: 'instance',
    software: { name: 'Infusion Referral Gateway', version: input.softwareVersion },
    implementation: {
      description: 'FHIR R4 gateway for infusion referrals: intake, validation and tracking',
      ...(input.implementationUrl ? { url: input.implementationUrl } : {}),
    },
    fhirVersion: '4.0.1',
    format: ['application/fhir+json', 'json'],
    patchFormat: [],
    implementationGuide: [],
    rest: [
      {
        mode: 'server',
        documentation:
          input.smartTokenUrl !== undefined
            ? 'JSON only (XML requests are answered 415/406). The tenant comes from the access token (SMART Backend Services); X-Tenant-Id is refused but for operators. The network directory is readable by every tenant. Prefer: return=minimal|representation|OperationOutcome and handling=strict|lenient are honoured.'
            : 'JSON only (XML requests are answered 415/406). AUTH=off (local development): clients name their tenant in the X-Tenant-Id header; the network directory is readable by every tenant. Prefer: return=minimal|representation|OperationOutcome and handling=strict|lenient are honoured.',
        ...(input.smartTokenUrl !== undefined ? { security: smartSecurity(input.smartTokenUrl) } : {}),
        resource: resources,
        interaction: [{ code: 'transaction' }, { code: 'batch' }],
        operation: [
          {
            ...VALIDATE,
            documentation: 'Validates any resource against base R4 and the profiles it claims or names in the profile parameter.',
          },
        ],
      },
    ],
  };
}
