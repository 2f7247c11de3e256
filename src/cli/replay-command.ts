/**
 * `infusion-gateway replay --from <EHR FHIR base> --since <date> [--dry-run]`: reads the EHR's
 * historical orders (ServiceRequest?_lastUpdated=ge<date>, following next links) and shows what
 * the gateway would decide for each: misroutes, coverage problems, denial risks. With --dry-run
 * the gateway's rules run here, against the directory and catalog files, and nothing is written
 * anywhere; without it each order is sent to the gateway at --to and its Task followed.
 */
import { readFile } from 'node:fs/promises';
import type { Bundle, Reference, Resource, ServiceRequest } from 'fhir/r4.js';
import { SiteDirectory } from '../directory/rules/site-directory.js';
import { DEFAULT_SITE_CHECK_POLICY } from '../site-check/rules/site-check.js';
import { findContained } from '../fhir/references.js';
import { FhirValidator } from '../fhir/validation/index.js';
import { loadDrugCatalog } from '../gateway.js';
import { assessHistoricalOrder, type HistoricalOrderAssessment } from '../site-check/stories/assess-historical-order.js';
import { credentialsFrom, FhirClient, type CredentialOptions } from './fhir-client.js';
import { EXIT, printJson, startProgress, table, type ExitCode, type Terminal } from './output.js';
import { createdServiceRequestIds, followReferralTask } from './referral-progress.js';

export interface ReplayOptions extends CredentialOptions {
  from: string;
  since: string;
  dryRun: boolean;
  to?: string;
  /** Bearer token for the EHR (EHR_BEARER_TOKEN). */
  ehrToken?: string;
  json: boolean;
  directory: string;
  drugCatalog: string;
  profilesDir: string;
  timeoutMs: number;
  settleMs: number;
  /** Stop after this many orders. */
  limit: number;
  /** Orders per page asked of the EHR (_count). */
  pageSize: number;
}

interface ReplayRow extends Partial<Omit<HistoricalOrderAssessment, 'outcome'>> {
  serviceRequestId?: string;
  outcome: string;
}

const FINDINGS = new Set([
  'invalid',
  'drug-not-in-catalog',
  'no-suitable-site',
  'misroute-suspected',
  'coverage-problem',
  'rejected',
  'refused',
]);

/** Every order changed since `since`, page after page. */
async function readOrders(
  ehr: FhirClient,
  since: string,
  options: { limit: number; pageSize: number },
  onPage: (count: number) => void,
): Promise<ServiceRequest[]> {
  const orders: ServiceRequest[] = [];
  let next: string | undefined = `ServiceRequest?_lastUpdated=ge${encodeURIComponent(since)}&_sort=_lastUpdated&_count=${options.pageSize}`;
  while (next && orders.length < options.limit) {
    const page = await ehr.get(next);
    if (page.status !== 200 || page.body?.resourceType !== 'Bundle') throw new Error(`The EHR answered ${page.status} to ${ehr.url(next)}`);
    const bundle = page.body as Bundle;
    const found = (bundle.entry ?? []).flatMap((e) =>
      e.resource?.resourceType === 'ServiceRequest' && e.search?.mode !== 'include' ? [e.resource as ServiceRequest] : [],
    );
    orders.push(...found);
    onPage(found.length);
    next = bundle.link?.find((l) => l.relation === 'next')?.url;
  }
  return orders.slice(0, options.limit);
}

