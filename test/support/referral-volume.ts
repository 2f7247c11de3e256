/**
 * Many stored referrals, fast: for the console's browser test (a queue of 10,000) and the bench.
 * Each referral is what intake would have stored (the ServiceRequest, its Task and the referral
 * row) written through the store's bulk path (importReferrals: multi-row INSERTs, one transaction
 * per batch), without the HTTP round trip
 * and validation of each one: the point is the volume the console reads, not intake.
 *
 * The referrals are spread over the demo drugs, sites and business statuses, with order dates
 * spread back over `spreadDays`, so queues, sorting and the network's figures have realistic
 * shapes: a scheduled referral has its first infusion booked (given, once its day is past) 5 to
 * 30 days after the order, one in twelve after a missed first appointment; a denied one has an
 * open appeal, and one scheduled referral in ten a won one. Every patient is made up from the
 * index (no fixture's PHI is multiplied).
 */
import type { Appointment, Coverage, Patient, Resource, ServiceRequest, Task } from 'fhir/r4.js';
import { buildAppealTask } from '../../src/coverage/rules/appeal.js';
import { buildReferralTask } from '../../src/referral/rules/referral-task.js';
import {
  REFERRAL_STATUS_SYSTEM,
  referralStatusDisplay,
  taskStatusFor,
  type ReferralStatus,
} from '../../src/referral/rules/referral-status.js';
import pg from 'pg';
import type { ReferralImport, ResourceStore } from '../../src/ports/resource-store.js';
import { TEST_DATABASE_URL } from './postgres.js';

export interface VolumeOptions {
  count: number;
  /** The first index to store (default 0): a volume grown in steps stores `from` up to `count`. */
  from?: number;
  tenant: string;
  /** The newest order is this instant; the others go back over `spreadDays`. */
  now: Date;
  spreadDays?: number;
  /** How the referrals are spread over business statuses (weights); default: a working network. */
  statusWeights?: Partial<Record<ReferralStatus, number>>;
  batchSize?: number;
  /** Batches written at once (PostgreSQL runs them on several connections; SQLite one after another). */
  concurrency?: number;
}

const DRUGS = [
  { id: 'infliximab', name: 'Infliximab', rxnorm: '191831', hcpcs: 'J1745', icd10: 'K50.90' },
  { id: 'vedolizumab', name: 'Vedolizumab', rxnorm: '1538097', hcpcs: 'J3380', icd10: 'K51.90' },
  { id: 'ocrelizumab', name: 'Ocrelizumab', rxnorm: '1876366', hcpcs: 'J2350', icd10: 'G35' },
] as const;

const SITES = [
  'hin-nashville-midtown',
  'hin-nashville-green-hills',
  'hin-dallas-uptown',
  'hin-atlanta-midtown',
  'hin-phoenix-camelback',
] as const;

const DEFAULT_WEIGHTS: Partial<Record<ReferralStatus, number>> = {
  'misroute-suspected': 8,
  'verifying-coverage': 30,
  'coverage-problem': 4,
  'auth-required': 10,
  'auth-pending': 18,
  'auth-denied': 3,
  'ready-to-schedule': 12,
  scheduled: 15,
};

function statusPicker(weights: Partial<Record<ReferralStatus, number>>): (index: number) => ReferralStatus {
  const entries = Object.entries(weights).filter(([, w]) => (w ?? 0) > 0) as Array<[ReferralStatus, number]>;
  const total = entries.reduce((sum, [, w]) => sum + w, 0);
  return (index) => {
    // A fixed, well-spread sequence rather than Math.random: two runs store the same referrals.
    let slot = (index * 7919) % total;
    for (const [status, weight] of entries) {
      if (slot < weight) return status;
      slot -= weight;
    }
    return entries[0]![0];
  };
}

