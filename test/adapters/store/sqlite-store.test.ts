import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import Database from 'better-sqlite3';
import { expect } from 'chai';
import { randomUUID } from 'node:crypto';
import { openStore } from '../../../src/adapters/store/index.js';
import { runAudited } from '../../../src/ports/audit-trail.js';
import { describeStoreContract } from './store-contract.js';

describeStoreContract('SQLite', async () => {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'gw-store-'));
  const file = path.join(dir, 'data', 'gateway.sqlite');
  return {
    open: () => openStore({ sqliteFile: file }),
    drop: () => rm(dir, { recursive: true, force: true }),
  };
});

describe('SQLite store set-up', function () {
  let dir: string;

  beforeEach(async function () {
    dir = await mkdtemp(path.join(os.tmpdir(), 'gw-store-'));
  });

  afterEach(async function () {
    await rm(dir, { recursive: true, force: true });
  });

  it('creates the data directory and opens the file in WAL mode', async function () {
    const file = path.join(dir, 'nested', 'data', 'gateway.sqlite');
    const store = await openStore({ sqliteFile: file });
    try {
      expect(store.engine).to.equal('sqlite');
      await store.ping();
    } finally {
      await store.close();
    }
    const db = new Database(file, { readonly: true });
    try {
      expect(db.pragma('journal_mode', { simple: true })).to.equal('wal');
    } finally {
      db.close();
    }
  });

  it("commits durably by default: WAL with synchronous FULL on the store's own connection", async function () {
    const store = await openStore({ sqliteFile: path.join(dir, 'durable.sqlite') });
    try {
      expect(await store.settings()).to.deep.equal({ journal_mode: 'wal', synchronous: 'full' });
    } finally {
      await store.close();
    }
  });

  it('runs synchronous NORMAL only when the deployment asks for it', async function () {
    const store = await openStore({ sqliteFile: path.join(dir, 'fast.sqlite'), sqliteSynchronous: 'normal' });
    try {
      expect(await store.settings()).to.deep.equal({ journal_mode: 'wal', synchronous: 'normal' });
    } finally {
      await store.close();
    }
  });

  describe('group commit: transactions that arrive together share one COMMIT (docs/resilience.md#sqlite-group-commit)', function () {
    const patient = (id: string) => ({ resourceType: 'Patient' as const, id, active: true });

    async function openCounting(file: string) {
      const statements: string[] = [];
      const store = await openStore({
        sqliteFile: file,
        observeStatements: (kind, text) => statements.push(kind === 'query' ? (text ?? '') : kind),
      });
      return { store, commits: () => statements.filter((s) => /^commit/i.test(s.trim())).length };
    }

    it('keeps each transaction atomic: the one that fails leaves nothing, the others are stored, in fewer commits than transactions', async function () {
      const { store, commits } = await openCounting(path.join(dir, 'group.sqlite'));
      try {
        const before = commits();
        const outcomes = await Promise.allSettled(
          ['g-0', 'g-1', 'g-2', 'g-3', 'g-4'].map((id) =>
            store.transaction(async (tx) => {
              await tx.create('default', patient(id), new Date());
              if (id === 'g-2') throw new Error('g-2 refused after its write');
              return id;
            }),
          ),
        );
        expect(outcomes.map((o) => (o.status === 'fulfilled' ? o.value : (o.reason as Error).message))).to.deep.equal([
          'g-0',
          'g-1',
          'g-2 refused after its write',
          'g-3',
          'g-4',
        ]);
        const stored = await Promise.all(['g-0', 'g-1', 'g-2', 'g-3', 'g-4'].map((id) => store.read(['default'], 'Patient', id)));
        expect(stored.map((p) => p?.id)).to.deep.equal(['g-0', 'g-1', undefined, 'g-3', 'g-4']);
        expect(commits() - before).to.be.within(1, 2);
      } finally {
        await store.close();
      }
    });

    it('rolls back a failing first transaction alone; those queued behind it commit', async function () {
      const { store } = await openCounting(path.join(dir, 'first.sqlite'));
      try {
        const first = store.transaction(async (tx) => {
          await tx.create('default', patient('first'), new Date());
          throw new Error('the first one fails');
        });
        const second = store.transaction((tx) => tx.create('default', patient('second'), new Date()));
        const [a, b] = await Promise.allSettled([first, second]);
        expect(a.status === 'rejected' && (a.reason as Error).message).to.equal('the first one fails');
        expect(b.status).to.equal('fulfilled');
        expect(await store.read(['default'], 'Patient', 'first')).to.equal(undefined);
        expect((await store.read(['default'], 'Patient', 'second'))?.id).to.equal('second');
      } finally {
        await store.close();
      }
    });

    it("records each transaction's changes under its own caller's agent, grouped or not", async function () {
      const { store } = await openCounting(path.join(dir, 'agents.sqlite'));
      try {
        const as = (who: string) => ({
          agent: () => ({ who, role: 'ehr' }),
          subtype: 'create',
          entities: [],
          clock: { now: () => new Date() },
          newId: randomUUID,
          changesRecorded: 0,
        });
        await Promise.all(
          ['agent-a', 'agent-b', 'agent-c'].map((who) =>
            runAudited(as(who), () => store.transaction((tx) => tx.create('default', patient(`by-${who}`), new Date()))),
          ),
        );
        for (const who of ['agent-a', 'agent-b', 'agent-c']) {
          const records = await store.searchAuditEvents({ agent: who, count: 10 });
          expect(
            records.map((r) => r.entities.map((e) => String(e)).join(',')),
            who,
          ).to.deep.equal([`Patient/by-${who}`]);
        }
      } finally {
        await store.close();
      }
    });
  });

  it('takes a non-PostgreSQL databaseUrl as the SQLite file', async function () {
    const file = path.join(dir, 'by-url.sqlite');
    const store = await openStore({ databaseUrl: `sqlite:${file}` });
    await store.close();
    const db = new Database(file, { readonly: true });
    try {
      const tables = db.prepare(`select name from sqlite_master where type = 'table' order by name`).pluck().all();
      expect(tables).to.include.members([
        'job_cursors',
        'job_runs',
        'outbox_messages',
        'referrals',
        'resource_history',
        'resources',
        'search_index',
      ]);
    } finally {
      db.close();
    }
  });

  it('opens an in-memory store for tests', async function () {
    const store = await openStore({ sqliteFile: ':memory:' });
    try {
      await store.ping();
    } finally {
      await store.close();
    }
  });
});
