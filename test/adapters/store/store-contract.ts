/**
 * The storage contract: one suite, run against every engine (sqlite-store.test.ts,
 * postgres-store.test.ts). Each engine supplies fresh, empty databases.
 */
import type {
  Appointment,
  OperationOutcome,
  Coverage,
  Endpoint,
  HealthcareService,
  InsurancePlan,
  Location,
  Organization,
  OrganizationAffiliation,
  Patient,
  Practitioner,
  PractitionerRole,
  Resource,
  ServiceRequest,
  Task,
} from 'fhir/r4.js';
import { expect } from 'chai';
import { OperationOutcomeError } from '../../../src/fhir/outcomes.js';
import { randomUUID } from 'node:crypto';
import type {
  NewOutboxMessage,
  NewReferral,
  OutboxMessage,
  ReferralRow,
  ResourceStore,
  SearchRequest,
} from '../../../src/ports/resource-store.js';
import { runAudited, type AuditContext } from '../../../src/ports/audit-trail.js';
import type { SearchCriterion } from '../../../src/fhir/search-parameters.js';

export interface StoreTestDatabase {
  /** Opens a store over this database; may be called again to reopen it. */
  open(): Promise<ResourceStore>;
  /**
   * Resolves once `count` connections of the store wait on a lock. Only where writers really run
   * side by side (PostgreSQL); SQLite serialises transactions on one connection.
   */
  waitForLockWaiters?(count: number): Promise<void>;
  /**
   * Whether several stores may work on this database at once, as several gateway processes do
   * (PostgreSQL). The embedded SQLite store serves one process.
   */
  severalStores?: boolean;
  /** Removes the database (schema, temp file). */
  drop(): Promise<void>;
}

const A = 'tenant-a';
const B = 'tenant-b';

const RXNORM = 'http://www.nlm.nih.gov/research/umls/rxnorm';
const HCPCS = 'http://www.cms.gov/Medicare/Coding/HCPCSReleaseCodeSets';
const NPI = 'http://hl7.org/fhir/sid/us-npi';
const ORDERS = 'urn:example:ehr-a:orders';
const REFERRAL_STATUS = 'https://fhir.infusion-gateway.example/CodeSystem/referral-status';

const T0 = new Date('2026-11-03T15:00:00.000Z');
const minutesAfter = (minutes: number, from = T0): Date => new Date(from.getTime() + minutes * 60_000);

/** Awaits a promise that must reject, and returns what it rejected with. */
async function rejectionOf(promise: Promise<unknown>): Promise<unknown> {
  try {
    await promise;
  } catch (error) {
    return error;
  }
  throw new Error('expected the promise to reject, but it resolved');
}

async function outcomeErrorOf(promise: Promise<unknown>): Promise<OperationOutcomeError> {
  const error = await rejectionOf(promise);
  expect(error).to.be.instanceOf(OperationOutcomeError);
  return error as OperationOutcomeError;
}

/** Splits on commas not escaped with a backslash, as the HTTP layer does before calling the store. */
function splitValues(value: string): string[] {
  return value.split(/(?<!\\),/);
}

/** `family:exact=Núñez&birthdate=ge1980` into criteria (values already URL-decoded). */
function criteriaOf(query: string): SearchCriterion[] {
  if (query === '') return [];
  return query.split('&').map((pair) => {
    const eq = pair.indexOf('=');
    const key = pair.slice(0, eq);
    const value = pair.slice(eq + 1);
    const [name = '', modifier] = key.split(':');
    return modifier === undefined ? { name, values: splitValues(value) } : { name, modifier, values: splitValues(value) };
  });
}

function searchOf(
  resourceType: string,
  query: string,
  tenants: readonly string[] = [A],
  extra: Partial<SearchRequest> = {},
): SearchRequest {
  return { resourceType, tenants, criteria: criteriaOf(query), count: 100, offset: 0, ...extra };
}

async function idsFound(store: ResourceStore, resourceType: string, query: string, tenants: readonly string[] = [A]): Promise<string[]> {
  const result = await store.search(searchOf(resourceType, query, tenants));
  return result.resources.map((r) => r.id!).sort();
}

function referralRow(id: string, overrides: Partial<ReferralRow> = {}): Omit<ReferralRow, 'createdAt' | 'updatedAt'> {
  return {
    tenant: A,
    id,
    identifierSystem: ORDERS,
    identifierValue: 'ORD-1',
    serviceRequestId: `sr-${id}`,
    taskId: `task-${id}`,
    status: 'received',
    referral: { drug: 'infliximab', claimedBy: id },
    ...overrides,
  };
}

function patient(id: string | undefined, family: string, extra: Partial<Patient> = {}): Patient {
  return { resourceType: 'Patient', ...(id === undefined ? {} : { id }), name: [{ family, given: ['Test'] }], ...extra };
}

// ---------------------------------------------------------------------------------------------
// Outbox helpers
// ---------------------------------------------------------------------------------------------

/** Long enough never to run out inside a test unless the test moves `now` past it. */
const LEASE_MS = 60_000;

function outboxMessage(id: string, orderingKey: string, extra: Partial<NewOutboxMessage> = {}): NewOutboxMessage {
  return {
    id,
    tenant: A,
    orderingKey,
    kind: 'ehr-upsert',
    payload: { resource: { resourceType: 'Appointment', id: `appt-${id}`, status: 'booked' }, note: 'ünïcode ✓' },
    ...extra,
  };
}

async function enqueueEach(store: ResourceStore, messages: readonly NewOutboxMessage[], now = T0): Promise<void> {
  for (const message of messages) await store.transaction((tx) => tx.enqueue(message, now));
}

async function claimIds(store: ResourceStore, now = T0, limit = 100): Promise<string[]> {
  return (await store.claimDueMessages(now, { limit, leaseMs: LEASE_MS })).map((m) => m.id);
}

function failureOutcome(code: 'processing' | 'transient', diagnostics: string): OperationOutcome {
  return {
    resourceType: 'OperationOutcome',
    issue: [{ severity: 'error', code, diagnostics, expression: ['Appointment.participant[0].actor'] }],
  };
}

/** Resolves after the event loop has run other ready work (lets concurrent workers interleave). */
const yieldToOthers = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

// ---------------------------------------------------------------------------------------------
// The search data set: realistic resources of every searchable type, in tenant A (and a few
// look-alikes in tenant B), each param exercised by at least one case below.
// ---------------------------------------------------------------------------------------------

const patients: Patient[] = [
  {
    resourceType: 'Patient',
    id: 'p1',
    identifier: [{ system: 'urn:example:ehr-a:mrn', value: 'MRN-1' }],
    name: [{ family: 'Núñez', given: ['María', 'José'], prefix: ['Ms.'] }],
    gender: 'female',
    birthDate: '1980-05-17',
  },
  {
    resourceType: 'Patient',
    id: 'p2',
    identifier: [{ system: 'urn:example:ehr-b:mrn', value: 'MRN-2' }],
    name: [{ family: 'Nunnally', given: ['Chris'] }],
    gender: 'male',
    birthDate: '1979-12-31',
  },
  { resourceType: 'Patient', id: 'p3', name: [{ family: 'Smith', given: ['Anna'] }], gender: 'female', birthDate: '1980' },
  { resourceType: 'Patient', id: 'p4', name: [{ family: 'O_Hara', given: ['Liam'] }], gender: 'male', birthDate: '1990-01-01' },
  { resourceType: 'Patient', id: 'p5', name: [{ family: 'Oxley', given: ['Ruth'] }], gender: 'other' },
];

const serviceRequests: ServiceRequest[] = [
  {
    resourceType: 'ServiceRequest',
    id: 'sr1',
    identifier: [{ system: ORDERS, value: 'ORD-1' }],
    status: 'active',
    intent: 'order',
    code: {
      coding: [
        { system: RXNORM, code: '191831', display: 'infliximab' },
        { system: HCPCS, code: 'J1745' },
      ],
    },
    subject: { reference: 'Patient/p1' },
    requester: { reference: 'Practitioner/dr1' },
    performer: [{ reference: 'Organization/site1' }],
    authoredOn: '2026-11-01T09:30:00-05:00',
  },
  {
    resourceType: 'ServiceRequest',
    id: 'sr2',
    identifier: [
      { system: ORDERS, value: 'ORD-2' },
      { system: ORDERS, value: 'A|B,C' },
    ],
    status: 'draft',
    intent: 'order',
    code: { coding: [{ system: RXNORM, code: '1876366', display: 'ocrelizumab' }] },
    subject: { reference: 'Patient/p2' },
    requester: { reference: 'PractitionerRole/role1' },
    authoredOn: '2026-10-15',
  },
  {
    resourceType: 'ServiceRequest',
    id: 'sr3',
    status: 'active',
    intent: 'original-order',
    code: { coding: [{ code: 'J1459' }] },
    subject: { reference: 'https://ehr.example/fhir/Patient/p1' },
    requester: { reference: 'Practitioner/dr2' },
    authoredOn: '2025-12-31T23:30:00Z',
  },
  {
    resourceType: 'ServiceRequest',
    id: 'sr4',
    status: 'revoked',
    intent: 'order',
    code: { text: 'IVIG, brand to be decided' },
    subject: { reference: 'Group/g1' },
  },
];

const tasks: Task[] = [
  {
    resourceType: 'Task',
    id: 'task1',
    identifier: [{ system: 'urn:example:gateway:task', value: 'T-1' }],
    status: 'requested',
    intent: 'order',
    businessStatus: { coding: [{ system: REFERRAL_STATUS, code: 'received' }] },
    code: { coding: [{ system: 'http://hl7.org/fhir/CodeSystem/task-code', code: 'fulfill' }] },
    focus: { reference: 'ServiceRequest/sr1' },
    for: { reference: 'Patient/p1' },
    owner: { reference: 'Organization/site1' },
    basedOn: [{ reference: 'ServiceRequest/sr1' }],
    authoredOn: '2026-11-01T10:00:00Z',
    lastModified: '2026-11-02T08:00:00Z',
  },
  {
    resourceType: 'Task',
    id: 'task2',
    status: 'rejected',
    intent: 'order',
    businessStatus: { coding: [{ system: REFERRAL_STATUS, code: 'rejected' }] },
    code: { coding: [{ system: 'http://hl7.org/fhir/CodeSystem/task-code', code: 'fulfill' }] },
    focus: { reference: 'ServiceRequest/sr2' },
    for: { reference: 'Group/g1' },
    partOf: [{ reference: 'Task/task1' }],
    authoredOn: '2026-10-16T12:00:00Z',
    lastModified: '2026-10-16T12:30:00Z',
  },
];

const appointments: Appointment[] = [
  {
    resourceType: 'Appointment',
    id: 'appt1',
    identifier: [{ system: 'urn:example:gateway:appointment', value: 'APPT-1' }],
    status: 'booked',
    start: '2026-11-10T14:00:00Z',
    end: '2026-11-10T17:00:00Z',
    basedOn: [{ reference: 'ServiceRequest/sr1' }],
    participant: [
      { actor: { reference: 'Patient/p1' }, status: 'accepted' },
      { actor: { reference: 'Location/loc1' }, status: 'accepted' },
      { actor: { reference: 'Practitioner/dr1' }, status: 'tentative' },
    ],
  },
  {
    resourceType: 'Appointment',
    id: 'appt2',
    status: 'cancelled',
    start: '2026-12-01T09:00:00-06:00',
    participant: [{ actor: { reference: 'Patient/p2' }, status: 'declined' }],
  },
];

