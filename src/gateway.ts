/**
 * Builds a running gateway from a Config: storage, validator, drug catalog, directory, HTTP app.
 * main.ts calls it for production; tests call it with a temporary store and a captured logger.
 */
import { readdir, readFile } from 'node:fs/promises';
import path from 'node:path';
import type { Express } from 'express';
import type { OperationDefinition, OperationOutcomeIssue, Resource } from 'fhir/r4.js';
import { newTimeOrderedId } from './fhir/ids.js';
import { createApp } from './app.js';
import type { Config } from './config/config.js';
import { findDrugByCodings, parseDrugCatalog, type DrugCatalog } from './directory/rules/drug-catalog.js';
import { buildCapabilityStatement } from './fhir/capability-statement.js';
import { FhirValidator } from './fhir/validation/index.js';
import { CONFORMANCE_TYPES } from './http/fhir-handlers.js';
import { routedOperations } from './http/route-table.js';
import type { Logger } from './logging/logger.js';
import type { Clock } from './ports/clock.js';
import type { ResourceStore } from './ports/resource-store.js';
import type { AuthStateStore } from './ports/auth-state.js';
import { ClientRegistryError, parseClientRegistry, type ClientRegistry } from './auth/client-registry.js';
import { loadSigningKeys, SigningKeyError } from './auth/signing-keys.js';
import type { AuthService } from './auth/token-endpoint.js';
import type { ConsoleRouteOptions } from './http/console-routes.js';
import { parseTrustedIssuers, remoteTrustedIssuer, TrustedIssuersError } from './auth/trusted-issuers.js';
import type { DemoIdentityProviderFile } from './auth/demo-identity-provider.js';
import { systemClock } from './adapters/system-clock.js';
import { openStore, type StoreOptions } from './adapters/store/index.js';
import type { GatewayDeps } from './ports/gateway-deps.js';
import { createFhirKitEhr } from './adapters/fhir/fhir-kit-ehr.js';
import { createFhirKitPayer } from './adapters/fhir/fhir-kit-payer.js';
import type { PayerFhir } from './ports/payer-fhir.js';
import { RECORD_ONLY_NOTIFIER } from './ports/notifier.js';
import { createWebhookNotifier } from './adapters/notifier/webhook-notifier.js';
import { parsePriorAuthRules, type PriorAuthRules } from './coverage/rules/prior-auth-rules.js';
import type { EhrFhir } from './ports/ehr-fhir.js';
import { startBackgroundWork, type BackgroundWork } from './jobs/background-work.js';
import { loadDirectory } from './directory/stories/load-directory.js';
import { storedSiteDirectory } from './directory/stories/stored-site-directory.js';
import type { CdsDeps } from './site-check/stories/cds-site-check.js';
import { smartBackendTokenSource } from './auth/smart-backend-client.js';
import { createCdsClientTrust, localIssuer, remoteIssuer, type TrustedCdsIssuer } from './auth/cds-client-trust.js';
import type { CdsTrustedIssuersConfig } from './config/config.js';
import type { JSONWebKeySet } from 'jose';
import { READABLE_TYPES, WRITABLE_TYPES } from './intake/stories/resource-interactions.js';

export interface Gateway {
  app: Express;
  deps: GatewayDeps;
  catalog: DrugCatalog;
  /** The EHR clients, by tenant (empty when write-back is off). */
  ehrClients: ReadonlyMap<string, EhrFhir>;
  /** Starts the outbox worker and the EHR pull jobs; stop() lets work in flight finish. */
  startBackgroundWork(): BackgroundWork;
  close(): Promise<void>;
}

/** Start-up failed for a reason the operator must fix; the message says what. */
export class StartupError extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'StartupError';
  }
}

async function readJsonFile(file: string, what: string, setting: string): Promise<unknown> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (cause) {
    throw new StartupError(`Cannot read the ${what} at ${file}: set ${setting} to a readable file`, { cause });
  }
  try {
    return JSON.parse(text);
  } catch (cause) {
    throw new StartupError(`The ${what} at ${file} is not valid JSON: fix the file or set ${setting}`, { cause });
  }
}

