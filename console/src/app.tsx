/**
 * The console's frame: a skip link, the navigation, the organisation worked for (phase A: the
 * tenant; phase B: from the person's token), one polite live region, and the page of the route.
 */
import type { JSX } from 'preact';
import { useCallback, useEffect, useRef, useState } from 'preact/hooks';
import type { ApiClient } from './api/client.js';
import { currentSession, onSessionChange, updateSession } from './api/session.js';
import { AnnounceContext, ApiContext, Link } from './components/common.js';
import { DeadLettersPage } from './pages/dead-letters-page.js';
import { ConnectionsPage } from './pages/connections-page.js';
import { NetworkPage } from './pages/network-page.js';
import { QueuePage } from './pages/queue-page.js';
import { ReferralPage } from './pages/referral-page.js';
import { SchedulePage } from './pages/schedule-page.js';
import { SitesPage } from './pages/sites-page.js';
import { useRoute, type Route } from './router.js';

const TITLES: Record<Route['page'], string> = {
  queue: 'Queues',
  referral: 'Referral',
  schedule: 'Scheduling',
  'dead-letters': 'Dead letters',
  connections: 'Connections',
  sites: 'Directory sites',
  network: "The network's picture",
  'not-found': 'Not found',
};

function Page(props: { route: Route }): JSX.Element {
  const { route } = props;
  switch (route.page) {
    case 'queue':
      return <QueuePage status={route.status} />;
    case 'referral':
      return <ReferralPage taskId={route.taskId} />;
    case 'schedule':
      return <SchedulePage taskId={route.taskId} />;
    case 'dead-letters':
      return <DeadLettersPage />;
    case 'connections':
      return <ConnectionsPage />;
    case 'sites':
      return <SitesPage />;
    case 'network':
      return <NetworkPage />;
    case 'not-found':
      return (
        <div>
          <h1>Page not found</h1>
          <p>
            <Link to={{ page: 'queue', status: 'misroute-suspected' }}>Go to the queues</Link>
          </p>
        </div>
      );
  }
}

function TenantField(): JSX.Element {
  const [tenant, setTenant] = useState(currentSession().tenant);
  useEffect(() => onSessionChange((s) => setTenant(s.tenant)), []);
  return (
    <form
      class="tenant"
      onSubmit={(event) => {
        event.preventDefault();
        const value = new FormData(event.currentTarget as HTMLFormElement).get('tenant');
        if (typeof value === 'string' && value.trim() !== '') updateSession({ tenant: value.trim() });
      }}
    >
      <label>
        Organisation
        <input name="tenant" value={tenant} size={12} autoComplete="off" spellcheck={false} />
      </label>
      <button type="submit">Switch</button>
    </form>
  );
}

/**
 * Sign-in by pasting an access token (`npm run -s token -- demo-coordinator`, or one from the
 * organisation's SMART client); the API then takes the tenant from the token.
 */
function TokenField(): JSX.Element {
  const [signedIn, setSignedIn] = useState(currentSession().accessToken !== undefined);
  useEffect(() => onSessionChange((s) => setSignedIn(s.accessToken !== undefined)), []);
  if (signedIn) {
    return (
      <form class="tenant" onSubmit={(event) => (event.preventDefault(), updateSession({ accessToken: undefined }))}>
        <span>Signed in with a token</span>
        <button type="submit">Sign out</button>
      </form>
    );
  }
  return (
    <form
      class="tenant"
      onSubmit={(event) => {
        event.preventDefault();
        const value = new FormData(event.currentTarget as HTMLFormElement).get('token');
        if (typeof value === 'string' && value.trim() !== '') updateSession({ accessToken: value.trim() });
      }}
    >
      <label>
        Access token
        <input name="token" type="password" size={12} autoComplete="off" spellcheck={false} />
      </label>
      <button type="submit">Sign in</button>
    </form>
  );
}

export function App(props: { api: ApiClient }): JSX.Element {
  const route = useRoute();
  const [announcement, setAnnouncement] = useState('');
  const [sessionKey, setSessionKey] = useState(0);
  const main = useRef<HTMLElement>(null);
  const announce = useCallback((text: string) => {
    setAnnouncement('');
    // A new text node each time, so the same sentence twice is announced twice.
    setTimeout(() => setAnnouncement(text), 50);
  }, []);
  useEffect(() => onSessionChange(() => setSessionKey((k) => k + 1)), []);
  const firstRoute = useRef(true);
  useEffect(() => {
    document.title = `${TITLES[route.page]} · Infusion referrals console`;
    // After navigating (not on the first load), move focus to the page, so keyboard and screen
    // reader users start there rather than on the link they left.
    if (firstRoute.current) firstRoute.current = false;
    else main.current?.focus();
  }, [route]);
  const section = route.page === 'dead-letters' || route.page === 'connections' || route.page === 'sites' ? 'operators' : route.page === 'network' ? 'network' : 'queues';
  return (
    <ApiContext.Provider value={props.api}>
      <AnnounceContext.Provider value={announce}>
        <a class="skip-link" href="#main">
          Skip to the page
        </a>
        <header class="top">
          <p class="brand">Infusion referrals</p>
          <nav aria-label="Sections">
            <ul>
              <li>
                <Link to={{ page: 'queue', status: 'misroute-suspected' }} aria-current={section === 'queues' ? 'true' : undefined}>
                  Queues
                </Link>
              </li>
              <li>
                <Link to={{ page: 'network' }} aria-current={section === 'network' ? 'true' : undefined}>
                  Network
                </Link>
              </li>
              <li>
                <Link to={{ page: 'dead-letters' }} aria-current={route.page === 'dead-letters' ? 'page' : undefined}>
                  Dead letters
                </Link>
              </li>
              <li>
                <Link to={{ page: 'connections' }} aria-current={route.page === 'connections' ? 'page' : undefined}>
                  Connections
                </Link>
              </li>
              <li>
                <Link to={{ page: 'sites' }} aria-current={route.page === 'sites' ? 'page' : undefined}>
                  Sites
                </Link>
              </li>
            </ul>
          </nav>
          <TenantField />
          <TokenField />
        </header>
        <main id="main" ref={main} tabIndex={-1}>
          <Page key={`${sessionKey}`} route={route} />
        </main>
        <div class="visually-hidden" role="status" aria-live="polite">
          {announcement}
        </div>
      </AnnounceContext.Provider>
    </ApiContext.Provider>
  );
}
