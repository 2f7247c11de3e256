/**
 * A coordinator confirmed the site with the patient (field note 000: "called the patient to confirm her
 * preferred site"): re-route the held referral to that site and move it on to coverage.
 *
 * Two ways in, one story: `POST /fhir/Task/{id}/$confirm-site` with a `location` parameter, or an
 * update of the Task that adds an output of type `confirmed-location`. Either way the gateway's copy
 * of the ServiceRequest gets the confirmed site (the original stays in its history), the Task moves
 * to `verifying-coverage` with the confirmation as its output, and the Task is written back to the
 * EHR through the outbox, all in one transaction.
 */
import { changedElementsOutside } from '../../fhir/resources.js';
import type { OperationOutcomeIssue, Reference, ServiceRequest, Task, TaskOutput } from 'fhir/r4.js';
import { placerIdentifier, type EhrReferences } from '../../referral/rules/referral.js';
import { siteReference } from '../../referral/rules/referral-task.js';
import { TASK_PARAMETER_TYPE_SYSTEM, referralStatusOf, taskStatusFields } from '../../referral/rules/referral-status.js';
import { PREFERRED_SITE_EXTENSION_URL, type MisrouteReasonCode } from '../rules/site-check.js';
import { taskWriteBack } from '../../delivery/rules/write-back.js';
import { badRequest, conflict, errorIssue, notFound, unprocessable } from '../../fhir/outcomes.js';
import { parseRelativeReference } from '../../fhir/references.js';
import type { TenantId } from '../../ports/resource-store.js';
import { checkSiteOfReferral } from './check-referral-site.js';
import { isAppealTask } from '../../coverage/rules/appeal.js';
import { updateAppealTaskByClient, type TaskUpdateResult } from '../../coverage/stories/update-appeal.js';
import { referralStep, VERIFY_COVERAGE_STEP } from '../../referral/stories/referral-steps.js';
import type { GatewayDeps } from '../../ports/gateway-deps.js';
import { resolveAtGateway } from '../../referral/stories/stored-referral.js';

/** Problems a patient's confirmation cannot outweigh: the site cannot give this infusion at all. */
const BLOCKING_REASONS: ReadonlySet<MisrouteReasonCode> = new Set([
  'site-inactive',
  'drug-not-offered',
  'practice-address',
  'no-site-requested',
]);

export type ConfirmSiteResult = TaskUpdateResult;

export interface ConfirmSiteInput {
  tenant: TenantId;
  taskId: string;
  location: Reference;
  /** Where the location sits in the request, for the issues (`Parameters.parameter[0].valueReference`). */
  expression: string;
  /** The Task version the coordinator saw (If-Match). */
  ifMatchVersionId?: string;
}

const hasSuggestedSites = (task: Task): boolean =>
  (task.input ?? []).some((i) => i.type.coding?.some((c) => c.system === TASK_PARAMETER_TYPE_SYSTEM && c.code === 'suggested-location'));

const isConfirmedLocation = (output: TaskOutput): boolean =>
  output.type.coding?.some((c) => c.system === TASK_PARAMETER_TYPE_SYSTEM && c.code === 'confirmed-location') === true;

export async function confirmReferralSite(deps: GatewayDeps, input: ConfirmSiteInput): Promise<ConfirmSiteResult> {
  const task = await deps.store.read<Task>([input.tenant], 'Task', input.taskId);
  if (!task?.id) return { kind: 'refused', outcome: notFound('Task', input.taskId) };
  const taskWithId = task as Task & { id: string };

  const locationId = parseRelativeReference(input.location.reference);
  const directory = await deps.sites.current();
  const site = locationId?.resourceType === 'Location' ? directory.site(locationId.id) : undefined;
  if (!site) {
    return refuse([
      errorIssue(
        'invalid',
        'The confirmed location must be a Location/<id> reference to a site of the network directory',
        input.expression,
      ),
    ]);
  }

  const status = referralStatusOf(task);
  // Held by the site check, or by the coverage step for an out-of-network site: both wait for a site.
  if (status !== 'misroute-suspected' && !(status === 'coverage-problem' && hasSuggestedSites(task))) {
    const confirmed = task.output?.find(isConfirmedLocation)?.valueReference?.reference;
    if (confirmed === `Location/${site.locationId}`) return { kind: 'updated', task: taskWithId, changed: false };
    return {
      kind: 'refused',
      outcome: conflict(
        `The referral is ${status ?? 'in an unknown state'}; only a referral held for its site (misroute-suspected, or coverage-problem with suggested sites) waits for one to be confirmed`,
        'Task.businessStatus',
      ),
    };
  }

  const serviceRequestId = parseRelativeReference(task.focus?.reference);
  const serviceRequest = serviceRequestId
    ? await deps.store.read<ServiceRequest>([input.tenant], 'ServiceRequest', serviceRequestId.id)
    : undefined;
  const orderNumber = serviceRequest ? placerIdentifier(serviceRequest) : undefined;
  const referral =
    orderNumber?.system && orderNumber.value
      ? await deps.store.findReferralByIdentifier(input.tenant, orderNumber.system, orderNumber.value)
      : undefined;
  const drug = serviceRequest ? deps.drugs.findDrug(serviceRequest.code?.coding ?? []) : undefined;
  if (!serviceRequest?.id || !referral || !drug) {
    return { kind: 'refused', outcome: conflict('The referral behind this Task is incomplete; it cannot be re-routed', 'Task.focus') };
  }

  // The patient chose this site: checked as the patient's choice, only what no choice can outweigh stops it.
  const rerouted: ServiceRequest & { id: string } = {
    ...serviceRequest,
    id: serviceRequest.id,
    locationReference: [{ reference: `Location/${site.locationId}`, display: site.name }],
  };
  const check = await checkSiteOfReferral(deps, deps.store, input.tenant, {
    serviceRequest: {
      ...rerouted,
      extension: [
        ...(rerouted.extension ?? []).filter((e) => e.url !== PREFERRED_SITE_EXTENSION_URL),
        { url: PREFERRED_SITE_EXTENSION_URL, valueReference: { reference: `Location/${site.locationId}` } },
      ],
    },
    drug,
    resolve: async (reference) => (await resolveAtGateway(deps.store, deps.tenancy, input.tenant, serviceRequest, reference))?.resource,
  });
  const blocking = check.reasons.filter((r) => BLOCKING_REASONS.has(r.code));
  if (blocking.length > 0) {
    return refuse(
      blocking.map((r) =>
        errorIssue('business-rule', `${site.name} cannot take this referral (${r.code}): ${r.display}`, input.expression),
      ),
    );
  }

  const now = deps.clock.now();
  const at = now.toISOString();
  const { statusReason: _held, ...taskRest } = task;
  const next: Task & { id: string } = {
    ...taskRest,
    id: taskWithId.id,
    ...taskStatusFields('verifying-coverage'),
    lastModified: at,
    output: [
      ...(task.output ?? []).filter((o) => !isConfirmedLocation(o)),
      {
        type: { coding: [{ system: TASK_PARAMETER_TYPE_SYSTEM, code: 'confirmed-location', display: 'Confirmed location' }] },
        valueReference: siteReference(site),
      },
    ],
  };
  const ehr = (referral.referral as { ehr?: EhrReferences } | null)?.ehr;
  const stored = await deps.store.transaction(async (tx) => {
    const saved = await tx.update(input.tenant, next, now, { ifMatchVersionId: input.ifMatchVersionId ?? task.meta?.versionId ?? '1' });
    await tx.update(input.tenant, rerouted, now);
    await tx.updateReferralStatus(input.tenant, referral.id, 'verifying-coverage', now);
    if (deps.writeBackTenants.has(input.tenant) && ehr) {
      await tx.enqueue(taskWriteBack({ messageId: deps.newId(), tenant: input.tenant, referralId: referral.id, task: saved, ehr }), now);
    }
    if (deps.automaticCoverage) {
      await tx.enqueue(referralStep(VERIFY_COVERAGE_STEP, { messageId: deps.newId(), tenant: input.tenant, referralId: referral.id }), now);
    }
    return saved as Task & { id: string };
  });
  deps.logger.info('referral site confirmed', { referralId: referral.id, taskId: stored.id, locationId: site.locationId });
  return { kind: 'updated', task: stored, changed: true };
}