/** Each issue on its own line, where it is (its FHIRPath) and what is wrong: a start-up refusal names every problem. */
function issueList(issues: readonly OperationOutcomeIssue[], where: string): string {
  return issues.map((i) => `\n  - ${i.expression?.join(', ') ?? where}: ${i.diagnostics ?? i.code}`).join('');
}

export async function loadDrugCatalog(file: string): Promise<DrugCatalog> {
  const parsed = parseDrugCatalog(await readJsonFile(file, 'drug catalog', 'DRUG_CATALOG'));
  if (!parsed.catalog) {
    throw new StartupError(`The drug catalog at ${file} is invalid; fix it or set DRUG_CATALOG:${issueList(parsed.issues, '(catalog)')}`);
  }
  return parsed.catalog;
}

export async function loadPriorAuthRules(file: string, catalog: DrugCatalog): Promise<PriorAuthRules> {
  const parsed = parsePriorAuthRules(await readJsonFile(file, 'prior-authorization rules', 'PRIOR_AUTH_RULES'), {
    drugIds: catalog.drugs.map((d) => d.id),
  });
  if (!parsed.rules) {
    const problems = parsed.issues.map((i) => `${i.expression?.join(', ') ?? '(rules)'}: ${i.diagnostics ?? i.code}`);
    throw new StartupError(
      `The prior-authorization rules at ${file} are invalid; fix them or set PRIOR_AUTH_RULES:\n  - ${problems.join('\n  - ')}`,
    );
  }
  return parsed.rules;
}

/** The CodeSystems, ValueSets and OperationDefinitions published in profiles/, beside the validator's StructureDefinitions. */
async function loadConformanceResources(profilesDir: string, validator: FhirValidator): Promise<Map<string, Resource>> {
  const conformance = new Map<string, Resource>();
  for (const profile of validator.profiles()) conformance.set(`StructureDefinition/${profile.id}`, profile);
  for (const file of (await readdir(profilesDir)).filter((f) => f.endsWith('.json')).sort()) {
    const json = (await readJsonFile(path.join(profilesDir, file), 'conformance resource', 'PROFILES_DIR')) as Partial<Resource>;
    if (
      (json.resourceType === 'CodeSystem' || json.resourceType === 'ValueSet' || json.resourceType === 'OperationDefinition') &&
      json.id
    ) {
      conformance.set(`${json.resourceType}/${json.id}`, json as Resource);
    }
  }
  return conformance;
}

/** The store the configuration names, with its limits; a dropped connection is logged, never fatal. */
export function storeOptionsOf(config: Config, logger: Logger): StoreOptions {
  const { poolSize, statementTimeoutMs, connectTimeoutMs, maxWaitingRequests, sqliteSynchronous, preparedStatements } = config.store;
  return {
    ...(config.databaseUrl !== undefined ? { databaseUrl: config.databaseUrl } : { sqliteFile: config.sqliteFile }),
    poolSize,
    statementTimeoutMs,
    connectTimeoutMs,
    maxWaitingRequests,
    sqliteSynchronous,
    preparedStatements,
    // The message can name the host; the code says enough (e.g. 57P01 terminated by an administrator).
    onPoolError: (error) =>
      logger.warn('database connection lost; it will be replaced', { errorCode: (error as { code?: string }).code ?? error.name }),
  };
}

/**
 * Authentication (docs/security.md): the client registry and the signing keys, or nothing when
 * AUTH=off (development only; configuration refuses it in production).
 */
