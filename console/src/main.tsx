/** Entry point: reads the console's configuration from the gateway, then mounts the app. */
import { render } from 'preact';
import { createApiClient } from './api/client.js';
import { updateSession, type ConsoleConfig } from './api/session.js';
import { App } from './app.js';
import './styles.css';

async function start(): Promise<void> {
  const root = document.getElementById('app')!;
  try {
    const response = await fetch('/console/config.json', { cache: 'no-store' });
    if (!response.ok) throw new Error(`HTTP ${response.status}`);
    const config = (await response.json()) as ConsoleConfig;
    updateSession({ tenant: config.defaultTenant });
    render(<App api={createApiClient(config)} />, root);
  } catch {
    root.textContent = 'The console could not reach the gateway. Reload the page to try again.';
  }
}

void start();
