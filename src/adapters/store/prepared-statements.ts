/**
 * PostgreSQL statements prepared once per connection (docs/resilience.md#prepared-statements).
 * A statement the store runs on every intake is registered here by its text; the pool wrapper
 * below sends it as a named statement (`{ name, text, values }`, https://node-postgres.com/features/queries#prepared-statements),
 * so each pooled connection parses it once and PostgreSQL may keep its plan
 * (https://www.postgresql.org/docs/current/sql-prepare.html): later runs send only the values.
 * Everything else runs unnamed as before. Only fixed texts belong here: PostgreSQL keeps every
 * statement a connection prepares until the connection closes, so the registry is capped.
 */
import type { PostgresPool, PostgresPoolClient } from 'kysely';

/** More texts than this mean a caller registers texts that vary: those beyond it run unnamed. */
const MAX_PREPARED_STATEMENTS = 32;

const namesByText = new Map<string, string>();

/** Registers `text` to run as a named statement on every connection; idempotent. */
export function prepareOnEveryConnection(text: string): void {
  if (namesByText.has(text) || namesByText.size >= MAX_PREPARED_STATEMENTS) return;
  namesByText.set(text, `gateway_${namesByText.size + 1}`);
}

/** The name `text` runs under, when it is registered. */
export function preparedStatementName(text: string): string | undefined {
  return namesByText.get(text);
}

interface NamedQueryClient {
  query(config: { name: string; text: string; values: unknown[] }): Promise<unknown>;
}

/** The pool as Kysely sees it, its clients sending registered texts as named statements. */
export function preparingPool(pool: PostgresPool): PostgresPool {
  return {
    async connect(): Promise<PostgresPoolClient> {
      const client = await pool.connect();
      const query = ((textOrCursor: unknown, values?: readonly unknown[]) => {
        const name = typeof textOrCursor === 'string' ? namesByText.get(textOrCursor) : undefined;
        if (name === undefined) return (client.query as (...args: unknown[]) => unknown)(textOrCursor, values);
        return (client as unknown as NamedQueryClient).query({ name, text: textOrCursor as string, values: [...(values ?? [])] });
      }) as PostgresPoolClient['query'];
      return { query, release: () => client.release() };
    },
    end: () => pool.end(),
  };
}
