import { execFileSync, spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { closeSync, constants, openSync, writeSync } from 'node:fs';
import { mkdtemp, symlink, writeFile } from 'node:fs/promises';
import { type Server, createServer } from 'node:http';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { firstNonText } from '../scheduler/api/text-input.js';
import { EvidenceSchema } from '../contract/evidence.js';
import { type ReportInput, report, waitForCheckExit } from '../task-pod/reporter.js';
import { defaultProfile } from './support/evidence.js';

async function dirs() {
  const root = await mkdtemp(path.join(tmpdir(), 'proofpod-reporter-'));
  const meta = path.join(root, 'meta');
  const results = path.join(root, 'results');
  execFileSync('mkdir', [meta, results]);
  execFileSync('mkfifo', [path.join(meta, 'check-exit.fifo')]);
  await writeFile(
    path.join(meta, 'manifest.json'),
    JSON.stringify({
      url: 'file:///src',
      commit: 'c'.repeat(40),
      treeHash: 'd'.repeat(40),
      subdirectory: null,
      bytes: 10,
      files: 1,
      fetchedAt: new Date().toISOString(),
    }),
  );
  return { root, meta, results, fifo: path.join(meta, 'check-exit.fifo') };
}

/** Plays the check wrapper's side of the FIFO: opens it once a reader is there, writes the start byte, holds it for `ms`. */
async function checkRuns(fifo: string, ms: number): Promise<void> {
  for (;;) {
    try {
      const fd = openSync(fifo, constants.O_WRONLY | constants.O_NONBLOCK);
      writeSync(fd, 'S');
      await new Promise((r) => setTimeout(r, ms));
      closeSync(fd);
      return;
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'ENXIO') throw error;
      await new Promise((r) => setTimeout(r, 20));
    }
  }
}

const servers: Server[] = [];
afterAll(() => Promise.all(servers.map((s) => new Promise((r) => s.close(r)))));

/** A stand-in upload endpoint that answers with the given statuses in turn. */
async function endpoint(statuses: number[]) {
  const bodies: unknown[] = [];
  const server = createServer((req, res) => {
    let body = '';
    req.on('data', (c) => (body += c));
    req.on('end', () => {
      bodies.push({ auth: req.headers.authorization, body: JSON.parse(body) });
      res.writeHead(statuses.shift() ?? 202).end('{}');
    });
  });
  servers.push(server);
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const address = server.address() as { port: number };
  return { url: `http://127.0.0.1:${address.port}/v1/attempts/x/evidence`, bodies };
}

const CREDENTIAL = 'ppu_Zq3xW8rT5yU1iO9pA2sD4fG6hJ7kL0mN';

/** What the check wrapper writes, passing, with the given log digest. */
function checkResult(log: { digest?: string } = {}) {
  const now = new Date().toISOString();
  return {
    profile: 'coq',
    version: 'coq 8',
    secondVersion: null,
    libraries: [],
    binaryDigests: { coqchk: `sha256:${'1'.repeat(64)}` },
    exitCode: 0,
    startedAt: now,
    finishedAt: now,
    durationMs: 1,
    results: [{ path: 'A.v', result: 'pass', exitCode: 0, durationMs: 1, reason: null, proofDigest: null, second: null }],
    findings: [],
    allowedAxioms: [],
    projectFile: null,
    goals: [],
    log: { digest: log.digest ?? `sha256:${'2'.repeat(64)}`, bytes: 3, excerpt: 'ok\n', truncated: false },
    outcome: 'pass',
    error: null,
  };
}

function input(d: Awaited<ReturnType<typeof dirs>>, url: string, reportBy = Date.now() + 10_000): ReportInput {
  return {
    jobId: '11111111-1111-4111-8111-111111111111',
    attemptNo: 1,
    profile: defaultProfile('coq'),
    targets: ['A.v'],
    uploadUrl: url,
    credential: CREDENTIAL,
    reportBy,
    metaDir: d.meta,
    resultsDir: d.results,
  };
}

