import { DuplicateError } from '../../scheduler/errors.js';
import type { Evidence } from '../../contract/evidence.js';
import type { AttemptLaunch, AttemptStatus, ObservedAttempt, Substrate } from '../../scheduler/substrate/substrate.js';
import { FAKE_IMAGE_DIGEST, evidenceFor } from './evidence.js';

export interface FakeClusterOptions {
  /** How long an attempt "runs" before its fake reporter uploads and it finishes. */
  runMs?: number;
  /** Whether the fake reporter uploads evidence at all. */
  upload?: boolean;
  /** Base URLs the fake reporter may reach, like a Service in front of the scheduler replicas. */
  endpoints?: () => string[];
  /** What the fake reporter uploads instead of the honest evidence: a holder of a leaked credential. */
  forge?: (launch: AttemptLaunch, honest: Evidence) => Evidence;
  /** While it says false, every call fails as a client does when the API server is down (ECONNREFUSED). */
  reachable?: () => boolean;
}

interface FakeObject {
  launch: AttemptLaunch;
  status: AttemptStatus;
  timer?: NodeJS.Timeout;
}

/**
 * A FAKE of a cluster, for tests only: it runs nothing. It keeps objects by name, refuses a second
 * create of a name with DuplicateError as the Kubernetes API does, and for each attempt plays the
 * reporter by uploading evidence over HTTP to a live scheduler before reporting the attempt finished
 * with exit code 0. Several scheduler instances share one fake, as replicas share one cluster.
 */
export class FakeCluster implements Substrate {
  readonly kind = 'fake-cluster';
  readonly objects = new Map<string, FakeObject>();
  /** Every successful create, in order: a name appearing twice would be a double dispatch. */
  readonly created: string[] = [];
  readonly duplicateCreates: string[] = [];
  readonly uploads: { name: string; status: number }[] = [];
  private closed = false;

  constructor(private readonly options: FakeClusterOptions = {}) {}

  /** Every start refused for want of an answer. */
  readonly refusedStarts: string[] = [];

  private answer(what: string): void {
    if (this.options.reachable?.() ?? true) return;
    const cause = Object.assign(new Error('connect ECONNREFUSED 127.0.0.1:6443'), { code: 'ECONNREFUSED' });
    throw new Error(`${what} failed: request to https://127.0.0.1:6443 failed, reason: connect ECONNREFUSED`, { cause });
  }

  async start(launch: AttemptLaunch): Promise<void> {
    try {
      this.answer(`creating Job ${launch.name}`);
    } catch (error) {
      this.refusedStarts.push(launch.name);
      throw error;
    }
    if (this.objects.has(launch.name)) {
      this.duplicateCreates.push(launch.name);
      throw new DuplicateError(`${launch.name} already exists`);
    }
    const object: FakeObject = { launch, status: { phase: 'running' } };
    this.objects.set(launch.name, object);
    this.created.push(launch.name);
    object.timer = setTimeout(() => void this.finish(object), this.options.runMs ?? 20);
  }

  async observe(name: string): Promise<AttemptStatus | undefined> {
    this.answer(`reading Job ${name}`);
    return this.objects.get(name)?.status;
  }

  async list(): Promise<ObservedAttempt[]> {
    this.answer('listing Jobs');
    return [...this.objects.values()].map((o) => ({ name: o.launch.name, status: o.status }));
  }

  async stop(name: string): Promise<void> {
    const object = this.objects.get(name);
    clearTimeout(object?.timer);
    this.objects.delete(name);
  }

  async ping(): Promise<void> {
    this.answer('ping');
  }

  /** Stops the fake itself (its timers); not `close`, which a crashing scheduler calls on its substrate. */
  shutdown(): void {
    this.closed = true;
    for (const object of this.objects.values()) clearTimeout(object.timer);
  }

  private async finish(object: FakeObject): Promise<void> {
    if (this.options.upload !== false) await this.upload(object);
    if (this.closed || !this.objects.has(object.launch.name)) return;
    // A profile with a build step has a build container, which exited 0.
    const build = object.launch.profile.build ? { exitCode: 0, imageDigest: FAKE_IMAGE_DIGEST } : null;
    object.status = { phase: 'finished', check: { exitCode: 0, imageDigest: FAKE_IMAGE_DIGEST }, build };
  }

  /** Tries each endpoint in turn, retrying for a while, as a reporter with retries would. */
  private async upload(object: FakeObject): Promise<void> {
    const { launch } = object;
    const path = new URL(launch.uploadUrl).pathname;
    // The honest reporter of the profile the attempt was dispatched with (as its lane runs it).
    const honest = evidenceFor(launch, {}, launch.profile);
    const body = JSON.stringify(this.options.forge ? this.options.forge(launch, honest) : honest);
    for (let round = 0; round < 100 && !this.closed; round++) {
      const endpoints = this.options.endpoints?.() ?? [new URL(launch.uploadUrl).origin];
      for (const base of endpoints) {
        try {
          const response = await fetch(`${base}${path}`, {
            method: 'POST',
            headers: { authorization: `Bearer ${launch.uploadCredential}`, 'content-type': 'application/json' },
            body,
          });
          await response.arrayBuffer();
          this.uploads.push({ name: launch.name, status: response.status });
          if (response.status < 500) return;
        } catch {
          // That replica is gone; try the next one.
        }
      }
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
  }
}
