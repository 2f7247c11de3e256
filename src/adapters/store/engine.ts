/** Which database engine a store runs on, for logs and /readyz. */
export type StoreEngine = 'sqlite' | 'postgresql';

/** `postgres://` or `postgresql://` URLs select PostgreSQL; anything else is the embedded SQLite file. */
export function storeEngineOf(options: { databaseUrl?: string }): StoreEngine {
  const url = options.databaseUrl ?? '';
  return /^postgres(ql)?:\/\//i.test(url) ? 'postgresql' : 'sqlite';
}