describe('reporter', () => {
  it('waits while the check holds the FIFO, and sees its exit', async () => {
    const d = await dirs();
    let done = false;
    const waiting = waitForCheckExit(d.fifo, Date.now() + 5000).then((r) => {
      done = true;
      return r;
    });
    const check = checkRuns(d.fifo, 600);
    await new Promise((r) => setTimeout(r, 400));
    expect(done).toBe(false);
    await check;
    expect(await waiting).toBe(true);
  });

  it('does not take a check that never started for one that finished', async () => {
    const d = await dirs();
    expect(await waitForCheckExit(d.fifo, Date.now() + 500)).toBe(false);
  });

  it('a process that holds the FIFO open delays the report until its deadline, then reports an error', async () => {
    const d = await dirs();
    const holder = spawn('sh', ['-c', `exec 3<>"${d.fifo}"; printf S >&3; sleep 30`]);
    try {
      const server = await endpoint([]);
      const evidence = await report(input(d, server.url, Date.now() + 800));
      expect(evidence).toMatchObject({ outcome: 'error', error: 'the check did not finish before the deadline', logs: null });
      expect(server.bodies).toHaveLength(1);
    } finally {
      holder.kill('SIGKILL');
    }
  });

  it('refuses results whose log does not match the digest the wrapper computed', async () => {
    const d = await dirs();
    await writeFile(path.join(d.results, 'result.json'), JSON.stringify(checkResult({ digest: `sha256:${'2'.repeat(64)}` })));
    await writeFile(path.join(d.results, 'check.log'), 'edited\n');
    void checkRuns(d.fifo, 50);
    const server = await endpoint([]);
    const evidence = await report(input(d, server.url));
    expect(evidence.outcome).toBe('error');
    expect(evidence.error).toMatch(/^the check log does not match its digest/);
    expect(EvidenceSchema.safeParse(evidence).success).toBe(true);
  });

  it('evidence names the dispatched source, targets and profile', async () => {
    const d = await dirs();
    const log = 'checked\n';
    await writeFile(
      path.join(d.results, 'result.json'),
      JSON.stringify(checkResult({ digest: `sha256:${createHash('sha256').update(log).digest('hex')}` })),
    );
    await writeFile(path.join(d.results, 'check.log'), log);
    void checkRuns(d.fifo, 50);
    const evidence = await report(input(d, (await endpoint([])).url));
    expect(evidence).toMatchObject({
      outcome: 'pass',
      source: { url: 'file:///src', commit: 'c'.repeat(40), treeHash: 'd'.repeat(40), subdirectory: null },
      targets: ['A.v'],
      profile: {
        name: 'coq',
        build: ['coqc', '-Q', '.', 'Top', '{target}'],
        checkInput: 'artifacts',
        audit: { parser: 'coqchk', command: null },
      },
    });
  });
});

describe('reporter: text the API can take', () => {
  it('uploads proof output with a NUL or a lone surrogate as U+FFFD, not an upload the API refuses', async () => {
    const d = await dirs();
    const log = 'checked\n';
    const result = checkResult({ digest: `sha256:${createHash('sha256').update(log).digest('hex')}` });
    const failing = {
      ...result,
      outcome: 'fail',
      results: [{ ...result.results[0]!, result: 'fail', exitCode: 1, reason: 'coqc said \u0000 and \ud800' }],
    };
    await writeFile(path.join(d.results, 'result.json'), JSON.stringify(failing));
    await writeFile(path.join(d.results, 'check.log'), log);
    void checkRuns(d.fifo, 50);
    const server = await endpoint([]);
    await report(input(d, server.url));
    const uploaded = (server.bodies[0] as { body: { results: { reason: string }[] } }).body;
    expect(uploaded.results[0]!.reason).toBe('coqc said \uFFFD and \uFFFD');
    expect(firstNonText(uploaded)).toBeUndefined();
  });
});

