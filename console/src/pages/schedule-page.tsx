/**
 * Scheduling a cleared referral (issue 14; IHE ITI Scheduling style $find, $hold, $book): a week
 * of proposals at the referral's site in the site's own time zone (named on the page), evening
 * and weekend filters, hold then book; the referral's appointments with reschedule, cancel,
 * arrival, infusion given and no-show (PUT Appointment); the series' planned doses; the renewal
 * Task when the order runs out.
 */
import type { Appointment, Bundle, ServiceRequest, Task } from 'fhir/r4.js';
import type { JSX } from 'preact';
import { useState } from 'preact/hooks';
import { ActionButton, Link, Loading, Messages, Section, useAnnounce, useApi, useLoad } from '../components/common.js';
import { useDirectory } from '../components/directory.js';
import {
  calendarSlot,
  calendarWeek,
  formatInstantAt,
  formatSlot,
  holdExpiresAt,
  rescheduled,
  weekDays,
  weekStart,
  zoneLabel,
  type CalendarSlot,
} from '../model/calendar.js';
import {
  businessStatusOf,
  conceptText,
  drugOf,
  formatDate,
  inputsOfType,
  outputsOfType,
  patientName,
  patientOf,
  referralStatusDisplay,
  requestedSiteIdOf,
  serviceRequestIdOf,
} from '../model/referral.js';

type Filter = 'any' | 'evenings-only' | 'weekends-only' | 'evenings-or-weekends';

const FILTER_LABELS: Record<Filter, string> = {
  any: 'Any time',
  'evenings-only': 'Evenings (from 17:00)',
  'weekends-only': 'Weekends',
  'evenings-or-weekends': 'Evenings or weekends',
};

const entries = <T,>(bundle: Bundle, type: string): T[] =>
  (bundle.entry ?? []).map((e) => e.resource).filter((r) => r?.resourceType === type) as T[];

