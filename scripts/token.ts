/**
 * Prints a bearer token for a demo client, for curl:
 *   curl -H "Authorization: Bearer $(npm run -s token -- demo-ehr)" http://localhost:8080/fhir/Task
 * Signs a SMART Backend Services client assertion with the client's DEMO key from fixtures/clients/
 * (public, never for production; another key file: CLIENT_KEYS, another registry: AUTH_CLIENTS)
 * and asks the running gateway (GATEWAY_URL, default http://localhost:$PORT or 8080). An optional
 * second argument asks for other scopes.
 */
import { requestToken } from '../src/auth/demo-token.js';

const clientId = process.argv[2];
if (clientId === undefined) {
  process.stderr.write('usage: npm run -s token -- <client id: demo-ehr | demo-coordinator | demo-operator | demo-payer-sonoran> [scope]\n');
  process.exit(2);
}
const origin = process.env['GATEWAY_URL'] ?? `http://localhost:${process.env['PORT'] ?? '8080'}`;
try {
  const token = await requestToken({
    origin,
    clientId,
    ...(process.argv[3] !== undefined ? { scope: process.argv[3] } : {}),
    ...(process.env['CLIENT_KEYS'] !== undefined ? { keysFile: process.env['CLIENT_KEYS'] } : {}),
    ...(process.env['AUTH_CLIENTS'] !== undefined ? { clientsFile: process.env['AUTH_CLIENTS'] } : {}),
  });
  process.stdout.write(`${token}\n`);
} catch (error) {
  process.stderr.write(`could not get a token: ${(error as Error).message} (is the gateway running at ${origin}? set GATEWAY_URL)\n`);
  process.exit(1);
}
