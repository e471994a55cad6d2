import { hostname } from 'node:os';
import { randomBytes } from 'node:crypto';
import type { ReplicaContext } from './context.js';
import { dispatchCycle } from './dispatcher.js';
import { watchCycle } from './watcher.js';
import { Loop } from './loop.js';
import { reaperSweep } from './reaper.js';
import { releaseClaims, renewClaims } from '../store/claims/renew-claims.js';
import { listenForWork } from '../store/notify.js';

/** A holder identity unique to this process start, so that a restarted replica never mistakes old leases for its own. */
export function newHolderId(): string {
  return `${hostname()}-${process.pid}-${randomBytes(4).toString('hex')}`;
}

/**
 * The loops of one scheduler replica: dispatch, watch, heartbeat and reaper. Pipeline:
 *   dispatch: claim → launch (create in substrate) ─┐
 *   watch:    observe → record → judge evidence ←───┘  (heartbeat keeps the leases alive meanwhile)
 *   reaper:   expired leases, silent attempts, orphans (one replica at a time)
 */
export class Replica {
  private readonly loops: Loop[];
  private readonly dispatch: Loop;
  private readonly watch: Loop;
  private unlisten: (() => Promise<void>)[] = [];

  constructor(private readonly ctx: ReplicaContext) {
    const log = ctx.log;
    this.dispatch = new Loop(
      'dispatch',
      ctx.config.dispatch.intervalSeconds * 1000,
      async () => {
        const { more } = await dispatchCycle(ctx);
        if (more) this.dispatch.wake();
      },
      log.child({ component: 'dispatcher' }),
    );
    this.watch = new Loop('watch', ctx.config.dispatch.intervalSeconds * 1000, () => watchCycle(ctx), log.child({ component: 'watcher' }));
    const heartbeat = new Loop(
      'heartbeat',
      ctx.config.claims.heartbeatSeconds * 1000,
      async () => {
        await renewClaims(ctx.sql, ctx.holder, ctx.config.claims.ttlSeconds);
      },
      log.child({ component: 'heartbeat' }),
    );
    const reaper = new Loop(
      'reaper',
      ctx.config.reaper.intervalSeconds * 1000,
      async () => {
        await reaperSweep(ctx);
      },
      log.child({ component: 'reaper' }),
    );
    this.loops = [this.dispatch, this.watch, heartbeat, reaper];
  }

  async start(): Promise<void> {
    // Notifications are hints to look now; the loops poll on their intervals regardless.
    this.unlisten = [
      await listenForWork(
        this.ctx.sql,
        () => this.dispatch.wake(),
        () => this.watch.wake(),
      ),
    ];
    const unwatch = this.ctx.substrate.onChange?.(() => this.watch.wake());
    if (unwatch) this.unlisten.push(async () => unwatch());
    for (const loop of this.loops) loop.start();
    // The replica's logger carries its holder already.
    this.ctx.log.info({ substrate: this.ctx.substrate.kind }, 'replica started');
  }

  /**
   * Graceful stop: loops finish their tick and the launch pool drains, then this replica's leases
   * are expired at once so that another replica adopts its attempts on its next sweep instead of
   * after the TTL.
   */
  async stop(): Promise<void> {
    // First, so that no tick stays waiting in a launch for the substrate to answer: such a launch
    // gives up, and its lease goes back below.
    this.ctx.substrateGate.stop();
    await Promise.all(this.loops.map((loop) => loop.stop()));
    // Launches earlier dispatch cycles handed over are still this replica's: each ends started or
    // through finishAttempt before the leases go back.
    await this.ctx.launches.drain();
    await Promise.all(this.unlisten.map((f) => f().catch(() => {})));
    await releaseClaims(this.ctx.sql, this.ctx.holder);
  }

  /** Stops every loop at once, releasing nothing: what a killed process leaves behind. */
  abandon(): void {
    for (const loop of this.loops) loop.abandon();
    this.ctx.substrateGate.stop();
  }
}
