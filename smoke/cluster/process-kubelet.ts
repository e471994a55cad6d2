/**
 * A process-kubelet for the local control plane (docs/testing.md, "The local control plane"): registers a Ready Node, binds Pending
 * pods to it (there is no kube-scheduler), runs them with the local substrate's sandboxes, and keeps
 * their status true — phase, conditions, init and container statuses with exit codes and reasons,
 * imageID from the image mapping, ErrImagePull/ImagePullBackOff for an unmapped image. It honours
 * deletion (kills the sandboxes, then removes the pod) and mounts projected service-account tokens
 * obtained from the TokenRequest API, so an in-cluster process authenticates as its ServiceAccount.
 *
 * What it is not: no container isolation beyond bubblewrap, no CNI (pods share the host's loopback),
 * no image pulls, no resource limits, no restarts (restartPolicy is taken as Never).
 *
 * Usage: node dist/smoke/cluster/process-kubelet.js --kubeconfig FILE --state DIR [--node NAME] [--config FILE]
 */
import { readFileSync } from 'node:fs';
import { mkdir } from 'node:fs/promises';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { pathToFileURL } from 'node:url';
import { CoreV1Api, KubeConfig, type V1EnvVar, type V1Pod, type V1PodStatus, type V1Volume, makeInformer } from '@kubernetes/client-node';
import pino, { type Logger } from 'pino';
import { loadConfig } from '../../scheduler/config.js';
import { coerceError } from '../../scheduler/errors.js';
import { codeOf } from '../../scheduler/substrate/kubernetes/kubernetes-substrate.js';
import { LocalSubstrate, type VolumeFiles } from '../../scheduler/substrate/local/local-substrate.js';
import { projectRoot } from '../../scheduler/substrate/create.js';
import { toPodStatus } from './pod-status.js';

interface Tracked {
  pod: V1Pod;
  /** The local substrate's name for it: the pod's uid. */
  localName: string;
  startedAt: number;
  lastStatus?: string;
  deleting?: boolean;
  /** The start in progress: a deletion waits for it, so the two never race on the pod's files. */
  starting?: Promise<void>;
}

const key = (pod: V1Pod) => `${pod.metadata?.namespace}/${pod.metadata?.name}`;

export class ProcessKubelet {
  private readonly core: CoreV1Api;
  private readonly pods = new Map<string, Tracked>();
  private timers: NodeJS.Timeout[] = [];
  private informer: ReturnType<typeof makeInformer<V1Pod>> | undefined;
  private readonly apiServer: URL;

  constructor(
    private readonly kc: KubeConfig,
    private readonly substrate: LocalSubstrate,
    private readonly nodeName: string,
    private readonly log: Logger,
  ) {
    this.core = kc.makeApiClient(CoreV1Api);
    this.apiServer = new URL(kc.getCurrentCluster()!.server);
  }

  async start(): Promise<void> {
    await this.registerNode();
    this.informer = makeInformer<V1Pod>(this.kc, '/api/v1/pods', () => this.core.listPodForAllNamespaces());
    const handle = (pod: V1Pod) =>
      void this.reconcile(pod).catch((error: unknown) =>
        this.log.error({ err: error, pod: key(pod) }, `reconcile failed: ${coerceError(error).message}`),
      );
    this.informer.on('add', handle);
    this.informer.on('update', handle);
    this.informer.on('delete', (pod) => void this.forget(pod));
    this.informer.on('error', (error: unknown) => {
      this.log.warn({ err: error }, 'pod watch failed; restarting it');
      setTimeout(() => void this.informer?.start(), 1000);
    });
    await this.informer.start();
    await this.removeOrphans();
    this.timers.push(setInterval(() => void this.syncStatuses(), 500));
    this.timers.push(setInterval(() => void this.heartbeat(), 10_000));
    this.log.info({ node: this.nodeName }, 'process-kubelet ready');
  }

  async stop(): Promise<void> {
    for (const timer of this.timers) clearInterval(timer);
    await this.informer?.stop();
    for (const tracked of this.pods.values()) await this.substrate.stop(tracked.localName).catch(() => {});
  }

