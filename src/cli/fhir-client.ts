/**
 * The CLI's FHIR calls to a gateway or an EHR: fetch with FHIR JSON, and the credentials every
 * request carries: a bearer token (`--token` or `GATEWAY_TOKEN`), or the command acts as a SMART
 * Backend Services client (`--client <id>` with its private key in `--key-file`, default the demo
 * keys; https://hl7.org/fhir/smart-app-launch/STU2/backend-services.html) through the gateway's
 * own token source (src/auth/demo-token.ts), which discovers the token endpoint at the FHIR base,
 * keeps the token and renews it when the server answers 401. `credentialsFrom` is the one place
 * that turns options into an Authorization header.
 */
import { clientTokenSource } from '../auth/demo-token.js';
import type { AccessTokenSource } from '../auth/smart-backend-client.js';

export interface Credentials {
  /** The headers that authenticate a request (none when no credentials were given). */
  headers(): Promise<Record<string, string>>;
  /** After a 401: drop the token that was refused and get another; false when there is no way to. */
  renew(): Promise<boolean>;
}

export interface CredentialOptions {
  token?: string;
  tenant?: string;
  /** SMART Backend Services client id (its key in keyFile). */
  client?: string;
  keyFile?: string;
}

/** Credentials from the command's options, else the environment (GATEWAY_TOKEN); `fhirBase` is where the SMART discovery is. */
export function credentialsFrom(options: CredentialOptions, fhirBase: string, env: NodeJS.ProcessEnv = process.env): Credentials {
  const token = options.token ?? (options.client === undefined ? env['GATEWAY_TOKEN'] : undefined);
  // The gateway takes the tenant from the client's registration; X-Tenant-Id is for gateways without authentication.
  const tenant = options.tenant;
  let source: Promise<AccessTokenSource> | undefined;
  let current: string | undefined;
  const smart = (): Promise<AccessTokenSource> =>
    (source ??= clientTokenSource({
      clientId: options.client!,
      fhirBaseUrl: fhirBase,
      ...(options.keyFile !== undefined ? { keysFile: options.keyFile } : {}),
    }));
  return {
    headers: async () => {
      if (options.client !== undefined) current = await (await smart()).token();
      const bearer = options.client !== undefined ? current : token;
      return {
        ...(bearer ? { authorization: `Bearer ${bearer}` } : {}),
        ...(tenant ? { 'x-tenant-id': tenant } : {}),
      };
    },
    renew: async () => {
      if (options.client === undefined || current === undefined) return false;
      current = await (await smart()).renew(current);
      return true;
    },
  };
}

export interface FhirReply {
  status: number;
  headers: Headers;
  body: any;
  /** The body when it was not JSON. */
  text: string;
}

export class FhirClient {
  readonly base: string;
  readonly #credentials: Credentials;
  readonly #timeoutMs: number;

  constructor(base: string, credentials: Credentials, options: { timeoutMs?: number } = {}) {
    this.base = base.replace(/\/+$/, '');
    this.#credentials = credentials;
    this.#timeoutMs = options.timeoutMs ?? 30_000;
  }

  /** A path relative to the base (`ServiceRequest?...`), or an absolute URL (a Bundle's next link). */
  url(path: string): string {
    return /^https?:\/\//.test(path) ? path : `${this.base}/${path.replace(/^\/+/, '')}`;
  }

  async request(
    method: string,
    path: string,
    options: { body?: string | object; contentType?: string; headers?: Record<string, string> } = {},
  ): Promise<FhirReply> {
    const reply = await this.#send(method, path, options);
    // A token that expired or was revoked meanwhile: renewed once, the request sent again.
    if (reply.status === 401 && (await this.#credentials.renew())) return this.#send(method, path, options);
    return reply;
  }

  async #send(
    method: string,
    path: string,
    options: { body?: string | object; contentType?: string; headers?: Record<string, string> },
  ): Promise<FhirReply> {
    const headers: Record<string, string> = { accept: 'application/fhir+json', ...(await this.#credentials.headers()), ...options.headers };
    let body: string | undefined;
    if (options.body !== undefined) {
      body = typeof options.body === 'string' ? options.body : JSON.stringify(options.body);
      headers['content-type'] = options.contentType ?? 'application/fhir+json';
    }
    const response = await fetch(this.url(path), {
      method,
      headers,
      ...(body !== undefined ? { body } : {}),
      signal: AbortSignal.timeout(this.#timeoutMs),
    });
    const text = await response.text();
    let parsed: unknown;
    try {
      parsed = text === '' ? undefined : JSON.parse(text);
    } catch {
      parsed = undefined;
    }
    return { status: response.status, headers: response.headers, body: parsed, text };
  }

  get(path: string): Promise<FhirReply> {
    return this.request('GET', path);
  }

  post(path: string, body: string | object, contentType?: string): Promise<FhirReply> {
    return this.request('POST', path, { body, ...(contentType ? { contentType } : {}) });
  }
}

/** The OperationOutcome issues of a reply, as `expression: diagnostics` lines. */
export function issueLines(body: any): string[] {
  if (body?.resourceType !== 'OperationOutcome') return [];
  return (body.issue ?? []).map((i: any) =>
    `${i.severity} ${i.code} ${(i.expression ?? []).join(', ') || '-'}: ${i.diagnostics ?? ''}`.trim(),
  );
}
