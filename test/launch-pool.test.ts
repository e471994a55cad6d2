/**
 * The launch pool (scheduler/replica/launch-pool.ts) on its own: how the room is shared among lanes,
 * the bound on creates, and that every launch handed over runs exactly once.
 */
import { describe, expect, it } from 'vitest';
import { LaunchPool, shareRoom } from '../scheduler/replica/launch-pool.js';
import { TokenBucket, retryShed } from '../scheduler/substrate/kubernetes/client.js';

/** A promise and the function that settles it: a launch or create that ends when the test says. */
function gate(): { promise: Promise<void>; open: () => void } {
  let open = () => {};
  const promise = new Promise<void>((resolve) => {
    open = resolve;
  });
  return { promise, open };
}

const tick = () => new Promise((resolve) => setImmediate(resolve));

describe('shareRoom', () => {
  const lanes = ['intake', 'verify', 'audit', 'replay'];
  it.each([
    { room: 0, backlogged: [], want: [0, 0, 0, 0], why: 'no room: nobody claims' },
    { room: 2, backlogged: lanes, want: [1, 1, 0, 0], why: 'less room than lanes: one each, in the order given' },
    { room: 4, backlogged: [], want: [1, 1, 1, 1], why: 'every lane is looked at' },
    { room: 16, backlogged: [], want: [4, 4, 4, 4], why: 'no lane known to have more: shared evenly' },
    { room: 16, backlogged: ['verify'], want: [1, 13, 1, 1], why: 'the rest goes to the lane with more queued' },
    { room: 16, backlogged: ['intake', 'verify'], want: [7, 7, 1, 1], why: 'shared round-robin between deep lanes' },
    { room: 48, backlogged: ['verify'], want: [10, 20, 9, 9], why: 'never more than a batch; the rest to the others' },
  ])('$why', ({ room, backlogged, want }) => {
    const limits = shareRoom(lanes, room, 20, new Set(backlogged));
    expect(lanes.map((lane) => limits.get(lane))).toEqual(want);
  });
});

describe('LaunchPool', () => {
  it('holds three launches per create slot, and never runs more creates than its limit', async () => {
    const pool = new LaunchPool(2, ['verify']);
    expect(pool.capacity).toBe(6);
    let creating = 0;
    let most = 0;
    const creates = Array.from({ length: 6 }, () => gate());
    for (const create of creates) {
      pool.run(
        () =>
          pool.create(async () => {
            creating++;
            most = Math.max(most, creating);
            await create.promise;
            creating--;
          }),
        () => {},
      );
    }
    expect(pool.room).toBe(0);
    await tick();
    expect(creating).toBe(2);
    for (const create of creates) create.open();
    await pool.drain();
    expect(most).toBe(2);
    expect(pool.size).toBe(0);
    expect(pool.room).toBe(6);
  });

  it('runs a launch handed over past its room once a slot frees, exactly once', async () => {
    const pool = new LaunchPool(1, ['verify']);
    const first = gate();
    const ran: string[] = [];
    for (let i = 0; i < 3; i++)
      pool.run(
        () => first.promise.then(() => void ran.push(`a${i}`)),
        () => {},
      );
    pool.run(
      async () => void ran.push('late'),
      () => {},
    );
    expect(pool.size).toBe(4);
    await tick();
    expect(ran).toEqual([]);
    first.open();
    await pool.drain();
    expect(ran.sort()).toEqual(['a0', 'a1', 'a2', 'late']);
  });

  it('passes a launch that rejects to onError and frees its slot', async () => {
    const pool = new LaunchPool(1, ['verify']);
    const errors: unknown[] = [];
    pool.run(
      () => Promise.reject(new Error('boom')),
      (error) => errors.push(error),
    );
    await pool.drain();
    expect(errors).toHaveLength(1);
    expect(pool.room).toBe(3);
  });

  it('wakes a cycle waiting for room once enough launches ended, not before', async () => {
    const pool = new LaunchPool(1, ['verify']);
    const launches = Array.from({ length: 3 }, () => gate());
    for (const launch of launches)
      pool.run(
        () => launch.promise,
        () => {},
      );
    let woken = false;
    const waiting = pool.whenRoom(2).then(() => {
      woken = true;
    });
    launches[0]!.open();
    await tick();
    expect(woken).toBe(false);
    launches[1]!.open();
    await waiting;
    expect(pool.room).toBeGreaterThanOrEqual(2);
    launches[2]!.open();
    await pool.drain();
  });

  it('remembers which lanes had more queued, and starts with all of them', () => {
    const pool = new LaunchPool(4, ['intake', 'verify']);
    expect(pool.anyBacklogged).toBe(true);
    pool.claimed('intake', 3, 1);
    pool.claimed('verify', 3, 0);
    expect(pool.anyBacklogged).toBe(false);
    // A lane that got no room this cycle keeps what was known of it.
    pool.claimed('verify', 0, 0);
    expect(pool.anyBacklogged).toBe(false);
    pool.claimed('verify', 2, 2);
    expect(pool.anyBacklogged).toBe(true);
  });

  it('takes turns at the front when the room is smaller than the number of lanes', async () => {
    const pool = new LaunchPool(1, ['intake', 'verify', 'audit']);
    const held = gate();
    pool.run(
      () => held.promise,
      () => {},
    );
    pool.run(
      () => held.promise,
      () => {},
    );
    expect(pool.room).toBe(1);
    const first = (shares: Map<string, number>) => [...shares].filter(([, n]) => n > 0).map(([lane]) => lane);
    const lanes = ['intake', 'verify', 'audit'];
    expect([first(pool.share(lanes, 10)), first(pool.share(lanes, 10)), first(pool.share(lanes, 10))]).toEqual([
      ['intake'],
      ['verify'],
      ['audit'],
    ]);
    held.open();
    await pool.drain();
  });
});

describe('the Kubernetes client helpers', () => {
  it('retries a create the API server shed (429) after its Retry-After, and gives up after the last try', async () => {
    let calls = 0;
    const waits: number[] = [];
    const shed = Object.assign(new Error('Too Many Requests'), { code: 429, headers: { 'retry-after': '0.1' } });
    await expect(
      retryShed(
        async () => {
          calls++;
          if (calls < 3) throw shed;
          return 'created';
        },
        (seconds) => waits.push(seconds),
      ),
    ).resolves.toBe('created');
    expect(waits).toEqual([0.1, 0.1]);
    calls = 0;
    await expect(
      retryShed(
        async () => {
          calls++;
          throw shed;
        },
        () => {},
        2,
      ),
    ).rejects.toBe(shed);
    expect(calls).toBe(2);
    // Anything else is not retried.
    calls = 0;
    const conflict = Object.assign(new Error('exists'), { code: 409 });
    await expect(
      retryShed(
        async () => {
          calls++;
          throw conflict;
        },
        () => {},
      ),
    ).rejects.toBe(conflict);
    expect(calls).toBe(1);
  });

  it('lets a burst through at once, then paces requests at the rate', async () => {
    const bucket = new TokenBucket(50, 3);
    const start = performance.now();
    for (let i = 0; i < 3; i++) await bucket.take();
    expect(performance.now() - start).toBeLessThan(15);
    for (let i = 0; i < 5; i++) await bucket.take();
    // Five more at 50 a second: about 100 ms.
    expect(performance.now() - start).toBeGreaterThan(80);
  });
});
