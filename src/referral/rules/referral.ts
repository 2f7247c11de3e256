/**
 * The internal infusion referral, and the pure translation of a validated ServiceRequest into it.
 *
 * The ServiceRequest has already passed base R4 validation and the infusion-referral profile; what
 * remains here are the rules that need the deployment's data (the drug catalog) and the referenced
 * resources: which drug, which patient, which site. Source references are kept verbatim so that
 * write-back can point at the EHR's own resources.
 */
import type { CodeableConcept, Coding, Identifier, Patient, Period, Reference, Resource, ServiceRequest } from 'fhir/r4.js';
import type { OperationOutcomeIssue } from 'fhir/r4.js';
import { errorIssue } from '../../fhir/outcomes.js';
import { parseRelativeReference } from '../../fhir/references.js';
import { parseLiteralReference } from '../../fhir/search-parameters.js';

export const ICD10CM_SYSTEM = 'http://hl7.org/fhir/sid/icd-10-cm';
const PLACER_IDENTIFIER_TYPE = { system: 'http://terminology.hl7.org/CodeSystem/v2-0203', code: 'PLAC' };

export type ReferralPriority = NonNullable<ServiceRequest['priority']>;

export interface ReferralDrug {
  /** The catalog entry's id. */
  catalogId: string;
  name: string;
  /** The codings the order used, as sent. */
  orderedCodings: Coding[];
}

export interface ReferralSite {
  /** As sent (after Bundle reference rewriting). */
  reference: Reference;
  /** The directory Location's id, when the reference points into the directory. */
  directoryLocationId?: string;
}

/** How the EHR knows the referral's resources: what write-back points its Task and Appointment at. */
export interface EhrReferences {
  /** The EHR's ServiceRequest: its literal reference when the gateway read it from the EHR, else a logical reference by order number. */
  serviceRequest: Reference;
  /** The patient as the EHR knows them, when that can be told. */
  patient?: Reference;
}

export interface Referral {
  /** The sender's order number: with the tenant, the idempotency key. */
  sourceIdentifier: { system: string; value: string };
  ehr: EhrReferences;
  serviceRequest: Reference;
  patient: Reference;
  requester: Reference;
  drug: ReferralDrug;
  diagnoses: Coding[];
  diagnosisReferences: Reference[];
  requestedSite: ReferralSite | undefined;
  performers: Reference[];
  coverage: Reference[];
  requestedPeriod?: Period;
  priority: ReferralPriority;
  authoredOn?: string;
}

export type RejectionReasonCode = 'drug-not-in-catalog' | 'no-suitable-site';

export interface RejectionReason {
  code: RejectionReasonCode;
  display: string;
  /** Where in the ServiceRequest the problem lies. */
  expression: string;
}

export interface TranslationContext {
  /** The catalog drug ordered by these codings, if the deployment offers it. */
  findDrug(codings: readonly Coding[]): { id: string; name: string } | undefined;
  /** Whether a Location id belongs to the network's directory. */
  isDirectoryLocation(id: string): boolean;
  /** A referenced resource: contained, from the same Bundle, or already stored. */
  resolve(reference: Reference): Resource | undefined;
  /** Set when the ServiceRequest was read from the EHR (pull, notification): its id there. */
  ehrServiceRequestId?: string;
}

/**
 * What translation decided:
 * - `refused`: the request itself is unusable (e.g. a reference to a missing contained resource);
 *   nothing is stored and the sender gets every issue.
 * - `rejected`: a well-formed order the network cannot take (e.g. a drug it does not give); the
 *   referral is tracked and its Task says why.
 * - `accepted`: the referral moves on.
 */
export type TranslationResult =
  | { kind: 'accepted'; referral: Referral }
  | { kind: 'rejected'; referral: Omit<Referral, 'drug'> & { drug?: ReferralDrug }; reasons: RejectionReason[] }
  | { kind: 'refused'; issues: OperationOutcomeIssue[] };

