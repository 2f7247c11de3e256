/**
 * The audit trail at the HTTP edge (issue 10, docs/audit.md). Every request to a guarded route of
 * the route table opens an audit context (who, which interaction) that the store's write
 * transactions read, so a change's AuditEvent is committed with the change. When the answer is
 * known (the response's `finish`), a request that changed nothing (a read, a search, an operation
 * that only answers, a refusal) gets its one AuditEvent. The record holds references and
 * parameter names only: never a query value, a body, or an OperationOutcome's text.
 *
 * It runs before the authorization middleware, so refusals (401, 403, 404) are recorded too;
 * the caller is read from res.locals when the event is written, after authorization set it.
 */
import type { NextFunction, Request, Response } from 'express';
import { newTimeOrderedId } from '../fhir/ids.js';
import type { Caller } from '../auth/caller.js';
import type { Logger } from '../logging/logger.js';
import {
  auditOutcomeOf,
  runAudited,
  type AuditAction,
  type AuditAgent,
  type AuditContext,
  type AuditRecord,
  type AuditTrail,
} from '../ports/audit-trail.js';
import type { Clock } from '../ports/clock.js';
import { DIRECTORY_TYPES } from '../ports/gateway-deps.js';
import { findRoute, type RouteEntry } from './route-table.js';

/** A literal relative reference (`ServiceRequest/123`): a parameter value of this shape names a resource, not a person. */
const REFERENCE = /^[A-Z][A-Za-z]{1,63}\/[A-Za-z0-9\-.]{1,64}$/;
const RESOURCE_TYPE = /^[A-Z][A-Za-z]{1,63}$/;

export interface AuditedInteraction {
  action: AuditAction;
  subtype: string;
  operation?: string;
  /** The type the request is about, when it names one. */
  resourceType?: string;
  entities: string[];
  query?: { resourceType: string; parameterNames: string[] };
}

/**
 * What a request to this route does, in BALP's terms (https://profiles.ihe.net/ITI/BALP/): the
 * RESTful interaction (https://hl7.org/fhir/R4/codesystem-restful-interaction.html) and its
 * action code (C/R/U/D/E; searches and operations are E, Execute).
 */
export function auditedInteraction(
  entry: RouteEntry,
  params: Record<string, string>,
  query: ReadonlyArray<readonly [string, string]>,
): AuditedInteraction {
  const literalType = /^\/fhir\/([A-Z][A-Za-z]+)(?:\/|$)/.exec(entry.path)?.[1];
  const resourceType = params['type'] ?? literalType;
  const id = params['id'];
  const self = resourceType !== undefined && RESOURCE_TYPE.test(resourceType) && id !== undefined ? [`${resourceType}/${id}`] : [];
  // Reference-valued parameters (focus=ServiceRequest/1, referral=...) name the resources a search
  // or operation is about: kept as entities, so the operator's entity= search finds them. Not for
  // the audit trail's own search, whose entity= names no access to that resource.
  const referenced =
    resourceType === 'AuditEvent' ? [] : query.flatMap(([, value]) => value.split(',')).filter((value) => REFERENCE.test(value));
  const entities = [...new Set([...self, ...referenced])];
  const parameterNames = [...new Set(query.map(([name]) => name))];
  const operation = entry.path.split('/').find((segment) => segment.startsWith('$'));
  const base = { ...(resourceType !== undefined ? { resourceType } : {}), entities };
  if (!entry.path.startsWith('/fhir')) {
    // Notifications and the operators' outbox API: named by the route pattern, never its values.
    return { action: entry.method === 'GET' ? 'R' : 'E', subtype: 'operation', operation: `${entry.method} ${entry.path}`, entities };
  }
  if (operation !== undefined) return { ...base, action: 'E', subtype: 'operation', operation };
  if (entry.path === '/fhir') return { ...base, action: 'E', subtype: 'transaction' };
  if (entry.path.endsWith('/_history/:versionId')) return { ...base, action: 'R', subtype: 'vread' };
  if (entry.path.endsWith('/_history')) return { ...base, action: 'R', subtype: 'history-instance' };
  if (entry.method === 'PUT') return { ...base, action: 'U', subtype: 'update' };
  if (entry.method === 'POST') return { ...base, action: 'C', subtype: 'create' };
  if (id !== undefined) return { ...base, action: 'R', subtype: 'read' };
  return {
    ...base,
    action: 'E',
    subtype: 'search-type',
    ...(resourceType !== undefined ? { query: { resourceType, parameterNames } } : {}),
  };
}

