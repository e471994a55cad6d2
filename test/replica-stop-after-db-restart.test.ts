/**
 * A replica that lived through a Postgres restart still stops gracefully, and a transaction whose
 * connection is lost fails instead of killing the process. Found by the chaos run's Postgres
 * scenario (docs/reliability.md): after a restart, SIGTERM never finished, because the reaper's
 * `sql.reserve()` made during the outage never settled (postgres.js 3.4.9, porsager/postgres#1195),
 * and ticks waited up to 20 s on postgres.js's reconnect backoff; once the process died instead
 * (`TypeError: Cannot read properties of null (reading 'write')`, porsager/postgres#1208). And a
 * reconnect cut while it read the server's array types left an unhandled rejection (CI, this
 * file), which ends a Node process (porsager/postgres#1192, #1223).
 */
import { mkdtemp, rm } from 'node:fs/promises';
import net from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import pino from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { RestartablePostgres } from './support/restartable-postgres.js';
import { connect } from '../scheduler/database/connect.js';
import { createToken } from './support/database.js';
import { FakeCluster } from './support/fake-cluster.js';
import { call, fastLoops, jobRequest, startInstance, waitFor } from './support/instance.js';

/** What `promise` settled as within `ms`, or 'still pending'. */
async function within(ms: number, promise: Promise<unknown>): Promise<string> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<string>((resolve) => {
    timer = setTimeout(() => resolve('still pending'), ms);
  });
  const settled = promise.then(
    () => 'resolved',
    (error: unknown) => `rejected: ${String((error as { code?: unknown }).code ?? error)}`,
  );
  return Promise.race([settled, late]).finally(() => clearTimeout(timer));
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

