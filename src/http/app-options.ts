/**
 * What createApp (src/app.ts) is given besides the use cases' dependencies. Its own module so the
 * route handlers read it without importing the app that mounts them (an import cycle, issue 15).
 */
import type { CapabilityStatement } from 'fhir/r4.js';
import type { ConformanceResources } from './fhir-handlers.js';
import type { HttpOptions } from './routes.js';
import type { ConsoleRouteOptions } from './console-routes.js';
import type { AuthService } from '../auth/token-endpoint.js';
import type { CdsDeps } from '../site-check/stories/cds-site-check.js';
import type { CdsClientTrust } from '../auth/cds-client-trust.js';
import type { GatewayDeps } from '../ports/gateway-deps.js';

/** `ehrFor` is the use cases' own: a Subscription notification is read from the same EHR client (notification-routes.ts). */
export interface AppOptions extends HttpOptions, Pick<GatewayDeps, 'ehrFor'> {
  /** Authentication and the route table's decisions; undefined = AUTH=off (development only). */
  auth: AuthService | undefined;
  capabilityStatement: CapabilityStatement;
  conformance: ConformanceResources;
  /** The channel header secret of a tenant's EHR Subscription, if one was set up (src/http/notification-auth.ts). */
  subscriptionSecretFor(tenant: string): string | undefined;
  /** The CDS Hooks site-check service's dependencies. */
  cds: CdsDeps;
  /** Who may call our hooks (https://cds-hooks.hl7.org/2.0/#trusting-cds-clients). */
  cdsClientTrust: CdsClientTrust;
  /** The coordinator console (issue 14): its pages, $network-metrics, connection health. */
  console: ConsoleRouteOptions;
  /** Whether requests are audited (AUDIT, docs/audit.md): off only in development and the bench. */
  audit: boolean;
}
