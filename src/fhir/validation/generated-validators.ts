/**
 * Loads the ajv standalone validators that scripts/generate-validators.mjs writes into generated/
 * (on `npm install` / `npm ci`, through the `prepare` script). Generated ahead of time because
 * compiling the R4 schema takes seconds; loading the module takes a fraction of one.
 */
import { createHash } from 'node:crypto';
import { access, readFile } from 'node:fs/promises';
import { fileURLToPath, pathToFileURL } from 'node:url';
import type { ErrorObject } from 'ajv';

export interface GeneratedValidator {
  (data: unknown): boolean;
  errors?: ErrorObject[] | null;
}

export interface GeneratedValidators {
  readonly resourceTypes: readonly string[];
  validatorFor(resourceType: string): GeneratedValidator | undefined;
}

export const DEFAULT_GENERATED_FILE = fileURLToPath(new URL('../../../generated/fhir-validators.mjs', import.meta.url));
export const REQUIRED_BINDINGS_FILE = fileURLToPath(new URL('./required-bindings.json', import.meta.url));

export class GeneratedValidatorsMissingError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'GeneratedValidatorsMissingError';
  }
}

interface GeneratedModule {
  resourceTypes?: unknown;
  bindingsHash?: unknown;
  [resourceType: string]: unknown;
}

export async function loadGeneratedValidators(
  file: string = DEFAULT_GENERATED_FILE,
  bindingsFile: string = REQUIRED_BINDINGS_FILE,
): Promise<GeneratedValidators> {
  try {
    await access(file);
  } catch {
    throw new GeneratedValidatorsMissingError(
      `The FHIR validators have not been generated: ${file} is missing. Run \`npm install\` (its prepare script runs ` +
        '`node scripts/generate-validators.mjs`), or run that script directly.',
    );
  }
  const module = (await import(pathToFileURL(file).href)) as GeneratedModule;
  if (!Array.isArray(module.resourceTypes) || typeof module.bindingsHash !== 'string') {
    throw new GeneratedValidatorsMissingError(
      `${file} is not a generated FHIR validator module; run \`node scripts/generate-validators.mjs\`.`,
    );
  }
  // The generated code embeds required-bindings.json; diagnostics read the file. They must agree.
  const bindingsHash = createHash('sha256')
    .update(await readFile(bindingsFile))
    .digest('hex');
  if (bindingsHash !== module.bindingsHash) {
    throw new GeneratedValidatorsMissingError(
      `${file} was generated from another version of ${bindingsFile}; run \`node scripts/generate-validators.mjs\` (or \`npm install\`).`,
    );
  }
  const validators = new Map<string, GeneratedValidator>();
  for (const type of module.resourceTypes as string[]) {
    const validator = module[type];
    if (typeof validator !== 'function') throw new GeneratedValidatorsMissingError(`${file} has no validator for ${type}; regenerate it.`);
    validators.set(type, validator as GeneratedValidator);
  }
  return {
    resourceTypes: [...validators.keys()],
    validatorFor: (resourceType) => validators.get(resourceType),
  };
}
