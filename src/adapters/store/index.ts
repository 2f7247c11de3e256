/** The storage adapter's public face: open a store, tell its engine. */
export { openStore, postgresApplicationName, type OpenedResourceStore, type StoreOptions } from './open-store.js';
