/**
 * Gathers what the site check needs about one referral (its patient, coverage, the requester's
 * practice, where the patient was treated before) and runs the pure check against the directory.
 * Used at intake and when a coordinator confirms a site.
 */
import type { Appointment, Coverage, FhirResource, Location, Patient, Reference, Resource, ServiceRequest } from 'fhir/r4.js';
import type { CatalogDrug } from '../../directory/rules/drug-catalog.js';
import { checkReferralSite, type SiteCheckResult } from '../rules/site-check.js';
import { parseRelativeReference } from '../../fhir/references.js';
import type { ResourceReader, TenantId } from '../../ports/resource-store.js';
import type { GatewayDeps } from '../../ports/gateway-deps.js';

/** Resolves a reference as the referral sees it: contained, in the same Bundle, or stored. */
export type ReferenceResolver = (reference: Reference | undefined) => Promise<Resource | undefined>;

/** Appointments that show the patient was (or will be) treated at a site. */
const TREATED_STATUSES = ['booked', 'arrived', 'fulfilled', 'checked-in'];

export async function checkSiteOfReferral(
  deps: Pick<GatewayDeps, 'sites' | 'sitePolicy' | 'tenancy'>,
  reader: ResourceReader,
  tenant: TenantId,
  input: { serviceRequest: ServiceRequest; drug: CatalogDrug; resolve: ReferenceResolver },
): Promise<SiteCheckResult> {
  const { serviceRequest, resolve } = input;
  const directory = await deps.sites.current();
  const subject = (await resolve(serviceRequest.subject)) as FhirResource | undefined;
  const patient = subject?.resourceType === 'Patient' ? (subject as Patient) : undefined;

  const coverages: Coverage[] = [];
  for (const reference of serviceRequest.insurance ?? []) {
    const found = (await resolve(reference)) as FhirResource | undefined;
    if (found?.resourceType === 'Coverage') coverages.push(found);
  }

  const requesterResources: Resource[] = [];
  const requester = (await resolve(serviceRequest.requester)) as FhirResource | undefined;
  if (requester) {
    requesterResources.push(requester);
    if (requester.resourceType === 'PractitionerRole') {
      for (const reference of [requester.organization, ...(requester.location ?? [])]) {
        const found = await resolve(reference);
        if (found) requesterResources.push(found);
      }
    }
  }

  const locationReference = serviceRequest.locationReference?.[0];
  const parsedLocation = parseRelativeReference(locationReference?.reference);
  const inDirectory = parsedLocation?.resourceType === 'Location' && directory.site(parsedLocation.id) !== undefined;
  const requested = inDirectory ? undefined : ((await resolve(locationReference)) as FhirResource | undefined);

  const previousSiteIds =
    subject?.id !== undefined && !serviceRequest.subject?.reference?.startsWith('#')
      ? await sitesTreatedAt(reader, tenant, `Patient/${subject.id}`)
      : [];

  return checkReferralSite(
    directory,
    {
      serviceRequest,
      drug: input.drug,
      ...(patient ? { patient } : {}),
      coverages,
      requesterResources,
      ...(requested?.resourceType === 'Location' ? { requestedLocation: requested as Location } : {}),
      previousSiteIds,
    },
    deps.sitePolicy,
  );
}

/** Directory Locations of the patient's booked or attended appointments, most recent first. */
async function sitesTreatedAt(reader: ResourceReader, tenant: TenantId, patientReference: string): Promise<string[]> {
  const found = await reader.search<Appointment>({
    resourceType: 'Appointment',
    tenants: [tenant],
    criteria: [
      { name: 'patient', values: [patientReference] },
      { name: 'status', values: TREATED_STATUSES },
    ],
    count: 20,
    offset: 0,
    sort: ['-_lastUpdated'],
  });
  const ids: string[] = [];
  for (const appointment of found.resources) {
    for (const participant of appointment.participant) {
      const parsed = parseRelativeReference(participant.actor?.reference);
      if (parsed?.resourceType === 'Location' && !ids.includes(parsed.id)) ids.push(parsed.id);
    }
  }
  return ids;
}