/** CDS Hooks calls are public in the route table (their own JWT is checked by the CDS Hooks routes) but read PHI. */
const CDS_HOOK_ROUTES = new Set(['/cds-services/:id', '/cds-services/:id/feedback']);

/** The patient a CDS Hooks call is about (`context.patientId`, an id), as a reference. */
function cdsPatient(body: unknown): string[] {
  const patientId = (body as { context?: { patientId?: unknown } } | undefined)?.context?.patientId;
  return typeof patientId === 'string' && /^[A-Za-z0-9\-.]{1,64}$/.test(patientId) ? [`Patient/${patientId}`] : [];
}

function agentOf(res: Response): AuditAgent {
  const caller = res.locals['caller'] as Caller | undefined;
  const cdsClient = res.locals['cdsClientIssuer'];
  if (caller === undefined && typeof cdsClient === 'string') return { who: cdsClient, role: 'cds-client' };
  if (caller === undefined) return { who: 'anonymous', role: 'none' };
  const tenant = typeof res.locals['tenant'] === 'string' ? (res.locals['tenant'] as string) : caller.tenant;
  return { who: caller.clientId, role: caller.role, ...(tenant !== undefined ? { tenant } : {}) };
}

export interface AuditRequestOptions {
  trail: AuditTrail;
  clock: Clock;
  logger: Logger;
}

export function auditRequests(options: AuditRequestOptions) {
  return (req: Request, res: Response, next: NextFunction): void => {
    const found = findRoute(req.method, req.path);
    const cdsHook = found !== undefined && found.entry.method === 'POST' && CDS_HOOK_ROUTES.has(found.entry.path);
    if (found === undefined || (found.entry.access.kind === 'public' && !cdsHook)) {
      next();
      return;
    }
    const url = new URL(req.originalUrl, 'http://placeholder');
    const interaction = auditedInteraction(found.entry, found.params, [...url.searchParams.entries()]);
    // The network's directory (sites, services, plans) carries no PHI: its reads are not recorded.
    // Its changes are, by the store, like every change.
    const directoryRead =
      (interaction.action === 'R' || interaction.subtype === 'search-type') && DIRECTORY_TYPES.includes(interaction.resourceType ?? '');
    const context: AuditContext = {
      agent: () => agentOf(res),
      subtype: interaction.subtype,
      ...(interaction.operation !== undefined ? { operation: interaction.operation } : {}),
      entities: interaction.entities,
      clock: options.clock,
      newId: newTimeOrderedId,
      changesRecorded: 0,
    };
    res.on('finish', () => {
      // A change was recorded by its own transaction; a refusal is recorded whatever happened before.
      if (context.changesRecorded > 0 && res.statusCode < 400) return;
      if (directoryRead && res.statusCode < 400) return;
      const record: AuditRecord = {
        id: newTimeOrderedId(),
        recorded: options.clock.now(),
        action: interaction.action,
        subtype: interaction.subtype,
        ...(interaction.operation !== undefined ? { operation: interaction.operation } : {}),
        outcome: auditOutcomeOf(res.statusCode),
        ...(res.statusCode >= 400 ? { outcomeDescription: `HTTP ${res.statusCode}` } : {}),
        agent: agentOf(res),
        entities: cdsHook ? [...interaction.entities, ...cdsPatient(req.body)] : interaction.entities,
        ...(interaction.query ? { query: interaction.query } : {}),
      };
      options.trail.recordAuditEvents([record]).catch((error: unknown) => {
        // Never the error's message: a database error can quote the values it was given.
        options.logger.error('an AuditEvent could not be recorded', {
          errorName: (error as Error).name,
          subtype: record.subtype,
          status: res.statusCode,
        });
      });
    });
    runAudited(context, next);
  };
}
