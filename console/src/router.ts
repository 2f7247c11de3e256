/**
 * The console's pages, routed in the browser under /console/ with ids only (never a name or other
 * PHI in a URL: the address bar, the history and any referrer would keep it). The gateway answers
 * every /console/* path with the app (src/http/console-routes.ts).
 */
import { useEffect, useState } from 'preact/hooks';
import { isQueueStatus, type QueueStatus } from './model/referral.js';

export const CONSOLE_BASE = '/console';

export type Route =
  | { page: 'queue'; status: QueueStatus }
  | { page: 'referral'; taskId: string }
  | { page: 'schedule'; taskId: string }
  | { page: 'dead-letters' }
  | { page: 'connections' }
  | { page: 'sites' }
  | { page: 'audit' }
  | { page: 'network' }
  | { page: 'not-found' };

const ID = '[A-Za-z0-9\\-.]{1,64}';

/** The route of a path below /console. Pure. */
export function routeOf(pathname: string): Route {
  const path = pathname.startsWith(CONSOLE_BASE) ? pathname.slice(CONSOLE_BASE.length) : pathname;
  const clean = path.replace(/\/+$/, '') || '/';
  if (clean === '/') return { page: 'queue', status: 'misroute-suspected' };
  let match = new RegExp(`^/queues/([a-z-]+)$`).exec(clean);
  if (match) return isQueueStatus(match[1]) ? { page: 'queue', status: match[1] } : { page: 'not-found' };
  match = new RegExp(`^/referrals/(${ID})$`).exec(clean);
  if (match) return { page: 'referral', taskId: match[1]! };
  match = new RegExp(`^/referrals/(${ID})/schedule$`).exec(clean);
  if (match) return { page: 'schedule', taskId: match[1]! };
  if (clean === '/operators/dead-letters') return { page: 'dead-letters' };
  if (clean === '/operators/connections') return { page: 'connections' };
  if (clean === '/operators/sites') return { page: 'sites' };
  if (clean === '/operators/audit') return { page: 'audit' };
  if (clean === '/network') return { page: 'network' };
  return { page: 'not-found' };
}

export function pathOf(route: Route): string {
  switch (route.page) {
    case 'queue':
      return `${CONSOLE_BASE}/queues/${route.status}`;
    case 'referral':
      return `${CONSOLE_BASE}/referrals/${encodeURIComponent(route.taskId)}`;
    case 'schedule':
      return `${CONSOLE_BASE}/referrals/${encodeURIComponent(route.taskId)}/schedule`;
    case 'dead-letters':
      return `${CONSOLE_BASE}/operators/dead-letters`;
    case 'connections':
      return `${CONSOLE_BASE}/operators/connections`;
    case 'sites':
      return `${CONSOLE_BASE}/operators/sites`;
    case 'audit':
      return `${CONSOLE_BASE}/operators/audit`;
    case 'network':
      return `${CONSOLE_BASE}/network`;
    case 'not-found':
      return `${CONSOLE_BASE}/`;
  }
}

const listeners = new Set<() => void>();

export function navigate(route: Route): void {
  const path = pathOf(route);
  if (path !== location.pathname) history.pushState(null, '', path);
  for (const listener of listeners) listener();
}

export function useRoute(): Route {
  const [route, setRoute] = useState<Route>(() => routeOf(location.pathname));
  useEffect(() => {
    const update = (): void => setRoute(routeOf(location.pathname));
    listeners.add(update);
    window.addEventListener('popstate', update);
    return () => {
      listeners.delete(update);
      window.removeEventListener('popstate', update);
    };
  }, []);
  return route;
}
