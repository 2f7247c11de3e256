/**
 * Entry point: reads the console's configuration from the gateway; back from the identity
 * provider (/console/signed-in), completes the sign-in and takes the code out of the address bar;
 * then mounts the app.
 */
import { render } from 'preact';
import { createApiClient } from './api/client.js';
import { updateSession, type ConsoleConfig } from './api/session.js';
import { completeSignIn, SIGNED_IN_PATH, signInProblem } from './api/sign-in.js';
import { App } from './app.js';
import './styles.css';

async function start(): Promise<void> {
  const root = document.getElementById('app')!;
  let config: ConsoleConfig;
  try {
    const response = await fetch('/console/config.json', { cache: 'no-store' });
    if (!response.ok) throw new Error(`HTTP ${response.status}`);
    config = (await response.json()) as ConsoleConfig;
  } catch {
    root.textContent = 'The console could not reach the gateway. Reload the page to try again.';
    return;
  }
  updateSession({ tenant: config.defaultTenant });
  if (location.pathname === SIGNED_IN_PATH) {
    if (config.signIn === undefined) history.replaceState(null, '', '/console/');
    else {
      try {
        const signedIn = await completeSignIn(config.signIn);
        updateSession({ accessToken: signedIn.accessToken, ...(signedIn.name !== undefined ? { personName: signedIn.name } : {}) });
        history.replaceState(null, '', signedIn.returnTo);
      } catch (error) {
        history.replaceState(null, '', '/console/');
        updateSession({ accessToken: undefined, notice: signInProblem(error) });
      }
    }
  }
  render(<App api={createApiClient(config)} />, root);
}

void start();
