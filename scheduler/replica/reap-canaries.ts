import { canonicalJson, sha256 } from '../../contract/canonical-json.js';
import { submitJob } from '../store/jobs/submit-job.js';
import { markProbed, probeWithOldestJob, proversDueCanary } from '../store/provers/prover-health.js';
import { ensureSubmitter } from '../store/submitters/submitters.js';
import type { ReplicaContext } from './context.js';

/** Who configured canary jobs are attributed to: the scheduler itself, never a token. */
export const CANARY_SUBMITTER = 'proofpod-canary';

/**
 * For each unhealthy profile due one (docs/operations.md, "Prover health"): its configured canary,
 * a known-good proof, as a job; without one, its oldest queued job is the probe. Either is
 * dispatched despite the profile's health, and at most one per `canaryIntervalSeconds`.
 */
export async function submitCanaries(ctx: ReplicaContext): Promise<void> {
  const { canaries, canaryIntervalSeconds } = ctx.config.proverHealth;
  const images = Object.fromEntries(ctx.config.provers.map((p) => [p.name, p.image]));
  const log = ctx.log.child({ component: 'reaper' });
  for (const prover of await proversDueCanary(ctx.sql, images, canaryIntervalSeconds)) {
    const canary = canaries[prover];
    if (!canary) {
      const probe = await probeWithOldestJob(ctx.sql, prover);
      if (probe !== undefined) {
        await markProbed(ctx.sql, prover);
        log.info({ prover, jobId: probe }, 'no canary configured: the oldest queued job of the unhealthy prover profile probes it');
      }
      continue;
    }
    await ensureSubmitter(ctx.sql, { id: CANARY_SUBMITTER, trust: 'trusted', lanes: ['*'], roles: [] });
    const request = { source: canary.source, prover, targets: canary.targets, lane: canary.lane, canary: true };
    const result = await submitJob(
      ctx.sql,
      {
        submitterId: CANARY_SUBMITTER,
        sourceUrl: canary.source.url,
        commitSha: canary.source.commit,
        subdirectory: canary.source.subdirectory ?? null,
        prover,
        targets: canary.targets,
        goals: [],
        lane: canary.lane,
        // Ahead of the lane's other jobs: it decides whether they may run at all.
        priority: 1000,
        labels: { 'proofpod.canary': prover },
        idempotencyKey: null,
        requestHash: sha256(canonicalJson(request)),
        promoteTo: null,
        concurrency: null,
        canary: true,
      },
      { maxQueued: Number.MAX_SAFE_INTEGER },
    );
    await markProbed(ctx.sql, prover);
    if (result.outcome === 'created')
      log.info({ prover, jobId: result.job.id, lane: canary.lane }, 'canary submitted for an unhealthy prover profile');
  }
}
