import { expect } from 'chai';
import type { Bundle, OperationOutcomeIssue } from 'fhir/r4.js';
import { COVERAGE_ISSUE_SYSTEM } from '../../src/coverage/rules/coverage-check.js';
import { parseDrugCatalog } from '../../src/directory/rules/drug-catalog.js';
import {
  CARE_SETTINGS,
  allowedAmountPerInfusion,
  parsePriorAuthRules,
  priorAuthRequired,
  reconcileAuthRequirement,
} from '../../src/coverage/rules/prior-auth-rules.js';
import type { PriorAuthRules } from '../../src/coverage/rules/prior-auth-rules.js';
import { readFixture } from '../support/fixtures.js';

const catalogDrugIds = (parseDrugCatalog(readFixture('drug-catalog.json')).catalog?.drugs ?? []).map((d) => d.id);
const demoPayerIds = (readFixture<Bundle>('directory/demo-directory.bundle.json').entry ?? [])
  .map((e) => e.resource)
  .filter((r) => r?.resourceType === 'Organization' && r.id?.startsWith('payer-'))
  .map((r) => r!.id as string);
const known = { drugIds: catalogDrugIds, payerOrganizationIds: demoPayerIds };

function fixtureRules(): PriorAuthRules {
  const { rules, issues } = parsePriorAuthRules(readFixture('prior-auth-rules.json'), known);
  if (!rules) throw new Error(`fixture rules are invalid: ${JSON.stringify(issues)}`);
  return rules;
}

function expressionsOf(issues: readonly OperationOutcomeIssue[]): string[] {
  return issues.flatMap((i) => i.expression ?? []);
}

/** A small valid rule file that each test may break in one place. */
function minimalRules(): Record<string, unknown> {
  return {
    version: 'test-1',
    defaults: { priorAuthRequired: true },
    rules: [
      { drugId: 'infliximab', priorAuthRequired: true },
      { drugId: 'infliximab', setting: 'infusion-center', allowedAmountPerInfusion: { value: 4800, currency: 'USD' } },
      { drugId: 'infliximab', payerOrganizationId: 'payer-cumberland', priorAuthRequired: false },
      { drugId: 'infliximab', payerOrganizationId: 'payer-cumberland', setting: 'home', priorAuthRequired: true },
    ],
  };
}

