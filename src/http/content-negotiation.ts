/**
 * FHIR JSON content negotiation (https://hl7.org/fhir/R4/http.html#mime-type): the gateway speaks
 * JSON only. XML requests get 415 and XML-only `Accept`/`_format` get 406, each with an
 * OperationOutcome that says so, rather than a silent JSON answer the client cannot read.
 */
import type { OperationOutcome } from 'fhir/r4.js';
import { notAcceptable, unsupportedMediaType } from '../fhir/outcomes.js';

export const FHIR_JSON = 'application/fhir+json';
export const PLAIN_JSON = 'application/json';

const JSON_TYPES = new Set([FHIR_JSON, PLAIN_JSON, 'application/json+fhir']);
const XML_TYPES = new Set(['application/fhir+xml', 'application/xml', 'text/xml', 'application/xml+fhir']);
const FORMAT_ALIASES: Record<string, string> = {
  json: FHIR_JSON,
  'application/fhir+json': FHIR_JSON,
  'application/json': PLAIN_JSON,
  'application/json+fhir': FHIR_JSON,
  xml: 'application/fhir+xml',
  'application/fhir+xml': 'application/fhir+xml',
  'application/xml': 'application/fhir+xml',
  'text/xml': 'application/fhir+xml',
  ttl: 'text/turtle',
  'text/turtle': 'text/turtle',
  html: 'text/html',
  'text/html': 'text/html',
};

function mediaType(header: string): string {
  return (header.split(';')[0] ?? '').trim().toLowerCase();
}

/** Checks a request body's Content-Type; undefined when acceptable. */
export function checkRequestContentType(contentType: string | undefined): OperationOutcome | undefined {
  if (contentType === undefined || contentType.trim() === '') {
    return unsupportedMediaType(`Content-Type is required: send ${FHIR_JSON}`);
  }
  const type = mediaType(contentType);
  if (JSON_TYPES.has(type)) return undefined;
  if (XML_TYPES.has(type)) {
    return unsupportedMediaType(`XML is not supported by this server: send the resource as ${FHIR_JSON}`);
  }
  return unsupportedMediaType(`Content-Type ${type} is not supported: send ${FHIR_JSON}`);
}

/**
 * Chooses the response media type from `_format` (which wins, as the FHIR spec says) or `Accept`.
 * Returns the media type to answer with, or the 406 outcome.
 */
export function negotiateResponseType(
  format: string | undefined,
  accept: string | undefined,
): { mediaType: string } | { outcome: OperationOutcome } {
  if (format !== undefined && format !== '') {
    const wanted = FORMAT_ALIASES[format.trim().toLowerCase()];
    if (wanted === FHIR_JSON || wanted === PLAIN_JSON) return { mediaType: wanted };
    const what = wanted === 'application/fhir+xml' ? 'XML is' : `_format=${format} is`;
    return { outcome: notAcceptable(`${what} not supported by this server: use _format=json (${FHIR_JSON})`) };
  }
  if (accept === undefined || accept.trim() === '') return { mediaType: FHIR_JSON };
  const ranges = accept
    .split(',')
    .map((part) => {
      const [type = '', ...params] = part.split(';').map((s) => s.trim().toLowerCase());
      const q = params.find((p) => p.startsWith('q='));
      return { type, q: q === undefined ? 1 : Number(q.slice(2)) };
    })
    .filter((r) => r.q > 0)
    .sort((a, b) => b.q - a.q);
  for (const range of ranges) {
    if (range.type === FHIR_JSON || range.type === 'application/json+fhir') return { mediaType: FHIR_JSON };
    if (range.type === PLAIN_JSON) return { mediaType: PLAIN_JSON };
    if (range.type === '*/*' || range.type === 'application/*') return { mediaType: FHIR_JSON };
  }
  const asksXml = ranges.some((r) => XML_TYPES.has(r.type));
  return {
    outcome: notAcceptable(
      asksXml
        ? `XML is not supported by this server: accept ${FHIR_JSON}`
        : `None of the accepted media types (${accept}) can be produced: accept ${FHIR_JSON}`,
    ),
  };
}

/** The depth of nested objects/arrays in a parsed JSON value, stopping early past `limit`. */
export function jsonDepthExceeds(value: unknown, limit: number): boolean {
  const stack: Array<{ value: unknown; depth: number }> = [{ value, depth: 1 }];
  while (stack.length > 0) {
    const { value: current, depth } = stack.pop() as { value: unknown; depth: number };
    if (current === null || typeof current !== 'object') continue;
    if (depth > limit) return true;
    for (const inner of Object.values(current as Record<string, unknown>)) {
      if (inner !== null && typeof inner === 'object') stack.push({ value: inner, depth: depth + 1 });
    }
  }
  return false;
}
