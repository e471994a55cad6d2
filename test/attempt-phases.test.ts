import { describe, expect, it } from 'vitest';
import { type AttemptPhase, type ContainerTiming, attemptPhases } from '../scheduler/substrate/attempt-phases.js';

const t = (seconds: number) => new Date(Date.UTC(2026, 0, 1, 12, 0, 0) + seconds * 1000);
/** A Coq pod as the local substrate reports it (ISO strings): fetch 1.5 s, build 4 s, check 2.25 s, upload 0.25 s. */
const local: ContainerTiming[] = [
  { name: 'fetch', startedAt: t(0).toISOString(), finishedAt: t(1.5).toISOString() },
  { name: 'build', startedAt: t(1.5).toISOString(), finishedAt: t(5.5).toISOString() },
  { name: 'check', startedAt: t(5.5).toISOString(), finishedAt: t(7.75).toISOString() },
  { name: 'reporter', startedAt: t(5.5).toISOString(), finishedAt: t(8).toISOString() },
];

describe('attemptPhases: phase durations from the pod’s container timestamps', () => {
  it.each<[string, ContainerTiming[], AttemptPhase[]]>([
    [
      'all four phases of a pod with a build step',
      local,
      [
        { phase: 'fetch', seconds: 1.5 },
        { phase: 'build', seconds: 4 },
        { phase: 'check', seconds: 2.25 },
        { phase: 'upload', seconds: 0.25 },
      ],
    ],
    [
      'Date objects, as client-node gives a kubelet’s second-resolution stamps; a zero-length phase is kept',
      [
        { name: 'fetch', startedAt: t(0), finishedAt: t(2) },
        { name: 'check', startedAt: t(2), finishedAt: t(60) },
        { name: 'reporter', startedAt: t(2), finishedAt: t(60) },
      ],
      [
        { phase: 'fetch', seconds: 2 },
        { phase: 'check', seconds: 58 },
        { phase: 'upload', seconds: 0 },
      ],
    ],
    ['no build step: no build phase', local.filter((c) => c.name !== 'build'), attemptPhases(local).filter((p) => p.phase !== 'build')],
    [
      'a container that never started, or has no end, gives no phase',
      [
        { name: 'fetch', finishedAt: t(1) },
        { name: 'build', startedAt: t(1) },
        { name: 'check', startedAt: t(2), finishedAt: t(3) },
        { name: 'reporter', startedAt: t(2) },
      ],
      [{ phase: 'check', seconds: 1 }],
    ],
    [
      'no upload phase without the check’s end, however the reporter ended',
      [
        { name: 'check', startedAt: t(2) },
        { name: 'reporter', startedAt: t(2), finishedAt: t(9) },
      ],
      [],
    ],
    [
      'an unreadable timestamp, or an end before the start, gives no phase',
      [
        { name: 'fetch', startedAt: 'not a time', finishedAt: t(1) },
        { name: 'check', startedAt: t(5), finishedAt: t(4) },
        { name: 'reporter', finishedAt: t(6) },
      ],
      [{ phase: 'upload', seconds: 2 }],
    ],
    ['containers that are not the pod contract’s are ignored', [{ name: 'sidecar', startedAt: t(0), finishedAt: t(9) }], []],
    ['no timings at all', [], []],
  ])('%s', (_name, timings, expected) => {
    expect(attemptPhases(timings)).toEqual(expected);
  });
});
