import { randomUUID } from 'node:crypto';
import { expect } from 'chai';
import { isFhirId, newTimeOrderedId, timeOrderedId } from '../../src/fhir/ids.js';

/** RFC 9562 §5.7: 48-bit time, version 7, 12 random bits, variant 10, 62 random bits. */
const UUID_V7 = /^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;

describe('time-ordered ids (UUID version 7)', () => {
  it('puts the time in milliseconds in the first 48 bits, then version 7 and the random bits with their variant', () => {
    const random = '3b241101-e2bb-4255-8caf-4136c566a962';
    const id = timeOrderedId(Date.UTC(2026, 11, 5, 12, 0, 0, 7), random);
    expect(id).to.match(UUID_V7);
    expect(parseInt(id.slice(0, 8) + id.slice(9, 13), 16)).to.equal(Date.UTC(2026, 11, 5, 12, 0, 0, 7));
    expect(id.slice(15)).to.equal(random.slice(15));
    expect(id.slice(14, 15)).to.equal('7');
  });

  it('sorts as text in the order of its times, whatever the random bits', () => {
    const start = Date.UTC(2026, 0, 1);
    const times = Array.from({ length: 200 }, (_, i) => start + i * 997);
    const ids = times.map((t) => timeOrderedId(t, randomUUID()));
    expect([...ids].sort()).to.deep.equal(ids);
  });

  it('gives valid FHIR ids, each one new', () => {
    const ids = Array.from({ length: 1000 }, () => newTimeOrderedId());
    for (const id of ids) {
      expect(id).to.match(UUID_V7);
      expect(isFhirId(id)).to.equal(true);
    }
    expect(new Set(ids).size).to.equal(ids.length);
    const now = Date.now();
    const first = parseInt(ids[0]!.slice(0, 8) + ids[0]!.slice(9, 13), 16);
    expect(first).to.be.within(now - 60_000, now);
  });
});
