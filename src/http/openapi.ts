/**
 * The OpenAPI 3.1 description of the gateway (https://spec.openapis.org/oas/v3.1.0), generated
 * from what the server already publishes and runs on: the CapabilityStatement (types, interactions,
 * search parameters, operations), the OperationDefinitions in profiles/ (each operation's inputs),
 * and the routes outside the FHIR API. It is never written by hand, so it cannot drift from the
 * server. Served at /openapi.json, rendered at /api-docs.
 *
 * FHIR resources are described by reference to the FHIR specification rather than repeated as
 * JSON Schema: each body schema names its resourceType and links the resource's page.
 */
import type {
  CapabilityStatement,
  CapabilityStatementRestResource,
  CapabilityStatementRestResourceInteraction,
  OperationDefinition,
  OperationDefinitionParameter,
} from 'fhir/r4.js';
import { RESOURCE_VALIDATE } from './operations/validate.js';

/** A route outside the FHIR interactions (health, operators, notifications, console ...). */
export interface PlainRoute {
  method: 'get' | 'post' | 'put' | 'delete';
  /** Express-style path, e.g. `/admin/outbox/:id/retry`. */
  path: string;
  summary: string;
  tag: string;
  /** Who may call it; an empty list for a public route. */
  roles?: readonly string[];
  /** The media type of the body it takes, if any. */
  requestBody?: string;
  responseType?: string;
}

export interface OpenApiInput {
  capabilityStatement: CapabilityStatement;
  operationDefinitions: readonly OperationDefinition[];
  plainRoutes: readonly PlainRoute[];
  /** Where the FHIR API is mounted, e.g. `/fhir`. */
  fhirBase: string;
  /** The SMART token endpoint, when authentication is on: it becomes an OAuth 2.0 client-credentials scheme. */
  tokenUrl?: string;
}

type Json = Record<string, unknown>;

const FHIR_JSON = 'application/fhir+json';
const R4 = 'https://hl7.org/fhir/R4';

const resourceSchema = (type: string): Json =>
  type === 'Resource'
    ? {
        type: 'object',
        required: ['resourceType'],
        properties: { resourceType: { type: 'string' } },
        description: `Any FHIR R4 resource (${R4}/resourcelist.html)`,
      }
    : { $ref: `#/components/schemas/${type}` };

const fhirContent = (type: string): Json => ({ [FHIR_JSON]: { schema: resourceSchema(type) } });

const errorResponses = (): Json => ({
  default: {
    description: 'Refused: an OperationOutcome naming every issue, each with a FHIRPath expression',
    content: fhirContent('OperationOutcome'),
  },
});

const idParameter = { name: 'id', in: 'path', required: true, schema: { type: 'string', pattern: '^[A-Za-z0-9\\-.]{1,64}$' } };

/** FHIR search parameter types as query strings (https://hl7.org/fhir/R4/search.html#ptypes). */
function searchParameters(resource: CapabilityStatementRestResource): Json[] {
  const own = (resource.searchParam ?? []).map((p) => ({
    name: p.name,
    in: 'query',
    required: false,
    description: `${p.documentation ?? ''} (FHIR ${p.type} parameter: ${R4}/search.html#${p.type})`.trim(),
    schema: { type: 'string' },
  }));
  const paging = ['_count', '_sort', '_total', '_lastUpdated'].map((name) => ({
    name,
    in: 'query',
    required: false,
    description: `${R4}/search.html#${name === '_lastUpdated' ? 'lastUpdated' : name.slice(1)}`,
    schema: { type: 'string' },
  }));
  return [...own, ...paging.filter((p) => !own.some((o) => o.name === p.name))];
}

const PRIMITIVE_SCHEMA: Record<string, Json> = {
  boolean: { type: 'boolean' },
  integer: { type: 'integer' },
  positiveInt: { type: 'integer', minimum: 1 },
  unsignedInt: { type: 'integer', minimum: 0 },
  decimal: { type: 'number' },
};

function isPrimitive(type: string | undefined): boolean {
  return type !== undefined && /^[a-z]/.test(type);
}

/** Operations without side effects and with primitive inputs only may be called with GET (https://hl7.org/fhir/R4/operations.html#request). */
function allowsGet(definition: OperationDefinition): boolean {
  return !definition.affectsState && inputs(definition).every((p) => isPrimitive(p.type) || p.type === 'Reference');
}

function inputs(definition: OperationDefinition): OperationDefinitionParameter[] {
  return (definition.parameter ?? []).filter((p) => p.use === 'in');
}

