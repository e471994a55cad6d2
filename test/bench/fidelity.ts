/**
 * Fidelity (`npm run fidelity`): one corpus — Debian's own Metamath databases, agda-stdlib modules
 * and stdpp sources, small sources written for it, and the hostile fixtures — verified by proofpod
 * on the local substrate (submit → verdict through the API) and by the bare checkers run by hand
 * in a plain copy, in the same run. Every case states both verdicts it must get, and why proofpod
 * is stricter where they differ: the run throws, naming the case and proofpod's reason, if any
 * verdict is not the expected one, and docs/fidelity.md is written only from a run where all were.
 * `runFidelity` is also run, on a few small cases, by test/fidelity.test.ts, so the corpus cannot rot.
 */
import { execFileSync, spawn } from 'node:child_process';
import { chmodSync, cpSync, existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import pino from 'pino';
import { startProofpod } from '../../scheduler/app.js';
import { parseConfig } from '../../scheduler/config.js';
import { defaultProverProfiles } from '../../scheduler/prover-profiles.js';
import { createSubmitterToken } from '../../scheduler/store/submitters/submitters.js';
import { removeTree } from '../../scheduler/substrate/local/host.js';
import { STDPP_SOURCES } from './coq-project.js';
import { openBenchDatabase } from './database.js';
import { machine, runAsMain } from './report.js';
import { type JobState, isFinalJobState } from '../../scheduler/job-states.js';
import { git } from '../support/git-fixtures.js';

export type Verdict = 'verified' | 'rejected' | 'error';

const DATABASES = '/usr/share/metamath/databases';
const AGDA_STDLIB = '/usr/share/agda-stdlib';
const FIXTURES = path.resolve('test/fixtures');
const METAMATH_RS = path.resolve('dist/bin/proofpod-metamath-verify');

// ---------------------------------------------------------------------------------------------
// The bare checkers: what a user running each one by hand would conclude.

interface Ran {
  code: number | null;
  output: string;
}

/** Runs a command to its end: stdout and stderr together, as a user reads them in a terminal. */
function run(command: string, args: readonly string[], cwd: string): Promise<Ran> {
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, { cwd, stdio: ['ignore', 'pipe', 'pipe'] });
    const chunks: Buffer[] = [];
    child.stdout.on('data', (chunk: Buffer) => chunks.push(chunk));
    child.stderr.on('data', (chunk: Buffer) => chunks.push(chunk));
    child.on('error', (error) => reject(new Error(`${command} could not be run (is its Debian package installed?)`, { cause: error })));
    child.on('close', (code) => resolve({ code, output: Buffer.concat(chunks).toString('utf8') }));
  });
}

interface BareChecker {
  /** The command line as the report shows it (FILE is the target), and when its user takes it as verified. */
  shown: { command: string; verifiedWhen: string };
  /** The verdict on every target together, in the plain copy `dir` (targets are relative to it). */
  check(dir: string, targets: readonly string[]): Promise<Verdict>;
}

/** A checker run once per target, in order (a target may rewrite a later one), verified iff every target is. */
function perTarget(shown: BareChecker['shown'], once: (dir: string, target: string) => Promise<boolean>): BareChecker {
  return {
    shown,
    async check(dir, targets) {
      let all = true;
      for (const target of targets) all = (await once(dir, target)) && all;
      return all ? 'verified' : 'rejected';
    },
  };
}

