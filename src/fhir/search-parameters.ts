/**
 * The search parameters the gateway supports: the single source of truth for the store's search
 * index, the search query parser and the CapabilityStatement (`rest.resource.searchParam`).
 *
 * Each parameter names its code, type, the official SearchParameter it implements (R4 core, or
 * Da Vinci PDex Plan-Net for `InsurancePlan.network`), and a pure extractor that turns a resource
 * into the values indexed for it. Matching rules follow https://hl7.org/fhir/R4/search.html:
 * tokens (`system|code`, `|code`, `code`, `system|`, `:not`), references (`Type/id`, a bare id,
 * absolute URLs, `:Type`), strings (case- and accent-insensitive starts-with, `:exact`,
 * `:contains`), dates as ranges with the prefixes eq/ne/gt/lt/ge/le/sa/eb, and `:missing`.
 * Comma-separated values are ORed; repeated parameters are ANDed.
 */
import type {
  Address,
  Appointment,
  CodeableConcept,
  Coverage,
  Endpoint,
  HealthcareService,
  HumanName,
  Identifier,
  InsurancePlan,
  Location,
  OperationOutcomeIssue,
  Organization,
  OrganizationAffiliation,
  Patient,
  Period,
  Practitioner,
  PractitionerRole,
  Reference,
  Resource,
  ServiceRequest,
  Task,
} from 'fhir/r4.js';
import { errorIssue } from './outcomes.js';

/** One parsed search parameter: the values are ORed, several parameters are ANDed. */
export interface SearchCriterion {
  /** The search parameter's code, e.g. `focus`, `beneficiary`, `_id`, `_lastUpdated`. */
  name: string;
  /** e.g. `exact`, `contains`, `missing`, `not` (only where the parameter's type allows). */
  modifier?: string;
  /** Raw values from the query string, already split on unescaped commas. */
  values: string[];
}

export type SearchParameterType = 'token' | 'reference' | 'string' | 'date' | 'uri';

/** One value a resource is indexed under for a search parameter. */
export type IndexValue =
  | { kind: 'token'; system?: string; code: string }
  | { kind: 'reference'; type: string; id: string }
  | { kind: 'string'; value: string }
  | { kind: 'date'; low: string; high: string }
  | { kind: 'uri'; value: string };

export interface SearchParameterDefinition {
  /** The code used in the query string, e.g. `patient`, `business-status`. */
  readonly code: string;
  readonly type: SearchParameterType;
  /** FHIR description, used as `documentation` in the CapabilityStatement. */
  readonly description: string;
  /** Canonical URL of the SearchParameter this implements (`searchParam.definition`). */
  readonly definition: string;
  /** The FHIRPath expression of that SearchParameter, for documentation. */
  readonly expression: string;
  /** For references: the resource types a `:Type` modifier may name; absent = any type. */
  readonly target?: readonly string[];
  /** Pure: the values the resource is indexed under. */
  readonly extract: (resource: Resource) => IndexValue[];
}

// ---------------------------------------------------------------------------------------------
// Dates: every value is a range [low, high] of UTC instants with millisecond precision, written
// as fixed-width ISO strings so that string order is time order in both databases.
// https://hl7.org/fhir/R4/search.html#date: "the range of the value is determined by its precision"
// ---------------------------------------------------------------------------------------------

export interface DateRange {
  /** Inclusive lower bound, `YYYY-MM-DDTHH:mm:ss.sssZ`. */
  low: string;
  /** Inclusive upper bound, `YYYY-MM-DDTHH:mm:ss.sssZ`. */
  high: string;
}

export const DATE_MIN = '0000-01-01T00:00:00.000Z';
export const DATE_MAX = '9999-12-31T23:59:59.999Z';

const DATE_PATTERN = /^(\d{4})(?:-(\d{2})(?:-(\d{2})(?:T(\d{2}):(\d{2})(?::(\d{2})(?:\.(\d{1,9}))?)?(Z|[+-]\d{2}:\d{2})?)?)?)?$/;

function utcMillis(year: number, month: number, day: number, hour = 0, minute = 0, second = 0, ms = 0): number {
  // Date.UTC maps years 0-99 to 1900-1999; setUTCFullYear does not.
  const d = new Date(0);
  d.setUTCFullYear(year, month - 1, day);
  d.setUTCHours(hour, minute, second, ms);
  return d.getTime();
}

const MIN_MILLIS = Date.parse(DATE_MIN);
const MAX_MILLIS = Date.parse(DATE_MAX);

function isoOf(millis: number): string {
  if (millis <= MIN_MILLIS) return DATE_MIN;
  if (millis >= MAX_MILLIS) return DATE_MAX;
  return new Date(millis).toISOString();
}

/**
 * The range a FHIR date, dateTime or instant covers, by its precision: `2026` is the whole year,
 * `2026-11-03T10:00:00-05:00` that second. Values without a zone are taken as UTC.
 * Undefined when the value is not a valid date.
 */
