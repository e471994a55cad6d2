import type { ProverProfileInput } from '../contract/profile.js';

export { ProverProfileSchema, type ProverProfile, type ProverProfileInput } from '../contract/profile.js';

export const defaultProverProfiles: ProverProfileInput[] = [
  {
    name: 'coq',
    description:
      'Coq/Rocq: coqc builds each target (untrusted), then coqchk re-checks the .vo files and the audit reads everything they assume',
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
  metamathProfile('metamath', 'set.mm', 'sha256:4d93307bc81337a621031739acfffb4159175f94fb90e727f4a231401091e45b'),
  metamathProfile('metamath-iset', 'iset.mm', 'sha256:dc494d817dc1c0fe6874c0969ee79fdebd0967382cd7c42d3ba1da078d2d3bd8'),
  {
    name: 'smt-z3',
    description:
      'SMT obligation in a safe subset of SMT-LIB, read and re-printed by us; z3 (and cvc5 too where the lane requires a second checker) must answer exactly unsat',
    image: 'proofpod/prover-smt:latest',
    versionCommand: ['z3', '--version'],
    check: {
      input: 'source',
      read: { format: 'smt-lib' },
      command: ['z3', '-smt2', '{target}'],
      pass: { outputEquals: 'unsat' },
      // cvc5 prints its proof after the answer; the evidence records the proof's digest.
      second: {
        versionCommand: ['cvc5', '--version'],
        command: ['cvc5', '--lang=smt2', '--dump-proofs', '{target}'],
        pass: { outputEquals: 'unsat', proofFollows: true },
      },
    },
  },
  {
    name: 'agda',
    description: "Agda with Debian's standard library, checked with --safe: no postulate, no unsafe pragma or option",
    image: 'proofpod/prover-agda:latest',
    versionCommand: ['agda', '--version'],
    // The digest covers the library's modules and the interface files the image compiled them to.
    libraries: [{ name: 'agda-stdlib', package: 'agda-stdlib', path: '/usr/share/agda-stdlib', files: '\\.(agda|agdai)$' }],
    check: {
      input: 'source',
      // Agda writes interface files beside the modules: it checks a copy of the modules alone, so
      // no interface file a source ships is ever loaded. --no-libraries: no .agda-lib is read.
      copySource: '\\.(agda|lagda|lagda\\.md|lagda\\.tex|lagda\\.rst|lagda\\.org)$',
      command: ['agda', '--safe', '--no-libraries', '-i', '.', '-i', '/usr/share/agda-stdlib', '{target}'],
      pass: { explain: '^(Cannot .*|Unsolved .*|Termination checking failed.*|.*\\bsafe (flag|mode)\\b.*)$' },
    },
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

/**
 * Metamath against one reference database of Debian's metamath-databases: metamath-rs (our
 * proofpod-metamath-verify) verifies every proof, metamath C too where the lane requires a second
 * checker, and every logical axiom must be the reference's own, pinned by digest.
 */
function metamathProfile(name: string, reference: string, digest: string): ProverProfileInput {
  return {
    name,
    description: `Metamath: every proof verified by metamath-rs, and by metamath C too where the lane requires a second checker; the logical axioms must be those of Debian's ${reference}`,
    image: 'proofpod/prover-metamath:latest',
    versionCommand: ['proofpod-metamath-verify', '--version'],
    check: {
      input: 'source',
      read: { format: 'metamath', reference: { path: `/usr/share/metamath/databases/${reference}`, digest } },
      command: ['proofpod-metamath-verify', '{target}'],
      pass: { outputMatches: '^verified: \\d+ statements, no diagnostics$' },
      second: {
        versionCommand: ['metamath', 'exit'],
        command: ['metamath', 'read "{target}"', 'verify proof *', 'exit'],
        pass: { outputMatches: '^All proofs in the database were verified', outputRejects: '\\?(Error|Warning)' },
      },
    },
  };
}
