/**
 * The processes a chaos run (test/bench/chaos.ts) starts and breaks (beside its Postgres,
 * test/support/restartable-postgres.ts): scheduler replicas as separate OS processes
 * (`node dist/scheduler/main.js` with a config file, so that a kill is a real SIGKILL), and a
 * steady load of submissions over HTTP that survives both.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { createWriteStream, existsSync, readFileSync, writeFileSync } from 'node:fs';
import { hostname } from 'node:os';
import path from 'node:path';
import type { ConfigInput } from '../../scheduler/config.js';
import { freeLoopbackPort } from '../../scheduler/database/embedded.js';
import { projectRoot } from '../../scheduler/substrate/create.js';

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** What of the environment a replica gets: none of the variables that would override its config file. */
function replicaEnvironment(configFile: string): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [name, value] of Object.entries(process.env)) {
    if (!/^(PROOFPOD_|DATABASE_URL$|PORT$|HOST$|LOG_LEVEL$|KUBECONFIG$)/.test(name)) env[name] = value;
  }
  return { ...env, PROOFPOD_CONFIG: configFile };
}

/** One life of a replica process. */
export interface ReplicaLife {
  pid: number;
  /** The holder identity's prefix (`host-pid-`): the replica adds a random suffix at start. */
  holderPrefix: string;
  startedAt: number;
  endedAt?: number;
  /**
   * How it ended: SIGKILL from the run, a graceful stop at the end (or one that did not finish in
   * its grace period and was killed: a finding), or on its own (a crash: a finding).
   */
  ending?: 'killed' | 'stopped' | 'stop timed out' | 'exited';
  exitCode?: number | null;
}

/**
 * A scheduler replica: `node dist/scheduler/main.js` with its own config file and a fixed port
 * (task pods upload to it, so a restarted replica is found where it was), its output appended to
 * a log file across restarts.
 */
export class ReplicaProcess {
  readonly url: string;
  readonly lives: ReplicaLife[] = [];
  private child: ChildProcess | undefined;
  private exited: Promise<void> = Promise.resolve();

  constructor(
    readonly name: string,
    private readonly configFile: string,
    readonly logFile: string,
    readonly port: number,
  ) {
    this.url = `http://127.0.0.1:${port}`;
  }

  /** Writes the config file of a replica listening on `port`; `config` is the rest of its configuration. */
  static async create(name: string, dir: string, config: ConfigInput): Promise<ReplicaProcess> {
    const port = await freeLoopbackPort();
    const configFile = path.join(dir, `${name}.json`);
    writeFileSync(configFile, JSON.stringify({ ...config, host: '127.0.0.1', port }, null, 2));
    return new ReplicaProcess(name, configFile, path.join(dir, `${name}.log`), port);
  }

  get alive(): boolean {
    return this.child !== undefined;
  }

  get life(): ReplicaLife | undefined {
    return this.lives.at(-1);
  }

