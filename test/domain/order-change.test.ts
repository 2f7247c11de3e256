import { expect } from 'chai';
import type { ServiceRequest } from 'fhir/r4.js';
import { changedParts, decideOrderChange, ORDER_CHANGE_REASON_SYSTEM } from '../../src/order-changes/rules/order-change.js';

const order: ServiceRequest = {
  resourceType: 'ServiceRequest',
  status: 'active',
  intent: 'order',
  code: { coding: [{ system: 'http://www.nlm.nih.gov/research/umls/rxnorm', code: '1876391' }] },
  quantityQuantity: { value: 300, unit: 'mg' },
  occurrencePeriod: { start: '2027-01-04', end: '2027-06-30' },
  locationReference: [{ reference: 'Location/east-clinic' }],
  insurance: [{ reference: 'Coverage/cov-1' }],
  reasonCode: [{ coding: [{ system: 'http://hl7.org/fhir/sid/icd-10-cm', code: 'G35' }] }],
  subject: { reference: 'Patient/p-1' },
};

function version(change: Partial<ServiceRequest>): ServiceRequest {
  return { ...structuredClone(order), ...change };
}

describe('orders that change after they are sent', () => {
  it('does nothing for the same order delivered again, whatever the key order', () => {
    const again = JSON.parse(JSON.stringify({ ...order, quantityQuantity: { unit: 'mg', value: 300 } })) as ServiceRequest;
    expect(decideOrderChange(order, again)).to.deep.equal({ kind: 'unchanged' });
  });

  it('stops the referral when the EHR revokes the order or marks it in error, with a coded reason', () => {
    const revoked = decideOrderChange(order, version({ status: 'revoked' }));
    expect(revoked.kind).to.equal('stop');
    expect(revoked.kind === 'stop' && revoked.reason.coding?.[0]).to.deep.include({
      system: ORDER_CHANGE_REASON_SYSTEM,
      code: 'order-revoked',
    });
    const inError = decideOrderChange(order, version({ status: 'entered-in-error' }));
    expect(inError.kind === 'stop' && inError.reason.coding?.[0]?.code).to.equal('order-entered-in-error');
  });

  it('holds the referral when the order goes on hold, once', () => {
    const held = version({ status: 'on-hold' });
    expect(decideOrderChange(order, held).kind).to.equal('hold');
    expect(decideOrderChange(held, version({ status: 'on-hold' }))).to.deep.equal({ kind: 'unchanged' });
  });

  it('resumes an order that comes back to active, from the step a change in the same update affects', () => {
    const held = version({ status: 'on-hold' });
    expect(decideOrderChange(held, order)).to.deep.equal({ kind: 'resume', changed: [] });
    expect(decideOrderChange(held, version({ locationReference: [{ reference: 'Location/west-clinic' }] }))).to.deep.equal({
      kind: 'resume',
      from: 'site-check',
      changed: ['site'],
    });
  });

  it('re-checks a changed active order from the earliest step the change affects', () => {
    const cases: Array<[Partial<ServiceRequest>, string, string[]]> = [
      [{ locationReference: [{ reference: 'Location/west-clinic' }] }, 'site-check', ['site']],
      [{ code: { coding: [{ system: 'http://www.nlm.nih.gov/research/umls/rxnorm', code: '1594660' }] } }, 'coverage', ['drug']],
      [{ quantityQuantity: { value: 600, unit: 'mg' } }, 'coverage', ['dose']],
      [{ occurrencePeriod: { start: '2027-02-01', end: '2027-07-31' } }, 'coverage', ['period']],
      [{ occurrencePeriod: { start: '2027-02-01' }, performer: [{ reference: 'Organization/north' }] }, 'site-check', ['period', 'site']],
    ];
    for (const [change, from, changed] of cases) {
      expect(decideOrderChange(order, version(change)), JSON.stringify(change)).to.deep.equal({ kind: 'recheck', from, changed });
    }
  });

  it('does not bring back an order from a terminal status', () => {
    const revoked = version({ status: 'revoked' });
    expect(decideOrderChange(revoked, order).kind).to.equal('ignore');
    expect(decideOrderChange(revoked, version({ status: 'revoked' }))).to.deep.equal({ kind: 'unchanged' });
  });

  it('names exactly the parts that differ', () => {
    expect(changedParts(order, version({ subject: { reference: 'Patient/other' }, note: [{ text: 'call first' }] }))).to.deep.equal([]);
    expect(changedParts(order, version({ insurance: [], reasonCode: [] }))).to.deep.equal(['insurance', 'diagnosis']);
  });
});
