/** Connection health (operators): each EHR and payer the gateway talks to, probed now, with the outbox behind each EHR. */
import type { OperationOutcome } from 'fhir/r4.js';
import type { JSX } from 'preact';
import { Link, Loading, Messages, useApi, useLoad } from '../components/common.js';
import { issueMessages } from '../api/outcome.js';

interface Connection {
  kind: 'ehr' | 'payer';
  id: string;
  name?: string;
  baseUrl: string;
  poll?: boolean;
  /** Up: a FHIR R4 CapabilityStatement at /metadata; degraded: an answer that is not one (the problem says why); down: no answer. */
  probe: { state: 'up' | 'degraded' | 'down'; httpStatus?: number; latencyMs: number; problem?: string; fhirVersion?: string };
  outbox?: {
    pending: number;
    dead: number;
    delivered: number;
    oldestPendingSince?: string;
    oldestPendingAttempts?: number;
    lastError?: OperationOutcome;
    lastDeliveredAt?: string;
  };
}

const STATE_LABEL = { up: 'Answering', degraded: 'Failing', down: 'Unreachable' } as const;

function ConnectionCard(props: { connection: Connection }): JSX.Element {
  const c = props.connection;
  return (
    <article class={`connection connection-${c.probe.state}`} aria-labelledby={`conn-${c.kind}-${c.id}`}>
      <h3 id={`conn-${c.kind}-${c.id}`}>
        {c.kind === 'ehr' ? 'EHR of' : 'Payer'} {c.name ?? c.id}
      </h3>
      <p>
        <span class={`state state-${c.probe.state}`}>{STATE_LABEL[c.probe.state]}</span>{' '}
        {c.probe.httpStatus !== undefined ? `HTTP ${c.probe.httpStatus}` : c.probe.problem} in {c.probe.latencyMs} ms
        {c.probe.fhirVersion !== undefined ? `, FHIR ${c.probe.fhirVersion}` : ''}
      </p>
      {c.probe.httpStatus !== undefined && c.probe.problem !== undefined && <p>{c.probe.problem}</p>}
      <p class="muted">{c.baseUrl}</p>
      {c.outbox && (
        <dl class="facts">
          <dt>Waiting to send</dt>
          <dd>{c.outbox.pending}</dd>
          <dt>Dead letters</dt>
          <dd>{c.outbox.dead > 0 ? <Link to={{ page: 'dead-letters' }}>{c.outbox.dead}</Link> : 0}</dd>
          <dt>Delivered</dt>
          <dd>
            {c.outbox.delivered}
            {c.outbox.lastDeliveredAt ? `, last ${new Date(c.outbox.lastDeliveredAt).toLocaleString()}` : ''}
          </dd>
          {c.outbox.oldestPendingSince && (
            <>
              <dt>Oldest waiting since</dt>
              <dd>
                {new Date(c.outbox.oldestPendingSince).toLocaleString()} ({c.outbox.oldestPendingAttempts} attempts)
              </dd>
            </>
          )}
          {c.outbox.lastError && (
            <>
              <dt>Why it waits</dt>
              <dd>
                {issueMessages(c.outbox.lastError)
                  .map((m) => m.text)
                  .join(' ')}
              </dd>
            </>
          )}
          {c.poll !== undefined && (
            <>
              <dt>Referrals pulled</dt>
              <dd>{c.poll ? 'yes, on a schedule' : 'no (push only)'}</dd>
            </>
          )}
        </dl>
      )}
    </article>
  );
}

export function ConnectionsPage(): JSX.Element {
  const api = useApi();
  const [loaded, reload] = useLoad(() => api.admin<{ checkedAt: string; connections: Connection[] }>('connections'), [api]);
  return (
    <div>
      <h1>Connections</h1>
      <p>
        <button type="button" onClick={() => void reload()}>
          Check again
        </button>
      </p>
      {loaded.state === 'loading' && <Loading what="connection health" />}
      {loaded.state === 'failed' && <Messages error={loaded.error} title="Connection health could not be read" />}
      {loaded.state === 'ready' && (
        <>
          <p class="muted">Checked {new Date(loaded.value.checkedAt).toLocaleString()}.</p>
          {loaded.value.connections.length === 0 && (
            <p>No EHR or payer connection is configured: write-back is off and coverage is verified by hand.</p>
          )}
          {(['ehr', 'payer'] as const).map((kind) => {
            const list = loaded.value.connections.filter((c) => c.kind === kind);
            return list.length === 0 ? null : (
              <section key={kind} aria-labelledby={`${kind}-heading`}>
                <h2 id={`${kind}-heading`}>{kind === 'ehr' ? 'EHRs' : 'Payers'}</h2>
                <div class="cards">
                  {list.map((c) => (
                    <ConnectionCard key={`${c.kind}-${c.id}`} connection={c} />
                  ))}
                </div>
              </section>
            );
          })}
        </>
      )}
    </div>
  );
}
