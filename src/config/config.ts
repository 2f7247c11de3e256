/**
 * Configuration from environment variables, validated once at start-up. Every problem is reported
 * together, each naming the variable to set, so an operator fixes the environment in one go.
 */
import path from 'node:path';
import { isFhirId } from '../fhir/ids.js';
import type { SmartBackendCredentials } from '../auth/smart-backend-client.js';
import { readSmartBackendAuth } from './smart-backend-auth-config.js';

export interface Config {
  port: number;
  host: string;
  /** postgres://... switches storage to PostgreSQL; otherwise the embedded SQLite file. */
  databaseUrl?: string;
  dataDir: string;
  sqliteFile: string;
  /** Connection limits and durability of the store (src/adapters/store/open-store.ts). */
  store: StoreSettings;
  /** Transaction Bundle of the network's directory loaded at start-up; undefined = none. */
  directoryBundle?: string;
  drugCatalogFile: string;
  profilesDir: string;
  logLevel: 'error' | 'warn' | 'info' | 'http' | 'debug';
  bodyLimitBytes: number;
  jsonMaxDepth: number;
  /** Absolute base of the FHIR API as clients see it (for Location headers and Bundle links). */
  publicBaseUrl?: string;
  /** Tenant of public routes and of AUTH=off development requests that name none. */
  defaultTenant: string;
  /** Authentication (docs/security.md): off only for local development, never in production. */
  auth: AuthConfig;
  /** Tenant that owns the network's directory (Location, HealthcareService, ...). */
  directoryTenant: string;
  shutdownTimeoutMs: number;
  /** The EHR FHIR servers to write back to and poll, per sending tenant; empty = write-back off. */
  ehrConnections: EhrConnectionConfig[];
  outbox: {
    /** Whether this process runs an outbox worker (OUTBOX_WORKER=off makes an API-only process). */
    workerEnabled: boolean;
    /** How often an idle worker looks for due messages. */
    pollIntervalMs: number;
    batchSize: number;
    /** How long a claimed message is reserved for its worker before another may take it. */
    leaseMs: number;
    maxAttempts: number;
    baseDelayMs: number;
    maxDelayMs: number;
  };
  /** node-cron expression of the EHR pull job (seconds field allowed). */
  ehrPollCron: string;
  ehrRequestTimeoutMs: number;
  /** The site check's thresholds (src/site-check/rules/site-check.ts). */
  siteCheck: { tooFarKm: number; maxTravelKm: number; maxSuggestions: number };
  /** FHIR servers the CDS Hooks service may fetch missing prefetch from (SSRF guard); default: the EHR connections. */
  cdsTrustedFhirServers: string[];
  /** Per request to a CDS client's FHIR server; the whole hook has about 500 ms. */
  cdsFhirTimeoutMs: number;
  /**
   * Whose signed JWTs a hook call may carry (https://cds-hooks.hl7.org/2.0/#trusting-cds-clients):
   * CDS_TRUSTED_ISSUERS, or outside production when that is unset, the demo issuer of
   * fixtures/security/demo-cds-issuer.json; in production unset = every hook call refused.
   */
  cdsTrustedIssuers: CdsTrustedIssuersConfig;
  /** The payers' FHIR servers (eligibility, prior authorization), by the payer's directory Organization id. */
  payerConnections: PayerConnectionConfig[];
  payerRequestTimeoutMs: number;
  /** The deployment's prior-authorization rules and allowed amounts (src/coverage/rules/prior-auth-rules.ts). */
  priorAuthRulesFile: string;
  /** node-cron expression of the follow-up of pended prior authorizations (Claim/$inquire). */
  priorAuthInquiryCron: string;
  scheduling: SchedulingConfig;
  /** The audit trail's retention (docs/audit.md). */
  audit: AuditConfig;
}

export interface AuditConfig {
  /** AUDIT=off: no AuditEvents at all, for local development and the bench's comparison only; refused in production. */
  enabled: boolean;
  /**
   * AUDIT_RETENTION_DAYS: AuditEvents older than this are purged. Default 2190 days (six years),
   * HIPAA's retention of the Security Rule's documentation (45 CFR 164.316(b)(2)(i)), the figure
   * audit logs are commonly kept for; a state or contract may require longer.
   */
  retentionDays: number;
  /** AUDIT_PURGE_CRON: node-cron expression of the purge, run by one process per tick. */
  purgeCron: string;
}

