/**
 * Configuration from environment variables, validated once at start-up. Every problem is reported
 * together, each naming the variable to set, so an operator fixes the environment in one go.
 */
import path from 'node:path';

export interface Config {
  port: number;
  host: string;
  /** postgres://... switches storage to PostgreSQL; otherwise the embedded SQLite file. */
  databaseUrl?: string;
  dataDir: string;
  sqliteFile: string;
  /** Transaction Bundle of the network's directory loaded at start-up; undefined = none. */
  directoryBundle?: string;
  drugCatalogFile: string;
  profilesDir: string;
  logLevel: 'error' | 'warn' | 'info' | 'http' | 'debug';
  bodyLimitBytes: number;
  jsonMaxDepth: number;
  /** Absolute base of the FHIR API as clients see it (for Location headers and Bundle links). */
  publicBaseUrl?: string;
  /** Tenant assumed when a request names none (until client authentication arrives). */
  defaultTenant: string;
  /** Tenant that owns the network's directory (Location, HealthcareService, ...). */
  directoryTenant: string;
  shutdownTimeoutMs: number;
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

/** Parses `5mb`, `512kb`, `1048576` into bytes. */
export function parseByteSize(text: string): number | undefined {
  const match = /^\s*(\d+(?:\.\d+)?)\s*(b|kb|mb|gb)?\s*$/i.exec(text);
  if (!match) return undefined;
  const units: Record<string, number> = { b: 1, kb: 1024, mb: 1024 ** 2, gb: 1024 ** 3 };
  return Math.floor(Number(match[1]) * units[(match[2] ?? 'b').toLowerCase()]!);
}

export function loadConfig(env: NodeJS.ProcessEnv, cwd: string = process.cwd()): Config {
  const problems: string[] = [];
  const text = (name: string): string | undefined => {
    const value = env[name]?.trim();
    return value === undefined || value === '' ? undefined : value;
  };
  const integer = (name: string, fallback: number, min: number, max: number): number => {
    const raw = text(name);
    if (raw === undefined) return fallback;
    const value = Number(raw);
    if (!Number.isInteger(value) || value < min || value > max) {
      problems.push(`Set ${name} to a whole number from ${min} to ${max} (got '${raw}')`);
      return fallback;
    }
    return value;
  };
  const resolvePath = (value: string): string => path.resolve(cwd, value);

  const port = integer('PORT', 8080, 0, 65535);
  const jsonMaxDepth = integer('JSON_MAX_DEPTH', 64, 8, 1000);
  const shutdownTimeoutMs = integer('SHUTDOWN_TIMEOUT_MS', 10_000, 0, 600_000);

  const databaseUrl = text('DATABASE_URL');
  if (databaseUrl !== undefined && !/^postgres(ql)?:\/\//.test(databaseUrl)) {
    problems.push(`Set DATABASE_URL to a postgres:// or postgresql:// URL, or unset it for the embedded store (got a value of another scheme)`);
  }

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

  const defaultTenant = text('DEFAULT_TENANT') ?? 'default';
  const directoryTenant = text('DIRECTORY_TENANT') ?? 'network';
  for (const [name, value] of [['DEFAULT_TENANT', defaultTenant], ['DIRECTORY_TENANT', directoryTenant]] as const) {
    if (!TENANT_PATTERN.test(value)) problems.push(`Set ${name} to letters, digits, '.', '_' or '-' (at most 64; got '${value}')`);
  }

  const dataDir = resolvePath(text('DATA_DIR') ?? 'data');
  const directorySetting = text('DIRECTORY_BUNDLE') ?? 'fixtures/directory/demo-directory.bundle.json';

  if (problems.length > 0) throw new ConfigError(problems);
  return {
    port,
    host: text('HOST') ?? '0.0.0.0',
    ...(databaseUrl !== undefined ? { databaseUrl } : {}),
    dataDir,
    sqliteFile: path.join(dataDir, 'gateway.sqlite'),
    ...(directorySetting.toLowerCase() === 'none' ? {} : { directoryBundle: resolvePath(directorySetting) }),
    drugCatalogFile: resolvePath(text('DRUG_CATALOG') ?? 'fixtures/drug-catalog.json'),
    profilesDir: resolvePath(text('PROFILES_DIR') ?? 'profiles'),
    logLevel,
    bodyLimitBytes: bodyLimitBytes as number,
    jsonMaxDepth,
    ...(publicBaseUrl !== undefined ? { publicBaseUrl: publicBaseUrl.replace(/\/+$/, '') } : {}),
    defaultTenant,
    directoryTenant,
    shutdownTimeoutMs,
  };
}
