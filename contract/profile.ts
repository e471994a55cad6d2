import * as z from 'zod';
import { sha256Digest } from './evidence.js';

const command = z.array(z.string().max(1000)).min(1).max(64);
const regex = z
  .string()
  .max(500)
  .refine((source) => {
    try {
      new RegExp(source, 'm');
      return true;
    } catch {
      return false;
    }
  }, 'must be a valid regular expression');

const passRule = z
  .strictObject({
    /** The target's output must match this (e.g. `^All proofs in the database were verified`). */
    outputMatches: regex.optional(),
    /** Any match in the output fails the target (for provers that exit 0 on errors). */
    outputRejects: regex.optional(),
    /** The checker's whole output, less one final newline, must be exactly this (e.g. `unsat`). */
    outputEquals: z.string().min(1).max(200).optional(),
    /**
     * With `outputEquals`: only the output's first line must be it; what follows is the checker's
     * proof, whose SHA-256 the evidence records.
     */
    proofFollows: z.boolean().default(false),
    /** For a target that did not pass: the first match of this in the output goes into its reason (e.g. the checker naming a postulate). */
    explain: regex.optional(),
  })
  .default({ proofFollows: false })
  .refine((pass) => !pass.proofFollows || pass.outputEquals !== undefined, {
    path: ['proofFollows'],
    message: 'needs outputEquals: the line the proof follows',
  });

/**
 * How to verify with one prover. Profiles are data: adding a prover is a configuration change,
 * never a code branch. In commands, `{target}` stands for one target path and `{module}` for it
 * without extension, with `/` turned into `.` (Coq's logical names).
 *
 * A profile has two steps in two containers (docs/architecture.md, "The task pod"): `build`, which
 * may run proof code and is trusted for nothing, and `check`, which runs only the checker and the
 * audit, on read-only inputs, after every process of the build is gone.
 */
