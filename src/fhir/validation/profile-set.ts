/**
 * Loads the conformance resources in profiles/: StructureDefinitions (compiled into checkers),
 * and the CodeSystems and ValueSets their bindings may use. Each is first validated against base
 * R4 itself, so a malformed profile stops start-up with a message naming the file, instead of
 * quietly checking nothing. JSON files that are not FHIR resources (no resourceType) are skipped.
 */
import { readdir, readFile } from 'node:fs/promises';
import path from 'node:path';
import type { CodeSystem, OperationOutcomeIssue, StructureDefinition, ValueSet } from 'fhir/r4.js';
import type { BaseValidator } from './base-validator.js';
import { isJsonObject } from './element-paths.js';
import { LocalTerminology, TerminologyError } from './local-terminology.js';
import { CompiledProfile, ProfileError } from './profile-engine.js';

export interface ProfileSet {
  structureDefinitions: StructureDefinition[];
  codeSystems: CodeSystem[];
  valueSets: ValueSet[];
  /** Resource profiles by canonical URL (no version). */
  compiled: ReadonlyMap<string, CompiledProfile>;
}

type Conformance = StructureDefinition | CodeSystem | ValueSet;
const CONFORMANCE_TYPES = new Set(['StructureDefinition', 'CodeSystem', 'ValueSet']);

export async function loadProfileSet(profilesDir: string, base: BaseValidator): Promise<ProfileSet> {
  let files: string[];
  try {
    files = (await readdir(profilesDir)).filter((f) => f.endsWith('.json')).sort();
  } catch (err) {
    throw new ProfileError(
      `Cannot read the profiles directory ${profilesDir} (set PROFILES_DIR): ${err instanceof Error ? err.message : String(err)}`,
    );
  }

  const resources: Conformance[] = [];
  const fileByUrl = new Map<string, string>();
  for (const file of files) {
    const full = path.join(profilesDir, file);
    let json: unknown;
    try {
      json = JSON.parse(await readFile(full, 'utf8'));
    } catch (err) {
      throw new ProfileError(`${full} is not valid JSON: ${err instanceof Error ? err.message : String(err)}`);
    }
    if (!isJsonObject(json) || typeof json.resourceType !== 'string') continue; // e.g. a JSON schema kept beside the profiles
    if (!CONFORMANCE_TYPES.has(json.resourceType)) continue;
    const problems = base.validate(json).filter((i) => i.severity === 'error' || i.severity === 'fatal');
    if (problems.length)
      throw new ProfileError(`${full} is not a valid R4 ${json.resourceType}:\n  - ${describe(problems).join('\n  - ')}`);
    const resource = json as unknown as Conformance;
    if (!resource.url) throw new ProfileError(`${full}: a ${resource.resourceType} in profiles/ needs a canonical url`);
    const previous = fileByUrl.get(resource.url);
    if (previous) throw new ProfileError(`${full} and ${previous} both define ${resource.url}`);
    fileByUrl.set(resource.url, full);
    resources.push(resource);
  }

  const structureDefinitions = resources.filter((r): r is StructureDefinition => r.resourceType === 'StructureDefinition');
  const codeSystems = resources.filter((r): r is CodeSystem => r.resourceType === 'CodeSystem');
  const valueSets = resources.filter((r): r is ValueSet => r.resourceType === 'ValueSet');
  const terminology = new LocalTerminology(codeSystems, valueSets);
  const compiled = new Map<string, CompiledProfile>();
  for (const sd of structureDefinitions) {
    if (sd.kind !== 'resource' || sd.derivation !== 'constraint') continue; // extensions, logical models: published, not checked
    try {
      compiled.set(sd.url, new CompiledProfile(sd, terminology));
    } catch (err) {
      if (err instanceof ProfileError || err instanceof TerminologyError) {
        throw new ProfileError(`${fileByUrl.get(sd.url) ?? sd.url}: ${err.message}`);
      }
      throw err;
    }
  }
  return { structureDefinitions, codeSystems, valueSets, compiled };
}

function describe(issues: readonly OperationOutcomeIssue[]): string[] {
  return issues.map((i) => `${i.expression?.join(', ') ?? '(resource)'}: ${i.diagnostics ?? i.code}`);
}
