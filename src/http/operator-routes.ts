/**
 * The operator's view of the outbox: list messages (dead letters first of all), read one, and send
 * a dead one again once its cause is fixed. JSON for people and scripts; errors are
 * OperationOutcomes like everywhere else. Payloads are summarised (type and identifier), not
 * shown: they carry patient references.
 */
import type { Request, Response } from 'express';
import { badRequest, conflict, errorIssue, notFound, statusOf } from '../fhir/outcomes.js';
import type { OutboxMessage, OutboxStatus, OutboxStore } from '../ports/resource-store.js';
import type { Clock } from '../ports/clock.js';
import type { Logger } from '../logging/logger.js';
import type { RouteHandlers } from './table-router.js';

const STATUSES: readonly OutboxStatus[] = ['pending', 'delivering', 'delivered', 'dead'];

function summary(message: OutboxMessage): Record<string, unknown> {
  const payload = message.payload as { resource?: { resourceType?: string }; identifier?: { system?: string; value?: string } } | null;
  return {
    id: message.id,
    tenant: message.tenant,
    kind: message.kind,
    orderingKey: message.orderingKey,
    sequence: message.sequence,
    status: message.status,
    attempts: message.attempts,
    nextAttemptAt: message.nextAttemptAt,
    createdAt: message.createdAt,
    updatedAt: message.updatedAt,
    ...(message.deliveredAt ? { deliveredAt: message.deliveredAt } : {}),
    target: { resourceType: payload?.resource?.resourceType, identifier: payload?.identifier },
    ...(message.lastError ? { lastError: message.lastError } : {}),
  };
}

function sendOutcome(res: Response, outcome: ReturnType<typeof badRequest>): void {
  res.status(statusOf(outcome)).type('application/fhir+json').send(JSON.stringify(outcome));
}

/** The operators' rows' named handlers (src/http/route-table.ts). */
export function operatorHandlers(deps: {
  outbox: OutboxStore;
  clock: Clock;
  logger: Logger;
}): Pick<RouteHandlers, 'listOutbox' | 'readOutboxMessage' | 'retryOutboxMessage'> {
  async function listOutbox(req: Request, res: Response): Promise<void> {
    const status = typeof req.query['status'] === 'string' ? req.query['status'] : undefined;
    const tenant = typeof req.query['tenant'] === 'string' ? req.query['tenant'] : undefined;
    const count = Number(req.query['_count'] ?? 50);
    const offset = Number(req.query['_offset'] ?? 0);
    const issues = [];
    if (status !== undefined && !STATUSES.includes(status as OutboxStatus))
      issues.push(errorIssue('value', `status must be one of ${STATUSES.join(', ')}`, 'status'));
    if (!Number.isInteger(count) || count < 0 || count > 500)
      issues.push(errorIssue('value', '_count must be a whole number from 0 to 500', '_count'));
    if (!Number.isInteger(offset) || offset < 0) issues.push(errorIssue('value', '_offset must be a whole number', '_offset'));
    if (issues.length > 0) return sendOutcome(res, badRequest(issues));
    const page = await deps.outbox.listOutboxMessages({
      ...(status !== undefined ? { status: status as OutboxStatus } : {}),
      ...(tenant !== undefined ? { tenant } : {}),
      count,
      offset,
    });
    // Paging links, so a client follows them instead of building offsets (the FHIR habit).
    const pageLink = (at: number): string =>
      `${req.baseUrl}${req.path}?${new URLSearchParams({ ...(status !== undefined ? { status } : {}), ...(tenant !== undefined ? { tenant } : {}), _count: String(count), _offset: String(at) })}`;
    const links = {
      ...(offset + count < page.total && count > 0 ? { next: pageLink(offset + count) } : {}),
      ...(offset > 0 ? { previous: pageLink(Math.max(0, offset - count)) } : {}),
    };
    res.json({ total: page.total, messages: page.messages.map(summary), links });
  }

  async function readOutboxMessage(req: Request, res: Response): Promise<void> {
    const message = await deps.outbox.readOutboxMessage(String(req.params['id']));
    if (!message) return sendOutcome(res, notFound('Outbox message', String(req.params['id'])));
    res.json(summary(message));
  }

  async function retryOutboxMessage(req: Request, res: Response): Promise<void> {
    const id = String(req.params['id']);
    const message = await deps.outbox.readOutboxMessage(id);
    if (!message) return sendOutcome(res, notFound('Outbox message', id));
    const retried = await deps.outbox.retryDeadMessage(id, deps.clock.now());
    if (!retried) return sendOutcome(res, conflict(`Only dead messages can be retried; this one is ${message.status}`, 'status'));
    deps.logger.info('dead outbox message sent again by an operator', { messageId: id });
    res.json(summary((await deps.outbox.readOutboxMessage(id)) as OutboxMessage));
  }

  return { listOutbox: [listOutbox], readOutboxMessage: [readOutboxMessage], retryOutboxMessage: [retryOutboxMessage] };
}
