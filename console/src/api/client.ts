/**
 * The one way the console talks to the gateway. Every call goes through here, so that:
 * - the session supplies who is calling: the person's bearer token in Authorization (and, with
 *   AUTH=off only, the X-Tenant-Id header); a 401 ends the session, so the person signs in again;
 * - a refusal becomes an ApiError carrying the OperationOutcome's issues as readable messages;
 * - paging follows the links the server wrote (api/links.ts), never a hand-built `_offset`;
 * - nothing is kept in the browser's HTTP cache (`no-store`): the answers carry patient data.
 * URLs carry ids and the FHIR search parameters the API needs, never a name or other PHI.
 */
import type { Bundle, OperationOutcome, Parameters, Resource } from 'fhir/r4.js';
import { linkOf, sameOriginPath, type PageRelation } from './links.js';
import { isOperationOutcome, issueMessages, statusMessage, type IssueMessage } from './outcome.js';
import { currentSession, updateSession, type ConsoleConfig } from './session.js';

export class ApiError extends Error {
  readonly status: number;
  readonly outcome: OperationOutcome | undefined;
  readonly messages: IssueMessage[];

  constructor(status: number, outcome: OperationOutcome | undefined) {
    const messages = outcome ? issueMessages(outcome) : [];
    super(messages.length > 0 ? messages.map((m) => m.text).join(' ') : statusMessage(status));
    this.name = 'ApiError';
    this.status = status;
    this.outcome = outcome;
    this.messages = messages.length > 0 ? messages : [{ severity: 'error', text: statusMessage(status), where: [] }];
  }
}

export type SearchParams = ReadonlyArray<readonly [string, string]>;

interface CallOptions {
  method?: 'GET' | 'POST' | 'PUT';
  body?: unknown;
  headers?: Record<string, string>;
  signal?: AbortSignal;
  /** A tenant to name in X-Tenant-Id: an operator's choice (the directory's); with AUTH=off, instead of the session's. */
  tenant?: string;
}

export interface ApiClient {
  readonly config: ConsoleConfig;
  read<T extends Resource>(type: T['resourceType'], id: string, options?: { signal?: AbortSignal }): Promise<T>;
  /** Every version, newest first (https://hl7.org/fhir/R4/http.html#history). */
  history(type: string, id: string): Promise<Bundle>;
  search(type: string, params: SearchParams, options?: { signal?: AbortSignal }): Promise<Bundle>;
  /** The page a searchset links to, as the server wrote the link; undefined when there is none. */
  page(bundle: Bundle, relation: PageRelation, options?: { signal?: AbortSignal }): Promise<Bundle | undefined>;
  /** A page by a link the server wrote earlier (e.g. the `self` link of the page shown). */
  follow(link: string, options?: { signal?: AbortSignal }): Promise<Bundle>;
  /**
   * PUT with If-Match on the version read, so a change made meanwhile is not overwritten (412).
   * `asTenant` (an operator's choice of tenant: sent as X-Tenant-Id with or without a token): the directory's tenant, for
   * an operator's change of a directory site.
   */
  update<T extends Resource>(resource: T & { id: string }, options?: { asTenant?: string }): Promise<T>;
  /** A FHIR operation, e.g. `Task/123/$confirm-site` with a Parameters body, or GET with query parameters. */
  operation<T = Resource>(
    path: string,
    options?: { method?: 'GET' | 'POST'; parameters?: Parameters | Resource; query?: SearchParams },
  ): Promise<T>;
  /** The operators' JSON API under /admin. */
  admin<T>(path: string, options?: { method?: 'GET' | 'POST' }): Promise<T>;
}

function queryString(params: SearchParams): string {
  return params.map(([k, v]) => `${encodeURIComponent(k)}=${encodeURIComponent(v)}`).join('&');
}

