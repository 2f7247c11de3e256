import { expect } from 'chai';
import path from 'node:path';
import { generateKeyPairSync } from 'node:crypto';
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
    expect(config.store).to.deep.equal({
      poolSize: 10,
      statementTimeoutMs: 30_000,
      connectTimeoutMs: 10_000,
      maxWaitingRequests: 20,
      sqliteSynchronous: 'full',
      preparedStatements: true,
    });
    const tuned = loadConfig({
      DB_POOL_SIZE: '4',
      DB_STATEMENT_TIMEOUT_MS: '0',
      DB_CONNECT_TIMEOUT_MS: '800',
      SQLITE_SYNCHRONOUS: 'NORMAL',
      DB_PREPARED_STATEMENTS: 'off',
    });
    expect(tuned.store).to.deep.equal({
      poolSize: 4,
      statementTimeoutMs: 0,
      connectTimeoutMs: 800,
      maxWaitingRequests: 8,
      sqliteSynchronous: 'normal',
      preparedStatements: false,
    });
  });

  it('trusts the demo CDS issuer only outside production; production without CDS_TRUSTED_ISSUERS trusts no CDS client', () => {
    expect(loadConfig({}, '/srv/gateway').cdsTrustedIssuers).to.deep.equal({
      kind: 'demo',
      file: '/srv/gateway/fixtures/security/demo-cds-issuer.json',
    });
    expect(loadConfig({ NODE_ENV: 'production', AUTH_CLIENTS: 'clients.json' }).cdsTrustedIssuers).to.deep.equal({ kind: 'none' });
    const issuers = [{ iss: 'https://ehr.example.org', jwksUrl: 'https://ehr.example.org/jwks.json' }];
    expect(
      loadConfig({ NODE_ENV: 'production', AUTH_CLIENTS: 'clients.json', CDS_TRUSTED_ISSUERS: JSON.stringify(issuers) }).cdsTrustedIssuers,
    ).to.deep.equal({ kind: 'configured', issuers });
  });

  it('names every problem of CDS_TRUSTED_ISSUERS', () => {
    const bad = JSON.stringify([
      { iss: '', jwksUrl: 'ftp://x' },
      { iss: 'a', jwksUrl: 'http://a/jwks' },
      { iss: 'a', jwksUrl: 'https://a/jwks' },
    ]);
    try {
      loadConfig({ NODE_ENV: 'production', AUTH_CLIENTS: 'clients.json', CDS_TRUSTED_ISSUERS: bad });
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

  it('reads SMART Backend Services credentials of an EHR and a payer connection, the key from a variable', () => {
    const pem = generateKeyPairSync('ec', { namedCurve: 'secp384r1' }).privateKey.export({ type: 'pkcs8', format: 'pem' }).toString();
    const auth = { type: 'smart-backend', clientId: 'gw', privateKeyEnv: 'GW_KEY', kid: 'k1', alg: 'ES384', scope: 'system/Task.cru' };
    const config = loadConfig({
      GW_KEY: pem,
      EHR_CONNECTIONS: JSON.stringify([{ tenant: 'a', baseUrl: 'https://ehr.example.org/fhir', auth }]),
      PAYER_CONNECTIONS: JSON.stringify([{ payer: 'p1', baseUrl: 'https://payer.example.org/fhir', auth }]),
    });
    for (const connection of [config.ehrConnections[0]!, config.payerConnections[0]!]) {
      expect(connection.smartBackend).to.include({ clientId: 'gw', kid: 'k1', alg: 'ES384', scope: 'system/Task.cru' });
      expect(connection.smartBackend?.privateKey.asymmetricKeyType).to.equal('ec');
    }
  });

  it("names every problem of a connection's auth, never the key", () => {
    const rsaPem = generateKeyPairSync('rsa', { modulusLength: 2048 }).privateKey.export({ type: 'pkcs8', format: 'pem' }).toString();
    const entries = [
      {
        tenant: 'a',
        baseUrl: 'https://a.example.org/fhir',
        auth: { type: 'smart-backend', clientId: 'gw', privateKeyEnv: 'RSA_KEY', kid: 'k', alg: 'ES384', scope: 's' },
      },
      {
        tenant: 'b',
        baseUrl: 'https://b.example.org/fhir',
        auth: { type: 'basic', privateKeyEnv: 'MISSING_KEY', privateKeyFile: '/nope', alg: 'HS256' },
      },
      {
        tenant: 'c',
        baseUrl: 'https://c.example.org/fhir',
        auth: { type: 'smart-backend', clientId: 'gw', privateKeyEnv: 'NOT_A_KEY', kid: 'k', alg: 'RS384', scope: 's' },
      },
    ];
    try {
      loadConfig({ RSA_KEY: rsaPem, NOT_A_KEY: 'secret-but-not-a-key', EHR_CONNECTIONS: JSON.stringify(entries) });
      expect.fail('loadConfig accepted bad auth');
    } catch (err) {
      expect(err).to.be.instanceOf(ConfigError);
      expect((err as ConfigError).problems).to.deep.equal([
        'Set EHR_CONNECTIONS[0].auth.alg to an algorithm for the key in RSA_KEY (named by EHR_CONNECTIONS[0].auth.privateKeyEnv) (a rsa key cannot sign ES384)',
        'Set EHR_CONNECTIONS[1].auth.type to smart-backend (the only kind; a static token is bearerTokenEnv)',
        'Set EHR_CONNECTIONS[1].auth.clientId to the client id the server registered for the gateway',
        "Set EHR_CONNECTIONS[1].auth.kid to the key id of the gateway's key in the JWKS the server holds",
        'Set EHR_CONNECTIONS[1].auth.scope to the system scopes to ask for, such as system/Task.cru',
        "Set EHR_CONNECTIONS[1].auth.alg to one of RS256, RS384, RS512, PS256, PS384, PS512, ES256, ES384, ES512, EdDSA (got 'HS256')",
        'Set exactly one of EHR_CONNECTIONS[1].auth.privateKeyEnv (a variable holding the key) and EHR_CONNECTIONS[1].auth.privateKeyFile (a file holding it)',
        'Put a private key (PKCS#8 PEM or a private JWK) in NOT_A_KEY (named by EHR_CONNECTIONS[2].auth.privateKeyEnv): it does not parse as one',
      ]);
      expect((err as ConfigError).message).not.to.include('secret-but-not-a-key');
    }
  });

  it('keeps AuditEvents six years by default (2190 days) and names a bad AUDIT_RETENTION_DAYS or AUDIT_PURGE_CRON', () => {
    expect(loadConfig({}).audit).to.deep.equal({ enabled: true, retentionDays: 2190, purgeCron: '0 17 3 * * *' });
    expect(() => loadConfig({ AUDIT: 'off', NODE_ENV: 'production', AUTH_CLIENTS: 'clients.json' })).to.throw(
      ConfigError,
      /AUDIT=off is for local development/,
    );
    expect(loadConfig({ AUDIT_RETENTION_DAYS: '3650' }).audit.retentionDays).to.equal(3650);
    let error: unknown;
    try {
      loadConfig({ AUDIT_RETENTION_DAYS: 'forever', AUDIT_PURGE_CRON: 'daily' });
    } catch (err) {
      error = err;
    }
    expect(error).to.be.instanceOf(ConfigError);
    expect((error as ConfigError).problems).to.deep.equal([
      "Set AUDIT_RETENTION_DAYS to a whole number from 1 to 36500 (got 'forever')",
      "Set AUDIT_PURGE_CRON to a cron expression such as '0 17 3 * * *' (got 'daily')",
    ]);
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
      expect(
        problems.some((p) => p.startsWith(`Set ${name} `)),
        name,
      ).to.equal(true);
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
