import { afterAll, expect } from 'vitest';
import type { Proofpod } from '../../scheduler/app.js';

const live = new Set<Proofpod>();

/** Tracks a started instance until it is stopped or crashed. */
export function track(instance: Proofpod): Proofpod {
  live.add(instance);
  const { stop, crash } = instance;
  instance.stop = async () => {
    live.delete(instance);
    await stop();
  };
  instance.crash = async () => {
    live.delete(instance);
    await crash();
  };
  return instance;
}

// A test file that leaves a scheduler (its loops, pool and server) running fails here.
afterAll(() => {
  const left = [...live].map((i) => i.url);
  live.clear();
  expect(left, 'scheduler instances left running at the end of the file').toEqual([]);
});
