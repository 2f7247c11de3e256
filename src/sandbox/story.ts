/**
 * Seed 000's story, played end to end over the gateway's real HTTP API with real tokens (docs/domain.md,
 * field note 000: an order auto-filled with the practice's address went to the wrong site; caught
 * at intake, rerouted, the patient's site confirmed). The order is
 * fixtures/site-check/seed-000-practice-address-patient-choice/service-request.json; the steps:
 *
 *   1. the EHR (demo-ehr, SMART Backend Services) sends the order, its site the practice's own office;
 *   2. the gateway flags the misroute (practice-address, not-patient-choice) and ranks the sites,
 *      the patient's choice first;
 *   3. the coordinator (demo-coordinator) confirms the patient's site (`Task/$confirm-site`);
 *   4. the gateway verifies coverage with the payer: eligibility, then prior authorization (the
 *      coordinator sends it after reviewing the denial risks the gateway found);
 *   5. the coordinator finds the first slot at the site (`Appointment/$find`) and books it (`$book`);
 *   6. the Appointment, the verified Coverage and the Task arrive in the EHR (write-back).
 *
 * Each step is printed as it happens. Nothing here prints the patient's details: the practice's
 * address is an organisation's, the rest are ids, codes and site names.
 */
import { randomUUID } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { clientTokenSource } from '../auth/demo-token.js';
import { withFreshOrderNumbers } from '../cli/fixture-cases.js';
import { credentialsFrom, FhirClient, issueLines, type FhirReply } from '../cli/fhir-client.js';
import { businessStatusOf } from '../cli/referral-progress.js';
import { VERIFIED_COVERAGE_ID_PREFIX } from '../coverage/rules/coverage-outcome.js';

export const SEED_000_ORDER = 'fixtures/site-check/seed-000-practice-address-patient-choice/service-request.json';

export interface StoryOptions {
  /** The gateway's FHIR base. */
  fhirBase: string;
  /** The FHIR base of the EHR the gateway writes back to (read without a token). */
  ehrBase: string;
  /** The stand-in payer's FHIR base, to show the calls it answered (its control API); optional. */
  payerBase?: string;
  projectRoot: string;
  print(line: string): void;
  /** How long to wait for each asynchronous step. */
  stepTimeoutMs?: number;
  /** Milliseconds since the story (or the sandbox) started, for the times printed. */
  elapsed?: () => number;
}

export interface StoryResult {
  serviceRequestId: string;
  taskId: string;
  /** The Task's businessStatus codes in the order they were seen. */
  statuses: string[];
  reasons: string[];
  suggestions: string[];
  confirmedLocation: string;
  appointment: { id: string; status: string; start: string; location?: string };
  /** Milliseconds (per `elapsed`) when the Appointment was booked. */
  bookedAtMs: number;
  /** What the EHR holds at the end: resource type -> ids written by the gateway for this referral. */
  inEhr: Record<'Task' | 'Coverage' | 'Appointment', string[]>;
}

export class StoryError extends Error {}

