/**
 * The Express router, generated from the route table (src/http/route-table.ts): one route per row,
 * in the table's order, answered by the row's named handler. No route is registered anywhere
 * else; what is not a row is generic middleware (request context, authorization, body reading,
 * the console's static files, error handling). docs/architecture.md, "Adding a route".
 */
import express, { type NextFunction, type Request, type RequestHandler, type Response, type Router } from 'express';
import { ROUTE_TABLE, type HandlerName, type RouteEntry } from './route-table.js';

/**
 * What a named handler is: the chain Express runs for the row, last the handler itself and before
 * it what that route alone needs (content negotiation, its body reader, a notification's own
 * credential check).
 */
export type RouteHandler = readonly RequestHandler[];

export type RouteHandlers = Record<HandlerName, RouteHandler>;

/** Records the row's path for the access log: the pattern, never the path (it can carry PHI). */
function recordRoute(entry: RouteEntry): RequestHandler {
  return (_req: Request, res: Response, next: NextFunction): void => {
    res.locals['route'] ??= entry.path;
    next();
  };
}

const METHOD = { GET: 'get', POST: 'post', PUT: 'put' } as const;

/**
 * A router of every row whose handler is given. `mountedAt` strips a prefix, for a part of the
 * table served on its own (the CDS Hooks service, the console, in their tests).
 */
export function routerFromTable(
  handlers: Partial<RouteHandlers>,
  options: { mountedAt?: string; rows?: readonly RouteEntry[] } = {},
): Router {
  const router = express.Router();
  const mountedAt = options.mountedAt ?? '';
  for (const entry of options.rows ?? ROUTE_TABLE) {
    const chain = handlers[entry.handler];
    if (chain === undefined) continue;
    if (!entry.path.startsWith(mountedAt)) throw new Error(`${entry.method} ${entry.path} is not under ${mountedAt}`);
    const path = entry.path.slice(mountedAt.length) || '/';
    router[METHOD[entry.method]](path, recordRoute(entry), ...chain);
  }
  return router;
}

/** The whole table's router: every row has its handler (the compiler checks the handlers, this the rows). */
export function tableRouter(handlers: RouteHandlers): Router {
  const missing = ROUTE_TABLE.filter((entry) => handlers[entry.handler] === undefined);
  if (missing.length > 0) throw new Error(`No handler for ${missing.map((entry) => `${entry.method} ${entry.path}`).join(', ')}`);
  return routerFromTable(handlers);
}
