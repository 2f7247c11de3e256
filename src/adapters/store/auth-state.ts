/**
 * Authentication's tables (src/ports/auth-state.ts): the primary keys decide, never a read first,
 * so two processes cannot both accept one assertion.
 */
import type { Kysely } from 'kysely';
import type { StoredSigningKey } from '../../ports/auth-state.js';
import type { StoreDatabase } from './schema.js';

export async function signingKeys(db: Kysely<StoreDatabase>): Promise<StoredSigningKey[]> {
  const rows = await db
    .selectFrom('signing_keys')
    .select(['kid', 'private_jwk', 'created_at'])
    .orderBy('created_at')
    .orderBy('kid')
    .execute();
  return rows.map((row) => ({ kid: row.kid, privateJwk: row.private_jwk, createdAt: row.created_at }));
}

export async function addSigningKey(db: Kysely<StoreDatabase>, key: StoredSigningKey): Promise<void> {
  await db
    .insertInto('signing_keys')
    .values({ kid: key.kid, private_jwk: key.privateJwk, created_at: key.createdAt })
    .onConflict((oc) => oc.column('kid').doNothing())
    .execute();
}

export async function claimAssertionId(
  db: Kysely<StoreDatabase>,
  clientId: string,
  jti: string,
  expiresAt: Date,
  now: Date,
): Promise<boolean> {
  await db.deleteFrom('used_assertions').where('expires_at', '<', now.toISOString()).execute();
  const inserted = await db
    .insertInto('used_assertions')
    .values({ jti_key: `${clientId} ${jti}`, expires_at: expiresAt.toISOString() })
    .onConflict((oc) => oc.column('jti_key').doNothing())
    .returning('jti_key')
    .executeTakeFirst();
  return inserted !== undefined;
}
