/**
 * The queues (issue 14): referrals by business status, with counts, age, drug, requested period,
 * site and whose move it is. Paged by the API's own links (`next`, `previous`, `self`), sorted by
 * the API (`_sort` on how long a referral has been in its queue), filtered by the API (received
 * dates) and, within the page shown, by a word typed. Refreshed in place every few seconds.
 */
import type { Bundle, Patient, ServiceRequest, Task } from 'fhir/r4.js';
import type { JSX } from 'preact';
import { useEffect, useMemo, useRef, useState } from 'preact/hooks';
import type { ApiClient, SearchParams } from '../api/client.js';
import { Link, Loading, Messages, useApi, useLoad } from '../components/common.js';
import { useDirectory } from '../components/directory.js';
import { filterRows, queueRows, referencedPatientIds, serviceRequestIds, type QueueRow } from '../model/queue.js';
import {
  QUEUE_STATUSES,
  REFERRAL_STATUS_SYSTEM,
  formatAge,
  referralStatusDisplay,
  waitingOn,
  type QueueStatus,
} from '../model/referral.js';

type Sort = 'waiting-longest' | 'newest';

const statusParam = (status: QueueStatus): string => `${REFERRAL_STATUS_SYSTEM}|${status}`;

function resources<T>(bundle: Bundle, type: string): T[] {
  return (bundle.entry ?? []).map((e) => e.resource).filter((r) => r?.resourceType === type) as T[];
}

/** The orders and patients of a page of Tasks: one search each, by `_id`. */
async function rowsOf(api: ApiClient, page: Bundle, signal: AbortSignal): Promise<QueueRow[]> {
  const tasks = resources<Task>(page, 'Task');
  const ids = serviceRequestIds(tasks);
  const orders =
    ids.length === 0
      ? []
      : resources<ServiceRequest>(
          await api.search(
            'ServiceRequest',
            [
              ['_id', ids.join(',')],
              ['_count', String(ids.length)],
            ],
            { signal },
          ),
          'ServiceRequest',
        );
  const patientIds = referencedPatientIds(orders);
  const patients =
    patientIds.length === 0
      ? []
      : resources<Patient>(
          await api.search(
            'Patient',
            [
              ['_id', patientIds.join(',')],
              ['_count', String(patientIds.length)],
            ],
            { signal },
          ),
          'Patient',
        );
  return queueRows(tasks, new Map(orders.map((o) => [o.id!, o])), new Map(patients.map((p) => [p.id!, p])));
}

function QueueCounts(props: { current: QueueStatus; counts: Partial<Record<QueueStatus, number>> }): JSX.Element {
  return (
    <nav aria-label="Queues" class="queue-tabs">
      <ul>
        {QUEUE_STATUSES.map((status) => (
          <li key={status}>
            <Link to={{ page: 'queue', status }} aria-current={status === props.current ? 'page' : undefined} class="queue-tab">
              <span class="queue-tab-name">{referralStatusDisplay(status)}</span>
              <span class="count" aria-label={`${props.counts[status] ?? 'unknown'} referrals`}>
                {props.counts[status] ?? '…'}
              </span>
            </Link>
          </li>
        ))}
      </ul>
    </nav>
  );
}

