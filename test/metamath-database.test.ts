/**
 * The Metamath reader of the axiom audit: the axioms of the installed databases, one fixture per
 * way a database can change what an axiom means, includes that leave the source directory, and
 * malformed input, which must fail naming the line.
 */
import { mkdir, mkdtemp, readFile, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import {
  type MetamathAxiom,
  MetamathReadError,
  includesWithin,
  readMetamathAxioms,
  unpinnedAxioms,
} from '../task-pod/metamath-database.js';

const installed = '/usr/share/metamath/databases';
const fixtures = path.join(import.meta.dirname, 'fixtures/metamath');
const noIncludes = async (name: string): Promise<Buffer> => {
  throw new Error(`no includes here (${name})`);
};
const read = (text: string) => readMetamathAxioms(Buffer.from(text, 'latin1'), noIncludes);
const readInstalled = async (name: string) =>
  readMetamathAxioms(await readFile(path.join(installed, name)), includesWithin(installed, 100_000_000));

describe('the axioms of the installed databases', async () => {
  const set = await readInstalled('set.mm');
  const byLabel = new Map(set.map((a) => [a.label, a]));

  it.each<[string, MetamathAxiom]>([
    [
      'ax-mp',
      { label: 'ax-mp', statement: '|- ps', hypotheses: ['|- ph', '|- ( ph -> ps )'], variables: ['ph:wff', 'ps:wff'], disjoint: [] },
    ],
    ['ax-5', { label: 'ax-5', statement: '|- ( ph -> A. x ph )', hypotheses: [], variables: ['ph:wff', 'x:setvar'], disjoint: ['ph x'] }],
    [
      'ax-ext',
      {
        label: 'ax-ext',
        statement: '|- ( A. z ( z e. x <-> z e. y ) -> x = y )',
        hypotheses: [],
        variables: ['x:setvar', 'y:setvar', 'z:setvar'],
        disjoint: ['x y', 'x z', 'y z'],
      },
    ],
    [
      'df-cleq',
      {
        label: 'df-cleq',
        statement: '|- ( A = B <-> A. x ( x e. A <-> x e. B ) )',
        hypotheses: ['|- ( A. x ( x e. y <-> x e. z ) -> y = z )'],
        variables: ['x:setvar', 'y:setvar', 'z:setvar', 'A:class', 'B:class'],
        disjoint: ['A x', 'B x', 'x y', 'x z', 'y z'],
      },
    ],
  ])('set.mm: %s', (label, expected) => {
    expect(byLabel.get(label)).toEqual(expected);
  });

  it('pins set.mm against itself, and finds the axioms iset.mm does not share with it', async () => {
    expect(unpinnedAxioms(set, set)).toEqual([]);
    const unpinned = unpinnedAxioms(await readInstalled('iset.mm'), set);
    expect(unpinned).toHaveLength(90);
    expect(unpinned).toContainEqual({ label: 'ax-ia1', reason: 'not in the reference' });
    expect(unpinned).toContainEqual({ label: 'df-bi', reason: 'its statement differs' });
  });

  // Counts of `$a |-` outside comments, taken independently of this reader.
  it.each([
    ['set.mm', 1381],
    ['iset.mm', 271],
    ['nf.mm', 199],
    ['ql.mm', 48],
    ['hol.mm', 47],
    ['peano.mm', 30],
    ['miu.mm', 5],
    ['big-unifier.mm', 3],
    ['demo0.mm', 3],
  ])('reads %s: %i axioms', async (name, count) => {
    expect(await readInstalled(name)).toHaveLength(count);
  });
});

describe('the audit against a pinned reference', async () => {
  const pinnedText = await readFile(path.join(fixtures, 'pinned.mm'), 'latin1');
  const pinned = await read(pinnedText);

  it('reports an axiom of its own, and so the false theorem metamath C verifies from it', async () => {
    const cheat = await read(await readFile(path.join(fixtures, 'demo0-cheat.mm'), 'latin1'));
    const demo0 = await readInstalled('demo0.mm');
    expect(unpinnedAxioms(cheat, demo0)).toEqual([{ label: 'ax-cheat', reason: 'not in the reference' }]);
  });

  it.each<[string, [string, string], { label: string; reason: string }[]]>([
    ['nothing changed', ['', ''], []],
    [
      'same label, another statement',
      ['a2 $a |- ( t + 0 ) = t $.', 'a2 $a |- t = ( t + 0 ) $.'],
      [{ label: 'a2', reason: 'its statement differs' }],
    ],
    ['an $e hypothesis dropped', ['min $e |- P $.', ''], [{ label: 'mp', reason: 'its hypotheses differ' }]],
    [
      '$e hypotheses reordered',
      ['min $e |- P $.\n       maj $e |- ( P -> Q ) $.', 'maj $e |- ( P -> Q ) $.\n       min $e |- P $.'],
      [{ label: 'mp', reason: 'its hypotheses differ' }],
    ],
    ['a $d removed', ['$d t r $.', ''], [{ label: 'ax-dv', reason: 'its distinct-variable conditions differ' }]],
    [
      "a variable's $f typecode changed",
      ['tt $f term t $.', 'tt $f wff t $.'],
      ['a1', 'a2', 'ax-dv'].map((label) => ({ label, reason: 'its variables or their typecodes differ' })),
    ],
    [
      '$f declarations reordered',
      ['wp $f wff P $.\n    wq $f wff Q $.', 'wq $f wff Q $.\n    wp $f wff P $.'],
      [{ label: 'mp', reason: 'its variables or their typecodes differ' }],
    ],
  ])('%s', async (_name, [from, to], expected) => {
    expect(pinnedText.includes(from)).toBe(true);
    expect(unpinnedAxioms(await read(pinnedText.replace(from, to)), pinned)).toEqual(expected);
  });

  it('names every difference of one axiom', () => {
    const [a2] = pinned.filter((a) => a.label === 'a2');
    const changed = { ...a2!, statement: '|- t = t', hypotheses: ['|- P'] };
    expect(unpinnedAxioms([changed], pinned)).toEqual([{ label: 'a2', reason: 'its statement differs; its hypotheses differ' }]);
  });
});

describe('includes', async () => {
  const root = await mkdtemp(path.join(tmpdir(), 'proofpod-metamath-'));
  afterAll(() => rm(root, { recursive: true, force: true }));
  const source = path.join(root, 'source');
  await mkdir(path.join(source, 'sub'), { recursive: true });
  const head = await readFile(path.join(fixtures, 'includes/main.mm'), 'latin1');
  for (const file of ['other.mm', 'sub/deep.mm'])
    await writeFile(path.join(source, file), await readFile(path.join(fixtures, 'includes', file)));
  await writeFile(path.join(root, 'x.mm'), 'ax-outside $a |- P $.\n');
  await symlink(path.join(source, 'other.mm'), path.join(source, 'link.mm'));
  await symlink(path.join(source, 'sub'), path.join(source, 'linkdir'));
  await writeFile(path.join(source, 'open.mm'), '${\n');
  await writeFile(path.join(source, 'half.mm'), 'ax-half $a |- P\n');
  await writeFile(path.join(source, 'bad.mm'), '\nax-bad $x |- P $.\n');
  const within = includesWithin(source, 1000);

  it('reads includes inside the source directory, each file once', async () => {
    const reads: string[] = [];
    const counted = async (name: string) => {
      reads.push(name);
      return within(name);
    };
    const axioms = await readMetamathAxioms(Buffer.from(head), counted);
    expect(reads).toEqual(['other.mm', 'sub/deep.mm']);
    expect(axioms).toEqual([
      { label: 'ax-other', statement: '|- ( P -> P )', hypotheses: [], variables: ['P:wff'], disjoint: [] },
      { label: 'ax-deep', statement: '|- ( Q -> P )', hypotheses: ['|- P'], variables: ['P:wff', 'Q:wff'], disjoint: [] },
    ]);
  });

  const declarations = '$c |- wff ( ) -> $.\n$v P Q $.\nwp $f wff P $.\n';
  it.each([
    ['a parent directory', '$[ ../x.mm $]', /line 4 of the database: include "\.\.\/x\.mm" is refused: .*not a relative path/],
    ['an absolute path', `$[ ${installed}/set.mm $]`, /include "\/usr\/share\/metamath\/databases\/set\.mm" is refused/],
    ['a second spelling of a name', '$[ ./other.mm $]', /include "\.\/other\.mm" is refused/],
    ['a symbolic link to a file', '$[ link.mm $]', /include "link\.mm" is refused: "link\.mm" is a symbolic link/],
    [
      'a symbolic link to a directory on the way',
      '$[ linkdir/deep.mm $]',
      /include "linkdir\/deep\.mm" is refused: "linkdir" is a symbolic link/,
    ],
    ['a directory', '$[ sub $]', /include "sub" is refused: "sub" is not a regular file/],
    ['a missing file', '$[ missing.mm $]', /include "missing\.mm" is refused: "missing\.mm" does not exist/],
    ['an include inside a block', '${ $[ other.mm $] $}', /line 4 of the database: an include inside a block/],
    ['a block left open by an include', '$[ open.mm $] $}', /line 1 of "open\.mm": this "\$\{" is not closed/],
    ['a statement finished outside its include', '$[ half.mm $] $.', /line 1 of "half\.mm": the \$a statement is not terminated/],
    ['an error in an include', '$[ bad.mm $]', /line 2 of "bad\.mm": unknown keyword "\$x"/],
  ])('refuses %s', async (_name, include, error) => {
    await expect(readMetamathAxioms(Buffer.from(`${declarations}${include}\n`), within)).rejects.toThrow(error);
  });

  it('refuses an include larger than the limit', async () => {
    await expect(readMetamathAxioms(Buffer.from(`${declarations}$[ other.mm $]\n`), includesWithin(source, 10))).rejects.toThrow(
      /include "other\.mm" is refused: "other\.mm" is larger than 10 bytes/,
    );
  });
});

describe('malformed databases', () => {
  const declarations = '$c |- wff ( ) -> $.\n$v P Q $.\nwp $f wff P $.\n';
  it.each([
    ['an unterminated comment', '$( no end', /line 4 .*the comment is not terminated/],
    ['a nested comment', '$( a $( b $) $)', /line 4 .*"\$\(" inside a comment/],
    // metamath C reads the file a Skip marker names (tried with metamath 0.195): an include our reader would not see.
    [
      'a Skip marker of a file not begun before',
      '$( Skip $[ evil.mm $] $)',
      /line 4 .*a "\$\( Skip \$\[ evil\.mm \$\] \$\)" comment of a file not begun before \(metamath C would read it\)/,
    ],
    ['"$)" inside a token of a comment', '$( a b$) $)', /line 4 .*"\$\)" inside a token/],
    ['an unknown keyword', 'ax-1 $x |- P $.', /line 4 .*unknown keyword "\$x"/],
    ['a keyword stuck to a symbol', 'ax-1 $a |- P$. $.', /line 4 .*"P\$\." contains "\$"/],
    ['a "$}" without "${"', '$}', /line 4 .*"\$\}" without a matching "\$\{"/],
    ['a "${" never closed', '${\nax-1 $a |- P $.', /line 4 .*this "\$\{" is not closed by the end of the file/],
    ['a byte that is not printable ASCII', '$( caf\xe9 $)', /line 4 .*byte 0xe9 is not printable ASCII/],
    ['a control character', 'ax-1 $a |- P\x0b$.', /line 4 .*byte 0x0b/],
    ['an unterminated statement', 'ax-1 $a |- ( P -> P )', /line 4 .*the \$a statement is not terminated/],
    ['a statement without a label', '$a |- P $.', /line 4 .*unexpected "\$a"/],
    ['a label with a forbidden character', 'ax!1 $a |- P $.', /line 4 .*"ax!1" is not a label/],
    ['a label declared twice', 'wp $a |- P $.', /line 4 .*label "wp" is declared twice/],
    ['an undeclared symbol', 'ax-1 $a |- R $.', /line 4 .*"R" in "ax-1" is not a declared symbol/],
    ['a variable without $f', 'ax-1 $a |- Q $.', /line 4 .*"Q" in "ax-1" has no active \$f/],
    ['a second $f for a variable', 'wp2 $f wff P $.', /line 4 .*"P" already has an active \$f/],
    ['a $d of a constant', '$d P wff $.', /line 4 .*"wff" in a \$d statement is not an active variable/],
    ['$c inside a block', '${ $c X $. $}', /line 4 .*"\$c" inside a block/],
    ['a $p without a proof', 'th $p |- P $.', /line 4 .*unexpected "\$\." in the \$p statement "th"/],
    ['a "$" inside a proof', 'th $p |- ( P -> P ) $= wp a$b $.', /line 4 .*unexpected "a\$b" in the proof of "th"/],
    ['an unterminated proof', 'th $p |- ( P -> P ) $= wp', /line 4 .*the proof of "th" is not terminated/],
  ])('refuses %s', async (_name, text, error) => {
    const reading = read(`${declarations}${text}\n`);
    await expect(reading).rejects.toThrow(MetamathReadError);
    await expect(reading).rejects.toThrow(error);
  });

  it('skips comments inside statements and proofs', async () => {
    const axioms = await read(`${declarations}ax-1 $a |- $( a comment $) P $.\nth $p |- P $= $( $a inside $) ax-1 $.\n`);
    expect(axioms).toEqual([{ label: 'ax-1', statement: '|- P', hypotheses: [], variables: ['P:wff'], disjoint: [] }]);
  });
});
