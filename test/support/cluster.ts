import { existsSync } from 'node:fs';
import https from 'node:https';
import os from 'node:os';
import path from 'node:path';
import { CoreV1Api, KubeConfig } from '@kubernetes/client-node';

export const clusterDir = process.env.PROOFPOD_CLUSTER_DIR ?? path.join(os.homedir(), '.cache', 'proofpod', 'cluster');
export const kubeconfigPath = path.join(clusterDir, 'admin.kubeconfig');

export function adminKubeConfig(): KubeConfig {
  const kc = new KubeConfig();
  kc.loadFromFile(kubeconfigPath);
  return kc;
}

/**
 * A kubeconfig for the API server of `admin` that authenticates as ServiceAccount `name` of
 * `namespace` (its default namespace too), with a token from the TokenRequest API.
 */
export async function serviceAccountKubeConfig(
  admin: KubeConfig,
  name: string,
  namespace: string,
  expirationSeconds: number,
): Promise<KubeConfig> {
  const request = await admin.makeApiClient(CoreV1Api).createNamespacedServiceAccountToken({
    name,
    namespace,
    body: { spec: { audiences: [], expirationSeconds } },
  });
  const cluster = admin.getCurrentCluster()!;
  const kc = new KubeConfig();
  kc.loadFromOptions({
    clusters: [{ name: 'local', server: cluster.server, caData: cluster.caData, caFile: cluster.caFile }],
    users: [{ name, token: request.status!.token }],
    contexts: [{ name, cluster: 'local', user: name, namespace }],
    currentContext: name,
  });
  return kc;
}

/** A GET with the kubeconfig's credentials, outside the generated client (for /readyz, /version). */
export async function rawGet(kc: KubeConfig, urlPath: string, timeoutMs = 5_000): Promise<{ status: number; body: string }> {
  const server = kc.getCurrentCluster()?.server;
  if (!server) throw new Error('kubeconfig has no current cluster');
  const options: https.RequestOptions = { method: 'GET', timeout: timeoutMs };
  await kc.applyToHTTPSOptions(options);
  return new Promise((resolve, reject) => {
    const req = https.request(new URL(urlPath, server), options, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => (body += chunk));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
      res.on('error', reject);
    });
    req.on('timeout', () => req.destroy(new Error(`GET ${urlPath} timed out after ${timeoutMs} ms`)));
    req.on('error', reject);
    req.end();
  });
}

/**
 * Why the cluster tests cannot run here, or undefined when the API server answers. The tests never
 * start the control plane themselves: `.ci/run` (or `npm run cluster:up`) does.
 */
export async function clusterUnavailable(): Promise<string | undefined> {
  if (!existsSync(kubeconfigPath)) return `no ${kubeconfigPath}; start the control plane with npm run cluster:up`;
  try {
    const { status, body } = await rawGet(adminKubeConfig(), '/readyz', 3_000);
    if (status !== 200) return `the API server in ${kubeconfigPath} is not ready (/readyz ${status}: ${body.trim()})`;
    return undefined;
  } catch (err) {
    return `the API server in ${kubeconfigPath} does not answer (${(err as Error).message}); start it with npm run cluster:up`;
  }
}

/** Polls `check` until it returns something other than undefined or false. */
export async function until<T>(what: string, check: () => Promise<T | undefined | false>, timeoutMs = 30_000, everyMs = 200): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let lastError: unknown;
  for (;;) {
    try {
      const value = await check();
      if (value !== undefined && value !== false) return value;
    } catch (err) {
      lastError = err;
    }
    if (Date.now() > deadline)
      throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}${lastError ? `: ${String(lastError)}` : ''}`);
    await new Promise((resolve) => setTimeout(resolve, everyMs));
  }
}

/** Deletes a namespace and waits until it is gone (its Jobs, pods and Secrets with it); false if it is still there after `timeoutMs`. */
export async function deleteNamespaceAndWait(core: CoreV1Api, name: string, timeoutMs: number): Promise<boolean> {
  await core.deleteNamespace({ name }).catch(() => {});
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    const gone = await core.readNamespace({ name }).then(
      () => false,
      (error: unknown) => (error as { code?: number }).code === 404,
    );
    if (gone) return true;
    await new Promise((resolve) => setTimeout(resolve, 500));
  }
  return false;
}
