/**
 * Dead letters (operators): outbox messages the receiver refused, with the receiver's own
 * OperationOutcome, and Retry once the cause is fixed (POST /admin/outbox/{id}/retry). Paged by
 * the links the API returns.
 */
import type { OperationOutcome } from 'fhir/r4.js';
import type { JSX } from 'preact';
import { useState } from 'preact/hooks';
import { ActionButton, Loading, Messages, useAnnounce, useApi, useLoad } from '../components/common.js';
import { issueMessages } from '../api/outcome.js';

interface OutboxSummary {
  id: string;
  tenant: string;
  kind: string;
  status: string;
  attempts: number;
  createdAt: string;
  updatedAt: string;
  target?: { resourceType?: string; identifier?: { system?: string; value?: string } };
  lastError?: OperationOutcome;
}

interface OutboxPage {
  total: number;
  messages: OutboxSummary[];
  links?: { next?: string; previous?: string };
}

const FIRST_PAGE = 'outbox?status=dead&_count=25';

export function DeadLettersPage(): JSX.Element {
  const api = useApi();
  const announce = useAnnounce();
  const [path, setPath] = useState(FIRST_PAGE);
  const [error, setError] = useState<unknown>(undefined);
  const [retried, setRetried] = useState<Record<string, string>>({});
  const [page, reload] = useLoad(() => api.admin<OutboxPage>(path), [api, path]);
  /** The API's links are absolute paths under /admin; the client takes the part after it. */
  const follow = (link: string | undefined): void => {
    if (link) setPath(link.replace(/^.*?\/admin\//, ''));
  };
  const retry = async (message: OutboxSummary): Promise<void> => {
    setError(undefined);
    try {
      const after = await api.admin<OutboxSummary>(`outbox/${encodeURIComponent(message.id)}/retry`, { method: 'POST' });
      setRetried({ ...retried, [message.id]: after.status });
      announce(`Message sent again; it is ${after.status}.`);
    } catch (e) {
      setError(e);
    }
  };
  return (
    <div>
      <h1>Dead letters</h1>
      <p>Messages to EHRs that the receiver refused. Fix the cause (the receiver's answer is below each), then send the message again.</p>
      <p>
        <button type="button" onClick={() => void reload()}>
          Refresh
        </button>
      </p>
      <Messages error={error} title="The message was not sent again" />
      {page.state === 'loading' && <Loading what="dead letters" />}
      {page.state === 'failed' && <Messages error={page.error} title="The outbox could not be read" />}
      {page.state === 'ready' && (
        <>
          <p>
            {page.value.total} dead letter{page.value.total === 1 ? '' : 's'}.
          </p>
          <div class="table-wrap">
            <table>
              <caption class="visually-hidden">Dead letters</caption>
              <thead>
                <tr>
                  <th scope="col">Since</th>
                  <th scope="col">Organisation</th>
                  <th scope="col">What</th>
                  <th scope="col">Attempts</th>
                  <th scope="col">The receiver's answer</th>
                  <th scope="col">Action</th>
                </tr>
              </thead>
              <tbody>
                {page.value.messages.map((m) => (
                  <tr key={m.id}>
                    <td>{new Date(m.updatedAt).toLocaleString()}</td>
                    <td>{m.tenant}</td>
                    <td>
                      {m.target?.resourceType ?? m.kind}
                      <span class="muted"> {m.target?.identifier?.value ?? ''}</span>
                    </td>
                    <td>{m.attempts}</td>
                    <td>
                      {m.lastError ? (
                        <ul class="outcome">
                          {issueMessages(m.lastError).map((issue, i) => (
                            <li key={i}>
                              <span class="severity">{issue.severity}</span> {issue.text}
                              {issue.where.length > 0 && <span class="where"> (at {issue.where.join(', ')})</span>}
                            </li>
                          ))}
                        </ul>
                      ) : (
                        'none recorded'
                      )}
                    </td>
                    <td>
                      {retried[m.id] ? (
                        <span role="status">sent again ({retried[m.id]})</span>
                      ) : (
                        <ActionButton onAction={() => retry(m)}>
                          Retry<span class="visually-hidden"> message {m.id}</span>
                        </ActionButton>
                      )}
                    </td>
                  </tr>
                ))}
                {page.value.messages.length === 0 && (
                  <tr>
                    <td colSpan={6}>No dead letters.</td>
                  </tr>
                )}
              </tbody>
            </table>
          </div>
          <div class="pager">
            <button type="button" disabled={!page.value.links?.previous} onClick={() => follow(page.value.links?.previous)}>
              Previous page
            </button>
            <button type="button" disabled={!page.value.links?.next} onClick={() => follow(page.value.links?.next)}>
              Next page
            </button>
          </div>
        </>
      )}
    </div>
  );
}
