import { expect } from 'chai';
import type { Bundle, CodeSystem, Coverage, Resource, ServiceRequest } from 'fhir/r4.js';
import {
  COVERAGE_ISSUE_CODES,
  COVERAGE_ISSUE_SYSTEM,
  checkCoverage,
  coverageDirectoryFromResources,
  coverageIssues,
  fhirDateInterval,
  hasBlockingCoverageProblem,
} from '../../src/coverage/rules/coverage-check.js';
import type { CoverageCheckInput, CoverageDirectory, CoverageProblem } from '../../src/coverage/rules/coverage-check.js';
import { readFixture } from '../support/fixtures.js';

const directoryBundle = readFixture<Bundle>('directory/demo-directory.bundle.json');
const directory = coverageDirectoryFromResources((directoryBundle.entry ?? []).map((e) => e.resource as Resource));

function containedCoverage(serviceRequest: ServiceRequest): Coverage {
  const coverage = serviceRequest.contained?.find((r) => r.resourceType === 'Coverage');
  if (!coverage) throw new Error('fixture has no contained Coverage');
  return structuredClone(coverage as Coverage);
}

const infliximab = readFixture<ServiceRequest>('referrals/infliximab/service-request.json');
const ivig = readFixture<ServiceRequest>('referrals/immune-globulin-iv/service-request.json');

/** The infliximab referral (Cumberland Choice PPO, Green Hills) checked on 2026-11-23. */
function infliximabInput(change: (input: CoverageCheckInput & { coverage: Coverage }) => void = () => {}): CoverageCheckInput {
  const input: CoverageCheckInput & { coverage: Coverage } = {
    coverage: containedCoverage(infliximab),
    patient: { references: ['#patient'], identifiers: [] },
    requestedPeriod: { start: '2026-12-01', end: '2027-11-30' },
    now: new Date('2026-11-23T15:00:00Z'),
    siteLocationId: 'hin-nashville-green-hills',
    timeZone: 'America/Chicago',
    coverageExpression: 'ServiceRequest.contained[2]',
  };
  change(input);
  return input;
}

function codesOf(problems: readonly CoverageProblem[]): string[] {
  return problems.map((p) => p.code);
}

