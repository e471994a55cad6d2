import { execFile } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { maxNesting, readSmtObligation, SmtObligationError } from '../task-pod/smtlib-obligation.js';

const fixture = (name: string) => readFileSync(path.resolve('test/fixtures', name), 'utf8');

/** Accepted obligations: the text, its re-print, its commands and what both solvers answer on the re-print. */
const accepted: { name: string; text: string; canonical: string; commands: string[]; answer: 'sat' | 'unsat' }[] = [
  {
    name: 'an unsat obligation with declare-fun',
    text: '; p and not p\n(set-logic QF_UFLIA)\n(declare-fun f (Int) Int)\n(declare-fun p () Bool)\n(assert (and p (not p)))  ; the contradiction\n(assert (= (f 1) 2))\n(check-sat)\n',
    canonical:
      '(set-logic QF_UFLIA)\n(declare-fun f (Int) Int)\n(declare-fun p () Bool)\n(assert (and p (not p)))\n(assert (= (f 1) 2))\n(check-sat)\n',
    commands: ['set-logic', 'declare-fun', 'declare-fun', 'assert', 'assert', 'check-sat'],
    answer: 'unsat',
  },
  {
    name: 'datatypes',
    text: '(declare-datatypes ((Lst 0)) (((nil) (cons (head Int) (tail Lst)))))\n(declare-datatype Color ((red) (green)))\n(declare-const l Lst)\n(declare-const c Color)\n(assert (and (is-cons l) (= l nil)))\n(assert (distinct c red green))\n(check-sat)',
    canonical:
      '(declare-datatypes ((Lst 0)) (((nil) (cons (head Int) (tail Lst)))))\n(declare-datatype Color ((red) (green)))\n(declare-const l Lst)\n(declare-const c Color)\n(assert (and (is-cons l) (= l nil)))\n(assert (distinct c red green))\n(check-sat)\n',
    commands: ['declare-datatypes', 'declare-datatype', 'declare-const', 'declare-const', 'assert', 'assert', 'check-sat'],
    answer: 'unsat',
  },
  {
    name: 'define-fun, define-fun-rec, declare-sort and define-sort',
    text: [
      '(set-logic ALL)',
      '(declare-sort U 0)',
      '(define-sort Pred (T) (Array T Bool))',
      '(declare-const s (Pred U))',
      '(define-fun max ((a Int) (b Int)) Int (ite (> a b) a b))',
      '(define-fun-rec fact ((n Int)) Int (ite (<= n 0) 1 (* n (fact (- n 1)))))',
      '(define-funs-rec ((ev ((n Int)) Bool) (od ((n Int)) Bool)) ((ite (= n 0) true (od (- n 1))) (ite (= n 0) false (ev (- n 1)))))',
      '(assert (> (max 3 4) 4))',
      '(check-sat)',
    ].join('\n'),
    canonical: [
      '(set-logic ALL)',
      '(declare-sort U 0)',
      '(define-sort Pred (T) (Array T Bool))',
      '(declare-const s (Pred U))',
      '(define-fun max ((a Int) (b Int)) Int (ite (> a b) a b))',
      '(define-fun-rec fact ((n Int)) Int (ite (<= n 0) 1 (* n (fact (- n 1)))))',
      '(define-funs-rec ((ev ((n Int)) Bool) (od ((n Int)) Bool)) ((ite (= n 0) true (od (- n 1))) (ite (= n 0) false (ev (- n 1)))))',
      '(assert (> (max 3 4) 4))',
      '(check-sat)\n',
    ].join('\n'),
    commands: [
      'set-logic',
      'declare-sort',
      'define-sort',
      'declare-const',
      'define-fun',
      'define-fun-rec',
      'define-funs-rec',
      'assert',
      'check-sat',
    ],
    answer: 'unsat',
  },
  {
    name: 'set-info, which the solvers are not given',
    text: '(set-info :smt-lib-version 2.6)\n(set-info :source |a benchmark; from somewhere|)\n(set-info :status sat)\n(set-info :license "MIT")\n(set-info :empty)\n(assert false)\n(check-sat)\n',
    canonical: '(assert false)\n(check-sat)\n',
    commands: ['set-info', 'set-info', 'set-info', 'set-info', 'set-info', 'assert', 'check-sat'],
    answer: 'unsat',
  },
  {
    name: 'quoted symbols and strings with ""',
    text: '(set-logic ALL)\n(declare-const |x y; (z)| String)\n(assert (= |x y; (z)| "say ""hi"" |;(x)"))\n(assert (not (= (str.len |x y; (z)|) 14)))\n(check-sat)\n',
    canonical:
      '(set-logic ALL)\n(declare-const |x y; (z)| String)\n(assert (= |x y; (z)| "say ""hi"" |;(x)"))\n(assert (not (= (str.len |x y; (z)|) 14)))\n(check-sat)\n',
    commands: ['set-logic', 'declare-const', 'assert', 'assert', 'check-sat'],
    answer: 'unsat',
  },
  {
    name: 'numerals, decimals, hexadecimals and binaries',
    text: '(set-logic ALL)\n(declare-const r Real)\n(assert (= r 0.50))\n(assert (= #x0f #b00001111))\n(assert (= (* 2 r) 1.0))\n(assert (= 0 (- 10 10)))\n(check-sat)\n',
    canonical:
      '(set-logic ALL)\n(declare-const r Real)\n(assert (= r 0.50))\n(assert (= #x0f #b00001111))\n(assert (= (* 2 r) 1.0))\n(assert (= 0 (- 10 10)))\n(check-sat)\n',
    commands: ['set-logic', 'declare-const', 'assert', 'assert', 'assert', 'assert', 'check-sat'],
    answer: 'sat',
  },
  {
    name: 'harmless options, CRLF line ends, tabs and loose spacing',
    text: '(set-option :produce-models true)\r\n(set-option\t:produce-unsat-cores   false)\r\n(set-option :global-declarations true)\r\n(set-logic QF_LIA) (declare-const x Int)\r\n(  assert\t( !  (> x 1)  :named  big ) )\r\n( check-sat )',
    canonical:
      '(set-option :produce-models true)\n(set-option :produce-unsat-cores false)\n(set-option :global-declarations true)\n(set-logic QF_LIA)\n(declare-const x Int)\n(assert (! (> x 1) :named big))\n(check-sat)\n',
    commands: ['set-option', 'set-option', 'set-option', 'set-logic', 'declare-const', 'assert', 'check-sat'],
    answer: 'sat',
  },
];