  /** Local pods left from before a restart whose API objects are gone. */
  private async removeOrphans(): Promise<void> {
    const known = new Set((await this.core.listPodForAllNamespaces()).items.map((p) => p.metadata?.uid));
    for (const local of await this.substrate.list()) {
      if (!known.has(local.name)) await this.substrate.stop(local.name);
    }
  }

  private async registerNode(): Promise<void> {
    const body = {
      metadata: {
        name: this.nodeName,
        labels: { 'kubernetes.io/hostname': this.nodeName, 'kubernetes.io/os': 'linux', 'kubernetes.io/arch': 'amd64' },
      },
    };
    await this.core.createNode({ body }).catch((error: unknown) => {
      if (codeOf(error) !== 409) throw error;
    });
    await this.heartbeat();
  }

  private async heartbeat(): Promise<void> {
    try {
      const node = await this.core.readNode({ name: this.nodeName });
      const now = new Date();
      node.status = {
        capacity: { cpu: '2', memory: '24Gi', pods: '110' },
        allocatable: { cpu: '2', memory: '24Gi', pods: '110' },
        addresses: [
          { type: 'InternalIP', address: '127.0.0.1' },
          { type: 'Hostname', address: this.nodeName },
        ],
        conditions: [
          {
            type: 'Ready',
            status: 'True',
            reason: 'KubeletReady',
            message: 'process-kubelet is posting ready status',
            lastHeartbeatTime: now,
            lastTransitionTime: node.status?.conditions?.find((c) => c.type === 'Ready')?.lastTransitionTime ?? now,
          },
        ],
        nodeInfo: {
          architecture: 'amd64',
          bootID: '',
          containerRuntimeVersion: 'proofpod-local://bubblewrap',
          kernelVersion: '',
          kubeProxyVersion: '',
          kubeletVersion: 'v0.0.0-process-kubelet',
          machineID: '',
          operatingSystem: 'linux',
          osImage: 'proofpod local substrate',
          systemUUID: '',
        },
      };
      const updated = await this.core.replaceNodeStatus({ name: this.nodeName, body: node });
      // The node lifecycle controller would lift the not-ready taint the API server puts on a new
      // node; it does not run here, so the kubelet does it once the node reports Ready.
      const taints = updated.spec?.taints ?? [];
      if (taints.some((t) => t.key === 'node.kubernetes.io/not-ready')) {
        updated.spec = { ...updated.spec, taints: taints.filter((t) => t.key !== 'node.kubernetes.io/not-ready') };
        await this.core.replaceNode({ name: this.nodeName, body: updated });
      }
    } catch (error) {
      this.log.warn({ err: error }, 'node heartbeat failed');
    }
  }

  private async reconcile(pod: V1Pod): Promise<void> {
    const id = key(pod);
    if (!pod.spec?.nodeName) {
      if (pod.metadata?.deletionTimestamp || (pod.spec?.schedulerName && pod.spec.schedulerName !== 'default-scheduler')) return;
      await this.core
        .createNamespacedPodBinding({
          name: pod.metadata!.name!,
          namespace: pod.metadata!.namespace!,
          body: { metadata: { name: pod.metadata!.name! }, target: { apiVersion: 'v1', kind: 'Node', name: this.nodeName } },
        })
        .catch((error: unknown) => {
          if (codeOf(error) !== 409) throw error;
        });
      return;
    }
    if (pod.spec.nodeName !== this.nodeName) return;
    const tracked = this.pods.get(id);
    if (pod.metadata?.deletionTimestamp) {
      await this.terminate(pod, tracked);
      return;
    }
    if (tracked) {
      tracked.pod = pod;
      return;
    }
    if (pod.status?.phase === 'Succeeded' || pod.status?.phase === 'Failed') return;
    const started: Tracked = { pod, localName: pod.metadata!.uid!, startedAt: Date.now() };
    this.pods.set(id, started);
    started.starting = this.run(pod, started);
    await started.starting;
  }