/**
 * The dates the order asks for: `occurrencePeriod`, or the bounds of an `occurrenceTiming` (a
 * series, "every 8 weeks from ... to ...", https://hl7.org/fhir/R4/datatypes.html#Timing).
 */
export function requestedPeriod(serviceRequest: ServiceRequest): Period | undefined {
  return serviceRequest.occurrencePeriod ?? serviceRequest.occurrenceTiming?.repeat?.boundsPeriod;
}

/** The sender's order number: the PLAC-typed identifier, else the first with system and value. */
export function placerIdentifier(serviceRequest: ServiceRequest): Identifier | undefined {
  const identifiers = serviceRequest.identifier ?? [];
  const usable = identifiers.filter((i) => i.system && i.value);
  const placer = usable.find((i) =>
    i.type?.coding?.some((c) => c.system === PLACER_IDENTIFIER_TYPE.system && c.code === PLACER_IDENTIFIER_TYPE.code),
  );
  return placer ?? usable[0];
}

/** The resource type a reference points to: the resolved resource's, else `type`, else its literal URL's. */
export function referencedType(reference: Reference, resolve: (r: Reference) => Resource | undefined): string | undefined {
  return resolve(reference)?.resourceType ?? reference.type ?? parseLiteralReference(reference.reference ?? '')?.type;
}

/** The id in a relative `Location/abc` reference to the given type, if it is one. */
export function relativeId(reference: Reference, resourceType: string): string | undefined {
  const parsed = parseRelativeReference(reference.reference);
  return parsed?.resourceType === resourceType ? parsed.id : undefined;
}

function checkReferenceTargets(serviceRequest: ServiceRequest, context: TranslationContext): OperationOutcomeIssue[] {
  const issues: OperationOutcomeIssue[] = [];
  const expect = (reference: Reference | undefined, expression: string, allowed: readonly string[]): void => {
    if (!reference) return;
    if (reference.reference?.startsWith('#') && !context.resolve(reference)) {
      issues.push(errorIssue('not-found', `Contained resource ${reference.reference} is not in ServiceRequest.contained`, expression));
      return;
    }
    const type = referencedType(reference, context.resolve);
    if (type !== undefined && !allowed.includes(type)) {
      issues.push(errorIssue('invalid', `Reference must point to ${allowed.join(' or ')}, not ${type}`, expression));
    }
  };
  expect(serviceRequest.subject, 'ServiceRequest.subject', ['Patient']);
  expect(serviceRequest.requester, 'ServiceRequest.requester', ['Practitioner', 'PractitionerRole', 'Organization']);
  (serviceRequest.insurance ?? []).forEach((r, i) => expect(r, `ServiceRequest.insurance[${i}]`, ['Coverage', 'ClaimResponse']));
  (serviceRequest.locationReference ?? []).forEach((r, i) => expect(r, `ServiceRequest.locationReference[${i}]`, ['Location']));
  (serviceRequest.performer ?? []).forEach((r, i) =>
    expect(r, `ServiceRequest.performer[${i}]`, ['Organization', 'HealthcareService', 'Practitioner', 'PractitionerRole', 'Location']),
  );
  (serviceRequest.reasonReference ?? []).forEach((r, i) =>
    expect(r, `ServiceRequest.reasonReference[${i}]`, ['Condition', 'Observation', 'DiagnosticReport', 'DocumentReference']),
  );
  return issues;
}

function icd10Diagnoses(reasonCodes: readonly CodeableConcept[] | undefined): Coding[] {
  return (reasonCodes ?? []).flatMap((concept) => (concept.coding ?? []).filter((c) => c.system === ICD10CM_SYSTEM && c.code));
}

/**
 * The EHR's own references. A ServiceRequest read from the EHR keeps the EHR's literal references.
 * One that was pushed carries contained or Bundle-local resources the EHR has other ids for, so
 * the write-back names them by business identifier (https://hl7.org/fhir/R4/references.html#logical).
 */
