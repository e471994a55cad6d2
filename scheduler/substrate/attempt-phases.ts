import { containers } from '../../contract/pod.js';

/** When one container of an attempt pod ran, as the substrate reports it (a kubelet's `startedAt` and `finishedAt`). */
export interface ContainerTiming {
  name: string;
  startedAt?: Date | string | undefined;
  finishedAt?: Date | string | undefined;
}

export const attemptPhaseNames = ['fetch', 'build', 'check', 'upload'] as const;
export type AttemptPhaseName = (typeof attemptPhaseNames)[number];

export interface AttemptPhase {
  phase: AttemptPhaseName;
  seconds: number;
}

const at = (value: Date | string | undefined): number | undefined => {
  if (value === undefined) return undefined;
  const ms = new Date(value).getTime();
  return Number.isNaN(ms) ? undefined : ms;
};

/**
 * How long each phase of an attempt took, from the pod's own container timestamps: fetch and build
 * are their init containers' runs, check the check container's, upload runs from the check's end to
 * the reporter's (which ends once its evidence was accepted, or it gave up). All four come from one
 * clock, the node's; the evidence's arrival is stamped by Postgres' and would mix two. A phase that
 * did not run (no build step), lacks either timestamp, or ends before it starts is left out. Pure.
 */
export function attemptPhases(timings: readonly ContainerTiming[]): AttemptPhase[] {
  const of = (name: string) => timings.find((t) => t.name === name);
  const check = of(containers.check);
  const spans: [AttemptPhaseName, Date | string | undefined, Date | string | undefined][] = [
    ['fetch', of(containers.fetch)?.startedAt, of(containers.fetch)?.finishedAt],
    ['build', of(containers.build)?.startedAt, of(containers.build)?.finishedAt],
    ['check', check?.startedAt, check?.finishedAt],
    ['upload', check?.finishedAt, of(containers.reporter)?.finishedAt],
  ];
  const phases: AttemptPhase[] = [];
  for (const [phase, from, to] of spans) {
    const start = at(from);
    const end = at(to);
    if (start !== undefined && end !== undefined && end >= start) phases.push({ phase, seconds: (end - start) / 1000 });
  }
  return phases;
}
