import type { V1ContainerStatus, V1Job, V1Pod } from '@kubernetes/client-node';
import { describe, expect, it } from 'vitest';
import { attemptStatusOf, imageDigestOf } from '../scheduler/substrate/kubernetes/read-status.js';

const now = Date.parse('2026-01-01T00:10:00Z');
const settings = { imagePullGraceSeconds: 60, pendingLimitSeconds: 600 };
const digest = `sha256:${'ab'.repeat(32)}`;
const other = `sha256:${'cd'.repeat(32)}`;
const job = (conditions: V1Job['status'] = {}): V1Job => ({
  metadata: { name: 'pp-x-1', creationTimestamp: new Date(now - 5000) },
  status: conditions,
});
const pod = (
  ageSeconds: number,
  inits: V1ContainerStatus[],
  mains: V1ContainerStatus[],
  extra: Partial<V1Pod['status']> = {},
  deleting = false,
): V1Pod => ({
  metadata: { name: 'p', creationTimestamp: new Date(now - ageSeconds * 1000), ...(deleting ? { deletionTimestamp: new Date(now) } : {}) },
  status: { phase: 'Pending', initContainerStatuses: inits, containerStatuses: mains, ...extra },
});
const c = (name: string, state: V1ContainerStatus['state'], imageID = ''): V1ContainerStatus => ({
  name,
  image: `img/${name}`,
  imageID,
  ready: false,
  restartCount: 0,
  state,
});
const fetchDone = c('fetch', { terminated: { exitCode: 0 } });
/** A kubelet's timestamp `seconds` from now (negative: before). */
const at = (seconds: number) => new Date(now + seconds * 1000);
const waiting = (name: string, reason: string) => c(name, { waiting: { reason, message: `${reason} happened` } });

