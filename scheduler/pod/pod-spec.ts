import type { V1Container, V1EnvVar, V1ObjectMeta, V1PodSpec, V1SecurityContext, V1Volume } from '@kubernetes/client-node';
import type { Lane } from '../lanes.js';
import type { ProverProfile } from '../prover-profiles.js';
import { type ContainerName, containers, env, files, labels, mounts, programPath, tmpVolumeName, volumeNames } from '../../contract/pod.js';
import { fillCommand, profileForLane } from '../../contract/profile.js';
import { quantityCores } from '../quantity.js';
import { buildCommand } from './build-script.js';

/** One attempt, as the builder needs it. */
export interface AttemptPodInput {
  name: string;
  jobId: string;
  attemptNo: number;
  source: { url: string; commit: string; subdirectory: string | null };
  targets: string[];
  goals: { name: string; statement: string }[];
  deadlineAt: Date;
  uploadUrl: string;
  /** Name of the Secret (Kubernetes) or file set (local) holding the upload credential. */
  credentialSecretName: string;
}

/** Settings of the installation, not of the attempt. */
export interface PodSettings {
  release: string;
  /** Image with Node, git and the task-pod programs (fetch, reporter). */
  taskImage: string;
  taskServiceAccount: string;
  maxSourceBytes: number;
  maxSourceFiles: number;
  maxSourceDepth: number;
  maxTargetBytes: number;
  allowFileSources: boolean;
  /** Seconds the reporter keeps, before the deadline, to upload an error report. */
  reportMarginSeconds: number;
  /** The uid the containers that run our programs (fetch, check, reporter) run as. */
  runAsUser: number;
  /** The uid the build container runs as: never one of our programs', so proof code cannot signal or trace them. */
  buildRunAsUser: number;
  /** Size limit of the artifacts volume (a Kubernetes quantity). */
  artifactsSizeLimit: string;
  /** Unset: Kubernetes' default (Always for a `:latest` tag, which a kind-loaded image cannot satisfy). */
  imagePullPolicy?: 'Always' | 'IfNotPresent' | 'Never' | undefined;
}

export interface AttemptPod {
  metadata: V1ObjectMeta & { name: string; labels: Record<string, string> };
  spec: V1PodSpec;
}

/**
 * The pod of one attempt (docs/architecture.md, "The task pod"): init containers `fetch` and, when
 * the profile has a build step, `build`; then `check` and `reporter`. Pure: both substrates run
 * exactly this, Kubernetes inside a Job and the local substrate in sandboxes.
 */
export function buildAttemptPod(attempt: AttemptPodInput, configured: ProverProfile, lane: Lane, settings: PodSettings): AttemptPod {
  const profile = profileForLane(configured, lane);
  const init = [
    fetchContainer(attempt, settings, profile),
    ...(profile.build ? [withLaneResources(buildContainer(attempt, profile, lane, settings), lane)] : []),
  ];
  return {
    metadata: { name: attempt.name, labels: attemptLabels(attempt, profile, lane, settings) },
    spec: {
      restartPolicy: 'Never',
      serviceAccountName: settings.taskServiceAccount,
      automountServiceAccountToken: false,
      enableServiceLinks: false,
      shareProcessNamespace: false,
      securityContext: {
        runAsNonRoot: true,
        runAsUser: settings.runAsUser,
        runAsGroup: settings.runAsUser,
        fsGroup: settings.runAsUser,
        seccompProfile: { type: 'RuntimeDefault' },
      },
      volumes: attemptVolumes(attempt, profile, settings),
      initContainers: init.map(withPullPolicy(settings)),
      containers: [withLaneResources(checkContainer(attempt, profile, lane), lane), reporterContainer(attempt, profile, settings)].map(
        withPullPolicy(settings),
      ),
      ...(lane.nodeSelector ? { nodeSelector: lane.nodeSelector } : {}),
      ...(lane.tolerations ? { tolerations: lane.tolerations } : {}),
    },
  };
}

/** The lane's resource profile belongs to build and check, which do the work; fetch and reporter are small. */
function withLaneResources(container: V1Container, lane: Lane): V1Container {
  if (!lane.resources) return container;
  const list = (r: Record<string, string | number> | undefined) =>
    r ? Object.fromEntries(Object.entries(r).map(([k, v]) => [k, String(v)])) : undefined;
  const requests = list(lane.resources.requests);
  const limits = list(lane.resources.limits);
  return { ...container, resources: { ...(requests ? { requests } : {}), ...(limits ? { limits } : {}) } };
}