function parameterText(parameter: OperationDefinitionParameter): string {
  return `${parameter.name} (${parameter.type ?? 'parts'}, ${parameter.min}..${parameter.max})${parameter.documentation ? `: ${parameter.documentation}` : ''}`;
}

function returnType(definition: OperationDefinition): string {
  return (definition.parameter ?? []).find((p) => p.use === 'out' && p.name === 'return')?.type ?? 'Parameters';
}

function operationObject(
  definition: OperationDefinition,
  method: 'get' | 'post',
  tag: string,
  security: Json[] | undefined,
  fhirBase: string,
): Json {
  const description = [
    definition.description ?? definition.title ?? definition.name,
    '',
    `Defined by ${definition.url ?? definition.id} (GET ${fhirBase}/OperationDefinition/${definition.id}).`,
    ...(inputs(definition).length > 0 ? ['', 'Inputs:', ...inputs(definition).map((p) => `- ${parameterText(p)}`)] : []),
  ].join('\n');
  const operation: Json = {
    tags: [tag],
    summary: definition.title ?? `$${definition.code}`,
    operationId: `${method}-${definition.id}`,
    description,
    responses: { '200': { description: 'Done', content: fhirContent(returnType(definition)) }, ...errorResponses() },
  };
  if (security) operation['security'] = security;
  if (method === 'get') {
    operation['parameters'] = inputs(definition).map((p) => ({
      name: p.name,
      in: 'query',
      required: p.min > 0,
      description: p.documentation ?? '',
      schema: PRIMITIVE_SCHEMA[p.type ?? ''] ?? { type: 'string' },
    }));
  } else {
    operation['requestBody'] = { required: inputs(definition).some((p) => p.min > 0), content: fhirContent('Parameters') };
  }
  return operation;
}

/** Express path syntax (`:id`, `*rest`) as OpenAPI path templating (`{id}`). */
function toOpenApiPath(path: string): string {
  return path.replace(/[:*]([A-Za-z_]+)/g, '{$1}');
}

/** A REST interaction a resource type may declare (`rest.resource.interaction.code`), as an OpenAPI operation. */
interface Interaction {
  code: CapabilityStatementRestResourceInteraction['code'];
  method: 'get' | 'post' | 'put';
  /** After `{fhirBase}/{type}`. */
  path: string;
  summary: (type: string) => string;
  /** The description of its success answer, whose content is the resource or, where `bundle`, a Bundle. */
  answer: string;
  /** The operation id is `{operationIdPrefix}-{type}`; by default the code. */
  operationIdPrefix: string;
  /** The success status: 200, 201 for create. */
  status: '200' | '201';
  bundle: boolean;
  parameters?: (resource: CapabilityStatementRestResource) => Json[];
  /** Whether the resource's `documentation` describes it. */
  documented: boolean;
  /** Whether it takes the resource as its body. */
  body: boolean;
}

/** One row of INTERACTIONS: what is not given is the common case (200, no body, the code as operation id). */
function interaction(
  code: Interaction['code'],
  method: Interaction['method'],
  path: string,
  summary: Interaction['summary'],
  answer: string,
  more: Partial<Pick<Interaction, 'operationIdPrefix' | 'status' | 'bundle' | 'parameters' | 'documented' | 'body'>> = {},
): Interaction {
  return {
    code,
    method,
    path,
    summary,
    answer,
    operationIdPrefix: code,
    status: '200',
    bundle: false,
    documented: false,
    body: false,
    ...more,
  };
}

const ifMatchParameter = {
  name: 'If-Match',
  in: 'header',
  required: false,
  schema: { type: 'string' },
  description: `${R4}/http.html#concurrency`,
};
const vidParameter = { name: 'vid', in: 'path', required: true, schema: { type: 'string' } };

/** In the order the document lists them. https://hl7.org/fhir/R4/http.html */
const INTERACTIONS: readonly Interaction[] = [
  interaction('search-type', 'get', '', (type) => `Search ${type}`, 'A searchset Bundle', {
    operationIdPrefix: 'search',
    parameters: searchParameters,
    bundle: true,
  }),
  interaction('create', 'post', '', (type) => `Create a ${type}`, 'Created', { status: '201', documented: true, body: true }),
  interaction('read', 'get', '/{id}', (type) => `Read a ${type}`, 'The current version', { parameters: () => [idParameter] }),
  interaction('update', 'put', '/{id}', (type) => `Update a ${type}`, 'The new version', {
    parameters: () => [idParameter, ifMatchParameter],
    body: true,
  }),
  interaction('vread', 'get', '/{id}/_history/{vid}', (type) => `Read one version of a ${type}`, 'That version', {
    parameters: () => [idParameter, vidParameter],
  }),
  interaction('history-instance', 'get', '/{id}/_history', (type) => `The versions of a ${type}`, 'A history Bundle', {
    operationIdPrefix: 'history',
    parameters: () => [idParameter],
    bundle: true,
  }),
];

