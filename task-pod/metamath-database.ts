/**
 * Our own reader of a Metamath database, for the axiom audit: a hostile source can declare its own
 * `|- F` axiom and "prove" anything from it, and metamath C will report every proof verified. So
 * the logical axioms a database declares must be identical to those of a reference database the
 * operator pins, and its includes must stay inside the source directory.
 *
 * It reads the language of the Metamath book (§4.1) and fails closed: anything it does not
 * understand, or that metamath C 0.195 tolerates but the specification forbids (an include inside
 * a block, a block or a statement spanning files), is an error naming the line, never skipped: the
 * database it describes is the one metamath C checks, or there is none.
 */
import { lstat } from 'node:fs/promises';
import path from 'node:path';
import { UntrustedFileError, readUntrusted } from './untrusted-file.js';

export class MetamathReadError extends Error {
  override readonly name = 'MetamathReadError';
}

/** One logical axiom with everything that gives it its meaning. */
export interface MetamathAxiom {
  label: string;
  /** `|- ...` tokens joined by single spaces, typecode first. */
  statement: string;
  /** The essential hypotheses ($e) in scope, in order, each as its statement (typecode first). */
  hypotheses: string[];
  /** Typecodes of its mandatory variables (those occurring in the statement or the $e hypotheses), as "var:typecode", in the order of their $f declarations. */
  variables: string[];
  /** Distinct-variable conditions among its mandatory variables in scope, each pair "x y" with x<y, sorted, deduplicated. */
  disjoint: string[];
}

/** How a database's includes are read: `name` exactly as written in `$[ name $]`. Throws for anything outside the boundary. */
export type ReadInclude = (name: string) => Promise<Buffer>;

/** The typecode of the assertions the audit pins. */
const provable = '|-';

const DOLLAR = 0x24;
const OPEN = 0x28;
const BRACKET = '['.charCodeAt(0);
const CLOSE = 0x29;
const NEWLINE = 0x0a;

/** 1 for the white space of the specification (space, tab, LF, FF, CR); 2 for the other printable ASCII; 0 for any other byte. */
const byteClass = new Uint8Array(256);
for (let b = 0x21; b <= 0x7e; b++) byteClass[b] = 2;
for (const b of [0x20, 0x09, 0x0a, 0x0c, 0x0d]) byteClass[b] = 1;

const labelByte = new Uint8Array(256);
for (const c of 'abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_.') labelByte[c.charCodeAt(0)] = 1;

/** The keywords by their second byte; comments (`$(`) never reach the statement reader. */
const keywords: (string | undefined)[] = [];
for (const c of 'cvfeadp=.{}[]') keywords[c.charCodeAt(0)] = `$${c}`;

/** The tokens of one file, by byte offsets: set.mm is 41 MB, mostly proofs and comments, which are skipped with `indexOf`. */
class Tokens {
  pos = 0;
  /** End of the token `next` returned. */
  end = 0;

  constructor(
    readonly buf: Buffer,
    readonly file: string,
  ) {}

  fail(offset: number, what: string, cause?: unknown): never {
    let line = 1;
    for (let i = this.buf.indexOf(NEWLINE); i >= 0 && i < offset; i = this.buf.indexOf(NEWLINE, i + 1)) line++;
    throw new MetamathReadError(`line ${line} of ${this.file}: ${what}`, cause === undefined ? undefined : { cause });
  }

  /** Every byte printable ASCII or white space, before anything is skipped unread. */
  checkBytes(): void {
    const b = this.buf;
    for (let i = 0; i < b.length; i++) {
      if (byteClass[b[i]!] === 0) this.fail(i, `byte 0x${b[i]!.toString(16).padStart(2, '0')} is not printable ASCII`);
    }
  }

  /** Start of the next token, comments skipped; -1 at the end of the file. */
  next(): number {
    const b = this.buf;
    const n = b.length;
    for (;;) {
      let i = this.pos;
      while (i < n && byteClass[b[i]!] === 1) i++;
      if (i >= n) {
        this.pos = n;
        return -1;
      }
      let j = i + 1;
      while (j < n && byteClass[b[j]!] !== 1) j++;
      this.pos = this.end = j;
      if (j - i === 2 && b[i] === DOLLAR && b[i + 1] === OPEN) this.skipComment(i);
      else return i;
    }
  }

