import { expect } from 'chai';
import type { FhirValidator } from '../../../src/fhir/validation/index.js';
import { referralJson } from './referral-fixture.js';
import { loadValidator, summarize } from './validator.js';

describe('base R4 validation', () => {
  let validator: FhirValidator;
  before(async () => {
    validator = await loadValidator();
  });

  const only = (resource: unknown): string[] => summarize(validator.validateBase(resource));
  const with_ = (changes: Record<string, unknown>): Record<string, unknown> => ({ ...referralJson(), ...changes });

  it('accepts a valid ServiceRequest without issues', async () => {
    expect(validator.validateBase(referralJson())).to.deep.equal([]);
  });

  describe('the hole in the official schema (no type: object on complex types) is closed', () => {
    it('refuses a string where the subject Reference belongs', async () => {
      const issues = validator.validateBase(with_({ subject: 'Patient/pat-1' }));
      expect(summarize(issues)).to.deep.equal(['structure ServiceRequest.subject']);
      expect(issues[0]?.diagnostics).to.equal('Expected an object (Reference) but found a string');
    });

    it('refuses a number where the code CodeableConcept belongs', async () => {
      const issues = validator.validateBase(with_({ code: 42 }));
      expect(summarize(issues)).to.deep.equal(['structure ServiceRequest.code']);
      expect(issues[0]?.diagnostics).to.equal('Expected an object (CodeableConcept) but found a number');
    });

    it('refuses an array where a single object belongs', async () => {
      const issues = validator.validateBase(with_({ subject: [{ reference: 'Patient/pat-1' }] }));
      expect(summarize(issues)).to.deep.equal(['structure ServiceRequest.subject']);
      expect(issues[0]?.diagnostics).to.equal('Expected an object (Reference) but found an array');
    });

    it('refuses an object where an array belongs', async () => {
      const issues = validator.validateBase(with_({ reasonCode: { text: 'Crohn disease' } }));
      expect(summarize(issues)).to.deep.equal(['structure ServiceRequest.reasonCode']);
      expect(issues[0]?.diagnostics).to.match(/^Expected an array but found an object/);
    });

    it('refuses a string inside a datatype and inside a backbone element', async () => {
      const resource = with_({
        identifier: [{ system: 'https://ehr.example.org/order-numbers', value: 'ORD-1', type: 'PLAC' }],
        subject: { reference: 'Patient/pat-1', identifier: 'MRN-1' },
      });
      expect(only(resource)).to.have.members([
        'structure ServiceRequest.identifier[0].type',
        'structure ServiceRequest.subject.identifier',
      ]);
      const bundle = { resourceType: 'Bundle', type: 'transaction', entry: [{ resource: referralJson(), request: 'POST ServiceRequest' }] };
      expect(validator.validateBase(bundle).map((i) => `${i.expression?.[0]}: ${i.diagnostics}`)).to.deep.equal([
        'Bundle.entry[0].request: Expected an object (Bundle.entry.request) but found a string',
      ]);
    });

    it('refuses null values, except a null in a primitive array whose _partner carries extensions', async () => {
      expect(only(with_({ subject: null }))).to.deep.equal(['structure ServiceRequest.subject']);
      expect(only(with_({ status: null }))).to.deep.equal(['structure ServiceRequest.status']);
      const patient = (given: unknown[], partner?: unknown[]): unknown => ({
        resourceType: 'Patient',
        name: [{ given, ...(partner ? { _given: partner } : {}) }],
      });
      expect(only(patient(['Jo', null]))).to.deep.equal(['structure Patient.name[0].given[1]']);
      const extension = { extension: [{ url: 'http://hl7.org/fhir/StructureDefinition/iso21090-EN-qualifier', valueCode: 'CL' }] };
      expect(only(patient(['Jo', null], [null, extension]))).to.deep.equal([]);
    });
  });

  describe('unknown elements', () => {
    it('names the unknown element in the expression and the diagnostics', async () => {
      const issues = validator.validateBase(with_({ colour: 'red' }));
      expect(summarize(issues)).to.deep.equal(['structure ServiceRequest.colour']);
      expect(issues[0]?.diagnostics).to.equal("Unknown element 'colour'");
    });

    it('finds unknown elements deep inside datatypes, and quotes names that are not identifiers', async () => {
      const resource = with_({
        code: { coding: [{ system: 'http://www.nlm.nih.gov/research/umls/rxnorm', code: '191831', colour: 'red' }] },
        'drug name': 'x',
      });
      expect(only(resource)).to.have.members(['structure ServiceRequest.code.coding[0].colour', 'structure ServiceRequest.`drug name`']);
    });
  });

  describe('primitive formats', () => {
    it('refuses an impossible date and an id with spaces with code value', async () => {
      const issues = validator.validateBase(with_({ authoredOn: '2026-13-45', id: 'has spaces' }));
      expect(summarize(issues)).to.have.members(['value ServiceRequest.authoredOn', 'value ServiceRequest.id']);
      expect(issues.find((i) => i.expression?.[0] === 'ServiceRequest.authoredOn')?.diagnostics).to.match(
        /^Invalid dateTime: expected YYYY/,
      );
    });

    it('does not echo the offending free-text value (it may be PHI)', async () => {
      const issues = validator.validateBase({ resourceType: 'Patient', birthDate: '1961-13-45', name: [{ family: '   ' }] });
      expect(summarize(issues)).to.have.members(['value Patient.birthDate', 'value Patient.name[0].family']);
      expect(JSON.stringify(issues)).not.to.include('1961');
    });

    it('refuses empty strings, whitespace-only strings, empty arrays and empty objects', async () => {
      const resource = with_({ authoredOn: '', note: [], requester: {}, patientInstruction: ' \n ' });
      expect(only(resource)).to.have.members([
        'value ServiceRequest.authoredOn',
        'structure ServiceRequest.note',
        'structure ServiceRequest.requester',
        'value ServiceRequest.patientInstruction',
      ]);
    });

    it('checks integer kinds: whole numbers, positiveInt at least 1', async () => {
      const timing = (repeat: unknown): unknown => with_({ occurrencePeriod: undefined, occurrenceTiming: { repeat } });
      expect(only(timing({ count: 1.5 }))).to.deep.equal(['value ServiceRequest.occurrenceTiming.repeat.count']);
      expect(only(timing({ count: 0 }))).to.deep.equal(['value ServiceRequest.occurrenceTiming.repeat.count']);
      expect(only(timing({ count: '2' }))).to.deep.equal(['structure ServiceRequest.occurrenceTiming.repeat.count']);
      expect(only(timing({ count: 2, period: 1.5, periodUnit: 'wk' }))).to.deep.equal([]);
    });
  });

  describe('required bindings on codes', () => {
    it('refuses status ACTIVE with code-invalid and lists the allowed codes', async () => {
      const issues = validator.validateBase(with_({ status: 'ACTIVE' }));
      expect(summarize(issues)).to.deep.equal(['code-invalid ServiceRequest.status']);
      expect(issues[0]?.diagnostics).to.equal(
        "Code 'ACTIVE' is not in the required value set http://hl7.org/fhir/ValueSet/request-status " +
          '(allowed: active, completed, draft, entered-in-error, on-hold, revoked, unknown)',
      );
    });

    it('checks bindings of datatypes (Identifier.use, ContactPoint.system, HumanName.use, Quantity.comparator, Narrative.status)', async () => {
      const patient = {
        resourceType: 'Patient',
        text: { status: 'automatic', div: '<div xmlns="http://www.w3.org/1999/xhtml">Jo</div>' },
        identifier: [{ use: 'primary', value: 'MRN-1' }],
        telecom: [{ system: 'mobile', value: '555-0100' }],
        name: [{ use: 'legal', family: 'Doe' }],
        extension: [{ url: 'http://example.org/weight', valueQuantity: { value: 70, comparator: '~' } }],
      };
      expect(only(patient)).to.have.members([
        'code-invalid Patient.text.status',
        'code-invalid Patient.identifier[0].use',
        'code-invalid Patient.telecom[0].system',
        'code-invalid Patient.name[0].use',
        'code-invalid Patient.extension[0].valueQuantity.comparator',
      ]);
    });

    it('checks Bundle.entry.request.method and Bundle.type', async () => {
      const bundle = {
        resourceType: 'Bundle',
        type: 'transactional',
        entry: [{ resource: referralJson(), request: { method: 'PUSH', url: 'ServiceRequest' } }],
      };
      expect(only(bundle)).to.have.members(['code-invalid Bundle.type', 'code-invalid Bundle.entry[0].request.method']);
    });

    it('reports one issue for a code that is both malformed and outside its binding', async () => {
      expect(only(with_({ intent: ' order' }))).to.deep.equal(['value ServiceRequest.intent']);
    });
  });

  describe('required elements', () => {
    it('reports a missing 1..1 element, primitive ones included', async () => {
      const { subject: _subject, status: _status, ...rest } = referralJson();
      expect(only(rest)).to.have.members(['required ServiceRequest.subject', 'required ServiceRequest.status']);
    });

    it('counts a primitive carried only by its _element (extensions) as present', async () => {
      const { status: _status, ...rest } = referralJson();
      const withExtension = {
        ...rest,
        _status: { extension: [{ url: 'http://hl7.org/fhir/StructureDefinition/data-absent-reason', valueCode: 'unknown' }] },
      };
      expect(only(withExtension)).to.deep.equal([]);
    });

    it('reports a missing required choice element by its name without [x]', async () => {
      const task = { resourceType: 'Task', status: 'requested', intent: 'order', input: [{ type: { text: 'dose' } }] };
      const issues = validator.validateBase(task);
      expect(summarize(issues)).to.deep.equal(['required Task.input[0].value']);
      expect(issues[0]?.diagnostics).to.equal("Missing required element 'value[x]'");
    });

    it('refuses two types for one choice element', async () => {
      expect(only(with_({ occurrenceDateTime: '2026-12-01' }))).to.deep.equal(['structure ServiceRequest.occurrence']);
    });

    it('refuses an extension with neither a value nor nested extensions (ext-1)', async () => {
      const issues = validator.validateBase(with_({ extension: [{ url: 'http://example.org/empty' }] }));
      expect(summarize(issues)).to.deep.equal(['invariant ServiceRequest.extension[0]']);
      expect(issues[0]?.diagnostics).to.match(/^ext-1: /);
    });
  });

  describe('nested resources', () => {
    it('reports problems of Bundle entries inside Bundle.entry[n].resource', async () => {
      const bundle = {
        resourceType: 'Bundle',
        type: 'transaction',
        entry: [
          {
            fullUrl: 'urn:uuid:6f1c8e1a-4a57-4a8e-9a8e-2c2a8f0e7a11',
            resource: { resourceType: 'Patient', gender: 'man' },
            request: { method: 'POST', url: 'Patient' },
          },
          { resource: { ...referralJson(), subject: 'Patient/pat-1' }, request: { method: 'POST', url: 'ServiceRequest' } },
          { resource: { resourceType: 'Coverage', status: 'active' }, request: { method: 'POST', url: 'Coverage' } },
        ],
      };
      expect(only(bundle)).to.have.members([
        'code-invalid Bundle.entry[0].resource.gender',
        'structure Bundle.entry[1].resource.subject',
        'required Bundle.entry[2].resource.beneficiary',
        'required Bundle.entry[2].resource.payor',
      ]);
    });

    it('reports problems of contained resources inside ServiceRequest.contained[n]', async () => {
      const resource = with_({
        contained: [
          { resourceType: 'Patient', id: 'p', gender: 'man', name: [{ family: 'Doe', colour: 'red' }] },
          { resourceType: 'Nope', id: 'x' },
          { id: 'y' },
          { resourceType: 'Patient', id: 'q', contained: [{ resourceType: 'Patient', id: 'r' }] },
        ],
      });
      expect(only(resource)).to.have.members([
        'code-invalid ServiceRequest.contained[0].gender',
        'structure ServiceRequest.contained[0].name[0].colour',
        'structure ServiceRequest.contained[1].resourceType',
        'structure ServiceRequest.contained[2].resourceType',
        'invariant ServiceRequest.contained[3].contained',
        // dom-3: Patient q contains r without referring to it.
        'invariant ServiceRequest.contained[3]',
      ]);
    });

    it('takes a contained resource that refers to its container ("#") as referred to (dom-3), and a "#" inside a longer text as no reference', async () => {
      const patient = (contained: Record<string, unknown>) => ({ resourceType: 'Patient', id: 'p', contained: [contained] });
      const referringBack = { resourceType: 'RelatedPerson', id: 'rp', patient: { reference: '#' } };
      expect(only(patient(referringBack))).to.deep.equal([]);
      const quoting = { resourceType: 'RelatedPerson', id: 'rp', patient: { reference: 'Patient/p' }, name: [{ text: 'says "#' }] };
      const issues = validator.validateBase(patient(quoting));
      expect(summarize(issues)).to.deep.equal(['invariant Patient']);
      expect(issues[0]?.diagnostics).to.match(/^dom-3: /);
    });

    it('validates resources in Parameters, parts included, and in Bundle.entry.response.outcome', async () => {
      const parameters = {
        resourceType: 'Parameters',
        parameter: [
          { name: 'resource', resource: { resourceType: 'Patient', gender: 'man' } },
          { name: 'group', part: [{ name: 'inner', resource: { resourceType: 'Patient', active: 'yes' } }] },
        ],
      };
      expect(only(parameters)).to.have.members([
        'code-invalid Parameters.parameter[0].resource.gender',
        'structure Parameters.parameter[1].part[0].resource.active',
      ]);
      const response = {
        resourceType: 'Bundle',
        type: 'transaction-response',
        entry: [
          { response: { status: '400', outcome: { resourceType: 'OperationOutcome', issue: [{ severity: 'fatal!', code: 'invalid' }] } } },
        ],
      };
      expect(only(response)).to.deep.equal(['code-invalid Bundle.entry[0].response.outcome.issue[0].severity']);
    });
  });

  it('collects every problem: five defects give five issues', async () => {
    const resource = with_({
      status: 'ACTIVE',
      subject: 'Patient/pat-1',
      authoredOn: '2026-13-45',
      colour: 'red',
      reasonCode: { text: 'x' },
    });
    expect(only(resource)).to.have.members([
      'code-invalid ServiceRequest.status',
      'structure ServiceRequest.subject',
      'value ServiceRequest.authoredOn',
      'structure ServiceRequest.colour',
      'structure ServiceRequest.reasonCode',
    ]);
    expect(validator.validateBase(resource)).to.have.length(5);
  });

  it('refuses what is not a resource, and resource types R4 does not have', async () => {
    expect(only([referralJson()])).to.deep.equal(['structure Resource']);
    expect(only({ id: 'x' })).to.deep.equal(['structure Resource.resourceType']);
    expect(only({ resourceType: 'ServiceRequst' })).to.deep.equal(['structure Resource.resourceType']);
  });

  it('answers an issue, not a crash, for a resource nested too deeply to validate', async () => {
    let extension: Record<string, unknown> = { url: 'http://example.org/leaf', valueString: 'x' };
    for (let i = 0; i < 20_000; i++) extension = { url: 'http://example.org/branch', extension: [extension] };
    expect(only({ resourceType: 'Patient', extension: [extension] })).to.deep.equal(['too-costly Patient']);
  });

  it('accepts extensions on canonical elements, which the official schema forgot', async () => {
    const resource = with_({
      meta: { profile: ['https://fhir.infusion-gateway.example/StructureDefinition/infusion-referral'], _profile: [{ id: 'p1' }] },
    });
    expect(only(resource)).to.deep.equal([]);
  });

  it('lists the 146 R4 resource types it validates', async () => {
    expect(validator.supportedResourceTypes())
      .to.have.length(146)
      .and.to.include.members(['ServiceRequest', 'Task', 'Bundle', 'Parameters']);
  });
});
