/** The storage adapter's public face: open a store, tell its engine. */
export {
  DEFAULT_SQLITE_FILE,
  openStore,
  postgresApplicationName,
  storeEngineOf,
  type OpenedResourceStore,
  type StoreEngine,
  type SqliteSynchronous,
  type StoreOptions,
} from './open-store.js';
