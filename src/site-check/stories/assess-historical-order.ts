/**
 * Story: an integration engineer sizes the misroute problem before switching the gateway on. For
 * one order read from the EHR, what would the gateway decide? The same rules as intake, all pure,
 * against a directory and catalog given as data, writing nothing: base R4 and the referral
 * profile, the drug catalog, the site check (misroute reasons and better sites), the coverage
 * check (plan, dates, network) and the denial risks. Only the payer's own answer (eligibility,
 * prior authorization) is out of reach.
 */
import type { Coverage, FhirResource, Location, Patient, Reference, Resource, ServiceRequest } from 'fhir/r4.js';
import { checkCoverage } from '../../coverage/rules/coverage-check.js';
import { assessDenialRisk, documentationPresent } from '../../coverage/rules/denial-risk.js';
import { findDrugByCodings, type DrugCatalog } from '../../directory/rules/drug-catalog.js';
import { ICD10CM_SYSTEM, requestedPeriod } from '../../referral/rules/referral.js';
import { checkReferralSite, type SiteCheckPolicy } from '../rules/site-check.js';
import type { SiteDirectory } from '../../directory/rules/site-directory.js';
import { findContained, parseRelativeReference } from '../../fhir/references.js';
import type { GatewayDeps } from '../../ports/gateway-deps.js';
import { validateOffline } from '../../intake/stories/validate-resource.js';

/** Reads what an order points at: contained, else from the EHR it came from. */
export type OrderReferenceResolver = (reference: Reference | undefined) => Promise<Resource | undefined>;

export interface HistoricalOrderAssessment {
  serviceRequestId?: string;
  drug?: string;
  /** What the gateway would do: refuse (invalid), reject (not in the catalog, no suitable site), hold (misroute), or go on to coverage. */
  outcome: 'invalid' | 'drug-not-in-catalog' | 'no-suitable-site' | 'misroute-suspected' | 'coverage-problem' | 'verifying-coverage';
  invalid: Array<{ expression: string; diagnostics: string }>;
  misrouteReasons: string[];
  requestedSite?: string;
  suggestedSites: string[];
  coverageProblems: string[];
  denialRisks: string[];
}

export async function assessHistoricalOrder(input: {
  serviceRequest: ServiceRequest;
  resolve: OrderReferenceResolver;
  validator: GatewayDeps['validator'];
  directory: SiteDirectory;
  catalog: DrugCatalog;
  policy: SiteCheckPolicy;
  now: Date;
}): Promise<HistoricalOrderAssessment> {
  const { serviceRequest, directory } = input;
  const base = {
    ...(serviceRequest.id ? { serviceRequestId: serviceRequest.id } : {}),
    invalid: [] as HistoricalOrderAssessment['invalid'],
    misrouteReasons: [] as string[],
    suggestedSites: [] as string[],
    coverageProblems: [] as string[],
    denialRisks: [] as string[],
  };
  const errors = validateOffline(input.validator, serviceRequest).filter((i) => i.severity === 'error' || i.severity === 'fatal');
  if (errors.length > 0) {
    return {
      ...base,
      outcome: 'invalid',
      invalid: errors.map((i) => ({ expression: (i.expression ?? []).join(', '), diagnostics: i.diagnostics ?? i.code })),
    };
  }
  const drug = findDrugByCodings(input.catalog, serviceRequest.code?.coding ?? []);
  if (!drug) return { ...base, outcome: 'drug-not-in-catalog' };

  const subject = (await input.resolve(serviceRequest.subject)) as FhirResource | undefined;
  const patient = subject?.resourceType === 'Patient' ? (subject as Patient) : undefined;
  const coverages: Coverage[] = [];
  for (const reference of serviceRequest.insurance ?? []) {
    const found = (await input.resolve(reference)) as FhirResource | undefined;
    if (found?.resourceType === 'Coverage') coverages.push(found);
  }
  const requesterResources: Resource[] = [];
  const requester = (await input.resolve(serviceRequest.requester)) as FhirResource | undefined;
  if (requester) {
    requesterResources.push(requester);
    if (requester.resourceType === 'PractitionerRole') {
      for (const reference of [requester.organization, ...(requester.location ?? [])]) {
        const found = await input.resolve(reference);
        if (found) requesterResources.push(found);
      }
    }
  }
  const locationReference = serviceRequest.locationReference?.[0];
  const parsedLocation = parseRelativeReference(locationReference?.reference);
  const inDirectory = parsedLocation?.resourceType === 'Location' && directory.site(parsedLocation.id) !== undefined;
  const requested = inDirectory ? undefined : ((await input.resolve(locationReference)) as FhirResource | undefined);

  const site = checkReferralSite(
    directory,
    {
      serviceRequest,
      drug,
      ...(patient ? { patient } : {}),
      coverages,
      requesterResources,
      ...(requested?.resourceType === 'Location' ? { requestedLocation: requested as Location } : {}),
      // The EHR's appointment history is not read: a replay judges the order as it was sent.
      previousSiteIds: [],
    },
    input.policy,
  );
  const siteFields = {
    misrouteReasons: site.reasons.map((r) => r.code),
    ...(site.requestedLocationId ? { requestedSite: site.requestedLocationId } : {}),
    suggestedSites: site.suggestions.map((s) => s.locationId),
  };
  const directorySite = site.requestedLocationId ? directory.site(site.requestedLocationId) : undefined;
  const resolveContained = (reference: Reference): Resource | undefined =>
    reference.reference ? findContained(serviceRequest, reference.reference) : undefined;
  const coverageIndex = (serviceRequest.contained ?? []).findIndex((r) => `#${r.id}` === serviceRequest.insurance?.[0]?.reference);
  const coverage = checkCoverage(
    {
      coverage: coverages[0],
      patient: {
        references: serviceRequest.subject?.reference ? [serviceRequest.subject.reference] : [],
        identifiers: patient?.identifier ?? [],
      },
      ...(requestedPeriod(serviceRequest) ? { requestedPeriod: requestedPeriod(serviceRequest)! } : {}),
      now: input.now,
      ...(directorySite ? { siteLocationId: directorySite.locationId } : {}),
      ...(directorySite?.timeZone ? { timeZone: directorySite.timeZone } : {}),
      resolve: resolveContained,
      coverageExpression: coverageIndex >= 0 ? `ServiceRequest.contained[${coverageIndex}]` : 'ServiceRequest.insurance[0]',
    },
    directory,
  );
  const diagnoses = (serviceRequest.reasonCode ?? []).flatMap((c) =>
    (c.coding ?? []).filter((coding) => coding.system === ICD10CM_SYSTEM && coding.code),
  );
  const risks = [
    ...coverage.problems.filter((p) => p.severity === 'warning').map((p) => p.code),
    ...assessDenialRisk({
      serviceRequest,
      drug,
      diagnoses,
      supportingDocumentation: documentationPresent(serviceRequest, resolveContained),
    }).map((r) => r.code),
  ];
  const problems = coverage.problems.filter((p) => p.severity === 'error').map((p) => p.code);
  const outcome =
    site.decision === 'no-suitable-site'
      ? 'no-suitable-site'
      : site.decision === 'misroute-suspected'
        ? 'misroute-suspected'
        : problems.length > 0
          ? 'coverage-problem'
          : 'verifying-coverage';
  return { ...base, ...siteFields, drug: drug.id, outcome, coverageProblems: problems, denialRisks: risks };
}
