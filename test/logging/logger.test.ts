/**
 * The gateway's logger (src/logging/logger.ts): one JSON line per event with the request's
 * context, PHI redacted, and nothing formatted for a line no transport takes.
 */
import { expect } from 'chai';
import Transport from 'winston-transport';
import { createLogger, withLogContext } from '../../src/logging/logger.js';

const MESSAGE = Symbol.for('message');

class LinesTransport extends Transport {
  readonly lines: Array<Record<string, unknown>> = [];

  override log(info: Record<string | symbol, unknown>, next: () => void): void {
    this.lines.push(JSON.parse(info[MESSAGE] as string) as Record<string, unknown>);
    next();
  }
}

describe('logger', function () {
  it('writes a JSON line with the service and the request context, PHI redacted', function () {
    const transport = new LinesTransport();
    const logger = createLogger({ level: 'info', transports: [transport] });
    withLogContext({ requestId: 'req-1', tenant: 'north' }, () =>
      logger.info('referral received', { status: 'accepted', birthDate: '1970-01-01' }),
    );
    expect(transport.lines).to.have.length(1);
    expect(transport.lines[0]).to.include({
      level: 'info',
      message: 'referral received',
      service: 'infusion-referral-gateway',
      requestId: 'req-1',
      tenant: 'north',
      status: 'accepted',
      birthDate: '[redacted]',
    });
  });

  it('does not format a line below every transport level: its details are never read', function () {
    const transport = new LinesTransport();
    const logger = createLogger({ level: 'info', transports: [transport] });
    let reads = 0;
    // Nested: winston copies the top level of a line's details before any format runs; redaction and JSON read deeper.
    const details = {
      request: {
        get route() {
          reads++;
          return '/fhir/ServiceRequest';
        },
      },
    };
    logger.http('request', details);
    expect(transport.lines).to.deep.equal([]);
    expect(reads, 'reads of the dropped line').to.equal(0);
    logger.info('kept', details);
    expect(transport.lines.map((line) => line['request'])).to.deep.equal([{ route: '/fhir/ServiceRequest' }]);
    expect(reads).to.be.greaterThan(0);
  });

  it('still gives a line to a transport whose own level takes it', function () {
    const talkative = new LinesTransport({ level: 'http' });
    const quiet = new LinesTransport({ level: 'warn' });
    const logger = createLogger({ level: 'info', transports: [talkative, quiet] });
    logger.http('request', { status: 201 });
    expect(talkative.lines.map((line) => line['message'])).to.deep.equal(['request']);
    expect(quiet.lines).to.deep.equal([]);
  });
});