export function QueuePage(props: { status: QueueStatus }): JSX.Element {
  const api = useApi();
  const directory = useDirectory();
  const [sort, setSort] = useState<Sort>('waiting-longest');
  const [receivedFrom, setReceivedFrom] = useState('');
  const [receivedTo, setReceivedTo] = useState('');
  const [pageSize, setPageSize] = useState(50);
  const [filter, setFilter] = useState('');
  /** The page shown, as the server's link; undefined = the first page of the current criteria. */
  const [pageLink, setPageLink] = useState<string | undefined>(undefined);
  /** Links of the pages before this one, for Previous when the server gives no `previous` link. */
  const [earlier, setEarlier] = useState<string[]>([]);
  const [updatedAt, setUpdatedAt] = useState<Date | undefined>(undefined);
  const [counts, setCounts] = useState<Partial<Record<QueueStatus, number>>>({});
  const rendered = useRef(false);

  const criteria: SearchParams = useMemo(
    () => [
      ['business-status', statusParam(props.status)],
      ['_sort', sort === 'waiting-longest' ? '_lastUpdated' : '-_lastUpdated'],
      ['_count', String(pageSize)],
      ...(receivedFrom ? ([['authored-on', `ge${receivedFrom}`]] as const) : []),
      ...(receivedTo ? ([['authored-on', `le${receivedTo}`]] as const) : []),
    ],
    [props.status, sort, pageSize, receivedFrom, receivedTo],
  );

  // New criteria or another queue: back to the first page.
  useEffect(() => {
    setPageLink(undefined);
    setEarlier([]);
  }, [criteria]);

  const [page, reload] = useLoad(
    async (signal) => {
      const bundle = pageLink !== undefined ? await api.follow(pageLink, { signal }) : await api.search('Task', criteria, { signal });
      const rows = await rowsOf(api, bundle, signal);
      setUpdatedAt(new Date());
      return { bundle, rows };
    },
    [api, criteria, pageLink],
  );

  const loadCounts = async (): Promise<void> => {
    const entries = await Promise.all(
      QUEUE_STATUSES.map(async (status) => {
        const bundle = await api.search('Task', [
          ['business-status', statusParam(status)],
          ['_count', '0'],
          ['_total', 'accurate'],
        ]);
        return [status, bundle.total] as const;
      }),
    );
    setCounts(Object.fromEntries(entries.filter(([, total]) => total !== undefined)));
  };

  // The counts wait for the first page of rows: on a busy database, the rows a coordinator reads
  // first come before the eight counts.
  const firstPageShown = page.state !== 'loading';
  useEffect(() => {
    if (!firstPageShown) return undefined;
    void loadCounts().catch(() => undefined);
    const every = Math.max(5, api.config.refreshSeconds) * 1000;
    const timer = setInterval(() => {
      if (document.visibilityState !== 'visible') return;
      void loadCounts().catch(() => undefined);
      void reload();
    }, every);
    return () => clearInterval(timer);
  }, [api, reload, firstPageShown]);

  // The first time the rows are on screen: a mark the browser test reads to time the queue's opening.
  useEffect(() => {
    if (page.state === 'ready' && !rendered.current) {
      rendered.current = true;
      performance.mark('console:queue-rendered');
    }
  }, [page]);

  const siteName = (id: string | undefined): string =>
    id === undefined ? '' : directory.state === 'ready' ? (directory.value.sites.get(id)?.name ?? id) : id;
  const now = updatedAt ?? new Date();
  const waiting = waitingOn(props.status);
  const shown = page.state === 'ready' ? filterRows(page.value.rows, filter, siteName) : [];

  const goTo = (relation: 'next' | 'previous'): void => {
    if (page.state !== 'ready') return;
    const self = page.value.bundle.link?.find((l) => l.relation === 'self')?.url;
    const link = page.value.bundle.link?.find((l) => l.relation === relation || (relation === 'previous' && l.relation === 'prev'))?.url;
    if (relation === 'next' && link) {
      setEarlier([...earlier, ...(self ? [self] : [])]);
      setPageLink(link);
    } else if (relation === 'previous') {
      const back = earlier[earlier.length - 1];
      setEarlier(earlier.slice(0, -1));
      setPageLink(link ?? back);
    }
  };
  const hasNext = page.state === 'ready' && page.value.bundle.link?.some((l) => l.relation === 'next');
  const hasPrevious =
    page.state === 'ready' &&
    (earlier.length > 0 || page.value.bundle.link?.some((l) => l.relation === 'previous' || l.relation === 'prev'));

  return (
    <div class="queue-page">
      <h1>
        {referralStatusDisplay(props.status)} <span class="muted">· {counts[props.status] ?? '…'} referrals</span>
      </h1>
      <QueueCounts current={props.status} counts={counts} />
      <p class="waiting-on">
        Waiting on <strong>{waiting.party}</strong>: {waiting.action}.
      </p>
      <form class="filters" onSubmit={(e) => e.preventDefault()} aria-label="Sort and filter the queue">
        <label>
          Order
          <select value={sort} onChange={(e) => setSort((e.currentTarget as HTMLSelectElement).value as Sort)}>
            <option value="waiting-longest">Longest in queue first</option>
            <option value="newest">Most recent first</option>
          </select>
        </label>
        <label>
          Received from
          <input type="date" value={receivedFrom} onChange={(e) => setReceivedFrom((e.currentTarget as HTMLInputElement).value)} />
        </label>
        <label>
          Received to
          <input type="date" value={receivedTo} onChange={(e) => setReceivedTo((e.currentTarget as HTMLInputElement).value)} />
        </label>
        <label>
          Per page
          <select value={String(pageSize)} onChange={(e) => setPageSize(Number((e.currentTarget as HTMLSelectElement).value))}>
            {[25, 50, 100].map((n) => (
              <option key={n} value={String(n)}>
                {n}
              </option>
            ))}
          </select>
        </label>
        <label class="grow">
          Find on this page (patient, drug, site)
          <input type="search" value={filter} onInput={(e) => setFilter((e.currentTarget as HTMLInputElement).value)} />
        </label>
      </form>
      {page.state === 'loading' && <Loading what="the queue" />}
      {page.state === 'failed' && <Messages error={page.error} title="The queue could not be loaded" />}
      {page.state === 'ready' && (
        <>
          <div class="table-wrap">
            <table class="queue">
              <caption class="visually-hidden">
                {referralStatusDisplay(props.status)}: {shown.length} referrals on this page
              </caption>
              <thead>
                <tr>
                  <th scope="col">Patient</th>
                  <th scope="col">Drug</th>
                  <th scope="col">Requested period</th>
                  <th scope="col">Site</th>
                  <th scope="col">Received</th>
                  <th scope="col" aria-sort={sort === 'waiting-longest' ? 'ascending' : 'descending'}>
                    <button type="button" class="sort" onClick={() => setSort(sort === 'waiting-longest' ? 'newest' : 'waiting-longest')}>
                      In queue {sort === 'waiting-longest' ? '▲' : '▼'}
                      <span class="visually-hidden">, change the order</span>
                    </button>
                  </th>
                  <th scope="col">Waiting on</th>
                </tr>
              </thead>
              <tbody>
                {shown.map((row) => (
                  <tr key={row.taskId}>
                    <td>
                      <Link to={{ page: 'referral', taskId: row.taskId }}>{row.patient}</Link>
                      {row.priority !== 'routine' && <span class={`badge badge-${row.priority}`}>{row.priority}</span>}
                    </td>
                    <td>{row.drug}</td>
                    <td>{row.requestedPeriod}</td>
                    <td>{siteName(row.siteId)}</td>
                    <td>{formatAge(row.receivedAt, now)}</td>
                    <td>{formatAge(row.inQueueSince, now)}</td>
                    <td>{waiting.party}</td>
                  </tr>
                ))}
                {shown.length === 0 && (
                  <tr>
                    <td colSpan={7}>{filter ? 'Nothing on this page matches.' : 'This queue is empty.'}</td>
                  </tr>
                )}
              </tbody>
            </table>
          </div>
          <div class="pager">
            <button type="button" disabled={!hasPrevious} onClick={() => goTo('previous')}>
              Previous page
            </button>
            <button type="button" disabled={!hasNext} onClick={() => goTo('next')}>
              Next page
            </button>
            <span class="muted" aria-live="off">
              Updated {updatedAt?.toLocaleTimeString() ?? ''}; refreshes every {api.config.refreshSeconds} s
            </span>
          </div>
        </>
      )}
    </div>
  );
}
