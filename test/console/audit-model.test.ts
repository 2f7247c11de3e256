import { expect } from 'chai';
import type { AuditEvent } from 'fhir/r4.js';
import { auditFilterProblems, auditRow, auditSearchParams } from '../../console/src/model/audit.js';

describe('the console’s audit trail search', () => {
  it('asks for agent, entity and a range of whole days, newest first, one page', () => {
    expect(auditSearchParams({ agent: ' demo-ehr ', entity: 'ServiceRequest/123', from: '2026-12-01', to: '2026-12-04' })).to.deep.equal([
      ['agent', 'demo-ehr'],
      ['entity', 'ServiceRequest/123'],
      ['date', 'ge2026-12-01'],
      ['date', 'le2026-12-04'],
      ['_sort', '-date'],
      ['_count', '25'],
    ]);
    expect(auditSearchParams({ agent: '', entity: '', from: '', to: '' })).to.deep.equal([
      ['_sort', '-date'],
      ['_count', '25'],
    ]);
  });

  it('names each problem of the form by field before calling the API', () => {
    expect(auditFilterProblems({ agent: '', entity: 'Marisol Quillfeather', from: '12/01/2026', to: '2026-12-04' })).to.deep.equal({
      entity: 'Give a reference such as ServiceRequest/123',
      from: 'Give a date as YYYY-MM-DD',
    });
    expect(auditFilterProblems({ agent: '', entity: '', from: '2026-12-05', to: '2026-12-04' })).to.deep.equal({
      to: 'The end comes before the start',
    });
    expect(auditFilterProblems({ agent: 'x', entity: 'Task/a-1', from: '', to: '' })).to.deep.equal({});
  });

  it('shows who, what, when and the outcome of an AuditEvent, references only', () => {
    const event: AuditEvent = {
      resourceType: 'AuditEvent',
      id: 'ae-1',
      type: { system: 'http://terminology.hl7.org/CodeSystem/audit-event-type', code: 'rest', display: 'RESTful Operation' },
      subtype: [{ system: 'http://hl7.org/fhir/restful-interaction', code: 'read' }],
      action: 'R',
      recorded: '2026-12-04T10:00:00Z',
      outcome: '4',
      agent: [{ requestor: true, who: { identifier: { value: 'demo-coordinator' } }, role: [{ coding: [{ code: 'coordinator' }] }] }],
      source: { observer: { display: 'infusion-gateway' } },
      entity: [{ what: { reference: 'ServiceRequest/123' } }, { type: { code: 'Task' }, query: 'YnVzaW5lc3Mtc3RhdHVz' }],
    };
    expect(auditRow(event)).to.deep.equal({
      id: 'ae-1',
      recorded: '2026-12-04T10:00:00Z',
      action: 'read',
      event: 'read',
      outcome: 'minor failure',
      agents: ['demo-coordinator (coordinator)'],
      entities: ['ServiceRequest/123', 'search of Task'],
      failed: true,
    });
  });
});