  /** Whether the bytes at `i` are the keyword `$<c>` (`c` its second byte) standing alone as a token. */
  private isKeyword(i: number, c: number): boolean {
    const b = this.buf;
    return (
      b[i] === DOLLAR && b[i + 1] === c && (i === 0 || byteClass[b[i - 1]!] === 1) && (i + 2 >= b.length || byteClass[b[i + 2]!] === 1)
    );
  }

  /** Files named by `$( Begin $[ f $] $)` markers so far: their content is inline, between the markers. */
  private readonly begun = new Set<string>();

  /**
   * The markers metamath C's `write source` leaves in comments, which metamath C acts on: a
   * `$( Skip $[ f $] $)` of a file not begun before makes it read `f` from disk (and a `Begin`
   * without its `End` is an error of its own) — an include our reader would not see.
   */
  private includeMarker(start: number, at: number): void {
    const lead = this.buf.toString('latin1', start + 2, at).trim();
    if (lead !== 'Begin' && lead.toLowerCase() !== 'skip') return;
    const name = /^\s+(\S+)\s+\$\]/.exec(this.buf.toString('latin1', at + 2, Math.min(this.buf.length, at + 2 + 1100)))?.[1];
    if (name === undefined) this.fail(at, `a "$( ${lead} $[" comment without a file name and "$]"`);
    if (lead === 'Begin') this.begun.add(name);
    else if (!this.begun.has(name))
      this.fail(at, `a "$( Skip $[ ${name} $] $)" comment of a file not begun before (metamath C would read it)`);
  }

  /** Past the comment opened at `start`: `$)` ends it only as a whole token; `$(` inside is an error (comments do not nest). */
  private skipComment(start: number): void {
    const b = this.buf;
    for (let i = b.indexOf(DOLLAR, this.pos); ; i = b.indexOf(DOLLAR, i + 1)) {
      if (i < 0) this.fail(start, 'the comment is not terminated');
      if (b[i + 1] === OPEN) this.fail(i, '"$(" inside a comment (comments do not nest)');
      if (b[i + 1] === BRACKET) this.includeMarker(start, i);
      if (b[i + 1] !== CLOSE) continue;
      if (!this.isKeyword(i, CLOSE)) this.fail(i, '"$)" inside a token of a comment');
      this.pos = i + 2;
      return;
    }
  }

  /**
   * Past `keyword`, which ends a proof or a `$p` statement, unread: any other `$` on the way (a
   * keyword, or inside a token) is an error; comments are skipped.
   */
  skipTo(keyword: '$=' | '$.', start: number, what: string): void {
    const b = this.buf;
    const c = keyword.charCodeAt(1);
    for (let i = b.indexOf(DOLLAR, this.pos); ; i = b.indexOf(DOLLAR, this.pos)) {
      if (i < 0) this.fail(start, `${what} is not terminated`);
      if (this.isKeyword(i, c)) {
        this.pos = i + 2;
        return;
      }
      if (this.isKeyword(i, OPEN)) {
        this.pos = i + 2;
        this.skipComment(i);
        continue;
      }
      this.fail(i, `unexpected "${this.tokenAt(i)}" in ${what}`);
    }
  }

  /** The keyword the token at `start` is, or '' for a math symbol or label; anything else with a `$` is an error. */
  keyword(start: number): string {
    const b = this.buf;
    if (b[start] === DOLLAR) {
      const keyword = this.end - start === 2 ? keywords[b[start + 1]!] : undefined;
      return keyword ?? this.fail(start, `unknown keyword "${this.text(start)}"`);
    }
    const dollar = b.indexOf(DOLLAR, start);
    if (dollar >= 0 && dollar < this.end) this.fail(start, `"${this.text(start)}" contains "$" (math symbols and labels cannot)`);
    return '';
  }

  text(start: number): string {
    return this.buf.toString('latin1', start, this.end);
  }

  /** The whole token around byte `i`, for an error message; bounded. */
  private tokenAt(i: number): string {
    const b = this.buf;
    let s = i;
    while (s > 0 && byteClass[b[s - 1]!] !== 1) s--;
    let e = i;
    while (e < b.length && byteClass[b[e]!] !== 1) e++;
    return b.toString('latin1', s, Math.min(e, s + 40));
  }
}

