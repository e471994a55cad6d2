import { signingKeyFromPem } from '../scheduler/attestation/signing-key.js';
/**
 * The Helm chart, rendered by the real helm (built from its Go module by smoke/tools/build.sh):
 * lint, the render matrix (defaults, RBAC on, NetworkPolicy off and widened, HPA on, local
 * substrate), the task NetworkPolicy rule by rule, the schema's refusals, the GitHub workflows by actionlint, and — when the local control plane is up — every rendered manifest accepted by
 * the real API server with a server-side dry run. Skipped, with the reason, without helm.
 */
import { execFile } from 'node:child_process';
import path from 'node:path';
import { promisify } from 'node:util';
import { CoreV1Api, KubernetesObjectApi, type KubernetesObject } from '@kubernetes/client-node';
import { afterAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../scheduler/config.js';
import { labels } from '../contract/pod.js';
import { attemptLabels } from '../scheduler/pod/pod-spec.js';
import { adminKubeConfig, clusterUnavailable } from './support/cluster.js';
import { type Manifest, findHelm, findTool, helmLint, renderChart } from './support/helm.js';

const helm = findHelm();
const skipReason = helm ? undefined : 'no helm: run smoke/tools/build.sh (as .ci/run does), or set HELM';
if (skipReason) console.warn(`chart tests skipped: ${skipReason}`);
const clusterSkip = skipReason ? 'no helm' : await clusterUnavailable();
if (clusterSkip && !skipReason) console.warn(`chart dry run skipped: ${clusterSkip}`);

const rbacKinds = ['Role', 'ClusterRole', 'RoleBinding', 'ClusterRoleBinding'];
const count = (manifests: Manifest[], kind: string) => manifests.filter((m) => m.kind === kind).length;
const one = (manifests: Manifest[], kind: string, name?: string) => {
  const found = manifests.filter((m) => m.kind === kind && (name === undefined || m.metadata.name === name));
  expect(
    found.map((m) => m.metadata.name),
    `${kind} ${name ?? ''}`,
  ).toHaveLength(1);
  return found[0]!;
};
// The render matrix the issue names, plus the local substrate.
const matrix: Record<string, string[]> = {
  defaults: [],
  'rbac on': ['rbac.create=true'],
  'networkPolicy off': ['networkPolicy.enabled=false'],
  'networkPolicy widened': [
    'networkPolicy.sourceCIDRs={0.0.0.0/0,10.20.0.0/24,::/0}',
    'networkPolicy.sourcePorts={443,8443}',
    'networkPolicy.extraEgress[0].to[0].ipBlock.cidr=169.254.20.10/32',
    'networkPolicy.extraEgress[0].ports[0].port=53',
    'networkPolicy.extraEgress[0].ports[0].protocol=UDP',
  ],
  'hpa on': ['autoscaling.enabled=true', 'podDisruptionBudget.enabled=true'],
  'hpa on queue depth': ['autoscaling.enabled=true', 'autoscaling.queueDepth.enabled=true', 'autoscaling.queueDepth.lanes={intake,verify}'],
  'evaluation postgres': ['postgresql.enabled=true'],
  'local substrate': ['substrate=local', 'replicaCount=1'],
};

interface PodTemplate {
  spec: {
    serviceAccountName?: string;
    automountServiceAccountToken?: boolean;
    securityContext?: Record<string, unknown>;
    containers: {
      name: string;
      command?: string[];
      env?: { name: string; valueFrom?: unknown }[];
      securityContext?: Record<string, unknown>;
      livenessProbe?: { httpGet?: { path: string } };
      readinessProbe?: { httpGet?: { path: string } };
    }[];
  };
}
const podTemplate = (deployment: Manifest) => (deployment.spec as { template: PodTemplate }).template;

interface Peer {
  podSelector?: { matchLabels?: Record<string, string> };
  namespaceSelector?: { matchLabels?: Record<string, string> };
  ipBlock?: { cidr: string; except?: string[] };
}
interface EgressRule {
  to?: Peer[];
  ports?: { port: number | string; protocol: string }[];
}
type NetworkPolicy = Manifest & {
  spec: { podSelector: { matchLabels: Record<string, string> }; policyTypes: string[]; ingress?: unknown[]; egress: EgressRule[] };
};
const taskPolicy = (manifests: Manifest[]) => one(manifests, 'NetworkPolicy', 'pp-proofpod-task') as NetworkPolicy;
const sourceRule = (policy: NetworkPolicy) => policy.spec.egress.find((rule) => rule.to?.some((peer) => peer.ipBlock))!;
// The ranges proof code must not reach through the source rule: private, shared, link-local, unique-local.
const internalV4 = ['10.0.0.0/8', '100.64.0.0/10', '172.16.0.0/12', '192.168.0.0/16', '169.254.0.0/16'];
const internalV6 = ['fc00::/7', 'fe80::/10'];

describe.skipIf(skipReason !== undefined)(`Helm chart${skipReason ? ` (skipped: ${skipReason})` : ''}`, () => {
  it.each(Object.entries(matrix))('lints clean with %s', async (_name, sets) => {
    const lint = await helmLint(helm!, sets);
    expect(lint.output).toContain('0 chart(s) failed');
    expect(lint.ok, lint.output).toBe(true);
  });

  it('renders zero RBAC objects and no scheduler ServiceAccount by default', async () => {
    const manifests = await renderChart(helm!, []);
    for (const kind of rbacKinds) expect(count(manifests, kind), kind).toBe(0);
    // The only ServiceAccount is the task one, which never mounts a token.
    const accounts = manifests.filter((m) => m.kind === 'ServiceAccount');
    expect(accounts.map((a) => a.metadata.name)).toEqual(['pp-proofpod-task']);
    expect(accounts[0]!.automountServiceAccountToken).toBe(false);
    const deployment = one(manifests, 'Deployment', 'pp-proofpod');
    expect(podTemplate(deployment).spec.serviceAccountName).toBe('default');
  });

  it('renders exactly one Role, one RoleBinding and the scheduler ServiceAccount with rbac.create=true', async () => {
    const manifests = await renderChart(helm!, ['rbac.create=true']);
    expect(count(manifests, 'Role')).toBe(1);
    expect(count(manifests, 'RoleBinding')).toBe(1);
    expect(count(manifests, 'ClusterRole')).toBe(0);
    expect(count(manifests, 'ClusterRoleBinding')).toBe(0);
    expect(
      manifests
        .filter((m) => m.kind === 'ServiceAccount')
        .map((m) => m.metadata.name)
        .sort(),
    ).toEqual(['pp-proofpod', 'pp-proofpod-task']);
    const role = one(manifests, 'Role') as Manifest & {
      rules: { apiGroups: string[]; resources: string[]; verbs: string[]; resourceNames?: string[] }[];
    };
    // The Kubernetes substrate's verbs (docs/security.md), and a read of the one owner object the Jobs point at.
    expect(role.rules).toEqual([
      { apiGroups: ['batch'], resources: ['jobs'], verbs: ['create', 'get', 'list', 'watch', 'delete'] },
      { apiGroups: [''], resources: ['pods'], verbs: ['get', 'list', 'watch'] },
      { apiGroups: [''], resources: ['pods/log'], verbs: ['get'] },
      { apiGroups: [''], resources: ['secrets'], verbs: ['create', 'delete'] },
      { apiGroups: [''], resources: ['configmaps'], resourceNames: ['pp-proofpod-owner'], verbs: ['get'] },
    ]);
    const binding = one(manifests, 'RoleBinding') as Manifest & { subjects: unknown[]; roleRef: { kind: string; name: string } };
    expect(binding.roleRef).toMatchObject({ kind: 'Role', name: 'pp-proofpod' });
    expect(binding.subjects).toEqual([{ kind: 'ServiceAccount', name: 'pp-proofpod', namespace: 'proofpod' }]);
    expect(podTemplate(one(manifests, 'Deployment', 'pp-proofpod')).spec.serviceAccountName).toBe('pp-proofpod');
  });

  it('writes a scheduler configuration the scheduler itself accepts, with the owner and task account it renders', async () => {
    const manifests = await renderChart(helm!, [
      'task.ttlSecondsAfterFinished=120',
      'scheduler.extraConfig.dispatch.batchSize=20',
      'lanes[0].name=intake',
      'lanes[0].trust=untrusted',
      'lanes[0].concurrency=2',
      'lanes[0].nodeSelector.pool=cheap',
      'lanes[1].name=verify',
      'lanes[1].trust=trusted',
      'lanes[1].concurrency=8',
      'promotion[0].name=bots',
      'promotion[0].from=intake',
      'promotion[0].to=verify',
      'quotas.maxQueued=500',
    ]);
    const map = one(manifests, 'ConfigMap', 'pp-proofpod') as Manifest & { data: Record<string, string> };
    const file = JSON.parse(map.data['config.json']!) as Record<string, unknown>;
    const config = loadConfig({}, { ...file, databaseUrl: 'postgres://from-the-secret/db' });
    expect(config.substrate).toBe('kubernetes');
    expect(config.kubernetes.namespace).toBe('proofpod');
    expect(config.kubernetes.owner).toEqual({ apiVersion: 'v1', kind: 'ConfigMap', name: 'pp-proofpod-owner' });
    expect(config.kubernetes.ttlSecondsAfterFinished).toBe(120);
    expect(config.dispatch.batchSize).toBe(20);
    expect(config.lanes.map((l) => [l.name, l.trust, l.nodeSelector])).toEqual([
      ['intake', 'untrusted', { pool: 'cheap' }],
      ['verify', 'trusted', undefined],
    ]);
    expect(config.promotion).toEqual([{ name: 'bots', from: 'intake', to: 'verify' }]);
    expect(config.quotas.maxQueued).toBe(500);
    expect(config.pod).toMatchObject({
      release: 'pp-proofpod',
      taskServiceAccount: 'pp-proofpod-task',
      taskImage: 'proofpod/task:0.1.0',
      imagePullPolicy: 'IfNotPresent',
    });
    expect(config.publicUrl).toBe('http://pp-proofpod.proofpod.svc:8080');
    expect(config.adminTokenFile).toBe('/etc/proofpod/admin/token');
    expect(config.attestation).toEqual({ signingKeyFile: '/etc/proofpod/signing/key.pem' });
    expect(one(manifests, 'ConfigMap', 'pp-proofpod-owner').metadata.name).toBe('pp-proofpod-owner');
    one(manifests, 'ServiceAccount', 'pp-proofpod-task');
  });

  it('runs the scheduler restricted, probed on /livez and /readyz, with no secret but the database URL in its environment', async () => {
    const manifests = await renderChart(helm!, []);
    const pod = podTemplate(one(manifests, 'Deployment', 'pp-proofpod'));
    expect(pod.spec.automountServiceAccountToken).toBe(true);
    expect(pod.spec.securityContext).toMatchObject({ runAsNonRoot: true, seccompProfile: { type: 'RuntimeDefault' } });
    const [scheduler] = pod.spec.containers;
    expect(scheduler!.command).toEqual(['node', '/opt/proofpod/dist/scheduler/main.js']);
    expect(scheduler!.securityContext).toEqual({
      allowPrivilegeEscalation: false,
      readOnlyRootFilesystem: true,
      capabilities: { drop: ['ALL'] },
    });
    expect(scheduler!.livenessProbe?.httpGet?.path).toBe('/livez');
    expect(scheduler!.readinessProbe?.httpGet?.path).toBe('/readyz');
    expect(scheduler!.env?.filter((e) => e.valueFrom).map((e) => e.name)).toEqual(['DATABASE_URL']);
    // The admin token Secret is generated; the database Secret is the operator's.
    const token = one(manifests, 'Secret', 'pp-proofpod-admin-token') as Manifest & { data: { token: string } };
    expect(Buffer.from(token.data.token, 'base64').toString()).toMatch(/^pp_[A-Za-z0-9]{48}$/);
    // So is the signing key: a P-256 key the scheduler reads from a volume only its group can read.
    const signing = one(manifests, 'Secret', 'pp-proofpod-signing-key') as Manifest & { data: Record<string, string> };
    const key = signingKeyFromPem(Buffer.from(signing.data['signing-key.pem']!, 'base64').toString(), 'the chart');
    expect(key.algorithm).toBe('ecdsa-p256-sha256');
    const deployment = one(manifests, 'Deployment', 'pp-proofpod') as Manifest & {
      spec: {
        template: { spec: { securityContext: { fsGroup?: number }; volumes: { name: string; secret?: { defaultMode?: number } }[] } };
      };
    };
    expect(deployment.spec.template.spec.securityContext.fsGroup).toBe(1000);
    expect(deployment.spec.template.spec.volumes.find((v) => v.name === 'signing-key')?.secret?.defaultMode).toBe(0o440);
    expect(count(manifests, 'HorizontalPodAutoscaler') + count(manifests, 'PodDisruptionBudget')).toBe(0);
  });

  it('renders by default exactly one NetworkPolicy, on the attempt pods: no ingress, egress to DNS, the scheduler pods and https sources less the internal ranges', async () => {
    const manifests = await renderChart(helm!, []);
    expect(count(manifests, 'NetworkPolicy')).toBe(1);
    const policy = taskPolicy(manifests);
    // It selects what the scheduler labels an attempt pod with, and not the scheduler's own pods.
    expect(policy.spec.podSelector.matchLabels).toEqual({ [labels.managedBy]: 'proofpod', [labels.release]: 'pp-proofpod' });
    const attempt = attemptLabels({ jobId: 'job-1', attemptNo: 1 }, { name: 'coq' }, { name: 'intake' }, { release: 'pp-proofpod' });
    expect(attempt).toMatchObject(policy.spec.podSelector.matchLabels);
    const deployment = one(manifests, 'Deployment', 'pp-proofpod');
    const schedulerLabels = (deployment.spec as { template: { metadata: { labels: Record<string, string> } } }).template.metadata.labels;
    expect(schedulerLabels).not.toMatchObject(policy.spec.podSelector.matchLabels);

    expect(policy.spec.policyTypes).toEqual(['Ingress', 'Egress']);
    expect(policy.spec.ingress ?? []).toEqual([]);
    const [dns, upload, sources, ...rest] = policy.spec.egress;
    expect(rest).toEqual([]);
    expect(dns).toEqual({
      to: [
        {
          namespaceSelector: { matchLabels: { 'kubernetes.io/metadata.name': 'kube-system' } },
          podSelector: { matchLabels: { 'k8s-app': 'kube-dns' } },
        },
      ],
      ports: [
        { port: 53, protocol: 'UDP' },
        { port: 53, protocol: 'TCP' },
      ],
    });
    // The upload: the scheduler pods of this release (the Deployment's own selector, no namespace
    // selector, so this namespace only), on the container port the Service forwards to.
    const selector = (deployment.spec as { selector: { matchLabels: Record<string, string> } }).selector.matchLabels;
    expect(upload).toEqual({ to: [{ podSelector: { matchLabels: selector } }], ports: [{ port: 8080, protocol: 'TCP' }] });
    expect(schedulerLabels).toMatchObject(selector);
    // The fetch speaks https only: port 443, nowhere internal.
    expect(sources).toEqual({ to: [{ ipBlock: { cidr: '0.0.0.0/0', except: internalV4 } }], ports: [{ port: 443, protocol: 'TCP' }] });
  });

  it('renders no NetworkPolicy with networkPolicy.enabled=false', async () => {
    expect(count(await renderChart(helm!, ['networkPolicy.enabled=false']), 'NetworkPolicy')).toBe(0);
  });

  it('renders no task NetworkPolicy for the local substrate, which has no task pods', async () => {
    expect(count(await renderChart(helm!, ['substrate=local', 'replicaCount=1', 'networkPolicy.enabled=true']), 'NetworkPolicy')).toBe(0);
  });

  it('cuts each except out of the source CIDRs that strictly contain it, and lets a listed internal git server through whole', async () => {
    const policy = taskPolicy(
      await renderChart(helm!, [
        'networkPolicy.sourceCIDRs={0.0.0.0/0,10.20.0.0/24,::/0,fd00:1::/64,172.16.0.0/12}',
        'networkPolicy.sourcePorts={443,8443}',
      ]),
    );
    expect(sourceRule(policy)).toEqual({
      to: [
        { ipBlock: { cidr: '0.0.0.0/0', except: internalV4 } },
        { ipBlock: { cidr: '10.20.0.0/24' } },
        { ipBlock: { cidr: '::/0', except: internalV6 } },
        { ipBlock: { cidr: 'fd00:1::/64' } },
        { ipBlock: { cidr: '172.16.0.0/12' } },
      ],
      ports: [
        { port: 443, protocol: 'TCP' },
        { port: 8443, protocol: 'TCP' },
      ],
    });
    // An except inside a narrower source CIDR is kept there: the API server refuses any other.
    const narrow = taskPolicy(
      await renderChart(helm!, [
        'networkPolicy.sourceCIDRs={10.0.0.0/8}',
        'networkPolicy.sourceExceptCIDRs={10.96.0.0/12,10.0.0.0/8,192.168.0.0/16}',
      ]),
    );
    expect(sourceRule(narrow).to).toEqual([{ ipBlock: { cidr: '10.0.0.0/8', except: ['10.96.0.0/12'] } }]);
  });

  it('leaves the source rule out rather than render one with no peers or no ports, and adds extraEgress as it is', async () => {
    for (const sets of [['networkPolicy.sourceCIDRs=null'], ['networkPolicy.sourcePorts=null']]) {
      const policy = taskPolicy(await renderChart(helm!, sets));
      expect(policy.spec.egress, sets[0]).toHaveLength(2);
      expect(
        policy.spec.egress.some((rule) => rule.to?.some((peer) => peer.ipBlock)),
        sets[0],
      ).toBe(false);
    }
    const widened = taskPolicy(await renderChart(helm!, matrix['networkPolicy widened']!));
    expect(widened.spec.egress.at(-1)).toEqual({ to: [{ ipBlock: { cidr: '169.254.20.10/32' } }], ports: [{ port: 53, protocol: 'UDP' }] });
    // Whatever the values, no rule allows every destination or every port (an empty `to` or `ports` would).
    for (const rule of widened.spec.egress) {
      expect(rule.to?.length).toBeGreaterThan(0);
      expect(rule.ports?.length).toBeGreaterThan(0);
    }
  });

  it('lets the HPA own the replica count', async () => {
    const manifests = await renderChart(helm!, ['autoscaling.enabled=true', 'podDisruptionBudget.enabled=true']);
    expect(one(manifests, 'HorizontalPodAutoscaler').spec).toMatchObject({ minReplicas: 2, maxReplicas: 6 });
    expect(one(manifests, 'Deployment').spec).not.toHaveProperty('replicas');
    one(manifests, 'PodDisruptionBudget');
  });

  it('adds an External metric of the queued jobs of the chosen lanes to the HPA, off by default', async () => {
    const metrics = async (sets: string[]) => one(await renderChart(helm!, sets), 'HorizontalPodAutoscaler').spec as { metrics: unknown[] };
    const cpu = { type: 'Resource', resource: { name: 'cpu', target: { type: 'Utilization', averageUtilization: 70 } } };
    expect((await metrics(['autoscaling.enabled=true'])).metrics).toEqual([cpu]);

    const hpa = await metrics([
      ...matrix['hpa on queue depth']!,
      'autoscaling.queueDepth.targetPerReplica=25',
      'autoscaling.maxReplicas=10',
    ]);
    expect(hpa).toMatchObject({
      minReplicas: 2,
      maxReplicas: 10,
      scaleTargetRef: { apiVersion: 'apps/v1', kind: 'Deployment', name: 'pp-proofpod' },
    });
    expect(hpa.metrics).toEqual([
      cpu,
      {
        type: 'External',
        external: {
          // The gauge the scheduler exports, as the adapter serves it: one series per lane.
          metric: {
            name: 'proofpod_lane_queued',
            selector: { matchExpressions: [{ key: 'lane', operator: 'In', values: ['intake', 'verify'] }] },
          },
          target: { type: 'AverageValue', averageValue: '25' },
        },
      },
    ]);
    // No lanes: every lane counts. No CPU target: queue depth alone.
    expect(
      (
        await metrics([
          'autoscaling.enabled=true',
          'autoscaling.queueDepth.enabled=true',
          'autoscaling.queueDepth.metricName=proofpod_queued_jobs',
          'autoscaling.targetCPUUtilizationPercentage=null',
        ])
      ).metrics,
    ).toEqual([
      { type: 'External', external: { metric: { name: 'proofpod_queued_jobs' }, target: { type: 'AverageValue', averageValue: '100' } } },
    ]);
    expect(count(await renderChart(helm!, ['autoscaling.queueDepth.lanes={verify}']), 'HorizontalPodAutoscaler')).toBe(0);
  });

  it('runs the local substrate in one privileged pod with no Jobs machinery and no API token', async () => {
    const manifests = await renderChart(helm!, ['substrate=local', 'replicaCount=1']);
    for (const kind of [...rbacKinds, 'ServiceAccount', 'NetworkPolicy']) expect(count(manifests, kind), kind).toBe(0);
    expect(manifests.some((m) => m.metadata.name.endsWith('-owner'))).toBe(false);
    const pod = podTemplate(one(manifests, 'Deployment'));
    expect(pod.spec.automountServiceAccountToken).toBe(false);
    expect(pod.spec.containers[0]!.securityContext).toEqual({ privileged: true });
    await expect(renderChart(helm!, ['substrate=local', 'replicaCount=2'])).rejects.toThrow(
      /substrate=local runs attempts inside the scheduler's pod: set replicaCount=1/,
    );
  });

  it.each([
    [['replicaCount=two'], /replicaCount.*(integer|got string)/s],
    [['rbac.create=yes'], /rbac.create.*(boolean|got string)/s],
    [['substrate=nomad'], /substrate.*(must be one of|value must be one of)/s],
    [['service.port=70000'], /service.port.*(maximum|less than or equal)/s],
    [['replicasCount=2'], /additional properties 'replicasCount' not allowed|replicasCount/],
    [['networkPolicy.sourceCIDRs={github.com}'], /networkPolicy.sourceCIDRs.0.*'github.com' does not match pattern/s],
    [['networkPolicy.sourceExceptCIDRs={10.0.0.0/33}'], /networkPolicy.sourceExceptCIDRs.0.*does not match pattern/s],
    [['networkPolicy.sourceCIDRs={fd00:::/8}'], /networkPolicy.sourceCIDRs.0.*does not match pattern/s],
    [['networkPolicy.sourcePorts={0}'], /networkPolicy.sourcePorts.0.*(minimum|greater than or equal)/s],
    [['networkPolicy.dns.to=null'], /networkPolicy.dns.*missing propert(y|ies) 'to'/s],
    [['networkPolicy.extraEgress[0].ports[0].port=80'], /networkPolicy.extraEgress.0.*missing propert(y|ies) 'to'/s],
    [['networkPolicy.sourceExceptCIDR={10.0.0.0/8}'], /additional properties 'sourceExceptCIDR' not allowed/],
    [
      ['autoscaling.queueDepth.enabled=true'],
      /autoscaling.queueDepth.enabled=true adds a metric to the HPA: set autoscaling.enabled=true too/,
    ],
    [
      ['autoscaling.enabled=true', 'autoscaling.targetCPUUtilizationPercentage=null'],
      /autoscaling.enabled=true needs a metric: set autoscaling.targetCPUUtilizationPercentage or autoscaling.queueDepth.enabled=true/,
    ],
    [['autoscaling.queueDepth.targetPerReplica=0'], /autoscaling.queueDepth.targetPerReplica.*(minimum|greater than or equal)/s],
    [['autoscaling.queueDepth.lanes={Verify}'], /autoscaling.queueDepth.lanes.0.*does not match pattern/s],
    [['autoscaling.queueDepth.lane=verify'], /additional properties 'lane' not allowed/],
  ])('refuses %j with the schema message naming the value', async (sets, message) => {
    await expect(renderChart(helm!, sets)).rejects.toThrow(message);
  });

  describe('on the real API server (server-side dry run)', () => {
    const namespace = `pp-chart-${Math.random().toString(16).slice(2, 8)}`;
    const admin = clusterSkip ? undefined : adminKubeConfig();
    afterAll(async () => {
      await admin
        ?.makeApiClient(CoreV1Api)
        .deleteNamespace({ name: namespace })
        .catch(() => undefined);
    });

    it.skipIf(clusterSkip !== undefined).each(Object.entries(matrix))(
      `accepts every manifest rendered with %s${clusterSkip ? ` (skipped: ${clusterSkip})` : ''}`,
      async (_name, sets) => {
        const core = admin!.makeApiClient(CoreV1Api);
        await core.createNamespace({ body: { metadata: { name: namespace } } }).catch(() => undefined);
        const objects = KubernetesObjectApi.makeApiClient(admin!);
        const manifests = await renderChart(helm!, sets, namespace);
        expect(manifests.length).toBeGreaterThanOrEqual(4);
        const refused: string[] = [];
        for (const manifest of manifests) {
          const body = { ...manifest, metadata: { ...manifest.metadata, namespace } } as KubernetesObject;
          await objects.create(body, undefined, 'All').catch((error: { body?: unknown; message?: string }) => {
            refused.push(
              `${manifest.kind}/${manifest.metadata.name}: ${typeof error.body === 'string' ? error.body : JSON.stringify(error.body ?? error.message)}`,
            );
          });
        }
        expect(refused).toEqual([]);
        // The check can fail: the API server's validation runs in a dry run too.
        const deployment = manifests.find((m) => m.kind === 'Deployment')!;
        await expect(
          objects.create(
            {
              ...deployment,
              metadata: { ...deployment.metadata, namespace },
              spec: { ...(deployment.spec as object), replicas: -1 },
            } as KubernetesObject,
            undefined,
            'All',
          ),
        ).rejects.toThrow(/replicas/);
        // A dry run writes nothing.
        expect((await core.listNamespacedConfigMap({ namespace, labelSelector: 'app.kubernetes.io/instance=pp' })).items).toEqual([]);
      },
    );
  });
});

const actionlint = findTool('actionlint');
describe.skipIf(!actionlint)(`GitHub workflows${actionlint ? '' : ' (skipped: no actionlint: run smoke/tools/build.sh)'}`, () => {
  it('are actionlint clean (with shellcheck on their scripts where it is installed)', async () => {
    const result = await promisify(execFile)(actionlint!, ['-color=false'], { cwd: path.resolve(import.meta.dirname, '..') }).catch(
      (error: { stdout?: string; stderr?: string }) => ({ stdout: error.stdout ?? '', stderr: error.stderr ?? 'actionlint failed' }),
    );
    expect(`${result.stdout}${result.stderr}`).toBe('');
  });
});
