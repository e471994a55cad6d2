import type { Logger } from 'pino';
import { type EmbeddedDatabase, freeLoopbackPort, startEmbeddedPostgres } from '../../scheduler/database/embedded.js';

/** An embedded Postgres that can be stopped and started again where it was: same data directory, same port, same password. */
export class RestartablePostgres {
  private running: EmbeddedDatabase | undefined;

  private constructor(
    private readonly home: string,
    private readonly port: number,
    private readonly log: Logger,
    readonly url: string,
    running: EmbeddedDatabase,
  ) {
    this.running = running;
  }

  static async start(home: string, log: Logger): Promise<RestartablePostgres> {
    const port = await freeLoopbackPort();
    const db = await startEmbeddedPostgres(home, log, port);
    return new RestartablePostgres(home, port, log, db.url, db);
  }

  /** The server's own URL for another database on it. */
  urlOf(database: string): string {
    return this.url.replace(/\/[^/]*$/, `/${database}`);
  }

  get up(): boolean {
    return this.running !== undefined;
  }

  /** A fast shutdown (SIGINT): clients are disconnected, open transactions roll back. */
  async stop(): Promise<void> {
    const db = this.running;
    this.running = undefined;
    await db?.stop();
  }

  async start(): Promise<void> {
    if (this.running) return;
    this.running = await startEmbeddedPostgres(this.home, this.log, this.port);
  }
}
