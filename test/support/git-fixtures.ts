import { execFileSync } from 'node:child_process';
import { chmodSync, mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { pathToFileURL } from 'node:url';

/** A file to commit: its content, an executable script, or a symlink with that target. */
export type FileSpec = string | Buffer | { executable: string } | { symlink: string };

/**
 * Fixture repositories are made with ordinary git, but never with the developer's config (signing,
 * templates, hooks) nor with whatever a test has put in `process.env`.
 */
export function fixtureEnvironment(): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [name, value] of Object.entries(process.env)) if (!name.startsWith('GIT_')) env[name] = value;
  return {
    ...env,
    GIT_CONFIG_NOSYSTEM: '1',
    GIT_CONFIG_GLOBAL: '/dev/null',
    GIT_AUTHOR_NAME: 'Fixture',
    GIT_AUTHOR_EMAIL: 'fixture@example.invalid',
    GIT_COMMITTER_NAME: 'Fixture',
    GIT_COMMITTER_EMAIL: 'fixture@example.invalid',
    GIT_AUTHOR_DATE: '2024-01-01T00:00:00Z',
    GIT_COMMITTER_DATE: '2024-01-01T00:00:00Z',
  };
}

export function git(cwd: string, args: string[], env: NodeJS.ProcessEnv = fixtureEnvironment()): string {
  return execFileSync('git', ['-c', 'init.defaultBranch=main', ...args], {
    cwd,
    env,
    encoding: 'utf8',
    stdio: ['ignore', 'pipe', 'pipe'],
  }).trim();
}

export class FixtureRepo {
  readonly url: string;

  constructor(readonly dir: string) {
    mkdirSync(dir, { recursive: true });
    git(dir, ['init', '--quiet']);
    this.url = pathToFileURL(dir).href;
  }

  /** Writes the files over the work tree (others are kept), commits everything, returns the commit. */
  commit(files: Record<string, FileSpec>, message = 'fixture commit'): string {
    for (const [name, spec] of Object.entries(files)) {
      const file = path.join(this.dir, name);
      mkdirSync(path.dirname(file), { recursive: true });
      rmSync(file, { force: true });
      if (typeof spec === 'object' && 'symlink' in spec) symlinkSync(spec.symlink, file);
      else if (typeof spec === 'object' && 'executable' in spec) {
        writeFileSync(file, spec.executable);
        chmodSync(file, 0o755);
      } else writeFileSync(file, spec);
    }
    git(this.dir, ['add', '--all']);
    git(this.dir, ['commit', '--quiet', '--allow-empty', '-m', message]);
    return this.head();
  }

  /**
   * Commits exactly these files as the whole tree, their bytes stored unfiltered (`hash-object
   * --no-filters`): the fixture's own git would otherwise apply the source's .gitattributes on add.
   * The fixture's work tree is left as it was.
   */
  commitExact(files: Record<string, FileSpec>, message = 'exact fixture commit'): string {
    git(this.dir, ['read-tree', '--empty']);
    for (const [name, spec] of Object.entries(files)) {
      const [mode, content] =
        typeof spec === 'object' && 'symlink' in spec
          ? ['120000', spec.symlink]
          : typeof spec === 'object' && 'executable' in spec
            ? ['100755', spec.executable]
            : ['100644', spec];
      const object = execFileSync('git', ['hash-object', '-w', '--no-filters', '--stdin'], {
        cwd: this.dir,
        env: fixtureEnvironment(),
        input: content,
        encoding: 'utf8',
      }).trim();
      git(this.dir, ['update-index', '--add', '--cacheinfo', `${mode},${object},${name}`]);
    }
    git(this.dir, ['commit', '--quiet', '--allow-empty', '-m', message]);
    return this.head();
  }

  /** The committed bytes of one file (or a symlink's target) at a commit. */
  blob(commit: string, file: string): Buffer {
    return execFileSync('git', ['cat-file', 'blob', `${commit}:${file}`], { cwd: this.dir, env: fixtureEnvironment() });
  }

  head(): string {
    return git(this.dir, ['rev-parse', 'HEAD']);
  }

  tree(commit: string): string {
    return git(this.dir, ['rev-parse', `${commit}^{tree}`]);
  }
}

/** One temporary directory per test file; `dir()` hands out fresh subdirectories of it. */
export function scratch(prefix: string) {
  const root = mkdtempSync(path.join(tmpdir(), prefix));
  let n = 0;
  return {
    root,
    dir(name = 'dir'): string {
      const made = path.join(root, `${name}-${++n}`);
      mkdirSync(made, { recursive: true });
      return made;
    },
    remove: () => rmSync(root, { recursive: true, force: true }),
  };
}
