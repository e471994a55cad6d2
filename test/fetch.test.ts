import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import {
  chmodSync,
  existsSync,
  lstatSync,
  mkdirSync,
  readFileSync,
  readdirSync,
  readlinkSync,
  rmSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import path from 'node:path';
import { afterAll, describe, expect, it, vi } from 'vitest';
import { type FetchOptions, SourceRefused, main, neutraliseAttributes, quarantineFetch, verifyWorkTree } from '../task-pod/fetch.js';
import { quarantinedGit } from '../task-pod/git.js';
import { ManifestSchema } from '../task-pod/manifest.js';
import { type FileSpec, FixtureRepo, fixtureEnvironment, git, scratch } from './support/git-fixtures.js';

const tmp = scratch('proofpod-fetch-test-');
afterAll(() => tmp.remove());

const fooV1 = 'Theorem one : 1 = 1.\nProof. reflexivity. Qed.\n';
const fooV2 = 'Theorem two : 2 = 2.\nProof. reflexivity. Qed.\n';

function repo(files: Record<string, FileSpec>): FixtureRepo & { first: string } {
  const fixture = new FixtureRepo(tmp.dir('repo'));
  return Object.assign(fixture, { first: fixture.commit(files) });
}

function options(fixture: { url: string }, commit: string, overrides: Partial<FetchOptions> = {}): FetchOptions {
  return {
    sourceDir: tmp.dir('source'),
    metaDir: tmp.dir('meta'),
    url: fixture.url,
    commit,
    subdirectory: null,
    maxSourceBytes: 1_000_000,
    maxSourceFiles: 1000,
    maxSourceDepth: 64,
    maxTargetBytes: 1_000_000,
    targets: [],
    allowFileSources: true,
    allowSubmodules: false,
    ...overrides,
  };
}

/** Only `.git` (or nothing) in the source dir: no file of the source was written. */
const checkedOut = (sourceDir: string) => readdirSync(sourceDir).filter((name) => name !== '.git');

async function refusal(fetch: FetchOptions): Promise<SourceRefused> {
  const error = await quarantineFetch(fetch).then(
    () => undefined,
    (thrown: unknown) => thrown,
  );
  expect(error).toBeInstanceOf(SourceRefused);
  expect(checkedOut(fetch.sourceDir)).toEqual([]);
  expect(readdirSync(fetch.metaDir)).toEqual([]);
  return error as SourceRefused;
}

describe('quarantine fetch', () => {
  it('checks out exactly the requested commit and writes the manifest and the FIFO', async () => {
    const fixture = repo({ 'theories/Foo.v': fooV1, 'README.md': 'hello\n' });
    fixture.commit({ 'theories/Foo.v': fooV2, 'theories/Bar.v': fooV2 }, 'second');
    const fetch = options(fixture, fixture.first, { subdirectory: 'theories/' });

    const manifest = await quarantineFetch(fetch);

    expect(manifest).toMatchObject({
      url: fixture.url,
      commit: fixture.first,
      treeHash: fixture.tree(fixture.first),
      subdirectory: 'theories',
      bytes: fooV1.length + 'hello\n'.length,
      files: 2,
    });
    const written = ManifestSchema.parse(JSON.parse(readFileSync(path.join(fetch.metaDir, 'manifest.json'), 'utf8')));
    expect(written).toEqual(manifest);
    expect(readdirSync(fetch.metaDir).sort()).toEqual(['check-exit.fifo', 'manifest.json']);
    expect(lstatSync(path.join(fetch.metaDir, 'check-exit.fifo')).isFIFO()).toBe(true);

    expect(readFileSync(path.join(fetch.sourceDir, 'theories/Foo.v'), 'utf8')).toBe(fooV1);
    expect(existsSync(path.join(fetch.sourceDir, 'theories/Bar.v'))).toBe(false);
    expect(git(fetch.sourceDir, ['rev-parse', 'HEAD'])).toBe(fixture.first);
    // The empty template: not even git's sample hooks.
    expect(existsSync(path.join(fetch.sourceDir, '.git/hooks'))).toBe(false);
  });

  it('runs no hook, whatever the inherited config and templates say', async () => {
    const marker = path.join(tmp.dir('marker'), 'hook-ran');
    const hook = { executable: `#!/bin/sh\necho ran >> ${marker}\n` };
    const fixture = repo({ 'hooks/post-checkout': hook, 'A.v': fooV1 });
    const template = tmp.dir('template');
    mkdirSync(path.join(template, 'hooks'));
    writeFileSync(path.join(template, 'hooks/post-checkout'), hook.executable, { mode: 0o755 });
    const config = path.join(tmp.dir('config'), 'gitconfig');
    // A relative hooksPath is the work tree's own hooks/ directory: the source would run its own hook.
    writeFileSync(config, `[core]\n\thooksPath = hooks\n[init]\n\ttemplateDir = ${template}\n`);
    const hostile = { GIT_CONFIG_GLOBAL: config, GIT_CONFIG_SYSTEM: config };

    // Control: plain git under this environment does run the hook, so the attempt is real.
    git(tmp.dir('control'), ['clone', '--quiet', fixture.dir, '.'], { ...fixtureEnvironment(), ...hostile });
    expect(existsSync(marker)).toBe(true);
    rmSync(marker);

    // quarantineFetch inherits process.env unless told otherwise: the attack reaches it.
    for (const [name, value] of Object.entries(hostile)) vi.stubEnv(name, value);
    try {
      const fetch = options(fixture, fixture.first);
      await quarantineFetch(fetch);
      expect(readdirSync(path.join(fetch.sourceDir, 'hooks'))).toEqual(['post-checkout']);
    } finally {
      vi.unstubAllEnvs();
    }
    expect(existsSync(marker)).toBe(false);
  });

  describe('symlinks', () => {
    it('refuses a link to a host path', async () => {
      const fixture = repo({ 'A.v': fooV1, passwd: { symlink: '/etc/passwd' } });
      expect((await refusal(options(fixture, fixture.first))).message).toMatch(/symlink passwd -> \/etc\/passwd refused: .*absolute/);
    });

    it('refuses a relative link that climbs out of the tree', async () => {
      const fixture = repo({ 'A.v': fooV1, 'sub/dir/up': { symlink: '../../../etc/passwd' } });
      expect((await refusal(options(fixture, fixture.first))).message).toMatch(/symlink sub\/dir\/up .* outside the source tree/);
    });

    it('refuses a link that leaves only through another link', async () => {
      // `d/l/..` normalises to `d`, but d/l is the tree's root, so `d/l/../..` is its parent.
      const fixture = repo({ 'A.v': fooV1, 'd/l': { symlink: '..' }, escape: { symlink: 'd/l/../..' } });
      expect((await refusal(options(fixture, fixture.first))).message).toMatch(/symlink escape .* outside the source tree/);
    });

    it('tells apart links whose names are not UTF-8', async () => {
      // Decoded as UTF-8 both names would be U+FFFD, and one link could hide the other.
      const fixture = repo({ 'A.v': fooV1 });
      symlinkSync('../..', Buffer.from([...Buffer.from(`${fixture.dir}/`), 0xfe]));
      symlinkSync('A.v', Buffer.from([...Buffer.from(`${fixture.dir}/`), 0xff]));
      const commit = fixture.commit({}, 'odd names');
      expect((await refusal(options(fixture, commit))).message).toMatch(/^symlink \uFFFD -> \.\.\/\.\. refused: .*outside/);
    });

    it('refuses a link into .git', async () => {
      const fixture = repo({ 'A.v': fooV1, cfg: { symlink: './.git/config' } });
      expect((await refusal(options(fixture, fixture.first))).message).toMatch(/into \.git/);
    });

    it('allows links that stay inside', async () => {
      const fixture = repo({ 'theories/A.v': fooV1, 'docs/a.v': { symlink: '../theories/A.v' }, 'docs/here': { symlink: '.' } });
      const fetch = options(fixture, fixture.first);
      await quarantineFetch(fetch);
      expect(readlinkSync(path.join(fetch.sourceDir, 'docs/a.v'))).toBe('../theories/A.v');
      expect(readFileSync(path.join(fetch.sourceDir, 'docs/a.v'), 'utf8')).toBe(fooV1);
    });
  });

  describe('subdirectory', () => {
    it('accepts a directory with a non-ASCII name', async () => {
      const fixture = repo({ 'théories/A.v': fooV1 });
      expect((await quarantineFetch(options(fixture, fixture.first, { subdirectory: 'théories' }))).subdirectory).toBe('théories');
    });

    it.each([
      ['missing', /does not exist/],
      ['link', /is a symlink, not a directory/],
      ['A.v', /is a blob, not a directory/],
      ['../outside', /plain relative path/],
      ['/abs', /plain relative path/],
    ])('refuses %s', async (subdirectory, message) => {
      const fixture = repo({ 'A.v': fooV1, 'real/B.v': fooV1, link: { symlink: 'real' } });
      expect((await refusal(options(fixture, fixture.first, { subdirectory }))).message).toMatch(message);
    });
  });

  describe('submodules', () => {
    function withSubmodule() {
      const inner = repo({ 'Inner.v': fooV1 });
      const outer = new FixtureRepo(tmp.dir('outer'));
      outer.commit({ 'A.v': fooV1 });
      git(outer.dir, ['-c', 'protocol.file.allow=always', 'submodule', 'add', '--quiet', inner.dir, 'vendor/inner']);
      return Object.assign(outer, { first: outer.commit({}, 'add submodule') });
    }

    it('refuses a source with a submodule unless the profile allows them', async () => {
      const fixture = withSubmodule();
      expect((await refusal(options(fixture, fixture.first))).message).toMatch(/submodules \(.*vendor\/inner.*\)/);
    });

    it('checks out a source with a submodule when allowed, without fetching the submodule', async () => {
      const fixture = withSubmodule();
      const fetch = options(fixture, fixture.first, { allowSubmodules: true });
      const manifest = await quarantineFetch(fetch);
      expect(manifest.files).toBe(2); // A.v and .gitmodules; the gitlink is not a file.
      expect(readdirSync(path.join(fetch.sourceDir, 'vendor/inner'))).toEqual([]);
      expect(existsSync(path.join(fetch.sourceDir, '.git/modules'))).toBe(false);
    });
  });

  it('refuses a commit that is not in the repository', async () => {
    const fixture = repo({ 'A.v': fooV1 });
    const missing = 'ab'.repeat(20);
    expect((await refusal(options(fixture, missing))).message).toBe(`commit ${missing} not found in ${fixture.url}`);
  });

  it('refuses a source whose files are over the limit, before checkout', async () => {
    // Compressible, so the fetched objects are small and the tree's blob sizes are what is over.
    const fixture = repo({ 'A.v': fooV1, 'big.v': 'a'.repeat(200_000) });
    expect((await refusal(options(fixture, fixture.first, { maxSourceBytes: 100_000 }))).message).toBe(
      `source is ${200_000 + fooV1.length} bytes in 2 files, over the limit of 100000 bytes`,
    );
  });

  it('refuses a source whose fetched objects are over the limit', async () => {
    const fixture = repo({ 'noise.bin': randomBytes(300_000) });
    expect((await refusal(options(fixture, fixture.first, { maxSourceBytes: 100_000 }))).message).toMatch(
      /^fetched objects of .* take more than 100000 bytes/,
    );
  });

  describe('source URLs', () => {
    it.each([
      ['ssh://git@example.com/repo.git', /scheme "ssh" is not allowed/],
      ['http://example.com/repo.git', /scheme "http" is not allowed/],
      ['git://example.com/repo.git', /scheme "git" is not allowed/],
      ['ext::sh -c touch% MARKER', /scheme "ext" is not allowed/],
      ['git@example.com:owner/repo.git', /scheme \(none\) is not allowed/],
      ['/srv/repo.git', /scheme \(none\) is not allowed/],
      ['https://user:secret@example.com/repo.git', /carries credentials/],
      ['https://token@example.com/repo.git', /carries credentials/],
      ['https://example.com/re po.git', /characters not allowed/],
      ['HTTPS://example.com/repo.git', /scheme "HTTPS" is not allowed/],
    ])('refuses %s before running git', async (url, message) => {
      const marker = path.join(tmp.dir('marker'), 'ext-ran');
      const fetch = options({ url: url.replace('MARKER', marker) }, 'ab'.repeat(20), { allowFileSources: false });
      const error = await refusal(fetch);
      expect(error.message).toMatch(message);
      expect(error.message).not.toContain('secret');
      expect(readdirSync(fetch.sourceDir)).toEqual([]); // Not even `git init`.
      expect(existsSync(marker)).toBe(false);
    });

    it('refuses file:// unless file sources are allowed', async () => {
      const fixture = repo({ 'A.v': fooV1 });
      const fetch = options(fixture, fixture.first, { allowFileSources: false });
      expect((await refusal(fetch)).message).toMatch(/file:\/\/ sources are not allowed/);
      expect(readdirSync(fetch.sourceDir)).toEqual([]);
    });
  });

  it.each(['abc123', 'AB'.repeat(20), 'HEAD', `--upload-pack=touch${'x'.repeat(20)}`, `${'ab'.repeat(20)}\n`])(
    'refuses the commit %j',
    async (commit) => {
      const fetch = options({ url: 'https://example.com/repo.git' }, commit);
      expect((await refusal(fetch)).message).toMatch(/commit must be a full 40-character lowercase hex SHA-1/);
      expect(readdirSync(fetch.sourceDir)).toEqual([]);
    },
  );
});

/** Every file of the commit, read back from the work tree, is byte for byte its blob. */
function expectCheckedOutAsCommitted(fixture: FixtureRepo, commit: string, sourceDir: string, names: string[]) {
  for (const name of names) expect(readFileSync(path.join(sourceDir, name)), name).toEqual(fixture.blob(commit, name));
}

describe('checkout writes the blobs as committed', () => {
  const idLine = '(* $Id$ *)\n';
  // Each rule makes plain git write other bytes than the blob's; the control below shows it does.
  it.each([
    ['ident expanding $Id$', { '.gitattributes': '*.v ident\n', 'A.v': idLine + fooV1 }],
    [
      'a filter with no driver configured, and text eol=crlf on a LF file',
      { '.gitattributes': '*.v filter=evil text eol=crlf\n', 'A.v': fooV1 },
    ],
    ['working-tree-encoding=UTF-16', { '.gitattributes': '*.v working-tree-encoding=UTF-16\n', 'A.v': fooV1 }],
    ['text=auto eol=crlf, as core.autocrlf=true would do', { '.gitattributes': '* text=auto eol=crlf\n', 'A.v': fooV1 }],
    [
      'a macro of the top-level .gitattributes',
      { '.gitattributes': '[attr]innocent text eol=crlf ident\n*.v innocent\n', 'A.v': idLine + fooV1 },
    ],
    ['a nested .gitattributes', { 'theories/.gitattributes': '* eol=crlf\n', 'theories/A.v': fooV1 }],
  ])('%s', async (_, files) => {
    const fixture = new FixtureRepo(tmp.dir('repo'));
    const commit = fixture.commitExact(files);
    const names = Object.keys(files);
    const target = names.find((n) => n.endsWith('A.v'))!;

    const control = tmp.dir('control');
    git(control, ['clone', '--quiet', fixture.dir, '.']);
    expect(readFileSync(path.join(control, target))).not.toEqual(fixture.blob(commit, target));

    const fetch = options(fixture, commit, { targets: [target] });
    expect((await quarantineFetch(fetch)).treeHash).toBe(fixture.tree(commit));
    expectCheckedOutAsCommitted(fixture, commit, fetch.sourceDir, names);
  });

  it('records the right commit and tree when the tree has files named like the revisions the fetch asks git for', async () => {
    const fixture = new FixtureRepo(tmp.dir('repo'));
    const files = { HEAD: 'not a revision\n', 'HEAD^{tree}': 'nor this\n', 'A.v': fooV1 };
    const commit = fixture.commitExact(files);
    const fetch = options(fixture, commit, { targets: ['A.v'] });
    expect(await quarantineFetch(fetch)).toMatchObject({ commit, treeHash: fixture.tree(commit) });
    expectCheckedOutAsCommitted(fixture, commit, fetch.sourceDir, Object.keys(files));
  });

  describe('when a repository config reaches git', () => {
    // The fetch's own repository has no config but git init's; these give it a hostile one to show
    // that the quarantine settings, not that absence, keep the bytes as committed.
    function hostileClone(files: Record<string, FileSpec>, config: [string, string][]) {
      const fixture = new FixtureRepo(tmp.dir('repo'));
      const commit = fixture.commitExact(files);
      const clone = (dir: string) => {
        git(dir, ['clone', '--quiet', '--no-checkout', fixture.dir, '.']);
        for (const [key, value] of config) git(dir, ['config', key, value]);
        return dir;
      };
      return { fixture, commit, clone };
    }

    it.each<[string, Record<string, FileSpec>, [string, string][]]>([
      ['core.autocrlf=true', { 'A.v': fooV1 }, [['core.autocrlf', 'true']]],
      ['core.eol=crlf with a text attribute', { '.gitattributes': '* text\n', 'A.v': fooV1 }, [['core.eol', 'crlf']]],
    ])('%s does not turn LF into CRLF', async (_, files, config) => {
      const { fixture, commit, clone } = hostileClone(files, config);
      const control = clone(tmp.dir('control'));
      git(control, ['checkout', '--quiet', '--detach', commit]);
      expect(readFileSync(path.join(control, 'A.v'), 'utf8')).toBe(fooV1.replaceAll('\n', '\r\n'));

      // The quarantine config alone, without the attributes fetch writes.
      const work = clone(tmp.dir('work'));
      const quarantined = quarantinedGit({ home: tmp.dir('home'), allowFileProtocol: false });
      expect((await quarantined(['checkout', '--quiet', '--detach', commit], { cwd: work })).code).toBe(0);
      expectCheckedOutAsCommitted(fixture, commit, work, Object.keys(files));
    });

    it('a configured filter driver is not run', async () => {
      const marker = path.join(tmp.dir('marker'), 'smudged');
      const { fixture, commit, clone } = hostileClone({ '.gitattributes': '*.v filter=evil\n', 'A.v': fooV1 }, [
        ['filter.evil.smudge', `touch ${marker}; sed s/one/evil/`],
        ['filter.evil.required', 'true'],
      ]);
      const control = clone(tmp.dir('control'));
      git(control, ['checkout', '--quiet', '--detach', commit]);
      expect(readFileSync(path.join(control, 'A.v'), 'utf8')).toContain('Theorem evil');
      rmSync(marker);

      const work = clone(tmp.dir('work'));
      await neutraliseAttributes(path.join(work, '.git'));
      const quarantined = quarantinedGit({ home: tmp.dir('home'), allowFileProtocol: false });
      expect((await quarantined(['checkout', '--quiet', '--detach', commit], { cwd: work })).code).toBe(0);
      expectCheckedOutAsCommitted(fixture, commit, work, ['.gitattributes', 'A.v']);
      expect(existsSync(marker)).toBe(false);
    });
  });
});

describe('verifyWorkTree', () => {
  const files: Record<string, FileSpec> = {
    'A.v': fooV1,
    'bin/run.sh': { executable: '#!/bin/sh\nexit 0\n' },
    link: { symlink: 'A.v' },
    'theories/B.v': fooV2,
  };

  async function fetched() {
    const fixture = repo(files);
    const fetch = options(fixture, fixture.first);
    await quarantineFetch(fetch);
    const at = (name: string) => path.join(fetch.sourceDir, name);
    const verify = () =>
      verifyWorkTree(quarantinedGit({ home: tmp.dir('home'), allowFileProtocol: false }), fetch.sourceDir, fixture.first);
    return { at, verify };
  }

  it('accepts the work tree of the checkout', async () => {
    await expect((await fetched()).verify()).resolves.toBeUndefined();
  });

  it.each<[string, (at: (name: string) => string) => void, RegExp]>([
    [
      'a file of the same size with other content',
      (at) => writeFileSync(at('A.v'), fooV1.replace('one', 'uno')),
      /A\.v: content hashes to [0-9a-f]{40} where the commit has [0-9a-f]{40}/,
    ],
    [
      'a file of another size',
      (at) => writeFileSync(at('A.v'), `${fooV1}Axiom cheat : False.\n`),
      /A\.v: \d+ bytes where the commit's blob has \d+/,
    ],
    ['the executable bit set', (at) => chmodSync(at('A.v'), 0o755), /A\.v: executable where the commit has mode 100644/],
    [
      'the executable bit cleared',
      (at) => chmodSync(at('bin/run.sh'), 0o644),
      /bin\/run\.sh: not executable where the commit has mode 100755/,
    ],
    [
      'a symlink retargeted',
      (at) => {
        rmSync(at('link'));
        symlinkSync('theories/B.v', at('link'));
      },
      /link: symlink to theories\/B\.v where the commit has A\.v/,
    ],
    [
      'a file replaced by a symlink',
      (at) => {
        rmSync(at('A.v'));
        symlinkSync('theories/B.v', at('A.v'));
      },
      /A\.v: a symlink where the commit has a file/,
    ],
    ['an extra file', (at) => writeFileSync(at('theories/Extra.v'), fooV2), /theories\/Extra\.v: a file that is not in the commit/],
    ['an extra FIFO', (at) => execFileSync('mkfifo', [at('theories/pipe')]), /theories\/pipe: a FIFO that is not in the commit/],
    ['an extra empty directory', (at) => mkdirSync(at('empty')), /empty: a directory that is not in the commit/],
    ['a nested .git', (at) => mkdirSync(at('theories/.git')), /theories\/\.git: a directory that is not in the commit/],
    ['a missing file', (at) => rmSync(at('theories/B.v')), /theories\/B\.v: missing from the work tree \(a blob in the commit\)/],
  ])('refuses a work tree with %s', async (_, tamper, message) => {
    const { at, verify } = await fetched();
    tamper(at);
    const error = await verify().then(
      () => undefined,
      (thrown: unknown) => thrown,
    );
    expect(error).toBeInstanceOf(SourceRefused);
    expect((error as Error).message).toMatch(/^checked-out files differ from commit [0-9a-f]{40} at 1 path: /);
    expect((error as Error).message).toMatch(message);
  });

  it('names at most three differences', async () => {
    const { at, verify } = await fetched();
    for (const name of ['e1', 'e2', 'e3', 'e4', 'e5']) writeFileSync(at(name), '');
    await expect(verify()).rejects.toThrow(/at 5 paths: e1: .*; e2: .*; e3: [^;]*; and 2 more$/);
  });
});

describe('limits and targets', () => {
  it('refuses more files than the limit', async () => {
    const fixture = repo({ 'A.v': fooV1, 'B.v': fooV2, link: { symlink: 'A.v' } });
    expect((await refusal(options(fixture, fixture.first, { maxSourceFiles: 2 }))).message).toBe(
      'source has 3 files, over the limit of 2 files',
    );
    await quarantineFetch(options(fixture, fixture.first, { maxSourceFiles: 3 }));
  });

  it('refuses a path deeper than the limit', async () => {
    const fixture = repo({ 'A.v': fooV1, 'a/b/c/D.v': fooV2 });
    expect((await refusal(options(fixture, fixture.first, { maxSourceDepth: 3 }))).message).toBe(
      'path a/b/c/D.v is 4 components deep, over the limit of 3',
    );
    await quarantineFetch(options(fixture, fixture.first, { maxSourceDepth: 4 }));
  });

  it('refuses targets that take more than the limit together, each file counted once', async () => {
    const fixture = repo({ 'theories/A.v': fooV1, 'theories/B.v': fooV2, 'Big.v': 'x'.repeat(10_000) });
    const targets = ['A.v', 'B.v', './A.v'];
    const total = fooV1.length + fooV2.length;
    expect((await refusal(options(fixture, fixture.first, { subdirectory: 'theories', targets, maxTargetBytes: total - 1 }))).message).toBe(
      `targets are ${total} bytes in 2 files, over the limit of ${total - 1} bytes`,
    );
    await quarantineFetch(options(fixture, fixture.first, { subdirectory: 'theories', targets, maxTargetBytes: total }));
  });

  it.each([
    ['Missing.v', null, /^target "Missing\.v" does not exist at this commit$/],
    ['A.v', 'theories', /^target "A\.v" does not exist at this commit in theories$/],
    ['link.v', null, /^target "link\.v" is a symlink, not a file$/],
    ['linked/B.v', null, /^target "linked\/B\.v" is reached through the symlink linked$/],
    ['theories', null, /^target "theories" is a directory, not a file$/],
    ['theories/B.v/', null, /^target "theories\/B\.v\/" must be a plain relative path to a file$/],
    ['-load.v', null, /^target "-load\.v" has a component starting with "-"$/],
  ])('refuses the target %s (subdirectory %s)', async (target, subdirectory, message) => {
    const fixture = repo({
      'A.v': fooV1,
      'link.v': { symlink: 'A.v' },
      'theories/B.v': fooV2,
      linked: { symlink: 'theories' },
      '-load.v': fooV1,
    });
    expect((await refusal(options(fixture, fixture.first, { subdirectory, targets: [target] }))).message).toMatch(message);
  });

  it('accepts targets relative to the subdirectory, executable ones too', async () => {
    const fixture = repo({ 'theories/B.v': fooV2, 'theories/run.sh': { executable: '#!/bin/sh\n' } });
    await quarantineFetch(options(fixture, fixture.first, { subdirectory: 'theories', targets: ['B.v', 'run.sh'] }));
  });
});

describe('main', () => {
  function environment(fetch: FetchOptions, terminationLog: string): NodeJS.ProcessEnv {
    return {
      PATH: process.env.PATH,
      PROOFPOD_MOUNT_SOURCE: fetch.sourceDir,
      PROOFPOD_MOUNT_META: fetch.metaDir,
      PROOFPOD_SOURCE_URL: fetch.url,
      PROOFPOD_COMMIT: fetch.commit,
      PROOFPOD_SUBDIRECTORY: '',
      PROOFPOD_MAX_SOURCE_BYTES: '1000000',
      PROOFPOD_TARGETS: '["A.v"]',
      PROOFPOD_ALLOW_FILE_SOURCES: String(fetch.allowFileSources),
      PROOFPOD_ALLOW_SUBMODULES: 'false',
      PROOFPOD_TERMINATION_LOG: terminationLog,
    };
  }

  it('returns 0 and writes the manifest for a good source', async () => {
    const fixture = repo({ 'A.v': fooV1 });
    const fetch = options(fixture, fixture.first);
    const log = path.join(tmp.dir('log'), 'termination-log');
    expect(await main(environment(fetch, log))).toBe(0);
    expect(JSON.parse(readFileSync(path.join(fetch.metaDir, 'manifest.json'), 'utf8'))).toMatchObject({
      commit: fixture.first,
      subdirectory: null,
    });
    expect(existsSync(log)).toBe(false);
  });

  it('returns 1 and writes the reason to the termination log for a refused source', async () => {
    const fixture = repo({ 'A.v': fooV1 });
    const fetch = options(fixture, fixture.first, { allowFileSources: false });
    const log = path.join(tmp.dir('log'), 'termination-log');
    expect(await main(environment(fetch, log))).toBe(1);
    expect(readFileSync(log, 'utf8')).toMatch(/^source URL "file:.*" refused: file:\/\/ sources are not allowed here/);
  });

  it('returns 3 when an https remote cannot be reached', async () => {
    // Port 1 on loopback: refused at once, no network needed.
    const fetch = options({ url: 'https://127.0.0.1:1/repo.git' }, 'ab'.repeat(20));
    const log = path.join(tmp.dir('log'), 'termination-log');
    expect(await main(environment(fetch, log))).toBe(3);
    expect(readFileSync(log, 'utf8')).toMatch(/could not fetch .* from https:\/\/127\.0\.0\.1:1\/repo\.git: .*connect/i);
  });

  it.each([
    ['PROOFPOD_MAX_SOURCE_FILES', '1', 'source has 2 files, over the limit of 1 files'],
    ['PROOFPOD_MAX_SOURCE_DEPTH', '1', 'path theories/B.v is 2 components deep, over the limit of 1'],
    ['PROOFPOD_MAX_TARGET_BYTES', '10', `targets are ${fooV1.length} bytes in 1 files, over the limit of 10 bytes`],
    ['PROOFPOD_TARGETS', '["B.v"]', 'target "B.v" does not exist at this commit'],
  ])('reads %s=%s', async (name, value, reason) => {
    const fixture = repo({ 'A.v': fooV1, 'theories/B.v': fooV2 });
    const fetch = options(fixture, fixture.first);
    const log = path.join(tmp.dir('log'), 'termination-log');
    expect(await main({ ...environment(fetch, log), [name]: value })).toBe(1);
    expect(readFileSync(log, 'utf8')).toBe(reason);
  });

  it('returns 2 without targets', async () => {
    const fixture = repo({ 'A.v': fooV1 });
    const fetch = options(fixture, fixture.first);
    const log = path.join(tmp.dir('log'), 'termination-log');
    expect(await main({ ...environment(fetch, log), PROOFPOD_TARGETS: undefined })).toBe(2);
    expect(readFileSync(log, 'utf8')).toMatch(/^fetch failed: PROOFPOD_TARGETS must be a JSON array of paths/);
  });

  it('returns 2 when its own configuration is wrong', async () => {
    const fixture = repo({ 'A.v': fooV1 });
    const fetch = options(fixture, fixture.first);
    const log = path.join(tmp.dir('log'), 'termination-log');
    expect(await main({ ...environment(fetch, log), PROOFPOD_ALLOW_SUBMODULES: 'yes' })).toBe(2);
    expect(readFileSync(log, 'utf8')).toMatch(/^fetch failed: PROOFPOD_ALLOW_SUBMODULES must be true or false/);
  });
});
