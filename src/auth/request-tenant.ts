/**
 * The tenant a request works in, decided from the verified caller (docs/security.md, "Roles,
 * scopes, tenants"): an EHR's or a coordinator's is its token's, and X-Tenant-Id may only repeat
 * it; an operator or a payer names one with X-Tenant-Id (default: the token's, else the default
 * tenant).
 *
 * One exception, so that an operator's edit reaches the directory every client reads rather than a
 * copy no one does: the network's directory (DIRECTORY_TYPES: Location, HealthcareService,
 * Organization, OrganizationAffiliation, InsurancePlan, Endpoint) lives in the directory tenant
 * alone, so an operator's create or update of a directory type is made there. Naming no tenant
 * means the directory; naming another tenant for such a write is refused (400), never carried out
 * somewhere the operator did not mean.
 */
import type { OperationOutcome } from 'fhir/r4.js';
import { badRequest, errorIssue } from '../fhir/outcomes.js';
import { DIRECTORY_TYPES } from '../ports/gateway-deps.js';
import type { Caller } from './caller.js';

export const TENANT_HEADER = 'x-tenant-id';

export type RequestTenant = { kind: 'tenant'; tenant: string } | { kind: 'refused'; outcome: OperationOutcome };

export interface RequestTenantInput {
  caller: Caller;
  /** The X-Tenant-Id header, when sent. */
  headerTenant: string | undefined;
  defaultTenant: string;
  directoryTenant: string;
  /** The resource type the request creates or updates (`POST /fhir/{type}`, `PUT /fhir/{type}/{id}`), if it is such a write. */
  writesType?: string;
}

export function requestTenant(input: RequestTenantInput): RequestTenant {
  const { caller, headerTenant } = input;
  if (caller.role === 'operator' && input.writesType !== undefined && DIRECTORY_TYPES.includes(input.writesType)) {
    if (headerTenant === undefined || headerTenant === input.directoryTenant) return { kind: 'tenant', tenant: input.directoryTenant };
    return {
      kind: 'refused',
      outcome: badRequest([
        errorIssue(
          'business-rule',
          `${input.writesType} belongs to the network's directory (tenant '${input.directoryTenant}'), not to tenant '${headerTenant}': leave ${TENANT_HEADER} out or name '${input.directoryTenant}'`,
          TENANT_HEADER,
        ),
      ]),
    };
  }
  if (caller.role === 'operator' || caller.role === 'payer')
    return { kind: 'tenant', tenant: headerTenant ?? caller.tenant ?? input.defaultTenant };
  if (headerTenant !== undefined && headerTenant !== caller.tenant) {
    return {
      kind: 'refused',
      outcome: badRequest([
        errorIssue('forbidden', `${TENANT_HEADER} may not name another tenant: the tenant comes from the access token`, TENANT_HEADER),
      ]),
    };
  }
  return { kind: 'tenant', tenant: caller.tenant ?? input.defaultTenant };
}
