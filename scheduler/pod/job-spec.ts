import type { V1Job, V1OwnerReference, V1Secret } from '@kubernetes/client-node';
import { files } from '../../contract/pod.js';
import type { AttemptPod } from './pod-spec.js';

export interface JobSettings {
  namespace: string;
  owner: V1OwnerReference | undefined;
  ttlSecondsAfterFinished: number;
}

/**
 * The batch/v1 Job of one attempt (docs/architecture.md, "Substrates"): exactly one pod, never retried by Kubernetes (retries
 * are the scheduler's, as new attempts), killed at the attempt's deadline, removed a while after it
 * finished, and owned by a long-lived object of the release. Pure.
 */
export function buildAttemptJob(pod: AttemptPod, deadlineAt: Date, settings: JobSettings, now = new Date()): V1Job {
  return {
    apiVersion: 'batch/v1',
    kind: 'Job',
    metadata: {
      name: pod.metadata.name,
      namespace: settings.namespace,
      labels: pod.metadata.labels,
      ...(settings.owner ? { ownerReferences: [{ ...settings.owner, blockOwnerDeletion: false, controller: false }] } : {}),
    },
    spec: {
      backoffLimit: 0,
      completions: 1,
      parallelism: 1,
      activeDeadlineSeconds: Math.max(1, Math.ceil((deadlineAt.getTime() - now.getTime()) / 1000)),
      ttlSecondsAfterFinished: settings.ttlSecondsAfterFinished,
      template: { metadata: { labels: pod.metadata.labels }, spec: pod.spec },
    },
  };
}

/** The Secret holding the attempt's upload credential, owned by its Job so it goes with it. */
export function buildCredentialSecret(name: string, job: V1Job & { metadata: { uid: string } }, credential: string): V1Secret {
  return {
    apiVersion: 'v1',
    kind: 'Secret',
    metadata: {
      name,
      namespace: job.metadata.namespace,
      labels: job.metadata.labels,
      ownerReferences: [
        { apiVersion: 'batch/v1', kind: 'Job', name: job.metadata.name!, uid: job.metadata.uid, blockOwnerDeletion: false },
      ],
    },
    type: 'Opaque',
    immutable: true,
    stringData: { [files.credential]: credential },
  };
}

export const credentialSecretName = (attemptName: string) => `${attemptName}-upload`;
