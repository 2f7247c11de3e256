/**
 * A payer's reach beyond Coverage (issue 10, docs/security.md): the referral Tasks of its own
 * members, a member being a patient whose referral names a Coverage with `payor` = the payer's
 * Organization. The Task names its ServiceRequest (`focus`), which names its Coverage
 * (`insurance`, contained or stored); https://hl7.org/fhir/R4/servicerequest-definitions.html#ServiceRequest.insurance
 */
import type { Coverage, Resource, ServiceRequest, Task } from 'fhir/r4.js';
import type { ResourceReader, TenantId } from '../ports/resource-store.js';

/** The payer Organization ids of the Coverages a referral Task's ServiceRequest names. */
export async function payersOfReferralTask(store: ResourceReader, tenant: TenantId, task: Task): Promise<string[]> {
  const focus = task.focus?.reference ?? task.basedOn?.[0]?.reference;
  const serviceRequestId = /^ServiceRequest\/([A-Za-z0-9\-.]{1,64})$/.exec(focus ?? '')?.[1];
  if (serviceRequestId === undefined) return [];
  const serviceRequest = await store.read<ServiceRequest>([tenant], 'ServiceRequest', serviceRequestId);
  if (serviceRequest === undefined) return [];
  const coverages: Coverage[] = [];
  for (const insurance of serviceRequest.insurance ?? []) {
    const reference = insurance.reference ?? '';
    if (reference.startsWith('#')) {
      const contained = (serviceRequest.contained ?? []).find(
        (r: Resource) => r.resourceType === 'Coverage' && r.id === reference.slice(1),
      );
      if (contained) coverages.push(contained as Coverage);
      continue;
    }
    const coverageId = /^Coverage\/([A-Za-z0-9\-.]{1,64})$/.exec(reference)?.[1];
    const stored = coverageId === undefined ? undefined : await store.read<Coverage>([tenant], 'Coverage', coverageId);
    if (stored) coverages.push(stored);
  }
  return coverages.flatMap((coverage) =>
    (coverage.payor ?? [])
      .map((payor) => /(?:^|\/)Organization\/([A-Za-z0-9\-.]{1,64})$/.exec(payor.reference ?? '')?.[1])
      .filter((id): id is string => id !== undefined),
  );
}
