/**
 * Runs the request collection (requests/*.http) the way VS Code REST Client and httpyac send it, so
 * a test keeps it from going stale. The collection keeps to the subset of the .http format the two
 * share: `###` between requests, `@name = value` variables, `{{name}}`, `{{$processEnv NAME}}`,
 * `{{$timestamp}}`, `{{$guid}}`, `# @name req` with `{{req.response.body.$.json.path}}` (`.*`: the
 * whole body) and `{{req.response.headers.Name}}`, and `< ./file` bodies (`<@`: with variables). Its checks are plain comments both tools ignore (requests/README.md):
 *
 *   # expect 201                          the HTTP status
 *   # expect $.resourceType == Bundle     a value at a JSON path of the body
 *   # until $.businessStatus.coding[0].code == auth-required
 *                                         send again (up to untilMs) until it holds: the gateway
 *                                         works on in the background (coverage, write-back)
 *
 * Why not httpyac itself (a well-kept runner): the collection must also run in REST Client, whose
 * syntax lacks httpyac's `??` assertions and scripts, so httpyac could check no more than this
 * subset; and its install brings gRPC, Kafka, MQTT and AMQP clients (some 200 packages) for it.
 * This parser is that subset and nothing else.
 */
import { randomUUID } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import path from 'node:path';

export interface HttpRequestBlock {
  file: string;
  /** The text after `###` (what the request does). */
  title: string;
  name?: string;
  method: string;
  url: string;
  headers: Array<[string, string]>;
  /** Inline body, or `{ file }` for `< ./path` (`withVariables` for `<@ ./path`). */
  body?: string | { file: string; withVariables: boolean };
  expectStatus?: number;
  expectations: PathCheck[];
  until: PathCheck[];
}

interface PathCheck {
  path: string;
  value: string;
}

export interface SentRequest {
  block: HttpRequestBlock;
  /** The URL as sent, variables resolved. */
  url: string;
  status: number;
  body: unknown;
  failures: string[];
}

const CHECK = /^(\$[^\s]*)\s*==\s*(.*)$/;

