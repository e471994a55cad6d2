/**
 * The process-kubelet against the real control plane: Jobs run through the real Job controller,
 * garbage collector and TTL controller, with pods run by the process-kubelet in the local
 * substrate's sandboxes. Skipped, with the reason, when the control plane is not up.
 */
import { randomBytes } from 'node:crypto';
import {
  BatchV1Api,
  CoreV1Api,
  RbacAuthorizationV1Api,
  type V1Container,
  type V1Job,
  type V1Pod,
  type V1PodSpec,
} from '@kubernetes/client-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { adminKubeConfig, clusterUnavailable, until } from '../support/cluster.js';

const skipReason = await clusterUnavailable();
if (skipReason) console.warn(`process-kubelet tests skipped: ${skipReason}`);

const IMAGE = 'proofpod/test:latest';
const restricted: Pick<V1Container, 'securityContext'> = {
  securityContext: {
    allowPrivilegeEscalation: false,
    capabilities: { drop: ['ALL'] },
    runAsNonRoot: true,
    runAsUser: 65532,
    seccompProfile: { type: 'RuntimeDefault' },
  },
};

describe.skipIf(skipReason !== undefined)(
  `process-kubelet on the local control plane${skipReason ? ` (skipped: ${skipReason})` : ''}`,
  () => {
    const kc = skipReason ? undefined : adminKubeConfig();
    const core = kc?.makeApiClient(CoreV1Api) as CoreV1Api;
    const batch = kc?.makeApiClient(BatchV1Api) as BatchV1Api;
    const rbac = kc?.makeApiClient(RbacAuthorizationV1Api) as RbacAuthorizationV1Api;
    const namespace = `kubelet-${randomBytes(4).toString('hex')}`;

    beforeAll(async () => {
      await core.createNamespace({ body: { metadata: { name: namespace } } });
      await until('the default service account', () => core.readNamespacedServiceAccount({ name: 'default', namespace }).then(() => true));
    });
    afterAll(async () => {
      await core.deleteNamespace({ name: namespace }).catch(() => {});
    });

    const jobOf = (name: string, script: string, extra: Partial<V1Job['spec']> = {}, podExtra: Partial<V1PodSpec> = {}): V1Job => ({
      metadata: { name },
      spec: {
        backoffLimit: 0,
        ...extra,
        template: {
          spec: {
            restartPolicy: 'Never',
            automountServiceAccountToken: false,
            containers: [{ name: 'main', image: IMAGE, command: ['sh', '-c', script], ...restricted }],
            ...podExtra,
          },
        },
      },
    });
    const condition = (job: V1Job, type: string) => job.status?.conditions?.find((c) => c.type === type && c.status === 'True');
    const podsOf = async (job: string) => (await core.listNamespacedPod({ namespace, labelSelector: `job-name=${job}` })).items;

    it('the node is registered and Ready', async () => {
      const nodes = await core.listNode();
      const ready = nodes.items.filter((n) => n.status?.conditions?.some((c) => c.type === 'Ready' && c.status === 'True'));
      expect(ready.length).toBeGreaterThan(0);
    });

    it('a Job runs to Complete through the real Job controller, with true container statuses', async () => {
      await batch.createNamespacedJob({ namespace, body: jobOf('ok', 'echo hello from a sandbox') });
      const job = await until(
        'Complete',
        async () => {
          const j = await batch.readNamespacedJob({ name: 'ok', namespace });
          return condition(j, 'Complete') && j;
        },
        60_000,
      );
      expect(job.status?.succeeded).toBe(1);
      const [pod] = await podsOf('ok');
      expect(pod?.status?.phase).toBe('Succeeded');
      expect(pod?.status?.containerStatuses?.[0]?.state?.terminated).toMatchObject({ exitCode: 0, reason: 'Completed' });
      expect(pod?.status?.containerStatuses?.[0]?.imageID).toMatch(/^proofpod\/test:latest@sha256:[0-9a-f]{64}$/);
    });

    it('a Job whose container exits non-zero ends Failed', async () => {
      await batch.createNamespacedJob({ namespace, body: jobOf('fails', 'echo failing >&2; exit 3') });
      await until('Failed', async () => condition(await batch.readNamespacedJob({ name: 'fails', namespace }), 'Failed'), 60_000);
      const [pod] = await podsOf('fails');
      expect(pod?.status?.phase).toBe('Failed');
      expect(pod?.status?.containerStatuses?.[0]?.state?.terminated).toMatchObject({ exitCode: 3, reason: 'Error' });
    });

    it('deleting the owner garbage-collects the Job and its pods', async () => {
      const owner = await core.createNamespacedConfigMap({ namespace, body: { metadata: { name: 'owner' } } });
      const body = jobOf('owned', 'sleep 300');
      body.metadata!.ownerReferences = [{ apiVersion: 'v1', kind: 'ConfigMap', name: 'owner', uid: owner.metadata!.uid! }];
      await batch.createNamespacedJob({ namespace, body });
      await until('the pod to run', async () => (await podsOf('owned')).some((p) => p.status?.phase === 'Running'), 60_000);
      await core.deleteNamespacedConfigMap({ name: 'owner', namespace, propagationPolicy: 'Background' });
      await until(
        'the Job to be collected',
        async () =>
          batch.readNamespacedJob({ name: 'owned', namespace }).then(
            () => false,
            (e: { code?: number }) => e.code === 404,
          ),
        60_000,
      );
      await until('its pods to be gone', async () => (await podsOf('owned')).length === 0, 60_000);
    });

    it('ttlSecondsAfterFinished removes a finished Job', async () => {
      await batch.createNamespacedJob({ namespace, body: jobOf('ttl', 'true', { ttlSecondsAfterFinished: 1 }) });
      await until(
        'the Job to be removed',
        async () =>
          batch.readNamespacedJob({ name: 'ttl', namespace }).then(
            () => false,
            (e: { code?: number }) => e.code === 404,
          ),
        60_000,
      );
    });

    it('activeDeadlineSeconds fails a Job that runs too long, and its sandbox is killed', async () => {
      await batch.createNamespacedJob({ namespace, body: jobOf('slow', 'sleep 300', { activeDeadlineSeconds: 3 }) });
      const failed = await until(
        'DeadlineExceeded',
        async () => {
          const j = await batch.readNamespacedJob({ name: 'slow', namespace });
          const c = condition(j, 'Failed');
          return c && c;
        },
        60_000,
      );
      expect(failed.reason).toBe('DeadlineExceeded');
      await until('its pods to be gone', async () => (await podsOf('slow')).every((p) => p.status?.phase !== 'Running'), 30_000);
    });

    it('an image with no mapping shows ErrImagePull, then ImagePullBackOff', async () => {
      const pod: V1Pod = {
        metadata: { name: 'unmapped' },
        spec: {
          restartPolicy: 'Never',
          automountServiceAccountToken: false,
          containers: [{ name: 'main', image: 'registry.example/nothing:1', command: ['true'], ...restricted }],
        },
      };
      await core.createNamespacedPod({ namespace, body: pod });
      const reasons = new Set<string>();
      await until(
        'ImagePullBackOff',
        async () => {
          const p = await core.readNamespacedPod({ name: 'unmapped', namespace });
          const reason = p.status?.containerStatuses?.[0]?.state?.waiting?.reason;
          if (reason) reasons.add(reason);
          return reason === 'ImagePullBackOff';
        },
        30_000,
        100,
      );
      expect([...reasons]).toContain('ErrImagePull');
      expect((await core.readNamespacedPod({ name: 'unmapped', namespace })).status?.phase).toBe('Pending');
    });

    it('a pod that asks for its service-account token authenticates as its ServiceAccount in the sandbox', async () => {
      await core.createNamespacedServiceAccount({ namespace, body: { metadata: { name: 'reader' } } });
      await rbac.createNamespacedRole({
        namespace,
        body: { metadata: { name: 'pod-reader' }, rules: [{ apiGroups: [''], resources: ['pods'], verbs: ['get', 'list'] }] },
      });
      await rbac.createNamespacedRoleBinding({
        namespace,
        body: {
          metadata: { name: 'reader' },
          roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'Role', name: 'pod-reader' },
          subjects: [{ kind: 'ServiceAccount', name: 'reader', namespace }],
        },
      });
      // Lists pods (allowed) and secrets (not allowed) with the mounted token; exits 0 only for 200 then 403.
      const script = `
      const fs = require('fs'); const https = require('https');
      const dir = '/var/run/secrets/kubernetes.io/serviceaccount';
      const token = fs.readFileSync(dir + '/token', 'utf8'); const ca = fs.readFileSync(dir + '/ca.crt'); const ns = fs.readFileSync(dir + '/namespace', 'utf8');
      const get = (p) => new Promise((ok, no) => https.get({ host: process.env.KUBERNETES_SERVICE_HOST, port: process.env.KUBERNETES_SERVICE_PORT, path: p, ca, headers: { authorization: 'Bearer ' + token } }, (r) => { r.resume(); ok(r.statusCode); }).on('error', no));
      (async () => { const pods = await get('/api/v1/namespaces/' + ns + '/pods'); const secrets = await get('/api/v1/namespaces/' + ns + '/secrets'); console.log('pods', pods, 'secrets', secrets); process.exit(pods === 200 && secrets === 403 ? 0 : 1); })();`;
      await batch.createNamespacedJob({
        namespace,
        body: {
          metadata: { name: 'in-cluster' },
          spec: {
            backoffLimit: 0,
            template: {
              spec: {
                restartPolicy: 'Never',
                serviceAccountName: 'reader',
                containers: [{ name: 'main', image: IMAGE, command: ['node', '-e', script], ...restricted }],
              },
            },
          },
        },
      });
      const job = await until(
        'the in-cluster job to end',
        async () => {
          const j = await batch.readNamespacedJob({ name: 'in-cluster', namespace });
          return (condition(j, 'Complete') || condition(j, 'Failed')) && j;
        },
        60_000,
      );
      expect(condition(job, 'Complete'), 'the pod read pods (200) and was refused secrets (403) with its token').toBeTruthy();
    });
  },
);
