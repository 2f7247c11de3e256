/**
 * Literal references (https://hl7.org/fhir/R4/references.html#literal): finding them in a resource,
 * rewriting them when a Bundle's `urn:uuid:` fullUrls become server ids, and resolving them.
 */
import type { Reference, Resource } from 'fhir/r4.js';
import { FHIR_ID_SOURCE } from './ids.js';

/** Calls `visit` on every Reference-shaped object (an object with a string `reference`) in `value`. */
export function forEachReference(value: unknown, visit: (reference: Reference) => void): void {
  if (Array.isArray(value)) {
    for (const item of value) forEachReference(item, visit);
    return;
  }
  if (value === null || typeof value !== 'object') return;
  const record = value as Record<string, unknown>;
  if (typeof record['reference'] === 'string') visit(record as Reference);
  for (const [key, inner] of Object.entries(record)) {
    // Contained resources keep their own local references (#id), which need no rewriting.
    if (key !== 'reference' && typeof inner === 'object') forEachReference(inner, visit);
  }
}

/** A deep copy of `resource` with every reference found in `mapping` replaced by its target. */
export function rewriteReferences<T extends Resource>(resource: T, mapping: ReadonlyMap<string, string>): T {
  const copy = structuredClone(resource);
  if (mapping.size === 0) return copy;
  forEachReference(copy, (reference) => {
    const target = mapping.get(reference.reference as string);
    if (target !== undefined) reference.reference = target;
  });
  return copy;
}

export interface ParsedReference {
  resourceType: string;
  id: string;
}

const RELATIVE = new RegExp(`^([A-Z][A-Za-z]+)/(${FHIR_ID_SOURCE})(?:/_history/${FHIR_ID_SOURCE})?$`);

/** `Patient/123` (or `Patient/123/_history/2`) as type and id; absolute and local references give undefined. */
export function parseRelativeReference(reference: string | undefined): ParsedReference | undefined {
  if (!reference) return undefined;
  const match = RELATIVE.exec(reference);
  return match ? { resourceType: match[1] as string, id: match[2] as string } : undefined;
}

/** The contained resource a local reference (`#p1`) points to. */
export function findContained(resource: Resource & { contained?: Resource[] }, reference: string): Resource | undefined {
  if (!reference.startsWith('#')) return undefined;
  const id = reference.slice(1);
  return resource.contained?.find((c) => c.id === id);
}
