import { parseArgs } from 'node:util';
import { startProofpod } from './app.js';
import { type Config, loadConfig } from './config.js';
import { ConfigError, coerceError } from './errors.js';
import { createLogger } from './log.js';

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      'unsafe-no-sandbox': { type: 'boolean', default: false },
      'api-only': { type: 'boolean', default: false },
    },
  });
  let config: Config;
  try {
    config = loadConfig(process.env);
    if (values['unsafe-no-sandbox']) config = { ...config, local: { ...config.local, unsafeNoSandbox: true } };
    if (values['api-only']) config = { ...config, substrate: 'none' as const };
  } catch (error) {
    if (error instanceof ConfigError) {
      process.stderr.write(`proofpod: ${error.message}\n`);
      process.exit(2);
    }
    throw error;
  }
  const log = createLogger(config.logLevel);
  const proofpod = await startProofpod(config, { log });
  let stopping = false;
  const shutdown = (signal: string) => {
    if (stopping) return;
    stopping = true;
    log.info({ signal }, 'shutting down');
    proofpod.stop().then(
      () => process.exit(0),
      (error: unknown) => {
        log.error({ err: error }, 'shutdown failed');
        process.exit(1);
      },
    );
  };
  process.on('SIGINT', () => shutdown('SIGINT'));
  process.on('SIGTERM', () => shutdown('SIGTERM'));
}

main().catch((error: unknown) => {
  process.stderr.write(`proofpod: failed to start: ${coerceError(error).message}\n`);
  process.exit(1);
});