export const ProverProfileSchema = z
  .strictObject({
    name: z.string().regex(/^[a-z][-a-z0-9]{0,30}$/, 'must be a lowercase name of at most 31 characters'),
    description: z.string().max(500).default(''),
    /** The image of both the build and the check container. */
    image: z.string().min(1).max(500),
    /** Prints the checker's version (run in the check container); its first line goes into the evidence. */
    versionCommand: command,
    /**
     * Untrusted: run once per target, in the build container, in a copy of the source in the
     * artifacts volume (so it may write beside the sources). Omitted: provers that run no proof
     * code (Metamath, SMT) have no build container.
     */
    build: z.strictObject({ command }).optional(),
    /** Trusted: the checker, once per target, in the check container. */
    check: z.strictObject({
      /**
       * Our own reader of each source target, run before any checker sees it (docs/security.md,
       * "Readers"): `smt-lib` — one obligation in a safe subset of SMT-LIB, re-printed by us, and that
       * re-printing is what the checkers read (task-pod/smtlib-obligation.ts); `metamath` — includes
       * stay inside the source, and every logical axiom (`$a` with typecode `|-`) must be identical
       * to one of the pinned `reference` database's (task-pod/metamath-database.ts); any other is an
       * `axiom` finding.
       */
      read: z
        .discriminatedUnion('format', [
          z.strictObject({ format: z.literal('smt-lib') }),
          z.strictObject({
            format: z.literal('metamath'),
            reference: z.strictObject({ path: z.string().startsWith('/'), digest: sha256Digest }),
          }),
        ])
        .optional(),
      /**
       * Source files (paths matching this) the checker needs a writable copy of — e.g. Agda writes
       * interface files beside the modules it checks: they are copied, as regular files only, into
       * the check's scratch space, and the checker runs there. Nothing else of the source is copied
       * (no interface file a source ships can be taken for a checked one).
       */
      copySource: regex.optional(),
      /**
       * What the checker reads: `source`, the fetched source (read-only); `artifacts`, the build's
       * outputs whose paths match `artifacts` (regular files only, copied by the check wrapper into
       * its own scratch space first, so nothing the build left can be a link or a FIFO).
       */
      input: z.enum(['source', 'artifacts']),
      artifacts: regex.optional(),
      command,
      /**
       * How goals (a job's named theorems and their statements) are bound: `coq` — each statement
       * is elaborated by coqc with the standard library alone, the named constant is given that type
       * with exact_no_check so that the kernel alone decides, and coqchk re-checks and audits the
       * binding (task-pod/coq-goals.ts). A profile without it refuses jobs with goals.
       */
      goals: z.literal('coq').optional(),
      /** What counts as a pass besides exit code 0. */
      pass: passRule,
      /**
       * A second, independent checker of the same targets. Run only in lanes that set
       * `secondChecker`; there both must pass, and a disagreement is an `error` naming both outputs.
       */
      second: z.strictObject({ versionCommand: command, command, pass: passRule }).optional(),
      /**
       * Reads what each passing target assumes, from the output of `command`, or of the check
       * command itself when there is none: `coqchk`, our fail-closed reader of coqchk's context
       * summary (task-pod/coqchk-summary.ts). Which axioms pass is the lane's `allowedAxioms`.
       */
      audit: z
        .strictObject({
          parser: z.literal('coqchk'),
          command: command.optional(),
        })
        .optional(),
    }),
    /**
     * Libraries the image provides (as Debian packages), which the check records in the evidence
     * with the installed package version and a digest of their compiled files: what a verdict
     * relied on besides the source.
     */
    libraries: z
      .array(
        z.strictObject({
          name: z.string().min(1).max(100),
          package: z.string().regex(/^[a-z0-9][a-z0-9+.-]+$/, 'must be a Debian package name'),
          path: z.string().startsWith('/'),
          /** Which of its files the digest covers: its compiled files. */
          files: regex.default('\\.vo$'),
        }),
      )
      .max(100)
      .default([]),
    /**
     * A project format our own code reads (`coq-project`: a `_CoqProject` file, task-pod/coq-project.ts).
     * When `file` exists in the source's (sub)directory, `build` runs once instead of the per-target
     * build command — `{jobs}` is the lane's CPU count (0 when the lane sets none: the command
     * decides), `{targets}` every target, as words of their own — and `check` replaces the check
     * command, with `{loadpath}` the project's `-Q`/`-R` bindings (as words of their own, read by our
     * reader from the committed file) and `{logical}` the target's logical name — or `{logicals}`,
     * every target's, for one run over all of them (its result and findings are every target's).
     */
    project: z
      .strictObject({
        format: z.literal('coq-project'),
        file: z
          .string()
          .regex(/^[^/\0]+$/, 'must be a file name')
          .default('_CoqProject'),
        build: command,
        check: command,
      })
      .optional(),
    /**
     * Digests that must match, or the attempt ends `error` naming both values: the image of the
     * build and check containers as the substrate observed it, and checker programs (by the name
     * a command runs them by) as the check wrapper hashed them.
     */
    pins: z
      .strictObject({
        imageDigest: sha256Digest.optional(),
        binaries: z.record(z.string().min(1).max(200), sha256Digest).optional(),
      })
      .default({}),
    /** Whether a source with git submodules may be fetched (never by default). */
    allowSubmodules: z.boolean().default(false),
    /** Runnable on the local substrate (e.g. Lean needs its own image). */
    local: z.boolean().default(true),
  })
  .superRefine((profile, ctx) => {
    if (profile.check.input === 'artifacts' && !profile.build) {
      ctx.addIssue({ code: 'custom', path: ['check', 'input'], message: 'artifacts needs a build step that makes them' });
    }
    if (profile.project && !profile.build) {
      ctx.addIssue({ code: 'custom', path: ['project'], message: 'a project is built by the build step: the profile needs one' });
    }
    if (profile.check.input === 'artifacts' && (profile.check.read || profile.check.copySource)) {
      ctx.addIssue({
        code: 'custom',
        path: ['check', profile.check.read ? 'read' : 'copySource'],
        message: 'reads the source: needs check.input source',
      });
    }
    if (profile.check.input === 'artifacts' && !profile.check.artifacts) {
      ctx.addIssue({
        code: 'custom',
        path: ['check', 'artifacts'],
        message: 'required when check.input is artifacts: which build outputs the checker reads',
      });
    }
  });
export type ProverProfile = z.infer<typeof ProverProfileSchema>;
export type ProverProfileInput = z.input<typeof ProverProfileSchema>;
export type PassRule = z.infer<typeof passRule>;

/**
 * The profile an attempt in this lane runs: its second checker only where the lane requires one
 * (the evidence repeats it, and the judge compares it with what was dispatched).
 */
export function profileForLane(profile: ProverProfile, lane: { secondChecker: boolean }): ProverProfile {
  if (lane.secondChecker || !profile.check.second) return profile;
  const { second: _, ...check } = profile.check;
  return { ...profile, check };
}

/** A target's module: its path without extension, with `/` turned into `.` (Coq's logical names). */
export function moduleOf(target: string): string {
  return target
    .replace(/\.[^./]+$/, '')
    .split('/')
    .join('.');
}

/** `{target}` and `{module}` filled in for one target; `extra` words and lists for the project commands. */
export function fillCommand(
  command: readonly string[],
  target: string,
  extra: { words?: Record<string, string>; lists?: Record<string, readonly string[]> } = {},
): string[] {
  const module = moduleOf(target);
  return command.flatMap((part) => {
    const list = extra.lists && Object.hasOwn(extra.lists, part) ? extra.lists[part] : undefined;
    if (list) return [...list];
    let filled = part.replaceAll('{target}', target).replaceAll('{module}', module);
    for (const [name, value] of Object.entries(extra.words ?? {})) filled = filled.replaceAll(name, value);
    return [filled];
  });
}
