/**
 * FHIR's string rules (https://hl7.org/fhir/R4/datatypes.html#string) for what arrives in the URL:
 * search parameters and path segments (ids, types, operation names) become search values and
 * keys of the store just as body strings do. A NUL in `?identifier=` would be a 500 on PostgreSQL
 * (22021) and a silent miss on SQLite; both get the same 400 here, before any handler reads them.
 */
import type { NextFunction, Request, Response } from 'express';
import type { OperationOutcome, OperationOutcomeIssue } from 'fhir/r4.js';
import { badRequest, errorIssue } from '../fhir/outcomes.js';
import { stringCharacterProblem } from '../fhir/validation/string-rules.js';

/** Every problem with the characters of the path and the query, each naming where it is. */
export function urlStringIssues(originalUrl: string): OperationOutcomeIssue[] {
  // Node's HTTP parser refuses raw control characters in a request line: only a percent-escape
  // can carry one (or a lone surrogate's replacement), so a URL without '%' is clean.
  if (!originalUrl.includes('%')) return [];
  const issues: OperationOutcomeIssue[] = [];
  const queryStart = originalUrl.indexOf('?');
  const path = queryStart < 0 ? originalUrl : originalUrl.slice(0, queryStart);
  for (const segment of path.split('/')) {
    let decoded: string;
    try {
      decoded = decodeURIComponent(segment);
    } catch {
      issues.push(errorIssue('invalid', 'A path segment is not valid percent-encoded UTF-8', 'url'));
      continue;
    }
    const problem = stringCharacterProblem(decoded);
    if (problem) issues.push(errorIssue('invalid', `A path segment ${problem}`, 'url'));
  }
  if (queryStart >= 0) {
    for (const [name, value] of new URLSearchParams(originalUrl.slice(queryStart + 1))) {
      const nameProblem = stringCharacterProblem(name);
      if (nameProblem) {
        issues.push(errorIssue('invalid', `A parameter name ${nameProblem}`, 'url'));
        continue;
      }
      const problem = stringCharacterProblem(value);
      if (problem) issues.push(errorIssue('invalid', `The value of parameter '${name}' ${problem}`, name));
    }
  }
  return issues;
}

/** 400 with every issue when the URL carries characters FHIR strings may not hold. */
export function refuseForbiddenUrlCharacters(send: (res: Response, outcome: OperationOutcome) => void) {
  return (req: Request, res: Response, next: NextFunction): void => {
    const issues = urlStringIssues(req.originalUrl);
    if (issues.length > 0) {
      send(res, badRequest(issues));
      return;
    }
    next();
  };
}