export interface SchedulingConfig {
  /** How long $hold keeps a chair before the hold lapses by itself. */
  holdMinutes: number;
  /** How far ahead $find looks by default. */
  findDays: number;
  /** Candidate starts every this many minutes from opening time. */
  stepMinutes: number;
  /** A reschedule with less notice than the pharmacy lead time: refused, or accepted with a warning. */
  lateReschedule: 'refuse' | 'flag';
  /** Hours before a visit at which reminders go out (field note 001: SMS, e-mail or phone). */
  reminderHours: number[];
  reminderCron: string;
  noShowCron: string;
  /** Minutes after an appointment's end before it counts as a no-show. */
  noShowGraceMinutes: number;
  /** The administrative fee recorded on a no-show (field note 001: one case of USD 50); 0 = none. */
  noShowFee: { value: number; currency: string };
  /** Where reminders are POSTed (a webhook); none = reminders are recorded but not sent. */
  notifierWebhookUrl?: string;
  /** Days before an order's end at which a renewal Task goes to the referring side. */
  renewalNoticeDays: number;
}

export type CdsTrustedIssuersConfig =
  | { readonly kind: 'configured'; readonly issuers: ReadonlyArray<{ readonly iss: string; readonly jwksUrl: string }> }
  | { readonly kind: 'demo'; readonly file: string }
  | { readonly kind: 'none' };

export interface PayerConnectionConfig {
  payerOrganizationId: string;
  baseUrl: string;
  bearerToken?: string;
  /** SMART Backend Services credentials (the entry's `auth`); then bearerToken is not used. */
  smartBackend?: SmartBackendCredentials;
}

export interface EhrConnectionConfig {
  tenant: string;
  baseUrl: string;
  bearerToken?: string;
  /** SMART Backend Services credentials (the entry's `auth`); then bearerToken is not used. */
  smartBackend?: SmartBackendCredentials;
  /** The secret the EHR's Subscription sends as its X-Subscription-Secret channel header, if any. */
  subscriptionSecret?: string;
  /** Pull new and changed infusion ServiceRequests from this EHR on the poll schedule. */
  poll: boolean;
  /** Extra search parameters for the pull (e.g. a category), ANDed with _lastUpdated. */
  pollQuery?: Record<string, string>;
}

export class ConfigError extends Error {
  readonly problems: readonly string[];

  constructor(problems: readonly string[]) {
    super(`Invalid configuration:\n${problems.map((p) => `  - ${p}`).join('\n')}`);
    this.name = 'ConfigError';
    this.problems = problems;
  }
}

const LOG_LEVELS = ['error', 'warn', 'info', 'http', 'debug'] as const;
const TENANT_PATTERN = /^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/;
const CRON_PATTERN = /^\S+(\s+\S+){4,5}$/;

/** Parses `5mb`, `512kb`, `1048576` into bytes. */
export function parseByteSize(text: string): number | undefined {
  const match = /^\s*(\d+(?:\.\d+)?)\s*(b|kb|mb|gb)?\s*$/i.exec(text);
  if (!match) return undefined;
  const units: Record<string, number> = { b: 1, kb: 1024, mb: 1024 ** 2, gb: 1024 ** 3 };
  return Math.floor(Number(match[1]) * units[(match[2] ?? 'b').toLowerCase()]!);
}

export interface StoreSettings {
  poolSize: number;
  /** PostgreSQL statement_timeout per statement; 0 = none. */
  statementTimeoutMs: number;
  /** How long a request waits for a PostgreSQL connection before a 503. */
  connectTimeoutMs: number;
  /** /readyz is 503 while more requests than this wait for a connection. */
  maxWaitingRequests: number;
  sqliteSynchronous: 'full' | 'normal';
  /** PostgreSQL: the hot statements prepared once per connection (off behind a pooler that cannot keep them). */
  preparedStatements: boolean;
}

/** The demo client registry `npm start` uses when AUTH_CLIENTS is unset (keys public: demo only). */
export const DEMO_CLIENTS_FILE = 'fixtures/clients/demo-clients.json';

export interface AuthConfig {
  enabled: boolean;
  /** The client registry (AUTH_CLIENTS), or the demo registry. */
  clientsFile: string;
  /** Whether clientsFile is the demo registry: the log says so loudly, production refuses it. */
  demoClients: boolean;
  /** A private JWKS (AUTH_SIGNING_KEYS); absent: one key pair generated once and kept in the database. */
  signingKeysFile?: string;
  tokenLifetimeSeconds: number;
  production: boolean;
  /**
   * AUTH_TRUSTED_ISSUERS: the organisations' identity providers whose tokens people bring
   * (profiles/auth-trusted-issuers.schema.json), inline JSON or a file; parsed at start-up.
   */
  trustedIssuers?: { kind: 'inline'; json: string } | { kind: 'file'; file: string };
  /**
   * The embedded demo identity provider (src/auth/demo-identity-provider.ts, fixture
   * DEMO_IDENTITY_PROVIDER_FILE): on when AUTH_TRUSTED_ISSUERS is unset outside production.
   */
  demoIdentityProviderFile?: string;
  /** Where the console sends people to sign in (CONSOLE_OIDC_*); unset: the demo provider's, else no sign-in page. */
  consoleOidc?: { issuer: string; clientId: string; scope: string };
}

/** The demo identity provider's key and users (keys public: demo only). */
export const DEMO_IDENTITY_PROVIDER_FILE = 'fixtures/security/demo-identity-provider.json';