interface Essential {
  statement: string;
  variables: string[];
}

/** Where each block's declarations start, so that `$}` ends them. */
interface Scope {
  /** Where its `${` is, in the file being read (a block cannot span files). */
  opened: number;
  variables: number;
  floats: number;
  essentials: number;
  disjoint: number;
}

/** The state of one read: what is declared, what is in scope, and the `|-` axioms so far. */
class Reader {
  readonly axioms: MetamathAxiom[] = [];
  private readonly constants = new Set<string>();
  private readonly labels = new Set<string>();
  private readonly included = new Set<string>();
  private readonly variables: string[] = [];
  private readonly activeVariables = new Set<string>();
  /** Active $f hypotheses in declaration order, and each variable's typecode. */
  private readonly floats: string[] = [];
  private readonly typecodes = new Map<string, string>();
  private readonly essentials: Essential[] = [];
  /** Active $d pairs, each `[x, y]` with x<y. */
  private readonly disjoint: [string, string][] = [];
  private readonly scopes: Scope[] = [];

  constructor(private readonly readInclude: ReadInclude) {}

  async read(buf: Buffer, file: string): Promise<void> {
    const t = new Tokens(buf, file);
    t.checkBytes();
    for (let start = t.next(); start >= 0; start = t.next()) {
      const keyword = t.keyword(start);
      switch (keyword) {
        case '${':
          this.scopes.push({
            opened: start,
            variables: this.variables.length,
            floats: this.floats.length,
            essentials: this.essentials.length,
            disjoint: this.disjoint.length,
          });
          break;
        case '$}':
          if (!this.closeScope()) t.fail(start, '"$}" without a matching "${"');
          break;
        case '$c':
          if (this.scopes.length > 0) t.fail(start, '"$c" inside a block (constants are declared at the outermost scope)');
          for (const symbol of this.symbols(t, start, '$c', 1)) {
            if (this.constants.has(symbol) || this.activeVariables.has(symbol)) t.fail(start, `"${symbol}" is already declared`);
            this.constants.add(symbol);
          }
          break;
        case '$v':
          for (const symbol of this.symbols(t, start, '$v', 1)) {
            if (this.constants.has(symbol) || this.activeVariables.has(symbol)) t.fail(start, `"${symbol}" is already declared`);
            this.variables.push(symbol);
            this.activeVariables.add(symbol);
          }
          break;
        case '$d':
          this.readDisjoint(t, start);
          break;
        case '$[':
          await this.include(t, start);
          break;
        case '':
          this.readLabelled(t, start);
          break;
        default:
          t.fail(start, `unexpected "${t.text(start)}"`);
      }
    }
    const open = this.scopes.at(-1);
    if (open) t.fail(open.opened, 'this "${" is not closed by the end of the file');
  }

  /** The math symbols up to `$.`, none of them a keyword; at least `min`. */
  private symbols(t: Tokens, start: number, what: string, min: number): string[] {
    const symbols: string[] = [];
    for (let s = t.next(); ; s = t.next()) {
      if (s < 0) t.fail(start, `the ${what} statement is not terminated`);
      const keyword = t.keyword(s);
      if (keyword === '$.') break;
      if (keyword !== '') t.fail(s, `unexpected "${t.text(s)}" in a ${what} statement`);
      symbols.push(t.text(s));
    }
    if (symbols.length < min) t.fail(start, `a ${what} statement needs at least ${min} symbol${min > 1 ? 's' : ''}`);
    return symbols;
  }

