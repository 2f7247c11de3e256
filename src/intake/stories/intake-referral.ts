/**
 * Intake of one infusion ServiceRequest: validate, translate into a Referral, store it with its
 * tracking Task in one transaction, once per sender order number.
 *
 *   validate (R4 + infusion-referral profile) -> resolve references -> translate -> check the site
 *     -> [transaction] claim the order number -> store ServiceRequest + Task (+ write-back message)
 *
 * Used by POST /fhir/ServiceRequest and by transaction/batch Bundles (process-bundle.ts).
 */
import type { OperationOutcomeIssue, Reference, Resource, ServiceRequest, Task } from 'fhir/r4.js';
import { buildReferralTask } from '../../referral/rules/referral-task.js';
import { containedAsLogical, gatewayReceiver, referencesForReceiver } from '../../delivery/rules/receiver-references.js';
import { claimedProfiles } from '../../fhir/validation/index.js';
import { taskWriteBack } from '../../delivery/rules/write-back.js';
import {
  translateServiceRequest,
  type EhrReferences,
  type RejectionReason,
  type TranslationResult,
} from '../../referral/rules/referral.js';
import type { SiteCheckResult } from '../../site-check/rules/site-check.js';
import { checkSiteOfReferral } from '../../site-check/stories/check-referral-site.js';
import { referralStep, VERIFY_COVERAGE_STEP } from '../../referral/stories/referral-steps.js';
import { REFERRAL_PROFILE_URL, type ReferralStatus } from '../../referral/rules/referral-status.js';
import { findContained, parseRelativeReference } from '../../fhir/references.js';
import { informationIssue, warningIssue } from '../../fhir/outcomes.js';
import type {
  NewReferral,
  NewReferralResult,
  ReferralRow,
  ResourceReader,
  ResourceWriter,
  StoreTransactions,
  TenantId,
} from '../../ports/resource-store.js';
import { recordNewReferralIn } from '../../ports/record-new-referral.js';
import { visibleTenants, type GatewayDeps, type ResourceValidator } from '../../ports/gateway-deps.js';

export type StoredServiceRequest = ServiceRequest & { id: string };

/**
 * Profile issues for a referral: the infusion-referral profile always applies (its problems are
 * errors); other profiles the ServiceRequest claims in meta.profile are checked too, but one this
 * server does not know (US Core, say) is only a warning, never a reason to refuse the order.
 */
export function referralProfileIssues(validator: ResourceValidator, serviceRequest: Resource): OperationOutcomeIssue[] {
  const claimed = claimedProfiles(serviceRequest).filter((p) => p !== REFERRAL_PROFILE_URL);
  return [
    ...validator.validateProfiles(serviceRequest, [REFERRAL_PROFILE_URL]),
    ...(claimed.length > 0 ? validator.validateProfiles(serviceRequest, claimed, { unknownProfile: 'warning' }) : []),
  ];
}

/** Validation issues for a ServiceRequest: base R4, then the referral profile and any it claims. */
export function validateReferralRequest(
  deps: Pick<GatewayDeps, 'validator'>,
  resource: unknown,
): {
  base: OperationOutcomeIssue[];
  profile: OperationOutcomeIssue[];
} {
  const base = deps.validator.validateBase(resource);
  if (typeof resource !== 'object' || resource === null || (resource as Resource).resourceType !== 'ServiceRequest') {
    return { base, profile: [] };
  }
  return { base, profile: referralProfileIssues(deps.validator, resource as Resource) };
}

export interface PreparedReferral {
  tenant: TenantId;
  referralId: string;
  taskId: string;
  /** The id of the outbox message that writes the Task back, when the tenant's EHR takes write-back. */
  writeBackMessageId?: string;
  serviceRequest: StoredServiceRequest;
  translation: Exclude<TranslationResult, { kind: 'refused' }>;
  /** The site check's finding, for an accepted referral. */
  siteCheck?: SiteCheckResult;
  /** The id of the outbox message that starts the coverage step, when it runs by itself. */
  coverageStepMessageId?: string;
}

/**
 * Resolves what the ServiceRequest points at and translates it. `bundleResources` holds the other
 * resources of the same transaction, keyed by their (rewritten) `Type/id` reference.
 */
