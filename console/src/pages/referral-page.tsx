/**
 * One referral (issue 14): the order as the EHR sent it; the site check's reasons, a drawn map and
 * the ranked suggestions with distances and networks, confirmed with one action ($confirm-site);
 * coverage, the patient's estimate and the denial risks with the documents the catalog asks for,
 * and $submit-prior-auth; the appeal Task as a checklist; the sub-tasks; the Task's history.
 */
import type { Money, Patient, ServiceRequest, Task } from 'fhir/r4.js';
import type { JSX } from 'preact';
import { useEffect, useState } from 'preact/hooks';
import { ActionButton, Link, Loading, Messages, Section, useAnnounce, useApi, useLoad } from '../components/common.js';
import { useDirectory } from '../components/directory.js';
import { homePosition } from '../components/home-position.js';
import { SiteMap, type MapSite } from '../components/site-map.js';
import {
  APPEAL_STEPS,
  isAppealTask,
  appealOutcome,
  appealStepStatuses,
  denialReasons,
  stepLabel,
  withResult,
  withStep,
  type AppealStepStatus,
} from '../model/appeal.js';
import { networkNames, type DirectoryView } from '../model/directory.js';
import { distanceKm, type GeoPoint } from '../model/geo.js';
import { timeline } from '../model/history.js';
import {
  businessStatusOf,
  conceptText,
  containedOf,
  coverageInformation,
  drugOf,
  formatDate,
  formatPeriod,
  idOf,
  isQueueStatus,
  misrouteReasons,
  outputsOfType,
  patientName,
  referralStatusDisplay,
  requestedPeriodOf,
  requestedSiteIdOf,
  requesterName,
  serviceRequestIdOf,
  suggestedSites,
  waitingOn,
} from '../model/referral.js';

interface ReferralData {
  task: Task & { id: string };
  order: ServiceRequest & { id: string };
  patient?: Patient;
  /** Tasks that are part of the referral's (appeals, reschedules, renewals). */
  subTasks: Task[];
}

const money = (value: Money | undefined): string =>
  value?.value === undefined ? '' : `${value.currency ?? ''} ${value.value.toLocaleString('en-US', { minimumFractionDigits: 2 })}`.trim();

function OrderSection(props: { data: ReferralData; directory?: DirectoryView }): JSX.Element {
  const { order, patient } = props.data;
  const siteId = requestedSiteIdOf(order);
  const placer = order.identifier?.find((i) => i.type?.coding?.some((c) => c.code === 'PLAC')) ?? order.identifier?.[0];
  const diagnoses = (order.reasonCode ?? []).map(conceptText).filter(Boolean);
  return (
    <Section title="The order as sent" id="order">
      <dl class="facts">
        <dt>Patient</dt>
        <dd>
          {patientName(patient)}
          {patient?.birthDate ? `, born ${patient.birthDate}` : ''}
        </dd>
        <dt>Drug</dt>
        <dd>{drugOf(order)}</dd>
        {order.orderDetail?.map((d, i) => (
          <>
            <dt key={`dt${i}`}>Dose</dt>
            <dd key={`dd${i}`}>{conceptText(d)}</dd>
          </>
        ))}
        <dt>Diagnosis</dt>
        <dd>{diagnoses.join('; ') || 'none given'}</dd>
        <dt>Requested period</dt>
        <dd>{formatPeriod(requestedPeriodOf(order)) || 'not given'}</dd>
        <dt>Requested site</dt>
        <dd>{siteId ? (props.directory?.sites.get(siteId)?.name ?? siteId) : (order.locationReference?.[0]?.display ?? 'none')}</dd>
        <dt>Priority</dt>
        <dd>{order.priority ?? 'routine'}</dd>
        <dt>Ordered by</dt>
        <dd>{requesterName(order)}</dd>
        <dt>Order number</dt>
        <dd>{placer?.value ?? ''}</dd>
        <dt>Signed</dt>
        <dd>{formatDate(order.authoredOn)}</dd>
      </dl>
      <details>
        <summary>The ServiceRequest as FHIR JSON</summary>
        <pre class="json">{JSON.stringify(order, null, 2)}</pre>
      </details>
    </Section>
  );
}

