/**
 * Fixture cases with expected outcomes (fixtures/README.md, "Fixture cases"): finding them in a
 * folder, preparing their request, and comparing what a gateway answered with what the case
 * expects. The comparison is pure: outcome in, differences out.
 */
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import path from 'node:path';

const TASK_PARAMETER_TYPES = 'https://fhir.infusion-gateway.example/CodeSystem/task-parameter-type';

export interface ExpectedIssue {
  expression?: string;
  code?: string;
}

/** expected.json: every field optional; a field that is absent is not checked. */
export interface ExpectedOutcome {
  description?: string;
  /** HTTP status of the request (default: any 2xx). */
  status?: number;
  /** Refusals: each must be matched by an error issue; with expressions on all, no other error may name a place. */
  issues?: ExpectedIssue[];
  /** The site check's decision: ok, misroute-suspected or no-suitable-site. */
  decision?: string;
  /** The referral Task's businessStatus once it settles (`businessStatus` is accepted too). */
  taskStatus?: string;
  businessStatus?: string;
  /** Misroute reason codes, in order. */
  reasons?: string[];
  /** Suggested sites as directory Location ids, in rank order. */
  suggestions?: string[];
  firstSuggestion?: string;
  /** coverage-issue codes on the Task (any order). */
  coverageIssues?: string[];
  /** denial-risk codes on the Task (any order). */
  denialRisks?: string[];
}

/** meta.json: how to send the request when it is not a referral to POST (invalid cases). */
export interface CaseRequestMeta {
  method: string;
  /** Path from the server root (`/fhir/ServiceRequest`) or relative to the FHIR base (`ServiceRequest`). */
  path: string;
  contentType?: string;
  requestFile: string;
  headers?: Record<string, string>;
  description?: string;
}

export interface FixtureCase {
  name: string;
  dir: string;
  expected: ExpectedOutcome;
  request: { method: string; path: string; contentType: string; body: string; headers: Record<string, string> };
}

const REQUEST_FILES: ReadonlyArray<{ file: string; path: string }> = [
  { file: 'service-request.json', path: 'ServiceRequest' },
  { file: 'transaction-bundle.json', path: '' },
  { file: 'bundle.json', path: '' },
];

/** Every folder under `root` (itself included) holding an expected.json and a request. */
export function findFixtureCases(root: string, options: { orderSuffix?: string } = {}): { cases: FixtureCase[]; problems: string[] } {
  const cases: FixtureCase[] = [];
  const problems: string[] = [];
  const walk = (dir: string): void => {
    const names = readdirSync(dir).sort();
    // A validator rule's pair (valid.json, invalid.json: fixtures/validation) is no referral case.
    const rulePair = names.includes('valid.json') && names.includes('invalid.json');
    if (names.includes('expected.json') && !rulePair) {
      const name = path.relative(root, dir) || path.basename(dir);
      try {
        cases.push(loadCase(dir, name, options.orderSuffix));
      } catch (err) {
        problems.push(`${name}: ${(err as Error).message}`);
      }
    }
    for (const child of names) {
      const full = path.join(dir, child);
      if (statSync(full).isDirectory()) walk(full);
    }
  };
  walk(root);
  return { cases, problems };
}

