import { canonicalJson } from '../../contract/canonical-json.js';
import { type Evidence, dispatchedProfile } from '../../contract/evidence.js';
import type { ProverProfile } from '../../contract/profile.js';
import type { AttemptEnding } from '../job-states.js';

/** What the scheduler saw itself, from the substrate, of one container when the attempt finished. */
export interface ContainerObservation {
  exitCode: number | null;
  imageDigest: string | null;
}

/** The check container's observation and, when the profile has a build step, the build container's. */
export interface Observation {
  check: ContainerObservation;
  build: ContainerObservation | null;
}

/** What the scheduler dispatched: the job's source and targets, and the profile the attempt started with. */
export interface Dispatched {
  source: { url: string; commit: string; subdirectory: string | null };
  targets: readonly string[];
  profile: ProverProfile;
  /** The lane's allow-list of axioms when the attempt started. */
  allowedAxioms: readonly string[];
  /** The job's goals: theorems and the statements they must have. */
  goals: readonly { name: string; statement: string }[];
}

const shown = (value: unknown) => (typeof value === 'string' ? JSON.stringify(value) : (canonicalJson(value) ?? 'null')).slice(0, 300);
const error = (reason: string): AttemptEnding => ({ kind: 'error', jobState: 'error', reason });
const mismatch = (what: string, evidence: unknown, expected: unknown, by = 'dispatched') =>
  error(`${what} mismatch: evidence says ${shown(evidence)}, ${by} ${shown(expected)}`);

/**
 * Where the evidence and what the scheduler knows disagree, the first disagreement: the evidence
 * must describe exactly the attempt that was dispatched, and what the substrate observed must be
 * what the profile pins. Pure.
 */
function disagreement(evidence: Evidence, observed: Observation, dispatched: Dispatched): AttemptEnding | null {
  const { source, targets, profile } = dispatched;
  if (evidence.source.url !== source.url) return mismatch('source URL', evidence.source.url, source.url);
  if (evidence.source.commit !== source.commit) return mismatch('commit', evidence.source.commit, source.commit);
  if (evidence.source.subdirectory !== source.subdirectory)
    return mismatch('subdirectory', evidence.source.subdirectory, source.subdirectory);
  if (canonicalJson(evidence.targets) !== canonicalJson(targets)) return mismatch('targets', evidence.targets, targets);
  const expected = dispatchedProfile(profile);
  for (const key of Object.keys(expected) as (keyof typeof expected)[]) {
    if (canonicalJson(evidence.profile[key]) !== canonicalJson(expected[key]))
      return mismatch(`profile ${key}`, evidence.profile[key], expected[key]);
  }
  if (profile.build) {
    if (!observed.build) return error('the profile has a build step but the substrate observed no build container');
    if (observed.build.exitCode !== 0) return error(`the build container exited ${observed.build.exitCode}, observed by the substrate`);
  } else if (observed.build) {
    return error('the substrate observed a build container the profile does not have');
  }
  // Both run the profile's one image: a build of another image than the check's is not this profile's.
  if (observed.build?.imageDigest && observed.check.imageDigest && observed.build.imageDigest !== observed.check.imageDigest) {
    return error(
      `image digest mismatch: the build container ran ${observed.build.imageDigest}, the check container ${observed.check.imageDigest}`,
    );
  }
  const pinned = profile.pins.imageDigest;
  if (pinned && observed.check.imageDigest !== pinned) {
    return error(
      `image digest mismatch: the check container ran ${observed.check.imageDigest ?? 'an unknown image'}, the profile pins ${pinned}`,
    );
  }
  if (pinned && observed.build && observed.build.imageDigest !== pinned) {
    return error(
      `image digest mismatch: the build container ran ${observed.build.imageDigest ?? 'an unknown image'}, the profile pins ${pinned}`,
    );
  }
  if (evidence.outcome !== 'error') {
    if (canonicalJson(evidence.audit.allowedAxioms) !== canonicalJson(dispatched.allowedAxioms)) {
      return mismatch('allowed axioms', evidence.audit.allowedAxioms, dispatched.allowedAxioms);
    }
    const goals = evidence.goals.map((g) => ({ name: g.name, statement: g.statement }));
    if (canonicalJson(goals) !== canonicalJson(dispatched.goals)) return mismatch('goals', goals, dispatched.goals);
    // `allowed` is the allow-list's word on each finding, recomputed here rather than taken.
    const misjudged = evidence.audit.findings.find((f) => f.allowed !== (f.kind === 'axiom' && dispatched.allowedAxioms.includes(f.name)));
    if (misjudged)
      return error(
        `evidence marks ${misjudged.kind} ${misjudged.name} ${misjudged.allowed ? 'allowed' : 'not allowed'}, against the lane's allow-list`,
      );
  }
  for (const [program, digest] of Object.entries(profile.pins.binaries ?? {})) {
    const reported = evidence.check.binaryDigests[program];
    if (evidence.outcome !== 'error' && reported !== digest)
      return mismatch(`binary digest of ${program}`, reported ?? null, digest, 'the profile pins');
  }
  return null;
}