export function dateRangeOf(value: string): DateRange | undefined {
  const m = DATE_PATTERN.exec(value);
  if (!m) return undefined;
  const [, y, mo, d, h, mi, s, frac, zone] = m;
  const year = Number(y);
  const month = mo === undefined ? undefined : Number(mo);
  const day = d === undefined ? undefined : Number(d);
  if (month !== undefined && (month < 1 || month > 12)) return undefined;
  if (month === undefined) {
    return { low: isoOf(utcMillis(year, 1, 1)), high: isoOf(utcMillis(year + 1, 1, 1) - 1) };
  }
  if (day === undefined) {
    return { low: isoOf(utcMillis(year, month, 1)), high: isoOf(utcMillis(year, month + 1, 1) - 1) };
  }
  const dayStart = new Date(utcMillis(year, month, day));
  if (day < 1 || dayStart.getUTCDate() !== day || dayStart.getUTCMonth() !== month - 1) return undefined;
  if (h === undefined) {
    return { low: isoOf(dayStart.getTime()), high: isoOf(utcMillis(year, month, day + 1) - 1) };
  }
  const hour = Number(h);
  const minute = Number(mi);
  const second = s === undefined ? 0 : Number(s);
  if (hour > 23 || minute > 59 || second > 59) return undefined;
  let offsetMinutes = 0;
  if (zone !== undefined && zone !== 'Z') {
    const sign = zone.startsWith('-') ? -1 : 1;
    const oh = Number(zone.slice(1, 3));
    const om = Number(zone.slice(4, 6));
    if (oh > 14 || om > 59) return undefined;
    offsetMinutes = sign * (oh * 60 + om);
  }
  const ms = frac === undefined ? 0 : Number(frac.slice(0, 3).padEnd(3, '0'));
  const start = utcMillis(year, month, day, hour, minute, second, ms) - offsetMinutes * 60_000;
  let width: number;
  if (s === undefined) width = 60_000;
  else if (frac === undefined) width = 1_000;
  else width = 1;
  return { low: isoOf(start), high: isoOf(start + width - 1) };
}

/** A Period as a range; an open end is unbounded (https://hl7.org/fhir/R4/search.html#date). */
export function periodRangeOf(period: Period): DateRange | undefined {
  const start = period.start === undefined ? undefined : dateRangeOf(period.start);
  const end = period.end === undefined ? undefined : dateRangeOf(period.end);
  if (!start && !end) return undefined;
  return { low: start?.low ?? DATE_MIN, high: end?.high ?? DATE_MAX };
}

// ---------------------------------------------------------------------------------------------
// Strings and references
// ---------------------------------------------------------------------------------------------

/**
 * The form strings are compared in: "case-insensitive and accent-insensitive"
 * (https://hl7.org/fhir/R4/search.html#string).
 */
export function normalizeSearchString(value: string): string {
  return value.normalize('NFD').replace(/\p{M}/gu, '').toLowerCase();
}

const RESOURCE_TYPE_PATTERN = /^[A-Z][A-Za-z]{1,63}$/;
const ID_PATTERN = /^[A-Za-z0-9\-.]{1,64}$/;

/**
 * `Type/id` from a literal reference: relative (`Patient/1`), absolute
 * (`https://ehr.example/fhir/Patient/1`) or versioned (`Patient/1/_history/2`). Contained (`#x`)
 * and `urn:uuid:` references have no stored target, so they give undefined.
 */
export function parseLiteralReference(reference: string): { type: string; id: string } | undefined {
  const withoutVersion = reference.replace(/\/_history\/[^/]*$/, '');
  const parts = withoutVersion.split('/');
  if (parts.length < 2) return undefined;
  const type = parts[parts.length - 2] ?? '';
  const id = parts[parts.length - 1] ?? '';
  if (!RESOURCE_TYPE_PATTERN.test(type) || !ID_PATTERN.test(id)) return undefined;
  return { type, id };
}

// ---------------------------------------------------------------------------------------------
// Extractor helpers: small and pure, so the table below reads like the FHIRPath it implements.
// ---------------------------------------------------------------------------------------------

type Many<T> = T | readonly (T | undefined)[] | undefined;

function list<T>(value: Many<T>): T[] {
  if (value === undefined) return [];
  if (Array.isArray(value)) return (value as readonly (T | undefined)[]).filter((v): v is T => v !== undefined);
  return [value as T];
}

function codes(system: string | undefined, value: Many<string>): IndexValue[] {
  return list(value).map((code) => (system === undefined ? { kind: 'token', code } : { kind: 'token', system, code }));
}

function concepts(value: Many<CodeableConcept>): IndexValue[] {
  return list(value).flatMap((cc) =>
    list(cc.coding)
      .filter((c) => c.code !== undefined)
      .map((c): IndexValue =>
        c.system === undefined ? { kind: 'token', code: c.code! } : { kind: 'token', system: c.system, code: c.code! },
      ),
  );
}

function identifiers(value: Many<Identifier>): IndexValue[] {
  return list(value)
    .filter((i) => i.value !== undefined)
    .map((i): IndexValue =>
      i.system === undefined ? { kind: 'token', code: i.value! } : { kind: 'token', system: i.system, code: i.value! },
    );
}

function booleans(value: boolean | undefined): IndexValue[] {
  return value === undefined ? [] : [{ kind: 'token', code: String(value) }];
}

function references(value: Many<Reference>, onlyType?: string): IndexValue[] {
  return list(value).flatMap((ref): IndexValue[] => {
    if (ref.reference === undefined) return [];
    const parsed = parseLiteralReference(ref.reference);
    if (!parsed || (onlyType !== undefined && parsed.type !== onlyType)) return [];
    return [{ kind: 'reference', type: parsed.type, id: parsed.id }];
  });
}

function strings(value: Many<string>): IndexValue[] {
  return list(value)
    .filter((s) => s.trim() !== '')
    .map((s) => ({ kind: 'string', value: s }));
}

function humanNames(value: Many<HumanName>): IndexValue[] {
  return list(value).flatMap((n) => strings([n.text, n.family, ...list(n.given), ...list(n.prefix), ...list(n.suffix)]));
}

function addresses(value: Many<Address>): IndexValue[] {
  return list(value).flatMap((a) => strings([a.text, ...list(a.line), a.city, a.district, a.state, a.postalCode, a.country]));
}

function dates(value: Many<string>): IndexValue[] {
  return list(value).flatMap((v): IndexValue[] => {
    const range = dateRangeOf(v);
    return range ? [{ kind: 'date', ...range }] : [];
  });
}

/** Removes duplicate values: one index row per distinct value is enough. */
function distinct(values: IndexValue[]): IndexValue[] {
  const seen = new Set<string>();
  return values.filter((v) => {
    const key = JSON.stringify(v);
    if (seen.has(key)) return false;
    seen.add(key);
    return true;
  });
}

