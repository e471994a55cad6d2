import pino, { type Logger } from 'pino';

export function createLogger(level: string, destination?: pino.DestinationStream): Logger {
  return pino(
    {
      level,
      base: { service: 'proofpod' },
      redact: { paths: ['req.headers.authorization', 'uploadCredential'], censor: '[redacted]' },
    },
    destination,
  );
}
