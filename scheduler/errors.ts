/** Postgres SQLSTATE codes proofpod reacts to by name. */
export const PgCode = {
  uniqueViolation: '23505',
  foreignKeyViolation: '23503',
  checkViolation: '23514',
  serializationFailure: '40001',
  adminShutdown: '57P01',
  crashShutdown: '57P02',
  cannotConnectNow: '57P03',
} as const;

export { coerceError } from '../contract/errors.js';

/** The thing asked for exists already (e.g. a Kubernetes `AlreadyExists`): the work is done, not failed. */
export class DuplicateError extends Error {
  override readonly name = 'DuplicateError';
}

/**
 * A write carried a fencing epoch that is no longer current: another holder took the attempt over,
 * or it already ended. Nothing was changed; the caller must drop its view of the attempt.
 */
export class StaleError extends Error {
  override readonly name = 'StaleError';
  constructor(
    readonly attemptId: string,
    readonly epoch: number,
    message = `attempt ${attemptId} is no longer held at epoch ${epoch}`,
  ) {
    super(message);
  }
}

/** Invalid configuration: names the key and where it came from, so the operator can fix it. */
export class ConfigError extends Error {
  override readonly name = 'ConfigError';
}

export function pgErrorCode(error: unknown): string | undefined {
  if (typeof error === 'object' && error !== null && 'code' in error) {
    const code = (error as { code: unknown }).code;
    return typeof code === 'string' ? code : undefined;
  }
  return undefined;
}
