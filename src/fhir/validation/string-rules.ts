/**
 * FHIR's rules for the characters of every string-based primitive (string, code, id, uri, url,
 * canonical, markdown, date, dateTime, ...): https://hl7.org/fhir/R4/datatypes.html#string and
 * https://hl7.org/fhir/R4/json.html. No control characters below U+0020 other than tab, CR and LF,
 * and no lone UTF-16 surrogates (JSON's `\ud800` escape, which no UTF-8 text can carry).
 *
 * Checked here, once, for the whole document, so that both store engines see the same input:
 * PostgreSQL's jsonb refuses NUL and lone surrogates outright, SQLite stores them, and the same
 * order number would otherwise be a 500 on one engine and a second referral on the other.
 */
import type { OperationOutcomeIssue } from 'fhir/r4.js';
import { errorIssue } from '../outcomes.js';
import { fhirPathStep } from './element-paths.js';

/** Control characters FHIR forbids: U+0000-U+001F except tab (09), LF (0A) and CR (0D). */
// oxlint-disable-next-line no-control-regex -- these are the very characters FHIR forbids in strings
const FORBIDDEN_CONTROL = /[\u0000-\u0008\u000B\u000C\u000E-\u001F]/;

/** A high surrogate not followed by a low one, or a low one not preceded by a high one (code units, no `u` flag). */
const LONE_SURROGATE = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/;

/** Reporting stops after this many: a document full of them needs one message, not a million. */
const MAX_STRING_ISSUES = 100;

/** What is wrong with a string's characters, or undefined. */
export function stringCharacterProblem(value: string): string | undefined {
  const control = FORBIDDEN_CONTROL.exec(value);
  if (control) {
    const code = control[0].charCodeAt(0).toString(16).toUpperCase().padStart(4, '0');
    return `contains the control character U+${code}: FHIR strings allow no control characters but tab, carriage return and line feed`;
  }
  if (LONE_SURROGATE.test(value)) return 'contains a lone UTF-16 surrogate, which is not a Unicode character';
  return undefined;
}

/**
 * Every string in the document (values, and property names, which become element names) checked
 * against FHIR's character rules, each issue with the FHIRPath of the element, e.g.
 * `ServiceRequest.identifier[0].system`.
 */
export function stringRuleIssues(document: unknown, root: string): OperationOutcomeIssue[] {
  const issues: OperationOutcomeIssue[] = [];
  // An explicit stack, not recursion: the validator's own depth limit is reported as an issue,
  // and this walk must not overflow first on a document nested thousands deep.
  const stack: Array<{ node: unknown; path: string; badKey?: string }> = [{ node: document, path: root }];
  while (stack.length > 0 && issues.length < MAX_STRING_ISSUES) {
    const { node, path, badKey } = stack.pop()!;
    if (badKey !== undefined) {
      // The name itself is unusable in an expression: point at its holder.
      issues.push(errorIssue('structure', `A property name ${badKey}`, path));
    } else if (typeof node === 'string') {
      const problem = stringCharacterProblem(node);
      if (problem) issues.push(errorIssue('invalid', `The value ${problem}`, path));
    } else if (Array.isArray(node)) {
      for (let index = node.length - 1; index >= 0; index--) stack.push({ node: node[index], path: `${path}[${index}]` });
    } else if (typeof node === 'object' && node !== null) {
      const entries = Object.entries(node);
      for (let index = entries.length - 1; index >= 0; index--) {
        const [key, value] = entries[index]!;
        const keyProblem = stringCharacterProblem(key);
        stack.push(
          keyProblem === undefined ? { node: value, path: path + fhirPathStep(key) } : { node: undefined, path, badKey: keyProblem },
        );
      }
    }
  }
  return issues;
}
