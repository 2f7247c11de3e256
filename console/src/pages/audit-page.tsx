/**
 * The audit trail (operators): AuditEvents searched by who acted (agent), what they touched
 * (entity) and a range of days, newest first, paged by the links the API writes
 * (`GET /fhir/AuditEvent?agent=&entity=&date=ge..&date=le..`, operators only). The filter stays in
 * the page, never in its URL.
 */
import type { AuditEvent, Bundle } from 'fhir/r4.js';
import type { JSX } from 'preact';
import { useState } from 'preact/hooks';
import { Loading, Messages, useAnnounce, useApi } from '../components/common.js';
import { auditFilterProblems, auditRow, auditSearchParams, type AuditFilter } from '../model/audit.js';
import { linkOf } from '../api/links.js';

const EMPTY: AuditFilter = { agent: '', entity: '', from: '', to: '' };

type Results = { state: 'idle' } | { state: 'loading' } | { state: 'ready'; bundle: Bundle } | { state: 'failed'; error: unknown };

function when(recorded: string): string {
  const date = new Date(recorded);
  return Number.isNaN(date.getTime())
    ? recorded
    : date.toLocaleString('en-US', {
        year: 'numeric',
        month: 'short',
        day: 'numeric',
        hour: 'numeric',
        minute: '2-digit',
        second: '2-digit',
        timeZoneName: 'short',
      });
}

export function AuditPage(): JSX.Element {
  const api = useApi();
  const announce = useAnnounce();
  const [filter, setFilter] = useState<AuditFilter>(EMPTY);
  const [problems, setProblems] = useState<Partial<Record<keyof AuditFilter, string>>>({});
  const [results, setResults] = useState<Results>({ state: 'idle' });
  const [pageNumber, setPageNumber] = useState(1);

  const show = async (load: () => Promise<Bundle | undefined>, page: number): Promise<void> => {
    setResults({ state: 'loading' });
    try {
      const bundle = await load();
      if (bundle === undefined) return;
      setResults({ state: 'ready', bundle });
      setPageNumber(page);
      const count = bundle.entry?.filter((e) => e.resource?.resourceType === 'AuditEvent').length ?? 0;
      announce(
        `${count} audit event${count === 1 ? '' : 's'} on page ${page}${bundle.total !== undefined ? ` of ${bundle.total} found` : ''}.`,
      );
    } catch (error) {
      setResults({ state: 'failed', error });
    }
  };

  const search = (event: Event): void => {
    event.preventDefault();
    const found = auditFilterProblems(filter);
    setProblems(found);
    if (Object.keys(found).length > 0) return;
    void show(() => api.search('AuditEvent', auditSearchParams(filter)), 1);
  };

  const field = (
    name: keyof AuditFilter,
    label: string,
    props: { type?: 'text' | 'date'; hint?: string; placeholder?: string } = {},
  ): JSX.Element => {
    const problem = problems[name];
    const hintId = `audit-${name}-hint`;
    const errorId = `audit-${name}-error`;
    const described = [props.hint !== undefined ? hintId : '', problem !== undefined ? errorId : ''].filter(Boolean).join(' ');
    return (
      <div class="field">
        <label for={`audit-${name}`}>{label}</label>
        <input
          id={`audit-${name}`}
          name={name}
          // Preact types each input type apart; both take a string value here.
          type={(props.type ?? 'text') as 'text'}
          value={filter[name]}
          autoComplete="off"
          spellcheck={false}
          {...(props.placeholder !== undefined ? { placeholder: props.placeholder } : {})}
          {...(described !== '' ? { 'aria-describedby': described } : {})}
          aria-invalid={problem !== undefined ? 'true' : undefined}
          onInput={(e) => setFilter({ ...filter, [name]: (e.currentTarget as HTMLInputElement).value })}
        />
        {props.hint !== undefined && (
          <span id={hintId} class="hint">
            {props.hint}
          </span>
        )}
        {problem !== undefined && (
          <span id={errorId} class="field-error">
            {problem}
          </span>
        )}
      </div>
    );
  };

  const bundle = results.state === 'ready' ? results.bundle : undefined;
  const rows = (bundle?.entry ?? []).flatMap((e) =>
    e.resource?.resourceType === 'AuditEvent' ? [auditRow(e.resource as AuditEvent)] : [],
  );
  return (
    <div>
      <h1>Audit trail</h1>
      <p>
        Every read, search, change and operation on patient data is recorded: who (the client or person), what (references only), when, and
        the outcome.
      </p>
      <form class="audit-filter" onSubmit={search} aria-label="Search the audit trail">
        {field('agent', 'Who acted', { hint: 'A client id or a signed-in person, e.g. demo-ehr' })}
        {field('entity', 'What was touched', { hint: 'A reference, e.g. ServiceRequest/123' })}
        {field('from', 'From day', { type: 'date' })}
        {field('to', 'To day', { type: 'date' })}
        <div class="field actions">
          <button type="submit">Search</button>
          <button
            type="button"
            onClick={() => {
              setFilter(EMPTY);
              setProblems({});
              setResults({ state: 'idle' });
            }}
          >
            Clear
          </button>
        </div>
      </form>
      {results.state === 'loading' && <Loading what="the audit trail" />}
      {results.state === 'failed' && <Messages error={results.error} title="The audit trail could not be searched" />}
      {bundle !== undefined && (
        <>
          <p class="status-line">
            {bundle.total !== undefined ? `${bundle.total} found; ` : ''}page {pageNumber}
          </p>
          {rows.length === 0 ? (
            <p>No audit event matches.</p>
          ) : (
            <div class="table-wrap">
              <table class="audit">
                <caption class="visually-hidden">Audit events, newest first</caption>
                <thead>
                  <tr>
                    <th scope="col">When</th>
                    <th scope="col">Who</th>
                    <th scope="col">Action</th>
                    <th scope="col">Event</th>
                    <th scope="col">What</th>
                    <th scope="col">Outcome</th>
                  </tr>
                </thead>
                <tbody>
                  {rows.map((row) => (
                    <tr key={row.id}>
                      <td>
                        <time dateTime={row.recorded}>{when(row.recorded)}</time>
                      </td>
                      <td>{row.agents.join(', ')}</td>
                      <td>{row.action}</td>
                      <td>{row.event}</td>
                      <td>
                        {row.entities.map((entity) => (
                          <code key={entity} class="reference">
                            {entity}
                          </code>
                        ))}
                      </td>
                      <td>
                        <span class={`state state-${row.failed ? 'down' : 'up'}`}>{row.outcome}</span>
                      </td>
                    </tr>
                  ))}
                </tbody>
              </table>
            </div>
          )}
          <nav class="pager" aria-label="Audit pages">
            <button
              type="button"
              disabled={linkOf(bundle, 'previous') === undefined}
              onClick={() => void show(() => api.page(bundle, 'previous'), pageNumber - 1)}
            >
              Previous page
            </button>
            <button
              type="button"
              disabled={linkOf(bundle, 'next') === undefined}
              onClick={() => void show(() => api.page(bundle, 'next'), pageNumber + 1)}
            >
              Next page
            </button>
          </nav>
        </>
      )}
    </div>
  );
}
