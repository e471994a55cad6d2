import pino, { type Logger } from 'pino';
import pretty from 'pino-pretty';

export interface LogOutput {
  /** Where the lines go; standard output by default. */
  destination?: pino.DestinationStream;
  /** Human-readable lines (pino-pretty) instead of JSON; by default, when standard output is a terminal. */
  pretty?: boolean;
}

export function createLogger(level: string, { destination, pretty: readable = process.stdout.isTTY === true }: LogOutput = {}): Logger {
  const options: pino.LoggerOptions = {
    level,
    base: { service: 'proofpod' },
    redact: { paths: ['req.headers.authorization', 'uploadCredential'], censor: '[redacted]' },
  };
  if (!readable) return pino(options, destination);
  // In this process, not a worker transport; synchronous, so that the lines before an exit are written.
  return pino(
    options,
    pretty({
      destination: destination ?? 1,
      sync: true,
      colorize: destination === undefined && process.stdout.isTTY === true,
      translateTime: 'SYS:HH:MM:ss.l',
      ignore: 'pid,hostname,service',
    }),
  );
}