/** Refused texts and the error each gives. */
const refused: [string, string, string][] = [
  [
    'echo "unsat" before a satisfiable check-sat',
    '(declare-const x Int)\n(assert (> x 1))\n(echo "unsat")\n(check-sat)\n',
    'line 3: echo is not allowed in an obligation',
  ],
  ['only an echo', '(echo "unsat")\n', 'line 1: echo is not allowed in an obligation'],
  [
    'two check-sats',
    '(assert false)\n(check-sat)\n(check-sat)\n',
    'line 3: a second check-sat is not allowed in an obligation (the first is on line 2)',
  ],
  ['push', '(declare-const x Int)\n(push 1)\n(assert false)\n(check-sat)\n', 'line 2: push is not allowed in an obligation'],
  ['pop', '(declare-const x Int)\n(pop 1)\n(check-sat)\n', 'line 2: pop is not allowed in an obligation'],
  [
    'exit before check-sat',
    '(declare-const x Int)\n(assert (> x 1))\n(exit)\n(assert false)\n(check-sat)\n',
    'line 3: exit is not allowed in an obligation',
  ],
  [
    'the regular output channel',
    '(set-option :regular-output-channel "/dev/stdout")\n(check-sat)\n',
    'line 1: set-option :regular-output-channel is not allowed in an obligation',
  ],
  [
    'the diagnostic output channel',
    '(set-option :diagnostic-output-channel "/dev/stdout")\n(check-sat)\n',
    'line 1: set-option :diagnostic-output-channel is not allowed in an obligation',
  ],
  ['print-success', '(set-option :print-success true)\n(check-sat)\n', 'line 1: set-option :print-success is not allowed in an obligation'],
  ['verbosity', '(set-option :verbosity 10)\n(check-sat)\n', 'line 1: set-option :verbosity is not allowed in an obligation'],
  [
    'a solver-specific option',
    '(set-option :smt.mbqi false)\n(check-sat)\n',
    'line 1: set-option :smt.mbqi is not allowed in an obligation',
  ],
  [
    'an allowed option with a wrong value',
    '(set-option :produce-models 1)\n(check-sat)\n',
    'line 1: set-option :produce-models takes true or false',
  ],
  ['an allowed option with two values', '(set-option :random-seed 1 2)\n(check-sat)\n', 'line 1: set-option :random-seed takes a numeral'],
  ['set-option without an option', '(set-option)\n(check-sat)\n', 'line 1: set-option must name an option'],
  ['set-info without a keyword', '(set-info status sat)\n(check-sat)\n', 'line 1: set-info takes a keyword and at most one value'],
  ['an unknown command', '(frobnicate x)\n(check-sat)\n', 'line 1: frobnicate is not allowed in an obligation'],
  [
    'assert after check-sat',
    '(assert true)\n(check-sat)\n(assert false)\n',
    'line 3: assert after check-sat is not allowed in an obligation',
  ],
  ['get-model after check-sat', '(assert true)\n(check-sat)\n(get-model)\n', 'line 3: get-model is not allowed in an obligation'],
  ...[
    'reset',
    'reset-assertions',
    'get-value',
    'get-info',
    'get-option',
    'get-assertions',
    'get-proof',
    'get-unsat-core',
    'check-sat-assuming',
    'include',
    'eval',
    'simplify',
    'display',
    'declare-codatatypes',
  ].map((command): [string, string, string] => [
    command,
    `(assert true)\n\n(${command} x)\n(check-sat)\n`,
    `line 3: ${command} is not allowed in an obligation`,
  ]),
  ['check-sat with arguments', '(check-sat x)\n', 'line 1: check-sat takes no arguments'],
  ['a command of the wrong shape', '(declare-fun f Int Int)\n(check-sat)\n', 'line 1: declare-fun takes a symbol, a list, a term or sort'],
  ['assert of two terms', '(assert true false)\n(check-sat)\n', 'line 1: assert takes a term or sort'],
  ['no check-sat', '(declare-const x Int)\n(assert false)\n', 'the obligation has no check-sat'],
  ['an empty file', '', 'the obligation has no check-sat'],
  ['a command headed by a list', '((assert false))\n(check-sat)\n', 'line 1: a command must begin with its name'],
  ['an empty command', '()\n(check-sat)\n', 'line 1: a command must begin with its name'],
  ['a command headed by a string', '("echo" x)\n(check-sat)\n', 'line 1: a command must begin with its name, not "echo"'],
  ['a command headed by a quoted symbol', '(|assert| false)\n(check-sat)\n', 'line 1: a command must begin with its name, not |assert|'],
  ['a token outside any command', '(assert false)\nunsat\n(check-sat)\n', 'line 2: unsat is outside any command'],
  [
    'an unclosed command',
    '(declare-const x Int)\n(assert (> x 1)\n(check-sat)\n',
    "line 2: unbalanced '(': the command opened here is never closed",
  ],
  ['a closing parenthesis too many', '(assert false))\n(check-sat)\n', "line 1: unbalanced ')': it closes no command"],
  [
    'a backslash in a string',
    '(declare-const s String)\n(assert (= s "a\\" (assert false) (check-sat) (exit) \\""))\n(check-sat)\n',
    'line 2: a backslash inside a string literal is not allowed in an obligation (solvers read escapes differently)',
  ],
  [
    'a backslash in a quoted symbol',
    '(declare-const |a\\| Int)\n(check-sat)\n',
    'line 1: a backslash inside a quoted symbol is not allowed in an obligation (solvers read escapes differently)',
  ],
  ['an unterminated string', '(assert (= s "abc))\n(check-sat)\n', 'line 1: a string literal must be closed on the line it opens'],
  ['an unterminated string at the end', '(check-sat "', 'line 1: a string literal must be closed on the line it opens'],
  ['an unterminated quoted symbol', '(assert |abc)\n(check-sat)\n', 'line 1: a quoted symbol must be closed on the line it opens'],
  ['a tab in a string', '(assert (= s "a\tb"))\n(check-sat)\n', 'line 1: a tab inside a string literal is not allowed in an obligation'],
  [
    'a non-ASCII character',
    '(assert true)\n(declare-const é Int)\n(check-sat)\n',
    'line 2: character U+00E9 is not allowed in an obligation (printable ASCII only)',
  ],
  ['a NUL byte', '(assert true)\0\n(check-sat)\n', 'line 1: character U+0000 is not allowed in an obligation (printable ASCII only)'],
  [
    'a non-ASCII character in a comment',
    '; naïve\n(check-sat)\n',
    'line 1: character U+00EF is not allowed in an obligation (printable ASCII only)',
  ],
  ['a byte order mark', '\uFEFF(check-sat)\n', 'line 1: character U+FEFF is not allowed in an obligation (printable ASCII only)'],
  [
    'a lone carriage return ending a comment',
    '(assert true)\n; hidden?\r(assert false)\n(check-sat)\n',
    'line 2: a carriage return not followed by a line feed is not allowed in an obligation',
  ],
  ['a character that is no token', '(assert {x})\n(check-sat)\n', 'line 1: "{" is not allowed outside a string literal or quoted symbol'],
  ['a numeral running into a symbol', '(assert (= 1e5 1))\n(check-sat)\n', 'line 1: 1e5 is not a token of an obligation'],
  [
    'a numeral with a leading zero',
    '(assert (= 012 12))\n(check-sat)\n',
    'line 1: 012 is not a token of an obligation (a numeral has no leading zero)',
  ],
  ['a decimal without fraction digits', '(assert (= 1. 1.0))\n(check-sat)\n', 'line 1: 1. is not a token of an obligation'],
  ['a decimal with two points', '(assert (= 1.2.3 1.0))\n(check-sat)\n', 'line 1: 1.2.3 is not a token of an obligation'],
  ['a bad hexadecimal', '(assert (= #xg #x0))\n(check-sat)\n', 'line 1: #xg is not a token of an obligation'],
  ['an unknown # literal', '(assert (= #o17 #x0))\n(check-sat)\n', 'line 1: #o17 is not a token of an obligation'],
  ['a bad binary', '(assert (= #b012 #b0))\n(check-sat)\n', 'line 1: #b012 is not a token of an obligation'],
  ['a keyword starting with a digit', '(set-info :1 x)\n(check-sat)\n', 'line 1: :1 is not a token of an obligation'],
  ['a string running into a symbol', '(assert (= s "a"b))\n(check-sat)\n', 'line 1: "a"b is not a token of an obligation'],
  [
    'a symbol solvers read as a number',
    '(declare-const -1 Int)\n(assert (= -1 5))\n(check-sat)\n',
    'line 1: the symbol -1 is not allowed in an obligation (solvers read it as a number)',
  ],
  [
    'a symbol reserved for solvers',
    '(declare-const @x Int)\n(check-sat)\n',
    'line 1: the symbol @x is not allowed in an obligation (solvers reserve it)',
  ],
  [
    'the hostile output-channel fixture',
    fixture('hostile/smt-output-channel/a.smt2'),
    'line 5: set-option :regular-output-channel is not allowed in an obligation',
  ],
];