function loadCase(dir: string, name: string, orderSuffix: string | undefined): FixtureCase {
  const expected = JSON.parse(readFileSync(path.join(dir, 'expected.json'), 'utf8')) as ExpectedOutcome;
  const metaFile = path.join(dir, 'meta.json');
  if (existsSync(metaFile)) {
    const meta = JSON.parse(readFileSync(metaFile, 'utf8')) as CaseRequestMeta;
    return {
      name,
      dir,
      expected,
      request: {
        method: meta.method,
        path: meta.path.replace(/^\/fhir(\/|$)/, '').replace(/^\//, ''),
        contentType: meta.contentType ?? 'application/fhir+json',
        body: readFileSync(path.join(dir, meta.requestFile), 'utf8'),
        headers: meta.headers ?? {},
      },
    };
  }
  const found = REQUEST_FILES.find((r) => existsSync(path.join(dir, r.file)));
  if (!found) throw new Error('expected.json without a request (meta.json, service-request.json, transaction-bundle.json or bundle.json)');
  const body = JSON.parse(readFileSync(path.join(dir, found.file), 'utf8')) as unknown;
  return {
    name,
    dir,
    expected,
    request: {
      method: 'POST',
      path: found.path,
      contentType: 'application/fhir+json',
      body: JSON.stringify(orderSuffix ? withFreshOrderNumbers(body, orderSuffix) : body),
      headers: {},
    },
  };
}

/**
 * A copy whose ServiceRequests carry new order numbers (the suffix appended to each identifier
 * value, and to the conditional create that names it), so a case run twice against the same
 * gateway is a new referral, not the same one found again.
 */
export function withFreshOrderNumbers(body: unknown, suffix: string): unknown {
  const copy = structuredClone(body) as any;
  const renumber = (sr: any): void => {
    for (const identifier of sr.identifier ?? [])
      if (typeof identifier.value === 'string') identifier.value = `${identifier.value}-${suffix}`;
  };
  if (copy?.resourceType === 'ServiceRequest') renumber(copy);
  if (copy?.resourceType === 'Bundle') {
    for (const entry of copy.entry ?? []) {
      if (entry?.resource?.resourceType !== 'ServiceRequest') continue;
      renumber(entry.resource);
      const first = entry.resource.identifier?.[0];
      if (entry.request?.ifNoneExist && first) entry.request.ifNoneExist = `identifier=${first.system ?? ''}|${first.value}`;
    }
  }
  return copy;
}

/** What the gateway answered for a case: the reply, and the referral's Task once it settled. */
export interface ObservedOutcome {
  status: number;
  issues: Array<{ severity: string; code: string; expression?: string[] }>;
  task?: any;
}

export interface Difference {
  field: string;
  expected: unknown;
  actual: unknown;
}

const ofType = (task: any, code: string, kind: 'input' | 'output'): any[] =>
  (task?.[kind] ?? []).filter((p: any) => (p.type?.coding ?? []).some((c: any) => c.system === TASK_PARAMETER_TYPES && c.code === code));

/** The businessStatus a case waits for, if it names one. */
export const expectedBusinessStatus = (expected: ExpectedOutcome): string | undefined => expected.businessStatus ?? expected.taskStatus;

/** The site check's decision as the Task shows it. */
export function decisionOf(task: any): string {
  const status = task?.businessStatus?.coding?.[0]?.code;
  if (status === 'misroute-suspected') return 'misroute-suspected';
  if ((task?.statusReason?.coding ?? []).some((c: any) => c.code === 'no-suitable-site')) return 'no-suitable-site';
  return 'ok';
}

const same = (a: unknown, b: unknown): boolean => JSON.stringify(a) === JSON.stringify(b);
const sorted = (values: readonly string[]): string[] => [...values].sort();

/** Every way the observed outcome differs from the expected one; none = the case passes. */
export function compareOutcome(expected: ExpectedOutcome, observed: ObservedOutcome): Difference[] {
  const differences: Difference[] = [];
  const expect = (field: string, wanted: unknown, actual: unknown, equal = same(wanted, actual)): void => {
    if (!equal) differences.push({ field, expected: wanted, actual });
  };
  if (expected.status !== undefined) expect('status', expected.status, observed.status);
  else if (observed.status < 200 || observed.status >= 300) expect('status', '2xx', observed.status, false);

  if (expected.issues !== undefined) {
    const errors = observed.issues.filter((i) => i.severity === 'error' || i.severity === 'fatal');
    for (const wanted of expected.issues) {
      const matched = errors.some(
        (i) =>
          (wanted.expression === undefined || (i.expression ?? []).includes(wanted.expression)) &&
          (wanted.code === undefined || i.code === wanted.code),
      );
      if (!matched)
        differences.push({
          field: 'issues',
          expected: wanted,
          actual: errors.map((i) => ({ expression: i.expression?.[0], code: i.code })),
        });
    }
    const expressions = expected.issues.map((i) => i.expression);
    if (expressions.every((e) => e !== undefined)) {
      for (const error of errors) {
        const expression = error.expression?.[0];
        if (expression !== undefined && !expressions.includes(expression))
          differences.push({ field: 'issues', expected: 'no other error', actual: { expression, code: error.code } });
      }
    }
  }

  const needsTask =
    expected.decision ??
    expectedBusinessStatus(expected) ??
    expected.reasons ??
    expected.suggestions ??
    expected.firstSuggestion ??
    expected.coverageIssues ??
    expected.denialRisks;
  if (needsTask === undefined) return differences;
  const task = observed.task;
  if (!task) {
    differences.push({ field: 'task', expected: 'a referral Task', actual: 'none found' });
    return differences;
  }
  if (expected.decision !== undefined) expect('decision', expected.decision, decisionOf(task));
  const status = expectedBusinessStatus(expected);
  if (status !== undefined) expect('businessStatus', status, task.businessStatus?.coding?.[0]?.code);
  if (expected.reasons !== undefined) {
    const reasons = ofType(task, 'misroute-reason', 'input').map((i) => i.valueCodeableConcept?.coding?.[0]?.code);
    expect('reasons', expected.decision === 'ok' ? [] : expected.reasons, reasons);
  }
  const suggestions = ofType(task, 'suggested-location', 'input').map((i) =>
    String(i.valueReference?.reference ?? '').replace(/^Location\//, ''),
  );
  if (expected.suggestions !== undefined) expect('suggestions', expected.suggestions, suggestions);
  if (expected.firstSuggestion !== undefined) expect('firstSuggestion', expected.firstSuggestion, suggestions[0]);
  if (expected.coverageIssues !== undefined) {
    const codes = ofType(task, 'coverage-issue', 'output').map((o) => o.valueCodeableConcept?.coding?.[0]?.code);
    expect('coverageIssues', sorted(expected.coverageIssues), sorted(codes));
  }
  if (expected.denialRisks !== undefined) {
    const codes = ofType(task, 'denial-risk', 'output').map((o) => o.valueCodeableConcept?.coding?.[0]?.code);
    expect('denialRisks', sorted(expected.denialRisks), sorted(codes));
  }
  return differences;
}

/** A difference as a person reads it. */
export function describeDifference(difference: Difference): string {
  const show = (value: unknown): string => (typeof value === 'string' ? value : JSON.stringify(value));
  return `${difference.field}: expected ${show(difference.expected)}, got ${show(difference.actual)}`;
}
