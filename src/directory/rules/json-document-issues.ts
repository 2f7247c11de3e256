/**
 * JSON Schema (ajv) errors of a deployment-owned document (the drug catalog, the prior-auth
 * rules) as OperationOutcome issues, each with a path such as `drugs[2].chairMinutes.firstDose`,
 * so an operator fixes every problem in one round.
 */
import type { ErrorObject } from 'ajv';
import type { OperationOutcomeIssue } from 'fhir/r4.js';
import { errorIssue, type IssueCode } from '../../fhir/outcomes.js';

/** `/drugs/2/chairMinutes/firstDose` -> `drugs[2].chairMinutes.firstDose` (RFC 6901 escapes undone). */
export function documentPathOf(instancePath: string, child?: string): string {
  const segments =
    instancePath === ''
      ? []
      : instancePath
          .slice(1)
          .split('/')
          .map((s) => s.replace(/~1/g, '/').replace(/~0/g, '~'));
  if (child !== undefined) segments.push(child);
  let path = '';
  for (const segment of segments) {
    if (/^[0-9]+$/.test(segment)) path += `[${segment}]`;
    else path += path === '' ? segment : `.${segment}`;
  }
  return path;
}

/**
 * `document` names the document in messages ("drug catalog"); `anyOfMessage` says what an
 * `anyOf` wants, in words (ajv's own is "must match a schema in anyOf").
 */
export function schemaIssues(
  errors: readonly ErrorObject[],
  document: string,
  options: { anyOfMessage?: string } = {},
): OperationOutcomeIssue[] {
  const issues: OperationOutcomeIssue[] = [];
  for (const error of errors) {
    // `if` only repeats that a `then`/`else` branch failed, and the branches of an `anyOf` only
    // repeat what the anyOf's own error says once.
    if (error.keyword === 'if' || error.schemaPath.includes('/anyOf/')) continue;
    const params = error.params as Record<string, unknown>;
    let expression = documentPathOf(error.instancePath);
    let code: IssueCode = 'value';
    let message = error.message ?? `fails ${error.keyword}`;
    switch (error.keyword) {
      case 'required':
        expression = documentPathOf(error.instancePath, String(params['missingProperty']));
        code = 'required';
        message = 'is required';
        break;
      case 'additionalProperties':
        expression = documentPathOf(error.instancePath, String(params['additionalProperty']));
        code = 'structure';
        message = `is not a known property of the ${document}`;
        break;
      case 'type':
        code = 'structure';
        message = `must be of type ${String(params['type'])}`;
        break;
      case 'enum':
        message = `must be one of ${JSON.stringify(params['allowedValues'])}`;
        break;
      case 'anyOf':
        code = 'required';
        message = options.anyOfMessage ?? message;
        break;
      default:
        break;
    }
    issues.push(
      expression === '' ? errorIssue(code, `The ${document} ${message}`) : errorIssue(code, `${expression} ${message}`, expression),
    );
  }
  return issues;
}