export function SchedulePage(props: { taskId: string }): JSX.Element {
  const api = useApi();
  const announce = useAnnounce();
  const directory = useDirectory();
  const [filter, setFilter] = useState<Filter>('any');
  const [weekOffset, setWeekOffset] = useState(0);
  const [selected, setSelected] = useState<Appointment | undefined>(undefined);
  const [held, setHeld] = useState<Appointment | undefined>(undefined);
  const [moving, setMoving] = useState<(Appointment & { id: string }) | undefined>(undefined);
  const [error, setError] = useState<unknown>(undefined);

  const [referral, reloadReferral] = useLoad(
    async (signal) => {
      const task = (await api.read<Task>('Task', props.taskId, { signal })) as Task & { id: string };
      const serviceRequestId = serviceRequestIdOf(task);
      if (serviceRequestId === undefined) throw new Error('This Task tracks no referral');
      const order = await api.read<ServiceRequest>('ServiceRequest', serviceRequestId, { signal });
      const [appointments, subTasks] = await Promise.all([
        api.search(
          'Appointment',
          [
            ['based-on', `ServiceRequest/${serviceRequestId}`],
            ['_count', '100'],
          ],
          { signal },
        ),
        api.search(
          'Task',
          [
            ['part-of', `Task/${task.id}`],
            ['_count', '50'],
          ],
          { signal },
        ),
      ]);
      return {
        task,
        order,
        serviceRequestId,
        appointments: entries<Appointment & { id: string }>(appointments, 'Appointment'),
        subTasks: entries<Task>(subTasks, 'Task'),
      };
    },
    [api, props.taskId],
  );

  const siteId = referral.state === 'ready' ? requestedSiteIdOf(referral.value.order) : undefined;
  const site = siteId && directory.state === 'ready' ? directory.value.sites.get(siteId) : undefined;
  const timeZone = site?.timeZone ?? 'UTC';
  const status = referral.state === 'ready' ? businessStatusOf(referral.value.task) : undefined;
  const canFind = status === 'ready-to-schedule' || moving !== undefined;

  // The calendar opens on the week of the first free chair (the pharmacy lead time often puts it
  // beyond this week); the coordinator pages on from there.
  const [first] = useLoad(
    async (signal) => {
      if (referral.state !== 'ready' || !canFind) return undefined;
      const bundle = await api.operation<Bundle>('Appointment/$find', {
        query: [
          ['referral', `ServiceRequest/${referral.value.serviceRequestId}`],
          ['_count', '1'],
        ],
      });
      return signal.aborted ? undefined : entries<Appointment>(bundle, 'Appointment')[0]?.start;
    },
    [api, referral.state === 'ready' ? referral.value.serviceRequestId : '', canFind],
  );
  const firstStart = first.state === 'ready' && first.value ? new Date(first.value) : new Date();
  const start = weekStart(firstStart, timeZone).plus({ weeks: weekOffset });

  const [week, reloadWeek] = useLoad(
    async (signal) => {
      if (referral.state !== 'ready' || !canFind || !site || first.state === 'loading') return [];
      const days = weekDays(start);
      const found = await Promise.all(
        days.map((day) =>
          api
            .operation<Bundle>('Appointment/$find', {
              query: [
                ['referral', `ServiceRequest/${referral.value.serviceRequestId}`],
                ['start', day.from.toISOString()],
                ['end', day.to.toISOString()],
                ['_count', '100'],
                ...(filter !== 'any' ? ([[filter, 'true']] as const) : []),
              ],
            })
            .then((bundle) => (signal.aborted ? [] : entries<Appointment>(bundle, 'Appointment'))),
        ),
      );
      return found.flat();
    },
    [api, referral.state === 'ready' ? referral.value.task.meta?.versionId : '', canFind, site?.id, filter, start.toISODate(), first.state],
  );

  if (referral.state === 'loading') return <Loading what="the referral" />;
  if (referral.state === 'failed') return <Messages error={referral.error} title="The referral could not be loaded" />;
  const { task, order, appointments, subTasks } = referral.value;

  const run = async (work: () => Promise<string>): Promise<void> => {
    setError(undefined);
    try {
      announce(await work());
      await reloadReferral();
      await reloadWeek();
    } catch (e) {
      setError(e);
    }
  };
  const hold = (): Promise<void> =>
    run(async () => {
      const pending = await api.operation<Appointment>('Appointment/$hold', {
        parameters: { resourceType: 'Parameters', parameter: [{ name: 'appt-resource', resource: selected! }] },
      });
      setHeld(pending);
      return `Chair held until ${formatInstantAt(holdExpiresAt(pending), timeZone)}.`;
    });
  const book = (appointment: Appointment): Promise<void> =>
    run(async () => {
      const booked = await api.operation<Appointment>('Appointment/$book', {
        parameters: { resourceType: 'Parameters', parameter: [{ name: 'appt-resource', resource: appointment }] },
      });
      setSelected(undefined);
      setHeld(undefined);
      return `Booked: ${formatInstantAt(booked.start, timeZone)}.`;
    });
  const reschedule = (current: Appointment & { id: string }, proposal: Appointment): Promise<void> =>
    run(async () => {
      const moved = await api.update(rescheduled(current, proposal));
      setMoving(undefined);
      setSelected(undefined);
      return `Moved to ${formatInstantAt(moved.start, timeZone)}.`;
    });
  const setStatus = (appointment: Appointment & { id: string }, next: Appointment['status'], said: string): Promise<void> =>
    run(async () => {
      await api.update({
        ...appointment,
        status: next,
        ...(next === 'cancelled' ? { cancelationReason: { text: 'Cancelled by the infusion center' } } : {}),
      });
      return said;
    });

  const days = week.state === 'ready' ? calendarWeek(start, week.value, timeZone) : [];
  const plannedDoses = outputsOfType(task, 'planned-dose')
    .map((o) => o.valueDateTime)
    .filter((d): d is string => d !== undefined);
  const renewals = subTasks.filter((t) => t.code?.coding?.some((c) => c.code === 'renew-order'));
  const reschedules = subTasks.filter((t) => t.code?.coding?.some((c) => c.code === 'reschedule') && t.status !== 'completed');
  const selectedSlot: CalendarSlot | undefined = selected ? calendarSlot(selected, timeZone) : undefined;

  return (
    <div class="schedule-page">
      <p class="breadcrumb">
        <Link to={{ page: 'referral', taskId: task.id }}>Back to the referral</Link>
      </p>
      <h1>
        Scheduling · {patientName(patientOf(order))} · {drugOf(order)}
      </h1>
      <p class="status-line">
        <span class={`status status-${status}`}>{status ? referralStatusDisplay(status) : 'unknown'}</span>
        <span>
          Site: <strong>{site?.name ?? siteId ?? 'unknown'}</strong> · times in <strong>{zoneLabel(timeZone, start.toJSDate())}</strong>
        </span>
      </p>
      <Messages error={error} title="That did not work" />

      <Section title="Appointments" id="appointments">
        {appointments.length === 0 ? (
          <p>No appointment yet.</p>
        ) : (
          <div class="table-wrap">
            <table>
              <caption class="visually-hidden">The referral's appointments</caption>
              <thead>
                <tr>
                  <th scope="col">When (site time)</th>
                  <th scope="col">Chair</th>
                  <th scope="col">Status</th>
                  <th scope="col">Actions</th>
                </tr>
              </thead>
              <tbody>
                {appointments.map((a) => {
                  const slot = calendarSlot(a, timeZone);
                  const label = slot ? formatSlot(slot.start, slot.end) : (a.start ?? '');
                  return (
                    <tr key={a.id}>
                      <td>{label}</td>
                      <td>{slot?.chair}</td>
                      <td>{a.status}</td>
                      <td class="actions">
                        {a.status === 'pending' && <ActionButton onAction={() => book(a)}>Book this hold</ActionButton>}
                        {a.status === 'booked' && (
                          <>
                            <ActionButton onAction={() => setStatus(a, 'arrived', 'Arrival recorded.')}>Arrived</ActionButton>
                            <ActionButton onAction={() => setStatus(a, 'fulfilled', 'Infusion recorded as given.')}>
                              Infusion given
                            </ActionButton>
                            <ActionButton onAction={() => setStatus(a, 'noshow', 'Marked as a no-show; a reschedule task is open.')}>
                              No-show
                            </ActionButton>
                            <button
                              type="button"
                              onClick={() => setMoving(moving?.id === a.id ? undefined : a)}
                              aria-pressed={moving?.id === a.id}
                            >
                              Reschedule
                            </button>
                            <ActionButton onAction={() => setStatus(a, 'cancelled', 'Appointment cancelled; the chair is free again.')}>
                              Cancel
                            </ActionButton>
                          </>
                        )}
                        {a.status === 'arrived' && (
                          <ActionButton onAction={() => setStatus(a, 'fulfilled', 'Infusion recorded as given.')}>
                            Infusion given
                          </ActionButton>
                        )}
                      </td>
                    </tr>
                  );
                })}
              </tbody>
            </table>
          </div>
        )}
        {reschedules.map((t) => (
          <p key={t.id} class="notice">
            {conceptText(t.code)}: {t.description}
          </p>
        ))}
      </Section>

      {canFind && (
        <Section title={moving ? 'Choose the new time' : 'Find a chair'} id="calendar">
          <div class="calendar-controls">
            <fieldset class="inline">
              <legend>When the patient can come</legend>
              {(Object.keys(FILTER_LABELS) as Filter[]).map((f) => (
                <label key={f}>
                  <input type="radio" name="when" value={f} checked={filter === f} onChange={() => setFilter(f)} /> {FILTER_LABELS[f]}
                </label>
              ))}
            </fieldset>
            <div class="week-nav">
              <button type="button" onClick={() => setWeekOffset(weekOffset - 1)} disabled={weekOffset <= 0}>
                Previous week
              </button>
              <span aria-live="polite">Week of {start.toFormat('d LLL yyyy')}</span>
              <button type="button" onClick={() => setWeekOffset(weekOffset + 1)}>
                Next week
              </button>
            </div>
          </div>
          {week.state === 'loading' && <Loading what="free chairs" />}
          {week.state === 'failed' && <Messages error={week.error} title="No proposals" />}
          {week.state === 'ready' && (
            <div class="week" role="group" aria-label={`Free chairs, week of ${start.toFormat('d LLL yyyy')}, ${timeZone}`}>
              {days.map((day) => (
                <section class="day" key={day.date} aria-labelledby={`day-${day.date}`}>
                  <h3 id={`day-${day.date}`}>{day.label}</h3>
                  {day.slots.length === 0 ? (
                    <p class="muted">none</p>
                  ) : (
                    <ul>
                      {day.slots.map((slot) => (
                        <li key={`${slot.start.toISO()}-${slot.chair}`}>
                          <button
                            type="button"
                            class={`slot${slot.evening ? ' evening' : ''}${slot.weekend ? ' weekend' : ''}`}
                            aria-pressed={selected === slot.appointment}
                            onClick={() => setSelected(slot.appointment)}
                          >
                            {slot.start.toFormat('HH:mm')}
                            <span class="visually-hidden">
                              {' '}
                              on {day.label}, {slot.chair}
                            </span>
                          </button>
                        </li>
                      ))}
                    </ul>
                  )}
                </section>
              ))}
            </div>
          )}
          {selected && selectedSlot && (
            <div class="selection" role="region" aria-label="Selected time">
              <p>
                Selected: <strong>{formatSlot(selectedSlot.start, selectedSlot.end)}</strong>, {selectedSlot.chair}
              </p>
              {moving ? (
                <ActionButton class="primary" onAction={() => reschedule(moving, selected)}>
                  Move the appointment here
                </ActionButton>
              ) : (
                <>
                  <ActionButton onAction={hold}>Hold this chair</ActionButton>
                  <ActionButton class="primary" onAction={() => book(held ?? selected)}>
                    Book
                  </ActionButton>
                </>
              )}
              {held && <p class="muted">Held until {formatInstantAt(holdExpiresAt(held), timeZone)}: book before then.</p>}
            </div>
          )}
        </Section>
      )}

      <Section title="The series" id="series">
        {plannedDoses.length === 0 ? (
          <p>The planned doses are set when the first appointment is booked.</p>
        ) : (
          <ol class="doses">
            {plannedDoses.map((d, i) => (
              <li key={d}>
                Dose {i + 1}: {formatInstantAt(d, timeZone)}
              </li>
            ))}
          </ol>
        )}
        {renewals.map((t) => (
          <div key={t.id} class="notice">
            <p>
              <strong>{conceptText(t.code)}</strong> ({t.status}): {t.description}
            </p>
            <ul>
              {inputsOfType(t, 'order-end').map((i, n) => (
                <li key={`end${n}`}>Order ends {formatDate(i.valueDate ?? i.valueDateTime)}</li>
              ))}
              {inputsOfType(t, 'first-uncovered-dose').map((i, n) => (
                <li key={`dose${n}`}>First dose not covered: {formatInstantAt(i.valueDateTime, timeZone)}</li>
              ))}
            </ul>
          </div>
        ))}
      </Section>
    </div>
  );
}