describe('the SMT-LIB obligation reader', () => {
  it.each(accepted)('accepts $name', ({ text, canonical, commands }) => {
    expect(readSmtObligation(text)).toEqual({ canonical, commands });
  });

  it.each(refused)('refuses %s', (_name, text, message) => {
    expect(() => readSmtObligation(text)).toThrow(new SmtObligationError(message));
  });

  it('accepts every whitelisted option', () => {
    const options = [
      'produce-models',
      'produce-assignments',
      'produce-proofs',
      'produce-unsat-cores',
      'produce-unsat-assumptions',
      'produce-assertions',
      'global-declarations',
    ];
    const text = `${options.map((o) => `(set-option :${o} false)`).join('\n')}\n(set-option :random-seed 42)\n(check-sat)\n`;
    expect(readSmtObligation(text).commands).toEqual([...options.map(() => 'set-option'), 'set-option', 'check-sat']);
  });

  it('reads the proof fixtures and the satisfiable hostile target as obligations', () => {
    const satisfiable = '(declare-const x Int)\n(assert (> x 1))\n(check-sat)\n';
    expect(readSmtObligation(fixture('proofs/unsat.smt2'))).toEqual({
      canonical: '(declare-const x Int)\n(assert (> x 1))\n(assert (< x 0))\n(check-sat)\n',
      commands: ['declare-const', 'assert', 'assert', 'check-sat'],
    });
    expect(readSmtObligation(fixture('proofs/sat.smt2')).canonical).toBe(satisfiable);
    // b.smt2 is well formed; only a solver can tell it does not hold.
    expect(readSmtObligation(fixture('hostile/smt-output-channel/b.smt2')).canonical).toBe(satisfiable);
  });

  it('re-reads its own re-print to the same re-print', () => {
    const texts = [...accepted.map((a) => a.text), fixture('proofs/unsat.smt2'), fixture('proofs/sat.smt2')];
    for (const text of texts) {
      const { canonical } = readSmtObligation(text);
      expect(readSmtObligation(canonical).canonical).toBe(canonical);
    }
  });

  it(`accepts nesting of ${maxNesting} and refuses deeper, without recursion`, () => {
    const nested = (depth: number) => `(assert ${'(not '.repeat(depth - 2)}(= 1 1)${')'.repeat(depth - 2)})\n(check-sat)\n`;
    expect(readSmtObligation(nested(maxNesting)).commands).toEqual(['assert', 'check-sat']);
    expect(() => readSmtObligation(nested(maxNesting + 1))).toThrow(
      new SmtObligationError(`line 1: parentheses nested deeper than ${maxNesting} are not allowed in an obligation`),
    );
    expect(() => readSmtObligation(`(assert ${'(not '.repeat(200_000)}`)).toThrow(
      new SmtObligationError(`line 1: parentheses nested deeper than ${maxNesting} are not allowed in an obligation`),
    );
    expect(() => readSmtObligation('('.repeat(200_000))).toThrow(new SmtObligationError('line 1: a command must begin with its name'));
  });

  it('reads a 5 MB obligation', () => {
    const asserts = Array.from({ length: 100_000 }, (_, k) => `(assert (> (+ x ${k}) |y ${k % 7}|)) ; bound ${k}`);
    const wide = `(assert (distinct ${Array.from({ length: 100_000 }, (_, k) => `"s${k}"`).join(' ')}))`;
    const text = `(declare-const x Int)\n${asserts.join('\n')}\n${wide}\n(check-sat)\n`;
    expect(text.length).toBeGreaterThan(5_000_000);
    const { canonical, commands } = readSmtObligation(text);
    expect(commands).toHaveLength(100_003);
    expect(canonical.split('\n')[1]).toBe('(assert (> (+ x 0) |y 0|))');
  });
});