const metamathC = perTarget(
  {
    command: `metamath 'read "FILE"' 'verify proof *' exit`,
    verifiedWhen: 'run in the directory of FILE, its output says "All proofs in the database were verified" and has no ?Error or ?Warning',
  },
  async (dir, target) => {
    const r = await run('metamath', [`read "${path.basename(target)}"`, 'verify proof *', 'exit'], path.join(dir, path.dirname(target)));
    return /All proofs in the database were verified/.test(r.output) && !/\?(Error|Warning)/.test(r.output);
  },
);
const metamathRs = perTarget(
  { command: 'proofpod-metamath-verify FILE', verifiedWhen: 'it exits 0 (our build of metamath-rs, `npm run build:checkers`)' },
  async (dir, target) => (await run(METAMATH_RS, [target], dir)).code === 0,
);
const z3 = perTarget({ command: 'z3 -smt2 FILE', verifiedWhen: 'its output has a line `unsat` (the naive reading)' }, async (dir, target) =>
  /^unsat$/m.test((await run('z3', ['-smt2', target], dir)).output),
);
const cvc5 = perTarget({ command: 'cvc5 --lang=smt2 FILE', verifiedWhen: 'its output has a line `unsat`' }, async (dir, target) =>
  /^unsat$/m.test((await run('cvc5', ['--lang=smt2', target], dir)).output),
);
const agda = perTarget(
  {
    command: `agda --safe --no-libraries -i DIR -i ${AGDA_STDLIB} FILE`,
    verifiedWhen: 'it exits 0, run in a fresh copy (no interface file of an earlier run)',
  },
  async (dir, target) => (await run('agda', ['--safe', '--no-libraries', '-i', dir, '-i', AGDA_STDLIB, target], dir)).code === 0,
);
const agdaAlone = perTarget(
  { command: 'agda --safe --no-libraries -i DIR FILE', verifiedWhen: 'it exits 0, run in a fresh copy of the library' },
  async (dir, target) => (await run('agda', ['--safe', '--no-libraries', '-i', dir, target], dir)).code === 0,
);
const coqFile = perTarget(
  { command: 'coqc -Q . Top FILE && coqchk -silent -o -Q . Top Top.MODULE', verifiedWhen: 'both exit 0' },
  async (dir, target) => {
    if ((await run('coqc', ['-Q', '.', 'Top', target], dir)).code !== 0) return false;
    return (
      (await run('coqchk', ['-silent', '-o', '-Q', '.', 'Top', `Top.${target.replace(/\.v$/, '').replaceAll('/', '.')}`], dir)).code === 0
    );
  },
);
/** The bare build and check of coq-project.ts: coq_makefile and make -j2, then one coqchk over every module. */
const coqProject: BareChecker = {
  shown: {
    command: 'coq_makefile -f _CoqProject -o CoqMakefile && make -f CoqMakefile -j2 && coqchk -silent -o -Q theories stdpp MODULES',
    verifiedWhen: 'every step exits 0 (as in test/bench/coq-project.ts)',
  },
  async check(dir, targets) {
    if ((await run('sh', ['-c', 'coq_makefile -f _CoqProject -o CoqMakefile && make -f CoqMakefile -j2'], dir)).code !== 0)
      return 'rejected';
    const modules = targets.map((t) => `stdpp.${path.basename(t, '.v')}`);
    return (await run('coqchk', ['-silent', '-o', '-Q', 'theories', 'stdpp', ...modules], dir)).code === 0 ? 'verified' : 'rejected';
  },
};

// ---------------------------------------------------------------------------------------------
// The corpus.

/** A file of a source: copied from the host, or written. */
type FileFrom = { copy: string } | { write: string };

interface Source {
  /** Cases with the same id share one repository. */
  id: string;
  files(): Record<string, FileFrom>;
}

export interface FidelityCase {
  name: string;
  origin: string;
  prover: string;
  lane: 'verify' | 'audit';
  source: Source;
  targets: string[];
  /** The bare checkers a user would run; the bare verdict is theirs when they agree, `error` when they do not. */
  bare: BareChecker[];
  expected: { bare: Verdict; proofpod: Verdict; reason: string };
  /** Why proofpod's verdict is not the bare one; required exactly when they differ. */
  stricter?: string;
}

const copies = (id: string, files: Record<string, string>): Source => ({
  id,
  files: () => Object.fromEntries(Object.entries(files).map(([to, from]) => [to, { copy: from }])),
});
const fixture = (relative: string): Source => copies(relative, { [path.basename(relative)]: path.join(FIXTURES, relative) });

/** set.mm with the last step of theorem id's proof changed (D, the proof's last saved step, becomes C). */
const setmmChanged: Source = {
  id: 'set.mm changed',
  files() {
    const original = readFileSync(path.join(DATABASES, 'set.mm'), 'utf8');
    const step = '( wi ax-1 mpd ) AAABZAAACAECD $.';
    if (original.split(step).length !== 2)
      throw new Error(`set.mm does not hold theorem id's proof "${step}" exactly once: has Debian's metamath-databases changed?`);
    return { 'set.mm': { write: original.replace(step, '( wi ax-1 mpd ) AAABZAAACAECC $.') } };
  },
};

