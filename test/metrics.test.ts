import { chmodSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Proofpod } from '../scheduler/app.js';
import { createTestDatabase, createToken } from './support/database.js';
import { FixtureRepo, scratch } from './support/git-fixtures.js';
import { FakeCluster } from './support/fake-cluster.js';
import { call, fastLoops, jobRequest, startInstance, waitFor } from './support/instance.js';

/**
 * What `/metrics` exports after a real job (Arith.v with Debian's coqc and coqchk on the real local
 * substrate): the Node.js default metrics under their standard names, the job's verdict by lane,
 * prover and outcome, and the attempt's four phases as histograms. The whole exposition is parsed
 * by the strict reader below, which fails on a line of no known form and on a metric family, or a
 * series, that appears twice.
 */
const db = await createTestDatabase();
const token = await createToken(db.sql, { id: 'metrics' });
// The FAKE cluster's schedulers below have a database of their own.
const fake = await createTestDatabase();
const submitter = await createToken(fake.sql, { id: 'counted' });
const bot = await createToken(fake.sql, { id: 'bot', trust: 'untrusted', lanes: ['intake'] });
const work = scratch('proofpod-metrics-');
chmodSync(work.root, 0o755);

let proofpod: Proofpod;
let repo: FixtureRepo;
let commit: string;

beforeAll(async () => {
  proofpod = await startInstance(db.url, {
    substrate: 'local',
    home: work.dir('home'),
    pod: { allowFileSources: true },
    // Uids of this file's own: test files run at once, each with a local substrate of its own.
    local: { sandboxUids: { first: 580_000, count: 1024 } },
    lanes: [{ name: 'verify', trust: 'trusted', concurrency: 1, maxDeadlineSeconds: 120 }],
    dispatch: { intervalSeconds: 0.2, batchSize: 10 },
    reaper: { intervalSeconds: 0.5, evidenceGraceSeconds: 30 },
  });
  repo = new FixtureRepo(work.dir('proofs'));
  commit = repo.commit({ 'Arith.v': readFileSync(path.resolve('test/fixtures/proofs/Arith.v')) });
});
afterAll(async () => {
  await proofpod?.stop();
  work.remove();
});

interface Sample {
  name: string;
  labels: Record<string, string>;
  value: number;
}
interface Family {
  name: string;
  type: string;
  samples: Sample[];
}

const metricName = '[a-zA-Z_:][a-zA-Z0-9_:]*';
const labelPair = '([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\\\\\n]|\\\\[\\\\"n])*)"';
const sampleLine = new RegExp(`^(${metricName})(?:\\{((?:${labelPair},?)*)\\})? (\\S+)(?: -?\\d+)?$`);
/**
 * A sample value as Prometheus reads one (Go's strconv.ParseFloat): a decimal, or Inf, Infinity or
 * NaN in any case (prom-client writes the event-loop mean and stddev it has no sample for yet as `Nan`).
 */
