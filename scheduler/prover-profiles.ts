import type { ProverProfileInput } from '../contract/profile.js';

export { ProverProfileSchema, type ProverProfile, type ProverProfileInput } from '../contract/profile.js';

export const defaultProverProfiles: ProverProfileInput[] = [
  {
    name: 'coq',
    description: 'Coq/Rocq: coqc builds each target (untrusted), then coqchk re-checks the .vo files and the audit reads everything they assume',
    image: 'proofpod/prover-coq:latest',
    versionCommand: ['coqchk', '--version'],
    // Debian's stdpp (the image installs it): developments may require it; the evidence records it.
    libraries: [{ name: 'stdpp', package: 'libcoq-stdpp', path: '/usr/lib/ocaml/coq/user-contrib/stdpp' }],
    build: { command: ['coqc', '-Q', '.', 'Top', '{target}'] },
    check: {
      input: 'artifacts',
      artifacts: '\\.vo$',
      command: ['coqchk', '-silent', '-o', '-Q', '.', 'Top', 'Top.{module}'],
      goals: 'coq',
      // coqchk -o prints what the checked modules assume; the audit reads the check's own output.
      audit: { parser: 'coqchk' },
    },
    // A development with a _CoqProject: coq_makefile and make build the targets and what they
    // require (untrusted, as any build); coqchk checks them under the project's own logical names.
    project: {
      format: 'coq-project',
      file: '_CoqProject',
      build: [
        'sh',
        '-c',
        'j=$1; shift; [ "$j" -gt 0 ] || j=$(nproc); coq_makefile -f _CoqProject -o CoqMakefile && exec make -f CoqMakefile -k -j "$j" $(for t; do printf "%so " "$t"; done)',
        'coq-project',
        '{jobs}',
        '{targets}',
      ],
      // One coqchk over every target: each module is checked once, however many targets need it.
      check: ['coqchk', '-silent', '-o', '{loadpath}', '{logicals}'],
    },
  },
  {
    name: 'metamath',
    description: 'Metamath: read the database and verify every proof in it',
    image: 'proofpod/prover-metamath:latest',
    versionCommand: ['metamath', 'exit'],
    check: {
      input: 'source',
      command: ['metamath', 'read "{target}"', 'verify proof *', 'exit'],
      pass: { outputMatches: '^All proofs in the database were verified', outputRejects: '\\?(Error|Warning)' },
    },
  },
  {
    name: 'smt-z3',
    description: 'SMT obligation checked by z3: it passes when z3 answers unsat',
    image: 'proofpod/prover-z3:latest',
    versionCommand: ['z3', '--version'],
    check: { input: 'source', command: ['z3', '{target}'], pass: { outputMatches: '^unsat\\s*$' } },
  },
  {
    name: 'lean',
    description: 'Lean 4 with lake (Kubernetes images only; not runnable on the local substrate)',
    image: 'proofpod/prover-lean:latest',
    versionCommand: ['lean', '--version'],
    build: { command: ['lake', 'env', 'lean', '-o', '{module}.olean', '{target}'] },
    check: { input: 'artifacts', artifacts: '\\.olean$', command: ['leanchecker', '{module}'] },
    local: false,
  },
];
