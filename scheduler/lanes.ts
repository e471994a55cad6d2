import * as z from 'zod';

const dnsLabel = z.string().regex(/^[a-z]([-a-z0-9]{0,30}[a-z0-9])?$/, 'must be a lowercase DNS label of at most 32 characters');

/** A Kubernetes quantity ("500m", "2Gi", "1"). */
const quantity = z.union([
  z.string().regex(/^[0-9]+(\.[0-9]+)?([eE][-+]?[0-9]+|[kMGTPE]i?|m)?$/, 'must be a Kubernetes quantity such as 500m or 2Gi'),
  z.number().positive(),
]);
const resourceList = z.record(z.string().min(1), quantity);

const TolerationSchema = z.strictObject({
  key: z.string().optional(),
  operator: z.enum(['Exists', 'Equal']).optional(),
  value: z.string().optional(),
  effect: z.enum(['NoSchedule', 'PreferNoSchedule', 'NoExecute']).optional(),
  tolerationSeconds: z.number().int().optional(),
});

/** A capacity pool: how many attempts may run at once, for whom, where, and for how long. */
export const LaneSchema = z.strictObject({
  name: dnsLabel,
  trust: z.enum(['untrusted', 'trusted']),
  concurrency: z.number().int().min(1).max(10_000),
  maxDeadlineSeconds: z
    .number()
    .int()
    .min(10)
    .max(7 * 24 * 3600)
    .default(3600),
  /**
   * Longest a build step may take (each target's, or the project's), in seconds: past it the build
   * is stopped and its targets fail, naming the limit. Unset: only the attempt's deadline bounds it.
   */
  buildTimeoutSeconds: z
    .number()
    .int()
    .min(10)
    .max(7 * 24 * 3600)
    .optional(),
  /**
   * Longest a job that passed this lane may wait in `awaiting_approval` for its promotion, in
   * seconds: past it the reaper ends it `cancelled`, saying so. Unset: it waits until approved or
   * cancelled.
   */
  awaitingApprovalSeconds: z
    .number()
    .int()
    .min(1)
    .max(90 * 24 * 3600)
    .optional(),
  /** Infrastructure retries after the first attempt in this lane (lease expiry, vanished attempt, …). */
  retryLimit: z.number().int().min(0).max(20).default(2),
  /** Requests and limits of the build and check containers of this lane's attempts (on the local substrate: their memory and CPU limits). */
  resources: z.strictObject({ requests: resourceList.optional(), limits: resourceList.optional() }).optional(),
  /**
   * Axioms (fully qualified names, e.g. `Coq.Logic.Classical_Prop.classic`) a proof in this lane may
   * rely on. Every other finding of the audit — any other axiom or admitted lemma, type-in-type, an
   * unsafe fixpoint, assumed positivity, an impredicative Set — rejects it.
   */
  allowedAxioms: z.array(z.string().min(1).max(500)).max(1000).default([]),
  /**
   * Whether the profile's second, independent checker (metamath C beside metamath-rs, cvc5 beside
   * z3) also checks every target, and both must pass: a disagreement is an `error` naming both
   * outputs. Profiles without one check as before.
   */
  secondChecker: z.boolean().default(false),
  /** Placement of this lane's attempt pods: e.g. a node pool of its own. */
  nodeSelector: z.record(z.string().min(1), z.string()).optional(),
  tolerations: z.array(TolerationSchema).optional(),
});
export type Lane = z.infer<typeof LaneSchema>;

export const defaultLanes: Lane[] = [
  { name: 'intake', trust: 'untrusted', concurrency: 4, maxDeadlineSeconds: 900, retryLimit: 1, allowedAxioms: [], secondChecker: false },
  { name: 'verify', trust: 'trusted', concurrency: 8, maxDeadlineSeconds: 3600, retryLimit: 2, allowedAxioms: [], secondChecker: false },
  { name: 'audit', trust: 'trusted', concurrency: 2, maxDeadlineSeconds: 7200, retryLimit: 2, allowedAxioms: [], secondChecker: true },
  { name: 'replay', trust: 'trusted', concurrency: 2, maxDeadlineSeconds: 7200, retryLimit: 2, allowedAxioms: [], secondChecker: true },
];

/**
 * A policy rule that promotes a job which passed `from` to the trusted lane `to` without an
 * approver: for the submitters it names, or for every submitter when it names none.
 */
export const PromotionRuleSchema = z.strictObject({
  name: dnsLabel,
  from: dnsLabel,
  to: dnsLabel,
  submitters: z.array(z.string().min(1)).min(1).optional(),
});
export type PromotionRule = z.infer<typeof PromotionRuleSchema>;

/** The rule that promotes this job automatically, if any. */
export function promotionRuleFor(
  rules: readonly PromotionRule[],
  job: { lane: string; promoteTo: string; submitterId: string },
): PromotionRule | undefined {
  return rules.find((r) => r.from === job.lane && r.to === job.promoteTo && (!r.submitters || r.submitters.includes(job.submitterId)));
}

const QuotaSchema = z.strictObject({
  /** Jobs waiting (queued or awaiting approval) at once; one more is a 429. */
  maxQueued: z.number().int().min(1),
  /** Attempts in flight at once, across lanes; more wait in the queue. */
  maxRunning: z.number().int().min(1),
});

export const QuotasSchema = z.strictObject({
  maxQueued: z.number().int().min(1).default(10_000),
  maxRunning: z.number().int().min(1).default(100),
  /** What a 429 tells the client to wait before trying again. */
  retryAfterSeconds: z.number().int().min(1).max(3600).default(30),
  /** Per-submitter limits instead of the defaults above. */
  submitters: z.record(z.string().min(1), QuotaSchema).default({}),
});
export type Quotas = z.infer<typeof QuotasSchema>;

export function quotaFor(quotas: Quotas, submitterId: string): { maxQueued: number; maxRunning: number } {
  return quotas.submitters[submitterId] ?? { maxQueued: quotas.maxQueued, maxRunning: quotas.maxRunning };
}
