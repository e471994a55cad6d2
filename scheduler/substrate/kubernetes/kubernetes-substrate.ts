import {
  type BatchV1Api,
  type CoreV1Api,
  KubeConfig,
  type KubernetesObjectApi,
  ListWatch,
  type V1Job,
  type V1OwnerReference,
  type V1Pod,
  Watch,
} from '@kubernetes/client-node';
import type { Logger } from 'pino';
import type { Config } from '../../config.js';
import { DuplicateError, coerceError } from '../../errors.js';
import { type ContainerName, labels } from '../../../contract/pod.js';
import { buildAttemptJob, buildCredentialSecret, credentialSecretName } from '../../pod/job-spec.js';
import { buildAttemptPod } from '../../pod/pod-spec.js';
import type { AttemptLaunch, AttemptStatus, ContainerLog, ObservedAttempt, Substrate } from '../substrate.js';
import { type ApiClients, apiClients, clientSettings, retryShed } from './client.js';
import { attemptStatusOf } from './read-status.js';

/** The HTTP status of a failed Kubernetes API call (client-node's ApiException), if any. */
export const codeOf = (error: unknown) => (error as { code?: number }).code;

/** A KubeConfig from a file, else in-cluster (service-account token), else the default places. */
export function loadKubeConfig(file: string | undefined): KubeConfig {
  const kc = new KubeConfig();
  if (file) kc.loadFromFile(file);
  else if (process.env.KUBERNETES_SERVICE_HOST) kc.loadFromCluster();
  else kc.loadFromDefault();
  return kc;
}

/**
 * Runs each attempt as its own batch/v1 Job (docs/architecture.md, "Substrates"), with the per-attempt credential in a Secret
 * owned by that Job. Needs only the opt-in Role: Jobs create/get/list/watch/delete, Pods
 * get/list/watch, pods/log get, Secrets create/delete.
 *
 * Two informers (list + watch of our Jobs and pods, relisting after an error) keep a cache that
 * `observe` reads, so watching many attempts costs no request per attempt, and tell `onChange`
 * listeners when an attempt's status has become final. A Job the cache does not have yet is answered from
 * this replica's own create for 30 s, then looked up in the live API before it counts as gone, and
 * `list`, which decides what the reaper deletes, always reads the live API.
 *
 * Requests go through one keep-alive agent (client.ts); the creates in flight are bounded by the
 * replica's launch pool (`dispatch.launchConcurrency`), not here.
 */
export class KubernetesSubstrate implements Substrate {
  readonly kind = 'kubernetes';
  private readonly batch: BatchV1Api;
  private readonly core: CoreV1Api;
  private readonly namespace: string;
  private readonly selector: string;
  private readonly jobs: ListWatch<V1Job>;
  private readonly pods: ListWatch<V1Pod>;
  private readonly objects: KubernetesObjectApi;
  private readonly clients: ApiClients;
  private readonly listeners = new Set<(name: string) => void>();
  /** The final phase each attempt was last reported to listeners with, so that they hear of it once. */
  private readonly ended = new Map<string, AttemptStatus['phase'] | 'gone'>();
  private readonly restarts = new Set<NodeJS.Timeout>();
  /** The pods in the cache by their Job's name, kept from the pod informer's events. */
  private readonly podsByJob = new Map<string, Map<string, V1Pod>>();
  /**
   * Jobs this replica created that the Job informer has not reported yet, with when: `observe`
   * answers from these instead of reading the live API (a create the API server answered exists).
   */
  private readonly created = new Map<string, { job: V1Job; at: number }>();
  private owner: Promise<V1OwnerReference | undefined> | undefined;
  private started: Promise<void> | undefined;
  /** Informers whose last start listed and watches on, with no failure since: their caches are current. */
  private readonly watching = new Set<'jobs' | 'pods'>();
  /** Failures seen per informer, so that a start is trusted only if none came during it. */
  private readonly failures = { jobs: 0, pods: 0 };
  private closed = false;

