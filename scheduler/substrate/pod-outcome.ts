import { containers, fetchExitCodes } from '../../contract/pod.js';
import type { AttemptStatus } from './substrate.js';
import type { ContainerTiming } from './attempt-phases.js';

/** One container of an attempt pod as a substrate reports it, in the terms both substrates share. */
export interface ContainerReport extends ContainerTiming {
  name: string;
  /** Present once the container has ended. */
  terminated?: { exitCode: number | null; reason?: string | undefined; message?: string | undefined } | undefined;
  imageDigest: string | null;
}

const why = (c: ContainerReport) => c.terminated?.message?.trim() || c.terminated?.reason || `exit code ${c.terminated?.exitCode}`;

/**
 * What an init container that ended non-zero means (the pod contract's exit codes): fetch exits 1
 * when it refuses the source (final), anything else of fetch is the infrastructure's (retried); the
 * build driver exits non-zero only when it could not run the build at all, which no retry mends.
 * Undefined while no init container failed. Pure; both substrates read their pods through it.
 */
export function initFailure(inits: readonly ContainerReport[]): AttemptStatus | undefined {
  for (const init of inits) {
    const ended = init.terminated;
    if (!ended || ended.exitCode === 0) continue;
    if (ended.reason === 'OOMKilled')
      return { phase: 'infrastructure_failure', reason: `OOMKilled: container ${init.name} ran out of memory` };
    if (init.name === containers.fetch) {
      return ended.exitCode === fetchExitCodes.refused
        ? { phase: 'source_refused', reason: why(init) }
        : { phase: 'infrastructure_failure', reason: `fetch failed with exit code ${ended.exitCode}: ${why(init)}` };
    }
    if (init.name === containers.build) {
      const code = ended.exitCode;
      const signal = code !== null && code > 128 && code < 160 ? ` (killed by signal ${code - 128})` : '';
      return { phase: 'build_failed', reason: `the build container exited ${code ?? 'without an exit code'}${signal}: ${why(init)}` };
    }
    return { phase: 'infrastructure_failure', reason: `init container ${init.name} failed with exit code ${ended.exitCode}: ${why(init)}` };
  }
  return undefined;
}

/**
 * The scheduler's own observation once every container has ended: exit code and image digest of
 * the check container, and of the build container when the pod had one; and every container's
 * timestamps, for the phase durations (attempt-phases.ts). Undefined while any container still runs.
 */
export function finishedObservation(inits: readonly ContainerReport[], mains: readonly ContainerReport[]): AttemptStatus | undefined {
  const check = mains.find((c) => c.name === containers.check);
  if (!check?.terminated || !mains.every((c) => c.terminated) || !inits.every((c) => c.terminated)) return undefined;
  const build = inits.find((c) => c.name === containers.build);
  const observed = (c: ContainerReport | undefined) => ({ exitCode: c?.terminated?.exitCode ?? null, imageDigest: c?.imageDigest ?? null });
  const timings = [...inits, ...mains].map(({ name, startedAt, finishedAt }) => ({ name, startedAt, finishedAt }));
  return { phase: 'finished', check: observed(check), build: build ? observed(build) : null, timings };
}
