/** Reading what reached the stand-in EHR over its FHIR API, and the gateway's outbox over its operator API. */
import { fhirFetch } from '../support/gateway.js';

const REFERRAL_IDENTIFIER_SYSTEM = 'https://fhir.infusion-gateway.example/referral-id';

/** Every resource of a type in the EHR, following next links. */
export async function allInEhr(baseUrl: string, resourceType: string): Promise<any[]> {
  const resources: any[] = [];
  let url: string | undefined = `${baseUrl}/${resourceType}?_count=500`;
  while (url) {
    const page = await fhirFetch(url);
    if (page.status !== 200) throw new Error(`EHR search answered ${page.status}`);
    resources.push(...(page.body.entry ?? []).map((e: any) => e.resource));
    url = page.body.link?.find((l: any) => l.relation === 'next')?.url;
  }
  return resources;
}

/** The referral Tasks in the EHR, by the gateway's referral identifier. */
export async function referralTasksInEhr(baseUrl: string): Promise<Map<string, any[]>> {
  const byReferral = new Map<string, any[]>();
  for (const task of await allInEhr(baseUrl, 'Task')) {
    const id = task.identifier?.find((i: any) => i.system === REFERRAL_IDENTIFIER_SYSTEM)?.value;
    if (!id) continue;
    byReferral.set(id, [...(byReferral.get(id) ?? []), task]);
  }
  return byReferral;
}

/** How many outbox messages of a gateway (its base URL) are in a status. */
export async function outboxTotal(gatewayBaseUrl: string, status: string): Promise<number> {
  const response = await fhirFetch(`${gatewayBaseUrl}/admin/outbox?status=${status}&_count=0`);
  if (response.status !== 200) throw new Error(`the outbox API answered ${response.status}`);
  return response.body.total;
}
