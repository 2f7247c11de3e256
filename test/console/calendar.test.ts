import { expect } from 'chai';
import type { Appointment } from 'fhir/r4.js';
import { calendarWeek, formatSlot, rescheduled, weekDays, weekStart, zoneLabel, calendarSlot } from '../../console/src/model/calendar.js';

const proposal = (start: string, end: string, chair = 'NSH-MID/chair-3'): Appointment => ({
  resourceType: 'Appointment',
  status: 'proposed',
  start,
  end,
  minutesDuration: 150,
  participant: [
    { actor: { reference: '#patient' }, status: 'needs-action' },
    { actor: { reference: 'Location/hin-nashville-midtown', display: 'Midtown' }, status: 'accepted' },
    {
      actor: {
        type: 'Location',
        identifier: { system: 'https://fhir.infusion-gateway.example/sid/chair', value: chair },
        display: `Chair ${chair.slice(-1)}`,
      },
      status: 'accepted',
    },
  ],
});

describe('console model: the week calendar at the site', () => {
  it('lays out the week of the daylight-saving change in the site zone: the Sunday has 25 hours', () => {
    const start = weekStart(new Date('2026-10-28T15:00:00Z'), 'America/Chicago');
    expect(start.toISO()).to.equal('2026-10-26T00:00:00.000-05:00');
    const days = weekDays(start);
    expect(days.map((d) => d.date)).to.deep.equal([
      '2026-10-26',
      '2026-10-27',
      '2026-10-28',
      '2026-10-29',
      '2026-10-30',
      '2026-10-31',
      '2026-11-01',
    ]);
    expect(days[6]).to.deep.equal({ date: '2026-11-01', from: new Date('2026-11-01T05:00:00Z'), to: new Date('2026-11-02T06:00:00Z') });
  });

  it('puts each proposal on its site-local day, marks evenings from 17:00 and weekends', () => {
    const start = weekStart(new Date('2026-10-28T15:00:00Z'), 'America/Chicago');
    const week = calendarWeek(
      start,
      [
        proposal('2026-11-01T17:30:00-06:00', '2026-11-01T20:00:00-06:00'),
        proposal('2026-10-27T09:00:00-05:00', '2026-10-27T11:30:00-05:00'),
      ],
      'America/Chicago',
    );
    expect(week[1]!.slots.map((s) => [s.start.toFormat('HH:mm'), s.evening, s.weekend, s.chair])).to.deep.equal([
      ['09:00', false, false, 'Chair 3'],
    ]);
    expect(week[6]!.slots.map((s) => [s.start.toFormat('HH:mm'), s.evening, s.weekend])).to.deep.equal([['17:30', true, true]]);
    expect(week.filter((d) => d.slots.length === 0)).to.have.length(5);
  });

  it('shows a slot in the site time with the zone, even for a coordinator elsewhere', () => {
    const slot = calendarSlot(proposal('2026-12-08T16:15:00Z', '2026-12-08T18:45:00Z'), 'America/Phoenix')!;
    expect(formatSlot(slot.start, slot.end)).to.equal('Tue 8 Dec 2026, 09:15 to 11:45 MST');
    expect(zoneLabel('America/Phoenix', new Date('2026-07-01T00:00:00Z'))).to.equal('America/Phoenix (MST, UTC-7)');
  });

  it('reschedules by moving the time and the chair only, keeping the patient and the rest', () => {
    const booked = {
      ...proposal('2026-12-08T09:00:00-06:00', '2026-12-08T11:30:00-06:00', 'NSH-MID/chair-1'),
      id: 'a1',
      status: 'booked' as const,
      meta: { versionId: '3' },
    };
    const moved = rescheduled(booked, proposal('2026-12-09T13:00:00-06:00', '2026-12-09T15:30:00-06:00', 'NSH-MID/chair-4'));
    expect(moved).to.deep.include({
      id: 'a1',
      status: 'booked',
      start: '2026-12-09T13:00:00-06:00',
      end: '2026-12-09T15:30:00-06:00',
      meta: { versionId: '3' },
    });
    expect(moved.participant?.[0]).to.deep.equal(booked.participant[0]);
    expect(moved.participant?.[2]?.actor?.identifier?.value).to.equal('NSH-MID/chair-4');
  });
});
