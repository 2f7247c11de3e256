import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { expect } from 'chai';
import type { CodeSystem, ElementDefinition, ServiceRequest, StructureDefinition, ValueSet } from 'fhir/r4.js';
import { FhirValidator } from '../../../src/fhir/validation/index.js';
import { validReferral } from './referral-fixture.js';
import { summarize } from './validator.js';

const BASE = 'https://profiles.example.org';
const PROFILE = `${BASE}/StructureDefinition/engine-test`;

function profile(elements: ElementDefinition[]): StructureDefinition {
  return {
    resourceType: 'StructureDefinition',
    id: 'engine-test',
    url: PROFILE,
    name: 'EngineTest',
    title: 'Engine test',
    status: 'draft',
    fhirVersion: '4.0.1',
    kind: 'resource',
    abstract: false,
    type: 'ServiceRequest',
    baseDefinition: 'http://hl7.org/fhir/StructureDefinition/ServiceRequest',
    derivation: 'constraint',
    differential: { element: [{ id: 'ServiceRequest', path: 'ServiceRequest' }, ...elements] },
  };
}

const codeSystem: CodeSystem = {
  resourceType: 'CodeSystem',
  id: 'performer-kinds',
  url: `${BASE}/CodeSystem/performer-kinds`,
  name: 'PerformerKinds',
  status: 'draft',
  content: 'complete',
  concept: [{ code: 'infusion-nurse', concept: [{ code: 'oncology-infusion-nurse' }] }, { code: 'pharmacist' }],
};
const valueSet: ValueSet = {
  resourceType: 'ValueSet',
  id: 'performer-kinds',
  url: `${BASE}/ValueSet/performer-kinds`,
  name: 'PerformerKinds',
  status: 'draft',
  compose: { include: [{ system: `${BASE}/CodeSystem/performer-kinds` }] },
};

