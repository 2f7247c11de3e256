import { readFileSync } from 'node:fs';
import { expect } from 'chai';
import type { OperationOutcomeIssue } from 'fhir/r4.js';
import {
  DEFAULT_PHARMACY_LEAD_TIME_BUSINESS_DAYS,
  HCPCS_SYSTEM,
  RXNORM_SYSTEM,
  findDrugByCodings,
  findDrugById,
  isOnLabel,
  parseDrugCatalog,
} from '../../src/directory/rules/drug-catalog.js';
import type { CatalogDrug, DrugCatalog } from '../../src/directory/rules/drug-catalog.js';

const fixtureCatalog: unknown = JSON.parse(readFileSync(new URL('../../fixtures/drug-catalog.json', import.meta.url), 'utf8'));

function loadFixtureCatalog(): DrugCatalog {
  const { catalog, issues } = parseDrugCatalog(fixtureCatalog);
  if (!catalog) throw new Error(`fixture catalog is invalid: ${JSON.stringify(issues)}`);
  return catalog;
}

function drug(catalog: DrugCatalog, id: string): CatalogDrug {
  const found = findDrugById(catalog, id);
  if (!found) throw new Error(`no drug ${id}`);
  return found;
}

/** A small valid catalog that each test may break in one place. */
function minimalCatalog(): Record<string, unknown> {
  return {
    version: 'test-1',
    drugs: [
      {
        id: 'infliximab',
        name: 'infliximab',
        brandNames: ['Remicade'],
        codings: [
          { system: RXNORM_SYSTEM, code: '191831', display: 'infliximab' },
          { system: HCPCS_SYSTEM, code: 'J1745', display: 'Injection, infliximab, excludes biosimilar, 10 mg' },
        ],
        chairMinutes: { firstDose: 195, maintenance: 150 },
        observationMinutes: { firstDose: 60, maintenance: 30 },
        typicalIntervalWeeks: 8,
        inductionDoseWeeks: [0, 2, 6],
        onLabelDiagnoses: [{ code: 'K50', display: "Crohn's disease" }],
        documentationRequirements: [],
        limits: { minDaysBetweenDoses: 14, maxDosesPer365Days: 8 },
      },
      {
        id: 'vedolizumab',
        name: 'vedolizumab',
        brandNames: ['Entyvio'],
        codings: [{ system: HCPCS_SYSTEM, code: 'J3380', display: 'Injection, vedolizumab, 1 mg' }],
        chairMinutes: { firstDose: 75, maintenance: 45 },
        observationMinutes: { firstDose: 30, maintenance: 0 },
        pharmacyLeadTimeBusinessDays: 3,
        typicalIntervalWeeks: 8,
        onLabelDiagnoses: [{ code: 'K51', display: 'Ulcerative colitis' }],
        documentationRequirements: [],
        limits: { minDaysBetweenDoses: 14, maxDosesPer365Days: 8 },
      },
    ],
  };
}

function expressionsOf(issues: readonly OperationOutcomeIssue[]): string[] {
  return issues.flatMap((i) => i.expression ?? []);
}