  /** Starts the process and resolves once its /readyz answers 200. */
  async start(timeoutMs = 60_000): Promise<void> {
    if (this.child) return;
    const main = path.join(projectRoot(), 'dist', 'scheduler', 'main.js');
    if (!existsSync(main)) throw new Error(`${main} is missing: npm run build first`);
    const out = createWriteStream(this.logFile, { flags: 'a' });
    const child = spawn(process.execPath, [main], {
      cwd: projectRoot(),
      env: replicaEnvironment(this.configFile),
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    child.stdout!.pipe(out, { end: false });
    child.stderr!.pipe(out, { end: false });
    const life: ReplicaLife = { pid: child.pid!, holderPrefix: `${hostname()}-${child.pid}-`, startedAt: Date.now() };
    this.lives.push(life);
    this.child = child;
    this.exited = new Promise((resolve) =>
      child.once('close', (code) => {
        life.endedAt ??= Date.now();
        life.ending ??= 'exited';
        life.exitCode = code;
        if (this.child === child) this.child = undefined;
        out.end();
        resolve();
      }),
    );
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      if (this.child !== child) throw new Error(`replica ${this.name} exited while starting: see ${this.logFile}`);
      const ready = await fetch(`${this.url}/readyz`, { signal: AbortSignal.timeout(2_000) }).then(
        (r) => r.status === 200,
        () => false,
      );
      if (ready) return;
      if (Date.now() > deadline) throw new Error(`replica ${this.name} not ready after ${timeoutMs} ms: see ${this.logFile}`);
      await sleep(100);
    }
  }

  /** kill -9: the process dies mid-work, releasing nothing. */
  async kill(): Promise<ReplicaLife> {
    const child = this.child;
    const life = this.life!;
    if (!child) throw new Error(`replica ${this.name} is not running`);
    life.ending = 'killed';
    life.endedAt = Date.now();
    child.kill('SIGKILL');
    await this.exited;
    return life;
  }

  /** SIGTERM (a graceful stop: loops drain, leases are handed back), then SIGKILL after `graceMs`. */
  async stop(graceMs = 10_000): Promise<void> {
    const child = this.child;
    if (!child) return;
    const life = this.life!;
    life.ending = 'stopped';
    child.kill('SIGTERM');
    const timer = setTimeout(() => {
      life.ending = 'stop timed out';
      child.kill('SIGKILL');
    }, graceMs);
    await this.exited;
    clearTimeout(timer);
  }

  /** The replica's log lines (pino JSON) over all its lives; lines that are not JSON are kept as `{ msg }`. */
  logLines(): { level?: number; msg?: string; [key: string]: unknown }[] {
    if (!existsSync(this.logFile)) return [];
    return readFileSync(this.logFile, 'utf8')
      .split('\n')
      .filter((line) => line.trim())
      .map((line) => {
        try {
          return JSON.parse(line) as { level?: number; msg?: string };
        } catch {
          return { msg: line };
        }
      });
  }
}

/** What the load saw of one submission, by its idempotency key. */
export interface Submission {
  key: string;
  index: number;
  firstSentAt: number;
  jobId?: string;
  acceptedAt?: number;
  /** Requests sent for this key (1 when the first went through). */
  tries: number;
  /** Answers of 200 (the job that key made already): a retry whose first request had gone through. */
  existing: number;
}

export interface LoadCounters {
  /** Requests whose connection broke or timed out, and answers of 5xx, each retried with the same key. */
  connectionErrors: number;
  serverErrors: Record<string, number>;
  /** Requests that found no live replica to go to, and waited. */
  noReplica: number;
}

/**
 * A steady load: submission `i` is sent at `i / ratePerSecond` seconds, round robin over the
 * replicas that are alive, each with an idempotency key of its own. A request whose connection
 * breaks, that times out or is answered 5xx is sent again with the same key and body to the next
 * live replica, so a job is neither lost nor submitted twice; any other answer but 200/201 fails
 * the run.
 */
export class SteadyLoad {
  readonly submissions: Submission[] = [];
  readonly counters: LoadCounters = { connectionErrors: 0, serverErrors: {}, noReplica: 0 };
  private next = 0;
  private done: Promise<void> | undefined;
  private failure: Error | undefined;

  constructor(
    private readonly replicas: ReplicaProcess[],
    private readonly token: string,
    private readonly body: (index: number) => Record<string, unknown>,
    private readonly runId: string,
  ) {}

  start(count: number, ratePerSecond: number, giveUpMs = 180_000): void {
    const started = Date.now();
    const pending: Promise<void>[] = [];
    this.done = (async () => {
      for (let i = 0; i < count && !this.failure; i++) {
        const due = started + (i * 1000) / ratePerSecond;
        if (due > Date.now()) await sleep(due - Date.now());
        pending.push(
          this.submit(i, giveUpMs).catch((error: unknown) => {
            this.failure ??= error as Error;
          }),
        );
      }
      await Promise.all(pending);
    })();
  }

  /** Resolves once every submission was accepted or given up on; throws what failed the run. */
  async finished(): Promise<void> {
    await this.done;
    if (this.failure) throw this.failure;
  }

  private pick(): ReplicaProcess | undefined {
    for (let n = 0; n < this.replicas.length; n++) {
      const replica = this.replicas[this.next++ % this.replicas.length]!;
      if (replica.alive) return replica;
    }
    return undefined;
  }

  private async submit(index: number, giveUpMs: number): Promise<void> {
    const submission: Submission = { key: `${this.runId}-${index}`, index, firstSentAt: Date.now(), tries: 0, existing: 0 };
    this.submissions.push(submission);
    const body = JSON.stringify({ ...this.body(index), idempotencyKey: submission.key });
    while (Date.now() - submission.firstSentAt < giveUpMs) {
      const replica = this.pick();
      if (!replica) {
        this.counters.noReplica++;
        await sleep(200);
        continue;
      }
      submission.tries++;
      let status: number;
      let answer: string;
      try {
        const response = await fetch(`${replica.url}/v1/jobs`, {
          method: 'POST',
          headers: { authorization: `Bearer ${this.token}`, 'content-type': 'application/json' },
          body,
          signal: AbortSignal.timeout(15_000),
        });
        status = response.status;
        answer = await response.text();
      } catch {
        this.counters.connectionErrors++;
        await sleep(200);
        continue;
      }
      if (status === 201 || status === 200) {
        submission.jobId = (JSON.parse(answer) as { id: string }).id;
        submission.acceptedAt = Date.now();
        if (status === 200) submission.existing++;
        return;
      }
      if (status >= 500) {
        const key = `${status} ${answer.slice(0, 120)}`;
        this.counters.serverErrors[key] = (this.counters.serverErrors[key] ?? 0) + 1;
        await sleep(200);
        continue;
      }
      throw new Error(`submission ${submission.key} to ${replica.name} answered ${status}: ${answer}`);
    }
  }
}