export async function replayCommand(options: ReplayOptions, terminal: Terminal): Promise<ExitCode> {
  if (Number.isNaN(new Date(options.since).getTime()) || !/^\d{4}(-\d{2}(-\d{2}(T.*)?)?)?$/.test(options.since)) {
    terminal.err(`--since must be a FHIR date or dateTime (e.g. 2026-01-01), got '${options.since}'`);
    return EXIT.usage;
  }
  if (!options.dryRun && !options.to) {
    terminal.err(
      'replay without --dry-run sends each order to a gateway: give --to <gateway FHIR base>, or use --dry-run to write nothing',
    );
    return EXIT.usage;
  }
  const ehr = new FhirClient(options.from, credentialsFrom(options.ehrToken ? { token: options.ehrToken } : {}, options.from, {}));
  let orders: ServiceRequest[];
  try {
    orders = await readOrders(ehr, options.since, { limit: options.limit, pageSize: options.pageSize }, (n) => {
      if (!options.json && terminal.interactive) terminal.err(`read ${n} orders`);
    });
  } catch (err) {
    terminal.err(`Could not read orders from ${ehr.base}: ${(err as Error).message}`);
    return EXIT.usage;
  }
  const rows: ReplayRow[] = [];
  const progress = startProgress(terminal, { total: orders.length, label: options.dryRun ? 'assessing' : 'replaying', json: options.json });
  if (options.dryRun) {
    const [validator, catalog, directoryBundle] = await Promise.all([
      FhirValidator.load({ profilesDir: options.profilesDir }),
      loadDrugCatalog(options.drugCatalog),
      readFile(options.directory, 'utf8').then((t) => JSON.parse(t) as Bundle),
    ]);
    const directory = SiteDirectory.fromResources((directoryBundle.entry ?? []).flatMap((e) => (e.resource ? [e.resource] : [])));
    const cache = new Map<string, Promise<Resource | undefined>>();
    for (const serviceRequest of orders) {
      const resolve = (reference: Reference | undefined): Promise<Resource | undefined> => {
        const key = reference?.reference;
        if (!key) return Promise.resolve(undefined);
        const contained = findContained(serviceRequest, key);
        if (contained) return Promise.resolve(contained);
        if (!cache.has(key))
          cache.set(
            key,
            ehr.get(key).then(
              (r) => (r.status === 200 ? (r.body as Resource) : undefined),
              () => undefined,
            ),
          );
        return cache.get(key)!;
      };
      rows.push(
        await assessHistoricalOrder({
          serviceRequest,
          resolve,
          validator,
          directory,
          catalog,
          policy: DEFAULT_SITE_CHECK_POLICY,
          now: new Date(),
        }),
      );
      progress.tick();
    }
  } else {
    const gateway = new FhirClient(options.to!, credentialsFrom(options, options.to!));
    for (const serviceRequest of orders) {
      const { meta: _meta, ...order } = serviceRequest;
      const reply = await gateway.post('ServiceRequest', order);
      const id = createdServiceRequestIds(reply)[0];
      if (!id)
        rows.push({
          ...(serviceRequest.id ? { serviceRequestId: serviceRequest.id } : {}),
          outcome: reply.status >= 400 ? 'refused' : 'unknown',
        });
      else {
        const trail = await followReferralTask(gateway, id, { timeoutMs: options.timeoutMs, settleMs: options.settleMs });
        const reasons = (trail.task?.input ?? [])
          .filter((i: any) => i.type?.coding?.[0]?.code === 'misroute-reason')
          .map((i: any) => i.valueCodeableConcept?.coding?.[0]?.code);
        rows.push({
          ...(serviceRequest.id ? { serviceRequestId: serviceRequest.id } : {}),
          outcome: trail.statuses.at(-1) ?? 'unknown',
          misrouteReasons: reasons,
        });
      }
      progress.tick();
    }
  }
  progress.stop();
  const count = (outcome: string): number => rows.filter((r) => r.outcome === outcome).length;
  const summary = {
    orders: rows.length,
    misroutes: count('misroute-suspected'),
    noSuitableSite: count('no-suitable-site'),
    coverageProblems: rows.filter((r) => (r.coverageProblems ?? []).length > 0 || r.outcome === 'coverage-problem').length,
    withDenialRisks: rows.filter((r) => (r.denialRisks ?? []).length > 0).length,
    invalid: count('invalid') + count('refused'),
    notInCatalog: count('drug-not-in-catalog'),
  };
  const findings = rows.filter(
    (r) => FINDINGS.has(r.outcome) || (r.coverageProblems ?? []).length > 0 || (r.denialRisks ?? []).length > 0,
  ).length;
  if (options.json) printJson(terminal, { ehr: ehr.base, since: options.since, dryRun: options.dryRun, summary, orders: rows });
  else {
    terminal.out(
      table(
        ['order', 'drug', 'would be', 'misroute reasons', 'requested -> suggested', 'coverage problems', 'denial risks'],
        rows.map((r) => [
          r.serviceRequestId ?? '-',
          r.drug ?? '-',
          r.outcome,
          (r.misrouteReasons ?? []).join(', ') || '-',
          r.suggestedSites && r.suggestedSites.length > 0 ? `${r.requestedSite ?? '?'} -> ${r.suggestedSites[0]}` : '-',
          (r.coverageProblems ?? []).join(', ') || '-',
          (r.denialRisks ?? []).join(', ') || '-',
        ]),
      ),
    );
    terminal.out(
      `\n${table(
        ['orders', 'misroutes', 'no suitable site', 'coverage problems', 'denial risks', 'invalid', 'not in catalog'],
        [
          [
            summary.orders,
            summary.misroutes,
            summary.noSuitableSite,
            summary.coverageProblems,
            summary.withDenialRisks,
            summary.invalid,
            summary.notInCatalog,
          ].map(String),
        ],
      )}`,
    );
    terminal.out(options.dryRun ? '\nDry run: nothing was written.' : `\nSent to ${options.to}.`);
  }
  return findings > 0 ? EXIT.findings : EXIT.ok;
}
