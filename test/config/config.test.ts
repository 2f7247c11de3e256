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

  it('trusts the demo CDS issuer only outside production; production without CDS_TRUSTED_ISSUERS trusts no CDS client', () => {
    expect(loadConfig({}, '/srv/gateway').cdsTrustedIssuers).to.deep.equal({ kind: 'demo', file: '/srv/gateway/fixtures/security/demo-cds-issuer.json' });
    expect(loadConfig({ NODE_ENV: 'production' }).cdsTrustedIssuers).to.deep.equal({ kind: 'none' });
    const issuers = [{ iss: 'https://ehr.example.org', jwksUrl: 'https://ehr.example.org/jwks.json' }];
    expect(loadConfig({ NODE_ENV: 'production', CDS_TRUSTED_ISSUERS: JSON.stringify(issuers) }).cdsTrustedIssuers).to.deep.equal({ kind: 'configured', issuers });
  });

  it('names every problem of CDS_TRUSTED_ISSUERS', () => {
    const bad = JSON.stringify([{ iss: '', jwksUrl: 'ftp://x' }, { iss: 'a', jwksUrl: 'http://a/jwks' }, { iss: 'a', jwksUrl: 'https://a/jwks' }]);
    try {
      loadConfig({ NODE_ENV: 'production', CDS_TRUSTED_ISSUERS: bad });
      expect.fail('loadConfig accepted bad CDS_TRUSTED_ISSUERS');
    } catch (err) {
      expect(err).to.be.instanceOf(ConfigError);
      expect((err as ConfigError).problems).to.deep.equal([
        'Set CDS_TRUSTED_ISSUERS[0].iss to the issuer the EHR puts in its hook JWTs',
        "Set CDS_TRUSTED_ISSUERS[0].jwksUrl to the absolute http(s) URL of the issuer's JWK Set",
        'Set CDS_TRUSTED_ISSUERS[1].jwksUrl to an https URL (NODE_ENV=production)',
        'Each issuer may appear once in CDS_TRUSTED_ISSUERS; a appears more than once',
      ]);
    }
    expect(() => loadConfig({ CDS_TRUSTED_ISSUERS: '{' })).to.throw(ConfigError, /CDS_TRUSTED_ISSUERS .*not valid JSON/);
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
