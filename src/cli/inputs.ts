/**
 * The resources a command reads from disk: files and folders (walked, sorted), each `.json` one
 * resource (a Bundle stays one resource), each `.ndjson` one resource per line
 * (https://hl7.org/fhir/R4/nd-json.html). A file or line that is not JSON is an input problem,
 * reported where it is, not a crash.
 */
import { readdirSync, readFileSync, statSync } from 'node:fs';
import path from 'node:path';

export interface InputDocument {
  /** The file, with `:line` for NDJSON. */
  source: string;
  resource?: unknown;
  /** Why the text could not be read as JSON. */
  parseError?: string;
}

const READABLE = /\.(json|ndjson)$/i;

/** Every .json and .ndjson file under the given files and folders, in a stable order; `named`: the files given by name. */
export function listInputFiles(inputs: readonly string[]): { files: string[]; missing: string[]; named: ReadonlySet<string> } {
  const files: string[] = [];
  const named = new Set<string>();
  const missing: string[] = [];
  const walk = (entry: string, explicit: boolean): void => {
    let stats;
    try {
      stats = statSync(entry);
    } catch {
      missing.push(entry);
      return;
    }
    if (stats.isDirectory()) {
      for (const name of readdirSync(entry).sort()) walk(path.join(entry, name), false);
    } else if (explicit || READABLE.test(entry)) {
      files.push(entry);
      if (explicit) named.add(entry);
    }
  };
  for (const input of inputs) walk(input, true);
  return { files, missing, named };
}

export function readDocuments(file: string): InputDocument[] {
  const text = readFileSync(file, 'utf8');
  if (/\.ndjson$/i.test(file)) {
    return text.split(/\r?\n/).flatMap((line, index) => (line.trim() === '' ? [] : [parseDocument(`${file}:${index + 1}`, line)]));
  }
  return [parseDocument(file, text)];
}

function parseDocument(source: string, text: string): InputDocument {
  try {
    return { source, resource: JSON.parse(text) as unknown };
  } catch (err) {
    return { source, parseError: (err as Error).message };
  }
}

/** `Type/id` of a resource for people to find it, or its type alone. */
export function resourceLabel(resource: unknown): string {
  const r = resource as { resourceType?: unknown; id?: unknown } | null;
  if (typeof r?.resourceType !== 'string') return '(no resourceType)';
  return typeof r.id === 'string' ? `${r.resourceType}/${r.id}` : r.resourceType;
}

/** JSON that is no FHIR resource at all (a fixture's expected.json, a package.json): not ours to judge when found in a folder. */
export function isNotAResource(document: InputDocument): boolean {
  const value = document.resource as { resourceType?: unknown } | null | undefined;
  return (
    document.parseError === undefined &&
    (typeof value !== 'object' || value === null || Array.isArray(value) || value.resourceType === undefined)
  );
}