function SiteCheckSection(props: { data: ReferralData; directory?: DirectoryView; onChanged: () => Promise<void> }): JSX.Element | null {
  const api = useApi();
  const announce = useAnnounce();
  const { task, order, patient } = props.data;
  const [home, setHome] = useState<{ position: GeoPoint; source: 'geolocation' | 'zip-centre' } | undefined>(undefined);
  const [error, setError] = useState<unknown>(undefined);
  useEffect(() => {
    let live = true;
    void homePosition(patient)
      .then((found) => live && setHome(found))
      .catch(() => undefined);
    return () => {
      live = false;
    };
  }, [patient]);
  const reasons = misrouteReasons(task);
  const suggestions = suggestedSites(task);
  const confirmed = idOf(outputsOfType(task, 'confirmed-location')[0]?.valueReference, 'Location');
  if (reasons.length === 0 && suggestions.length === 0 && !confirmed) return null;
  const status = businessStatusOf(task);
  // Once confirmed, the order carries the confirmed site; before, the site the EHR asked for.
  const requestedId = confirmed ? undefined : requestedSiteIdOf(order);
  const directory = props.directory;
  const sites: MapSite[] = [];
  if (directory) {
    for (const site of directory.sites.values()) {
      if (!site.position) continue;
      const rank = suggestions.find((s) => s.locationId === site.id)?.rank;
      const role: MapSite['role'] =
        site.id === confirmed ? 'confirmed' : rank !== undefined ? 'suggested' : site.id === requestedId ? 'requested' : 'other';
      sites.push({ id: site.id, name: site.name, position: site.position, role, ...(rank !== undefined ? { rank } : {}) });
    }
  }
  const distanceTo = (siteId: string, fromTask: number | undefined): string => {
    if (fromTask !== undefined) return `${fromTask.toFixed(1)} km`;
    const position = directory?.sites.get(siteId)?.position;
    return home && position ? `${distanceKm(home.position, position).toFixed(1)} km` : 'unknown';
  };
  const confirm = async (locationId: string, name: string): Promise<void> => {
    setError(undefined);
    try {
      await api.operation(`Task/${task.id}/$confirm-site`, {
        parameters: {
          resourceType: 'Parameters',
          parameter: [{ name: 'location', valueReference: { reference: `Location/${locationId}` } }],
        },
      });
      announce(`${name} confirmed; the referral moves on to coverage.`);
      await props.onChanged();
    } catch (e) {
      setError(e);
    }
  };
  const description = `Map of the patient's home and ${suggestions.length} suggested sites${requestedId ? ', with the requested site' : ''}.`;
  return (
    <Section title="Site check" id="site-check">
      {reasons.length > 0 && (
        <>
          <h3>Why the site was questioned</h3>
          <ul class="reasons">
            {reasons.map((r) => (
              <li key={r.code}>
                <strong>{r.code}</strong>: {r.text}
              </li>
            ))}
          </ul>
        </>
      )}
      {confirmed && <p class="done">Confirmed site: {directory?.sites.get(confirmed)?.name ?? confirmed}</p>}
      <div class="map-and-list">
        <SiteMap home={home} sites={sites} tooFarKm={api.config.siteTooFarKm} titleId={`map-${task.id}`} description={description} />
        <div class="table-wrap">
          <table>
            <caption>Suggested sites, best first</caption>
            <thead>
              <tr>
                <th scope="col">Rank</th>
                <th scope="col">Site</th>
                <th scope="col">Distance from home</th>
                <th scope="col">Plan network</th>
                <th scope="col">Why</th>
                {status === 'misroute-suspected' && <th scope="col">Action</th>}
              </tr>
            </thead>
            <tbody>
              {suggestions.map((s) => (
                <tr key={s.locationId}>
                  <td>{s.rank}</td>
                  <td>{s.name}</td>
                  <td>{distanceTo(s.locationId, s.distanceKm)}</td>
                  <td>
                    {s.inNetwork === undefined ? 'plan unknown' : s.inNetwork ? 'in network' : 'out of network'}
                    {directory && networkNames(directory, s.locationId).length > 0 && (
                      <span class="muted"> ({networkNames(directory, s.locationId).join(', ')})</span>
                    )}
                  </td>
                  <td>
                    {[s.patientChoice ? "patient's choice" : '', s.previouslyTreated ? 'treated here before' : '']
                      .filter(Boolean)
                      .join(', ')}
                  </td>
                  {status === 'misroute-suspected' && (
                    <td>
                      <ActionButton class="primary" onAction={() => confirm(s.locationId, s.name)}>
                        Confirm <span class="visually-hidden">{s.name}</span>
                        <span aria-hidden="true"> site</span>
                      </ActionButton>
                    </td>
                  )}
                </tr>
              ))}
            </tbody>
          </table>
          {requestedId && home && directory?.sites.get(requestedId)?.position && (
            <p class="muted">
              Requested site: {directory.sites.get(requestedId)!.name},{' '}
              {distanceKm(home.position, directory.sites.get(requestedId)!.position!).toFixed(1)} km from home.
            </p>
          )}
        </div>
      </div>
      <Messages error={error} title="The site was not confirmed" />
    </Section>
  );
}

