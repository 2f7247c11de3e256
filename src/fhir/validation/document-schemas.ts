/**
 * The JSON Schemas of the gateway's own documents (profiles/*.schema.json: the client registry,
 * the trusted issuers, the drug catalog, the prior-authorization rules, a CDS Hooks request), compiled to ajv
 * standalone validators at install by scripts/generate-config-validators.mjs, as the FHIR
 * validators are. Compiling them at start-up took about 100 ms and loaded all of ajv
 * (docs/architecture.md, "Decisions", start-up); loading the generated module takes a few.
 */
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { fileURLToPath, pathToFileURL } from 'node:url';
import type { ValidateFunction } from 'ajv';
import { GeneratedValidatorsMissingError } from './generated-validators.js';

/** The validators the gateway uses, by the names scripts/generate-config-validators.mjs exports. */
const DOCUMENT_SCHEMA_NAMES = ['authClients', 'trustedIssuers', 'drugCatalog', 'priorAuthRules', 'cdsHooksRequest'] as const;

export type DocumentSchemaValidators = Record<(typeof DOCUMENT_SCHEMA_NAMES)[number], ValidateFunction>;

const GENERATED_FILE = fileURLToPath(new URL('../../../generated/config-validators.mjs', import.meta.url));
const PROFILES_DIR = fileURLToPath(new URL('../../../profiles/', import.meta.url));

async function loadDocumentSchemaValidators(): Promise<DocumentSchemaValidators> {
  const regenerate = 'run `npm install` (its prepare script runs `node scripts/generate-config-validators.mjs`), or that script directly';
  let module: Partial<DocumentSchemaValidators> & { schemaFiles?: Record<string, string>; schemasHash?: unknown };
  try {
    module = (await import(pathToFileURL(GENERATED_FILE).href)) as typeof module;
  } catch (err) {
    if ((err as { code?: string }).code !== 'ERR_MODULE_NOT_FOUND') throw err;
    throw new GeneratedValidatorsMissingError(
      `The document schema validators have not been generated: ${GENERATED_FILE} is missing; ${regenerate}.`,
    );
  }
  const hash = createHash('sha256');
  for (const file of Object.values(module.schemaFiles ?? {})) hash.update(readFileSync(`${PROFILES_DIR}${file}`, 'utf8'));
  if (module.schemasHash !== hash.digest('hex')) {
    throw new GeneratedValidatorsMissingError(
      `${GENERATED_FILE} was generated from other versions of profiles/*.schema.json; ${regenerate}.`,
    );
  }
  for (const name of DOCUMENT_SCHEMA_NAMES) {
    if (typeof module[name] !== 'function')
      throw new GeneratedValidatorsMissingError(`${GENERATED_FILE} has no validator ${name}; ${regenerate}.`);
  }
  return module as DocumentSchemaValidators;
}

export const documentSchemaValidators: DocumentSchemaValidators = await loadDocumentSchemaValidators();
