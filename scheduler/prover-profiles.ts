import type { ProverProfileInput } from '../contract/profile.js';

export { ProverProfileSchema, type ProverProfile, type ProverProfileInput } from '../contract/profile.js';

export const defaultProverProfiles: ProverProfileInput[] = [
  {
    name: 'coq',
    description: 'Coq/Rocq: coqc on each target, then coqchk lists the axioms (and admitted lemmas) it relies on',
    image: 'proofpod/prover-coq:latest',
    versionCommand: ['coqc', '--version'],
    checkCommand: ['coqc', '-Q', '.', 'Top', '{target}'],
    audit: {
      command: ['coqchk', '-silent', '-o', '-Q', '.', 'Top', 'Top.{module}'],
      after: '^\\* Axioms:',
      until: '^\\s*$|^\\*',
      line: '^\\s+(?<name>\\S+)',
      kind: 'axiom',
      policy: 'reject',
    },
  },
  {
    name: 'metamath',
    description: 'Metamath: read the database and verify every proof in it',
    image: 'proofpod/prover-metamath:latest',
    versionCommand: ['metamath', 'exit'],
    checkCommand: ['metamath', 'read "{target}"', 'verify proof *', 'exit'],
    pass: { outputMatches: '^All proofs in the database were verified', outputRejects: '\\?(Error|Warning)' },
  },
  {
    name: 'smt-z3',
    description: 'SMT obligation checked by z3: it passes when z3 answers unsat',
    image: 'proofpod/prover-z3:latest',
    versionCommand: ['z3', '--version'],
    checkCommand: ['z3', '{target}'],
    pass: { outputMatches: '^unsat\\s*$' },
  },
  {
    name: 'lean',
    description: 'Lean 4 with lake (Kubernetes images only; not runnable on the local substrate)',
    image: 'proofpod/prover-lean:latest',
    versionCommand: ['lean', '--version'],
    checkCommand: ['lake', 'env', 'lean', '{target}'],
    local: false,
  },
];
