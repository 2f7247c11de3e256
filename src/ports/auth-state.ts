/**
 * What authentication keeps in the database, so every process of a cluster agrees: the gateway's
 * own signing keys (when no key file is configured) and the client assertions already used.
 */
export interface StoredSigningKey {
  kid: string;
  /** A private JWK as JSON text. */
  privateJwk: string;
  createdAt: string;
}

export interface AuthStateStore {
  /** Every stored signing key, oldest first: the oldest signs, so all processes sign alike. */
  signingKeys(): Promise<StoredSigningKey[]>;
  /** Stores a key unless one with that kid exists. */
  addSigningKey(key: StoredSigningKey): Promise<void>;
  /**
   * Records a client assertion's id; false when it was seen before (a replay). Ids are kept until
   * `expiresAt`, after which the assertion is refused for its `exp` anyway.
   */
  claimAssertionId(clientId: string, jti: string, expiresAt: Date, now: Date): Promise<boolean>;
}