describe('coverage check', () => {
  it('finds no problem with an active, in-network coverage for the referral patient (infliximab, Cumberland, Green Hills)', () => {
    const result = checkCoverage(infliximabInput(), directory);
    expect(result.problems).to.deep.equal([]);
    expect(result.plan).to.deep.equal({ planId: 'plan-cumberland-choice-ppo', payerId: 'payer-cumberland' });
  });

  it('finds no problem with the IVIG referral at Phoenix Camelback under Sonoran Care', () => {
    const result = checkCoverage(
      {
        coverage: containedCoverage(ivig),
        patient: { references: ['#patient'], identifiers: [] },
        requestedPeriod: { start: '2026-11-30', end: '2027-05-31' },
        now: new Date('2026-11-23T15:00:00Z'),
        siteLocationId: 'hin-phoenix-camelback',
        timeZone: 'America/Phoenix',
      },
      directory,
    );
    expect(result.problems).to.deep.equal([]);
    expect(result.plan?.planId).to.equal('plan-sonoran-southwest-epo');
  });

  it('reports a referral without a coverage at ServiceRequest.insurance', () => {
    const result = checkCoverage({ ...infliximabInput(), coverage: undefined }, directory);
    expect(result.problems).to.deep.equal([
      {
        code: 'coverage-missing',
        severity: 'error',
        display: 'The referral carries no Coverage the gateway can read; insurance cannot be verified',
        expression: 'ServiceRequest.insurance',
      },
    ]);
    expect(result.plan).to.equal(undefined);
  });

  it('reports a cancelled coverage at its status', () => {
    const { problems } = checkCoverage(
      infliximabInput((i) => (i.coverage.status = 'cancelled')),
      directory,
    );
    expect(problems.map((p) => [p.code, p.expression])).to.deep.equal([['coverage-inactive', 'ServiceRequest.contained[2].status']]);
  });

  it('reports a coverage that ended before now as expired, and nothing more about its dates', () => {
    const { problems } = checkCoverage(
      infliximabInput((i) => (i.coverage.period = { start: '2025-01-01', end: '2026-10-31' })),
      directory,
    );
    expect(problems).to.have.length(1);
    expect(problems[0]).to.include({ code: 'coverage-expired', severity: 'error', expression: 'ServiceRequest.contained[2].period.end' });
  });

  it('counts the last day of a coverage as covered until midnight in the site time zone', () => {
    const endsToday = infliximabInput((i) => {
      i.coverage.period = { start: '2025-01-01', end: '2026-11-23' };
      i.now = new Date('2026-11-24T05:30:00Z'); // 23:30 on the 23rd in Nashville (CST, UTC-6)
      delete i.requestedPeriod;
    });
    expect(codesOf(checkCoverage(endsToday, directory).problems)).to.deep.equal([]);
    endsToday.now = new Date('2026-11-24T06:30:00Z'); // 00:30 on the 24th in Nashville
    expect(codesOf(checkCoverage(endsToday, directory).problems)).to.deep.equal(['coverage-expired']);
  });

  it('reports a coverage that starts after the first requested date as a blocking gap at its start', () => {
    const { problems } = checkCoverage(
      infliximabInput((i) => (i.coverage.period = { start: '2027-01-01' })),
      directory,
    );
    expect(problems.map((p) => [p.code, p.severity, p.expression])).to.deep.equal([
      ['coverage-period-gap', 'error', 'ServiceRequest.contained[2].period.start'],
    ]);
    expect(hasBlockingCoverageProblem(problems)).to.equal(true);
  });

  it('reports a coverage not yet in force when the order gives no dates', () => {
    const input = infliximabInput((i) => {
      i.coverage.period = { start: '2026-12-01' };
      delete i.requestedPeriod;
    });
    const { problems } = checkCoverage(input, directory);
    expect(problems.map((p) => [p.code, p.severity])).to.deep.equal([['coverage-period-gap', 'error']]);
  });

  it('warns without blocking when the coverage ends after the first requested date but before the last', () => {
    const { problems } = checkCoverage(
      infliximabInput((i) => (i.coverage.period = { start: '2025-01-01', end: '2026-12-31' })),
      directory,
    );
    expect(problems.map((p) => [p.code, p.severity, p.expression])).to.deep.equal([
      ['coverage-period-gap', 'warning', 'ServiceRequest.contained[2].period.end'],
    ]);
    expect(hasBlockingCoverageProblem(problems)).to.equal(false);
  });

  it('blocks when the coverage ends before the first requested date though it is in force now', () => {
    const { problems } = checkCoverage(
      infliximabInput((i) => (i.coverage.period = { start: '2025-01-01', end: '2026-11-30' })),
      directory,
    );
    expect(problems.map((p) => [p.code, p.severity])).to.deep.equal([['coverage-period-gap', 'error']]);
  });

  it('reports a beneficiary that is another patient', () => {
    const { problems } = checkCoverage(
      infliximabInput((i) => (i.coverage.beneficiary = { reference: 'Patient/someone-else' })),
      directory,
    );
    expect(problems.map((p) => [p.code, p.expression])).to.deep.equal([
      ['beneficiary-mismatch', 'ServiceRequest.contained[2].beneficiary'],
    ]);
  });

  it('accepts a beneficiary that is the same patient by business identifier, directly or once resolved', () => {
    const mrn = { system: 'urn:oid:2.16.840.1.113883.3.9104.2.2', value: 'MRN-1' };
    const byIdentifier = infliximabInput((i) => {
      i.coverage.beneficiary = { type: 'Patient', identifier: mrn };
      i.patient = { references: ['Patient/gw-1'], identifiers: [mrn] };
    });
    expect(checkCoverage(byIdentifier, directory).problems).to.deep.equal([]);

    const resolved = infliximabInput((i) => {
      i.coverage.beneficiary = { reference: 'Patient/ehr-77' };
      i.patient = { references: ['#patient'], identifiers: [mrn] };
      i.resolve = (r) => (r.reference === 'Patient/ehr-77' ? { resourceType: 'Patient', id: 'ehr-77', identifier: [mrn] } : undefined);
    });
    expect(checkCoverage(resolved, directory).problems).to.deep.equal([]);

    resolved.patient = { references: ['#patient'], identifiers: [{ system: mrn.system, value: 'MRN-2' }] };
    expect(codesOf(checkCoverage(resolved, directory).problems)).to.deep.equal(['beneficiary-mismatch']);
  });

  it('reports a payer the directory does not know, and the plan that no longer matches its payer', () => {
    const { problems } = checkCoverage(
      infliximabInput((i) => (i.coverage.payor = [{ reference: 'Organization/payer-bluegrass' }])),
      directory,
    );
    expect(problems.map((p) => [p.code, p.expression])).to.deep.equal([
      ['payer-unknown', 'ServiceRequest.contained[2].payor'],
      ['plan-payer-mismatch', 'ServiceRequest.contained[2].class[1].value'],
    ]);
  });

  it('reports a plan the directory does not know at the plan class, and skips the network check', () => {
    const { problems, plan } = checkCoverage(
      infliximabInput((i) => {
        i.coverage.class![1]!.value = 'GOLD-PPO';
        i.siteLocationId = 'hin-phoenix-camelback';
      }),
      directory,
    );
    expect(problems.map((p) => [p.code, p.expression])).to.deep.equal([['plan-unknown', 'ServiceRequest.contained[2].class[1].value']]);
    expect(plan).to.equal(undefined);
  });

  it('reports a coverage without a plan class as plan unknown at Coverage.class', () => {
    const { problems } = checkCoverage(
      infliximabInput((i) => (i.coverage.class = i.coverage.class!.slice(0, 1))),
      directory,
    );
    expect(problems.map((p) => [p.code, p.expression])).to.deep.equal([['plan-unknown', 'ServiceRequest.contained[2].class']]);
  });

  it('reports a site outside the plan network (Peachtree Select HMO at Atlanta Buckhead)', () => {
    const ocrelizumab = readFixture<ServiceRequest>('referrals/ocrelizumab/service-request.json');
    const { problems } = checkCoverage(
      {
        coverage: containedCoverage(ocrelizumab),
        patient: { references: ['#patient'], identifiers: [] },
        requestedPeriod: { start: '2026-12-07', end: '2027-12-06' },
        now: new Date('2026-11-23T15:00:00Z'),
        siteLocationId: 'hin-atlanta-buckhead',
      },
      directory,
    );
    expect(problems).to.deep.equal([
      {
        code: 'out-of-network',
        severity: 'error',
        display: 'The site hin-atlanta-buckhead is not in the network of the plan plan-peachtree-select-hmo',
        expression: 'ServiceRequest.locationReference[0]',
      },
    ]);
  });

  it('counts a site whose only affiliation with the network is inactive as out of network (Charlotte Elizabeth)', () => {
    const { problems } = checkCoverage(
      infliximabInput((i) => (i.siteLocationId = 'hin-charlotte-elizabeth')),
      directory,
    );
    expect(codesOf(problems)).to.deep.equal(['out-of-network']);
  });

  it('leaves a site unknown to the directory to the site check', () => {
    const { problems } = checkCoverage(
      infliximabInput((i) => (i.siteLocationId = 'not-a-site')),
      directory,
    );
    expect(problems).to.deep.equal([]);
  });

  it('reports every problem of a coverage at once', () => {
    const { problems } = checkCoverage(
      infliximabInput((i) => {
        i.coverage.status = 'draft';
        i.coverage.period = { start: '2024-01-01', end: '2025-12-31' };
        i.coverage.beneficiary = { reference: '#other' };
        i.coverage.payor = [];
        i.siteLocationId = 'hin-phoenix-camelback';
      }),
      directory,
    );
    expect(codesOf(problems)).to.deep.equal([
      'coverage-inactive',
      'coverage-expired',
      'beneficiary-mismatch',
      'payer-unknown',
      'out-of-network',
    ]);
  });

  it('reports an inactive plan through any directory implementing the interface', () => {
    const stub: CoverageDirectory = {
      planForCoverage: () => ({
        planId: 'plan-old',
        payerOrganizationId: 'payer-cumberland',
        networkIds: new Set(['network-cumberland-choice']),
        active: false,
      }),
      isKnownPayer: (id) => id === 'payer-cumberland',
      siteNetworkIds: () => new Set(['network-cumberland-choice']),
    };
    const { problems } = checkCoverage(infliximabInput(), stub);
    expect(problems.map((p) => [p.code, p.expression])).to.deep.equal([['plan-inactive', 'ServiceRequest.contained[2].class[1].value']]);
  });

  it('turns problems into business-rule issues coded from the coverage-issue CodeSystem', () => {
    const { problems } = checkCoverage(
      infliximabInput((i) => (i.coverage.status = 'cancelled')),
      directory,
    );
    expect(coverageIssues(problems)).to.deep.equal([
      {
        severity: 'error',
        code: 'business-rule',
        diagnostics: 'The Coverage is cancelled, not active',
        expression: ['ServiceRequest.contained[2].status'],
        details: { coding: [{ system: COVERAGE_ISSUE_SYSTEM, code: 'coverage-inactive' }], text: 'The Coverage is cancelled, not active' },
      },
    ]);
  });

  it('reads FHIR dates at their precision', () => {
    expect(fhirDateInterval('2026', 'UTC')).to.deep.equal({ start: Date.UTC(2026, 0, 1), end: Date.UTC(2027, 0, 1) });
    expect(fhirDateInterval('2026-02', 'UTC')).to.deep.equal({ start: Date.UTC(2026, 1, 1), end: Date.UTC(2026, 2, 1) });
    expect(fhirDateInterval('2026-11-01', 'America/New_York')).to.deep.equal({
      start: Date.UTC(2026, 10, 1, 4),
      end: Date.UTC(2026, 10, 2, 5),
    });
    // The day daylight saving time ends in New York has 25 hours.
    expect(fhirDateInterval('2026-11-01', 'America/New_York')!.end - fhirDateInterval('2026-11-01', 'America/New_York')!.start).to.equal(
      25 * 3_600_000,
    );
    expect(fhirDateInterval('2026-11-23T08:15:00-07:00', 'UTC')?.start).to.equal(Date.UTC(2026, 10, 23, 15, 15));
    expect(fhirDateInterval('23/11/2026', 'UTC')).to.equal(undefined);
  });

  it('publishes every coverage-issue code in profiles/CodeSystem-coverage-issue.json', () => {
    const codeSystem = readFixture<CodeSystem>('../profiles/CodeSystem-coverage-issue.json');
    expect(codeSystem.url).to.equal(COVERAGE_ISSUE_SYSTEM);
    expect(codeSystem.concept?.map((c) => c.code)).to.deep.equal([...COVERAGE_ISSUE_CODES]);
    expect(codeSystem.count).to.equal(COVERAGE_ISSUE_CODES.length);
  });
});
