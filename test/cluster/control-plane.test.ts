/**
 * Tests against the real control plane that `smoke/cluster/up.sh` starts (docs/testing.md): etcd,
 * kube-apiserver and kube-controller-manager built from their Go modules. What is tested here is the
 * API server's admission and authorization and the real controllers (garbage collector, Job,
 * service-account and namespace controllers); kubelet.test.ts runs pods with the process-kubelet.
 *
 * The file never starts the cluster: without `$PROOFPOD_CLUSTER_DIR/admin.kubeconfig`, or when the
 * API server does not answer, it is skipped with the reason in its name.
 */
import { randomBytes } from 'node:crypto';
import {
  ApiException,
  AuthenticationV1Api,
  AuthorizationV1Api,
  BatchV1Api,
  CoreV1Api,
  KubeConfig,
  RbacAuthorizationV1Api,
  type V1Pod,
  type V1PodSpec,
} from '@kubernetes/client-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { clusterUnavailable, kubeconfigPath, rawGet, until as waitFor } from '../support/cluster.js';

const skipReason = await clusterUnavailable();
if (skipReason) console.warn(`control-plane tests skipped: ${skipReason}`);

/** The HTTP status of a failed API call, or undefined when it is not an API error. */
function statusOf(err: unknown): number | undefined {
  return err instanceof ApiException ? err.code : undefined;
}

/** The API's error text (the Status message), for matching admission refusals. */
function messageOf(err: unknown): string {
  if (err instanceof ApiException) {
    const body: unknown = err.body;
    if (typeof body === 'string') {
      try {
        return String((JSON.parse(body) as { message?: string }).message ?? body);
      } catch {
        return body;
      }
    }
    if (body && typeof body === 'object' && 'message' in body) return String((body as { message: unknown }).message);
    return err.message;
  }
  return String(err);
}

/** Resolves true once reading the object gives 404. */
async function gone(read: () => Promise<unknown>): Promise<boolean> {
  try {
    await read();
    return false;
  } catch (err) {
    if (statusOf(err) === 404) return true;
    throw err;
  }
}

/** A pod spec that meets the `restricted` Pod Security Standard. */
function restrictedSpec(): V1PodSpec {
  return {
    automountServiceAccountToken: false,
    securityContext: { runAsNonRoot: true, runAsUser: 65532, seccompProfile: { type: 'RuntimeDefault' } },
    containers: [
      {
        name: 'main',
        image: 'proofpod.invalid/noop:1',
        securityContext: { allowPrivilegeEscalation: false, capabilities: { drop: ['ALL'] } },
      },
    ],
  };
}

