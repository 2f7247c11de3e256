/**
 * The HTTP headers FHIR gives meaning to (https://hl7.org/fhir/R4/http.html): Prefer and ETag.
 * Plain values here, so that use cases can speak of them without knowing Express.
 */

/** RFC 7240 Prefer, as FHIR uses it (https://hl7.org/fhir/R4/http.html#ops). */
export interface Preferences {
  return?: 'minimal' | 'representation' | 'OperationOutcome';
  handling?: 'strict' | 'lenient';
}

export function parsePrefer(header: string | undefined): Preferences {
  const preferences: Preferences = {};
  if (!header) return preferences;
  for (const token of header.split(/[,;]/)) {
    const [rawKey, rawValue] = token.split('=').map((s) => s.trim());
    const key = rawKey?.toLowerCase();
    const value = rawValue?.replace(/^"|"$/g, '');
    if (key === 'return' && (value === 'minimal' || value === 'representation' || value === 'OperationOutcome')) {
      preferences.return = value;
    } else if (key === 'handling' && (value === 'strict' || value === 'lenient')) {
      preferences.handling = value;
    }
  }
  return preferences;
}

/** `W/"3"` or `"3"` to `3`; undefined if it is not an ETag. */
export function versionFromETag(etag: string | undefined): string | undefined {
  const match = /^(?:W\/)?"([^"]+)"$/.exec(etag?.trim() ?? '');
  return match?.[1];
}
