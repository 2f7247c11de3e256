/** A ServiceRequest that is valid R4 and a complete infusion referral; tests break one thing at a time. */
import type { ServiceRequest } from 'fhir/r4.js';

export function validReferral(): ServiceRequest {
  return {
    resourceType: 'ServiceRequest',
    id: 'ifx-1001',
    identifier: [
      {
        type: { coding: [{ system: 'http://terminology.hl7.org/CodeSystem/v2-0203', code: 'PLAC' }] },
        system: 'https://ehr.example.org/order-numbers',
        value: 'ORD-1001',
      },
    ],
    status: 'active',
    intent: 'order',
    priority: 'routine',
    code: { coding: [{ system: 'http://www.nlm.nih.gov/research/umls/rxnorm', code: '191831', display: 'infliximab' }] },
    subject: { reference: 'Patient/pat-1' },
    requester: { reference: 'Practitioner/dr-1' },
    reasonCode: [{ coding: [{ system: 'http://hl7.org/fhir/sid/icd-10-cm', code: 'K50.90', display: "Crohn's disease, unspecified" }] }],
    locationReference: [{ reference: 'Location/site-1' }],
    insurance: [{ reference: 'Coverage/cov-1' }],
    occurrencePeriod: { start: '2026-12-01', end: '2026-12-31' },
    authoredOn: '2026-11-20T09:30:00Z',
  };
}

/** The same referral as a plain JSON object, to break in ways the TypeScript type forbids. */
export function referralJson(): Record<string, unknown> {
  return validReferral() as unknown as Record<string, unknown>;
}
