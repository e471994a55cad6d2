import type { Logger } from 'pino';
import { coerceError } from '../errors.js';
import type { Substrate } from '../substrate/substrate.js';
import { isUnreachable } from '../substrate/unreachable.js';

/** Least time between two pings of an unreachable substrate. */
const PING_INTERVAL_MS = 1000;
/** How often a launch waiting for the gate looks again. */
const WAIT_STEP_MS = 100;
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/**
 * Holds dispatch while the substrate does not answer (its API server down or restarting): a start
 * that failed for want of any answer closes the gate, and no cycle claims again until a ping gets
 * through. Without it, every claim in an outage fails at once, its job is queued and claimed again,
 * and a job's whole retry budget is gone within a second (docs/reliability.md). A launch claimed
 * before the gate closed waits for it to open before its create (`whenOpen`), so that a job spends
 * at most the one attempt whose create was in flight when the outage began.
 */
export class SubstrateGate {
  private closed: { since: number; reason: string } | null = null;
  private lastPing = 0;
  private stopped = false;

  constructor(
    private readonly substrate: Substrate,
    private readonly log: Pick<Logger, 'warn' | 'info'>,
  ) {}

  /** Closes the gate when a failed start's error says the substrate was unreachable; returns whether it did. */
  noteStartFailure(error: unknown): boolean {
    if (!isUnreachable(error)) return false;
    if (!this.closed) {
      this.closed = { since: Date.now(), reason: coerceError(error).message };
      this.lastPing = Date.now();
      this.log.warn({ reason: this.closed.reason }, 'the substrate does not answer: dispatch holds until it does');
    }
    return true;
  }

  /** Whether a dispatch cycle may claim now: the gate is open, or a ping got through and opened it. */
  async admits(): Promise<boolean> {
    if (!this.closed) return true;
    if (Date.now() - this.lastPing < PING_INTERVAL_MS) return false;
    this.lastPing = Date.now();
    try {
      await this.substrate.ping();
    } catch {
      return false;
    }
    this.log.info({ heldSeconds: (Date.now() - this.closed.since) / 1000 }, 'the substrate answers again: dispatch resumes');
    this.closed = null;
    return true;
  }

  /**
   * Resolves true once the gate is open (pinging, at most once a second, as `admits` does), or
   * false once the replica stops (`stop`): a launch that was waiting then leaves its attempt to the
   * replica that takes over its lease.
   */
  async whenOpen(): Promise<boolean> {
    for (;;) {
      if (this.stopped) return false;
      if (await this.admits()) return true;
      await sleep(WAIT_STEP_MS);
    }
  }

  /** Releases every launch waiting in `whenOpen`, for a stop. */
  stop(): void {
    this.stopped = true;
  }
}