function withPullPolicy(settings: PodSettings): (container: V1Container) => V1Container {
  return (container) => (settings.imagePullPolicy ? { ...container, imagePullPolicy: settings.imagePullPolicy } : container);
}

export function attemptLabels(
  attempt: Pick<AttemptPodInput, 'jobId' | 'attemptNo'>,
  profile: Pick<ProverProfile, 'name'>,
  lane: Pick<Lane, 'name'>,
  settings: Pick<PodSettings, 'release'>,
): Record<string, string> {
  return {
    [labels.managedBy]: 'proofpod',
    [labels.release]: settings.release,
    [labels.jobId]: attempt.jobId,
    [labels.attempt]: String(attempt.attemptNo),
    [labels.lane]: lane.name,
    [labels.prover]: profile.name,
  };
}

/** Restricted Pod Security Standard, and a read-only root filesystem. */
export function restrictedSecurityContext(): V1SecurityContext {
  return {
    allowPrivilegeEscalation: false,
    privileged: false,
    capabilities: { drop: ['ALL'] },
    runAsNonRoot: true,
    readOnlyRootFilesystem: true,
    seccompProfile: { type: 'RuntimeDefault' },
  };
}

function attemptVolumes(attempt: AttemptPodInput, profile: ProverProfile, settings: PodSettings): V1Volume[] {
  const used: ContainerName[] = [containers.fetch, ...(profile.build ? [containers.build] : []), containers.check, containers.reporter];
  return [
    { name: volumeNames.source, emptyDir: {} },
    { name: volumeNames.meta, emptyDir: { sizeLimit: '16Mi' } },
    ...(profile.build ? [{ name: volumeNames.artifacts, emptyDir: { sizeLimit: settings.artifactsSizeLimit } }] : []),
    { name: volumeNames.results, emptyDir: { sizeLimit: '256Mi' } },
    ...used.map((c) => ({ name: tmpVolumeName(c), emptyDir: { sizeLimit: '1Gi' } })),
    {
      name: volumeNames.credential,
      secret: { secretName: attempt.credentialSecretName, defaultMode: 0o400, items: [{ key: files.credential, path: files.credential }] },
    },
  ];
}

const plain = (name: string, value: string): V1EnvVar => ({ name, value });
const tmpMount = (container: ContainerName) => ({ name: tmpVolumeName(container), mountPath: mounts.tmp });

function fetchContainer(attempt: AttemptPodInput, settings: PodSettings, profile: ProverProfile): V1Container {
  return {
    name: containers.fetch,
    image: settings.taskImage,
    command: ['node', programPath('fetch')],
    env: [
      plain(env.jobId, attempt.jobId),
      plain(env.attemptNo, String(attempt.attemptNo)),
      plain(env.sourceUrl, attempt.source.url),
      plain(env.commit, attempt.source.commit),
      plain(env.subdirectory, attempt.source.subdirectory ?? ''),
      plain(env.targets, JSON.stringify(attempt.targets)),
      plain(env.maxSourceBytes, String(settings.maxSourceBytes)),
      plain(env.maxSourceFiles, String(settings.maxSourceFiles)),
      plain(env.maxSourceDepth, String(settings.maxSourceDepth)),
      plain(env.maxTargetBytes, String(settings.maxTargetBytes)),
      plain(env.allowFileSources, String(settings.allowFileSources)),
      plain(env.allowSubmodules, String(profile.allowSubmodules)),
    ],
    volumeMounts: [
      { name: volumeNames.source, mountPath: mounts.source },
      { name: volumeNames.meta, mountPath: mounts.meta },
      tmpMount(containers.fetch),
    ],
    securityContext: restrictedSecurityContext(),
    terminationMessagePolicy: 'FallbackToLogsOnError',
  };
}

/**
 * Untrusted: the profile's build step, which may run any code the proof brings (plugins, tactics,
 * build scripts). No program of ours runs here, under its own uid; it sees the source read-only,
 * writes only the artifacts volume and its scratch space, and holds nothing of the scheduler's.
 */
