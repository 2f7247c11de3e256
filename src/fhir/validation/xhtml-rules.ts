/**
 * The narrative rules txt-1 and txt-2 (https://hl7.org/fhir/R4/narrative.html#xhtml), which R4
 * states with `htmlChecks()`, a function fhirpath.js does not have:
 *
 * - the div is in the XHTML namespace (`xmlns="http://www.w3.org/1999/xhtml"`);
 * - only the basic formatting elements and attributes (chapters 7-11 and 15 of HTML 4.0, without
 *   forms, frames, scripts, objects or styles sheets): no `<script>`, no `on*` event attributes,
 *   no `javascript:` links;
 * - it has some text or an image (txt-2).
 *
 * A scanner, not a full XML parser: the generated schema already requires a `<div>` root.
 */
import type { OperationOutcomeIssue } from 'fhir/r4.js';
import { errorIssue } from '../outcomes.js';

const XHTML_NAMESPACE = 'http://www.w3.org/1999/xhtml';

const ALLOWED_ELEMENTS = new Set([
  'a',
  'abbr',
  'acronym',
  'b',
  'big',
  'blockquote',
  'br',
  'caption',
  'cite',
  'code',
  'col',
  'colgroup',
  'dd',
  'dfn',
  'div',
  'dl',
  'dt',
  'em',
  'h1',
  'h2',
  'h3',
  'h4',
  'h5',
  'h6',
  'hr',
  'i',
  'img',
  'li',
  'ol',
  'p',
  'pre',
  'q',
  'samp',
  'small',
  'span',
  'strong',
  'sub',
  'sup',
  'table',
  'tbody',
  'td',
  'tfoot',
  'th',
  'thead',
  'tr',
  'tt',
  'ul',
  'var',
]);

const ALLOWED_ATTRIBUTES = new Set([
  'title',
  'style',
  'class',
  'id',
  'lang',
  'xml:lang',
  'dir',
  'accesskey',
  'tabindex',
  'xmlns',
  // a, img
  'href',
  'name',
  'src',
  'alt',
  'longdesc',
  'usemap',
  'ismap',
  'hreflang',
  'rel',
  'rev',
  'charset',
  'type',
  // tables and lists
  'colspan',
  'rowspan',
  'align',
  'valign',
  'span',
  'width',
  'height',
  'cellpadding',
  'cellspacing',
  'border',
  'summary',
  'frame',
  'rules',
  'abbr',
  'axis',
  'headers',
  'scope',
  'char',
  'charoff',
  'start',
  'value',
  'compact',
  'bgcolor',
  'nowrap',
  'cite',
  'datetime',
]);

const TAG = /<(\/?)([A-Za-z][\w:.-]*)((?:\s+[^\s=/>]+(?:\s*=\s*(?:"[^"]*"|'[^']*'|[^\s>]+))?)*)\s*(\/?)>/g;
const ATTRIBUTE = /([^\s=/>]+)(?:\s*=\s*("[^"]*"|'[^']*'|[^\s>]+))?/g;

export function xhtmlIssues(div: string, at: string): OperationOutcomeIssue[] {
  const problems = new Set<string>();
  let rootSeen = false;
  let hasImage = false;
  for (const match of div.matchAll(TAG)) {
    const [, closing, rawName, attributes] = match;
    const name = (rawName ?? '').toLowerCase();
    if (closing) continue;
    if (!ALLOWED_ELEMENTS.has(name)) problems.add(`element <${name.slice(0, 40)}> is not allowed in a narrative`);
    if (name === 'img') hasImage = true;
    for (const attribute of (attributes ?? '').matchAll(ATTRIBUTE)) {
      const attributeName = (attribute[1] ?? '').toLowerCase();
      const value = (attribute[2] ?? '').replace(/^["']|["']$/g, '');
      if (!ALLOWED_ATTRIBUTES.has(attributeName))
        problems.add(`attribute ${attributeName.slice(0, 40)} on <${name.slice(0, 40)}> is not allowed in a narrative`);
      else if ((attributeName === 'href' || attributeName === 'src') && /^\s*javascript:/i.test(value))
        problems.add(`a javascript: URL in ${attributeName} is not allowed in a narrative`);
      if (!rootSeen && attributeName === 'xmlns' && value !== XHTML_NAMESPACE)
        problems.add(`the div's namespace must be ${XHTML_NAMESPACE}, not '${value.slice(0, 80)}'`);
    }
    if (!rootSeen) {
      rootSeen = true;
      if (!/(^|\s)xmlns\s*=\s*["']http:\/\/www\.w3\.org\/1999\/xhtml["']/.test(attributes ?? ''))
        problems.add(`the div must declare xmlns="${XHTML_NAMESPACE}"`);
    }
  }
  const issues = [...problems].map((p) => errorIssue('invariant', `txt-1: ${p}`, at));
  const text = div.replace(/<[^>]*>/g, '').replace(/&nbsp;|&#160;|\s/g, '');
  if (text.length === 0 && !hasImage)
    issues.push(errorIssue('invariant', 'txt-2: The narrative SHALL have some non-whitespace content', at));
  return issues;
}