describe('a Postgres restart under a running replica (cluster is a FAKE that runs nothing)', () => {
  const log = pino({ level: 'silent' });
  let home: string;
  let database: RestartablePostgres | undefined;
  beforeAll(async () => {
    // A Postgres of this file's own, on a fixed port so that it comes back where it was.
    home = await mkdtemp(path.join(tmpdir(), 'proofpod-stop-after-restart-'));
    database = await RestartablePostgres.start(home, log);
  });
  afterAll(async () => {
    await database?.stop();
    if (home) await rm(home, { recursive: true, force: true });
  });

  /** Fast shutdown, a second or two down (every loop fails a few ticks, the reaper's included), started again. */
  async function restartPostgres(downMs: number): Promise<void> {
    await database!.stop();
    await sleep(downMs);
    await database!.start();
  }

  it('verifies a job submitted after Postgres is back, and stop() then returns within seconds', async () => {
    const url = database!.url;
    let proofpodUrl = '';
    const cluster = new FakeCluster({ runMs: 50, endpoints: () => [proofpodUrl] });
    const proofpod = await startInstance(url, fastLoops, { substrate: cluster });
    proofpodUrl = proofpod.url;
    const setup = connect(url, { max: 1 });
    const token = await createToken(setup, { id: 'restart' }).finally(() => setup.end());
    let stopped = false;
    try {
      await restartPostgres(1500);

      // Working again: a job submitted after the restart is created in the substrate.
      let created: { status: number; body: { id: string } } | undefined;
      await waitFor(
        'a submission to go through',
        async () => {
          created = await call(proofpod.url, 'POST', '/v1/jobs', { token, body: jobRequest() });
          return created.status !== 503;
        },
        8_000,
        100,
      );
      expect(created!.status).toBe(201);
      // Verified: dispatched, its evidence uploaded and judged. No request is left in flight to the
      // API, whose close would wait for it, and no upload retries against a stopping replica.
      await waitFor(
        'the job to be verified',
        async () => (await call(proofpod.url, 'GET', `/v1/jobs/${created!.body.id}`, { token })).body.state === 'verified',
        8_000,
        100,
      );

      // Every loop's tick in flight ends, the reaper's too: stop() is not left waiting on one.
      const stop = proofpod.stop();
      stop.then(() => {
        stopped = true;
      });
      expect(await within(4_000, stop)).toBe('resolved');
    } finally {
      cluster.shutdown();
      // Leaves no instance running if the assertion above failed; a hung stop is not awaited again.
      if (!stopped) await Promise.race([proofpod.crash(), sleep(2_000)]);
    }
  });

  it('fails a transaction whose connection is lost, without crashing the process, and the pool works after', async () => {
    const sql = connect(database!.url, { max: 2 });
    try {
      await sql`select 1`;
      // postgres.js 3.4.9 would send ROLLBACK on the dead connection and throw outside any promise.
      const inFlight = sql.begin(async (tx) => {
        await tx`select 1`;
        await tx`select pg_sleep(10)`;
      });
      const outcome = within(5_000, inFlight);
      await sleep(200);
      await restartPostgres(500);
      expect(await outcome).toMatch(/^rejected: (CONNECTION_CLOSED|57P01|ECONNRESET)$/);
      // Let any write postgres.js scheduled on the dead socket run: it would be an uncaught error here.
      await sleep(200);
      const [row] = await sql<{ n: number }[]>`select 2 as n`;
      expect(row?.n).toBe(2);
      expect(
        await within(
          2_000,
          sql.begin((tx) => tx`select 3`),
        ),
      ).toBe('resolved');
    } finally {
      await sql.end({ timeout: 1 });
    }
  });

  it('reads the array types on one connection of a pool only, so a connection lost while reading them is no unhandled rejection', async () => {
    // A TCP proxy in front of the real Postgres that cuts any connection but the first on which
    // the client sends postgres.js's array-type query, as a restart does to a reconnect at that
    // moment (porsager/postgres#1223).
    const target = new URL(database!.url);
    const readTypes: number[] = [];
    let connections = 0;
    const proxy = net.createServer((client) => {
      const index = connections++;
      const server = net.connect(Number(target.port), target.hostname);
      client.on('data', (chunk: Buffer) => {
        if (chunk.includes('typarray')) {
          readTypes.push(index);
          if (readTypes.length > 1) {
            client.destroy();
            server.destroy();
            return;
          }
        }
        server.write(chunk);
      });
      server.on('data', (chunk: Buffer) => client.write(chunk));
      for (const [a, b] of [
        [client, server],
        [server, client],
      ] as const) {
        a.on('error', () => b.destroy());
        a.on('close', () => b.destroy());
      }
    });
    await new Promise<void>((resolve) => proxy.listen(0, '127.0.0.1', resolve));
    const proxied = new URL(database!.url);
    proxied.port = String((proxy.address() as net.AddressInfo).port);
    const rejections: unknown[] = [];
    const onRejection = (reason: unknown) => rejections.push(reason);
    process.on('unhandledRejection', onRejection);
    const sql = connect(proxied.toString(), { max: 3 });
    try {
      await sql`select 1`;
      // Three at once: the pool opens its other two connections, and each parses and sends arrays.
      const queries = Promise.all(
        [1, 2, 3].map(
          (n) => sql<{ n: number; xs: string[]; ys: string[] }[]>`
          select ${n}::int as n, pg_sleep(0.2)::text, array['a', 'b'] as xs, ${['x', 'y']}::text[] as ys`,
        ),
      );
      // Without the workaround a cut connection's query never settles.
      expect(await within(10_000, queries)).toBe('resolved');
      const rows = await queries;
      expect(rows.map(([row]) => [row!.n, row!.xs, row!.ys])).toEqual([
        [1, ['a', 'b'], ['x', 'y']],
        [2, ['a', 'b'], ['x', 'y']],
        [3, ['a', 'b'], ['x', 'y']],
      ]);
      expect(connections).toBe(3);
      await sleep(100);
      expect(readTypes).toEqual([0]);
      expect(rejections).toEqual([]);
    } finally {
      process.off('unhandledRejection', onRejection);
      await sql.end({ timeout: 1 });
      await new Promise((resolve) => proxy.close(resolve));
    }
  });
});