const parseValue = (text: string) => {
  const special = /^([-+]?)(inf|infinity|nan)$/i.exec(text);
  if (special) return special[2]!.toLowerCase() === 'nan' ? Number.NaN : special[1] === '-' ? -Infinity : Infinity;
  if (!/^[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?$/.test(text)) throw new Error(`not a sample value: ${text}`);
  return Number(text);
};
/** The sample names a family of each type may have (the text format, version 0.0.4). */
const suffixes: Record<string, string[]> = {
  counter: [''],
  gauge: [''],
  untyped: [''],
  histogram: ['_bucket', '_sum', '_count'],
  summary: ['', '_sum', '_count'],
};

/**
 * Reads the Prometheus text exposition format strictly: `# HELP` and `# TYPE` once per family,
 * before its samples; every sample in the family of the `# TYPE` above it, under a name that family
 * may have; no series twice; any other line is an error.
 */
function parseExposition(text: string): Map<string, Family> {
  const families = new Map<string, Family>();
  const helped = new Set<string>();
  const series = new Set<string>();
  let current: Family | undefined;
  for (const [index, line] of text.split('\n').entries()) {
    const where = `line ${index + 1}: ${line}`;
    if (line === '') continue;
    const comment = /^# (HELP|TYPE) (\S+)(?: (.*))?$/.exec(line);
    if (comment) {
      const [, kind, name, rest = ''] = comment;
      if (!new RegExp(`^${metricName}$`).test(name!)) throw new Error(`not a metric name: ${where}`);
      if (kind === 'HELP') {
        if (helped.has(name!)) throw new Error(`a second HELP for ${name}: ${where}`);
        helped.add(name!);
        continue;
      }
      if (families.has(name!)) throw new Error(`the metric family ${name} appears twice: ${where}`);
      if (!(rest in suffixes)) throw new Error(`unknown type: ${where}`);
      current = { name: name!, type: rest, samples: [] };
      families.set(name!, current);
      continue;
    }
    if (line.startsWith('#')) throw new Error(`a comment of no known form: ${where}`);
    const sample = sampleLine.exec(line);
    if (!sample) throw new Error(`not a sample: ${where}`);
    const [, name, labelText = '', , , raw] = sample;
    if (!current || !suffixes[current.type]!.some((suffix) => `${current!.name}${suffix}` === name)) {
      throw new Error(`a sample outside its family's block: ${where}`);
    }
    const labels: Record<string, string> = {};
    for (const [, key, text_] of labelText.matchAll(new RegExp(labelPair, 'g'))) {
      if (key! in labels) throw new Error(`label ${key} twice: ${where}`);
      labels[key!] = text_!.replace(/\\(.)/g, (_m, c: string) => (c === 'n' ? '\n' : c));
    }
    const key = `${name}${JSON.stringify(Object.entries(labels).sort())}`;
    if (series.has(key)) throw new Error(`the series appears twice: ${where}`);
    series.add(key);
    current.samples.push({ name: name!, labels, value: parseValue(raw!) });
  }
  return families;
}

/** The value of the one sample named `name` whose labels include `labels`, or undefined. */
function sampleValue(families: Map<string, Family>, name: string, labels: Record<string, string>): number | undefined {
  const found = [...families.values()]
    .flatMap((f) => f.samples)
    .filter((s) => s.name === name && Object.entries(labels).every(([k, v]) => s.labels[k] === v));
  expect(found.length, `${name} ${JSON.stringify(labels)}`).toBeLessThanOrEqual(1);
  return found[0]?.value;
}

const scrape = async () => {
  const response = await call<string>(proofpod.url, 'GET', '/metrics');
  expect(response.status).toBe(200);
  return parseExposition(response.body);
};

describe('/metrics after a real job (local substrate, coq)', () => {
  it('reads its own exposition strictly, and fails on a family or a series twice', () => {
    const family = '# HELP x_total X\n# TYPE x_total counter\nx_total{a="1"} 1\n';
    expect(parseExposition(family).get('x_total')?.samples).toEqual([{ name: 'x_total', labels: { a: '1' }, value: 1 }]);
    expect(() => parseExposition(`${family}${family}`)).toThrow(/second HELP|appears twice/);
    expect(() => parseExposition(`${family}x_total{a="1"} 2\n`)).toThrow(/series appears twice/);
    expect(() => parseExposition(`${family}y_total 2\n`)).toThrow(/outside its family/);
    expect(() => parseExposition(`${family}x_total{a="2"} one\n`)).toThrow(/not a sample value/);
    expect(() => parseExposition(`${family}x_total{a=1} 2\n`)).toThrow(/not a sample:/);
  });

  it('exports the standard Node.js names, the verdict and the four phases of the attempt', async () => {
    const submitted = await call(proofpod.url, 'POST', '/v1/jobs', {
      token,
      body: { source: { url: repo.url, commit }, prover: 'coq', targets: ['Arith.v'], lane: 'verify' },
    });
    expect(submitted.status).toBe(201);
    const id = submitted.body.id as string;
    await waitFor(
      'the verdict',
      async () => (await call(proofpod.url, 'GET', `/v1/jobs/${id}`, { token })).body.state === 'verified',
      60_000,
    );
    // The metrics follow the write of the verdict, all in one synchronous step (recordAttemptEnded):
    // a reader may see the job verified a moment before that step, never halfway through it.
    const ended = { lane: 'verify', prover: 'coq', state: 'verified' };
    await waitFor('the attempt to be counted', async () => sampleValue(await scrape(), 'proofpod_attempts_ended_total', ended) === 1, 5000);

    const families = await scrape();
    for (const name of [
      'process_cpu_seconds_total',
      'process_resident_memory_bytes',
      'process_start_time_seconds',
      'nodejs_heap_size_total_bytes',
      'nodejs_eventloop_lag_seconds',
    ]) {
      expect(families.has(name), name).toBe(true);
    }
    expect([...families.keys()].filter((name) => name.startsWith('proofpod_process_'))).toEqual([]);

    const verdict = { lane: 'verify', prover: 'coq', outcome: 'verified' };
    expect(families.get('proofpod_verdicts_total')?.type).toBe('counter');
    expect(sampleValue(families, 'proofpod_verdicts_total', verdict)).toBe(1);
    // Counted once, under no other outcome.
    expect(families.get('proofpod_verdicts_total')!.samples.map((s) => s.labels)).toEqual([verdict]);

    expect(families.get('proofpod_attempt_phase_seconds')?.type).toBe('histogram');
    for (const phase of ['fetch', 'build', 'check', 'upload']) {
      const labels = { lane: 'verify', prover: 'coq', phase };
      expect(sampleValue(families, 'proofpod_attempt_phase_seconds_count', labels), phase).toBeGreaterThanOrEqual(1);
      const sum = sampleValue(families, 'proofpod_attempt_phase_seconds_sum', labels)!;
      // Each phase ran within the job's two minutes; the check of a real coqchk takes some time.
      expect(sum, phase).toBeGreaterThanOrEqual(0);
      expect(sum, phase).toBeLessThan(120);
      expect(sampleValue(families, 'proofpod_attempt_phase_seconds_bucket', { ...labels, le: '3600' }), phase).toBe(1);
    }
    expect(sampleValue(families, 'proofpod_attempt_phase_seconds_sum', { lane: 'verify', prover: 'coq', phase: 'check' })).toBeGreaterThan(
      0,
    );
  });
});

describe('proofpod_verdicts_total: a job counted once, when it ends (FAKE cluster)', () => {
  /** Runs `body` against a scheduler of its own over `cluster`, one at a time: they share the database. */
  async function withInstance(cluster: FakeCluster, body: (url: string) => Promise<void>) {
    const instance = await startInstance(
      fake.url,
      { ...fastLoops, promotion: [{ name: 'bots', from: 'intake', to: 'verify', submitters: ['bot'] }] },
      { substrate: cluster },
    );
    try {
      await body(instance.url);
    } finally {
      cluster.shutdown();
      await instance.stop();
    }
  }
  const verdicts = async (url: string) =>
    parseExposition((await call<string>(url, 'GET', '/metrics')).body)
      .get('proofpod_verdicts_total')!
      .samples.map((s) => [s.labels, s.value]);

  it('counts a promoted job once, in the lane it ended in, and a cancelled one as cancelled', async () => {
    const state = async (url: string, id: string, as: string) => (await call(url, 'GET', `/v1/jobs/${id}`, { token: as })).body.state;

    await withInstance(new FakeCluster({ runMs: 20 }), async (url) => {
      const body = jobRequest({ lane: 'intake', promoteTo: 'verify' });
      const id = (await call(url, 'POST', '/v1/jobs', { token: bot, body })).body.id as string;
      await waitFor('the promoted verdict', async () => (await state(url, id, bot)) === 'verified');
      await waitFor('the verdict to be counted', async () => (await verdicts(url)).length > 0, 5000);
      // Passing intake ended an attempt, not the job.
      expect(await verdicts(url)).toEqual([[{ lane: 'verify', prover: 'coq', outcome: 'verified' }, 1]]);
    });
    await withInstance(new FakeCluster({ runMs: 60_000 }), async (url) => {
      const id = (await call(url, 'POST', '/v1/jobs', { token: submitter, body: jobRequest() })).body.id as string;
      await waitFor('the attempt to run', async () => (await state(url, id, submitter)) === 'running');
      expect((await call(url, 'POST', `/v1/jobs/${id}/cancel`, { token: submitter })).status).toBe(200);
      expect(await verdicts(url)).toEqual([[{ lane: 'verify', prover: 'coq', outcome: 'cancelled' }, 1]]);
    });
  });
});