export async function playSeedStory(options: StoryOptions): Promise<StoryResult> {
  const started = Date.now();
  const elapsed = options.elapsed ?? ((): number => Date.now() - started);
  const timeoutMs = options.stepTimeoutMs ?? 30_000;
  const say = (line: string): void => options.print(`[${(elapsed() / 1000).toFixed(1).padStart(5)} s] ${line}`);
  const ehrClient = new FhirClient(options.fhirBase, credentialsFrom({ client: 'demo-ehr' }, options.fhirBase));
  const coordinator = new FhirClient(options.fhirBase, credentialsFrom({ client: 'demo-coordinator' }, options.fhirBase));
  const ehr = new FhirClient(options.ehrBase, credentialsFrom({}, options.ehrBase, {}));
  // Fail early, with the reason, if a demo client cannot get a token.
  await (await clientTokenSource({ clientId: 'demo-ehr', fhirBaseUrl: options.fhirBase })).token();

  // 1. The order, as the EHR auto-filled it.
  const fixture = JSON.parse(await readFile(path.join(options.projectRoot, SEED_000_ORDER), 'utf8')) as any;
  const order = withFreshOrderNumbers(fixture, `-story-${randomUUID().slice(0, 8)}`) as any;
  const site = order.contained?.find((r: any) => `#${r.id}` === order.locationReference?.[0]?.reference);
  const practice = order.contained?.find((r: any) => r.resourceType === 'Organization');
  const drug = order.code?.coding?.[0]?.display ?? order.code?.text ?? order.code?.coding?.[0]?.code;
  say(
    `1. The EHR (demo-ehr) orders ${drug ?? 'an infusion'}; the site it filled in is "${site?.name ?? '?'}", ${formatAddress(site?.address)}:`,
  );
  say(`   the ordering practice's own address (${practice?.name ?? 'the practice'}), auto-filled. POST ${options.fhirBase}/ServiceRequest`);
  const created = await ehrClient.post('ServiceRequest', order);
  expectStatus(created, 201, 'the order');
  const serviceRequestId = created.body.id as string;
  say(`   201 Created: ServiceRequest/${serviceRequestId}`);

  // 2. The site check.
  const statuses: string[] = [];
  const onStatus = (status: string): void => {
    statuses.push(status);
    say(`   Task businessStatus: ${status}`);
  };
  let task = await waitForTask(coordinator, serviceRequestId, (s) => s === 'misroute-suspected' || isEnd(s), timeoutMs, statuses, onStatus);
  if (businessStatusOf(task) !== 'misroute-suspected')
    throw new StoryError(`the site check did not flag the misroute: ${businessStatusOf(task)}`);
  const reasons = (task.input ?? [])
    .filter((i: any) => i.type?.coding?.[0]?.code === 'misroute-reason')
    .map((i: any) => i.valueCodeableConcept?.coding?.[0]?.code as string);
  const suggestions = (task.input ?? [])
    .filter((i: any) => i.type?.coding?.[0]?.code === 'suggested-location')
    .map((i: any) =>
      String(i.valueReference?.reference ?? i.extension?.find((e: any) => e.valueReference)?.valueReference?.reference ?? '').replace(
        /^Location\//,
        '',
      ),
    );
  say(`2. The gateway flags a misroute on Task/${task.id}: ${reasons.join(', ')}. Sites, best first:`);
  for (const [rank, id] of suggestions.entries()) {
    const location = await coordinator.get(`Location/${encodeURIComponent(id)}`);
    say(`   ${rank + 1}. ${location.body?.name ?? id} (Location/${id})${rank === 0 ? "  <- the patient's choice" : ''}`);
  }
  const confirmedLocation = suggestions[0];
  if (confirmedLocation === undefined) throw new StoryError('the misroute came with no suggested site');

  // 3. The coordinator calls the patient and confirms her site.
  say(`3. The coordinator (demo-coordinator) confirms Location/${confirmedLocation} with the patient: POST Task/${task.id}/$confirm-site`);
  const confirmed = await coordinator.post(`Task/${task.id}/$confirm-site`, {
    resourceType: 'Parameters',
    parameter: [{ name: 'location', valueReference: { reference: `Location/${confirmedLocation}` } }],
  });
  expectStatus(confirmed, 200, '$confirm-site');

  // 4. Coverage: eligibility, then prior authorization, by the gateway with the payer.
  say('4. The gateway verifies coverage with the payer (eligibility, then prior authorization):');
  task = await waitForTask(
    coordinator,
    serviceRequestId,
    (s) => s === 'ready-to-schedule' || isEnd(s) || s === 'auth-required' || s === 'auth-denied',
    timeoutMs,
    statuses,
    onStatus,
  );
  if (businessStatusOf(task) === 'auth-required') {
    // Authorization is required and denial risks stand: the coordinator reviews them, then sends it anyway.
    const risks = [
      ...new Set(
        (task.output ?? [])
          .filter((o: any) => o.type?.coding?.[0]?.code === 'denial-risk')
          .map((o: any) => o.valueCodeableConcept?.coding?.[0]?.code as string),
      ),
    ];
    say(`   authorization required, denial risks for the coordinator to review: ${risks.join(', ') || 'none'}`);
    say(`   the coordinator has the documentation and sends the prior authorization: POST Task/${task.id}/$submit-prior-auth`);
    const submitted = await coordinator.post(`Task/${task.id}/$submit-prior-auth`, { resourceType: 'Parameters' });
    expectStatus(submitted, 202, '$submit-prior-auth');
    task = await waitForTask(coordinator, serviceRequestId, (s) => s === 'ready-to-schedule' || isEnd(s), timeoutMs, statuses, onStatus);
  }
  if (businessStatusOf(task) !== 'ready-to-schedule')
    throw new StoryError(`coverage did not clear the referral: ${businessStatusOf(task)} ${JSON.stringify(outputCodes(task))}`);
  const output = (code: string): any => (task.output ?? []).find((o: any) => o.type?.coding?.[0]?.code === code);
  const estimate = output('patient-cost-estimate')?.valueMoney;
  const authNumber = output('authorization-number')?.valueString;
  const authPeriod = output('authorization-period')?.valuePeriod;
  if (options.payerBase !== undefined) {
    const calls = await fetch(`${new URL(options.payerBase).origin}/_control/requests`)
      .then((r) => r.json() as Promise<Array<{ method: string; path: string; status: number }>>)
      .catch(() => []);
    for (const call of calls) say(`   payer answered ${call.status} to ${call.method} ${call.path}`);
  }
  say(
    `   covered: ${output('verified-coverage')?.valueReference?.reference ?? 'yes'}${estimate ? `, patient's estimate ${estimate.value} ${estimate.currency} per infusion` : ''}`,
  );
  say(
    `   prior authorization: ${authNumber ? `approved, ${authNumber}${authPeriod ? ` (${authPeriod.start ?? '?'} to ${authPeriod.end ?? '?'})` : ''}` : 'not required'}`,
  );

  // 5. A chair at the confirmed site: the first slot, booked.
  const found = await coordinator.get(`Appointment/$find?referral=ServiceRequest/${serviceRequestId}&_count=1`);
  expectStatus(found, 200, 'Appointment/$find');
  const slot = found.body?.entry?.[0]?.resource;
  if (!slot) throw new StoryError('Appointment/$find proposed no slot');
  say(
    `5. First slot found at ${participantLocation(slot) ?? `Location/${confirmedLocation}`}: ${slot.start} to ${slot.end}; booking it: POST Appointment/$book`,
  );
  const booked = await coordinator.post('Appointment/$book', {
    resourceType: 'Parameters',
    parameter: [{ name: 'appt-resource', resource: slot }],
  });
  expectStatus(booked, 201, 'Appointment/$book');
  const bookedAtMs = elapsed();
  const appointment = {
    id: booked.body.id as string,
    status: booked.body.status as string,
    start: booked.body.start as string,
    ...(participantLocation(booked.body) ? { location: participantLocation(booked.body)! } : {}),
  };
  say(
    `   201 Created: Appointment/${appointment.id}, ${appointment.status}, ${appointment.start}  (booked ${(bookedAtMs / 1000).toFixed(1)} s after the start)`,
  );
  await waitForTask(coordinator, serviceRequestId, (s) => s === 'scheduled' || isEnd(s), timeoutMs, statuses, onStatus);

  // 6. What reached the EHR: the gateway's write-back through its outbox.
  say(`6. In the EHR (${options.ehrBase}), written back by the gateway:`);
  const inEhr: StoryResult['inEhr'] = { Task: [], Coverage: [], Appointment: [] };
  const deadline = Date.now() + timeoutMs;
  const types = ['Task', 'Coverage', 'Appointment'] as const;
  const shown = new Set<string>();
  for (;;) {
    for (const type of types) {
      const search = await ehr.get(`${type}?_count=100`);
      for (const entry of search.body?.entry ?? []) {
        const resource = entry.resource;
        if (!mentions(resource, serviceRequestId, appointment.id, task)) continue;
        const key = `${type}/${resource.id}`;
        if (shown.has(key)) continue;
        shown.add(key);
        inEhr[type].push(resource.id);
        say(`   ${key}: ${describeInEhr(resource)}`);
      }
    }
    const scheduledInEhr = types.every((type) => inEhr[type].length > 0);
    if (scheduledInEhr && (await ehrTaskStatus(ehr, inEhr.Task)) === 'scheduled') break;
    if (Date.now() > deadline) throw new StoryError(`the EHR did not receive everything in time: ${JSON.stringify(inEhr)}`);
    await sleep(200);
  }
  say(`   the EHR's Task is at scheduled. Path: ${statuses.join(' -> ')}`);
  return { serviceRequestId, taskId: task.id, statuses, reasons, suggestions, confirmedLocation, appointment, bookedAtMs, inEhr };
}

