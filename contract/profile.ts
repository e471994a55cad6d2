import { z } from 'zod';

const command = z.array(z.string().max(1000)).min(1).max(64);
const regex = z.string().max(500).refine((source) => {
  try {
    new RegExp(source, 'm');
    return true;
  } catch {
    return false;
  }
}, 'must be a valid regular expression');

/**
 * How to verify with one prover. Profiles are data: adding a prover is a configuration change,
 * never a code branch. In commands, `{target}` stands for one target path and `{module}` for it
 * without extension, with `/` turned into `.` (Coq's logical names).
 */
export const ProverProfileSchema = z.strictObject({
  name: z.string().regex(/^[a-z][-a-z0-9]{0,30}$/, 'must be a lowercase name of at most 31 characters'),
  description: z.string().max(500).default(''),
  image: z.string().min(1).max(500),
  /** Prints the prover's version; its first line goes into the evidence. */
  versionCommand: command,
  /** Run once per target, in the source (sub)directory. */
  checkCommand: command,
  /** What counts as a pass besides exit code 0. */
  pass: z
    .strictObject({
      /** The target's output must match this (e.g. `^unsat` for an SMT obligation). */
      outputMatches: regex.optional(),
      /** Any match in the output fails the target (for provers that exit 0 on errors). */
      outputRejects: regex.optional(),
    })
    .default({}),
  /** Lists what the checked proof depends on (axioms, admitted lemmas), run per target after a pass. */
  audit: z
    .strictObject({
      command,
      /** Findings are the lines after a line matching `after`, up to one matching `until`. */
      after: regex,
      until: regex,
      /** Applied to each line in that section; the `name` group names the finding. */
      line: regex.refine((source) => source.includes('(?<name>'), 'must have a (?<name>…) group'),
      kind: z.enum(['axiom', 'admitted', 'other']),
      /** `reject`: a proof with findings is rejected; `allow`: they are recorded only. */
      policy: z.enum(['reject', 'allow']),
    })
    .optional(),
  /** Whether a source with git submodules may be fetched (never by default). */
  allowSubmodules: z.boolean().default(false),
  /** Runnable on the local substrate (e.g. Lean needs its own image). */
  local: z.boolean().default(true),
});
export type ProverProfile = z.infer<typeof ProverProfileSchema>;
export type ProverProfileInput = z.input<typeof ProverProfileSchema>;