// Code systems of the `code` elements indexed below, so `system|code` works on them too
// (https://hl7.org/fhir/R4/search.html#token: a code's system is that of its required binding).
const REQUEST_STATUS = 'http://hl7.org/fhir/request-status';
const REQUEST_INTENT = 'http://hl7.org/fhir/request-intent';
const TASK_STATUS = 'http://hl7.org/fhir/task-status';
const APPOINTMENT_STATUS = 'http://hl7.org/fhir/appointmentstatus';
const FM_STATUS = 'http://hl7.org/fhir/fm-status';
const ADMINISTRATIVE_GENDER = 'http://hl7.org/fhir/administrative-gender';
const LOCATION_STATUS = 'http://hl7.org/fhir/location-status';
const PUBLICATION_STATUS = 'http://hl7.org/fhir/publication-status';
const ENDPOINT_STATUS = 'http://hl7.org/fhir/endpoint-status';

const CORE = 'http://hl7.org/fhir/SearchParameter/';
const PLAN_NET = 'http://hl7.org/fhir/us/davinci-pdex-plan-net/SearchParameter/';

interface Spec<R extends Resource> {
  code: string;
  type: SearchParameterType;
  description: string;
  definition: string;
  expression: string;
  target?: readonly string[];
  extract: (resource: R) => IndexValue[];
}

/** Builds one resource type's list; the table is keyed by type, so the narrowing cast is sound. */
function parametersOf<R extends Resource>(specs: readonly Spec<R>[]): readonly SearchParameterDefinition[] {
  return Object.freeze(
    specs.map((s) =>
      Object.freeze({
        ...s,
        extract: (resource: Resource): IndexValue[] => distinct(s.extract(resource as R)),
      }),
    ),
  );
}

function identifierParam<R extends Resource & { identifier?: Identifier[] }>(
  type: string,
  description: string,
  definition = `${CORE}${type}-identifier`,
): Spec<R> {
  return {
    code: 'identifier',
    type: 'token',
    description,
    definition,
    expression: `${type}.identifier`,
    extract: (r) => identifiers(r.identifier),
  };
}

/** A reference parameter of R4 core, whose canonical is `${CORE}{type}-{code}`. */
function referenceParam<R extends Resource>(
  type: string,
  code: string,
  expression: string,
  description: string,
  extract: (resource: R) => IndexValue[],
  target?: readonly string[],
): Spec<R> {
  return { code, type: 'reference', description, definition: `${CORE}${type}-${code}`, expression, ...(target ? { target } : {}), extract };
}

/** Parameters every resource type has (https://hl7.org/fhir/R4/search.html#all), answered from the stored row. */
export const COMMON_SEARCH_PARAMETERS: readonly SearchParameterDefinition[] = parametersOf<Resource>([
  {
    code: '_id',
    type: 'token',
    description: 'Logical id of this artifact',
    definition: `${CORE}Resource-id`,
    expression: 'Resource.id',
    extract: (r) => codes(undefined, r.id),
  },
  {
    code: '_lastUpdated',
    type: 'date',
    description: 'When the resource version last changed',
    definition: `${CORE}Resource-lastUpdated`,
    expression: 'Resource.meta.lastUpdated',
    extract: (r) => dates(r.meta?.lastUpdated),
  },
]);