/** A profiles directory with the given files, loaded; removed afterwards. */
async function withProfiles<T>(files: Record<string, unknown>, use: (validator: FhirValidator) => T | Promise<T>): Promise<T> {
  const dir = await mkdtemp(path.join(tmpdir(), 'profiles-'));
  try {
    for (const [name, content] of Object.entries(files))
      await writeFile(path.join(dir, name), typeof content === 'string' ? content : JSON.stringify(content));
    return await use(await FhirValidator.load({ profilesDir: dir }));
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

async function loadError(files: Record<string, unknown>): Promise<string> {
  try {
    await withProfiles(files, () => undefined);
  } catch (err) {
    return err instanceof Error ? err.message : String(err);
  }
  throw new Error('expected loading to fail');
}

describe('the profile engine', () => {
  const rules: ElementDefinition[] = [
    { id: 'ServiceRequest.identifier', path: 'ServiceRequest.identifier', max: '1' },
    { id: 'ServiceRequest.priority', path: 'ServiceRequest.priority', fixedCode: 'routine' },
    {
      id: 'ServiceRequest.category',
      path: 'ServiceRequest.category',
      min: 1,
      patternCodeableConcept: { coding: [{ system: 'http://snomed.info/sct', code: '386053000' }] },
    },
    {
      id: 'ServiceRequest.performerType',
      path: 'ServiceRequest.performerType',
      binding: { strength: 'required', valueSet: `${BASE}/ValueSet/performer-kinds` },
    },
    {
      id: 'ServiceRequest.code.coding',
      path: 'ServiceRequest.code.coding',
      min: 2,
      constraint: [{ key: 'tst-1', severity: 'error', human: 'Every coding has a display', expression: 'display.exists()' }],
    },
    { id: 'ServiceRequest.occurrence[x]', path: 'ServiceRequest.occurrence[x]', min: 1 },
    { id: 'ServiceRequest.note', path: 'ServiceRequest.note', max: '0' },
  ];
  const files = {
    'StructureDefinition-engine-test.json': profile(rules),
    'CodeSystem-performer-kinds.json': codeSystem,
    'ValueSet-performer-kinds.json': valueSet,
  };

  const conforming = (): ServiceRequest => ({
    ...validReferral(),
    category: [{ coding: [{ system: 'http://snomed.info/sct', code: '386053000', display: 'Evaluation procedure' }], text: 'evaluation' }],
    performerType: { coding: [{ system: `${BASE}/CodeSystem/performer-kinds`, code: 'oncology-infusion-nurse' }] },
    code: {
      coding: [
        { system: 'http://www.nlm.nih.gov/research/umls/rxnorm', code: '191831', display: 'infliximab' },
        { system: 'http://www.cms.gov/Medicare/Coding/HCPCSReleaseCodeSets', code: 'J1745', display: 'Injection, infliximab, 10 mg' },
      ],
    },
  });

  it('passes a resource that meets every rule (nested concepts of a code system included)', async () => {
    await withProfiles(files, (v) => expect(v.validateProfiles(conforming(), [PROFILE])).to.deep.equal([]));
  });

  it('checks min and max cardinality, nested paths and choice elements included', async () => {
    const resource: ServiceRequest = { ...conforming(), identifier: [{ value: 'a' }, { value: 'b' }], note: [{ text: 'x' }] };
    delete resource.occurrencePeriod;
    resource.code = { coding: [{ system: 'http://www.nlm.nih.gov/research/umls/rxnorm', code: '191831', display: 'infliximab' }] };
    await withProfiles(files, (v) =>
      expect(summarize(v.validateProfiles(resource, [PROFILE]))).to.have.members([
        'structure ServiceRequest.identifier',
        'structure ServiceRequest.note',
        'required ServiceRequest.code.coding',
        'required ServiceRequest.occurrence',
      ]),
    );
  });

  it('checks fixed and pattern values', async () => {
    const resource: ServiceRequest = {
      ...conforming(),
      priority: 'urgent',
      category: [{ coding: [{ system: 'http://snomed.info/sct', code: '108252007' }] }],
    };
    await withProfiles(files, (v) =>
      expect(summarize(v.validateProfiles(resource, [PROFILE]))).to.have.members([
        'value ServiceRequest.priority',
        'value ServiceRequest.category[0]',
      ]),
    );
  });

  it('checks a required binding to a value set published beside the profile', async () => {
    const resource: ServiceRequest = {
      ...conforming(),
      performerType: { coding: [{ system: `${BASE}/CodeSystem/performer-kinds`, code: 'surgeon' }] },
    };
    await withProfiles(files, (v) =>
      expect(summarize(v.validateProfiles(resource, [PROFILE]))).to.deep.equal(['code-invalid ServiceRequest.performerType']),
    );
  });

  it('evaluates invariants on nested elements for each instance, reported at that instance', async () => {
    const resource = conforming();
    const second = resource.code?.coding?.[1];
    if (second) delete second.display;
    await withProfiles(files, (v) => {
      const issues = v.validateProfiles(resource, [PROFILE]);
      expect(summarize(issues)).to.deep.equal(['invariant ServiceRequest.code.coding[1]']);
      expect(issues[0]?.diagnostics).to.equal('tst-1: Every coding has a display');
    });
  });

  describe('refuses to load what it cannot enforce, naming the file', () => {
    it('an element feature it does not check (slicing)', async () => {
      const message = await loadError({
        'StructureDefinition-x.json': profile([
          {
            id: 'ServiceRequest.identifier',
            path: 'ServiceRequest.identifier',
            slicing: { discriminator: [{ type: 'value', path: 'system' }], rules: 'open' },
          },
        ]),
      });
      expect(message).to.include('StructureDefinition-x.json').and.to.include("'slicing' is not checked");
    });

    it('a binding to a value set that is not published in profiles/', async () => {
      const message = await loadError({
        'StructureDefinition-x.json': profile([
          {
            id: 'ServiceRequest.performerType',
            path: 'ServiceRequest.performerType',
            binding: { strength: 'required', valueSet: `${BASE}/ValueSet/nowhere` },
          },
        ]),
      });
      expect(message).to.include(`${BASE}/ValueSet/nowhere`).and.to.include('not published');
    });

    it('an element R4 does not have', async () => {
      const message = await loadError({
        'StructureDefinition-x.json': profile([{ id: 'ServiceRequest.requestor', path: 'ServiceRequest.requestor', min: 1 }]),
      });
      expect(message).to.include('ServiceRequest.requestor is not an element of the R4 ServiceRequest');
    });

    it('an invariant that is not valid FHIRPath', async () => {
      const message = await loadError({
        'StructureDefinition-x.json': profile([
          {
            id: 'ServiceRequest.code',
            path: 'ServiceRequest.code',
            constraint: [{ key: 'bad-1', severity: 'error', human: 'x', expression: 'coding.where(' }],
          },
        ]),
      });
      expect(message).to.include('bad-1 is not valid FHIRPath');
    });

    it('a conformance resource that is not valid R4', async () => {
      const message = await loadError({ 'StructureDefinition-x.json': { ...profile([]), status: 'ACTIVE' } });
      expect(message)
        .to.include('StructureDefinition-x.json is not a valid R4 StructureDefinition')
        .and.to.include('StructureDefinition.status');
    });

    it('a file that is not JSON', async () => {
      expect(await loadError({ 'broken.json': '{ "resourceType": ' })).to.include('broken.json is not valid JSON');
    });
  });

  it('skips JSON files that are not FHIR resources, such as a JSON schema kept with the profiles', async () => {
    await withProfiles({ 'thing.schema.json': { $schema: 'http://json-schema.org/draft-07/schema#', type: 'object' } }, (v) =>
      expect(v.profiles()).to.deep.equal([]),
    );
  });

  it('says to run npm install when the generated validators are missing', async () => {
    try {
      await FhirValidator.load({ profilesDir: tmpdir(), generatedFile: path.join(tmpdir(), 'no-such-dir', 'fhir-validators.mjs') });
      expect.fail('loading should have failed');
    } catch (err) {
      expect((err as Error).message)
        .to.include('npm install')
        .and.to.include('generate-validators.mjs');
    }
  });
});
