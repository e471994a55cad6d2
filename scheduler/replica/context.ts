import type { Logger } from 'pino';
import type { Config } from '../config.js';
import type { Sql } from '../database/connect.js';
import { type ProverProfile, profileForLane } from '../../contract/profile.js';
import type { Lane } from '../lanes.js';
import type { Metrics } from '../metrics.js';
import type { SigningKey } from '../attestation/signing-key.js';
import type { Substrate } from '../substrate/substrate.js';
import { CarriedLaunches } from './carried-launches.js';
import { LaunchPool } from './launch-pool.js';
import { SubstrateGate } from './substrate-gate.js';

/** What every stage of one scheduler replica shares. */
export interface ReplicaContext {
  sql: Sql;
  /** This replica's identity in claims: unique per process start. */
  holder: string;
  log: Logger;
  substrate: Substrate;
  config: Config;
  metrics: Metrics;
  lanes: ReadonlyMap<string, Lane>;
  /** Base URL task pods upload evidence to. */
  uploadBaseUrl: string;
  /** The launches in flight, across dispatch cycles (dispatcher.ts); a graceful stop drains it. */
  launches: LaunchPool;
  /** Which dispatching attempts held here a stage is carrying on; the watcher carries on the rest (carried-launches.ts). */
  carried: CarriedLaunches;
  /** What final verdicts are signed with (attestation/issue-attestation.ts). */
  signingKey: SigningKey;
  /** Closed while the substrate does not answer: dispatch claims nothing then (substrate-gate.ts). */
  substrateGate: SubstrateGate;
}

/**
 * The one way a replica's context is made (the app and the tests both use it): the configured
 * lanes by name, the base URL task pods upload to (`publicUrl` when set, else the server's), and
 * an empty launch pool of `dispatch.launchConcurrency` slots.
 */
export function createReplicaContext(deps: {
  sql: Sql;
  holder: string;
  log: Logger;
  substrate: Substrate;
  config: Config;
  metrics: Metrics;
  serverUrl: string;
  signingKey: SigningKey;
}): ReplicaContext {
  return {
    sql: deps.sql,
    holder: deps.holder,
    log: deps.log,
    substrate: deps.substrate,
    config: deps.config,
    metrics: deps.metrics,
    lanes: new Map(deps.config.lanes.map((lane) => [lane.name, lane])),
    uploadBaseUrl: deps.config.publicUrl?.replace(/\/$/, '') ?? deps.serverUrl,
    launches: new LaunchPool(
      deps.config.dispatch.launchConcurrency,
      deps.config.lanes.map((lane) => lane.name),
    ),
    carried: new CarriedLaunches(),
    signingKey: deps.signingKey,
    substrateGate: new SubstrateGate(deps.substrate, deps.log.child({ component: 'dispatch' })),
  };
}

export function laneOf(ctx: ReplicaContext, name: string): Lane {
  const lane = ctx.lanes.get(name);
  if (!lane) throw new Error(`lane ${name} is not configured; was it removed while jobs used it?`);
  return lane;
}

export function profileOf(ctx: ReplicaContext, name: string): ProverProfile {
  const profile = ctx.config.provers.find((p) => p.name === name);
  if (!profile) throw new Error(`prover profile ${name} is not configured; was it removed while jobs used it?`);
  return profile;
}

/** The prover profile as attempts in `laneName` run it (profileForLane): what is dispatched, recorded and judged. */
export function laneProfile(ctx: ReplicaContext, prover: string, laneName: string): ProverProfile {
  return profileForLane(profileOf(ctx, prover), laneOf(ctx, laneName));
}

/** Runs `fn` over `items` with at most `limit` in flight; never rejects (each fn handles its errors). */
export async function forEachLimit<T>(items: readonly T[], limit: number, fn: (item: T) => Promise<void>): Promise<void> {
  let next = 0;
  const workers = Array.from({ length: Math.min(limit, items.length) }, async () => {
    while (next < items.length) {
      const item = items[next++] as T;
      await fn(item);
    }
  });
  await Promise.all(workers);
}