export const SEARCH_PARAMETERS = {
  ServiceRequest: parametersOf<ServiceRequest>([
    identifierParam('ServiceRequest', 'Identifiers assigned to this order', `${CORE}clinical-identifier`),
    {
      code: 'patient',
      type: 'reference',
      description: 'Search by subject - a patient',
      definition: `${CORE}clinical-patient`,
      expression: 'ServiceRequest.subject.where(resolve() is Patient)',
      target: ['Patient'],
      extract: (r) => references(r.subject, 'Patient'),
    },
    referenceParam('ServiceRequest', 'subject', 'ServiceRequest.subject', 'Search by subject', (r) => references(r.subject), [
      'Group',
      'Device',
      'Patient',
      'Location',
    ]),
    referenceParam(
      'ServiceRequest',
      'requester',
      'ServiceRequest.requester',
      'Who/what is requesting service',
      (r) => references(r.requester),
      ['Practitioner', 'Organization', 'Device', 'Patient', 'PractitionerRole', 'RelatedPerson'],
    ),
    {
      code: 'performer',
      type: 'reference',
      description: 'Requested performer',
      definition: `${CORE}ServiceRequest-performer`,
      expression: 'ServiceRequest.performer',
      target: ['Practitioner', 'Organization', 'CareTeam', 'Device', 'Patient', 'HealthcareService', 'PractitionerRole', 'RelatedPerson'],
      extract: (r) => references(r.performer),
    },
    {
      code: 'status',
      type: 'token',
      description: 'draft | active | on-hold | revoked | completed | entered-in-error | unknown',
      definition: `${CORE}ServiceRequest-status`,
      expression: 'ServiceRequest.status',
      extract: (r) => codes(REQUEST_STATUS, r.status),
    },
    {
      code: 'intent',
      type: 'token',
      description: 'proposal | plan | directive | order | original-order | reflex-order | filler-order | instance-order | option',
      definition: `${CORE}ServiceRequest-intent`,
      expression: 'ServiceRequest.intent',
      extract: (r) => codes(REQUEST_INTENT, r.intent),
    },
    {
      code: 'code',
      type: 'token',
      description: 'What is being requested/ordered',
      definition: `${CORE}clinical-code`,
      expression: 'ServiceRequest.code',
      extract: (r) => concepts(r.code),
    },
    {
      code: 'authored',
      type: 'date',
      description: 'Date request signed',
      definition: `${CORE}ServiceRequest-authored`,
      expression: 'ServiceRequest.authoredOn',
      extract: (r) => dates(r.authoredOn),
    },
  ]),

  Task: parametersOf<Task>([
    identifierParam('Task', 'Search for a task instance by its business identifier'),
    referenceParam('Task', 'focus', 'Task.focus', 'Search by task focus', (r) => references(r.focus)),
    {
      code: 'patient',
      type: 'reference',
      description: 'Search by patient',
      definition: `${CORE}Task-patient`,
      expression: 'Task.for.where(resolve() is Patient)',
      target: ['Patient'],
      extract: (r) => references(r.for, 'Patient'),
    },
    referenceParam('Task', 'subject', 'Task.for', 'Search by subject', (r) => references(r.for)),
    {
      code: 'status',
      type: 'token',
      description: 'Search by task status',
      definition: `${CORE}Task-status`,
      expression: 'Task.status',
      extract: (r) => codes(TASK_STATUS, r.status),
    },
    {
      code: 'business-status',
      type: 'token',
      description: 'Search by business status',
      definition: `${CORE}Task-business-status`,
      expression: 'Task.businessStatus',
      extract: (r) => concepts(r.businessStatus),
    },
    {
      code: 'code',
      type: 'token',
      description: 'Search by task code',
      definition: `${CORE}Task-code`,
      expression: 'Task.code',
      extract: (r) => concepts(r.code),
    },
    {
      code: 'owner',
      type: 'reference',
      description: 'Search by task owner',
      definition: `${CORE}Task-owner`,
      expression: 'Task.owner',
      target: ['Practitioner', 'Organization', 'CareTeam', 'Device', 'Patient', 'HealthcareService', 'PractitionerRole', 'RelatedPerson'],
      extract: (r) => references(r.owner),
    },
    referenceParam('Task', 'based-on', 'Task.basedOn', 'Search by requests this task is based on', (r) => references(r.basedOn)),
    referenceParam('Task', 'part-of', 'Task.partOf', 'Search by task this task is part of', (r) => references(r.partOf), ['Task']),
    {
      code: 'authored-on',
      type: 'date',
      description: 'Search by creation date',
      definition: `${CORE}Task-authored-on`,
      expression: 'Task.authoredOn',
      extract: (r) => dates(r.authoredOn),
    },
    {
      code: 'modified',
      type: 'date',
      description: 'Search by last modification date',
      definition: `${CORE}Task-modified`,
      expression: 'Task.lastModified',
      extract: (r) => dates(r.lastModified),
    },
  ]),

  Appointment: parametersOf<Appointment>([
    identifierParam('Appointment', 'An Identifier of the Appointment'),
    {
      code: 'patient',
      type: 'reference',
      description: 'One of the individuals of the appointment is this patient',
      definition: `${CORE}Appointment-patient`,
      expression: 'Appointment.participant.actor.where(resolve() is Patient)',
      target: ['Patient'],
      extract: (r) =>
        references(
          list(r.participant).map((p) => p.actor),
          'Patient',
        ),
    },
    {
      code: 'actor',
      type: 'reference',
      description: 'Any one of the individuals participating in the appointment',
      definition: `${CORE}Appointment-actor`,
      expression: 'Appointment.participant.actor',
      target: ['Practitioner', 'Device', 'Patient', 'HealthcareService', 'PractitionerRole', 'RelatedPerson', 'Location'],
      extract: (r) => references(list(r.participant).map((p) => p.actor)),
    },
    {
      code: 'location',
      type: 'reference',
      description: 'This location is listed in the participants of the appointment',
      definition: `${CORE}Appointment-location`,
      expression: 'Appointment.participant.actor.where(resolve() is Location)',
      target: ['Location'],
      extract: (r) =>
        references(
          list(r.participant).map((p) => p.actor),
          'Location',
        ),
    },
    {
      code: 'status',
      type: 'token',
      description: 'The overall status of the appointment',
      definition: `${CORE}Appointment-status`,
      expression: 'Appointment.status',
      extract: (r) => codes(APPOINTMENT_STATUS, r.status),
    },
    {
      code: 'date',
      type: 'date',
      description: 'Appointment date/time.',
      definition: `${CORE}Appointment-date`,
      expression: 'Appointment.start',
      extract: (r) => dates(r.start),
    },
    referenceParam(
      'Appointment',
      'based-on',
      'Appointment.basedOn',
      'The service request this appointment is allocated to assess',
      (r) => references(r.basedOn),
      ['ServiceRequest'],
    ),
  ]),

  Coverage: parametersOf<Coverage>([
    identifierParam('Coverage', 'The primary identifier of the insured and the coverage'),
    referenceParam('Coverage', 'beneficiary', 'Coverage.beneficiary', 'Covered party', (r) => references(r.beneficiary), ['Patient']),
    {
      code: 'patient',
      type: 'reference',
      description: 'Retrieve coverages for a patient',
      definition: `${CORE}Coverage-patient`,
      expression: 'Coverage.beneficiary',
      target: ['Patient'],
      extract: (r) => references(r.beneficiary, 'Patient'),
    },
    referenceParam(
      'Coverage',
      'payor',
      'Coverage.payor',
      'The identity of the insurer or party paying for services',
      (r) => references(r.payor),
      ['Organization', 'Patient', 'RelatedPerson'],
    ),
    referenceParam('Coverage', 'subscriber', 'Coverage.subscriber', 'Reference to the subscriber', (r) => references(r.subscriber), [
      'Patient',
      'RelatedPerson',
    ]),
    referenceParam(
      'Coverage',
      'policy-holder',
      'Coverage.policyHolder',
      'Reference to the policyholder',
      (r) => references(r.policyHolder),
      ['Organization', 'Patient', 'RelatedPerson'],
    ),
    {
      code: 'status',
      type: 'token',
      description: 'The status of the Coverage',
      definition: `${CORE}Coverage-status`,
      expression: 'Coverage.status',
      extract: (r) => codes(FM_STATUS, r.status),
    },
    {
      code: 'type',
      type: 'token',
      description: 'The kind of coverage (health plan, auto, Workers Compensation)',
      definition: `${CORE}Coverage-type`,
      expression: 'Coverage.type',
      extract: (r) => concepts(r.type),
    },
  ]),

  Patient: parametersOf<Patient>([
    identifierParam('Patient', 'A patient identifier'),
    {
      code: 'name',
      type: 'string',
      description:
        'A server defined search that may match any of the string fields in the HumanName, including family, give, prefix, suffix, suffix, and/or text',
      definition: `${CORE}Patient-name`,
      expression: 'Patient.name',
      extract: (r) => humanNames(r.name),
    },
    {
      code: 'family',
      type: 'string',
      description: 'A portion of the family name of the patient',
      definition: `${CORE}individual-family`,
      expression: 'Patient.name.family',
      extract: (r) => strings(list(r.name).map((n) => n.family)),
    },
    {
      code: 'given',
      type: 'string',
      description: 'A portion of the given name of the patient',
      definition: `${CORE}individual-given`,
      expression: 'Patient.name.given',
      extract: (r) => strings(list(r.name).flatMap((n) => list(n.given))),
    },
    {
      code: 'birthdate',
      type: 'date',
      description: "The patient's date of birth",
      definition: `${CORE}individual-birthdate`,
      expression: 'Patient.birthDate',
      extract: (r) => dates(r.birthDate),
    },
    {
      code: 'gender',
      type: 'token',
      description: 'Gender of the patient',
      definition: `${CORE}individual-gender`,
      expression: 'Patient.gender',
      extract: (r) => codes(ADMINISTRATIVE_GENDER, r.gender),
    },
  ]),

  Practitioner: parametersOf<Practitioner>([
    identifierParam('Practitioner', "A practitioner's Identifier"),
    {
      code: 'name',
      type: 'string',
      description:
        'A server defined search that may match any of the string fields in the HumanName, including family, give, prefix, suffix, suffix, and/or text',
      definition: `${CORE}Practitioner-name`,
      expression: 'Practitioner.name',
      extract: (r) => humanNames(r.name),
    },
  ]),

  PractitionerRole: parametersOf<PractitionerRole>([
    identifierParam('PractitionerRole', "A practitioner's Identifier"),
    referenceParam(
      'PractitionerRole',
      'practitioner',
      'PractitionerRole.practitioner',
      'Practitioner that is able to provide the defined services for the organization',
      (r) => references(r.practitioner),
      ['Practitioner'],
    ),
    referenceParam(
      'PractitionerRole',
      'organization',
      'PractitionerRole.organization',
      'The identity of the organization the practitioner represents / acts on behalf of',
      (r) => references(r.organization),
      ['Organization'],
    ),
    referenceParam(
      'PractitionerRole',
      'location',
      'PractitionerRole.location',
      'One of the locations at which this practitioner provides care',
      (r) => references(r.location),
      ['Location'],
    ),
  ]),

  Location: parametersOf<Location>([
    identifierParam('Location', 'An identifier for the location'),
    {
      code: 'name',
      type: 'string',
      description: "A portion of the location's name or alias",
      definition: `${CORE}Location-name`,
      expression: 'Location.name | Location.alias',
      extract: (r) => strings([r.name, ...list(r.alias)]),
    },
    {
      code: 'address',
      type: 'string',
      description: 'A (part of the) address of the location',
      definition: `${CORE}Location-address`,
      expression: 'Location.address',
      extract: (r) => addresses(r.address),
    },
    {
      code: 'address-city',
      type: 'string',
      description: 'A city specified in an address',
      definition: `${CORE}Location-address-city`,
      expression: 'Location.address.city',
      extract: (r) => strings(r.address?.city),
    },
    {
      code: 'address-state',
      type: 'string',
      description: 'A state specified in an address',
      definition: `${CORE}Location-address-state`,
      expression: 'Location.address.state',
      extract: (r) => strings(r.address?.state),
    },
    {
      code: 'address-postalcode',
      type: 'string',
      description: 'A postal code specified in an address',
      definition: `${CORE}Location-address-postalcode`,
      expression: 'Location.address.postalCode',
      extract: (r) => strings(r.address?.postalCode),
    },
    {
      code: 'status',
      type: 'token',
      description: 'Searches for locations with a specific kind of status',
      definition: `${CORE}Location-status`,
      expression: 'Location.status',
      extract: (r) => codes(LOCATION_STATUS, r.status),
    },
    referenceParam(
      'Location',
      'organization',
      'Location.managingOrganization',
      'Searches for locations that are managed by the provided organization',
      (r) => references(r.managingOrganization),
      ['Organization'],
    ),
    {
      code: 'type',
      type: 'token',
      description: 'A code for the type of location',
      definition: `${CORE}Location-type`,
      expression: 'Location.type',
      extract: (r) => concepts(r.type),
    },
    referenceParam('Location', 'partof', 'Location.partOf', 'A location of which this location is a part', (r) => references(r.partOf), [
      'Location',
    ]),
  ]),

  HealthcareService: parametersOf<HealthcareService>([
    identifierParam('HealthcareService', 'External identifiers for this item'),
    referenceParam(
      'HealthcareService',
      'location',
      'HealthcareService.location',
      'The location of the Healthcare Service',
      (r) => references(r.location),
      ['Location'],
    ),
    referenceParam(
      'HealthcareService',
      'organization',
      'HealthcareService.providedBy',
      'The organization that provides this Healthcare Service',
      (r) => references(r.providedBy),
      ['Organization'],
    ),
    {
      code: 'service-type',
      type: 'token',
      description: 'The type of service provided by this healthcare service',
      definition: `${CORE}HealthcareService-service-type`,
      expression: 'HealthcareService.type',
      extract: (r) => concepts(r.type),
    },
    {
      code: 'service-category',
      type: 'token',
      description: 'Service Category of the Healthcare Service',
      definition: `${CORE}HealthcareService-service-category`,
      expression: 'HealthcareService.category',
      extract: (r) => concepts(r.category),
    },
    {
      code: 'name',
      type: 'string',
      description: 'A portion of the Healthcare service name',
      definition: `${CORE}HealthcareService-name`,
      expression: 'HealthcareService.name',
      extract: (r) => strings(r.name),
    },
    {
      code: 'active',
      type: 'token',
      description: 'The Healthcare Service is currently marked as active',
      definition: `${CORE}HealthcareService-active`,
      expression: 'HealthcareService.active',
      extract: (r) => booleans(r.active),
    },
  ]),

  Organization: parametersOf<Organization>([
    identifierParam('Organization', "Any identifier for the organization (not the accreditation issuer's identifier)"),
    {
      code: 'name',
      type: 'string',
      description: "A portion of the organization's name or alias",
      definition: `${CORE}Organization-name`,
      expression: 'Organization.name | Organization.alias',
      extract: (r) => strings([r.name, ...list(r.alias)]),
    },
    {
      code: 'type',
      type: 'token',
      description: 'A code for the type of organization',
      definition: `${CORE}Organization-type`,
      expression: 'Organization.type',
      extract: (r) => concepts(r.type),
    },
    {
      code: 'active',
      type: 'token',
      description: 'Is the Organization record active',
      definition: `${CORE}Organization-active`,
      expression: 'Organization.active',
      extract: (r) => booleans(r.active),
    },
    referenceParam(
      'Organization',
      'partof',
      'Organization.partOf',
      'An organization of which this organization forms a part',
      (r) => references(r.partOf),
      ['Organization'],
    ),
    referenceParam(
      'Organization',
      'endpoint',
      'Organization.endpoint',
      'Technical endpoints providing access to services operated for the organization',
      (r) => references(r.endpoint),
      ['Endpoint'],
    ),
  ]),

  OrganizationAffiliation: parametersOf<OrganizationAffiliation>([
    identifierParam('OrganizationAffiliation', "An organization affiliation's Identifier"),
    referenceParam(
      'OrganizationAffiliation',
      'participating-organization',
      'OrganizationAffiliation.participatingOrganization',
      'The organization that provides services to the primary organization',
      (r) => references(r.participatingOrganization),
      ['Organization'],
    ),
    referenceParam(
      'OrganizationAffiliation',
      'primary-organization',
      'OrganizationAffiliation.organization',
      'The organization that receives the services from the participating organization',
      (r) => references(r.organization),
      ['Organization'],
    ),
    referenceParam(
      'OrganizationAffiliation',
      'network',
      'OrganizationAffiliation.network',
      "Health insurance provider network in which the participatingOrganization provides the role's services (if defined) at the indicated locations (if defined)",
      (r) => references(r.network),
      ['Organization'],
    ),
    referenceParam(
      'OrganizationAffiliation',
      'location',
      'OrganizationAffiliation.location',
      'The location(s) at which the role occurs',
      (r) => references(r.location),
      ['Location'],
    ),
    referenceParam(
      'OrganizationAffiliation',
      'service',
      'OrganizationAffiliation.healthcareService',
      'Healthcare services provided through the role',
      (r) => references(r.healthcareService),
      ['HealthcareService'],
    ),
    {
      code: 'active',
      type: 'token',
      description: 'Whether this organization affiliation record is in active use',
      definition: `${CORE}OrganizationAffiliation-active`,
      expression: 'OrganizationAffiliation.active',
      extract: (r) => booleans(r.active),
    },
  ]),

  InsurancePlan: parametersOf<InsurancePlan>([
    identifierParam('InsurancePlan', "Any identifier for the organization (not the accreditation issuer's identifier)"),
    referenceParam(
      'InsurancePlan',
      'owned-by',
      'InsurancePlan.ownedBy',
      'An organization of which this organization forms a part',
      (r) => references(r.ownedBy),
      ['Organization'],
    ),
    referenceParam(
      'InsurancePlan',
      'administered-by',
      'InsurancePlan.administeredBy',
      'Product administrator',
      (r) => references(r.administeredBy),
      ['Organization'],
    ),
    {
      code: 'name',
      type: 'string',
      description: "A portion of the organization's name or alias",
      definition: `${CORE}InsurancePlan-name`,
      expression: 'InsurancePlan.name | InsurancePlan.alias',
      extract: (r) => strings([r.name, ...list(r.alias)]),
    },
    {
      code: 'status',
      type: 'token',
      description: 'Is the Organization record active',
      definition: `${CORE}InsurancePlan-status`,
      expression: 'InsurancePlan.status',
      extract: (r) => codes(PUBLICATION_STATUS, r.status),
    },
    {
      code: 'type',
      type: 'token',
      description: 'A code for the type of organization',
      definition: `${CORE}InsurancePlan-type`,
      expression: 'InsurancePlan.type',
      extract: (r) => concepts(r.type),
    },
    {
      // Not in R4 core: Da Vinci PDex Plan-Net's parameter, the way directories find a payer's plans
      // by network (https://hl7.org/fhir/us/davinci-pdex-plan-net/SearchParameter-insuranceplan-network.html).
      code: 'network',
      type: 'reference',
      description: "Select Organization entries in a given InsurancePlan's network",
      definition: `${PLAN_NET}insuranceplan-network`,
      expression: 'InsurancePlan.network',
      target: ['Organization'],
      extract: (r) => references(r.network),
    },
  ]),

  Endpoint: parametersOf<Endpoint>([
    identifierParam('Endpoint', 'Identifies this endpoint across multiple systems'),
    referenceParam(
      'Endpoint',
      'organization',
      'Endpoint.managingOrganization',
      'The organization that is managing the endpoint',
      (r) => references(r.managingOrganization),
      ['Organization'],
    ),
    {
      code: 'status',
      type: 'token',
      description: 'The current status of the Endpoint (usually expected to be active)',
      definition: `${CORE}Endpoint-status`,
      expression: 'Endpoint.status',
      extract: (r) => codes(ENDPOINT_STATUS, r.status),
    },
    {
      code: 'name',
      type: 'string',
      description: 'A name that this endpoint can be identified by',
      definition: `${CORE}Endpoint-name`,
      expression: 'Endpoint.name',
      extract: (r) => strings(r.name),
    },
  ]),
} as const satisfies Record<string, readonly SearchParameterDefinition[]>;