/** The environment as loadConfig reads it: each reader adds what is wrong to `problems`. */
interface Settings {
  readonly problems: string[];
  /** NODE_ENV=production. */
  readonly production: boolean;
  /** The trimmed value; undefined when unset or blank. */
  text(name: string): string | undefined;
  integer(name: string, fallback: number, min: number, max: number): number;
  /** A node-cron expression (five or six fields); `example` quotes one in the problem. */
  cron(name: string, fallback: string, example?: string): string;
  tenant(name: string, fallback: string): string;
  /** `on` (the default) or `off`, any case: whether it is on. */
  onOff(name: string): boolean;
  /** A path setting, relative to the working directory. */
  resolvePath(value: string): string;
}

function settingsOf(env: NodeJS.ProcessEnv, cwd: string): Settings {
  const problems: string[] = [];
  const text = (name: string): string | undefined => {
    const value = env[name]?.trim();
    return value === undefined || value === '' ? undefined : value;
  };
  return {
    problems,
    production: env['NODE_ENV'] === 'production',
    text,
    integer(name, fallback, min, max) {
      const raw = text(name);
      if (raw === undefined) return fallback;
      const value = Number(raw);
      if (!Number.isInteger(value) || value < min || value > max) {
        problems.push(`Set ${name} to a whole number from ${min} to ${max} (got '${raw}')`);
        return fallback;
      }
      return value;
    },
    cron(name, fallback, example = fallback) {
      const value = text(name) ?? fallback;
      if (!CRON_PATTERN.test(value)) problems.push(`Set ${name} to a cron expression such as '${example}' (got '${value}')`);
      return value;
    },
    tenant(name, fallback) {
      const value = text(name) ?? fallback;
      if (!TENANT_PATTERN.test(value)) problems.push(`Set ${name} to letters, digits, '.', '_' or '-' (at most 64; got '${value}')`);
      return value;
    },
    onOff(name) {
      const value = (text(name) ?? 'on').toLowerCase();
      if (value !== 'on' && value !== 'off') problems.push(`Set ${name} to on or off (got '${value}')`);
      return value !== 'off';
    },
    resolvePath: (value) => path.resolve(cwd, value),
  };
}

/** DATABASE_URL (PostgreSQL, else the embedded SQLite store) and the store's pool and time-outs. */
function readStoreConfig({ text, integer, onOff, problems }: Settings): { databaseUrl: string | undefined; store: StoreSettings } {
  const databaseUrl = text('DATABASE_URL');
  if (databaseUrl !== undefined && !/^postgres(ql)?:\/\//.test(databaseUrl)) {
    problems.push(
      `Set DATABASE_URL to a postgres:// or postgresql:// URL, or unset it for the embedded store (got a value of another scheme)`,
    );
  }

  const poolSize = integer('DB_POOL_SIZE', 10, 1, 1000);
  const sqliteSynchronous = (text('SQLITE_SYNCHRONOUS') ?? 'full').toLowerCase();
  if (sqliteSynchronous !== 'full' && sqliteSynchronous !== 'normal') {
    problems.push(`Set SQLITE_SYNCHRONOUS to full or normal (got '${sqliteSynchronous}')`);
  }
  const store: StoreSettings = {
    poolSize,
    statementTimeoutMs: integer('DB_STATEMENT_TIMEOUT_MS', 30_000, 0, 3_600_000),
    connectTimeoutMs: integer('DB_CONNECT_TIMEOUT_MS', 10_000, 100, 600_000),
    maxWaitingRequests: integer('DB_MAX_WAITING', 2 * poolSize, 0, 100_000),
    sqliteSynchronous: sqliteSynchronous === 'normal' ? 'normal' : 'full',
    preparedStatements: onOff('DB_PREPARED_STATEMENTS'),
  };
  return { databaseUrl, store };
}

/** AUTH, the client registry, the signing keys and people's sign-in (docs/security.md). */
function readAuthConfig(settings: Settings): AuthConfig {
  const { text, integer, production, resolvePath, problems } = settings;
  const enabled = settings.onOff('AUTH');
  if (!enabled && production) problems.push('AUTH=off is for local development only: unset it (NODE_ENV=production)');
  const clientsFile = text('AUTH_CLIENTS');
  if (clientsFile === undefined && production && enabled) {
    problems.push(
      'Set AUTH_CLIENTS to your client registry (a JSON file, profiles/auth-clients.schema.json): the demo clients are refused in production',
    );
  }
  const signingKeysFile = text('AUTH_SIGNING_KEYS');
  return {
    enabled,
    clientsFile: resolvePath(clientsFile ?? DEMO_CLIENTS_FILE),
    demoClients: clientsFile === undefined,
    ...(signingKeysFile !== undefined ? { signingKeysFile: resolvePath(signingKeysFile) } : {}),
    tokenLifetimeSeconds: integer('AUTH_TOKEN_LIFETIME_SECONDS', 300, 30, 3600),
    production,
    ...readPeopleSignIn(text, production, resolvePath, problems),
  };
}