function CoverageSection(props: { data: ReferralData; onChanged: () => Promise<void> }): JSX.Element | null {
  const api = useApi();
  const announce = useAnnounce();
  const [error, setError] = useState<unknown>(undefined);
  const { task } = props.data;
  const info = coverageInformation(task);
  const status = businessStatusOf(task);
  const part = (url: string): string | undefined => info.find((e) => e.url === url)?.valueCode;
  const issues = outputsOfType(task, 'coverage-issue');
  const risks = outputsOfType(task, 'denial-risk');
  const estimate = outputsOfType(task, 'patient-cost-estimate')[0]?.valueMoney;
  const authorization = outputsOfType(task, 'authorization-number')[0]?.valueString;
  const authorizationPeriod = outputsOfType(task, 'authorization-period')[0]?.valuePeriod;
  const claim = outputsOfType(task, 'prior-authorization-claim')[0]?.valueString;
  const coverageId = idOf(outputsOfType(task, 'verified-coverage')[0]?.valueReference, 'Coverage');
  if (info.length === 0 && issues.length === 0 && risks.length === 0 && status !== 'verifying-coverage' && status !== 'auth-required')
    return null;
  const submit = async (): Promise<void> => {
    setError(undefined);
    try {
      await api.operation(`Task/${task.id}/$submit-prior-auth`, { parameters: { resourceType: 'Parameters' } });
      announce('The prior authorization is being sent to the payer.');
      await props.onChanged();
    } catch (e) {
      setError(e);
    }
  };
  return (
    <Section title="Coverage and prior authorization" id="coverage">
      <dl class="facts">
        <dt>Coverage</dt>
        <dd>{part('covered') ?? (status === 'verifying-coverage' ? 'being verified' : 'not verified')}</dd>
        <dt>Prior authorization</dt>
        <dd>{part('pa-needed') ?? 'not known yet'}</dd>
        {authorization && (
          <>
            <dt>Authorization number</dt>
            <dd>
              {authorization}
              {authorizationPeriod ? `, valid ${formatPeriod(authorizationPeriod)}` : ''}
            </dd>
          </>
        )}
        {claim && (
          <>
            <dt>Request sent</dt>
            <dd>{claim}</dd>
          </>
        )}
        <dt>Patient's estimate per infusion</dt>
        <dd>{money(estimate) || 'not known'}</dd>
        {coverageId && (
          <>
            <dt>Verified Coverage</dt>
            <dd>Coverage/{coverageId}</dd>
          </>
        )}
      </dl>
      {issues.length > 0 && (
        <>
          <h3>Coverage problems</h3>
          <ul class="reasons">
            {issues.map((o, i) => (
              <li key={i}>{conceptText(o.valueCodeableConcept)}</li>
            ))}
          </ul>
        </>
      )}
      {risks.length > 0 && (
        <>
          <h3>Denial risks and the documents to gather</h3>
          <ul class="reasons">
            {risks.map((o, i) => (
              <li key={i}>
                <strong>{o.valueCodeableConcept?.coding?.[0]?.code}</strong>: {conceptText(o.valueCodeableConcept)}
              </li>
            ))}
          </ul>
        </>
      )}
      {status === 'auth-required' && (
        <p>
          <ActionButton class="primary" onAction={submit}>
            Submit the prior authorization
          </ActionButton>
        </p>
      )}
      <Messages error={error} title="The prior authorization was not sent" />
    </Section>
  );
}