async function loadAuthService(
  config: Config,
  runtime: { logger: Logger; clock: Clock },
  store: AuthStateStore,
): Promise<AuthService | undefined> {
  if (!config.auth.enabled) {
    runtime.logger.warn(
      'AUTHENTICATION IS OFF (AUTH=off): every route answers anyone, and the tenant is whatever X-Tenant-Id says. Local development only.',
    );
    return undefined;
  }
  let registry: ClientRegistry;
  try {
    registry = parseClientRegistry(await readJsonFile(config.auth.clientsFile, 'client registry', 'AUTH_CLIENTS'), 'AUTH_CLIENTS');
  } catch (error) {
    if (error instanceof ClientRegistryError)
      throw new StartupError(
        `The client registry at ${config.auth.clientsFile} is invalid; fix it or set AUTH_CLIENTS:\n  - ${error.message}`,
      );
    throw error;
  }
  if (registry.demoOnly && config.auth.production) {
    throw new StartupError(
      `The client registry at ${config.auth.clientsFile} is the demo one (its keys are public): set AUTH_CLIENTS to your own (NODE_ENV=production)`,
    );
  }
  if (registry.demoOnly) {
    runtime.logger.warn(
      `DEMO CLIENTS IN USE: the client registry is ${config.auth.clientsFile}, whose private keys are public in the repository. For local demos and tests only; set AUTH_CLIENTS before any real data arrives.`,
      { clients: registry.all().map((c) => c.clientId) },
    );
  }
  let keys;
  try {
    keys = await loadSigningKeys({
      ...(config.auth.signingKeysFile !== undefined ? { file: config.auth.signingKeysFile } : {}),
      store,
      now: runtime.clock.now(),
    });
  } catch (error) {
    if (error instanceof SigningKeyError) throw new StartupError(error.message);
    throw error;
  }
  runtime.logger.info(
    keys.source === 'file'
      ? 'access tokens are signed with the keys of AUTH_SIGNING_KEYS'
      : keys.source === 'database-generated'
        ? 'no AUTH_SIGNING_KEYS: generated a signing key pair and kept it in the database, shared by every process of this gateway'
        : 'no AUTH_SIGNING_KEYS: access tokens are signed with the key pair kept in the database',
    { kid: keys.signing.kid, alg: keys.signing.alg },
  );
  const people = await loadPeopleSignIn(config, runtime.logger);
  return {
    keys,
    registry,
    ...people,
    state: store,
    clock: runtime.clock,
    logger: runtime.logger,
    tokenLifetimeSeconds: config.auth.tokenLifetimeSeconds,
    ...(config.publicBaseUrl !== undefined ? { publicBaseUrl: config.publicBaseUrl } : {}),
  };
}

/**
 * People's tokens (docs/security.md): the identity providers of AUTH_TRUSTED_ISSUERS, each checked
 * against profiles/auth-trusted-issuers.schema.json with every problem named; or, outside
 * production with none set, the embedded demo identity provider and its demo users.
 */
async function loadPeopleSignIn(config: Config, logger: Logger): Promise<Pick<AuthService, 'trustedIssuers' | 'demoIdentityProvider'>> {
  const setting = config.auth.trustedIssuers;
  if (setting !== undefined) {
    let document: unknown;
    if (setting.kind === 'file') document = await readJsonFile(setting.file, 'trusted issuers list', 'AUTH_TRUSTED_ISSUERS');
    else {
      try {
        document = JSON.parse(setting.json);
      } catch (cause) {
        throw new StartupError(
          'AUTH_TRUSTED_ISSUERS is not valid JSON: set it to a JSON array (profiles/auth-trusted-issuers.schema.json) or to the path of a file holding one',
          { cause },
        );
      }
    }
    let entries;
    try {
      entries = parseTrustedIssuers(document, 'AUTH_TRUSTED_ISSUERS', { production: config.auth.production });
    } catch (error) {
      if (error instanceof TrustedIssuersError) {
        throw new StartupError(
          `AUTH_TRUSTED_ISSUERS is invalid; fix it:\n  - ${error.issues.map((i) => `${i.expression?.[0] ?? ''}: ${i.diagnostics ?? i.code}`).join('\n  - ')}`,
        );
      }
      throw error;
    }
    const oidc = config.auth.consoleOidc;
    if (oidc !== undefined && !entries.some((entry) => entry.issuer === oidc.issuer)) {
      throw new StartupError(
        `CONSOLE_OIDC_ISSUER (${oidc.issuer}) is not among AUTH_TRUSTED_ISSUERS: the gateway would refuse the tokens the console signs people in for`,
      );
    }
    logger.info('people sign in at trusted identity providers', { issuers: entries.map((entry) => entry.issuer) });
    return { trustedIssuers: entries.map(remoteTrustedIssuer) };
  }
  if (config.auth.demoIdentityProviderFile === undefined || config.auth.production) return { trustedIssuers: [] };
  const file = (await readJsonFile(
    config.auth.demoIdentityProviderFile,
    'demo identity provider',
    'AUTH_TRUSTED_ISSUERS',
  )) as DemoIdentityProviderFile;
  if (file.demoOnly !== true)
    throw new StartupError(`${config.auth.demoIdentityProviderFile} must be marked demoOnly: it is the demo identity provider`);
  // Loaded only when it runs: production never loads the demo provider's code.
  const { createDemoIdentityProvider, DEMO_IDP_PATH } = await import('./auth/demo-identity-provider.js');
  const demo = createDemoIdentityProvider(file, {
    logger,
    ...(config.publicBaseUrl !== undefined ? { publicBaseUrl: config.publicBaseUrl } : {}),
    accessTokenTtlSeconds: 3600,
  });
  logger.warn(
    `DEMO IDENTITY PROVIDER IN USE at ${DEMO_IDP_PATH}: anyone can sign in to the console as its demo users, and its signing key (${config.auth.demoIdentityProviderFile}) is public in the repository. For local demos and tests only; set AUTH_TRUSTED_ISSUERS (and CONSOLE_OIDC_ISSUER, CONSOLE_OIDC_CLIENT_ID) before any real data arrives.`,
    { demoUsers: file.users.map((user) => `${user.sub} (${user.role})`) },
  );
  return { trustedIssuers: [demo.trustedIssuer], demoIdentityProvider: demo };
}