describe('drug catalog', () => {
  describe('parseDrugCatalog', () => {
    it('accepts the demo catalog in fixtures/ without any issue', () => {
      const { catalog, issues } = parseDrugCatalog(fixtureCatalog);
      expect(issues).to.deep.equal([]);
      expect(catalog?.drugs.map((d) => d.id)).to.include.members(['infliximab', 'ocrelizumab', 'vedolizumab', 'immune-globulin-iv']);
    });

    it('applies the catalog default pharmacy lead time to drugs that give none, and keeps a drug its own', () => {
      const raw = minimalCatalog();
      raw['defaults'] = { pharmacyLeadTimeBusinessDays: 2 };
      const { catalog } = parseDrugCatalog(raw);
      expect(catalog && drug(catalog, 'infliximab').pharmacyLeadTimeBusinessDays).to.equal(2);
      expect(catalog && drug(catalog, 'vedolizumab').pharmacyLeadTimeBusinessDays).to.equal(3);
    });

    it('falls back to one business day of pharmacy lead time when the catalog has no default', () => {
      const { catalog } = parseDrugCatalog(minimalCatalog());
      expect(DEFAULT_PHARMACY_LEAD_TIME_BUSINESS_DAYS).to.equal(1);
      expect(catalog && drug(catalog, 'infliximab').pharmacyLeadTimeBusinessDays).to.equal(1);
    });

    it('refuses a value that is not a catalog object, with an error issue and no catalog', () => {
      const { catalog, issues } = parseDrugCatalog('drugs');
      expect(catalog).to.equal(undefined);
      expect(issues).to.have.length.greaterThan(0);
      expect(issues[0]?.code).to.equal('structure');
    });

    it('names a missing required property by its path', () => {
      const raw = minimalCatalog();
      const drugs = raw['drugs'] as Array<Record<string, unknown>>;
      delete drugs[1]?.['limits'];
      const { catalog, issues } = parseDrugCatalog(raw);
      expect(catalog).to.equal(undefined);
      expect(issues).to.deep.include.members([
        { severity: 'error', code: 'required', diagnostics: 'drugs[1].limits is required', expression: ['drugs[1].limits'] },
      ]);
    });

    it('reports a coding outside RxNorm and HCPCS and a malformed HCPCS code as value problems', () => {
      const raw = minimalCatalog();
      const drugs = raw['drugs'] as Array<Record<string, unknown>>;
      drugs[1]!['codings'] = [
        { system: 'http://hl7.org/fhir/sid/ndc', code: '64764-300-20', display: 'Entyvio 300 mg vial' },
        { system: HCPCS_SYSTEM, code: 'j3380', display: 'lower case' },
      ];
      const { issues } = parseDrugCatalog(raw);
      expect(expressionsOf(issues)).to.include.members(['drugs[1].codings[0].system', 'drugs[1].codings[1].code']);
      expect(issues.every((i) => i.code === 'value')).to.equal(true);
      expect(issues.some((i) => i.expression?.[0] === undefined)).to.equal(false);
    });

    it('reports an unknown property as a structure problem at its path', () => {
      const raw = minimalCatalog();
      const drugs = raw['drugs'] as Array<Record<string, unknown>>;
      drugs[0]!['chairMinutes'] = { firstDose: 195, maintenance: 150, median: 170 };
      const { issues } = parseDrugCatalog(raw);
      expect(issues).to.have.length(1);
      expect(issues[0]).to.include({ code: 'structure' });
      expect(issues[0]?.expression).to.deep.equal(['drugs[0].chairMinutes.median']);
    });

    it('lists every problem of a broken catalog in one pass, each at its own path', () => {
      const raw = minimalCatalog();
      const drugs = raw['drugs'] as Array<Record<string, unknown>>;
      const third = structuredClone(drugs[1]!);
      third['id'] = 'infliximab'; // duplicate id
      third['codings'] = [{ system: HCPCS_SYSTEM, code: 'J1745', display: 'also infliximab' }]; // duplicate coding
      third['chairMinutes'] = { firstDose: 30, maintenance: 45 }; // first dose shorter than maintenance
      third['observationMinutes'] = { firstDose: 40, maintenance: 0 }; // observation longer than the chair time
      third['typicalIntervalWeeks'] = 0; // below the minimum
      third['inductionDoseWeeks'] = [2, 6]; // does not start at week 0
      drugs.push(third);
      drugs[0]!['onLabelDiagnoses'] = [{ code: 'crohn', display: "Crohn's disease" }]; // not an ICD-10-CM code

      const { catalog, issues } = parseDrugCatalog(raw);

      expect(catalog).to.equal(undefined);
      expect(issues.every((i) => i.severity === 'error')).to.equal(true);
      const byExpression = new Map(issues.map((i) => [i.expression?.[0], i.code]));
      expect(Object.fromEntries(byExpression)).to.deep.equal({
        'drugs[0].onLabelDiagnoses[0].code': 'value',
        'drugs[2].typicalIntervalWeeks': 'value',
        'drugs[2].id': 'duplicate',
        'drugs[2].codings[0]': 'duplicate',
        'drugs[2].chairMinutes.firstDose': 'invariant',
        'drugs[2].observationMinutes.firstDose': 'invariant',
        'drugs[2].inductionDoseWeeks': 'invariant',
      });
      expect(issues).to.have.length(7);
    });

    it('says in the diagnostics which earlier entry a duplicate collides with', () => {
      const raw = minimalCatalog();
      const drugs = raw['drugs'] as Array<Record<string, unknown>>;
      drugs[1]!['codings'] = [{ system: RXNORM_SYSTEM, code: '191831', display: 'infliximab' }];
      const { issues } = parseDrugCatalog(raw);
      expect(issues).to.have.length(1);
      expect(issues[0]?.diagnostics).to.contain('drugs[0].codings[0]');
    });
  });

  describe('findDrugByCodings', () => {
    const catalog = loadFixtureCatalog();

    it('finds a drug by its RxNorm ingredient code', () => {
      expect(findDrugByCodings(catalog, [{ system: RXNORM_SYSTEM, code: '1876366' }])?.id).to.equal('ocrelizumab');
    });

    it('finds a drug by any of its HCPCS codes, whatever else the code carries', () => {
      const found = findDrugByCodings(catalog, [
        { system: 'http://hl7.org/fhir/sid/ndc', code: '44206-0438-10' },
        { system: HCPCS_SYSTEM, code: 'J1569', display: 'Gammagard Liquid' },
      ]);
      expect(found?.id).to.equal('immune-globulin-iv');
    });

    it('needs the system to match as well as the code', () => {
      expect(findDrugByCodings(catalog, [{ system: HCPCS_SYSTEM, code: '191831' }])).to.equal(undefined);
      expect(findDrugByCodings(catalog, [{ code: 'J1745' }])).to.equal(undefined);
    });

    it('finds nothing for a drug the catalog does not hold', () => {
      const rituximab = [
        { system: RXNORM_SYSTEM, code: '121191', display: 'rituximab' },
        { system: HCPCS_SYSTEM, code: 'J9312', display: 'Injection, rituximab, 10 mg' },
      ];
      expect(findDrugByCodings(catalog, rituximab)).to.equal(undefined);
    });

    it('lets the first recognised coding decide when codings name different drugs', () => {
      const found = findDrugByCodings(catalog, [
        { system: HCPCS_SYSTEM, code: 'J3380' },
        { system: RXNORM_SYSTEM, code: '191831' },
      ]);
      expect(found?.id).to.equal('vedolizumab');
    });
  });

  describe('isOnLabel', () => {
    const catalog = loadFixtureCatalog();

    it("matches a diagnosis under one of the drug's prefixes, with or without the dot", () => {
      const infliximab = drug(catalog, 'infliximab');
      expect(isOnLabel(infliximab, 'K50.90')).to.equal(true);
      expect(isOnLabel(infliximab, 'K5090')).to.equal(true);
      expect(isOnLabel(infliximab, ' m06.9 ')).to.equal(true);
    });

    it('matches the dotted prefixes of IVIG exactly as deep as they go', () => {
      const ivig = drug(catalog, 'immune-globulin-iv');
      expect(isOnLabel(ivig, 'G61.81')).to.equal(true);
      expect(isOnLabel(ivig, 'G61.0')).to.equal(true);
      expect(isOnLabel(ivig, 'D83.9')).to.equal(true);
      expect(isOnLabel(ivig, 'G70.01')).to.equal(true);
      expect(isOnLabel(ivig, 'G61.89')).to.equal(false);
      expect(isOnLabel(ivig, 'G61.8')).to.equal(false);
    });

    it('flags IVIG for multiple sclerosis or lupus as off-label (field note 003)', () => {
      const ivig = drug(catalog, 'immune-globulin-iv');
      expect(isOnLabel(ivig, 'G35.A')).to.equal(false);
      expect(isOnLabel(ivig, 'M32.14')).to.equal(false);
    });

    it('matches the 2026 multiple sclerosis subcodes for ocrelizumab', () => {
      expect(isOnLabel(drug(catalog, 'ocrelizumab'), 'G35.B1')).to.equal(true);
      expect(isOnLabel(drug(catalog, 'ocrelizumab'), 'K50.90')).to.equal(false);
    });

    it('treats an empty code as off-label', () => {
      expect(isOnLabel(drug(catalog, 'vedolizumab'), '')).to.equal(false);
      expect(isOnLabel(drug(catalog, 'vedolizumab'), ' . ')).to.equal(false);
    });
  });
});
