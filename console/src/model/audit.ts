/**
 * The operators' audit trail search (issue 10's audit trail, issue 14's operators' pages): the
 * search parameters of `GET /fhir/AuditEvent?agent=&entity=&date=` from the page's form, and each
 * AuditEvent (IHE Basic Audit Log Patterns shape,
 * https://profiles.ihe.net/ITI/BALP/) as a table row. Pure.
 *
 * AuditEvents carry references only, never a name or other PHI; the search values are ids and
 * references too, and they go into the API call's query, never into the console's own URL.
 */
import type { AuditEvent } from 'fhir/r4.js';

export interface AuditFilter {
  /** Who acted: a client id or person (as the AuditEvent's agent names them). */
  agent: string;
  /** What was touched: a reference such as `ServiceRequest/123`. */
  entity: string;
  /** From this day (inclusive), `YYYY-MM-DD`. */
  from: string;
  /** To this day (inclusive), `YYYY-MM-DD`. */
  to: string;
}

export const AUDIT_PAGE_SIZE = 25;

const DAY = /^\d{4}-\d{2}-\d{2}$/;

/** Problems with the form, by field, before anything is asked of the API. */
export function auditFilterProblems(filter: AuditFilter): Partial<Record<keyof AuditFilter, string>> {
  const problems: Partial<Record<keyof AuditFilter, string>> = {};
  if (filter.from !== '' && !DAY.test(filter.from)) problems.from = 'Give a date as YYYY-MM-DD';
  if (filter.to !== '' && !DAY.test(filter.to)) problems.to = 'Give a date as YYYY-MM-DD';
  if (problems.from === undefined && problems.to === undefined && filter.from !== '' && filter.to !== '' && filter.from > filter.to)
    problems.to = 'The end comes before the start';
  if (filter.entity.trim() !== '' && !/^[A-Z][A-Za-z]+\/[A-Za-z0-9\-.]{1,64}$/.test(filter.entity.trim()))
    problems.entity = 'Give a reference such as ServiceRequest/123';
  return problems;
}

/**
 * The search (https://hl7.org/fhir/R4/auditevent.html#search): `date` twice for a range
 * (https://hl7.org/fhir/R4/search.html#date, ge and le on whole days), newest first, one page.
 */
export function auditSearchParams(filter: AuditFilter): Array<[string, string]> {
  const params: Array<[string, string]> = [];
  if (filter.agent.trim() !== '') params.push(['agent', filter.agent.trim()]);
  if (filter.entity.trim() !== '') params.push(['entity', filter.entity.trim()]);
  if (filter.from !== '') params.push(['date', `ge${filter.from}`]);
  if (filter.to !== '') params.push(['date', `le${filter.to}`]);
  params.push(['_sort', '-date'], ['_count', String(AUDIT_PAGE_SIZE)]);
  return params;
}

export interface AuditRow {
  id: string;
  recorded: string;
  action: string;
  event: string;
  outcome: string;
  /** Who: each requestor agent's client id (or reference), with its role when given. */
  agents: string[];
  /** What: the entities' references, and a query's resource type. */
  entities: string[];
  failed: boolean;
}

const ACTIONS: Record<string, string> = { C: 'create', R: 'read', U: 'update', D: 'delete', E: 'execute' };
const OUTCOMES: Record<string, string> = { '0': 'success', '4': 'minor failure', '8': 'serious failure', '12': 'major failure' };

export function auditRow(event: AuditEvent): AuditRow {
  const agents = (event.agent ?? []).map((agent) => {
    const who = agent.who?.identifier?.value ?? agent.who?.reference ?? agent.who?.display ?? agent.altId ?? agent.name ?? 'unknown';
    const role =
      agent.role?.flatMap((r) => r.coding ?? []).map((c) => c.code ?? c.display)[0] ??
      agent.type?.coding?.[0]?.display ??
      agent.type?.coding?.[0]?.code;
    return role !== undefined && role !== who ? `${who} (${role})` : who;
  });
  const entities = (event.entity ?? []).flatMap((entity) => {
    if (entity.what?.reference !== undefined) return [entity.what.reference];
    if (entity.query !== undefined || entity.type?.code !== undefined) {
      const type = entity.type?.code ?? entity.what?.type;
      return type !== undefined ? [`search of ${type}`] : ['a search'];
    }
    return entity.what?.identifier?.value !== undefined ? [entity.what.identifier.value] : [];
  });
  const subtype = event.subtype?.map((s) => s.display ?? s.code).filter((s): s is string => s !== undefined) ?? [];
  const outcome = event.outcome ?? '0';
  return {
    id: event.id ?? '',
    recorded: event.recorded,
    action: ACTIONS[event.action ?? ''] ?? event.action ?? '',
    event: subtype.length > 0 ? subtype.join(', ') : (event.type.display ?? event.type.code ?? ''),
    outcome: OUTCOMES[outcome] ?? outcome,
    agents,
    entities,
    failed: outcome !== '0',
  };
}
