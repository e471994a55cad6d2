/**
 * The launches of one replica in flight, across dispatch cycles. A launch is the credential
 * (Postgres), the create in the substrate, and the mark as running (Postgres); the creates are what
 * `dispatch.launchConcurrency` bounds (`create`), and the pool holds up to three times that many launches,
 * so that the Postgres steps of the next launches overlap the creates in flight instead of leaving
 * a create slot idle meanwhile.
 *
 * A dispatch cycle claims no more than the pool has room for and hands each claim over at once, so
 * the next cycle can claim while earlier launches are still in the substrate's hands: no cycle
 * waits for its slowest create, and no more is claimed than can start soon (a claim not started
 * holds lane capacity other replicas could use). Which lane gets the room is decided here too
 * (`share`): every lane is looked at each cycle, and the lanes whose last claim took all it was
 * given, i.e. that probably have more queued, get the room before the others, so a deep lane does
 * not wait behind idle ones.
 */
export class LaunchPool {
  /** Launches handed over and not yet ended: at most `capacity` (three times the creates). */
  readonly capacity: number;
  private readonly inFlight = new Set<Promise<void>>();
  /** Launches handed over past `capacity`; only a caller that claimed past `room` makes these. */
  private readonly queued: (() => void)[] = [];
  private waiters: { room: number; resolve: () => void }[] = [];
  private creating = 0;
  private readonly createQueue: (() => void)[] = [];
  /** Lanes whose last claim took all it was allowed. At start every lane may have work. */
  private readonly backlogged: Set<string>;
  private turn = 0;

  constructor(
    /** Creates in the substrate at once: `dispatch.launchConcurrency`. */
    readonly creates: number,
    lanes: Iterable<string>,
  ) {
    if (!Number.isInteger(creates) || creates < 1) throw new Error(`launch concurrency must be a positive integer, not ${creates}`);
    this.capacity = 3 * creates;
    this.backlogged = new Set(lanes);
  }

  /** Launches in flight or waiting to start. */
  get size(): number {
    return this.inFlight.size + this.queued.length;
  }

  /** How many launches may be handed over now without waiting. */
  get room(): number {
    return Math.max(0, this.capacity - this.size);
  }

  /** Whether some lane's last claim took all it was given: a deep queue, claimed in chunks. */
  get anyBacklogged(): boolean {
    return this.backlogged.size > 0;
  }

  /**
   * Hands a claimed attempt's launch over: it starts now, or when a launch ends if the caller
   * claimed past `room`, but always exactly once, since a claim nobody launches would stay leased
   * by a live holder. `launch` handles its own errors (launchAttempt never rejects); a rejection
   * still goes to `onError`, and frees the slot all the same.
   */
  run(launch: () => Promise<void>, onError: (error: unknown) => void): void {
    const start = () => {
      const running: Promise<void> = launch()
        .catch(onError)
        .finally(() => {
          this.inFlight.delete(running);
          this.queued.shift()?.();
          this.wakeWaiters();
        });
      this.inFlight.add(running);
    };
    if (this.inFlight.size < this.capacity) start();
    else this.queued.push(start);
  }

  /**
   * Runs one create in the substrate once fewer than `creates` are in flight (creates are served in
   * the order they asked). Every create of this replica goes through here, the reaper's restarts too,
   * so the API server never sees more than `dispatch.launchConcurrency` of them at once.
   */
  async create<T>(fn: () => Promise<T>): Promise<T> {
    if (this.creating >= this.creates) await new Promise<void>((resolve) => this.createQueue.push(resolve));
    else this.creating++;
    try {
      return await fn();
    } finally {
      const next = this.createQueue.shift();
      if (next) next();
      else this.creating--;
    }
  }

  /** Resolves once at least `room` launches may be handed over (at once when they may); `room` is capped at the capacity. */
  whenRoom(room = 1): Promise<void> {
    const wanted = Math.min(room, this.capacity);
    if (this.room >= wanted) return Promise.resolve();
    return new Promise((resolve) => this.waiters.push({ room: wanted, resolve }));
  }

  /** Resolves once no launch is in flight or waiting, including any handed over while it waited: for a graceful stop. */
  async drain(): Promise<void> {
    while (this.size > 0) await Promise.all(this.inFlight);
  }

  /**
   * How many claims each lane may make this cycle out of the room there is now (shareRoom). The
   * lanes take turns at the front, so that when the room is smaller than the number of lanes every
   * lane is still looked at within a few cycles.
   */
  share(lanes: readonly string[], batchSize: number): Map<string, number> {
    const start = lanes.length > 0 ? this.turn++ % lanes.length : 0;
    const order = [...lanes.slice(start), ...lanes.slice(0, start)];
    return shareRoom(order, this.room, batchSize, this.backlogged);
  }

  /** What a lane's claim of this cycle found: all it was allowed (it has more queued), or less. */
  claimed(lane: string, allowed: number, got: number): void {
    if (allowed === 0) return;
    if (got >= allowed) this.backlogged.add(lane);
    else this.backlogged.delete(lane);
  }

  private wakeWaiters(): void {
    const ready = this.waiters.filter((w) => this.room >= w.room);
    if (ready.length === 0) return;
    this.waiters = this.waiters.filter((w) => this.room < w.room);
    for (const w of ready) w.resolve();
  }
}

/**
 * Splits `room` launch slots among `lanes` (in the order given), each at most `batchSize`: first
 * one for every lane while room lasts, so a lane that was empty is still looked at; then round-robin
 * over the `backlogged` lanes, which have more queued; then round-robin over all of them, so a burst
 * into a lane that was idle is claimed whole at once. Pure.
 */
export function shareRoom(lanes: readonly string[], room: number, batchSize: number, backlogged: ReadonlySet<string>): Map<string, number> {
  const limits = new Map(lanes.map((lane) => [lane, 0]));
  let left = Math.max(0, room);
  const deal = (to: readonly string[], most: number) => {
    let open = to.filter((lane) => limits.get(lane)! < most);
    while (left > 0 && open.length > 0) {
      for (const lane of open) {
        if (left === 0) break;
        limits.set(lane, limits.get(lane)! + 1);
        left--;
      }
      open = open.filter((lane) => limits.get(lane)! < most);
    }
  };
  deal(lanes, Math.min(1, batchSize));
  deal(
    lanes.filter((lane) => backlogged.has(lane)),
    batchSize,
  );
  deal(lanes, batchSize);
  return limits;
}
