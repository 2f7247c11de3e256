/**
 * Steps many end-to-end tests share: connecting the gateway to the stand-in payer, and taking a
 * referral from intake to a booked first appointment over the FHIR API.
 */
import { expect } from 'chai';
import { businessStatusOf, fhirFetch, waitUntil } from './gateway.js';

/** The payers of the demo directory. */
export const DEMO_PAYERS: readonly string[] = ['payer-cumberland', 'payer-peachtree', 'payer-sonoran'];

/** PAYER_CONNECTIONS sending every named payer to one FHIR base (the stand-in payer). */
export function payerConnections(baseUrl: string, payers: readonly string[] = DEMO_PAYERS): string {
  return JSON.stringify(payers.map((payer) => ({ payer, baseUrl })));
}

/**
 * Posts a referral, waits until the coverage step has cleared it, and books its first proposed
 * slot: what the reminder, no-show and renewal tests start from.
 */
export async function bookFirstSlot(
  fhir: string,
  serviceRequest: unknown,
): Promise<{ taskId: string; serviceRequestId: string; appointment: any }> {
  const created = await fhirFetch(`${fhir}/ServiceRequest`, { body: serviceRequest });
  expect(created.status, JSON.stringify(created.body?.issue)).to.equal(201);
  const taskId = (await fhirFetch(`${fhir}/Task?focus=ServiceRequest/${created.body.id}`)).body.entry[0].resource.id;
  await waitUntil(
    'the referral is ready to schedule',
    async () => businessStatusOf((await fhirFetch(`${fhir}/Task/${taskId}`)).body) === 'ready-to-schedule',
  );
  const found = await fhirFetch(`${fhir}/Appointment/$find?referral=ServiceRequest/${created.body.id}&_count=1`);
  expect(found.status, JSON.stringify(found.body?.issue)).to.equal(200);
  const booked = await fhirFetch(`${fhir}/Appointment/$book`, {
    body: { resourceType: 'Parameters', parameter: [{ name: 'appt-resource', resource: found.body.entry[0].resource }] },
  });
  expect(booked.status, JSON.stringify(booked.body?.issue)).to.equal(201);
  return { taskId, serviceRequestId: created.body.id, appointment: booked.body };
}
