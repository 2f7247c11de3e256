/**
 * The CLI's FHIR calls to a gateway or an EHR: fetch with FHIR JSON, and the credentials every
 * request carries. Today a bearer token (`--token` or `GATEWAY_TOKEN`); SMART Backend Services
 * (`--client-id` and `--key-file`, https://hl7.org/fhir/smart-app-launch/backend-services.html)
 * plugs in at `credentialsFrom`, the one place that turns options into an Authorization header.
 */

export interface Credentials {
  /** The headers that authenticate a request (none when no credentials were given). */
  headers(): Promise<Record<string, string>>;
}

export interface CredentialOptions {
  token?: string;
  tenant?: string;
}

/** Credentials from the command's options, else the environment (GATEWAY_TOKEN). */
export function credentialsFrom(options: CredentialOptions, env: NodeJS.ProcessEnv = process.env): Credentials {
  const token = options.token ?? env['GATEWAY_TOKEN'];
  // Until client authentication lands, the gateway takes the tenant from X-Tenant-Id.
  const tenant = options.tenant;
  return {
    headers: async () => ({
      ...(token ? { authorization: `Bearer ${token}` } : {}),
      ...(tenant ? { 'x-tenant-id': tenant } : {}),
    }),
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

  async request(method: string, path: string, options: { body?: string | object; contentType?: string; headers?: Record<string, string> } = {}): Promise<FhirReply> {
    const headers: Record<string, string> = { accept: 'application/fhir+json', ...(await this.#credentials.headers()), ...options.headers };
    let body: string | undefined;
    if (options.body !== undefined) {
      body = typeof options.body === 'string' ? options.body : JSON.stringify(options.body);
      headers['content-type'] = options.contentType ?? 'application/fhir+json';
    }
    const response = await fetch(this.url(path), { method, headers, ...(body !== undefined ? { body } : {}), signal: AbortSignal.timeout(this.#timeoutMs) });
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
  return (body.issue ?? []).map((i: any) => `${i.severity} ${i.code} ${(i.expression ?? []).join(', ') || '-'}: ${i.diagnostics ?? ''}`.trim());
}