function AppealSection(props: { appealTaskId: string; onChanged: () => Promise<void> }): JSX.Element {
  const api = useApi();
  const announce = useAnnounce();
  const [error, setError] = useState<unknown>(undefined);
  const [authorizationNumber, setAuthorizationNumber] = useState('');
  // One save at a time: each change is a PUT with If-Match on the version shown, so a second change
  // made before the first one's new version is loaded would be refused (412). The checklist and
  // the result form wait while a save is in flight.
  const [saving, setSaving] = useState(false);
  const [loaded, reload] = useLoad((signal) => api.read<Task>('Task', props.appealTaskId, { signal }), [api, props.appealTaskId]);
  if (loaded.state === 'loading') return <Loading what="the appeal" />;
  if (loaded.state === 'failed') return <Messages error={loaded.error} title="The appeal could not be loaded" />;
  const appeal = loaded.value as Task & { id: string };
  const outcome = appealOutcome(appeal);
  const steps = appealStepStatuses(appeal);
  const save = async (next: Task, said: string): Promise<void> => {
    setError(undefined);
    setSaving(true);
    try {
      await api.update(next as Task & { id: string });
      announce(said);
      await reload();
      await props.onChanged();
    } catch (e) {
      setError(e);
      // A refusal may mean the appeal changed meanwhile: show the version the gateway holds.
      await reload();
    } finally {
      setSaving(false);
    }
  };
  return (
    <Section title="Appeal of the denial" id="appeal">
      <p>
        Appeal is <strong>{outcome}</strong> ({appeal.status}).
      </p>
      {denialReasons(appeal).length > 0 && (
        <>
          <h3>The payer's reasons</h3>
          <ul class="reasons">
            {denialReasons(appeal).map((r, i) => (
              <li key={i}>{r}</li>
            ))}
          </ul>
        </>
      )}
      <fieldset class="checklist" disabled={outcome !== 'open' || saving} aria-busy={saving}>
        <legend>Steps</legend>
        {APPEAL_STEPS.map((step) => {
          const status = steps.find((s) => s.step === step)?.status ?? 'pending';
          const id = `step-${step}`;
          return (
            <div class="step" key={step}>
              <label for={id}>{stepLabel(appeal, step)}</label>
              <select
                id={id}
                value={status}
                onChange={(e) =>
                  void save(
                    withStep(appeal, step, (e.currentTarget as HTMLSelectElement).value as AppealStepStatus),
                    `${stepLabel(appeal, step)}: ${(e.currentTarget as HTMLSelectElement).value}`,
                  )
                }
              >
                <option value="pending">pending</option>
                <option value="done">done</option>
                <option value="not-applicable">not applicable</option>
              </select>
            </div>
          );
        })}
      </fieldset>
      {outcome === 'open' && (
        <form
          class="appeal-result"
          onSubmit={(e) => {
            e.preventDefault();
            void save(
              withResult(appeal, { won: true, authorizationNumber: authorizationNumber.trim() }),
              'The appeal is won; the referral moves on to scheduling.',
            );
          }}
        >
          <label>
            Authorization number granted on appeal
            <input
              value={authorizationNumber}
              onInput={(e) => setAuthorizationNumber((e.currentTarget as HTMLInputElement).value)}
              required
              autoComplete="off"
            />
          </label>
          <button type="submit" class="primary" disabled={saving}>
            Record the appeal as won
          </button>
          <ActionButton disabled={saving} onAction={() => save(withResult(appeal, { won: false }), 'The appeal is recorded as lost.')}>
            Record the appeal as lost
          </ActionButton>
        </form>
      )}
      <Messages error={error} title="The appeal was not saved" />
    </Section>
  );
}

/** The Tasks that are part of the referral's: appeals (worked here as a checklist), reschedules, renewals. */
function SubTasksSection(props: { subTasks: Task[] }): JSX.Element | null {
  const others = props.subTasks.filter((t) => !isAppealTask(t));
  if (others.length === 0) return null;
  return (
    <Section title="Follow-up tasks" id="sub-tasks">
      <ul class="sub-tasks">
        {others.map((t) => (
          <li key={t.id}>
            <strong>{conceptText(t.code)}</strong> ({t.status}) · opened {formatDate(t.authoredOn)}
            {t.description && <p class="muted">{t.description}</p>}
          </li>
        ))}
      </ul>
    </Section>
  );
}