/** Parses one .http file into its variables (in order) and requests. */
export function parseHttpFile(file: string, text: string): { variables: Array<[string, string]>; requests: HttpRequestBlock[] } {
  const variables: Array<[string, string]> = [];
  const requests: HttpRequestBlock[] = [];
  const chunks = text.split(/^###/m);
  for (const [index, chunk] of chunks.entries()) {
    const lines = chunk.split(/\r?\n/);
    const title = index === 0 ? '' : (lines.shift() ?? '').trim();
    let name: string | undefined;
    let expectStatus: number | undefined;
    const expectations: PathCheck[] = [];
    const until: PathCheck[] = [];
    let requestLine: string | undefined;
    const headers: Array<[string, string]> = [];
    const bodyLines: string[] = [];
    let inBody = false;
    for (const line of lines) {
      if (requestLine === undefined) {
        const trimmed = line.trim();
        const variable = /^@([A-Za-z_][\w-]*)\s*=\s*(.*)$/.exec(trimmed);
        if (variable) {
          variables.push([variable[1]!, variable[2]!.trim()]);
          continue;
        }
        if (trimmed === '') continue;
        if (trimmed.startsWith('#') || trimmed.startsWith('//')) {
          const comment = trimmed.replace(/^(#|\/\/)\s*/, '');
          const named = /^@name\s+(\S+)/.exec(comment);
          if (named) name = named[1];
          const expect = /^expect\s+(.*)$/.exec(comment);
          if (expect) {
            const what = expect[1]!.trim();
            if (/^\d{3}$/.test(what)) expectStatus = Number(what);
            else {
              const check = CHECK.exec(what);
              if (!check) throw new Error(`${file}: cannot read "# expect ${what}"`);
              expectations.push({ path: check[1]!, value: check[2]!.trim() });
            }
          }
          const wait = /^until\s+(.*)$/.exec(comment);
          if (wait) {
            const check = CHECK.exec(wait[1]!.trim());
            if (!check) throw new Error(`${file}: cannot read "# until ${wait[1]}"`);
            until.push({ path: check[1]!, value: check[2]!.trim() });
          }
          continue;
        }
        requestLine = trimmed;
        continue;
      }
      if (!inBody) {
        if (line.trim() === '') {
          inBody = true;
          continue;
        }
        if (line.trim().startsWith('#')) continue;
        const colon = line.indexOf(':');
        headers.push([line.slice(0, colon).trim(), line.slice(colon + 1).trim()]);
        continue;
      }
      bodyLines.push(line);
    }
    if (requestLine === undefined) continue;
    const [method, url] = /^[A-Z]+\s/.test(requestLine) ? requestLine.split(/\s+/) : ['GET', requestLine];
    const bodyText = bodyLines.join('\n').trim();
    const fileRef = /^<(@?)\s+(\S+)$/.exec(bodyText);
    requests.push({
      file,
      title,
      ...(name !== undefined ? { name } : {}),
      method: method!,
      url: url!,
      headers,
      ...(bodyText === '' ? {} : { body: fileRef ? { file: fileRef[2]!, withVariables: fileRef[1] === '@' } : bodyText }),
      ...(expectStatus !== undefined ? { expectStatus } : {}),
      expectations,
      until,
    });
  }
  return { variables, requests };
}

/** `$.a.b[0].c` of a JSON value. */
export function atJsonPath(value: unknown, jsonPath: string): unknown {
  const steps = jsonPath.replace(/^\$\.?/, '').match(/[^.[\]]+|\[\d+\]/g) ?? [];
  let current: any = value;
  for (const step of steps) {
    if (current === undefined || current === null) return undefined;
    current = step.startsWith('[') ? current[Number(step.slice(1, -1))] : current[step];
  }
  return current;
}

/** Sends every request of a file in order, as the tools do, and checks the comments' expectations. */
export async function runHttpFile(
  file: string,
  options: { variables?: Record<string, string>; env?: NodeJS.ProcessEnv; untilMs?: number } = {},
): Promise<SentRequest[]> {
  const { variables: declared, requests } = parseHttpFile(file, await readFile(file, 'utf8'));
  const env = options.env ?? process.env;
  const responses = new Map<string, { body: unknown; headers: Headers }>();
  const values = new Map<string, string>();
  const resolve = (text: string): string =>
    text.replace(/\{\{\s*([^}]+?)\s*\}\}/g, (_all, expression: string) => {
      const processEnv = /^\$processEnv\s+(\S+)$/.exec(expression);
      if (processEnv) return env[processEnv[1]!] ?? '';
      if (expression === '$timestamp') return String(Math.floor(Date.now() / 1000));
      if (expression === '$guid') return randomUUID();
      const fromResponse = /^([\w-]+)\.response\.(body|headers)\.?(.*)$/.exec(expression);
      if (fromResponse) {
        const response = responses.get(fromResponse[1]!);
        if (!response) throw new Error(`${file}: {{${expression}}} names a request not sent before it`);
        const where = fromResponse[3]!;
        // `*`: the whole body (REST Client's notation).
        const found =
          fromResponse[2] === 'headers' ? response.headers.get(where) : where === '*' ? response.body : atJsonPath(response.body, where);
        if (found === undefined || found === null) throw new Error(`${file}: {{${expression}}} is not in the response`);
        return typeof found === 'string' ? found : JSON.stringify(found);
      }
      const value = values.get(expression);
      if (value === undefined) throw new Error(`${file}: unknown variable {{${expression}}}`);
      return value;
    });
  for (const [name, value] of declared) values.set(name, options.variables?.[name] ?? resolve(value));
  for (const [name, value] of Object.entries(options.variables ?? {})) values.set(name, value);

  const sent: SentRequest[] = [];
  for (const block of requests) {
    const deadline = Date.now() + (options.untilMs ?? 30_000);
    for (;;) {
      const headers = Object.fromEntries(block.headers.map(([name, value]) => [name, resolve(value)]));
      let body: string | undefined;
      if (typeof block.body === 'string') body = resolve(block.body);
      else if (block.body) {
        const text = await readFile(path.resolve(path.dirname(file), block.body.file), 'utf8');
        body = block.body.withVariables ? resolve(text) : text;
      }
      const url = resolve(block.url);
      const response = await fetch(url, { method: block.method, headers, ...(body !== undefined ? { body } : {}) });
      const text = await response.text();
      let parsed: unknown;
      try {
        parsed = text === '' ? undefined : JSON.parse(text);
      } catch {
        parsed = text;
      }
      const failures: string[] = [];
      if (block.expectStatus !== undefined ? response.status !== block.expectStatus : response.status >= 400)
        failures.push(`status ${response.status}, expected ${block.expectStatus ?? '< 400'}`);
      for (const check of [...block.until, ...block.expectations]) {
        const found = atJsonPath(parsed, check.path);
        if (String(found) !== check.value) failures.push(`${check.path} is ${JSON.stringify(found)}, expected ${check.value}`);
      }
      const waitMore = failures.length > 0 && block.until.length > 0 && Date.now() < deadline;
      if (waitMore) {
        await new Promise((r) => setTimeout(r, 200));
        continue;
      }
      if (block.name) responses.set(block.name, { body: parsed, headers: response.headers });
      if (failures.length > 0) failures.push(`answer: ${text.slice(0, 600)}`);
      sent.push({ block, url, status: response.status, body: parsed, failures });
      break;
    }
  }
  return sent;
}
