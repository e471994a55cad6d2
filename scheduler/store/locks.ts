import { type Sql, type TransactionSql, openSession } from '../database/connect.js';

/**
 * Every advisory-lock key proofpod takes, in one place: the single-key locks and the classes of
 * the two-key ones (the second key is `hashtext` of a name). The values are those earlier releases
 * used, so replicas of two versions during an upgrade still exclude each other; the check below
 * makes a duplicate a start-up error rather than two locks that silently exclude each other.
 */
export const lockKeys = {
  /** Applying migrations: one replica at a time. */
  migrations: 0x70726f6f, // "proo"
  /** Minting the first admin token: only one replica of those starting together. */
  adminBootstrap: 0x61646d6e, // "admn"
  /** Reaper leadership: the one replica that sweeps. */
  reaper: 0x72656170, // "reap"
  /** Per lane (second key: the lane's name): dispatch decisions of one lane, across replicas. */
  lane: 0x6c616e65, // "lane"
  /** Per submitter (second key: its id): quota checks and supersession at submit. */
  submitter: 0x7375626d, // "subm"
} as const;

if (new Set(Object.values(lockKeys)).size !== Object.keys(lockKeys).length) throw new Error('two advisory-lock purposes share a key');

/** Held until the transaction ends. */
export async function lockMigrations(tx: TransactionSql): Promise<void> {
  await tx`select pg_advisory_xact_lock(${lockKeys.migrations})`;
}

export async function lockAdminBootstrap(tx: TransactionSql): Promise<void> {
  await tx`select pg_advisory_xact_lock(${lockKeys.adminBootstrap})`;
}

export async function lockLane(tx: TransactionSql, lane: string): Promise<void> {
  await tx`select pg_advisory_xact_lock(${lockKeys.lane}, hashtext(${lane}))`;
}

export async function lockSubmitter(tx: TransactionSql, submitterId: string): Promise<void> {
  await tx`select pg_advisory_xact_lock(${lockKeys.submitter}, hashtext(${submitterId}))`;
}

/**
 * Runs `fn` while holding reaper leadership, a session-level lock on a connection of its own
 * (never an open transaction); false, without running it, when another replica holds it. The
 * session is opened for the sweep and ended after it, and ending it releases the lock: an unlock
 * sent after the server went away would have nothing to release. Not a connection reserved from
 * the pool: see `openSession` for why.
 */
export async function withReaperLock(sql: Sql, fn: () => Promise<void>): Promise<boolean> {
  const leader = openSession(sql, 'proofpod reaper');
  try {
    const [lock] = await leader<{ locked: boolean }[]>`select pg_try_advisory_lock(${lockKeys.reaper}) as locked`;
    if (!lock?.locked) return false;
    await fn();
    return true;
  } finally {
    // At most a second for a graceful close; a connection that is gone is destroyed.
    await leader.end({ timeout: 1 });
  }
}