export type SearchableResourceType = keyof typeof SEARCH_PARAMETERS;

export const SEARCHABLE_RESOURCE_TYPES = Object.freeze(Object.keys(SEARCH_PARAMETERS) as SearchableResourceType[]);

export function isSearchableResourceType(resourceType: string): resourceType is SearchableResourceType {
  return Object.hasOwn(SEARCH_PARAMETERS, resourceType);
}

/** The parameters of one resource type, type-specific ones after the common `_id` and `_lastUpdated`. */
export function searchParametersFor(resourceType: string): readonly SearchParameterDefinition[] {
  const specific = isSearchableResourceType(resourceType) ? SEARCH_PARAMETERS[resourceType] : [];
  return [...COMMON_SEARCH_PARAMETERS, ...specific];
}

/** The type-specific parameters only: those kept in the search index (the common ones live on the row). */
export function indexedSearchParametersFor(resourceType: string): readonly SearchParameterDefinition[] {
  return isSearchableResourceType(resourceType) ? SEARCH_PARAMETERS[resourceType] : [];
}

export function findSearchParameter(resourceType: string, code: string): SearchParameterDefinition | undefined {
  return searchParametersFor(resourceType).find((p) => p.code === code);
}

// ---------------------------------------------------------------------------------------------
// Parsing criteria into what the store matches
// ---------------------------------------------------------------------------------------------

