import { describe, expect, it } from 'vitest';
import { measureKubernetes } from '../bench/kubernetes.js';
import { clusterUnavailable } from '../support/cluster.js';

/** The tiny run of `npm run bench:k8s` (docs/benchmarks.md): 5 Jobs, so the benchmark cannot rot. Skipped without the local control plane. */
const skipReason = await clusterUnavailable();

describe.skipIf(skipReason !== undefined)(`the Kubernetes benchmark${skipReason ? ` (skipped: ${skipReason})` : ''}`, () => {
  it('creates the plain Jobs and has proofpod create one Job per submission', async () => {
    const figures = await measureKubernetes(5);
    expect(figures.latencies).toHaveLength(5);
    expect(figures.plainPerSecond).toBeGreaterThan(0);
    expect(figures.proofpodPerSecond).toBeGreaterThan(0);
  }, 120_000);
});