describe.skipIf(skipReason !== undefined)(`real control plane${skipReason ? ` (skipped: ${skipReason})` : ''}`, () => {
  const suffix = randomBytes(4).toString('hex');
  /** Enforces the `restricted` Pod Security Standard; everything else this file makes lives here too. */
  const ns = `pp-cp-${suffix}`;
  /** No Pod Security labels: the contrast for the admission test. */
  const openNs = `pp-cp-${suffix}-open`;
  const kc = new KubeConfig();
  let core: CoreV1Api;
  let batch: BatchV1Api;
  let rbac: RbacAuthorizationV1Api;

  beforeAll(async () => {
    kc.loadFromFile(kubeconfigPath);
    core = kc.makeApiClient(CoreV1Api);
    batch = kc.makeApiClient(BatchV1Api);
    rbac = kc.makeApiClient(RbacAuthorizationV1Api);
    await core.createNamespace({
      body: {
        metadata: {
          name: ns,
          labels: {
            'pod-security.kubernetes.io/enforce': 'restricted',
            'pod-security.kubernetes.io/enforce-version': 'latest',
          },
        },
      },
    });
    await core.createNamespace({ body: { metadata: { name: openNs } } });
    // Pods are admitted only once the ServiceAccount controller has made `default`.
    for (const namespace of [ns, openNs]) {
      await waitFor(`the default ServiceAccount in ${namespace}`, async () => {
        await core.readNamespacedServiceAccount({ name: 'default', namespace });
        return true;
      });
    }
  });

  afterAll(async () => {
    if (!core) return;
    const names = [ns, openNs];
    await Promise.all(
      names.map((name) =>
        core.deleteNamespace({ name }).catch((err: unknown) => {
          if (statusOf(err) !== 404) throw err;
        }),
      ),
    );
    // The namespace controller empties and finalizes them; wait so nothing is left behind.
    for (const name of names) {
      await waitFor(`namespace ${name} to be deleted`, () => gone(() => core.readNamespace({ name })), 60_000);
    }
  }, 90_000);

  it('answers /readyz, with etcd healthy, at a current release', async () => {
    const ready = await rawGet(kc, '/readyz');
    expect(ready).toEqual({ status: 200, body: 'ok' });
    const verbose = await rawGet(kc, '/readyz?verbose');
    expect(verbose.body).toMatch(/\[\+\]etcd ok/);
    const version = JSON.parse((await rawGet(kc, '/version')).body) as { gitVersion: string };
    expect(version.gitVersion).toMatch(/^v1\.(3[3-9]|[4-9]\d)\.\d+$/);
  });

  it('enforces the restricted Pod Security Standard in a namespace labelled for it', async () => {
    // A privileged pod is refused (here --allow-privileged=false refuses it before admission does).
    const privileged: V1Pod = {
      metadata: { name: 'privileged' },
      spec: {
        containers: [{ name: 'main', image: 'proofpod.invalid/noop:1', securityContext: { privileged: true } }],
      },
    };
    const refusedPrivileged = await core.createNamespacedPod({ namespace: ns, body: privileged }).catch((e: unknown) => e);
    expect(statusOf(refusedPrivileged), messageOf(refusedPrivileged)).toBeGreaterThanOrEqual(400);
    expect(messageOf(refusedPrivileged)).toMatch(/privileged/);

    // A pod that is valid and baseline-clean but not restricted (root allowed, privilege escalation
    // not disabled, capabilities kept, no seccomp profile) is refused by PodSecurity itself.
    const unrestricted: V1Pod = {
      metadata: { name: 'unrestricted' },
      spec: { containers: [{ name: 'main', image: 'proofpod.invalid/noop:1' }] },
    };
    const refused = await core.createNamespacedPod({ namespace: ns, body: unrestricted }).catch((e: unknown) => e);
    expect(statusOf(refused), messageOf(refused)).toBe(403);
    expect(messageOf(refused)).toMatch(/violates PodSecurity "restricted:latest"/);
    expect(messageOf(refused)).toMatch(/allowPrivilegeEscalation != false/);
    expect(messageOf(refused)).toMatch(/runAsNonRoot != true/);
    expect(messageOf(refused)).toMatch(/seccompProfile/);

    // The same pod is admitted where no level is enforced: the refusal came from the label.
    const admittedOpen = await core.createNamespacedPod({ namespace: openNs, body: unrestricted });
    expect(admittedOpen.metadata?.uid).toBeTruthy();

    // A pod that meets `restricted` is accepted.
    const ok = await core.createNamespacedPod({ namespace: ns, body: { metadata: { name: 'restricted' }, spec: restrictedSpec() } });
    expect(ok.metadata?.uid).toBeTruthy();

    await core.deleteNamespacedPod({ namespace: ns, name: 'restricted' });
    await core.deleteNamespacedPod({ namespace: openNs, name: 'unrestricted' });
  });

  it('garbage-collects dependents (a ConfigMap, a Job and its pods) when their owner is deleted', async () => {
    const owner = await core.createNamespacedConfigMap({
      namespace: ns,
      body: { metadata: { name: 'owner' }, data: { role: 'owner' } },
    });
    const ownerReferences = [{ apiVersion: 'v1', kind: 'ConfigMap', name: 'owner', uid: owner.metadata!.uid! }];
    await core.createNamespacedConfigMap({
      namespace: ns,
      body: { metadata: { name: 'dependent', ownerReferences }, data: { role: 'dependent' } },
    });
    const job = await batch.createNamespacedJob({
      namespace: ns,
      body: {
        metadata: { name: 'dependent-job', ownerReferences },
        spec: { backoffLimit: 0, template: { spec: { ...restrictedSpec(), restartPolicy: 'Never' } } },
      },
    });
    // The real Job controller makes the Job's pod, owned by the Job.
    const selector = `batch.kubernetes.io/controller-uid=${job.metadata!.uid!}`;
    const pods = await waitFor('the Job controller to create a pod', async () => {
      const list = await core.listNamespacedPod({ namespace: ns, labelSelector: selector });
      return list.items.length > 0 ? list.items : undefined;
    });
    expect(pods[0]!.metadata?.ownerReferences?.[0]).toMatchObject({ kind: 'Job', uid: job.metadata!.uid, controller: true });

    // Deleting the owner leaves the dependents to the garbage collector (background propagation).
    await core.deleteNamespacedConfigMap({ namespace: ns, name: 'owner' });
    await waitFor('the dependent ConfigMap to be collected', () =>
      gone(() => core.readNamespacedConfigMap({ namespace: ns, name: 'dependent' })),
    );
    await waitFor('the dependent Job to be collected', () => gone(() => batch.readNamespacedJob({ namespace: ns, name: 'dependent-job' })));
    await waitFor('the Job pods to be collected', async () => {
      const list = await core.listNamespacedPod({ namespace: ns, labelSelector: selector });
      return list.items.length === 0;
    });
  });

  it('authenticates a TokenRequest token as its ServiceAccount, with only what its Role grants', async () => {
    const sa = 'pod-getter';
    await core.createNamespacedServiceAccount({ namespace: ns, body: { metadata: { name: sa } } });
    await rbac.createNamespacedRole({
      namespace: ns,
      body: { metadata: { name: 'get-pods' }, rules: [{ apiGroups: [''], resources: ['pods'], verbs: ['get'] }] },
    });
    await rbac.createNamespacedRoleBinding({
      namespace: ns,
      body: {
        metadata: { name: 'get-pods' },
        roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'Role', name: 'get-pods' },
        subjects: [{ kind: 'ServiceAccount', name: sa, namespace: ns }],
      },
    });
    const tokenRequest = await core.createNamespacedServiceAccountToken({
      namespace: ns,
      name: sa,
      body: { spec: { audiences: [], expirationSeconds: 600 } },
    });
    const token = tokenRequest.status?.token;
    expect(token).toBeTruthy();

    const cluster = kc.getCurrentCluster()!;
    const saConfig = new KubeConfig();
    saConfig.loadFromOptions({
      clusters: [{ name: 'proofpod', server: cluster.server, caData: cluster.caData }],
      users: [{ name: sa, token }],
      contexts: [{ name: sa, cluster: 'proofpod', user: sa }],
      currentContext: sa,
    });

    const review = await saConfig.makeApiClient(AuthenticationV1Api).createSelfSubjectReview({ body: {} });
    expect(review.status?.userInfo?.username).toBe(`system:serviceaccount:${ns}:${sa}`);
    expect(review.status?.userInfo?.groups).toContain('system:serviceaccounts');

    const authz = saConfig.makeApiClient(AuthorizationV1Api);
    const can = async (verb: string, resource: string) => {
      const r = await authz.createSelfSubjectAccessReview({
        body: { spec: { resourceAttributes: { namespace: ns, verb, resource } } },
      });
      return r.status?.allowed === true;
    };
    // RBAC sees the new binding through the API server's informers: wait for it once.
    await waitFor('the RoleBinding to take effect', () => can('get', 'pods'), 15_000);
    expect(await can('get', 'pods')).toBe(true);
    expect(await can('list', 'pods')).toBe(false);
    expect(await can('create', 'pods')).toBe(false);
    expect(await can('get', 'secrets')).toBe(false);

    // And the real requests agree: a get is authorized (404: no such pod), a list is forbidden.
    const saCore = saConfig.makeApiClient(CoreV1Api);
    const getErr = await saCore.readNamespacedPod({ namespace: ns, name: 'no-such-pod' }).catch((e: unknown) => e);
    expect(statusOf(getErr)).toBe(404);
    const listErr = await saCore.listNamespacedPod({ namespace: ns }).catch((e: unknown) => e);
    expect(statusOf(listErr)).toBe(403);
    const secretErr = await saCore.listNamespacedSecret({ namespace: ns }).catch((e: unknown) => e);
    expect(statusOf(secretErr)).toBe(403);
  });
});
