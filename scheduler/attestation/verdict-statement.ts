import * as z from 'zod';
import { canonicalJson, sha256 } from '../../contract/canonical-json.js';
import {
  AllowedAxiomsSchema,
  DispatchedProfileSchema,
  type Evidence,
  FindingSchema,
  GoalResultSchema,
  TargetResultSchema,
  dispatchedProfile,
  sha256Digest,
} from '../../contract/evidence.js';
import type { Dispatched, Observation } from '../evidence/judge.js';

/**
 * The signed statement of a final verdict (docs/security.md, "Signed verdicts"): an in-toto
 * Statement v1 whose subject is the source commit, with the in-toto Test Result predicate. That
 * predicate is the published one that fits a proof check: each target and goal is a named test
 * (`passedTests`/`failedTests`), an axiom the policy allowed is a warning (`WARNED`), and the
 * policy, profile, images and evidence are the run's `configuration`. Its spec allows extending
 * it; the verdict's details a verifier may need to decide (the allow-list, the findings, the
 * checker versions) are in the `proofpod` field, and the configuration digests bind them.
 */
export const STATEMENT_TYPE = 'https://in-toto.io/Statement/v1';
export const PREDICATE_TYPE = 'https://in-toto.io/attestation/test-result/v0.1';
export const PAYLOAD_TYPE = 'application/vnd.in-toto+json';

const gitObject = z.string().regex(/^[0-9a-f]{40}$/, 'must be 40 lowercase hex characters');

const ResourceDescriptorSchema = z.strictObject({
  name: z.string().min(1),
  uri: z.string().min(1).optional(),
  digest: z.record(z.string(), z.string()),
  mediaType: z.string().optional(),
});

/** What a verdict was judged under: the lane, its allow-list of axioms, whether a second checker was required, the profile's pins. */
export const VerdictPolicySchema = z.strictObject({
  lane: z.string().min(1),
  allowedAxioms: AllowedAxiomsSchema,
  secondChecker: z.boolean(),
  pins: z.strictObject({ imageDigest: sha256Digest.nullable(), binaries: z.record(z.string(), sha256Digest) }),
});
export type VerdictPolicy = z.infer<typeof VerdictPolicySchema>;

export const VerdictDetailsSchema = z.strictObject({
  verdict: z.enum(['verified', 'rejected']),
  reason: z.string(),
  job: z.strictObject({ id: z.uuid(), attemptNo: z.number().int().min(1), url: z.string().nullable() }),
  source: z.strictObject({ url: z.string().min(1), commit: gitObject, treeHash: gitObject, subdirectory: z.string().nullable() }),
  targets: z.array(z.string()),
  profile: DispatchedProfileSchema,
  checker: z.strictObject({
    version: z.string().nullable(),
    secondVersion: z.string().nullable(),
    binaryDigests: z.record(z.string(), sha256Digest),
    libraries: z.array(z.strictObject({ name: z.string(), package: z.string(), version: z.string(), digest: sha256Digest })),
    image: z.string(),
    /** As the substrate observed them, not as requested. */
    imageDigests: z.strictObject({ check: sha256Digest.nullable(), build: sha256Digest.nullable() }),
  }),
  policy: VerdictPolicySchema,
  results: z.array(TargetResultSchema),
  findings: z.array(FindingSchema),
  goals: z.array(GoalResultSchema),
  evidence: z.strictObject({ digest: sha256Digest }),
  issuedAt: z.iso.datetime({ offset: true }),
});
export type VerdictDetails = z.infer<typeof VerdictDetailsSchema>;

export const VerdictStatementSchema = z.strictObject({
  _type: z.literal(STATEMENT_TYPE),
  subject: z
    .array(z.strictObject({ name: z.string().min(1), digest: z.strictObject({ gitCommit: gitObject, gitTree: gitObject }) }))
    .length(1),
  predicateType: z.literal(PREDICATE_TYPE),
  predicate: z.strictObject({
    result: z.enum(['PASSED', 'WARNED', 'FAILED']),
    configuration: z.array(ResourceDescriptorSchema).min(1),
    url: z.string().optional(),
    passedTests: z.array(z.string()),
    warnedTests: z.array(z.string()),
    failedTests: z.array(z.string()),
    proofpod: VerdictDetailsSchema,
  }),
});
export type VerdictStatement = z.infer<typeof VerdictStatementSchema>;

