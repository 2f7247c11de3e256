/**
 * winston JSON logs: one line per event, the request id on every line logged while a request is
 * being served, and no PHI.
 *
 * PHI policy: code logs ids, resource types, counts, codes and timings, never resource content.
 * As a second line of defence, `redactPhi` drops the values of any metadata key that can carry PHI
 * (name, birthDate, address, telecom, identifier, ...) however deep it sits.
 */
import { AsyncLocalStorage } from 'node:async_hooks';
import winston from 'winston';
import type Transport from 'winston-transport';

export type Logger = winston.Logger;

interface LogContext {
  requestId: string;
  tenant?: string;
}

const context = new AsyncLocalStorage<LogContext>();

/** Runs `work` with a request id that every log line inside it carries. */
export function withLogContext<T>(value: LogContext, work: () => T): T {
  return context.run(value, work);
}

/** Keys whose values may identify a patient (HIPAA identifiers): never logged. */
const PHI_KEYS = new Set([
  'name',
  'given',
  'family',
  'text',
  'birthdate',
  'address',
  'line',
  'city',
  'postalcode',
  'telecom',
  'phone',
  'email',
  'identifier',
  'value',
  'ssn',
  'mrn',
  'contained',
  'resource',
  'body',
  'patient',
  'subject',
  'display',
]);

const REDACTED = '[redacted]';

export function redactPhi(value: unknown, depth = 0): unknown {
  if (depth > 8) return REDACTED;
  if (Array.isArray(value)) return value.map((v) => redactPhi(v, depth + 1));
  if (value !== null && typeof value === 'object') {
    const out: Record<string, unknown> = {};
    for (const [key, inner] of Object.entries(value as Record<string, unknown>)) {
      out[key] = PHI_KEYS.has(key.toLowerCase()) ? REDACTED : redactPhi(inner, depth + 1);
    }
    return out;
  }
  return value;
}

const LOG_ENVELOPE_KEYS = new Set(['level', 'message', 'timestamp', 'requestId', 'tenant', 'service']);

const contextAndRedaction = winston.format((info) => {
  const store = context.getStore();
  if (store) {
    info['requestId'] = store.requestId;
    if (store.tenant) info['tenant'] = store.tenant;
  }
  for (const key of Object.keys(info)) {
    if (LOG_ENVELOPE_KEYS.has(key)) continue;
    info[key] = PHI_KEYS.has(key.toLowerCase()) ? REDACTED : redactPhi(info[key]);
  }
  return info;
});

export function createLogger(options: { level: string; transports?: Transport[] }): Logger {
  // winston runs the whole format (timestamp, redaction, JSON) on every line before its transports
  // look at the level, so at the default `info` the per-request `http` line was formatted and thrown
  // away once per request. A line no transport takes is now dropped first: a format that returns
  // false filters it (https://github.com/winstonjs/winston#filtering-info-objects).
  const wantedByATransport = winston.format((info) => (logger.isLevelEnabled(info.level) ? info : false));
  const logger: Logger = winston.createLogger({
    level: options.level,
    defaultMeta: { service: 'infusion-referral-gateway' },
    format: winston.format.combine(wantedByATransport(), winston.format.timestamp(), contextAndRedaction(), winston.format.json()),
    transports: options.transports ?? [new winston.transports.Console()],
  });
  return logger;
}