function HistorySection(props: { taskId: string; version: string | undefined }): JSX.Element {
  const api = useApi();
  const [loaded] = useLoad(() => api.history('Task', props.taskId), [api, props.taskId, props.version]);
  return (
    <Section title="History" id="history">
      {loaded.state === 'loading' && <Loading what="the history" />}
      {loaded.state === 'failed' && <Messages error={loaded.error} />}
      {loaded.state === 'ready' && (
        <ol class="timeline">
          {timeline((loaded.value.entry ?? []).map((e) => e.resource as Task).filter(Boolean))
            .reverse()
            .map((entry) => (
              <li key={entry.versionId}>
                <time dateTime={entry.at}>{entry.at ? new Date(entry.at).toLocaleString() : ''}</time>
                <span class={`status status-${entry.status ?? 'unknown'}`}>{entry.statusLabel}</span>
                <span>{entry.changes.join('; ')}</span>
              </li>
            ))}
        </ol>
      )}
    </Section>
  );
}

export function ReferralPage(props: { taskId: string }): JSX.Element {
  const api = useApi();
  const directory = useDirectory();
  const [loaded, reload] = useLoad(
    async (signal): Promise<ReferralData> => {
      const task = (await api.read<Task>('Task', props.taskId, { signal })) as Task & { id: string };
      const serviceRequestId = serviceRequestIdOf(task);
      if (serviceRequestId === undefined) throw new Error('This Task tracks no referral');
      const order = (await api.read<ServiceRequest>('ServiceRequest', serviceRequestId, { signal })) as ServiceRequest & { id: string };
      const containedPatient = containedOf<Patient>(order, order.subject, 'Patient');
      const patientId = idOf(order.subject, 'Patient');
      const [patient, subTasks] = await Promise.all([
        containedPatient ?? (patientId ? api.read<Patient>('Patient', patientId, { signal }) : undefined),
        api.search(
          'Task',
          [
            ['part-of', `Task/${task.id}`],
            ['_count', '50'],
          ],
          { signal },
        ),
      ]);
      const parts = (subTasks.entry ?? []).map((e) => e.resource).filter((r): r is Task => r?.resourceType === 'Task');
      return { task, order, subTasks: parts, ...(patient ? { patient } : {}) };
    },
    [api, props.taskId],
  );
  if (loaded.state === 'loading') return <Loading what="the referral" />;
  if (loaded.state === 'failed') return <Messages error={loaded.error} title="The referral could not be loaded" />;
  const { task, order, patient } = loaded.value;
  const status = businessStatusOf(task);
  // Appeals from the sub-tasks (a won appeal is no longer among the coverage outputs), newest first.
  const appeals = loaded.value.subTasks.filter(isAppealTask).sort((a, b) => (b.authoredOn ?? '').localeCompare(a.authoredOn ?? ''));
  const dir = directory.state === 'ready' ? directory.value : undefined;
  return (
    <div class="referral-page">
      <p class="breadcrumb">
        {status && isQueueStatus(status) ? (
          <Link to={{ page: 'queue', status }}>{referralStatusDisplay(status)} queue</Link>
        ) : (
          <Link to={{ page: 'queue', status: 'misroute-suspected' }}>Queues</Link>
        )}
      </p>
      <h1>
        {patientName(patient)} · {drugOf(order)}
      </h1>
      <p class="status-line">
        <span class={`status status-${status}`}>{status ? referralStatusDisplay(status) : 'unknown'}</span>
        {status && isQueueStatus(status) && (
          <span>
            Waiting on <strong>{waitingOn(status).party}</strong>: {waitingOn(status).action}.
          </span>
        )}
        {(status === 'ready-to-schedule' || status === 'scheduled') && (
          <Link to={{ page: 'schedule', taskId: task.id }} class="button primary">
            {status === 'scheduled' ? 'Appointments' : 'Book a chair'}
          </Link>
        )}
      </p>
      {task.statusReason && <p class="status-reason">{conceptText(task.statusReason)}</p>}
      <div class="columns">
        <div>
          <SiteCheckSection data={loaded.value} directory={dir} onChanged={reload} />
          <CoverageSection data={loaded.value} onChanged={reload} />
          {appeals.map((appeal) => (
            <AppealSection key={appeal.id} appealTaskId={appeal.id!} onChanged={reload} />
          ))}
          <SubTasksSection subTasks={loaded.value.subTasks} />
        </div>
        <div>
          <OrderSection data={loaded.value} directory={dir} />
          <HistorySection taskId={task.id} version={task.meta?.versionId} />
        </div>
      </div>
    </div>
  );
}