/**
 * The verdict from an accepted upload, cross-checked against the scheduler's own observation of
 * the attempt and against what it dispatched. Any disagreement is an error naming both values: an
 * upload cannot talk its way to `verified`.
 */
export function judge(evidence: Evidence, observed: Observation, dispatched: Dispatched): AttemptEnding {
  const disagrees = disagreement(evidence, observed, dispatched);
  if (disagrees) return disagrees;
  if (evidence.outcome === 'error') return error(`reporter reported an error: ${evidence.error ?? 'no reason given'}`);
  if (observed.check.exitCode === null) return error('substrate reported no exit code for the check container');
  if (evidence.check.exitCode !== observed.check.exitCode) {
    return mismatch('exit code', evidence.check.exitCode, observed.check.exitCode, 'substrate observed');
  }
  const paths = evidence.results.map((r) => r.path);
  if (dispatched.targets.length === 0) {
    // Every file of the project: the check read which from the committed project file.
    if (evidence.check.projectFile === null || paths.length === 0)
      return error('a job without targets needs results for the files of its project, and the evidence has none');
  } else if (canonicalJson(paths) !== canonicalJson(dispatched.targets)) {
    return mismatch('result targets', paths, dispatched.targets);
  }
  const refused = evidence.audit.findings.filter((f) => !f.allowed);
  if (evidence.outcome === 'pass') {
    if (observed.check.exitCode !== 0) return error(`evidence says pass but the check container exited ${observed.check.exitCode}`);
    if (evidence.results.some((t) => t.result !== 'pass')) return error('evidence says pass but not every target passed');
    if (refused.length > 0) return error('evidence says pass but the audit has findings the lane does not allow');
    if (evidence.goals.some((g) => g.result !== 'proved')) return error('evidence says pass but not every goal was proved');
    if (dispatched.profile.check.second) {
      if (evidence.check.secondVersion === null)
        return error('evidence says pass but names no version of the second checker the lane requires');
      if (evidence.results.some((t) => t.second?.result !== 'pass'))
        return error('evidence says pass but the second checker the lane requires did not pass every target');
    }
    const allowed = evidence.audit.findings.length;
    const goals = evidence.goals.length ? `, ${evidence.goals.length} goal(s) proved` : '';
    return {
      kind: 'verdict',
      jobState: 'verified',
      reason: `verified: ${evidence.results.length} target(s) passed${goals}${allowed ? `, relying on ${allowed} allowed axiom(s)` : ''}`,
    };
  }
  const failed = evidence.results.filter((t) => t.result !== 'pass').map((t) => `${t.path}${t.reason ? ` (${t.reason})` : ''}`);
  const unproved = evidence.goals.filter((g) => g.result !== 'proved').map((g) => `goal ${g.name} (${g.reason ?? 'not proved'})`);
  const parts = [
    ...(failed.length ? [failed.join(', ')] : []),
    ...(refused.length ? [`audit found ${refused.map((f) => `${f.kind} ${f.name}`).join(', ')}`] : []),
    ...unproved,
  ];
  return { kind: 'verdict', jobState: 'rejected', reason: `rejected: ${parts.join('; ') || 'by the profile policy'}` };
}
