import { z } from 'zod';

/**
 * How to verify with one prover. Profiles are data: adding a prover is a configuration change,
 * never a code branch. `{target}` in a command stands for one target path.
 */
export const ProverProfileSchema = z.strictObject({
  name: z.string().regex(/^[a-z][-a-z0-9]{0,30}$/, 'must be a lowercase name of at most 31 characters'),
  description: z.string().max(500).default(''),
  image: z.string().min(1).max(500),
  versionCommand: z.array(z.string().max(1000)).min(1),
  checkCommand: z.array(z.string().max(1000)).min(1),
  auditCommand: z.array(z.string().max(1000)).min(1).optional(),
});
export type ProverProfile = z.infer<typeof ProverProfileSchema>;

export const defaultProverProfiles: ProverProfile[] = [
  {
    name: 'coq',
    description: 'Coq/Rocq: coqc on each target, then an assumptions audit',
    image: 'proofpod/prover-coq:latest',
    versionCommand: ['coqc', '--version'],
    checkCommand: ['coqc', '{target}'],
    auditCommand: ['coqchk', '-o', '{target}'],
  },
  {
    name: 'metamath',
    description: 'Metamath: verify all proofs of a .mm database',
    image: 'proofpod/prover-metamath:latest',
    versionCommand: ['metamath', 'exit'],
    checkCommand: ['metamath', 'read "{target}"', 'verify proof *', 'exit'],
  },
  {
    name: 'smt-z3',
    description: 'SMT obligation checked by z3: pass means unsat',
    image: 'proofpod/prover-z3:latest',
    versionCommand: ['z3', '--version'],
    checkCommand: ['z3', '{target}'],
  },
  {
    name: 'lean',
    description: 'Lean 4 with lake (Kubernetes images only; not runnable on the local substrate)',
    image: 'proofpod/prover-lean:latest',
    versionCommand: ['lean', '--version'],
    checkCommand: ['lake', 'env', 'lean', '{target}'],
  },
];