function serviceRequestOf(index: number, options: { id: string; authoredOn: string }): ServiceRequest & { id: string } {
  const drug = DRUGS[index % DRUGS.length]!;
  const site = SITES[index % SITES.length]!;
  const start = new Date(options.authoredOn);
  start.setUTCDate(start.getUTCDate() + 7);
  const end = new Date(start);
  end.setUTCMonth(end.getUTCMonth() + 6);
  return {
    resourceType: 'ServiceRequest',
    id: options.id,
    contained: [
      <Patient>{
        resourceType: 'Patient',
        id: 'patient',
        identifier: [{ system: 'urn:example:volume-mrn', value: `VOL-${index}` }],
        name: [{ family: `Volume${index}`, given: ['Test'] }],
        birthDate: '1970-01-01',
      },
    ],
    identifier: [{ system: 'urn:example:volume-order', value: `VOL-ORD-${index}` }],
    status: 'active',
    intent: 'order',
    priority: 'routine',
    code: {
      coding: [
        { system: 'http://www.nlm.nih.gov/research/umls/rxnorm', code: drug.rxnorm, display: drug.name.toLowerCase() },
        { system: 'http://www.cms.gov/Medicare/Coding/HCPCSReleaseCodeSets', code: drug.hcpcs },
      ],
      text: drug.name,
    },
    subject: { reference: '#patient' },
    requester: { display: 'Volume test requester' },
    reasonCode: [{ coding: [{ system: 'http://hl7.org/fhir/sid/icd-10-cm', code: drug.icd10 }] }],
    locationReference: [{ reference: `Location/${site}` }],
    occurrencePeriod: { start: start.toISOString().slice(0, 10), end: end.toISOString().slice(0, 10) },
    authoredOn: options.authoredOn,
  };
}

function firstInfusion(options: VolumeOptions, input: { index: number; serviceRequestId: string; at: Date }): Appointment[] {
  const site = SITES[input.index % SITES.length]!;
  const appointment = (suffix: string, days: number, status: Appointment['status']): Appointment & { id: string } => {
    const start = new Date(input.at.getTime() + days * 86_400_000);
    start.setUTCHours(15, 0, 0, 0);
    return {
      resourceType: 'Appointment',
      id: `vol-appt-${input.index}${suffix}`,
      status,
      start: start.toISOString(),
      end: new Date(start.getTime() + 2 * 3_600_000).toISOString(),
      basedOn: [{ reference: `ServiceRequest/${input.serviceRequestId}` }],
      participant: [
        { actor: { reference: '#patient' }, status: 'accepted' },
        { actor: { reference: `Location/${site}` }, status: 'accepted' },
      ],
    };
  };
  const days = 5 + ((input.index * 37) % 26);
  const given = (d: number): Appointment['status'] =>
    input.at.getTime() + d * 86_400_000 < options.now.getTime() ? 'fulfilled' : 'booked';
  return [...(input.index % 12 === 0 ? [appointment('-missed', Math.max(1, days - 4), 'noshow')] : []), appointment('', days, given(days))];
}

