/**
 * Tier 4 end to end: the scheduler with the Kubernetes substrate, running under a ServiceAccount
 * bound to exactly the Role of smoke/manifests/scheduler-rbac.yaml, against the real control plane;
 * Jobs' pods run by the process-kubelet with the real task-pod programs and the real coqc.
 * Skipped, with the reason, when the control plane is not up.
 */
import { chmodSync, readFileSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:http';
import path from 'node:path';
import { AuthorizationV1Api, BatchV1Api, CoreV1Api, type KubeConfig, RbacAuthorizationV1Api, type V1Pod } from '@kubernetes/client-node';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { parseAllDocuments } from 'yaml';
import type { Proofpod } from '../../scheduler/app.js';
import { type ConfigInput, parseConfig } from '../../scheduler/config.js';
import { KubernetesSubstrate } from '../../scheduler/substrate/kubernetes/kubernetes-substrate.js';
import pino from 'pino';
import { defaultProverProfiles } from '../../scheduler/prover-profiles.js';
import { freeLoopbackPort } from '../../scheduler/database/embedded.js';
import { labels } from '../../contract/pod.js';
import { adminKubeConfig, clusterUnavailable, serviceAccountKubeConfig, until } from '../support/cluster.js';
import { createTestDatabase, createToken } from '../support/database.js';
import { FixtureRepo, scratch } from '../support/git-fixtures.js';
import { attackPayload, pluginSource } from '../support/hostile-fixtures.js';
import { call, startInstance } from '../support/instance.js';
import { isFinalJobState } from '../../scheduler/job-states.js';

const skipReason = await clusterUnavailable();
if (skipReason) console.warn(`Kubernetes substrate tests skipped: ${skipReason}`);

describe.skipIf(skipReason !== undefined)(
  `Kubernetes substrate on the local control plane${skipReason ? ` (skipped: ${skipReason})` : ''}`,
  () => {
    // The body of a skipped describe still runs: build no clients without a cluster.
    const admin = skipReason ? undefined : adminKubeConfig();
    const core = admin?.makeApiClient(CoreV1Api) as CoreV1Api;
    const batch = admin?.makeApiClient(BatchV1Api) as BatchV1Api;
    const rbac = admin?.makeApiClient(RbacAuthorizationV1Api) as RbacAuthorizationV1Api;
    const namespace = `pp-k8s-${Math.random().toString(16).slice(2, 8)}`;
    const work = scratch('proofpod-k8s-');
    chmodSync(work.root, 0o755);
    let scheduler: KubeConfig;
    let proofpod: Proofpod;
    let token: string;
    let repo: FixtureRepo;
    let commit: string;
    let ownerUid: string;
    let db: Awaited<ReturnType<typeof createTestDatabase>>;
    let settings: ConfigInput;
    const ours = `${labels.managedBy}=proofpod`;

    beforeAll(async () => {
      await core.createNamespace({
        body: {
          metadata: {
            name: namespace,
            labels: { 'pod-security.kubernetes.io/enforce': 'restricted', 'pod-security.kubernetes.io/enforce-version': 'latest' },
          },
        },
      });
      // The manifest the docs ship, applied as it is (the binding's subject gets this namespace).
      for (const doc of parseAllDocuments(readFileSync('smoke/manifests/scheduler-rbac.yaml', 'utf8'))) {
        const object = doc.toJSON() as { kind: string; metadata: { name: string } } & Record<string, unknown>;
        if (object.kind === 'ServiceAccount') await core.createNamespacedServiceAccount({ namespace, body: object as never });
        if (object.kind === 'Role') await rbac.createNamespacedRole({ namespace, body: object as never });
        if (object.kind === 'RoleBinding') {
          const binding = object as unknown as { subjects: { namespace?: string }[] };
          for (const s of binding.subjects) s.namespace = namespace;
          await rbac.createNamespacedRoleBinding({ namespace, body: binding as never });
        }
      }
      const owner = await core.createNamespacedConfigMap({ namespace, body: { metadata: { name: 'proofpod-owner' } } });
      ownerUid = owner.metadata!.uid!;
      // The scheduler authenticates as its ServiceAccount, with a token from the TokenRequest API.
      scheduler = await serviceAccountKubeConfig(admin!, 'proofpod-scheduler', namespace, 3600);
      const kubeconfig = path.join(work.root, 'scheduler.kubeconfig');
      writeFileSync(kubeconfig, scheduler.exportConfig(), { mode: 0o600 });

      repo = new FixtureRepo(work.dir('proofs'));
      commit = repo.commit({
        'Arith.v': readFileSync('test/fixtures/proofs/Arith.v'),
        'Broken.v': readFileSync('test/fixtures/proofs/Broken.v'),
        // A proof that takes a while, so that things can happen to it mid-run.
        'slow.sh': 'sleep 4; echo done\n',
        // A proof whose plugin attacks the verdict from the build container.
        ...pluginSource(attackPayload),
      });
      db = await createTestDatabase();
      token = await createToken(db.sql, { id: 'k8s-e2e' });
      // A fixed port: reporters upload to it, and a restarted scheduler must be found there again (a
      // Service does that in a cluster).
      settings = {
        port: await freeLoopbackPort(),
        substrate: 'kubernetes',
        kubernetes: {
          kubeconfig,
          namespace,
          owner: { apiVersion: 'v1', kind: 'ConfigMap', name: 'proofpod-owner', uid: ownerUid },
          imagePullGraceSeconds: 5,
        },
        pod: { allowFileSources: true },
        lanes: [{ name: 'verify', trust: 'trusted', concurrency: 4, maxDeadlineSeconds: 300 }],
        dispatch: { intervalSeconds: 0.2, batchSize: 10 },
        claims: { ttlSeconds: 4, heartbeatSeconds: 1 },
        reaper: { intervalSeconds: 1, evidenceGraceSeconds: 20 },
        provers: [
          ...defaultProverProfiles,
          // A test vehicle for attempts that take a while: its check runs the target, which no real profile may do.
          {
            name: 'shell',
            image: 'proofpod/prover-shell:latest',
            versionCommand: ['sh', '-c', 'echo sh'],
            check: { input: 'source', command: ['sh', '{target}'] },
          },
        ],
      };
      proofpod = await startInstance(db.url, settings);
    }, 60_000);
    afterAll(async () => {
      await proofpod?.stop();
      await core.deleteNamespace({ name: namespace }).catch(() => {});
      work.remove();
    });

    const attemptsOf = async (id: string) =>
      db.sql<{ attemptNo: number; state: string; stateReason: string }[]>`
      select attempt_no, state, state_reason from attempts where job_id = ${id} order by attempt_no`;

    const submit = async (targets: string[], prover = 'coq') => {
      const r = await call(proofpod.url, 'POST', '/v1/jobs', {
        token,
        body: { source: { url: repo.url, commit }, prover, targets, lane: 'verify' },
      });
      expect(r.status).toBe(201);
      return r.body.id as string;
    };
    const ended = (id: string) =>
      until(
        `job ${id} to end`,
        async () => {
          const r = await call(proofpod.url, 'GET', `/v1/jobs/${id}`, { token });
          return isFinalJobState(r.body.state) && r.body;
        },
        120_000,
        250,
      );

    it('verifies a real Coq proof and rejects a broken one through Jobs, with the observed image digest', async () => {
      const [good, bad] = await Promise.all([submit(['Arith.v']), submit(['Broken.v'])]);
      // While they run: the objects the API server holds keep the invariants.
      const pods = await until(
        'both task pods',
        async () => {
          const list = await core.listNamespacedPod({ namespace, labelSelector: ours });
          return list.items.length >= 2 && list.items;
        },
        60_000,
      );
      for (const pod of pods) checkPod(pod);
      const jobs = await batch.listNamespacedJob({ namespace, labelSelector: ours });
      for (const job of jobs.items) {
        expect(job.metadata?.ownerReferences).toEqual([
          expect.objectContaining({ kind: 'ConfigMap', name: 'proofpod-owner', uid: ownerUid }),
        ]);
        expect(job.spec).toMatchObject({ backoffLimit: 0, template: { spec: { restartPolicy: 'Never' } } });
        expect(job.spec?.activeDeadlineSeconds).toBeGreaterThan(0);
      }
      const secrets = await core.listNamespacedSecret({ namespace, labelSelector: ours });
      for (const secret of secrets.items) expect(secret.metadata?.ownerReferences?.[0]).toMatchObject({ kind: 'Job' });

      const [verified, rejected] = await Promise.all([ended(good), ended(bad)]);
      expect(verified.state).toBe('verified');
      expect(rejected.state).toBe('rejected');
      expect(verified.attempts[0].observedImageDigest).toMatch(/^sha256:[0-9a-f]{64}$/);
      const evidence = (await call(proofpod.url, 'GET', `/v1/jobs/${good}/evidence`, { token })).body.evidence[0].body;
      expect(evidence.source).toMatchObject({ commit, treeHash: repo.tree(commit) });
      expect(evidence.check.version).toMatch(/8\.\d+/);
      expect(verified.attempts[0].observedBuild).toEqual({ exitCode: 0, imageDigest: verified.attempts[0].observedImageDigest });
      // Pod logs come through the API server from the kubelet, and the process-kubelet serves none:
      // here the kept log is missing, and the route says so with a 404, never a 5xx.
      const log = await call(proofpod.url, 'GET', `/v1/jobs/${good}/logs`, { token });
      expect(log.status).toBe(404);
      expect(log.body.message).toMatch(/^no log of container check for attempt 1/);

      // Once the run goes quiet, nothing of ours is left: the reaper deletes finished Jobs, the
      // garbage collector their pods and Secrets.
      await until(
        'no Job, pod or Secret of ours',
        async () => {
          const [j, p, s] = await Promise.all([
            batch.listNamespacedJob({ namespace, labelSelector: ours }),
            core.listNamespacedPod({ namespace, labelSelector: ours }),
            core.listNamespacedSecret({ namespace, labelSelector: ours }),
          ]);
          return j.items.length + p.items.length + s.items.length === 0;
        },
        60_000,
      );
    });

    it('a repository-shipped Coq plugin that attacks the verdict from the build container: rejected through a Job, nothing reached', async () => {
      const id = await submit(['Evil.v']);
      const job = await ended(id);
      expect(job.state).toBe('rejected');
      expect(job.stateReason).toContain('Top.Evil.wrong');
      const evidence = (await call(proofpod.url, 'GET', `/v1/jobs/${id}/evidence`, { token })).body.evidence[0].body;
      expect(evidence.logs.excerpt).toContain('attack: is uid 65533');
      expect(evidence.logs.excerpt).not.toMatch(/attack: inspector \d+: "patched"/);
      expect(evidence.logs.excerpt).not.toMatch(/attack: wrote \/workspace\/(results|meta|source)/);
    });

    it('a scheduler killed while attempts run: the restarted one re-adopts them, none runs twice', async () => {
      const ids = await Promise.all([submit(['slow.sh'], 'shell'), submit(['slow.sh'], 'shell')]);
      await until(
        'both attempts running',
        async () => (await Promise.all(ids.map(attemptsOf))).every((a) => a[0]?.state === 'running'),
        60_000,
      );
      await proofpod.crash();
      proofpod = await startInstance(db.url, settings);
      const jobs = await Promise.all(ids.map(ended));
      expect(jobs.map((j) => j.state)).toEqual(['verified', 'verified']);
      for (const id of ids) expect((await attemptsOf(id)).map((a) => a.attemptNo)).toEqual([1]);
      const adopted = (await proofpod.metrics.takeovers.get()).values.find((v) => v.labels.action === 'adopted')?.value ?? 0;
      expect(adopted, 'the new scheduler took the running attempts over from their Jobs').toBe(2);
      const [takeovers] = await db.sql<{ n: number }[]>`
      select count(*)::int as n from events where job_id = any(${ids}) and to_state = 'queued' and from_state is not null`;
      expect(takeovers?.n, 'no job went back to the queue').toBe(0);
    });

    it('a task pod deleted mid-run: the attempt is retried once and the reason recorded', async () => {
      const id = await submit(['slow.sh'], 'shell');
      const pod = await until(
        'the task pod to run',
        async () => {
          const list = await core.listNamespacedPod({ namespace, labelSelector: `${labels.jobId}=${id}` });
          return list.items.find((p) => p.status?.phase === 'Running');
        },
        60_000,
      );
      await core.deleteNamespacedPod({ name: pod.metadata!.name!, namespace });
      const job = await ended(id);
      expect(job.state).toBe('verified');
      const attempts = await attemptsOf(id);
      expect(attempts.map((a) => a.attemptNo)).toEqual([1, 2]);
      expect(attempts[0]).toMatchObject({ state: 'failed' });
      expect(attempts[0]?.stateReason).toMatch(/pod deleted/);
    });

    it('the scheduler identity has exactly its Role: it cannot read Secrets or create pods', async () => {
      const reviews = scheduler.makeApiClient(AuthorizationV1Api);
      const can = async (verb: string, resource: string, group = '', subresource?: string) =>
        (
          await reviews.createSelfSubjectAccessReview({
            body: { spec: { resourceAttributes: { namespace, verb, resource, group, ...(subresource ? { subresource } : {}) } } },
          })
        ).status!.allowed;
      expect(await can('create', 'jobs', 'batch')).toBe(true);
      expect(await can('delete', 'jobs', 'batch')).toBe(true);
      expect(await can('watch', 'pods')).toBe(true);
      expect(await can('get', 'pods', '', 'log')).toBe(true);
      expect(await can('create', 'secrets')).toBe(true);
      expect(await can('get', 'secrets')).toBe(false);
      expect(await can('list', 'secrets')).toBe(false);
      expect(await can('create', 'pods')).toBe(false);
      expect(await can('delete', 'pods')).toBe(false);
      expect(await can('update', 'jobs', 'batch')).toBe(false);
      expect(await can('get', 'configmaps')).toBe(false);
    });

    it('reads the owner uid itself when the configuration has none, once the Role grants get on that one object', async () => {
      const config = parseConfig({
        databaseUrl: 'postgres://unused/unused',
        substrate: 'kubernetes',
        pod: { release: 'owner-check' },
        kubernetes: { namespace, owner: { apiVersion: 'v1', kind: 'ConfigMap', name: 'proofpod-owner' } },
      });
      const substrate = new KubernetesSubstrate(config, scheduler, pino({ level: 'silent' }));
      try {
        // The Role of smoke/manifests/scheduler-rbac.yaml has no such rule: readiness says what is missing.
        await expect(substrate.ping()).rejects.toThrow(
          /cannot read the owner ConfigMap .*\/proofpod-owner \(kubernetes.owner has no uid, so the scheduler needs get on that object\).*forbidden/is,
        );
        // The chart's extra rule: get on the owner ConfigMap by name, nothing else.
        await rbac.createNamespacedRole({
          namespace,
          body: {
            metadata: { name: 'owner-read' },
            rules: [{ apiGroups: [''], resources: ['configmaps'], resourceNames: ['proofpod-owner'], verbs: ['get'] }],
          },
        });
        await rbac.createNamespacedRoleBinding({
          namespace,
          body: {
            metadata: { name: 'owner-read' },
            roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'Role', name: 'owner-read' },
            subjects: [{ kind: 'ServiceAccount', name: 'proofpod-scheduler', namespace }],
          },
        });
        await until(
          'the owner to be readable',
          () =>
            substrate.ping().then(
              () => true,
              () => false,
            ),
          10_000,
        );
        await substrate.start({
          name: 'owner-check-1',
          jobId: '00000000-0000-4000-8000-000000000001',
          attemptId: '00000000-0000-4000-8000-000000000002',
          attemptNo: 1,
          lane: 'verify',
          prover: 'coq',
          laneConfig: config.lanes.find((l) => l.name === 'verify')!,
          profile: config.provers.find((p) => p.name === 'coq')!,
          source: { url: repo.url, commit, subdirectory: null },
          targets: ['Arith.v'],
          goals: [],
          deadlineAt: new Date(Date.now() + 60_000),
          uploadUrl: 'http://127.0.0.1:1/unused',
          uploadCredential: 'ppu_unused',
        });
        const job = await batch.readNamespacedJob({ name: 'owner-check-1', namespace });
        expect(job.metadata?.ownerReferences).toEqual([
          expect.objectContaining({ kind: 'ConfigMap', name: 'proofpod-owner', uid: ownerUid }),
        ]);
        await batch.deleteNamespacedJob({ name: 'owner-check-1', namespace, propagationPolicy: 'Background' });
      } finally {
        await substrate.close();
      }
    });

    it('an image with no mapping ends the job in error naming ErrImagePull, long before the deadline', async () => {
      const started = Date.now();
      const profile = proofpod.config.provers.find((p) => p.name === 'coq')!;
      (profile as { image: string }).image = 'registry.example/prover-coq:missing';
      try {
        const job = await ended(await submit(['Arith.v']));
        expect(job.state).toBe('error');
        expect(job.stateReason).toMatch(/ErrImagePull|ImagePullBackOff/);
        expect(Date.now() - started).toBeLessThan(60_000);
      } finally {
        (profile as { image: string }).image = 'proofpod/prover-coq:latest';
      }
    });

    it('a Job that succeeds but whose reporter never uploads to us ends in error (no evidence), never verified', async () => {
      // Reporters are pointed at an endpoint that answers 202 and keeps nothing: each reporter
      // believes it uploaded and exits 0, the Job succeeds, and proofpod never sees evidence.
      const blackHole = createServer((req, res) => req.resume().on('end', () => res.writeHead(202).end('{}')));
      await new Promise<void>((resolve) => blackHole.listen(0, '127.0.0.1', resolve));
      try {
        await proofpod.stop();
        proofpod = await startInstance(db.url, {
          ...settings,
          publicUrl: `http://127.0.0.1:${(blackHole.address() as { port: number }).port}`,
          reaper: { intervalSeconds: 0.5, evidenceGraceSeconds: 3 },
        });
        const id = await submit(['Arith.v']);
        await until(
          'the Job to succeed',
          async () => {
            const jobs = await batch.listNamespacedJob({ namespace, labelSelector: `${labels.jobId}=${id}` });
            return jobs.items[0]?.status?.conditions?.some((c) => c.type === 'Complete' && c.status === 'True');
          },
          60_000,
          100,
        );
        const job = await ended(id);
        expect(job.state).toBe('error');
        expect(job.stateReason).toMatch(/^no evidence: the attempt finished at .* nothing was uploaded within 3s$/);
        expect(job.attempts[0].observedExitCode).toBe(0);
        expect((await call(proofpod.url, 'GET', `/v1/jobs/${job.id}/evidence`, { token })).body.evidence).toEqual([]);
      } finally {
        await new Promise((resolve) => blackHole.close(resolve));
      }
    });

    describe("the orphan sweep's list", () => {
      /** A suspended Job with our labels and the given release: the Job controller makes no pod of it. */
      const ourJob = (name: string, release: string) =>
        batch.createNamespacedJob({
          namespace,
          body: {
            metadata: { name, labels: { [labels.managedBy]: 'proofpod', [labels.release]: release } },
            spec: {
              suspend: true,
              template: { spec: { restartPolicy: 'Never', containers: [{ name: 'c', image: 'unused', command: ['true'] }] } },
            },
          },
        });
      const substrateFor = (kc: KubeConfig, release: string) =>
        new KubernetesSubstrate(
          parseConfig({ databaseUrl: 'postgres://unused/unused', substrate: 'kubernetes', pod: { release }, kubernetes: { namespace } }),
          kc,
          pino({ level: 'silent' }),
        );
      /** The substrate's own client, observed (spyOn keeps the real method): its LIST requests of Jobs. */
      const jobLists = (substrate: KubernetesSubstrate) =>
        vi.spyOn((substrate as unknown as { batch: BatchV1Api }).batch, 'listNamespacedJob');
      const names = async (substrate: KubernetesSubstrate) => (await substrate.list()).map((a) => a.name).sort();

      it('comes from the informers while they watch: no LIST after theirs, and it follows creates and deletes', async () => {
        await ourJob('list-cache-1', 'list-cache');
        const substrate = substrateFor(scheduler, 'list-cache');
        const lists = jobLists(substrate);
        try {
          expect(await names(substrate)).toEqual(['list-cache-1']);
          await ourJob('list-cache-2', 'list-cache');
          await until('the new Job to be listed', async () => (await names(substrate)).length === 2, 10_000, 20);
          await batch.deleteNamespacedJob({ name: 'list-cache-1', namespace, propagationPolicy: 'Background' });
          await until('the deleted Job to be gone', async () => (await names(substrate)).join() === 'list-cache-2', 10_000, 20);
          // The informer's own first list, and no other.
          expect(lists).toHaveBeenCalledTimes(1);
        } finally {
          await substrate.close();
          await batch.deleteNamespacedJob({ name: 'list-cache-2', namespace, propagationPolicy: 'Background' }).catch(() => {});
        }
      });

      it('is read live while an informer cannot watch', async () => {
        // An identity that may get and list Jobs and pods, but not watch them.
        await core.createNamespacedServiceAccount({ namespace, body: { metadata: { name: 'no-watch' } } });
        await rbac.createNamespacedRole({
          namespace,
          body: {
            metadata: { name: 'no-watch' },
            rules: [
              { apiGroups: ['batch'], resources: ['jobs'], verbs: ['get', 'list'] },
              { apiGroups: [''], resources: ['pods'], verbs: ['get', 'list'] },
            ],
          },
        });
        await rbac.createNamespacedRoleBinding({
          namespace,
          body: {
            metadata: { name: 'no-watch' },
            roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'Role', name: 'no-watch' },
            subjects: [{ kind: 'ServiceAccount', name: 'no-watch', namespace }],
          },
        });
        const noWatch = await serviceAccountKubeConfig(admin!, 'no-watch', namespace, 600);
        await ourJob('list-live-1', 'list-live');
        const substrate = substrateFor(noWatch, 'list-live');
        const lists = jobLists(substrate);
        try {
          expect(await names(substrate)).toEqual(['list-live-1']);
          const before = lists.mock.calls.length;
          await ourJob('list-live-2', 'list-live');
          // Live: the new Job is there at once, through a LIST of its own.
          expect(await names(substrate)).toEqual(['list-live-1', 'list-live-2']);
          expect(lists.mock.calls.length).toBeGreaterThan(before);
        } finally {
          await substrate.close();
          for (const name of ['list-live-1', 'list-live-2'])
            await batch.deleteNamespacedJob({ name, namespace, propagationPolicy: 'Background' }).catch(() => {});
        }
      });
    });

    it('cancelling a running job deletes its Job and its credential Secret', async () => {
      const id = await submit(['slow.sh'], 'shell');
      await until('the attempt to run', async () => (await attemptsOf(id))[0]?.state === 'running', 60_000);
      const cancelled = await call(proofpod.url, 'POST', `/v1/jobs/${id}/cancel`, { token });
      expect(cancelled.body.state).toBe('cancelled');
      const selector = `${labels.jobId}=${id}`;
      expect(
        (await batch.listNamespacedJob({ namespace, labelSelector: selector })).items.every((j) => j.metadata?.deletionTimestamp),
      ).toBe(true);
      expect(
        (await core.listNamespacedSecret({ namespace, labelSelector: selector })).items.every((s) => s.metadata?.deletionTimestamp),
      ).toBe(true);
      await until(
        'its pod to be gone',
        async () => (await core.listNamespacedPod({ namespace, labelSelector: selector })).items.length === 0,
        60_000,
      );
    });
  },
);

/** The task-pod invariants (docs/security.md) on a pod as the API server holds it. */
function checkPod(pod: V1Pod) {
  const spec = pod.spec!;
  expect(spec.automountServiceAccountToken).toBe(false);
  expect(spec.serviceAccountName).toBe('proofpod-task');
  expect(spec.volumes?.some((v) => v.projected)).toBe(false);
  const containers = [...(spec.initContainers ?? []), ...spec.containers];
  const withCredential = containers.filter((c) => c.volumeMounts?.some((m) => m.name === 'upload-credential'));
  expect(withCredential.map((c) => c.name)).toEqual(['reporter']);
  expect(containers.map((c) => c.name)).toEqual(['fetch', 'build', 'check', 'reporter']);
  // Proof code runs as a uid of its own.
  expect(containers.find((c) => c.name === 'build')!.securityContext?.runAsUser).not.toBe(spec.securityContext?.runAsUser);
  for (const c of containers) {
    expect(c.securityContext).toMatchObject({ allowPrivilegeEscalation: false, runAsNonRoot: true, capabilities: { drop: ['ALL'] } });
    expect(c.env?.some((e) => e.valueFrom?.secretKeyRef)).toBe(false);
  }
}