const END_STATUSES = new Set(['rejected', 'no-suitable-site', 'auth-denied', 'cancelled']);
const isEnd = (status: string): boolean => END_STATUSES.has(status);
const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

async function waitForTask(
  client: FhirClient,
  serviceRequestId: string,
  done: (status: string) => boolean,
  timeoutMs: number,
  seen: string[],
  onStatus: (s: string) => void,
): Promise<any> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const found = await client.get(`Task?focus=ServiceRequest/${serviceRequestId}&_count=1`);
    const task = found.body?.entry?.[0]?.resource;
    const status = businessStatusOf(task);
    if (status !== undefined && status !== seen.at(-1)) onStatus(status);
    if (status !== undefined && done(status)) return task;
    if (Date.now() > deadline) throw new StoryError(`timed out waiting for the referral's Task (last status: ${status ?? 'none'})`);
    await sleep(100);
  }
}

function expectStatus(reply: FhirReply, status: number, what: string): void {
  if (reply.status !== status)
    throw new StoryError(
      `${what} answered ${reply.status}, not ${status}: ${issueLines(reply.body).join('; ') || reply.text.slice(0, 300)}`,
    );
}

function formatAddress(address: any): string {
  if (!address) return 'no address';
  return [...(address.line ?? []), address.city, [address.state, address.postalCode].filter(Boolean).join(' ')].filter(Boolean).join(', ');
}

