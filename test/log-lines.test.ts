import { spawnSync } from 'node:child_process';
import { chmodSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { PassThrough } from 'node:stream';
import { afterAll, describe, expect, it } from 'vitest';
import { isFinalJobState } from '../scheduler/job-states.js';
import { createLogger } from '../scheduler/log.js';
import { createTestDatabase, createToken } from './support/database.js';
import { FixtureRepo, scratch } from './support/git-fixtures.js';
import { call, startInstance, waitFor } from './support/instance.js';

/** Keys that occur twice in one JSON object anywhere in `json` (JSON.parse keeps the last silently). */
function duplicateKeys(json: string): string[] {
  const objects: ({ keys: Set<string>; expectKey: boolean } | null)[] = [];
  const duplicates: string[] = [];
  for (let i = 0; i < json.length; i++) {
    const c = json[i];
    if (c === '"') {
      let end = i + 1;
      while (json[end] !== '"') end += json[end] === '\\' ? 2 : 1;
      const top = objects.at(-1);
      if (top?.expectKey) {
        const key = JSON.parse(json.slice(i, end + 1)) as string;
        if (top.keys.has(key)) duplicates.push(key);
        top.keys.add(key);
        top.expectKey = false;
      }
      i = end;
    } else if (c === '{') objects.push({ keys: new Set(), expectKey: true });
    else if (c === '[') objects.push(null);
    else if (c === '}' || c === ']') objects.pop();
    else if (c === ',' && objects.at(-1)) objects.at(-1)!.expectKey = true;
  }
  return duplicates;
}

function capture(): { stream: PassThrough; lines: () => string[] } {
  const stream = new PassThrough();
  let text = '';
  stream.on('data', (chunk: Buffer) => (text += chunk.toString('utf8')));
  return { stream, lines: () => text.split('\n').filter((l) => l !== '') };
}

describe('log lines', () => {
  it('the duplicate-key check finds what JSON.parse hides', () => {
    expect(duplicateKeys('{"a":1,"b":{"a":2},"c":[{"a":1},{"a":2}]}')).toEqual([]);
    expect(duplicateKeys('{"holder":"x","msg":"a \\" , \\"holder\\": ","holder":"x"}')).toEqual(['holder']);
    expect(duplicateKeys('{"a":{"b":1,"b":2}}')).toEqual(['b']);
  });

  const work = scratch('proofpod-log-lines-');
  chmodSync(work.root, 0o755);
  afterAll(() => work.remove());

  it('a job run end to end writes JSON lines with no key twice in any object', async () => {
    const db = await createTestDatabase();
    const token = await createToken(db.sql, { id: 'log-lines' });
    const out = capture();
    const proofpod = await startInstance(
      db.url,
      {
        substrate: 'local',
        home: work.dir('home'),
        logLevel: 'debug',
        pod: { allowFileSources: true },
        // Uids of this file's own: test files run at once, each with a local substrate of its own.
        local: { sandboxUids: { first: 540_000, count: 1024 } },
        lanes: [{ name: 'verify', trust: 'trusted', concurrency: 1, maxDeadlineSeconds: 120 }],
      },
      { log: createLogger('debug', { destination: out.stream, pretty: false }) },
    );
    try {
      const repo = new FixtureRepo(work.dir('proofs'));
      const commit = repo.commit({ 'Arith.v': readFileSync(path.resolve('test/fixtures/proofs/Arith.v')) });
      const submitted = await call(proofpod.url, 'POST', '/v1/jobs', {
        token,
        body: { source: { url: repo.url, commit }, prover: 'coq', targets: ['Arith.v'], lane: 'verify' },
      });
      expect(submitted.status).toBe(201);
      await waitFor('the job to end', async () => {
        const job = await call(proofpod.url, 'GET', `/v1/jobs/${submitted.body.id}`, { token });
        return isFinalJobState(job.body.state);
      });
    } finally {
      await proofpod.stop();
    }
    const lines = out.lines();
    const messages = lines.map((l) => (JSON.parse(l) as { msg: string }).msg);
    // The run logged what a run logs: the test is not passing on an empty capture.
    for (const msg of ['replica started', 'job submitted', 'attempt started', 'attempt ended']) expect(messages).toContain(msg);
    const repeated = lines.filter((l) => duplicateKeys(l).length > 0);
    expect(repeated, 'lines with a key twice').toEqual([]);
  });

  it('pretty lines when asked (a terminal), JSON otherwise', () => {
    const json = capture();
    createLogger('info', { destination: json.stream, pretty: false }).info({ jobId: 'j-1' }, 'job submitted');
    expect(JSON.parse(json.lines()[0]!)).toMatchObject({ level: 30, msg: 'job submitted', jobId: 'j-1', service: 'proofpod' });

    const readable = capture();
    createLogger('info', { destination: readable.stream, pretty: true }).info({ jobId: 'j-1' }, 'job submitted');
    const line = readable.lines()[0]!;
    expect(line).toMatch(/^\[\d\d:\d\d:\d\d\.\d{3}\] INFO: job submitted$/);
    expect(readable.lines().join('\n')).toContain('jobId: "j-1"');
  });

  it('by default, pretty on a terminal and JSON on a pipe', () => {
    const program = `import('${path.resolve('dist/scheduler/log.js')}').then((m) => m.createLogger('info').info('hello'))`;
    const piped = spawnSync(process.execPath, ['-e', program], { encoding: 'utf8' });
    expect(JSON.parse(piped.stdout.trim())).toMatchObject({ msg: 'hello' });
    // script(1) runs the program on a pseudo-terminal of its own.
    const onTerminal = spawnSync('script', ['-qec', `${process.execPath} -e "${program}"`, '/dev/null'], { encoding: 'utf8' });
    expect(onTerminal.status).toBe(0);
    const text = onTerminal.stdout.replace(/\x1b\[[0-9;]*m/g, '');
    expect(text).toMatch(/INFO.*: hello/);
    expect(text.trim().startsWith('{')).toBe(false);
  });
});