export type DatePrefix = 'eq' | 'ne' | 'gt' | 'lt' | 'ge' | 'le' | 'sa' | 'eb';

export interface DateCondition {
  prefix: DatePrefix;
  range: DateRange;
}

export interface TokenMatch {
  /** undefined: any system; null: no system (`|code`); a string: that system. */
  system: string | null | undefined;
  /** undefined: any code (`system|`). */
  code: string | undefined;
}

export interface ReferenceMatch {
  /** undefined: any type (a bare id). */
  type: string | undefined;
  id: string;
}

export type StringMatchMode = 'starts-with' | 'exact' | 'contains';

/** A criterion, checked and parsed: what the store turns into SQL. Values are ORed. */
export type ParsedCriterion =
  | { kind: 'id'; ids: string[] }
  | { kind: 'lastUpdated'; conditions: DateCondition[] }
  | { kind: 'missing'; param: string; missing: boolean }
  | { kind: 'token'; param: string; negate: boolean; matches: TokenMatch[] }
  | { kind: 'reference'; param: string; matches: ReferenceMatch[] }
  | { kind: 'string'; param: string; mode: StringMatchMode; values: string[] }
  | { kind: 'date'; param: string; conditions: DateCondition[] }
  | { kind: 'uri'; param: string; values: string[] };

