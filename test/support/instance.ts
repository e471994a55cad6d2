import { generateKeyPairSync } from 'node:crypto';
import { signingKeyFromPem } from '../../scheduler/attestation/signing-key.js';
import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import pino from 'pino';
import { type Proofpod, startProofpod } from '../../scheduler/app.js';
import { type ConfigInput, parseConfig } from '../../scheduler/config.js';
import type { Substrate } from '../../scheduler/substrate/substrate.js';
import type { Sql } from '../../scheduler/database/connect.js';
import { type ReplicaContext, createReplicaContext } from '../../scheduler/replica/context.js';
import { createMetrics } from '../../scheduler/metrics.js';
import { track } from './leaks.js';

/** Fast loops for tests: leases of 2 s, dispatch and sweeps every 0.2-0.5 s. */
export const fastLoops = {
  claims: { ttlSeconds: 2, heartbeatSeconds: 0.5 },
  dispatch: { intervalSeconds: 0.2, batchSize: 50 },
  reaper: { intervalSeconds: 0.5, evidenceGraceSeconds: 30 },
} satisfies ConfigInput;

/** A real proofpod (API server, loops) on port 0 against the given database. */
export async function startInstance(
  databaseUrl: string | undefined,
  overrides: ConfigInput = {},
  options: { substrate?: Substrate; log?: pino.Logger } = {},
): Promise<Proofpod> {
  const home = overrides.home ?? (await mkdtemp(path.join(tmpdir(), 'proofpod-test-home-')));
  // API only unless a test asks for a substrate: most tests drive attempts themselves or with a fake.
  const config = parseConfig({
    port: 0,
    logLevel: 'silent',
    home,
    substrate: 'none',
    ...(databaseUrl ? { databaseUrl } : {}),
    ...overrides,
  });
  return track(
    await startProofpod(config, { substrate: options.substrate, log: options.log ?? pino({ level: 'silent' }), print: () => {} }),
  );
}

export interface ApiResponse<T = unknown> {
  status: number;
  body: T;
  headers: Headers;
}

/** A small HTTP client for the API under test. */
// biome-ignore lint/suspicious/noExplicitAny: tests read the fields of the API's JSON answers they assert on
export async function call<T = any>(
  baseUrl: string,
  method: string,
  urlPath: string,
  options: { token?: string; body?: unknown; rawBody?: string; headers?: Record<string, string> } = {},
): Promise<ApiResponse<T>> {
  const headers: Record<string, string> = { ...options.headers };
  if (options.token) headers.authorization = `Bearer ${options.token}`;
  let body: string | undefined = options.rawBody;
  if (options.body !== undefined) body = JSON.stringify(options.body);
  if (body !== undefined) headers['content-type'] ??= 'application/json';
  const response = await fetch(`${baseUrl}${urlPath}`, { method, headers, body });
  const text = await response.text();
  let parsed: unknown = text;
  try {
    parsed = JSON.parse(text);
  } catch {
    // not JSON (e.g. /metrics)
  }
  return { status: response.status, body: parsed as T, headers: response.headers };
}

export function jobRequest(overrides: Record<string, unknown> = {}) {
  return {
    source: { url: 'https://example.org/proofs.git', commit: '0123456789abcdef0123456789abcdef01234567' },
    prover: 'coq',
    targets: ['Main.v'],
    lane: 'verify',
    ...overrides,
  };
}

export async function waitFor(what: string, check: () => Promise<boolean>, timeoutMs = 30_000, everyMs = 100): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (await check()) return;
    await new Promise((resolve) => setTimeout(resolve, everyMs));
  }
  throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
}

/** A signing key of the tests' own, in memory: for replica contexts made by hand. */
export const testSigningKey = signingKeyFromPem(
  generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey.export({ type: 'pkcs8', format: 'pem' }).toString(),
  'test key',
);

/** A replica's context without a running replica: for tests that drive a loop stage by hand. */
export function replicaContext(databaseUrl: string, sql: Sql, substrate: Substrate, holder: string): ReplicaContext {
  const config = parseConfig({ ...fastLoops, databaseUrl });
  return createReplicaContext({
    sql,
    holder,
    log: pino({ level: 'silent' }),
    substrate,
    config,
    metrics: createMetrics(sql),
    serverUrl: 'http://127.0.0.1:9',
    signingKey: testSigningKey,
  });
}
