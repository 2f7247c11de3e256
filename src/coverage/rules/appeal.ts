/**
 * The appeal of a denied prior authorization, as a FHIR Task that is `partOf` the referral's Task
 * (https://hl7.org/fhir/R4/task.html#statemachine; sub-tasks: https://hl7.org/fhir/R4/task-definitions.html#Task.partOf).
 *
 * Field note 003 describes what follows a denial: read the denial reason, gather documentation, a letter
 * of medical necessity, a peer-to-peer review between the doctor and the payer's reviewer, a formal
 * appeal, and, failing that, manufacturer or foundation assistance programs. Each step is one
 * Task.input typed from profiles/CodeSystem-appeal-step.json, in that order, valued `pending`; the
 * coordinator sets each to `done` or `not-applicable` and may attach what the step produced (the
 * letter, the appeal) as a Task.output of the same type. The denial's reasons are inputs too.
 *
 * The appeal ends when the Task is `completed` with an output `appeal-result` of `approved` (won:
 * the referral moves on) or `denied` (lost); a `failed`, `cancelled` or `rejected` Task is lost.
 */
import type { CodeableConcept, Reference, Task, TaskInput } from 'fhir/r4.js';
import { GATEWAY_CANONICAL_BASE } from '../../referral/rules/referral-status.js';

/** The identifier system of the appeal Task the gateway opens for a denied prior authorization. */
export const APPEAL_IDENTIFIER_SYSTEM = `${GATEWAY_CANONICAL_BASE}/appeal-id`;

export const APPEAL_STEP_SYSTEM = `${GATEWAY_CANONICAL_BASE}/CodeSystem/appeal-step`;

/** The steps in the order field note 003 takes them, each with its display (profiles/CodeSystem-appeal-step.json). */
const STEP_DISPLAY = {
  'review-denial-letter': 'Review the denial letter',
  'gather-documentation': 'Gather documentation',
  'letter-of-medical-necessity': 'Letter of medical necessity',
  'peer-to-peer-review': 'Peer-to-peer review',
  'formal-appeal': 'Formal appeal',
  'assistance-programs': 'Assistance programs',
} as const;

export type AppealStep = keyof typeof STEP_DISPLAY;

/** The steps in order (an object's string keys keep the order they were written in). */
export const APPEAL_STEPS = Object.keys(STEP_DISPLAY) as readonly AppealStep[];

/** The value of a step's input: what the coordinator sets as the appeal goes on. */
export type AppealStepStatus = 'pending' | 'done' | 'not-applicable';

export type AppealOutcome = 'open' | 'won' | 'lost';

export interface AppealDenial {
  /** The payer's reasons (ClaimResponse.error.code, an X12 review decision reason, or text); empty when it gave none. */
  reasons: readonly CodeableConcept[];
  /** The ClaimResponse that denied the authorization, when there is one: the appeal's focus. */
  claimResponse?: Reference;
}

export interface NewAppealTask {
  taskId: string;
  /** The id of the referral's Task, which the appeal is part of. */
  referralTaskId: string;
  patient: Reference;
  denial: AppealDenial;
  now: Date;
}

function stepInput(step: AppealStep): TaskInput {
  return { type: { coding: [{ system: APPEAL_STEP_SYSTEM, code: step, display: STEP_DISPLAY[step] }] }, valueCode: 'pending' };
}

function denialReasonInput(reason: CodeableConcept): TaskInput {
  return {
    type: { coding: [{ system: APPEAL_STEP_SYSTEM, code: 'denial-reason', display: 'Denial reason' }] },
    valueCodeableConcept: reason,
  };
}

/** A new appeal Task, `ready` for a coordinator: the denial's reasons, then one input per step, all pending. */
export function buildAppealTask(input: NewAppealTask): Task & { id: string } {
  const at = input.now.toISOString();
  const reasons = input.denial.reasons.length > 0 ? input.denial.reasons : [{ text: 'The payer gave no reason; read the denial letter' }];
  const task: Task & { id: string } = {
    resourceType: 'Task',
    id: input.taskId,
    partOf: [{ reference: `Task/${input.referralTaskId}` }],
    status: 'ready',
    intent: 'order',
    priority: 'urgent',
    code: { coding: [{ system: APPEAL_STEP_SYSTEM, code: 'appeal', display: 'Appeal a prior-authorization denial' }] },
    description:
      'Appeal the denied prior authorization: review the denial letter, gather documentation, a letter of medical necessity, a peer-to-peer review, a formal appeal; failing that, assistance programs.',
    for: input.patient,
    authoredOn: at,
    lastModified: at,
    input: [...reasons.map((r) => denialReasonInput(structuredClone(r))), ...APPEAL_STEPS.map(stepInput)],
  };
  if (input.denial.claimResponse) task.focus = { ...input.denial.claimResponse };
  return task;
}

/** Whether a Task is an appeal Task (its code). */
export function isAppealTask(task: Task): boolean {
  return (task.code?.coding ?? []).some((c) => c.system === APPEAL_STEP_SYSTEM && c.code === 'appeal');
}

/**
 * Where an appeal stands: `won` only when the Task is completed with an `appeal-result` output of
 * `approved`; `lost` when completed with `denied`, or failed, cancelled or rejected; otherwise
 * `open`, which includes a completed Task without a readable result (nothing moves on without one).
 */
export function appealOutcome(task: Task): AppealOutcome {
  if (task.status === 'failed' || task.status === 'cancelled' || task.status === 'rejected') return 'lost';
  if (task.status !== 'completed') return 'open';
  const result = (task.output ?? []).find((o) => hasStepType(o.type, 'appeal-result'));
  const value = result?.valueCode;
  if (value === 'approved') return 'won';
  if (value === 'denied') return 'lost';
  return 'open';
}

/** Each step's status as the coordinator has set it; a step missing from the Task counts as pending. */
export function appealStepStatuses(task: Task): Array<{ step: AppealStep; status: AppealStepStatus }> {
  return APPEAL_STEPS.map((step) => {
    const value = (task.input ?? []).find((i) => hasStepType(i.type, step))?.valueCode;
    const status: AppealStepStatus = value === 'done' || value === 'not-applicable' ? value : 'pending';
    return { step, status };
  });
}

function hasStepType(type: CodeableConcept | undefined, code: string): boolean {
  return (type?.coding ?? []).some((c) => c.system === APPEAL_STEP_SYSTEM && c.code === code);
}
