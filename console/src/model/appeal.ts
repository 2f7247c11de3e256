/**
 * The appeal Task as a checklist (field note 003): the steps are the Task's inputs, each `pending`,
 * `done` or `not-applicable`; the coordinator ticks them and, at the end, records the result. The
 * gateway's own rules (src/coverage/rules/appeal.ts) say what a step is and when an appeal is won. Pure:
 * each function returns a new Task for a PUT.
 */
import type { Period, Task } from 'fhir/r4.js';
import {
  APPEAL_STEP_SYSTEM,
  APPEAL_STEPS,
  appealOutcome,
  appealStepStatuses,
  isAppealTask,
  type AppealStep,
  type AppealStepStatus,
} from '../../../src/coverage/rules/appeal.js';
import { TASK_PARAMETER_TYPE_SYSTEM } from './referral.js';

export { APPEAL_STEPS, appealOutcome, appealStepStatuses, isAppealTask, type AppealStep, type AppealStepStatus };

const isStep = (type: Task['code'], step: string): boolean =>
  type?.coding?.some((c) => c.system === APPEAL_STEP_SYSTEM && c.code === step) === true;

export function stepLabel(task: Task, step: AppealStep): string {
  return task.input?.find((i) => isStep(i.type, step))?.type.coding?.find((c) => c.system === APPEAL_STEP_SYSTEM)?.display ?? step;
}

export function denialReasons(task: Task): string[] {
  return (task.input ?? [])
    .filter((i) => isStep(i.type, 'denial-reason'))
    .map(
      (i) =>
        i.valueCodeableConcept?.text ?? i.valueCodeableConcept?.coding?.[0]?.display ?? i.valueCodeableConcept?.coding?.[0]?.code ?? '',
    );
}

/** The Task with one step set: only that input's value changes (the gateway refuses anything more). */
export function withStep(task: Task, step: AppealStep, status: AppealStepStatus): Task {
  return {
    ...task,
    status: task.status === 'ready' && status !== 'pending' ? 'in-progress' : task.status,
    input: (task.input ?? []).map((input) => (isStep(input.type, step) ? { ...input, valueCode: status } : input)),
  };
}

/** The appeal closed: won with the authorization the payer granted (which moves the referral on), or lost. */
export function withResult(task: Task, result: { won: true; authorizationNumber: string; period?: Period } | { won: false }): Task {
  const resultOutput = {
    type: { coding: [{ system: APPEAL_STEP_SYSTEM, code: 'appeal-result', display: 'Appeal result' }] },
    valueCode: result.won ? 'approved' : 'denied',
  };
  const granted = result.won
    ? [
        {
          type: { coding: [{ system: TASK_PARAMETER_TYPE_SYSTEM, code: 'authorization-number', display: 'Authorization number' }] },
          valueString: result.authorizationNumber,
        },
        ...(result.period
          ? [
              {
                type: { coding: [{ system: TASK_PARAMETER_TYPE_SYSTEM, code: 'authorization-period', display: 'Authorization period' }] },
                valuePeriod: result.period,
              },
            ]
          : []),
      ]
    : [];
  const kept = (task.output ?? []).filter(
    (o) =>
      !isStep(o.type, 'appeal-result') &&
      !o.type.coding?.some(
        (c) => c.system === TASK_PARAMETER_TYPE_SYSTEM && (c.code === 'authorization-number' || c.code === 'authorization-period'),
      ),
  );
  return { ...task, status: 'completed', output: [...kept, resultOutput, ...granted] };
}
