/**
 * The store's grouped counts behind Task/$network-metrics, on both engines: referrals, appointments
 * and appeal Tasks written through the store, then counted by its SQL.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { expect } from 'chai';
import type { Appointment, Task } from 'fhir/r4.js';
import { openStore } from '../../../src/adapters/store/index.js';
import { buildAppealTask } from '../../../src/coverage/rules/appeal.js';
import type { NetworkMetricsRows, ResourceStore } from '../../../src/ports/resource-store.js';
import { createPostgresSchema } from '../../support/postgres.js';

const A = 'hospital-a';
const B = 'hospital-b';

interface Seeded {
  id: string;
  tenant: string;
  status: string;
  receivedAt: string;
  authoredOn?: string;
  drug: string;
  misrouted?: boolean;
}

async function seedReferral(store: ResourceStore, r: Seeded): Promise<void> {
  await store.transaction(async (tx) => {
    await tx.claimReferral(
      {
        tenant: r.tenant,
        id: r.id,
        identifierSystem: 'urn:test:order',
        identifierValue: r.id,
        serviceRequestId: `sr-${r.id}`,
        taskId: `task-${r.id}`,
        status: r.status,
        referral: {
          drug: { catalogId: r.drug, name: r.drug },
          ...(r.authoredOn ? { authoredOn: r.authoredOn } : {}),
          ...(r.misrouted ? { siteCheck: { decision: 'misroute-suspected', reasons: [], suggestions: [] } } : {}),
        },
      },
      new Date(r.receivedAt),
    );
  });
}

async function seedAppointment(
  store: ResourceStore,
  tenant: string,
  input: { id: string; referral: string; status: Appointment['status']; start: string; site: string },
): Promise<void> {
  const appointment: Appointment & { id: string } = {
    resourceType: 'Appointment',
    id: input.id,
    status: input.status,
    start: input.start,
    end: new Date(Date.parse(input.start) + 2 * 3_600_000).toISOString(),
    basedOn: [{ reference: `ServiceRequest/sr-${input.referral}` }],
    participant: [
      { actor: { reference: '#patient' }, status: 'accepted' },
      { actor: { reference: `Location/${input.site}` }, status: 'accepted' },
    ],
  };
  await store.transaction((tx) => tx.create(tenant, appointment, new Date(input.start)));
}

async function seedAppeal(
  store: ResourceStore,
  tenant: string,
  input: { id: string; referral: string; status: Task['status']; at: string },
): Promise<void> {
  const appeal = buildAppealTask({
    taskId: input.id,
    referralTaskId: `task-${input.referral}`,
    patient: { reference: '#p' },
    denial: { reasons: [] },
    now: new Date(input.at),
  });
  await store.transaction((tx) => tx.create(tenant, { ...appeal, status: input.status }, new Date(input.at)));
}

const sorted = <T>(rows: T[]): T[] => [...rows].sort((a, b) => JSON.stringify(a).localeCompare(JSON.stringify(b)));

function describeNetworkMetrics(engine: string, open: () => Promise<{ store: ResourceStore; close(): Promise<void> }>): void {
  describe(`network metrics in the store (${engine})`, function () {
    let store: ResourceStore;
    let close: () => Promise<void>;
    let rows: NetworkMetricsRows;

    before(async function () {
      ({ store, close } = await open());
      // Three referrals of A in November, one in October (outside the period), one of B.
      await seedReferral(store, {
        id: 'r1',
        tenant: A,
        status: 'scheduled',
        receivedAt: '2026-11-02T10:00:00Z',
        authoredOn: '2026-11-01',
        drug: 'infliximab',
      });
      await seedReferral(store, {
        id: 'r2',
        tenant: A,
        status: 'scheduled',
        receivedAt: '2026-11-05T10:00:00Z',
        drug: 'ocrelizumab',
        misrouted: true,
      });
      await seedReferral(store, {
        id: 'r3',
        tenant: A,
        status: 'misroute-suspected',
        receivedAt: '2026-11-06T10:00:00Z',
        drug: 'infliximab',
        misrouted: true,
      });
      await seedReferral(store, { id: 'r4', tenant: A, status: 'auth-denied', receivedAt: '2026-11-07T10:00:00Z', drug: 'infliximab' });
      await seedReferral(store, { id: 'old', tenant: A, status: 'scheduled', receivedAt: '2026-10-01T10:00:00Z', drug: 'infliximab' });
      await seedReferral(store, { id: 'other', tenant: B, status: 'scheduled', receivedAt: '2026-11-03T10:00:00Z', drug: 'infliximab' });
      // r1: a no-show first (not an infusion), then a dose given 14 days after the order was signed.
      await seedAppointment(store, A, { id: 'a1', referral: 'r1', status: 'noshow', start: '2026-11-10T15:00:00Z', site: 'site-x' });
      await seedAppointment(store, A, { id: 'a2', referral: 'r1', status: 'fulfilled', start: '2026-11-15T15:00:00Z', site: 'site-x' });
      await seedAppointment(store, A, { id: 'a3', referral: 'r1', status: 'booked', start: '2026-12-20T15:00:00Z', site: 'site-x' });
      // r2: booked 9 days after receipt (no authoredOn: receipt is the start), at another site.
      await seedAppointment(store, A, { id: 'a4', referral: 'r2', status: 'booked', start: '2026-11-14T16:00:00Z', site: 'site-y' });
      await seedAppointment(store, B, { id: 'b1', referral: 'other', status: 'noshow', start: '2026-11-12T15:00:00Z', site: 'site-x' });
      await seedAppeal(store, A, { id: 'appeal-won', referral: 'r2', status: 'completed', at: '2026-11-08T00:00:00Z' });
      await seedAppeal(store, A, { id: 'appeal-open', referral: 'r4', status: 'in-progress', at: '2026-11-09T00:00:00Z' });
      rows = await store.networkMetrics({
        tenants: [A],
        from: '2026-11-01T00:00:00.000Z',
        to: '2026-12-01T00:00:00.000Z',
        now: '2026-11-30T00:00:00.000Z',
      });
    });

    after(async function () {
      await close();
    });

    it("counts the tenant's referrals received in the period, by current status", function () {
      expect(sorted(rows.referralsByStatus)).to.deep.equal(
        sorted([
          { status: 'scheduled', count: 2 },
          { status: 'misroute-suspected', count: 1 },
          { status: 'auth-denied', count: 1 },
        ]),
      );
    });

    it('counts the referrals the site check held at intake, by where they are now', function () {
      expect(sorted(rows.misroutesByStatus)).to.deep.equal(
        sorted([
          { status: 'scheduled', count: 1 },
          { status: 'misroute-suspected', count: 1 },
        ]),
      );
    });

    it('counts days from the order (authoredOn, else receipt) to the first infusion booked or given, by drug and site', function () {
      expect(sorted(rows.daysToFirstInfusion)).to.deep.equal(
        sorted([
          { drugId: 'infliximab', drugName: 'infliximab', siteId: 'site-x', days: 14, count: 1 },
          { drugId: 'ocrelizumab', drugName: 'ocrelizumab', siteId: 'site-y', days: 9, count: 1 },
        ]),
      );
    });

    it('counts appeal Tasks opened in the period with the status of their referral', function () {
      expect(sorted(rows.appeals)).to.deep.equal(
        sorted([
          { appealStatus: 'completed', referralStatus: 'scheduled', count: 1 },
          { appealStatus: 'in-progress', referralStatus: 'auth-denied', count: 1 },
        ]),
      );
    });

    it('counts appointments due in the period (started before now) by site and status, the future ones left out', function () {
      expect(sorted(rows.appointmentsDue)).to.deep.equal(
        sorted([
          { siteId: 'site-x', status: 'noshow', count: 1 },
          { siteId: 'site-x', status: 'fulfilled', count: 1 },
          { siteId: 'site-y', status: 'booked', count: 1 },
        ]),
      );
    });
  });
}

describeNetworkMetrics('sqlite', async () => {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'metrics-test-'));
  const store = await openStore({ sqliteFile: path.join(dir, 'store.sqlite') });
  return {
    store,
    close: async () => {
      await store.close();
      await rm(dir, { recursive: true, force: true });
    },
  };
});

describeNetworkMetrics('postgres', async () => {
  const schema = await createPostgresSchema();
  const store = await openStore({ databaseUrl: schema.databaseUrl, postgresSchema: schema.name });
  return {
    store,
    close: async () => {
      await store.close();
      await schema.drop();
    },
  };
});