/** LOG_LEVEL, BODY_LIMIT and PUBLIC_BASE_URL. */
function readHttpConfig({ text, problems }: Settings): Pick<Config, 'logLevel' | 'bodyLimitBytes' | 'publicBaseUrl'> {
  const logLevel = (text('LOG_LEVEL') ?? 'info') as Config['logLevel'];
  if (!LOG_LEVELS.includes(logLevel)) problems.push(`Set LOG_LEVEL to one of ${LOG_LEVELS.join(', ')} (got '${logLevel}')`);

  const bodyLimitText = text('BODY_LIMIT') ?? '5mb';
  const bodyLimitBytes = parseByteSize(bodyLimitText);
  if (bodyLimitBytes === undefined || bodyLimitBytes < 1024) {
    problems.push(`Set BODY_LIMIT to a size of at least 1kb such as 5mb or 512kb (got '${bodyLimitText}')`);
  }

  const publicBaseUrl = text('PUBLIC_BASE_URL');
  if (publicBaseUrl !== undefined && !/^https?:\/\/[^\s]+$/.test(publicBaseUrl)) {
    problems.push(`Set PUBLIC_BASE_URL to an absolute http(s) URL such as https://gateway.example.org/fhir (got '${publicBaseUrl}')`);
  }
  return {
    logLevel,
    // loadConfig throws on the problem above before an unreadable size could be used.
    bodyLimitBytes: bodyLimitBytes as number,
    ...(publicBaseUrl !== undefined ? { publicBaseUrl: publicBaseUrl.replace(/\/+$/, '') } : {}),
  };
}

function readOutboxConfig({ onOff, integer }: Settings): Config['outbox'] {
  return {
    workerEnabled: onOff('OUTBOX_WORKER'),
    pollIntervalMs: integer('OUTBOX_POLL_MS', 500, 10, 600_000),
    batchSize: integer('OUTBOX_BATCH_SIZE', 20, 1, 1000),
    leaseMs: integer('OUTBOX_LEASE_MS', 60_000, 1000, 3_600_000),
    maxAttempts: integer('OUTBOX_MAX_ATTEMPTS', 50, 1, 10_000),
    baseDelayMs: integer('OUTBOX_RETRY_BASE_MS', 1000, 1, 3_600_000),
    maxDelayMs: integer('OUTBOX_RETRY_MAX_MS', 15 * 60_000, 1, 86_400_000),
  };
}

function readSiteCheckConfig({ integer, problems }: Settings): Config['siteCheck'] {
  const siteCheck = {
    tooFarKm: integer('SITE_TOO_FAR_KM', 40, 1, 5000),
    maxTravelKm: integer('SITE_MAX_TRAVEL_KM', 250, 1, 20_000),
    maxSuggestions: integer('SITE_SUGGESTIONS', 3, 1, 20),
  };
  if (siteCheck.maxTravelKm < siteCheck.tooFarKm) {
    problems.push(`Set SITE_MAX_TRAVEL_KM (${siteCheck.maxTravelKm}) to at least SITE_TOO_FAR_KM (${siteCheck.tooFarKm})`);
  }
  return siteCheck;
}

/** The CDS Hooks service: the FHIR servers it may read (by default the EHRs) and the clients it trusts. */
function readCdsConfig(
  { text, integer, production, resolvePath, problems }: Settings,
  ehrConnections: readonly EhrConnectionConfig[],
): Pick<Config, 'cdsTrustedFhirServers' | 'cdsFhirTimeoutMs' | 'cdsTrustedIssuers'> {
  const cdsTrustedText = text('CDS_TRUSTED_FHIR_SERVERS');
  const cdsTrustedFhirServers =
    cdsTrustedText === undefined
      ? ehrConnections.map((c) => c.baseUrl)
      : cdsTrustedText
          .split(',')
          .map((u) => u.trim())
          .filter((u) => u.length > 0);
  for (const url of cdsTrustedFhirServers) {
    if (!/^https?:\/\/[^\s]+$/.test(url))
      problems.push(`Set CDS_TRUSTED_FHIR_SERVERS to comma-separated absolute http(s) URLs (got '${url}')`);
  }
  const cdsFhirTimeoutMs = integer('CDS_FHIR_TIMEOUT_MS', 1500, 50, 60_000);
  const cdsTrustedIssuers = readCdsTrustedIssuers(text('CDS_TRUSTED_ISSUERS'), production, resolvePath, problems);
  return { cdsTrustedFhirServers, cdsFhirTimeoutMs, cdsTrustedIssuers };
}