/** The operation object of one interaction on one resource type. */
function interactionOperation(interaction: Interaction, resource: CapabilityStatementRestResource): Json {
  const type = resource.type;
  return {
    tags: [`FHIR: ${type}`],
    summary: interaction.summary(type),
    operationId: `${interaction.operationIdPrefix}-${type}`,
    ...(interaction.documented && resource.documentation ? { description: resource.documentation } : {}),
    ...(interaction.parameters ? { parameters: interaction.parameters(resource) } : {}),
    ...(interaction.body ? { requestBody: { required: true, content: fhirContent(type) } } : {}),
    responses: {
      [interaction.status]: { description: interaction.answer, content: fhirContent(interaction.bundle ? 'Bundle' : type) },
      ...errorResponses(),
    },
  };
}

/** The `$operations` a resource type declares, at type and instance level, by GET where allowed and POST. */
function resourceOperations(
  resource: CapabilityStatementRestResource,
  definitionsByUrl: ReadonlyMap<string, OperationDefinition>,
  security: Json[] | undefined,
  fhirBase: string,
): Array<{ path: string; method: string; operation: Json }> {
  const type = resource.type;
  const found: Array<{ path: string; method: string; operation: Json }> = [];
  for (const declared of resource.operation ?? []) {
    const definition = definitionsByUrl.get(declared.definition);
    if (!definition) continue;
    const operationPaths: string[] = [];
    if (definition.type) operationPaths.push(`${fhirBase}/${type}/$${definition.code}`);
    if (definition.instance) operationPaths.push(`${fhirBase}/${type}/{id}/$${definition.code}`);
    for (const path of operationPaths) {
      const methods: Array<'get' | 'post'> = allowsGet(definition) ? ['get', 'post'] : ['post'];
      for (const method of methods) {
        const operation = operationObject(definition, method, `FHIR: ${type}`, security, fhirBase);
        operation['operationId'] = `${method}-${type}-${definition.code}${path.includes('{id}') ? '-instance' : ''}`;
        if (path.includes('{id}')) operation['parameters'] = [idParameter, ...((operation['parameters'] as Json[] | undefined) ?? [])];
        found.push({ path, method, operation });
      }
    }
  }
  return found;
}

/** A route outside FHIR: public ones say so with an empty `security`, the others name their roles. */
function plainRouteOperation(route: PlainRoute, security: Json[] | undefined): Json {
  const parameters = [...route.path.matchAll(/[:*]([A-Za-z_]+)/g)].map((m) => ({
    name: m[1],
    in: 'path',
    required: true,
    schema: { type: 'string' },
  }));
  const isPublic = route.roles === undefined || route.roles.length === 0;
  return {
    tags: [route.tag],
    summary: route.summary,
    operationId: `${route.method}-${route.path.replace(/[^A-Za-z0-9]+/g, '-').replace(/^-|-$/g, '')}`,
    ...(isPublic
      ? { security: [] }
      : security
        ? { security, description: `Roles: ${route.roles!.join(', ')}` }
        : { description: `Roles: ${route.roles!.join(', ')}` }),
    ...(parameters.length > 0 ? { parameters } : {}),
    ...(route.requestBody ? { requestBody: { required: true, content: { [route.requestBody]: { schema: { type: 'object' } } } } } : {}),
    responses: {
      '200': { description: 'OK', content: { [route.responseType ?? 'application/json']: { schema: {} } } },
      default: { description: 'Refused', content: { [FHIR_JSON]: { schema: resourceSchema('OperationOutcome') } } },
    },
  };
}

/** A loose schema per resource type named anywhere in the paths: the resourceType is checked, the rest is FHIR's. */
function resourceSchemas(types: Iterable<string>): Record<string, Json> {
  const schemas: Record<string, Json> = {};
  for (const type of [...types].sort()) {
    schemas[type] = {
      type: 'object',
      required: ['resourceType'],
      properties: { resourceType: { const: type } },
      additionalProperties: true,
      description: `A FHIR R4 ${type}: ${R4}/${type.toLowerCase()}.html`,
      externalDocs: { url: `${R4}/${type.toLowerCase()}.html` },
    };
  }
  return schemas;
}