  private async run(pod: V1Pod, tracked: Tracked): Promise<void> {
    const id = key(pod);
    const localName = tracked.localName;
    let files: VolumeFiles;
    let spec: V1Pod['spec'];
    try {
      files = await this.volumeFiles(pod);
      spec = {
        ...pod.spec!,
        initContainers: await this.resolveEnv(pod, pod.spec!.initContainers ?? []),
        containers: await this.resolveEnv(pod, pod.spec!.containers),
      };
    } catch (error) {
      const age = Date.now() - new Date(pod.metadata?.creationTimestamp ?? Date.now()).getTime();
      if (codeOf(error) === 404 && age < 60_000) {
        // A volume's Secret or ConfigMap is not there yet (proofpod creates the credential Secret
        // right after the Job): a kubelet keeps the pod in ContainerCreating and tries again.
        this.pods.delete(id);
        setTimeout(() => void this.reconcileByKey(pod), 500);
        return;
      }
      await this.writeStatus(tracked, {
        ...pod.status,
        phase: 'Pending',
        containerStatuses: pod.spec!.containers.map((c) => ({
          name: c.name,
          image: c.image ?? '',
          imageID: '',
          ready: false,
          restartCount: 0,
          state: { waiting: { reason: 'CreateContainerConfigError', message: coerceError(error).message } },
        })),
      });
      return;
    }
    if (tracked.deleting) return;
    await this.substrate.runPod(
      localName,
      { metadata: { name: pod.metadata!.name!, labels: pod.metadata?.labels ?? {} }, spec: spec! },
      files,
      this.log.child({ pod: id }),
    );
    this.log.info({ pod: id }, 'pod started');
  }

  private async reconcileByKey(pod: V1Pod): Promise<void> {
    const fresh = await this.core
      .readNamespacedPod({ name: pod.metadata!.name!, namespace: pod.metadata!.namespace! })
      .catch(() => undefined);
    if (fresh)
      await this.reconcile(fresh).catch((error: unknown) =>
        this.log.error({ err: error, pod: key(pod) }, `reconcile failed: ${coerceError(error).message}`),
      );
  }

  /** Env values from fields and Secrets, resolved as a kubelet does, since the sandbox has no API. */
  private async resolveEnv<T extends { env?: V1EnvVar[] }>(pod: V1Pod, containers: T[]): Promise<T[]> {
    const namespace = pod.metadata!.namespace!;
    const service = { KUBERNETES_SERVICE_HOST: this.apiServer.hostname, KUBERNETES_SERVICE_PORT: this.apiServer.port || '443' };
    return Promise.all(
      containers.map(async (c) => {
        const env: V1EnvVar[] =
          pod.spec?.enableServiceLinks === false && pod.spec.automountServiceAccountToken === false
            ? []
            : Object.entries(service).map(([name, value]) => ({ name, value }));
        for (const e of c.env ?? []) {
          if (!e.valueFrom) env.push(e);
          else if (e.valueFrom.fieldRef) {
            const field = e.valueFrom.fieldRef.fieldPath;
            const value =
              field === 'metadata.name'
                ? pod.metadata!.name
                : field === 'metadata.namespace'
                  ? namespace
                  : field === 'spec.nodeName'
                    ? this.nodeName
                    : field === 'status.podIP'
                      ? '127.0.0.1'
                      : undefined;
            if (value === undefined) throw new Error(`env ${e.name}: fieldRef ${field} is not supported by the process-kubelet`);
            env.push({ name: e.name, value });
          } else if (e.valueFrom.secretKeyRef) {
            const ref = e.valueFrom.secretKeyRef;
            const secret = await this.core.readNamespacedSecret({ name: ref.name!, namespace });
            const data = secret.data?.[ref.key];
            if (data === undefined) throw new Error(`env ${e.name}: secret ${ref.name} has no key ${ref.key}`);
            env.push({ name: e.name, value: Buffer.from(data, 'base64').toString('utf8') });
          } else throw new Error(`env ${e.name}: this valueFrom is not supported by the process-kubelet`);
        }
        return { ...c, env };
      }),
    );
  }