/** The audit trail (docs/audit.md): AUDIT, its retention and the purge's schedule. */
function readAuditConfig({ integer, onOff, cron, production, problems }: Settings): Config['audit'] {
  const retentionDays = integer('AUDIT_RETENTION_DAYS', 2190, 1, 36_500);
  const enabled = onOff('AUDIT');
  if (!enabled && production) problems.push('AUDIT=off is for local development and the bench only: unset it (NODE_ENV=production)');
  return { enabled, retentionDays, purgeCron: cron('AUDIT_PURGE_CRON', '0 17 3 * * *') };
}

/** Reads every setting, in the order the problems are reported; throws ConfigError with all of them. */
export function loadConfig(env: NodeJS.ProcessEnv, cwd: string = process.cwd()): Config {
  const settings = settingsOf(env, cwd);
  const { text, integer, cron, tenant, resolvePath, problems } = settings;

  const port = integer('PORT', 8080, 0, 65535);
  const jsonMaxDepth = integer('JSON_MAX_DEPTH', 64, 8, 1000);
  const shutdownTimeoutMs = integer('SHUTDOWN_TIMEOUT_MS', 10_000, 0, 600_000);
  const { databaseUrl, store } = readStoreConfig(settings);
  const auth = readAuthConfig(settings);
  const http = readHttpConfig(settings);
  const defaultTenant = tenant('DEFAULT_TENANT', 'default');
  const directoryTenant = tenant('DIRECTORY_TENANT', 'network');

  const ehrConnections = readEhrConnections(text, problems, defaultTenant);
  const outbox = readOutboxConfig(settings);
  const ehrPollCron = cron('EHR_POLL_CRON', '*/30 * * * * *');
  const ehrRequestTimeoutMs = integer('EHR_REQUEST_TIMEOUT_MS', 10_000, 100, 600_000);
  const siteCheck = readSiteCheckConfig(settings);
  const cds = readCdsConfig(settings, ehrConnections);

  const payerConnections = readPayerConnections(text, problems);
  const payerRequestTimeoutMs = integer('PAYER_REQUEST_TIMEOUT_MS', 15_000, 100, 600_000);
  const priorAuthInquiryCron = cron('PRIOR_AUTH_INQUIRY_CRON', '0 */10 * * * *');
  const scheduling = readSchedulingConfig(settings);
  const audit = readAuditConfig(settings);

  const dataDir = resolvePath(text('DATA_DIR') ?? 'data');
  const directorySetting = text('DIRECTORY_BUNDLE') ?? 'fixtures/directory/demo-directory.bundle.json';

  if (problems.length > 0) throw new ConfigError(problems);
  return {
    port,
    host: text('HOST') ?? '0.0.0.0',
    ...(databaseUrl !== undefined ? { databaseUrl } : {}),
    dataDir,
    sqliteFile: path.join(dataDir, 'gateway.sqlite'),
    store,
    ...(directorySetting.toLowerCase() === 'none' ? {} : { directoryBundle: resolvePath(directorySetting) }),
    drugCatalogFile: resolvePath(text('DRUG_CATALOG') ?? 'fixtures/drug-catalog.json'),
    profilesDir: resolvePath(text('PROFILES_DIR') ?? 'profiles'),
    logLevel: http.logLevel,
    bodyLimitBytes: http.bodyLimitBytes,
    jsonMaxDepth,
    ...(http.publicBaseUrl !== undefined ? { publicBaseUrl: http.publicBaseUrl } : {}),
    defaultTenant,
    directoryTenant,
    auth,
    shutdownTimeoutMs,
    ehrConnections,
    outbox,
    ehrPollCron,
    ehrRequestTimeoutMs,
    siteCheck,
    cdsTrustedFhirServers: cds.cdsTrustedFhirServers,
    cdsFhirTimeoutMs: cds.cdsFhirTimeoutMs,
    cdsTrustedIssuers: cds.cdsTrustedIssuers,
    payerConnections,
    payerRequestTimeoutMs,
    priorAuthRulesFile: resolvePath(text('PRIOR_AUTH_RULES') ?? 'fixtures/prior-auth-rules.json'),
    priorAuthInquiryCron,
    scheduling,
    audit,
  };
}

const CDS_ISSUERS_SHAPE = 'a JSON array of {"iss","jwksUrl"} objects';

/**
 * People's sign-in (docs/security.md): AUTH_TRUSTED_ISSUERS and the console's OpenID Connect
 * client (CONSOLE_OIDC_ISSUER, CONSOLE_OIDC_CLIENT_ID, CONSOLE_OIDC_SCOPE). Without trusted
 * issuers, outside production, the embedded demo identity provider stands in.
 */