describe('reporter: files planted in the results volume', () => {
  /** Every way the credential could show: the value, any 8 characters of it, its digest, the base64 of it. */
  function expectNoCredential(text: string) {
    expect(text).not.toContain(createHash('sha256').update(CREDENTIAL).digest('hex'));
    expect(text).not.toContain(Buffer.from(CREDENTIAL).toString('base64').slice(0, 12));
    for (let i = 4; i + 8 <= CREDENTIAL.length; i++) expect(text, `characters ${i}..${i + 8}`).not.toContain(CREDENTIAL.slice(i, i + 8));
  }

  async function planted(plant: (d: Awaited<ReturnType<typeof dirs>>, credentialFile: string) => Promise<void>) {
    const d = await dirs();
    const credentialFile = path.join(d.root, 'credential');
    await writeFile(credentialFile, CREDENTIAL, { mode: 0o400 });
    await plant(d, credentialFile);
    void checkRuns(d.fifo, 50);
    const server = await endpoint([]);
    const started = Date.now();
    const evidence = await report(input(d, server.url));
    return { evidence, ms: Date.now() - started, uploaded: JSON.stringify(server.bodies[0]) };
  }

  it.each<[string, (d: Awaited<ReturnType<typeof dirs>>, credentialFile: string) => Promise<void>, RegExp]>([
    [
      'result.json as a link to the credential',
      (d, c) => symlink(c, path.join(d.results, 'result.json')),
      /result\.json is a symbolic link/,
    ],
    [
      'check.log as a link to the credential',
      async (d, c) => {
        await writeFile(path.join(d.results, 'result.json'), JSON.stringify(checkResult({ digest: `sha256:${'3'.repeat(64)}` })));
        await symlink(c, path.join(d.results, 'check.log'));
      },
      /check\.log is a symbolic link/,
    ],
    [
      'result.json holding the credential itself (a checker wrote it)',
      (d) => writeFile(path.join(d.results, 'result.json'), CREDENTIAL),
      /result\.json is not valid JSON/,
    ],
    [
      'result.json as JSON with the credential in a field',
      (d) => writeFile(path.join(d.results, 'result.json'), JSON.stringify({ ...checkResult(), version: 7, profile: CREDENTIAL })),
      /does not match the result schema \(version\)/,
    ],
    [
      'result.json as a FIFO',
      async (d) => void execFileSync('mkfifo', [path.join(d.results, 'result.json')]),
      /result\.json is not a regular file/,
    ],
    [
      'check.log as a FIFO',
      async (d) => {
        await writeFile(path.join(d.results, 'result.json'), JSON.stringify(checkResult()));
        execFileSync('mkfifo', [path.join(d.results, 'check.log')]);
      },
      /check\.log is not a regular file/,
    ],
    [
      'result.json as a directory',
      async (d) => void execFileSync('mkdir', [path.join(d.results, 'result.json')]),
      /result\.json is not a regular file/,
    ],
  ])('%s: an error naming the file, and not a trace of the credential', async (_name, plant, reason) => {
    const { evidence, ms, uploaded } = await planted(plant);
    expect(evidence.outcome).toBe('error');
    expect(evidence.error).toMatch(reason);
    expect(ms, 'a FIFO does not hold the reporter').toBeLessThan(5000);
    expectNoCredential(JSON.stringify(evidence));
    expectNoCredential(uploaded.replaceAll(`Bearer ${CREDENTIAL}`, ''));
  });
});

describe('reporter: uploads', () => {
  it('retries 503 and network errors, then uploads with the credential', async () => {
    const d = await dirs();
    void checkRuns(d.fifo, 50);
    const server = await endpoint([503, 503]);
    const evidence = await report(input(d, server.url));
    expect(server.bodies).toHaveLength(3);
    expect(server.bodies[2]).toEqual({
      auth: `Bearer ${CREDENTIAL}`,
      body: expect.objectContaining({ jobId: '11111111-1111-4111-8111-111111111111', outcome: evidence.outcome }),
    });
  });

  it('stops at a refusal (4xx) instead of retrying', async () => {
    const d = await dirs();
    void checkRuns(d.fifo, 50);
    const server = await endpoint([409]);
    await expect(report(input(d, server.url))).rejects.toThrow(/upload refused with 409/);
    expect(server.bodies).toHaveLength(1);
  });
});
