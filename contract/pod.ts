/**
 * The task pod contract shared by the pod-spec builder, both substrates and the task-pod programs:
 * where each volume is mounted, which files pass between containers, and the environment each
 * container gets. Nothing secret is ever in an environment variable.
 */

/** The containers of an attempt pod, in the order they run: fetch, then build (if the profile has one), then check and reporter together. */
export const containers = { fetch: 'fetch', build: 'build', check: 'check', reporter: 'reporter' } as const;
export type ContainerName = (typeof containers)[keyof typeof containers];

/**
 * The containers that run no program of ours but proof code (build) or a checker over hostile
 * input (check): no network, no secret, read-only inputs. The local substrate gives these two no
 * network namespace at all; on Kubernetes the pod shares one network and the NetworkPolicy bounds it.
 */
export const isolatedContainers: ReadonlySet<string> = new Set([containers.build, containers.check]);

export const mounts = {
  /** The fetched repository. fetch: rw; build and check: ro. */
  source: '/workspace/source',
  /** The fetch manifest and the check-exit FIFO. fetch: rw, check: ro, reporter: ro. */
  meta: '/workspace/meta',
  /** What the build made (`artifacts.tree`, `artifacts.status`). build: rw, check: ro. */
  artifacts: '/workspace/artifacts',
  /** The check wrapper's results. check: rw, reporter: ro. */
  results: '/workspace/results',
  /** The per-attempt upload credential (a Secret volume). reporter only, ro. */
  credential: '/var/run/proofpod/upload',
  /** Scratch space, one volume per container; root filesystems are read-only. */
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
  artifacts: 'artifacts',
  results: 'results',
  credential: 'upload-credential',
  /** `tmp-<container>`: scratch space of one container; a shared one would be a channel between them. */
  tmp: 'tmp',
} as const;

export const tmpVolumeName = (container: ContainerName) => `${volumeNames.tmp}-${container}`;

export const files = {
  /** In meta: written by fetch. */
  manifest: 'manifest.json',
  /**
   * In meta: a FIFO made by fetch. The check wrapper holds it open from start to exit and writes
   * one byte when it starts; the reporter sees end-of-file once no process of the check container
   * is left. It lives on a volume only fetch can write, so no later container can replace it.
   */
  checkExit: 'check-exit.fifo',
  /** In results: the check wrapper's summary, written last by atomic rename. */
  result: 'result.json',
  /** In results: the full log of every check command (and the build output it read), concatenated. */
  log: 'check.log',
  /** In the credential mount: the upload credential. */
  credential: 'credential',
} as const;

/**
 * The build container's layout in the artifacts volume: `tree/` is its copy of the source, where
 * the build commands run; `status/<n>.exit` and `status/<n>.log` are the exit code and output of
 * the build of the n-th target (from 1). All of it is written by proof code: the check reads it
 * as untrusted, only ever to fail a target, never to pass one.
 */
export const artifacts = { tree: 'tree', status: 'status' } as const;

/**
 * Where the task-pod programs are in the task and prover images: each bundled into one file with
 * what it imports (`npm run build:pod-programs`), so a container starts one module, not a tree.
 */
export const programsDir = '/opt/proofpod';
export const programPath = (name: 'fetch' | 'check' | 'reporter') => `${programsDir}/dist/pod-programs/${name}.mjs`;

/** The fetch program's exit codes; 1 is final (the source is refused), the others are the infrastructure's. */
export const fetchExitCodes = { fetched: 0, refused: 1, failed: 2, transient: 3 } as const;

/** The check wrapper's exit code for each outcome; the scheduler compares it with what it observed. */
export const checkExitCodes = { pass: 0, fail: 1, error: 2 } as const;

/**
 * The build driver's own exit codes (the build commands' exit codes are in `artifacts.status`):
 * it exits 0 once every target was tried, whatever the builds said.
 */
export const buildExitCodes = { done: 0, copyFailed: 70, noWorkdir: 71 } as const;

export const env = {
  jobId: 'PROOFPOD_JOB_ID',
  attemptNo: 'PROOFPOD_ATTEMPT',
  sourceUrl: 'PROOFPOD_SOURCE_URL',
  commit: 'PROOFPOD_COMMIT',
  subdirectory: 'PROOFPOD_SUBDIRECTORY',
  targets: 'PROOFPOD_TARGETS',
  profile: 'PROOFPOD_PROFILE',
  /** The job's goals, a JSON array of { name, statement } (check container). */
  goals: 'PROOFPOD_GOALS',
  /** The lane's allowed axioms, a JSON array of qualified names (check container). */
  allowedAxioms: 'PROOFPOD_ALLOWED_AXIOMS',
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
