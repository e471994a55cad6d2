/**
 * What runs attempts: the local sandboxes or a Kubernetes cluster. The dispatch pipeline and the
 * reaper need only these operations, so both substrates, and test fakes, plug in here.
 */

import type { ContainerObservation } from '../evidence/judge.js';
import type { ProverProfile } from '../../contract/profile.js';
import type { ContainerName } from '../../contract/pod.js';
import type { Lane } from '../lanes.js';
import type { ContainerTiming } from './attempt-phases.js';

/** Everything a substrate needs to start one attempt. */
export interface AttemptLaunch {
  /** Deterministic object name; starting the same name twice must yield a DuplicateError. */
  name: string;
  attemptId: string;
  jobId: string;
  attemptNo: number;
  lane: string;
  prover: string;
  /** The lane, as the dispatcher resolved it: its resources, limits and placement. */
  laneConfig: Lane;
  /** The prover profile as this lane runs it (profileForLane: its second checker only where the lane requires one). */
  profile: ProverProfile;
  source: { url: string; commit: string; subdirectory: string | null };
  targets: string[];
  /** Theorems the checked files must prove, with their statements. */
  goals: { name: string; statement: string }[];
  deadlineAt: Date;
  /** Per-attempt upload credential; must reach the reporter alone. */
  uploadCredential: string;
  /** Where the reporter posts its evidence. */
  uploadUrl: string;
}

/** What the substrate itself reports about an attempt. */
export type AttemptStatus =
  | { phase: 'pending'; reason?: string }
  | { phase: 'running' }
  /**
   * The pod ran to the end: the exit code and image digest of the check container, and of the
   * build container when the pod had one, are the scheduler's own observation; `timings`, when the
   * substrate knows them, when each container ran (for the phase metrics only, never judged).
   */
  | { phase: 'finished'; check: ContainerObservation; build: ContainerObservation | null; timings?: ContainerTiming[] }
  /** The build container itself failed (its driver exited non-zero, not a proof that failed to build): final, not retried. */
  | { phase: 'build_failed'; reason: string }
  /** The fetch refused the source (hostile or invalid): final, not retried; the reason says why. */
  | { phase: 'source_refused'; reason: string }
  /** It could not run, or was killed for reasons outside the proof: retried by lane policy. */
  | {
      phase: 'infrastructure_failure';
      reason: string;
      /**
       * The prover profile's own image or containers failed (its image could not be pulled, its
       * build or check container could not be configured or started): counted against the
       * profile's health (docs/operations.md, "Prover health"), unlike a lost node or lease.
       */
      ofProfile?: boolean;
    };

export interface ObservedAttempt {
  name: string;
  status: AttemptStatus;
}

export interface Substrate {
  readonly kind: string;
  /** Creates the attempt's objects. Throws DuplicateError when they exist already. */
  start(launch: AttemptLaunch): Promise<void>;
  /** The attempt's status, or undefined when the substrate has no such attempt. */
  observe(name: string): Promise<AttemptStatus | undefined>;
  /**
   * Every attempt of ours the substrate holds. It may come from a watch cache that lags the source:
   * the orphan sweep, its only caller, is right either way (reap-orphans.ts).
   */
  list(): Promise<ObservedAttempt[]>;
  /** Stops and removes the attempt; a missing attempt is not an error. */
  stop(name: string): Promise<void>;
  /** Throws when the substrate cannot be reached (used by /readyz). */
  ping(): Promise<void>;
  /** Releases watches and connections, when the substrate holds any. */
  close?(): Promise<void>;
  /**
   * Registers `listener` to be told, with the attempt's name, when an attempt may have moved on (a
   * container ended, the pod finished), so that the watcher looks at once instead of on its next
   * interval. A hint only: the watcher still polls, so a substrate without it only costs latency.
   * Returns the function that unregisters it.
   */
  onChange?(listener: (name: string) => void): () => void;
  /**
   * The log of one container of the attempt's pod (its stdout and stderr, as the kubelet keeps
   * them), its first `maxBytes`; undefined when the pod or the container is gone or has not started.
   */
  readLog?(name: string, container: ContainerName, maxBytes: number): Promise<ContainerLog | undefined>;
}

/** A container's log as the substrate has it. */
export interface ContainerLog {
  content: Buffer;
  /** More was written than `content` holds. */
  truncated: boolean;
}
