/**
 * Our own reader of an SMT-LIB 2.6 obligation from an untrusted source: it decides whether a file is
 * one obligation (declarations, definitions and assertions, then one check-sat, nothing that prints
 * or moves where output goes) and re-prints it. The solvers read only the re-print, so a text a
 * solver's lexer reads differently from ours (an escape, where a comment ends) cannot hide a command
 * from us. Fail closed: a character, token, command or option not allowed here is refused by name.
 *
 * Stricter than the standard wherever solvers differ: printable ASCII only, no backslash, tab or line
 * break inside a string or quoted symbol, every token ends at whitespace, a parenthesis or a comment
 * (z3 reads `1e5` as `1` `e5`), and no symbol that z3 or cvc5 reads as a number (`-1`).
 */

export class SmtObligationError extends Error {
  override readonly name = 'SmtObligationError';
}

export interface SmtObligation {
  /** The obligation re-printed by us, one command per line, ending with `(check-sat)\n`: what the solvers read. */
  canonical: string;
  /** The commands' names in order, e.g. ['set-logic','declare-const','assert','check-sat']. */
  commands: string[];
}

/** Far beyond any real obligation; bounds the work a hostile file can ask of a solver's recursive parser. */
export const maxNesting = 10_000;

type AtomKind = 'numeral' | 'decimal' | 'hex' | 'binary' | 'string' | 'symbol' | 'quoted-symbol' | 'keyword';

/** A direct argument of a command: what the shape checks look at. */
type Argument = { kind: 'list' } | { kind: AtomKind; text: string };

type Shape = 'symbol' | 'numeral' | 'keyword' | 'list' | 'any';

/**
 * The commands an obligation may hold and the arguments each takes (set-info's and set-option's are
 * checked apart); check-sat's place is the reader's to check.
 */
const commandShapes = new Map<string, readonly Shape[] | 'checked apart'>([
  ['set-logic', ['symbol']],
  ['set-info', 'checked apart'],
  ['set-option', 'checked apart'],
  ['declare-sort', ['symbol', 'numeral']],
  ['define-sort', ['symbol', 'list', 'any']],
  ['declare-const', ['symbol', 'any']],
  ['declare-fun', ['symbol', 'list', 'any']],
  ['define-fun', ['symbol', 'list', 'any', 'any']],
  ['define-fun-rec', ['symbol', 'list', 'any', 'any']],
  ['define-funs-rec', ['list', 'list']],
  ['declare-datatype', ['symbol', 'list']],
  ['declare-datatypes', ['list', 'list']],
  ['assert', ['any']],
  ['check-sat', []],
]);

/**
 * Standard options that change neither what a solver prints nor where; each with the value it takes.
 * (cvc5 1.0.3 answers `unsupported` to :random-seed, which fails an exact-output check: closed, not open.)
 */
const allowedOptions = new Map<string, 'boolean' | 'numeral'>([
  [':produce-models', 'boolean'],
  [':produce-assignments', 'boolean'],
  [':produce-proofs', 'boolean'],
  [':produce-unsat-cores', 'boolean'],
  [':produce-unsat-assumptions', 'boolean'],
  [':produce-assertions', 'boolean'],
  [':random-seed', 'numeral'],
  [':global-declarations', 'boolean'],
]);

const TAB = 9,
  LF = 10,
  CR = 13,
  SPACE = 32,
  QUOTE = 34,
  HASH = 35,
  LPAREN = 40,
  RPAREN = 41;
const MINUS = 45,
  DOT = 46,
  ZERO = 48,
  COLON = 58,
  SEMICOLON = 59,
  AT = 64,
  BACKSLASH = 92;
const LOWER_B = 98,
  LOWER_X = 120,
  PIPE = 124;

const DIGIT = 1,
  SYMBOL = 2,
  HEX = 4,
  BINARY = 8,
  ENDS_TOKEN = 16;
const classes = new Uint8Array(128);
const mark = (chars: string, cls: number) => {
  for (const ch of chars) classes[ch.charCodeAt(0)]! |= cls;
};
mark('0123456789', DIGIT | SYMBOL | HEX);
mark('01', BINARY);
mark('abcdefABCDEF', HEX);
mark('abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ~!@$%^&*_-+=<>.?/', SYMBOL);
mark(' \t\r\n();', ENDS_TOKEN);

const is = (c: number, cls: number) => c < 128 && (classes[c]! & cls) !== 0;

/** Shown in an error: bounded, never a whole hostile token. */
const shown = (text: string) => (text.length > 60 ? `${text.slice(0, 60)}…` : text);

const refused = (line: number, why: string) => new SmtObligationError(`line ${line}: ${why}`);