const coverages: Coverage[] = [
  {
    resourceType: 'Coverage',
    id: 'cov1',
    identifier: [{ system: 'urn:example:payer1:member', value: 'M-1001' }],
    status: 'active',
    type: { coding: [{ system: 'http://terminology.hl7.org/CodeSystem/v3-ActCode', code: 'HIP' }] },
    subscriber: { reference: 'RelatedPerson/rp1' },
    policyHolder: { reference: 'RelatedPerson/rp1' },
    beneficiary: { reference: 'Patient/p1' },
    payor: [{ reference: 'Organization/payer1' }],
  },
  {
    resourceType: 'Coverage',
    id: 'cov2',
    status: 'cancelled',
    beneficiary: { reference: 'Patient/p2' },
    subscriber: { reference: 'Patient/p2' },
    policyHolder: { reference: 'Organization/employer1' },
    payor: [{ reference: 'Organization/payer2' }],
  },
];

const practitioners: Practitioner[] = [
  {
    resourceType: 'Practitioner',
    id: 'dr1',
    identifier: [{ system: NPI, value: '1234567893' }],
    name: [{ family: 'Okafor', given: ['Adaeze'], prefix: ['Dr.'] }],
  },
];

const practitionerRoles: PractitionerRole[] = [
  {
    resourceType: 'PractitionerRole',
    id: 'role1',
    identifier: [{ system: 'urn:example:roles', value: 'R-1' }],
    practitioner: { reference: 'Practitioner/dr1' },
    organization: { reference: 'Organization/org1' },
    location: [{ reference: 'Location/loc1' }],
  },
];

const locations: Location[] = [
  {
    resourceType: 'Location',
    id: 'loc1',
    identifier: [{ system: 'urn:example:sites', value: 'SITE-1' }],
    status: 'active',
    name: 'Riverside Infusion Center',
    alias: ['RIC'],
    type: [{ coding: [{ system: 'http://terminology.hl7.org/CodeSystem/v3-RoleCode', code: 'OINF' }] }],
    address: { line: ['12 Main St'], city: 'Springfield', state: 'IL', postalCode: '62701' },
    managingOrganization: { reference: 'Organization/org1' },
    partOf: { reference: 'Location/campus1' },
  },
  {
    resourceType: 'Location',
    id: 'loc2',
    status: 'inactive',
    name: 'Lakeside Clinic',
    address: { line: ['400 Lake Shore Dr'], city: 'Chicago', state: 'IL', postalCode: '60601' },
  },
];

const healthcareServices: HealthcareService[] = [
  {
    resourceType: 'HealthcareService',
    id: 'hs1',
    identifier: [{ system: 'urn:example:services', value: 'HS-1' }],
    active: true,
    name: 'Infusion therapy',
    providedBy: { reference: 'Organization/org1' },
    category: [{ coding: [{ system: 'http://terminology.hl7.org/CodeSystem/service-category', code: '35' }] }],
    type: [{ coding: [{ system: 'http://terminology.hl7.org/CodeSystem/service-type', code: '124' }] }],
    location: [{ reference: 'Location/loc1' }],
  },
  { resourceType: 'HealthcareService', id: 'hs2', active: false, name: 'Home infusion', location: [{ reference: 'Location/loc2' }] },
];

const organizations: Organization[] = [
  {
    resourceType: 'Organization',
    id: 'org1',
    identifier: [{ system: NPI, value: '1144221847' }],
    active: true,
    type: [{ coding: [{ system: 'http://terminology.hl7.org/CodeSystem/organization-type', code: 'prov' }] }],
    name: 'Riverside Health',
    endpoint: [{ reference: 'Endpoint/ep1' }],
  },
  {
    resourceType: 'Organization',
    id: 'payer1',
    active: false,
    type: [{ coding: [{ system: 'http://terminology.hl7.org/CodeSystem/organization-type', code: 'pay' }] }],
    name: 'Acme Health Plan',
    alias: ['Acme'],
    partOf: { reference: 'Organization/acme-holdings' },
  },
];

const affiliations: OrganizationAffiliation[] = [
  {
    resourceType: 'OrganizationAffiliation',
    id: 'aff1',
    identifier: [{ system: 'urn:example:affiliations', value: 'AFF-1' }],
    active: true,
    organization: { reference: 'Organization/payer1' },
    participatingOrganization: { reference: 'Organization/org1' },
    network: [{ reference: 'Organization/net-gold' }],
    location: [{ reference: 'Location/loc1' }],
    healthcareService: [{ reference: 'HealthcareService/hs1' }],
  },
];

const insurancePlans: InsurancePlan[] = [
  {
    resourceType: 'InsurancePlan',
    id: 'plan1',
    identifier: [{ system: 'urn:example:plans', value: 'GOLD-PPO' }],
    status: 'active',
    type: [{ coding: [{ system: 'http://terminology.hl7.org/CodeSystem/insurance-plan-type', code: 'medical' }] }],
    name: 'Acme Gold PPO',
    ownedBy: { reference: 'Organization/payer1' },
    administeredBy: { reference: 'Organization/acme-tpa' },
    network: [{ reference: 'Organization/net-gold' }],
  },
];

const endpoints: Endpoint[] = [
  {
    resourceType: 'Endpoint',
    id: 'ep1',
    identifier: [{ system: 'urn:example:endpoints', value: 'EP-1' }],
    status: 'active',
    name: 'Acme prior-auth API',
    connectionType: { system: 'http://terminology.hl7.org/CodeSystem/endpoint-connection-type', code: 'hl7-fhir-rest' },
    payloadType: [{ text: 'FHIR' }],
    address: 'https://payer.example/fhir',
    managingOrganization: { reference: 'Organization/payer1' },
  },
];

const searchDataSet: Resource[] = [
  ...patients,
  ...serviceRequests,
  ...tasks,
  ...appointments,
  ...coverages,
  ...practitioners,
  ...practitionerRoles,
  ...locations,
  ...healthcareServices,
  ...organizations,
  ...affiliations,
  ...insurancePlans,
  ...endpoints,
];

