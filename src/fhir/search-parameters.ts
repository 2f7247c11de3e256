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

function appointmentActors(appointment: Appointment): (Reference | undefined)[] {
  return list(appointment.participant).map((p) => p.actor);
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

/** R4's description of both `Patient.name` and `Practitioner.name`, typos and all. */
const HUMAN_NAME_SEARCH =
  'A server defined search that may match any of the string fields in the HumanName, including family, give, prefix, suffix, suffix, and/or text';

/** Who may perform a request: the targets of both `ServiceRequest.performer` and `Task.owner` in R4. */
const PERFORMER_TYPES = [
  'Practitioner',
  'Organization',
  'CareTeam',
  'Device',
  'Patient',
  'HealthcareService',
  'PractitionerRole',
  'RelatedPerson',
] as const;
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

type Extract<R extends Resource> = (resource: R) => IndexValue[];

/** The elements of R that hold one or more References. */
type ReferenceElement<R> = { [K in keyof R]-?: NonNullable<R[K]> extends Reference | Reference[] ? K : never }[keyof R] & string;

/**
 * One resource type's row builders. A row is an R4 core parameter, whose canonical is
 * `${CORE}{type}-{code}`, unless its `definition` names another (a shared `clinical-` or
 * `individual-` one, or Plan-Net's).
 */
interface ParameterRows<R extends Resource> {
  token(code: string, expression: string, description: string, extract: Extract<R>, definition?: string): Spec<R>;
  string(code: string, expression: string, description: string, extract: Extract<R>, definition?: string): Spec<R>;
  date(code: string, expression: string, description: string, extract: Extract<R>, definition?: string): Spec<R>;
  /** `target`: the types a `:Type` modifier may name; absent = any type. */
  reference(
    code: string,
    expression: string,
    description: string,
    extract: Extract<R>,
    target?: readonly string[],
    definition?: string,
  ): Spec<R>;
  /** The most common reference row: all the references at one element, `{type}.{element}`. */
  referenceAt(code: string, element: ReferenceElement<R>, description: string, target?: readonly string[]): Spec<R>;
  /** The business identifier, `{type}.identifier`. */
  identifier: R extends { identifier?: Identifier[] } ? (description: string, definition?: string) => Spec<R> : never;
}

function parameterRows<R extends Resource>(resourceType: string): ParameterRows<R> {
  const row = (
    type: SearchParameterType,
    code: string,
    expression: string,
    description: string,
    extract: Extract<R>,
    target: readonly string[] | undefined,
    definition = `${CORE}${resourceType}-${code}`,
  ): Spec<R> => ({ code, type, description, definition, expression, ...(target ? { target } : {}), extract });
  return {
    token: (code, expression, description, extract, definition) =>
      row('token', code, expression, description, extract, undefined, definition),
    string: (code, expression, description, extract, definition) =>
      row('string', code, expression, description, extract, undefined, definition),
    date: (code, expression, description, extract, definition) =>
      row('date', code, expression, description, extract, undefined, definition),
    reference: (code, expression, description, extract, target, definition) =>
      row('reference', code, expression, description, extract, target, definition),
    referenceAt: (code, element, description, target) =>
      // ReferenceElement<R> admits only elements that hold References, so the cast is sound.
      row('reference', code, `${resourceType}.${element}`, description, (r) => references(r[element] as Many<Reference>), target),
    identifier: ((description: string, definition?: string) =>
      // Only offered where R has `identifier` (see ParameterRows), so the cast is sound.
      row(
        'token',
        'identifier',
        `${resourceType}.identifier`,
        description,
        (r) => identifiers((r as { identifier?: Identifier[] }).identifier),
        undefined,
        definition,
      )) as ParameterRows<R>['identifier'],
  };
}

/** Builds one resource type's list; the table is keyed by type, so the narrowing cast is sound. */
function parametersOf<R extends Resource>(
  resourceType: string,
  rows: (p: ParameterRows<R>) => readonly Spec<R>[],
): readonly SearchParameterDefinition[] {
  return Object.freeze(
    rows(parameterRows<R>(resourceType)).map((s) =>
      Object.freeze({
        ...s,
        extract: (resource: Resource): IndexValue[] => distinct(s.extract(resource as R)),
      }),
    ),
  );
}

/** Parameters every resource type has (https://hl7.org/fhir/R4/search.html#all), answered from the stored row. */
export const COMMON_SEARCH_PARAMETERS: readonly SearchParameterDefinition[] = parametersOf<Resource>('Resource', (p) => [
  p.token('_id', 'Resource.id', 'Logical id of this artifact', (r) => codes(undefined, r.id), `${CORE}Resource-id`),
  p.date(
    '_lastUpdated',
    'Resource.meta.lastUpdated',
    'When the resource version last changed',
    (r) => dates(r.meta?.lastUpdated),
    `${CORE}Resource-lastUpdated`,
  ),
]);

export const SEARCH_PARAMETERS = {
  ServiceRequest: parametersOf<ServiceRequest>('ServiceRequest', (p) => [
    p.identifier('Identifiers assigned to this order', `${CORE}clinical-identifier`),
    p.reference(
      'patient',
      'ServiceRequest.subject.where(resolve() is Patient)',
      'Search by subject - a patient',
      (r) => references(r.subject, 'Patient'),
      ['Patient'],
      `${CORE}clinical-patient`,
    ),
    p.referenceAt('subject', 'subject', 'Search by subject', ['Group', 'Device', 'Patient', 'Location']),
    p.referenceAt('requester', 'requester', 'Who/what is requesting service', [
      'Practitioner',
      'Organization',
      'Device',
      'Patient',
      'PractitionerRole',
      'RelatedPerson',
    ]),
    p.referenceAt('performer', 'performer', 'Requested performer', PERFORMER_TYPES),
    p.token('status', 'ServiceRequest.status', 'draft | active | on-hold | revoked | completed | entered-in-error | unknown', (r) =>
      codes(REQUEST_STATUS, r.status),
    ),
    p.token(
      'intent',
      'ServiceRequest.intent',
      'proposal | plan | directive | order | original-order | reflex-order | filler-order | instance-order | option',
      (r) => codes(REQUEST_INTENT, r.intent),
    ),
    p.token('code', 'ServiceRequest.code', 'What is being requested/ordered', (r) => concepts(r.code), `${CORE}clinical-code`),
    p.date('authored', 'ServiceRequest.authoredOn', 'Date request signed', (r) => dates(r.authoredOn)),
  ]),

  Task: parametersOf<Task>('Task', (p) => [
    p.identifier('Search for a task instance by its business identifier'),
    p.referenceAt('focus', 'focus', 'Search by task focus'),
    p.reference('patient', 'Task.for.where(resolve() is Patient)', 'Search by patient', (r) => references(r.for, 'Patient'), ['Patient']),
    p.referenceAt('subject', 'for', 'Search by subject'),
    p.token('status', 'Task.status', 'Search by task status', (r) => codes(TASK_STATUS, r.status)),
    p.token('business-status', 'Task.businessStatus', 'Search by business status', (r) => concepts(r.businessStatus)),
    p.token('code', 'Task.code', 'Search by task code', (r) => concepts(r.code)),
    p.referenceAt('owner', 'owner', 'Search by task owner', PERFORMER_TYPES),
    p.referenceAt('based-on', 'basedOn', 'Search by requests this task is based on'),
    p.referenceAt('part-of', 'partOf', 'Search by task this task is part of', ['Task']),
    p.date('authored-on', 'Task.authoredOn', 'Search by creation date', (r) => dates(r.authoredOn)),
    p.date('modified', 'Task.lastModified', 'Search by last modification date', (r) => dates(r.lastModified)),
  ]),

  Appointment: parametersOf<Appointment>('Appointment', (p) => [
    p.identifier('An Identifier of the Appointment'),
    p.reference(
      'patient',
      'Appointment.participant.actor.where(resolve() is Patient)',
      'One of the individuals of the appointment is this patient',
      (r) => references(appointmentActors(r), 'Patient'),
      ['Patient'],
    ),
    p.reference(
      'actor',
      'Appointment.participant.actor',
      'Any one of the individuals participating in the appointment',
      (r) => references(appointmentActors(r)),
      ['Practitioner', 'Device', 'Patient', 'HealthcareService', 'PractitionerRole', 'RelatedPerson', 'Location'],
    ),
    p.reference(
      'location',
      'Appointment.participant.actor.where(resolve() is Location)',
      'This location is listed in the participants of the appointment',
      (r) => references(appointmentActors(r), 'Location'),
      ['Location'],
    ),
    p.token('status', 'Appointment.status', 'The overall status of the appointment', (r) => codes(APPOINTMENT_STATUS, r.status)),
    p.date('date', 'Appointment.start', 'Appointment date/time.', (r) => dates(r.start)),
    p.referenceAt('based-on', 'basedOn', 'The service request this appointment is allocated to assess', ['ServiceRequest']),
  ]),

  Coverage: parametersOf<Coverage>('Coverage', (p) => [
    p.identifier('The primary identifier of the insured and the coverage'),
    p.referenceAt('beneficiary', 'beneficiary', 'Covered party', ['Patient']),
    p.reference('patient', 'Coverage.beneficiary', 'Retrieve coverages for a patient', (r) => references(r.beneficiary, 'Patient'), [
      'Patient',
    ]),
    p.referenceAt('payor', 'payor', 'The identity of the insurer or party paying for services', [
      'Organization',
      'Patient',
      'RelatedPerson',
    ]),
    p.referenceAt('subscriber', 'subscriber', 'Reference to the subscriber', ['Patient', 'RelatedPerson']),
    p.referenceAt('policy-holder', 'policyHolder', 'Reference to the policyholder', ['Organization', 'Patient', 'RelatedPerson']),
    p.token('status', 'Coverage.status', 'The status of the Coverage', (r) => codes(FM_STATUS, r.status)),
    p.token('type', 'Coverage.type', 'The kind of coverage (health plan, auto, Workers Compensation)', (r) => concepts(r.type)),
  ]),

  Patient: parametersOf<Patient>('Patient', (p) => [
    p.identifier('A patient identifier'),
    p.string('name', 'Patient.name', HUMAN_NAME_SEARCH, (r) => humanNames(r.name)),
    p.string(
      'family',
      'Patient.name.family',
      'A portion of the family name of the patient',
      (r) => strings(list(r.name).map((n) => n.family)),
      `${CORE}individual-family`,
    ),
    p.string(
      'given',
      'Patient.name.given',
      'A portion of the given name of the patient',
      (r) => strings(list(r.name).flatMap((n) => list(n.given))),
      `${CORE}individual-given`,
    ),
    p.date('birthdate', 'Patient.birthDate', "The patient's date of birth", (r) => dates(r.birthDate), `${CORE}individual-birthdate`),
    p.token('gender', 'Patient.gender', 'Gender of the patient', (r) => codes(ADMINISTRATIVE_GENDER, r.gender), `${CORE}individual-gender`),
  ]),

  Practitioner: parametersOf<Practitioner>('Practitioner', (p) => [
    p.identifier("A practitioner's Identifier"),
    p.string('name', 'Practitioner.name', HUMAN_NAME_SEARCH, (r) => humanNames(r.name)),
  ]),

  PractitionerRole: parametersOf<PractitionerRole>('PractitionerRole', (p) => [
    p.identifier("A practitioner's Identifier"),
    p.referenceAt('practitioner', 'practitioner', 'Practitioner that is able to provide the defined services for the organization', [
      'Practitioner',
    ]),
    p.referenceAt('organization', 'organization', 'The identity of the organization the practitioner represents / acts on behalf of', [
      'Organization',
    ]),
    p.referenceAt('location', 'location', 'One of the locations at which this practitioner provides care', ['Location']),
  ]),

  Location: parametersOf<Location>('Location', (p) => [
    p.identifier('An identifier for the location'),
    p.string('name', 'Location.name | Location.alias', "A portion of the location's name or alias", (r) =>
      strings([r.name, ...list(r.alias)]),
    ),
    p.string('address', 'Location.address', 'A (part of the) address of the location', (r) => addresses(r.address)),
    p.string('address-city', 'Location.address.city', 'A city specified in an address', (r) => strings(r.address?.city)),
    p.string('address-state', 'Location.address.state', 'A state specified in an address', (r) => strings(r.address?.state)),
    p.string('address-postalcode', 'Location.address.postalCode', 'A postal code specified in an address', (r) =>
      strings(r.address?.postalCode),
    ),
    p.token('status', 'Location.status', 'Searches for locations with a specific kind of status', (r) => codes(LOCATION_STATUS, r.status)),
    p.referenceAt('organization', 'managingOrganization', 'Searches for locations that are managed by the provided organization', [
      'Organization',
    ]),
    p.token('type', 'Location.type', 'A code for the type of location', (r) => concepts(r.type)),
    p.referenceAt('partof', 'partOf', 'A location of which this location is a part', ['Location']),
  ]),

  HealthcareService: parametersOf<HealthcareService>('HealthcareService', (p) => [
    p.identifier('External identifiers for this item'),
    p.referenceAt('location', 'location', 'The location of the Healthcare Service', ['Location']),
    p.referenceAt('organization', 'providedBy', 'The organization that provides this Healthcare Service', ['Organization']),
    p.token('service-type', 'HealthcareService.type', 'The type of service provided by this healthcare service', (r) => concepts(r.type)),
    p.token('service-category', 'HealthcareService.category', 'Service Category of the Healthcare Service', (r) => concepts(r.category)),
    p.string('name', 'HealthcareService.name', 'A portion of the Healthcare service name', (r) => strings(r.name)),
    p.token('active', 'HealthcareService.active', 'The Healthcare Service is currently marked as active', (r) => booleans(r.active)),
  ]),

  Organization: parametersOf<Organization>('Organization', (p) => [
    p.identifier("Any identifier for the organization (not the accreditation issuer's identifier)"),
    p.string('name', 'Organization.name | Organization.alias', "A portion of the organization's name or alias", (r) =>
      strings([r.name, ...list(r.alias)]),
    ),
    p.token('type', 'Organization.type', 'A code for the type of organization', (r) => concepts(r.type)),
    p.token('active', 'Organization.active', 'Is the Organization record active', (r) => booleans(r.active)),
    p.referenceAt('partof', 'partOf', 'An organization of which this organization forms a part', ['Organization']),
    p.referenceAt('endpoint', 'endpoint', 'Technical endpoints providing access to services operated for the organization', ['Endpoint']),
  ]),

  OrganizationAffiliation: parametersOf<OrganizationAffiliation>('OrganizationAffiliation', (p) => [
    p.identifier("An organization affiliation's Identifier"),
    p.referenceAt(
      'participating-organization',
      'participatingOrganization',
      'The organization that provides services to the primary organization',
      ['Organization'],
    ),
    p.referenceAt(
      'primary-organization',
      'organization',
      'The organization that receives the services from the participating organization',
      ['Organization'],
    ),
    p.referenceAt(
      'network',
      'network',
      "Health insurance provider network in which the participatingOrganization provides the role's services (if defined) at the indicated locations (if defined)",
      ['Organization'],
    ),
    p.referenceAt('location', 'location', 'The location(s) at which the role occurs', ['Location']),
    p.referenceAt('service', 'healthcareService', 'Healthcare services provided through the role', ['HealthcareService']),
    p.token('active', 'OrganizationAffiliation.active', 'Whether this organization affiliation record is in active use', (r) =>
      booleans(r.active),
    ),
  ]),

  InsurancePlan: parametersOf<InsurancePlan>('InsurancePlan', (p) => [
    p.identifier("Any identifier for the organization (not the accreditation issuer's identifier)"),
    p.referenceAt('owned-by', 'ownedBy', 'An organization of which this organization forms a part', ['Organization']),
    p.referenceAt('administered-by', 'administeredBy', 'Product administrator', ['Organization']),
    p.string('name', 'InsurancePlan.name | InsurancePlan.alias', "A portion of the organization's name or alias", (r) =>
      strings([r.name, ...list(r.alias)]),
    ),
    p.token('status', 'InsurancePlan.status', 'Is the Organization record active', (r) => codes(PUBLICATION_STATUS, r.status)),
    p.token('type', 'InsurancePlan.type', 'A code for the type of organization', (r) => concepts(r.type)),
    // Not in R4 core: Da Vinci PDex Plan-Net's parameter, the way directories find a payer's plans
    // by network (https://hl7.org/fhir/us/davinci-pdex-plan-net/SearchParameter-insuranceplan-network.html).
    p.reference(
      'network',
      'InsurancePlan.network',
      "Select Organization entries in a given InsurancePlan's network",
      (r) => references(r.network),
      ['Organization'],
      `${PLAN_NET}insuranceplan-network`,
    ),
  ]),

  Endpoint: parametersOf<Endpoint>('Endpoint', (p) => [
    p.identifier('Identifies this endpoint across multiple systems'),
    p.referenceAt('organization', 'managingOrganization', 'The organization that is managing the endpoint', ['Organization']),
    p.token('status', 'Endpoint.status', 'The current status of the Endpoint (usually expected to be active)', (r) =>
      codes(ENDPOINT_STATUS, r.status),
    ),
    p.string('name', 'Endpoint.name', 'A name that this endpoint can be identified by', (r) => strings(r.name)),
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
