/**
 * Following the API's own paging links (https://hl7.org/fhir/R4/http.html#paging): the console
 * never builds `_offset` or a cursor itself, it asks for `next`/`previous` as the server wrote
 * them, so the server may change its paging (keyset cursors) without the console noticing.
 * Pure: no DOM, tested in Node.
 */
import type { Bundle } from 'fhir/r4.js';

export type PageRelation = 'self' | 'first' | 'next' | 'previous' | 'prev' | 'last';

export function linkOf(bundle: Bundle, relation: PageRelation): string | undefined {
  const relations = relation === 'previous' ? ['previous', 'prev'] : [relation];
  return bundle.link?.find((l) => relations.includes(l.relation))?.url;
}

/**
 * A link from the server as a path on the console's own origin, or undefined when it points
 * elsewhere. Links are absolute and may name the host as the gateway saw it (behind a proxy, not
 * the browser's); only the path below the FHIR base is kept, so the person's token is never sent
 * to another origin.
 */
export function sameOriginPath(link: string, fhirBase: string, origin: string): string | undefined {
  let url: URL;
  try {
    url = new URL(link, origin);
  } catch {
    return undefined;
  }
  const base = fhirBase.replace(/\/+$/, '');
  // The server may sit under another prefix than the browser sees (a proxy): what follows the
  // base's last segment (`/fhir/`) is the part both agree on.
  const marker = `/${base.split('/').pop() ?? ''}/`;
  const at = url.pathname.indexOf(marker);
  if (at < 0) return undefined;
  return `${base}/${url.pathname.slice(at + marker.length)}${url.search}`;
}