export async function prepareReferral(
  deps: GatewayDeps,
  reader: ResourceReader,
  tenant: TenantId,
  serviceRequest: StoredServiceRequest,
  bundleResources: ReadonlyMap<string, Resource> = new Map(),
  origin: { ehrServiceRequestId?: string } = {},
): Promise<{ ok: true; prepared: PreparedReferral } | { ok: false; issues: OperationOutcomeIssue[] }> {
  // The directory is in memory (the site check reads the same index): a directory Location is
  // known without a round trip to the store, and translation and site check agree on it.
  const directory = await deps.sites.current();
  const isDirectoryLocation = (id: string): boolean => directory.site(id) !== undefined;
  const resolved = new Map<string, Resource>();
  const references: Reference[] = [
    serviceRequest.subject,
    serviceRequest.requester,
    ...(serviceRequest.insurance ?? []),
    ...(serviceRequest.locationReference ?? []),
    ...(serviceRequest.performer ?? []),
    ...(serviceRequest.reasonReference ?? []),
  ].filter((r): r is Reference => r !== undefined);

  for (const reference of references) {
    const key = reference.reference;
    if (key === undefined || resolved.has(key)) continue;
    const local = findContained(serviceRequest, key) ?? bundleResources.get(key);
    if (local) {
      resolved.set(key, local);
      continue;
    }
    // Neither translation nor the site check reads a directory site's stored Location.
    const parsed = parseRelativeReference(key);
    if (parsed?.resourceType === 'Location' && isDirectoryLocation(parsed.id)) continue;
    const found = await readRelative(deps, reader, tenant, key);
    if (found) resolved.set(key, found);
  }

  const translation = translateServiceRequest(serviceRequest, {
    findDrug: (codings) => deps.drugs.findDrug(codings),
    isDirectoryLocation,
    resolve: (reference) => (reference.reference === undefined ? undefined : resolved.get(reference.reference)),
    ...(origin.ehrServiceRequestId !== undefined ? { ehrServiceRequestId: origin.ehrServiceRequestId } : {}),
  });
  if (translation.kind === 'refused') return { ok: false, issues: translation.issues };
  const drug = translation.kind === 'accepted' ? deps.drugs.findDrug(translation.referral.drug.orderedCodings) : undefined;
  const siteCheck = drug
    ? await checkSiteOfReferral(deps, reader, tenant, {
        serviceRequest,
        drug,
        resolve: async (reference) => {
          const key = reference?.reference;
          if (key === undefined) return undefined;
          return (
            resolved.get(key) ?? findContained(serviceRequest, key) ?? bundleResources.get(key) ?? readRelative(deps, reader, tenant, key)
          );
        },
      })
    : undefined;
  return {
    ok: true,
    prepared: {
      tenant,
      referralId: deps.newId(),
      taskId: deps.newId(),
      ...(deps.writeBackTenants.has(tenant) ? { writeBackMessageId: deps.newId() } : {}),
      serviceRequest,
      translation,
      ...(siteCheck ? { siteCheck } : {}),
      ...(deps.automaticCoverage ? { coverageStepMessageId: deps.newId() } : {}),
    },
  };
}

type IntakeStatus = Extract<ReferralStatus, 'rejected' | 'misroute-suspected' | 'verifying-coverage'>;

/**
 * Where intake leaves the referral: rejected (drug not offered by the network, or no site can take
 * it), held for a coordinator (misroute suspected), or on to the coverage step.
 */
export function intakeDecision(prepared: PreparedReferral): { status: IntakeStatus; rejectionReasons: RejectionReason[] } {
  const { translation, siteCheck } = prepared;
  if (translation.kind === 'rejected') return { status: 'rejected', rejectionReasons: translation.reasons };
  if (siteCheck?.decision === 'misroute-suspected') return { status: 'misroute-suspected', rejectionReasons: [] };
  if (siteCheck?.decision === 'no-suitable-site') {
    const why = siteCheck.reasons.map((r) => r.display).join('; ');
    return {
      status: 'rejected',
      rejectionReasons: [
        {
          code: 'no-suitable-site',
          display: `No site of the network can take this referral: ${why}`,
          expression: siteCheck.reasons[0]?.expression ?? 'ServiceRequest.locationReference',
        },
      ],
    };
  }
  return { status: 'verifying-coverage', rejectionReasons: [] };
}

async function readRelative(
  deps: Pick<GatewayDeps, 'tenancy'>,
  reader: ResourceReader,
  tenant: TenantId,
  reference: string,
): Promise<Resource | undefined> {
  const parsed = parseRelativeReference(reference);
  if (!parsed) return undefined;
  return reader.read(visibleTenants(deps.tenancy, tenant, parsed.resourceType), parsed.resourceType, parsed.id);
}

export type RecordedReferral =
  | { kind: 'created'; serviceRequest: StoredServiceRequest; task: Task & { id: string }; status: ReferralStatus }
  | { kind: 'duplicate'; existing: ReferralRow };

/**
 * What recording the referral writes: the claim of the sender's order number, the ServiceRequest
 * and its Task (version 1), and the messages committed with them (the Task's write-back to the EHR,
 * the coverage step), as the store's `recordNewReferral` takes them.
 */
