import * as z from 'zod';

export const sha256Digest = z.string().regex(/^sha256:[0-9a-f]{64}$/, 'must be sha256:<64 hex>');
const timestamp = z.iso.datetime({ offset: true });
const command = z.array(z.string().max(4096)).min(1).max(256);

const checkerRun = {
  result: z.enum(['pass', 'fail', 'error']),
  /** The checker's exit code; null when it did not run (the build failed, our reader refused the target, or it could not start). */
  exitCode: z.number().int().nullable(),
  durationMs: z.number().int().min(0),
  /** Why a target did not pass (the build failed, the reader refused it, the pass rule it broke); null when it passed. */
  reason: z.string().max(2000).nullable(),
  /** SHA-256 of the proof the checker printed after its answer (cvc5's), when its pass rule has one; else null. */
  proofDigest: sha256Digest.nullable(),
};

/** The second checker's run over one target (profile `check.second`, in lanes that require it). */
export const SecondCheckSchema = z.strictObject(checkerRun);

export const TargetResultSchema = z.strictObject({
  path: z.string().min(1).max(1024),
  ...checkerRun,
  /** The second checker's run; null when the lane requires none, or when the first never ran. */
  second: SecondCheckSchema.nullable(),
});

/**
 * What the audit found a checked target to assume: an axiom (declared, or a lemma left admitted:
 * coqchk lists both), a constant relying on type-in-type or on an unsafe (co)fixpoint, an inductive
 * whose positivity is assumed, an impredicative Set. Only an axiom on the lane's allow-list is
 * `allowed`; every other finding rejects the proof.
 */
export const findingKinds = ['axiom', 'type-in-type', 'unsafe-fixpoint', 'assumed-positivity', 'impredicative-set'] as const;

export const FindingSchema = z.strictObject({
  kind: z.enum(findingKinds),
  name: z.string().min(1).max(1024),
  target: z.string().max(1024).nullable(),
  allowed: z.boolean(),
});
export type Finding = z.infer<typeof FindingSchema>;

/** A theorem a job names, with the statement it must have (elaborated with the standard library only). */
export const GoalSchema = z.strictObject({
  name: z
    .string()
    .regex(/^[A-Za-z_][A-Za-z0-9_']*(\.[A-Za-z_][A-Za-z0-9_']*)+$/, 'must be a qualified name such as MyLib.Foo.main_thm')
    .max(500),
  statement: z
    .string()
    .min(1)
    .max(10_000)
    // One term, never a sentence: no full stop before a space or the end, no comment, nothing unprintable.
    .refine(
      (s) => !/\.(\s|$)/.test(s) && !s.includes('(*') && !s.includes('*)') && !/[\x00-\x08\x0b-\x1f\x7f]/.test(s),
      'must be one Coq term: no sentence end, comment or control character',
    ),
});
export type Goal = z.infer<typeof GoalSchema>;

export const GoalResultSchema = z.strictObject({
  name: z.string().min(1).max(500),
  statement: z.string().min(1).max(10_000),
  result: z.enum(['proved', 'failed']),
  /** Why the named constant does not prove the statement; null when it does. */
  reason: z.string().max(2000).nullable(),
});

/** Axioms a lane allows (fully qualified names), as the check was given them. */
export const AllowedAxiomsSchema = z.array(z.string().min(1).max(500)).max(1000);

export const LogSummarySchema = z.strictObject({
  /** Digest of the full log, computed by the check wrapper from the stream itself. */
  digest: sha256Digest,
  bytes: z.number().int().min(0),
  /** Head and tail of the log, at most 16 KiB. */
  excerpt: z.string().max(16 * 1024),
  truncated: z.boolean(),
});

/**
 * What the attempt was told to do, repeated by the reporter from its own environment: the judge
 * refuses evidence whose profile differs from the one the scheduler dispatched.
 */
export const DispatchedProfileSchema = z.strictObject({
  name: z.string().min(1).max(64),
  build: command.nullable(),
  checkInput: z.enum(['source', 'artifacts']),
  check: command,
  /** The second checker's command; null when the attempt's lane requires none. */
  second: command.nullable(),
  /** Our reader of the source targets, with the reference database's digest it pins; null without one. */
  read: z.strictObject({ format: z.enum(['smt-lib', 'metamath']), reference: sha256Digest.nullable() }).nullable(),
  audit: z.strictObject({ parser: z.literal('coqchk'), command: command.nullable() }).nullable(),
  project: z
    .strictObject({ format: z.literal('coq-project'), file: z.string().min(1).max(200), build: command, check: command })
    .nullable(),
  libraries: z.array(z.string().min(1).max(100)).max(100),
});

/**
 * The reporter's evidence, shared by the reporter that builds it and the scheduler that accepts it
 * (docs/security.md, "Results"). Every field is required: what the reporter could not observe is
 * an explicit null (only allowed with outcome `error`), never a missing field and never a default.
 */
