/**
 * JSON columns of the tables added after the first migration (outbox payloads and errors, job
 * cursors), read by engine rather than by the value's JavaScript type: pg hands back jsonb already
 * parsed, so a JSON string scalar (a cursor such as `"2026-11-03T15:00:00Z"`) arrives as a plain
 * string that must not be parsed a second time; SQLite always hands back the JSON text.
 */
import type { StoreEngine } from './engine.js';

/** The JSON text stored for `value`; `undefined` has no JSON form and is refused. */
export function toJsonColumn(value: unknown, what: string): string {
  const text = JSON.stringify(value);
  if (text === undefined) throw new TypeError(`${what} must be a JSON value, got ${typeof value}`);
  return text;
}

export function fromJsonColumn(engine: StoreEngine, stored: unknown): unknown {
  if (engine === 'postgresql') return stored;
  if (typeof stored !== 'string') throw new TypeError(`Expected JSON text from SQLite, got ${typeof stored}`);
  return JSON.parse(stored) as unknown;
}