/** Every `.agda` file of Debian's agda-stdlib, at its path (no interface file). */
const agdaStdlibTree: Source = {
  id: 'agda-stdlib tree',
  files() {
    const files: Record<string, FileFrom> = {};
    for (const entry of readdirSync(AGDA_STDLIB, { recursive: true, withFileTypes: true })) {
      if (entry.isFile() && entry.name.endsWith('.agda')) {
        const from = path.join(entry.parentPath, entry.name);
        files[path.relative(AGDA_STDLIB, from)] = { copy: from };
      }
    }
    return files;
  },
};

/** stdpp's files that need nothing of stdpp outside them, laid out as coq-project.ts lays out stdpp. */
const STDPP_SUBSET = [
  'options.v',
  'base.v',
  'proof_irrel.v',
  'decidable.v',
  'tactics.v',
  'option.v',
  'orders.v',
  'well_founded.v',
  'functions.v',
  'fin.v',
  'hlist.v',
  'telescopes.v',
  'streams.v',
];
const stdppSubset: Source = {
  id: 'stdpp subset',
  files() {
    const flags =
      '-arg -w -arg -notation-overridden,-redundant-canonical-projection,-unknown-warning,-argument-scope-delimiter,-deprecated';
    return {
      _CoqProject: { write: `-Q theories stdpp\n${flags}\n${STDPP_SUBSET.map((f) => `theories/${f}`).join('\n')}\n` },
      ...Object.fromEntries(STDPP_SUBSET.map((f) => [`theories/${f}`, { copy: path.join(STDPP_SOURCES, f) }])),
    };
  },
};

const metamathBoth = [metamathRs, metamathC];
const notSetmm =
  "its logical axioms are not set.mm's: proofpod checks a database against the reference the profile names, a bare checker only that each proof follows from the database's own axioms";
const smtCommand = 'a command outside the obligation subset, which the naive reading of the output cannot see';

