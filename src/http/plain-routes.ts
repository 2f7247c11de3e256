/**
 * The routes outside the FHIR interactions, as the API description lists them: derived from the
 * route table (who may call each, what it is for). The FHIR API itself is described from the
 * CapabilityStatement.
 */
import type { PlainRoute } from './openapi.js';
import { ROUTE_TABLE, type RouteEntry } from './route-table.js';

const FHIR_JSON = 'application/fhir+json';

function tagOf(path: string): string {
  if (path.startsWith('/admin')) return 'Operators';
  if (path.includes('-notifications/')) return 'Notifications';
  if (path.startsWith('/cds-services')) return 'CDS Hooks';
  if (path.startsWith('/console')) return 'Console';
  if (path.startsWith('/oauth') || path.includes('.well-known') || path.startsWith('/demo-idp')) return 'Authentication';
  return 'Operations';
}

/** The media types a route takes and answers, by the kind of route its path names. */
function mediaOf(entry: RouteEntry): Pick<PlainRoute, 'requestBody' | 'responseType'> {
  const { path, method } = entry;
  if (path === '/oauth/token' || (path.startsWith('/demo-idp') && method === 'POST'))
    return { requestBody: 'application/x-www-form-urlencoded' };
  if (path === '/console/config.json') return {};
  if (path.includes('-notifications/')) return { requestBody: FHIR_JSON, responseType: FHIR_JSON };
  if (path.startsWith('/cds-services') && method === 'POST') return { requestBody: 'application/json' };
  if (path === '/api-docs' || path.startsWith('/console')) return { responseType: 'text/html' };
  if (path.startsWith('/api-docs/')) return { responseType: 'application/octet-stream' };
  return {};
}

export const PLAIN_ROUTES: readonly PlainRoute[] = ROUTE_TABLE.filter(
  (entry) => !entry.path.startsWith('/fhir') || entry.path.includes('.well-known'),
).map((entry) => ({
  method: entry.method.toLowerCase() as PlainRoute['method'],
  path: entry.path,
  summary: entry.summary,
  tag: tagOf(entry.path),
  roles: entry.access.kind === 'roles' ? entry.access.roles : [],
  ...mediaOf(entry),
}));