describe('reading an attempt from its Job and pod', () => {
  it.each([
    ['no pod yet', job(), [], { phase: 'pending', reason: 'waiting for the Job controller to create the pod' }],
    [
      'Job failed without its pod',
      job({ conditions: [{ type: 'Failed', status: 'True', reason: 'BackoffLimitExceeded' }] }),
      [],
      { phase: 'infrastructure_failure', reason: expect.stringMatching(/^pod deleted/) },
    ],
    [
      // Read as pending before, the attempt waited out the pending limit (600 s): the likely cause of a
      // job the tiny chaos run on Kubernetes left running, its evidence accepted, after a pod deletion.
      'Job complete without its pod (deleted before the scheduler read it)',
      job({ succeeded: 1, conditions: [{ type: 'Complete', status: 'True' }] }),
      [],
      { phase: 'infrastructure_failure', reason: 'pod deleted after the Job completed, before its container statuses were read' },
    ],
    [
      'Job past its deadline',
      job({ conditions: [{ type: 'Failed', status: 'True', reason: 'DeadlineExceeded', message: 'too long' }] }),
      [],
      { phase: 'infrastructure_failure', reason: 'DeadlineExceeded: too long' },
    ],
    [
      'fetch refused the source',
      job(),
      [pod(10, [c('fetch', { terminated: { exitCode: 1, message: 'symlink leaves the workspace' } })], [])],
      { phase: 'source_refused', reason: 'symlink leaves the workspace' },
    ],
    [
      'fetch crashed',
      job(),
      [pod(10, [c('fetch', { terminated: { exitCode: 3, reason: 'Error' } })], [])],
      { phase: 'infrastructure_failure', reason: expect.stringMatching(/^fetch failed with exit code 3/) },
    ],
    [
      'InvalidImageName at once',
      job(),
      [pod(1, [fetchDone], [waiting('check', 'InvalidImageName')])],
      // The check container runs the prover profile's image: counted against its health.
      { phase: 'infrastructure_failure', reason: expect.stringMatching(/^InvalidImageName: container check/), ofProfile: true },
    ],
    [
      'ErrImagePull inside the grace period',
      job(),
      [pod(30, [fetchDone], [waiting('check', 'ErrImagePull')])],
      { phase: 'pending', reason: 'Pending' },
    ],
    [
      'ImagePullBackOff after the grace period',
      job(),
      [pod(61, [fetchDone], [waiting('check', 'ImagePullBackOff')])],
      {
        phase: 'infrastructure_failure',
        reason: expect.stringMatching(/^ImagePullBackOff: container check \(img\/check\)/),
        ofProfile: true,
      },
    ],
    [
      'CreateContainerConfigError after the grace period',
      job(),
      [pod(61, [], [waiting('reporter', 'CreateContainerConfigError')])],
      // The reporter runs our task image, not the profile's.
      { phase: 'infrastructure_failure', reason: expect.stringMatching(/^CreateContainerConfigError/), ofProfile: false },
    ],
    [
      'OOMKilled',
      job(),
      [pod(10, [fetchDone], [c('check', { terminated: { exitCode: 137, reason: 'OOMKilled' } }), c('reporter', { running: {} })])],
      { phase: 'infrastructure_failure', reason: expect.stringMatching(/^OOMKilled/) },
    ],
    [
      'evicted',
      job(),
      [pod(10, [fetchDone], [c('check', { running: {} })], { phase: 'Failed', reason: 'Evicted', message: 'low on disk' })],
      { phase: 'infrastructure_failure', reason: 'Evicted: low on disk' },
    ],
    [
      'disrupted',
      job(),
      [
        pod(10, [fetchDone], [c('check', { running: {} })], {
          conditions: [{ type: 'DisruptionTarget', status: 'True', reason: 'PreemptionByScheduler' }],
        }),
      ],
      { phase: 'infrastructure_failure', reason: expect.stringMatching(/^PreemptionByScheduler/) },
    ],
    [
      'deleted while running',
      job(),
      [pod(10, [fetchDone], [c('check', { running: {} }), c('reporter', { running: {} })], {}, true)],
      { phase: 'infrastructure_failure', reason: 'pod deleted before the attempt finished' },
    ],
    [
      'Pending too long',
      job(),
      [pod(601, [], [waiting('check', 'ContainerCreating')])],
      { phase: 'infrastructure_failure', reason: expect.stringMatching(/^Pending for 601s since the pod was created/) },
    ],
    [
      'running',
      job(),
      [pod(10, [fetchDone], [c('check', { running: {} }), c('reporter', { running: {} })], { phase: 'Running' })],
      { phase: 'running' },
    ],
    [
      'finished: the check exit code and the observed digest',
      job(),
      [
        pod(
          10,
          [fetchDone],
          [
            c('check', { terminated: { exitCode: 1 } }, `docker-pullable://img/check@${digest}`),
            c('reporter', { terminated: { exitCode: 0 } }),
          ],
          { phase: 'Failed' },
        ),
      ],
      {
        phase: 'finished',
        check: { exitCode: 1, imageDigest: digest },
        build: null,
        timings: [{ name: 'fetch' }, { name: 'check' }, { name: 'reporter' }],
      },
    ],
    [
      'finished after a build: both observed, and when each container ran',
      job(),
      [
        pod(
          10,
          [fetchDone, c('build', { terminated: { exitCode: 0, startedAt: at(-9), finishedAt: at(-6) } }, `img@${other}`)],
          [
            c('check', { terminated: { exitCode: 0, startedAt: at(-6), finishedAt: at(-2) } }, `img@${digest}`),
            c('reporter', { terminated: { exitCode: 0, startedAt: at(-6), finishedAt: at(-1) } }),
          ],
        ),
      ],
      {
        phase: 'finished',
        check: { exitCode: 0, imageDigest: digest },
        build: { exitCode: 0, imageDigest: other },
        timings: [
          { name: 'fetch' },
          { name: 'build', startedAt: at(-9), finishedAt: at(-6) },
          { name: 'check', startedAt: at(-6), finishedAt: at(-2) },
          { name: 'reporter', startedAt: at(-6), finishedAt: at(-1) },
        ],
      },
    ],
    [
      'the build driver failed: final, not retried',
      job(),
      [pod(10, [fetchDone, c('build', { terminated: { exitCode: 137, reason: 'Error', message: 'killed' } })], [])],
      { phase: 'build_failed', reason: 'the build container exited 137 (killed by signal 9): killed' },
    ],
    [
      'the build ran out of memory: retried',
      job(),
      [pod(10, [fetchDone, c('build', { terminated: { exitCode: 137, reason: 'OOMKilled' } })], [])],
      { phase: 'infrastructure_failure', reason: 'OOMKilled: container build ran out of memory' },
    ],
    [
      'the check is over but the reporter is not: not finished',
      job(),
      [pod(10, [fetchDone], [c('check', { terminated: { exitCode: 0 } }), c('reporter', { running: {} })], { phase: 'Running' })],
      { phase: 'running' },
    ],
  ])('%s', (_name, j, pods, expected) => {
    expect(attemptStatusOf(j as V1Job, pods as V1Pod[], settings, now)).toEqual(expected);
  });

  it('reads the digest from any imageID form', () => {
    expect(imageDigestOf(`img@${digest}`)).toBe(digest);
    expect(imageDigestOf(digest)).toBe(digest);
    expect(imageDigestOf('img:latest')).toBeNull();
  });
});
