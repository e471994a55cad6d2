/**
 * The Kubernetes substrate's client and change hints against the local control plane: one kept-
 * alive connection pool however many requests are in flight (scheduler/substrate/kubernetes/
 * client.ts), and `onChange` telling its listeners, once, when an attempt's status became final.
 * Skipped, with the reason, when the control plane is not up.
 */
import { randomBytes } from 'node:crypto';
import tls from 'node:tls';
import pino from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseConfig } from '../../scheduler/config.js';
import { apiClients } from '../../scheduler/substrate/kubernetes/client.js';
import { KubernetesSubstrate } from '../../scheduler/substrate/kubernetes/kubernetes-substrate.js';
import type { AttemptLaunch } from '../../scheduler/substrate/substrate.js';
import { adminKubeConfig, clusterUnavailable, until } from '../support/cluster.js';

const skipReason = await clusterUnavailable();

describe.skipIf(skipReason !== undefined)(`the Kubernetes client and change hints${skipReason ? ` (skipped: ${skipReason})` : ''}`, () => {
  const kc = skipReason ? undefined : adminKubeConfig();
  const namespace = `pp-client-${randomBytes(4).toString('hex')}`;
  const admin = kc ? apiClients(kc, { connections: 4 }) : undefined;

  beforeAll(async () => {
    await admin!.core.createNamespace({ body: { metadata: { name: namespace } } });
    // The attempt pods' ServiceAccount (pod.taskServiceAccount): without it the Job controller creates no pod.
    await admin!.core.createNamespacedServiceAccount({ namespace, body: { metadata: { name: 'proofpod-task' } } });
  });
  afterAll(async () => {
    await admin?.core.deleteNamespace({ name: namespace }).catch(() => {});
    admin?.close();
  });

  it('keeps its connections alive, and does not fail requests queued behind more requests than connections', async () => {
    const clients = apiClients(kc!, { connections: 4 });
    const connect = tls.connect;
    let connects = 0;
    tls.connect = ((...args: Parameters<typeof tls.connect>) => {
      connects++;
      return connect(...args);
    }) as typeof tls.connect;
    try {
      for (let i = 0; i < 10; i++) await clients.core.listNamespacedPod({ namespace });
      expect(connects).toBe(1);
      // 16 at once over 4 kept connections: node-fetch 2 fails a response whose socket goes straight
      // to a request waiting in the agent ("Premature close"), so none may wait there.
      const results = await Promise.allSettled(Array.from({ length: 160 }, () => clients.core.listNamespace()));
      expect(results.filter((r) => r.status === 'rejected')).toEqual([]);
    } finally {
      tls.connect = connect;
      clients.close();
    }
  });

  it('tells onChange listeners once when an attempt failed, and again when its Job is gone', async () => {
    const config = parseConfig({
      databaseUrl: 'postgres://unused/unused',
      substrate: 'kubernetes',
      // No image of the pod is mapped in the process-kubelet: ErrImagePull, an end at once with no grace.
      pod: { release: 'hints', taskImage: 'hints.invalid/unmapped:1' },
      kubernetes: { namespace, imagePullGraceSeconds: 0 },
      provers: [{ ...parseConfig({}).provers.find((p) => p.name === 'coq')!, image: 'hints.invalid/unmapped:1' }],
    });
    const substrate = new KubernetesSubstrate(config, kc!, pino({ level: 'silent' }));
    const heard: string[] = [];
    const unsubscribe = substrate.onChange((name) => heard.push(name));
    try {
      const launch: AttemptLaunch = {
        name: 'hints-1',
        jobId: '00000000-0000-4000-8000-000000000011',
        attemptId: '00000000-0000-4000-8000-000000000012',
        attemptNo: 1,
        lane: 'verify',
        prover: 'coq',
        laneConfig: config.lanes.find((l) => l.name === 'verify')!,
        profile: config.provers[0]!,
        source: { url: 'https://example.org/p.git', commit: 'c'.repeat(40), subdirectory: null },
        targets: ['A.v'],
        goals: [],
        deadlineAt: new Date(Date.now() + 600_000),
        uploadUrl: 'http://127.0.0.1:1/unused',
        uploadCredential: 'ppu_unused',
      };
      await substrate.start(launch);
      // Answered from the create itself until the informer has the Job: never "vanished".
      expect((await substrate.observe('hints-1'))?.phase).toBe('pending');
      await until('the listener to hear of the failed attempt', async () => heard.length > 0, 60_000);
      expect(heard).toEqual(['hints-1']);
      expect((await substrate.observe('hints-1'))?.phase).toBe('infrastructure_failure');
      // The kubelet keeps writing the pod's status (ErrImagePull, ImagePullBackOff): heard once only.
      await new Promise((resolve) => setTimeout(resolve, 2_000));
      expect(heard).toEqual(['hints-1']);

      await substrate.stop('hints-1');
      await until('the listener to hear that the Job is gone', async () => heard.length > 1, 30_000);
      expect(heard).toEqual(['hints-1', 'hints-1']);
      unsubscribe();
    } finally {
      await substrate.close();
    }
  }, 120_000);
});