  private closeScope(): boolean {
    const scope = this.scopes.pop();
    if (!scope) return false;
    for (const v of this.variables.splice(scope.variables)) this.activeVariables.delete(v);
    for (const v of this.floats.splice(scope.floats)) this.typecodes.delete(v);
    this.essentials.length = scope.essentials;
    this.disjoint.length = scope.disjoint;
    return true;
  }

  private readDisjoint(t: Tokens, start: number): void {
    const vars = this.symbols(t, start, '$d', 2);
    for (const [i, v] of vars.entries()) {
      if (!this.activeVariables.has(v)) t.fail(start, `"${v}" in a $d statement is not an active variable`);
      if (vars.indexOf(v) !== i) t.fail(start, `"${v}" occurs twice in a $d statement`);
      for (const w of vars.slice(0, i)) this.disjoint.push(v < w ? [v, w] : [w, v]);
    }
  }

  /** `$[ name $]`, at the outermost scope only; a name already included is skipped, as Metamath specifies. */
  private async include(t: Tokens, start: number): Promise<void> {
    if (this.scopes.length > 0) t.fail(start, 'an include inside a block (includes are allowed at the outermost scope only)');
    const s = t.next();
    if (s < 0 || t.keyword(s) !== '') t.fail(start, 'an include without a file name');
    const name = t.text(s);
    const close = t.next();
    if (close < 0 || t.keyword(close) !== '$]') t.fail(start, `the include of "${name}" is not closed by "$]"`);
    if (this.included.has(name)) return;
    this.included.add(name);
    let content: Buffer;
    try {
      content = await this.readInclude(name);
    } catch (error) {
      t.fail(start, `include "${name}" is refused: ${error instanceof Error ? error.message : String(error)}`, error);
    }
    await this.read(content, `"${name}"`);
  }

  /** A `$f`, `$e`, `$a` or `$p` statement, from its label. */
  private readLabelled(t: Tokens, start: number): void {
    const label = t.text(start);
    for (let i = start; i < t.end; i++)
      if (!labelByte[t.buf[i]!]) t.fail(start, `"${label}" is not a label (letters, digits, "-", "_", "." only)`);
    if (this.labels.has(label)) t.fail(start, `label "${label}" is declared twice`);
    this.labels.add(label);
    const s = t.next();
    const keyword = s < 0 ? '' : t.keyword(s);
    if (keyword === '$p') {
      // $p: the statement and the proof are metamath C's to check; the audit only needs them skipped.
      t.skipTo('$=', start, `the $p statement "${label}"`);
      t.skipTo('$.', start, `the proof of "${label}"`);
      return;
    }
    if (keyword !== '$f' && keyword !== '$e' && keyword !== '$a')
      t.fail(s < 0 ? start : s, `label "${label}" is not followed by "$f", "$e", "$a" or "$p"`);
    const symbols = this.symbols(t, start, keyword, 1);
    const typecode = symbols[0]!;
    if (!this.constants.has(typecode)) t.fail(start, `the typecode "${typecode}" of "${label}" is not a constant`);
    if (keyword === '$f') {
      const v = symbols[1];
      if (symbols.length !== 2 || v === undefined || !this.activeVariables.has(v))
        t.fail(start, `the $f statement "${label}" is not a typecode and an active variable`);
      if (this.typecodes.has(v)) t.fail(start, `"${v}" already has an active $f statement`);
      this.floats.push(v);
      this.typecodes.set(v, typecode);
      return;
    }
    const variables: string[] = [];
    for (const symbol of symbols.slice(1)) {
      if (this.activeVariables.has(symbol)) {
        if (!this.typecodes.has(symbol)) t.fail(start, `the variable "${symbol}" in "${label}" has no active $f statement`);
        variables.push(symbol);
      } else if (!this.constants.has(symbol)) t.fail(start, `"${symbol}" in "${label}" is not a declared symbol`);
    }
    const statement = symbols.join(' ');
    if (keyword === '$e') this.essentials.push({ statement, variables });
    else if (typecode === provable) this.axioms.push(this.axiom(label, statement, variables));
  }