  constructor(
    private readonly config: Config,
    kc: KubeConfig,
    private readonly log: Logger,
  ) {
    this.clients = apiClients(kc, clientSettings(config));
    ({ batch: this.batch, core: this.core, objects: this.objects } = this.clients);
    this.namespace = config.kubernetes.namespace;
    this.selector = `${labels.managedBy}=proofpod,${labels.release}=${config.pod.release}`;
    const watch = new Watch(kc);
    this.jobs = new ListWatch(
      `/apis/batch/v1/namespaces/${this.namespace}/jobs`,
      watch,
      () => this.batch.listNamespacedJob({ namespace: this.namespace, labelSelector: this.selector }),
      false,
      this.selector,
    );
    this.pods = new ListWatch(
      `/api/v1/namespaces/${this.namespace}/pods`,
      watch,
      () => this.core.listNamespacedPod({ namespace: this.namespace, labelSelector: this.selector }),
      false,
      this.selector,
    );
    const jobOf = (pod: V1Pod) => pod.metadata?.labels?.['job-name'];
    this.jobs.on('add', (job) => {
      this.created.delete(job.metadata?.name ?? '');
      this.changed(job.metadata?.name);
    });
    this.jobs.on('update', (job) => this.changed(job.metadata?.name));
    this.jobs.on('delete', (job) => this.changed(job.metadata?.name, true));
    this.pods.on('add', (pod) => {
      this.indexPod(pod, true);
      this.changed(jobOf(pod));
    });
    this.pods.on('update', (pod) => {
      this.indexPod(pod, true);
      this.changed(jobOf(pod));
    });
    this.pods.on('delete', (pod) => {
      this.indexPod(pod, false);
      this.changed(jobOf(pod));
    });
    for (const kind of ['jobs', 'pods'] as const) {
      (this[kind] as ListWatch<V1Job | V1Pod>).on('error', (error: unknown) => {
        this.watching.delete(kind);
        this.failures[kind]++;
        if (this.closed) return;
        this.log.warn({ err: error }, 'watch failed; listing and watching again in 1 s');
        // Closed meanwhile: a restart now would watch on, unowned, and keep the process alive.
        const restart = setTimeout(() => {
          this.restarts.delete(restart);
          if (!this.closed) void this.startInformer(kind).catch(() => {});
        }, 1000);
        this.restarts.add(restart);
      });
    }
    if (!config.kubernetes.owner) {
      this.log.warn('kubernetes.owner is not set: Jobs get no ownerReference, and only the reaper removes them if the release goes');
    }
  }

  /**
   * Creates the Job, then the credential Secret owned by it. The pod cannot start before the Secret
   * exists (the kubelet waits for its volume), and with the Job as owner nothing needs a patch verb.
   */
  async start(launch: AttemptLaunch): Promise<void> {
    const secretName = credentialSecretName(launch.name);
    const pod = buildAttemptPod({ ...launch, credentialSecretName: secretName }, launch.profile, launch.laneConfig, this.config.pod);
    const body = buildAttemptJob(pod, launch.deadlineAt, {
      namespace: this.namespace,
      owner: await this.ownerReference(),
      ttlSecondsAfterFinished: this.config.kubernetes.ttlSecondsAfterFinished,
    });
    const shed = (what: string) => (seconds: number) =>
      this.log.warn({ name: launch.name, seconds }, `the API server shed the ${what} create (429); trying again after its Retry-After`);
    let job: V1Job;
    try {
      job = await retryShed(() => this.batch.createNamespacedJob({ namespace: this.namespace, body }), shed('Job'));
    } catch (error) {
      if (codeOf(error) === 409) throw new DuplicateError(`Job ${launch.name} exists already`, { cause: error });
      throw new Error(`creating Job ${launch.name} failed: ${apiMessage(error)}`, { cause: error });
    }
    const uid = job.metadata?.uid;
    if (!uid) throw new Error(`the API server returned Job ${launch.name} without a uid`);
    this.remember(launch.name, job);
    try {
      const secret = buildCredentialSecret(secretName, { ...job, metadata: { ...job.metadata, uid } }, launch.uploadCredential);
      await retryShed(() => this.core.createNamespacedSecret({ namespace: this.namespace, body: secret }), shed('Secret'));
    } catch (error) {
      if (codeOf(error) !== 409) throw new Error(`creating Secret ${secretName} failed: ${apiMessage(error)}`, { cause: error });
    }
  }

  async observe(name: string): Promise<AttemptStatus | undefined> {
    await this.informers();
    const cached = this.jobs.get(name, this.namespace) ?? this.createdRecently(name);
    if (cached) return attemptStatusOf(cached, this.cachedPods(name), this.config.kubernetes);
    let job: V1Job;
    try {
      job = await this.batch.readNamespacedJob({ name, namespace: this.namespace });
    } catch (error) {
      if (codeOf(error) === 404) return undefined;
      throw error;
    }
    const pods = await this.core.listNamespacedPod({ namespace: this.namespace, labelSelector: `job-name=${name}` });
    return attemptStatusOf(job, pods.items, this.config.kubernetes);
  }

