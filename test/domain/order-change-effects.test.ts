import { expect } from 'chai';
import type { Appointment, CodeSystem, Task, TaskOutput } from 'fhir/r4.js';
import { ORDER_CHANGE_REASON_SYSTEM, decideOrderChange } from '../../src/order-changes/rules/order-change.js';
import {
  appointmentCancelledByOrder,
  appointmentNotice,
  noticeKey,
  noticeText,
  orderChangedReason,
  stepWhileHeld,
  taskForCoverageRecheck,
  taskHeldByOrder,
  taskResumed,
  taskStoppedByOrder,
} from '../../src/order-changes/rules/order-change-effects.js';
import { withoutCoverageFindings } from '../../src/coverage/rules/coverage-outcome.js';
import { readFixture } from '../support/fixtures.js';

const BASE = 'https://fhir.infusion-gateway.example';
const STATUS = `${BASE}/CodeSystem/referral-status`;
const TYPES = `${BASE}/CodeSystem/task-parameter-type`;
const NOW = new Date('2026-12-04T10:00:00Z');
const REVOKED = { coding: [{ system: ORDER_CHANGE_REASON_SYSTEM, code: 'order-revoked' }], text: 'The order was revoked in the EHR' };
const HELD = { coding: [{ system: ORDER_CHANGE_REASON_SYSTEM, code: 'order-on-hold' }], text: 'The order was put on hold in the EHR' };

const output = (code: string, value: Omit<TaskOutput, 'type'>): TaskOutput => ({ ...value, type: { coding: [{ system: TYPES, code }] } });
const scheduled: Task & { id: string } = {
  resourceType: 'Task',
  id: 't-1',
  status: 'in-progress',
  intent: 'order',
  businessStatus: { coding: [{ system: STATUS, code: 'scheduled' }] },
  output: [
    output('appointment', { valueReference: { reference: 'Appointment/a-1' } }),
    output('planned-dose', { valueDateTime: '2026-12-30T14:00:00Z' }),
    output('authorization-number', { valueString: 'PA-1' }),
    output('verified-coverage', { valueReference: { reference: 'Coverage/verified-r-1' } }),
  ],
};
const codeOf = (task: Task): string | undefined => task.businessStatus?.coding?.[0]?.code;
const outputCodes = (task: Task): Array<string | undefined> => (task.output ?? []).map((o) => o.type.coding?.[0]?.code);

