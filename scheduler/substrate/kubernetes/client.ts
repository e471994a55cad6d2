import https from 'node:https';
import { setTimeout as sleep } from 'node:timers/promises';
import {
  BatchV1Api,
  CoreV1Api,
  type KubeConfig,
  KubernetesObjectApi,
  type RequestContext,
  type SecurityAuthentication,
  ServerConfiguration,
  createConfiguration,
} from '@kubernetes/client-node';
import type { Config } from '../../config.js';

/**
 * How the scheduler talks to the API server (docs/operations.md, "The Kubernetes API"). client-node
 * 1.x has no client-side limiter like client-go's QPS and burst, and by default makes a fresh agent
 * for every request, i.e. a new TCP connection and TLS handshake per call. The substrate and the
 * benchmark's plain loop both build their clients here, so they compare like with like.
 */
export interface ClientSettings {
  /**
   * Idle keep-alive connections kept open to the API server: the launch concurrency, since that
   * many creates are in flight at once (each launch has one request outstanding, its Job, then its
   * Secret). Not a cap on connections: see SharedAgent.
   */
  connections: number;
  /** A token bucket over requests, when set: `qps` a second, up to `burst` at once. */
  qps?: number | undefined;
  burst?: number | undefined;
}

/** The client settings the configuration asks for (`dispatch.launchConcurrency`, `kubernetes.client`). */
export function clientSettings(config: Config): ClientSettings {
  return {
    connections: config.dispatch.launchConcurrency,
    qps: config.kubernetes.client.qps,
    burst: config.kubernetes.client.burst ?? config.dispatch.launchConcurrency,
  };
}

export interface ApiClients {
  batch: BatchV1Api;
  core: CoreV1Api;
  objects: KubernetesObjectApi;
  /** Closes the kept-alive connections. */
  close(): void;
}

/**
 * API clients for `kc`'s current cluster that share one keep-alive agent (and wait for the token
 * bucket, when one is set). Authentication is still applied per request by
 * `kc` (a rotated service-account token is picked up as before); only the agent it makes is
 * replaced, by the shared one with the same TLS material. Watches are not made here: each holds a
 * connection of its own for as long as it runs.
 */
export function apiClients(kc: KubeConfig, settings: ClientSettings): ApiClients {
  const cluster = kc.getCurrentCluster();
  if (!cluster) throw new Error('the kubeconfig has no current cluster');
  const agents = new SharedAgent(settings.connections);
  const bucket = settings.qps ? new TokenBucket(settings.qps, settings.burst ?? settings.connections) : undefined;
  // The agent is swapped in where authentication is applied, which every request goes through:
  // client-node 1.3 never runs a configuration's own middleware (only middleware passed per call).
  const authentication: SecurityAuthentication = {
    getName: () => 'kubeconfig authentication, shared agent',
    applySecurityAuthentication: async (context) => {
      await kc.applySecurityAuthentication(context);
      await bucket?.take();
      agents.apply(context);
    },
  };
  const configuration = createConfiguration({
    baseServer: new ServerConfiguration(cluster.server, {}),
    authMethods: { default: authentication },
  });
  return {
    batch: new BatchV1Api(configuration),
    core: new CoreV1Api(configuration),
    objects: new KubernetesObjectApi(configuration),
    close: () => agents.destroy(),
  };
}

/** The TLS options of client-node's per-request agent that decide which connection may be reused. */
const tlsKeys = ['ca', 'cert', 'key', 'pfx', 'passphrase', 'rejectUnauthorized', 'servername'] as const;

/**
 * One keep-alive https.Agent in place of the one client-node makes per request. A request whose
 * TLS material differs (a rotated client certificate) gets a new agent; one through a proxy or over
 * plain http keeps client-node's own.
 *
 * The agent never makes a request wait for a socket (no maxSockets): node-fetch 2, which client-node
 * 1.x sends with, fails a response with a false "Premature close" when its kept-alive socket goes
 * straight to a request queued in the agent (node-fetch#1767; with 16 requests over 4 sockets,
 * 1,496 of 1,500 failed here). What is in flight is bounded where the requests come from instead:
 * the launch pool's creates (`dispatch.launchConcurrency`), the watcher's and the reaper's batches.
 */
class SharedAgent {
  private agent: https.Agent | undefined;
  private material: string | undefined;
  private readonly retired: https.Agent[] = [];

  constructor(private readonly connections: number) {}

  apply(context: RequestContext): void {
    const fresh = context.getAgent();
    if (!(fresh instanceof https.Agent)) return;
    const material = tlsKeys.map((k) => stringOf(fresh.options[k])).join('\0');
    if (material !== this.material || !this.agent) {
      if (this.agent) this.retired.push(this.agent);
      const tls = Object.fromEntries(tlsKeys.map((k) => [k, fresh.options[k]]).filter(([, v]) => v !== undefined));
      this.agent = new https.Agent({ ...tls, keepAlive: true, maxFreeSockets: this.connections });
      this.material = material;
    }
    context.setAgent(this.agent);
  }

  destroy(): void {
    for (const agent of [...this.retired, this.agent]) agent?.destroy();
  }
}

function stringOf(value: unknown): string {
  if (value === undefined || value === null) return '';
  if (Buffer.isBuffer(value)) return value.toString('base64');
  if (Array.isArray(value)) return value.map(stringOf).join(',');
  if (typeof value === 'object') return JSON.stringify(value);
  return String(value);
}

/** A token bucket: `qps` tokens a second, at most `burst` saved up; takers are served in order. */
export class TokenBucket {
  private tokens: number;
  private last = performance.now();
  private queue: Promise<void> = Promise.resolve();

  constructor(
    private readonly qps: number,
    private readonly burst: number,
  ) {
    this.tokens = burst;
  }

  take(): Promise<void> {
    const turn = this.queue.then(() => this.next());
    this.queue = turn;
    return turn;
  }

  private async next(): Promise<void> {
    this.refill();
    if (this.tokens < 1) {
      await sleep(((1 - this.tokens) / this.qps) * 1000);
      this.refill();
    }
    this.tokens -= 1;
  }

  private refill(): void {
    const now = performance.now();
    this.tokens = Math.min(this.burst, this.tokens + ((now - this.last) / 1000) * this.qps);
    this.last = now;
  }
}

/**
 * Runs a create again when the API server answered 429 (priority and fairness shed it before doing
 * anything, so nothing was created), after its Retry-After, at most `tries` times in all: a shed
 * create should cost a launch a second, not the attempt one of its lane's retries.
 */
export async function retryShed<T>(create: () => Promise<T>, onRetry: (seconds: number) => void, tries = 3): Promise<T> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await create();
    } catch (error) {
      if ((error as { code?: number }).code !== 429 || attempt >= tries) throw error;
      const header = (error as { headers?: Record<string, string> }).headers?.['retry-after'];
      const seconds = Math.min(10, Math.max(0.1, Number(header) || 1));
      onRetry(seconds);
      await sleep(seconds * 1000);
    }
  }
}