/** Where the console signs people in: CONSOLE_OIDC_*, else the demo identity provider, else nowhere (a pasted token). */
function consoleSignIn(config: Config, auth: AuthService | undefined): Pick<ConsoleRouteOptions, 'signIn'> {
  if (auth === undefined) return {};
  const oidc = config.auth.consoleOidc;
  if (oidc !== undefined) return { signIn: { issuerAt: () => oidc.issuer, clientId: oidc.clientId, scope: oidc.scope, demo: false } };
  const demo = auth.demoIdentityProvider;
  if (demo !== undefined)
    return { signIn: { issuerAt: demo.issuerAt, clientId: demo.consoleClientId, scope: 'openid profile', demo: true } };
  return {};
}

/** The token endpoint as clients see it: absolute with PUBLIC_BASE_URL, else relative to this server. */
/**
 * The canonical URL of the published OperationDefinition of a routed operation; the gateway does
 * not start with a route for an operation profiles/ does not define.
 */
function operationDefinitionUrl(conformance: ReadonlyMap<string, Resource>, operation: { resourceType: string; name: string }): string {
  const definition = [...conformance.values()].find(
    (r): r is OperationDefinition =>
      r.resourceType === 'OperationDefinition' &&
      (r as OperationDefinition).code === operation.name &&
      ((r as OperationDefinition).resource ?? []).includes(operation.resourceType as never),
  );
  if (definition?.url === undefined)
    throw new Error(
      `profiles/ lacks the OperationDefinition of ${operation.resourceType}/$${operation.name}, which the route table routes`,
    );
  return definition.url;
}

function tokenUrlOf(publicBaseUrl: string | undefined): string {
  return publicBaseUrl === undefined ? '/oauth/token' : `${new URL(publicBaseUrl).origin}/oauth/token`;
}

/** How the gateway authenticates to an EHR or payer: a static bearer token, or as a SMART backend client (docs/security-edges.md). */
function connectionCredentials(
  connection: { baseUrl: string; bearerToken?: string; smartBackend?: Parameters<typeof smartBackendTokenSource>[0]['credentials'] },
  clock: Clock,
  timeoutMs: number,
): { bearerToken?: string; accessToken?: ReturnType<typeof smartBackendTokenSource> } {
  return {
    ...(connection.bearerToken !== undefined ? { bearerToken: connection.bearerToken } : {}),
    ...(connection.smartBackend !== undefined
      ? {
          accessToken: smartBackendTokenSource({ fhirBaseUrl: connection.baseUrl, credentials: connection.smartBackend, clock, timeoutMs }),
        }
      : {}),
  };
}