/** [resourceType, query, ids expected in tenant A]: every supported parameter, every semantic. */
const SEARCH_CASES: ReadonlyArray<readonly [string, string, readonly string[]]> = [
  // _id and _lastUpdated (ServiceRequests were stored one minute apart from T0)
  ['ServiceRequest', '_id=sr1,sr3', ['sr1', 'sr3']],
  ['ServiceRequest', '_lastUpdated=2026-11-03', ['sr1', 'sr2', 'sr3', 'sr4']],
  ['ServiceRequest', '_lastUpdated=ge2026-11-03T15:01:00Z', ['sr2', 'sr3', 'sr4']],
  ['ServiceRequest', '_lastUpdated=lt2026-11-03T15:01:00Z', ['sr1']],
  ['ServiceRequest', '_lastUpdated=2026-11-03T10:02:00-05:00', ['sr3']],
  // tokens: system|code, code, |code, system|, OR, AND, :not, :missing, escaping
  ['ServiceRequest', `code=${RXNORM}|191831`, ['sr1']],
  ['ServiceRequest', 'code=191831', ['sr1']],
  ['ServiceRequest', 'code=|J1459', ['sr3']],
  ['ServiceRequest', 'code=|J1745', []],
  ['ServiceRequest', `code=${HCPCS}|`, ['sr1']],
  ['ServiceRequest', `code=${RXNORM}|J1745`, []],
  ['ServiceRequest', 'code=191831,1876366', ['sr1', 'sr2']],
  ['ServiceRequest', 'code=191831&code=J1745', ['sr1']],
  ['ServiceRequest', 'code=191831&code=1876366', []],
  ['ServiceRequest', 'code:missing=true', ['sr4']],
  ['ServiceRequest', 'code:missing=false', ['sr1', 'sr2', 'sr3']],
  ['ServiceRequest', 'status=active', ['sr1', 'sr3']],
  ['ServiceRequest', 'status=http://hl7.org/fhir/request-status|draft', ['sr2']],
  ['ServiceRequest', 'status:not=active', ['sr2', 'sr4']],
  ['ServiceRequest', 'status:not=active,draft', ['sr4']],
  ['ServiceRequest', 'intent=original-order', ['sr3']],
  ['ServiceRequest', `identifier=${ORDERS}|ORD-1`, ['sr1']],
  ['ServiceRequest', 'identifier=ORD-2', ['sr2']],
  ['ServiceRequest', `identifier=${ORDERS}|A\\|B\\,C`, ['sr2']],
  ['ServiceRequest', 'status=', ['sr1', 'sr2', 'sr3', 'sr4']],
  // references: Type/id, bare id, absolute URL (stored and searched), :Type, :missing
  ['ServiceRequest', 'patient=Patient/p1', ['sr1', 'sr3']],
  ['ServiceRequest', 'patient=p1', ['sr1', 'sr3']],
  ['ServiceRequest', 'patient=https://other.example/fhir/Patient/p1', ['sr1', 'sr3']],
  ['ServiceRequest', 'patient=Patient/p1/_history/3', ['sr1', 'sr3']],
  ['ServiceRequest', 'patient=g1', []],
  ['ServiceRequest', 'patient:missing=true', ['sr4']],
  ['ServiceRequest', 'subject=Group/g1', ['sr4']],
  ['ServiceRequest', 'subject=g1', ['sr4']],
  ['ServiceRequest', 'subject:Patient=p1', ['sr1', 'sr3']],
  ['ServiceRequest', 'subject:Group=g1', ['sr4']],
  ['ServiceRequest', 'subject=Patient/p1,Patient/p2', ['sr1', 'sr2', 'sr3']],
  ['ServiceRequest', 'requester=Practitioner/dr1', ['sr1']],
  ['ServiceRequest', 'requester=PractitionerRole/role1', ['sr2']],
  ['ServiceRequest', 'performer=Organization/site1', ['sr1']],
  // dates with zones: sr1 was authored 2026-11-01T14:30:00Z, sr3 2025-12-31T23:30:00Z
  ['ServiceRequest', 'authored=2026-11-01', ['sr1']],
  ['ServiceRequest', 'authored=2026-11-01T09:30:00-05:00', ['sr1']],
  ['ServiceRequest', 'authored=2026-11-01T14:30:00Z', ['sr1']],
  ['ServiceRequest', 'authored=2026-11-01T14:30:01Z', []],
  ['ServiceRequest', 'authored=2026', ['sr1', 'sr2']],
  ['ServiceRequest', 'authored=2025', ['sr3']],
  ['ServiceRequest', 'authored=lt2026-01-01T00:00:00Z', ['sr3']],
  ['ServiceRequest', 'authored=lt2026-01-01T00:00:00+01:00', []],
  ['ServiceRequest', 'authored=gt2025-12-31T23:00:00-01:00', ['sr1', 'sr2']],
  ['ServiceRequest', 'authored:missing=true', ['sr4']],
  // date prefixes on partial dates: birthdates 1980-05-17 (p1), 1979-12-31 (p2), 1980 (p3), 1990-01-01 (p4)
  ['Patient', 'birthdate=1980', ['p1', 'p3']],
  ['Patient', 'birthdate=eq1980-05', ['p1']],
  ['Patient', 'birthdate=1980-05-17', ['p1']],
  ['Patient', 'birthdate=ne1980', ['p2', 'p4']],
  ['Patient', 'birthdate=gt1980-05-17', ['p3', 'p4']],
  ['Patient', 'birthdate=lt1980-01-01', ['p2']],
  ['Patient', 'birthdate=ge1980-05-17', ['p1', 'p3', 'p4']],
  ['Patient', 'birthdate=le1979-12-31', ['p2']],
  ['Patient', 'birthdate=sa1980', ['p4']],
  ['Patient', 'birthdate=eb1980', ['p2']],
  ['Patient', 'birthdate=1979,1990', ['p2', 'p4']],
  ['Patient', 'birthdate=ge1980&birthdate=lt1981', ['p1', 'p3']],
  ['Patient', 'birthdate:missing=true', ['p5']],
  // strings: starts-with, case and accents ignored, :exact, :contains, LIKE wildcards are literal
  ['Patient', 'family=nun', ['p1', 'p2']],
  ['Patient', 'family=NÚÑ', ['p1', 'p2']],
  ['Patient', 'family=nunez', ['p1']],
  ['Patient', 'family:exact=Núñez', ['p1']],
  ['Patient', 'family:exact=nunez', []],
  ['Patient', 'family:contains=nal', ['p2']],
  ['Patient', 'family:contains=ez', ['p1']],
  ['Patient', 'family=o_', ['p4']],
  ['Patient', 'family:contains=%', []],
  ['Patient', 'given=jos', ['p1']],
  ['Patient', 'name=ms', ['p1']],
  ['Patient', 'name=anna,liam', ['p3', 'p4']],
  ['Patient', 'identifier=urn:example:ehr-a:mrn|MRN-1', ['p1']],
  ['Patient', 'identifier=urn:example:ehr-a:mrn|MRN-2', []],
  ['Patient', 'gender=female', ['p1', 'p3']],
  ['Patient', 'gender=http://hl7.org/fhir/administrative-gender|male', ['p2', 'p4']],
  // Task
  ['Task', 'focus=ServiceRequest/sr1', ['task1']],
  ['Task', 'patient=Patient/p1', ['task1']],
  ['Task', 'subject=Group/g1', ['task2']],
  ['Task', 'status=rejected', ['task2']],
  ['Task', `business-status=${REFERRAL_STATUS}|received`, ['task1']],
  ['Task', 'code=fulfill', ['task1', 'task2']],
  ['Task', 'owner=Organization/site1', ['task1']],
  ['Task', 'based-on=ServiceRequest/sr1', ['task1']],
  ['Task', 'part-of=Task/task1', ['task2']],
  ['Task', 'identifier=T-1', ['task1']],
  ['Task', 'authored-on=2026-11', ['task1']],
  ['Task', 'modified=lt2026-11-01', ['task2']],
  // Appointment
  ['Appointment', 'patient=p1', ['appt1']],
  ['Appointment', 'actor=Practitioner/dr1', ['appt1']],
  ['Appointment', 'location=Location/loc1', ['appt1']],
  ['Appointment', 'status=booked,cancelled', ['appt1', 'appt2']],
  ['Appointment', 'date=2026-11-10', ['appt1']],
  ['Appointment', 'date=2026-12-01T15:00:00Z', ['appt2']],
  ['Appointment', 'based-on=ServiceRequest/sr1', ['appt1']],
  ['Appointment', 'identifier=APPT-1', ['appt1']],
  // Coverage
  ['Coverage', 'beneficiary=Patient/p1', ['cov1']],
  ['Coverage', 'patient=p2', ['cov2']],
  ['Coverage', 'payor=Organization/payer1', ['cov1']],
  ['Coverage', 'status=active', ['cov1']],
  ['Coverage', 'subscriber=RelatedPerson/rp1', ['cov1']],
  ['Coverage', 'policy-holder=Organization/employer1', ['cov2']],
  ['Coverage', 'type=http://terminology.hl7.org/CodeSystem/v3-ActCode|HIP', ['cov1']],
  ['Coverage', 'identifier=urn:example:payer1:member|M-1001', ['cov1']],
  // Practitioner, PractitionerRole
  ['Practitioner', `identifier=${NPI}|1234567893`, ['dr1']],
  ['Practitioner', 'name=okaf', ['dr1']],
  ['PractitionerRole', 'practitioner=Practitioner/dr1', ['role1']],
  ['PractitionerRole', 'organization=Organization/org1', ['role1']],
  ['PractitionerRole', 'location=Location/loc1', ['role1']],
  ['PractitionerRole', 'identifier=R-1', ['role1']],
  // Location
  ['Location', 'name=riverside', ['loc1']],
  ['Location', 'name=ric', ['loc1']],
  ['Location', 'address=12 main', ['loc1']],
  ['Location', 'address=springf', ['loc1']],
  ['Location', 'address:contains=shore', ['loc2']],
  ['Location', 'address-city=chicago', ['loc2']],
  ['Location', 'address-state=IL', ['loc1', 'loc2']],
  ['Location', 'address-postalcode=627', ['loc1']],
  ['Location', 'status=active', ['loc1']],
  ['Location', 'organization=Organization/org1', ['loc1']],
  ['Location', 'type=OINF', ['loc1']],
  ['Location', 'partof=Location/campus1', ['loc1']],
  ['Location', 'identifier=SITE-1', ['loc1']],
  // HealthcareService
  ['HealthcareService', 'location=Location/loc2', ['hs2']],
  ['HealthcareService', 'organization=Organization/org1', ['hs1']],
  ['HealthcareService', 'service-type=http://terminology.hl7.org/CodeSystem/service-type|124', ['hs1']],
  ['HealthcareService', 'service-category=35', ['hs1']],
  ['HealthcareService', 'name=infusion', ['hs1']],
  ['HealthcareService', 'name:contains=infusion', ['hs1', 'hs2']],
  ['HealthcareService', 'active=true', ['hs1']],
  ['HealthcareService', 'active=false', ['hs2']],
  ['HealthcareService', 'identifier=HS-1', ['hs1']],
  // Organization
  ['Organization', 'name=acme', ['payer1']],
  ['Organization', 'identifier=1144221847', ['org1']],
  ['Organization', 'type=pay', ['payer1']],
  ['Organization', 'active=true', ['org1']],
  ['Organization', 'partof=Organization/acme-holdings', ['payer1']],
  ['Organization', 'endpoint=Endpoint/ep1', ['org1']],
  // OrganizationAffiliation
  ['OrganizationAffiliation', 'participating-organization=Organization/org1', ['aff1']],
  ['OrganizationAffiliation', 'primary-organization=Organization/payer1', ['aff1']],
  ['OrganizationAffiliation', 'network=Organization/net-gold', ['aff1']],
  ['OrganizationAffiliation', 'location=loc1', ['aff1']],
  ['OrganizationAffiliation', 'service=HealthcareService/hs1', ['aff1']],
  ['OrganizationAffiliation', 'identifier=AFF-1', ['aff1']],
  ['OrganizationAffiliation', 'active=true', ['aff1']],
  // InsurancePlan
  ['InsurancePlan', 'owned-by=Organization/payer1', ['plan1']],
  ['InsurancePlan', 'administered-by=Organization/acme-tpa', ['plan1']],
  ['InsurancePlan', 'identifier=GOLD-PPO', ['plan1']],
  ['InsurancePlan', 'name=acme gold', ['plan1']],
  ['InsurancePlan', 'status=active', ['plan1']],
  ['InsurancePlan', 'type=medical', ['plan1']],
  ['InsurancePlan', 'network=Organization/net-gold', ['plan1']],
  // Endpoint
  ['Endpoint', 'identifier=EP-1', ['ep1']],
  ['Endpoint', 'organization=Organization/payer1', ['ep1']],
  ['Endpoint', 'status=active', ['ep1']],
  ['Endpoint', 'name=acme prior', ['ep1']],
];

/** [resourceType, query, expression of the issue]: refused with 400 and one issue naming the parameter. */
const REFUSED_SEARCHES: ReadonlyArray<readonly [string, string, string]> = [
  ['ServiceRequest', 'colour=blue', 'colour'],
  ['ServiceRequest', 'status:exact=active', 'status'],
  ['ServiceRequest', 'patient:Practitioner=dr1', 'patient'],
  ['ServiceRequest', 'authored=2026-13-01', 'authored'],
  ['ServiceRequest', 'authored=ap2026', 'authored'],
  ['ServiceRequest', 'code:missing=maybe', 'code'],
  ['ServiceRequest', '_id:not=sr1', '_id'],
  ['Patient', 'birthdate=1980-02-30', 'birthdate'],
  ['Patient', 'name:text=x', 'name'],
];

// ---------------------------------------------------------------------------------------------

