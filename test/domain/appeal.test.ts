import { expect } from 'chai';
import type { CodeSystem, Task } from 'fhir/r4.js';
import {
  APPEAL_STEPS,
  APPEAL_STEP_SYSTEM,
  appealOutcome,
  appealStepStatuses,
  buildAppealTask,
  isAppealTask,
} from '../../src/coverage/rules/appeal.js';
import { readFixture } from '../support/fixtures.js';
import { loadValidator } from '../fhir/validation/validator.js';

const offLabel = {
  coding: [{ system: 'https://codesystem.x12.org/external/886', code: 'MN', display: 'Not medically necessary' }],
  text: 'Diagnosis is not an approved indication for immune globulin',
};

function newAppeal(): Task & { id: string } {
  return buildAppealTask({
    taskId: 'appeal-1',
    referralTaskId: 'task-42',
    patient: { reference: 'Patient/p-7' },
    denial: { reasons: [offLabel], claimResponse: { reference: 'ClaimResponse/cr-9' } },
    now: new Date('2026-12-02T14:30:00Z'),
  });
}

function completedWith(result: string | undefined, status: Task['status'] = 'completed'): Task {
  const task = newAppeal();
  task.status = status;
  if (result !== undefined) {
    task.output = [{ type: { coding: [{ system: APPEAL_STEP_SYSTEM, code: 'appeal-result' }] }, valueCode: result }];
  }
  return task;
}

describe('appeal', () => {
  describe('buildAppealTask', () => {
    it('builds a ready appeal Task, part of the referral Task, focused on the denying ClaimResponse', () => {
      const task = newAppeal();
      expect(task).to.deep.include({
        resourceType: 'Task',
        id: 'appeal-1',
        status: 'ready',
        intent: 'order',
        partOf: [{ reference: 'Task/task-42' }],
        focus: { reference: 'ClaimResponse/cr-9' },
        for: { reference: 'Patient/p-7' },
        authoredOn: '2026-12-02T14:30:00.000Z',
        lastModified: '2026-12-02T14:30:00.000Z',
      });
      expect(task.code?.coding).to.deep.equal([
        { system: APPEAL_STEP_SYSTEM, code: 'appeal', display: 'Appeal a prior-authorization denial' },
      ]);
      expect(isAppealTask(task)).to.equal(true);
    });

    it('carries the denial reason, then one pending input per step of field note 003, in order', () => {
      const task = newAppeal();
      expect(task.input?.[0]).to.deep.equal({
        type: { coding: [{ system: APPEAL_STEP_SYSTEM, code: 'denial-reason', display: 'Denial reason' }] },
        valueCodeableConcept: offLabel,
      });
      expect(task.input?.slice(1).map((i) => [i.type.coding?.[0]?.code, i.valueCode])).to.deep.equal([
        ['review-denial-letter', 'pending'],
        ['gather-documentation', 'pending'],
        ['letter-of-medical-necessity', 'pending'],
        ['peer-to-peer-review', 'pending'],
        ['formal-appeal', 'pending'],
        ['assistance-programs', 'pending'],
      ]);
    });

    it('says so when the payer gave no reason, and has no focus without a ClaimResponse', () => {
      const task = buildAppealTask({
        taskId: 'a',
        referralTaskId: 't',
        patient: { reference: 'Patient/p' },
        denial: { reasons: [] },
        now: new Date('2026-12-02T00:00:00Z'),
      });
      expect(task.input?.[0]?.valueCodeableConcept).to.deep.equal({ text: 'The payer gave no reason; read the denial letter' });
      expect(task.focus).to.equal(undefined);
    });

    it('builds a Task that is valid R4', async () => {
      const validator = await loadValidator();
      const errors = validator.validate(newAppeal()).filter((i) => i.severity === 'error' || i.severity === 'fatal');
      expect(errors).to.deep.equal([]);
    });
  });

  describe('appealOutcome', () => {
    it('is open while the Task is ready or in progress', () => {
      expect(appealOutcome(newAppeal())).to.equal('open');
      expect(appealOutcome({ ...newAppeal(), status: 'in-progress' })).to.equal('open');
    });

    it('is won when the Task is completed with the result approved', () => {
      expect(appealOutcome(completedWith('approved'))).to.equal('won');
    });

    it('is lost when the Task is completed with the result denied', () => {
      expect(appealOutcome(completedWith('denied'))).to.equal('lost');
    });

    it('is lost when the Task failed, was cancelled or rejected, whatever its outputs', () => {
      expect(appealOutcome(completedWith('approved', 'failed'))).to.equal('lost');
      expect(appealOutcome(completedWith(undefined, 'cancelled'))).to.equal('lost');
      expect(appealOutcome(completedWith(undefined, 'rejected'))).to.equal('lost');
    });

    it('stays open when a completed Task has no readable result, so nothing moves on', () => {
      expect(appealOutcome(completedWith(undefined))).to.equal('open');
      expect(appealOutcome(completedWith('maybe'))).to.equal('open');
      expect(appealOutcome(completedWith('approved', 'in-progress'))).to.equal('open');
    });
  });

  it('reads the step statuses the coordinator set', () => {
    const task = newAppeal();
    const review = task.input?.find((i) => i.type.coding?.[0]?.code === 'review-denial-letter');
    const assistance = task.input?.find((i) => i.type.coding?.[0]?.code === 'assistance-programs');
    review!.valueCode = 'done';
    assistance!.valueCode = 'not-applicable';
    expect(appealStepStatuses(task)).to.deep.equal([
      { step: 'review-denial-letter', status: 'done' },
      { step: 'gather-documentation', status: 'pending' },
      { step: 'letter-of-medical-necessity', status: 'pending' },
      { step: 'peer-to-peer-review', status: 'pending' },
      { step: 'formal-appeal', status: 'pending' },
      { step: 'assistance-programs', status: 'not-applicable' },
    ]);
  });

  it('publishes the Task code, every step, and the input and output types in profiles/CodeSystem-appeal-step.json', async () => {
    const codeSystem = readFixture<CodeSystem>('../profiles/CodeSystem-appeal-step.json');
    expect(codeSystem.url).to.equal(APPEAL_STEP_SYSTEM);
    expect(codeSystem.concept?.map((c) => c.code)).to.deep.equal(['appeal', ...APPEAL_STEPS, 'denial-reason', 'appeal-result']);
    const validator = await loadValidator();
    for (const file of ['CodeSystem-appeal-step.json', 'CodeSystem-coverage-issue.json', 'ValueSet-coverage-issue.json']) {
      const errors = validator.validateBase(readFixture(`../profiles/${file}`)).filter((i) => i.severity === 'error');
      expect(errors, file).to.deep.equal([]);
    }
  });
});