function newReferralOf(prepared: PreparedReferral, now: Date): { referral: NewReferral; status: ReferralStatus } {
  const { translation } = prepared;
  const { status, rejectionReasons } = intakeDecision(prepared);
  const task = servedReferralTask(
    buildReferralTask({
      taskId: prepared.taskId,
      referralId: prepared.referralId,
      serviceRequestId: prepared.serviceRequest.id,
      patient: translation.referral.patient,
      requester: translation.referral.requester,
      status,
      rejectionReasons,
      ...(prepared.siteCheck ? { siteCheck: prepared.siteCheck } : {}),
      now,
    }),
    prepared.serviceRequest,
    translation.referral.ehr,
  );
  const referral: NewReferral = {
    claim: {
      tenant: prepared.tenant,
      id: prepared.referralId,
      identifierSystem: translation.referral.sourceIdentifier.system,
      identifierValue: translation.referral.sourceIdentifier.value,
      serviceRequestId: prepared.serviceRequest.id,
      taskId: prepared.taskId,
      status,
      referral: { ...translation.referral, ...(prepared.siteCheck ? { siteCheck: prepared.siteCheck } : {}) },
    },
    resources: [prepared.serviceRequest, task],
    messages: ([, storedTask]) => [
      // Committed with the referral, delivered by the outbox worker afterwards.
      ...(prepared.writeBackMessageId !== undefined
        ? [
            taskWriteBack({
              messageId: prepared.writeBackMessageId,
              tenant: prepared.tenant,
              referralId: prepared.referralId,
              task: storedTask as Task,
              ehr: translation.referral.ehr,
            }),
          ]
        : []),
      ...(status === 'verifying-coverage' && prepared.coverageStepMessageId !== undefined
        ? [
            referralStep(VERIFY_COVERAGE_STEP, {
              messageId: prepared.coverageStepMessageId,
              tenant: prepared.tenant,
              referralId: prepared.referralId,
            }),
          ]
        : []),
    ],
  };
  return { referral, status };
}

function recordedOf(result: NewReferralResult, status: ReferralStatus): RecordedReferral {
  if (!result.claimed) return { kind: 'duplicate', existing: result.existing };
  const [serviceRequest, task] = result.stored;
  return { kind: 'created', serviceRequest: serviceRequest as StoredServiceRequest, task: task as Task & { id: string }, status };
}

/**
 * Stores the referral at once, all or nothing (one statement on PostgreSQL). The sender's order
 * number is claimed through the database's unique constraint: a duplicate writes nothing and gets
 * the original.
 */
export async function recordNewReferral(store: StoreTransactions, prepared: PreparedReferral, now: Date): Promise<RecordedReferral> {
  const { referral, status } = newReferralOf(prepared, now);
  return recordedOf(await store.recordNewReferral(referral, now), status);
}

/**
 * Stores the referral inside the caller's transaction, for a story that writes more with it (a
 * transaction Bundle, a conditional create): the same writes as recordNewReferral, claim first.
 */
export async function recordReferral(tx: ResourceWriter, prepared: PreparedReferral, now: Date): Promise<RecordedReferral> {
  const { referral, status } = newReferralOf(prepared, now);
  return recordedOf(await recordNewReferralIn(tx, referral, now), status);
}

/** Issues that tell the sender what became of the referral (for Prefer: return=OperationOutcome). */
export function referralOutcomeIssues(prepared: PreparedReferral, taskId: string, status: ReferralStatus): OperationOutcomeIssue[] {
  const issues = [informationIssue('informational', `Referral tracked by Task/${taskId} (businessStatus ${status})`)];
  for (const reason of intakeDecision(prepared).rejectionReasons) {
    issues.push(warningIssue('business-rule', `Referral rejected: ${reason.display}`, reason.expression));
  }
  if (prepared.siteCheck?.decision === 'misroute-suspected') {
    for (const reason of prepared.siteCheck.reasons) {
      issues.push(
        warningIssue('business-rule', `Site to be confirmed with the patient (${reason.code}): ${reason.display}`, reason.expression),
      );
    }
  }
  return issues;
}

/**
 * The referral's Task as the gateway serves it: the order's contained patient and requester
 * (`#patient`, `#role`) cannot be named from the Task (they are contained in the ServiceRequest, not
 * the Task), so they become logical references by identifier — the patient by the record number the
 * EHR knows — and a requester without an identifier is left out rather than left dangling.
 */
export function servedReferralTask(task: Task & { id: string }, serviceRequest: ServiceRequest, ehr: EhrReferences): Task & { id: string } {
  const mapped = containedAsLogical(serviceRequest);
  const subject = serviceRequest.subject?.reference;
  if (subject?.startsWith('#') && ehr.patient?.identifier) mapped.set(subject, ehr.patient);
  return referencesForReceiver(task, gatewayReceiver(mapped)).resource;
}
