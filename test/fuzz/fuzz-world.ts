/**
 * The world a fuzz run hits: a gateway on one engine with write-back to the stand-in EHR and
 * payer connections to the stand-in payer (so the notification routes are live), referrals in
 * several states to aim at, and the check that nothing was stored in part.
 */
import Database from 'better-sqlite3';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import pg from 'pg';
import { readFixture, withOrderNumber } from '../support/fixtures.js';
import { fhirFetch, startGateway, type Engine, type RunningGateway } from '../support/gateway.js';
import { TEST_DATABASE_URL } from '../support/postgres.js';
import { payerConnections } from '../support/referral-flow.js';
import { startStandInEhr } from '../../src/sandbox/stand-in-ehr.js';
import { startStandInPayer } from '../../src/sandbox/stand-in-payer.js';
import type { FuzzTargets } from './fuzz-requests.js';

export interface FuzzWorld {
  gateway: RunningGateway;
  targets: FuzzTargets;
  /** Rows that break "all or nothing": each names what is missing. Empty when every write was whole. */
  partialWrites(): Promise<string[]>;
  stop(): Promise<void>;
}

/** Each query counts rows that a whole intake or write would never leave behind. */
const PARTIAL_WRITE_CHECKS: Array<{ what: string; sql: string }> = [
  {
    what: 'ServiceRequests without their referral row',
    sql: `select count(*) as n from resources r where r.resource_type = 'ServiceRequest'
           and not exists (select 1 from referrals f where f.tenant = r.tenant and f.service_request_id = r.id)`,
  },
  {
    what: 'referral rows without their ServiceRequest',
    sql: `select count(*) as n from referrals f where not exists
           (select 1 from resources r where r.tenant = f.tenant and r.resource_type = 'ServiceRequest' and r.id = f.service_request_id)`,
  },
  {
    what: 'referral rows without their Task',
    sql: `select count(*) as n from referrals f where not exists
           (select 1 from resources r where r.tenant = f.tenant and r.resource_type = 'Task' and r.id = f.task_id)`,
  },
  {
    what: 'resources without their current version in the history',
    sql: `select count(*) as n from resources r where not exists (select 1 from resource_history h
           where h.tenant = r.tenant and h.resource_type = r.resource_type and h.id = r.id and h.version_id = r.version_id)`,
  },
];

export async function startFuzzWorld(engine: Engine): Promise<FuzzWorld> {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'gateway-fuzz-'));
  const sqliteFile = path.join(dir, 'gateway.sqlite');
  const ehr = await startStandInEhr();
  const payer = await startStandInPayer({ defaultRule: {} });
  const gateway = await startGateway({
    engine,
    sqliteFile,
    env: {
      EHR_FHIR_BASE_URL: ehr.baseUrl,
      EHR_POLL: 'false',
      PAYER_CONNECTIONS: payerConnections(payer.baseUrl),
      CDS_TRUSTED_FHIR_SERVERS: ehr.baseUrl,
    },
  });
  const fhir = `${gateway.baseUrl}/fhir`;

  const targets: FuzzTargets = { taskIds: [], serviceRequestIds: [], heldTaskIds: [] };
  const seeds = [
    'referrals/infliximab/service-request.json',
    'referrals/misc/misroute-site-lacks-drug.service-request.json',
    'site-check/too-far/service-request.json',
    'referrals/misc/not-in-catalog-rituximab.service-request.json',
  ];
  for (const [index, seed] of seeds.entries()) {
    const created = await fhirFetch(`${fhir}/ServiceRequest`, {
      body: withOrderNumber(readFixture(seed), `fuzz-seed-${index}-${Date.now()}`),
    });
    if (created.status !== 201) throw new Error(`Seeding the fuzz world failed: ${seed} answered ${created.status}`);
    targets.serviceRequestIds.push(created.body.id);
    const tasks = await fhirFetch(`${fhir}/Task?focus=ServiceRequest/${created.body.id}`);
    for (const entry of tasks.body.entry ?? []) {
      if (entry.search?.mode !== 'match') continue;
      targets.taskIds.push(entry.resource.id);
      if (entry.resource.businessStatus?.coding?.[0]?.code === 'misroute-suspected') targets.heldTaskIds.push(entry.resource.id);
    }
  }

  const count = async (sql: string): Promise<number> => {
    if (engine === 'sqlite') {
      const db = new Database(sqliteFile, { readonly: true });
      try {
        return Number((db.prepare(sql).get() as { n: number }).n);
      } finally {
        db.close();
      }
    }
    const client = new pg.Client({ connectionString: TEST_DATABASE_URL, options: `-c search_path=${gateway.postgresSchema}` });
    await client.connect();
    try {
      return Number((await client.query<{ n: string }>(sql)).rows[0]?.n);
    } finally {
      await client.end();
    }
  };

  return {
    gateway,
    targets,
    partialWrites: async () => {
      const found: string[] = [];
      for (const check of PARTIAL_WRITE_CHECKS) {
        const n = await count(check.sql);
        if (n > 0) found.push(`${n} ${check.what}`);
      }
      return found;
    },
    stop: async () => {
      await gateway.stop();
      await payer.stop();
      await ehr.stop();
      await rm(dir, { recursive: true, force: true });
    },
  };
}