  async readLog(name: string, container: ContainerName, maxBytes: number): Promise<ContainerLog | undefined> {
    await this.informers();
    const cached = this.cachedPods(name);
    const pods =
      cached.length > 0
        ? cached
        : (await this.core.listNamespacedPod({ namespace: this.namespace, labelSelector: `job-name=${name}` })).items;
    // The newest pod: a Job the kubelet restarted has had more than one.
    const created = (p: V1Pod) => new Date(p.metadata?.creationTimestamp ?? 0).getTime();
    const pod = pods.sort((a, b) => created(b) - created(a))[0];
    const podName = pod?.metadata?.name;
    if (!podName) return undefined;
    try {
      // One byte more than asked: whether there was more.
      const text = await this.core.readNamespacedPodLog({ name: podName, namespace: this.namespace, container, limitBytes: maxBytes + 1 });
      const content = Buffer.from(text ?? '', 'utf8');
      return { content: content.subarray(0, maxBytes), truncated: content.length > maxBytes };
    } catch (error) {
      // Not started yet, or gone: no log to read.
      if (codeOf(error) === 400 || codeOf(error) === 404) return undefined;
      throw error;
    }
  }

  /** Keeps a created Job for `observe` until the informer has it (old entries go once there are many). */
  private remember(name: string, job: V1Job): void {
    if (this.jobs.get(name, this.namespace)) return;
    if (this.created.size >= 1024) {
      for (const [old, entry] of this.created) if (Date.now() - entry.at >= 30_000) this.created.delete(old);
    }
    this.created.set(name, { job, at: Date.now() });
  }

  /**
   * A Job this replica created in the last 30 s that the informer has not reported yet; after that,
   * the live API decides (a Job deleted before the informer saw it is then found gone).
   */
  private createdRecently(name: string): V1Job | undefined {
    const entry = this.created.get(name);
    if (entry && Date.now() - entry.at < 30_000) return entry.job;
    this.created.delete(name);
    return undefined;
  }

  private indexPod(pod: V1Pod, present: boolean): void {
    const job = pod.metadata?.labels?.['job-name'];
    const name = pod.metadata?.name;
    if (!job || !name) return;
    const pods = this.podsByJob.get(job) ?? new Map<string, V1Pod>();
    if (present) pods.set(name, pod);
    else pods.delete(name);
    if (pods.size > 0) this.podsByJob.set(job, pods);
    else this.podsByJob.delete(job);
  }

  /** The pods of Job `name` in the pod informer's cache. */
  private cachedPods(name: string): V1Pod[] {
    return [...(this.podsByJob.get(name)?.values() ?? [])];
  }

  /** Starts the informers once, on first use; until their first list is in, reads go live. */
  private informers(): Promise<void> {
    this.started ??= Promise.all([this.startInformer('jobs'), this.startInformer('pods')]).then(
      () => undefined,
      (error: unknown) => {
        this.started = undefined;
        this.log.warn({ err: error }, 'informers could not start; reading the live API meanwhile');
      },
    );
    return this.started;
  }

  /** ListWatch's start reports a failed list or watch to its error listeners and still resolves. */
  private async startInformer(kind: 'jobs' | 'pods'): Promise<void> {
    const failures = this.failures[kind];
    await this[kind].start();
    if (this.failures[kind] === failures && !this.closed) this.watching.add(kind);
  }

  async close(): Promise<void> {
    this.closed = true;
    this.listeners.clear();
    for (const restart of this.restarts) clearTimeout(restart);
    await Promise.all([this.jobs.stop(), this.pods.stop()]).catch(() => {});
    this.clients.close();
  }