const corpus: FidelityCase[] = [
  // Metamath: Debian's metamath-databases.
  ...(['verify', 'audit'] as const).map(
    (lane): FidelityCase => ({
      name: `set.mm (${lane} lane)`,
      origin: `Debian metamath-databases ${DATABASES}/set.mm`,
      prover: 'metamath',
      lane,
      source: copies('set.mm', { 'set.mm': path.join(DATABASES, 'set.mm') }),
      targets: ['set.mm'],
      bare: metamathBoth,
      expected: { bare: 'verified', proofpod: 'verified', reason: 'verified: 1 target(s) passed' },
    }),
  ),
  {
    name: 'iset.mm',
    origin: `Debian metamath-databases ${DATABASES}/iset.mm`,
    prover: 'metamath-iset',
    lane: 'verify',
    source: copies('iset.mm', { 'iset.mm': path.join(DATABASES, 'iset.mm') }),
    targets: ['iset.mm'],
    bare: metamathBoth,
    expected: { bare: 'verified', proofpod: 'verified', reason: 'verified: 1 target(s) passed' },
  },
  {
    name: 'set.mm, one proof step changed',
    origin: `Debian ${DATABASES}/set.mm, theorem id's proof ending …AECC instead of …AECD (changed here)`,
    prover: 'metamath',
    lane: 'verify',
    source: setmmChanged,
    targets: ['set.mm'],
    bare: metamathBoth,
    expected: { bare: 'rejected', proofpod: 'rejected', reason: 'rejected: set.mm (exit code 1)' },
  },
  ...['demo0.mm', 'miu.mm', 'peano.mm'].map(
    (file): FidelityCase => ({
      name: file,
      origin: `Debian metamath-databases ${DATABASES}/${file}`,
      prover: 'metamath',
      lane: 'verify',
      source: copies(file, { [file]: path.join(DATABASES, file) }),
      targets: [file],
      bare: metamathBoth,
      expected: { bare: 'verified', proofpod: 'rejected', reason: 'rejected: audit found axiom' },
      stricter: notSetmm,
    }),
  ),
  {
    name: 'setmm-prop.mm',
    origin: "test/fixtures/proofs/setmm-prop.mm (the opening of Debian's set.mm)",
    prover: 'metamath',
    lane: 'verify',
    source: fixture('proofs/setmm-prop.mm'),
    targets: ['setmm-prop.mm'],
    bare: metamathBoth,
    expected: { bare: 'verified', proofpod: 'verified', reason: 'verified: 1 target(s) passed' },
  },
  {
    name: 'demo0-cheat.mm',
    origin: 'hostile fixture test/fixtures/metamath/demo0-cheat.mm',
    prover: 'metamath',
    lane: 'verify',
    source: fixture('metamath/demo0-cheat.mm'),
    targets: ['demo0-cheat.mm'],
    bare: metamathBoth,
    expected: { bare: 'verified', proofpod: 'rejected', reason: 'axiom ax-cheat' },
    stricter:
      'the database declares its own axiom (ax-cheat: every wff is a theorem); a bare checker only checks that the axiom is applied correctly',
  },

  // SMT-LIB: Debian ships no examples; small obligations of ours, z3's own test inputs, the hostile fixtures.
  ...(['verify', 'audit'] as const).map(
    (lane): FidelityCase => ({
      name: `unsat.smt2 (${lane} lane)`,
      origin: 'test/fixtures/proofs/unsat.smt2',
      prover: 'smt-z3',
      lane,
      source: fixture('proofs/unsat.smt2'),
      targets: ['unsat.smt2'],
      bare: lane === 'audit' ? [z3, cvc5] : [z3],
      expected: { bare: 'verified', proofpod: 'verified', reason: 'verified: 1 target(s) passed' },
    }),
  ),
  {
    name: 'sat.smt2',
    origin: 'test/fixtures/proofs/sat.smt2',
    prover: 'smt-z3',
    lane: 'verify',
    source: fixture('proofs/sat.smt2'),
    targets: ['sat.smt2'],
    bare: [z3],
    expected: { bare: 'rejected', proofpod: 'rejected', reason: 'rejected: sat.smt2' },
  },
  ...[
    ['lia-interval.smt2', 'verified'],
    ['bv-mask.smt2', 'verified'],
    ['uf-congruence.smt2', 'verified'],
    ['quantified-monotone.smt2', 'verified'],
    ['bv-increment-false.smt2', 'rejected'],
  ].map(
    ([file, verdict]): FidelityCase => ({
      name: file!,
      origin: `written for this corpus: test/fixtures/fidelity/smt/${file}`,
      prover: 'smt-z3',
      lane: 'audit',
      source: fixture(`fidelity/smt/${file}`),
      targets: [file!],
      bare: [z3, cvc5],
      expected: {
        bare: verdict as Verdict,
        proofpod: verdict as Verdict,
        reason: verdict === 'verified' ? 'verified: 1 target(s) passed' : `rejected: ${file}`,
      },
    }),
  ),
  ...[
    ['z3-random-seed.smt2', 'set-option :smt.random_seed is not allowed'],
    ['z3-special-relation-lifetime.smt2', 'set-option :model_validate is not allowed'],
  ].map(
    ([file, reason]): FidelityCase => ({
      name: file!,
      origin: `z3 5.4.1's own test input (PyPI sdist z3-solver, scripts/determinism/cases/; MIT): test/fixtures/fidelity/smt/${file}`,
      prover: 'smt-z3',
      lane: 'verify',
      source: fixture(`fidelity/smt/${file}`),
      targets: [file!],
      bare: [z3],
      expected: { bare: 'rejected', proofpod: 'rejected', reason: reason! },
    }),
  ),
  ...[
    ['echo-only.smt2', 'verified', 'echo is not allowed'],
    ['echo-unsat.smt2', 'verified', 'echo is not allowed'],
    ['exit-early.smt2', 'verified', 'exit is not allowed'],
    ['two-check-sat.smt2', 'verified', 'push is not allowed'],
    ['push-pop.smt2', 'rejected', 'push is not allowed'],
  ].map(
    ([file, bare, reason]): FidelityCase => ({
      name: file!,
      origin: `hostile fixture test/fixtures/hostile/smt-commands/${file}`,
      prover: 'smt-z3',
      lane: 'verify',
      source: fixture(`hostile/smt-commands/${file}`),
      targets: [file!],
      bare: [z3],
      expected: { bare: bare as Verdict, proofpod: 'rejected', reason: reason! },
      ...(bare === 'verified' ? { stricter: smtCommand } : {}),
    }),
  ),
  {
    name: 'a.smt2 then b.smt2',
    origin: 'hostile fixture test/fixtures/hostile/smt-output-channel/',
    prover: 'smt-z3',
    lane: 'verify',
    source: copies('smt-output-channel', {
      'a.smt2': path.join(FIXTURES, 'hostile/smt-output-channel/a.smt2'),
      'b.smt2': path.join(FIXTURES, 'hostile/smt-output-channel/b.smt2'),
    }),
    targets: ['a.smt2', 'b.smt2'],
    bare: [z3],
    expected: { bare: 'verified', proofpod: 'rejected', reason: 'set-option :regular-output-channel is not allowed' },
    stricter:
      "a.smt2 points z3's output at b.smt2 and overwrites the satisfiable obligation with an unsat one; proofpod refuses the option and checks b.smt2 as committed",
  },

  // Agda: our fixtures against Debian's agda-stdlib, and modules of agda-stdlib itself.
  ...[
    ['Plus.agda', 'verified', 'verified: 1 target(s) passed'],
    ['Postulated.agda', 'rejected', 'Cannot postulate all-zero with safe flag'],
    ['Looping.agda', 'rejected', 'Cannot use TERMINATING pragma with safe flag'],
  ].map(
    ([file, verdict, reason]): FidelityCase => ({
      name: file!,
      origin: `test/fixtures/agda/${file}`,
      prover: 'agda',
      lane: 'verify',
      source: fixture(`agda/${file}`),
      targets: [file!],
      bare: [agda],
      expected: { bare: verdict as Verdict, proofpod: verdict as Verdict, reason: reason! },
    }),
  ),
  ...[
    ['Data/Bool/Base.agda', 'verified', 'verified: 1 target(s) passed'],
    ['Data/Nat/Base.agda', 'verified', 'verified: 1 target(s) passed'],
    ['Data/List/Base.agda', 'verified', 'verified: 1 target(s) passed'],
    [
      'Relation/Binary/PropositionalEquality/TrustMe.agda',
      'rejected',
      'rejected: Relation/Binary/PropositionalEquality/TrustMe.agda (exit code 42: Importing module Agda.Builtin.TrustMe not using the --safe flag',
    ],
    ['IO/Primitive.agda', 'rejected', 'rejected: IO/Primitive.agda (exit code 42: COMPILE pragma not allowed in safe mode'],
  ].map(
    ([file, verdict, reason]): FidelityCase => ({
      name: `agda-stdlib ${file}`,
      origin: `Debian agda-stdlib ${AGDA_STDLIB}/${file} (the source: every .agda file of the library)`,
      prover: 'agda-no-library',
      lane: 'verify',
      source: agdaStdlibTree,
      targets: [file!],
      bare: [agdaAlone],
      expected: { bare: verdict as Verdict, proofpod: verdict as Verdict, reason: reason! },
    }),
  ),

  // Coq: Debian's stdpp sources, and our fixtures.
  {
    name: `stdpp, ${STDPP_SUBSET.length} files`,
    origin: `Debian libcoq-stdpp ${STDPP_SOURCES}: ${STDPP_SUBSET.join(' ')}, with a _CoqProject`,
    prover: 'coq',
    lane: 'verify',
    source: stdppSubset,
    targets: STDPP_SUBSET.map((f) => `theories/${f}`),
    bare: [coqProject],
    expected: { bare: 'verified', proofpod: 'verified', reason: `verified: ${STDPP_SUBSET.length} target(s) passed` },
  },
  ...[
    ['Arith.v', 'verified', 'verified', 'verified: 1 target(s) passed'],
    [
      'Axiomatic.v',
      'verified',
      'rejected',
      'rejected: audit found axiom Top.Axiomatic.excluded_middle, axiom Top.Axiomatic.left_for_later',
    ],
    ['Broken.v', 'rejected', 'rejected', 'rejected: Broken.v (build failed'],
  ].map(
    ([file, bare, proofpod, reason]): FidelityCase => ({
      name: file!,
      origin: `test/fixtures/proofs/${file}`,
      prover: 'coq',
      lane: 'verify',
      source: fixture(`proofs/${file}`),
      targets: [file!],
      bare: [coqFile],
      expected: { bare: bare as Verdict, proofpod: proofpod as Verdict, reason: reason! },
      ...(bare !== proofpod
        ? { stricter: "an axiom and an admitted lemma not on the lane's allow-list: coqchk -o prints them and exits 0" }
        : {}),
    }),
  ),
];

