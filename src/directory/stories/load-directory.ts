/**
 * Story: the network loads its directory (sites, services, payers, networks) from a transaction
 * Bundle, at start-up (DIRECTORY_BUNDLE) or by posting it to /fhir as the directory tenant.
 * Entries are PUTs with stable ids, so loading the same Bundle again changes nothing but versions.
 */
import type { Bundle } from 'fhir/r4.js';
import type { GatewayDeps } from '../../ports/gateway-deps.js';
import type { Refusal } from '../../ports/refusal.js';
import { processBundle } from '../../intake/stories/process-bundle.js';

/** The transaction's answer, or its refusal: a directory refused is stored not at all. */
export async function loadDirectory(deps: GatewayDeps, bundle: unknown): Promise<{ kind: 'loaded'; bundle: Bundle } | Refusal> {
  const result = await processBundle(deps, { tenant: deps.tenancy.directoryTenant, body: bundle, prefer: 'minimal' });
  if (result.kind === 'refused') return result;
  const entries = result.bundle.entry ?? [];
  const failed = entries.filter((e) => !e.response?.status.startsWith('2'));
  deps.logger.info('directory loaded', { entries: entries.length, failed: failed.length });
  return { kind: 'loaded', bundle: result.bundle };
}