export function createApiClient(config: ConsoleConfig, options: { fetch?: typeof fetch; origin?: string } = {}): ApiClient {
  const doFetch = options.fetch ?? ((input: RequestInfo | URL, init?: RequestInit) => fetch(input, init));
  const origin = options.origin ?? globalThis.location?.origin ?? 'http://localhost';
  const fhirBase = config.fhirBase.replace(/\/+$/, '');

  async function call<T>(path: string, init: CallOptions = {}): Promise<T> {
    const session = currentSession();
    const headers: Record<string, string> = { accept: 'application/fhir+json, application/json', ...init.headers };
    if (session.accessToken !== undefined) {
      headers['authorization'] = `Bearer ${session.accessToken}`;
      // With a token the tenant is the token's; only an operator names another (the directory's).
      if (init.tenant !== undefined) headers['x-tenant-id'] = init.tenant;
    } else headers['x-tenant-id'] = init.tenant ?? session.tenant;
    let body: string | undefined;
    if (init.body !== undefined) {
      body = JSON.stringify(init.body);
      headers['content-type'] = 'application/fhir+json';
    }
    let response: Response;
    try {
      response = await doFetch(path, {
        method: init.method ?? (body === undefined ? 'GET' : 'POST'),
        headers,
        cache: 'no-store',
        credentials: 'same-origin',
        ...(body !== undefined ? { body } : {}),
        ...(init.signal ? { signal: init.signal } : {}),
      });
    } catch (error) {
      if ((error as Error).name === 'AbortError') throw error;
      throw new ApiError(0, undefined);
    }
    const text = await response.text();
    let parsed: unknown;
    try {
      parsed = text === '' ? undefined : JSON.parse(text);
    } catch {
      parsed = undefined;
    }
    if (response.status === 401 && session.accessToken !== undefined && currentSession().accessToken === session.accessToken) {
      // The token ended (or was refused): the person signs in again; the page they were on stays in the address bar.
      updateSession({ accessToken: undefined, notice: 'Your session has ended: sign in again.' });
    }
    if (!response.ok) throw new ApiError(response.status, isOperationOutcome(parsed) ? parsed : undefined);
    return parsed as T;
  }

  const follow = (link: string, options: { signal?: AbortSignal } = {}): Promise<Bundle> => {
    const path = sameOriginPath(link, fhirBase, origin);
    if (path === undefined) return Promise.reject(new Error('The server sent a paging link outside its FHIR base; it was not followed'));
    return call<Bundle>(path, options);
  };

  return {
    config,
    read: (type, id, options = {}) => call(`${fhirBase}/${type}/${encodeURIComponent(id)}`, options),
    history: (type, id) => call(`${fhirBase}/${type}/${encodeURIComponent(id)}/_history`),
    search: (type, params, options = {}) => call(`${fhirBase}/${type}${params.length > 0 ? `?${queryString(params)}` : ''}`, options),
    page: async (bundle, relation, options = {}) => {
      const link = linkOf(bundle, relation);
      return link === undefined ? undefined : follow(link, options);
    },
    follow,
    update: (resource, options = {}) =>
      call(`${fhirBase}/${resource.resourceType}/${encodeURIComponent(resource.id)}`, {
        method: 'PUT',
        body: resource,
        ...(options.asTenant !== undefined ? { tenant: options.asTenant } : {}),
        ...(resource.meta?.versionId !== undefined ? { headers: { 'if-match': `W/"${resource.meta.versionId}"` } } : {}),
      }),
    operation: (path, options = {}) => {
      const query = options.query && options.query.length > 0 ? `?${queryString(options.query)}` : '';
      return call(`${fhirBase}/${path}${query}`, {
        method: options.method ?? (options.parameters === undefined ? 'GET' : 'POST'),
        ...(options.parameters !== undefined ? { body: options.parameters } : {}),
      });
    },
    admin: (path, options = {}) => call(`${config.adminBase.replace(/\/+$/, '')}/${path}`, { method: options.method ?? 'GET' }),
  };
}
