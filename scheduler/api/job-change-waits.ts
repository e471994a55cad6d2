import type { Sql } from '../database/connect.js';
import { listenForJobChanges } from '../store/notify.js';

/** One wait: `changed` resolves true at the job's next change, false at the timeout or when the server closes. */
export interface JobChangeWait {
  changed: Promise<boolean>;
  cancel(): void;
}

/**
 * API requests waiting for a job to change state (docs/api.md, "Waiting for a job"), woken by the
 * job-changed notifications: one LISTEN per API server, opened at the first wait, however many
 * requests wait. A notification is a hint to read the job again, never the state itself; one
 * lost while the connection is re-established only makes a wait last until its timeout.
 */
export class JobChangeWaits {
  private readonly waiting = new Map<string, Set<(changed: boolean) => void>>();
  private listening: Promise<() => Promise<void>> | undefined;
  private closed = false;

  constructor(private readonly sql: Sql) {}

  /** Starts waiting for `jobId`'s next change (register before reading the job, so that no change falls between). */
  async next(jobId: string, timeoutMs: number): Promise<JobChangeWait> {
    if (this.closed) return { changed: Promise.resolve(false), cancel: () => {} };
    this.listening ??= listenForJobChanges(this.sql, (id) => this.wake(id, true)).catch((error: unknown) => {
      this.listening = undefined; // the next wait tries again
      throw error;
    });
    await this.listening;
    let settle: (changed: boolean) => void = () => {};
    const changed = new Promise<boolean>((resolve) => {
      const timer = setTimeout(() => settle(false), Math.max(0, timeoutMs));
      settle = (value) => {
        clearTimeout(timer);
        this.waiting.get(jobId)?.delete(settle);
        if (this.waiting.get(jobId)?.size === 0) this.waiting.delete(jobId);
        resolve(value);
      };
    });
    const waiters = this.waiting.get(jobId) ?? new Set();
    waiters.add(settle);
    this.waiting.set(jobId, waiters);
    return { changed, cancel: () => settle(false) };
  }

  /** Whether close was called: an answer then closes its connection, or the keep-alive would hold the server's close. */
  get closing(): boolean {
    return this.closed;
  }

  /** How many requests are waiting, for tests and metrics. */
  get size(): number {
    let n = 0;
    for (const waiters of this.waiting.values()) n += waiters.size;
    return n;
  }

  /** Answers every waiting request now (they read the job once more) and stops listening. */
  async close(): Promise<void> {
    this.closed = true;
    for (const id of [...this.waiting.keys()]) this.wake(id, false);
    const listening = this.listening;
    this.listening = undefined;
    if (listening) await (await listening.catch(() => async () => {}))();
  }

  private wake(jobId: string, changed: boolean): void {
    for (const settle of [...(this.waiting.get(jobId) ?? [])]) settle(changed);
  }
}