/** Reads an obligation, or throws SmtObligationError whose message names the refused command (and its line), e.g. "line 3: echo is not allowed in an obligation". */
export function readSmtObligation(text: string): SmtObligation {
  checkCharacters(text);
  const lines: string[] = [];
  const commands: string[] = [];
  let checkSatLine = 0;
  // The command being read: the line it opens on, its name once read, its direct arguments, its re-print.
  let depth = 0;
  let opened = 0;
  let name: string | undefined;
  let args: Argument[] = [];
  let printed: string[] = [];

  const print = (token: string) => {
    const last = printed[printed.length - 1];
    if (last !== undefined && last !== '(' && token !== ')') printed.push(' ');
    printed.push(token);
  };

  lex(text, {
    open(line) {
      if (depth === 0) {
        opened = line;
        name = undefined;
        args = [];
        printed = [];
      } else if (depth === 1) {
        if (name === undefined) throw refused(opened, 'a command must begin with its name');
        args.push({ kind: 'list' });
      }
      if (++depth > maxNesting) throw refused(line, `parentheses nested deeper than ${maxNesting} are not allowed in an obligation`);
      print('(');
    },
    atom(line, kind, token) {
      if (depth === 0) throw refused(line, `${shown(token)} is outside any command`);
      if (depth === 1 && name === undefined) {
        if (kind !== 'symbol') throw refused(opened, `a command must begin with its name, not ${shown(token)}`);
        if (!commandShapes.has(token)) throw refused(opened, `${shown(token)} is not allowed in an obligation`);
        name = token;
      } else if (depth === 1) {
        args.push({ kind, text: token });
      }
      print(token);
    },
    close(line) {
      if (depth === 0) throw refused(line, "unbalanced ')': it closes no command");
      print(')');
      if (--depth > 0) return;
      if (name === undefined) throw refused(opened, 'a command must begin with its name');
      checkArguments(opened, name, args);
      if (checkSatLine) {
        throw refused(
          opened,
          name === 'check-sat'
            ? `a second check-sat is not allowed in an obligation (the first is on line ${checkSatLine})`
            : `${name} after check-sat is not allowed in an obligation`,
        );
      }
      if (name === 'check-sat') checkSatLine = opened;
      commands.push(name);
      // set-info is metadata, yet solvers act on it (on `:status` z3 and cvc5 fail when they answer
      // otherwise; `:smt-lib-version` changes how they parse): the solvers never see it.
      if (name !== 'set-info') lines.push(printed.join(''));
    },
  });
  if (depth > 0) throw refused(opened, "unbalanced '(': the command opened here is never closed");
  if (!checkSatLine) throw new SmtObligationError('the obligation has no check-sat');
  return { canonical: `${lines.join('\n')}\n`, commands };
}

/** Printable ASCII, space, tab and CRLF or LF line ends only: no byte a solver may read as the end of input, and no line break we do not count. */
function checkCharacters(text: string): void {
  let line = 1;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c >= SPACE && c < 127) continue;
    if (c === LF) line++;
    else if (c === CR) {
      // cvc5 ends a comment at a lone CR, z3 does not.
      if (text.charCodeAt(i + 1) !== LF)
        throw refused(line, 'a carriage return not followed by a line feed is not allowed in an obligation');
    } else if (c !== TAB) {
      throw refused(
        line,
        `character U+${c.toString(16).toUpperCase().padStart(4, '0')} is not allowed in an obligation (printable ASCII only)`,
      );
    }
  }
}

interface Tokens {
  open(line: number): void;
  close(line: number): void;
  atom(line: number, kind: AtomKind, token: string): void;
}

