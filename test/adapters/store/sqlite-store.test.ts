import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import Database from 'better-sqlite3';
import { expect } from 'chai';
import { openStore } from '../../../src/adapters/store/index.js';
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
