import { expect } from 'chai';
import { readFileSync } from 'node:fs';
import type { OperationDefinition } from 'fhir/r4.js';
import { phoneVerificationNote, phoneVerificationResult, readPhoneVerification } from '../../src/coverage/rules/phone-verification.js';
import { readOperationParameters, type ReadParameters } from '../../src/fhir/operation-parameters.js';

// The Parameters as the operation reads them: by its published definition (src/http/operations/record-verification.ts).
const DEFINITION = JSON.parse(
  readFileSync(new URL('../../profiles/OperationDefinition-record-verification.json', import.meta.url), 'utf8'),
) as OperationDefinition;
const read = (body: object): ReadParameters => readOperationParameters(DEFINITION, { method: 'POST', query: [], body });

const NOW = new Date('2026-12-04T18:00:00Z');
const parameters = (...parameter: object[]): object => ({ resourceType: 'Parameters', parameter });
const CALL = [
  { name: 'verified-by', valueReference: { reference: 'PractitionerRole/coordinator-7', display: 'Dana Coordinator' } },
  { name: 'verified-at', valueDateTime: '2026-12-04T09:30:00-06:00' },
  { name: 'payer-reference', valueString: 'CALL-42' },
];

describe('phone verification (pure)', () => {
  it('reads a complete verification with the authorization the payer gave', () => {
    const { verification, issues } = readPhoneVerification(
      read(
        parameters(
          ...CALL,
          { name: 'outcome', valueCode: 'authorized' },
          { name: 'authorization-number', valueString: 'PA-1' },
          { name: 'authorization-period', valuePeriod: { start: '2026-12-01' } },
        ),
      ),
      NOW,
    );
    expect(issues).to.deep.equal([]);
    expect(verification).to.deep.equal({
      verifiedBy: { reference: { reference: 'PractitionerRole/coordinator-7', display: 'Dana Coordinator' } },
      verifiedAt: new Date('2026-12-04T15:30:00Z'),
      payerReference: 'CALL-42',
      outcome: 'authorized',
      authorizationNumber: 'PA-1',
      authorizationPeriod: { start: '2026-12-01' },
    });
    expect(phoneVerificationResult(verification!)).to.deep.equal({
      authorization: { kind: 'approved', authorizationNumber: 'PA-1', period: { start: '2026-12-01' } },
      problems: [],
    });
    expect(phoneVerificationNote(verification!)).to.deep.include({
      authorReference: { reference: 'PractitionerRole/coordinator-7', display: 'Dana Coordinator' },
      time: '2026-12-04T15:30:00.000Z',
    });
  });

  it('reports every problem at once, each at its parameter', () => {
    const { verification, issues } = readPhoneVerification(
      read(
        parameters(
          { name: 'verified-at', valueDateTime: '2026-12-04' },
          { name: 'outcome', valueCode: 'authorized' },
          { name: 'payer-reference', valueString: '  ' },
        ),
      ),
      NOW,
    );
    expect(verification).to.equal(undefined);
    expect(issues.map((i) => [i.code, i.expression?.[0], i.diagnostics?.split(' ').slice(0, 2).join(' ')])).to.deep.equal([
      ['required', 'Parameters.parameter', 'Parameter verified-by'],
      ['value', 'Parameters.parameter[0].valueDateTime', 'verified-at must'],
      ['value', 'Parameters.parameter[2].valueString', 'payer-reference must'],
      ['required', 'Parameters.parameter', 'An authorized'],
    ]);
  });

  it('turns each outcome into the authorization or problem the electronic path would record', () => {
    const base = { verifiedBy: { name: 'Dana' }, verifiedAt: NOW, payerReference: 'CALL-9' };
    expect(phoneVerificationResult({ ...base, outcome: 'covered' })).to.deep.equal({
      authorization: { kind: 'not-required' },
      problems: [],
    });
    expect(phoneVerificationResult({ ...base, outcome: 'auth-pending' }).authorization).to.deep.equal({
      kind: 'pending',
      claimIdentifier: 'phone:CALL-9',
    });
    expect(phoneVerificationResult({ ...base, outcome: 'denied' }).authorization).to.deep.equal({
      kind: 'denied',
      claimIdentifier: 'phone:CALL-9',
    });
    const notCovered = phoneVerificationResult({ ...base, outcome: 'not-covered' });
    expect(notCovered.authorization).to.equal(undefined);
    expect(notCovered.problems.map((p) => p.code)).to.deep.equal(['eligibility-not-in-force']);
  });
});
