import { spawn } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import path from 'node:path';

export interface GitResult {
  /** null when git was killed (e.g. aborted by the caller). */
  code: number | null;
  stdout: Buffer;
  stderr: string;
}

export interface RunOptions {
  cwd: string;
  /** Written to git's stdin, which is otherwise closed. */
  input?: Buffer | string;
  /** Kills git (SIGKILL) when aborted; the result then has `code: null`. */
  signal?: AbortSignal;
}

export type Git = (args: readonly string[], options: RunOptions) => Promise<GitResult>;

export interface QuarantineSettings {
  /** An empty directory of our own: git would otherwise look for config and credentials in the real one. */
  home: string;
  /** Allow `file://` sources (local development and tests only). */
  allowFileProtocol: boolean;
  /** Where the few variables kept come from. */
  environment?: NodeJS.ProcessEnv;
}

/**
 * Variables passed through. Anything else is dropped: inherited `GIT_*` variables can name config
 * files, hooks, alternate object stores or askpass programs, and `SSH_ASKPASS` is consulted even with
 * prompts off. Proxies and CA bundles are kept because clusters route egress through them; they do not
 * change what git runs.
 */
const keptVariables = ['PATH', 'HTTPS_PROXY', 'https_proxy', 'NO_PROXY', 'no_proxy', 'SSL_CERT_FILE', 'SSL_CERT_DIR'];

/**
 * `-c` options on every call. Command-line config beats the repository's own, and with no system or
 * global config (see the environment) nothing else can turn on hooks, helpers, other transports or
 * submodule recursion.
 */
export function quarantineConfig(allowFileProtocol: boolean): string[] {
  const config = [
    'core.hooksPath=/dev/null',
    'credential.helper=',
    'core.askPass=',
    'protocol.allow=never',
    'protocol.https.allow=always',
    ...(allowFileProtocol ? ['protocol.file.allow=always'] : []),
    'submodule.recurse=false',
    'fetch.recurseSubmodules=false',
    'core.fsmonitor=false',
    'transfer.fsckObjects=true',
    'core.symlinks=true',
    // Files are checked out as their blobs hold them (the fetch verifies each against its hash): no
    // line-ending conversion from config, whatever the platform. Attributes are neutralised by fetch.
    'core.autocrlf=false',
    'core.eol=lf',
    'core.safecrlf=false',
    // Only to keep `git init` from printing a hint on every run.
    'init.defaultBranch=main',
    // A fresh repository used once: no housekeeping after the fetch (a process per run, for nothing).
    'maintenance.auto=false',
    'gc.auto=0',
  ];
  return config.flatMap((c) => ['-c', c]);
}

/**
 * A local source repository belongs to another user than the sandbox's, and git's upload-pack
 * refuses to serve such a repository unless `safe.directory` says so — which git reads only from
 * global or system config, not from `-c`. So with file sources allowed, the global config is a file
 * of ours, in our own fresh HOME, holding that one setting.
 */
function localSourcesConfig(home: string): string {
  const file = path.join(home, 'gitconfig');
  writeFileSync(file, '[safe]\n\tdirectory = *\n', { mode: 0o600 });
  return file;
}

/** A git runner with a scrubbed environment and the quarantine config; argv only, never a shell. */
export function quarantinedGit({ home, allowFileProtocol, environment = process.env }: QuarantineSettings): Git {
  const env: NodeJS.ProcessEnv = {};
  for (const name of keptVariables) if (environment[name] !== undefined) env[name] = environment[name];
  Object.assign(env, {
    HOME: home,
    GIT_CONFIG_NOSYSTEM: '1',
    GIT_CONFIG_GLOBAL: allowFileProtocol ? localSourcesConfig(home) : '/dev/null',
    GIT_TERMINAL_PROMPT: '0',
    // Error messages are matched to tell a missing commit from an unreachable remote.
    LC_ALL: 'C',
  });
  const config = quarantineConfig(allowFileProtocol);

  return (args, { cwd, input, signal }) =>
    new Promise((resolve, reject) => {
      const child = spawn('git', [...config, ...args], { cwd, env, stdio: ['pipe', 'pipe', 'pipe'], signal, killSignal: 'SIGKILL' });
      const stdout: Buffer[] = [];
      const stderr: Buffer[] = [];
      child.stdout.on('data', (chunk: Buffer) => stdout.push(chunk));
      child.stderr.on('data', (chunk: Buffer) => stderr.push(chunk));
      // EPIPE when git exits before reading all input is reported through the exit code instead.
      child.stdin.on('error', () => {});
      child.stdin.end(input);
      child.on('error', (error) => {
        if (error.name !== 'AbortError') reject(new Error(`could not run git: ${error.message}`, { cause: error }));
      });
      child.on('close', (code) => resolve({ code, stdout: Buffer.concat(stdout), stderr: Buffer.concat(stderr).toString('utf8') }));
    });
}