  /** Files of the pod's Secret, ConfigMap and projected volumes (service-account tokens by TokenRequest). */
  private async volumeFiles(pod: V1Pod): Promise<VolumeFiles> {
    const files: VolumeFiles = {};
    const namespace = pod.metadata!.namespace!;
    for (const volume of pod.spec?.volumes ?? []) {
      if (volume.emptyDir) continue;
      files[volume.name] = await this.volumeContent(pod, namespace, volume);
    }
    return files;
  }

  private async volumeContent(pod: V1Pod, namespace: string, volume: V1Volume): Promise<Record<string, string>> {
    const decode = (data: Record<string, string> | undefined, items: { key: string; path: string }[] | undefined, base64: boolean) => {
      const out: Record<string, string> = {};
      const pick = items ?? Object.keys(data ?? {}).map((k) => ({ key: k, path: k }));
      for (const item of pick) {
        const value = data?.[item.key];
        if (value === undefined) throw new Error(`volume ${volume.name}: key ${item.key} not found`);
        out[item.path] = base64 ? Buffer.from(value, 'base64').toString('utf8') : value;
      }
      return out;
    };
    if (volume.secret) {
      const secret = await this.core.readNamespacedSecret({ name: volume.secret.secretName!, namespace });
      return decode(secret.data, volume.secret.items, true);
    }
    if (volume.configMap) {
      const map = await this.core.readNamespacedConfigMap({ name: volume.configMap.name!, namespace });
      return decode(map.data, volume.configMap.items, false);
    }
    if (volume.projected) {
      const out: Record<string, string> = {};
      for (const source of volume.projected.sources ?? []) {
        if (source.serviceAccountToken) {
          const request = await this.core.createNamespacedServiceAccountToken({
            name: pod.spec!.serviceAccountName ?? 'default',
            namespace,
            body: {
              spec: {
                audiences: source.serviceAccountToken.audience ? [source.serviceAccountToken.audience] : [],
                expirationSeconds: source.serviceAccountToken.expirationSeconds ?? 3600,
                boundObjectRef: { apiVersion: 'v1', kind: 'Pod', name: pod.metadata!.name!, uid: pod.metadata!.uid! },
              },
            },
          });
          out[source.serviceAccountToken.path] = request.status!.token;
        } else if (source.configMap) {
          const map = await this.core.readNamespacedConfigMap({ name: source.configMap.name!, namespace });
          Object.assign(out, decode(map.data, source.configMap.items, false));
        } else if (source.secret) {
          const secret = await this.core.readNamespacedSecret({ name: source.secret.name!, namespace });
          Object.assign(out, decode(secret.data, source.secret.items, true));
        } else if (source.downwardAPI) {
          for (const item of source.downwardAPI.items ?? []) {
            const field = item.fieldRef?.fieldPath;
            if (field !== 'metadata.namespace' && field !== 'metadata.name')
              throw new Error(`volume ${volume.name}: downwardAPI ${field} is not supported`);
            out[item.path] = field === 'metadata.namespace' ? namespace : pod.metadata!.name!;
          }
        }
      }
      return out;
    }
    throw new Error(`volume ${volume.name}: only emptyDir, secret, configMap and projected volumes are supported by the process-kubelet`);
  }

  private async syncStatuses(): Promise<void> {
    for (const tracked of [...this.pods.values()]) {
      if (tracked.deleting) continue;
      const local = await this.substrate.podStatus(tracked.localName).catch(() => undefined);
      if (!local) continue;
      const images = Object.fromEntries(
        [...(tracked.pod.spec?.initContainers ?? []), ...(tracked.pod.spec?.containers ?? [])].map((c) => [c.name, c.image ?? '']),
      );
      const status = toPodStatus(local.status, images, tracked.pod.status, local.lost, tracked.startedAt);
      await this.writeStatus(tracked, status).catch((error: unknown) =>
        this.log.warn({ err: error, pod: key(tracked.pod) }, 'status update failed'),
      );
    }
  }