describe('prior-authorization rules', () => {
  describe('parsePriorAuthRules', () => {
    it('accepts the demo rules in fixtures/ against the catalog and the directory without any issue', () => {
      const { rules, issues } = parsePriorAuthRules(readFixture('prior-auth-rules.json'), known);
      expect(issues).to.deep.equal([]);
      expect(rules?.version).to.equal('2026.4');
    });

    it('has a rule for every catalog drug, and an allowed amount at the infusion center for every demo payer', () => {
      const rules = fixtureRules();
      expect(demoPayerIds).to.have.members(['payer-cumberland', 'payer-peachtree', 'payer-sonoran']);
      for (const drugId of catalogDrugIds) {
        expect(
          rules.rules.some((r) => r.drugId === drugId && r.priorAuthRequired !== undefined),
          drugId,
        ).to.equal(true);
        for (const payerOrganizationId of demoPayerIds) {
          const amount = allowedAmountPerInfusion(rules, { drugId, payerOrganizationId, setting: 'infusion-center' });
          expect(amount?.currency, `${drugId} ${payerOrganizationId}`).to.equal('USD');
        }
      }
    });

    it('reports every schema problem at once, each with its path', () => {
      const json = minimalRules();
      json['colour'] = 'blue';
      (json['defaults'] as Record<string, unknown>)['priorAuthRequired'] = 'yes';
      const rules = json['rules'] as Array<Record<string, unknown>>;
      rules[1]!['setting'] = 'clinic';
      rules[2]!['allowedAmountPerInfusion'] = { value: -5, currency: 'usd' };
      delete rules[3]!['priorAuthRequired'];
      const { rules: parsed, issues } = parsePriorAuthRules(json);
      expect(parsed).to.equal(undefined);
      expect(expressionsOf(issues)).to.have.members([
        'colour',
        'defaults.priorAuthRequired',
        'rules[1].setting',
        'rules[2].allowedAmountPerInfusion.value',
        'rules[2].allowedAmountPerInfusion.currency',
        'rules[3]',
      ]);
      expect(issues.find((i) => i.expression?.[0] === 'rules[3]')?.diagnostics).to.equal(
        'rules[3] must say priorAuthRequired, allowedAmountPerInfusion or both',
      );
      expect(issues.every((i) => i.severity === 'error')).to.equal(true);
    });

    it('reports a second rule for the same drug, payer and setting, and drugs or payers that do not exist', () => {
      const json = minimalRules();
      const rules = json['rules'] as Array<Record<string, unknown>>;
      rules.push({ drugId: 'infliximab', payerOrganizationId: 'payer-cumberland', priorAuthRequired: true });
      rules.push({ drugId: 'rituximab', priorAuthRequired: true });
      rules.push({ drugId: 'vedolizumab', payerOrganizationId: 'payer-bluegrass', priorAuthRequired: true });
      const { rules: parsed, issues } = parsePriorAuthRules(json, known);
      expect(parsed).to.equal(undefined);
      expect(issues.map((i) => [i.code, i.expression?.[0]])).to.deep.equal([
        ['duplicate', 'rules[4]'],
        ['value', 'rules[5].drugId'],
        ['value', 'rules[6].payerOrganizationId'],
      ]);
    });

    it('reports a file that is not an object at its root', () => {
      const { issues } = parsePriorAuthRules([]);
      expect(issues).to.have.length(1);
      expect(issues[0]?.diagnostics).to.equal('The prior-authorization rules must be of type object');
    });
  });

  describe('priorAuthRequired', () => {
    const rules = (): PriorAuthRules => parsePriorAuthRules(minimalRules()).rules!;

    it('takes the most specific matching rule: payer and setting, then payer, then the drug alone', () => {
      expect(priorAuthRequired(rules(), { drugId: 'infliximab', payerOrganizationId: 'payer-cumberland', setting: 'home' })).to.deep.equal({
        required: true,
        source: 'rule',
      });
      expect(
        priorAuthRequired(rules(), { drugId: 'infliximab', payerOrganizationId: 'payer-cumberland', setting: 'infusion-center' }),
      ).to.deep.equal({
        required: false,
        source: 'rule',
      });
      expect(
        priorAuthRequired(rules(), { drugId: 'infliximab', payerOrganizationId: 'payer-sonoran', setting: 'infusion-center' }),
      ).to.deep.equal({
        required: true,
        source: 'rule',
      });
    });

    it('falls back to the default when no rule matches the drug', () => {
      const parsed = parsePriorAuthRules({ ...minimalRules(), defaults: { priorAuthRequired: false } }).rules!;
      expect(priorAuthRequired(parsed, { drugId: 'vedolizumab', payerOrganizationId: 'payer-sonoran', setting: 'home' })).to.deep.equal({
        required: false,
        source: 'default',
      });
    });

    it('follows the demo rules: Cumberland needs no authorization for vedolizumab at an infusion center, but does at a hospital', () => {
      const demo = fixtureRules();
      expect(
        priorAuthRequired(demo, { drugId: 'vedolizumab', payerOrganizationId: 'payer-cumberland', setting: 'infusion-center' }).required,
      ).to.equal(false);
      expect(
        priorAuthRequired(demo, { drugId: 'vedolizumab', payerOrganizationId: 'payer-cumberland', setting: 'hospital-outpatient' })
          .required,
      ).to.equal(true);
      for (const setting of CARE_SETTINGS) {
        expect(
          priorAuthRequired(demo, { drugId: 'immune-globulin-iv', payerOrganizationId: 'payer-sonoran', setting }),
          setting,
        ).to.deep.equal({
          required: true,
          source: 'rule',
        });
      }
    });
  });

  describe('allowedAmountPerInfusion', () => {
    it('takes the amount of the most specific rule that gives one, and none where no rule does', () => {
      const rules = parsePriorAuthRules(minimalRules()).rules!;
      // The payer rules for Cumberland say nothing of amounts, so the setting-wide amount applies.
      expect(
        allowedAmountPerInfusion(rules, { drugId: 'infliximab', payerOrganizationId: 'payer-cumberland', setting: 'infusion-center' }),
      ).to.deep.equal({
        value: 4800,
        currency: 'USD',
      });
      expect(allowedAmountPerInfusion(rules, { drugId: 'infliximab', payerOrganizationId: 'payer-cumberland', setting: 'home' })).to.equal(
        undefined,
      );
    });

    it('gives the field note 003 IVIG amount at an infusion center, and a payer contracted rate where there is one', () => {
      const demo = fixtureRules();
      expect(
        allowedAmountPerInfusion(demo, { drugId: 'immune-globulin-iv', payerOrganizationId: 'payer-sonoran', setting: 'infusion-center' }),
      ).to.deep.equal({
        value: 7500,
        currency: 'USD',
      });
      expect(
        allowedAmountPerInfusion(demo, { drugId: 'immune-globulin-iv', payerOrganizationId: 'payer-peachtree', setting: 'infusion-center' })
          ?.value,
      ).to.equal(6800);
    });
  });

  describe('reconcileAuthRequirement', () => {
    it('follows the rules when the payer does not say', () => {
      expect(reconcileAuthRequirement({ required: true, source: 'rule' }, undefined)).to.deep.equal({ required: true, source: 'rule' });
      expect(reconcileAuthRequirement({ required: false, source: 'default' }, undefined)).to.deep.equal({
        required: false,
        source: 'default',
      });
    });

    it('follows the payer without a warning when both agree', () => {
      expect(reconcileAuthRequirement({ required: false, source: 'rule' }, false)).to.deep.equal({ required: false, source: 'payer' });
    });

    it('follows the payer and warns, coded, when the rule disagrees', () => {
      const result = reconcileAuthRequirement({ required: false, source: 'rule' }, true);
      expect(result.required).to.equal(true);
      expect(result.source).to.equal('payer');
      expect(result.disagreement).to.equal(
        "The payer says prior authorization is required; the deployment's prior-authorization rule says not required. The payer's answer is followed.",
      );
      expect(result.warning).to.deep.equal({
        severity: 'warning',
        code: 'business-rule',
        diagnostics: result.disagreement,
        expression: ['CoverageEligibilityResponse.insurance.item.authorizationRequired'],
        details: {
          coding: [{ system: COVERAGE_ISSUE_SYSTEM, code: 'auth-requirement-disagreement' }],
          text: 'Prior-authorization rule disagrees with the payer',
        },
      });
    });

    it('says when the disagreement is with the default rather than a rule', () => {
      const result = reconcileAuthRequirement({ required: true, source: 'default' }, false);
      expect(result.required).to.equal(false);
      expect(result.disagreement).to.contain('the default of the prior-authorization rules (no rule matched) says required');
    });
  });
});