export function describeStoreContract(name: string, createDatabase: () => Promise<StoreTestDatabase>): void {
  describe(`${name} store`, function () {
    /** A fresh, empty database and store per test. */
    function freshStore(): { store: () => ResourceStore; database: () => StoreTestDatabase } {
      let database: StoreTestDatabase | undefined;
      let store: ResourceStore | undefined;
      beforeEach(async function () {
        database = await createDatabase();
        store = await database.open();
      });
      afterEach(async function () {
        await store?.close();
        await database?.drop();
        store = undefined;
        database = undefined;
      });
      return {
        store: () => store ?? expect.fail('no store open'),
        database: () => database ?? expect.fail('no database'),
      };
    }

    describe('create and read', function () {
      const ctx = freshStore();

      it('assigns an id, version 1 and lastUpdated, and reads the same resource back', async function () {
        const store = ctx.store();
        const created = await store.transaction((tx) => tx.create(A, patient(undefined, 'Núñez'), T0));
        expect(created.id).to.match(/^[0-9a-f-]{36}$/);
        expect(created.meta?.versionId).to.equal('1');
        expect(created.meta?.lastUpdated).to.equal('2026-11-03T15:00:00.000Z');
        expect(await store.read([A], 'Patient', created.id!)).to.deep.equal(created);
      });

      it('keeps an id given by the caller and the rest of its meta', async function () {
        const store = ctx.store();
        const created = await store.transaction((tx) =>
          tx.create(A, patient('pat-1', 'Smith', { meta: { profile: ['http://example.org/p'], versionId: '9' } }), T0),
        );
        expect(created.id).to.equal('pat-1');
        expect(created.meta).to.deep.equal({ profile: ['http://example.org/p'], versionId: '1', lastUpdated: T0.toISOString() });
        const read = await store.read<Patient>([A], 'Patient', 'pat-1');
        expect(read?.name?.[0]?.family).to.equal('Smith');
        expect(Object.keys(read!).slice(0, 3)).to.deep.equal(['resourceType', 'id', 'meta']);
      });

      it("never changes the caller's object", async function () {
        const store = ctx.store();
        const input = patient(undefined, 'Smith', { meta: { tag: [{ code: 'x' }] } });
        const snapshot = structuredClone(input);
        const created = await store.transaction((tx) => tx.create(A, input, T0));
        expect(input).to.deep.equal(snapshot);
        const updateInput = { ...created, id: created.id!, gender: 'female' as const };
        const updateSnapshot = structuredClone(updateInput);
        await store.transaction((tx) => tx.update(A, updateInput, minutesAfter(1)));
        expect(updateInput).to.deep.equal(updateSnapshot);
      });

      it('refuses an id that already exists in the tenant with 409, and allows it in another tenant', async function () {
        const store = ctx.store();
        await store.transaction((tx) => tx.create(A, patient('dup', 'First'), T0));
        const error = await outcomeErrorOf(store.transaction((tx) => tx.create(A, patient('dup', 'Second'), T0)));
        expect(error.status).to.equal(409);
        expect(error.outcome.issue[0]?.expression).to.deep.equal(['Patient.id']);
        expect((await store.read<Patient>([A], 'Patient', 'dup'))?.name?.[0]?.family).to.equal('First');
        const other = await store.transaction((tx) => tx.create(B, patient('dup', 'Other'), T0));
        expect(other.id).to.equal('dup');
      });

      it('stores nothing of a createAll that meets a taken id, and the transaction carries on after the 409', async function () {
        const store = ctx.store();
        await store.transaction((tx) => tx.create(A, patient('taken', 'First'), T0));
        const afterRefusal = await store.transaction(async (tx) => {
          const refusal = await outcomeErrorOf(tx.createAll(A, [patient('fresh', 'Fresh'), patient('taken', 'Second')], T0));
          expect(refusal.status).to.equal(409);
          return tx.create(A, patient('later', 'Later'), T0);
        });
        expect(afterRefusal.id).to.equal('later');
        expect(await store.read([A], 'Patient', 'fresh')).to.equal(undefined);
        expect(await store.history([A], 'Patient', 'fresh')).to.deep.equal([]);
        expect(await store.history([A], 'Patient', 'taken')).to.have.length(1);
        expect(await idsFound(store, 'Patient', 'family=Fresh')).to.deep.equal([]);
        expect(await idsFound(store, 'Patient', 'family=Second')).to.deep.equal([]);
        expect(await idsFound(store, 'Patient', 'family=First')).to.deep.equal(['taken']);
        expect(await idsFound(store, 'Patient', 'family=Later')).to.deep.equal(['later']);
      });

      it('refuses an id that is not a FHIR id with 400', async function () {
        const store = ctx.store();
        const error = await outcomeErrorOf(store.transaction((tx) => tx.create(A, patient('has space', 'X'), T0)));
        expect(error.status).to.equal(400);
        expect(error.outcome.issue[0]?.expression).to.deep.equal(['Patient.id']);
      });

      it('answers undefined for an unknown resource or version', async function () {
        const store = ctx.store();
        await store.transaction((tx) => tx.create(A, patient('known', 'X'), T0));
        expect(await store.read([A], 'Patient', 'unknown')).to.equal(undefined);
        expect(await store.read([A], 'Practitioner', 'known')).to.equal(undefined);
        expect(await store.readVersion([A], 'Patient', 'known', '2')).to.equal(undefined);
        expect(await store.readVersion([A], 'Patient', 'known', 'abc')).to.equal(undefined);
        expect(await store.history([A], 'Patient', 'unknown')).to.deep.equal([]);
      });

      it('keeps data when the database is reopened, running the migrations only once', async function () {
        const store = ctx.store();
        const created = await store.transaction((tx) => tx.create(A, patient('kept', 'Kept'), T0));
        await store.close();
        const reopened = await ctx.database().open();
        try {
          expect(await reopened.read([A], 'Patient', 'kept')).to.deep.equal(created);
        } finally {
          await reopened.close();
        }
      });
    });

    describe('update, If-Match and history', function () {
      const ctx = freshStore();

      it('stores a new version with the next versionId, keeping every version for vread and history', async function () {
        const store = ctx.store();
        const v1 = await store.transaction((tx) => tx.create(A, patient('pat', 'Before'), T0));
        const v2 = await store.transaction((tx) => tx.update(A, { ...patient('pat', 'After'), id: 'pat' }, minutesAfter(5)));
        expect(v2.meta?.versionId).to.equal('2');
        expect(v2.meta?.lastUpdated).to.equal(minutesAfter(5).toISOString());
        expect(await store.read([A], 'Patient', 'pat')).to.deep.equal(v2);
        expect(await store.readVersion([A], 'Patient', 'pat', '1')).to.deep.equal(v1);
        expect(await store.readVersion([A], 'Patient', 'pat', '2')).to.deep.equal(v2);
        expect(await store.history([A], 'Patient', 'pat')).to.deep.equal([v2, v1]);
      });

      it('refuses a stale If-Match with 412 and accepts the current version, bare or as an ETag', async function () {
        const store = ctx.store();
        await store.transaction((tx) => tx.create(A, patient('pat', 'V1'), T0));
        await store.transaction((tx) => tx.update(A, { ...patient('pat', 'V2'), id: 'pat' }, minutesAfter(1)));
        const error = await outcomeErrorOf(
          store.transaction((tx) => tx.update(A, { ...patient('pat', 'Lost'), id: 'pat' }, minutesAfter(2), { ifMatchVersionId: '1' })),
        );
        expect(error.status).to.equal(412);
        expect(error.outcome.issue[0]?.expression).to.deep.equal(['Patient.meta.versionId']);
        expect((await store.read<Patient>([A], 'Patient', 'pat'))?.name?.[0]?.family).to.equal('V2');

        const v3 = await store.transaction((tx) =>
          tx.update(A, { ...patient('pat', 'V3'), id: 'pat' }, minutesAfter(3), { ifMatchVersionId: '2' }),
        );
        expect(v3.meta?.versionId).to.equal('3');
        const v4 = await store.transaction((tx) =>
          tx.update(A, { ...patient('pat', 'V4'), id: 'pat' }, minutesAfter(4), { ifMatchVersionId: 'W/"3"' }),
        );
        expect(v4.meta?.versionId).to.equal('4');
      });

      it('creates version 1 when updating an unknown id, unless If-Match expects a version', async function () {
        const store = ctx.store();
        const created = await store.transaction((tx) => tx.update(A, { ...patient('new', 'New'), id: 'new' }, T0));
        expect(created.meta?.versionId).to.equal('1');
        expect(await store.read([A], 'Patient', 'new')).to.deep.equal(created);
        const error = await outcomeErrorOf(
          store.transaction((tx) => tx.update(A, { ...patient('ghost', 'Ghost'), id: 'ghost' }, T0, { ifMatchVersionId: '1' })),
        );
        expect(error.status).to.equal(412);
        expect(await store.read([A], 'Patient', 'ghost')).to.equal(undefined);
      });

      it('reindexes on update: the old values no longer match, the new ones do', async function () {
        const store = ctx.store();
        await store.transaction((tx) => tx.create(A, patient('pat', 'Before'), T0));
        await store.transaction((tx) => tx.update(A, { ...patient('pat', 'After'), id: 'pat' }, minutesAfter(1)));
        expect(await idsFound(store, 'Patient', 'family=before')).to.deep.equal([]);
        expect(await idsFound(store, 'Patient', 'family=after')).to.deep.equal(['pat']);
      });

      it('gives each of several concurrent updates its own version', async function () {
        const store = ctx.store();
        await store.transaction((tx) => tx.create(A, patient('busy', 'V1'), T0));
        const results = await Promise.all(
          Array.from({ length: 8 }, (_, i) =>
            store.transaction((tx) => tx.update(A, { ...patient('busy', `W${i}`), id: 'busy' }, minutesAfter(1 + i))),
          ),
        );
        expect(results.map((r) => r.meta?.versionId).sort((x, y) => Number(x) - Number(y))).to.deep.equal([
          '2',
          '3',
          '4',
          '5',
          '6',
          '7',
          '8',
          '9',
        ]);
        expect(await store.history([A], 'Patient', 'busy')).to.have.length(9);
      });
    });

    describe('transactions', function () {
      const ctx = freshStore();

      it('rolls back everything written when the work throws halfway, and rethrows the same error', async function () {
        const store = ctx.store();
        await store.transaction((tx) => tx.create(A, patient('existing', 'Before'), T0));
        const boom = new Error('boom');
        const thrown = await rejectionOf(
          store.transaction(async (tx) => {
            await tx.create(A, { ...patient('pat', 'Rolled'), identifier: [{ system: 'urn:mrn', value: 'R-1' }] }, T0);
            await tx.update(A, { ...patient('existing', 'Changed'), id: 'existing' }, minutesAfter(1));
            await tx.claimReferral(referralRow('ref-1'), T0);
            expect(await tx.read([A], 'Patient', 'pat')).to.not.equal(undefined);
            throw boom;
          }),
        );
        expect(thrown).to.equal(boom);
        expect(await store.read([A], 'Patient', 'pat')).to.equal(undefined);
        expect(await store.history([A], 'Patient', 'pat')).to.deep.equal([]);
        expect(await idsFound(store, 'Patient', 'identifier=R-1')).to.deep.equal([]);
        expect(await idsFound(store, 'Patient', 'family=rolled')).to.deep.equal([]);
        const existing = await store.read<Patient>([A], 'Patient', 'existing');
        expect(existing?.meta?.versionId).to.equal('1');
        expect(existing?.name?.[0]?.family).to.equal('Before');
        expect(await idsFound(store, 'Patient', 'family=changed')).to.deep.equal([]);
        expect(await store.findReferralByIdentifier(A, ORDERS, 'ORD-1')).to.equal(undefined);
      });

      it('commits the rest of the work when a 409 is caught inside the transaction', async function () {
        const store = ctx.store();
        await store.transaction((tx) => tx.create(A, patient('taken', 'X'), T0));
        await store.transaction(async (tx) => {
          const error = await outcomeErrorOf(tx.create(A, patient('taken', 'Y'), T0));
          expect(error.status).to.equal(409);
          await tx.create(A, patient('after-conflict', 'Z'), T0);
        });
        expect(await store.read([A], 'Patient', 'after-conflict')).to.not.equal(undefined);
      });

      it("refuses the store's own methods inside its transaction's work, pointing to tx", async function () {
        const store = ctx.store();
        await store.transaction(async (tx) => {
          const nestedRead = await rejectionOf(store.read([A], 'Patient', 'x'));
          expect((nestedRead as Error).message).to.contain('use the tx argument');
          const nestedTransaction = await rejectionOf(store.transaction(async () => 1));
          expect((nestedTransaction as Error).message).to.contain('use the tx argument');
          await tx.create(A, patient('still-fine', 'X'), T0);
        });
        expect(await store.read([A], 'Patient', 'still-fine')).to.not.equal(undefined);
      });

      it('returns what the work returns', async function () {
        const store = ctx.store();
        expect(await store.transaction(async () => 42)).to.equal(42);
      });
    });

    describe('tenancy', function () {
      const ctx = freshStore();

      beforeEach(async function () {
        const store = ctx.store();
        await store.transaction(async (tx) => {
          await tx.create(A, patient('p1', 'Alpha', { identifier: [{ system: 'urn:mrn', value: 'SHARED' }] }), T0);
          await tx.create(B, patient('p1', 'Beta', { identifier: [{ system: 'urn:mrn', value: 'SHARED' }] }), T0);
          await tx.update(
            B,
            { ...patient('p1', 'Beta2', { identifier: [{ system: 'urn:mrn', value: 'SHARED' }] }), id: 'p1' },
            minutesAfter(1),
          );
          await tx.create(B, patient('only-b', 'Gamma'), T0);
        });
      });

      it("never shows one tenant's resources to another", async function () {
        const store = ctx.store();
        expect(await store.read([A], 'Patient', 'only-b')).to.equal(undefined);
        expect(await store.readVersion([A], 'Patient', 'only-b', '1')).to.equal(undefined);
        expect(await store.history([A], 'Patient', 'only-b')).to.deep.equal([]);
        expect(await idsFound(store, 'Patient', 'family=gamma', [A])).to.deep.equal([]);
        expect(await idsFound(store, 'Patient', 'family=gamma', [B])).to.deep.equal(['only-b']);
        expect(await idsFound(store, 'Patient', '', ['tenant-c'])).to.deep.equal([]);
      });

      it('keeps same-id resources of two tenants apart, versions and history included', async function () {
        const store = ctx.store();
        expect((await store.read<Patient>([A], 'Patient', 'p1'))?.name?.[0]?.family).to.equal('Alpha');
        expect((await store.read<Patient>([B], 'Patient', 'p1'))?.name?.[0]?.family).to.equal('Beta2');
        expect(await store.history([A], 'Patient', 'p1')).to.have.length(1);
        expect(await store.history([B], 'Patient', 'p1')).to.have.length(2);
        expect(await store.readVersion([A], 'Patient', 'p1', '2')).to.equal(undefined);
        const search = await store.search(searchOf('Patient', 'identifier=SHARED', [A]));
        expect(search.resources.map((r) => (r as Patient).name?.[0]?.family)).to.deep.equal(['Alpha']);
      });

      it('searches every tenant it is given, and reads from the first listed that has the id', async function () {
        const store = ctx.store();
        const both = await store.search(searchOf('Patient', 'identifier=SHARED', [A, B], { withTotal: true }));
        expect(both.total).to.equal(2);
        expect(both.resources.map((r) => (r as Patient).name?.[0]?.family ?? '').sort((a, b) => a.localeCompare(b))).to.deep.equal([
          'Alpha',
          'Beta2',
        ]);
        expect((await store.read<Patient>([B, A], 'Patient', 'p1'))?.name?.[0]?.family).to.equal('Beta2');
        expect((await store.read<Patient>([A, B], 'Patient', 'p1'))?.name?.[0]?.family).to.equal('Alpha');
        expect(await store.history([B, A], 'Patient', 'p1')).to.have.length(2);
      });
    });

    describe('search', function () {
      let database: StoreTestDatabase;
      let store: ResourceStore;

      before(async function () {
        database = await createDatabase();
        store = await database.open();
        await store.transaction(async (tx) => {
          for (const [i, resource] of searchDataSet.entries()) {
            const at =
              resource.resourceType === 'ServiceRequest'
                ? minutesAfter(serviceRequests.indexOf(resource as ServiceRequest))
                : minutesAfter(10 + i);
            await tx.create(A, resource, at);
          }
          // Look-alikes in tenant B that tenant A's searches must never return.
          await tx.create(B, { ...serviceRequests[0]!, id: 'sr-b', status: 'active' }, T0);
          await tx.create(B, { ...patients[0]!, id: 'p-b' }, T0);
        });
      });

      after(async function () {
        await store?.close();
        await database?.drop();
      });

      for (const [resourceType, query, expected] of SEARCH_CASES) {
        it(`finds ${expected.length === 0 ? 'nothing' : expected.join(', ')} for ${resourceType}?${query}`, async function () {
          expect(await idsFound(store, resourceType, query)).to.deep.equal([...expected].sort());
        });
      }

      for (const [resourceType, query, expression] of REFUSED_SEARCHES) {
        it(`refuses ${resourceType}?${query} with 400 naming ${expression}`, async function () {
          const error = await outcomeErrorOf(store.search(searchOf(resourceType, query)));
          expect(error.status).to.equal(400);
          expect(error.outcome.issue).to.have.length(1);
          expect(error.outcome.issue[0]?.expression).to.deep.equal([expression]);
        });
      }

      it('refuses an unsupported _sort with 400 naming _sort', async function () {
        const error = await outcomeErrorOf(store.search(searchOf('Patient', '', [A], { sort: ['birthdate'] })));
        expect(error.status).to.equal(400);
        expect(error.outcome.issue[0]?.expression).to.deep.equal(['_sort']);
      });

      it('reports every bad parameter of a search at once', async function () {
        const error = await outcomeErrorOf(store.search(searchOf('Patient', 'colour=red&birthdate=soon&family=ok')));
        expect(error.outcome.issue.map((i) => i.expression?.[0])).to.deep.equal(['colour', 'birthdate']);
      });

      it('counts the total when asked, and only then', async function () {
        const withTotal = await store.search(searchOf('ServiceRequest', 'status=active', [A], { withTotal: true, count: 1 }));
        expect(withTotal.total).to.equal(2);
        expect(withTotal.resources).to.have.length(1);
        const without = await store.search(searchOf('ServiceRequest', 'status=active'));
        expect(without.total).to.equal(undefined);
        const countOnly = await store.search(searchOf('ServiceRequest', '', [A], { withTotal: true, count: 0 }));
        expect(countOnly.resources).to.deep.equal([]);
        expect(countOnly.total).to.equal(4);
      });

      it('returns stored resources with their meta', async function () {
        const result = await store.search<ServiceRequest>(searchOf('ServiceRequest', '_id=sr1'));
        expect(result.resources[0]).to.deep.equal(await store.read([A], 'ServiceRequest', 'sr1'));
        expect(result.resources[0]?.meta?.versionId).to.equal('1');
      });
    });

    describe('paging and sorting', function () {
      const ctx = freshStore();
      const TOTAL = 25;

      beforeEach(async function () {
        const store = ctx.store();
        // Three resources share each lastUpdated, so the id tie-break is exercised.
        await store.transaction(async (tx) => {
          for (let i = 0; i < TOTAL; i++) {
            const id = `t-${String((i * 7) % TOTAL).padStart(2, '0')}`;
            await tx.create(A, { resourceType: 'Task', id, status: 'requested', intent: 'order' }, minutesAfter(Math.floor(i / 3)));
          }
          await tx.create(B, { resourceType: 'Task', id: 't-other', status: 'requested', intent: 'order' }, T0);
        });
      });

      async function walk(store: ResourceStore, count: number, sort?: string[]): Promise<Task[]> {
        const seen: Task[] = [];
        for (let offset = 0; ; offset += count) {
          const page = await store.search<Task>(
            searchOf('Task', 'status=requested', [A], { count, offset, withTotal: true, ...(sort ? { sort } : {}) }),
          );
          expect(page.total).to.equal(TOTAL);
          seen.push(...page.resources);
          if (page.resources.length < count) break;
        }
        return seen;
      }

      const byLastUpdatedThenId = (x: Task, y: Task): number =>
        x.meta!.lastUpdated!.localeCompare(y.meta!.lastUpdated!) || (x.id! < y.id! ? -1 : x.id! > y.id! ? 1 : 0);

      it('walks every page without duplicates or gaps, in _lastUpdated then id order', async function () {
        const store = ctx.store();
        const seen = await walk(store, 7);
        expect(seen).to.have.length(TOTAL);
        expect(new Set(seen.map((t) => t.id)).size).to.equal(TOTAL);
        expect(seen.map((t) => t.id)).to.deep.equal([...seen].sort(byLastUpdatedThenId).map((t) => t.id));
      });

      it('sorts by -_lastUpdated, newest first, across pages', async function () {
        const store = ctx.store();
        const seen = await walk(store, 4, ['-_lastUpdated']);
        expect(seen).to.have.length(TOTAL);
        expect(new Set(seen.map((t) => t.id)).size).to.equal(TOTAL);
        const stamps = seen.map((t) => t.meta!.lastUpdated!);
        expect(stamps).to.deep.equal([...stamps].sort().reverse());
      });

      it('sorts by _id and -_id', async function () {
        const store = ctx.store();
        const ascending = (await walk(store, 10, ['_id'])).map((t) => t.id!);
        expect(ascending).to.deep.equal(Array.from({ length: TOTAL }, (_, i) => `t-${String(i).padStart(2, '0')}`));
        const descending = (await walk(store, 10, ['-_id'])).map((t) => t.id!);
        expect(descending).to.deep.equal([...ascending].reverse());
      });

      it('returns an empty page past the end', async function () {
        const store = ctx.store();
        const page = await store.search(searchOf('Task', '', [A], { offset: 100, count: 10 }));
        expect(page.resources).to.deep.equal([]);
      });

      /** Pages by keyset: each page starts after the cursor of the previous page's last resource. */
      async function walkByCursor(store: ResourceStore, count: number, sort?: string[]): Promise<Task[]> {
        const seen: Task[] = [];
        let after: string | undefined;
        for (;;) {
          const page = await store.search<Task>(
            searchOf('Task', 'status=requested', [A], { count, ...(sort ? { sort } : {}), ...(after !== undefined ? { after } : {}) }),
          );
          expect(page.cursors).to.have.length(page.resources.length);
          seen.push(...page.resources);
          if (page.resources.length < count) break;
          after = page.cursors![page.resources.length - 1];
        }
        return seen;
      }

      for (const sort of [undefined, ['-_lastUpdated'], ['_id'], ['-_id'], ['-_lastUpdated', '_id'], ['_lastUpdated', '-_id']]) {
        it(`pages by cursor in the same order as by offset (sort ${sort?.join(',') ?? 'default'})`, async function () {
          const store = ctx.store();
          const byCursor = (await walkByCursor(store, 4, sort)).map((t) => t.id);
          expect(byCursor).to.have.length(TOTAL);
          expect(byCursor).to.deep.equal((await walk(store, 25, sort)).map((t) => t.id));
        });
      }

      it('refuses a cursor of another sort order, or no cursor at all, as a bad _cursor', async function () {
        const store = ctx.store();
        const first = await store.search(searchOf('Task', 'status=requested', [A], { count: 3 }));
        const cursor = first.cursors![2]!;
        const otherSort = await outcomeErrorOf(
          store.search(searchOf('Task', 'status=requested', [A], { count: 3, sort: ['_id'], after: cursor })),
        );
        expect(otherSort.outcome.issue.map((i) => i.expression?.[0])).to.deep.equal(['_cursor']);
        const garbage = await outcomeErrorOf(store.search(searchOf('Task', 'status=requested', [A], { count: 3, after: 'not a cursor' })));
        expect(garbage.outcome.issue.map((i) => i.expression?.[0])).to.deep.equal(['_cursor']);
      });
    });

    describe('referral claims', function () {
      const ctx = freshStore();

      it('claims a new identifier once; a second claim gets the stored row', async function () {
        const store = ctx.store();
        const first = await store.transaction((tx) => tx.claimReferral(referralRow('ref-1'), T0));
        expect(first).to.deep.equal({ claimed: true });
        const second = await store.transaction((tx) => tx.claimReferral(referralRow('ref-2'), minutesAfter(1)));
        expect(second).to.deep.equal({
          claimed: false,
          existing: { ...referralRow('ref-1'), createdAt: T0.toISOString(), updatedAt: T0.toISOString() },
        });
        expect(await store.findReferralByIdentifier(A, ORDERS, 'ORD-1')).to.deep.equal(second.claimed ? undefined : second.existing);
      });

      it('scopes the idempotency key to the tenant and the identifier system', async function () {
        const store = ctx.store();
        expect((await store.transaction((tx) => tx.claimReferral(referralRow('ref-a'), T0))).claimed).to.equal(true);
        expect((await store.transaction((tx) => tx.claimReferral(referralRow('ref-b', { tenant: B }), T0))).claimed).to.equal(true);
        expect(
          (await store.transaction((tx) => tx.claimReferral(referralRow('ref-c', { identifierSystem: 'urn:other:orders' }), T0))).claimed,
        ).to.equal(true);
        expect(await store.findReferralByIdentifier(B, ORDERS, 'ORD-1')).to.include({ id: 'ref-b' });
      });

      it('lets exactly one of 50 concurrent claims of the same identifier win; the 49 others get the winner', async function () {
        const store = ctx.store();
        const results = await Promise.all(
          Array.from({ length: 50 }, (_, i) =>
            store.transaction(async (tx) => {
              const result = await tx.claimReferral(referralRow(`ref-${i}`), T0);
              if (result.claimed) {
                await tx.create(A, { resourceType: 'Task', id: `task-ref-${i}`, status: 'requested', intent: 'order' }, T0);
              }
              return { i, result };
            }),
          ),
        );
        const winners = results.filter((r) => r.result.claimed);
        expect(winners).to.have.length(1);
        const winnerId = `ref-${winners[0]!.i}`;
        for (const { result } of results.filter((r) => !r.result.claimed)) {
          expect(result.claimed ? undefined : result.existing.id).to.equal(winnerId);
        }
        expect((await store.findReferralByIdentifier(A, ORDERS, 'ORD-1'))?.id).to.equal(winnerId);
        const taskSearch = await store.search(searchOf('Task', '', [A], { withTotal: true }));
        expect(taskSearch.total).to.equal(1);
        expect(taskSearch.resources[0]?.id).to.equal(`task-${winnerId}`);
      });

      it('makes a claim that meets an uncommitted winner wait, then return the winner once it commits', async function () {
        const store = ctx.store();
        let signalClaimed!: () => void;
        const winnerClaimed = new Promise<void>((resolve) => (signalClaimed = resolve));
        let release!: () => void;
        const released = new Promise<void>((resolve) => (release = resolve));
        const winner = store.transaction(async (tx) => {
          const result = await tx.claimReferral(referralRow('ref-winner'), T0);
          signalClaimed();
          await released;
          return result;
        });
        await winnerClaimed;
        const loser = store.transaction((tx) => tx.claimReferral(referralRow('ref-loser'), T0));
        await ctx.database().waitForLockWaiters?.(1);
        release();
        expect(await winner).to.deep.equal({ claimed: true });
        const lost = await loser;
        expect(lost.claimed).to.equal(false);
        expect(lost.claimed ? undefined : lost.existing.id).to.equal('ref-winner');
      });

      it('lets a waiting claim win when the first claimant rolls back', async function () {
        const store = ctx.store();
        let signalClaimed!: () => void;
        const firstClaimed = new Promise<void>((resolve) => (signalClaimed = resolve));
        let abort!: () => void;
        const aborted = new Promise<void>((resolve) => (abort = resolve));
        const failure = new Error('validation failed after the claim');
        const first = store.transaction(async (tx) => {
          await tx.claimReferral(referralRow('ref-first'), T0);
          signalClaimed();
          await aborted;
          throw failure;
        });
        const firstOutcome = rejectionOf(first);
        await firstClaimed;
        const second = store.transaction((tx) => tx.claimReferral(referralRow('ref-second'), T0));
        await ctx.database().waitForLockWaiters?.(1);
        abort();
        expect(await firstOutcome).to.equal(failure);
        expect(await second).to.deep.equal({ claimed: true });
        expect((await store.findReferralByIdentifier(A, ORDERS, 'ORD-1'))?.id).to.equal('ref-second');
      });

      it('updates a referral status and its updatedAt, keeping createdAt', async function () {
        const store = ctx.store();
        await store.transaction((tx) => tx.claimReferral(referralRow('ref-1'), T0));
        await store.transaction((tx) => tx.updateReferralStatus(A, 'ref-1', 'rejected', minutesAfter(3)));
        const row = await store.findReferralByIdentifier(A, ORDERS, 'ORD-1');
        expect(row).to.include({ status: 'rejected', createdAt: T0.toISOString(), updatedAt: minutesAfter(3).toISOString() });
        expect(row?.referral).to.deep.equal({ drug: 'infliximab', claimedBy: 'ref-1' });
      });

      it("refuses to update an unknown referral, or another tenant's, with 404", async function () {
        const store = ctx.store();
        await store.transaction((tx) => tx.claimReferral(referralRow('ref-1'), T0));
        const unknown = await outcomeErrorOf(store.transaction((tx) => tx.updateReferralStatus(A, 'nope', 'rejected', T0)));
        expect(unknown.status).to.equal(404);
        const otherTenant = await outcomeErrorOf(store.transaction((tx) => tx.updateReferralStatus(B, 'ref-1', 'rejected', T0)));
        expect(otherTenant.status).to.equal(404);
        expect((await store.findReferralByIdentifier(A, ORDERS, 'ORD-1'))?.status).to.equal('received');
      });
    });

    describe('new referrals at once (recordNewReferral)', function () {
      const ctx = freshStore();

      /** A referral's claim, ServiceRequest and Task, and a message made from the Task as stored. */
      function newReferral(id: string, overrides: { identifierValue?: string; taskId?: string } = {}): NewReferral {
        const claim = referralRow(id, { identifierValue: overrides.identifierValue ?? 'ORD-1', taskId: overrides.taskId ?? `task-${id}` });
        const serviceRequest: ServiceRequest = {
          resourceType: 'ServiceRequest',
          id: claim.serviceRequestId,
          status: 'active',
          intent: 'order',
          subject: { reference: 'Patient/p1' },
        };
        const task: Task = {
          resourceType: 'Task',
          id: claim.taskId,
          status: 'requested',
          intent: 'order',
          focus: { reference: `ServiceRequest/${claim.serviceRequestId}` },
        };
        return {
          claim,
          resources: [serviceRequest, task],
          messages: ([, task]) => [outboxMessage(`m-${id}`, `referral:${id}`, { payload: { task } })],
        };
      }
      const auditedAs = (who: string): AuditContext => ({
        agent: () => ({ who, role: 'ehr' }),
        subtype: 'create',
        entities: [],
        clock: { now: () => T0 },
        newId: randomUUID,
        changesRecorded: 0,
      });

      it('claims the number and stores the resources, their index and history, the messages and the audit record', async function () {
        const store = ctx.store();
        const context = auditedAs('ehr-a');
        const result = await runAudited(context, () => store.recordNewReferral(newReferral('ref-1'), T0));
        if (!result.claimed) throw new Error('expected the claim to be won');
        expect(result.stored.map((r) => `${r.resourceType}/${r.id}@${r.meta?.versionId}`)).to.deep.equal([
          'ServiceRequest/sr-ref-1@1',
          'Task/task-ref-1@1',
        ]);
        expect((await store.findReferralByIdentifier(A, ORDERS, 'ORD-1'))?.id).to.equal('ref-1');
        expect((await store.read([A], 'Task', 'task-ref-1'))?.meta?.lastUpdated).to.equal(T0.toISOString());
        expect(await store.history([A], 'ServiceRequest', 'sr-ref-1')).to.have.length(1);
        const byFocus = await store.search(searchOf('Task', 'focus=ServiceRequest/sr-ref-1', [A]));
        expect(byFocus.resources.map((r) => r.id)).to.deep.equal(['task-ref-1']);
        const [message] = await store.claimDueMessages(T0, { limit: 10, leaseMs: 60_000 });
        expect(message).to.include({ id: 'm-ref-1', orderingKey: 'referral:ref-1' });
        expect((message!.payload as { task: Task }).task.meta?.versionId, 'the message is made from the stored Task').to.equal('1');
        const records = await store.searchAuditEvents({ agent: 'ehr-a', count: 10 });
        expect(records.map((r) => [r.action, [...r.entities].map(String).sort()])).to.deep.equal([
          ['C', ['ServiceRequest/sr-ref-1', 'Task/task-ref-1']],
        ]);
        expect(context.changesRecorded).to.equal(1);
      });

      it('stores nothing for a number already claimed, and returns the referral that holds it', async function () {
        const store = ctx.store();
        await store.recordNewReferral(newReferral('ref-1'), T0);
        const context = auditedAs('ehr-b');
        const second = await runAudited(context, () => store.recordNewReferral(newReferral('ref-2'), minutesAfter(1)));
        expect(second.claimed ? undefined : second.existing.id).to.equal('ref-1');
        expect(await store.read([A], 'ServiceRequest', 'sr-ref-2')).to.equal(undefined);
        expect(await store.read([A], 'Task', 'task-ref-2')).to.equal(undefined);
        expect((await store.claimDueMessages(T0, { limit: 10, leaseMs: 60_000 })).map((m) => m.id)).to.deep.equal(['m-ref-1']);
        expect(await store.searchAuditEvents({ agent: 'ehr-b', count: 10 })).to.deep.equal([]);
        expect(context.changesRecorded).to.equal(0);
      });

      it('lets exactly one of 20 concurrent referrals with the same number win; the others store nothing', async function () {
        const store = ctx.store();
        const results = await Promise.all(Array.from({ length: 20 }, (_, i) => store.recordNewReferral(newReferral(`ref-${i}`), T0)));
        const winners = results.flatMap((result, i) => (result.claimed ? [i] : []));
        expect(winners).to.have.length(1);
        for (const result of results) expect(result.claimed ? `ref-${winners[0]}` : result.existing.id).to.equal(`ref-${winners[0]}`);
        const tasks = await store.search(searchOf('Task', '', [A], { withTotal: true }));
        expect(tasks.total).to.equal(1);
        expect(tasks.resources[0]?.id).to.equal(`task-ref-${winners[0]}`);
        expect(await store.claimDueMessages(T0, { limit: 50, leaseMs: 60_000 })).to.have.length(1);
      });

      it('refuses a resource id already taken with 409 and stores nothing of the referral, not even its claim', async function () {
        const store = ctx.store();
        await store.transaction((tx) => tx.create(A, { resourceType: 'Task', id: 'task-taken', status: 'requested', intent: 'order' }, T0));
        const refused = await outcomeErrorOf(store.recordNewReferral(newReferral('ref-1', { taskId: 'task-taken' }), T0));
        expect(refused.status).to.equal(409);
        expect(await store.findReferralByIdentifier(A, ORDERS, 'ORD-1')).to.equal(undefined);
        expect(await store.read([A], 'ServiceRequest', 'sr-ref-1')).to.equal(undefined);
        expect(await store.claimDueMessages(T0, { limit: 10, leaseMs: 60_000 })).to.deep.equal([]);
        expect((await store.recordNewReferral(newReferral('ref-2'), T0)).claimed, 'the number is still free').to.equal(true);
      });
    });

    describe('outbox: enqueue', function () {
      const ctx = freshStore();

      it('stores a message with the change that announced it, and none when that change rolls back', async function () {
        const store = ctx.store();
        await store.transaction(async (tx) => {
          await tx.create(A, patient('kept', 'Kept'), T0);
          await tx.enqueue(outboxMessage('m-kept', 'ref-1'), T0);
        });
        const failure = new Error('the referral failed validation after the enqueue');
        const rolledBack = store.transaction(async (tx) => {
          await tx.create(A, patient('gone', 'Gone'), T0);
          await tx.enqueue(outboxMessage('m-gone', 'ref-2'), T0);
          throw failure;
        });
        expect(await rejectionOf(rolledBack)).to.equal(failure);

        expect(await store.readOutboxMessage('m-gone')).to.equal(undefined);
        expect(await store.read([A], 'Patient', 'gone')).to.equal(undefined);
        const kept = await store.readOutboxMessage('m-kept');
        expect(kept).to.deep.equal({
          ...outboxMessage('m-kept', 'ref-1'),
          sequence: kept?.sequence,
          status: 'pending',
          attempts: 0,
          nextAttemptAt: T0.toISOString(),
          createdAt: T0.toISOString(),
          updatedAt: T0.toISOString(),
        });
        expect(kept?.sequence).to.be.a('number');
        expect((await store.listOutboxMessages({ count: 10, offset: 0 })).total).to.equal(1);
      });

      it('numbers messages in enqueue order, within a transaction and across transactions', async function () {
        const store = ctx.store();
        await store.transaction(async (tx) => {
          await tx.enqueue(outboxMessage('first', 'ref-1'), T0);
          await tx.enqueue(outboxMessage('second', 'ref-2'), T0);
        });
        await enqueueEach(store, [outboxMessage('third', 'ref-1'), outboxMessage('fourth', 'ref-3')]);
        const { messages } = await store.listOutboxMessages({ count: 10, offset: 0 });
        expect(messages.map((m) => m.id)).to.deep.equal(['first', 'second', 'third', 'fourth']);
        const sequences = messages.map((m) => m.sequence);
        expect(sequences).to.deep.equal([...sequences].sort((a, b) => a - b));
        expect(new Set(sequences).size).to.equal(4);
      });

      it('refuses a second message with an id already used, keeping the first', async function () {
        const store = ctx.store();
        await enqueueEach(store, [outboxMessage('dup', 'ref-1')]);
        const error = await rejectionOf(store.transaction((tx) => tx.enqueue(outboxMessage('dup', 'ref-2'), T0)));
        expect(error).to.be.instanceOf(Error);
        expect((error as Error).message).to.contain('dup');
        expect((await store.readOutboxMessage('dup'))?.orderingKey).to.equal('ref-1');
      });

      it('keeps enqueue order as commit order within a key: a later enqueue of the key waits for the open earlier one', async function () {
        const store = ctx.store();
        let signalEnqueued!: () => void;
        const firstEnqueued = new Promise<void>((resolve) => (signalEnqueued = resolve));
        let release!: () => void;
        const released = new Promise<void>((resolve) => (release = resolve));
        const first = store.transaction(async (tx) => {
          await tx.enqueue(outboxMessage('earlier', 'ref-1'), T0);
          signalEnqueued();
          await released;
        });
        await firstEnqueued;
        const second = store.transaction((tx) => tx.enqueue(outboxMessage('later', 'ref-1'), T0));
        try {
          if (ctx.database().waitForLockWaiters) {
            // PostgreSQL: the later enqueue waits for the earlier transaction, so a worker claiming
            // now cannot see the later message without the earlier one and deliver it first.
            await ctx.database().waitForLockWaiters!(1);
            expect(await claimIds(store)).to.deep.equal([]);
          }
        } finally {
          release();
        }
        await first;
        await second;
        const earlier = await store.readOutboxMessage('earlier');
        const later = await store.readOutboxMessage('later');
        expect(later!.sequence).to.be.greaterThan(earlier!.sequence);
        expect(await claimIds(store)).to.deep.equal(['earlier']);
      });
    });

    describe('outbox: claims', function () {
      const ctx = freshStore();

      it('claims due messages for a lease, counting an attempt, and claims them again once the lease has run out', async function () {
        const store = ctx.store();
        await enqueueEach(store, [outboxMessage('m1', 'ref-1'), outboxMessage('m2', 'ref-2')]);
        const claimed = await store.claimDueMessages(T0, { limit: 10, leaseMs: LEASE_MS });
        expect(claimed.map((m) => [m.id, m.status, m.attempts, m.nextAttemptAt, m.updatedAt])).to.deep.equal([
          ['m1', 'delivering', 1, minutesAfter(1).toISOString(), T0.toISOString()],
          ['m2', 'delivering', 1, minutesAfter(1).toISOString(), T0.toISOString()],
        ]);
        expect(claimed[0]?.payload).to.deep.equal(outboxMessage('m1', 'ref-1').payload);
        expect(await store.readOutboxMessage('m1')).to.deep.equal(claimed[0]);

        // The lease holds: nobody else gets them while it runs.
        expect(await claimIds(store, T0)).to.deep.equal([]);
        expect(await claimIds(store, new Date(T0.getTime() + LEASE_MS - 1))).to.deep.equal([]);

        // Their worker died: once the lease has run out they are due again.
        const reclaimed = await store.claimDueMessages(minutesAfter(1), { limit: 10, leaseMs: LEASE_MS });
        expect(reclaimed.map((m) => [m.id, m.attempts, m.nextAttemptAt])).to.deep.equal([
          ['m1', 2, minutesAfter(2).toISOString()],
          ['m2', 2, minutesAfter(2).toISOString()],
        ]);
      });

      it('leaves a message alone until its next attempt is due', async function () {
        const store = ctx.store();
        await enqueueEach(store, [outboxMessage('m1', 'ref-1')]);
        await claimIds(store);
        const error = failureOutcome('transient', 'EHR answered 503');
        await store.scheduleRetry('m1', minutesAfter(5), error, minutesAfter(0.5));
        const waiting = await store.readOutboxMessage('m1');
        expect(waiting).to.deep.include({
          status: 'pending',
          attempts: 1,
          nextAttemptAt: minutesAfter(5).toISOString(),
          updatedAt: minutesAfter(0.5).toISOString(),
        });
        expect(waiting?.lastError).to.deep.equal(error);
        expect(await claimIds(store, minutesAfter(4))).to.deep.equal([]);
        const retried = await store.claimDueMessages(minutesAfter(5), { limit: 10, leaseMs: LEASE_MS });
        expect(retried.map((m) => [m.id, m.attempts])).to.deep.equal([['m1', 2]]);
        expect(retried[0]?.lastError).to.deep.equal(error);
      });

      it('claims only the oldest undelivered message of each ordering key', async function () {
        const store = ctx.store();
        await enqueueEach(store, [
          outboxMessage('a1', 'ref-a'),
          outboxMessage('b1', 'ref-b'),
          outboxMessage('a2', 'ref-a'),
          outboxMessage('c1', 'ref-c'),
          outboxMessage('a3', 'ref-a'),
        ]);
        expect(await claimIds(store)).to.deep.equal(['a1', 'b1', 'c1']);
        expect(await claimIds(store)).to.deep.equal([]);

        await store.markDelivered('a1', T0);
        await store.markDelivered('b1', T0);
        await store.markDelivered('c1', T0);
        expect(await claimIds(store)).to.deep.equal(['a2']);

        // a2 failed and waits for its retry: a3 waits behind it, even when a3 alone would be due.
        await store.scheduleRetry('a2', minutesAfter(10), failureOutcome('transient', 'timeout'), T0);
        expect(await claimIds(store, minutesAfter(9))).to.deep.equal([]);
        expect(await claimIds(store, minutesAfter(10))).to.deep.equal(['a2']);
        await store.markDelivered('a2', minutesAfter(10));
        expect(await claimIds(store, minutesAfter(10))).to.deep.equal(['a3']);
      });

      it('claims at most `limit` messages, oldest first', async function () {
        const store = ctx.store();
        await enqueueEach(
          store,
          ['k1', 'k2', 'k3', 'k4', 'k5'].map((key) => outboxMessage(`m-${key}`, key)),
        );
        expect(await claimIds(store, T0, 0)).to.deep.equal([]);
        expect(await claimIds(store, T0, 2)).to.deep.equal(['m-k1', 'm-k2']);
        expect(await claimIds(store, T0, 10)).to.deep.equal(['m-k3', 'm-k4', 'm-k5']);
      });

      it('hands out the heads of simultaneous claims without overlap: no message twice, no key twice', async function () {
        const store = ctx.store();
        const others = ctx.database().severalStores ? [await ctx.database().open(), await ctx.database().open()] : [];
        try {
          const stores = [store, ...others];
          const keys = Array.from({ length: 40 }, (_, k) => `ref-${k}`);
          await store.transaction(async (tx) => {
            for (const round of [1, 2]) for (const key of keys) await tx.enqueue(outboxMessage(`${key}-m${round}`, key), T0);
          });
          const batches = await Promise.all(
            Array.from({ length: 12 }, (_, i) => stores[i % stores.length]!.claimDueMessages(T0, { limit: 7, leaseMs: LEASE_MS })),
          );
          const claimed = [...batches.flat(), ...(await store.claimDueMessages(T0, { limit: 100, leaseMs: LEASE_MS }))];
          expect(claimed.map((m) => m.id).sort()).to.deep.equal(keys.map((key) => `${key}-m1`).sort());
          expect(claimed.every((m) => m.attempts === 1)).to.equal(true);
        } finally {
          for (const other of others) await other.close();
        }
      });

      it('never lets two claimers hold messages of one key at once, and delivers every message once, in order, with claimers in parallel', async function () {
        this.timeout(60_000);
        const store = ctx.store();
        const others = ctx.database().severalStores ? [await ctx.database().open(), await ctx.database().open()] : [];
        try {
          const stores = [store, ...others];
          const keys = Array.from({ length: 20 }, (_, k) => `ref-${k}`);
          const perKey = 5;
          await store.transaction(async (tx) => {
            for (let n = 1; n <= perKey; n++) for (const key of keys) await tx.enqueue(outboxMessage(`${key}-m${n}`, key), T0);
          });
          const total = keys.length * perKey;

          const holder = new Map<string, string>();
          const overlaps: string[] = [];
          const claims = new Map<string, number>();
          const claimOrder = new Map<string, string[]>();
          let delivered = 0;

          const worker = async (claimer: ResourceStore): Promise<void> => {
            let idleRounds = 0;
            while (delivered < total) {
              // `now` stands still, so no lease ever runs out: a second claim of a message would be a bug.
              const batch = await claimer.claimDueMessages(T0, { limit: 3, leaseMs: LEASE_MS });
              for (const m of batch) {
                const held = holder.get(m.orderingKey);
                if (held !== undefined) overlaps.push(`${m.id} claimed while ${held} was held`);
                holder.set(m.orderingKey, m.id);
                claims.set(m.id, (claims.get(m.id) ?? 0) + 1);
                claimOrder.set(m.orderingKey, [...(claimOrder.get(m.orderingKey) ?? []), m.id]);
              }
              if (batch.length === 0) {
                idleRounds += 1;
                if (idleRounds > 5_000) throw new Error(`claimers found nothing due with ${total - delivered} messages undelivered`);
                await new Promise((resolve) => setTimeout(resolve, 1));
                continue;
              }
              idleRounds = 0;
              await Promise.all(
                batch.map(async (m) => {
                  await yieldToOthers();
                  // Released before the delivery commits: from here nobody may claim the next one
                  // of this key until markDelivered has committed.
                  holder.delete(m.orderingKey);
                  await claimer.markDelivered(m.id, T0);
                  delivered += 1;
                }),
              );
            }
          };
          await Promise.all(Array.from({ length: 8 }, (_, i) => worker(stores[i % stores.length]!)));

          expect(overlaps).to.deep.equal([]);
          expect(claims.size).to.equal(total);
          expect([...claims.values()].every((count) => count === 1)).to.equal(true);
          for (const key of keys) {
            expect(claimOrder.get(key)).to.deep.equal(Array.from({ length: perKey }, (_, n) => `${key}-m${n + 1}`));
          }
          const settled = await store.listOutboxMessages({ status: 'delivered', count: 0, offset: 0 });
          expect(settled.total).to.equal(total);
        } finally {
          for (const other of others) await other.close();
        }
      });
    });

    describe('outbox: settling and dead letters', function () {
      const ctx = freshStore();

      it('dead-letters a message with its OperationOutcome, holding its key until an operator retries it', async function () {
        const store = ctx.store();
        await enqueueEach(store, [outboxMessage('d1', 'ref-d'), outboxMessage('d2', 'ref-d'), outboxMessage('other', 'ref-o')]);
        expect(await claimIds(store)).to.deep.equal(['d1', 'other']);
        const refusal = failureOutcome('processing', 'EHR answered 400: Appointment.participant is required');
        await store.markDead('d1', refusal, minutesAfter(1));

        const dead = await store.readOutboxMessage('d1');
        expect(dead).to.deep.include({ status: 'dead', attempts: 1, updatedAt: minutesAfter(1).toISOString() });
        expect(dead?.lastError).to.deep.equal(refusal);
        // A day later d2 is still held behind the dead d1 (the other key's lease ran out, so it comes back).
        expect(await claimIds(store, minutesAfter(24 * 60))).to.deep.equal(['other']);

        const listed = await store.listOutboxMessages({ status: 'dead', count: 10, offset: 0 });
        expect(listed.total).to.equal(1);
        expect(listed.messages).to.deep.equal([dead]);

        expect(await store.retryDeadMessage('d1', minutesAfter(30))).to.equal(true);
        const revived = await store.readOutboxMessage('d1');
        expect(revived).to.deep.include({ status: 'pending', attempts: 1, nextAttemptAt: minutesAfter(30).toISOString() });
        expect(revived?.lastError).to.deep.equal(refusal);
        expect(await store.retryDeadMessage('d1', minutesAfter(30))).to.equal(false);
        expect(await store.retryDeadMessage('unknown', minutesAfter(30))).to.equal(false);

        const again = await store.claimDueMessages(minutesAfter(30), { limit: 10, leaseMs: LEASE_MS });
        expect(again.map((m) => [m.id, m.attempts])).to.deep.equal([['d1', 2]]);
        await store.markDelivered('d1', minutesAfter(31));
        expect(await claimIds(store, minutesAfter(31))).to.deep.equal(['d2']);
      });

      it('records the delivery, and never turns a delivered message back: a late retry or dead-letter leaves it delivered', async function () {
        const store = ctx.store();
        await enqueueEach(store, [outboxMessage('m1', 'ref-1')]);
        await claimIds(store, T0);
        // The first worker is slow; its lease runs out and a second worker takes the message over.
        await claimIds(store, minutesAfter(2));
        await store.markDelivered('m1', minutesAfter(3));
        const delivered = await store.readOutboxMessage('m1');
        expect(delivered).to.deep.include({
          status: 'delivered',
          attempts: 2,
          deliveredAt: minutesAfter(3).toISOString(),
          updatedAt: minutesAfter(3).toISOString(),
        });

        await store.scheduleRetry('m1', minutesAfter(10), failureOutcome('transient', 'timeout'), minutesAfter(4));
        await store.markDead('m1', failureOutcome('processing', 'refused'), minutesAfter(4));
        await store.markDelivered('m1', minutesAfter(5));
        expect(await store.readOutboxMessage('m1')).to.deep.equal(delivered);
        expect(await store.retryDeadMessage('m1', minutesAfter(5))).to.equal(false);
        expect(await claimIds(store, minutesAfter(60 * 24 * 7))).to.deep.equal([]);
      });

      it('does not revive a dead message on a late retry from its worker', async function () {
        const store = ctx.store();
        await enqueueEach(store, [outboxMessage('m1', 'ref-1')]);
        await claimIds(store, T0);
        await store.markDead('m1', failureOutcome('processing', 'refused'), minutesAfter(1));
        await store.scheduleRetry('m1', minutesAfter(2), failureOutcome('transient', 'timeout'), minutesAfter(1));
        expect((await store.readOutboxMessage('m1'))?.status).to.equal('dead');
      });

      it('refuses to settle a message it does not know', async function () {
        const store = ctx.store();
        expect(await rejectionOf(store.markDelivered('nope', T0))).to.be.instanceOf(Error);
        expect(await rejectionOf(store.scheduleRetry('nope', T0, failureOutcome('transient', 'x'), T0))).to.be.instanceOf(Error);
        expect(await rejectionOf(store.markDead('nope', failureOutcome('processing', 'x'), T0))).to.be.instanceOf(Error);
        expect(await store.readOutboxMessage('nope')).to.equal(undefined);
      });

      it('lists messages by status and tenant, a page at a time with the total, in sequence order', async function () {
        const store = ctx.store();
        await enqueueEach(store, [
          outboxMessage('a1', 'ref-1'),
          outboxMessage('b1', 'ref-2', { tenant: B }),
          outboxMessage('a2', 'ref-3'),
          outboxMessage('a3', 'ref-4'),
          outboxMessage('b2', 'ref-5', { tenant: B }),
          outboxMessage('a4', 'ref-6'),
        ]);
        const claimed = await claimIds(store, T0, 2);
        expect(claimed).to.deep.equal(['a1', 'b1']);
        await store.markDelivered('a1', T0);

        const page = async (filter: Partial<Parameters<ResourceStore['listOutboxMessages']>[0]>): Promise<[string[], number]> => {
          const { messages, total } = await store.listOutboxMessages({ count: 100, offset: 0, ...filter });
          return [messages.map((m: OutboxMessage) => m.id), total];
        };
        expect(await page({})).to.deep.equal([['a1', 'b1', 'a2', 'a3', 'b2', 'a4'], 6]);
        expect(await page({ count: 2, offset: 0 })).to.deep.equal([['a1', 'b1'], 6]);
        expect(await page({ count: 2, offset: 2 })).to.deep.equal([['a2', 'a3'], 6]);
        expect(await page({ count: 2, offset: 6 })).to.deep.equal([[], 6]);
        expect(await page({ count: 0 })).to.deep.equal([[], 6]);
        expect(await page({ tenant: B })).to.deep.equal([['b1', 'b2'], 2]);
        expect(await page({ status: 'pending' })).to.deep.equal([['a2', 'a3', 'b2', 'a4'], 4]);
        expect(await page({ status: 'pending', tenant: A, count: 2, offset: 1 })).to.deep.equal([['a3', 'a4'], 3]);
        expect(await page({ status: 'delivering' })).to.deep.equal([['b1'], 1]);
        expect(await page({ status: 'delivered' })).to.deep.equal([['a1'], 1]);
        expect(await page({ status: 'dead' })).to.deep.equal([[], 0]);
      });
    });

    describe('job cursors', function () {
      const ctx = freshStore();

      it('reads back the value last written under a name, of any JSON type, and nothing for an unknown name', async function () {
        const store = ctx.store();
        expect(await store.readCursor('ehr-poll:tenant-a')).to.equal(undefined);
        await store.writeCursor('ehr-poll:tenant-a', '2026-11-03T15:00:00.000Z', T0);
        expect(await store.readCursor('ehr-poll:tenant-a')).to.equal('2026-11-03T15:00:00.000Z');
        await store.writeCursor('ehr-poll:tenant-a', { lastUpdated: '2026-11-03T15:05:00.000Z', seen: ['sr-1', 'sr-2'] }, minutesAfter(5));
        expect(await store.readCursor('ehr-poll:tenant-a')).to.deep.equal({
          lastUpdated: '2026-11-03T15:05:00.000Z',
          seen: ['sr-1', 'sr-2'],
        });
        await store.writeCursor('counter', 42, T0);
        await store.writeCursor('nothing-yet', null, T0);
        expect(await store.readCursor('counter')).to.equal(42);
        expect(await store.readCursor('nothing-yet')).to.equal(null);
        expect(await store.readCursor('ehr-poll:tenant-b')).to.equal(undefined);
      });

      it('keeps cursors across a restart', async function () {
        const store = ctx.store();
        await store.writeCursor('ehr-poll:tenant-a', '2026-11-03T15:00:00.000Z', T0);
        await store.close();
        const reopened = await ctx.database().open();
        try {
          expect(await reopened.readCursor('ehr-poll:tenant-a')).to.equal('2026-11-03T15:00:00.000Z');
        } finally {
          await reopened.close();
        }
      });

      it('refuses a value that has no JSON form', async function () {
        const store = ctx.store();
        expect(await rejectionOf(store.writeCursor('x', undefined, T0))).to.be.instanceOf(TypeError);
      });
    });

    describe('job runs', function () {
      const ctx = freshStore();

      it('lets the first claim of a tick win and every later claim of it lose', async function () {
        const store = ctx.store();
        expect(await store.claimJobRun('ehr-poll:tenant-a:2026-11-03T15:00:00.000Z', T0)).to.equal(true);
        expect(await store.claimJobRun('ehr-poll:tenant-a:2026-11-03T15:00:00.000Z', T0)).to.equal(false);
        expect(await store.claimJobRun('ehr-poll:tenant-a:2026-11-03T15:01:00.000Z', minutesAfter(1))).to.equal(true);
        expect(await store.claimJobRun('ehr-poll:tenant-b:2026-11-03T15:00:00.000Z', T0)).to.equal(true);
      });

      it('lets exactly one of many simultaneous claims of a tick win, from every store on the database', async function () {
        const store = ctx.store();
        const others = ctx.database().severalStores ? [await ctx.database().open(), await ctx.database().open()] : [];
        try {
          const stores = [store, ...others];
          const results = await Promise.all(
            Array.from({ length: 30 }, (_, i) => stores[i % stores.length]!.claimJobRun('sweep:2026-11-03T15:00:00.000Z', T0)),
          );
          expect(results.filter((won) => won)).to.have.length(1);
        } finally {
          for (const other of others) await other.close();
        }
      });

      it('forgets ticks more than a day old, and only those', async function () {
        const store = ctx.store();
        expect(await store.claimJobRun('job:old', T0)).to.equal(true);
        expect(await store.claimJobRun('job:recent', minutesAfter(120))).to.equal(true);
        // A day and an hour later: pruning is due again and drops what was claimed before T0 + 1 h.
        const later = minutesAfter(25 * 60);
        expect(await store.claimJobRun('job:new', later)).to.equal(true);
        expect(await store.claimJobRun('job:recent', later)).to.equal(false);
        expect(await store.claimJobRun('job:old', later)).to.equal(true);
      });
    });

    describe('ping and close', function () {
      const ctx = freshStore();

      it('answers ping while open, and refuses work once closed', async function () {
        const store = ctx.store();
        await store.ping();
        await store.close();
        await store.close();
        expect(await rejectionOf(store.ping())).to.be.instanceOf(Error);
        expect(await rejectionOf(store.read([A], 'Patient', 'x'))).to.be.instanceOf(Error);
        expect(await rejectionOf(store.transaction(async () => 1))).to.be.instanceOf(Error);
      });
    });
  });
}
