/**
 * The console's frame: a skip link, the navigation, who is signed in, one polite live region, and
 * the page of the route; or, before sign-in, the sign-in page (OpenID Connect at the identity
 * provider the gateway names: api/sign-in.ts). Roles and tenants are the gateway's to decide from
 * the token: the console only shows what the API answers.
 */
import type { JSX } from 'preact';
import { useCallback, useEffect, useRef, useState } from 'preact/hooks';
import type { ApiClient } from './api/client.js';
import { currentSession, onSessionChange, updateSession, type Session, type SignInConfig } from './api/session.js';
import { signInProblem, startSignIn } from './api/sign-in.js';
import { AnnounceContext, ApiContext, Link } from './components/common.js';
import { DeadLettersPage } from './pages/dead-letters-page.js';
import { ConnectionsPage } from './pages/connections-page.js';
import { NetworkPage } from './pages/network-page.js';
import { QueuePage } from './pages/queue-page.js';
import { ReferralPage } from './pages/referral-page.js';
import { SchedulePage } from './pages/schedule-page.js';
import { SitesPage } from './pages/sites-page.js';
import { AuditPage } from './pages/audit-page.js';
import { useRoute, type Route } from './router.js';

const TITLES: Record<Route['page'], string> = {
  queue: 'Queues',
  referral: 'Referral',
  schedule: 'Scheduling',
  'dead-letters': 'Dead letters',
  connections: 'Connections',
  sites: 'Directory sites',
  audit: 'Audit trail',
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
    case 'audit':
      return <AuditPage />;
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

function useSession(): Session {
  const [session, setSession] = useState(currentSession());
  useEffect(() => onSessionChange((s) => setSession(s)), []);
  return session;
}

/** Who is signed in, and signing out (the token is forgotten in this tab; the identity provider's own session is its own). */
function SignedInBar(props: { session: Session }): JSX.Element {
  return (
    <form class="signed-in" onSubmit={(event) => (event.preventDefault(), updateSession({ accessToken: undefined }))}>
      <span>Signed in as {props.session.personName ?? 'a token'}</span>
      <button type="submit">Sign out</button>
    </form>
  );
}

/**
 * For developers: sign in by pasting an access token (`npm run -s token -- demo-coordinator`, or
 * one from the organisation's SMART client); the API then takes the role and tenant from it.
 */
function TokenField(props: { class?: string }): JSX.Element {
  return (
    <form
      class={props.class ?? 'tenant'}
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
      <button type="submit">Use this token</button>
    </form>
  );
}

/** Before sign-in: off to the identity provider, back at /console/signed-in to the page asked for. */
function SignInPage(props: { signIn: SignInConfig; notice: string | undefined }): JSX.Element {
  const [problem, setProblem] = useState<string | undefined>(undefined);
  const [leaving, setLeaving] = useState(false);
  const signIn = async (): Promise<void> => {
    setProblem(undefined);
    setLeaving(true);
    try {
      await startSignIn(props.signIn, location.pathname);
    } catch (error) {
      setLeaving(false);
      setProblem(`The identity provider could not be reached: ${signInProblem(error)}`);
    }
  };
  const notice = problem ?? props.notice;
  return (
    <div class="sign-in">
      <h1>Sign in</h1>
      {notice !== undefined && (
        <p class="notice" role="alert">
          {notice}
        </p>
      )}
      {props.signIn.demo ? (
        <p>
          <span class="demo-flag">Demo</span> This gateway runs its demo identity provider: choose a demo user there, the coordinator of the
          demo hospital or the network's operator. In production people sign in with their organisation's account.
        </p>
      ) : (
        <p>Sign in with your organisation's account to work the referral queues.</p>
      )}
      <button type="button" class="primary" disabled={leaving} onClick={() => void signIn()}>
        {props.signIn.demo ? 'Sign in with the demo identity provider' : "Sign in with your organisation's account"}
      </button>
      <details>
        <summary>For developers: use an access token instead</summary>
        <TokenField class="token-form" />
      </details>
    </div>
  );
}

export function App(props: { api: ApiClient }): JSX.Element {
  const route = useRoute();
  const session = useSession();
  const signIn = props.api.config.signIn;
  const signingIn = signIn !== undefined && session.accessToken === undefined;
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
    document.title = `${signingIn ? 'Sign in' : TITLES[route.page]} · Infusion referrals console`;
    // After navigating (not on the first load), move focus to the page, so keyboard and screen
    // reader users start there rather than on the link they left.
    if (firstRoute.current) firstRoute.current = false;
    else main.current?.focus();
  }, [route, signingIn]);
  const section =
    route.page === 'dead-letters' || route.page === 'connections' || route.page === 'sites' || route.page === 'audit'
      ? 'operators'
      : route.page === 'network'
        ? 'network'
        : 'queues';
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
              <li>
                <Link to={{ page: 'audit' }} aria-current={route.page === 'audit' ? 'page' : undefined}>
                  Audit
                </Link>
              </li>
            </ul>
          </nav>
          {session.accessToken !== undefined ? (
            <SignedInBar session={session} />
          ) : signIn === undefined ? (
            <>
              <TenantField />
              <TokenField />
            </>
          ) : null}
        </header>
        <main id="main" ref={main} tabIndex={-1}>
          {signingIn ? <SignInPage signIn={signIn} notice={session.notice} /> : <Page key={`${sessionKey}`} route={route} />}
        </main>
        <div class="visually-hidden" role="status" aria-live="polite">
          {announcement}
        </div>
      </AnnounceContext.Provider>
    </ApiContext.Provider>
  );
}