function refuse(issues: OperationOutcomeIssue[]): ConfirmSiteResult {
  return { kind: 'refused', outcome: unprocessable(issues) };
}

/** What a client may send differently from the stored Task: the gateway sets these itself. */
const SERVER_SET_TASK_ELEMENTS = new Set(['meta', 'text', 'output', 'status', 'businessStatus', 'statusReason', 'lastModified']);

/**
 * An update of a referral's Task by a client (a coordinator's tool): the only change a client may
 * make is to add the `confirmed-location` output; everything else is the gateway's record. (An
 * appeal Task is the coordinator's to work: update-appeal.ts.) A Task
 * that changes anything else is refused with one issue per element, so nothing is silently dropped.
 */
export async function updateReferralTaskByClient(
  deps: GatewayDeps,
  input: { tenant: TenantId; id: string; body: unknown; ifMatchVersionId?: string },
): Promise<ConfirmSiteResult> {
  const body = input.body as Partial<Task> | null;
  if (typeof body !== 'object' || body === null || body.resourceType !== 'Task') {
    return { kind: 'refused', outcome: badRequest([errorIssue('invalid', 'The body must be a Task', 'resourceType')]) };
  }
  if (body.id !== input.id) {
    return {
      kind: 'refused',
      outcome: badRequest([errorIssue('invalid', `The Task's id must be the id in the URL (${input.id})`, 'Task.id')]),
    };
  }
  const current = await deps.store.read<Task>([input.tenant], 'Task', input.id);
  if (!current) return { kind: 'refused', outcome: notFound('Task', input.id) };
  if (isAppealTask(current)) {
    return updateAppealTaskByClient(deps, {
      tenant: input.tenant,
      body: body as Task & { id: string },
      current: current as Task & { id: string },
      ...(input.ifMatchVersionId !== undefined ? { ifMatchVersionId: input.ifMatchVersionId } : {}),
    });
  }

  const issues: OperationOutcomeIssue[] = [];
  for (const key of changedElementsOutside(current, body, SERVER_SET_TASK_ELEMENTS)) {
    issues.push(
      errorIssue('business-rule', `Task.${key} is kept by the gateway; a client may only add a confirmed-location output`, `Task.${key}`),
    );
  }
  const confirmations = (body.output ?? []).map((output, index) => ({ output, index })).filter(({ output }) => isConfirmedLocation(output));
  if (confirmations.length !== 1) {
    issues.push(
      errorIssue(
        'required',
        'Add exactly one Task.output of type confirmed-location (a Location reference) to confirm the site',
        'Task.output',
      ),
    );
  }
  if (issues.length > 0) return refuse(issues);
  const { output, index } = confirmations[0]!;
  const location = output.valueReference;
  if (!location)
    return refuse([
      errorIssue('required', 'The confirmed-location output must carry a valueReference to a Location', `Task.output[${index}].value`),
    ]);
  return confirmReferralSite(deps, {
    tenant: input.tenant,
    taskId: input.id,
    location,
    expression: `Task.output[${index}].valueReference`,
    ...(input.ifMatchVersionId !== undefined ? { ifMatchVersionId: input.ifMatchVersionId } : {}),
  });
}
