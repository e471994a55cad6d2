import { describe, expect, it } from 'vitest';
import { CarriedLaunches } from '../scheduler/replica/carried-launches.js';

/** CarriedLaunches is pure but for its clock, which the tests set. */
function withClock(graceMs = 1_000) {
  let now = 0;
  const carried = new CarriedLaunches(graceMs, () => now);
  return { carried, at: (ms: number) => (now = ms) };
}

describe('CarriedLaunches: which dispatching attempts held here the watcher carries on', () => {
  it('an attempt no stage carries is stranded once it has gone uncarried for the grace period, not before', () => {
    const { carried, at } = withClock();
    at(0);
    expect(carried.stranded(['a'])).toEqual([]);
    at(999);
    expect(carried.stranded(['a'])).toEqual([]);
    at(1_000);
    expect(carried.stranded(['a'])).toEqual(['a']);
  });

  it('a carried attempt is never stranded, and its clock starts again when it is released', () => {
    const { carried, at } = withClock();
    at(0);
    expect(carried.stranded(['a'])).toEqual([]);
    const release = carried.hold('a');
    at(5_000);
    expect(carried.stranded(['a'])).toEqual([]);
    release();
    expect(carried.stranded(['a'])).toEqual([]);
    at(5_999);
    expect(carried.stranded(['a'])).toEqual([]);
    at(6_000);
    expect(carried.stranded(['a'])).toEqual(['a']);
  });

  it('holds nest, and releasing one twice releases it once', () => {
    const { carried, at } = withClock();
    at(0);
    const outer = carried.hold('a');
    const inner = carried.hold('a');
    inner();
    inner();
    carried.stranded(['a']);
    at(5_000);
    // Still carried by the outer hold.
    expect(carried.stranded(['a'])).toEqual([]);
    outer();
    carried.stranded(['a']);
    at(6_000);
    expect(carried.stranded(['a'])).toEqual(['a']);
  });

  it('forgets an attempt no longer held dispatching, so that seeing it again starts a new clock', () => {
    const { carried, at } = withClock();
    at(0);
    carried.stranded(['a', 'b']);
    at(500);
    expect(carried.stranded(['b'])).toEqual([]);
    at(1_200);
    expect(carried.stranded(['a', 'b'])).toEqual(['b']);
    at(2_200);
    expect(carried.stranded(['a', 'b'])).toEqual(['a', 'b']);
  });
});
