/**
 * `npm run -s token -- <client> [scope]`: the CLI's `infusion-gateway token` (src/cli/token-command.ts),
 * kept for the README's curl lines:
 *   curl -H "Authorization: Bearer $(npm run -s token -- demo-ehr)" http://localhost:8080/fhir/Task
 * The gateway: GATEWAY_URL, default http://localhost:$PORT or 8080; other keys: CLIENT_KEYS; another
 * registry: AUTH_CLIENTS.
 */
import { runCli } from '../src/cli/main.js';

const [clientId, scope] = process.argv.slice(2);
if (clientId === undefined) {
  process.stderr.write(
    'usage: npm run -s token -- <client id: demo-ehr | demo-coordinator | demo-operator | demo-payer-sonoran> [scope]\n',
  );
  process.exit(2);
}
process.exitCode = await runCli([process.argv[0]!, 'token', 'token', clientId, ...(scope !== undefined ? ['--scope', scope] : [])]);
