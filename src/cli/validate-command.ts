/**
 * `infusion-gateway validate <files or folders...>`: offline validation with the server's own
 * validators (base R4 from the official JSON Schema with its gaps closed, the required bindings,
 * the infusion-referral profile for ServiceRequests, alone or in Bundles). Nothing is sent
 * anywhere. Every issue with its FHIRPath, a summary, and the throughput.
 */
import type { OperationOutcomeIssue } from 'fhir/r4.js';
import path from 'node:path';
import { FhirValidator } from '../fhir/validation/index.js';
import { validateOffline } from '../intake/stories/validate-resource.js';
import { isNotAResource, listInputFiles, readDocuments, resourceLabel } from './inputs.js';
import { EXIT, printJson, startProgress, table, type ExitCode, type Terminal } from './output.js';

export interface ValidateOptions {
  json: boolean;
  profilesDir: string;
  /** Show warnings and information too (errors are always shown). */
  all: boolean;
}

export interface ValidatedDocument {
  source: string;
  resource: string;
  issues: Array<{ severity: string; code: string; expression: string[]; diagnostics: string }>;
}

export interface ValidateReport {
  files: number;
  /** JSON documents found in folders that are no FHIR resource (no resourceType), left alone. */
  skipped: number;
  resources: number;
  resourcesWithErrors: number;
  errors: number;
  warnings: number;
  seconds: number;
  resourcesPerSecond: number;
  documents: ValidatedDocument[];
}

const isError = (i: { severity: string }): boolean => i.severity === 'error' || i.severity === 'fatal';

export async function validateCommand(inputs: readonly string[], options: ValidateOptions, terminal: Terminal): Promise<ExitCode> {
  const { files, missing, named } = listInputFiles(inputs);
  if (missing.length > 0) {
    terminal.err(`No such file or folder: ${missing.join(', ')}`);
    return EXIT.usage;
  }
  const validator = await FhirValidator.load({ profilesDir: options.profilesDir });
  const started = performance.now();
  const documents: ValidatedDocument[] = [];
  let skipped = 0;
  const progress = startProgress(terminal, { total: files.length, label: 'validating', json: options.json });
  for (const file of files) {
    for (const document of readDocuments(file)) {
      if (!named.has(file) && isNotAResource(document)) {
        skipped += 1;
        continue;
      }
      const issues: OperationOutcomeIssue[] =
        document.parseError !== undefined
          ? [{ severity: 'error', code: 'structure', diagnostics: `Not valid JSON: ${document.parseError}` }]
          : validateOffline(validator, document.resource);
      documents.push({
        source: document.source,
        resource: document.parseError !== undefined ? '-' : resourceLabel(document.resource),
        issues: issues.map((i) => ({
          severity: i.severity,
          code: i.code,
          expression: i.expression ?? [],
          diagnostics: i.diagnostics ?? '',
        })),
      });
    }
    progress.tick();
  }
  progress.stop();
  const seconds = (performance.now() - started) / 1000;
  const report: ValidateReport = {
    files: files.length,
    skipped,
    resources: documents.length,
    resourcesWithErrors: documents.filter((d) => d.issues.some(isError)).length,
    errors: documents.reduce((n, d) => n + d.issues.filter(isError).length, 0),
    warnings: documents.reduce((n, d) => n + d.issues.filter((i) => i.severity === 'warning').length, 0),
    seconds: Number(seconds.toFixed(3)),
    resourcesPerSecond: seconds > 0 ? Math.round(documents.length / seconds) : documents.length,
    documents,
  };
  if (options.json) printJson(terminal, report);
  else printReadable(terminal, report, options.all);
  return report.errors > 0 ? EXIT.findings : EXIT.ok;
}

function printReadable(terminal: Terminal, report: ValidateReport, all: boolean): void {
  const rows: string[][] = [];
  for (const document of report.documents) {
    for (const issue of document.issues.filter((i) => all || isError(i))) {
      rows.push([
        path.normalize(document.source),
        document.resource,
        issue.severity,
        issue.expression.join(', ') || '-',
        issue.diagnostics,
      ]);
    }
  }
  if (rows.length > 0) terminal.out(`${table(['file', 'resource', 'severity', 'expression', 'problem'], rows)}\n`);
  terminal.out(
    `${report.resources} resources in ${report.files} files: ${report.resources - report.resourcesWithErrors} valid, ${report.resourcesWithErrors} with errors ` +
      `(${report.errors} errors, ${report.warnings} warnings) in ${report.seconds.toFixed(2)} s, ${report.resourcesPerSecond} resources/s` +
      (report.skipped > 0 ? `; ${report.skipped} JSON documents without a resourceType skipped` : ''),
  );
}