/** One pass over characters already known to be allowed, without recursion: no nesting can overflow our stack. */
function lex(text: string, tokens: Tokens): void {
  const n = text.length;
  let line = 1;
  let i = 0;
  const run = (from: number, cls: number) => {
    let j = from;
    while (j < n && is(text.charCodeAt(j), cls)) j++;
    return j;
  };
  const notToken = (start: number, why = '') => {
    let stop = start + 1;
    while (stop < n && !is(text.charCodeAt(stop), ENDS_TOKEN)) stop++;
    return refused(line, `${shown(text.slice(start, stop))} is not a token of an obligation${why}`);
  };
  /** An atom is text[start, end), and only when a token ends there: z3 reads `1e5` as `1` `e5`. */
  const atom = (start: number, end: number, kind: AtomKind) => {
    if (end < n && !is(text.charCodeAt(end), ENDS_TOKEN)) throw notToken(start);
    tokens.atom(line, kind, text.slice(start, end));
    i = end;
  };
  /** Where the string literal or quoted symbol opened at `start` ends: on its line, with no backslash or tab. */
  const closing = (start: number, delimiter: number, what: string) => {
    for (let j = start + 1; ; j++) {
      const c = j < n ? text.charCodeAt(j) : LF;
      if (c === delimiter) {
        if (delimiter !== QUOTE || text.charCodeAt(j + 1) !== QUOTE) return j + 1;
        j++;
      } else if (c === BACKSLASH) {
        throw refused(line, `a backslash inside a ${what} is not allowed in an obligation (solvers read escapes differently)`);
      } else if (c === TAB) {
        throw refused(line, `a tab inside a ${what} is not allowed in an obligation`);
      } else if (c < SPACE) {
        throw refused(line, `a ${what} must be closed on the line it opens`);
      }
    }
  };

  while (i < n) {
    const c = text.charCodeAt(i);
    if (c === LF) {
      line++;
      i++;
    } else if (c === SPACE || c === TAB || c === CR) {
      i++;
    } else if (c === SEMICOLON) {
      while (i < n && text.charCodeAt(i) !== LF) i++;
    } else if (c === LPAREN) {
      tokens.open(line);
      i++;
    } else if (c === RPAREN) {
      tokens.close(line);
      i++;
    } else if (c === QUOTE) {
      atom(i, closing(i, QUOTE, 'string literal'), 'string');
    } else if (c === PIPE) {
      atom(i, closing(i, PIPE, 'quoted symbol'), 'quoted-symbol');
    } else if (is(c, DIGIT)) {
      const whole = run(i, DIGIT);
      // z3 reads `012` as 12; the standard has no such numeral.
      if (c === ZERO && whole > i + 1) throw notToken(i, ' (a numeral has no leading zero)');
      if (text.charCodeAt(whole) === DOT && is(text.charCodeAt(whole + 1), DIGIT)) atom(i, run(whole + 1, DIGIT), 'decimal');
      else atom(i, whole, 'numeral');
    } else if (c === HASH) {
      const base = text.charCodeAt(i + 1);
      const end = base === LOWER_X ? run(i + 2, HEX) : base === LOWER_B ? run(i + 2, BINARY) : i + 2;
      if (end === i + 2) throw notToken(i);
      atom(i, end, base === LOWER_X ? 'hex' : 'binary');
    } else if (c === COLON) {
      if (!is(text.charCodeAt(i + 1), SYMBOL) || is(text.charCodeAt(i + 1), DIGIT)) throw notToken(i);
      atom(i, run(i + 1, SYMBOL), 'keyword');
    } else if (is(c, SYMBOL)) {
      const end = run(i, SYMBOL);
      // The standard reserves symbols beginning with @ or . for solvers; z3 and cvc5 read `-1` as a number.
      if (c === AT || c === DOT || (c === MINUS && is(text.charCodeAt(i + 1), DIGIT))) {
        throw refused(
          line,
          `the symbol ${shown(text.slice(i, end))} is not allowed in an obligation (${c === MINUS ? 'solvers read it as a number' : 'solvers reserve it'})`,
        );
      }
      atom(i, end, 'symbol');
    } else {
      throw refused(line, `${JSON.stringify(String.fromCharCode(c))} is not allowed outside a string literal or quoted symbol`);
    }
  }
}

/** The arguments of an allowed command: any other shape is refused, and any option not known to be harmless. */
function checkArguments(line: number, name: string, args: readonly Argument[]): void {
  const [first, second] = args;
  if (name === 'set-option') {
    if (first?.kind !== 'keyword') throw refused(line, 'set-option must name an option');
    const takes = allowedOptions.get(first.text);
    if (!takes) throw refused(line, `set-option ${shown(first.text)} is not allowed in an obligation`);
    const fits =
      takes === 'numeral' ? second?.kind === 'numeral' : second?.kind === 'symbol' && (second.text === 'true' || second.text === 'false');
    if (args.length !== 2 || !fits)
      throw refused(line, `set-option ${first.text} takes ${takes === 'numeral' ? 'a numeral' : 'true or false'}`);
    return;
  }
  if (name === 'set-info') {
    if (first?.kind !== 'keyword' || args.length > 2) throw refused(line, 'set-info takes a keyword and at most one value');
    return;
  }
  const shape = commandShapes.get(name);
  if (shape === undefined || shape === 'checked apart') throw new Error(`no shape for ${name}`);
  const fits = (a: Argument, s: Shape) => s === 'any' || a.kind === s || (s === 'symbol' && a.kind === 'quoted-symbol');
  if (args.length !== shape.length || !args.every((a, k) => fits(a, shape[k]!))) {
    throw refused(
      line,
      shape.length === 0
        ? `${name} takes no arguments`
        : `${name} takes ${shape.map((s) => (s === 'any' ? 'a term or sort' : `a ${s}`)).join(', ')}`,
    );
  }
}
