import { describe, expect, it } from 'vitest';
import { measureKubernetes } from '../bench/kubernetes.js';
import { clusterUnavailable } from '../support/cluster.js';

/** The tiny run of `npm run bench:k8s` (docs/benchmarks.md): 5 attempts a measure, one round, so the benchmark cannot rot. Skipped without the local control plane. */
const skipReason = await clusterUnavailable();

describe.skipIf(skipReason !== undefined)(`the Kubernetes benchmark${skipReason ? ` (skipped: ${skipReason})` : ''}`, () => {
  it('creates the plain pairs and has proofpod create one Job and Secret per attempt, from a queue and from a burst', async () => {
    const figures = await measureKubernetes(5, 1);
    expect(figures.rounds).toHaveLength(1);
    expect(figures.rounds[0]!.plain).toBeGreaterThan(0);
    expect(figures.rounds[0]!.proofpod).toBeGreaterThan(0);
    expect(figures.latencies).toHaveLength(5);
    expect(figures.burstPerSecond).toBeGreaterThan(0);
  }, 240_000);
});
