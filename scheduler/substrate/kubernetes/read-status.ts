import type { V1ContainerStatus, V1Job, V1Pod } from '@kubernetes/client-node';
import { isolatedContainers } from '../../../contract/pod.js';
import { type ContainerReport, finishedObservation, initFailure } from '../pod-outcome.js';
import type { AttemptStatus } from '../substrate.js';

export interface ReadSettings {
  imagePullGraceSeconds: number;
  pendingLimitSeconds: number;
}

const time = (value: Date | string | undefined): number | undefined => (value === undefined ? undefined : new Date(value).getTime());
const truthy = (conditions: { type: string; status: string; reason?: string; message?: string }[] | undefined, type: string) =>
  conditions?.find((c) => c.type === type && c.status === 'True');

/** The `sha256:…` digest in an imageID such as `docker-pullable://repo@sha256:…`. */
export function imageDigestOf(imageID: string | undefined): string | null {
  return imageID?.match(/sha256:[0-9a-f]{64}/)?.[0] ?? null;
}

function report(c: V1ContainerStatus): ContainerReport {
  const ended = c.state?.terminated;
  return {
    name: c.name,
    terminated: ended ? { exitCode: ended.exitCode, reason: ended.reason, message: ended.message } : undefined,
    imageDigest: imageDigestOf(c.imageID),
    startedAt: ended?.startedAt ?? c.state?.running?.startedAt,
    finishedAt: ended?.finishedAt,
  };
}

/**
 * What an attempt's Job and pod say, in the scheduler's terms (docs/architecture.md, "Substrates"): the
 * exit codes and image digests of build and check once the pod is over; the real reason when it cannot run —
 * InvalidImageName at once, image pulls and config errors after a grace period, OOMKilled,
 * eviction and disruption, the deadline, a deleted pod, Pending too long from creation. Pure.
 */
export function attemptStatusOf(job: V1Job, pods: V1Pod[], settings: ReadSettings, now = Date.now()): AttemptStatus {
  const pod = [...pods].sort((a, b) => (time(b.metadata?.creationTimestamp) ?? 0) - (time(a.metadata?.creationTimestamp) ?? 0))[0];
  const failed = truthy(job.status?.conditions, 'Failed');
  if (failed?.reason === 'DeadlineExceeded')
    return { phase: 'infrastructure_failure', reason: `DeadlineExceeded: ${failed.message ?? 'the Job passed its deadline'}` };
  if (!pod) {
    if (failed)
      return { phase: 'infrastructure_failure', reason: `pod deleted: the Job failed without its pod (${failed.reason ?? 'no reason'})` };
    // Finished, but the pod and its container statuses, which the judge holds the evidence to, are gone.
    if (truthy(job.status?.conditions, 'Complete') || (job.status?.succeeded ?? 0) > 0)
      return { phase: 'infrastructure_failure', reason: 'pod deleted after the Job completed, before its container statuses were read' };
    const age = now - (time(job.metadata?.creationTimestamp) ?? now);
    if (age > settings.pendingLimitSeconds * 1000)
      return { phase: 'infrastructure_failure', reason: `no pod after ${Math.round(age / 1000)}s` };
    return { phase: 'pending', reason: 'waiting for the Job controller to create the pod' };
  }
  return podStatusOf(pod, settings, now, Boolean(failed));
}

function podStatusOf(pod: V1Pod, settings: ReadSettings, now: number, jobFailed: boolean): AttemptStatus {
  const status = pod.status ?? {};
  const inits = status.initContainerStatuses ?? [];
  const mains = status.containerStatuses ?? [];
  const age = now - (time(pod.metadata?.creationTimestamp) ?? now);
  const failedInit = initFailure(inits.map(report));
  if (failedInit) return failedInit;
  for (const c of [...inits, ...mains]) {
    const waiting = c.state?.waiting;
    if (!waiting?.reason) continue;
    const detail = `${waiting.reason}: container ${c.name} (${c.image})${waiting.message ? `: ${waiting.message}` : ''}`;
    // The build and check containers run the prover profile's image: their failures count against its health.
    const ofProfile = isolatedContainers.has(c.name);
    if (waiting.reason === 'InvalidImageName') return { phase: 'infrastructure_failure', reason: detail, ofProfile };
    if (
      ['ErrImagePull', 'ImagePullBackOff', 'CreateContainerConfigError', 'CreateContainerError'].includes(waiting.reason) &&
      age > settings.imagePullGraceSeconds * 1000
    ) {
      return { phase: 'infrastructure_failure', reason: detail, ofProfile };
    }
  }
  const oom = [...inits, ...mains].find((c) => c.state?.terminated?.reason === 'OOMKilled');
  if (oom) return { phase: 'infrastructure_failure', reason: `OOMKilled: container ${oom.name} ran out of memory` };
  const disrupted = truthy(status.conditions as never, 'DisruptionTarget');
  if (disrupted)
    return {
      phase: 'infrastructure_failure',
      reason: `${disrupted.reason ?? 'DisruptionTarget'}: ${disrupted.message ?? 'the pod was disrupted'}`,
    };
  if (status.reason === 'Evicted')
    return { phase: 'infrastructure_failure', reason: `Evicted: ${status.message ?? 'the node evicted the pod'}` };
  const finished = finishedObservation(inits.map(report), mains.map(report));
  if (finished) return finished;
  if (pod.metadata?.deletionTimestamp || jobFailed)
    return { phase: 'infrastructure_failure', reason: 'pod deleted before the attempt finished' };
  if (status.phase === 'Pending' && age > settings.pendingLimitSeconds * 1000) {
    return { phase: 'infrastructure_failure', reason: `Pending for ${Math.round(age / 1000)}s since the pod was created` };
  }
  return mains.some((c) => c.state?.running) ? { phase: 'running' } : { phase: 'pending', reason: status.phase ?? 'Pending' };
}