function buildContainer(attempt: AttemptPodInput, profile: ProverProfile, lane: Lane, settings: PodSettings): V1Container {
  return {
    name: containers.build,
    image: profile.image,
    command: buildCommand(
      timeLimited(profile.build!.command, lane),
      attempt.source.subdirectory,
      attempt.targets,
      projectBuild(profile, lane, attempt.targets),
    ),
    env: [plain('HOME', mounts.tmp), plain('TMPDIR', mounts.tmp), plain('LANG', 'C.UTF-8')],
    volumeMounts: [
      { name: volumeNames.source, mountPath: mounts.source, readOnly: true },
      { name: volumeNames.artifacts, mountPath: mounts.artifacts },
      tmpMount(containers.build),
    ],
    securityContext: { ...restrictedSecurityContext(), runAsUser: settings.buildRunAsUser, runAsGroup: settings.buildRunAsUser },
    terminationMessagePolicy: 'FallbackToLogsOnError',
  };
}

/** The profile's project build, `{jobs}` the lane's CPU (0: unknown, the command decides) and `{targets}` the targets. */
function projectBuild(profile: ProverProfile, lane: Lane, targets: readonly string[]): { file: string; command: string[] } | undefined {
  if (!profile.project) return undefined;
  const cpu = quantityCores(lane.resources?.limits?.cpu ?? lane.resources?.requests?.cpu);
  const jobs = String(cpu === undefined ? 0 : Math.max(1, Math.ceil(cpu)));
  return {
    file: profile.project.file,
    command: timeLimited(fillCommand(profile.project.build, '', { words: { '{jobs}': jobs }, lists: { '{targets}': targets } }), lane),
  };
}

/** A build command under the lane's build time limit (coreutils timeout: exit 124 when it hit it). */
function timeLimited(command: readonly string[], lane: Lane): string[] {
  return lane.buildTimeoutSeconds ? ['timeout', '-k', '10', String(lane.buildTimeoutSeconds), ...command] : [...command];
}

/**
 * Trusted: the check wrapper runs only the profile's checker and audit, on read-only inputs, once
 * the build container and every process it started are gone. It gets the profile and targets, and
 * nothing of the scheduler's: no URL, no credential.
 */
function checkContainer(attempt: AttemptPodInput, profile: ProverProfile, lane: Lane): V1Container {
  return {
    name: containers.check,
    image: profile.image,
    command: ['node', programPath('check')],
    env: [
      plain(env.profile, JSON.stringify(profile)),
      plain(env.targets, JSON.stringify(attempt.targets)),
      plain(env.subdirectory, attempt.source.subdirectory ?? ''),
      plain(env.allowedAxioms, JSON.stringify(lane.allowedAxioms)),
      plain(env.goals, JSON.stringify(attempt.goals)),
    ],
    volumeMounts: [
      { name: volumeNames.source, mountPath: mounts.source, readOnly: true },
      { name: volumeNames.meta, mountPath: mounts.meta, readOnly: true },
      ...(profile.build ? [{ name: volumeNames.artifacts, mountPath: mounts.artifacts, readOnly: true }] : []),
      { name: volumeNames.results, mountPath: mounts.results },
      tmpMount(containers.check),
    ],
    securityContext: restrictedSecurityContext(),
    terminationMessagePolicy: 'FallbackToLogsOnError',
  };
}

/** The only container that holds the upload credential, as a file of a Secret volume. */
function reporterContainer(attempt: AttemptPodInput, profile: ProverProfile, settings: PodSettings): V1Container {
  const reportBy = Math.floor(attempt.deadlineAt.getTime() / 1000) - settings.reportMarginSeconds;
  return {
    name: containers.reporter,
    image: settings.taskImage,
    command: ['node', programPath('reporter')],
    env: [
      plain(env.jobId, attempt.jobId),
      plain(env.attemptNo, String(attempt.attemptNo)),
      plain(env.profile, JSON.stringify(profile)),
      plain(env.targets, JSON.stringify(attempt.targets)),
      plain(env.uploadUrl, attempt.uploadUrl),
      plain(env.reportBy, String(reportBy)),
    ],
    volumeMounts: [
      { name: volumeNames.meta, mountPath: mounts.meta, readOnly: true },
      { name: volumeNames.results, mountPath: mounts.results, readOnly: true },
      { name: volumeNames.credential, mountPath: mounts.credential, readOnly: true },
      tmpMount(containers.reporter),
    ],
    securityContext: restrictedSecurityContext(),
    terminationMessagePolicy: 'FallbackToLogsOnError',
  };
}