/** The OperationDefinitions by canonical URL and by `OperationDefinition/{id}`, the two ways a statement names one. */
function definitionsByReference(definitions: readonly OperationDefinition[]): Map<string, OperationDefinition> {
  const byReference = new Map<string, OperationDefinition>();
  for (const definition of [RESOURCE_VALIDATE, ...definitions]) {
    if (definition.url) byReference.set(definition.url, definition);
    byReference.set(`OperationDefinition/${definition.id}`, definition);
  }
  return byReference;
}

/** Builds the document; pure, so a test can compare it with the routes the server registers. */
export function buildOpenApiDocument(input: OpenApiInput): Json {
  const { capabilityStatement: statement, fhirBase } = input;
  const rest = statement.rest?.[0];
  const definitionsByUrl = definitionsByReference(input.operationDefinitions);
  const security = input.tokenUrl ? [{ smartBackendServices: [] }] : undefined;
  const paths: Record<string, Json> = {};
  const add = (path: string, method: string, operation: Json): void => {
    paths[path] = { ...paths[path], [method]: operation };
  };
  const types = new Set<string>(['OperationOutcome', 'Parameters', 'Bundle', 'CapabilityStatement']);

  add(`${fhirBase}/metadata`, 'get', {
    tags: ['FHIR: conformance'],
    summary: 'The CapabilityStatement',
    operationId: 'capabilities',
    responses: { '200': { description: 'What this server does', content: fhirContent('CapabilityStatement') } },
  });
  if (rest?.interaction?.some((i) => i.code === 'transaction' || i.code === 'batch')) {
    add(`${fhirBase}`, 'post', {
      tags: ['FHIR: system'],
      summary: 'A transaction or batch Bundle',
      operationId: 'transaction',
      description: `${R4}/http.html#transaction`,
      ...(security ? { security } : {}),
      requestBody: { required: true, content: fhirContent('Bundle') },
      responses: {
        '200': { description: 'The transaction-response or batch-response Bundle', content: fhirContent('Bundle') },
        ...errorResponses(),
      },
    });
  }
  for (const resource of rest?.resource ?? []) {
    types.add(resource.type);
    const codes = new Set((resource.interaction ?? []).map((i) => i.code));
    for (const interaction of INTERACTIONS.filter((i) => codes.has(i.code))) {
      const operation = interactionOperation(interaction, resource);
      add(`${fhirBase}/${resource.type}${interaction.path}`, interaction.method, security ? { ...operation, security } : operation);
    }
    for (const { path, method, operation } of resourceOperations(resource, definitionsByUrl, security, fhirBase))
      add(path, method, operation);
  }
  for (const declared of rest?.operation ?? []) {
    const definition = definitionsByUrl.get(declared.definition);
    if (!definition?.system) continue;
    add(`${fhirBase}/$${definition.code}`, 'post', operationObject(definition, 'post', 'FHIR: system', security, fhirBase));
  }
  for (const route of input.plainRoutes) add(toOpenApiPath(route.path), route.method, plainRouteOperation(route, security));
  for (const match of JSON.stringify(paths).matchAll(/#\/components\/schemas\/([A-Za-z]+)/g)) types.add(match[1]!);
  return {
    openapi: '3.1.0',
    info: {
      title: statement.software?.name ?? 'FHIR server',
      version: statement.software?.version ?? '0.0.0',
      description: `${statement.implementation?.description ?? ''}\n\nFHIR ${statement.fhirVersion} (${R4}). Generated from the CapabilityStatement at ${fhirBase}/metadata and the OperationDefinitions it names.`,
    },
    servers: [{ url: '/' }],
    tags: [...new Set(Object.values(paths).flatMap((item) => Object.values(item).flatMap((op) => (op as { tags: string[] }).tags)))]
      .sort()
      .map((name) => ({ name })),
    paths,
    components: {
      schemas: resourceSchemas(types),
      ...(input.tokenUrl ? { securitySchemes: securitySchemes(input.tokenUrl) } : {}),
    },
  };
}

function securitySchemes(tokenUrl: string): Json {
  return {
    smartBackendServices: {
      type: 'oauth2',
      description:
        'SMART Backend Services: client credentials with a signed JWT assertion (https://hl7.org/fhir/smart-app-launch/backend-services.html)',
      flows: { clientCredentials: { tokenUrl, scopes: {} } },
    },
  };
}
