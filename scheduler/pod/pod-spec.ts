import type { V1Container, V1EnvVar, V1ObjectMeta, V1PodSpec, V1SecurityContext, V1Volume } from '@kubernetes/client-node';
import type { Lane } from '../lanes.js';
import type { ProverProfile } from '../prover-profiles.js';
import { env, files, labels, mounts, programPath, volumeNames } from '../../contract/pod.js';

/** One attempt, as the builder needs it. */
export interface AttemptPodInput {
  name: string;
  jobId: string;
  attemptNo: number;
  source: { url: string; commit: string; subdirectory: string | null };
  targets: string[];
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
  allowFileSources: boolean;
  /** Seconds the reporter keeps, before the deadline, to upload an error report. */
  reportMarginSeconds: number;
  /** The uid every task container runs as. */
  runAsUser: number;
  /** Unset: Kubernetes' default (Always for a `:latest` tag, which a kind-loaded image cannot satisfy). */
  imagePullPolicy?: 'Always' | 'IfNotPresent' | 'Never' | undefined;
}

export interface AttemptPod {
  metadata: V1ObjectMeta & { name: string; labels: Record<string, string> };
  spec: V1PodSpec;
}

/**
 * The pod of one attempt (SPEC §5): a `fetch` init container, then `prover` and `reporter`. Pure:
 * both substrates run exactly this, Kubernetes inside a Job and the local substrate in sandboxes.
 */
export function buildAttemptPod(attempt: AttemptPodInput, profile: ProverProfile, lane: Lane, settings: PodSettings): AttemptPod {
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
      volumes: attemptVolumes(attempt),
      initContainers: [fetchContainer(attempt, profile, settings)].map(withPullPolicy(settings)),
      containers: [withLaneResources(proverContainer(attempt, profile), lane), reporterContainer(attempt, profile, settings)].map(withPullPolicy(settings)),
      ...(lane.nodeSelector ? { nodeSelector: lane.nodeSelector } : {}),
      ...(lane.tolerations ? { tolerations: lane.tolerations } : {}),
    },
  };
}

/** The lane's resource profile belongs to the prover, which does the work; fetch and reporter are small. */
function withLaneResources(container: V1Container, lane: Lane): V1Container {
  if (!lane.resources) return container;
  const list = (r: Record<string, string | number> | undefined) => (r ? Object.fromEntries(Object.entries(r).map(([k, v]) => [k, String(v)])) : undefined);
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

const tmpVolume = (container: 'fetch' | 'prover' | 'reporter') => `${volumeNames.tmp}-${container}`;

function attemptVolumes(attempt: AttemptPodInput): V1Volume[] {
  return [
    { name: volumeNames.source, emptyDir: {} },
    { name: volumeNames.meta, emptyDir: { sizeLimit: '16Mi' } },
    { name: volumeNames.results, emptyDir: { sizeLimit: '256Mi' } },
    // Scratch space per container: a shared /tmp would be a channel from the prover to the reporter.
    ...(['fetch', 'prover', 'reporter'] as const).map((c) => ({ name: tmpVolume(c), emptyDir: { sizeLimit: '1Gi' } })),
    {
      name: volumeNames.credential,
      secret: { secretName: attempt.credentialSecretName, defaultMode: 0o400, items: [{ key: files.credential, path: files.credential }] },
    },
  ];
}

const plain = (name: string, value: string): V1EnvVar => ({ name, value });

function fetchContainer(attempt: AttemptPodInput, profile: ProverProfile, settings: PodSettings): V1Container {
  return {
    name: 'fetch',
    image: settings.taskImage,
    command: ['node', programPath('fetch')],
    env: [
      plain(env.jobId, attempt.jobId),
      plain(env.attemptNo, String(attempt.attemptNo)),
      plain(env.sourceUrl, attempt.source.url),
      plain(env.commit, attempt.source.commit),
      plain(env.subdirectory, attempt.source.subdirectory ?? ''),
      plain(env.maxSourceBytes, String(settings.maxSourceBytes)),
      plain(env.allowFileSources, String(settings.allowFileSources)),
      plain(env.allowSubmodules, String(profile.allowSubmodules)),
    ],
    volumeMounts: [
      { name: volumeNames.source, mountPath: mounts.source },
      { name: volumeNames.meta, mountPath: mounts.meta },
      { name: tmpVolume('fetch'), mountPath: mounts.tmp },
    ],
    securityContext: restrictedSecurityContext(),
    terminationMessagePolicy: 'FallbackToLogsOnError',
  };
}

/** The prover gets the profile and targets, and nothing of the scheduler's: no URL, no credential. */
function proverContainer(attempt: AttemptPodInput, profile: ProverProfile): V1Container {
  return {
    name: 'prover',
    image: profile.image,
    command: ['node', programPath('prover')],
    env: [
      plain(env.profile, JSON.stringify(profile)),
      plain(env.targets, JSON.stringify(attempt.targets)),
      plain(env.subdirectory, attempt.source.subdirectory ?? ''),
    ],
    volumeMounts: [
      { name: volumeNames.source, mountPath: mounts.source },
      { name: volumeNames.meta, mountPath: mounts.meta, readOnly: true },
      { name: volumeNames.results, mountPath: mounts.results },
      { name: tmpVolume('prover'), mountPath: mounts.tmp },
    ],
    securityContext: restrictedSecurityContext(),
    terminationMessagePolicy: 'FallbackToLogsOnError',
  };
}

/** The only container that holds the upload credential, as a file of a Secret volume. */
function reporterContainer(attempt: AttemptPodInput, profile: ProverProfile, settings: PodSettings): V1Container {
  const reportBy = Math.floor(attempt.deadlineAt.getTime() / 1000) - settings.reportMarginSeconds;
  return {
    name: 'reporter',
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
      { name: tmpVolume('reporter'), mountPath: mounts.tmp },
    ],
    securityContext: restrictedSecurityContext(),
    terminationMessagePolicy: 'FallbackToLogsOnError',
  };
}