function participantLocation(appointment: any): string | undefined {
  const participant = (appointment?.participant ?? []).find((p: any) => String(p.actor?.reference ?? '').startsWith('Location/'));
  return participant ? `${participant.actor.display ?? participant.actor.reference}` : undefined;
}

function outputCodes(task: any): string[] {
  return (task.output ?? []).map((o: any) => `${o.type?.coding?.[0]?.code}:${o.valueCodeableConcept?.coding?.[0]?.code ?? ''}`);
}

/** Whether a resource in the EHR belongs to this referral (the gateway's ids differ from the EHR's: compare by content). */
function mentions(resource: any, serviceRequestId: string, appointmentId: string, task: any): boolean {
  const text = JSON.stringify(resource);
  // The verified Coverage goes to the EHR under the identifier VERIFIED_COVERAGE_IDENTIFIER_SYSTEM | <referral id>, its id's suffix.
  const referenced = (task.output ?? [])
    .map((o: any) => String(o.valueReference?.reference ?? '').split('/')[1])
    .filter(Boolean) as string[];
  const ids = [serviceRequestId, appointmentId, task.id, ...referenced.map((id) => id.replace(VERIFIED_COVERAGE_ID_PREFIX, ''))];
  return ids.some((id) => text.includes(id));
}

function describeInEhr(resource: any): string {
  switch (resource.resourceType) {
    case 'Task':
      return `businessStatus ${businessStatusOf(resource) ?? '?'}`;
    case 'Appointment':
      return `${resource.status}, ${resource.start}`;
    case 'Coverage':
      return `${resource.status}, payer ${resource.payor?.[0]?.display ?? resource.payor?.[0]?.reference ?? '?'}`;
    default:
      return resource.resourceType;
  }
}

async function ehrTaskStatus(ehr: FhirClient, ids: readonly string[]): Promise<string | undefined> {
  for (const id of ids) {
    const task = await ehr.get(`Task/${id}`);
    if (businessStatusOf(task.body) === 'scheduled') return 'scheduled';
  }
  return undefined;
}