/** Everything a final verdict is issued from; all of it the scheduler's own record or the judged evidence. */
export interface VerdictFacts {
  verdict: 'verified' | 'rejected';
  reason: string;
  jobId: string;
  attemptNo: number;
  lane: string;
  /** The job's URL on this scheduler's public address; null without `publicUrl`. */
  jobUrl: string | null;
  evidence: Evidence;
  evidenceDigest: string;
  observed: Observation;
  dispatched: Dispatched;
  issuedAt: Date;
}

/** `sha256:<hex>` as an in-toto digest set's value. */
const hexOf = (digest: string) => digest.replace(/^sha256:/, '');
/** The digest a configuration descriptor gives for a part of the details: of its canonical JSON. */
export const partDigest = (value: unknown) => sha256(canonicalJson(value)).toString('hex');

/** The in-toto test names of a verdict: `target:<path>`, `goal:<name>`, `audit:<kind>:<name>`. */
function testNames(evidence: Evidence): { passed: string[]; warned: string[]; failed: string[] } {
  const passed: string[] = [];
  const warned: string[] = [];
  const failed: string[] = [];
  for (const t of evidence.results)
    (t.result === 'pass' && (t.second?.result ?? 'pass') === 'pass' ? passed : failed).push(`target:${t.path}`);
  for (const g of evidence.goals) (g.result === 'proved' ? passed : failed).push(`goal:${g.name}`);
  for (const f of evidence.audit.findings) (f.allowed ? warned : failed).push(`audit:${f.kind}:${f.name}`);
  return { passed, warned, failed };
}

/** The statement of a verdict. Pure: the same facts give the same statement, byte for byte. */
export function verdictStatement(facts: VerdictFacts): VerdictStatement {
  const { evidence, dispatched, observed } = facts;
  const profile = dispatchedProfile(dispatched.profile);
  const policy: VerdictPolicy = {
    lane: facts.lane,
    allowedAxioms: [...dispatched.allowedAxioms],
    secondChecker: profile.second !== null,
    pins: { imageDigest: dispatched.profile.pins.imageDigest ?? null, binaries: dispatched.profile.pins.binaries ?? {} },
  };
  const details: VerdictDetails = {
    verdict: facts.verdict,
    reason: facts.reason,
    job: { id: facts.jobId, attemptNo: facts.attemptNo, url: facts.jobUrl },
    source: { ...evidence.source },
    targets: [...evidence.targets],
    profile,
    checker: {
      version: evidence.check.version,
      secondVersion: evidence.check.secondVersion,
      binaryDigests: evidence.check.binaryDigests,
      libraries: evidence.check.libraries,
      image: dispatched.profile.image,
      imageDigests: { check: observed.check.imageDigest, build: observed.build?.imageDigest ?? null },
    },
    policy,
    results: evidence.results,
    findings: evidence.audit.findings,
    goals: evidence.goals,
    evidence: { digest: facts.evidenceDigest },
    issuedAt: facts.issuedAt.toISOString(),
  };
  const tests = testNames(evidence);
  const images = (['check', 'build'] as const).flatMap((container) => {
    const digest = details.checker.imageDigests[container];
    return digest ? [{ name: `image:${container}`, uri: dispatched.profile.image, digest: { sha256: hexOf(digest) } }] : [];
  });
  return {
    _type: STATEMENT_TYPE,
    subject: [{ name: evidence.source.url, digest: { gitCommit: evidence.source.commit, gitTree: evidence.source.treeHash } }],
    predicateType: PREDICATE_TYPE,
    predicate: {
      result: facts.verdict === 'rejected' ? 'FAILED' : tests.warned.length ? 'WARNED' : 'PASSED',
      configuration: [
        { name: 'policy', mediaType: 'application/json', digest: { sha256: partDigest(policy) } },
        { name: `profile:${profile.name}`, mediaType: 'application/json', digest: { sha256: partDigest(profile) } },
        ...images,
        {
          name: 'evidence',
          ...(facts.jobUrl ? { uri: `${facts.jobUrl}/evidence` } : {}),
          mediaType: 'application/json',
          digest: { sha256: hexOf(facts.evidenceDigest) },
        },
      ],
      ...(facts.jobUrl ? { url: facts.jobUrl } : {}),
      passedTests: tests.passed,
      warnedTests: tests.warned,
      failedTests: tests.failed,
      proofpod: details,
    },
  };
}