describe("what an order change does to the referral's records", () => {
  it('cancels the Task of a revoked order with the reason, and drops the visits it no longer has', () => {
    const task = taskStoppedByOrder(scheduled, REVOKED, NOW);
    expect([task.status, codeOf(task), task.statusReason, task.lastModified]).to.deep.equal([
      'cancelled',
      'cancelled',
      REVOKED,
      NOW.toISOString(),
    ]);
    expect(outputCodes(task)).to.deep.equal(['authorization-number', 'verified-coverage']);
  });

  it('holds a scheduled referral ready to schedule again (its visits are cancelled), and resumes it there', () => {
    const held = taskHeldByOrder(scheduled, HELD, NOW);
    expect([held.status, codeOf(held), held.statusReason]).to.deep.equal(['on-hold', 'ready-to-schedule', HELD]);
    const resumed = taskResumed(held, NOW);
    expect([resumed.status, codeOf(resumed), resumed.statusReason]).to.deep.equal(['accepted', 'ready-to-schedule', undefined]);
    expect(stepWhileHeld('auth-pending')).to.equal('auth-pending');
    // A referral held for a reason of its own (a misroute to confirm) gets that reason back.
    const misroute = {
      coding: [{ system: `${BASE}/CodeSystem/misroute-reason`, code: 'too-far' }],
      text: 'Site to be confirmed with the patient',
    };
    const suspected: Task & { id: string } = {
      ...scheduled,
      status: 'on-hold',
      businessStatus: { coding: [{ system: STATUS, code: 'misroute-suspected' }] },
      statusReason: misroute,
    };
    const back = taskResumed(taskHeldByOrder(suspected, HELD, NOW), NOW, misroute);
    expect([back.status, codeOf(back), back.statusReason]).to.deep.equal(['on-hold', 'misroute-suspected', misroute]);
  });

  it('sends a changed order back to the coverage step without the findings and authorization of the order as it was', () => {
    const task = taskForCoverageRecheck(scheduled, { changed: ['drug'], now: NOW, withoutCoverage: withoutCoverageFindings });
    expect([task.status, codeOf(task), task.statusReason?.coding?.[0]?.code]).to.deep.equal([
      'in-progress',
      'verifying-coverage',
      'order-changed',
    ]);
    expect(task.statusReason?.text).to.contain('(drug)');
    expect(task.output).to.equal(undefined);
  });

  it('cancels an Appointment with the reason, every participant declined', () => {
    const appointment: Appointment & { id: string } = {
      resourceType: 'Appointment',
      id: 'a-1',
      meta: { versionId: '2' },
      status: 'booked',
      participant: [{ actor: { reference: 'Location/site' }, status: 'accepted' }],
    };
    const cancelled = appointmentCancelledByOrder(appointment, REVOKED);
    expect([cancelled.status, cancelled.cancelationReason, cancelled.participant[0]?.status, cancelled.meta]).to.deep.equal([
      'cancelled',
      REVOKED,
      'declined',
      undefined,
    ]);
  });

  it("tells the patient the time absolutely, in the site's zone, without naming them or the drug", () => {
    const cancelled = noticeText({
      kind: 'cancelled',
      siteName: 'Denver Cherry Creek',
      timeZone: 'America/Denver',
      start: new Date('2026-12-02T14:00:00Z'),
      why: 'The order was revoked in the EHR',
    });
    expect(cancelled).to.equal(
      'Your infusion appointment at Denver Cherry Creek on Wednesday, December 2, 2026 at 7:00 AM MST is cancelled. The order was revoked in the EHR. The infusion center will contact you.',
    );
    const moved = noticeText({
      kind: 'rescheduled',
      siteName: 'Denver Cherry Creek',
      timeZone: 'America/Denver',
      start: new Date('2026-12-09T14:00:00Z'),
      previousStart: new Date('2026-12-02T14:00:00Z'),
    });
    expect(moved).to.contain('from Wednesday, December 2, 2026 at 7:00 AM MST to Wednesday, December 9, 2026 at 7:00 AM MST');
    expect(noticeKey('a-1', 'rescheduled', new Date('2026-12-02T14:00:00Z'))).to.equal('a-1:moved-from:2026-12-02T14:00:00.000Z');
    const notice = appointmentNotice({
      id: 'n-1',
      key: 'a-1:cancelled',
      appointmentId: 'a-1',
      patient: { reference: 'Patient/p-1' },
      text: cancelled,
      reason: REVOKED,
    });
    expect([notice.status, notice.category?.[0]?.coding?.[0]?.code, notice.about, notice.recipient]).to.deep.equal([
      'preparation',
      'notification',
      [{ reference: 'Appointment/a-1' }],
      [{ reference: 'Patient/p-1' }],
    ]);
  });

  it('publishes every reason it gives in profiles/CodeSystem-order-change-reason.json', () => {
    const codeSystem = readFixture<CodeSystem>('../profiles/CodeSystem-order-change-reason.json');
    expect(codeSystem.url).to.equal(ORDER_CHANGE_REASON_SYSTEM);
    const published = (codeSystem.concept ?? []).map((c) => c.code);
    const order = readFixture<any>('referrals/tocilizumab/service-request.json');
    const given = [
      ...(['revoked', 'entered-in-error', 'on-hold'] as const).map((status) => {
        const decision = decideOrderChange(order, { ...order, status });
        return decision.kind === 'stop' || decision.kind === 'hold' ? decision.reason.coding?.[0]?.code : undefined;
      }),
      orderChangedReason(['site'], 'the site check').coding?.[0]?.code,
      'appointment-rescheduled',
      'appointment-cancelled',
    ];
    expect(published).to.include.members(given as string[]);
    expect(codeSystem.count).to.equal(published.length);
  });
});