const MODIFIERS: Record<SearchParameterType, readonly string[]> = {
  token: ['missing', 'not'],
  reference: ['missing'],
  string: ['missing', 'exact', 'contains'],
  date: ['missing'],
  uri: ['missing'],
};

/** Splits on `separator` where it is not escaped with a backslash (https://hl7.org/fhir/R4/search.html#escaping). */
/** Splits on a separator not escaped with a backslash, keeping escapes for the value parsers. */
export function splitUnescaped(value: string, separator: string): string[] {
  const parts: string[] = [];
  let current = '';
  for (let i = 0; i < value.length; i++) {
    const ch = value[i];
    if (ch === '\\' && i + 1 < value.length) {
      current += ch + value[i + 1];
      i++;
    } else if (ch === separator) {
      parts.push(current);
      current = '';
    } else {
      current += ch;
    }
  }
  parts.push(current);
  return parts;
}

function unescapeSearchValue(value: string): string {
  return value.replace(/\\([\\,$|])/g, '$1');
}

const DATE_PREFIXES: readonly string[] = ['eq', 'ne', 'gt', 'lt', 'ge', 'le', 'sa', 'eb', 'ap'];

function parseDateCondition(value: string): DateCondition | 'ap' | undefined {
  const maybePrefix = value.slice(0, 2);
  const hasPrefix = DATE_PREFIXES.includes(maybePrefix);
  if (hasPrefix && maybePrefix === 'ap') return 'ap';
  const prefix = (hasPrefix ? maybePrefix : 'eq') as DatePrefix;
  const range = dateRangeOf(hasPrefix ? value.slice(2) : value);
  return range ? { prefix, range } : undefined;
}

function parseTokenMatch(value: string): TokenMatch {
  const parts = splitUnescaped(value, '|');
  if (parts.length === 1) return { system: undefined, code: unescapeSearchValue(value) };
  const system = unescapeSearchValue(parts[0] ?? '');
  const code = unescapeSearchValue(parts.slice(1).join('|'));
  return { system: system === '' ? null : system, code: code === '' ? undefined : code };
}

function parseReferenceMatch(value: string, typeModifier: string | undefined): ReferenceMatch | undefined {
  const raw = unescapeSearchValue(value);
  if (!raw.includes('/')) {
    return ID_PATTERN.test(raw) ? { type: typeModifier, id: raw } : undefined;
  }
  const parsed = parseLiteralReference(raw);
  if (!parsed) return undefined;
  if (typeModifier !== undefined && parsed.type !== typeModifier) return undefined;
  return parsed;
}

function badValue(name: string, diagnostics: string): OperationOutcomeIssue {
  return errorIssue('value', diagnostics, name);
}

/**
 * Checks and parses search criteria against the table. Issues name the parameter in `expression`;
 * diagnostics never echo the searched values (they may be patient data).
 * Empty values are ignored, as https://hl7.org/fhir/R4/search.html#errors asks.
 */