export const caseNames = corpus.map((c) => c.name);

// ---------------------------------------------------------------------------------------------
// The run.

export interface FidelityRow {
  name: string;
  origin: string;
  profile: string;
  lane: string;
  bare: { verdict: Verdict; ms: number; checkers: BareChecker['shown'][] };
  expected: { bare: Verdict; proofpod: Verdict };
  proofpod: { state: string; stateReason: string; ms: number; jobId: string };
  agreement: string;
}

/** Writes a source's files into `dir` and commits them to a git repository there; returns its commit. */
function layOut(source: Source, dir: string): string {
  for (const [to, from] of Object.entries(source.files())) {
    const file = path.join(dir, to);
    mkdirSync(path.dirname(file), { recursive: true });
    if ('copy' in from) cpSync(from.copy, file);
    else writeFileSync(file, from.write);
  }
  const run = (...args: string[]) => git(dir, args);
  run('init', '--quiet');
  run('add', '--all');
  run('commit', '--quiet', '-m', source.id);
  return run('rev-parse', 'HEAD');
}

/** The bare verdict of a case, in a fresh plain copy of its source (no .git, no interface file of an earlier run). */
async function runBare(c: FidelityCase, sourceDir: string, copyDir: string): Promise<FidelityRow['bare']> {
  cpSync(sourceDir, copyDir, { recursive: true, filter: (p) => path.basename(p) !== '.git' });
  const started = performance.now();
  const verdicts: Verdict[] = [];
  for (const checker of c.bare) verdicts.push(await checker.check(copyDir, c.targets));
  const ms = performance.now() - started;
  await removeTree(copyDir);
  return { verdict: verdicts.every((v) => v === verdicts[0]) ? verdicts[0]! : 'error', ms, checkers: c.bare.map((b) => b.shown) };
}