  /** Tells `listener` the name of an attempt whose status became final (substrate.ts; `changed` below). */
  onChange(listener: (name: string) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  /**
   * After an informer event about `name`'s Job or pod: tells the listeners when the attempt's status,
   * as `observe` reads it from the cache, has become final (finished, refused, failed; a deleted Job
   * is gone), once per final phase. What ends an attempt only with time (an image pull past its
   * grace, Pending too long) the watcher's own interval finds.
   */
  private changed(name: string | undefined, deleted = false): void {
    if (!name) return;
    const job = deleted ? undefined : this.jobs.get(name, this.namespace);
    if (!job && !deleted) return;
    const phase = job ? attemptStatusOf(job, this.cachedPods(name), this.config.kubernetes).phase : 'gone';
    if (phase === 'pending' || phase === 'running') {
      this.ended.delete(name);
      return;
    }
    if (this.ended.get(name) === phase) return;
    if (deleted) this.ended.delete(name);
    else this.ended.set(name, phase);
    for (const listener of this.listeners) {
      try {
        listener(name);
      } catch (error) {
        this.log.warn({ err: error, name }, 'an onChange listener failed');
      }
    }
  }

  /**
   * From the informers' caches while both watch: the reaper's orphan sweep asks every few seconds,
   * and a live list of every Job and pod of ours cost this process about 0.1 ms of CPU per Job each
   * time, and the API server as much again. A cache that lags changes nothing the sweep decides
   * (reap-orphans.ts). Live while an informer has not listed yet or is between a failed watch and
   * its restart.
   */
  async list(): Promise<ObservedAttempt[]> {
    const observed = (jobs: readonly V1Job[], podsOf: (name: string) => V1Pod[]) =>
      jobs.map((job) => {
        const name = job.metadata!.name!;
        return { name, status: attemptStatusOf(job, podsOf(name), this.config.kubernetes) };
      });
    await this.informers();
    if (this.watching.has('jobs') && this.watching.has('pods')) {
      return observed(this.jobs.list(this.namespace), (name) => this.cachedPods(name));
    }
    const [jobs, pods] = await Promise.all([
      this.batch.listNamespacedJob({ namespace: this.namespace, labelSelector: this.selector }),
      this.core.listNamespacedPod({ namespace: this.namespace, labelSelector: this.selector }),
    ]);
    const byJob = new Map<string, V1Pod[]>();
    for (const pod of pods.items) {
      const owner = pod.metadata?.labels?.['job-name'];
      if (owner) byJob.set(owner, [...(byJob.get(owner) ?? []), pod]);
    }
    return observed(jobs.items, (name) => byJob.get(name) ?? []);
  }

  /**
   * Deletes the Job with Background propagation: the garbage collector then deletes its pod and its
   * Secret (the Role grants no pod deletion). The Secret is also deleted here, to revoke at once.
   */
  async stop(name: string): Promise<void> {
    this.created.delete(name);
    await this.batch
      .deleteNamespacedJob({ name, namespace: this.namespace, propagationPolicy: 'Background', gracePeriodSeconds: 0 })
      .catch((error: unknown) => {
        if (codeOf(error) !== 404) throw error;
      });
    await this.core.deleteNamespacedSecret({ name: credentialSecretName(name), namespace: this.namespace }).catch((error: unknown) => {
      if (codeOf(error) !== 404) this.log.warn({ err: error, name }, 'could not delete the credential Secret; it goes with its Job');
    });
  }

  async ping(): Promise<void> {
    try {
      await this.batch.listNamespacedJob({ namespace: this.namespace, labelSelector: this.selector, limit: 1 });
    } catch (error) {
      throw new Error(`the Kubernetes API does not answer for namespace ${this.namespace}: ${apiMessage(error)}`, { cause: error });
    }
    await this.ownerReference();
  }

  /**
   * The owner every Job points at. Its uid is read once from the object when the configuration has
   * none (the chart creates the object in the same release, so its uid cannot be known at render
   * time); a failed read is tried again on the next call, so a scheduler started before its owner
   * exists becomes ready once it does.
   */
  private ownerReference(): Promise<V1OwnerReference | undefined> {
    const owner = this.config.kubernetes.owner;
    if (!owner) return Promise.resolve(undefined);
    if (owner.uid) return Promise.resolve({ ...owner, uid: owner.uid });
    this.owner ??= this.objects
      .read({ apiVersion: owner.apiVersion, kind: owner.kind, metadata: { name: owner.name, namespace: this.namespace } })
      .then((object) => {
        const uid = object.metadata?.uid;
        if (!uid) throw new Error('the API server returned it without a uid');
        this.log.info({ owner: { ...owner, uid } }, 'Jobs are owned by the release object');
        return { ...owner, uid };
      })
      .catch((error: unknown) => {
        this.owner = undefined;
        throw new Error(
          `cannot read the owner ${owner.kind} ${this.namespace}/${owner.name} (kubernetes.owner has no uid, so the scheduler needs get on that object): ${apiMessage(error)}`,
          { cause: error },
        );
      });
    return this.owner;
  }
}

function apiMessage(error: unknown): string {
  const body = (error as { body?: unknown }).body;
  if (typeof body === 'string') {
    try {
      return (JSON.parse(body) as { message?: string }).message ?? body;
    } catch {
      return body;
    }
  }
  return coerceError(error).message;
}
