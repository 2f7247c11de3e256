import { expect } from 'chai';
import { advanceCursor, alreadyRead } from '../../src/intake/stories/poll-ehr.js';

describe('the pull cursor', () => {
  it('moves to a newer instant and remembers every id read at that instant', () => {
    let cursor = advanceCursor(undefined, { id: 'a', lastUpdated: '2026-11-23T10:00:00.000Z' });
    cursor = advanceCursor(cursor, { id: 'b', lastUpdated: '2026-11-23T10:00:00.000Z' });
    expect(cursor).to.deep.equal({ lastUpdated: '2026-11-23T10:00:00.000Z', idsAtLastUpdated: ['a', 'b'] });
    cursor = advanceCursor(cursor, { id: 'c', lastUpdated: '2026-11-23T10:00:00.001Z' });
    expect(cursor).to.deep.equal({ lastUpdated: '2026-11-23T10:00:00.001Z', idsAtLastUpdated: ['c'] });
  });

  it('skips what it has read, but not another resource updated in the same millisecond', () => {
    const cursor = { lastUpdated: '2026-11-23T10:00:00.000Z', idsAtLastUpdated: ['a'] };
    expect(alreadyRead(cursor, { id: 'a', lastUpdated: '2026-11-23T10:00:00.000Z' })).to.equal(true);
    expect(alreadyRead(cursor, { id: 'z', lastUpdated: '2026-11-23T10:00:00.000Z' })).to.equal(false);
    expect(alreadyRead(cursor, { id: 'old', lastUpdated: '2026-11-23T09:59:59.999Z' })).to.equal(true);
    expect(alreadyRead(undefined, { id: 'a', lastUpdated: '2026-11-23T10:00:00.000Z' })).to.equal(false);
  });
});