/** Stores `count` referrals; returns the number stored per business status. */
export async function storeReferralVolume(store: ResourceStore, options: VolumeOptions): Promise<Record<string, number>> {
  const pick = statusPicker(options.statusWeights ?? DEFAULT_WEIGHTS);
  const spreadMs = (options.spreadDays ?? 120) * 86_400_000;
  const batchSize = options.batchSize ?? 1000;
  const counts: Record<string, number> = {};
  const batches: Array<[number, number]> = [];
  for (let first = options.from ?? 0; first < options.count; first += batchSize)
    batches.push([first, Math.min(options.count, first + batchSize)]);
  const writeBatch = async ([first, last]: [number, number]): Promise<void> => {
    const input: { referrals: Array<ReferralImport['referrals'][number]>; resources: Array<{ resource: Resource; at: Date }> } = {
      referrals: [],
      resources: [],
    };
    for (let index = first; index < last; index += 1) {
      const status = pick(index);
      counts[status] = (counts[status] ?? 0) + 1;
      // Oldest first, so the store's default order (_lastUpdated) is the order of the orders.
      const at = new Date(options.now.getTime() - spreadMs + Math.floor((spreadMs * index) / Math.max(1, options.count)));
      const serviceRequestId = `vol-sr-${index}`;
      const taskId = `vol-task-${index}`;
      const referralId = `vol-ref-${index}`;
      const serviceRequest = serviceRequestOf(index, { id: serviceRequestId, authoredOn: at.toISOString() });
      input.referrals.push({
        tenant: options.tenant,
        id: referralId,
        identifierSystem: 'urn:example:volume-order',
        identifierValue: `VOL-ORD-${index}`,
        serviceRequestId,
        taskId,
        status,
        referral: {
          drug: { catalogId: DRUGS[index % DRUGS.length]!.id, name: DRUGS[index % DRUGS.length]!.name },
          authoredOn: at.toISOString(),
          // Held by the site check at intake: those still waiting, and one in fifteen of the others (since confirmed).
          ...(status === 'misroute-suspected' || index % 15 === 0
            ? { siteCheck: { decision: 'misroute-suspected', reasons: [], suggestions: [] } }
            : {}),
        },
        at,
      });
      const task: Task & { id: string } = buildReferralTask({
        taskId,
        referralId,
        serviceRequestId,
        patient: { reference: '#patient' },
        requester: { display: 'Volume test requester' },
        status: 'verifying-coverage',
        rejectionReasons: [],
        now: at,
      });
      task.status = taskStatusFor(status);
      task.businessStatus = { coding: [{ system: REFERRAL_STATUS_SYSTEM, code: status, display: referralStatusDisplay(status) }] };
      const resources: Resource[] = [serviceRequest, task];
      if (status === 'scheduled') resources.push(...firstInfusion(options, { index, serviceRequestId, at }));
      if (status === 'auth-denied' || (status === 'scheduled' && index % 10 === 0)) {
        const appeal = buildAppealTask({
          taskId: `vol-appeal-${index}`,
          referralTaskId: taskId,
          patient: { reference: '#patient' },
          denial: { reasons: [] },
          now: at,
        });
        const settled: Task = { ...appeal, status: status === 'scheduled' ? 'completed' : 'in-progress' };
        resources.push(settled);
      }
      for (const resource of resources) input.resources.push({ resource, at });
    }
    // The store's bulk path: a few multi-row INSERTs per table, one transaction per batch.
    await store.transaction((tx) => tx.importReferrals(options.tenant, input));
  };
  const workers = Array.from({ length: Math.max(1, options.concurrency ?? 4) }, async () => {
    for (let batch = batches.shift(); batch !== undefined; batch = batches.shift()) await writeBatch(batch);
  });
  await Promise.all(workers);
  // After a bulk load, as the gateway's own bulk paths do: statistics for the planner.
  await store.refreshStatistics();
  return counts;
}

/**
 * Fresh planner statistics for a PostgreSQL schema after a bulk load, as a deployment gets them
 * from autovacuum's analyse (or the gateway after a bulk import): without them PostgreSQL plans
 * the search index's joins blind, and a query of 50 ms takes 10 s.
 */
export async function analyzePostgresSchema(schema: string): Promise<void> {
  const client = new pg.Client({ connectionString: TEST_DATABASE_URL });
  await client.connect();
  try {
    const { rows } = await client.query<{ tablename: string }>('select tablename from pg_tables where schemaname = $1', [schema]);
    for (const { tablename } of rows) await client.query(`analyze "${schema}"."${tablename}"`);
  } finally {
    await client.end();
  }
}

/** Payers the volume Coverages are spread over (`Organization/vol-payer-<n>`). */
export const VOLUME_PAYERS = 7;

/**
 * One Coverage per volume patient (`vol-patient-<i>`, from..to), spread over VOLUME_PAYERS: the
 * table the payer queries search. Stored in batches through the store's bulk path.
 */
export async function storeVolumeCoverages(
  store: ResourceStore,
  options: { tenant: string; from: number; to: number; now: Date; batchSize?: number },
): Promise<void> {
  const batchSize = options.batchSize ?? 1000;
  for (let first = options.from; first < options.to; first += batchSize) {
    const batch: Coverage[] = [];
    for (let i = first; i < Math.min(options.to, first + batchSize); i += 1) {
      batch.push({
        resourceType: 'Coverage',
        id: `vol-cov-${i}`,
        status: 'active',
        beneficiary: { reference: `Patient/vol-patient-${i}` },
        payor: [{ reference: `Organization/vol-payer-${i % VOLUME_PAYERS}` }],
      });
    }
    await store.transaction((tx) =>
      tx.importReferrals(options.tenant, { referrals: [], resources: batch.map((resource) => ({ resource, at: options.now })) }),
    );
  }
}
