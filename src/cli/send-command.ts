/**
 * `infusion-gateway send <files...> --to <fhir base>`: posts referrals (ServiceRequests) or
 * transaction/batch Bundles to a gateway, this one or another deployment, and follows each
 * referral's Task as its businessStatus moves.
 */
import { credentialsFrom, FhirClient, issueLines, type CredentialOptions } from './fhir-client.js';
import { listInputFiles, readDocuments } from './inputs.js';
import { EXIT, printJson, table, type ExitCode, type Terminal } from './output.js';
import { createdServiceRequestIds, followReferralTask } from './referral-progress.js';

export interface SendOptions extends CredentialOptions {
  to: string;
  json: boolean;
  timeoutMs: number;
  settleMs: number;
}

export interface SentReferral {
  source: string;
  httpStatus: number;
  serviceRequestId?: string;
  taskId?: string;
  statuses: string[];
  timedOut?: boolean;
  issues: string[];
}

/** Statuses after which the referral went nowhere: the sender has something to fix. */
const FAILED_STATUSES = new Set(['rejected', 'no-suitable-site']);

export async function sendCommand(inputs: readonly string[], options: SendOptions, terminal: Terminal): Promise<ExitCode> {
  const { files, missing } = listInputFiles(inputs);
  if (missing.length > 0) {
    terminal.err(`No such file or folder: ${missing.join(', ')}`);
    return EXIT.usage;
  }
  const client = new FhirClient(options.to, credentialsFrom(options, options.to));
  const results: SentReferral[] = [];
  for (const file of files) {
    for (const document of readDocuments(file)) {
      if (document.parseError !== undefined) {
        results.push({ source: document.source, httpStatus: 0, statuses: [], issues: [`not JSON: ${document.parseError}`] });
        continue;
      }
      const resource = document.resource as { resourceType?: string };
      const path = resource?.resourceType === 'Bundle' ? '' : resource?.resourceType === 'ServiceRequest' ? 'ServiceRequest' : undefined;
      if (path === undefined) {
        results.push({
          source: document.source,
          httpStatus: 0,
          statuses: [],
          issues: [`not a ServiceRequest or a Bundle (${String(resource?.resourceType)})`],
        });
        continue;
      }
      const reply = await client.post(path, resource);
      if (!options.json) terminal.err(`${document.source}: HTTP ${reply.status}`);
      if (reply.status >= 300) {
        results.push({
          source: document.source,
          httpStatus: reply.status,
          statuses: [],
          issues: issueLines(reply.body).filter((l) => !l.startsWith('information')),
        });
        continue;
      }
      const ids = createdServiceRequestIds(reply);
      for (const id of ids) {
        const trail = await followReferralTask(client, id, {
          timeoutMs: options.timeoutMs,
          settleMs: options.settleMs,
          onChange: (status) => {
            if (!options.json) terminal.err(`  ServiceRequest/${id}: ${status}`);
          },
        });
        results.push({
          source: document.source,
          httpStatus: reply.status,
          serviceRequestId: id,
          ...(trail.taskId ? { taskId: trail.taskId } : {}),
          statuses: trail.statuses,
          ...(trail.timedOut ? { timedOut: true } : {}),
          issues: [],
        });
      }
    }
  }
  const failed = results.filter((r) => r.httpStatus === 0 || r.httpStatus >= 300 || FAILED_STATUSES.has(r.statuses.at(-1) ?? ''));
  if (options.json) printJson(terminal, { sent: results.length, failed: failed.length, results });
  else {
    terminal.out(
      table(
        ['file', 'HTTP', 'ServiceRequest', 'Task', 'businessStatus'],
        results.map((r) => [
          r.source,
          String(r.httpStatus || '-'),
          r.serviceRequestId ?? '-',
          r.taskId ?? '-',
          r.statuses.join(' -> ') + (r.timedOut ? ' (still moving at timeout)' : '') || '-',
        ]),
      ),
    );
    for (const r of results.filter((x) => x.issues.length > 0)) terminal.out(`\n${r.source}:\n  ${r.issues.join('\n  ')}`);
    terminal.out(`\n${results.length} referrals sent, ${failed.length} refused or rejected`);
  }
  return failed.length > 0 ? EXIT.findings : EXIT.ok;
}