  private axiom(label: string, statement: string, variables: readonly string[]): MetamathAxiom {
    const mandatory = new Set(variables);
    for (const e of this.essentials) for (const v of e.variables) mandatory.add(v);
    const disjoint = new Set<string>();
    for (const [x, y] of this.disjoint) if (mandatory.has(x) && mandatory.has(y)) disjoint.add(`${x} ${y}`);
    return {
      label,
      statement,
      hypotheses: this.essentials.map((e) => e.statement),
      variables: this.floats.filter((v) => mandatory.has(v)).map((v) => `${v}:${this.typecodes.get(v)}`),
      disjoint: [...disjoint].sort(),
    };
  }
}

/** The database's `|-` axioms, reading includes through `readInclude` (each file at most once, as Metamath specifies). */
export async function readMetamathAxioms(content: Buffer, readInclude: ReadInclude): Promise<MetamathAxiom[]> {
  const reader = new Reader(readInclude);
  await reader.read(content, 'the database');
  return reader.axioms;
}

/** A component of an include's name: a plain name, never `.` or `..`, so that each file has one spelling. */
const component = /^[A-Za-z0-9_+-][A-Za-z0-9._+-]*$/;

/**
 * A ReadInclude confined to `root`: relative names only, no `..` component, no absolute path, no
 * link anywhere on the way (check every path component with lstat, refuse symbolic links), regular
 * files only, each at most maxBytes. Names are taken relative to `root`, as metamath C takes them
 * relative to its working directory (the checker runs in the source directory); a name has one
 * spelling only (no `.` or empty component), so "included once" by name is once by file.
 */
export function includesWithin(root: string, maxBytes: number): ReadInclude {
  return async (name) => {
    const parts = name.split('/');
    if (!parts.every((p) => component.test(p))) {
      throw new MetamathReadError(`"${name}" is not a relative path of plain names within the source directory`);
    }
    let file = root;
    for (const [i, part] of parts.entries()) {
      file = path.join(file, part);
      const shown = parts.slice(0, i + 1).join('/');
      const stat = await lstat(file).catch((error: NodeJS.ErrnoException) => {
        throw new MetamathReadError(
          error.code === 'ENOENT' ? `"${shown}" does not exist` : `"${shown}" cannot be read (${error.code ?? 'error'})`,
        );
      });
      if (stat.isSymbolicLink()) throw new MetamathReadError(`"${shown}" is a symbolic link`);
      if (i < parts.length - 1 && !stat.isDirectory()) throw new MetamathReadError(`"${shown}" is not a directory`);
    }
    try {
      return (await readUntrusted(file, { maxBytes }, `"${name}"`)).content;
    } catch (error) {
      if (error instanceof UntrustedFileError) throw new MetamathReadError(error.message, { cause: error });
      throw error;
    }
  };
}

/** Axioms of `database` that are not identical (label, statement, hypotheses, variables, disjoint) to an axiom of `reference` with the same label; `reason` says what differs. */
export function unpinnedAxioms(
  database: readonly MetamathAxiom[],
  reference: readonly MetamathAxiom[],
): { label: string; reason: string }[] {
  const pinned = new Map(reference.map((a) => [a.label, a]));
  const same = (x: readonly string[], y: readonly string[]) => x.length === y.length && x.every((s, i) => s === y[i]);
  const unpinned: { label: string; reason: string }[] = [];
  for (const axiom of database) {
    const ref = pinned.get(axiom.label);
    if (!ref) {
      unpinned.push({ label: axiom.label, reason: 'not in the reference' });
      continue;
    }
    const differs: string[] = [];
    if (axiom.statement !== ref.statement) differs.push('its statement differs');
    if (!same(axiom.hypotheses, ref.hypotheses)) differs.push('its hypotheses differ');
    if (!same(axiom.variables, ref.variables)) differs.push('its variables or their typecodes differ');
    if (!same(axiom.disjoint, ref.disjoint)) differs.push('its distinct-variable conditions differ');
    if (differs.length > 0) unpinned.push({ label: axiom.label, reason: differs.join('; ') });
  }
  return unpinned;
}
