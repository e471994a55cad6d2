import type { V1ContainerStatus, V1PodCondition, V1PodStatus } from '@kubernetes/client-node';
import { type LocalContainerStatus, type LocalPodStatus, setupFailures } from '../../scheduler/substrate/local/local-substrate.js';

/** A real kubelet reports an image it cannot pull as ErrImagePull, then ImagePullBackOff while it retries. */
export const imagePullBackOffAfterMs = 5000;

function containerStatus(c: LocalContainerStatus, image: string, now: number, firstSeen: number): V1ContainerStatus {
  const base = { name: c.name, image, imageID: c.imageDigest ? `${image}@${c.imageDigest}` : '', restartCount: 0 };
  if (c.state === 'terminated') {
    return {
      ...base,
      ready: false,
      started: false,
      state: {
        terminated: {
          exitCode: c.exitCode ?? 128,
          reason: c.reason ?? (c.exitCode === 0 ? 'Completed' : 'Error'),
          ...(c.message ? { message: c.message } : {}),
          ...(c.startedAt ? { startedAt: new Date(c.startedAt) } : {}),
          finishedAt: new Date(c.finishedAt ?? now),
        },
      },
    };
  }
  if (c.state === 'running') {
    return { ...base, ready: true, started: true, state: { running: { startedAt: new Date(c.startedAt ?? now) } } };
  }
  let reason = c.reason ?? 'PodInitializing';
  if (reason === 'ErrImagePull' && now - firstSeen > imagePullBackOffAfterMs) {
    // The substrate says once that the image cannot be had; a kubelet then reports its back-off.
    reason = 'ImagePullBackOff';
  }
  return { ...base, ready: false, started: false, state: { waiting: { reason, ...(c.message ? { message: c.message } : {}) } } };
}

/**
 * The pod status a kubelet reports for a pod the local substrate runs: phase, conditions and each
 * container's state (exit code and reason once terminated, waiting reasons such as ErrImagePull).
 * restartPolicy is taken as Never: a container that ended stays ended.
 */
export function toPodStatus(
  local: LocalPodStatus,
  images: Record<string, string>,
  previous: V1PodStatus | undefined,
  lost: boolean,
  /** When the kubelet started the pod. */
  startedAt: number,
  now = Date.now(),
): V1PodStatus {
  const inits = local.initContainers.map((c) => containerStatus(c, images[c.name] ?? '', now, startedAt));
  const mains = local.containers.map((c) => containerStatus(c, images[c.name] ?? '', now, startedAt));
  const initFailed = local.initContainers.some((c) => c.state === 'terminated' && c.exitCode !== 0);
  const initialized = local.initContainers.every((c) => c.state === 'terminated' && c.exitCode === 0);
  const allEnded = local.containers.every((c) => c.state === 'terminated');
  const setupFailed = [...local.initContainers, ...local.containers].some(
    (c) => c.reason && setupFailures.has(c.reason) && c.reason !== 'ErrImagePull',
  );
  let phase: V1PodStatus['phase'];
  let reason: string | undefined;
  let message: string | undefined;
  if (lost || local.failure || setupFailed) {
    phase = 'Failed';
    reason = lost ? 'NodeLost' : 'StartError';
    message = lost ? 'the process-kubelet lost the pod' : (local.failure ?? 'a container could not start');
  } else if (initFailed) phase = 'Failed';
  else if (initialized && allEnded) phase = local.containers.every((c) => c.exitCode === 0) ? 'Succeeded' : 'Failed';
  else if (initialized && local.containers.some((c) => c.state === 'running')) phase = 'Running';
  else phase = 'Pending';
  const ready = phase === 'Running' && local.containers.every((c) => c.state === 'running');
  const condition = (type: string, status: boolean): V1PodCondition => {
    const before = previous?.conditions?.find((c) => c.type === type);
    const value = status ? 'True' : 'False';
    const since = before?.status === value && before.lastTransitionTime ? new Date(before.lastTransitionTime) : new Date(now);
    return { type, status: value, lastTransitionTime: since };
  };
  return {
    phase,
    ...(reason ? { reason } : {}),
    ...(message ? { message } : {}),
    hostIP: '127.0.0.1',
    podIP: '127.0.0.1',
    podIPs: [{ ip: '127.0.0.1' }],
    startTime: previous?.startTime ? new Date(previous.startTime) : new Date(now),
    conditions: [
      condition('PodScheduled', true),
      condition('Initialized', initialized),
      condition('ContainersReady', ready),
      condition('Ready', ready),
    ],
    initContainerStatuses: inits,
    containerStatuses: mains,
  };
}