describe('the re-print as the solvers read it', () => {
  let dir: string;
  beforeAll(async () => {
    dir = await mkdtemp(path.join(tmpdir(), 'proofpod-smtlib-'));
  });
  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  const solvers: [string, string[]][] = [
    ['z3', ['-smt2']],
    ['cvc5', ['--lang=smt2']],
  ];
  const cases: [string, string, 'sat' | 'unsat'][] = [
    ['proofs/unsat.smt2', fixture('proofs/unsat.smt2'), 'unsat'],
    ['proofs/sat.smt2', fixture('proofs/sat.smt2'), 'sat'],
    ...accepted.map((a): [string, string, 'sat' | 'unsat'] => [a.name, a.text, a.answer]),
  ];

  it.each(solvers.flatMap(([solver, flags]) => cases.map(([name, text, answer]) => ({ solver, flags, name, text, answer }))))(
    '$solver answers $answer on $name',
    async ({ solver, flags, name, text, answer }) => {
      const file = path.join(dir, `${solver}-${name.replace(/[^a-z0-9]+/gi, '-')}.smt2`);
      await writeFile(file, readSmtObligation(text).canonical);
      const { stdout } = await promisify(execFile)(`/usr/bin/${solver}`, [...flags, file], { timeout: 30_000 });
      expect(stdout).toBe(`${answer}\n`);
    },
  );
});
