/** Small helpers on resources as stored by the gateway. */
import { isDeepStrictEqual } from 'node:util';
import type { Resource } from 'fhir/r4.js';

/**
 * The resource with the server's id and without the server-owned meta (versionId, lastUpdated):
 * FHIR create ignores a client-supplied id (https://hl7.org/fhir/R4/http.html#create), while the
 * client's profiles, tags and security labels are kept.
 */
export function withServerId<T extends Resource>(resource: T, id: string): T & { id: string } {
  const { meta } = resource;
  const copy = { ...resource, id } as T & { id: string };
  if (meta) {
    const { versionId: _version, lastUpdated: _updated, ...kept } = meta;
    if (Object.keys(kept).length > 0) copy.meta = kept;
    else delete copy.meta;
  }
  return copy;
}

/** Whether two versions say the same thing, ignoring the server-owned versionId and lastUpdated. */
export function sameContent(a: Resource, b: Resource): boolean {
  return isDeepStrictEqual(withoutVersionMeta(a), withoutVersionMeta(b));
}

function withoutVersionMeta(resource: Resource): Resource {
  if (!resource.meta) return resource;
  const { versionId: _version, lastUpdated: _updated, ...meta } = resource.meta;
  const copy = { ...resource, meta };
  if (Object.keys(meta).length === 0) delete (copy as Resource).meta;
  return copy;
}

/**
 * The top-level elements a client's update changes outside those it may change, sorted: each is
 * refused by name (docs/architecture.md, "every refusal names every issue"). Values compare as
 * their JSON, as the client sent them and as the gateway stored them.
 */
export function changedElementsOutside(current: object, sent: object, mayChange: ReadonlySet<string>): string[] {
  const held = current as Record<string, unknown>;
  const given = sent as Record<string, unknown>;
  return [...new Set([...Object.keys(held), ...Object.keys(given)])]
    .sort()
    .filter((key) => !mayChange.has(key) && JSON.stringify(given[key]) !== JSON.stringify(held[key]));
}
