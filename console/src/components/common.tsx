/** Small building blocks every page uses: links, messages from the API, loading states. */
import type { ComponentChildren, JSX } from 'preact';
import { createContext } from 'preact';
import { useCallback, useContext, useEffect, useRef, useState } from 'preact/hooks';
import { ApiError, type ApiClient } from '../api/client.js';
import type { IssueMessage } from '../api/outcome.js';
import { navigate, pathOf, type Route } from '../router.js';

export const ApiContext = createContext<ApiClient | undefined>(undefined);

export function useApi(): ApiClient {
  const api = useContext(ApiContext);
  if (!api) throw new Error('useApi outside ApiContext');
  return api;
}

/** A link to a console page: a real <a href> (open in a new tab works), routed in place on click. */
export function Link(props: {
  to: Route;
  children: ComponentChildren;
  class?: string;
  'aria-current'?: 'page' | 'true' | undefined;
}): JSX.Element {
  const href = pathOf(props.to);
  return (
    <a
      href={href}
      class={props.class}
      aria-current={props['aria-current']}
      onClick={(event) => {
        if (event.button !== 0 || event.metaKey || event.ctrlKey || event.shiftKey || event.altKey) return;
        event.preventDefault();
        navigate(props.to);
      }}
    >
      {props.children}
    </a>
  );
}

export function messagesOf(error: unknown): IssueMessage[] {
  if (error instanceof ApiError) return error.messages;
  return [{ severity: 'error', text: error instanceof Error ? error.message : String(error), where: [] }];
}

/** What the API said, as a list a screen reader announces (role=alert for errors). */
export function Messages(props: { error?: unknown; messages?: IssueMessage[]; title?: string }): JSX.Element | null {
  const messages = props.messages ?? (props.error !== undefined ? messagesOf(props.error) : []);
  if (messages.length === 0) return null;
  const worst = messages.some((m) => m.severity === 'error' || m.severity === 'fatal')
    ? 'error'
    : messages.some((m) => m.severity === 'warning')
      ? 'warning'
      : 'information';
  return (
    <div class={`messages messages-${worst}`} role={worst === 'error' ? 'alert' : 'status'}>
      {props.title && <p class="messages-title">{props.title}</p>}
      <ul>
        {messages.map((m, i) => (
          <li key={i}>
            <span class="severity">{m.severity}</span> {m.text}
            {m.where.length > 0 && <span class="where"> (at {m.where.join(', ')})</span>}
          </li>
        ))}
      </ul>
    </div>
  );
}

export function Loading(props: { what: string }): JSX.Element {
  return (
    <p class="loading" role="status">
      Loading {props.what}…
    </p>
  );
}

export type Loaded<T> = { state: 'loading' } | { state: 'ready'; value: T } | { state: 'failed'; error: unknown };

/**
 * Loads with `load` whenever `key` changes; `reload()` loads again (after an action). A load
 * superseded by a newer one is aborted and its answer ignored.
 */
export function useLoad<T>(load: (signal: AbortSignal) => Promise<T>, key: readonly unknown[]): [Loaded<T>, () => Promise<void>] {
  const [loaded, setLoaded] = useState<Loaded<T>>({ state: 'loading' });
  const current = useRef<AbortController | undefined>(undefined);
  const run = useCallback(async (quiet: boolean): Promise<void> => {
    current.current?.abort();
    const controller = new AbortController();
    current.current = controller;
    if (!quiet) setLoaded({ state: 'loading' });
    try {
      const value = await load(controller.signal);
      if (!controller.signal.aborted) setLoaded({ state: 'ready', value });
    } catch (error) {
      if (!controller.signal.aborted) setLoaded({ state: 'failed', error });
    }
  }, key);
  useEffect(() => {
    void run(false);
    return () => current.current?.abort();
  }, [run]);
  const reload = useCallback(() => run(true), [run]);
  return [loaded, reload];
}

/** A button that runs an action once at a time, shows it is busy, and reports what came back. */
export function ActionButton(props: {
  onAction: () => Promise<string | void>;
  children: ComponentChildren;
  class?: string;
  disabled?: boolean;
  describedBy?: string;
  onError?: (error: unknown) => void;
}): JSX.Element {
  const [busy, setBusy] = useState(false);
  return (
    <button
      type="button"
      class={props.class}
      disabled={props.disabled || busy}
      aria-busy={busy}
      aria-describedby={props.describedBy}
      onClick={() => {
        setBusy(true);
        props
          .onAction()
          .catch((error: unknown) => props.onError?.(error))
          .finally(() => setBusy(false));
      }}
    >
      {props.children}
    </button>
  );
}

/** Announces short status lines to screen readers (the page's one polite live region). */
export const AnnounceContext = createContext<(text: string) => void>(() => undefined);

export function useAnnounce(): (text: string) => void {
  return useContext(AnnounceContext);
}

export function Section(props: { title: string; id?: string; children: ComponentChildren; actions?: ComponentChildren }): JSX.Element {
  const headingId = `${props.id ?? props.title.toLowerCase().replace(/[^a-z0-9]+/g, '-')}-heading`;
  return (
    <section class="card" aria-labelledby={headingId} id={props.id}>
      <div class="card-head">
        <h2 id={headingId}>{props.title}</h2>
        {props.actions}
      </div>
      {props.children}
    </section>
  );
}