/**
 * The default Agda profile without the library on its include path: for sources that are modules
 * of agda-stdlib itself, which would otherwise be found twice ("Ambiguous module name").
 */
function agdaNoLibrary() {
  const profile = defaultProverProfiles.find((p) => p.name === 'agda')!;
  return {
    ...profile,
    name: 'agda-no-library',
    description: 'Agda checked with --safe, with no library: the source is the library',
    libraries: [],
    check: { ...profile.check, command: ['agda', '--safe', '--no-libraries', '-i', '.', '{target}'] },
  };
}

/** Runs `cases` (the whole corpus by default), one at a time, bare then through proofpod; throws if any verdict is not the expected one. */
export async function runFidelity(options: {
  databaseUrl: string;
  cases?: string[];
  sandboxUids?: { first: number; count: number };
}): Promise<FidelityRow[]> {
  const unknown = (options.cases ?? []).filter((n) => !caseNames.includes(n));
  if (unknown.length > 0) throw new Error(`no such fidelity case: ${unknown.join(', ')} (cases: ${caseNames.join('; ')})`);
  const cases = options.cases ? corpus.filter((c) => options.cases!.includes(c.name)) : corpus;
  const work = mkdtempSync(path.join(tmpdir(), 'proofpod-fidelity-'));
  // The sandboxes run as other uids: they read the repositories and the state under here.
  chmodSync(work, 0o755);
  try {
    const config = parseConfig({
      port: 0,
      logLevel: 'silent',
      home: path.join(work, 'home'),
      databaseUrl: options.databaseUrl,
      substrate: 'local',
      pod: { allowFileSources: true, maxSourceBytes: 256 * 1024 * 1024 },
      ...(options.sandboxUids ? { local: { sandboxUids: options.sandboxUids } } : {}),
      lanes: [
        { name: 'verify', trust: 'trusted', concurrency: 2, maxDeadlineSeconds: 1800, resources: { limits: { cpu: 2 } } },
        {
          name: 'audit',
          trust: 'trusted',
          concurrency: 2,
          maxDeadlineSeconds: 1800,
          resources: { limits: { cpu: 2 } },
          secondChecker: true,
        },
      ],
      provers: [...defaultProverProfiles, agdaNoLibrary()],
      dispatch: { intervalSeconds: 0.2, batchSize: 10 },
      reaper: { intervalSeconds: 0.5, evidenceGraceSeconds: 60 },
    });
    const proofpod = await startProofpod(config, { log: pino({ level: 'silent' }), print: () => {} });
    try {
      const token = await createSubmitterToken(proofpod.sql, { id: 'fidelity', trust: 'trusted', lanes: ['*'], roles: [] });
      const api = async (method: string, urlPath: string, body?: unknown) => {
        const response = await fetch(`${proofpod.url}${urlPath}`, {
          method,
          headers: { authorization: `Bearer ${token}`, ...(body ? { 'content-type': 'application/json' } : {}) },
          body: body ? JSON.stringify(body) : undefined,
        });
        const answer = (await response.json()) as Record<string, unknown>;
        if (!response.ok) throw new Error(`${method} ${urlPath} answered ${response.status}: ${JSON.stringify(answer)}`);
        return answer;
      };
      const repos = new Map<string, { dir: string; url: string; commit: string }>();
      const rows: FidelityRow[] = [];
      const wrong: string[] = [];
      for (const [i, c] of cases.entries()) {
        let repo = repos.get(c.source.id);
        if (!repo) {
          const dir = path.join(work, 'sources', String(repos.size));
          mkdirSync(dir, { recursive: true });
          repo = { dir, url: pathToFileURL(dir).href, commit: layOut(c.source, dir) };
          repos.set(c.source.id, repo);
        }
        const bare = await runBare(c, repo.dir, path.join(work, 'bare', String(i)));

        const started = performance.now();
        const { id } = (await api('POST', '/v1/jobs', {
          source: { url: repo.url, commit: repo.commit },
          prover: c.prover,
          targets: c.targets,
          lane: c.lane,
        })) as { id: string };
        let job: { state: string; stateReason: string };
        for (;;) {
          job = (await api('GET', `/v1/jobs/${id}`)) as typeof job;
          if (isFinalJobState(job.state as JobState)) break;
          await new Promise((resolve) => setTimeout(resolve, 100));
        }
        const ms = performance.now() - started;

        const misses: string[] = [];
        if (bare.verdict !== c.expected.bare) misses.push(`bare ${bare.verdict}, expected ${c.expected.bare}`);
        if (job.state !== c.expected.proofpod) misses.push(`proofpod ${job.state}, expected ${c.expected.proofpod}`);
        else if (!job.stateReason.includes(c.expected.reason)) misses.push(`proofpod's reason does not contain "${c.expected.reason}"`);
        if (misses.length > 0) {
          const evidence = (await api('GET', `/v1/jobs/${id}/evidence`)) as { evidence?: { body?: { logs?: { excerpt?: string } } }[] };
          const excerpt = evidence.evidence?.at(-1)?.body?.logs?.excerpt;
          wrong.push(
            `${c.name}: ${misses.join('; ')} — job ${id}, stateReason: ${job.stateReason}${excerpt ? `\n  log excerpt: ${excerpt.slice(-1500)}` : ''}`,
          );
        }
        rows.push({
          name: c.name,
          origin: c.origin,
          profile: c.prover,
          lane: c.lane,
          bare,
          expected: { bare: c.expected.bare, proofpod: c.expected.proofpod },
          proofpod: { state: job.state, stateReason: job.stateReason, ms, jobId: id },
          agreement: bare.verdict === job.state ? 'agree' : `stricter: ${c.stricter ?? '(no reason given)'}`,
        });
      }
      if (wrong.length > 0)
        throw new Error(`${wrong.length} of ${cases.length} fidelity case(s) did not end as expected:\n${wrong.join('\n')}`);
      return rows;
    } finally {
      await proofpod.stop();
    }
  } finally {
    await removeTree(work);
  }
}

