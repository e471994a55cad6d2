import { execFileSync, spawn } from 'node:child_process';
import { closeSync, constants, openSync, writeSync } from 'node:fs';
import { mkdtemp, writeFile } from 'node:fs/promises';
import { type Server, createServer } from 'node:http';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { EvidenceSchema } from '../contract/evidence.js';
import { type ReportInput, report, waitForProverExit } from '../task-pod/reporter.js';

async function dirs() {
  const root = await mkdtemp(path.join(tmpdir(), 'proofpod-reporter-'));
  const meta = path.join(root, 'meta');
  const results = path.join(root, 'results');
  execFileSync('mkdir', [meta, results]);
  execFileSync('mkfifo', [path.join(meta, 'prover-exit.fifo')]);
  await writeFile(
    path.join(meta, 'manifest.json'),
    JSON.stringify({ url: 'file:///src', commit: 'c'.repeat(40), treeHash: 'd'.repeat(40), subdirectory: null, bytes: 10, files: 1, fetchedAt: new Date().toISOString() }),
  );
  return { meta, results, fifo: path.join(meta, 'prover-exit.fifo') };
}

/** Plays the prover wrapper's side of the FIFO: opens it once a reader is there, writes the start byte, holds it for `ms`. */
async function proverRuns(fifo: string, ms: number): Promise<void> {
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

function input(d: Awaited<ReturnType<typeof dirs>>, url: string, reportBy = Date.now() + 10_000): ReportInput {
  return {
    jobId: '11111111-1111-4111-8111-111111111111',
    attemptNo: 1,
    profile: { name: 'coq', checkCommand: ['coqc', '{target}'] },
    targets: ['A.v'],
    uploadUrl: url,
    credential: 'ppu_test',
    reportBy,
    metaDir: d.meta,
    resultsDir: d.results,
  };
}

describe('reporter', () => {
  it('waits while the prover holds the FIFO, and sees its exit', async () => {
    const d = await dirs();
    let done = false;
    const waiting = waitForProverExit(d.fifo, Date.now() + 5000).then((r) => {
      done = true;
      return r;
    });
    const prover = proverRuns(d.fifo, 600);
    await new Promise((r) => setTimeout(r, 400));
    expect(done).toBe(false);
    await prover;
    expect(await waiting).toBe(true);
  });

  it('does not take a prover that never started for one that finished', async () => {
    const d = await dirs();
    expect(await waitForProverExit(d.fifo, Date.now() + 500)).toBe(false);
  });

  it('a process that holds the FIFO open delays the report until its deadline, then reports an error', async () => {
    const d = await dirs();
    const holder = spawn('sh', ['-c', `exec 3<>"${d.fifo}"; printf S >&3; sleep 30`]);
    try {
      const server = await endpoint([]);
      const evidence = await report(input(d, server.url, Date.now() + 800));
      expect(evidence).toMatchObject({ outcome: 'error', error: 'the prover did not finish before the deadline', logs: null });
      expect(server.bodies).toHaveLength(1);
    } finally {
      holder.kill('SIGKILL');
    }
  });

  it('refuses results whose log does not match the digest the wrapper computed', async () => {
    const d = await dirs();
    const result = {
      profile: 'coq', version: 'coq 8', binaryDigest: `sha256:${'1'.repeat(64)}`, command: ['coqc', '{target}'], exitCode: 0,
      startedAt: new Date().toISOString(), finishedAt: new Date().toISOString(), durationMs: 1,
      targets: [{ path: 'A.v', result: 'pass', exitCode: 0, durationMs: 1, reason: null }],
      audit: { command: null, findings: [], policy: null },
      log: { digest: `sha256:${'2'.repeat(64)}`, bytes: 3, excerpt: 'ok\n', truncated: false },
      outcome: 'pass', error: null,
    };
    await writeFile(path.join(d.results, 'result.json'), JSON.stringify(result));
    await writeFile(path.join(d.results, 'prover.log'), 'edited\n');
    void proverRuns(d.fifo, 50);
    const server = await endpoint([]);
    const evidence = await report(input(d, server.url));
    expect(evidence.outcome).toBe('error');
    expect(evidence.error).toMatch(/^the prover log does not match its digest/);
    expect(EvidenceSchema.safeParse(evidence).success).toBe(true);
  });

  it('retries 503 and network errors, then uploads with the credential', async () => {
    const d = await dirs();
    void proverRuns(d.fifo, 50);
    const server = await endpoint([503, 503]);
    const evidence = await report(input(d, server.url));
    expect(server.bodies).toHaveLength(3);
    expect(server.bodies[2]).toEqual({ auth: 'Bearer ppu_test', body: expect.objectContaining({ jobId: '11111111-1111-4111-8111-111111111111', outcome: evidence.outcome }) });
  });

  it('stops at a refusal (4xx) instead of retrying', async () => {
    const d = await dirs();
    void proverRuns(d.fifo, 50);
    const server = await endpoint([409]);
    await expect(report(input(d, server.url))).rejects.toThrow(/upload refused with 409/);
    expect(server.bodies).toHaveLength(1);
  });
});
