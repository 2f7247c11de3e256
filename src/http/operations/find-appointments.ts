/**
 * `GET|POST /fhir/Appointment/$find` (profiles/OperationDefinition-appointment-find.json), in the
 * manner of IHE ITI Scheduling Find Potential Appointments (https://profiles.ihe.net/ITI/Scheduling/):
 * proposals for a cleared referral, at its site or at the sites asked for (docs/scheduling.md).
 * Inputs come from the query (GET) or a Parameters body (POST), read by the definition; what the
 * values mean (a ServiceRequest reference, a count in range, site ids, `near`) is checked here.
 */
import { randomUUID } from 'node:crypto';
import type { Bundle, OperationOutcomeIssue, Reference } from 'fhir/r4.js';
import { parseNear } from '../../scheduling/rules/multi-site-find.js';
import type { SlotFilters } from '../../scheduling/rules/slot-finder.js';
import { badRequest, errorIssue, operationOutcome } from '../../fhir/outcomes.js';
import { readOperationParameters, type ReadParameters } from '../../fhir/operation-parameters.js';
import { findAppointments as findAppointmentsUseCase, type FindSites } from '../../scheduling/stories/schedule-referral.js';
import { withBodyShape } from '../body-shape.js';
import type { FhirHandler, FhirRequest, FhirResponse } from '../fhir-exchange.js';
import { operationDefinition, type OperationContext } from './definitions.js';

const SERVICE_REQUEST = /^ServiceRequest\/([A-Za-z0-9\-.]{1,64})$/;
const SITE = /^(?:Location\/)?([A-Za-z0-9\-.]{1,64})$/;

interface FindInput {
  serviceRequestId?: string;
  count: number;
  filters: SlotFilters;
  window: { start?: Date; end?: Date };
  sites?: FindSites;
  issues: OperationOutcomeIssue[];
}

/** What $find's values mean, every problem reported at the parameter it is about. */
function findInput({ values, at, issues }: ReadParameters): FindInput {
  // In a body the problem is at the parameter's value; in the query, at the parameter's name.
  const where = (name: string, element: string): string => (at[name]?.startsWith('Parameters') ? `${at[name]}.${element}` : name);
  const referral = values['referral'] as Reference | undefined;
  const match = SERVICE_REQUEST.exec(referral?.reference ?? '');
  if (referral !== undefined && !match)
    issues.push(
      errorIssue('value', 'Parameter referral must be ServiceRequest/<id> of a cleared referral', where('referral', 'valueReference')),
    );
  const count = (values['_count'] as number | undefined) ?? 10;
  if (!Number.isInteger(count) || count < 1 || count > 100)
    issues.push(errorIssue('value', `_count must be a whole number from 1 to 100 (got '${count}')`, where('_count', 'valueInteger')));
  const window: FindInput['window'] = {};
  for (const name of ['start', 'end'] as const) {
    const text = values[name] as string | undefined;
    if (text === undefined) continue;
    const date = new Date(text);
    if (Number.isNaN(date.getTime()))
      issues.push(errorIssue('value', `${name} must be a date or an instant (got '${text}')`, where(name, 'valueDateTime')));
    else window[name] = date;
  }
  const filters: SlotFilters = {};
  if (values['evenings-only'] === true) filters.eveningsOnly = true;
  if (values['weekends-only'] === true) filters.weekendsOnly = true;
  if (values['evenings-or-weekends'] === true) filters.eveningsOrWeekends = true;
  const sites: FindSites = {};
  // `location` repeats, and each value may list several, comma-separated (FHIR search's OR).
  const locations = ((values['location'] as Array<string | Reference> | undefined) ?? []).flatMap((value) =>
    typeof value === 'string' ? value.split(',') : [value.reference ?? ''],
  );
  if (locations.length > 0) {
    const ids: string[] = [];
    for (const location of locations) {
      const id = SITE.exec(location.trim())?.[1];
      if (id === undefined)
        issues.push(
          errorIssue('value', `location must be Location/<id> or <id> of a site (got '${location}')`, at['location'] ?? 'location'),
        );
      else ids.push(id);
    }
    sites.locationIds = ids;
  }
  const nearText = values['near'] as string | undefined;
  if (nearText !== undefined) {
    const parsed = parseNear(nearText);
    if ('error' in parsed) issues.push(errorIssue('value', parsed.error, where('near', 'valueString')));
    else sites.near = parsed.near;
  }
  return {
    ...(match ? { serviceRequestId: match[1]! } : {}),
    count,
    filters,
    window,
    ...(sites.locationIds || sites.near ? { sites } : {}),
    issues,
  };
}

export function findAppointmentsOperation({ deps, conformance }: OperationContext): FhirHandler {
  const definition = operationDefinition(conformance, 'appointment-find');
  async function findAppointments(request: FhirRequest): Promise<FhirResponse> {
    const parsed = findInput(readOperationParameters(definition, request));
    if (parsed.issues.length > 0 || parsed.serviceRequestId === undefined) return { outcome: badRequest(parsed.issues) };
    const result = await findAppointmentsUseCase(deps, {
      tenant: request.tenant,
      serviceRequestId: parsed.serviceRequestId,
      count: parsed.count,
      filters: parsed.filters,
      window: parsed.window,
      ...(parsed.sites ? { sites: parsed.sites } : {}),
    });
    if (result.kind === 'refused') return { outcome: result.outcome };
    // Sites asked for but left out travel as a searchset's OperationOutcome entry (search.mode
    // outcome, https://hl7.org/fhir/R4/bundle-definitions.html#Bundle.entry.search.mode).
    const outcomeEntry =
      result.issues.length > 0
        ? [
            {
              fullUrl: `urn:uuid:${randomUUID()}`,
              resource: operationOutcome('find-sites', result.issues),
              search: { mode: 'outcome' as const },
            },
          ]
        : [];
    const bundle: Bundle = {
      resourceType: 'Bundle',
      type: 'searchset',
      total: result.appointments.length,
      entry: [
        ...result.appointments.map((resource) => ({ fullUrl: `urn:uuid:${randomUUID()}`, resource, search: { mode: 'match' as const } })),
        ...outcomeEntry,
      ],
    };
    return { status: 200, resource: bundle };
  }
  return withBodyShape(deps.validator, ['Parameters'], findAppointments);
}
