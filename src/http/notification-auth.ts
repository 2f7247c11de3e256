/**
 * Who may send notifications (issue 10):
 *
 *   POST /payer-notifications/{payer}        only a payer's token whose `payer` is {payer}: a payer
 *                                           cannot speak for another (the forged-A1 attack).
 *   POST /subscription-notifications/{tenant} the tenant's own EHR (a token of role ehr for that
 *                                           tenant), or, when the EHR's Subscription was set up with
 *                                           a channel header (Subscription.channel.header, e.g.
 *                                           `X-Subscription-Secret: <secret>`), that secret.
 *
 * The caller comes from res.locals.caller, put there by the Bearer-token check (src/auth/caller.ts);
 * without one the request is anonymous. Identity never comes from any other request header.
 */
import { createHash, timingSafeEqual } from 'node:crypto';
import type { NextFunction, Request, Response } from 'express';
import type { OperationOutcome } from 'fhir/r4.js';
import type { Caller } from '../auth/caller.js';

/** The channel header an EHR's Subscription may carry (https://hl7.org/fhir/R4/subscription-definitions.html#Subscription.channel.header). */
export const SUBSCRIPTION_SECRET_HEADER = 'x-subscription-secret';

function callerOf(res: Response): Caller | undefined {
  const caller: unknown = res.locals['caller'];
  return typeof caller === 'object' && caller !== null ? (caller as Caller) : undefined;
}

function refuse(res: Response, status: 401 | 403, diagnostics: string): void {
  const outcome: OperationOutcome = {
    resourceType: 'OperationOutcome',
    issue: [{ severity: 'error', code: status === 401 ? 'login' : 'forbidden', diagnostics, expression: ['Authorization'] }],
  };
  if (status === 401) res.setHeader('WWW-Authenticate', 'Bearer');
  res.status(status).type('application/fhir+json').send(JSON.stringify(outcome));
}

/** Equal secrets, compared in constant time (both hashed first, so their lengths do not leak either). */
export function secretsMatch(presented: string, expected: string): boolean {
  const a = createHash('sha256').update(presented, 'utf8').digest();
  const b = createHash('sha256').update(expected, 'utf8').digest();
  return timingSafeEqual(a, b);
}

/** Only the payer named in the path, by its own token. */
export function requireNotifyingPayer(param: string) {
  return (req: Request, res: Response, next: NextFunction): void => {
    const caller = callerOf(res);
    if (caller === undefined) {
      refuse(res, 401, "A payer notification needs the payer's access token");
      return;
    }
    if (caller.role !== 'payer' || caller.payer === undefined || caller.payer !== String(req.params[param])) {
      refuse(res, 403, 'Only the payer named in the path may send its notifications');
      return;
    }
    next();
  };
}

/** Only the tenant's EHR: its token, or the channel header secret its Subscription was set up with. */
export function requireNotifyingEhr(param: string, secretFor: (tenant: string) => string | undefined) {
  return (req: Request, res: Response, next: NextFunction): void => {
    const tenant = String(req.params[param]);
    const caller = callerOf(res);
    if (caller !== undefined) {
      if (caller.role === 'ehr' && caller.tenant === tenant) next();
      else refuse(res, 403, "Only the tenant's EHR may send its Subscription notifications");
      return;
    }
    const presented = req.get(SUBSCRIPTION_SECRET_HEADER);
    const expected = secretFor(tenant);
    if (presented !== undefined && expected !== undefined && secretsMatch(presented, expected)) {
      next();
      return;
    }
    refuse(res, 401, "A Subscription notification needs the EHR's access token or the Subscription's channel header secret");
  };
}
