import { chmodSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import pino from 'pino';
import { afterAll, describe, expect, it } from 'vitest';
import { proofRepo, runChaosScenario } from '../bench/chaos.js';
import { RestartablePostgres } from '../support/restartable-postgres.js';
import { clusterUnavailable } from '../support/cluster.js';

/**
 * The tiny run of `npm run chaos`'s Kubernetes scenario (docs/reliability.md): two replica
 * processes with the Kubernetes substrate on the local control plane, task pods deleted at random
 * mid-load; nothing lost, nothing twice, every job final. It does not restart kube-apiserver: the
 * other files of test/cluster share it and run at the same time. Skipped without the control plane.
 */
const skipReason = await clusterUnavailable();
const work = mkdtempSync(path.join(tmpdir(), 'proofpod-chaos-k8s-test-'));
chmodSync(work, 0o755);
let postgres: RestartablePostgres | undefined;
afterAll(async () => {
  await postgres?.stop();
  rmSync(work, { recursive: true, force: true });
});

describe.skipIf(skipReason !== undefined)(`the chaos run on Kubernetes, tiny${skipReason ? ` (skipped: ${skipReason})` : ''}`, () => {
  it('task pods deleted mid-load: every job final, none lost or doubled', async () => {
    postgres = await RestartablePostgres.start(path.join(work, 'postgres'), pino({ level: 'silent' }));
    const f = await runChaosScenario({
      scenario: 'kubernetes',
      postgres,
      work,
      repo: proofRepo(path.join(work, 'proofs')),
      jobs: 8,
      replicas: 2,
      ratePerSecond: 1,
      concurrency: 3,
      sandboxUids: { first: 722_000, count: 2_000 },
      deletePodEverySeconds: 2,
      restartApiserver: false,
      drainSeconds: 90,
      claims: { ttlSeconds: 4, heartbeatSeconds: 1 },
    });
    expect(f.submitted).toBe(8);
    expect(f.lost.absent).toEqual([]);
    expect(f.stuck).toEqual([]);
    expect(f.twoVerdicts).toEqual([]);
    expect(f.overlapping).toEqual([]);
    expect(Object.values(f.states).reduce((a, b) => a + b, 0)).toBe(8);
    expect(f.faults.every((x) => x.kind === 'pod deleted')).toBe(true);
  }, 180_000);
});
