/**
 * The registered clients (AUTH_CLIENTS, or the demo registry in fixtures/clients/), validated at
 * start-up against profiles/auth-clients.schema.json with every problem named. Each client's keys
 * come from its inline JWKS or its jwksUri; keys fetched from a jwksUri are cached and fetched
 * again when an assertion names a kid the cache does not hold (jose's remote key set does both).
 */
import { createLocalJWKSet, createRemoteJWKSet, type JSONWebKeySet, type JWTVerifyGetKey } from 'jose';
import type { Role } from './caller.js';
import { schemaIssues } from '../directory/rules/json-document-issues.js';
import { DocumentIssuesError } from './document-issues-error.js';
import { documentSchemaValidators } from '../fhir/validation/document-schemas.js';

export interface RegisteredClient {
  clientId: string;
  name: string;
  role: Role;
  tenant?: string;
  payer?: string;
  scopes: string[];
  jwks?: JSONWebKeySet;
  jwksUri?: string;
}

export interface ClientRegistry {
  readonly demoOnly: boolean;
  find(clientId: string): RegisteredClient | undefined;
  /** The key that verifies this client's assertion, by the assertion header's kid. */
  keyFor(client: RegisteredClient): JWTVerifyGetKey;
  all(): readonly RegisteredClient[];
}

const validateRegistry = documentSchemaValidators.authClients;

export class ClientRegistryError extends DocumentIssuesError {
  override readonly name = 'ClientRegistryError';
}

/** Validates a registry document; throws with every problem found. */
export function parseClientRegistry(document: unknown, where: string): ClientRegistry {
  if (!validateRegistry(document)) throw new ClientRegistryError(where, schemaIssues(validateRegistry.errors ?? [], 'clients'));
  const { clients, demoOnly } = document as { clients: RegisteredClient[]; demoOnly?: boolean };
  const duplicate = clients.find((client, index) => clients.findIndex((c) => c.clientId === client.clientId) !== index);
  if (duplicate)
    throw new ClientRegistryError(where, [
      { severity: 'error', code: 'duplicate', diagnostics: `clientId ${duplicate.clientId} is registered twice`, expression: ['clients'] },
    ]);
  const byId = new Map(clients.map((client) => [client.clientId, client]));
  const keySets = new Map<string, JWTVerifyGetKey>();
  return {
    demoOnly: demoOnly === true,
    find: (clientId) => byId.get(clientId),
    all: () => clients,
    keyFor(client) {
      let keys = keySets.get(client.clientId);
      if (keys === undefined) {
        keys = client.jwks
          ? createLocalJWKSet(client.jwks)
          : createRemoteJWKSet(new URL(client.jwksUri!), { cooldownDuration: 30_000, cacheMaxAge: 10 * 60_000 });
        keySets.set(client.clientId, keys);
      }
      return keys;
    },
  };
}