export function parseSearchCriteria(
  resourceType: string,
  criteria: readonly SearchCriterion[],
): { parsed: ParsedCriterion[]; issues: OperationOutcomeIssue[] } {
  const parsed: ParsedCriterion[] = [];
  const issues: OperationOutcomeIssue[] = [];
  for (const criterion of criteria) {
    const { name, modifier } = criterion;
    const definition = findSearchParameter(resourceType, name);
    if (!definition) {
      issues.push(errorIssue('not-supported', `Unknown search parameter '${name}' for ${resourceType}`, name));
      continue;
    }
    const isRowParameter = name === '_id' || name === '_lastUpdated';
    const typeModifier =
      definition.type === 'reference' && modifier !== undefined && RESOURCE_TYPE_PATTERN.test(modifier) ? modifier : undefined;
    if (modifier !== undefined) {
      const allowed = !isRowParameter && (MODIFIERS[definition.type].includes(modifier) || typeModifier !== undefined);
      const allowedType = typeModifier === undefined || definition.target === undefined || definition.target.includes(typeModifier);
      if (!allowed || !allowedType) {
        issues.push(
          errorIssue(
            'not-supported',
            `Modifier ':${modifier}' is not supported on search parameter '${name}' (type ${definition.type}) of ${resourceType}`,
            name,
          ),
        );
        continue;
      }
    }
    const values = criterion.values.filter((v) => v !== '');
    if (values.length === 0) continue;

    if (modifier === 'missing') {
      if (values.length !== 1 || (values[0] !== 'true' && values[0] !== 'false')) {
        issues.push(badValue(name, `Search parameter '${name}:missing' takes true or false`));
        continue;
      }
      parsed.push({ kind: 'missing', param: name, missing: values[0] === 'true' });
      continue;
    }

    switch (definition.type) {
      case 'token': {
        if (name === '_id') {
          parsed.push({ kind: 'id', ids: values.map(unescapeSearchValue) });
          break;
        }
        parsed.push({ kind: 'token', param: name, negate: modifier === 'not', matches: values.map(parseTokenMatch) });
        break;
      }
      case 'reference': {
        const matches: ReferenceMatch[] = [];
        let ok = true;
        for (const value of values) {
          const match = parseReferenceMatch(value, typeModifier);
          if (!match) {
            issues.push(
              badValue(name, `Search parameter '${name}' takes a reference as Type/id, an id, or an absolute URL ending in Type/id`),
            );
            ok = false;
            break;
          }
          matches.push(match);
        }
        if (ok) parsed.push({ kind: 'reference', param: name, matches });
        break;
      }
      case 'string': {
        const mode: StringMatchMode = modifier === 'exact' ? 'exact' : modifier === 'contains' ? 'contains' : 'starts-with';
        const unescaped = values.map(unescapeSearchValue);
        parsed.push({
          kind: 'string',
          param: name,
          mode,
          values: mode === 'exact' ? unescaped : unescaped.map(normalizeSearchString),
        });
        break;
      }
      case 'date': {
        const conditions: DateCondition[] = [];
        let ok = true;
        for (const value of values) {
          const condition = parseDateCondition(value);
          if (condition === 'ap') {
            issues.push(errorIssue('not-supported', `The 'ap' prefix is not supported on search parameter '${name}'`, name));
            ok = false;
            break;
          }
          if (!condition) {
            issues.push(
              badValue(
                name,
                `Search parameter '${name}' takes a date (YYYY, YYYY-MM, YYYY-MM-DD or a dateTime with a zone), optionally prefixed with eq, ne, gt, lt, ge, le, sa or eb`,
              ),
            );
            ok = false;
            break;
          }
          conditions.push(condition);
        }
        if (!ok) break;
        parsed.push(name === '_lastUpdated' ? { kind: 'lastUpdated', conditions } : { kind: 'date', param: name, conditions });
        break;
      }
      case 'uri': {
        parsed.push({ kind: 'uri', param: name, values: values.map(unescapeSearchValue) });
        break;
      }
    }
  }
  return { parsed, issues };
}

/**
 * The issues a search's criteria raise (unknown parameter, unsupported modifier, malformed value),
 * each with the parameter's name as `expression`. The HTTP layer uses it to decide between strict
 * and lenient handling (https://hl7.org/fhir/R4/search.html#errors) before calling the store.
 */
export function checkSearchCriteria(resourceType: string, criteria: readonly SearchCriterion[]): OperationOutcomeIssue[] {
  return parseSearchCriteria(resourceType, criteria).issues;
}

/** Whether the parameter (and modifier) is known: lenient handling drops the criteria that are not. */
export function isSupportedSearchCriterion(resourceType: string, criterion: Pick<SearchCriterion, 'name' | 'modifier'>): boolean {
  return !parseSearchCriteria(resourceType, [{ ...criterion, values: [] }]).issues.length;
}

export interface SortKey {
  key: '_lastUpdated' | '_id';
  descending: boolean;
}

const SORT_KEYS: readonly string[] = ['_lastUpdated', '_id'];

/** `_sort` keys the store supports (https://hl7.org/fhir/R4/search.html#sort): `_lastUpdated` and `_id`, `-` for descending. */
export function parseSearchSort(sort: readonly string[] | undefined): { keys: SortKey[]; issues: OperationOutcomeIssue[] } {
  const keys: SortKey[] = [];
  const issues: OperationOutcomeIssue[] = [];
  for (const raw of sort ?? []) {
    const descending = raw.startsWith('-');
    const key = descending ? raw.slice(1) : raw;
    if (!SORT_KEYS.includes(key)) {
      issues.push(errorIssue('not-supported', `Sorting by '${key}' is not supported; use _lastUpdated or _id`, '_sort'));
      continue;
    }
    keys.push({ key: key as SortKey['key'], descending });
  }
  return { keys, issues };
}
