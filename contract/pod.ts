/**
 * The task pod contract shared by the pod-spec builder, both substrates and the task-pod programs:
 * where each volume is mounted, which files pass between containers, and the environment each
 * container gets. Nothing secret is ever in an environment variable.
 */

export const mounts = {
  /** The fetched repository. fetch: rw, prover: rw (provers write build outputs beside sources). */
  source: '/workspace/source',
  /** The fetch manifest and the prover-exit FIFO. fetch: rw, prover: ro, reporter: ro. */
  meta: '/workspace/meta',
  /** The prover wrapper's results. prover: rw, reporter: ro. */
  results: '/workspace/results',
  /** The per-attempt upload credential (a Secret volume). reporter only, ro. */
  credential: '/var/run/proofpod/upload',
  /** Scratch space; root filesystems are read-only. */
  tmp: '/tmp',
} as const;

export type MountName = keyof typeof mounts;

/**
 * Where a mount is for this process: the contract path, or `PROOFPOD_MOUNT_<NAME>` when a substrate
 * runs the programs without a sandbox (and so without the mounts) or a test runs them directly.
 */
export function mountPath(name: MountName, environment: NodeJS.ProcessEnv = process.env): string {
  return environment[`PROOFPOD_MOUNT_${name.toUpperCase()}`] || mounts[name];
}

export const volumeNames = {
  source: 'source',
  meta: 'meta',
  results: 'results',
  credential: 'upload-credential',
  tmp: 'tmp',
} as const;

export const files = {
  /** In meta: written by fetch. */
  manifest: 'manifest.json',
  /**
   * In meta: a FIFO made by fetch. The prover wrapper holds it open from start to exit and writes
   * one byte when it starts; the reporter sees end-of-file once no process of the prover container
   * is left. It lives on the volume the prover mounts read-only, so a proof cannot replace it.
   */
  proverExit: 'prover-exit.fifo',
  /** In results: the wrapper's summary, written last by atomic rename. */
  result: 'result.json',
  /** In results: the full log of every command, concatenated. */
  log: 'prover.log',
  /** In the credential mount: the upload credential. */
  credential: 'credential',
} as const;

/** Where the task-pod programs are in the task and prover images. */
export const programsDir = '/opt/proofpod';
export const programPath = (name: 'fetch' | 'prover' | 'reporter') => `${programsDir}/dist/task-pod/${name}.js`;

export const env = {
  jobId: 'PROOFPOD_JOB_ID',
  attemptNo: 'PROOFPOD_ATTEMPT',
  sourceUrl: 'PROOFPOD_SOURCE_URL',
  commit: 'PROOFPOD_COMMIT',
  subdirectory: 'PROOFPOD_SUBDIRECTORY',
  targets: 'PROOFPOD_TARGETS',
  profile: 'PROOFPOD_PROFILE',
  maxSourceBytes: 'PROOFPOD_MAX_SOURCE_BYTES',
  /** Most files (blobs) the source tree may have. */
  maxSourceFiles: 'PROOFPOD_MAX_SOURCE_FILES',
  /** Most path components a file of the source tree may have. */
  maxSourceDepth: 'PROOFPOD_MAX_SOURCE_DEPTH',
  /** Most bytes the targets may take together. */
  maxTargetBytes: 'PROOFPOD_MAX_TARGET_BYTES',
  allowFileSources: 'PROOFPOD_ALLOW_FILE_SOURCES',
  allowSubmodules: 'PROOFPOD_ALLOW_SUBMODULES',
  uploadUrl: 'PROOFPOD_UPLOAD_URL',
  /** Epoch seconds by which the reporter must have uploaded, leaving it time before the pod is killed. */
  reportBy: 'PROOFPOD_REPORT_BY',
} as const;

/** The labels every attempt object carries. */
export const labels = {
  managedBy: 'app.kubernetes.io/managed-by',
  release: 'proofpod.dev/release',
  jobId: 'proofpod.dev/job-id',
  attempt: 'proofpod.dev/attempt',
  lane: 'proofpod.dev/lane',
  prover: 'proofpod.dev/prover',
} as const;
