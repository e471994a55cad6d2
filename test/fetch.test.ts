import { randomBytes } from 'node:crypto';
import { existsSync, lstatSync, mkdirSync, readFileSync, readdirSync, readlinkSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { afterAll, describe, expect, it, vi } from 'vitest';
import { type FetchOptions, SourceRefused, main, quarantineFetch } from '../task-pod/fetch.js';
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
    expect(readdirSync(fetch.metaDir).sort()).toEqual(['manifest.json', 'prover-exit.fifo']);
    expect(lstatSync(path.join(fetch.metaDir, 'prover-exit.fifo')).isFIFO()).toBe(true);

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
    expect(JSON.parse(readFileSync(path.join(fetch.metaDir, 'manifest.json'), 'utf8'))).toMatchObject({ commit: fixture.first, subdirectory: null });
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

  it('returns 2 when its own configuration is wrong', async () => {
    const fixture = repo({ 'A.v': fooV1 });
    const fetch = options(fixture, fixture.first);
    const log = path.join(tmp.dir('log'), 'termination-log');
    expect(await main({ ...environment(fetch, log), PROOFPOD_ALLOW_SUBMODULES: 'yes' })).toBe(2);
    expect(readFileSync(log, 'utf8')).toMatch(/^fetch failed: PROOFPOD_ALLOW_SUBMODULES must be true or false/);
  });
});