export const EvidenceSchema = z
  .strictObject({
    schemaVersion: z.literal(3),
    jobId: z.uuid(),
    attemptNo: z.number().int().min(1),
    source: z.strictObject({
      url: z.string().min(1).max(2048),
      commit: z.string().regex(/^[0-9a-f]{40}$/, 'must be 40 lowercase hex characters'),
      treeHash: z.string().regex(/^[0-9a-f]{40}$/, 'must be 40 lowercase hex characters'),
      subdirectory: z.string().max(1024).nullable(),
    }),
    /** The targets the attempt was given, in order. */
    /** The targets the attempt was given, in order; empty when a project build checks every file of its project. */
    targets: z.array(z.string().min(1).max(1024)).max(1000),
    profile: DispatchedProfileSchema,
    check: z.strictObject({
      version: z.string().min(1).max(2000).nullable(),
      /** The second checker's version; null when the lane requires none. */
      secondVersion: z.string().min(1).max(2000).nullable(),
      /** The project file the check read its logical names from (e.g. `_CoqProject`); null without one. */
      projectFile: z.string().max(200).nullable(),
      /** The profile's libraries as installed in the image: package version and a digest of their `.vo` files. */
      libraries: z
        .array(
          z.strictObject({
            name: z.string().min(1).max(100),
            package: z.string().min(1).max(200),
            version: z.string().min(1).max(200),
            digest: sha256Digest,
          }),
        )
        .max(100),
      /** SHA-256 of each checker program that ran, by the name its command gives. */
      binaryDigests: z.record(z.string().min(1).max(200), sha256Digest),
      /** The check container's exit code, as its wrapper exited. */
      exitCode: z.number().int().nullable(),
      startedAt: timestamp.nullable(),
      finishedAt: timestamp.nullable(),
      durationMs: z.number().int().min(0).nullable(),
    }),
    logs: LogSummarySchema.nullable(),
    /** One per target, in the order of `targets`. */
    results: z.array(TargetResultSchema).max(1000),
    audit: z.strictObject({
      allowedAxioms: AllowedAxiomsSchema,
      findings: z.array(FindingSchema).max(10_000),
    }),
    /** One per goal of the job, in its order; empty for a job without goals. */
    goals: z.array(GoalResultSchema).max(100),
    /** The check wrapper's reading of the result under the profile's rules. */
    outcome: z.enum(['pass', 'fail', 'error']),
    /** Why the outcome is `error` (e.g. the checker produced nothing before the deadline); else null. */
    error: z.string().max(4000).nullable(),
  })
  .superRefine((evidence, ctx) => {
    if (evidence.outcome === 'error') return;
    const required: [string, unknown][] = [
      ['check.version', evidence.check.version],
      ['check.exitCode', evidence.check.exitCode],
      ['check.startedAt', evidence.check.startedAt],
      ['check.finishedAt', evidence.check.finishedAt],
      ['check.durationMs', evidence.check.durationMs],
      ['logs', evidence.logs],
    ];
    for (const [field, value] of required) {
      if (value === null) ctx.addIssue({ code: 'custom', path: field.split('.'), message: `required for outcome ${evidence.outcome}` });
    }
    if (evidence.results.length === 0)
      ctx.addIssue({ code: 'custom', path: ['results'], message: `required for outcome ${evidence.outcome}` });
  });
export type Evidence = z.infer<typeof EvidenceSchema>;
export type DispatchedProfile = z.infer<typeof DispatchedProfileSchema>;

/** What of a profile the evidence repeats, so the judge can compare it with what was dispatched. */
export function dispatchedProfile(profile: {
  name: string;
  build?: { command: string[] } | undefined;
  check: {
    input: 'source' | 'artifacts';
    command: string[];
    second?: { command: string[] } | undefined;
    read?: { format: 'smt-lib' } | { format: 'metamath'; reference: { digest: string } } | undefined;
    audit?: { parser: 'coqchk'; command?: string[] | undefined } | undefined;
  };
  project?: { format: 'coq-project'; file: string; build: string[]; check: string[] } | undefined;
  libraries?: { name: string }[] | undefined;
}): DispatchedProfile {
  return {
    name: profile.name,
    build: profile.build?.command ?? null,
    checkInput: profile.check.input,
    check: profile.check.command,
    second: profile.check.second?.command ?? null,
    read: profile.check.read
      ? {
          format: profile.check.read.format,
          reference: profile.check.read.format === 'metamath' ? profile.check.read.reference.digest : null,
        }
      : null,
    audit: profile.check.audit ? { parser: profile.check.audit.parser, command: profile.check.audit.command ?? null } : null,
    project: profile.project
      ? { format: profile.project.format, file: profile.project.file, build: profile.project.build, check: profile.project.check }
      : null,
    libraries: (profile.libraries ?? []).map((l) => l.name),
  };
}