/** Every case's expectations are consistent: proofpod may be stricter than the bare checker, never laxer, and says why. */
function checkCorpus(): void {
  for (const c of corpus) {
    const differ = c.expected.bare !== c.expected.proofpod;
    if (differ && c.expected.proofpod === 'verified')
      throw new Error(`${c.name}: proofpod must never verify what the bare checkers reject`);
    if (differ !== (c.stricter !== undefined))
      throw new Error(`${c.name}: a reason proofpod is stricter is given exactly when the verdicts differ`);
  }
  if (new Set(caseNames).size !== caseNames.length) throw new Error('fidelity case names must be unique');
}
checkCorpus();

// ---------------------------------------------------------------------------------------------
// The report.

const seconds = (ms: number) => `${(ms / 1000).toFixed(2)} s`;
const cell = (text: string) => text.replaceAll('|', '\\|').replaceAll('\n', ' ');

/** docs/fidelity.md from the rows of a run in which every case ended as expected. */
export function renderReport(
  rows: readonly FidelityRow[],
  run: { date: string; machine: string; postgres: string; versions: string },
): string {
  const agreeing = rows.filter((r) => r.agreement === 'agree').length;
  const asExpected = rows.filter((r) => r.bare.verdict === r.expected.bare && r.proofpod.state === r.expected.proofpod).length;
  const checkers = [...new Map(rows.flatMap((r) => r.bare.checkers).map((c) => [c.command, c])).values()];
  const bareMs = rows.reduce((sum, r) => sum + r.bare.ms, 0);
  const proofpodMs = rows.reduce((sum, r) => sum + r.proofpod.ms, 0);
  return [
    '<!-- Generated by `npm run fidelity` (test/bench/fidelity.ts): do not edit by hand; run it again to regenerate. -->',
    '',
    '# Fidelity: proofpod next to the bare checkers',
    '',
    `Generated ${run.date} with \`npm run fidelity\` on ${run.machine}, Postgres ${run.postgres}; ${run.versions}.`,
    '',
    'Each case is verified twice in the same run: by proofpod on the local substrate (submit → verdict',
    "through the API: fetch, the lane's checkers in sandboxes, the audit, evidence, judge) and by the",
    'bare checkers, run by hand in a fresh plain copy of the same files. The bare verdict is what a',
    'user running them would conclude (the commands are listed below); where the lane runs two',
    'checkers, so does the bare side. Every case states both verdicts it must get: the run stops,',
    'and writes nothing, if one does not. Where the verdicts differ, proofpod is the stricter one and',
    'the row says why; proofpod never verifies what a bare checker rejects.',
    '',
    '| case | origin | profile / lane | bare verdict | proofpod verdict | agreement | bare time | proofpod submit → verdict |',
    '|---|---|---|---|---|---|---|---|',
    ...rows.map(
      (r) =>
        `| ${cell(r.name)} | ${cell(r.origin)} | ${r.profile} / ${r.lane} | ${r.bare.verdict} | ${r.proofpod.state} | ${cell(r.agreement)} | ${seconds(r.bare.ms)} | ${seconds(r.proofpod.ms)} |`,
    ),
    '',
    `**${rows.length} cases; agreement ${((100 * asExpected) / rows.length).toFixed(0)} %** (every verdict, bare and proofpod, as expected): ${agreeing} with the same verdict on both sides, ${rows.length - agreeing} where proofpod is stricter. Bare checkers ${seconds(bareMs)} in all, proofpod submit → verdict ${seconds(proofpodMs)} in all (one case at a time).`,
    '',
    '## Bare commands',
    '',
    ...checkers.map((c) => `- \`${c.command}\` — verified when ${c.verifiedWhen}`),
    '',
    "A checker run on several targets verifies them only if it verifies each, run in order in the same copy. Every command but proofpod-metamath-verify is Debian's.",
    '',
    "## proofpod's reasons",
    '',
    ...rows.map(
      (r) =>
        `- ${cell(r.name)}: ${cell(r.proofpod.stateReason.length > 300 ? `${r.proofpod.stateReason.slice(0, 300)}…` : r.proofpod.stateReason)}`,
    ),
    '',
  ].join('\n');
}

/** The Debian packages the corpus and the checkers come from, with their versions. */
function versions(): string {
  const packages = ['metamath', 'metamath-databases', 'z3', 'cvc5', 'agda-bin', 'agda-stdlib', 'coq', 'libcoq-stdpp'];
  const installed = execFileSync('dpkg-query', ['-W', '-f', '${Package} ${Version}\n', ...packages], { encoding: 'utf8' })
    .trim()
    .split('\n');
  return `Debian ${installed.join(', ')}`;
}

async function main() {
  if (!existsSync(METAMATH_RS)) throw new Error(`${METAMATH_RS} is missing: run npm run build:checkers first`);
  const db = await openBenchDatabase('fidelity', pino({ level: 'warn' }));
  try {
    const started = performance.now();
    const rows = await runFidelity({ databaseUrl: db.url });
    const report = renderReport(rows, {
      date: new Date().toISOString().slice(0, 10),
      machine: machine(),
      postgres: db.postgres,
      versions: versions(),
    });
    await writeFile(path.resolve('docs/fidelity.md'), report);
    process.stdout.write(`${rows.length} cases in ${seconds(performance.now() - started)}; wrote docs/fidelity.md\n`);
  } finally {
    await db.close();
  }
}

runAsMain(import.meta.url, main);
