import { expect } from 'chai';
import path from 'node:path';
import { ConfigError, loadConfig, parseByteSize } from '../../src/config/config.js';

describe('loadConfig', () => {
  it('runs on an embedded store with the demo directory when nothing is set', () => {
    const config = loadConfig({}, '/srv/gateway');
    expect(config.port).to.equal(8080);
    expect(config.databaseUrl).to.equal(undefined);
    expect(config.sqliteFile).to.equal(path.join('/srv/gateway', 'data', 'gateway.sqlite'));
    expect(config.directoryBundle).to.equal('/srv/gateway/fixtures/directory/demo-directory.bundle.json');
    expect(config.bodyLimitBytes).to.equal(5 * 1024 * 1024);
  });

  it('switches to PostgreSQL with DATABASE_URL and skips the directory with DIRECTORY_BUNDLE=none', () => {
    const config = loadConfig({ DATABASE_URL: 'postgres://u@db:5432/gw', DIRECTORY_BUNDLE: 'none' });
    expect(config.databaseUrl).to.equal('postgres://u@db:5432/gw');
    expect(config.directoryBundle).to.equal(undefined);
  });

  it('protects the database by default: 30 s statement timeout, 10 s acquire timeout, durable SQLite commits', () => {
    const config = loadConfig({});
    expect(config.store).to.deep.equal({ poolSize: 10, statementTimeoutMs: 30_000, connectTimeoutMs: 10_000, maxWaitingRequests: 20, sqliteSynchronous: 'full' });
    const tuned = loadConfig({ DB_POOL_SIZE: '4', DB_STATEMENT_TIMEOUT_MS: '0', DB_CONNECT_TIMEOUT_MS: '800', SQLITE_SYNCHRONOUS: 'NORMAL' });
    expect(tuned.store).to.deep.equal({ poolSize: 4, statementTimeoutMs: 0, connectTimeoutMs: 800, maxWaitingRequests: 8, sqliteSynchronous: 'normal' });
  });

  it('refuses a SQLite synchronous level other than full or normal, naming SQLITE_SYNCHRONOUS', () => {
    expect(() => loadConfig({ SQLITE_SYNCHRONOUS: 'off' })).to.throw(ConfigError, /Set SQLITE_SYNCHRONOUS to full or normal/);
  });

  it('reports every bad variable at once, each naming what to set', () => {
    let error: unknown;
    try {
      loadConfig({ PORT: 'eighty', DATABASE_URL: 'mysql://x', LOG_LEVEL: 'loud', BODY_LIMIT: 'big', DEFAULT_TENANT: 'a b' });
    } catch (err) {
      error = err;
    }
    expect(error).to.be.instanceOf(ConfigError);
    const problems = (error as ConfigError).problems;
    expect(problems).to.have.length(5);
    for (const name of ['PORT', 'DATABASE_URL', 'LOG_LEVEL', 'BODY_LIMIT', 'DEFAULT_TENANT']) {
      expect(problems.some((p) => p.startsWith(`Set ${name} `)), name).to.equal(true);
    }
  });
});

describe('parseByteSize', () => {
  it('reads plain bytes and kb/mb/gb units', () => {
    expect(parseByteSize('1024')).to.equal(1024);
    expect(parseByteSize('512kb')).to.equal(512 * 1024);
    expect(parseByteSize('5MB')).to.equal(5 * 1024 * 1024);
    expect(parseByteSize('five')).to.equal(undefined);
  });
});
