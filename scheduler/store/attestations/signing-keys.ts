import type { Queryable, Sql } from '../../database/connect.js';

/** A public key attestations are signed with, as the key list shows it. */
export interface SigningKeyRecord {
  keyid: string;
  algorithm: string;
  publicKeyPem: string;
  registeredAt: Date;
  /** When it signed its first and its last attestation; null before it signed any. */
  firstSignedAt: Date | null;
  lastSignedAt: Date | null;
  /** Whether a key was registered after it (it is no longer the newest). */
  superseded: boolean;
}

/** Records this replica's public key once; a key seen before keeps its first registration. */
export async function registerSigningKey(sql: Queryable, key: { keyid: string; algorithm: string; publicKeyPem: string }): Promise<void> {
  await sql`
    insert into attestation_keys (keyid, algorithm, public_key_pem) values (${key.keyid}, ${key.algorithm}, ${key.publicKeyPem})
    on conflict (keyid) do nothing`;
}

/** Every key ever registered, oldest first; the signing times come from the attestations index. */
export async function listSigningKeys(sql: Sql): Promise<SigningKeyRecord[]> {
  return sql<SigningKeyRecord[]>`
    select k.keyid, k.algorithm, k.public_key_pem, k.registered_at,
           (select min(a.issued_at) from attestations a where a.keyid = k.keyid) as first_signed_at,
           (select max(a.issued_at) from attestations a where a.keyid = k.keyid) as last_signed_at,
           exists (select 1 from attestation_keys n where n.registered_at > k.registered_at) as superseded
    from attestation_keys k
    order by k.registered_at, k.keyid`;
}
