/**
 * Stand-in for the Bearer-token check of the trust work (it puts the verified caller on
 * res.locals.caller): test gateways accept the opaque tokens minted here, each for one Caller.
 * Test-only: the product never takes identity from anything but a verified token.
 */
import type { NextFunction, Request, Response } from 'express';
import { randomBytes } from 'node:crypto';
import type { Caller } from '../../src/auth/caller.js';

const callers = new Map<string, Caller>();

/** `Authorization: Bearer <token>` of a caller the test gateways will recognise. */
export function authorizationFor(caller: Partial<Caller> & Pick<Caller, 'role'>): Record<string, string> {
  const token = `test-caller-${randomBytes(12).toString('hex')}`;
  callers.set(token, { clientId: `test-${caller.role}`, scopes: [], ...caller });
  return { authorization: `Bearer ${token}` };
}

export const payerCaller = (payer: string): Record<string, string> => authorizationFor({ role: 'payer', payer, clientId: `test-${payer}` });
export const ehrCaller = (tenant: string): Record<string, string> => authorizationFor({ role: 'ehr', tenant, clientId: `test-ehr-${tenant}` });

export function testCallerAuthentication(req: Request, res: Response, next: NextFunction): void {
  const token = /^Bearer (test-caller-[0-9a-f]+)$/.exec(req.get('authorization') ?? '')?.[1];
  const caller = token === undefined ? undefined : callers.get(token);
  if (caller !== undefined) res.locals['caller'] = caller;
  next();
}