  private async writeStatus(tracked: Tracked, status: V1PodStatus): Promise<void> {
    const comparable = JSON.stringify({
      ...status,
      conditions: status.conditions?.map((c) => ({ type: c.type, status: c.status })),
      startTime: undefined,
    });
    if (comparable === tracked.lastStatus) return;
    const { name, namespace } = tracked.pod.metadata!;
    for (let tries = 0; tries < 5; tries++) {
      try {
        // Read, not the informer's copy: watch events carry timestamps as strings, which the
        // client cannot serialise back, and a fresh read also has the latest resourceVersion.
        const current = await this.core.readNamespacedPod({ name: name!, namespace: namespace! });
        const updated = await this.core.replaceNamespacedPodStatus({ name: name!, namespace: namespace!, body: { ...current, status } });
        tracked.pod = updated;
        tracked.lastStatus = comparable;
        return;
      } catch (error) {
        const code = codeOf(error);
        if (code === 404) return;
        if (code !== 409) throw error;
      }
    }
  }

  /** A pod being deleted: stop its sandboxes, then finish the deletion as a kubelet does (grace 0). */
  private async terminate(pod: V1Pod, tracked: Tracked | undefined): Promise<void> {
    if (tracked?.deleting) return;
    if (tracked) tracked.deleting = true;
    await tracked?.starting?.catch(() => {});
    // By uid, tracked or not: the pod may have run before this kubelet restarted. Whatever happens
    // to the local files, the API object must still go, or its namespace can never be deleted.
    await this.substrate
      .stop(pod.metadata!.uid!)
      .catch((error: unknown) => this.log.warn({ err: error, pod: key(pod) }, 'stopping the pod locally failed'));
    await this.core
      .deleteNamespacedPod({
        name: pod.metadata!.name!,
        namespace: pod.metadata!.namespace!,
        gracePeriodSeconds: 0,
        body: { gracePeriodSeconds: 0, preconditions: { uid: pod.metadata!.uid! } },
      })
      .catch((error: unknown) => {
        if (codeOf(error) !== 404) throw error;
      });
    this.pods.delete(key(pod));
    this.log.info({ pod: key(pod) }, 'pod deleted');
  }

  private async forget(pod: V1Pod): Promise<void> {
    const tracked = this.pods.get(key(pod));
    if (!tracked) return;
    this.pods.delete(key(pod));
    await this.substrate.stop(tracked.localName).catch(() => {});
  }
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      kubeconfig: { type: 'string' },
      state: { type: 'string' },
      node: { type: 'string', default: 'proofpod-local' },
      config: { type: 'string' },
    },
  });
  if (!values.kubeconfig || !values.state)
    throw new Error('usage: process-kubelet --kubeconfig FILE --state DIR [--node NAME] [--config FILE]');
  const log = pino({ level: process.env.LOG_LEVEL ?? 'info', base: { component: 'process-kubelet' } });
  const kc = new KubeConfig();
  kc.loadFromString(readFileSync(values.kubeconfig, 'utf8'));
  const config = loadConfig(
    { ...(values.config ? { PROOFPOD_CONFIG: values.config } : {}) },
    { home: values.state, databaseUrl: 'postgres://unused/unused' },
  );
  await mkdir(path.join(values.state, 'pods'), { recursive: true });
  const substrate = new LocalSubstrate({ config, stateDir: path.join(values.state, 'pods'), programsRoot: projectRoot(), log });
  await substrate.ping();
  const kubelet = new ProcessKubelet(kc, substrate, values.node, log);
  await kubelet.start();
  const shutdown = () => void kubelet.stop().finally(() => process.exit(0));
  process.on('SIGTERM', shutdown);
  process.on('SIGINT', shutdown);
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  main().catch((error: unknown) => {
    process.stderr.write(`process-kubelet: ${coerceError(error).message}\n`);
    process.exit(1);
  });
}
