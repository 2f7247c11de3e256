/**
 * `infusion-gateway token <client>`: prints an access token for a client whose private key is in a
 * key file (default the demo clients of fixtures/clients/, public: demo only), obtained from a
 * running gateway as a SMART Backend Services client (src/auth/demo-token.ts, shared with
 * `npm run token`, `send --client` and the sandbox). For curl:
 *   curl -H "Authorization: Bearer $(npx infusion-gateway token demo-ehr)" http://localhost:8080/fhir/Task
 */
import { ClientKeyError, demoCdsHookJwt, requestToken } from '../auth/demo-token.js';
import { SmartTokenError } from '../auth/smart-backend-client.js';
import { EXIT, printJson, type ExitCode, type Terminal } from './output.js';

export interface TokenOptions {
  /** The gateway's origin (its SMART discovery at /.well-known/smart-configuration). */
  gateway: string;
  scope?: string;
  keyFile?: string;
  clientsFile?: string;
  json: boolean;
}

/** `token --cds-service <url>`: a CDS Hooks client JWT of the demo issuer for one call to that service. */
export async function cdsTokenCommand(serviceUrl: string, options: { json: boolean }, terminal: Terminal): Promise<ExitCode> {
  try {
    const jwt = await demoCdsHookJwt(serviceUrl);
    if (options.json) printJson(terminal, { aud: serviceUrl, jwt });
    else terminal.out(jwt);
    return EXIT.ok;
  } catch (err) {
    terminal.err(`infusion-gateway token: ${(err as Error).message}`);
    return EXIT.usage;
  }
}

export async function tokenCommand(clientId: string, options: TokenOptions, terminal: Terminal): Promise<ExitCode> {
  try {
    const token = await requestToken({
      origin: options.gateway,
      clientId,
      ...(options.scope !== undefined ? { scope: options.scope } : {}),
      ...(options.keyFile !== undefined ? { keysFile: options.keyFile } : {}),
      ...(options.clientsFile !== undefined ? { clientsFile: options.clientsFile } : {}),
    });
    if (options.json) printJson(terminal, { clientId, accessToken: token });
    else terminal.out(token);
    return EXIT.ok;
  } catch (err) {
    if (err instanceof ClientKeyError) {
      terminal.err(`infusion-gateway token: ${err.message}`);
      return EXIT.usage;
    }
    if (err instanceof SmartTokenError && err.status !== undefined) {
      // The gateway answered and refused: a finding (unknown client, a scope it may not have).
      terminal.err(`infusion-gateway token: ${err.message}`);
      return EXIT.findings;
    }
    terminal.err(
      `infusion-gateway token: ${(err as Error).message} (is the gateway running at ${options.gateway}? set --gateway or GATEWAY_URL)`,
    );
    return EXIT.usage;
  }
}