function readPeopleSignIn(
  text: (name: string) => string | undefined,
  production: boolean,
  resolvePath: (p: string) => string,
  problems: string[],
): Pick<AuthConfig, 'trustedIssuers' | 'demoIdentityProviderFile' | 'consoleOidc'> {
  const raw = text('AUTH_TRUSTED_ISSUERS');
  const trustedIssuers =
    raw === undefined
      ? undefined
      : raw.startsWith('[')
        ? ({ kind: 'inline', json: raw } as const)
        : ({ kind: 'file', file: resolvePath(raw) } as const);
  const issuer = text('CONSOLE_OIDC_ISSUER');
  const clientId = text('CONSOLE_OIDC_CLIENT_ID');
  if ((issuer === undefined) !== (clientId === undefined))
    problems.push('Set both CONSOLE_OIDC_ISSUER and CONSOLE_OIDC_CLIENT_ID (the console signs people in with both), or neither');
  if (issuer !== undefined && !/^https?:\/\/[^#?]+$/.test(issuer))
    problems.push("Set CONSOLE_OIDC_ISSUER to the identity provider's issuer URL (http(s), no query or fragment)");
  if (issuer !== undefined && production && !issuer.startsWith('https:'))
    problems.push('Set CONSOLE_OIDC_ISSUER to an https URL (NODE_ENV=production)');
  if (issuer !== undefined && trustedIssuers === undefined)
    problems.push(
      'Set AUTH_TRUSTED_ISSUERS with an entry for CONSOLE_OIDC_ISSUER: the gateway must accept the tokens the console signs people in for',
    );
  const consoleOidc =
    issuer !== undefined && clientId !== undefined
      ? { issuer, clientId, scope: text('CONSOLE_OIDC_SCOPE') ?? 'openid profile' }
      : undefined;
  // Demo keys and demo people are public in the repository: production never runs them.
  const demo = trustedIssuers === undefined && !production;
  return {
    ...(trustedIssuers !== undefined ? { trustedIssuers } : {}),
    ...(demo ? { demoIdentityProviderFile: resolvePath(DEMO_IDENTITY_PROVIDER_FILE) } : {}),
    ...(consoleOidc !== undefined ? { consoleOidc } : {}),
  };
}

function readCdsTrustedIssuers(
  raw: string | undefined,
  production: boolean,
  resolvePath: (p: string) => string,
  problems: string[],
): CdsTrustedIssuersConfig {
  if (raw === undefined) {
    // Demo keys are public in the repository: production never trusts them.
    return production ? { kind: 'none' } : { kind: 'demo', file: resolvePath('fixtures/security/demo-cds-issuer.json') };
  }
  let parsed: unknown;
  try {
    parsed = JSON.parse(raw);
  } catch {
    problems.push(`Set CDS_TRUSTED_ISSUERS to ${CDS_ISSUERS_SHAPE} (it is not valid JSON)`);
    return { kind: 'none' };
  }
  if (!Array.isArray(parsed)) {
    problems.push(`Set CDS_TRUSTED_ISSUERS to ${CDS_ISSUERS_SHAPE}`);
    return { kind: 'none' };
  }
  const issuers: Array<{ iss: string; jwksUrl: string }> = [];
  parsed.forEach((entry: unknown, index) => {
    const where = `CDS_TRUSTED_ISSUERS[${index}]`;
    const e = (typeof entry === 'object' && entry !== null ? entry : {}) as Record<string, unknown>;
    const iss = e['iss'];
    const jwksUrl = e['jwksUrl'];
    if (typeof iss !== 'string' || iss.trim() === '') problems.push(`Set ${where}.iss to the issuer the EHR puts in its hook JWTs`);
    const jwksOk = typeof jwksUrl === 'string' && /^https?:\/\/[^\s]+$/.test(jwksUrl);
    if (!jwksOk) problems.push(`Set ${where}.jwksUrl to the absolute http(s) URL of the issuer's JWK Set`);
    else if (production && jwksUrl.startsWith('http:')) problems.push(`Set ${where}.jwksUrl to an https URL (NODE_ENV=production)`);
    if (typeof iss === 'string' && iss.trim() !== '' && jwksOk) issuers.push({ iss, jwksUrl });
  });
  const seen = issuers.map((i) => i.iss).filter((iss, i, all) => all.indexOf(iss) !== i);
  if (seen.length > 0)
    problems.push(`Each issuer may appear once in CDS_TRUSTED_ISSUERS; ${[...new Set(seen)].join(', ')} appears more than once`);
  return { kind: 'configured', issuers };
}

/**
 * EHR connections: EHR_FHIR_BASE_URL (+ EHR_BEARER_TOKEN, EHR_POLL) for the default tenant, and
 * EHR_CONNECTIONS, a JSON array of { tenant, baseUrl, bearerTokenEnv?, poll?, pollQuery? } for
 * more. Tokens are named by environment variable, never written in the JSON.
 */
function readEhrConnections(text: (name: string) => string | undefined, problems: string[], defaultTenant: string): EhrConnectionConfig[] {
  const connections: EhrConnectionConfig[] = [];
  const isUrl = (value: string): boolean => /^https?:\/\/[^\s]+$/.test(value);
  const single = text('EHR_FHIR_BASE_URL');
  if (single !== undefined) {
    if (!isUrl(single)) problems.push(`Set EHR_FHIR_BASE_URL to the EHR's FHIR base, an absolute http(s) URL (got '${single}')`);
    const token = text('EHR_BEARER_TOKEN');
    const subscriptionSecret = text('EHR_SUBSCRIPTION_SECRET');
    connections.push({
      tenant: defaultTenant,
      baseUrl: single.replace(/\/+$/, ''),
      ...(token !== undefined ? { bearerToken: token } : {}),
      ...(subscriptionSecret !== undefined ? { subscriptionSecret } : {}),
      poll: (text('EHR_POLL') ?? 'true') !== 'false',
    });
  }
  const many = text('EHR_CONNECTIONS');
  if (many !== undefined) {
    let parsed: unknown;
    try {
      parsed = JSON.parse(many);
    } catch {
      problems.push(
        'Set EHR_CONNECTIONS to a JSON array of {"tenant","baseUrl","bearerTokenEnv"? or "auth"?,"poll"?,"pollQuery"?} (it is not valid JSON)',
      );
      return connections;
    }
    if (!Array.isArray(parsed)) {
      problems.push('Set EHR_CONNECTIONS to a JSON array of {"tenant","baseUrl",...} objects');
      return connections;
    }
    parsed.forEach((entry: unknown, index: number) => {
      const e = (entry ?? {}) as Record<string, unknown>;
      const where = `EHR_CONNECTIONS[${index}]`;
      if (typeof e['tenant'] !== 'string' || !TENANT_PATTERN.test(e['tenant']))
        problems.push(`Set ${where}.tenant to a tenant name (letters, digits, '.', '_', '-')`);
      if (typeof e['baseUrl'] !== 'string' || !isUrl(e['baseUrl'])) problems.push(`Set ${where}.baseUrl to the EHR's FHIR base URL`);
      const { token, smartBackend } = readConnectionCredentials(e, where, 'EHR', text, problems);
      const secretEnv = e['subscriptionSecretEnv'];
      const subscriptionSecret = typeof secretEnv === 'string' ? text(secretEnv) : undefined;
      if (secretEnv !== undefined && subscriptionSecret === undefined)
        problems.push(
          `Set ${typeof secretEnv === 'string' ? secretEnv : JSON.stringify(secretEnv)} (named by ${where}.subscriptionSecretEnv) to the secret the EHR's Subscription sends as its channel header`,
        );
      else if (subscriptionSecret !== undefined && subscriptionSecret.length < 16)
        problems.push(`Set ${String(secretEnv)} (named by ${where}.subscriptionSecretEnv) to a secret of at least 16 characters`);
      const pollQuery = e['pollQuery'];
      if (
        pollQuery !== undefined &&
        (typeof pollQuery !== 'object' || pollQuery === null || Object.values(pollQuery).some((v) => typeof v !== 'string'))
      ) {
        problems.push(`Set ${where}.pollQuery to an object of search parameters with string values`);
      }
      if (typeof e['tenant'] === 'string' && typeof e['baseUrl'] === 'string') {
        connections.push({
          tenant: e['tenant'],
          baseUrl: e['baseUrl'].replace(/\/+$/, ''),
          ...(token !== undefined ? { bearerToken: token } : {}),
          ...(smartBackend !== undefined ? { smartBackend } : {}),
          ...(subscriptionSecret !== undefined ? { subscriptionSecret } : {}),
          poll: e['poll'] !== false,
          ...(pollQuery !== undefined ? { pollQuery: pollQuery as Record<string, string> } : {}),
        });
      }
    });
  }
  const tenants = connections.map((c) => c.tenant);
  const duplicated = tenants.filter((t, i) => tenants.indexOf(t) !== i);
  if (duplicated.length > 0)
    problems.push(
      `Each tenant may have one EHR connection; ${[...new Set(duplicated)].join(', ')} has more (EHR_FHIR_BASE_URL counts for ${defaultTenant})`,
    );
  return connections;
}

/**
 * A connection entry's credentials: a bearer token from the variable its `bearerTokenEnv` names, or
 * SMART Backend Services `auth`, not both. `party` ('EHR', 'payer') names whose token it is.
 */
function readConnectionCredentials(
  entry: Record<string, unknown>,
  where: string,
  party: string,
  text: (name: string) => string | undefined,
  problems: string[],
): { token: string | undefined; smartBackend: ReturnType<typeof readSmartBackendAuth> } {
  const tokenEnv = entry['bearerTokenEnv'];
  const token = typeof tokenEnv === 'string' ? text(tokenEnv) : undefined;
  if (typeof tokenEnv === 'string' && token === undefined)
    problems.push(`Set ${tokenEnv} (named by ${where}.bearerTokenEnv) to the ${party}'s bearer token`);
  const smartBackend = readSmartBackendAuth(entry['auth'], where, text, problems);
  if (entry['auth'] !== undefined && tokenEnv !== undefined) problems.push(`Set either ${where}.auth or ${where}.bearerTokenEnv, not both`);
  return { token, smartBackend };
}

/**
 * PAYER_CONNECTIONS: a JSON array of { payer, baseUrl, bearerTokenEnv? }, `payer` being the payer's
 * Organization id in the directory. A payer without a connection cannot confirm eligibility: its
 * members' referrals wait in coverage-problem until one is configured.
 */
function readPayerConnections(text: (name: string) => string | undefined, problems: string[]): PayerConnectionConfig[] {
  const value = text('PAYER_CONNECTIONS');
  if (value === undefined) return [];
  let parsed: unknown;
  try {
    parsed = JSON.parse(value);
  } catch {
    problems.push('Set PAYER_CONNECTIONS to a JSON array of {"payer","baseUrl","bearerTokenEnv"? or "auth"?} (it is not valid JSON)');
    return [];
  }
  if (!Array.isArray(parsed)) {
    problems.push('Set PAYER_CONNECTIONS to a JSON array of {"payer","baseUrl","bearerTokenEnv"?} objects');
    return [];
  }
  const connections: PayerConnectionConfig[] = [];
  parsed.forEach((entry: unknown, index: number) => {
    const e = (entry ?? {}) as Record<string, unknown>;
    const where = `PAYER_CONNECTIONS[${index}]`;
    const payer = e['payer'];
    const baseUrl = e['baseUrl'];
    if (typeof payer !== 'string' || !isFhirId(payer)) problems.push(`Set ${where}.payer to the payer's Organization id in the directory`);
    if (typeof baseUrl !== 'string' || !/^https?:\/\/[^\s]+$/.test(baseUrl))
      problems.push(`Set ${where}.baseUrl to the payer's FHIR base URL`);
    const { token, smartBackend } = readConnectionCredentials(e, where, 'payer', text, problems);
    if (typeof payer === 'string' && typeof baseUrl === 'string') {
      connections.push({
        payerOrganizationId: payer,
        baseUrl: baseUrl.replace(/\/+$/, ''),
        ...(token !== undefined ? { bearerToken: token } : {}),
        ...(smartBackend !== undefined ? { smartBackend } : {}),
      });
    }
  });
  const ids = connections.map((c) => c.payerOrganizationId);
  const duplicated = ids.filter((id, i) => ids.indexOf(id) !== i);
  if (duplicated.length > 0) problems.push(`Each payer may have one connection; ${[...new Set(duplicated)].join(', ')} has more`);
  return connections;
}

function readSchedulingConfig({ text, integer, cron, problems }: Settings): SchedulingConfig {
  const lateReschedule = (text('LATE_RESCHEDULE') ?? 'refuse') as SchedulingConfig['lateReschedule'];
  if (lateReschedule !== 'refuse' && lateReschedule !== 'flag')
    problems.push(`Set LATE_RESCHEDULE to refuse or flag (got '${String(lateReschedule)}')`);
  const hoursText = text('REMINDER_HOURS') ?? '72,24';
  const reminderHours = hoursText.split(',').map((h) => Number(h.trim()));
  if (reminderHours.some((h) => !Number.isInteger(h) || h < 1 || h > 24 * 30))
    problems.push(`Set REMINDER_HOURS to whole hours before the visit, comma-separated, such as 72,24 (got '${hoursText}')`);
  const reminderCron = cron('REMINDER_CRON', '0 */5 * * * *');
  // Its problem has always quoted the reminders' example.
  const noShowCron = cron('NO_SHOW_CRON', '0 */15 * * * *', '0 */5 * * * *');
  const feeText = text('NO_SHOW_FEE') ?? '50 USD';
  const fee = /^(\d+(?:\.\d{1,2})?)\s+([A-Z]{3})$/.exec(feeText);
  if (!fee) problems.push(`Set NO_SHOW_FEE to an amount and an ISO 4217 currency such as '50 USD' (got '${feeText}')`);
  const webhook = text('NOTIFIER_WEBHOOK_URL');
  if (webhook !== undefined && !/^https?:\/\/[^\s]+$/.test(webhook)) problems.push('Set NOTIFIER_WEBHOOK_URL to an absolute http(s) URL');
  return {
    holdMinutes: integer('HOLD_MINUTES', 10, 1, 24 * 60),
    findDays: integer('FIND_DAYS', 60, 1, 366),
    stepMinutes: integer('FIND_STEP_MINUTES', 15, 5, 120),
    lateReschedule,
    reminderHours: [...new Set(reminderHours)].sort((a, b) => b - a),
    reminderCron,
    noShowCron,
    noShowGraceMinutes: integer('NO_SHOW_GRACE_MINUTES', 30, 0, 24 * 60),
    noShowFee: { value: fee ? Number(fee[1]) : 0, currency: fee?.[2] ?? 'USD' },
    ...(webhook !== undefined ? { notifierWebhookUrl: webhook } : {}),
    renewalNoticeDays: integer('RENEWAL_NOTICE_DAYS', 30, 1, 365),
  };
}