/** One client per configured connection, keyed by `keyOf`, each with its connection's credentials and the request time-out. */
function clientsByConnection<C extends Parameters<typeof connectionCredentials>[0], T>(
  connections: readonly C[],
  keyOf: (connection: C) => string,
  options: { clock: Clock; timeoutMs: number },
  create: (connection: C, credentials: ReturnType<typeof connectionCredentials>, timeoutMs: number) => T,
): Map<string, T> {
  return new Map(
    connections.map((connection) => [
      keyOf(connection),
      create(connection, connectionCredentials(connection, options.clock, options.timeoutMs), options.timeoutMs),
    ]),
  );
}

export async function buildGateway(
  config: Config,
  runtime: { logger: Logger; clock: Clock; store?: ResourceStore & AuthStateStore; softwareVersion?: string },
): Promise<Gateway> {
  const [validator, catalog] = await Promise.all([
    FhirValidator.load({ profilesDir: config.profilesDir }),
    loadDrugCatalog(config.drugCatalogFile),
  ]);
  const store = runtime.store ?? (await openStore(storeOptionsOf(config, runtime.logger)));
  const ehrClients = clientsByConnection(
    config.ehrConnections,
    (connection) => connection.tenant,
    { clock: runtime.clock, timeoutMs: config.ehrRequestTimeoutMs },
    (connection, credentials, timeoutMs): EhrFhir =>
      createFhirKitEhr({ tenant: connection.tenant, baseUrl: connection.baseUrl, ...credentials }, { timeoutMs }),
  );
  if (ehrClients.size === 0) {
    runtime.logger.info(
      'write-back is off: no EHR connection is configured (EHR_FHIR_BASE_URL or EHR_CONNECTIONS); the gateway keeps its resources itself',
    );
  }
  const ehrFor = (tenant: string): EhrFhir | undefined => ehrClients.get(tenant);
  const payerClients = clientsByConnection(
    config.payerConnections,
    (connection) => connection.payerOrganizationId,
    { clock: runtime.clock, timeoutMs: config.payerRequestTimeoutMs },
    (connection, credentials, timeoutMs): PayerFhir =>
      createFhirKitPayer(
        { payerOrganizationId: connection.payerOrganizationId, baseUrl: connection.baseUrl, ...credentials },
        { timeoutMs },
      ),
  );
  const sites = storedSiteDirectory(store, config.directoryTenant);
  const webhookUrl = config.scheduling.notifierWebhookUrl;
  if (webhookUrl === undefined) {
    runtime.logger.info('reminders are recorded, not sent: no notifier is configured (NOTIFIER_WEBHOOK_URL)');
  }
  const deps: GatewayDeps = {
    store,
    validator,
    drugs: { findDrug: (codings) => findDrugByCodings(catalog, codings) },
    clock: runtime.clock,
    logger: runtime.logger,
    tenancy: { directoryTenant: config.directoryTenant },
    sites,
    sitePolicy: config.siteCheck,
    writeBackTenants: new Set(config.ehrConnections.map((c) => c.tenant)),
    newId: newTimeOrderedId,
    ehrFor,
    payerFor: (payerOrganizationId) => payerClients.get(payerOrganizationId),
    priorAuthRules: await loadPriorAuthRules(config.priorAuthRulesFile, catalog),
    automaticCoverage: payerClients.size > 0,
    scheduling: config.scheduling,
    notifier: webhookUrl !== undefined ? createWebhookNotifier({ url: webhookUrl }) : RECORD_ONLY_NOTIFIER,
  };
  if (payerClients.size === 0) {
    runtime.logger.info(
      'the coverage step is manual: no payer connection is configured (PAYER_CONNECTIONS); referrals wait in verifying-coverage',
    );
  }

  if (config.directoryBundle !== undefined) {
    const bundle = await readJsonFile(config.directoryBundle, 'directory bundle', 'DIRECTORY_BUNDLE');
    const loaded = await loadDirectory(deps, bundle);
    if (loaded.kind === 'refused') {
      throw new StartupError(
        `The directory bundle at ${config.directoryBundle} was refused, and nothing of it stored; fix it or set DIRECTORY_BUNDLE:${issueList(loaded.outcome.issue, 'Bundle')}`,
      );
    }
    sites.invalidate();
  }
  // Built now, so that no request waits for it (nor, inside a transaction, for a connection).
  await sites.current();

  const conformance = await loadConformanceResources(config.profilesDir, validator);
  const capabilityStatement = buildCapabilityStatement({
    softwareVersion: runtime.softwareVersion ?? '0.0.0',
    date: runtime.clock.now(),
    readableTypes: READABLE_TYPES,
    writableTypes: WRITABLE_TYPES,
    conformanceTypes: CONFORMANCE_TYPES,
    operations: routedOperations().map((operation) => ({ ...operation, definition: operationDefinitionUrl(conformance, operation) })),
    profiles: validator.profiles().map((p) => ({ url: p.url, type: p.type })),
    ...(config.publicBaseUrl !== undefined ? { implementationUrl: config.publicBaseUrl } : {}),
    ...(config.auth.enabled ? { smartTokenUrl: tokenUrlOf(config.publicBaseUrl) } : {}),
  });

  const cds: CdsDeps = {
    sites,
    sitePolicy: config.siteCheck,
    drugs: { findCatalogDrug: (codings) => findDrugByCodings(catalog, codings) },
    logger: runtime.logger,
    trustedFhirServers: config.cdsTrustedFhirServers,
    validator,
    openFhirServer: (baseUrl, bearerToken) =>
      createFhirKitEhr(
        { tenant: 'cds-hooks', baseUrl, ...(bearerToken !== undefined ? { bearerToken } : {}) },
        { timeoutMs: config.cdsFhirTimeoutMs },
      ),
  };
  // Tokens live in wall-clock time whatever clock the business rules are given (tests move theirs by days).
  const auth = await loadAuthService(config, { logger: runtime.logger, clock: systemClock }, store);
  const subscriptionSecrets = new Map(
    config.ehrConnections.flatMap((c) => (c.subscriptionSecret !== undefined ? [[c.tenant, c.subscriptionSecret] as const] : [])),
  );
  const app = createApp(deps, {
    auth,
    audit: config.audit.enabled,
    ehrFor,
    subscriptionSecretFor: (tenant) => subscriptionSecrets.get(tenant),
    cds,
    cdsClientTrust: createCdsClientTrust({ issuers: await cdsIssuers(config.cdsTrustedIssuers, runtime.logger), clock: runtime.clock }),
    bodyLimitBytes: config.bodyLimitBytes,
    jsonMaxDepth: config.jsonMaxDepth,
    defaultTenant: config.defaultTenant,
    ...(config.publicBaseUrl !== undefined ? { publicBaseUrl: config.publicBaseUrl } : {}),
    capabilityStatement,
    conformance,
    console: {
      defaultTenant: config.defaultTenant,
      directoryTenant: config.directoryTenant,
      siteTooFarKm: config.siteCheck.tooFarKm,
      ...(config.publicBaseUrl !== undefined ? { publicBaseUrl: config.publicBaseUrl } : {}),
      ...consoleSignIn(config, auth),
      connections: [
        ...config.ehrConnections.map((c) => ({ kind: 'ehr' as const, id: c.tenant, baseUrl: c.baseUrl, poll: c.poll })),
        ...config.payerConnections.map((c) => ({ kind: 'payer' as const, id: c.payerOrganizationId, baseUrl: c.baseUrl })),
      ],
    },
  });
  return {
    app,
    deps,
    catalog,
    ehrClients,
    startBackgroundWork: () => startBackgroundWork(config, deps, ehrClients),
    close: () => store.close(),
  };
}

/** The CDS clients whose signed hook calls we accept (see docs/security-edges.md). */
async function cdsIssuers(setting: CdsTrustedIssuersConfig, logger: Logger): Promise<TrustedCdsIssuer[]> {
  if (setting.kind === 'configured') return setting.issuers.map((i) => remoteIssuer(i.iss, i.jwksUrl));
  if (setting.kind === 'none') {
    logger.warn('CDS hook calls are all refused: CDS_TRUSTED_ISSUERS is not set (NODE_ENV=production never trusts the demo issuer)');
    return [];
  }
  const demo = (await readJsonFile(setting.file, 'demo CDS issuer', 'CDS_TRUSTED_ISSUERS')) as { iss: string; jwks: JSONWebKeySet };
  logger.warn('CDS hooks trust the DEMO issuer, whose private key is public: set CDS_TRUSTED_ISSUERS before real use', { iss: demo.iss });
  return [localIssuer(demo.iss, demo.jwks)];
}