function ehrReferences(
  serviceRequest: ServiceRequest,
  identifier: { system: string; value: string },
  context: TranslationContext,
): EhrReferences {
  const serviceRequestReference: Reference =
    context.ehrServiceRequestId !== undefined
      ? { reference: `ServiceRequest/${context.ehrServiceRequestId}` }
      : { type: 'ServiceRequest', identifier: { system: identifier.system, value: identifier.value } };
  const subject = serviceRequest.subject;
  // Read from the EHR, a relative subject is the EHR's own reference; anything else (contained,
  // or rewritten to the gateway's ids) is named by the patient's business identifier.
  if (context.ehrServiceRequestId !== undefined && subject?.reference !== undefined && !subject.reference.startsWith('#')) {
    return { serviceRequest: serviceRequestReference, patient: { reference: subject.reference } };
  }
  const patient = subject ? context.resolve(subject) : undefined;
  const patientIdentifiers = (patient as Patient | undefined)?.identifier?.filter((i) => i.system && i.value) ?? [];
  const medicalRecordNumber = patientIdentifiers.find((i) => i.type?.coding?.some((c) => c.code === 'MR')) ?? patientIdentifiers[0];
  return {
    serviceRequest: serviceRequestReference,
    ...(medicalRecordNumber
      ? { patient: { type: 'Patient', identifier: { system: medicalRecordNumber.system, value: medicalRecordNumber.value } } }
      : {}),
  };
}

function requestedSite(serviceRequest: ServiceRequest, context: TranslationContext): ReferralSite | undefined {
  const reference = serviceRequest.locationReference?.[0];
  if (!reference) return undefined;
  const id = relativeId(reference, 'Location');
  return id !== undefined && context.isDirectoryLocation(id) ? { reference, directoryLocationId: id } : { reference };
}

/**
 * Translates a stored-to-be ServiceRequest (id assigned, Bundle references rewritten) into a
 * Referral. Pure: everything it needs is in the arguments.
 */
export function translateServiceRequest(serviceRequest: ServiceRequest & { id: string }, context: TranslationContext): TranslationResult {
  const issues = checkReferenceTargets(serviceRequest, context);
  const identifier = placerIdentifier(serviceRequest);
  if (!identifier) {
    issues.push(
      errorIssue(
        'required',
        "The sender's order number is required: an identifier with both system and value",
        'ServiceRequest.identifier',
      ),
    );
  }
  if (issues.length > 0 || !identifier || !serviceRequest.subject || !serviceRequest.requester) {
    return { kind: 'refused', issues };
  }

  const orderedCodings = serviceRequest.code?.coding ?? [];
  const drug = context.findDrug(orderedCodings);
  const sourceIdentifier = { system: identifier.system as string, value: identifier.value as string };
  const base = {
    sourceIdentifier,
    ehr: ehrReferences(serviceRequest, sourceIdentifier, context),
    serviceRequest: { reference: `ServiceRequest/${serviceRequest.id}` },
    patient: serviceRequest.subject,
    requester: serviceRequest.requester,
    diagnoses: icd10Diagnoses(serviceRequest.reasonCode),
    diagnosisReferences: serviceRequest.reasonReference ?? [],
    requestedSite: requestedSite(serviceRequest, context),
    performers: serviceRequest.performer ?? [],
    coverage: serviceRequest.insurance ?? [],
    priority: serviceRequest.priority ?? 'routine',
    ...(requestedPeriod(serviceRequest) ? { requestedPeriod: requestedPeriod(serviceRequest)! } : {}),
    ...(serviceRequest.authoredOn ? { authoredOn: serviceRequest.authoredOn } : {}),
  };

  if (!drug) {
    const ordered = orderedCodings.map((c) => `${c.system ?? '?'}|${c.code ?? '?'}`).join(', ');
    return {
      kind: 'rejected',
      referral: base,
      reasons: [
        {
          code: 'drug-not-in-catalog',
          display: `The ordered drug (${ordered}) is not in this network's drug catalog`,
          expression: 'ServiceRequest.code',
        },
      ],
    };
  }
  return {
    kind: 'accepted',
    referral: { ...base, drug: { catalogId: drug.id, name: drug.name, orderedCodings } },
  };
}
