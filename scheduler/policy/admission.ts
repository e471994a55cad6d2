import type { ProverProfile } from '../../contract/profile.js';
import { mayUseLane } from '../api/auth.js';
import { type Lane, type PromotionRule, promotionRuleFor } from '../lanes.js';
import type { Submitter } from '../store/submitters/submitters.js';

/** What of a submission admission looks at. */
export interface Submission {
  lane: string;
  promoteTo?: string | undefined;
  prover: string;
  targets: readonly string[];
  goals: readonly unknown[];
}

/** Why a submission is refused: the HTTP status, the message, and the field it names. */
export interface Refusal {
  status: 400 | 403;
  message: string;
  field: 'lane' | 'promoteTo' | 'targets' | 'goals' | 'prover';
  fieldMessage: string;
}

/** The lanes a submitter may submit to: those its token names, and only untrusted ones for an untrusted submitter. */
export function usableLanes(submitter: Submitter, lanes: readonly Lane[]): string[] {
  return lanes
    .filter((l) => mayUseLane(submitter, l.name) && (submitter.trust === 'trusted' || l.trust === 'untrusted'))
    .map((l) => l.name);
}

/**
 * Whether a submission (already valid in shape: its lane and prover are configured names) may be
 * queued, a pure decision: the submitter's lanes and trust, `promoteTo` only from an untrusted to
 * a trusted lane that is one of the submitter's lanes or a promotion rule's for it, targets for a prover without project builds, goals only for a prover that binds
 * them, no image-only prover on the local substrate. Quotas, which need the queue, are the store's.
 */
export function admissionRefusal(
  submission: Submission,
  context: {
    submitter: Submitter;
    lanes: readonly Lane[];
    profile: ProverProfile | undefined;
    substrateKind: string | undefined;
    promotion?: readonly PromotionRule[];
  },
): Refusal | null {
  const { submitter, lanes, profile } = context;
  const trustOf = (name: string) => lanes.find((l) => l.name === name)?.trust;
  const usable = usableLanes(submitter, lanes);
  if (!usable.includes(submission.lane)) {
    const allowed = usable.join(', ') || 'none';
    const why =
      submitter.trust === 'untrusted' && trustOf(submission.lane) === 'trusted'
        ? `untrusted submitter ${submitter.id} may not use trusted lane ${submission.lane}`
        : `submitter ${submitter.id} may not use lane ${submission.lane}`;
    return {
      status: 403,
      message: `${why}; allowed lanes: ${allowed}`,
      field: 'lane',
      fieldMessage: `not allowed for this token (allowed: ${allowed})`,
    };
  }
  if (submission.promoteTo !== undefined && (trustOf(submission.lane) !== 'untrusted' || trustOf(submission.promoteTo) !== 'trusted')) {
    return {
      status: 400,
      message: `promoteTo moves a job from an untrusted lane to a trusted one; ${submission.lane} is ${trustOf(submission.lane)} and ${submission.promoteTo} is ${trustOf(submission.promoteTo)}`,
      field: 'promoteTo',
      fieldMessage: 'must be a trusted lane, for a job submitted to an untrusted lane',
    };
  }
  // Its token's lanes bound where its jobs may ever run (a trusted one of them only by promotion),
  // and so do the operator's promotion rules that name it.
  const promotableTo = (lane: string) =>
    mayUseLane(submitter, lane) ||
    promotionRuleFor(context.promotion ?? [], { lane: submission.lane, promoteTo: lane, submitterId: submitter.id }) !== undefined;
  if (submission.promoteTo !== undefined && !promotableTo(submission.promoteTo)) {
    const promotable = lanes.filter((l) => l.trust === 'trusted' && promotableTo(l.name)).map((l) => l.name);
    const allowed = promotable.join(', ') || 'none';
    return {
      status: 403,
      message: `submitter ${submitter.id} may not be promoted to lane ${submission.promoteTo}; lanes it may be promoted to: ${allowed}`,
      field: 'promoteTo',
      fieldMessage: `not allowed for this token (allowed: ${allowed})`,
    };
  }
  if (profile && submission.targets.length === 0 && !profile.project) {
    return {
      status: 400,
      message: `prover ${submission.prover} needs targets`,
      field: 'targets',
      fieldMessage: `required: prover ${submission.prover} has no project builds to take them from`,
    };
  }
  if (profile && submission.goals.length > 0 && !profile.check.goals) {
    return {
      status: 400,
      message: `prover ${submission.prover} cannot bind goals to statements`,
      field: 'goals',
      fieldMessage: `not supported by prover ${submission.prover}`,
    };
  }
  if (profile && !profile.local && context.substrateKind === 'local') {
    return {
      status: 400,
      message: `prover ${submission.prover} does not run on the local substrate (it needs its Kubernetes image)`,
      field: 'prover',
      fieldMessage: 'not runnable on the local substrate',
    };
  }
  return null;
}

/**
 * The queue quota: a submitter with `waiting` jobs queued or awaiting approval may add one more
 * while it stays under `maxQueued`. Decided in the submit transaction, where the count is exact.
 */
export function overQueueQuota(waiting: number, quota: { maxQueued: number }): boolean {
  return waiting >= quota.maxQueued;
}
