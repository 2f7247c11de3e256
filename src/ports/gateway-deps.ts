/**
 * What the use cases need, as interfaces: storage, validation, the drug catalog, the clock, logs.
 * main.ts builds the real ones; tests pass their own.
 */
import type { Coding, OperationOutcomeIssue, Resource, StructureDefinition } from 'fhir/r4.js';
import type { CatalogDrug } from '../directory/rules/drug-catalog.js';
import type { SiteCheckPolicy } from '../site-check/rules/site-check.js';
import type { SiteDirectorySource } from '../directory/rules/site-directory.js';
import type { PriorAuthRules } from '../coverage/rules/prior-auth-rules.js';
import type { Clock } from './clock.js';
import type { SchedulingConfig } from '../config/config.js';
import type { EhrFhir } from './ehr-fhir.js';
import type { Notifier } from './notifier.js';
import type { PayerFhir } from './payer-fhir.js';
import type { ResourceStore, TenantId } from './resource-store.js';
import type { Logger } from '../logging/logger.js';
import type { EhrReferences } from '../referral/rules/referral.js';

export interface ResourceValidator {
  /** Structure (R4 JSON schema) and required bindings, nested resources included. */
  validateBase(resource: unknown): OperationOutcomeIssue[];
  /** Conformance to the given profiles (canonical URLs); an unknown profile is an error, or a warning if asked. */
  validateProfiles(
    resource: Resource,
    profileUrls: readonly string[],
    options?: { unknownProfile?: 'error' | 'warning' },
  ): OperationOutcomeIssue[];
  profiles(): StructureDefinition[];
}

export interface DrugLookup {
  findDrug(codings: readonly Coding[]): CatalogDrug | undefined;
}

export interface Tenancy {
  /** The tenant that owns the network's directory, visible to every client. */
  directoryTenant: TenantId;
}

export interface GatewayDeps {
  store: ResourceStore;
  validator: ResourceValidator;
  drugs: DrugLookup;
  clock: Clock;
  logger: Logger;
  tenancy: Tenancy;
  /** The directory indexed for the site check, rebuilt when the stored directory changes. */
  sites: SiteDirectorySource;
  sitePolicy: SiteCheckPolicy;
  /** Tenants whose EHR receives write-back (an EHR connection is configured); others keep it here. */
  writeBackTenants: ReadonlySet<string>;
  newId: () => string;
  /** The EHR of a tenant with an EHR connection (write-back, reading what a referral points at). */
  ehrFor(tenant: string): EhrFhir | undefined;
  /** The payer's FHIR API, by the payer's directory Organization id, when a connection is configured. */
  payerFor(payerOrganizationId: string): PayerFhir | undefined;
  /** The deployment's prior-authorization rules and allowed amounts. */
  priorAuthRules: PriorAuthRules;
  /**
   * Whether the coverage step runs by itself (some payer connection is configured). Without any,
   * coverage is verified by hand and referrals wait in verifying-coverage.
   */
  automaticCoverage: boolean;
  /** Holds, the $find window, the late-reschedule policy, reminders and no-shows. */
  scheduling: SchedulingConfig;
  /** Where appointment reminders go (a webhook); without one they are recorded, not sent. */
  notifier: Notifier;
}

/** The resource types that make up the network's directory (Da Vinci PDex Plan-Net shapes). */
export const DIRECTORY_TYPES: readonly string[] = [
  'Location',
  'HealthcareService',
  'Organization',
  'OrganizationAffiliation',
  'InsurancePlan',
  'Endpoint',
];

/**
 * Where a change is written back: the referral's references in its EHR when the tenant has an EHR
 * connection (docs/write-back.md), else undefined and nothing is queued for the EHR.
 */
export function writeBackTarget(
  deps: Pick<GatewayDeps, 'writeBackTenants'>,
  tenant: TenantId,
  ehr: EhrReferences | undefined,
): EhrReferences | undefined {
  return deps.writeBackTenants.has(tenant) ? ehr : undefined;
}

/** The tenants whose rows a client may read: its own, plus the shared directory for directory types. */
export function visibleTenants(tenancy: Tenancy, tenant: TenantId, resourceType: string): TenantId[] {
  if (tenant === tenancy.directoryTenant || !DIRECTORY_TYPES.includes(resourceType)) return [tenant];
  return [tenant, tenancy.directoryTenant];
}
